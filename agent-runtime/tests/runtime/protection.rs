//! Scale-in protection against a stand-in for the ECS container agent's endpoint
//! (`PUT $ECS_AGENT_URI/task-protection/v1/state`, answered as the agent answers):
//! set when the first call comes, renewed while it lasts, cleared after the last;
//! a failing endpoint never holds up a call.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_runtime::callsim::{Ending, Step};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

#[derive(Default)]
struct Agent {
    /// Each request's body, in order.
    requests: Mutex<Vec<Value>>,
    /// Requests still to refuse (as the agent does when ECS refuses: 4xx with `error`).
    refuse: Mutex<usize>,
}

async fn state(State(agent): State<Arc<Agent>>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    agent.requests.lock().unwrap().push(body.clone());
    let mut refuse = agent.refuse.lock().unwrap();
    if *refuse > 0 {
        *refuse -= 1;
        let error = json!({"error": {"Arn": "arn:aws:ecs:us-east-1:123456789012:task/tv/abc", "Code": "ThrottlingException", "Message": "Rate exceeded"}});
        return (StatusCode::TOO_MANY_REQUESTS, Json(error));
    }
    let protection = json!({"protection": {"ExpirationDate": "2026-11-28T15:00:00Z",
        "ProtectionEnabled": body["ProtectionEnabled"], "TaskArn": "arn:aws:ecs:us-east-1:123456789012:task/tv/abc"}});
    (StatusCode::OK, Json(protection))
}

async fn stand_in(refuse: usize) -> (String, Arc<Agent>) {
    let agent = Arc::new(Agent { refuse: Mutex::new(refuse), ..Default::default() });
    let app = axum::Router::new()
        .route("/api/task/task-protection/v1/state", axum::routing::put(state))
        .with_state(Arc::clone(&agent));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/api/task"), agent)
}

fn enabled(requests: &[Value]) -> Vec<bool> {
    requests.iter().map(|r| r["ProtectionEnabled"].as_bool().unwrap()).collect()
}

async fn wait_until(agent: &Agent, what: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..100 {
        let requests = agent.requests.lock().unwrap().clone();
        if what(&requests) {
            return requests;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent.requests.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_call_holds_scale_in_protection_renewed_until_the_last_call_ends() {
    let (uri, agent) = stand_in(0).await;
    let options = Options {
        extra_env: vec![("ECS_AGENT_URI", uri), ("TEMPOVOICE_PROTECTION_REFRESH_SECS", "1".into())],
        ..Default::default()
    };
    let mut draft = draft();
    draft.guardrails.max_session_duration_secs = 1800;
    let mut rt = spawn_with(draft, options).await;
    assert!(agent.requests.lock().unwrap().is_empty(), "no call, no protection");

    let script = vec![wait_for_agent(), Step::Silence(Duration::from_millis(3500)), Step::HangUp];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::CallerHungUp), "{report:?}");
    let requests = wait_until(&agent, |r| r.last().is_some_and(|l| l["ProtectionEnabled"] == false)).await;
    let flags = enabled(&requests);
    // Set at the call's start, renewed each second of its 5 or so, cleared at its end.
    assert!(flags.len() >= 4, "{requests:?}");
    assert!(flags[..flags.len() - 1].iter().all(|on| *on) && !flags[flags.len() - 1], "{requests:?}");
    // 30 minutes of call at most, and ten to spare.
    assert_eq!(requests[0]["ExpiresInMinutes"], 40, "{requests:?}");
    assert!(requests.last().unwrap().get("ExpiresInMinutes").is_none());
    let metrics = rt.state.metrics().render(0, 0);
    assert!(metrics.contains("tempovoice_task_protected 0"), "{metrics}");

    // Nothing more while no call is live.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(agent.requests.lock().unwrap().len(), requests.len());
    rt.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_endpoint_never_holds_up_a_call_and_protection_comes_when_it_recovers() {
    let (uri, agent) = stand_in(2).await;
    let options = Options { extra_env: vec![("ECS_AGENT_URI", uri)], ..Default::default() };
    let mut rt = spawn_with(draft(), options).await;
    let script = vec![
        wait_for_agent(),
        say("What are your opening hours?"),
        wait_for_agent(),
        Step::Silence(Duration::from_millis(2500)),
        Step::HangUp,
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::CallerHungUp), "{report:?}");
    assert!(report.first_audio_ms.is_some(), "the greeting played while the endpoint refused");
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    assert!(agent_lines(&transcript).iter().any(|l| l.contains("Monday to Friday")), "{transcript}");
    // Refused twice (tried again after 2 s, then 4 s), then set; cleared at the end.
    let requests =
        wait_until(&agent, |r| r.len() >= 4 && r.last().is_some_and(|l| l["ProtectionEnabled"] == false)).await;
    assert_eq!(enabled(&requests), [true, true, true, false], "{requests:?}");
    let metrics = rt.state.metrics().render(0, 0);
    assert!(metrics.contains("tempovoice_task_protection_errors_total 2"), "{metrics}");
    rt.stop().await.unwrap();
}
