//! The product loop, end to end on real local peers: a tenant creates an agent
//! through the control plane's API; the deployer provisions it in moto; the agent's
//! runtime starts with exactly the environment of its task definition (read back
//! from moto by `scripts/agent-env`, secrets from Secrets Manager); the call
//! simulator calls it as Twilio would; and the tenant reads the call's transcript
//! back through the API, from the agent's bucket.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use agent_runtime::callsim::{Ending, Step, TwilioSim};
use base64::Engine;
use serde_json::{Value, json};

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn python() -> String {
    std::env::var("TEMPOVOICE_PYTHON")
        .unwrap_or_else(|_| format!("{}/.cache/tempovoice/venv/bin/python", std::env::var("HOME").unwrap_or_default()))
}

fn token() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..8).map(|_| char::from(b'a' + rng.gen_range(0..26))).collect()
}

/// The shared AWS base in moto, as `scripts/bootstrap-local` makes it.
fn aws_base(dir: &std::path::Path) -> HashMap<String, String> {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL must name a moto server (scripts/test starts one)");
    let env_file = dir.join("aws.env");
    let out = std::process::Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bootstrap-local"))
        .args(["--env-file", env_file.to_str().unwrap(), "--prefix", &format!("e{}", token())])
        .output()
        .expect("run scripts/bootstrap-local");
    assert!(out.status.success(), "bootstrap-local: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The agent's container environment, through `scripts/agent-env` and a shell, as
/// `scripts/run-agent` loads it.
fn agent_environment(base: &HashMap<String, String>, agent_id: &str) -> BTreeMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/agent-env");
    let out = std::process::Command::new("bash")
        .args(["-c", r#"set -euo pipefail; set -a; eval "$("$0" "$1" "$2")"; env -0"#, &python(), script, agent_id])
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
    let dir = tempfile::tempdir().unwrap();
    let base = aws_base(dir.path());

    // The control plane, deploying in process into moto.
    let admin = format!("admin-{}{}", token(), "x".repeat(32));
    let mut vars: HashMap<String, String> = base.clone();
    for (k, v) in [
        ("TEMPOVOICE_BIND", "127.0.0.1:0".to_owned()),
        ("TEMPOVOICE_DATA_DIR", dir.path().display().to_string()),
        ("DATABASE_URL", format!("sqlite://{}/tv.db", dir.path().display())),
        ("TEMPOVOICE_ADMIN_TOKEN", admin.clone()),
        ("TEMPOVOICE_SECRETS_KEY", base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())),
        ("TEMPOVOICE_DEPLOYER", "in-process".to_owned()),
        ("TEMPOVOICE_DEPLOY_RETRY_SECS", "0".to_owned()),
    ] {
        vars.insert(k.to_owned(), v);
    }
    let settings = control_plane::settings::Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let app = control_plane::App::build(settings).await.expect("control plane");
    let api = format!("http://{}", app.local_addr());
    let stop_api = app.shutdown_token();
    let api_task = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();

    let get = |path: String, key: &str| http.get(format!("{api}{path}")).bearer_auth(key).send();
    let admin_post =
        |path: String, body: Value| http.post(format!("{api}{path}")).bearer_auth(&admin).json(&body).send();
    let tenant: Value =
        admin_post("/v1/admin/tenants".into(), json!({"name": "Rosa's Bakery"})).await.unwrap().json().await.unwrap();
    let tenant_id = tenant["id"].as_str().unwrap();
    let key: Value = admin_post(format!("/v1/admin/tenants/{tenant_id}/api-keys"), json!({"label": "e2e"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["api_key"].as_str().unwrap().to_owned();

    let created = http
        .post(format!("{api}/v1/agents"))
        .bearer_auth(&key)
        .json(&json!({
            "name": "Front desk",
            "system_prompt": "You answer the phone for Rosa's Bakery.",
            "greeting": "Hello, Rosa's Bakery, how can I help?",
            "knowledge_base": [{"title": "Opening hours", "text": "We are open Tuesday to Sunday from seven in the morning to three in the afternoon."}],
            "voice": {"provider": "local"},
            "enable_recording": true,
            "telephony": {"call_phone_number": "+14155550100", "twilio_account_sid": ACCOUNT_SID},
            "secrets": {"twilio_auth_token": AUTH_TOKEN}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let agent: Value = created.json().await.unwrap();
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let mut status = String::new();
    for _ in 0..200 {
        let a: Value = http
            .get(format!("{api}/v1/agents/{agent_id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = a["deployment"]["status"].as_str().unwrap_or_default().to_owned();
        if status == "active" || status == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "active");

    // The runtime, with the task definition's environment.
    let mut env = agent_environment(&base, &agent_id);
    assert_eq!(env.get("AGENT_ID").map(String::as_str), Some(agent_id.as_str()));
    assert_eq!(env.get("TWILIO_AUTH_TOKEN").map(String::as_str), Some(AUTH_TOKEN), "secret resolved");
    let sim = TwilioSim::start(ACCOUNT_SID, AUTH_TOKEN).await.unwrap();
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
    stop_api.cancel();
    api_task.await.unwrap().unwrap();
}
