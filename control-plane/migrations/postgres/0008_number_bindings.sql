-- The Twilio numbers the control plane pointed at agents, and what each pointed at
-- before, to be given back when the agent is deleted or moves to another number.
-- UNIQUE (account_sid, phone_number) keeps two agents from holding one number.
-- No foreign key to agents: a binding outlives its agent row until the number is
-- given back. Keep in step with the other backend's migrations.
CREATE TABLE number_bindings (
    agent_id                 TEXT PRIMARY KEY,
    tenant_id                TEXT NOT NULL REFERENCES tenants (id),
    account_sid              TEXT NOT NULL,
    phone_number             TEXT NOT NULL,
    -- Twilio's PN… sid of the number.
    number_sid               TEXT NOT NULL,
    -- The agent's secrets when it was bound (the auth token the number is given back
    -- with), sealed like agents.secrets.
    secrets                  BYTEA NOT NULL,
    -- What the agent set, and the JSON (control_plane::twilio::VoiceRouting) of what was there before.
    voice_url                TEXT NOT NULL,
    previous_routing         TEXT NOT NULL,
    bound_at                 BIGINT NOT NULL,
    UNIQUE (account_sid, phone_number)
);
CREATE INDEX number_bindings_tenant ON number_bindings (tenant_id);
