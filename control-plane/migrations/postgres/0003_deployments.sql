-- Deployments: durable requests to converge (`deploy`) or tear down (`delete`) one
-- agent's AWS resources, taken by workers from this table, so a restart resumes them.
-- No foreign key to agents: a delete deployment outlives its agent row.
CREATE TABLE deployments (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    agent_id          TEXT NOT NULL,
    -- deploy | delete
    action            TEXT NOT NULL,
    -- pending | provisioning | active | failed | deleting | deleted
    status            TEXT NOT NULL,
    agent_version     BIGINT,
    deployed_version  BIGINT,
    purge_transcripts BIGINT NOT NULL,
    attempts          BIGINT NOT NULL,
    -- A pending deployment is not taken before this time (retry back-off).
    not_before        BIGINT NOT NULL,
    -- The worker holding it while provisioning or deleting, until the lease expires.
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    -- api::DeploymentError and [api::DeployedResource] as JSON.
    error             TEXT,
    resources         TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    finished_at       BIGINT
);
CREATE INDEX deployments_agent ON deployments (tenant_id, agent_id, created_at);
CREATE INDEX deployments_queue ON deployments (status, not_before);
CREATE INDEX deployments_agent_order ON deployments (agent_id, created_at, id);

CREATE TABLE deployment_events (
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    seq           BIGINT NOT NULL,
    at            BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    step          TEXT,
    message       TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);
