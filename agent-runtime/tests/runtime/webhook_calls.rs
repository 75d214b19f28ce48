//! The agent's webhooks during real calls, delivered over HTTPS to a local endpoint
//! whose certificate the runtime trusts through `TEMPOVOICE_EXTRA_CA_FILE`: pickup at
//! the start (slow, and the call does not wait), a callback request to the Make.com
//! endpoint (failing: recorded, not fatal), and the transcript at the end.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_runtime::callsim::{Ending, Step};
use axum::http::{HeaderMap, StatusCode};
use common::*;

const SECRET: &str = "whsec-0123456789abcdef0123456789abcdef";

type Received = Arc<Mutex<Vec<(String, HeaderMap, String)>>>;
type Answered = Arc<Mutex<Vec<(String, std::time::Instant)>>>;

/// An HTTPS endpoint on 127.0.0.1; returns its base URL, the CA file to trust, and
/// what it received.
async fn https_endpoint(dir: &std::path::Path) -> (String, std::path::PathBuf, Received, Answered) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let received: Received = Arc::default();
    let answered: Answered = Arc::default();
    let r = Arc::clone(&received);
    let a = Arc::clone(&answered);
    let app = axum::Router::new().route(
        "/{hook}",
        axum::routing::post(
            move |axum::extract::Path(hook): axum::extract::Path<String>, headers: HeaderMap, body: String| {
                let (r, a) = (Arc::clone(&r), Arc::clone(&a));
                async move {
                    r.lock().unwrap().push((hook.clone(), headers, body));
                    let status = match hook.as_str() {
                        // A slow endpoint: the call must not wait for it.
                        "pickup" => {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            StatusCode::OK
                        }
                        "make" => StatusCode::SERVICE_UNAVAILABLE,
                        _ => StatusCode::OK,
                    };
                    a.lock().unwrap().push((hook, std::time::Instant::now()));
                    status
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (format!("https://{addr}"), ca, received, answered)
}

fn verify(headers: &HeaderMap, body: &str) {
    let header = headers[agent_runtime::webhooks::SIGNATURE_HEADER].to_str().unwrap();
    let ts: i64 = header.strip_prefix("t=").unwrap().split(',').next().unwrap().parse().unwrap();
    assert_eq!(header, agent_runtime::webhooks::signature_header(SECRET, ts, body.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pickup_callback_and_transcript_webhooks_are_signed_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (base, ca, received, answered) = https_endpoint(dir.path()).await;
    let mut d = draft();
    d.integrations.pickup_webhook_url = Some(format!("{base}/pickup"));
    d.integrations.make_endpoint = Some(format!("{base}/make"));
    // A URL with a token in its query is a credential: it reaches the runtime as a
    // secret and is shown with its path and query redacted.
    d.integrations.transcript_webhook_url = Some(format!("{base}/transcript?token=s3cret-in-the-query"));
    d.secrets.webhook_signing_secret = agent_spec::SecretPatch::set(SECRET);
    let rt = spawn_with(
        d,
        Options { extra_env: vec![("TEMPOVOICE_EXTRA_CA_FILE", ca.display().to_string())], ..Default::default() },
    )
    .await;
    let script = vec![
        wait_for_agent(),
        say("Can you call me back tomorrow at three pm?"),
        wait_for_agent(),
        Step::Silence(Duration::from_secs(4)),
        say("Thank you, goodbye."),
        Step::Silence(Duration::from_secs(20)),
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));
    // The greeting played before the slow pickup endpoint had even answered.
    let pickup_answered = answered.lock().unwrap().iter().find(|(h, _)| h == "pickup").map(|(_, at)| *at).unwrap();
    assert!(report.first_audio_at.unwrap() < pickup_answered, "the slow pickup webhook held the greeting");

    // The transcript webhook is delivered after the call, and then recorded in the metadata.
    let mut metadata = serde_json::Value::Null;
    for _ in 0..100 {
        metadata = rt.json(&report.call_sid, "metadata.json").await;
        if metadata["webhooks"].as_array().is_some_and(|w| w.iter().any(|h| h["kind"] == "transcript")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hooks = metadata["webhooks"].as_array().unwrap().clone();
    let find = |kind: &str| {
        hooks.iter().find(|h| h["kind"] == kind).cloned().unwrap_or_else(|| panic!("{kind}: {metadata:#}"))
    };
    assert_eq!(find("pickup")["delivered"], true);
    let make = find("schedule_callback");
    assert_eq!((make["delivered"].clone(), make["attempts"].clone()), (false.into(), 4.into()), "{make}");
    assert!(make.get("error").is_none(), "the receiver's answer is not recorded: {make}");
    assert_eq!(find("transcript")["delivered"], true, "sent to the whole URL");
    assert!(!metadata.to_string().contains("s3cret") && !metadata.to_string().contains("/make"), "{metadata:#}");
    assert_eq!(find("transcript")["url"], format!("{}/…", base.trim_end_matches('/')));

    let received = received.lock().unwrap().clone();
    for (_, headers, body) in &received {
        verify(headers, body);
    }
    let body = |hook: &str| -> serde_json::Value {
        let (_, _, b) = received.iter().find(|(h, _, _)| h == hook).unwrap_or_else(|| panic!("no {hook} request"));
        serde_json::from_str(b).unwrap()
    };
    assert_eq!(body("pickup")["call_sid"], report.call_sid);
    assert_eq!(body("pickup")["from"], "+15550001234");
    let callback = body("make");
    assert_eq!(callback["event"], "callback_requested");
    assert!(callback["requested_time"].as_str().unwrap().contains("three"), "{callback}");
    assert_eq!(received.iter().filter(|(h, _, _)| h == "make").count(), 4);
    let transcript = body("transcript");
    assert_eq!(transcript["event"], "call_ended");
    assert!(transcript["transcript"]["turns"].as_array().unwrap().len() >= 4);
    let tools: Vec<String> = transcript["transcript"]["turns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["tool_calls"].as_array().cloned().unwrap_or_default())
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tools, vec!["schedule_callback", "end_call"]);
}

/// The control plane that schedules callbacks cannot be reached: the report is tried
/// three times, and the caller hears that the callback could not be arranged (never
/// that it was), with the reason in the transcript.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_the_control_plane_cannot_take_is_apologised_for() {
    // Nothing listens on port 9 of the loopback.
    let options = Options {
        extra_env: vec![("TEMPOVOICE_CONTROL_PLANE_URL", "http://127.0.0.1:9".to_owned())],
        ..Default::default()
    };
    let rt = spawn_with(draft(), options).await;
    let script = vec![
        wait_for_agent(),
        say("Can you call me back tomorrow at three pm?"),
        Step::WaitForAgent { quiet: Duration::from_millis(1500), timeout: Duration::from_secs(20) },
        say("Thank you, goodbye."),
        Step::Silence(Duration::from_secs(20)),
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let results: Vec<String> = transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["tool_calls"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["name"] == "schedule_callback")
        .map(|c| c["result"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(results.len(), 1, "{transcript}");
    assert!(
        results[0].starts_with("I am sorry, I could not arrange the callback: the control plane could not be reached"),
        "{results:?}"
    );
    let said = agent_lines(&transcript);
    assert!(said.iter().any(|l| l.starts_with("I am sorry, I could not arrange the callback")), "{said:?}");
    assert!(!said.iter().any(|l| l.contains("is scheduled")), "{said:?}");
    let metrics = rt.state.metrics().render(0, 0);
    assert!(metrics.contains("tempovoice_callbacks_total{outcome=\"failed\"} 1"), "{metrics}");
}
