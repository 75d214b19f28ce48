-- Sessions: a random token exchanged for an API key (the dashboard's sign-in), usable
-- as a credential until it expires, is revoked (sign-out), or its API key is revoked.
-- Only the SHA-256 of the token is stored.
-- Keep in step with migrations/sqlite (same table; BYTEA here is BLOB there).

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    key_id      TEXT NOT NULL REFERENCES api_keys (id),
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX sessions_key ON sessions (key_id, created_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
