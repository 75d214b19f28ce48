//! One call: the Media Streams conversation between Twilio and a speech session.
//!
//! [`run_call`] is written over a `Stream` of incoming text frames and a `Sink` of
//! outgoing ones, so tests drive it through channels and the server through a
//! WebSocket. It owns the conversation rules that hold whatever the provider:
//!
//! - the session is connected when `start` arrives, and the greeting asked for as
//!   soon as it is; a provider that cannot be reached, or fails during the call, is
//!   never replaced by another: the caller hears a short apology in the runtime's own
//!   voice and the call is hung up (`provider_unavailable`, `provider_error`);
//! - agent audio goes out as [`playback`] describes, and the played position comes
//!   back through Twilio's marks;
//! - the runtime's voice activity detector (earshot) hears the caller for every
//!   provider; barge-in: the caller starts speaking (by that detector or the
//!   provider's) while agent audio is queued → one `clear`, the session is told how
//!   much of its turn was played, and the turn is cut there ([`turns`]);
//! - idle prompt after the configured silence, goodbye after a second one; maximum
//!   duration and turns; guardrails, on the caller's words and the agent's; DTMF into
//!   the transcript;
//! - tools: `end_call` and `transfer_call` act through [`TelephonyControl`] once the
//!   agent's last words have been played, `voicemail` records the caller, and
//!   `schedule_callback` is posted to the agent's scheduling webhook; each result
//!   goes back to the session;
//! - whatever happens on the wire (malformed JSON, wrong order, huge frames, a dropped
//!   socket), the call ends with its artifacts ([`record`]).

pub mod amd;
mod playback;
mod record;
#[cfg(test)]
mod tests;
mod turns;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use agent_spec::AgentConfig;
use base64::Engine;
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::artifacts::{
    ArtifactStore, CallArtifacts, DtmfRecord, RecordError, Recorder, Role, ToolCallRecord, Turn, WebhookDelivery,
};
use crate::audio::FRAME_SAMPLES;
use crate::guardrails::{Guardrails, Verdict};
use crate::media::{Inbound, Outbound, write_media_json};
use crate::metrics::Metrics;
use crate::phrases::Phrases;
use crate::server::admission::{AnsweredCalls, Refusal, STREAM_TOKEN_PARAMETER, StreamTokens};
use crate::speech::tts::Synthesizer;
use crate::speech::vad::{TurnDetector, TurnEvent};
use crate::speech::{CallerAudio, ConnectError, SpeechEvent, SpeechSession, ToolCall, ToolOutcome, sentences};
use crate::telephony::{TelephonyControl, TelephonyError};
use crate::webhooks::WebhookSender;
use playback::{FRAMES_PER_MARK, Playback};
use turns::{AgentTurn, PendingCallerText};

/// A frame from the WebSocket, as the call loop sees it.
#[derive(Debug, Clone)]
pub enum WsFrame {
    Text(String),
    /// Binary, ping, pong: not part of Media Streams.
    Other,
}

/// How often a call reads its socket. Twilio sends a media message every 20 ms; a
/// call woken for each of them pays a wake-up, a read and a TCP acknowledgement per
/// frame, which is most of what a call costs the kernel. Reading every 40 ms takes
/// two frames at once (the caller is heard at most 40 ms later).
pub const READ_EVERY: Duration = Duration::from_millis(40);
/// Messages handled in one go before the call loop looks at its other work.
const MAX_FRAMES_PER_READ: usize = 8;

/// Largest text message handled; longer ones are counted as malformed.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Timings of the conversation rules that are not agent settings.
#[derive(Debug, Clone)]
pub struct CallTimings {
    /// How long to wait for `start` after the socket opens.
    pub start_timeout: Duration,
    /// How long a voicemail may run.
    pub voicemail_max: Duration,
    /// After hanging up through the API, how long to wait for Twilio's `stop`.
    pub stop_wait: Duration,
    /// Extra time, beyond the queued audio, to wait for the last mark before acting.
    pub playback_slack: Duration,
    /// Caller silence that ends a turn (the runtime's own detector).
    pub end_of_turn: Duration,
    /// How long a provider may take to connect.
    pub connect_timeout: Duration,
}

impl Default for CallTimings {
    fn default() -> Self {
        Self {
            start_timeout: Duration::from_secs(10),
            voicemail_max: Duration::from_secs(120),
            stop_wait: Duration::from_secs(5),
            playback_slack: Duration::from_secs(3),
            end_of_turn: Duration::from_millis(700),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// What every call of the agent shares.
pub struct CallEnv {
    /// Schedules the callbacks callers ask for (`TEMPOVOICE_CONTROL_PLANE_URL`).
    pub control_plane: Option<Arc<crate::callbacks::ControlPlane>>,
    pub agent_id: String,
    pub tenant_id: String,
    pub config: AgentConfig,
    pub phrases: Phrases,
    /// The runtime's own voice (espeak-ng): the apology when the provider is gone.
    pub voice: Arc<Synthesizer>,
    pub guardrails: Guardrails,
    pub telephony: Arc<dyn TelephonyControl>,
    pub webhooks: WebhookSender,
    pub artifacts: Arc<ArtifactStore>,
    pub metrics: Arc<Metrics>,
    /// Background work of calls (webhooks) that must finish before the process exits.
    pub tasks: TaskTracker,
    /// Calls the webhook answered whose stream has not started yet.
    pub answered: AnsweredCalls,
    /// Issues and checks the one-time tokens that bind a media stream to its call.
    pub stream_tokens: StreamTokens,
    /// Answering machine detection results of outbound calls, by call sid.
    pub amd: Arc<amd::AmdResults>,
    /// `TEMPOVOICE_MAX_CALLS`.
    pub max_calls: usize,
    pub timings: CallTimings,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CallerHungUp,
    EndCall,
    Transferred,
    Voicemail,
    /// An outbound call reached an answering machine: the voicemail message was left.
    AnsweringMachine,
    Idle,
    MaxDuration,
    MaxTurns,
    Guardrail,
    Shutdown,
    StreamDropped,
    /// The speech provider could not be reached when the call started.
    ProviderUnavailable,
    /// The speech provider failed during the call.
    ProviderError,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallerHungUp => "caller_hung_up",
            Self::EndCall => "end_call",
            Self::Transferred => "transferred",
            Self::Voicemail => "voicemail",
            Self::AnsweringMachine => "answering_machine",
            Self::Idle => "idle",
            Self::MaxDuration => "max_duration",
            Self::MaxTurns => "max_turns",
            Self::Guardrail => "guardrail",
            Self::Shutdown => "shutdown",
            Self::StreamDropped => "stream_dropped",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::ProviderError => "provider_error",
        }
    }
}

/// What to do once the agent's queued audio has been played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterPlayback {
    HangUp(EndReason),
    Transfer,
    StartVoicemail,
}

/// Identity of the call, from `start`.
struct CallIdentity {
    call_sid: String,
    stream_sid: String,
    account_sid: String,
    from: Option<String>,
    to: Option<String>,
    started_at: time::OffsetDateTime,
    /// `inbound`, `outbound-api`, … (Twilio's `Direction`).
    direction: Option<String>,
    /// What placed the outbound call gave as its metadata.
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Twilio's answering machine detection result (or `timeout`).
    answered_by: Option<String>,
}

enum Mode {
    /// An outbound call waits to learn who answered ([`amd`]): nothing is said, and
    /// the speech session hears nothing.
    Screening(amd::Screening),
    Conversation,
    Voicemail {
        recorder: Option<Recorder>,
        until: Instant,
    },
}

/// The call's speech session, through its life.
enum Link<S> {
    Connecting,
    Live(S),
    /// Failed or closed: nothing more is asked of it.
    Gone,
}

struct Call<'e, S, O> {
    env: &'e CallEnv,
    out: O,
    session: Link<S>,
    id: CallIdentity,
    t0: Instant,
    json: String,
    playback: Playback,
    /// The runtime's own voice activity detector, for every provider.
    vad: TurnDetector,
    caller_ulaw: Vec<u8>,
    caller_pcm: Vec<i16>,
    turn_events: Vec<TurnEvent>,
    heard: Vec<u8>,
    turn: Option<AgentTurn>,
    turns: Vec<Turn>,
    pending_text: PendingCallerText,
    dtmf: Vec<DtmfRecord>,
    recorder: Option<Recorder>,
    mode: Mode,
    /// The caller is speaking, by the runtime's detector.
    caller_speaking: bool,
    /// When the caller's current turn started (ms from the call's start).
    caller_turn_started: Option<u64>,
    awaiting_reply_since: Option<Instant>,
    /// A line the runtime asked for (greeting, idle prompt, goodbye) is being generated.
    speaking_line: bool,
    last_activity: Instant,
    idle_prompts: u32,
    caller_turns: u32,
    agent_turns: u32,
    interruptions: u32,
    inappropriate: u32,
    guardrail_cuts: u32,
    latencies: Vec<u64>,
    input_tokens: u64,
    output_tokens: u64,
    frames_in: u64,
    frames_out: u64,
    malformed: u64,
    after_playback: Option<(AfterPlayback, Instant)>,
    ending: Option<EndReason>,
    hung_up_at: Option<Instant>,
    socket_ok: bool,
    webhook_results: Vec<tokio::task::JoinHandle<WebhookDelivery>>,
    /// Tool calls whose outcome is still coming (a callback the control plane is
    /// scheduling): id, call, outcome.
    pending_tools:
        futures::stream::FuturesUnordered<futures::future::BoxFuture<'static, (String, ToolCall, ToolOutcome)>>,
    errors: Vec<String>,
    /// When the recording stopped at the spool's cap (ms into the call).
    recording_cut_at_ms: Option<u64>,
    /// The recording (or voicemail) as it was when the spool's cap stopped it.
    recording_kept: Option<std::path::PathBuf>,
    voicemail_kept: Option<std::path::PathBuf>,
}

/// Runs one call to its end and returns its artifacts (`None` if the stream never
/// started, so there is no call to speak of). `connect` opens the speech session; it
/// runs while the call already listens to Twilio.
pub async fn run_call<S, C, I, O>(
    env: &CallEnv,
    mut inbound: I,
    outbound: O,
    connect: impl FnOnce() -> C,
    drain: CancellationToken,
) -> Option<CallArtifacts>
where
    S: SpeechSession,
    C: Future<Output = Result<S, ConnectError>> + Send,
    I: Stream<Item = WsFrame> + Unpin,
    O: Sink<String> + Unpin,
{
    let mut malformed = 0u64;
    // Until `start`: `connected` is expected; anything else is out of order.
    let start = tokio::time::timeout(env.timings.start_timeout, async {
        while let Some(frame) = inbound.next().await {
            let WsFrame::Text(text) = frame else { continue };
            match parse(&text) {
                Some(Inbound::Start { start, stream_sid, .. }) => return Some((start, stream_sid)),
                Some(Inbound::Connected { .. }) => {}
                Some(other) => {
                    malformed += 1;
                    tracing::warn!(event = event_name(&other), "stream message before start ignored");
                }
                None => malformed += 1,
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    env.metrics.malformed_messages.fetch_add(malformed, Ordering::Relaxed);
    let Some((start, stream_sid)) = start else {
        tracing::warn!("media stream closed or timed out before start");
        return None;
    };
    // The call's clock starts at `start`: admission below takes time on the object
    // store, and the caller's frames sent meanwhile are part of the call (and of its
    // recording).
    let (t0, started_at) = (Instant::now(), time::OffsetDateTime::now_utc());
    let Ok(call_sid) = agent_spec::CallSid::parse(&start.call_sid) else {
        tracing::warn!(call_sid = %start.call_sid, "start names an invalid call sid; stream refused");
        env.metrics.malformed_messages.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let call_sid = call_sid.to_string();
    let pickup = match admit(env, &start, &stream_sid).await {
        Ok(pickup) => pickup,
        Err(refusal) => {
            env.metrics.stream_refused(refusal);
            tracing::warn!(call_sid, account_sid = %start.account_sid, reason = refusal.as_str(), "media stream refused");
            return None;
        }
    };
    let span = tracing::info_span!("call", call_sid = %call_sid, agent_id = %env.agent_id, tenant_id = %env.tenant_id);
    // Every line the call logs, here and in its speech session's tasks, carries the span.
    async move {
        let params = &start.custom_parameters;
        let id = CallIdentity {
            call_sid: call_sid.clone(),
            stream_sid,
            account_sid: start.account_sid.clone(),
            from: params.get("from").cloned(),
            to: params.get("to").cloned(),
            started_at,
            direction: params.get("direction").filter(|d| !d.is_empty()).cloned(),
            metadata: None,
            answered_by: None,
        };
        let mut errors = Vec::new();
        let mut id = id;
        if let Some(raw) = params.get("metadata").filter(|m| !m.is_empty()) {
            match decode_metadata(raw) {
                Ok(map) => id.metadata = Some(map),
                Err(e) => errors.push(format!("metadata: {e}")),
            }
        }
        let screening = id.direction.as_deref().is_some_and(|d| d.starts_with("outbound"))
            && params.get("amd").is_some_and(|a| a == "async");
        let mut recording_cut_at_ms = None;
        let recorder = if env.config.enable_recording {
            match Recorder::create(env.artifacts.scratch_path(&call_sid, "recording.wav"), 2, env.artifacts.disk()) {
                Ok(r) => Some(r),
                Err(e) => {
                    if matches!(e, RecordError::SpoolFull { .. }) {
                        env.metrics.recordings_cut.fetch_add(1, Ordering::Relaxed);
                        recording_cut_at_ms = Some(0);
                    }
                    tracing::error!(error = %e, "start the call recording; the call goes on without it");
                    errors.push(format!("recording: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let mut call = Call {
            env,
            out: outbound,
            session: Link::Connecting,
            id,
            t0,
            json: String::with_capacity(512),
            playback: Playback::new(recorder.is_some()),
            vad: TurnDetector::new(env.timings.end_of_turn),
            caller_ulaw: Vec::with_capacity(FRAME_SAMPLES),
            caller_pcm: Vec::with_capacity(FRAME_SAMPLES),
            turn_events: Vec::new(),
            heard: Vec::new(),
            turn: None,
            turns: Vec::new(),
            pending_text: PendingCallerText::default(),
            dtmf: Vec::new(),
            recorder,
            mode: if screening {
                Mode::Screening(amd::Screening::start(&env.amd, &env.telephony, &call_sid))
            } else {
                Mode::Conversation
            },
            caller_speaking: false,
            caller_turn_started: None,
            awaiting_reply_since: None,
            speaking_line: !screening,
            last_activity: Instant::now(),
            idle_prompts: 0,
            caller_turns: 0,
            agent_turns: 0,
            interruptions: 0,
            inappropriate: 0,
            guardrail_cuts: 0,
            latencies: Vec::new(),
            input_tokens: 0,
            output_tokens: 0,
            frames_in: 0,
            frames_out: 0,
            malformed,
            after_playback: None,
            ending: None,
            hung_up_at: None,
            socket_ok: true,
            webhook_results: Vec::new(),
            pending_tools: futures::stream::FuturesUnordered::new(),
            errors,
            recording_cut_at_ms,
            recording_kept: None,
            voicemail_kept: None,
        };
        tracing::info!(from = ?call.id.from, "call started");
        if let Some(pickup) = pickup {
            call.webhook_results.push(pickup);
        }
        let connecting = tokio::time::timeout(env.timings.connect_timeout, connect());
        let reason = call.converse(&mut inbound, connecting, drain).await;
        Some(call.finish(reason).await)
    }
    .instrument(span)
    .await
}

/// How long the stream's claim in the bucket may take before the call goes on
/// without it.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the stream that sent `start` may become a call (see
/// [`crate::server::admission`]): its token, its account, a slot, and the call's
/// first stream. Returns the pickup webhook fired when the call was answered here.
async fn admit(
    env: &CallEnv,
    start: &crate::media::StartInfo,
    stream_sid: &str,
) -> Result<Option<tokio::task::JoinHandle<WebhookDelivery>>, Refusal> {
    let call_sid = start.call_sid.as_str();
    let token = start.custom_parameters.get(STREAM_TOKEN_PARAMETER).ok_or(Refusal::MissingToken)?;
    let expires = env.stream_tokens.check(call_sid, token, crate::server::admission::unix_now())?;
    if start.account_sid != env.config.telephony.twilio_account_sid.as_str() {
        return Err(Refusal::ForeignAccount);
    }
    let live = env.metrics.active_calls.load(Ordering::SeqCst).max(0) as usize;
    let pickup = env.answered.stream_started(call_sid, expires, live, env.max_calls)?;
    // Another task of the agent may have taken this call's stream: the first claim in
    // the bucket wins.
    match tokio::time::timeout(CLAIM_TIMEOUT, env.artifacts.claim_stream(call_sid, stream_sid, &env.agent_id)).await {
        Ok(Ok(true)) => Ok(pickup),
        Ok(Ok(false)) => Err(Refusal::Duplicate),
        Ok(Err(e)) => {
            env.metrics.stream_claim_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(call_sid, error = %e, "claim the call's stream in the bucket; the call goes on, checked by this task alone");
            Ok(pickup)
        }
        Err(_) => {
            env.metrics.stream_claim_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                call_sid,
                timeout_secs = CLAIM_TIMEOUT.as_secs(),
                "claim the call's stream in the bucket: no answer; the call goes on, checked by this task alone"
            );
            Ok(pickup)
        }
    }
}

fn parse(text: &str) -> Option<Inbound> {
    if text.len() > MAX_MESSAGE_BYTES {
        tracing::warn!(bytes = text.len(), "oversized stream message ignored");
        return None;
    }
    match serde_json::from_str(text) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(error = %e, "malformed stream message ignored");
            None
        }
    }
}

fn event_name(m: &Inbound) -> &'static str {
    match m {
        Inbound::Connected { .. } => "connected",
        Inbound::Start { .. } => "start",
        Inbound::Media { .. } => "media",
        Inbound::Dtmf { .. } => "dtmf",
        Inbound::Mark { .. } => "mark",
        Inbound::Stop { .. } => "stop",
    }
}

/// The next event of a live session; never, otherwise.
/// Who answered, once a screening call learns it (never otherwise).
async fn screening_result(mode: &mut Mode) -> String {
    match mode {
        Mode::Screening(screening) => (&mut screening.result).await.unwrap_or_else(|_| "unknown".into()),
        _ => std::future::pending().await,
    }
}

/// The outbound call's metadata, as the voice webhook passed it on: base64url
/// (no padding) of a JSON object.
fn decode_metadata(raw: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.as_bytes())
        .map_err(|e| format!("not base64url: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not a JSON object: {e}"))
}

async fn next_event<S: SpeechSession>(session: &mut Link<S>) -> Option<SpeechEvent> {
    match session {
        Link::Live(s) => s.next_event().await,
        _ => std::future::pending().await,
    }
}

impl<S: SpeechSession, O: Sink<String> + Unpin> Call<'_, S, O> {
    fn now_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    async fn converse<I, C>(&mut self, inbound: &mut I, connecting: C, drain: CancellationToken) -> EndReason
    where
        I: Stream<Item = WsFrame> + Unpin,
        C: Future<Output = Result<Result<S, ConnectError>, tokio::time::error::Elapsed>>,
    {
        let max_duration =
            self.t0 + Duration::from_secs(u64::from(self.env.config.guardrails.max_session_duration_secs));
        let mut draining = false;
        let mut connecting = std::pin::pin!(connecting);
        let mut connected = false;
        // The timers and the drain signal live across iterations: the loop turns for
        // every read of the socket, and a timer registered and cleared (or a
        // cancellation waiter added and removed) on every turn cost more than the
        // frames' own work. `rest` is the pause between reads (READ_EVERY).
        let mut deadline = self.next_deadline(max_duration);
        let mut timer = std::pin::pin!(tokio::time::sleep_until(deadline.into()));
        let mut drained = std::pin::pin!(drain.cancelled());
        let mut reading = true;
        let mut rest = std::pin::pin!(tokio::time::sleep_until(self.t0.into()));
        loop {
            if !self.socket_ok {
                return self.ending.unwrap_or(EndReason::StreamDropped);
            }
            let next = self.next_deadline(max_duration);
            if next != deadline || timer.is_elapsed() {
                deadline = next;
                timer.as_mut().reset(deadline.into());
            }
            tokio::select! {
                frame = inbound.next(), if reading => match self.on_frames(inbound, frame).await {
                    Err(reason) => return reason,
                    Ok(caught_up) => if caught_up {
                        reading = false;
                        rest.as_mut().reset((Instant::now() + READ_EVERY).into());
                    },
                },
                // The rest is over: take what has arrived in this same turn of the loop,
                // and wait on the socket only if nothing has.
                () = &mut rest, if !reading => match inbound.next().now_or_never() {
                    None => reading = true,
                    Some(frame) => match self.on_frames(inbound, frame).await {
                        Err(reason) => return reason,
                        Ok(caught_up) => if caught_up {
                            rest.as_mut().reset((Instant::now() + READ_EVERY).into());
                        } else {
                            reading = true;
                        },
                    },
                },
                result = &mut connecting, if !connected => {
                    connected = true;
                    self.on_connected(result).await;
                }
                answered = screening_result(&mut self.mode) => self.on_answered(answered).await,
                Some((id, tool, outcome)) = self.pending_tools.next(), if !self.pending_tools.is_empty() => {
                    self.tool_done(id, tool, outcome);
                }
                event = next_event(&mut self.session) => match event {
                    Some(SpeechEvent::Failed(reason)) => self.provider_lost(reason).await,
                    Some(event) => self.on_speech(event).await,
                    None => self.provider_lost("the speech session closed".into()).await,
                },
                () = &mut drained, if !draining => {
                    draining = true;
                    if self.ending.is_none() {
                        tracing::info!("draining: ending the call");
                        self.end_politely(EndReason::Shutdown).await;
                    }
                }
                () = &mut timer => {
                    if let Some(reason) = self.on_timer(max_duration).await {
                        return reason;
                    }
                }
            }
        }
    }

    /// Handles `frame` and whatever else has already arrived, a few at a time so the
    /// session's events are not held up behind a backlog. `Ok(true)` when it caught
    /// up with the socket (the next message has not arrived yet); `Err` when the call
    /// ended.
    async fn on_frames<I>(&mut self, inbound: &mut I, mut frame: Option<WsFrame>) -> Result<bool, EndReason>
    where
        I: Stream<Item = WsFrame> + Unpin,
    {
        let mut taken = 0;
        loop {
            let Some(this) = frame else {
                return Err(self.ending.unwrap_or(EndReason::StreamDropped));
            };
            let started = Instant::now();
            let ended = self.on_frame(this).await;
            self.env.metrics.observe_frame_handling(started.elapsed().as_secs_f64());
            if let Some(reason) = ended {
                return Err(reason);
            }
            taken += 1;
            if !self.socket_ok || taken == MAX_FRAMES_PER_READ {
                return Ok(false);
            }
            match inbound.next().now_or_never() {
                Some(more) => frame = more,
                None => return Ok(true),
            }
        }
    }

    async fn on_connected(&mut self, result: Result<Result<S, ConnectError>, tokio::time::error::Elapsed>) {
        let error = match result {
            Ok(Ok(session)) => {
                tracing::info!(provider = session.provider(), "speech session open");
                self.vad.keep_utterances(session.wants_utterances());
                self.session = Link::Live(session);
                if self.ending.is_none() && matches!(self.mode, Mode::Conversation) {
                    let greeting = self.greeting();
                    self.say(&greeting).await;
                }
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "{} did not connect within {} s",
                self.env.config.voice.provider.as_str(),
                self.env.timings.connect_timeout.as_secs()
            ),
        };
        tracing::error!(error = %error, "speech provider unavailable; apologizing and hanging up");
        self.session = Link::Gone;
        self.speaking_line = false;
        self.env.metrics.provider_failure("unavailable");
        self.errors.push(error);
        self.apologize(EndReason::ProviderUnavailable).await;
    }

    /// The provider failed during the call: the caller hears the apology (unless the
    /// call is already ending) and the call is hung up.
    async fn provider_lost(&mut self, reason: String) {
        self.session = Link::Gone;
        if self.ending.is_some() {
            // The goodbye may have been cut; what was queued still plays.
            tracing::warn!(error = %reason, "speech session ended while the call was ending");
            self.speaking_line = false;
            if let Some(turn) = &mut self.turn {
                turn.generated = true;
            }
            self.try_act().await;
            return;
        }
        tracing::error!(error = %reason, "speech provider failed; apologizing and hanging up");
        self.env.metrics.provider_failure("error");
        self.errors.push(reason);
        self.apologize(EndReason::ProviderError).await;
    }

    async fn apologize(&mut self, reason: EndReason) {
        // A turn the provider finished plays out; one it was still generating is cut.
        if self.turn.as_ref().is_some_and(|t| !t.generated) {
            self.cut_agent(false).await;
        }
        self.ending = Some(reason);
        self.after_playback = Some((AfterPlayback::HangUp(reason), Instant::now() + self.env.timings.playback_slack));
        let line = self.env.phrases.provider_apology.clone();
        self.say_in_own_voice(&line).await;
    }

    fn next_deadline(&self, max_duration: Instant) -> Instant {
        let mut next = if self.ending.is_none() { max_duration } else { Instant::now() + Duration::from_secs(3600) };
        if let Some((_, at)) = self.after_playback {
            next = next.min(at);
        }
        if let Some(at) = self.hung_up_at {
            next = next.min(at + self.env.timings.stop_wait);
        }
        if let Mode::Voicemail { until, .. } = &self.mode {
            next = next.min(*until);
        }
        if let Mode::Screening(screening) = &self.mode {
            next = next.min(screening.until);
        }
        if let Some(at) = self.idle_deadline() {
            next = next.min(at);
        }
        next
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let idle = Duration::from_secs(u64::from(self.env.config.idle_prompt_after_secs));
        // A turn end the provider never answered (noise, say) stops holding idle back.
        let awaiting = self.awaiting_reply_since.is_some_and(|at| at.elapsed() < idle);
        let quiet = self.ending.is_none()
            && matches!(self.session, Link::Live(_))
            && matches!(self.mode, Mode::Conversation)
            && !self.playback.is_playing()
            && !self.caller_speaking
            && !awaiting
            && !self.speaking_line
            && self.turn.as_ref().is_none_or(|t| t.generated);
        quiet.then(|| self.last_activity.max(self.awaiting_reply_since.unwrap_or(self.last_activity)) + idle)
    }

    async fn on_timer(&mut self, max_duration: Instant) -> Option<EndReason> {
        let now = Instant::now();
        if let Some(at) = self.hung_up_at {
            if now >= at + self.env.timings.stop_wait {
                // Twilio did not send `stop`; closing the socket ends the call anyway.
                return Some(self.ending.unwrap_or(EndReason::EndCall));
            }
        }
        if let Some((action, at)) = self.after_playback {
            if now >= at {
                tracing::warn!("marks not echoed in time; acting on the queued audio as played");
                self.after_playback = None;
                self.act(action).await;
            }
        }
        if let Mode::Voicemail { until, .. } = &self.mode {
            if now >= *until && self.hung_up_at.is_none() {
                self.ending = Some(EndReason::Voicemail);
                self.hang_up().await;
            }
        }
        if let Mode::Screening(screening) = &self.mode {
            if now >= screening.until {
                tracing::warn!("no answering machine detection result in time; going on as if a person answered");
                self.on_answered("timeout".into()).await;
            }
        }
        if self.ending.is_none() && now >= max_duration {
            tracing::info!("maximum session duration reached");
            self.end_politely(EndReason::MaxDuration).await;
        }
        if self.idle_deadline().is_some_and(|at| now >= at) {
            self.idle_prompts += 1;
            self.last_activity = now;
            self.awaiting_reply_since = None;
            if self.idle_prompts == 1 {
                let line = self.env.phrases.idle_prompt.clone();
                self.say(&line).await;
            } else {
                let line = self.env.phrases.idle_goodbye.clone();
                self.end_with(EndReason::Idle, &line).await;
            }
        }
        None
    }

    /// Who answered the outbound call: a person gets the greeting and the
    /// conversation; a machine the voicemail message and a hang-up; a fax a hang-up.
    async fn on_answered(&mut self, answered_by: String) {
        if !matches!(self.mode, Mode::Screening(_)) {
            return;
        }
        self.mode = Mode::Conversation;
        let who = amd::AnsweredBy::parse(&answered_by);
        tracing::info!(answered_by = %answered_by, "answering machine detection");
        self.id.answered_by = Some(answered_by);
        self.last_activity = Instant::now();
        if self.ending.is_some() {
            return;
        }
        match who {
            amd::AnsweredBy::Human | amd::AnsweredBy::Unknown => {
                // Without a session yet, the greeting comes when it connects.
                if matches!(self.session, Link::Live(_)) {
                    let greeting = self.greeting();
                    self.say(&greeting).await;
                }
            }
            amd::AnsweredBy::Machine => {
                // Exactly the configured words: the runtime's own voice, not the model's.
                self.ending = Some(EndReason::AnsweringMachine);
                self.after_playback = Some((
                    AfterPlayback::HangUp(EndReason::AnsweringMachine),
                    Instant::now() + self.env.timings.playback_slack,
                ));
                let message = self.env.phrases.voicemail_message.clone();
                self.say_in_own_voice(&message).await;
            }
            amd::AnsweredBy::Fax => {
                self.ending = Some(EndReason::AnsweringMachine);
                self.hang_up().await;
            }
        }
    }

    /// Asks the session to say `line`; without one, says it in the runtime's voice.
    async fn say(&mut self, line: &str) {
        match &mut self.session {
            Link::Live(session) => {
                session.speak(line);
                self.speaking_line = true;
            }
            Link::Connecting | Link::Gone => self.say_in_own_voice(line).await,
        }
    }

    /// Says `line` with the runtime's own synthesizer (its phrases are cached at
    /// start-up), as an agent turn of its own.
    async fn say_in_own_voice(&mut self, line: &str) {
        self.close_turn();
        for sentence in sentences(line) {
            match self.env.voice.synthesize(&sentence).await {
                Ok(ulaw) => {
                    self.agent_text(sentence);
                    self.agent_audio(&ulaw).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the runtime's own voice failed");
                    self.errors.push(format!("own voice: {e}"));
                    break;
                }
            }
        }
        self.agent_turn_end().await;
    }

    /// Interrupts whatever the agent is saying and says the line for `reason`, then
    /// hangs up.
    async fn end_politely(&mut self, reason: EndReason) {
        if self.ending.is_some() {
            return;
        }
        let line = match reason {
            EndReason::MaxDuration => self.env.phrases.time_limit.clone(),
            EndReason::MaxTurns => self.env.phrases.turn_limit.clone(),
            EndReason::Guardrail => self.env.phrases.guardrail_end.clone(),
            EndReason::Idle => self.env.phrases.idle_goodbye.clone(),
            _ => self.env.phrases.shutting_down.clone(),
        };
        self.end_with(reason, &line).await;
    }

    /// Says `line` as a turn of its own and hangs up once it has been played.
    async fn end_with(&mut self, reason: EndReason, line: &str) {
        if self.playback.is_playing() || self.turn.as_ref().is_some_and(|t| !t.generated) {
            self.cut_agent(false).await;
        } else if let Link::Live(session) = &mut self.session {
            // A reply being prepared (nothing of it sent yet) is dropped too.
            session.interrupt(Duration::ZERO);
        }
        self.ending = Some(reason);
        self.close_turn();
        // Acted on when the goodbye has been generated and played.
        self.after_playback = Some((AfterPlayback::HangUp(reason), Instant::now() + Duration::from_secs(15)));
        self.say(line).await;
    }

    async fn on_frame(&mut self, frame: WsFrame) -> Option<EndReason> {
        let WsFrame::Text(text) = frame else { return None };
        // The hot path: 50 media messages a second.
        if text.len() <= MAX_MESSAGE_BYTES {
            if let Ok(m) = serde_json::from_str::<crate::media::MediaRef<'_>>(&text) {
                if m.event == "media" {
                    match (m.stream_sid.as_deref(), m.media) {
                        (Some(sid), Some(media)) if sid == self.id.stream_sid => {
                            self.on_payload(&media.payload).await;
                        }
                        _ => self.count_malformed(),
                    }
                    return None;
                }
            }
        }
        let Some(message) = parse(&text) else {
            self.count_malformed();
            return None;
        };
        match message {
            Inbound::Media { media, stream_sid, .. } => {
                if stream_sid != self.id.stream_sid {
                    self.count_malformed();
                    return None;
                }
                self.on_payload(&media.payload).await;
            }
            Inbound::Mark { mark, .. } => {
                if self.playback.echoed(&mark.name) && !self.playback.is_playing() {
                    self.last_activity = Instant::now();
                    self.try_act().await;
                }
            }
            Inbound::Dtmf { dtmf, .. } => {
                tracing::info!(digit = %dtmf.digit, "dtmf");
                let at_ms = self.now_ms();
                self.dtmf.push(DtmfRecord { digit: dtmf.digit.chars().take(4).collect(), at_ms });
                self.last_activity = Instant::now();
            }
            Inbound::Stop { .. } => {
                tracing::info!("stream stopped by twilio");
                return Some(match (self.ending, &self.mode) {
                    (Some(reason), _) => reason,
                    (None, Mode::Voicemail { .. }) => EndReason::Voicemail,
                    (None, _) => EndReason::CallerHungUp,
                });
            }
            Inbound::Connected { .. } | Inbound::Start { .. } => {
                tracing::warn!("repeated connected/start ignored");
                self.count_malformed();
            }
        }
        None
    }

    fn count_malformed(&mut self) {
        self.malformed += 1;
        self.env.metrics.malformed_messages.fetch_add(1, Ordering::Relaxed);
    }

    /// A media payload (base64 μ-law of any length).
    async fn on_payload(&mut self, payload: &str) {
        let mut ulaw = std::mem::take(&mut self.caller_ulaw);
        ulaw.clear();
        match base64::engine::general_purpose::STANDARD.decode_vec(payload.as_bytes(), &mut ulaw) {
            Ok(()) if !ulaw.is_empty() => self.on_media(&ulaw).await,
            Ok(()) => {}
            Err(_) => self.count_malformed(),
        }
        self.caller_ulaw = ulaw;
    }

    async fn on_media(&mut self, ulaw: &[u8]) {
        self.frames_in += 1;
        self.env.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
        if let Some(rec) = &mut self.recorder {
            self.playback.heard(&mut self.heard, ulaw.len());
            if let Err(e) = rec.write_frame(ulaw, Some(&self.heard)) {
                let at = self.now_ms();
                self.errors.push(format!("recording: {e}"));
                let rec = self.recorder.take().expect("the recorder just written to");
                if matches!(e, RecordError::SpoolFull { .. }) {
                    // What was recorded is kept; the call goes on.
                    tracing::warn!(error = %e, at_ms = at, "the call recording stopped at the spool's cap");
                    self.env.metrics.recordings_cut.fetch_add(1, Ordering::Relaxed);
                    self.recording_cut_at_ms = Some(at);
                    self.recording_kept = rec.finish().ok();
                } else {
                    tracing::error!(error = %e, "write the call recording; recording stopped");
                }
            }
        }
        if let Mode::Voicemail { recorder: Some(rec), until } = &mut self.mode {
            if let Err(e) = rec.write_frame(ulaw, None) {
                let until = *until;
                self.errors.push(format!("voicemail: {e}"));
                if let Mode::Voicemail { recorder: Some(rec), .. } =
                    std::mem::replace(&mut self.mode, Mode::Voicemail { recorder: None, until })
                {
                    if matches!(e, RecordError::SpoolFull { .. }) {
                        tracing::warn!(error = %e, "the voicemail stopped at the spool's cap");
                        self.env.metrics.recordings_cut.fetch_add(1, Ordering::Relaxed);
                        self.voicemail_kept = rec.finish().ok();
                    } else {
                        tracing::error!(error = %e, "write the voicemail");
                    }
                }
            }
            return;
        }
        if !matches!(self.mode, Mode::Conversation) {
            return;
        }
        self.caller_pcm.clear();
        crate::audio::decode_into(ulaw, &mut self.caller_pcm);
        self.turn_events.clear();
        self.vad.push(&self.caller_pcm, &mut self.turn_events);
        for event in &self.turn_events {
            match event {
                TurnEvent::SpeechStarted => {
                    self.caller_speaking = true;
                    self.caller_turn_started.get_or_insert(self.t0.elapsed().as_millis() as u64);
                    self.idle_prompts = 0;
                    self.last_activity = Instant::now();
                }
                TurnEvent::TurnEnded(_) => {
                    self.caller_speaking = false;
                    self.last_activity = Instant::now();
                }
            }
        }
        let barge = self.turn_events.contains(&TurnEvent::SpeechStarted) && self.playback.is_playing();
        if let Link::Live(session) = &mut self.session {
            session.push_audio(CallerAudio { ulaw, pcm: &self.caller_pcm, turn: &self.turn_events });
        }
        if barge && self.ending.is_none() {
            self.barge_in().await;
        }
    }

    async fn on_speech(&mut self, event: SpeechEvent) {
        match event {
            SpeechEvent::CallerSpeechStarted => {
                self.caller_turn_started.get_or_insert(self.now_ms());
                self.idle_prompts = 0;
                self.last_activity = Instant::now();
                if self.ending.is_none() && self.playback.is_playing() {
                    self.barge_in().await;
                }
            }
            SpeechEvent::CallerTurnEnded { item, at } => {
                let end_ms = self.now_ms().saturating_sub(at.elapsed().as_millis() as u64);
                let start_ms = self.caller_turn_started.take().unwrap_or(end_ms).min(end_ms);
                self.pending_text.expect(item, self.turns.len());
                self.turns.push(Turn {
                    role: Role::Caller,
                    text: String::new(),
                    start_ms,
                    end_ms,
                    interrupted: false,
                    tool_calls: Vec::new(),
                });
                self.last_activity = Instant::now();
                if self.ending.is_some() || !matches!(self.mode, Mode::Conversation) {
                    return;
                }
                self.caller_turns += 1;
                self.awaiting_reply_since = Some(at);
                if self.caller_turns >= self.env.config.guardrails.max_conversation_turns {
                    tracing::info!("maximum conversation turns reached");
                    self.end_politely(EndReason::MaxTurns).await;
                }
            }
            SpeechEvent::CallerText { item, text } => {
                tracing::info!(text = %text, "caller turn");
                match self.pending_text.take(&item) {
                    Some(index) => self.turns[index].text = text.clone(),
                    None => {
                        // A turn the provider heard and never announced.
                        let at = self.now_ms();
                        self.turns.push(Turn {
                            role: Role::Caller,
                            text: text.clone(),
                            start_ms: self.caller_turn_started.take().unwrap_or(at),
                            end_ms: at,
                            interrupted: false,
                            tool_calls: Vec::new(),
                        });
                    }
                }
                if self.ending.is_some() || !matches!(self.mode, Mode::Conversation) {
                    return;
                }
                if self.env.guardrails.classify(&text) == Verdict::Inappropriate {
                    self.inappropriate += 1;
                    if self.inappropriate > self.env.guardrails.max_inappropriate {
                        tracing::info!(count = self.inappropriate, "guardrail: too many inappropriate turns");
                        self.end_politely(EndReason::Guardrail).await;
                    }
                }
            }
            SpeechEvent::AgentText(text) => {
                if self.guard_agent_text(&text).await {
                    self.agent_text(text);
                }
            }
            SpeechEvent::AgentTextFinal(text) => {
                if let Some(turn) = &mut self.turn {
                    let kept = turn.final_text.get_or_insert_with(String::new);
                    if !kept.is_empty() {
                        kept.push(' ');
                    }
                    kept.push_str(text.trim());
                }
            }
            SpeechEvent::AgentDraft(text) => {
                self.guard_agent_text(&text).await;
            }
            SpeechEvent::AgentAudio { ulaw, received } => {
                self.agent_audio(&ulaw).await;
                self.env.metrics.observe_agent_audio(received.elapsed().as_secs_f64());
            }
            SpeechEvent::Tool { id, call } => self.on_tool(id, call).await,
            SpeechEvent::AgentTurnEnd => self.agent_turn_end().await,
            SpeechEvent::Usage { input_tokens, output_tokens } => {
                self.input_tokens += input_tokens;
                self.output_tokens += output_tokens;
            }
            SpeechEvent::Error(e) => {
                tracing::error!(error = %e, "speech provider error");
                self.env.metrics.provider_errors.fetch_add(1, Ordering::Relaxed);
                self.errors.push(e);
            }
            SpeechEvent::Failed(reason) => self.provider_lost(reason).await,
        }
    }

    /// Checks agent text against the guardrails before it is heard; an off-limits
    /// reply is cut, counted, and replaced by the agent's refusal. Returns whether the
    /// text may stand.
    async fn guard_agent_text(&mut self, text: &str) -> bool {
        let Verdict::OffLimits { rule } = self.env.guardrails.classify(text) else { return true };
        if self.ending.is_some() {
            return true;
        }
        tracing::warn!(rule = %rule, "guardrail: the agent's reply broke a rule and was cut");
        self.guardrail_cuts += 1;
        self.env.metrics.guardrail_cuts.fetch_add(1, Ordering::Relaxed);
        self.errors.push(format!("agent reply cut by the rule {rule:?}"));
        self.cut_agent(false).await;
        let line = self.env.phrases.off_limits.clone();
        self.say(&line).await;
        false
    }

    /// Opens the agent's turn if none is being generated.
    fn open_turn(&mut self) -> &mut AgentTurn {
        if self.turn.as_ref().is_none_or(|t| t.generated) {
            self.close_turn();
            self.agent_turns += 1;
            self.turn = Some(AgentTurn::new(self.now_ms(), self.playback.position_ms()));
        }
        self.turn.as_mut().expect("a turn was just opened")
    }

    fn agent_text(&mut self, text: String) {
        let at = self.playback.position_ms();
        self.open_turn().texts.push((at, text));
    }

    async fn agent_audio(&mut self, ulaw: &[u8]) {
        if ulaw.is_empty() {
            return;
        }
        let turn = self.open_turn();
        let first = !turn.audible;
        turn.audible = true;
        if first {
            if let Some(since) = self.awaiting_reply_since.take() {
                let latency = since.elapsed();
                self.latencies.push(latency.as_millis() as u64);
                self.env.metrics.observe_turn_latency(latency.as_secs_f64());
            }
        }
        self.send_audio(ulaw, false).await;
        let at = self.playback.position_ms();
        if let Some(turn) = &mut self.turn {
            turn.audio_end = at;
        }
        if let Some((_, at)) = &mut self.after_playback {
            *at = (*at).max(
                Instant::now() + Duration::from_millis(self.playback.queued_ms()) + self.env.timings.playback_slack,
            );
        }
    }

    async fn agent_turn_end(&mut self) {
        self.awaiting_reply_since = None;
        self.speaking_line = false;
        // The last piece shorter than a frame goes out now.
        self.send_audio(&[], true).await;
        let at = self.playback.position_ms();
        if let Some(turn) = &mut self.turn {
            turn.generated = true;
            turn.audio_end = turn.audio_end.max(at);
        }
        if !self.playback.is_playing() {
            self.last_activity = Instant::now();
            self.try_act().await;
        }
    }

    /// Sends audio as 20 ms media messages, with a mark every [`FRAMES_PER_MARK`]
    /// frames and after the last one; with `flush`, a last short frame is padded.
    async fn send_audio(&mut self, mut ulaw: &[u8], flush: bool) {
        let first = self.frames_out == 0;
        let mut any = false;
        while let Some(frame) = self.playback.next_frame(&mut ulaw, flush) {
            any = true;
            write_media_json(&mut self.json, &self.id.stream_sid, &frame);
            let json = std::mem::take(&mut self.json);
            if self.out.feed(json).await.is_err() {
                self.socket_ok = false;
                return;
            }
            self.json = String::with_capacity(512);
            self.frames_out += 1;
            self.env.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
            self.playback.sent(&frame);
            if self.playback.frames_since_mark >= FRAMES_PER_MARK {
                self.send_mark().await;
            }
        }
        if !any {
            return;
        }
        if self.playback.frames_since_mark > 0 {
            self.send_mark().await;
        }
        if self.out.flush().await.is_err() {
            self.socket_ok = false;
        } else if first {
            self.env.metrics.observe_greeting(self.t0.elapsed().as_secs_f64());
        }
    }

    async fn send_mark(&mut self) {
        let name = self.playback.mark();
        let mark = Outbound::Mark { stream_sid: self.id.stream_sid.clone(), mark: crate::media::MarkInfo { name } };
        let json = serde_json::to_string(&mark).expect("outbound messages serialize");
        if self.out.feed(json).await.is_err() {
            self.socket_ok = false;
        }
    }

    /// The caller spoke over the agent.
    async fn barge_in(&mut self) {
        self.interruptions += 1;
        self.cut_agent(true).await;
    }

    /// Drops queued agent audio (one `clear`), tells the session how much of its turn
    /// was played, and keeps the turn as far as it was played.
    async fn cut_agent(&mut self, by_caller: bool) {
        let clear = Outbound::Clear { stream_sid: self.id.stream_sid.clone() };
        let json = serde_json::to_string(&clear).expect("outbound messages serialize");
        if self.out.send(json).await.is_err() {
            self.socket_ok = false;
        }
        let played = self.playback.clear();
        let turn = self.turn.take();
        let in_turn = turn.as_ref().map_or(0, |t| played.saturating_sub(t.audio_start));
        if let Link::Live(session) = &mut self.session {
            session.interrupt(Duration::from_millis(in_turn));
        }
        if let Some(turn) = turn {
            tracing::info!(played_ms = in_turn, by_caller, "agent turn cut");
            self.turns.push(turn.cut_at(played));
        }
        self.awaiting_reply_since = None;
        self.speaking_line = false;
    }

    fn close_turn(&mut self) {
        if let Some(turn) = self.turn.take() {
            if turn.audible || !turn.texts.is_empty() || !turn.tool_calls.is_empty() {
                self.turns.push(turn.full());
            }
        }
    }

    async fn on_tool(&mut self, id: String, tool: ToolCall) {
        tracing::info!(tool = tool.name(), id = %id, "tool call");
        let outcome = match &tool {
            ToolCall::EndCall => {
                self.schedule(AfterPlayback::HangUp(EndReason::EndCall));
                ToolOutcome::ok()
            }
            ToolCall::TransferCall => {
                if self.env.config.telephony.transfer_phone_number.is_some() {
                    self.schedule(AfterPlayback::Transfer);
                    ToolOutcome::ok()
                } else {
                    ToolOutcome::failed("no transfer number configured")
                }
            }
            ToolCall::Voicemail => {
                self.schedule(AfterPlayback::StartVoicemail);
                ToolOutcome::ok()
            }
            ToolCall::ScheduleCallback { requested_time, at } => {
                let integrations = &self.env.config.integrations;
                if let Some(url) = integrations.make_endpoint.as_ref().or(integrations.webhook_endpoint.as_ref()) {
                    let body = json!({
                        "event": "callback_requested",
                        "agent_id": self.env.agent_id,
                        "tenant_id": self.env.tenant_id,
                        "call_sid": self.id.call_sid,
                        "caller": self.callee(),
                        "requested_time": requested_time,
                    });
                    self.spawn_webhook("schedule_callback", url.as_str().to_owned(), body);
                }
                match (&self.env.control_plane, self.callee()) {
                    (Some(control_plane), Some(to)) => {
                        // The control plane's answer comes back to the loop; the
                        // session hears it then.
                        let request = crate::callbacks::CallbackRequest {
                            call_sid: self.id.call_sid.clone(),
                            to,
                            requested_time: requested_time.clone(),
                            at: at.clone(),
                            context: self.caller_context(),
                        };
                        let control_plane = Arc::clone(control_plane);
                        let metrics = Arc::clone(&self.env.metrics);
                        self.pending_tools.push(Box::pin(async move {
                            let outcome = match control_plane.schedule(&request).await {
                                Ok(scheduled) => {
                                    tracing::info!(callback_id = %scheduled.id, due_at = %scheduled.due_at, "callback scheduled");
                                    metrics.callback_reported(true);
                                    ToolOutcome::told(true, format!(
                                        "The callback is scheduled for {}.",
                                        agent_spec::callbacks::describe(scheduled.due_at)
                                    ))
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "the callback could not be scheduled");
                                    metrics.callback_reported(false);
                                    ToolOutcome::told(false, format!("I am sorry, I could not arrange the callback: {e}."))
                                }
                            };
                            (id, tool, outcome)
                        }));
                        return;
                    }
                    (Some(_), None) => {
                        ToolOutcome::told(false, "I am sorry, I cannot arrange a callback: your number is withheld.")
                    }
                    (None, _) if integrations.make_endpoint.is_some() || integrations.webhook_endpoint.is_some() => {
                        ToolOutcome::ok()
                    }
                    (None, _) => ToolOutcome::told(false, "I am sorry, I cannot arrange callbacks on this line."),
                }
            }
        };
        self.tool_done(id, tool, outcome);
    }

    /// The person on the other end: the caller of an inbound call, the callee of an
    /// outbound one.
    fn callee(&self) -> Option<String> {
        let outbound = self.id.direction.as_deref().is_some_and(|d| d.starts_with("outbound"));
        let number = if outbound { &self.id.to } else { &self.id.from };
        number.clone().filter(|n| n.starts_with('+'))
    }

    /// What the caller has said so far, the latest last, for a callback to carry
    /// (the last [`crate::callbacks::CONTEXT_MAX_CHARS`] characters).
    fn caller_context(&self) -> String {
        let said: Vec<&str> = self
            .turns
            .iter()
            .filter(|t| t.role == Role::Caller && !t.text.is_empty())
            .map(|t| t.text.as_str())
            .collect();
        let all = said.join(" / ");
        let skip = all.chars().count().saturating_sub(crate::callbacks::CONTEXT_MAX_CHARS);
        all.chars().skip(skip).collect()
    }

    /// The greeting; a callback the callee asked for says so.
    fn greeting(&self) -> String {
        let greeting = &self.env.phrases.greeting;
        match self.id.metadata.as_ref().and_then(|m| m.get("callback")) {
            Some(_) => format!("{greeting} I am calling you back, as you asked on your earlier call."),
            None => greeting.clone(),
        }
    }

    /// A tool call's outcome goes back to the session and into the transcript.
    fn tool_done(&mut self, id: String, tool: ToolCall, outcome: ToolOutcome) {
        if let Link::Live(session) = &mut self.session {
            session.tool_result(&id, &outcome);
        }
        let record = ToolCallRecord { call: tool, result: outcome.message };
        if let Some(turn) = &mut self.turn {
            turn.tool_calls.push(record);
        } else if let Some(Turn { role: Role::Agent, tool_calls, .. }) = self.turns.last_mut() {
            tool_calls.push(record);
        } else {
            self.open_turn().tool_calls.push(record);
        }
    }

    fn schedule(&mut self, action: AfterPlayback) {
        if let AfterPlayback::HangUp(reason) = action {
            self.ending.get_or_insert(reason);
        }
        if action == AfterPlayback::Transfer {
            self.ending.get_or_insert(EndReason::Transferred);
        }
        let at = Instant::now() + Duration::from_millis(self.playback.queued_ms()) + self.env.timings.playback_slack;
        self.after_playback = Some((action, at));
    }

    /// Runs the pending action if the agent has finished generating and Twilio has
    /// played everything.
    async fn try_act(&mut self) {
        let generated = self.turn.as_ref().is_none_or(|t| t.generated)
            && self.awaiting_reply_since.is_none()
            && !self.speaking_line;
        if !generated || self.playback.is_playing() {
            return;
        }
        if let Some((action, _)) = self.after_playback.take() {
            self.act(action).await;
        }
    }

    async fn act(&mut self, action: AfterPlayback) {
        match action {
            AfterPlayback::HangUp(reason) => {
                self.ending.get_or_insert(reason);
                self.hang_up().await;
            }
            AfterPlayback::Transfer => {
                let number = self.env.config.telephony.transfer_phone_number.as_ref().map(|n| n.as_str().to_owned());
                let Some(number) = number else { return };
                tracing::info!(to = %number, "transferring the call");
                let twiml = crate::twiml::dial(&number);
                if let Err(e) = self.env.telephony.redirect(&self.id.call_sid, &twiml).await {
                    self.telephony_failed(e);
                }
                self.hung_up_at = Some(Instant::now());
            }
            AfterPlayback::StartVoicemail => {
                self.close_turn();
                let path = self.env.artifacts.scratch_path(&self.id.call_sid, "voicemail.wav");
                let recorder = match Recorder::create(path, 1, self.env.artifacts.disk()) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        self.errors.push(format!("voicemail: {e}"));
                        None
                    }
                };
                self.mode = Mode::Voicemail { recorder, until: Instant::now() + self.env.timings.voicemail_max };
                self.ending = None;
                self.send_audio(&beep(), true).await;
                tracing::info!("voicemail: recording the caller");
            }
        }
    }

    async fn hang_up(&mut self) {
        if self.hung_up_at.is_some() {
            return;
        }
        tracing::info!(reason = self.ending.map(EndReason::as_str), "hanging up");
        if let Err(e) = self.env.telephony.hang_up(&self.id.call_sid).await {
            self.telephony_failed(e);
        }
        self.hung_up_at = Some(Instant::now());
    }

    fn telephony_failed(&mut self, e: TelephonyError) {
        if matches!(e, TelephonyError::CallEnded) {
            // The caller hung up first: Twilio's `stop` follows.
            tracing::info!("the call had already ended at Twilio");
            return;
        }
        tracing::error!(error = %e, "twilio call control failed; closing the stream ends the call");
        self.env.metrics.telephony_errors.fetch_add(1, Ordering::Relaxed);
        self.errors.push(e.to_string());
    }

    fn spawn_webhook(&mut self, kind: &'static str, url: String, body: serde_json::Value) {
        let handle = self.env.webhooks.spawn(&self.env.tasks, &self.env.metrics, kind, url, body);
        self.webhook_results.push(handle);
    }
}

/// A 400 ms 1 kHz tone, the voicemail beep.
fn beep() -> Vec<u8> {
    (0..3200)
        .map(|n| {
            let v = (n as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 8000.0).sin() * 8000.0;
            crate::audio::ulaw_encode(v as i16)
        })
        .collect()
}
