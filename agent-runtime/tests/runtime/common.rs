//! Shared set-up of the runtime's end-to-end tests: the runtime built from an
//! environment as ECS gives it, S3 played by moto server (`AWS_ENDPOINT_URL`), and
//! Twilio played by the call simulator.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::artifacts::ObjectStore;
use agent_runtime::callsim::{CallOptions, Step, TwilioSim};
use agent_runtime::server::{App, Peers};
use agent_runtime::settings::Settings;
use agent_spec::draft::{AgentDraft, KnowledgeDocumentDraft, SecretsDraft, TelephonyDraft};
use agent_spec::{AgentId, AgentSpec, SecretPatch, TenantId};
use secrecy::ExposeSecret;

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
pub const PUBLIC_HOST: &str = "voice.example.com";
/// The espeak-ng voice callers speak with (see `callsim::DEFAULT_CALLER_VOICE`).
pub const CALLER_VOICE: &str = agent_runtime::callsim::DEFAULT_CALLER_VOICE;

pub fn draft() -> AgentDraft {
    AgentDraft {
        name: "Rosa's Bakery".into(),
        system_prompt: "You answer calls for Rosa's Bakery.".into(),
        greeting: "Hello, thank you for calling Rosa's Bakery.".into(),
        voice: agent_spec::draft::VoiceDraft { provider: agent_spec::SpeechProvider::Local, ..Default::default() },
        knowledge_base: vec![
            KnowledgeDocumentDraft {
                title: "Opening hours".into(),
                text: "We are open Monday to Friday from nine in the morning to five in the evening.".into(),
            },
            KnowledgeDocumentDraft {
                title: "Location".into(),
                text: "The bakery is at twelve Harbour Street, next to the station.".into(),
            },
        ],
        enable_recording: true,
        telephony: TelephonyDraft {
            call_phone_number: "+14155550100".into(),
            transfer_phone_number: Some("+14155550199".into()),
            twilio_account_sid: ACCOUNT_SID.into(),
            ..Default::default()
        },
        secrets: SecretsDraft { twilio_auth_token: SecretPatch::set(AUTH_TOKEN), ..Default::default() },
        ..Default::default()
    }
}

pub async fn s3() -> aws_sdk_s3::Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL must point at a moto server (scripts/test starts one)");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build())
}

pub struct Runtime {
    pub addr: std::net::SocketAddr,
    pub sim: TwilioSim,
    pub bucket: String,
    pub s3: aws_sdk_s3::Client,
    pub agent_id: String,
    pub spool: tempfile::TempDir,
    pub state: agent_runtime::server::AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Wraps the real S3 store, e.g. in a fault injector.
pub type WrapStore = Box<dyn FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>>;

#[derive(Default)]
pub struct Options {
    pub extra_env: Vec<(&'static str, String)>,
    /// Wraps the real S3 store (fault injection).
    pub objects: Option<WrapStore>,
    pub spool: Option<tempfile::TempDir>,
    /// Use this bucket instead of a new one.
    pub bucket: Option<String>,
    /// Be this agent (another task of it) instead of a new one.
    pub agent_id: Option<AgentId>,
}

/// The environment ECS would give the runtime for `draft`.
pub fn environment(draft: &AgentDraft, bucket: &str) -> (AgentSpec, BTreeMap<String, String>) {
    environment_of(AgentId::generate(), draft, bucket)
}

/// The environment ECS would give a task of agent `agent_id`.
pub fn environment_of(agent_id: AgentId, draft: &AgentDraft, bucket: &str) -> (AgentSpec, BTreeMap<String, String>) {
    let (config, secrets) = draft.clone().validate(None).expect("test draft is valid");
    let spec = AgentSpec { agent_id, tenant_id: TenantId::generate(), config, secrets };
    let env = spec.to_env();
    let mut vars: BTreeMap<String, String> = env.vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    for (k, v) in &env.secrets {
        vars.insert((*k).to_owned(), v.expose_secret().to_owned());
    }
    vars.insert("S3_BUCKET_NAME".into(), bucket.to_owned());
    vars.insert("S3_BUCKET_REGION".into(), "us-east-1".into());
    (spec, vars)
}

/// The agent's bucket through the real S3 client (for wrapping in fault injectors).
pub async fn s3_store(bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(agent_runtime::artifacts::S3Store { client: s3().await, bucket: bucket.to_owned() })
}

pub async fn spawn(draft: AgentDraft) -> Runtime {
    spawn_with(draft, Options::default()).await
}

pub async fn spawn_with(draft: AgentDraft, options: Options) -> Runtime {
    let s3 = s3().await;
    let bucket = match options.bucket {
        Some(b) => b,
        None => {
            let b = format!("tv-rt-{}", agent_spec::AgentId::generate());
            s3.create_bucket().bucket(&b).send().await.expect("create the test bucket on moto");
            b
        }
    };
    let sim = TwilioSim::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("start the Twilio simulator");
    let spool = options.spool.unwrap_or_else(|| tempfile::tempdir().expect("spool dir"));
    let (spec, mut vars) = environment_of(options.agent_id.unwrap_or_else(AgentId::generate), &draft, &bucket);
    vars.insert("TEMPOVOICE_LISTEN".into(), "127.0.0.1:0".into());
    vars.insert("TEMPOVOICE_PUBLIC_HOST".into(), PUBLIC_HOST.into());
    vars.insert("TWILIO_API_BASE".into(), sim.api_base());
    vars.insert("TEMPOVOICE_SPOOL_DIR".into(), spool.path().display().to_string());
    vars.insert("TEMPOVOICE_LOG_FORMAT".into(), "text".into());
    vars.insert("TEMPOVOICE_DRAIN_SECS".into(), "2".into());
    // The tests' webhook receivers listen on 127.0.0.1.
    vars.insert("TEMPOVOICE_WEBHOOKS_TO_PRIVATE_ADDRESSES".into(), "allow".into());
    for (k, v) in options.extra_env {
        vars.insert(k.to_owned(), v);
    }
    let settings = Settings::from_env(|k| vars.get(k).cloned()).expect("settings from the test environment");
    serving::logging::init(serving::logging::LogFormat::Text, std::io::stderr);
    let app = match options.objects {
        Some(wrap) => {
            let objects = wrap(s3_store(&bucket).await);
            let http = reqwest::Client::new();
            let telephony = Arc::new(agent_runtime::telephony::TwilioRest::new(
                http,
                &sim.api_base(),
                ACCOUNT_SID,
                secrecy::SecretString::from(AUTH_TOKEN),
            ));
            App::build_with(settings, Peers { objects, telephony }).await.expect("build the runtime")
        }
        None => App::build(settings).await.expect("build the runtime"),
    };
    let addr = app.local_addr();
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    Runtime {
        addr,
        sim,
        bucket,
        s3,
        agent_id: spec.agent_id.to_string(),
        spool,
        state,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl Runtime {
    pub fn voice_url(&self) -> String {
        format!("http://{}/agent/{}/incoming-call", self.addr, self.agent_id)
    }

    pub fn options(&self, script: Vec<Step>) -> CallOptions {
        CallOptions {
            voice_url: self.voice_url(),
            public_host: PUBLIC_HOST.into(),
            from: "+15550001234".into(),
            to: "+14155550100".into(),
            script,
            realtime: true,
            max_duration: Duration::from_secs(90),
            bad_signature: false,
            keep_heard: true,
            repeat_for: None,
        }
    }

    /// Sends SIGTERM's equivalent and waits for the runtime to exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(h) => h.await?,
            None => Ok(()),
        }
    }

    pub fn shutdown_signal(&mut self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.shutdown.take()
    }

    pub async fn join(&mut self) -> anyhow::Result<()> {
        match self.handle.take() {
            Some(h) => h.await?,
            None => Ok(()),
        }
    }

    /// An object of the call, waiting up to `wait` for it to appear.
    pub async fn object(&self, call_sid: &str, file: &str, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let r = self.s3.get_object().bucket(&self.bucket).key(format!("calls/{call_sid}/{file}")).send().await;
            if let Ok(o) = r {
                return Some(o.body.collect().await.ok()?.into_bytes().to_vec());
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn json(&self, call_sid: &str, file: &str) -> serde_json::Value {
        let bytes = self
            .object(call_sid, file, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("{file} of {call_sid} not in the bucket"));
        serde_json::from_slice(&bytes).expect("artifact is JSON")
    }
}

pub fn say(text: &str) -> Step {
    Step::Say(Arc::new(agent_runtime::callsim::speech(text, CALLER_VOICE).expect("espeak-ng speech")))
}

pub fn wait_for_agent() -> Step {
    Step::WaitForAgent { quiet: Duration::from_millis(900), timeout: Duration::from_secs(20) }
}

/// Agent turns' text, in order.
pub fn agent_lines(transcript: &serde_json::Value) -> Vec<String> {
    transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == "agent")
        .map(|t| t["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A knowledge-base document long enough to be cut off mid-answer.
pub fn cakes() -> agent_spec::draft::KnowledgeDocumentDraft {
    agent_spec::draft::KnowledgeDocumentDraft {
        title: "Cakes".into(),
        text: "We bake chocolate cakes, lemon cakes, carrot cakes and cheesecakes every single morning. \
               Wedding cakes take two weeks of notice and we deliver them anywhere in the city. \
               Birthday cakes can be decorated with any message you like."
            .into(),
    }
}

/// The offline brain a `speechsim` fake converses with, for `config`, and the
/// directory holding its language model.
pub fn fake_brain(
    config: &agent_spec::AgentConfig,
) -> (Arc<agent_runtime::speech::local::LocalPipeline>, tempfile::TempDir) {
    let work = tempfile::tempdir().expect("work dir");
    let settings = agent_runtime::speech::local::LocalSettings {
        recognition: true,
        model_dir: agent_runtime::speech::recognizer::DEFAULT_MODEL_DIR.into(),
        espeak: "espeak-ng".into(),
        work_dir: work.path().to_owned(),
    };
    (agent_runtime::speechsim::brain(config, &settings).expect("the fake's brain"), work)
}

/// The names of the tool calls in a transcript, in order.
pub fn tool_names(transcript: &serde_json::Value) -> Vec<String> {
    transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["tool_calls"].as_array().cloned().unwrap_or_default())
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The media stream upgrade as Twilio sends it, signed.
pub fn stream_request(rt: &Runtime) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let public = format!("wss://{PUBLIC_HOST}/agent/{}/media-stream", rt.agent_id);
    let mut request = format!("ws://{}/agent/{}/media-stream", rt.addr, rt.agent_id).into_client_request().unwrap();
    let h = request.headers_mut();
    h.insert("X-Twilio-Signature", agent_runtime::twilio::signature(AUTH_TOKEN, &public, &[]).parse().unwrap());
    h.insert("X-Forwarded-Host", PUBLIC_HOST.parse().unwrap());
    h.insert("X-Forwarded-Proto", "https".parse().unwrap());
    request
}

/// Opens the media stream as Twilio would, signed.
pub async fn open_stream(rt: &Runtime) -> Ws {
    tokio_tungstenite::connect_async(stream_request(rt)).await.expect("upgrade").0
}

/// The voice webhook's answer to `call_sid`, signed as Twilio signs it.
pub async fn answer(rt: &Runtime, call_sid: &str) -> String {
    let params = [
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", call_sid),
        ("Direction", "inbound"),
        ("From", "+15550001234"),
        ("To", "+14155550100"),
    ];
    let signed: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let public = format!("https://{PUBLIC_HOST}/agent/{}/incoming-call", rt.agent_id);
    let response = reqwest::Client::new()
        .post(format!("http://{}/agent/{}/incoming-call", rt.addr, rt.agent_id))
        .header("X-Twilio-Signature", agent_runtime::twilio::signature(AUTH_TOKEN, &public, &signed))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(agent_runtime::telephony::form_urlencoded(&params))
        .send()
        .await
        .expect("post the voice webhook");
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The stream token in the webhook's answer to `call_sid`.
pub async fn stream_token(rt: &Runtime, call_sid: &str) -> String {
    let twiml = answer(rt, call_sid).await;
    let stream = agent_runtime::callsim::parse_connect_stream(&twiml).unwrap();
    stream.parameters.into_iter().find(|(k, _)| k == "streamToken").expect("the answer carries a stream token").1
}

/// A stream's `start` for `call_sid` from `account_sid`, with `token` (if any) among
/// its parameters.
pub fn start_message(call_sid: &str, stream_sid: &str, account_sid: &str, token: Option<&str>) -> String {
    let mut parameters = serde_json::json!({"from": "+15550001234"});
    if let Some(token) = token {
        parameters["streamToken"] = token.into();
    }
    serde_json::json!({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {"accountSid": account_sid, "streamSid": stream_sid, "callSid": call_sid, "tracks": ["inbound"],
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                  "customParameters": parameters}})
    .to_string()
}
