//! The TempoVoice agent specification: what an AI phone agent is, as typed and
//! validated Rust, shared by every other crate. No I/O, no async runtime.
//!
//! Modules, in the order data flows through them:
//!
//! - [`values`] and [`ids`]: validated value types (`E164`, `HttpsUrl`, `AgentId`,
//!   `CallSid`, …) with a `parse` constructor; the rest of the code trusts them.
//! - [`draft`]: [`AgentDraft`], the config as a person or program typed it (the API
//!   request body). [`AgentDraft::validate`] returns every problem at once as
//!   [`ValidationErrors`] naming each field, or a trusted [`AgentConfig`] and its
//!   [`AgentSecrets`].
//! - [`config`]: [`AgentConfig`], the validated configuration (no secrets), and the
//!   Fargate size table.
//! - [`secrets`]: [`AgentSecrets`] (redacted in `Debug`) and the write-only
//!   [`SecretPatch`] used in requests.
//! - [`env`]: [`AgentSpec`] (ids + config + secrets) and the one mapping to and
//!   from the runtime container's environment, with the task-definition size budget.
//! - [`api`]: the REST API's response and admin types.
//! - [`calls`]: the documents a call leaves in the agent's bucket (transcript, metadata).
//! - [`net`]: which addresses are public, for the URLs tenants give.
//! - [`openapi`]: the draft's validation rules, written into its OpenAPI schema.
//! - [`twilio`]: `X-Twilio-Signature`, as Twilio computes it (the runtime checks its
//!   webhooks with it, the control plane its call status callbacks).

pub mod api;
pub mod callbacks;
pub mod calls;
pub mod config;
pub mod draft;
pub mod env;
pub mod ids;
pub mod net;
pub mod openapi;
pub mod secrets;
pub mod twilio;
pub mod validation;
pub mod values;

pub use config::{AgentConfig, SpeechProvider};
pub use draft::AgentDraft;
pub use env::{AgentEnvironment, AgentSpec, EnvError, EnvErrors};
pub use ids::{AgentId, CallSid, DeploymentId, TenantId};
pub use secrets::{AgentSecrets, SecretPatch};
pub use validation::{FieldError, ValidationErrors};
