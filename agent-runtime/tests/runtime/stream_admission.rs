//! Media streams bound to their calls. Each attack is made against a running runtime
//! (S3 in moto) and refused, and each refusal is counted in
//! `tempovoice_streams_refused_total`: a replayed upgrade, a second stream for a
//! call (on the same task and on another task of the agent), a stream without a
//! token, with another call's, another agent's or an expired one, from another
//! Twilio account, and streams over the call limit.

use crate::common;

use std::time::Duration;

use agent_runtime::server::admission::{Refusal, StreamTokens, unix_now};
use common::*;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const CONNECTED: &str = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;

/// Opens a stream and sends `connected` and `start`: whether the runtime took it as
/// a call (the greeting's audio arrives) or refused it (the socket closes first).
async fn streamed(rt: &Runtime, start: &str) -> (bool, Ws) {
    let mut ws = open_stream(rt).await;
    ws.send(Message::Text(CONNECTED.into())).await.unwrap();
    ws.send(Message::Text(start.to_owned().into())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains(r#""event":"media""#) => return (true, ws),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return (false, ws),
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the runtime neither greeted nor closed the stream"),
        }
    }
}

fn refused(rt: &Runtime, refusal: Refusal) -> u64 {
    rt.state.metrics().streams_refused(refusal)
}

/// Ends the call as Twilio does, and waits for its artifacts.
async fn hang_up(rt: &Runtime, mut ws: Ws, call_sid: &str, stream_sid: &str) {
    let stop = serde_json::json!({"event": "stop", "sequenceNumber": "9", "streamSid": stream_sid,
        "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid}});
    ws.send(Message::Text(stop.to_string().into())).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    rt.json(call_sid, "metadata.json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_upgrade_and_a_second_stream_for_a_call_are_refused() {
    let rt = spawn(draft()).await;
    let call = "CA10000000000000000000000000000001";
    let token = stream_token(&rt, call).await;
    let start = start_message(call, "MZ10000000000000000000000000000001", ACCOUNT_SID, Some(&token));
    let (taken, first) = streamed(&rt, &start).await;
    assert!(taken, "the call's own stream is taken");

    // The same signed upgrade and the same `start`, replayed while the call is live,
    // and a second stream for the call with a stream sid of its own.
    let (taken, _) = streamed(&rt, &start).await;
    assert!(!taken, "a replayed upgrade is refused");
    let other = start_message(call, "MZ10000000000000000000000000000002", ACCOUNT_SID, Some(&token));
    let (taken, _) = streamed(&rt, &other).await;
    assert!(!taken, "a second stream for the call is refused");
    assert_eq!(refused(&rt, Refusal::Duplicate), 2);

    hang_up(&rt, first, call, "MZ10000000000000000000000000000001").await;
    let metadata = rt.json(call, "metadata.json").await;
    assert_eq!(metadata["stream_sid"], "MZ10000000000000000000000000000001", "the call's artifacts are its own");
    // After the call, too.
    let (taken, _) = streamed(&rt, &start).await;
    assert!(!taken, "a replay after the call is refused");
    assert_eq!(refused(&rt, Refusal::Duplicate), 3);
    let metadata = rt.json(call, "metadata.json").await;
    assert_eq!(metadata["stream_sid"], "MZ10000000000000000000000000000001", "nothing was written over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stream_that_reaches_another_task_of_the_agent_is_refused() {
    let first = spawn(draft()).await;
    let agent_id: agent_spec::AgentId = first.agent_id.parse().unwrap();
    let second = spawn_with(
        draft(),
        Options { bucket: Some(first.bucket.clone()), agent_id: Some(agent_id), ..Default::default() },
    )
    .await;

    // Answered by one task, streamed to the other: a slot is free there, so it is taken.
    let call = "CA20000000000000000000000000000001";
    let token = stream_token(&first, call).await;
    let start = start_message(call, "MZ20000000000000000000000000000001", ACCOUNT_SID, Some(&token));
    let (taken, ws) = streamed(&second, &start).await;
    assert!(taken, "a task takes a stream its sibling answered");

    // The same stream sent to the first task: only the bucket knows it was streamed.
    let (taken, _) = streamed(&first, &start).await;
    assert!(!taken, "the call's claim in the bucket refuses the second stream");
    assert_eq!(refused(&first, Refusal::Duplicate), 1);
    assert_eq!(first.state.metrics().stream_claim_errors.load(std::sync::atomic::Ordering::Relaxed), 0);
    hang_up(&first, ws, call, "MZ20000000000000000000000000000001").await;
    let metadata = first.json(call, "metadata.json").await;
    assert_eq!(metadata["stream_sid"], "MZ20000000000000000000000000000001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_without_their_own_live_token_or_from_another_account_are_refused() {
    let rt = spawn(draft()).await;
    let call = "CA30000000000000000000000000000001";
    let stream = "MZ30000000000000000000000000000001";
    let token = stream_token(&rt, call).await;
    let other_call = "CA30000000000000000000000000000002";
    let other_token = stream_token(&rt, other_call).await;
    let agent = StreamTokens::new(AUTH_TOKEN, &rt.agent_id);
    let expired = agent.issue_expiring(call, unix_now() - 1);
    let another_agent = StreamTokens::new(AUTH_TOKEN, "aaaaaaaaaaaaaaaa").issue(call);

    let cases: [(&str, String, Refusal); 5] = [
        ("no token", start_message(call, stream, ACCOUNT_SID, None), Refusal::MissingToken),
        ("another call's token", start_message(call, stream, ACCOUNT_SID, Some(&other_token)), Refusal::BadToken),
        ("another agent's token", start_message(call, stream, ACCOUNT_SID, Some(&another_agent)), Refusal::BadToken),
        ("an expired token", start_message(call, stream, ACCOUNT_SID, Some(&expired)), Refusal::Expired),
        (
            "another Twilio account",
            start_message(call, stream, "AC99999999999999999999999999999999", Some(&token)),
            Refusal::ForeignAccount,
        ),
    ];
    for (what, start, refusal) in cases {
        let before = refused(&rt, refusal);
        let (taken, _) = streamed(&rt, &start).await;
        assert!(!taken, "{what}: refused");
        assert_eq!(refused(&rt, refusal), before + 1, "{what}: counted as {}", refusal.as_str());
    }
    assert!(rt.object(call, "metadata.json", Duration::from_millis(500)).await.is_none(), "no call was recorded");
    let metrics = reqwest::get(format!("http://{}/metrics", rt.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"tempovoice_streams_refused_total{reason="bad_token"} 2"#), "{metrics}");

    // The call's own token, from its own account, still works: nothing above used it up.
    let (taken, ws) = streamed(&rt, &start_message(call, stream, ACCOUNT_SID, Some(&token))).await;
    assert!(taken);
    hang_up(&rt, ws, call, stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_count_against_the_call_limit() {
    let rt =
        spawn_with(draft(), Options { extra_env: vec![("TEMPOVOICE_MAX_CALLS", "1".into())], ..Default::default() })
            .await;
    let call = "CA40000000000000000000000000000001";
    let token = stream_token(&rt, call).await;
    let (taken, ws) =
        streamed(&rt, &start_message(call, "MZ40000000000000000000000000000001", ACCOUNT_SID, Some(&token))).await;
    assert!(taken);
    // The one slot is live: a stream upgrade (a replay, or one answered elsewhere) is
    // refused before it opens.
    match tokio_tungstenite::connect_async(stream_request(&rt)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(refused(&rt, Refusal::Full), 1);
    hang_up(&rt, ws, call, "MZ40000000000000000000000000000001").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilios_stream_status_callbacks_are_signed_and_counted() {
    let rt = spawn(draft()).await;
    let twiml = answer(&rt, "CA50000000000000000000000000000001").await;
    let callback = format!("https://{PUBLIC_HOST}/agent/{}/stream-status", rt.agent_id);
    assert!(twiml.contains(&format!(r#"statusCallback="{callback}""#)), "{twiml}");
    let params = [
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", "CA50000000000000000000000000000001"),
        ("StreamSid", "MZ50000000000000000000000000000001"),
        ("StreamEvent", "stream-error"),
        ("StreamError", "WebSocket connection failed"),
        ("Timestamp", "2026-11-28T05:00:00Z"),
    ];
    let signed: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let post = |signature: String| {
        reqwest::Client::new()
            .post(format!("http://{}/agent/{}/stream-status", rt.addr, rt.agent_id))
            .header("X-Twilio-Signature", signature)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(agent_runtime::telephony::form_urlencoded(&params))
            .send()
    };
    assert_eq!(post(agent_runtime::twilio::signature(AUTH_TOKEN, &callback, &signed)).await.unwrap().status(), 204);
    assert_eq!(post("bm90IGEgc2lnbmF0dXJl".into()).await.unwrap().status(), 403);
    // The call simulator reports a whole call's stream as Twilio does.
    let report = rt.sim.call(&rt.options(vec![wait_for_agent(), agent_runtime::callsim::Step::HangUp])).await.unwrap();
    assert_eq!(report.status_callbacks, [("stream-started".into(), 204), ("stream-stopped".into(), 204)]);
    let metrics = reqwest::get(format!("http://{}/metrics", rt.addr)).await.unwrap().text().await.unwrap();
    for event in ["stream-error", "stream-started", "stream-stopped"] {
        assert!(metrics.contains(&format!(r#"tempovoice_stream_events_total{{event="{event}"}} 1"#)), "{metrics}");
    }
}
