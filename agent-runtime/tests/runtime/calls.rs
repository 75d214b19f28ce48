//! Whole calls through the call simulator against the runtime, with S3 on moto.

use crate::common;

use std::time::Duration;

use agent_runtime::callsim::{Ending, Step};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_asks_a_question_hears_the_answer_and_says_goodbye() {
    let rt = spawn(draft()).await;
    let script = vec![
        wait_for_agent(),
        say("What are your opening hours?"),
        wait_for_agent(),
        Step::Dtmf('5'),
        say("Thank you, goodbye."),
        Step::WaitForAgent { quiet: Duration::from_secs(30), timeout: Duration::from_secs(30) },
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.http_status, 200, "{}", report.twiml);
    assert!(
        report.twiml.contains(&format!("wss://{PUBLIC_HOST}/agent/{}/media-stream", rt.agent_id)),
        "{}",
        report.twiml
    );
    assert_eq!(report.ending, Some(Ending::HungUpByAgent), "{report:?}");
    // The greeting plays before the caller says anything (its latency is measured in
    // the call_load benchmark, not asserted here).
    assert!(report.first_audio_ms.is_some(), "the greeting played");

    // Hang-up through the REST API, authenticated, with the exact form.
    let requests = rt.sim.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].authorized);
    assert_eq!(requests[0].call_sid, report.call_sid);
    assert_eq!(requests[0].form, vec![("Status".to_owned(), "completed".to_owned())]);

    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let lines = agent_lines(&transcript);
    assert!(lines[0].contains("Rosa's Bakery"), "{lines:?}");
    let turns = transcript["turns"].as_array().unwrap();
    assert_eq!(turns[0]["role"], "agent", "the greeting is the first turn: {transcript:#}");
    assert!(lines.iter().any(|l| l.contains("Monday to Friday")), "the answer holds the fact: {lines:?}");
    assert!(lines.last().unwrap().contains("Goodbye"), "{lines:?}");
    let tools = tool_names(&transcript);
    assert_eq!(tools, vec!["end_call"], "{transcript:#}");
    assert_eq!(transcript["dtmf"][0]["digit"], "5");
    let caller: Vec<&str> = transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == "caller")
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert!(caller[0].contains("opening"), "recognized: {caller:?}");

    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "end_call");
    assert_eq!(metadata["from"], "+15550001234");
    assert_eq!(metadata["agent_id"], rt.agent_id);
    assert_eq!(metadata["provider"], "local");
    assert!(metadata["duration_secs"].as_f64().unwrap() > 2.0);
    assert_eq!(metadata["turn_latency_ms"].as_array().unwrap().len(), 2, "{metadata:#}");

    let wav = rt.object(&report.call_sid, "recording.wav", Duration::from_secs(5)).await.expect("recording");
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).expect("a WAV file");
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    let secs = reader.duration() as f64 / 8000.0;
    assert!((secs - metadata["duration_secs"].as_f64().unwrap()).abs() < 1.5, "recording {secs} s");
}

/// The `callsim` binary, as a developer runs it from a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callsim_binary_calls_an_agent_and_writes_what_it_said() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rt = spawn_with(
        draft(),
        Options { extra_env: vec![("TWILIO_API_BASE", format!("http://127.0.0.1:{port}"))], ..Default::default() },
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let wav = out.path().join("agent.wav");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_callsim"))
        .args(["--url", &rt.voice_url(), "--public-host", PUBLIC_HOST, "--rest-port", &port.to_string()])
        .args(["--text", "Where are you located?", "--text", "Thank you, goodbye."])
        .arg("--out")
        .arg(&wav)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .output()
        .await
        .expect("run callsim");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("ended: Some(HungUpByAgent)"), "{stdout}");
    assert!(stdout.contains(r#"[("Status", "completed")] (authorized: true)"#), "{stdout}");
    let reader = hound::WavReader::open(&wav).expect("agent.wav");
    let samples: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
    let voiced = samples.iter().filter(|s| s.unsigned_abs() > 1000).count();
    assert!(voiced > 8000 * 2, "the agent's speech is in the file ({voiced} loud samples)");
}

/// As fast as the runtime answers: the caller's audio is not paced, and the
/// conversation still works (how much faster it runs is not asserted: noisy machines).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaced_call_is_answered() {
    let rt = spawn(draft()).await;
    let script = vec![wait_for_agent(), say("Where are you located?"), wait_for_agent(), Step::HangUp];
    let options = agent_runtime::callsim::CallOptions { realtime: false, ..rt.options(script) };
    let report = rt.sim.call(&options).await.expect("call");
    assert_eq!(report.ending, Some(Ending::CallerHungUp));
    let lines = agent_lines(&rt.json(&report.call_sid, "transcript.json").await);
    assert!(lines.iter().any(|l| l.contains("Harbour Street")), "{lines:?}");
}
