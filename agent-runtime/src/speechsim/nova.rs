//! A fake Amazon Nova Sonic: Bedrock Runtime's
//! `POST /model/{modelId}/invoke-with-bidirectional-stream` over HTTP/2 and TLS (a
//! self-signed certificate the runtime trusts through `TEMPOVOICE_EXTRA_CA_FILE`),
//! with AWS event-stream framing both ways, so the real `aws-sdk-bedrockruntime`
//! client talks to it.
//!
//! It asserts what the service would refuse, recording each breach in
//! [`NovaLog::violations`]: a request not signed with SigV4 for `bedrock` in the
//! expected region, an unknown model, input events not each signed (`:chunk-signature`),
//! events out of order (`sessionStart`, `promptStart`, then contents), audio other than
//! 8 kHz 16-bit mono LPCM, an unknown voice, a tool result for a `toolUseId` it never
//! issued. It converses like [`super::openai`]: earshot turns, PocketSphinx, the
//! knowledge-base responder and its tool cue words, espeak-ng; a caller speaking over
//! an answer gets Nova's `{ "interrupted" : true }`. With `stream_limit` it ends every
//! stream that long after it opened, as Nova does at 8 minutes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder, read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::speech::ToolCall;
use crate::speech::local::LocalPipeline;
use crate::speech::vad::TurnEvent;

/// Nova 2 Sonic's voices.
const VOICES: &[&str] = &[
    "tiffany", "matthew", "amy", "olivia", "lupe", "carlos", "ambre", "florian", "lennart", "beatrice", "lorenzo",
    "tina", "carolina", "leo", "kiara", "arjun", "greta",
];
const MODELS: &[&str] = &["amazon.nova-2-sonic-v1:0", "amazon.nova-sonic-v1:0"];
/// PCM16 bytes per `audioOutput` (100 ms at 8 kHz).
const AUDIO_CHUNK: usize = 1_600;

#[derive(Clone)]
pub struct NovaFakeOptions {
    /// The access key id the requests must be signed with.
    pub access_key_id: String,
    pub region: String,
    pub brain: Arc<LocalPipeline>,
    /// End each stream this long after it opened.
    pub stream_limit: Option<Duration>,
    /// How the fake hears the caller's turns.
    pub hearing: super::Hearing,
}

/// What the fake saw, for assertions.
#[derive(Debug, Default, Clone)]
pub struct NovaLog {
    pub streams: u32,
    pub violations: Vec<String>,
    /// The history (role, text) each stream opened with.
    pub histories: Vec<Vec<(String, String)>>,
    pub system_prompts: Vec<String>,
    pub voices: Vec<String>,
    /// Each stream's `sessionStart` body.
    pub session_starts: Vec<Value>,
    /// Tool uses the fake made: (toolUseId, name).
    pub tool_uses: Vec<(String, String)>,
    /// Tool results it got: (toolUseId, content).
    pub tool_results: Vec<(String, String)>,
    /// Lines the client asked it to say.
    pub spoken_lines: Vec<String>,
    /// Streams closed by the client with contentEnd, promptEnd and sessionEnd.
    pub closed_cleanly: u32,
}

pub struct NovaFake {
    pub addr: SocketAddr,
    ca_pem: String,
    log: Arc<Mutex<NovaLog>>,
    stop: CancellationToken,
}

impl Drop for NovaFake {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl NovaFake {
    pub async fn start(addr: SocketAddr, options: NovaFakeOptions) -> anyhow::Result<Self> {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)?;
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(NovaLog::default()));
        let stop = CancellationToken::new();
        let (l, s) = (Arc::clone(&log), stop.clone());
        super::accept_until_stopped(listener, stop.clone(), move |tcp| {
            let (acceptor, options, log, stop) = (acceptor.clone(), options.clone(), Arc::clone(&l), s.clone());
            async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |request| {
                    let (options, log, stop) = (options.clone(), Arc::clone(&log), stop.clone());
                    async move { Ok::<_, Infallible>(handle(request, options, log, stop).await) }
                });
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            }
        });
        Ok(Self { addr, ca_pem: cert.cert.pem(), log, stop })
    }

    /// The endpoint to give the runtime as `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// The certificate to trust (`TEMPOVOICE_EXTRA_CA_FILE`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn log(&self) -> NovaLog {
        self.log.lock().expect("nova log lock").clone()
    }
}

fn violation(log: &Mutex<NovaLog>, what: impl Into<String>) {
    let what = what.into();
    tracing::warn!(violation = %what, "nova fake: protocol breach");
    log.lock().expect("nova log lock").violations.push(what);
}

type Body = StreamBody<futures::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

async fn handle(
    request: hyper::Request<hyper::body::Incoming>,
    options: NovaFakeOptions,
    log: Arc<Mutex<NovaLog>>,
    stop: CancellationToken,
) -> hyper::Response<Body> {
    let refuse = |status: u16, kind: &str, message: String| {
        let body = json!({"message": message}).to_string();
        let stream = futures::stream::once(async move { Ok(Frame::data(Bytes::from(body))) });
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("x-amzn-errortype", kind)
            .body(StreamBody::new(Box::pin(stream) as futures::stream::BoxStream<'static, _>))
            .expect("a valid response")
    };
    let path = request.uri().path().to_owned();
    let model = path.strip_prefix("/model/").and_then(|p| p.strip_suffix("/invoke-with-bidirectional-stream"));
    let model = model.map(|m| m.replace("%3A", ":").replace("%3a", ":"));
    if request.method() != hyper::Method::POST || model.is_none() {
        violation(&log, format!("{} {path}: not the bidirectional stream operation", request.method()));
        return refuse(404, "UnknownOperationException", "unknown operation".into());
    }
    let model = model.unwrap_or_default();
    if !MODELS.contains(&model.as_str()) {
        violation(&log, format!("unknown model {model}"));
        return refuse(400, "ValidationException", format!("The provided model identifier is invalid: {model}"));
    }
    let auth = request.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let scope = format!("Credential={}/", options.access_key_id);
    let service = format!("/{}/bedrock/aws4_request", options.region);
    if !auth.starts_with("AWS4-HMAC-SHA256 ") || !auth.contains(&scope) || !auth.contains(&service) {
        violation(&log, format!("request not signed for bedrock in {}: {auth:?}", options.region));
        return refuse(403, "AccessDeniedException", "The security token included in the request is invalid".into());
    }
    if request.headers().get("content-type").and_then(|v| v.to_str().ok()) != Some("application/vnd.amazon.eventstream")
    {
        violation(&log, "content-type is not application/vnd.amazon.eventstream");
    }
    log.lock().expect("nova log lock").streams += 1;
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let out = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))));
    let mut stream = Stream::new(options.clone(), Arc::clone(&log), tx, model);
    let input = request.into_body();
    tokio::spawn(async move {
        let limit = options.stream_limit.unwrap_or(Duration::from_secs(8 * 60));
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(limit) => {
                tracing::info!("nova fake: stream limit reached; ending the stream");
            }
            () = stream.run(input) => {}
        }
        stream.end();
    });
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/vnd.amazon.eventstream")
        .body(StreamBody::new(Box::pin(out) as futures::stream::BoxStream<'static, _>))
        .expect("a valid response")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    New,
    Session,
    Prompt,
    Audio,
    Ended,
}

/// One stream's conversation.
struct Stream {
    options: NovaFakeOptions,
    log: Arc<Mutex<NovaLog>>,
    tx: Option<mpsc::UnboundedSender<Bytes>>,
    phase: Phase,
    /// The model the stream was opened for.
    model: String,
    prompt: String,
    /// Open input contents: name → (type, role, toolUseId).
    contents: HashMap<String, (String, String, Option<String>)>,
    history: Vec<(String, String)>,
    vad: super::FakeEar,
    speaking: Option<CancellationToken>,
    next_id: Arc<Mutex<u32>>,
    open_tools: Arc<Mutex<Vec<String>>>,
    usage: Arc<Mutex<(u64, u64)>>,
    closing: Vec<&'static str>,
}

impl Stream {
    fn new(
        options: NovaFakeOptions,
        log: Arc<Mutex<NovaLog>>,
        tx: mpsc::UnboundedSender<Bytes>,
        model: String,
    ) -> Self {
        let vad = super::FakeEar::new(options.hearing);
        Self {
            options,
            log,
            tx: Some(tx),
            phase: Phase::New,
            model,
            prompt: String::new(),
            contents: HashMap::new(),
            history: Vec::new(),
            vad,
            speaking: None,
            next_id: Arc::new(Mutex::new(0)),
            open_tools: Arc::new(Mutex::new(Vec::new())),
            usage: Arc::new(Mutex::new((0, 0))),
            closing: Vec::new(),
        }
    }

    fn end(&mut self) {
        if let Some(s) = self.speaking.take() {
            s.cancel();
        }
        self.tx = None;
    }

    async fn run(&mut self, mut input: hyper::body::Incoming) {
        let mut decoder = MessageFrameDecoder::new();
        let mut buffer = BytesMut::new();
        while let Some(frame) = input.frame().await {
            let Ok(frame) = frame else { return };
            let Ok(data) = frame.into_data() else { continue };
            buffer.extend_from_slice(&data);
            loop {
                match decoder.decode_frame(&mut buffer) {
                    Ok(DecodedFrame::Complete(message)) => {
                        if !self.on_signed(message).await {
                            return;
                        }
                    }
                    Ok(DecodedFrame::Incomplete) => break,
                    Err(e) => {
                        violation(&self.log, format!("undecodable event-stream frame: {e}"));
                        return;
                    }
                }
            }
        }
    }

    /// An outer (signed) message; returns whether the stream goes on.
    async fn on_signed(&mut self, message: Message) -> bool {
        let signed = message.headers().iter().any(|h| h.name().as_str() == ":chunk-signature");
        if !signed {
            violation(&self.log, "an input event is not signed (:chunk-signature)");
        }
        if message.payload().is_empty() {
            // The signed empty message that ends the input.
            return false;
        }
        let inner = if signed {
            match read_message_from(message.payload().clone()) {
                Ok(m) => m,
                Err(e) => {
                    violation(&self.log, format!("a signed envelope holds no event: {e}"));
                    return true;
                }
            }
        } else {
            message
        };
        let event_type = inner
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":event-type")
            .and_then(|h| h.value().as_string().ok().map(|s| s.as_str().to_owned()));
        if event_type.as_deref() != Some("chunk") {
            violation(&self.log, format!("input event type {event_type:?}, not chunk"));
            return true;
        }
        let part: Value = serde_json::from_slice(inner.payload()).unwrap_or_default();
        let Some(bytes) = part["bytes"].as_str().and_then(|b| BASE64.decode(b).ok()) else {
            violation(&self.log, "a chunk without base64 bytes");
            return true;
        };
        let Ok(event) = serde_json::from_slice::<Value>(&bytes) else {
            violation(&self.log, "a chunk's bytes are not JSON");
            return true;
        };
        self.on_event(&event).await;
        self.phase != Phase::Ended
    }

    async fn on_event(&mut self, event: &Value) {
        let Some((kind, body)) = event["event"].as_object().and_then(|o| o.iter().next()) else {
            violation(&self.log, format!("not an event: {event}"));
            return;
        };
        let expect = |ok: bool, log: &Mutex<NovaLog>, what: &str| {
            if !ok {
                violation(log, format!("{what} out of order"));
            }
        };
        match kind.as_str() {
            "sessionStart" => {
                expect(self.phase == Phase::New, &self.log, "sessionStart");
                self.phase = Phase::Session;
                let temperature = body["inferenceConfiguration"]["temperature"].as_f64();
                if !temperature.is_some_and(|t| (0.0..=1.0).contains(&t)) {
                    violation(&self.log, format!("inference temperature must be 0 to 1: {body}"));
                }
                let turns = &body["turnDetectionConfiguration"];
                if !turns.is_null() {
                    if !matches!(turns["endpointingSensitivity"].as_str(), Some("HIGH" | "MEDIUM" | "LOW")) {
                        violation(&self.log, format!("endpointingSensitivity must be HIGH, MEDIUM or LOW: {turns}"));
                    }
                    if self.model != "amazon.nova-2-sonic-v1:0" {
                        violation(&self.log, format!("{} has no turnDetectionConfiguration", self.model));
                    }
                }
                self.log.lock().expect("nova log lock").session_starts.push(body.clone());
            }
            "promptStart" => {
                expect(self.phase == Phase::Session, &self.log, "promptStart");
                self.phase = Phase::Prompt;
                self.prompt = body["promptName"].as_str().unwrap_or_default().to_owned();
                let audio = &body["audioOutputConfiguration"];
                if audio["sampleRateHertz"] != 8000
                    || audio["sampleSizeBits"] != 16
                    || audio["mediaType"] != "audio/lpcm"
                {
                    violation(&self.log, format!("audio output must be 8 kHz 16-bit LPCM: {audio}"));
                }
                let voice = audio["voiceId"].as_str().unwrap_or_default().to_owned();
                if !VOICES.contains(&voice.as_str()) {
                    violation(&self.log, format!("unknown voice {voice:?}"));
                }
                for tool in body["toolConfiguration"]["tools"].as_array().into_iter().flatten() {
                    let schema = tool["toolSpec"]["inputSchema"]["json"].as_str();
                    if schema.and_then(|s| serde_json::from_str::<Value>(s).ok()).is_none() {
                        violation(&self.log, format!("a tool's inputSchema.json must be a JSON string: {tool}"));
                    }
                }
                self.log.lock().expect("nova log lock").voices.push(voice);
            }
            "contentStart" => {
                if self.phase == Phase::New || self.phase == Phase::Session {
                    violation(&self.log, "contentStart before promptStart");
                }
                if body["promptName"] != self.prompt.as_str() {
                    violation(&self.log, "contentStart names another prompt");
                }
                let name = body["contentName"].as_str().unwrap_or_default().to_owned();
                let kind = body["type"].as_str().unwrap_or_default().to_owned();
                let role = body["role"].as_str().unwrap_or_default().to_owned();
                let tool_use = body["toolResultInputConfiguration"]["toolUseId"].as_str().map(str::to_owned);
                if kind == "AUDIO" {
                    let a = &body["audioInputConfiguration"];
                    if a["sampleRateHertz"] != 8000 || a["sampleSizeBits"] != 16 || a["channelCount"] != 1 {
                        violation(&self.log, format!("audio input must be 8 kHz 16-bit mono: {a}"));
                    }
                    self.phase = Phase::Audio;
                    self.log.lock().expect("nova log lock").histories.push(self.history.clone());
                }
                if kind == "TOOL" {
                    let known = tool_use.as_ref().is_some_and(|id| {
                        let mut open = self.open_tools.lock().expect("tools lock");
                        let at = open.iter().position(|t| t == id);
                        at.map(|i| open.remove(i)).is_some()
                    });
                    if !known {
                        violation(&self.log, format!("a tool result for unknown toolUseId {tool_use:?}"));
                    }
                }
                self.contents.insert(name, (kind, role, tool_use));
            }
            "textInput" => {
                let name = body["contentName"].as_str().unwrap_or_default();
                let text = body["content"].as_str().unwrap_or_default().to_owned();
                match self.contents.get(name).cloned() {
                    Some((_, role, _)) if role == "SYSTEM" => {
                        self.log.lock().expect("nova log lock").system_prompts.push(text);
                    }
                    Some((_, role, _)) if self.phase == Phase::Audio && role == "USER" => {
                        // Cross-modal text: a line the client wants said.
                        let line = text.rsplit_once("nothing else: ").map_or(text.clone(), |(_, l)| l.to_owned());
                        self.log.lock().expect("nova log lock").spoken_lines.push(line.clone());
                        self.respond(None, line, None);
                    }
                    Some((_, role, _)) => self.history.push((role, text)),
                    None => violation(&self.log, format!("textInput for unknown content {name}")),
                }
            }
            "toolResult" => {
                let name = body["contentName"].as_str().unwrap_or_default();
                let content = body["content"].as_str().unwrap_or_default().to_owned();
                match self.contents.get(name).and_then(|c| c.2.clone()) {
                    Some(id) => self.log.lock().expect("nova log lock").tool_results.push((id, content)),
                    None => violation(&self.log, "toolResult outside a TOOL content"),
                }
            }
            "audioInput" => {
                if self.phase != Phase::Audio {
                    violation(&self.log, "audioInput before the audio content");
                    return;
                }
                let Some(pcm) = body["content"].as_str().and_then(|c| BASE64.decode(c).ok()) else {
                    violation(&self.log, "audioInput without base64 content");
                    return;
                };
                let samples: Vec<i16> = pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
                self.on_audio(&samples);
            }
            "contentEnd" => {
                let name = body["contentName"].as_str().unwrap_or_default();
                if let Some((kind, _, _)) = self.contents.remove(name) {
                    if kind == "AUDIO" {
                        self.closing.push("contentEnd");
                    }
                } else {
                    violation(&self.log, format!("contentEnd of unknown content {name}"));
                }
            }
            "promptEnd" => self.closing.push("promptEnd"),
            "sessionEnd" => {
                self.closing.push("sessionEnd");
                if self.closing == ["contentEnd", "promptEnd", "sessionEnd"] {
                    self.log.lock().expect("nova log lock").closed_cleanly += 1;
                }
                self.phase = Phase::Ended;
            }
            other => violation(&self.log, format!("unknown input event {other}")),
        }
    }

    fn on_audio(&mut self, samples: &[i16]) {
        let mut events = Vec::new();
        self.vad.push(samples, &mut events);
        for e in events {
            match e {
                TurnEvent::SpeechStarted => {
                    if let Some(s) = self.speaking.take() {
                        if !s.is_cancelled() {
                            s.cancel();
                        }
                    }
                }
                TurnEvent::TurnEnded(utterance) => {
                    let brain = Arc::clone(&self.options.brain);
                    let text = tokio::task::block_in_place(|| brain.recognize(&utterance));
                    let reply = brain.responder().reply(&text);
                    self.respond(Some(text), reply.text, reply.tool);
                }
            }
        }
    }

    /// The caller's text (if a turn ended), then `line` spoken, then `tool`.
    fn respond(&mut self, caller: Option<String>, line: String, tool: Option<ToolCall>) {
        if let Some(s) = self.speaking.take() {
            s.cancel();
        }
        let Some(tx) = self.tx.clone() else { return };
        let cancel = CancellationToken::new();
        self.speaking = Some(cancel.clone());
        let (brain, log, ids, tools, usage) = (
            Arc::clone(&self.options.brain),
            Arc::clone(&self.log),
            Arc::clone(&self.next_id),
            Arc::clone(&self.open_tools),
            Arc::clone(&self.usage),
        );
        let prompt = self.prompt.clone();
        tokio::spawn(async move {
            let id = || {
                let mut n = ids.lock().expect("id lock");
                *n += 1;
                format!("content-{n}")
            };
            let send = |event: Value| {
                let mut e = event;
                if let Some(obj) = e["event"].as_object_mut().and_then(|o| o.values_mut().next()) {
                    if let Some(o) = obj.as_object_mut() {
                        o.insert("promptName".into(), json!(prompt));
                        o.insert("sessionId".into(), json!("session-1"));
                        o.insert("completionId".into(), json!("completion-1"));
                    }
                }
                let _ = tx.send(encode(&e));
            };
            let text_block = |role: &str, stage: &str, text: &str, stop: &str| {
                let c = id();
                send(json!({"event": {"contentStart": {"contentId": c, "type": "TEXT", "role": role,
                    "additionalModelFields": format!("{{\"generationStage\":\"{stage}\"}}"),
                    "textOutputConfiguration": {"mediaType": "text/plain"}}}}));
                send(json!({"event": {"textOutput": {"contentId": c, "role": role, "content": text}}}));
                send(json!({"event": {"contentEnd": {"contentId": c, "type": "TEXT", "stopReason": stop}}}));
            };
            if let Some(caller) = &caller {
                text_block("USER", "FINAL", caller, "END_TURN");
            }
            let all = super::voice(&brain, &line).await;
            let mut spoken = Vec::new();
            let mut interrupted = false;
            'speech: for (i, (sentence, ulaw)) in all.iter().enumerate() {
                text_block("ASSISTANT", "SPECULATIVE", sentence, "PARTIAL_TURN");
                let pcm: Vec<u8> = ulaw.iter().flat_map(|b| crate::audio::ulaw_decode(*b).to_le_bytes()).collect();
                let c = id();
                send(json!({"event": {"contentStart": {"contentId": c, "type": "AUDIO", "role": "ASSISTANT",
                    "audioOutputConfiguration": {"mediaType": "audio/lpcm", "sampleRateHertz": 8000,
                    "sampleSizeBits": 16, "channelCount": 1, "encoding": "base64"}}}}));
                for chunk in pcm.chunks(AUDIO_CHUNK) {
                    if cancel.is_cancelled() {
                        interrupted = true;
                        send(
                            json!({"event": {"contentEnd": {"contentId": c, "type": "AUDIO", "stopReason": "END_TURN"}}}),
                        );
                        text_block("ASSISTANT", "FINAL", "{ \"interrupted\" : true }", "INTERRUPTED");
                        break 'speech;
                    }
                    send(json!({"event": {"audioOutput": {"contentId": c, "content": BASE64.encode(chunk)}}}));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let last = i + 1 == all.len();
                let stop = if last { "END_TURN" } else { "PARTIAL_TURN" };
                send(json!({"event": {"contentEnd": {"contentId": c, "type": "AUDIO", "stopReason": stop}}}));
                spoken.push(sentence.clone());
            }
            if !interrupted {
                text_block("ASSISTANT", "FINAL", &spoken.join(" "), "END_TURN");
                if let Some(tool) = tool {
                    let tool_use_id = format!("tooluse-{}", id());
                    let content = match &tool {
                        ToolCall::ScheduleCallback { requested_time, .. } => {
                            json!({"requested_time": requested_time}).to_string()
                        }
                        _ => "{}".to_owned(),
                    };
                    tools.lock().expect("tools lock").push(tool_use_id.clone());
                    log.lock().expect("nova log lock").tool_uses.push((tool_use_id.clone(), tool.name().to_owned()));
                    let c = id();
                    send(json!({"event": {"contentStart": {"contentId": c, "type": "TOOL", "role": "TOOL",
                        "toolUseOutputConfiguration": {"mediaType": "application/json"}}}}));
                    send(
                        json!({"event": {"toolUse": {"contentId": c, "toolName": tool.name(), "toolUseId": tool_use_id, "content": content}}}),
                    );
                    send(json!({"event": {"contentEnd": {"contentId": c, "type": "TOOL", "stopReason": "TOOL_USE"}}}));
                }
            }
            let (input, output) = {
                let mut u = usage.lock().expect("usage lock");
                u.0 += 150;
                u.1 += 60;
                *u
            };
            send(json!({"event": {"usageEvent": {"totalInputTokens": input, "totalOutputTokens": output,
                "totalTokens": input + output}}}));
        });
    }
}

/// One output event as Bedrock frames it.
fn encode(event: &Value) -> Bytes {
    let payload = json!({"bytes": BASE64.encode(event.to_string())}).to_string();
    let message = Message::new_from_parts(
        vec![
            Header::new(":message-type", HeaderValue::String("event".into())),
            Header::new(":event-type", HeaderValue::String("chunk".into())),
            Header::new(":content-type", HeaderValue::String("application/json".into())),
        ],
        payload,
    );
    let mut out = Vec::new();
    write_message_to(&message, &mut out).expect("an event-stream message encodes");
    Bytes::from(out)
}
