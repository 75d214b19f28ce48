//! The TempoVoice deployer: provisions, updates and tears down one agent's AWS
//! resources — transcript bucket, secret, target group, task definition, listener
//! rule and ECS service — and a `lambda_runtime` binary that wraps it.
//!
//! Modules:
//!
//! - [`event`]: the versioned JSON contract of the Lambda (`deploy`, `delete`).
//! - [`fleet`]: `status` of one agent, `rollout` of a new runtime image to all agents,
//!   and `sweep` of resources whose agent no longer exists.
//! - [`health`]: how a deployed revision's rollout is going (ECS rollout state, healthy targets).
//! - [`provision`]: the orchestration: validate, then converge each resource in
//!   dependency layers (independent steps concurrently); delete in reverse.
//! - [`resources`]: one module per resource; each reads before it writes.
//! - [`naming`]: deterministic names and tags within AWS limits.
//! - [`settings`]: the shared AWS base (cluster, network, roles, image repository).
//! - [`aws`]: the SDK clients (retries, timeouts), and the call recorder used to count calls.
//! - [`faults`]: AWS's transient errors, injected on the wire for tests and benchmarks.
//! - [`consistency`]: waiting out AWS's eventual consistency, bounded.
//! - [`error`] and [`report`]: what failed (step, AWS code, retryable) and what was done.

pub mod aws;
pub mod consistency;
pub mod error;
pub mod event;
pub mod faults;
pub mod fleet;
pub mod health;
pub mod naming;
pub mod provision;
pub mod report;
pub mod resources;
pub mod settings;

pub use aws::{AwsClients, CallRecorder};
pub use error::{DeployError, Step};
pub use provision::{AgentReport, DeleteRequest, DeployRequest, Placement, delete, deploy};
pub use settings::DeployerSettings;

/// Runs one event.
pub async fn handle(
    clients: &AwsClients,
    settings: &DeployerSettings,
    event: event::DeployerEvent,
) -> Result<event::DeployerResponse, DeployError> {
    if event.version != event::EVENT_VERSION {
        return Err(DeployError::invalid(format!(
            "event version {} is not supported; this deployer speaks version {}",
            event.version,
            event::EVENT_VERSION
        )));
    }
    let outcome = match event.action {
        event::Action::Deploy(req) => event::Outcome::Deploy(deploy(clients, settings, *req).await?),
        event::Action::Delete(req) => event::Outcome::Delete(delete(clients, settings, req).await?),
        event::Action::Status(req) => event::Outcome::Status(fleet::status(clients, settings, req).await?),
        event::Action::Rollout(req) => event::Outcome::Rollout(fleet::rollout(clients, settings, req).await?),
        event::Action::Sweep(req) => event::Outcome::Sweep(fleet::sweep(clients, settings, req).await?),
        event::Action::Health(req) => event::Outcome::Health(health::health(clients, settings, req).await?),
    };
    Ok(event::DeployerResponse { version: event::EVENT_VERSION, outcome })
}
