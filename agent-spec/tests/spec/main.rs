//! The agent specification: validation, the container environment round trip and its size.
//!
//! One test binary for the crate: every integration test links the whole crate, so
//! each file is a module here rather than a binary of its own.

mod common;
mod env_roundtrip;
mod env_size;
mod validation;
