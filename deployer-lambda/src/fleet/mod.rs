//! Actions over what exists: [`status`] of one agent, [`rollout`] of a new runtime
//! image to every agent (or a named set) — what CI invokes after pushing an image —
//! and [`sweep`] of resources whose agent no longer exists.

pub mod rollout;
pub mod status;
pub mod sweep;

pub use rollout::{AgentRollout, RolloutAction, RolloutReport, RolloutRequest, rollout};
pub use status::{AgentStatus, ServiceHealth, StatusRequest, status};
pub use sweep::{Orphan, SweepReport, SweepRequest, sweep};
