//! End-to-end tests across the platform: the control plane, the deployer in moto, the
//! runtime called through the call simulator, and the dashboard (also in headless Chromium).
//!
//! One test binary for the crate: every integration test links the whole crate, so
//! each file is a module here rather than a binary of its own.

mod call_through_the_platform;
mod callbacks;
mod common;
mod dashboard_browser;
mod dashboard_server_fns;
mod images;
mod numbers;
mod outbound;
