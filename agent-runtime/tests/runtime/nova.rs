//! Calls through Amazon Nova Sonic, played by `speechsim`'s fake Bedrock (HTTP/2 over
//! TLS, AWS event-stream framing, SigV4-signed events) and the call simulator; the
//! runtime talks to it with the real `aws-sdk-bedrockruntime` client.

use crate::common;

use std::time::Duration;

use agent_runtime::callsim::{Ending, Step};
use agent_runtime::speechsim::nova::{NovaFake, NovaFakeOptions};
use agent_spec::draft::AgentDraft;
use common::*;

fn nova_draft() -> AgentDraft {
    let mut d = draft();
    d.voice.provider = agent_spec::SpeechProvider::NovaSonic;
    d.voice.voice_id = Some("tiffany".into());
    d.knowledge_base.push(cakes());
    d
}

struct Nova {
    fake: NovaFake,
    _work: tempfile::TempDir,
    ca: std::path::PathBuf,
}

async fn fake(d: &AgentDraft, stream_limit: Option<Duration>) -> Nova {
    let (config, _) = d.clone().validate(None).expect("valid draft");
    let (brain, work) = fake_brain(&config);
    let options = NovaFakeOptions {
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").expect("scripts/test sets AWS credentials"),
        region: config.integrations.aws_region.as_str().to_owned(),
        brain,
        stream_limit,
        hearing: Default::default(),
    };
    let fake = NovaFake::start("127.0.0.1:0".parse().unwrap(), options).await.expect("start the fake");
    let ca = work.path().join("nova-ca.pem");
    std::fs::write(&ca, fake.ca_pem()).unwrap();
    Nova { fake, _work: work, ca }
}

async fn runtime(d: AgentDraft, nova: &Nova, extra: Vec<(&'static str, String)>) -> Runtime {
    let mut extra_env = vec![
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", nova.fake.endpoint()),
        ("TEMPOVOICE_EXTRA_CA_FILE", nova.ca.display().to_string()),
    ];
    extra_env.extend(extra);
    spawn_with(d, Options { extra_env, ..Default::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_nova_sonic_answers_from_the_knowledge_base_and_hangs_up_on_goodbye() {
    let mut d = nova_draft();
    d.voice.endpointing_sensitivity = Some("high".into());
    d.voice.temperature = Some(0.35);
    let nova = fake(&d, None).await;
    let rt = runtime(d, &nova, vec![]).await;
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

    let log = nova.fake.log();
    assert!(log.violations.is_empty(), "protocol breaches: {:?}", log.violations);
    assert_eq!(log.streams, 1);
    assert_eq!(log.voices, vec!["tiffany"]);
    assert_eq!(log.session_starts[0]["inferenceConfiguration"]["temperature"], 0.35);
    assert_eq!(log.session_starts[0]["turnDetectionConfiguration"]["endpointingSensitivity"], "HIGH");
    assert!(log.system_prompts[0].contains("Monday to Friday"), "a small knowledge base goes in whole");
    assert_eq!(log.spoken_lines, vec!["Hello, thank you for calling Rosa's Bakery."]);
    assert_eq!(log.tool_uses.len(), 1, "{:?}", log.tool_uses);
    assert_eq!(log.tool_uses[0].1, "end_call");
    assert_eq!(log.tool_results, vec![(log.tool_uses[0].0.clone(), r#"{"result":"ok"}"#.to_owned())]);

    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let lines = agent_lines(&transcript);
    assert!(lines[0].contains("Rosa's Bakery"), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("Monday to Friday")), "{transcript:#}");
    assert_eq!(tool_names(&transcript), vec!["end_call"]);
    let turns = transcript["turns"].as_array().unwrap();
    let roles: Vec<&str> = turns.iter().map(|t| t["role"].as_str().unwrap()).collect();
    assert_eq!(roles, vec!["agent", "caller", "agent", "caller", "agent"], "{transcript:#}");
    assert!(turns[1]["text"].as_str().unwrap().contains("opening"), "{transcript:#}");
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["provider"], "nova-sonic");
    assert_eq!(metadata["end_reason"], "end_call");
    assert!(metadata["usage"]["output_tokens"].as_u64().unwrap() >= 60, "{metadata:#}");
    assert_eq!(metadata["errors"].as_array().unwrap().len(), 0, "{metadata:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barge_in_on_nova_clears_once_and_cuts_the_turn() {
    let d = nova_draft();
    let nova = fake(&d, None).await;
    let rt = runtime(d, &nova, vec![]).await;
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
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let turns = transcript["turns"].as_array().unwrap();
    let cut: Vec<&serde_json::Value> = turns.iter().filter(|t| t["interrupted"] == true).collect();
    assert_eq!(cut.len(), 1, "{transcript:#}");
    let text = cut[0]["text"].as_str().unwrap();
    assert!(text.starts_with("We bake"), "{text}");
    assert!(!text.contains("Birthday"), "only what was played: {text}");
    assert!(agent_lines(&transcript).iter().any(|l| l.contains("Harbour Street")), "{transcript:#}");
    let log = nova.fake.log();
    assert!(log.violations.is_empty(), "protocol breaches: {:?}", log.violations);
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["interruptions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nova_stream_ended_early_is_replaced_and_the_conversation_carries_over() {
    let d = nova_draft();
    // Nova ends a stream at 8 minutes; the fake, at 15 s: the first stream ends in the
    // caller's 8 s of silence (about 12–20 s into the call), the second after the call.
    let nova = fake(&d, Some(Duration::from_secs(15))).await;
    let rt = runtime(d, &nova, vec![]).await;
    let script = vec![
        wait_for_agent(),
        say("What are your opening hours?"),
        wait_for_agent(),
        Step::Silence(Duration::from_secs(8)),
        say("Where are you located?"),
        wait_for_agent(),
        Step::HangUp,
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    let log = nova.fake.log();
    assert!(log.violations.is_empty(), "protocol breaches: {:?}", log.violations);
    assert!(log.streams >= 2, "the stream was replaced: {} streams", log.streams);
    let carried = &log.histories[1];
    assert!(carried.first().is_some_and(|(role, _)| role == "USER"), "history starts with the caller: {carried:?}");
    assert!(carried.iter().any(|(r, t)| r == "USER" && t.contains("opening")), "{carried:?}");
    assert!(carried.iter().any(|(r, t)| r == "ASSISTANT" && t.contains("Monday to Friday")), "{carried:?}");
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    assert!(agent_lines(&transcript).iter().any(|l| l.contains("Harbour Street")), "the call went on: {transcript:#}");
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "caller_hung_up", "{metadata:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nova_down_at_the_start_gets_an_apology_and_a_hang_up() {
    let d = nova_draft();
    let nova = fake(&d, None).await;
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rt = runtime(d, &nova, vec![("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", format!("https://127.0.0.1:{port}"))]).await;
    let script = vec![Step::WaitForAgent { quiet: Duration::from_secs(20), timeout: Duration::from_secs(20) }];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent), "{report:?}");
    let lines = agent_lines(&rt.json(&report.call_sid, "transcript.json").await);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("cannot take your call"), "the apology: {lines:?}");
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "provider_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nova_stream_is_rotated_before_its_limit_while_the_agent_is_quiet() {
    let d = nova_draft();
    let nova = fake(&d, None).await;
    let rt = runtime(d, &nova, vec![("TEMPOVOICE_NOVA_ROTATE_SECS", "5".into())]).await;
    let script = vec![
        wait_for_agent(),
        say("What are your opening hours?"),
        wait_for_agent(),
        Step::Silence(Duration::from_secs(3)),
        say("Where are you located?"),
        wait_for_agent(),
        Step::HangUp,
    ];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    let log = nova.fake.log();
    assert!(log.violations.is_empty(), "protocol breaches: {:?}", log.violations);
    assert!(log.streams >= 2, "rotated: {} streams", log.streams);
    assert!(log.closed_cleanly >= 1, "the replaced stream was ended with contentEnd, promptEnd, sessionEnd");
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let lines = agent_lines(&transcript);
    assert!(lines.iter().any(|l| l.contains("Monday to Friday")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("Harbour Street")), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nova_tools_a_callback_without_an_endpoint_is_told_then_voicemail_records() {
    let d = nova_draft();
    let nova = fake(&d, None).await;
    let rt = runtime(d, &nova, vec![]).await;
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
    let log = nova.fake.log();
    assert!(log.violations.is_empty(), "protocol breaches: {:?}", log.violations);
    let names: Vec<&str> = log.tool_uses.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, vec!["schedule_callback", "voicemail"], "{:?}", log.tool_uses);
    assert_eq!(log.tool_results.len(), 2, "{:?}", log.tool_results);
    assert_eq!(log.tool_results[0].0, log.tool_uses[0].0);
    assert_eq!(log.tool_results[0].1, r#"{"error":"I am sorry, I cannot arrange callbacks on this line."}"#);
    assert_eq!(log.tool_results[1], (log.tool_uses[1].0.clone(), r#"{"result":"ok"}"#.to_owned()));
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "voicemail");
    assert_eq!(metadata["voicemail"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nova_transfer_call_dials_the_transfer_number() {
    let d = nova_draft();
    let nova = fake(&d, None).await;
    let rt = runtime(d, &nova, vec![]).await;
    let script = vec![wait_for_agent(), say("I want to talk to a person."), Step::Silence(Duration::from_secs(20))];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    let expected = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+14155550199</Dial></Response>"#;
    assert_eq!(report.ending, Some(Ending::Redirected(expected.into())));
    let log = nova.fake.log();
    assert_eq!(log.tool_uses.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(), vec!["transfer_call"]);
    assert_eq!(log.tool_results[0].1, r#"{"result":"ok"}"#);
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["end_reason"], "transferred");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nova_reply_that_breaks_a_rule_is_cut_at_its_speculative_text_before_it_is_heard() {
    // The model ignores the rule (the fake's brain has none); the runtime holds the
    // reply to it from the SPECULATIVE text, which comes before the reply's audio.
    let nova = fake(&nova_draft(), None).await;
    let mut d = nova_draft();
    d.guardrails.custom_rules = vec!["Never discuss wedding cakes.".into()];
    let rt = runtime(d, &nova, vec![]).await;
    let script = vec![wait_for_agent(), say("Do you make wedding cakes?"), wait_for_agent(), Step::HangUp];
    let report = rt.sim.call(&rt.options(script)).await.expect("call");
    let log = nova.fake.log();
    assert!(log.violations.is_empty(), "protocol breaches: {:?}", log.violations);
    assert_eq!(
        log.spoken_lines,
        vec!["Hello, thank you for calling Rosa's Bakery.", "I am sorry, I cannot discuss that."],
        "the refusal, asked of the model in place of its reply"
    );
    let transcript = rt.json(&report.call_sid, "transcript.json").await;
    let lines = agent_lines(&transcript);
    assert!(lines.iter().all(|l| !l.to_lowercase().contains("wedding")), "nothing of the reply was heard: {lines:?}");
    assert!(lines.iter().any(|l| l.contains("cannot discuss")), "{lines:?}");
    let metadata = rt.json(&report.call_sid, "metadata.json").await;
    assert_eq!(metadata["guardrail_cuts"], 1, "{metadata:#}");
    assert!(metadata["errors"][0].as_str().unwrap().contains("wedding cakes"), "{metadata:#}");
    let metrics = rt.state.metrics().render(0, 0);
    assert!(metrics.contains("tempovoice_guardrail_cuts_total 1"), "{metrics}");
}
