//! OpenAI Realtime (GA) over WebSocket.
//!
//! One WebSocket per call to `OPENAI_REALTIME_URL` (by default
//! `wss://api.openai.com/v1/realtime?model={voice.model}`), authenticated with the
//! agent's `openai_api_key` as a bearer token (no `OpenAI-Beta` header: that is the
//! retired beta shape). After `session.created` the runtime sends one
//! `session.update`: `audio/pcmu` in and out (Twilio's μ-law passes through with no
//! transcoding), the agent's turn detection (`server_vad`, or `semantic_vad` with its
//! eagerness), its voice, its instructions and
//! tools ([`super::instructions`]), and input transcription; the session is open once
//! `session.updated` comes back.
//!
//! | runtime | OpenAI |
//! |---|---|
//! | caller audio | `input_audio_buffer.append` (the payload as Twilio sent it) |
//! | barge-in ([`SpeechSession::interrupt`]) | `response.cancel` if a response is live, then `conversation.item.truncate` of the item playing, at the milliseconds Twilio played |
//! | a line to say ([`SpeechSession::speak`]) | `response.create` with instructions to say it |
//! | a tool result | `conversation.item.create` (`function_call_output`, by `call_id`), then `response.create` when the model should go on speaking |
//!
//! Server events become [`SpeechEvent`]s: `input_audio_buffer.speech_started` →
//! caller speech started, `…speech_stopped` → the caller's turn ended (by item),
//! `conversation.item.input_audio_transcription.completed` → its text (often after
//! the reply has begun), `response.output_audio.delta` → agent audio,
//! `response.output_audio_transcript.delta` → agent text (whole words),
//! `response.function_call_arguments.done` → a tool call, `response.done` → the end
//! of the agent's turn and its token usage. An `error` event is logged and the
//! session goes on; the socket closing ends it ([`SpeechEvent::Failed`]).
//!
//! A session lasts at most 60 minutes at OpenAI; agents on this provider are limited
//! to [`agent_spec::draft::limits::OPENAI_MAX_SESSION_SECS`] so that the goodbye at the
//! maximum duration is still spoken by the model.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_spec::AgentConfig;
use agent_spec::config::TurnDetection;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::instructions::{AgentBrief, SEARCH_TOOL, parse_tool, search_query};
use super::responder::Responder;
use super::{CallerAudio, ConnectError, ItemId, SpeechEvent, SpeechSession, ToolOutcome};

const PROVIDER: &str = "openai-realtime";
/// The official endpoint; `{model}` is the agent's `voice.model`.
pub const DEFAULT_URL: &str = "wss://api.openai.com/v1/realtime?model={model}";
/// Caller audio messages queued for the socket before the provider counts as not
/// keeping up (10 s of 20 ms frames).
const SEND_QUEUE: usize = 500;
/// How long `session.updated` may take.
const HANDSHAKE: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The agent's OpenAI Realtime settings, built once.
pub struct OpenAiRealtime {
    url: String,
    api_key: SecretString,
    session_update: String,
    tls: Arc<rustls::ClientConfig>,
    /// The knowledge base's index, when it is searched through a tool.
    search: Option<Arc<Responder>>,
}

impl OpenAiRealtime {
    /// `Err` is why the provider cannot work (readiness reports it).
    pub fn new(
        config: &AgentConfig,
        api_key: Option<SecretString>,
        url: Option<String>,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let api_key = api_key.ok_or("secrets.openai_api_key is not set; the agent cannot use OpenAI Realtime")?;
        let url = url.unwrap_or_else(|| DEFAULT_URL.replace("{model}", config.voice.model.as_str()));
        let parsed = url::Url::parse(&url).map_err(|e| format!("OPENAI_REALTIME_URL {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "ws" | "wss") {
            return Err(format!("OPENAI_REALTIME_URL {url:?}: must be a ws:// or wss:// URL"));
        }
        let brief = AgentBrief::new(config);
        let session_update = session_update(config, &brief).to_string();
        let search = brief.search_tool.then(|| Arc::new(Responder::new(config)));
        Ok(Self { url, api_key, session_update, tls: Arc::new(tls_config(extra_ca_pem)?), search })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens a session: the socket, `session.update`, and its confirmation.
    pub async fn connect(&self) -> Result<OpenAiSession, ConnectError> {
        let unavailable = |reason: String| ConnectError::Unavailable { provider: PROVIDER, reason };
        let refused = |reason: String| ConnectError::Refused { provider: PROVIDER, reason };
        let mut request = self.url.as_str().into_client_request().map_err(|e| refused(e.to_string()))?;
        let bearer = format!("Bearer {}", self.api_key.expose_secret());
        request.headers_mut().insert(
            "authorization",
            bearer.parse().map_err(|_| refused("the API key is not a valid header value".into()))?,
        );
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(4 << 20))
            .read_buffer_size(16 * 1024)
            .write_buffer_size(16 * 1024);
        let connector = Connector::Rustls(Arc::clone(&self.tls));
        let (mut ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, Some(connector))
                .await
                .map_err(|e| match e {
                    tokio_tungstenite::tungstenite::Error::Http(r) => {
                        let body = r.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                        let reason = format!("HTTP {}: {}", r.status(), body.chars().take(200).collect::<String>());
                        if r.status().is_server_error() { unavailable(reason) } else { refused(reason) }
                    }
                    other => unavailable(other.to_string()),
                })?;
        let handshake = async {
            expect(&mut ws, "session.created").await?;
            ws.send(Message::text(self.session_update.clone())).await.map_err(|e| e.to_string())?;
            expect(&mut ws, "session.updated").await
        };
        match tokio::time::timeout(HANDSHAKE, handshake).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(refused(reason)),
            Err(_) => return Err(unavailable("no session.updated within 5 s".into())),
        }
        let (sink, stream) = ws.split();
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let writer = tokio::spawn(write_loop(sink, rx));
        Ok(OpenAiSession {
            tx,
            rx: stream,
            writer,
            pending: VecDeque::new(),
            search: self.search.clone(),
            response: None,
            cancelled: Vec::new(),
            items: Vec::new(),
            words: String::new(),
            calls_in_response: Vec::new(),
            talk_after: Vec::new(),
            closed: false,
            dropping_audio: false,
        })
    }
}

/// Reads until an event of `kind`; an `error` event first is the reason it failed.
async fn expect(ws: &mut Ws, kind: &str) -> Result<(), String> {
    while let Some(message) = ws.next().await {
        let message = message.map_err(|e| e.to_string())?;
        let Message::Text(text) = message else {
            if let Message::Close(frame) = message {
                return Err(format!(
                    "closed: {}",
                    frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default()
                ));
            }
            continue;
        };
        let event: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        match event["type"].as_str() {
            Some(t) if t == kind => return Ok(()),
            Some("error") => return Err(error_text(&event)),
            _ => {}
        }
    }
    Err(format!("closed before {kind}"))
}

fn error_text(event: &Value) -> String {
    let e = &event["error"];
    format!(
        "{}: {}",
        e["code"].as_str().or_else(|| e["type"].as_str()).unwrap_or("error"),
        e["message"].as_str().unwrap_or("no message")
    )
}

async fn write_loop(mut sink: SplitSink<Ws, Message>, mut rx: mpsc::Receiver<Message>) {
    while let Some(message) = rx.recv().await {
        if sink.feed(message).await.is_err() {
            return;
        }
        // Send what has queued meanwhile in one flush.
        while let Ok(message) = rx.try_recv() {
            if sink.feed(message).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// The `session.update` of an agent.
pub fn session_update(config: &AgentConfig, brief: &AgentBrief) -> Value {
    let tools: Vec<Value> = brief
        .tools
        .iter()
        .map(|t| json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}))
        .collect();
    let turn_detection = match config.voice.turn_detection.unwrap_or_default() {
        TurnDetection::ServerVad => {
            json!({"type": "server_vad", "create_response": true, "interrupt_response": true})
        }
        TurnDetection::SemanticVad => json!({
            "type": "semantic_vad",
            "eagerness": config.voice.eagerness.unwrap_or_default().as_str(),
            "create_response": true,
            "interrupt_response": true,
        }),
    };
    json!({
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "instructions": brief.instructions,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "turn_detection": turn_detection,
                    "transcription": {"model": "gpt-4o-mini-transcribe", "language": language_code(config)},
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": config.voice.voice_id.as_str()},
            },
            "tools": tools,
            "tool_choice": "auto",
        }
    })
}

/// ISO 639-1 of the agent's language tag (`en-US` → `en`).
fn language_code(config: &AgentConfig) -> String {
    config.language.as_str().split('-').next().unwrap_or("en").to_ascii_lowercase()
}

/// Public roots, plus `TEMPOVOICE_EXTRA_CA_FILE`'s.
fn tls_config(extra_ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = extra_ca_pem {
        for cert in rustls_pemfile_certs(pem)? {
            roots.add(cert).map_err(|e| format!("TEMPOVOICE_EXTRA_CA_FILE: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("TEMPOVOICE_EXTRA_CA_FILE: {e}"))
}

/// An assistant audio item of the response being played.
struct AudioItem {
    id: String,
    /// Agent-audio ms of the turn before this item.
    start_ms: u64,
    /// μ-law bytes received (8 per ms).
    bytes: u64,
}

pub struct OpenAiSession {
    tx: mpsc::Sender<Message>,
    rx: SplitStream<Ws>,
    writer: tokio::task::JoinHandle<()>,
    pending: VecDeque<SpeechEvent>,
    search: Option<Arc<Responder>>,
    /// The response being generated.
    response: Option<String>,
    /// Responses cancelled by a barge-in, whose late audio is dropped.
    cancelled: Vec<String>,
    /// Audio items of the current agent turn.
    items: Vec<AudioItem>,
    /// Transcript text not yet a whole word.
    words: String,
    /// Tool calls of the current response, and whether the model should speak after.
    calls_in_response: Vec<bool>,
    /// Tool calls whose result the model should talk about (a callback arranged).
    talk_after: Vec<String>,
    closed: bool,
    /// Audio of the response is dropped (cut by a barge-in).
    dropping_audio: bool,
}

impl Drop for OpenAiSession {
    fn drop(&mut self) {
        self.writer.abort();
    }
}

impl OpenAiSession {
    fn send(&mut self, event: Value) {
        if self.tx.try_send(Message::text(event.to_string())).is_err() {
            self.pending.push_back(SpeechEvent::Error("openai-realtime: send queue full; an event was dropped".into()));
        }
    }

    fn turn_ms(&self) -> u64 {
        self.items.last().map_or(0, |i| i.start_ms + i.bytes / 8)
    }

    /// Whole words of the transcript so far become agent text.
    fn flush_words(&mut self, all: bool) {
        let cut = if all { self.words.len() } else { self.words.rfind(char::is_whitespace).unwrap_or(0) };
        if cut == 0 {
            return;
        }
        let text: String = self.words.drain(..cut).collect();
        if !text.trim().is_empty() {
            self.pending.push_back(SpeechEvent::AgentText(text.trim().to_owned()));
        }
    }

    fn on_event(&mut self, event: Value, received: Instant) {
        let kind = event["type"].as_str().unwrap_or_default();
        let str_of = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
        match kind {
            "input_audio_buffer.speech_started" => self.pending.push_back(SpeechEvent::CallerSpeechStarted),
            "input_audio_buffer.speech_stopped" => {
                let item: ItemId = str_of("item_id");
                self.pending.push_back(SpeechEvent::CallerTurnEnded { item, at: Instant::now() });
            }
            "conversation.item.input_audio_transcription.completed" => {
                let text = str_of("transcript").trim().to_owned();
                self.pending.push_back(SpeechEvent::CallerText { item: str_of("item_id"), text });
            }
            "conversation.item.input_audio_transcription.failed" => {
                self.pending.push_back(SpeechEvent::CallerText { item: str_of("item_id"), text: String::new() });
                self.pending.push_back(SpeechEvent::Error(format!(
                    "openai-realtime: caller transcription failed: {}",
                    error_text(&event)
                )));
            }
            "response.created" => {
                self.response = event["response"]["id"].as_str().map(str::to_owned);
                self.items.clear();
                self.words.clear();
                self.calls_in_response.clear();
                self.dropping_audio = false;
            }
            "response.output_audio.delta" => {
                let response = event["response_id"].as_str().unwrap_or_default();
                if self.dropping_audio || self.cancelled.iter().any(|r| r == response) {
                    return;
                }
                let Ok(audio) = BASE64.decode(event["delta"].as_str().unwrap_or_default()) else {
                    self.pending.push_back(SpeechEvent::Error("openai-realtime: audio delta is not base64".into()));
                    return;
                };
                let item = str_of("item_id");
                if self.items.last().is_none_or(|i| i.id != item) {
                    let start_ms = self.turn_ms();
                    self.items.push(AudioItem { id: item, start_ms, bytes: 0 });
                }
                if let Some(i) = self.items.last_mut() {
                    i.bytes += audio.len() as u64;
                }
                self.flush_words(false);
                self.pending.push_back(SpeechEvent::AgentAudio { ulaw: Bytes::from(audio), received });
            }
            "response.output_audio_transcript.delta" if !self.dropping_audio => {
                self.words.push_str(event["delta"].as_str().unwrap_or_default());
            }
            "response.output_audio_transcript.done" if !self.dropping_audio => self.flush_words(true),
            "response.function_call_arguments.done" => self.on_function_call(&event),
            "response.done" => {
                let response = &event["response"];
                self.flush_words(true);
                let usage = &response["usage"];
                let (input, output) =
                    (usage["input_tokens"].as_u64().unwrap_or(0), usage["output_tokens"].as_u64().unwrap_or(0));
                if input + output > 0 {
                    self.pending.push_back(SpeechEvent::Usage { input_tokens: input, output_tokens: output });
                }
                if response["status"].as_str() == Some("failed") {
                    let detail = &response["status_details"]["error"];
                    self.pending.push_back(SpeechEvent::Error(format!(
                        "openai-realtime: response failed: {}",
                        detail["message"].as_str().unwrap_or("no detail")
                    )));
                }
                if self.response.as_deref() == response["id"].as_str() {
                    self.response = None;
                }
                // The model goes on after a tool whose result it should talk about.
                let go_on = self.calls_in_response.iter().any(|speak| *speak);
                self.calls_in_response.clear();
                if go_on {
                    self.send(json!({"type": "response.create"}));
                }
                self.pending.push_back(SpeechEvent::AgentTurnEnd);
            }
            "error" => {
                let text = error_text(&event);
                // Cancelling a response that just ended is a race, not a fault.
                if !text.starts_with("response_cancel_not_active") {
                    self.pending.push_back(SpeechEvent::Error(format!("openai-realtime: {text}")));
                }
            }
            _ => {}
        }
    }

    fn on_function_call(&mut self, event: &Value) {
        let call_id = event["call_id"].as_str().unwrap_or_default().to_owned();
        let name = event["name"].as_str().unwrap_or_default();
        let arguments = event["arguments"].as_str().unwrap_or_default();
        if name == SEARCH_TOOL {
            let query = search_query(arguments);
            let found = self.search.as_ref().and_then(|r| r.search(&query).map(str::to_owned));
            let output = match found {
                Some(passage) => json!({"result": passage}),
                None => json!({"result": "nothing in the knowledge base matches"}),
            };
            self.function_output(&call_id, &output.to_string());
            self.calls_in_response.push(true);
            return;
        }
        match parse_tool(name, arguments) {
            Ok(call) => {
                if matches!(call, super::ToolCall::ScheduleCallback { .. }) {
                    self.talk_after.push(call_id.clone());
                }
                self.pending.push_back(SpeechEvent::Tool { id: call_id, call });
            }
            Err(reason) => {
                self.function_output(&call_id, &json!({"error": reason}).to_string());
                self.calls_in_response.push(true);
                self.pending.push_back(SpeechEvent::Error(format!("openai-realtime: {reason}")));
            }
        }
    }

    fn function_output(&mut self, call_id: &str, output: &str) {
        self.send(json!({
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": output},
        }));
    }
}

impl SpeechSession for OpenAiSession {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn push_audio(&mut self, audio: CallerAudio<'_>) {
        if self.closed {
            return;
        }
        // Each message owns its text: built once, at its final size.
        let mut append = String::with_capacity(48 + audio.ulaw.len().div_ceil(3) * 4);
        append.push_str(r#"{"type":"input_audio_buffer.append","audio":""#);
        BASE64.encode_string(audio.ulaw, &mut append);
        append.push_str(r#""}"#);
        match self.tx.try_send(Message::text(append)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self
                .pending
                .push_back(SpeechEvent::Error("openai-realtime: not keeping up; caller audio dropped".into())),
            Err(mpsc::error::TrySendError::Closed(_)) => self.closed = true,
        }
    }

    fn speak(&mut self, text: &str) {
        self.send(json!({
            "type": "response.create",
            "response": {
                "instructions": format!("Say exactly this, word for word, and nothing else: {text}"),
                "tool_choice": "none",
            }
        }));
    }

    fn interrupt(&mut self, played: Duration) {
        if let Some(response) = self.response.take() {
            self.send(json!({"type": "response.cancel", "response_id": response}));
            self.cancelled.push(response);
            if self.cancelled.len() > 16 {
                self.cancelled.remove(0);
            }
        }
        self.dropping_audio = true;
        // What of the cut response is queued here, not yet taken by the call, goes too.
        self.pending.retain(|e| !e.is_agent_output());
        self.words.clear();
        let played_ms = played.as_millis() as u64;
        // The item playing at that moment keeps what was heard; the model's memory of
        // its own words then matches the caller's.
        let playing = self.items.iter().rev().find(|i| i.start_ms <= played_ms).or(self.items.first());
        if let Some(item) = playing {
            let audio_end_ms = played_ms.saturating_sub(item.start_ms).min(item.bytes / 8);
            let truncate = json!({
                "type": "conversation.item.truncate",
                "item_id": item.id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            });
            self.send(truncate);
        }
        self.items.clear();
    }

    fn tool_result(&mut self, id: &str, outcome: &ToolOutcome) {
        self.function_output(id, &outcome.to_json());
        // After end_call, transfer_call or voicemail the model has nothing to add;
        // after a callback is arranged, or anything failed, it tells the caller.
        let speak_after = !outcome.ok || self.talk_after.iter().any(|c| c == id);
        self.talk_after.retain(|c| c != id);
        self.calls_in_response.push(speak_after);
    }

    async fn next_event(&mut self) -> Option<SpeechEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.closed {
                return None;
            }
            match self.rx.next().await {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(&text) {
                    Ok(event) => self.on_event(event, Instant::now()),
                    Err(e) => {
                        self.pending.push_back(SpeechEvent::Error(format!("openai-realtime: event is not JSON: {e}")))
                    }
                },
                Some(Ok(Message::Close(frame))) => {
                    self.closed = true;
                    let why = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_else(|| "no reason".into());
                    return Some(SpeechEvent::Failed(format!("openai-realtime closed the session: {why}")));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    self.closed = true;
                    return Some(SpeechEvent::Failed(format!("openai-realtime connection lost: {e}")));
                }
                None => {
                    self.closed = true;
                    return Some(SpeechEvent::Failed("openai-realtime connection closed".into()));
                }
            }
        }
    }
}
