//! Control-plane API tests: the real app on 127.0.0.1:0, a fresh database each,
//! driven over HTTP. Run against PostgreSQL by setting TEMPOVOICE_TEST_DATABASE_URL.

mod admin;
mod agents;
mod auth;
mod callbacks;
mod deployment_queue;
mod deployments;
mod errors;
mod health;
mod helpers;
mod json_bodies;
mod lambda;
mod openapi;
mod pagination;
mod placement;
mod process;
mod quotas;
mod rate_limit;
mod secrets;
mod sessions;
mod startup;
