//! The product loop, end to end on real local peers: a tenant creates an agent
//! through the control plane's API; the deployer provisions it in moto; the agent's
//! runtime starts with exactly the environment of its task definition (read back
//! from moto by `scripts/agent-env`, secrets from Secrets Manager); the call
//! simulator calls it as Twilio would; and the tenant reads the call's transcript
//! back through the API, from the agent's bucket.

use std::time::Duration;

use agent_runtime::callsim::{Ending, Step};
use serde_json::Value;

use crate::common;

use common::{AUTH_TOKEN, Platform, Runtime, agent_body, agent_environment};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_created_through_the_api_answers_a_call_and_its_transcript_reads_back() {
    let platform = Platform::start(&[]).await;
    let (_, key) = platform.tenant("Rosa's Bakery").await;
    let api = platform.url.clone();
    let http = platform.http.clone();
    let get = |path: String, key: &str| http.get(format!("{api}{path}")).bearer_auth(key).send();

    let agent = platform.create_agent(&key, agent_body("Front desk", "+14155550100")).await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(platform.wait_deployed(&key, &agent_id).await, "active");

    // The runtime, with the task definition's environment.
    let env = agent_environment(&platform.base, &agent_id);
    assert_eq!(env.get("AGENT_ID").map(String::as_str), Some(agent_id.as_str()));
    assert_eq!(env.get("TWILIO_AUTH_TOKEN").map(String::as_str), Some(AUTH_TOKEN), "secret resolved");
    // The Twilio the control plane pointed the number at the agent in.
    let sim = &platform.twilio;
    assert_eq!(
        sim.number("+14155550100").unwrap().voice_url,
        format!("https://voice.example.com/agent/{agent_id}/incoming-call")
    );
    let runtime = Runtime::start(&platform, &agent_id).await;
    let addr = runtime.addr;

    let say = |text: &str| {
        Step::Say(std::sync::Arc::new(
            agent_runtime::callsim::speech(text, agent_runtime::callsim::DEFAULT_CALLER_VOICE).unwrap(),
        ))
    };
    let wait = Step::WaitForAgent { quiet: Duration::from_millis(900), timeout: Duration::from_secs(20) };
    let report = sim
        .call(&agent_runtime::callsim::CallOptions {
            voice_url: format!("http://{addr}/agent/{agent_id}/incoming-call"),
            public_host: "voice.example.com".into(),
            from: "+15550001234".into(),
            to: "+14155550100".into(),
            script: vec![
                wait.clone(),
                say("What are your opening hours?"),
                wait,
                say("Thank you, goodbye."),
                Step::Silence(Duration::from_secs(20)),
            ],
            realtime: true,
            max_duration: Duration::from_secs(60),
            bad_signature: false,
            keep_heard: true,
            repeat_for: None,
        })
        .await
        .expect("call");
    assert_eq!(report.ending, Some(Ending::HungUpByAgent));

    // Read back through the control plane.
    let mut calls = Value::Null;
    for _ in 0..100 {
        calls = get(format!("/v1/agents/{agent_id}/calls"), &key).await.unwrap().json().await.unwrap();
        if calls["calls"].as_array().is_some_and(|c| !c.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let call = &calls["calls"][0];
    assert_eq!(call["call_sid"], report.call_sid);
    assert_eq!(call["end_reason"], "end_call");
    assert_eq!(call["from"], "+15550001234");
    let call_path = format!("/v1/agents/{agent_id}/calls/{}", report.call_sid);
    let transcript: Value = get(format!("{call_path}/transcript"), &key).await.unwrap().json().await.unwrap();
    let agent_said: Vec<&str> = transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == "agent")
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert!(agent_said[0].contains("Rosa's Bakery"), "{agent_said:?}");
    assert!(agent_said.iter().any(|t| t.contains("Tuesday to Sunday")), "{agent_said:?}");
    let recording = get(format!("{call_path}/recording"), &key).await.unwrap();
    assert_eq!(recording.status(), 200);
    assert!(recording.bytes().await.unwrap().starts_with(b"RIFF"));

    runtime.stop().await;
    platform.stop().await;
}
