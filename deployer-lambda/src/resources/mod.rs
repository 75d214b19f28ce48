//! One module per AWS resource an agent owns. Each `converge` reads the resource,
//! writes only what differs from what is wanted, and reports what it did.

pub mod bucket;
pub mod listener_rule;
pub mod scaling;
pub mod secret;
pub mod service;
pub mod target_group;
pub mod task_definition;
pub mod task_role;
