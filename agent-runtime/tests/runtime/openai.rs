//! Calls through OpenAI Realtime, played by `speechsim`'s fake server (the GA
//! WebSocket protocol, checked as the real service would) and the call simulator.

use crate::common;

use std::time::Duration;

use agent_runtime::callsim::{Ending, Step};
use agent_runtime::speechsim::openai::{OpenAiFake, OpenAiFakeOptions};
use agent_spec::SecretPatch;
use agent_spec::draft::AgentDraft;
use common::*;

const KEY: &str = "sk-test-0123456789abcdefghijklmnop";

fn openai_draft() -> AgentDraft {
    let mut d = draft();
    d.voice.provider = agent_spec::SpeechProvider::OpenaiRealtime;
    d.voice.voice_id = Some("marin".into());
    d.secrets.openai_api_key = SecretPatch::set(KEY);
    d.knowledge_base.push(cakes());
    d
}

async fn fake(
    d: &AgentDraft,
    late_transcripts: bool,
    drop_after_responses: Option<u32>,
) -> (OpenAiFake, tempfile::TempDir) {
    let (config, _) = d.clone().validate(None).expect("valid draft");
    let (brain, work) = fake_brain(&config);
    let options = OpenAiFakeOptions {
        api_key: KEY.into(),
        brain,
        late_transcripts,
        drop_after_responses,
        hearing: Default::default(),
    };
    let fake = OpenAiFake::start("127.0.0.1:0".parse().unwrap(), options).await.expect("start the fake");
    (fake, work)
}

async fn runtime(d: AgentDraft, url: String) -> Runtime {
    spawn_with(d, Options { extra_env: vec![("OPENAI_REALTIME_URL", url)], ..Default::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_openai_realtime_answers_from_the_knowledge_base_and_hangs_up_on_goodbye() {
    let mut d = openai_draft();
    d.voice.turn_detection = Some("semantic_vad".into());
    d.voice.eagerness = Some("high".into());
    let (fake, _work) = fake(&d, true, None).await;
    let rt = runtime(d, fake.url()).await;
    let script = vec![
        wait_for_agent(),
        say("What are your opening hours?"),
        wait_for_agent(),
        say("Thank you, goodbye."),
        Step::WaitForAgent { quiet: Duration::from_secs(30), timeout: Duration::from_secs(30) },
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent), "{report:?}");
    let requests = rt.sim.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].form, vec![("Status".to_owned(), "completed".to_owned())]);

    let log = fake.log();
    assert!(log.violations.is_empty(), "protocol breaches: {:?}", log.violations);
    assert_eq!(log.sessions, 1);
    let session = log.session.expect("session.update");
    assert_eq!(session["audio"]["output"]["voice"], "marin");
    let turns = &session["audio"]["input"]["turn_detection"];
    assert_eq!((&turns["type"], &turns["eagerness"]), (&"semantic_vad".into(), &"high".into()), "{turns}");
    assert!(
        session["instructions"].as_str().unwrap().contains("Monday to Friday"),
        "a small knowledge base goes in whole"
    );
    assert_eq!(log.spoken_lines, vec!["Hello, thank you for calling Rosa's Bakery."], "the greeting, asked for");
    // end_call was answered with the id the fake gave it.
    assert_eq!(log.tool_calls.len(), 1, "{:?}", log.tool_calls);
    assert_eq!(log.tool_calls[0].1, "end_call");
    assert_eq!(log.tool_outputs[0].0, log.tool_calls[0].0);
    assert_eq!(log.tool_outputs[0].1, r#"{"result":"ok"}"#);

    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let lines = agent_lines(&transcript);
    assert!(lines[0].contains("Rosa's Bakery"), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("Monday to Friday")), "{transcript:#}");
    assert_eq!(tool_names(&transcript), vec!["end_call"]);
    // Transcripts sent after the reply began still land in their own caller turn,
    // before the agent's answer to it.
    let turns = transcript["turns"].as_array().unwrap();
    let roles: Vec<&str> = turns.iter().map(|t| t["role"].as_str().unwrap()).collect();
    assert_eq!(roles, vec!["agent", "caller", "agent", "caller", "agent"], "{transcript:#}");
    assert!(turns[1]["text"].as_str().unwrap().contains("opening"), "{transcript:#}");
    assert!(turns[3]["text"].as_str().unwrap().contains("goodbye"), "{transcript:#}");
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["provider"], "openai-realtime");
    assert_eq!(metadata["end_reason"], "end_call");
    assert!(metadata["usage"]["output_tokens"].as_u64().unwrap() >= 120, "{metadata:#}");
    assert_eq!(metadata["errors"].as_array().unwrap().len(), 0, "{metadata:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barge_in_clears_once_and_truncates_openai_at_what_the_caller_heard() {
    let d = openai_draft();
    let (fake, _work) = fake(&d, false, None).await;
    let rt = runtime(d, fake.url()).await;
    let script = vec![
        wait_for_agent(),
        say("Tell me about your cakes"),
        Step::WaitForAgentSpeaking { after: Duration::from_millis(1500), timeout: Duration::from_secs(20) },
        say("Where are you located?"),
        wait_for_agent(),
        Step::HangUp,
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.clears.len(), 1, "one clear: {:?}", report.clears);
    let (_, played_at_clear) = report.clears[0];
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let turns = transcript["turns"].as_array().unwrap();
    let cut: Vec<&serde_json::Value> = turns.iter().filter(|t| t["interrupted"] == true).collect();
    assert_eq!(cut.len(), 1, "{transcript:#}");
    let text = cut[0]["text"].as_str().unwrap();
    assert!(text.starts_with("We bake"), "{text}");
    assert!(!text.contains("Birthday"), "only what was played: {text}");
    let before: u64 = turns
        .iter()
        .filter(|t| t["role"] == "agent" && t["start_ms"].as_u64() < cut[0]["start_ms"].as_u64())
        .map(|t| t["end_ms"].as_u64().unwrap() - t["start_ms"].as_u64().unwrap())
        .sum();
    let heard = played_at_clear - before;

    let log = fake.log();
    assert!(log.violations.is_empty(), "protocol breaches: {:?}", log.violations);
    assert_eq!(log.truncates.len(), 1, "{:?}", log.truncates);
    let (_, audio_end_ms, item_ms) = log.truncates[0].clone();
    assert!(audio_end_ms < item_ms, "truncated inside the item: {audio_end_ms} of {item_ms} ms");
    assert!(audio_end_ms.abs_diff(heard) <= 200, "truncated at {audio_end_ms} ms, the caller heard {heard} ms");
    assert!(agent_lines(&transcript).iter().any(|l| l.contains("Harbour Street")), "{transcript:#}");
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["interruptions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_down_at_the_start_gets_an_apology_and_a_hang_up() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rt = runtime(openai_draft(), format!("ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime")).await;
    let script = vec![Step::WaitForAgent { quiet: Duration::from_secs(20), timeout: Duration::from_secs(20) }];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent), "{report:?}");
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let lines = agent_lines(&transcript);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("cannot take your call"), "the apology: {lines:?}");
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "provider_unavailable");
    assert!(metadata["errors"][0].as_str().unwrap().contains("openai-realtime unreachable"), "{metadata:#}");
    let metrics = rt.state.metrics().render(0, 0);
    assert!(metrics.contains("tempovoice_provider_failures_total{kind=\"unavailable\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_lost_mid_call_gets_an_apology_and_a_hang_up() {
    let d = openai_draft();
    // The connection drops once the greeting has been generated.
    let (fake, _work) = fake(&d, false, Some(1)).await;
    let rt = runtime(d, fake.url()).await;
    let script =
        vec![wait_for_agent(), Step::WaitForAgent { quiet: Duration::from_secs(20), timeout: Duration::from_secs(20) }];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent), "{report:?}");
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let lines = agent_lines(&transcript);
    assert!(lines[0].contains("Rosa's Bakery"), "{lines:?}");
    assert!(lines.last().unwrap().contains("cannot take your call"), "the apology: {lines:?}");
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "provider_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_agent_that_cannot_reach_openai_is_not_ready_and_says_why() {
    // Without its key the runtime does not start at all, naming the variable.
    let (_, mut vars) = environment(&openai_draft(), "bucket");
    vars.remove("OPENAI_API_KEY");
    vars.insert("TEMPOVOICE_PUBLIC_HOST".into(), PUBLIC_HOST.into());
    let errors = agent_runtime::settings::Settings::from_env(|k| vars.get(k).cloned()).unwrap_err();
    assert!(errors.iter().any(|e| e.contains("OPENAI_API_KEY")), "{errors:?}");
    // A provider URL it cannot use fails readiness with the reason.
    let rt = runtime(openai_draft(), "https://api.openai.com/v1/realtime".into()).await;
    let response = reqwest::get(format!("http://{}/health/ready", rt.addr)).await.unwrap();
    assert_eq!(response.status(), 503);
    let text = response.text().await.unwrap();
    assert!(text.contains("openai-realtime") && text.contains("ws:// or wss://"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_tools_a_callback_without_an_endpoint_is_told_then_voicemail_records() {
    let d = openai_draft();
    let (fake, _work) = fake(&d, false, None).await;
    let rt = runtime(d, fake.url()).await;
    let script = vec![
        wait_for_agent(),
        say("Please call me back tomorrow at three pm."),
        wait_for_agent(),
        say("I want to leave a message."),
        wait_for_agent(),
        say("Hi, this is Sam. Please call me about my cake order."),
        Step::Silence(Duration::from_millis(500)),
        Step::HangUp,
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    let log = fake.log();
    assert!(log.violations.is_empty(), "protocol breaches: {:?}", log.violations);
    let names: Vec<&str> = log.tool_calls.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, vec!["schedule_callback", "voicemail"], "{:?}", log.tool_calls);
    // Each result went back under its own call id; the callback's says why it failed.
    assert_eq!(log.tool_outputs.len(), 2, "{:?}", log.tool_outputs);
    assert_eq!(log.tool_outputs[0].0, log.tool_calls[0].0);
    assert_eq!(log.tool_outputs[0].1, r#"{"error":"I am sorry, I cannot arrange callbacks on this line."}"#);
    assert_eq!(log.tool_outputs[1], (log.tool_calls[1].0.clone(), r#"{"result":"ok"}"#.to_owned()));
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "voicemail");
    assert_eq!(metadata["voicemail"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_transfer_call_dials_the_transfer_number() {
    let d = openai_draft();
    let (fake, _work) = fake(&d, false, None).await;
    let rt = runtime(d, fake.url()).await;
    let script = vec![wait_for_agent(), say("I want to talk to a person."), Step::Silence(Duration::from_secs(20))];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    let expected = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+14155550199</Dial></Response>"#;
    assert_eq!(report.ending, Some(Ending::Redirected(expected.into())));
    let log = fake.log();
    assert_eq!(log.tool_calls.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(), vec!["transfer_call"]);
    assert_eq!(log.tool_outputs[0].1, r#"{"result":"ok"}"#);
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "transferred");
}
