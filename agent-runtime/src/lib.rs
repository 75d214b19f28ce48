//! The TempoVoice agent runtime: the one container image every agent runs, answering
//! that agent's Twilio calls. Data flows:
//!
//! Twilio → [`server`] (`incoming-call` webhook: [`twilio`] signature, [`twiml`]
//! answer) → Media Streams WebSocket → [`call`] (one loop per call over
//! [`media`] messages and [`audio`] frames) ⇄ a [`speech`] session (the offline
//! [`speech::local`] pipeline here) → at hang-up [`artifacts`] to S3 (or the spool),
//! [`webhooks`], and [`telephony`] (Twilio REST) for hang-up and transfer.
//!
//! - [`settings`]: the environment, including the agent (`agent_spec::AgentSpec`).
//! - [`guardrails`], [`phrases`]: conversation rules and lines shared by every provider.
//! - [`metrics`]: Prometheus (logs, the shutdown signal and the HTTP server come from
//!   the `serving` crate).
//! - [`callsim`]: a Twilio simulator (webhook, Media Streams, REST) for tests,
//!   benchmarks and developers.

pub mod artifacts;
pub mod audio;
pub mod call;
pub mod call_index;
pub mod callbacks;
pub mod callsim;
pub mod emf;
pub mod guardrails;
pub mod media;
pub mod metrics;
pub mod outbound;
pub mod phrases;
pub mod protection;
pub mod server;
pub mod settings;
pub mod speech;
pub mod speechsim;
pub mod telephony;
pub use agent_spec::twilio;
pub mod twiml;
pub mod webhooks;
