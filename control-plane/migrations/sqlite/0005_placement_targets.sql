-- The most load-balancer targets each placed agent can register: its tasks × 2, since
-- a rolling deploy runs the old and the new tasks side by side. An ALB takes 1,000.
ALTER TABLE placements ADD COLUMN targets BIGINT NOT NULL DEFAULT 2;
