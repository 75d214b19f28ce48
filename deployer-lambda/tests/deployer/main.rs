//! The deployer against moto server on 127.0.0.1 (AWS_ENDPOINT_URL).
//!
//! One test binary for the crate: every integration test links the whole crate, so
//! each file is a module here rather than a binary of its own.

mod common;
mod concurrency;
mod faults;
mod fleet;
mod health;
mod iam_actions;
mod provision;
mod scaling;
