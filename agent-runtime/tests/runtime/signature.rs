//! Our signatures against Twilio's own: the official `twilio` Python library's
//! `RequestValidator` signs a set of requests, and we must compute the same and
//! accept them (with either form of the default port), and refuse any change.

use std::process::Command;

use agent_runtime::twilio::{is_valid, signature};
use serde_json::{Value, json};

const TOKEN: &str = "12345abcde12345abcde12345abcde12";

/// Requests as Twilio sends them: (url, params).
fn cases() -> Vec<(String, Vec<(String, String)>)> {
    let p = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
    vec![
        (
            "https://voice.example.com/agent/k3v7q2mxa9bd4fhe/incoming-call".into(),
            p(&[
                ("CallSid", "CA0123456789abcdef0123456789abcdef"),
                ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
                ("From", "+14155550123"),
                ("To", "+14155550100"),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
            ]),
        ),
        ("https://voice.example.com:443/agent/x/incoming-call?attempt=2&b=%20c".into(), p(&[("Digits", "1234#")])),
        ("https://voice.example.com/agent/x/status".into(), p(&[])),
        (
            "https://voice.example.com/agent/x/incoming-call".into(),
            p(&[("CallerName", "Zoë Ünal & Co"), ("Zz", ""), ("Aa", "=")]),
        ),
    ]
}

/// Twilio's signatures for `cases()`, from the `twilio` library.
fn twilio_signatures(cases: &[(String, Vec<(String, String)>)]) -> Vec<String> {
    let input: Vec<Value> = cases
        .iter()
        .map(|(url, params)| json!({ "url": url, "params": params.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>() }))
        .collect();
    let script = r#"
import json, sys
from twilio.request_validator import RequestValidator
cases = json.load(sys.stdin)
v = RequestValidator(sys.argv[1])
print(json.dumps([v.compute_signature(c["url"], dict(c["params"])) for c in cases]))
"#;
    let mut child = Command::new(test_support::python())
        .args(["-c", script, TOKEN])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python with the twilio library (scripts/test installs it)");
    serde_json::to_writer(child.stdin.take().unwrap(), &input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the twilio library failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn signatures_match_twilios_library() {
    let cases = cases();
    let expected = twilio_signatures(&cases);
    for ((url, params), twilio) in cases.iter().zip(&expected) {
        assert_eq!(&signature(TOKEN, url, params), twilio, "{url}");
        assert!(is_valid(TOKEN, url, params, twilio), "{url}");
    }
}

#[test]
fn either_form_of_the_default_port_is_accepted() {
    let cases = cases();
    let expected = twilio_signatures(&cases);
    // Twilio signed https://host/… ; we rebuilt https://host:443/… (and the reverse).
    let (url, params) = &cases[0];
    let with_port = url.replacen("voice.example.com", "voice.example.com:443", 1);
    assert!(is_valid(TOKEN, &with_port, params, &expected[0]));
    let (url, params) = &cases[1];
    let without_port = url.replacen(":443", "", 1);
    assert!(is_valid(TOKEN, &without_port, params, &expected[1]));
}

#[test]
fn any_change_is_refused() {
    let cases = cases();
    let expected = twilio_signatures(&cases);
    let (url, params) = &cases[0];
    let good = &expected[0];
    assert!(!is_valid("another-token-another-token-12345", url, params, good));
    assert!(!is_valid(TOKEN, &url.replace("k3v7q2mxa9bd4fhe", "aaaaaaaaaaaaaaaa"), params, good));
    assert!(!is_valid(TOKEN, &url.replace("https://", "http://"), params, good));
    let mut tampered = params.clone();
    tampered[2].1 = "+14155550999".into();
    assert!(!is_valid(TOKEN, url, &tampered, good));
    let mut extra = params.clone();
    extra.push(("Extra".into(), "1".into()));
    assert!(!is_valid(TOKEN, url, &extra, good));
    assert!(!is_valid(TOKEN, url, params, ""));
    assert!(!is_valid(TOKEN, url, params, &good[..good.len() - 1]));
}
