//! The TempoVoice agent runtime: the one container image every agent runs, answering
//! that agent's Twilio calls.
//!
//! - [`twilio`]: Twilio's webhook signatures (`X-Twilio-Signature`).

pub mod twilio;
