//! The TempoVoice agent runtime: the one container image every agent runs, answering
//! that agent's Twilio calls.
//!
//! - [`twilio`]: Twilio's webhook signatures (`X-Twilio-Signature`).
//! - [`audio`]: μ-law, 20 ms frames, resampling, WAV input.
//! - [`speech`]: speech pipelines.

pub mod audio;
pub mod guardrails;
pub mod media;
pub mod phrases;
pub mod speech;
pub mod twilio;
