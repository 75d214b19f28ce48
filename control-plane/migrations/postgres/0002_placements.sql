-- Where each agent's listener rule goes: one (listener, priority) slot per agent.
-- UNIQUE (listener_arn, priority) is what keeps two concurrent assignments apart.
-- No foreign key to agents: a slot outlives its agent row until teardown is done.
CREATE TABLE placements (
    agent_id     TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    listener_arn TEXT NOT NULL,
    priority     BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (listener_arn, priority)
);
CREATE INDEX placements_tenant ON placements (tenant_id);
