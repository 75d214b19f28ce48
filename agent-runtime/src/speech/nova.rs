//! Amazon Nova Sonic on Bedrock, through `aws-sdk-bedrockruntime`'s
//! `InvokeModelWithBidirectionalStream` (HTTP/2, AWS event-stream framing, every
//! event signed with SigV4).
//!
//! A stream opens with, in order: `sessionStart` (inference settings, endpointing
//! sensitivity), `promptStart` (8 kHz 16-bit LPCM audio out in the agent's voice,
//! text out, the tools), the instructions as a SYSTEM text content, the conversation
//! so far as USER/ASSISTANT text contents (after a rotation), then one interactive
//! AUDIO content that carries the caller's audio (μ-law decoded to PCM16 by the call
//! loop, base64) in real time. These are queued before the request is sent: the
//! service answers nothing until it has `sessionStart`. Tool results go back as TOOL
//! contents; lines to say as cross-modal USER text. At the end: `contentEnd`,
//! `promptEnd`, `sessionEnd`.
//!
//! | Nova event | runtime |
//! |---|---|
//! | USER `textOutput` (FINAL) | the caller's text, for the turn the runtime's detector ended |
//! | ASSISTANT `textOutput` SPECULATIVE | checked against the guardrails before its audio, and the turn's text, anchored at its audio |
//! | ASSISTANT `textOutput` FINAL | the turn's text once it was played whole |
//! | `{ "interrupted" : true }` | barge-in; audio of the cut response is dropped |
//! | `audioOutput` | PCM16 → μ-law agent audio |
//! | AUDIO `contentEnd` `END_TURN` | the agent's turn ended |
//! | `toolUse` | a call action (by `toolUseId`); `search_knowledge_base` is answered here |
//! | `usageEvent` | token usage in the metadata |
//!
//! A stream lasts at most 8 minutes. The session rotates before that: after
//! `rotate_after` (6 minutes by default), once the agent is quiet, it opens a new
//! stream carrying the conversation over as text history, replays the caller audio
//! since the last turn Nova transcribed (at most 3 s: what the history does not hold
//! yet) into it, and closes the old one. If a stream ends early anyway the
//! session reconnects the same way at once; the caller hears nothing meanwhile (the
//! gap is the time to open a stream, about the connect latency).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use agent_spec::AgentConfig;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::primitives::event_stream::EventStreamSender;
use aws_sdk_bedrockruntime::types::error::InvokeModelWithBidirectionalStreamInputError as InputError;
use aws_sdk_bedrockruntime::types::{
    BidirectionalInputPayloadPart, InvokeModelWithBidirectionalStreamInput as Input,
    InvokeModelWithBidirectionalStreamOutput as Output,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::instructions::{AgentBrief, SEARCH_TOOL, parse_tool, search_query};
use super::responder::Responder;
use super::vad::TurnEvent;
use super::{CallerAudio, ConnectError, SpeechEvent, SpeechSession, ToolOutcome};

const PROVIDER: &str = "nova-sonic";
/// Nova's limit on one stream.
pub const STREAM_LIMIT: Duration = Duration::from_secs(8 * 60);
/// When a stream is replaced, by default.
pub const ROTATE_AFTER: Duration = Duration::from_secs(6 * 60);
/// Caller audio kept for replay into the next stream (3 s of 8 kHz), since the last
/// caller turn Nova transcribed: that turn is in the history, and replaying it too
/// would have the model answer it twice.
const REPLAY_SAMPLES: usize = 8_000 * 3;
/// History carried into a new stream: Nova takes 200 KB in all, 50 KB per message.
const HISTORY_MAX_BYTES: usize = 190_000;
const HISTORY_MESSAGE_MAX_BYTES: usize = 48_000;
/// Input events queued for a stream (10 s of audio).
const INPUT_QUEUE: usize = 512;
/// Caller audio per `audioInput` event (60 ms, three Twilio frames): every event is
/// framed, signed and written on its own, so fewer, larger events cost less (at 200
/// calls, 14 % less of a core than 40 ms events) for at most 40 ms more delay before
/// Nova hears the caller than single frames, small beside its own end-of-turn wait;
/// AWS's samples send 32–64 ms. A turn's end is sent at once.
const AUDIO_EVENT_SAMPLES: usize = 480;

/// Streams one Bedrock client (one HTTP/2 connection) carries at most. An HTTP/2
/// client does not open a second connection when the server's
/// `SETTINGS_MAX_CONCURRENT_STREAMS` is reached, it waits; a call's stream lasts
/// minutes, so the runtime spreads streams over several clients instead.
pub const STREAMS_PER_CONNECTION: usize = 32;

/// Bedrock clients, each with its own connection, and the streams open on each.
struct ClientPool {
    clients: Vec<(Client, Arc<std::sync::atomic::AtomicUsize>)>,
}

impl ClientPool {
    /// The first client with room for another stream (so connections are opened only
    /// as needed), else the least loaded; and a guard counting this stream.
    fn pick(&self) -> (Client, StreamSlot) {
        use std::sync::atomic::Ordering;
        let load = |(_, open): &&(Client, Arc<std::sync::atomic::AtomicUsize>)| open.load(Ordering::Relaxed);
        let (client, open) = self
            .clients
            .iter()
            .find(|c| load(c) < STREAMS_PER_CONNECTION)
            .or_else(|| self.clients.iter().min_by_key(load))
            .expect("the pool has at least one client");
        open.fetch_add(1, Ordering::Relaxed);
        (client.clone(), StreamSlot(Arc::clone(open)))
    }
}

/// Counts a stream on its client until the stream is dropped.
struct StreamSlot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The agent's Nova Sonic settings, built once.
pub struct NovaSonic {
    pool: ClientPool,
    model_id: String,
    voice: String,
    brief: AgentBrief,
    search: Option<Arc<Responder>>,
    rotate_after: Duration,
    /// Every stream's first event.
    session_start: Value,
}

impl NovaSonic {
    /// `clients` each hold their own connection; see [`STREAMS_PER_CONNECTION`].
    pub fn new(config: &AgentConfig, clients: Vec<Client>, rotate_after: Duration) -> Self {
        assert!(!clients.is_empty(), "Nova Sonic needs a Bedrock client");
        let brief = AgentBrief::new(config);
        let search = brief.search_tool.then(|| Arc::new(Responder::new(config)));
        let pool = ClientPool { clients: clients.into_iter().map(|c| (c, Arc::default())).collect() };
        Self {
            pool,
            model_id: config.voice.model.as_str().to_owned(),
            voice: config.voice.voice_id.as_str().to_owned(),
            brief,
            search,
            rotate_after: rotate_after.min(STREAM_LIMIT),
            session_start: session_start(config),
        }
    }

    pub async fn connect(self: &Arc<Self>) -> Result<NovaSession, ConnectError> {
        let (tx, rx) = mpsc::channel(64);
        let stream = self.open(&[], 0, tx.clone()).await?;
        Ok(NovaSession {
            nova: Arc::clone(self),
            stream,
            generation: 0,
            events_tx: tx,
            events_rx: rx,
            pending: VecDeque::new(),
            rotating: None,
            history: Vec::new(),
            replay: VecDeque::with_capacity(REPLAY_SAMPLES),
            caller_items: VecDeque::new(),
            ended_early: 0,
            turns: 0,
            contents: Vec::new(),
            dropping: false,
            responding: false,
            resume_at_next_response: false,
            agent_busy: false,
            last_agent_activity: Instant::now(),
            usage: (0, 0),
            audio_b64: String::with_capacity(512),
            pcm_bytes: Vec::with_capacity(AUDIO_EVENT_SAMPLES * 2),
            unsent: Vec::with_capacity(AUDIO_EVENT_SAMPLES),
            closed: false,
        })
    }

    /// Opens one stream: everything up to the audio content is queued, then the
    /// request is sent.
    async fn open(
        &self,
        history: &[(Role, String)],
        generation: u64,
        events: mpsc::Sender<(u64, StreamEvent)>,
    ) -> Result<Stream, ConnectError> {
        let unavailable = |reason: String| ConnectError::Unavailable { provider: PROVIDER, reason };
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let prompt = format!("p{}", uuid_like());
        let audio = format!("a{}", uuid_like());
        let mut opening = vec![self.session_start.clone(), self.prompt_start(&prompt)];
        opening.extend(text_content(&prompt, "SYSTEM", &self.brief.instructions, false));
        for (role, text) in history {
            opening.extend(text_content(&prompt, role.as_str(), text, false));
        }
        opening.push(json!({"event": {"contentStart": {
            "promptName": prompt, "contentName": audio, "type": "AUDIO", "interactive": true, "role": "USER",
            "audioInputConfiguration": {"mediaType": "audio/lpcm", "sampleRateHertz": 8000, "sampleSizeBits": 16,
                "channelCount": 1, "audioType": "SPEECH", "encoding": "base64"},
        }}}));
        for event in opening {
            tx.try_send(Ok(chunk(&event))).map_err(|_| unavailable("input queue full while opening".into()))?;
        }
        let (client, slot) = self.pool.pick();
        let sent = client
            .invoke_model_with_bidirectional_stream()
            .model_id(&self.model_id)
            .body(EventStreamSender::from(InputStream(rx)))
            .send()
            .await
            .map_err(|e| {
                let text = aws_sdk_bedrockruntime::error::DisplayErrorContext(&e).to_string();
                match e.as_service_error() {
                    Some(s)
                        if s.is_access_denied_exception()
                            || s.is_validation_exception()
                            || s.is_resource_not_found_exception() =>
                    {
                        ConnectError::Refused { provider: PROVIDER, reason: text }
                    }
                    _ => unavailable(text),
                }
            })?;
        let mut body = sent.body;
        tokio::spawn(async move {
            loop {
                let item = match body.recv().await {
                    Ok(Some(Output::Chunk(part))) => {
                        match part.bytes.as_ref().map(|b| serde_json::from_slice::<Value>(b.as_ref())) {
                            Some(Ok(event)) => StreamEvent::Event(event, Instant::now()),
                            _ => StreamEvent::Error("nova-sonic: an output chunk is not JSON".into()),
                        }
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => StreamEvent::Ended("the stream ended".into()),
                    Err(e) => StreamEvent::Ended(aws_sdk_bedrockruntime::error::DisplayErrorContext(&e).to_string()),
                };
                let ended = matches!(item, StreamEvent::Ended(_));
                if events.send((generation, item)).await.is_err() || ended {
                    return;
                }
            }
        });
        Ok(Stream { tx, prompt, audio, opened: Instant::now(), _slot: slot })
    }

    fn prompt_start(&self, prompt: &str) -> Value {
        let tools: Vec<Value> = self
            .brief
            .tools
            .iter()
            .map(|t| {
                json!({"toolSpec": {"name": t.name, "description": t.description,
                "inputSchema": {"json": t.parameters.to_string()}}})
            })
            .collect();
        json!({"event": {"promptStart": {
            "promptName": prompt,
            "textOutputConfiguration": {"mediaType": "text/plain"},
            "audioOutputConfiguration": {"mediaType": "audio/lpcm", "sampleRateHertz": 8000, "sampleSizeBits": 16,
                "channelCount": 1, "voiceId": self.voice, "encoding": "base64", "audioType": "SPEECH"},
            "toolUseOutputConfiguration": {"mediaType": "application/json"},
            "toolConfiguration": {"tools": tools},
        }}})
    }
}

/// `sessionStart`: the agent's temperature, and its endpointing sensitivity when the
/// model has one (Nova 2 Sonic; Nova Sonic v1 has no turn-detection setting).
pub fn session_start(config: &AgentConfig) -> Value {
    let temperature = config.voice.temperature.unwrap_or(agent_spec::values::Temperature::DEFAULT).value();
    let mut start = json!({"inferenceConfiguration": {"maxTokens": 1024, "topP": 0.9, "temperature": temperature}});
    let sensitivity = config
        .voice
        .endpointing_sensitivity
        .or_else(|| config.voice.provider.has_endpointing(config.voice.model.as_str()).then(Default::default));
    if let Some(sensitivity) = sensitivity {
        start["turnDetectionConfiguration"] = json!({"endpointingSensitivity": sensitivity.wire_name()});
    }
    json!({"event": {"sessionStart": start}})
}

/// The history Nova accepts: the newest messages within its size limit, starting
/// with the caller.
fn trim_history(history: &[(Role, String)]) -> Vec<(Role, String)> {
    let mut out: Vec<(Role, String)> = Vec::new();
    let mut size = 0;
    for (role, text) in history.iter().rev() {
        if size + text.len() > HISTORY_MAX_BYTES {
            break;
        }
        size += text.len();
        out.push((*role, text.clone()));
    }
    out.reverse();
    while out.first().is_some_and(|(r, _)| *r == Role::Assistant) {
        out.remove(0);
    }
    out
}

/// A random hex id for prompt and content names.
fn uuid_like() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn chunk(event: &Value) -> Input {
    Input::Chunk(BidirectionalInputPayloadPart::builder().bytes(Blob::new(event.to_string())).build())
}

/// The three events of one text content.
fn text_content(prompt: &str, role: &str, text: &str, interactive: bool) -> [Value; 3] {
    let name = format!("t{}", uuid_like());
    [
        json!({"event": {"contentStart": {"promptName": prompt, "contentName": name, "type": "TEXT",
            "interactive": interactive, "role": role, "textInputConfiguration": {"mediaType": "text/plain"}}}}),
        json!({"event": {"textInput": {"promptName": prompt, "contentName": name, "content": text}}}),
        json!({"event": {"contentEnd": {"promptName": prompt, "contentName": name}}}),
    ]
}

/// The SDK's body: the queued input events.
struct InputStream(mpsc::Receiver<Result<Input, InputError>>);

impl futures::Stream for InputStream {
    type Item = Result<Input, InputError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

enum StreamEvent {
    /// An output event, and when it arrived.
    Event(Value, Instant),
    Error(String),
    Ended(String),
}

/// One open `InvokeModelWithBidirectionalStream`.
struct Stream {
    tx: mpsc::Sender<Result<Input, InputError>>,
    prompt: String,
    audio: String,
    opened: Instant,
    _slot: StreamSlot,
}

impl Stream {
    fn send(&self, event: &Value) -> bool {
        self.tx.try_send(Ok(chunk(event))).is_ok()
    }

    /// Ends the stream as Nova asks: the audio content, the prompt, the session.
    fn close(&self) {
        let _ = self.send(&json!({"event": {"contentEnd": {"promptName": self.prompt, "contentName": self.audio}}}));
        let _ = self.send(&json!({"event": {"promptEnd": {"promptName": self.prompt}}}));
        let _ = self.send(&json!({"event": {"sessionEnd": {}}}));
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // The reader ends with the stream, once Nova has taken the closing events.
        self.close();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Assistant => "ASSISTANT",
        }
    }
}

/// What a content of the current stream is.
struct Content {
    id: String,
    kind: String,
    role: String,
    speculative: bool,
}

type Rotation = tokio::task::JoinHandle<Result<Stream, ConnectError>>;

pub struct NovaSession {
    nova: Arc<NovaSonic>,
    stream: Stream,
    /// Which stream's events count (older ones' are dropped after a rotation).
    generation: u64,
    events_tx: mpsc::Sender<(u64, StreamEvent)>,
    events_rx: mpsc::Receiver<(u64, StreamEvent)>,
    pending: VecDeque<SpeechEvent>,
    rotating: Option<Rotation>,
    /// The conversation, for the next stream.
    history: Vec<(Role, String)>,
    /// The last caller audio, for the next stream.
    replay: VecDeque<i16>,
    /// Caller turns the runtime's detector ended, waiting for Nova's transcript.
    caller_items: VecDeque<String>,
    /// Caller turns Nova transcribed before the runtime's detector ended them.
    ended_early: u32,
    turns: u64,
    contents: Vec<Content>,
    /// The response was cut: its audio and text are dropped until the next one.
    dropping: bool,
    /// A response is being generated (from its first assistant content to its
    /// audio's `END_TURN` or `INTERRUPTED`).
    responding: bool,
    /// A line was asked for while a cut response was still arriving: dropping ends
    /// when the next response begins (Nova has no cancel, so the rest of the cut
    /// one comes first).
    resume_at_next_response: bool,
    /// The agent is producing audio (no rotation meanwhile).
    agent_busy: bool,
    last_agent_activity: Instant,
    /// Totals Nova reported so far (input, output).
    usage: (u64, u64),
    audio_b64: String,
    pcm_bytes: Vec<u8>,
    /// Caller audio not yet sent (less than one event's worth).
    unsent: Vec<i16>,
    closed: bool,
}

impl NovaSession {
    fn remember(&mut self, role: Role, text: &str) {
        let text: String = text.chars().take(HISTORY_MESSAGE_MAX_BYTES / 4).collect();
        match self.history.last_mut() {
            Some((r, t)) if *r == role => {
                t.push(' ');
                t.push_str(&text);
            }
            _ => self.history.push((role, text)),
        }
    }

    fn history_for_next(&self) -> Vec<(Role, String)> {
        trim_history(&self.history)
    }

    fn start_rotation(&mut self) {
        if self.rotating.is_some() {
            return;
        }
        tracing::info!(after_secs = self.stream.opened.elapsed().as_secs(), "nova-sonic: rotating the stream");
        let nova = Arc::clone(&self.nova);
        let history = self.history_for_next();
        let generation = self.generation + 1;
        let events = self.events_tx.clone();
        self.rotating = Some(tokio::spawn(async move { nova.open(&history, generation, events).await }));
    }

    /// The new stream is open: it takes over, with the last caller audio replayed.
    fn finish_rotation(&mut self, stream: Stream) {
        self.generation += 1;
        let old = std::mem::replace(&mut self.stream, stream);
        drop(old);
        self.contents.clear();
        let replay: Vec<i16> = self.replay.iter().copied().collect();
        for piece in replay.chunks(AUDIO_EVENT_SAMPLES) {
            self.send_audio(piece);
        }
    }

    fn send_audio(&mut self, pcm: &[i16]) {
        self.pcm_bytes.clear();
        for s in pcm {
            self.pcm_bytes.extend_from_slice(&s.to_le_bytes());
        }
        // The hot path (25 events a second per call): the JSON is written directly,
        // its names being our own hex ids and its content base64, neither needing escapes.
        self.audio_b64.clear();
        self.audio_b64.push_str(r#"{"event":{"audioInput":{"promptName":""#);
        self.audio_b64.push_str(&self.stream.prompt);
        self.audio_b64.push_str(r#"","contentName":""#);
        self.audio_b64.push_str(&self.stream.audio);
        self.audio_b64.push_str(r#"","content":""#);
        BASE64.encode_string(&self.pcm_bytes, &mut self.audio_b64);
        self.audio_b64.push_str(r#""}}}"#);
        let event =
            Input::Chunk(BidirectionalInputPayloadPart::builder().bytes(Blob::new(self.audio_b64.as_bytes())).build());
        if self.stream.tx.try_send(Ok(event)).is_err() {
            self.pending.push_back(SpeechEvent::Error("nova-sonic: not keeping up; caller audio dropped".into()));
        }
    }

    fn send_text(&mut self, role: &str, text: &str, interactive: bool) {
        for event in text_content(&self.stream.prompt, role, text, interactive) {
            let _ = self.stream.send(&event);
        }
    }

    fn on_event(&mut self, event: &Value, received: Instant) {
        let Some((kind, body)) = event["event"].as_object().and_then(|o| o.iter().next()) else { return };
        match kind.as_str() {
            "contentStart" => {
                let stage = body["additionalModelFields"]
                    .as_str()
                    .and_then(|f| serde_json::from_str::<Value>(f).ok())
                    .and_then(|f| f["generationStage"].as_str().map(str::to_owned));
                let content = Content {
                    id: body["contentId"].as_str().unwrap_or_default().to_owned(),
                    kind: body["type"].as_str().unwrap_or_default().to_owned(),
                    role: body["role"].as_str().unwrap_or_default().to_owned(),
                    speculative: stage.as_deref() == Some("SPECULATIVE"),
                };
                let opens_response = content.role == "ASSISTANT" && (content.kind == "AUDIO" || content.speculative);
                if opens_response && !self.responding {
                    self.responding = true;
                    if std::mem::take(&mut self.resume_at_next_response) {
                        self.dropping = false;
                    }
                }
                if content.kind == "AUDIO" && content.role == "ASSISTANT" && !self.dropping {
                    self.agent_busy = true;
                }
                if self.contents.len() > 64 {
                    self.contents.remove(0);
                }
                self.contents.push(content);
            }
            "textOutput" => self.on_text(body),
            "audioOutput" => {
                if self.dropping {
                    return;
                }
                let Ok(pcm) = BASE64.decode(body["content"].as_str().unwrap_or_default()) else {
                    self.pending.push_back(SpeechEvent::Error("nova-sonic: audio output is not base64".into()));
                    return;
                };
                let ulaw: Vec<u8> =
                    pcm.chunks_exact(2).map(|b| crate::audio::ulaw_encode(i16::from_le_bytes([b[0], b[1]]))).collect();
                self.last_agent_activity = Instant::now();
                self.pending.push_back(SpeechEvent::AgentAudio { ulaw: Bytes::from(ulaw), received });
            }
            "contentEnd" => {
                let id = body["contentId"].as_str().unwrap_or_default();
                let kind = self.contents.iter().find(|c| c.id == id).map(|c| (c.kind.clone(), c.role.clone()));
                if let Some((kind, _)) = kind {
                    if kind == "AUDIO" {
                        self.agent_busy = false;
                        self.last_agent_activity = Instant::now();
                        if body["stopReason"].as_str() != Some("PARTIAL_TURN") {
                            self.responding = false;
                            if !self.dropping {
                                self.pending.push_back(SpeechEvent::AgentTurnEnd);
                            }
                        }
                    }
                }
            }
            "toolUse" => self.on_tool_use(body),
            "usageEvent" => {
                let input = body["totalInputTokens"].as_u64().unwrap_or(self.usage.0);
                let output = body["totalOutputTokens"].as_u64().unwrap_or(self.usage.1);
                let (di, dout) = (input.saturating_sub(self.usage.0), output.saturating_sub(self.usage.1));
                self.usage = (input.max(self.usage.0), output.max(self.usage.1));
                if di + dout > 0 {
                    self.pending.push_back(SpeechEvent::Usage { input_tokens: di, output_tokens: dout });
                }
            }
            _ => {}
        }
    }

    fn on_text(&mut self, body: &Value) {
        let id = body["contentId"].as_str().unwrap_or_default();
        let text = body["content"].as_str().unwrap_or_default().trim().to_owned();
        let Some(content) = self.contents.iter().find(|c| c.id == id) else { return };
        let (role, speculative) = (content.role.clone(), content.speculative);
        if role == "USER" {
            let item = match self.caller_items.pop_front() {
                Some(item) => item,
                None => {
                    // Nova ended the turn before the runtime's detector did: the turn
                    // ends now, and the detector's end, when it comes, is the same turn.
                    self.turns += 1;
                    let item = format!("c{}", self.turns);
                    self.ended_early += 1;
                    self.pending.push_back(SpeechEvent::CallerTurnEnded { item: item.clone(), at: Instant::now() });
                    item
                }
            };
            self.remember(Role::User, &text);
            // Its words are in the history now; only later audio needs replaying.
            self.replay.clear();
            // A new caller turn: the next response is heard.
            self.dropping = false;
            self.resume_at_next_response = false;
            self.pending.push_back(SpeechEvent::CallerText { item, text });
            return;
        }
        if text.replace(' ', "").contains("{\"interrupted\":true}") {
            // Nova heard the caller over its answer.
            self.dropping = true;
            self.agent_busy = false;
            self.pending.push_back(SpeechEvent::CallerSpeechStarted);
            return;
        }
        if self.dropping || text.is_empty() {
            return;
        }
        if speculative {
            self.pending.push_back(SpeechEvent::AgentDraft(text.clone()));
            self.pending.push_back(SpeechEvent::AgentText(text));
        } else {
            self.remember(Role::Assistant, &text);
            self.pending.push_back(SpeechEvent::AgentTextFinal(text));
        }
    }

    fn on_tool_use(&mut self, body: &Value) {
        let id = body["toolUseId"].as_str().unwrap_or_default().to_owned();
        let name = body["toolName"].as_str().unwrap_or_default();
        let arguments = body["content"].as_str().unwrap_or_default();
        if name == SEARCH_TOOL {
            let query = search_query(arguments);
            let found = self.nova.search.as_ref().and_then(|r| r.search(&query).map(str::to_owned));
            let result = json!({"result": found.unwrap_or_else(|| "nothing in the knowledge base matches".into())});
            self.send_tool_result(&id, &result.to_string());
            return;
        }
        match parse_tool(name, arguments) {
            Ok(call) => self.pending.push_back(SpeechEvent::Tool { id, call }),
            Err(reason) => {
                self.send_tool_result(&id, &json!({"error": reason}).to_string());
                self.pending.push_back(SpeechEvent::Error(format!("nova-sonic: {reason}")));
            }
        }
    }

    fn send_tool_result(&mut self, tool_use_id: &str, content: &str) {
        let prompt = self.stream.prompt.clone();
        let name = format!("r{}", uuid_like());
        let events = [
            json!({"event": {"contentStart": {"promptName": prompt, "contentName": name, "interactive": false,
                "type": "TOOL", "role": "TOOL", "toolResultInputConfiguration": {"toolUseId": tool_use_id,
                "type": "TEXT", "textInputConfiguration": {"mediaType": "text/plain"}}}}}),
            json!({"event": {"toolResult": {"promptName": prompt, "contentName": name, "content": content}}}),
            json!({"event": {"contentEnd": {"promptName": prompt, "contentName": name}}}),
        ];
        for e in &events {
            let _ = self.stream.send(e);
        }
    }

    fn rotation_due(&self) -> bool {
        self.rotating.is_none()
            && self.stream.opened.elapsed() >= self.nova.rotate_after
            && !self.agent_busy
            && self.last_agent_activity.elapsed() > Duration::from_millis(500)
    }
}

impl SpeechSession for NovaSession {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn push_audio(&mut self, audio: CallerAudio<'_>) {
        if self.closed {
            return;
        }
        for event in audio.turn {
            if let TurnEvent::TurnEnded(_) = event {
                if self.ended_early > 0 {
                    self.ended_early -= 1;
                    continue;
                }
                self.turns += 1;
                let item = format!("c{}", self.turns);
                self.caller_items.push_back(item.clone());
                if self.caller_items.len() > 16 {
                    self.caller_items.pop_front();
                }
                self.pending.push_back(SpeechEvent::CallerTurnEnded { item, at: Instant::now() });
            }
        }
        let over = (self.replay.len() + audio.pcm.len()).saturating_sub(REPLAY_SAMPLES);
        self.replay.drain(..over.min(self.replay.len()));
        self.replay.extend(audio.pcm.iter().copied());
        self.unsent.extend_from_slice(audio.pcm);
        let turn_ended = audio.turn.iter().any(|e| matches!(e, TurnEvent::TurnEnded(_)));
        if self.unsent.len() >= AUDIO_EVENT_SAMPLES || turn_ended {
            let pcm = std::mem::take(&mut self.unsent);
            self.send_audio(&pcm);
            self.unsent = pcm;
            self.unsent.clear();
        }
        if self.rotation_due() {
            self.start_rotation();
        }
    }

    fn speak(&mut self, text: &str) {
        if self.dropping && self.responding {
            self.resume_at_next_response = true;
        } else {
            self.dropping = false;
        }
        let line = format!("Say exactly this, word for word, and nothing else: {text}");
        self.send_text("USER", &line, true);
    }

    fn interrupt(&mut self, _played: Duration) {
        // Nova has no cancel: what it still sends of this response is dropped, and so
        // is what of it is queued here, not yet taken by the call.
        self.pending.retain(|e| !e.is_agent_output());
        self.dropping = true;
        self.agent_busy = false;
    }

    fn tool_result(&mut self, id: &str, outcome: &ToolOutcome) {
        self.send_tool_result(id, &outcome.to_json());
    }

    async fn next_event(&mut self) -> Option<SpeechEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.closed {
                return None;
            }
            let rotation = async {
                match &mut self.rotating {
                    Some(handle) => handle.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                done = rotation => {
                    self.rotating = None;
                    match done {
                        Ok(Ok(stream)) => self.finish_rotation(stream),
                        Ok(Err(e)) => {
                            self.closed = true;
                            return Some(SpeechEvent::Failed(format!("nova-sonic: a new stream did not open: {e}")));
                        }
                        Err(e) => {
                            self.closed = true;
                            return Some(SpeechEvent::Failed(format!("nova-sonic: rotation failed: {e}")));
                        }
                    }
                }
                received = self.events_rx.recv() => {
                    let Some((generation, event)) = received else {
                        self.closed = true;
                        return Some(SpeechEvent::Failed("nova-sonic: the stream reader stopped".into()));
                    };
                    if generation != self.generation {
                        continue;
                    }
                    match event {
                        StreamEvent::Event(e, received) => self.on_event(&e, received),
                        StreamEvent::Error(e) => self.pending.push_back(SpeechEvent::Error(e)),
                        StreamEvent::Ended(reason) => {
                            // Ended before its rotation: reconnect at once with the
                            // conversation so far, unless that is what failed.
                            if self.stream.opened.elapsed() >= Duration::from_secs(5) {
                                tracing::warn!(reason = %reason, "nova-sonic: stream ended; reconnecting with history");
                                self.start_rotation();
                            } else {
                                self.closed = true;
                                return Some(SpeechEvent::Failed(format!("nova-sonic: {reason}")));
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Drop for NovaSession {
    fn drop(&mut self) {
        if let Some(r) = self.rotating.take() {
            r.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn client() -> Client {
        let config = aws_sdk_bedrockruntime::Config::builder()
            .behavior_version(aws_sdk_bedrockruntime::config::BehaviorVersion::latest())
            .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
            .build();
        Client::from_conf(config)
    }

    #[test]
    fn streams_fill_one_connection_before_the_next_and_free_their_slot_when_dropped() {
        let pool = ClientPool { clients: vec![(client(), Arc::default()), (client(), Arc::default())] };
        let slots: Vec<StreamSlot> = (0..STREAMS_PER_CONNECTION + 5).map(|_| pool.pick().1).collect();
        let open: Vec<usize> = pool.clients.iter().map(|(_, n)| n.load(Ordering::Relaxed)).collect();
        assert_eq!(open, vec![STREAMS_PER_CONNECTION, 5], "the first connection fills before the next is used");
        drop(slots);
        assert!(pool.clients.iter().all(|(_, n)| n.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn history_starts_with_the_caller_and_fits_novas_limits() {
        let mut history = vec![(Role::Assistant, "Hello.".to_owned())];
        for i in 0..400 {
            history.push((Role::User, format!("question {i} {}", "x".repeat(500))));
            history.push((Role::Assistant, format!("answer {i} {}", "y".repeat(500))));
        }
        let kept = trim_history(&history);
        assert_eq!(kept.first().map(|m| m.0), Some(Role::User));
        assert!(kept.iter().map(|m| m.1.len()).sum::<usize>() <= HISTORY_MAX_BYTES);
        assert_eq!(kept.last(), history.last(), "the newest messages are kept");
    }
}
