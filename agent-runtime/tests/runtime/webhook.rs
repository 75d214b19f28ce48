//! The voice webhook and the stream upgrade, signed by Twilio's own library (the
//! official `twilio` Python package), and what the runtime refuses.

use crate::common;

use std::process::Command;

use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// `X-Twilio-Signature` for (url, params), computed by the `twilio` library.
fn twilio_sign(url: &str, params: &[(&str, &str)]) -> String {
    let script = r#"
import json, sys
from twilio.request_validator import RequestValidator
c = json.loads(sys.argv[2])
print(RequestValidator(sys.argv[1]).compute_signature(c["url"], dict(c["params"])))
"#;
    let input = json!({"url": url, "params": params});
    let out = Command::new(test_support::python())
        .args(["-c", script, AUTH_TOKEN, &input.to_string()])
        .output()
        .expect("python with the twilio library (scripts/test installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";

fn params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AccountSid", ACCOUNT_SID),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", CALL_SID),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", "+15550001234"),
        ("To", "+14155550100"),
        ("CallerName", "Zoë & Co <test>"),
    ]
}

async fn post(
    rt: &Runtime,
    host: &str,
    path_suffix: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/agent/{}/incoming-call{path_suffix}", rt.addr, rt.agent_id))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", host)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(agent_runtime::telephony::form_urlencoded(params));
    if let Some(s) = signature {
        request = request.header("X-Twilio-Signature", s);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_signed_by_twilios_library_are_answered_and_any_change_is_refused() {
    let rt = spawn(draft()).await;
    let url = format!("https://{PUBLIC_HOST}/agent/{}/incoming-call", rt.agent_id);
    let signature = twilio_sign(&url, &params());

    let (status, twiml) = post(&rt, PUBLIC_HOST, "", &params(), Some(&signature)).await;
    assert_eq!(status, 200, "{twiml}");
    let agent_runtime::callsim::ConnectStream { url: stream, status_callback, parameters } =
        agent_runtime::callsim::parse_connect_stream(&twiml).unwrap();
    assert_eq!(stream, format!("wss://{PUBLIC_HOST}/agent/{}/media-stream", rt.agent_id));
    assert_eq!(status_callback, Some(format!("https://{PUBLIC_HOST}/agent/{}/stream-status", rt.agent_id)));
    let get = |n: &str| parameters.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("from"), Some("+15550001234"));
    assert_eq!(get("to"), Some("+14155550100"));
    assert_eq!(get("callSid"), Some(CALL_SID));

    // Twilio sometimes signs with the default port written out; both forms are accepted.
    let with_port = twilio_sign(&format!("https://{PUBLIC_HOST}:443/agent/{}/incoming-call", rt.agent_id), &params());
    assert_eq!(post(&rt, PUBLIC_HOST, "", &params(), Some(&with_port)).await.0, 200);

    // A changed parameter value, an added parameter, a removed one.
    let mut changed = params();
    changed[5] = ("From", "+15550001235");
    assert_eq!(post(&rt, PUBLIC_HOST, "", &changed, Some(&signature)).await.0, 403);
    let mut added = params();
    added.push(("Digits", "1"));
    assert_eq!(post(&rt, PUBLIC_HOST, "", &added, Some(&signature)).await.0, 403);
    assert_eq!(post(&rt, PUBLIC_HOST, "", &params()[1..], Some(&signature)).await.0, 403);
    // The URL checked is the configured public host's, whatever Host the request
    // claims: a signature over another host's URL is refused, and a claimed Host
    // changes nothing. Another path (a query string), a changed byte, no signature.
    let evil = twilio_sign(&format!("https://evil.example.com/agent/{}/incoming-call", rt.agent_id), &params());
    assert_eq!(post(&rt, "evil.example.com", "", &params(), Some(&evil)).await.0, 403);
    assert_eq!(post(&rt, "evil.example.com", "", &params(), Some(&signature)).await.0, 200);
    assert_eq!(post(&rt, PUBLIC_HOST, "?x=1", &params(), Some(&signature)).await.0, 403);
    let mut bytes = signature.clone().into_bytes();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    assert_eq!(post(&rt, PUBLIC_HOST, "", &params(), Some(std::str::from_utf8(&bytes).unwrap())).await.0, 403);
    assert_eq!(post(&rt, PUBLIC_HOST, "", &params(), None).await.0, 403);

    // Another agent's URL is not this runtime's.
    let other = reqwest::Client::new()
        .post(format!("http://{}/agent/aaaaaaaaaaaaaaaa/incoming-call", rt.addr))
        .header("X-Twilio-Signature", &signature)
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let metrics = reqwest::get(format!("http://{}/metrics", rt.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tempovoice_signature_failures_total 7"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_upgrade_is_checked_against_twilios_signature_too() {
    let rt = spawn(draft()).await;
    let public = format!("wss://{PUBLIC_HOST}/agent/{}/media-stream", rt.agent_id);
    let upgrade = |signature: Option<String>, host: &'static str| {
        let mut request = format!("ws://{}/agent/{}/media-stream", rt.addr, rt.agent_id).into_client_request().unwrap();
        let h = request.headers_mut();
        if let Some(s) = signature {
            h.insert("X-Twilio-Signature", s.parse().unwrap());
        }
        h.insert("X-Forwarded-Host", host.parse().unwrap());
        h.insert("X-Forwarded-Proto", "https".parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    let good = twilio_sign(&public, &[]);
    assert!(upgrade(Some(good.clone()), PUBLIC_HOST).await.is_ok(), "a signed upgrade is accepted");
    let evil = twilio_sign(&public.replace(PUBLIC_HOST, "evil.example.com"), &[]);
    for (signature, host) in [
        (None, PUBLIC_HOST),
        (Some(evil), "evil.example.com"),
        (Some(twilio_sign(&public.replace("wss://", "https://"), &[])), PUBLIC_HOST),
        (Some(twilio_sign(&public, &[("x", "1")])), PUBLIC_HOST),
    ] {
        match upgrade(signature, host).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
            other => panic!("expected 403, got {:?}", other.map(|_| ())),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_limit_get_a_busy_reject() {
    let rt =
        spawn_with(draft(), Options { extra_env: vec![("TEMPOVOICE_MAX_CALLS", "1".into())], ..Default::default() })
            .await;
    let url = format!("https://{PUBLIC_HOST}/agent/{}/incoming-call", rt.agent_id);
    let first = post(&rt, PUBLIC_HOST, "", &params(), Some(&twilio_sign(&url, &params()))).await;
    assert!(first.1.contains("<Connect>"), "{first:?}");
    let mut second_params = params();
    second_params[2] = ("CallSid", "CA0123456789abcdef0123456789abcde0");
    let second = post(&rt, PUBLIC_HOST, "", &second_params, Some(&twilio_sign(&url, &second_params))).await;
    assert_eq!(second.0, 200);
    assert_eq!(second.1, r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>"#);
}

#[test]
fn settings_name_every_missing_or_invalid_variable() {
    let (_, mut vars) = environment(&draft(), "bucket");
    vars.remove("S3_BUCKET_NAME");
    vars.remove("TWILIO_AUTH_TOKEN");
    vars.insert("MAX_CONVERSATION_TURNS".into(), "many".into());
    vars.insert("TEMPOVOICE_MAX_CALLS".into(), "0".into());
    vars.insert("TEMPOVOICE_ASR".into(), "maybe".into());
    vars.insert("TEMPOVOICE_LOG_FORMAT".into(), "xml".into());
    vars.insert("TEMPOVOICE_WEBHOOKS_TO_PRIVATE_ADDRESSES".into(), "yes".into());
    let errors = agent_runtime::settings::Settings::from_env(|k| vars.get(k).cloned()).unwrap_err();
    let text = errors.join("\n");
    for var in
        ["S3_BUCKET_NAME", "TWILIO_AUTH_TOKEN", "MAX_CONVERSATION_TURNS", "TEMPOVOICE_MAX_CALLS", "TEMPOVOICE_ASR"]
    {
        assert!(text.contains(var), "{var} not named in:\n{text}");
    }
    assert!(text.contains(r#"TEMPOVOICE_LOG_FORMAT: "xml" is not json or text"#), "{text}");
    assert!(text.contains(r#"TEMPOVOICE_WEBHOOKS_TO_PRIVATE_ADDRESSES: "yes" is not allow or deny"#), "{text}");
}
