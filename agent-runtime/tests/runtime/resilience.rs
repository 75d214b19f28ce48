//! What must not lose a call or its artifacts: S3 outages, shutdown with live calls,
//! and a misbehaving stream.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_runtime::artifacts::{ObjectStore, UploadError};
use agent_runtime::callsim::{Ending, Step};
use common::*;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// S3 that fails while `down` is set.
struct Outage {
    inner: Arc<dyn ObjectStore>,
    down: Arc<AtomicBool>,
}

impl ObjectStore for Outage {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), UploadError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async move {
                Err(UploadError::Put { key: key.to_owned(), reason: "S3 unreachable (test outage)".to_owned() })
            });
        }
        self.inner.put(key, body, content_type)
    }

    fn put_file<'a>(
        &'a self,
        key: &'a str,
        path: &'a std::path::Path,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), UploadError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async move {
                Err(UploadError::Put { key: key.to_owned(), reason: "S3 unreachable (test outage)".to_owned() })
            });
        }
        self.inner.put_file(key, path, content_type)
    }

    fn create_new<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<bool, UploadError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async move {
                Err(UploadError::Put { key: key.to_owned(), reason: "S3 unreachable (test outage)".to_owned() })
            });
        }
        self.inner.create_new(key, body, content_type)
    }
}

fn short_call() -> Vec<Step> {
    vec![wait_for_agent(), say("Where are you located?"), wait_for_agent(), Step::HangUp]
}

fn spool_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("pending")) else { return out };
    for call in entries.flatten() {
        for f in std::fs::read_dir(call.path()).into_iter().flatten().flatten() {
            out.push(f.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_spooled_while_s3_is_down_and_uploaded_when_it_returns() {
    let down = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&down);
    let rt = spawn_with(
        draft(),
        Options {
            objects: Some(Box::new(move |inner| Arc::new(Outage { inner, down: flag }) as Arc<dyn ObjectStore>)),
            ..Default::default()
        },
    )
    .await;
    let report = rt.sim.call(&rt.options(short_call())).await.expect("call");
    assert_eq!(report.ending, Some(Ending::CallerHungUp));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rt.object(&report.call_sid, "metadata.json", Duration::ZERO).await.is_none());
    assert_eq!(spool_files(rt.spool.path()), vec!["metadata.json", "recording.wav", "transcript.json"]);
    assert_eq!(rt.state.artifacts().spooled(), 1);
    let metrics = reqwest::get(format!("http://{}/metrics", rt.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tempovoice_spooled_calls 1"), "{metrics}");
    assert!(metrics.contains("tempovoice_s3_errors_total 1"), "{metrics}");
    assert!(metrics.contains("tempovoice_greeting_seconds_count 1"), "the greeting is timed: {metrics}");
    // The stream's claim could not be written either: the call went on, and it says so.
    assert!(metrics.contains("tempovoice_stream_claim_errors_total 1"), "{metrics}");

    down.store(false, Ordering::SeqCst);
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    assert!(agent_lines(&transcript).iter().any(|l| l.contains("Harbour Street")));
    assert!(rt.object(&report.call_sid, "recording.wav", Duration::from_secs(5)).await.is_some());
    assert_eq!(rt.json(&report.call_sid, "metadata.json").await["end_reason"], "caller_hung_up");
    for _ in 0..50 {
        if spool_files(rt.spool.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(spool_files(rt.spool.path()).is_empty());
    assert_eq!(rt.state.artifacts().spooled(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_uploads_what_a_previous_one_left_in_the_spool() {
    let down = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&down);
    let mut first = spawn_with(
        draft(),
        Options {
            objects: Some(Box::new(move |inner| Arc::new(Outage { inner, down: flag }) as Arc<dyn ObjectStore>)),
            ..Default::default()
        },
    )
    .await;
    let report = first.sim.call(&first.options(short_call())).await.expect("call");
    first.stop().await.expect("the runtime exits cleanly even with S3 down");
    assert_eq!(spool_files(first.spool.path()).len(), 3, "left in the spool");

    let spool = std::mem::replace(&mut first.spool, tempfile::tempdir().unwrap());
    let second =
        spawn_with(draft(), Options { spool: Some(spool), bucket: Some(first.bucket.clone()), ..Default::default() })
            .await;
    let metadata = second.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["call_sid"], report.call_sid);
    assert!(second.object(&report.call_sid, "recording.wav", Duration::from_secs(5)).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_live_calls_and_stores_every_artifact_before_exit() {
    let mut rt = spawn(draft()).await;
    let sim = Arc::new(std::mem::replace(
        &mut rt.sim,
        agent_runtime::callsim::TwilioSim::start(ACCOUNT_SID, AUTH_TOKEN).await.unwrap(),
    ));
    // The runtime's REST base points at the first simulator; the calls go through it.
    let mut calls = Vec::new();
    for _ in 0..3 {
        let sim = Arc::clone(&sim);
        let options = rt.options(vec![Step::Silence(Duration::from_secs(60))]);
        calls.push(tokio::spawn(async move { sim.call(&options).await }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rt.state.metrics().active_calls.load(Ordering::SeqCst), 3);
    let shutdown = rt.shutdown_signal().unwrap();
    shutdown.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Draining: not ready, and a new call is refused with a busy signal.
    let ready = reqwest::get(format!("http://{}/health/ready", rt.addr)).await.unwrap();
    assert_eq!(ready.status(), 503);
    let late = sim.call(&rt.options(vec![])).await.unwrap();
    assert!(late.rejected, "{}", late.twiml);
    assert!(late.twiml.contains(r#"<Reject reason="busy"/>"#));

    rt.join().await.expect("the runtime exits cleanly");
    // Everything is in S3 the moment the process is done.
    for call in calls {
        let report = call.await.unwrap().unwrap();
        assert_eq!(report.ending, Some(Ending::HungUpByAgent), "ended politely through the API");
        let metadata = rt.object(&report.call_sid, "metadata.json", Duration::ZERO).await.expect("metadata in S3");
        let metadata: serde_json::Value = serde_json::from_slice(&metadata).unwrap();
        assert_eq!(metadata["end_reason"], "shutdown");
        let transcript = rt.object(&report.call_sid, "transcript.json", Duration::ZERO).await.expect("transcript");
        let transcript: serde_json::Value = serde_json::from_slice(&transcript).unwrap();
        assert!(agent_lines(&transcript).last().unwrap().contains("Please call again"));
        assert!(rt.object(&report.call_sid, "recording.wav", Duration::ZERO).await.is_some());
    }
}

fn media(stream_sid: &str, n: u64) -> Message {
    Message::Text(
        serde_json::json!({"event": "media", "sequenceNumber": (n + 3).to_string(), "streamSid": stream_sid,
            "media": {"track": "inbound", "chunk": n.to_string(), "timestamp": (n * 20).to_string(), "payload": "/".repeat(212) + "/w=="}})
        .to_string()
        .into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_out_of_order_messages_and_a_dropped_socket_still_leave_artifacts() {
    let rt = spawn(draft()).await;
    let call_sid = "CA00000000000000000000000000000abc";
    let stream_sid = "MZ00000000000000000000000000000abc";
    let token = stream_token(&rt, call_sid).await;
    let mut ws = open_stream(&rt).await;
    // Before start: media and a mark are out of order.
    ws.send(media(stream_sid, 0)).await.unwrap();
    ws.send(Message::Text(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.into())).await.unwrap();
    let start = start_message(call_sid, stream_sid, ACCOUNT_SID, Some(&token));
    ws.send(Message::Text(start.clone().into())).await.unwrap();
    let junk = [
        "not json at all".to_owned(),
        r#"{"event":"media"}"#.to_owned(),
        r#"{"event":"teleport","to":"mars"}"#.to_owned(),
        r#"{"event":"media","sequenceNumber":"9","streamSid":"MZ-other","media":{"payload":"/w=="}}"#.to_owned(),
        r#"{"event":"media","sequenceNumber":"9","streamSid":"MZ00000000000000000000000000000abc","media":{"payload":"%%%not base64"}}"#.to_owned(),
        r#"{"event":"mark","sequenceNumber":"9","streamSid":"MZ00000000000000000000000000000abc","mark":{"name":"never-sent"}}"#.to_owned(),
        start,
        format!(r#"{{"event":"media","pad":"{}"}}"#, "x".repeat(200_000)),
    ];
    for (i, j) in junk.iter().enumerate() {
        ws.send(Message::Text(j.clone().into())).await.unwrap();
        ws.send(media(stream_sid, i as u64 + 1)).await.unwrap();
    }
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    // The call goes on: the greeting arrives.
    let mut got_media = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains(r#""event":"media""#) => {
                got_media = true;
                break;
            }
            Ok(Some(Ok(_))) => {}
            _ => {}
        }
    }
    assert!(got_media, "the agent still speaks after the junk");
    // Dropping the socket while the runtime has not yet read what was sent resets the
    // connection, and the kernel discards the unread bytes: wait until every message
    // has been read (the runtime reads every 40 ms).
    let counted = || rt.state.metrics().malformed_messages.load(std::sync::atomic::Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counted() < 8 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The socket drops without `stop`.
    drop(ws);
    let metadata = rt.json(call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "stream_dropped");
    // The early media, 6 bad messages and the repeated start (an unknown mark name is
    // only ignored).
    assert_eq!(metadata["malformed_messages"], 8, "{metadata:#}");
    assert!(metadata["frames_in"].as_u64().unwrap() >= 8, "{metadata:#}");
    assert!(rt.object(call_sid, "transcript.json", Duration::from_secs(5)).await.is_some());
    let metrics = reqwest::get(format!("http://{}/metrics", rt.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tempovoice_calls_ended_total{reason=\"stream_dropped\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_websocket_limit_drops_the_stream_but_not_the_artifacts() {
    let rt = spawn(draft()).await;
    let call_sid = "CA00000000000000000000000000000def";
    let stream_sid = "MZ00000000000000000000000000000def";
    let token = stream_token(&rt, call_sid).await;
    let mut ws = open_stream(&rt).await;
    ws.send(Message::Text(start_message(call_sid, stream_sid, ACCOUNT_SID, Some(&token)).into())).await.unwrap();
    for n in 0..25 {
        ws.send(media(stream_sid, n)).await.unwrap();
    }
    let _ = ws.send(Message::Text("y".repeat(3 * 1024 * 1024).into())).await;
    let metadata = rt.json(call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "stream_dropped");
    assert!(metadata["frames_in"].as_u64().unwrap() >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_twilio_api_still_ends_the_call_by_closing_the_stream() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let rt = spawn_with(
        draft(),
        Options { extra_env: vec![("TWILIO_API_BASE", format!("http://{closed}"))], ..Default::default() },
    )
    .await;
    let script = vec![wait_for_agent(), say("Thank you, goodbye."), Step::Silence(Duration::from_secs(30))];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    // The hang-up request could not be made; closing the stream ends the call.
    assert_eq!(report.ending, Some(Ending::StreamClosed));
    assert!(rt.sim.requests().is_empty());
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "end_call");
    let errors = metadata["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e.as_str().unwrap().contains("twilio call update")), "{metadata:#}");
    let metrics = reqwest::get(format!("http://{}/metrics", rt.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tempovoice_telephony_errors_total 1"), "{metrics}");
}
