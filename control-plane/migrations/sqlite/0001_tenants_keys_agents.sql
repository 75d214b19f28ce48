-- Tenants, their API keys, and agent configurations.
-- Timestamps are Unix milliseconds (BIGINT) so the same queries run on SQLite and PostgreSQL.
-- Keep in step with migrations/postgres (same tables; BLOB here is BYTEA there).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    -- SHA-256 of the whole key; the key itself is never stored.
    key_hash    BLOB NOT NULL UNIQUE,
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    -- agent_spec::AgentConfig as JSON (no secrets).
    config      TEXT NOT NULL,
    -- agent_spec::AgentSecrets, sealed with AES-256-GCM bound to (tenant, agent).
    secrets     BLOB NOT NULL,
    -- Which optional secrets are set (bit 0: openai_api_key, bit 1: webhook_signing_secret),
    -- so that reads never need to decrypt.
    secrets_set BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX agents_tenant_page ON agents (tenant_id, created_at, id);
