//! Outbound calls, as Twilio's REST API makes them: `POST …/Calls.json` creates a
//! call (queued, with its `CA…` sid) from a number of the account to `To`, whose
//! TwiML is fetched from `Url` once the callee answers. The simulator rings when the
//! call is picked up with [`TwilioSim::answer`] (by a test, or `callsim --answer`):
//! the callee is a person, an answering machine (a greeting, a beep, then it
//! records), busy, or does not answer. Like Twilio it
//! - posts the call's progress to `StatusCallback` (the events `StatusCallbackEvent`
//!   lists, and always the final one, whose `CallStatus` is `completed`, `busy` or
//!   `no-answer`), signed;
//! - with `MachineDetection` and `AsyncAmd=true`, posts who answered (`AnsweredBy`)
//!   to `AsyncAmdStatusCallback` when the script says ([`Step::Amd`]), and shows it
//!   as the call's `answered_by` (`GET …/Calls/{sid}.json`);
//! - requests the public URLs it was given at the local address the test names, as
//!   the load balancer would pass them on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::{Notify, mpsc};

use super::{CallOptions, CallReport, SimState, Step, TwilioSim, random_hex, twilio_error};

/// A call the REST API created.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    pub sid: String,
    pub account_sid: String,
    /// The create request's form (`To`, `From`, `Url`, `MachineDetection`, …).
    pub params: Vec<(String, String)>,
    /// When Twilio created it, as its API writes dates (RFC 2822).
    pub date_created: String,
}

impl OutboundCall {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// How the callee answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A person, saying the script (with a [`Step::Amd`] where Twilio would tell).
    Person(Vec<Step>),
    /// An answering machine: its greeting, a beep, then it records for `listen`
    /// (Twilio reports `machine_end_beep` after the beep).
    Machine {
        greeting: Arc<Vec<i16>>,
        listen: Duration,
    },
    Busy,
    NoAnswer,
}

#[derive(Default)]
pub(super) struct Outbound {
    queue: Mutex<VecDeque<OutboundCall>>,
    arrived: Notify,
    created: Mutex<Vec<OutboundCall>>,
    /// Call sid → (`AsyncAmdStatusCallback`, the local base it is requested at).
    amd_callbacks: Mutex<HashMap<String, (String, String)>>,
    answered_by: Mutex<HashMap<String, String>>,
    statuses: Mutex<HashMap<String, String>>,
    /// AMD callbacks are not posted (as when they reach another of the agent's
    /// tasks): the result is only in the call's `answered_by`.
    withhold_amd: std::sync::atomic::AtomicBool,
}

fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) async fn create_call(
    State(state): State<Arc<SimState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.numbers.authorized(&account, &headers) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
    let (to, from, url) = (param("To"), param("From"), param("Url"));
    if !is_e164(to) {
        return twilio_error(StatusCode::BAD_REQUEST, 21211, "Invalid 'To' Phone Number");
    }
    if !state.numbers.owns(&account, from) {
        return twilio_error(StatusCode::BAD_REQUEST, 21210, "'From' phone number not verified");
    }
    if url::Url::parse(url).is_err() {
        return twilio_error(StatusCode::BAD_REQUEST, 21205, "Url parameter is required and must be a valid URL");
    }
    let sid = format!("CA{}", random_hex(32));
    let date_created = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .expect("a current date formats");
    let call = OutboundCall { sid: sid.clone(), account_sid: account.clone(), params: params.clone(), date_created };
    state.outbound.statuses.lock().expect("sim lock").insert(sid.clone(), "queued".into());
    state.outbound.created.lock().expect("sim lock").push(call.clone());
    state.outbound.queue.lock().expect("sim lock").push_back(call);
    state.outbound.arrived.notify_waiters();
    let body = json!({
        "sid": sid, "account_sid": account, "to": to, "from": from, "status": "queued",
        "direction": "outbound-api", "answered_by": null, "api_version": "2010-04-01",
        "date_created": call_date(&state, &sid),
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn call_date(state: &SimState, sid: &str) -> String {
    let created = state.outbound.created.lock().expect("sim lock");
    created.iter().find(|c| c.sid == sid).map(|c| c.date_created.clone()).unwrap_or_default()
}

/// `GET …/Calls.json`: the account's calls, newest first, filtered by `To` and
/// `From` as Twilio filters them.
pub(super) async fn list_calls(
    State(state): State<Arc<SimState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    if !state.numbers.authorized(&account, &headers) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let filters: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let filter = |name: &str| filters.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let statuses = state.outbound.statuses.lock().expect("sim lock").clone();
    let calls: Vec<serde_json::Value> = state
        .outbound
        .created
        .lock()
        .expect("sim lock")
        .iter()
        .rev()
        .filter(|c| c.account_sid == account)
        .filter(|c| filter("To").is_none_or(|to| c.param("To") == Some(to)))
        .filter(|c| filter("From").is_none_or(|from| c.param("From") == Some(from)))
        .map(|c| {
            json!({"sid": c.sid, "account_sid": c.account_sid, "to": c.param("To"), "from": c.param("From"),
                   "status": statuses.get(&c.sid), "direction": "outbound-api", "date_created": c.date_created})
        })
        .collect();
    axum::Json(json!({"calls": calls, "page": 0, "page_size": 50})).into_response()
}

pub(super) async fn fetch_call(
    State(state): State<Arc<SimState>>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !state.numbers.authorized(&account, &headers) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let sid = call.strip_suffix(".json").unwrap_or(&call);
    let Some(status) = state.outbound.statuses.lock().expect("sim lock").get(sid).cloned() else {
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    };
    let answered_by = state.outbound.answered_by.lock().expect("sim lock").get(sid).cloned();
    axum::Json(json!({"sid": sid, "account_sid": account, "status": status, "answered_by": answered_by, "direction": "outbound-api"}))
        .into_response()
}

/// Records who answered and posts it to the call's AMD callback (in the background:
/// the call goes on meanwhile, as on Twilio).
pub(super) fn report_amd(sim: &TwilioSim, call_sid: &str, answered_by: &str) {
    let outbound = &sim.state.outbound;
    outbound.answered_by.lock().expect("sim lock").insert(call_sid.to_owned(), answered_by.to_owned());
    if outbound.withhold_amd.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let Some((url, local)) = outbound.amd_callbacks.lock().expect("sim lock").get(call_sid).cloned() else { return };
    let params = vec![
        ("AccountSid".to_owned(), sim.state.account_sid.clone()),
        ("CallSid".to_owned(), call_sid.to_owned()),
        ("AnsweredBy".to_owned(), answered_by.to_owned()),
        ("MachineDetectionDuration".to_owned(), "2500".to_owned()),
    ];
    let token = sim.state.auth_token.clone();
    tokio::spawn(async move {
        if let Err(e) = post_signed(&token, &url, Some(&local), &params).await {
            tracing::warn!(error = %e, "the AMD callback failed");
        }
    });
}

/// Posts `params` to `url`, signed as Twilio signs it; at `local` (scheme, host and
/// port) instead of the URL's own, with the forwarding headers a load balancer adds.
async fn post_signed(token: &str, url: &str, local: Option<&str>, params: &[(String, String)]) -> anyhow::Result<u16> {
    let public = url::Url::parse(url).context("callback url")?;
    let signature = crate::twilio::signature(token, url, params);
    let target = match local {
        Some(local) => format!("{}{}", local.trim_end_matches('/'), &public[url::Position::BeforePath..]),
        None => url.to_owned(),
    };
    let body =
        crate::telephony::form_urlencoded(&params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
    let mut request = reqwest::Client::new()
        .post(target)
        .header("X-Twilio-Signature", signature)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if local.is_some() {
        request = request
            .header("X-Forwarded-Proto", public.scheme())
            .header("X-Forwarded-Host", &public[url::Position::BeforeHost..url::Position::AfterPort]);
    }
    Ok(request.send().await.context("post the callback")?.status().as_u16())
}

/// A 1 kHz beep of half a second, 8 kHz.
pub fn beep() -> Vec<i16> {
    (0..4_000).map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 1_000.0 / 8_000.0).sin() * 12_000.0) as i16).collect()
}

/// What happened to an outbound call the simulator answered.
#[derive(Debug, Clone)]
pub struct OutboundReport {
    pub call: OutboundCall,
    /// The call, unless the callee was busy or did not answer.
    pub report: Option<CallReport>,
    /// The status callbacks posted: `CallStatus` and the HTTP status answered.
    pub status_callbacks: Vec<(String, u16)>,
}

impl TwilioSim {
    /// The next outbound call the REST API created and nobody has answered yet,
    /// waiting at most `within`.
    pub async fn next_outbound(&self, within: Duration) -> Option<OutboundCall> {
        let outbound = &self.state.outbound;
        let deadline = Instant::now() + within;
        loop {
            let notified = outbound.arrived.notified();
            if let Some(call) = outbound.queue.lock().expect("sim lock").pop_front() {
                return Some(call);
            }
            if tokio::time::timeout_at(deadline.into(), notified).await.is_err() {
                return None;
            }
        }
    }

    /// Whether AMD callbacks are posted (`true`, the default) or withheld, as when
    /// the load balancer hands them to another task of the agent than the call's.
    pub fn post_amd_callbacks(&self, post: bool) {
        self.state.outbound.withhold_amd.store(!post, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every outbound call the REST API created.
    pub fn outbound_calls(&self) -> Vec<OutboundCall> {
        self.state.outbound.created.lock().expect("sim lock").clone()
    }

    /// Rings `call`'s callee, who answers as `answer` says. Requests to the public
    /// host of the call's `Url` go to `local` (`http://127.0.0.1:port`, where the
    /// agent's runtime listens), as the load balancer would pass them on.
    pub async fn answer(&self, call: OutboundCall, answer: Answer, local: &str) -> anyhow::Result<OutboundReport> {
        let outbound = &self.state.outbound;
        let url = url::Url::parse(call.param("Url").context("the call has no Url")?).context("Url")?;
        let public_host = url[url::Position::BeforeHost..url::Position::AfterPort].to_owned();
        let local_url = format!("{}{}", local.trim_end_matches('/'), &url[url::Position::BeforePath..]);
        let async_amd = call.param("MachineDetection").is_some() && call.param("AsyncAmd") == Some("true");
        if let (true, Some(amd_url)) = (async_amd, call.param("AsyncAmdStatusCallback")) {
            outbound
                .amd_callbacks
                .lock()
                .expect("sim lock")
                .insert(call.sid.clone(), (amd_url.to_owned(), local.to_owned()));
        }
        let events: Vec<String> =
            call.param("StatusCallbackEvent").unwrap_or_default().split_whitespace().map(str::to_owned).collect();
        let mut status_callbacks = Vec::new();
        let started = Instant::now();
        for (event, status) in [("initiated", "queued"), ("ringing", "ringing")] {
            self.set_status(&call.sid, status);
            if events.iter().any(|e| e == event) {
                status_callbacks.push((status.to_owned(), self.post_status(&call, status, None).await?));
            }
        }
        let script = match answer {
            Answer::Busy | Answer::NoAnswer => {
                let status = if matches!(answer, Answer::Busy) { "busy" } else { "no-answer" };
                self.set_status(&call.sid, status);
                status_callbacks.push((status.to_owned(), self.post_status(&call, status, Some(0)).await?));
                return Ok(OutboundReport { call, report: None, status_callbacks });
            }
            Answer::Person(script) => script,
            Answer::Machine { greeting, listen } => {
                vec![
                    Step::Say(greeting),
                    Step::Say(Arc::new(beep())),
                    Step::Amd("machine_end_beep"),
                    Step::Silence(listen),
                ]
            }
        };
        self.set_status(&call.sid, "in-progress");
        if events.iter().any(|e| e == "answered") {
            status_callbacks.push(("in-progress".to_owned(), self.post_status(&call, "in-progress", None).await?));
        }
        let options = CallOptions {
            voice_url: local_url,
            public_host,
            from: call.param("From").unwrap_or_default().to_owned(),
            to: call.param("To").unwrap_or_default().to_owned(),
            script,
            realtime: true,
            max_duration: Duration::from_secs(120),
            bad_signature: false,
            repeat_for: None,
            keep_heard: true,
        };
        let (rest_tx, rest_rx) = mpsc::unbounded_channel();
        self.state.calls.lock().expect("sim lock").insert(call.sid.clone(), rest_tx);
        let placed = self.place_as(&options, &call.sid, rest_rx, "outbound-api").await;
        self.state.calls.lock().expect("sim lock").remove(&call.sid);
        outbound.amd_callbacks.lock().expect("sim lock").remove(&call.sid);
        let report = placed?;
        self.set_status(&call.sid, "completed");
        let duration = started.elapsed().as_secs();
        status_callbacks.push(("completed".to_owned(), self.post_status(&call, "completed", Some(duration)).await?));
        Ok(OutboundReport { call, report: Some(report), status_callbacks })
    }

    fn set_status(&self, call_sid: &str, status: &str) {
        self.state.outbound.statuses.lock().expect("sim lock").insert(call_sid.to_owned(), status.to_owned());
    }

    /// Posts the call's status to its `StatusCallback`, if it has one; the HTTP status.
    async fn post_status(&self, call: &OutboundCall, status: &str, duration: Option<u64>) -> anyhow::Result<u16> {
        let Some(url) = call.param("StatusCallback") else { return Ok(0) };
        let token = self.state.numbers.token(&call.account_sid).context("the call's account")?;
        let mut params = vec![
            ("AccountSid".to_owned(), call.account_sid.clone()),
            ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
            ("CallSid".to_owned(), call.sid.clone()),
            ("CallStatus".to_owned(), status.to_owned()),
            ("Direction".to_owned(), "outbound-api".to_owned()),
            ("From".to_owned(), call.param("From").unwrap_or_default().to_owned()),
            ("To".to_owned(), call.param("To").unwrap_or_default().to_owned()),
        ];
        if let Some(secs) = duration {
            params.push(("CallDuration".to_owned(), secs.to_string()));
        }
        if let Some(answered_by) = self.state.outbound.answered_by.lock().expect("sim lock").get(&call.sid) {
            params.push(("AnsweredBy".to_owned(), answered_by.clone()));
        }
        post_signed(&token, url, None, &params).await
    }
}
