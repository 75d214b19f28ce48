//! The product loop, end to end on real local peers: a tenant creates an agent
//! through the control plane's API; the deployer provisions it in moto; the agent's
//! runtime starts with exactly the environment of its task definition (read back
//! from moto by `scripts/agent-env`, secrets from Secrets Manager); the call
//! simulator calls it as Twilio would; and the tenant reads the call's transcript
//! back through the API, from the agent's bucket.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use agent_runtime::callsim::{Ending, Step};
use serde_json::Value;

use crate::common;

use common::{AUTH_TOKEN, Platform, agent_body, python};

/// The agent's container environment, through `scripts/agent-env` and a shell, as
/// `scripts/run-agent` loads it.
fn agent_environment(base: &HashMap<String, String>, agent_id: &str) -> BTreeMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/agent-env");
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            r#"set -euo pipefail; set -a; eval "$("$0" "$1" "$2")"; env -0"#,
            python().to_str().expect("UTF-8 path"),
            script,
            agent_id,
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(base.iter().filter(|(k, _)| k.starts_with("AWS_") || k.as_str() == "TEMPOVOICE_PREFIX"))
        .output()
        .expect("run scripts/agent-env");
    assert!(out.status.success(), "agent-env: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| !matches!(*k, "PATH" | "PWD" | "SHLVL" | "_"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

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
    let mut env = agent_environment(&platform.base, &agent_id);
    assert_eq!(env.get("AGENT_ID").map(String::as_str), Some(agent_id.as_str()));
    assert_eq!(env.get("TWILIO_AUTH_TOKEN").map(String::as_str), Some(AUTH_TOKEN), "secret resolved");
    // The Twilio the control plane pointed the number at the agent in.
    let sim = &platform.twilio;
    assert_eq!(
        sim.number("+14155550100").unwrap().voice_url,
        format!("https://voice.example.com/agent/{agent_id}/incoming-call")
    );
    let spool = tempfile::tempdir().unwrap();
    env.insert("TEMPOVOICE_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("TWILIO_API_BASE".into(), sim.api_base());
    env.insert("TEMPOVOICE_SPOOL_DIR".into(), spool.path().display().to_string());
    env.insert("TEMPOVOICE_LOG_FORMAT".into(), "text".into());
    let settings = agent_runtime::settings::Settings::from_env(|k| env.get(k).cloned()).expect("runtime settings");
    let runtime = agent_runtime::server::App::build(settings).await.expect("runtime");
    let addr = runtime.local_addr();
    let (stop_runtime, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime_task = tokio::spawn(runtime.run_until_stopped(async move {
        let _ = stopped.await;
    }));

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

    let _ = stop_runtime.send(());
    runtime_task.await.unwrap().unwrap();
    platform.stop().await;
}
