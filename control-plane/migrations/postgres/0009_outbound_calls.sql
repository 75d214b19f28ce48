-- Outbound calls the API placed through Twilio, for the concurrency guard: a call is
-- live from its reservation until Twilio reports its final status (ended_at), or
-- until live_until passes (a status callback that never came does not hold a slot
-- for ever). Keep in step with the other backend's migrations.
CREATE TABLE outbound_calls (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    agent_id     TEXT NOT NULL,
    -- Twilio's CA… sid, once the call is created.
    call_sid     TEXT UNIQUE,
    to_number    TEXT NOT NULL,
    from_number  TEXT NOT NULL,
    -- queued, ringing, in-progress, completed, busy, no-answer, failed, canceled.
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    live_until   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX outbound_calls_live ON outbound_calls (tenant_id, ended_at, live_until);
