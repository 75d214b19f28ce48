-- Callbacks callers asked for during a call (the runtime's schedule_callback): a
-- control plane's worker places each as an outbound call when due_at comes. A worker
-- holds a callback it is placing with a lease (lease_owner, lease_expires_at), so two
-- replicas never place the same one, and one that died is picked up again (which
-- first asks Twilio whether the call was already made: attempt_started_at). One per
-- call: asking again during the same call moves it. Keep in step with the other
-- backend's migrations.
CREATE TABLE callbacks (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    agent_id           TEXT NOT NULL,
    call_sid           TEXT NOT NULL,
    to_number          TEXT NOT NULL,
    requested_time     TEXT NOT NULL,
    -- What the caller said on the earlier call, carried by the callback.
    context            TEXT NOT NULL,
    due_at             BIGINT NOT NULL,
    -- scheduled, placing, placed, failed, cancelled.
    status             TEXT NOT NULL,
    attempts           BIGINT NOT NULL,
    lease_owner        TEXT,
    lease_expires_at   BIGINT,
    attempt_started_at BIGINT,
    placed_call_sid    TEXT,
    error              TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (agent_id, call_sid)
);
CREATE INDEX callbacks_due ON callbacks (status, due_at);
CREATE INDEX callbacks_agent ON callbacks (tenant_id, agent_id, created_at);
