//! The agent runtime against real local peers: S3 in moto, Twilio played by the call
//! simulator and signed by its own library, speech by espeak-ng and PocketSphinx.
//!
//! One test binary for the crate: every integration test links the whole crate, so
//! each file is a module here rather than a binary of its own.

mod calls;
mod common;
mod conversation;
mod nova;
mod openai;
mod protection;
mod resilience;
mod signature;
mod stream_admission;
mod webhook;
mod webhook_calls;
mod webhook_delivery;
mod webhook_form;
