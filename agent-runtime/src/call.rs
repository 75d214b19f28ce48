//! One call: the Media Streams conversation between Twilio and a speech session.
//!
//! [`run_call`] is written over a `Stream` of incoming text frames and a `Sink` of
//! outgoing ones, so tests drive it through channels and the server through a
//! WebSocket. It owns the conversation rules that hold whatever the provider:
//!
//! - the greeting is asked for as soon as `start` arrives;
//! - agent audio goes out in 20 ms frames with a `mark` every 200 ms and at the end of
//!   each chunk; Twilio echoes a mark when the audio before it has been played, so the
//!   last echo is the played position;
//! - barge-in: the caller starts speaking while agent audio is queued → `clear`, the
//!   session stops generating, and the agent's turn is cut at the played position;
//! - idle prompt after the configured silence, goodbye after a second one; maximum
//!   duration and turns; guardrails; DTMF into the transcript;
//! - tools: `end_call` and `transfer_call` act through [`TelephonyControl`] once the
//!   agent's last words have been played, `voicemail` records the caller, and
//!   `schedule_callback` is posted to the agent's scheduling webhook;
//! - whatever happens on the wire (malformed JSON, wrong order, huge frames, a dropped
//!   socket), the call ends with its artifacts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use agent_spec::AgentConfig;
use base64::Engine;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::artifacts::{
    ArtifactStore, CallArtifacts, CallMetadata, DtmfRecord, Recorder, Role, ToolCallRecord, Transcript, Turn,
    WebhookDelivery,
};
use crate::audio::{FRAME_MS, FRAME_SAMPLES, ULAW_SILENCE};
use crate::guardrails::{Guardrails, Verdict};
use crate::media::{Inbound, Outbound, write_media_json};
use crate::metrics::Metrics;
use crate::phrases::Phrases;
use crate::speech::{SpeechEvent, SpeechSession, ToolCall};
use crate::telephony::TelephonyControl;
use crate::webhooks::WebhookSender;

/// A frame from the WebSocket, as the call loop sees it.
#[derive(Debug, Clone)]
pub enum WsFrame {
    Text(String),
    /// Binary, ping, pong: not part of Media Streams.
    Other,
}

/// Largest text message handled; longer ones are counted as malformed.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Frames between marks.
const FRAMES_PER_MARK: u32 = 10;

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
}

impl Default for CallTimings {
    fn default() -> Self {
        Self {
            start_timeout: Duration::from_secs(10),
            voicemail_max: Duration::from_secs(120),
            stop_wait: Duration::from_secs(5),
            playback_slack: Duration::from_secs(3),
        }
    }
}

/// What every call of the agent shares.
pub struct CallEnv {
    pub agent_id: String,
    pub tenant_id: String,
    pub config: AgentConfig,
    pub phrases: Phrases,
    pub guardrails: Guardrails,
    pub telephony: Arc<dyn TelephonyControl>,
    pub webhooks: WebhookSender,
    pub artifacts: Arc<ArtifactStore>,
    pub metrics: Arc<Metrics>,
    /// Background work of calls (webhooks) that must finish before the process exits.
    pub tasks: TaskTracker,
    /// Calls the webhook answered whose stream has not started yet.
    pub answered: AnsweredCalls,
    pub timings: CallTimings,
}

/// When the webhook answered a call, and its pickup webhook if one was fired.
type Answered = (Instant, Option<tokio::task::JoinHandle<WebhookDelivery>>);

/// How long a webhook's answer holds a call slot before its stream arrives.
const ANSWER_HOLDS_SLOT: Duration = Duration::from_secs(15);

/// Calls the voice webhook answered and whose stream has not started: each holds a
/// call slot (the webhook and the stream may reach different tasks, and a caller may
/// hang up before the stream starts, so a slot is held for [`ANSWER_HOLDS_SLOT`] at
/// most) and, if one was fired, its pickup webhook, for the call's metadata.
#[derive(Default)]
pub struct AnsweredCalls {
    calls: std::sync::Mutex<std::collections::HashMap<String, Answered>>,
}

impl AnsweredCalls {
    /// Holds a slot for `call_sid` unless `live` calls plus those answered reach `max`.
    pub fn reserve(&self, call_sid: &str, live: usize, max: usize) -> bool {
        let mut calls = self.calls.lock().expect("answered calls lock");
        calls.retain(|_, (at, _)| at.elapsed() < ANSWER_HOLDS_SLOT);
        if live + calls.len() >= max {
            return false;
        }
        calls.insert(call_sid.to_owned(), (Instant::now(), None));
        true
    }

    pub fn attach_pickup(&self, call_sid: &str, pickup: tokio::task::JoinHandle<WebhookDelivery>) {
        if let Some(entry) = self.calls.lock().expect("answered calls lock").get_mut(call_sid) {
            entry.1 = Some(pickup);
        }
    }

    /// The stream started: the slot is now a live call; returns the pickup webhook.
    fn stream_started(&self, call_sid: &str) -> Option<tokio::task::JoinHandle<WebhookDelivery>> {
        self.calls.lock().expect("answered calls lock").remove(call_sid).and_then(|(_, pickup)| pickup)
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CallerHungUp,
    EndCall,
    Transferred,
    Voicemail,
    Idle,
    MaxDuration,
    MaxTurns,
    Guardrail,
    Shutdown,
    StreamDropped,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallerHungUp => "caller_hung_up",
            Self::EndCall => "end_call",
            Self::Transferred => "transferred",
            Self::Voicemail => "voicemail",
            Self::Idle => "idle",
            Self::MaxDuration => "max_duration",
            Self::MaxTurns => "max_turns",
            Self::Guardrail => "guardrail",
            Self::Shutdown => "shutdown",
            Self::StreamDropped => "stream_dropped",
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

/// What Twilio has been sent and has played.
struct Playback {
    sent_ms: u64,
    played_ms: u64,
    /// Marks sent and not yet echoed: (sequence, agent-audio ms at the mark).
    marks: VecDeque<(u64, u64)>,
    next_mark: u64,
    /// Echoes of marks below this were cleared, not played.
    cleared_below: u64,
    frames_since_mark: u32,
    /// A model of Twilio's playback buffer, for the agent side of the recording;
    /// kept only when the call is recorded.
    buffer: Option<VecDeque<u8>>,
}

impl Playback {
    fn new(recorded: bool) -> Self {
        Self {
            sent_ms: 0,
            played_ms: 0,
            marks: VecDeque::new(),
            next_mark: 0,
            cleared_below: 0,
            frames_since_mark: 0,
            buffer: recorded.then(VecDeque::new),
        }
    }

    fn is_playing(&self) -> bool {
        !self.marks.is_empty()
    }

    fn queued_ms(&self) -> u64 {
        self.sent_ms.saturating_sub(self.played_ms)
    }

    /// A mark came back; returns whether it moved the played position.
    fn echoed(&mut self, name: &str) -> bool {
        let Some(seq) = name.strip_prefix('m').and_then(|s| s.parse::<u64>().ok()) else { return false };
        if seq < self.cleared_below {
            return false;
        }
        let mut moved = false;
        while let Some(&(s, at)) = self.marks.front() {
            if s > seq {
                break;
            }
            self.marks.pop_front();
            self.played_ms = at;
            moved = true;
        }
        moved
    }

    /// Everything queued was dropped by a `clear`; returns the played position.
    fn clear(&mut self) -> u64 {
        self.cleared_below = self.next_mark;
        self.marks.clear();
        if let Some(b) = &mut self.buffer {
            b.clear();
        }
        self.sent_ms = self.played_ms;
        self.frames_since_mark = 0;
        self.played_ms
    }

    /// The agent audio heard during the next 20 ms.
    fn heard_frame(&mut self, out: &mut [u8; FRAME_SAMPLES]) {
        let Some(buffer) = &mut self.buffer else { return };
        for b in out.iter_mut() {
            *b = buffer.pop_front().unwrap_or(ULAW_SILENCE);
        }
    }
}

/// The agent turn being spoken.
struct AgentTurn {
    start_ms: u64,
    /// Agent-audio position where the turn starts.
    audio_start: u64,
    /// (from, to) agent-audio ms and the words voiced in between.
    segments: Vec<(u64, u64, String)>,
    tool_calls: Vec<ToolCallRecord>,
    generated: bool,
}

impl AgentTurn {
    fn full(self) -> Turn {
        let audio_end = self.segments.last().map_or(self.audio_start, |s| s.1);
        Turn {
            role: Role::Agent,
            text: join_text(self.segments.iter().map(|s| s.2.as_str())),
            start_ms: self.start_ms,
            end_ms: self.start_ms + (audio_end - self.audio_start),
            interrupted: false,
            tool_calls: self.tool_calls,
        }
    }

    /// The turn as far as it was played: whole segments before `played`, and the
    /// share of words of the segment playing at that moment.
    fn cut_at(self, played: u64) -> Turn {
        let mut parts: Vec<String> = Vec::new();
        for (from, to, text) in &self.segments {
            if *to <= played {
                parts.push(text.clone());
            } else if *from < played {
                let words: Vec<&str> = text.split_whitespace().collect();
                let share = (played - from) as f64 / (to - from).max(1) as f64;
                let n = (words.len() as f64 * share).floor() as usize;
                if n > 0 {
                    parts.push(words[..n].join(" "));
                }
            }
        }
        Turn {
            role: Role::Agent,
            text: join_text(parts.iter().map(String::as_str)),
            start_ms: self.start_ms,
            end_ms: self.start_ms + played.saturating_sub(self.audio_start),
            interrupted: true,
            tool_calls: self.tool_calls,
        }
    }
}

fn join_text<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    parts.filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Identity of the call, from `start`.
struct CallIdentity {
    call_sid: String,
    stream_sid: String,
    account_sid: String,
    from: Option<String>,
    to: Option<String>,
    started_at: time::OffsetDateTime,
}

enum Mode {
    Conversation,
    Voicemail { recorder: Option<Recorder>, until: Instant },
}

struct Call<'e, S, O> {
    env: &'e CallEnv,
    out: O,
    session: S,
    id: CallIdentity,
    t0: Instant,
    json: String,
    playback: Playback,
    turn: Option<AgentTurn>,
    turns: Vec<Turn>,
    dtmf: Vec<DtmfRecord>,
    recorder: Option<Recorder>,
    mode: Mode,
    caller_speaking_since: Option<u64>,
    awaiting_reply_since: Option<Instant>,
    /// A line the runtime asked for (greeting, idle prompt, goodbye) is being generated.
    speaking_line: bool,
    last_activity: Instant,
    idle_prompts: u32,
    caller_turns: u32,
    agent_turns: u32,
    interruptions: u32,
    inappropriate: u32,
    latencies: Vec<u64>,
    frames_in: u64,
    frames_out: u64,
    malformed: u64,
    after_playback: Option<(AfterPlayback, Instant)>,
    ending: Option<EndReason>,
    hung_up_at: Option<Instant>,
    socket_ok: bool,
    webhook_results: Vec<tokio::task::JoinHandle<WebhookDelivery>>,
    errors: Vec<String>,
}

/// Runs one call to its end and returns its artifacts (`None` if the stream never
/// started, so there is no call to speak of).
pub async fn run_call<S, I, O>(
    env: &CallEnv,
    mut inbound: I,
    outbound: O,
    new_session: impl FnOnce() -> S,
    drain: CancellationToken,
) -> Option<CallArtifacts>
where
    S: SpeechSession,
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
    let Ok(call_sid) = agent_spec::CallSid::parse(&start.call_sid) else {
        tracing::warn!(call_sid = %start.call_sid, "start names an invalid call sid; stream refused");
        env.metrics.malformed_messages.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let call_sid = call_sid.to_string();
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
            started_at: time::OffsetDateTime::now_utc(),
        };
        let recorder = if env.config.enable_recording {
            match Recorder::create(env.artifacts.scratch_path(&call_sid, "recording.wav"), 2) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "start the call recording; the call goes on without it");
                    None
                }
            }
        } else {
            None
        };
        let mut call = Call {
            env,
            out: outbound,
            session: new_session(),
            id,
            t0: Instant::now(),
            json: String::with_capacity(512),
            playback: Playback::new(recorder.is_some()),
            turn: None,
            turns: Vec::new(),
            dtmf: Vec::new(),
            recorder,
            mode: Mode::Conversation,
            caller_speaking_since: None,
            awaiting_reply_since: None,
            speaking_line: false,
            last_activity: Instant::now(),
            idle_prompts: 0,
            caller_turns: 0,
            agent_turns: 0,
            interruptions: 0,
            inappropriate: 0,
            latencies: Vec::new(),
            frames_in: 0,
            frames_out: 0,
            malformed,
            after_playback: None,
            ending: None,
            hung_up_at: None,
            socket_ok: true,
            webhook_results: Vec::new(),
            errors: Vec::new(),
        };
        tracing::info!(from = ?call.id.from, "call started");
        if let Some(pickup) = env.answered.stream_started(&call_sid) {
            call.webhook_results.push(pickup);
        }
        let greeting = env.phrases.greeting.clone();
        call.session.speak(&greeting);
        call.speaking_line = true;
        let reason = call.converse(&mut inbound, drain).await;
        Some(call.finish(reason).await)
    }
    .instrument(span)
    .await
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

impl<S: SpeechSession, O: Sink<String> + Unpin> Call<'_, S, O> {
    fn now_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    async fn converse<I: Stream<Item = WsFrame> + Unpin>(
        &mut self,
        inbound: &mut I,
        drain: CancellationToken,
    ) -> EndReason {
        let max_duration =
            self.t0 + Duration::from_secs(u64::from(self.env.config.guardrails.max_session_duration_secs));
        let mut draining = false;
        loop {
            if !self.socket_ok {
                return self.ending.unwrap_or(EndReason::StreamDropped);
            }
            let deadline = self.next_deadline(max_duration);
            tokio::select! {
                frame = inbound.next() => {
                    let Some(frame) = frame else {
                        return self.ending.unwrap_or(EndReason::StreamDropped);
                    };
                    let started = Instant::now();
                    let ended = self.on_frame(frame).await;
                    self.env.metrics.observe_frame_handling(started.elapsed().as_secs_f64());
                    if let Some(reason) = ended {
                        return reason;
                    }
                }
                event = self.session.next_event() => match event {
                    Some(event) => self.on_speech(event).await,
                    None => {
                        self.errors.push("speech session closed".into());
                        self.env.metrics.provider_errors.fetch_add(1, Ordering::Relaxed);
                        self.end_politely(EndReason::StreamDropped).await;
                    }
                },
                () = drain.cancelled(), if !draining => {
                    draining = true;
                    if self.ending.is_none() {
                        tracing::info!("draining: ending the call");
                        self.end_politely(EndReason::Shutdown).await;
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    if let Some(reason) = self.on_timer(max_duration).await {
                        return reason;
                    }
                }
            }
        }
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
        if let Some(at) = self.idle_deadline() {
            next = next.min(at);
        }
        next
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let quiet = self.ending.is_none()
            && matches!(self.mode, Mode::Conversation)
            && !self.playback.is_playing()
            && self.caller_speaking_since.is_none()
            && self.awaiting_reply_since.is_none()
            && !self.speaking_line
            && self.turn.as_ref().is_none_or(|t| t.generated);
        quiet.then(|| self.last_activity + Duration::from_secs(u64::from(self.env.config.idle_prompt_after_secs)))
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
        if self.ending.is_none() && now >= max_duration {
            tracing::info!("maximum session duration reached");
            self.end_politely(EndReason::MaxDuration).await;
        }
        if self.idle_deadline().is_some_and(|at| now >= at) {
            self.idle_prompts += 1;
            self.last_activity = now;
            if self.idle_prompts == 1 {
                let line = self.env.phrases.idle_prompt.clone();
                self.session.speak(&line);
                self.mark_generating();
            } else {
                self.end_with(EndReason::Idle, &self.env.phrases.idle_goodbye.clone());
            }
        }
        None
    }

    /// The session is about to produce a line (so idle does not fire meanwhile).
    fn mark_generating(&mut self) {
        self.speaking_line = true;
    }

    /// Interrupts whatever the agent is saying and says `line`, then hangs up.
    async fn end_politely(&mut self, reason: EndReason) {
        if self.ending.is_some() {
            return;
        }
        if self.playback.is_playing() || self.turn.as_ref().is_some_and(|t| !t.generated) {
            self.barge_in(false).await;
        }
        let line = match reason {
            EndReason::MaxDuration => self.env.phrases.time_limit.clone(),
            EndReason::MaxTurns => self.env.phrases.turn_limit.clone(),
            EndReason::Guardrail => self.env.phrases.guardrail_end.clone(),
            EndReason::Idle => self.env.phrases.idle_goodbye.clone(),
            _ => self.env.phrases.shutting_down.clone(),
        };
        self.end_with(reason, &line);
    }

    /// Says `line` as a turn of its own and hangs up once it has been played.
    fn end_with(&mut self, reason: EndReason, line: &str) {
        self.ending = Some(reason);
        self.session.interrupt();
        self.close_turn();
        self.session.speak(line);
        self.mark_generating();
        // Acted on when the goodbye has been generated and played.
        self.after_playback = Some((AfterPlayback::HangUp(reason), Instant::now() + Duration::from_secs(15)));
    }

    async fn on_frame(&mut self, frame: WsFrame) -> Option<EndReason> {
        let WsFrame::Text(text) = frame else { return None };
        // The hot path: 50 media messages a second.
        if text.len() <= MAX_MESSAGE_BYTES {
            if let Ok(m) = serde_json::from_str::<crate::media::MediaRef<'_>>(&text) {
                if m.event == "media" {
                    match (m.stream_sid.as_deref(), m.media) {
                        (Some(sid), Some(media)) if sid == self.id.stream_sid => {
                            let mut ulaw = [ULAW_SILENCE; FRAME_SAMPLES];
                            match base64::engine::general_purpose::STANDARD
                                .decode_slice(media.payload.as_bytes(), &mut ulaw)
                            {
                                Ok(n) => self.on_media(&ulaw[..n]),
                                Err(_) => self.count_malformed(),
                            }
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
                let mut ulaw = [ULAW_SILENCE; FRAME_SAMPLES];
                let Ok(n) = base64::engine::general_purpose::STANDARD.decode_slice(media.payload.as_bytes(), &mut ulaw)
                else {
                    self.count_malformed();
                    return None;
                };
                self.on_media(&ulaw[..n]);
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

    fn on_media(&mut self, ulaw: &[u8]) {
        self.frames_in += 1;
        self.env.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
        if let Some(rec) = &mut self.recorder {
            let mut heard = [ULAW_SILENCE; FRAME_SAMPLES];
            self.playback.heard_frame(&mut heard);
            if let Err(e) = rec.write_frame(ulaw, Some(&heard)) {
                tracing::error!(error = %e, "write the call recording; recording stopped");
                self.errors.push(format!("recording: {e}"));
                self.recorder = None;
            }
        }
        match &mut self.mode {
            Mode::Conversation => self.session.push_audio(ulaw),
            Mode::Voicemail { recorder, .. } => {
                if let Some(rec) = recorder {
                    if let Err(e) = rec.write_frame(ulaw, None) {
                        tracing::error!(error = %e, "write the voicemail");
                        *recorder = None;
                    }
                }
            }
        }
    }

    async fn on_speech(&mut self, event: SpeechEvent) {
        match event {
            SpeechEvent::CallerSpeechStarted => {
                self.caller_speaking_since = Some(self.now_ms());
                self.idle_prompts = 0;
                self.last_activity = Instant::now();
                if self.ending.is_none() && self.playback.is_playing() {
                    self.barge_in(true).await;
                }
            }
            SpeechEvent::CallerTurn { text, ended_at } => {
                let end_ms = self.now_ms().saturating_sub(ended_at.elapsed().as_millis() as u64);
                let start_ms = self.caller_speaking_since.take().unwrap_or(end_ms);
                tracing::info!(text = %text, "caller turn");
                self.turns.push(Turn {
                    role: Role::Caller,
                    text: text.clone(),
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
                self.awaiting_reply_since = Some(ended_at);
                if self.env.guardrails.classify(&text) == Verdict::Inappropriate {
                    self.inappropriate += 1;
                    if self.inappropriate > self.env.guardrails.max_inappropriate {
                        tracing::info!(count = self.inappropriate, "guardrail: too many inappropriate turns");
                        self.end_politely(EndReason::Guardrail).await;
                        return;
                    }
                }
                if self.caller_turns >= self.env.config.guardrails.max_conversation_turns {
                    tracing::info!("maximum conversation turns reached");
                    self.end_politely(EndReason::MaxTurns).await;
                }
            }
            SpeechEvent::AgentAudio { ulaw, text } => self.send_agent_audio(&ulaw, text).await,
            SpeechEvent::Tool(tool) => self.on_tool(tool).await,
            SpeechEvent::AgentTurnEnd => {
                self.awaiting_reply_since = None;
                self.speaking_line = false;
                if let Some(turn) = &mut self.turn {
                    turn.generated = true;
                }
                if !self.playback.is_playing() {
                    self.last_activity = Instant::now();
                    self.try_act().await;
                }
            }
            SpeechEvent::Error(e) => {
                tracing::error!(error = %e, "speech provider error");
                self.env.metrics.provider_errors.fetch_add(1, Ordering::Relaxed);
                self.errors.push(e);
            }
        }
    }

    async fn send_agent_audio(&mut self, ulaw: &[u8], text: String) {
        if self.turn.as_ref().is_none_or(|t| t.generated) {
            self.close_turn();
            if let Some(since) = self.awaiting_reply_since.take() {
                let latency = since.elapsed();
                self.latencies.push(latency.as_millis() as u64);
                self.env.metrics.observe_turn_latency(latency.as_secs_f64());
            }
            self.agent_turns += 1;
            self.turn = Some(AgentTurn {
                start_ms: self.now_ms(),
                audio_start: self.playback.sent_ms,
                segments: Vec::new(),
                tool_calls: Vec::new(),
                generated: false,
            });
        }
        let from = self.playback.sent_ms;
        self.send_frames(ulaw).await;
        if let Some(turn) = &mut self.turn {
            turn.segments.push((from, self.playback.sent_ms, text));
        }
        if let Some((_, at)) = &mut self.after_playback {
            *at = (*at).max(
                Instant::now() + Duration::from_millis(self.playback.queued_ms()) + self.env.timings.playback_slack,
            );
        }
    }

    /// Sends audio as 20 ms media messages, with a mark every [`FRAMES_PER_MARK`]
    /// frames and after the last one.
    async fn send_frames(&mut self, ulaw: &[u8]) {
        for chunk in ulaw.chunks(FRAME_SAMPLES) {
            let mut frame = [ULAW_SILENCE; FRAME_SAMPLES];
            frame[..chunk.len()].copy_from_slice(chunk);
            write_media_json(&mut self.json, &self.id.stream_sid, &frame);
            let json = std::mem::take(&mut self.json);
            if self.out.feed(json).await.is_err() {
                self.socket_ok = false;
                return;
            }
            self.json = String::with_capacity(512);
            self.frames_out += 1;
            self.env.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
            self.playback.sent_ms += FRAME_MS;
            if let Some(buffer) = &mut self.playback.buffer {
                buffer.extend(frame);
            }
            self.playback.frames_since_mark += 1;
            if self.playback.frames_since_mark >= FRAMES_PER_MARK {
                self.send_mark().await;
            }
        }
        if self.playback.frames_since_mark > 0 {
            self.send_mark().await;
        }
        if self.out.flush().await.is_err() {
            self.socket_ok = false;
        }
    }

    async fn send_mark(&mut self) {
        let seq = self.playback.next_mark;
        self.playback.next_mark += 1;
        self.playback.frames_since_mark = 0;
        self.playback.marks.push_back((seq, self.playback.sent_ms));
        let mark = Outbound::Mark {
            stream_sid: self.id.stream_sid.clone(),
            mark: crate::media::MarkInfo { name: format!("m{seq}") },
        };
        let json = serde_json::to_string(&mark).expect("outbound messages serialize");
        if self.out.feed(json).await.is_err() {
            self.socket_ok = false;
        }
    }

    /// The caller spoke over the agent: drop queued audio, stop generating, and keep
    /// the agent's turn as far as it was played.
    async fn barge_in(&mut self, count: bool) {
        let clear = Outbound::Clear { stream_sid: self.id.stream_sid.clone() };
        let json = serde_json::to_string(&clear).expect("outbound messages serialize");
        if self.out.send(json).await.is_err() {
            self.socket_ok = false;
        }
        self.session.interrupt();
        let played = self.playback.clear();
        if let Some(turn) = self.turn.take() {
            tracing::info!(played_ms = played.saturating_sub(turn.audio_start), "barge-in: agent turn cut");
            self.turns.push(turn.cut_at(played));
        }
        if count {
            self.interruptions += 1;
        }
        self.awaiting_reply_since = None;
        self.speaking_line = false;
    }

    fn close_turn(&mut self) {
        if let Some(turn) = self.turn.take() {
            self.turns.push(turn.full());
        }
    }

    async fn on_tool(&mut self, tool: ToolCall) {
        tracing::info!(tool = tool.name(), "tool call");
        let mut result = "ok".to_owned();
        match &tool {
            ToolCall::EndCall => self.schedule(AfterPlayback::HangUp(EndReason::EndCall)),
            ToolCall::TransferCall => {
                if self.env.config.telephony.transfer_phone_number.is_some() {
                    self.schedule(AfterPlayback::Transfer);
                } else {
                    result = "no transfer number configured".into();
                }
            }
            ToolCall::Voicemail => self.schedule(AfterPlayback::StartVoicemail),
            ToolCall::ScheduleCallback { requested_time } => {
                match self.env.config.integrations.make_endpoint.as_ref().or(self
                    .env
                    .config
                    .integrations
                    .webhook_endpoint
                    .as_ref())
                {
                    Some(url) => {
                        let body = json!({
                            "event": "callback_requested",
                            "agent_id": self.env.agent_id,
                            "tenant_id": self.env.tenant_id,
                            "call_sid": self.id.call_sid,
                            "caller": self.id.from,
                            "requested_time": requested_time,
                        });
                        self.spawn_webhook("schedule_callback", url.as_str().to_owned(), body);
                    }
                    None => result = "no scheduling endpoint configured".into(),
                }
            }
        }
        if let Some(turn) = &mut self.turn {
            turn.tool_calls.push(ToolCallRecord { call: tool, result });
        } else if let Some(Turn { role: Role::Agent, tool_calls, .. }) = self.turns.last_mut() {
            tool_calls.push(ToolCallRecord { call: tool, result });
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
                let recorder = match Recorder::create(path, 1) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        self.errors.push(format!("voicemail: {e}"));
                        None
                    }
                };
                self.mode = Mode::Voicemail { recorder, until: Instant::now() + self.env.timings.voicemail_max };
                self.ending = None;
                self.send_frames(&beep()).await;
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

    fn telephony_failed(&mut self, e: String) {
        tracing::error!(error = %e, "twilio call control failed; closing the stream ends the call");
        self.env.metrics.telephony_errors.fetch_add(1, Ordering::Relaxed);
        self.errors.push(e);
    }

    fn spawn_webhook(&mut self, kind: &'static str, url: String, body: serde_json::Value) {
        let handle = self.env.webhooks.spawn(&self.env.tasks, &self.env.metrics, kind, url, body);
        self.webhook_results.push(handle);
    }

    async fn finish(mut self, reason: EndReason) -> CallArtifacts {
        self.close_turn();
        let _ = self.out.close().await;
        let ended_at = time::OffsetDateTime::now_utc();
        let duration = self.t0.elapsed();
        tracing::info!(reason = reason.as_str(), duration_ms = duration.as_millis() as u64, "call ended");
        self.env.metrics.call_ended(reason.as_str());
        let recording = self.recorder.take().and_then(|r| match r.finish() {
            Ok(p) => Some(p),
            Err(e) => {
                self.errors.push(format!("recording: {e}"));
                None
            }
        });
        let voicemail = match std::mem::replace(&mut self.mode, Mode::Conversation) {
            Mode::Voicemail { recorder: Some(r), .. } => r.finish().ok(),
            _ => None,
        };
        // Webhooks of the call get a short while to report; a slow one is recorded as
        // pending rather than holding the artifacts back.
        let mut webhooks = Vec::new();
        for handle in self.webhook_results.drain(..) {
            match tokio::time::timeout(Duration::from_secs(2), handle).await {
                Ok(Ok(result)) => webhooks.push(result),
                _ => webhooks.push(WebhookDelivery {
                    kind: "unknown".into(),
                    url: String::new(),
                    delivered: false,
                    attempts: 0,
                    error: Some("still being retried when the call ended".into()),
                }),
            }
        }
        let mut turns = std::mem::take(&mut self.turns);
        turns.sort_by_key(|t| t.start_ms);
        let transcript = Transcript { call_sid: self.id.call_sid.clone(), turns, dtmf: std::mem::take(&mut self.dtmf) };
        let rfc3339 =
            |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let metadata = CallMetadata {
            call_sid: self.id.call_sid.clone(),
            stream_sid: self.id.stream_sid.clone(),
            account_sid: self.id.account_sid.clone(),
            from: self.id.from.clone(),
            to: self.id.to.clone(),
            agent_id: self.env.agent_id.clone(),
            tenant_id: self.env.tenant_id.clone(),
            agent_name: self.env.config.name.clone(),
            provider: self.session.provider().to_owned(),
            started_at: rfc3339(self.id.started_at),
            ended_at: rfc3339(ended_at),
            duration_secs: duration.as_secs_f64(),
            end_reason: reason.as_str().to_owned(),
            turn_latency_ms: self.latencies.clone(),
            caller_turns: self.caller_turns,
            agent_turns: self.agent_turns,
            interruptions: self.interruptions,
            frames_in: self.frames_in,
            frames_out: self.frames_out,
            malformed_messages: self.malformed,
            recording: recording.is_some(),
            voicemail: voicemail.is_some(),
            webhooks,
            errors: std::mem::take(&mut self.errors),
        };
        CallArtifacts {
            call_sid: self.id.call_sid.clone(),
            transcript: serde_json::to_vec_pretty(&transcript).expect("transcripts serialize"),
            metadata: serde_json::to_vec_pretty(&metadata).expect("metadata serializes"),
            recording,
            voicemail,
        }
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
