//! `callsim`: a Twilio simulator for one agent runtime.
//!
//! It behaves like Twilio on every interface the runtime touches:
//!
//! - **Voice webhook**: posts the form Twilio posts for an inbound call, signed with
//!   `X-Twilio-Signature` over the public URL (sent through `X-Forwarded-Proto` and
//!   `X-Forwarded-Host`, as a load balancer would), and follows the TwiML answer.
//! - **Media Streams**: opens the `<Stream>` WebSocket (signed too), sends `connected`
//!   and `start` with the `<Parameter>`s, then one 20 ms μ-law `media` frame per tick
//!   (the caller's script, or silence), `dtmf`, and `stop`. Agent audio is played
//!   from a buffer at 8 kHz; a `mark` is echoed when the audio sent before it has
//!   been played; `clear` empties the buffer and echoes the pending marks at once.
//! - **REST API**: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with
//!   basic auth; `Status=completed` ends the call and `Twiml=…` replaces it (a
//!   transfer), both ending the stream with `stop`. Every request is recorded.
//! - **Phone numbers** ([`numbers`]): accounts and their numbers behind the
//!   IncomingPhoneNumbers API, where the control plane points numbers at agents.
//!
//! Time runs in real time by default, or as fast as the runtime answers (`fast`).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub mod numbers;
pub mod outbound;

use crate::audio::{FRAME_SAMPLES, ULAW_SILENCE};
use crate::media::{Inbound, MediaFormat, Outbound, StartInfo, StopInfo};

/// A request the runtime made to the simulated Twilio REST API.
#[derive(Debug, Clone)]
pub struct RestRequest {
    pub account_sid: String,
    pub call_sid: String,
    pub form: Vec<(String, String)>,
    /// Whether basic auth carried the right account sid and auth token.
    pub authorized: bool,
}

impl RestRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RestAction {
    Completed,
    Redirected(String),
}

struct SimState {
    account_sid: String,
    auth_token: String,
    requests: Mutex<Vec<RestRequest>>,
    calls: Mutex<HashMap<String, mpsc::UnboundedSender<RestAction>>>,
    numbers: Arc<numbers::Numbers>,
    outbound: outbound::Outbound,
}

/// The simulated Twilio: its REST API listens on 127.0.0.1.
pub struct TwilioSim {
    state: Arc<SimState>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TwilioSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One step of the caller's side of a call.
#[derive(Debug, Clone)]
pub enum Step {
    /// Speak these 8 kHz samples.
    Say(Arc<Vec<i16>>),
    /// Stay silent.
    Silence(Duration),
    /// Press a key.
    Dtmf(char),
    /// Stay silent until the agent has said something and then been quiet for
    /// `quiet` (its turn is over), or `timeout`.
    WaitForAgent { quiet: Duration, timeout: Duration },
    /// Stay silent until agent audio has been playing for `after`, or `timeout`.
    WaitForAgentSpeaking { after: Duration, timeout: Duration },
    /// Hang up (`stop`).
    HangUp,
    /// Report who answered to the call's `AsyncAmdStatusCallback` (an outbound call
    /// placed with answering machine detection): `human`, `machine_end_beep`, …
    Amd(&'static str),
}

#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Where the runtime listens, e.g. `http://127.0.0.1:8080/agent/{id}/incoming-call`.
    pub voice_url: String,
    /// The host Twilio believes it calls (the load balancer's); signatures cover it.
    pub public_host: String,
    pub from: String,
    pub to: String,
    pub script: Vec<Step>,
    /// Send a frame every 20 ms (true) or as fast as possible.
    pub realtime: bool,
    /// Give up after this long.
    pub max_duration: Duration,
    /// Tamper with the webhook signature (tests of refusal).
    pub bad_signature: bool,
    /// Repeat the script until this much time has passed, then hang up.
    pub repeat_for: Option<Duration>,
    /// Keep what the caller heard in the report (`heard`); a load leaves it off, as
    /// it grows by 16 KB a second per call.
    pub keep_heard: bool,
}

/// How the call ended, from Twilio's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The runtime asked the REST API to complete the call.
    HungUpByAgent,
    /// The runtime replaced the call's TwiML (e.g. `<Dial>`).
    Redirected(String),
    /// The caller's script hung up.
    CallerHungUp,
    /// The runtime closed the stream.
    StreamClosed,
    /// `max_duration` passed.
    TimedOut,
}

/// What happened on one call.
#[derive(Debug, Clone)]
pub struct CallReport {
    pub call_sid: String,
    pub stream_sid: String,
    pub http_status: u16,
    pub twiml: String,
    /// `<Reject>` was the answer.
    pub rejected: bool,
    pub ending: Option<Ending>,
    /// What the caller heard, 8 kHz, one sample per tick position (silence included);
    /// empty unless [`CallOptions::keep_heard`].
    pub heard: Vec<i16>,
    /// Milliseconds from `start` to the first agent audio played.
    pub first_audio_ms: Option<u64>,
    /// When the first agent audio was played.
    pub first_audio_at: Option<Instant>,
    /// Per caller utterance: milliseconds from its last frame to the next agent audio.
    pub reply_latency_ms: Vec<u64>,
    /// Milliseconds of agent audio played in all.
    pub agent_played_ms: u64,
    /// For each `clear`: call time, and agent audio played (ms) when it came.
    pub clears: Vec<(u64, u64)>,
    /// Marks echoed: name and agent audio played (ms) when echoed.
    pub marks: Vec<(String, u64)>,
    pub frames_sent: u64,
    pub media_received: u64,
    /// Ticks more than 5 ms behind schedule (real time only).
    pub late_ticks: u64,
    pub unknown_messages: u64,
    pub duration: Duration,
    /// The stream status callbacks posted: event and the HTTP status answered.
    pub status_callbacks: Vec<(String, u16)>,
}

impl TwilioSim {
    pub async fn start(account_sid: &str, auth_token: &str) -> anyhow::Result<Self> {
        Self::start_on(account_sid, auth_token, "127.0.0.1:0".parse().expect("a socket address")).await
    }

    /// The simulator with its REST API on `addr`.
    pub async fn start_on(account_sid: &str, auth_token: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        let numbers = Arc::new(numbers::Numbers::default());
        numbers.add_account(account_sid, auth_token);
        let state = Arc::new(SimState {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            requests: Mutex::new(Vec::new()),
            calls: Mutex::new(HashMap::new()),
            numbers: Arc::clone(&numbers),
            outbound: outbound::Outbound::default(),
        });
        let numbers_api = axum::Router::new()
            .route("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json", axum::routing::get(numbers::list))
            .route(
                "/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{sid}",
                axum::routing::get(numbers::one).post(numbers::one),
            )
            .with_state(numbers);
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                axum::routing::post(outbound::create_call).get(outbound::list_calls),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{call}",
                axum::routing::post(rest_update_call).get(outbound::fetch_call),
            )
            .with_state(Arc::clone(&state))
            .merge(numbers_api);
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("bind the Twilio REST API to {addr}"))?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { state, addr, server })
    }

    /// The base URL to give the runtime as `TWILIO_API_BASE`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn account_sid(&self) -> &str {
        &self.state.account_sid
    }

    /// Another account the simulated Twilio knows (the first is the one it started with).
    pub fn add_account(&self, account_sid: &str, auth_token: &str) {
        self.state.numbers.add_account(account_sid, auth_token);
    }

    /// Gives `account_sid` the number `phone_number`, routed to `voice_url`; returns its `PN…` sid.
    pub fn add_number(&self, account_sid: &str, phone_number: &str, voice_url: &str) -> String {
        self.state.numbers.add_number(account_sid, phone_number, voice_url)
    }

    /// The number as Twilio holds it now.
    pub fn number(&self, phone_number: &str) -> Option<numbers::SimNumber> {
        self.state.numbers.number(phone_number)
    }

    /// Changes a number as someone in the Twilio console would; false if there is no such number.
    pub fn edit_number(&self, phone_number: &str, change: impl FnOnce(&mut numbers::SimNumber)) -> bool {
        self.state.numbers.edit(phone_number, change)
    }

    /// Every request to the numbers API so far.
    pub fn number_requests(&self) -> Vec<numbers::NumberRequest> {
        self.state.numbers.requests()
    }

    /// Answers the next requests to the numbers API with these HTTP statuses
    /// (one each) instead of serving them.
    pub fn fail_number_requests(&self, statuses: &[u16]) {
        self.state.numbers.fail_next(statuses);
    }

    /// Every REST request so far.
    pub fn requests(&self) -> Vec<RestRequest> {
        self.state.requests.lock().expect("sim lock").clone()
    }

    /// Places one call.
    pub async fn call(&self, options: &CallOptions) -> anyhow::Result<CallReport> {
        let call_sid = format!("CA{}", random_hex(32));
        let (rest_tx, rest_rx) = mpsc::unbounded_channel();
        self.state.calls.lock().expect("sim lock").insert(call_sid.clone(), rest_tx);
        let result = self.place(options, &call_sid, rest_rx).await;
        self.state.calls.lock().expect("sim lock").remove(&call_sid);
        result
    }

    async fn place(
        &self,
        options: &CallOptions,
        call_sid: &str,
        rest_rx: mpsc::UnboundedReceiver<RestAction>,
    ) -> anyhow::Result<CallReport> {
        self.place_as(options, call_sid, rest_rx, "inbound").await
    }

    /// Places a call of `direction` (`inbound`, or `outbound-api` for one the REST
    /// API created).
    async fn place_as(
        &self,
        options: &CallOptions,
        call_sid: &str,
        rest_rx: mpsc::UnboundedReceiver<RestAction>,
        direction: &str,
    ) -> anyhow::Result<CallReport> {
        let target = url::Url::parse(&options.voice_url).context("voice_url")?;
        let public = match target.query() {
            Some(query) => format!("https://{}{}?{query}", options.public_host, target.path()),
            None => format!("https://{}{}", options.public_host, target.path()),
        };
        let params: Vec<(String, String)> = [
            ("AccountSid", self.state.account_sid.as_str()),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", call_sid),
            ("CallStatus", "ringing"),
            ("Called", options.to.as_str()),
            ("Caller", options.from.as_str()),
            ("Direction", direction),
            ("From", options.from.as_str()),
            ("To", options.to.as_str()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let mut signature = crate::twilio::signature(&self.state.auth_token, &public, &params);
        if options.bad_signature {
            signature = crate::twilio::signature("not-the-auth-token", &public, &params);
        }
        let body = crate::telephony::form_urlencoded(
            &params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
        );
        let response = reqwest::Client::new()
            .post(target.as_str())
            .header("X-Twilio-Signature", signature)
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", &options.public_host)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .context("post the voice webhook")?;
        let http_status = response.status().as_u16();
        let twiml = response.text().await.unwrap_or_default();
        let mut report = CallReport {
            call_sid: call_sid.to_owned(),
            stream_sid: String::new(),
            http_status,
            rejected: twiml.contains("<Reject"),
            twiml: twiml.clone(),
            ending: None,
            heard: Vec::new(),
            first_audio_ms: None,
            first_audio_at: None,
            reply_latency_ms: Vec::new(),
            agent_played_ms: 0,
            clears: Vec::new(),
            marks: Vec::new(),
            frames_sent: 0,
            media_received: 0,
            late_ticks: 0,
            unknown_messages: 0,
            duration: Duration::ZERO,
            status_callbacks: Vec::new(),
        };
        if http_status != 200 || report.rejected {
            return Ok(report);
        }
        let ConnectStream { url: stream_url, status_callback, parameters } = parse_connect_stream(&twiml)?;
        let stream = url::Url::parse(&stream_url).context("stream url")?;
        if stream.scheme() != "wss" {
            bail!("stream url {stream_url} is not wss://");
        }
        // Connect to the runtime itself, as the load balancer would.
        let ws_url = format!(
            "ws://{}:{}{}",
            target.host_str().unwrap_or("127.0.0.1"),
            target.port().unwrap_or(80),
            stream.path()
        );
        let mut request = ws_url.as_str().into_client_request()?;
        let ws_signature = crate::twilio::signature(&self.state.auth_token, &stream_url, &[]);
        let headers = request.headers_mut();
        headers.insert("X-Twilio-Signature", ws_signature.parse()?);
        headers.insert("X-Forwarded-Proto", "https".parse()?);
        let authority = &stream[url::Position::BeforeHost..url::Position::AfterPort];
        headers.insert("X-Forwarded-Host", authority.parse()?);
        // Twilio streams in real time: each frame goes out when it is due (no Nagle).
        // Media messages are small: tungstenite's 128 KiB default read buffer is zeroed
        // on every read, which at hundreds of calls costs the simulator more than the
        // messages themselves.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(8 * 1024);
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .context("open the media stream")?;
        report.stream_sid = format!("MZ{}", random_hex(32));
        let callback = status_callback.map(|url| (url, target.clone()));
        if let Some((url, target)) = &callback {
            let status = self.stream_status(url, target, &report, "stream-started").await?;
            report.status_callbacks.push(("stream-started".into(), status));
        }
        stream_call(self, options, &mut report, socket, parameters, rest_rx).await?;
        if let Some((url, target)) = &callback {
            let status = self.stream_status(url, target, &report, "stream-stopped").await?;
            report.status_callbacks.push(("stream-stopped".into(), status));
        }
        Ok(report)
    }

    /// Posts `event` to the `<Stream statusCallback>` (at `target`'s address, signed
    /// over the public `url`, as the load balancer would pass it on); its HTTP status.
    async fn stream_status(
        &self,
        url: &str,
        target: &url::Url,
        report: &CallReport,
        event: &str,
    ) -> anyhow::Result<u16> {
        let public = url::Url::parse(url).context("statusCallback url")?;
        let params: Vec<(String, String)> = [
            ("AccountSid", self.state.account_sid.as_str()),
            ("CallSid", report.call_sid.as_str()),
            ("StreamSid", report.stream_sid.as_str()),
            ("StreamEvent", event),
            ("Timestamp", &time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let signature = crate::twilio::signature(&self.state.auth_token, url, &params);
        let body = crate::telephony::form_urlencoded(
            &params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
        );
        let address = format!(
            "http://{}:{}{}",
            target.host_str().unwrap_or("127.0.0.1"),
            target.port().unwrap_or(80),
            public.path()
        );
        let response = reqwest::Client::new()
            .post(address)
            .header("X-Twilio-Signature", signature)
            .header("X-Forwarded-Proto", "https")
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .context("post the stream status callback")?;
        Ok(response.status().as_u16())
    }
}

/// Twilio's error answer: `{"code", "message", "status"}`.
fn twilio_error(status: StatusCode, code: u32, message: &str) -> axum::response::Response {
    let body = serde_json::json!({"code": code, "message": message, "status": status.as_u16()});
    (status, axum::Json(body)).into_response()
}

async fn rest_update_call(
    State(state): State<Arc<SimState>>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let authorized = state.numbers.authorized(&account, &headers);
    let call_sid = call.strip_suffix(".json").unwrap_or(&call).to_owned();
    state.requests.lock().expect("sim lock").push(RestRequest {
        account_sid: account,
        call_sid: call_sid.clone(),
        form: form.clone(),
        authorized,
    });
    if !authorized {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let action = if let Some((_, twiml)) = form.iter().find(|(k, _)| k == "Twiml") {
        RestAction::Redirected(twiml.clone())
    } else if form.iter().any(|(k, v)| k == "Status" && v == "completed") {
        RestAction::Completed
    } else {
        return twilio_error(StatusCode::BAD_REQUEST, 21218, "Invalid parameter");
    };
    let sender = state.calls.lock().expect("sim lock").get(&call_sid).cloned();
    match sender {
        Some(tx) => {
            let _ = tx.send(action);
            axum::Json(serde_json::json!({"sid": call_sid, "status": "completed"})).into_response()
        }
        None => twilio_error(StatusCode::NOT_FOUND, 20404, "Not found"),
    }
}

/// A `<Connect><Stream>` answer.
#[derive(Debug, Clone)]
pub struct ConnectStream {
    pub url: String,
    /// Where Twilio reports the stream's start, stop and failure.
    pub status_callback: Option<String>,
    pub parameters: Vec<(String, String)>,
}

/// The `<Stream url statusCallback>` and its `<Parameter>`s from a `<Connect>` answer.
pub fn parse_connect_stream(twiml: &str) -> anyhow::Result<ConnectStream> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(twiml);
    let mut url = None;
    let mut status_callback = None;
    let mut params = Vec::new();
    let mut in_connect = false;
    loop {
        match reader.read_event()? {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name();
                let attr = |key: &[u8]| -> anyhow::Result<Option<String>> {
                    for a in e.attributes() {
                        let a = a?;
                        if a.key.as_ref() == key {
                            return Ok(Some(a.unescape_value()?.into_owned()));
                        }
                    }
                    Ok(None)
                };
                match name.as_ref() {
                    b"Connect" => in_connect = true,
                    b"Stream" if in_connect => {
                        url = attr(b"url")?;
                        status_callback = attr(b"statusCallback")?;
                    }
                    b"Parameter" => {
                        if let (Some(n), Some(v)) = (attr(b"name")?, attr(b"value")?) {
                            params.push((n, v));
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let url = url.context("the TwiML has no <Connect><Stream url>")?;
    Ok(ConnectStream { url, status_callback, parameters: params })
}

struct Player {
    buffer: VecDeque<u8>,
    received: u64,
    played: u64,
    marks: VecDeque<(String, u64)>,
}

/// Room for one inbound `media` message (about 330 bytes).
const MEDIA_JSON_CAPACITY: usize = 512;

async fn stream_call<S>(
    sim: &TwilioSim,
    options: &CallOptions,
    report: &mut CallReport,
    socket: S,
    parameters: Vec<(String, String)>,
    mut rest_rx: mpsc::UnboundedReceiver<RestAction>,
) -> anyhow::Result<()>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    let (mut tx, mut rx) = socket.split();
    let stream_sid = report.stream_sid.clone();
    let send = |m: serde_json::Value| Message::Text(m.to_string().into());
    tx.send(send(serde_json::json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}))).await?;
    let start = Inbound::Start {
        sequence_number: "1".into(),
        start: StartInfo {
            account_sid: sim.state.account_sid.clone(),
            stream_sid: stream_sid.clone(),
            call_sid: report.call_sid.clone(),
            tracks: vec!["inbound".into()],
            media_format: MediaFormat::twilio(),
            custom_parameters: parameters.into_iter().collect(),
        },
        stream_sid: stream_sid.clone(),
    };
    tx.send(Message::Text(serde_json::to_string(&start)?.into())).await?;

    let t0 = Instant::now();
    let mut seq: u64 = 2;
    let mut player = Player { buffer: VecDeque::new(), received: 0, played: 0, marks: VecDeque::new() };
    let mut steps: VecDeque<Step> = options.script.iter().cloned().collect();
    let mut say_pos = 0usize;
    let mut step_started = t0;
    let mut step_heard_audio = false;
    let mut quiet_since: Option<Instant> = None;
    let mut speaking_since: Option<Instant> = None;
    let mut last_utterance_end: Option<Instant> = None;
    let mut tick: u64 = 0;
    let mut media_json = String::with_capacity(MEDIA_JSON_CAPACITY);
    let deadline = t0 + options.max_duration;
    let mut closed = false;

    loop {
        // Drain everything the runtime sent so far.
        loop {
            let next = if options.realtime {
                match rx.now_or_never_ready() {
                    Some(m) => m,
                    None => break,
                }
            } else {
                // Fast mode still lets the runtime answer: wait briefly for its messages.
                match tokio::time::timeout(Duration::from_micros(200), rx.next()).await {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            match next {
                None | Some(Err(_)) => {
                    closed = true;
                    break;
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Outbound>(text.as_str()) {
                    Ok(Outbound::Media { media, .. }) => {
                        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(media.payload.as_bytes())
                        else {
                            report.unknown_messages += 1;
                            continue;
                        };
                        report.media_received += 1;
                        player.received += bytes.len() as u64;
                        player.buffer.extend(bytes);
                    }
                    Ok(Outbound::Mark { mark, .. }) => player.marks.push_back((mark.name, player.received)),
                    Ok(Outbound::Clear { .. }) => {
                        report.clears.push((t0.elapsed().as_millis() as u64, player.played / 8));
                        player.buffer.clear();
                        player.received = player.played;
                        // Twilio answers a clear with the marks it dropped.
                        while let Some((name, _)) = player.marks.pop_front() {
                            report.marks.push((name.clone(), player.played / 8));
                            seq += 1;
                            tx.send(send(serde_json::json!({"event": "mark", "sequenceNumber": seq.to_string(), "streamSid": stream_sid, "mark": {"name": name}}))).await?;
                        }
                    }
                    Err(_) => report.unknown_messages += 1,
                },
                Some(Ok(Message::Close(_))) => {
                    closed = true;
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
        if closed {
            report.ending.get_or_insert(Ending::StreamClosed);
            break;
        }
        if let Ok(action) = rest_rx.try_recv() {
            report.ending = Some(match action {
                RestAction::Completed => Ending::HungUpByAgent,
                RestAction::Redirected(t) => Ending::Redirected(t),
            });
            send_stop(&mut tx, &sim.state.account_sid, &report.call_sid, &stream_sid, seq + 1).await;
            break;
        }
        if Instant::now() >= deadline {
            report.ending = Some(Ending::TimedOut);
            send_stop(&mut tx, &sim.state.account_sid, &report.call_sid, &stream_sid, seq + 1).await;
            break;
        }

        // Play 20 ms of agent audio and echo the marks it reached.
        let mut heard = [ULAW_SILENCE; FRAME_SAMPLES];
        let mut audible = false;
        for b in heard.iter_mut() {
            if let Some(x) = player.buffer.pop_front() {
                *b = x;
                player.played += 1;
                audible = true;
            }
        }
        if audible {
            if report.first_audio_ms.is_none() {
                report.first_audio_ms = Some(t0.elapsed().as_millis() as u64);
                report.first_audio_at = Some(Instant::now());
            }
            if let Some(end) = last_utterance_end.take() {
                report.reply_latency_ms.push(end.elapsed().as_millis() as u64);
            }
            step_heard_audio = true;
            quiet_since = None;
            speaking_since.get_or_insert_with(Instant::now);
        } else {
            quiet_since.get_or_insert_with(Instant::now);
            speaking_since = None;
        }
        if options.keep_heard {
            report.heard.extend(heard.iter().map(|b| crate::audio::ulaw_decode(*b)));
        }
        while player.marks.front().is_some_and(|(_, at)| *at <= player.played) {
            let (name, _) = player.marks.pop_front().expect("checked above");
            report.marks.push((name.clone(), player.played / 8));
            seq += 1;
            tx.send(send(serde_json::json!({"event": "mark", "sequenceNumber": seq.to_string(), "streamSid": stream_sid, "mark": {"name": name}}))).await?;
        }
        report.agent_played_ms = player.played / 8;

        if steps.is_empty() {
            if let Some(period) = options.repeat_for {
                if t0.elapsed() < period {
                    steps.extend(options.script.iter().cloned());
                } else {
                    steps.push_back(Step::HangUp);
                }
            }
        }
        // The caller's side of this tick.
        let mut frame = [ULAW_SILENCE; FRAME_SAMPLES];
        let mut hang_up = false;
        while let Some(step) = steps.front() {
            let done = match step {
                Step::Say(samples) => {
                    let end = (say_pos + FRAME_SAMPLES).min(samples.len());
                    for (i, s) in samples[say_pos..end].iter().enumerate() {
                        frame[i] = crate::audio::ulaw_encode(*s);
                    }
                    say_pos = end;
                    if say_pos >= samples.len() {
                        last_utterance_end = Some(Instant::now());
                        true
                    } else {
                        break;
                    }
                }
                Step::Silence(d) => step_started.elapsed() >= *d,
                Step::Dtmf(digit) => {
                    seq += 1;
                    tx.send(send(serde_json::json!({"event": "dtmf", "streamSid": stream_sid, "sequenceNumber": seq.to_string(), "dtmf": {"track": "inbound_track", "digit": digit.to_string()}}))).await?;
                    true
                }
                Step::WaitForAgent { quiet, timeout } => {
                    step_started.elapsed() >= *timeout
                        || (step_heard_audio && quiet_since.is_some_and(|q| q.elapsed() >= *quiet))
                }
                Step::WaitForAgentSpeaking { after, timeout } => {
                    step_started.elapsed() >= *timeout || speaking_since.is_some_and(|s| s.elapsed() >= *after)
                }
                Step::HangUp => {
                    hang_up = true;
                    true
                }
                Step::Amd(answered_by) => {
                    outbound::report_amd(sim, &report.call_sid, answered_by);
                    true
                }
            };
            if !done {
                break;
            }
            steps.pop_front();
            say_pos = 0;
            step_started = Instant::now();
            step_heard_audio = false;
            if hang_up {
                break;
            }
        }
        if hang_up {
            report.ending = Some(Ending::CallerHungUp);
            send_stop(&mut tx, &sim.state.account_sid, &report.call_sid, &stream_sid, seq + 1).await;
            break;
        }
        seq += 1;
        crate::media::write_inbound_media_json(&mut media_json, &stream_sid, seq, tick, &frame);
        let text = std::mem::replace(&mut media_json, String::with_capacity(MEDIA_JSON_CAPACITY));
        if tx.send(Message::Text(text.into())).await.is_err() {
            report.ending.get_or_insert(Ending::StreamClosed);
            break;
        }
        report.frames_sent += 1;
        tick += 1;
        if options.realtime {
            let due = t0 + Duration::from_millis(tick * 20);
            let now = Instant::now();
            if now > due + Duration::from_millis(5) {
                report.late_ticks += 1;
            }
            tokio::time::sleep_until(due.into()).await;
        }
    }
    // Wait for the runtime to close its side, as Twilio does after `stop`.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = rx.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    let _ = tx.close().await;
    report.duration = t0.elapsed();
    Ok(())
}

async fn send_stop<T>(tx: &mut T, account_sid: &str, call_sid: &str, stream_sid: &str, seq: u64)
where
    T: futures::Sink<Message> + Unpin,
{
    let stop = Inbound::Stop {
        sequence_number: seq.to_string(),
        stop: StopInfo { account_sid: account_sid.to_owned(), call_sid: call_sid.to_owned() },
        stream_sid: stream_sid.to_owned(),
    };
    if let Ok(json) = serde_json::to_string(&stop) {
        let _ = tx.send(Message::Text(json.into())).await;
    }
}

trait NowOrNever: futures::Stream + Unpin {
    /// The next item if one is ready now: `Some(item)`, or `None` if none is.
    fn now_or_never_ready(&mut self) -> Option<Option<Self::Item>> {
        use futures::FutureExt;
        self.next().now_or_never()
    }
}

impl<T: futures::Stream + Unpin> NowOrNever for T {}

fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n).map(|_| char::from_digit(rng.gen_range(0..16), 16).expect("digit below 16")).collect()
}

/// The espeak-ng voice callers speak with by default. Through 8 kHz μ-law, PocketSphinx's
/// US English model recognizes this voice far better than espeak-ng's default male
/// voice (20 of 28 test phrases word for word, against 5).
pub const DEFAULT_CALLER_VOICE: &str = "en-us+f5";

/// Synthesizes `text` with espeak-ng as a caller would say it, at 8 kHz.
pub fn speech(text: &str, voice: &str) -> anyhow::Result<Vec<i16>> {
    let dir = tempfile_dir()?;
    let path = dir.join(format!("say-{}.wav", random_hex(8)));
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-w"])
        .arg(&path)
        .arg("--")
        .arg(text)
        .status()
        .context("run espeak-ng")?;
    if !status.success() {
        bail!("espeak-ng failed for {text:?}");
    }
    let samples = crate::audio::read_wav_8khz(&path).context("read espeak-ng output")?;
    let _ = std::fs::remove_file(&path);
    Ok(samples)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join("callsim");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes 8 kHz mono samples to a WAV file.
pub fn write_wav(path: &std::path::Path, samples: &[i16]) -> anyhow::Result<()> {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec)?;
    for s in samples {
        w.write_sample(*s)?;
    }
    w.finalize()?;
    Ok(())
}
