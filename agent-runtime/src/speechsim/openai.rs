//! A fake OpenAI Realtime server speaking the GA WebSocket protocol.
//!
//! It checks what a real server would refuse (the bearer key, the retired
//! `OpenAI-Beta` header, `session.update` with `audio/pcmu` both ways and a known
//! voice, events only after the session is configured, tool outputs naming a
//! `call_id` it issued, truncations within the item's audio) and records every
//! breach in [`FakeLog::violations`]. It converses with the agent's own offline brain:
//! earshot hears the caller's turns (`speech_started`, `speech_stopped`,
//! `committed`), PocketSphinx transcribes them, the knowledge-base responder picks
//! the reply and its tool (cue words: "goodbye" → `end_call`, "person" →
//! `transfer_call`, "message" → `voicemail`, "call me back …" → `schedule_callback`),
//! and espeak-ng speaks it as μ-law `response.output_audio.delta`s, five times faster
//! than real time, as the real service streams ahead of playback. Speech during a
//! response cancels it (`interrupt_response`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_util::sync::CancellationToken;

use crate::speech::ToolCall;
use crate::speech::local::LocalPipeline;
use crate::speech::vad::TurnEvent;

/// OpenAI Realtime's voices.
const VOICES: &[&str] = &["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"];
/// Audio per `response.output_audio.delta` (100 ms of μ-law).
const DELTA_BYTES: usize = 800;

#[derive(Clone)]
pub struct OpenAiFakeOptions {
    pub api_key: String,
    /// The agent's offline brain (recognizer, responder, voice).
    pub brain: Arc<LocalPipeline>,
    /// Send each caller transcript only after the reply's first audio (as the real
    /// service often does).
    pub late_transcripts: bool,
    /// Close the socket, without a close frame, after this many responses.
    pub drop_after_responses: Option<u32>,
    /// How the fake hears the caller's turns.
    pub hearing: super::Hearing,
}

/// What the fake saw, for assertions.
#[derive(Debug, Default, Clone)]
pub struct FakeLog {
    pub sessions: u32,
    /// Protocol breaches; a correct client leaves this empty.
    pub violations: Vec<String>,
    /// The `session.update` of the last session.
    pub session: Option<Value>,
    /// Every client event type, in order.
    pub client_events: Vec<String>,
    /// (item id, audio_end_ms, audio ms the item had).
    pub truncates: Vec<(String, u64, u64)>,
    /// (call id, output) of each `function_call_output`.
    pub tool_outputs: Vec<(String, String)>,
    /// Tool calls the fake made: (call id, name).
    pub tool_calls: Vec<(String, String)>,
    /// Lines spoken on `response.create` instructions.
    pub spoken_lines: Vec<String>,
}

pub struct OpenAiFake {
    pub addr: SocketAddr,
    log: Arc<Mutex<FakeLog>>,
    stop: CancellationToken,
}

impl Drop for OpenAiFake {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl OpenAiFake {
    /// Serves on `addr` (port 0 for any) until dropped.
    pub async fn start(addr: SocketAddr, options: OpenAiFakeOptions) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(FakeLog::default()));
        let stop = CancellationToken::new();
        let l = Arc::clone(&log);
        super::accept_until_stopped(listener, stop.clone(), move |tcp| serve(tcp, options.clone(), Arc::clone(&l)));
        Ok(Self { addr, log, stop })
    }

    /// The URL to give the runtime as `OPENAI_REALTIME_URL`.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/realtime?model=gpt-realtime", self.addr)
    }

    pub fn log(&self) -> FakeLog {
        self.log.lock().expect("fake log lock").clone()
    }
}

fn violation(log: &Mutex<FakeLog>, what: impl Into<String>) {
    let what = what.into();
    tracing::warn!(violation = %what, "openai fake: protocol breach");
    log.lock().expect("fake log lock").violations.push(what);
}

#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
async fn serve(tcp: tokio::net::TcpStream, options: OpenAiFakeOptions, log: Arc<Mutex<FakeLog>>) {
    let (key, l) = (options.api_key.clone(), Arc::clone(&log));
    let check = move |request: &Request, response: Response| check_handshake(&key, &l, request, response);
    // As the runtime's own reader: small reads, not tungstenite's 128 KiB buffer
    // zeroed on each.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(4 << 20))
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(tcp, check, Some(config)).await else { return };
    log.lock().expect("fake log lock").sessions += 1;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Value>>();
    let writer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            match event {
                Some(e) => {
                    if sink.send(Message::text(e.to_string())).await.is_err() {
                        return;
                    }
                }
                // Dropped without a close frame: a lost connection.
                None => return,
            }
        }
    });
    let ear = super::FakeEar::new(options.hearing);
    let mut conn = Connection {
        options,
        log: Arc::clone(&log),
        tx: tx.clone(),
        configured: false,
        vad: ear,
        appended_ms: 0,
        turns: 0,
        responses: Arc::new(Mutex::new(Responses::default())),
        speaking: None,
    };
    let _ = tx.send(Some(json!({"type": "session.created", "event_id": "ev_0", "session": {"type": "realtime"}})));
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else { continue };
        let Ok(event) = serde_json::from_str::<Value>(&text) else {
            violation(&log, "a client event is not JSON");
            continue;
        };
        conn.on_event(event).await;
        if conn.responses.lock().expect("responses lock").dropped {
            break;
        }
    }
    if let Some(s) = conn.speaking.take() {
        s.cancel();
    }
    drop(tx);
    drop(conn);
    let _ = writer.await;
}

/// Refuses what OpenAI refuses at the handshake.
#[allow(clippy::result_large_err)] // tungstenite's handshake callback returns this type
fn check_handshake(
    key: &str,
    log: &Mutex<FakeLog>,
    request: &Request,
    response: Response,
) -> Result<Response, ErrorResponse> {
    use tokio_tungstenite::tungstenite::http::StatusCode;
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let refuse = |status: StatusCode, why: &str| {
        let mut refused = ErrorResponse::new(Some(why.to_owned()));
        *refused.status_mut() = status;
        refused
    };
    if header("openai-beta").is_some() {
        violation(log, "OpenAI-Beta header sent: the beta interface is retired");
        return Err(refuse(StatusCode::BAD_REQUEST, "beta_api_shape_disabled"));
    }
    if header("authorization").as_deref() != Some(&format!("Bearer {key}")) {
        violation(log, "missing or wrong bearer key");
        return Err(refuse(StatusCode::UNAUTHORIZED, "invalid_api_key"));
    }
    Ok(response)
}

#[derive(Default)]
struct Responses {
    done: u32,
    next_id: u32,
    /// Audio ms sent per assistant item.
    items: HashMap<String, u64>,
    /// Tool call ids issued and not yet answered.
    open_calls: Vec<String>,
    dropped: bool,
}

struct Connection {
    options: OpenAiFakeOptions,
    log: Arc<Mutex<FakeLog>>,
    tx: mpsc::UnboundedSender<Option<Value>>,
    configured: bool,
    vad: super::FakeEar,
    appended_ms: u64,
    turns: u32,
    responses: Arc<Mutex<Responses>>,
    /// The response being spoken.
    speaking: Option<CancellationToken>,
}

impl Connection {
    fn send(&self, event: Value) {
        let _ = self.tx.send(Some(event));
    }

    async fn on_event(&mut self, event: Value) {
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        self.log.lock().expect("fake log lock").client_events.push(kind.clone());
        if kind != "session.update" && !self.configured {
            violation(&self.log, format!("{kind} before session.update"));
        }
        match kind.as_str() {
            "session.update" => self.on_session_update(&event),
            "input_audio_buffer.append" => self.on_append(&event),
            "response.create" => {
                let instructions = event["response"]["instructions"].as_str().unwrap_or_default();
                let line = match instructions.rsplit_once("nothing else: ") {
                    Some((_, line)) => {
                        self.log.lock().expect("fake log lock").spoken_lines.push(line.to_owned());
                        line.to_owned()
                    }
                    None => "Is there anything else I can help you with?".to_owned(),
                };
                self.respond(line, None, None);
            }
            "response.cancel" => {
                if let Some(s) = self.speaking.take() {
                    s.cancel();
                }
            }
            "conversation.item.truncate" => {
                let item = event["item_id"].as_str().unwrap_or_default().to_owned();
                let end = event["audio_end_ms"].as_u64().unwrap_or(u64::MAX);
                if event["content_index"].as_u64() != Some(0) {
                    violation(&self.log, "truncate without content_index 0");
                }
                let had = self.responses.lock().expect("responses lock").items.get(&item).copied();
                match had {
                    None => violation(&self.log, format!("truncate of unknown item {item}")),
                    Some(ms) if end > ms => {
                        violation(&self.log, format!("truncate at {end} ms beyond the item's {ms} ms"))
                    }
                    Some(ms) => {
                        self.log.lock().expect("fake log lock").truncates.push((item.clone(), end, ms));
                        self.send(json!({"type": "conversation.item.truncated", "item_id": item, "content_index": 0, "audio_end_ms": end}));
                    }
                }
            }
            "conversation.item.create" => {
                let item = &event["item"];
                if item["type"] == "function_call_output" {
                    let call_id = item["call_id"].as_str().unwrap_or_default().to_owned();
                    let output = item["output"].as_str().unwrap_or_default().to_owned();
                    let known = {
                        let mut r = self.responses.lock().expect("responses lock");
                        let at = r.open_calls.iter().position(|c| *c == call_id);
                        at.map(|i| r.open_calls.remove(i)).is_some()
                    };
                    if !known {
                        violation(&self.log, format!("function_call_output for unknown call_id {call_id:?}"));
                    }
                    if serde_json::from_str::<Value>(&output).is_err() {
                        violation(&self.log, "function_call_output is not a JSON string");
                    }
                    self.log.lock().expect("fake log lock").tool_outputs.push((call_id, output));
                }
            }
            other => violation(&self.log, format!("unexpected client event {other}")),
        }
    }

    fn on_session_update(&mut self, event: &Value) {
        let s = &event["session"];
        let mut problems = Vec::new();
        if s["type"] != "realtime" {
            problems.push("session.type must be realtime".to_owned());
        }
        if s["audio"]["input"]["format"]["type"] != "audio/pcmu" {
            problems.push("input audio must be audio/pcmu".to_owned());
        }
        if s["audio"]["output"]["format"]["type"] != "audio/pcmu" {
            problems.push("output audio must be audio/pcmu".to_owned());
        }
        if !s["audio"]["output"]["voice"].as_str().is_some_and(|v| VOICES.contains(&v)) {
            problems.push(format!("unknown voice {}", s["audio"]["output"]["voice"]));
        }
        let turns = &s["audio"]["input"]["turn_detection"];
        match (turns["type"].as_str(), turns.get("eagerness").and_then(Value::as_str)) {
            (Some("server_vad"), None) => {}
            (Some("semantic_vad"), None | Some("low" | "medium" | "high" | "auto")) => {}
            (Some("server_vad"), Some(_)) => problems.push("eagerness is a semantic_vad setting".to_owned()),
            _ => problems.push(format!("turn_detection must be server_vad or semantic_vad: {turns}")),
        }
        if s.get("temperature").is_some() {
            problems.push("Unknown parameter: 'session.temperature'.".to_owned());
        }
        for tool in s["tools"].as_array().into_iter().flatten() {
            if tool["type"] != "function" || !tool["name"].is_string() || !tool["parameters"].is_object() {
                problems.push(format!("malformed tool {tool}"));
            }
        }
        if s["instructions"].as_str().is_none_or(|i| i.trim().is_empty()) {
            problems.push("no instructions".to_owned());
        }
        self.log.lock().expect("fake log lock").session = Some(s.clone());
        if problems.is_empty() {
            self.configured = true;
            self.send(json!({"type": "session.updated", "session": s}));
        } else {
            for p in &problems {
                violation(&self.log, p.clone());
            }
            self.send(json!({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_value", "message": problems.join("; ")}}));
        }
    }

    fn on_append(&mut self, event: &Value) {
        let Ok(ulaw) = BASE64.decode(event["audio"].as_str().unwrap_or_default()) else {
            violation(&self.log, "append audio is not base64");
            return;
        };
        let mut pcm = Vec::with_capacity(ulaw.len());
        crate::audio::decode_into(&ulaw, &mut pcm);
        self.appended_ms += ulaw.len() as u64 / 8;
        let mut events = Vec::new();
        self.vad.push(&pcm, &mut events);
        for e in events {
            match e {
                TurnEvent::SpeechStarted => {
                    self.turns += 1;
                    self.send(json!({
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": self.appended_ms.saturating_sub(300),
                        "item_id": format!("item_caller_{}", self.turns),
                    }));
                    // interrupt_response: speech cancels the response being spoken.
                    if let Some(s) = self.speaking.take() {
                        s.cancel();
                    }
                }
                TurnEvent::TurnEnded(utterance) => {
                    let item = format!("item_caller_{}", self.turns);
                    self.send(json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": self.appended_ms, "item_id": item}));
                    self.send(
                        json!({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": null}),
                    );
                    let brain = Arc::clone(&self.options.brain);
                    let text = tokio::task::block_in_place(|| brain.recognize(&utterance));
                    let reply = brain.responder().reply(&text);
                    let transcript = json!({
                        "type": "conversation.item.input_audio_transcription.completed",
                        "item_id": item, "content_index": 0, "transcript": text,
                    });
                    let late = if self.options.late_transcripts {
                        Some(transcript)
                    } else {
                        self.send(transcript);
                        None
                    };
                    self.respond(reply.text, reply.tool, late);
                }
            }
        }
    }

    /// Speaks `line` as a response, then calls `tool`; `late` goes out after the
    /// first audio.
    fn respond(&mut self, line: String, tool: Option<ToolCall>, late: Option<Value>) {
        if let Some(s) = self.speaking.take() {
            s.cancel();
        }
        let cancel = CancellationToken::new();
        self.speaking = Some(cancel.clone());
        let (tx, responses, brain, log) =
            (self.tx.clone(), Arc::clone(&self.responses), Arc::clone(&self.options.brain), Arc::clone(&self.log));
        let drop_after = self.options.drop_after_responses;
        tokio::spawn(async move {
            let n = {
                let mut r = responses.lock().expect("responses lock");
                r.next_id += 1;
                r.next_id
            };
            let (response_id, item_id) = (format!("resp_{n}"), format!("item_agent_{n}"));
            let send = |e: Value| {
                let _ = tx.send(Some(e));
            };
            send(json!({"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}));
            send(
                json!({"type": "response.output_item.added", "response_id": response_id, "item": {"id": item_id, "type": "message", "role": "assistant"}}),
            );
            let mut late = late;
            let mut status = "completed";
            'speech: for (sentence, audio) in super::voice(&brain, &line).await {
                send(
                    json!({"type": "response.output_audio_transcript.delta", "response_id": response_id, "item_id": item_id, "delta": format!("{sentence} ")}),
                );
                for chunk in audio.chunks(DELTA_BYTES) {
                    if cancel.is_cancelled() {
                        status = "cancelled";
                        break 'speech;
                    }
                    send(
                        json!({"type": "response.output_audio.delta", "response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0, "delta": BASE64.encode(chunk)}),
                    );
                    *responses.lock().expect("responses lock").items.entry(item_id.clone()).or_default() +=
                        chunk.len() as u64 / 8;
                    if let Some(t) = late.take() {
                        send(t);
                    }
                    // Five times real time.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            if let Some(t) = late.take() {
                send(t);
            }
            send(json!({"type": "response.output_audio.done", "response_id": response_id, "item_id": item_id}));
            send(
                json!({"type": "response.output_audio_transcript.done", "response_id": response_id, "item_id": item_id, "transcript": line}),
            );
            if let (Some(tool), "completed") = (tool, status) {
                let call_id = format!("call_{n}");
                let (name, arguments) = match &tool {
                    ToolCall::ScheduleCallback { requested_time, .. } => {
                        (tool.name(), json!({"requested_time": requested_time}).to_string())
                    }
                    other => (other.name(), "{}".to_owned()),
                };
                responses.lock().expect("responses lock").open_calls.push(call_id.clone());
                log.lock().expect("fake log lock").tool_calls.push((call_id.clone(), name.to_owned()));
                send(
                    json!({"type": "response.output_item.added", "response_id": response_id, "item": {"id": format!("fc_{n}"), "type": "function_call", "call_id": call_id, "name": name}}),
                );
                send(
                    json!({"type": "response.function_call_arguments.done", "response_id": response_id, "item_id": format!("fc_{n}"), "call_id": call_id, "name": name, "arguments": arguments}),
                );
            }
            send(
                json!({"type": "response.done", "response": {"id": response_id, "status": status, "usage": {"input_tokens": 120, "output_tokens": 40}}}),
            );
            let mut r = responses.lock().expect("responses lock");
            r.done += 1;
            if drop_after.is_some_and(|d| r.done >= d) {
                r.dropped = true;
                let _ = tx.send(None);
            }
        });
    }
}
