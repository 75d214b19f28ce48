-- Per-tenant quota overrides; NULL means the operator's default (TEMPOVOICE_TENANT_MAX_*).
-- Keep in step with the other backend's migrations.

CREATE TABLE tenant_quotas (
    tenant_id        TEXT PRIMARY KEY REFERENCES tenants (id),
    agents           BIGINT,
    cpu_units        BIGINT,
    listener_slots   BIGINT,
    knowledge_bytes  BIGINT,
    updated_at       BIGINT NOT NULL
);
