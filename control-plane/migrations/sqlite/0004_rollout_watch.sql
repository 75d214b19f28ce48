-- A deploy whose changes AWS accepted is `rolling_out` until ECS reports the service
-- deployment complete with healthy targets; past this time (ms) it is failed.
ALTER TABLE deployments ADD COLUMN rollout_deadline BIGINT;
-- The runtime image (pinned by digest) a deploy put in place.
ALTER TABLE deployments ADD COLUMN image TEXT;
