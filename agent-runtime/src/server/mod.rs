//! The HTTP side: Twilio's voice webhook, the Media Streams WebSocket, health,
//! readiness and metrics, and the graceful drain on shutdown.
//!
//! | route | |
//! |---|---|
//! | `POST /agent/{agentId}/incoming-call` | Twilio voice webhook → TwiML `<Connect><Stream>` (or `<Reject reason="busy"/>`) |
//! | `GET /agent/{agentId}/media-stream` | Media Streams WebSocket → [`crate::call::run_call`], once per call ([`admission`]) |
//! | `POST /agent/{agentId}/stream-status` | Twilio's `<Stream statusCallback>`: stream started, stopped, failed |
//! | `POST /agent/{agentId}/amd-status` | Twilio's asynchronous answering machine detection result of an outbound call ([`crate::call::amd`]) |
//! | `POST /agent/{agentId}/call-status` | the number's status callback (set by the control plane): each call's final status |
//! | `GET /health` | liveness |
//! | `GET /health/ready` | 200 while taking calls; 503 while draining, or when the agent's speech provider cannot work (the body says why) |
//! | `GET /metrics` | Prometheus |

pub mod admission;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{SinkExt, StreamExt};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::artifacts::{ArtifactStore, ObjectStore, S3Store};
use crate::call::{CallEnv, CallTimings, WsFrame, run_call};
use crate::guardrails::Guardrails;
use crate::metrics::Metrics;
use crate::phrases::Phrases;
use crate::settings::Settings;
use crate::speech::local::LocalPipeline;
use crate::speech::nova::NovaSonic;
use crate::speech::openai::OpenAiRealtime;
use crate::speech::provider::Provider;
use crate::speech::tts::Synthesizer;
use crate::telephony::{TelephonyControl, TwilioRest};
use crate::webhooks::WebhookSender;
use admission::{AnsweredCalls, STREAM_TOKEN_PARAMETER, StreamTokens};

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    env: CallEnv,
    provider: Provider,
    draining: AtomicBool,
    calls: TaskTracker,
    drain: CancellationToken,
    /// This task's part of the agent's call index.
    call_index: Arc<crate::call_index::CallIndex>,
    /// Told when the live calls change, for the task's scale-in protection.
    protection: Arc<crate::protection::ProtectionState>,
}

pub struct App {
    listener: tokio::net::TcpListener,
    state: AppState,
}

/// The outside systems, replaceable for fault-injection tests.
pub struct Peers {
    pub objects: Arc<dyn ObjectStore>,
    pub telephony: Arc<dyn TelephonyControl>,
}

impl App {
    /// Builds the runtime with the real peers: S3 (the SDK's default chain, so
    /// `AWS_ENDPOINT_URL` points it at a local S3) and Twilio's REST API.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(settings.bucket_region.clone()))
            .load()
            .await;
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
        let objects: Arc<dyn ObjectStore> = Arc::new(S3Store { client: s3, bucket: settings.bucket.clone() });
        let http = http_client(&settings)?.timeout(Duration::from_secs(10)).build()?;
        let telephony: Arc<dyn TelephonyControl> = Arc::new(TwilioRest::new(
            http,
            &settings.twilio_api_base,
            settings.spec.config.telephony.twilio_account_sid.as_str(),
            settings.spec.secrets.twilio_auth_token.clone(),
        ));
        Self::build_with(settings, Peers { objects, telephony }).await
    }

    pub async fn build_with(settings: Settings, peers: Peers) -> anyhow::Result<Self> {
        use anyhow::Context;
        // The webhook URLs that are credentials come from the secrets; the config
        // shows them redacted.
        let config = settings.spec.secrets.with_webhook_urls(&settings.spec.config);
        let phrases = Phrases::for_agent(&config);
        let started = std::time::Instant::now();
        let provider = match config.voice.provider {
            agent_spec::SpeechProvider::Local => Provider::Local(
                LocalPipeline::new(&config, &settings.local).context("start the local speech pipeline")?,
            ),
            agent_spec::SpeechProvider::OpenaiRealtime => match OpenAiRealtime::new(
                &config,
                settings.spec.secrets.openai_api_key.clone(),
                settings.openai_realtime_url.clone(),
                settings.extra_ca_pem.as_deref(),
            ) {
                Ok(openai) => Provider::OpenAi(Arc::new(openai)),
                Err(reason) => Provider::Unusable { provider: "openai-realtime", reason },
            },
            agent_spec::SpeechProvider::NovaSonic => match nova_clients(&settings).await {
                Ok(clients) => Provider::Nova(Arc::new(NovaSonic::new(&config, clients, settings.nova_rotate_after))),
                Err(reason) => Provider::Unusable { provider: "nova-sonic", reason },
            },
        };
        if let Some(reason) = provider.unusable() {
            tracing::error!(provider = provider.name(), reason, "the agent's speech provider cannot take calls");
        }
        let loaded = started.elapsed();
        // The runtime's own voice says the apology when a provider is gone; with the
        // local pipeline it says everything.
        let voice = match &provider {
            Provider::Local(pipeline) => pipeline.synthesizer(),
            _ => {
                Arc::new(Synthesizer::new(settings.local.espeak.clone(), crate::speech::tts::DEFAULT_VOICE.to_owned()))
            }
        };
        let lines = match &provider {
            Provider::Local(_) => phrases.all(),
            _ => vec![phrases.provider_apology.as_str()],
        };
        crate::speech::tts::prewarm(&voice, &lines).await.context("synthesize the agent's standard phrases")?;
        tracing::info!(
            provider = provider.name(),
            load_ms = loaded.as_millis() as u64,
            prewarm_ms = (started.elapsed() - loaded).as_millis() as u64,
            phrases = lines.len(),
            "speech ready"
        );
        let metrics = Arc::new(Metrics::default());
        let call_index = Arc::new(crate::call_index::CallIndex::new(
            Arc::clone(&peers.objects),
            Arc::clone(&metrics),
            crate::call_index::task_name(),
        ));
        let artifacts = Arc::new(
            ArtifactStore::new(
                peers.objects,
                settings.spool_dir.clone(),
                Duration::from_millis(500),
                Duration::from_secs(60),
            )
            .with_spool_cap(settings.spool_max_bytes),
        );
        let leftovers = artifacts.recover();
        if leftovers > 0 {
            tracing::info!(calls = leftovers, "uploading call artifacts left in the spool");
        }
        let http = crate::outbound::client(http_client(&settings)?, settings.webhooks_to_private)?;
        let control_plane = match &settings.control_plane_url {
            Some(url) => Some(Arc::new(crate::callbacks::ControlPlane::new(
                http_client(&settings)?.build()?,
                url,
                settings.spec.agent_id.as_str(),
                settings.spec.secrets.twilio_auth_token.clone(),
            ))),
            None => None,
        };
        let env = CallEnv {
            control_plane,
            agent_id: settings.spec.agent_id.to_string(),
            tenant_id: settings.spec.tenant_id.to_string(),
            guardrails: Guardrails::new(&config.guardrails),
            phrases,
            voice,
            telephony: peers.telephony,
            webhooks: WebhookSender::new(http, settings.spec.secrets.webhook_signing_secret.clone())
                .allowing_private_addresses(settings.webhooks_to_private),
            artifacts,
            metrics,
            tasks: TaskTracker::new(),
            answered: AnsweredCalls::default(),
            stream_tokens: StreamTokens::new(
                settings.spec.secrets.twilio_auth_token.expose_secret(),
                settings.spec.agent_id.as_str(),
            ),
            amd: Arc::default(),
            max_calls: settings.max_calls,
            timings: CallTimings { end_of_turn: settings.end_of_turn, ..CallTimings::default() },
            config,
        };
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listen on {}", settings.listen))?;
        let state = AppState {
            inner: Arc::new(Inner {
                settings,
                env,
                provider,
                draining: AtomicBool::new(false),
                calls: TaskTracker::new(),
                drain: CancellationToken::new(),
                call_index,
                protection: Arc::default(),
            }),
        };
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then drains: readiness goes false and new
    /// calls are refused; live calls go on for the drain period, then are ended
    /// politely; their artifacts are stored (or spooled) before this returns.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let state = self.state.clone();
        let inner = &state.inner;
        let stop_serving = CancellationToken::new();
        let router = router(state.clone());
        let serve = {
            let stop = stop_serving.clone();
            let limits = inner.settings.limits;
            // `TCP_NODELAY` on every connection: agent audio, marks and `clear` go out
            // at once, not held back by Nagle's algorithm for an acknowledgement.
            tokio::spawn(serving::serve(self.listener, router, limits, async move { stop.cancelled().await }))
        };
        let spool_stop = CancellationToken::new();
        let spool = {
            let artifacts = Arc::clone(&inner.env.artifacts);
            let stop = spool_stop.clone();
            tokio::spawn(async move {
                artifacts.flush_spool().await;
                artifacts.retry_loop(stop).await;
            })
        };

        let index_stop = CancellationToken::new();
        let index = tokio::spawn(Arc::clone(&inner.call_index).run(index_stop.clone()));
        let emf_stop = CancellationToken::new();
        let emf = inner.settings.emf_every.map(|every| {
            let out: Arc<std::sync::Mutex<dyn std::io::Write + Send>> =
                Arc::new(std::sync::Mutex::new(std::io::stdout()));
            tokio::spawn(crate::emf::run(
                Arc::clone(&inner.env.metrics),
                inner.env.agent_id.clone(),
                inner.call_index.task().to_owned(),
                every,
                out,
                emf_stop.clone(),
            ))
        });
        let protection_stop = CancellationToken::new();
        let protection = match &inner.settings.ecs_agent_uri {
            Some(uri) => {
                let counted = Arc::downgrade(&state.inner);
                let live: crate::protection::LiveCalls = Arc::new(move || {
                    counted.upgrade().map_or(0, |i| {
                        i.env.metrics.active_calls.load(Ordering::SeqCst).max(0) as usize + i.env.answered.pending()
                    })
                });
                let protection = crate::protection::Protection::new(
                    http_client(&inner.settings)?.build()?,
                    uri,
                    Duration::from_secs(u64::from(inner.env.config.guardrails.max_session_duration_secs)),
                    inner.settings.protection_refresh,
                    Arc::clone(&inner.protection),
                    live,
                    Arc::clone(&inner.env.metrics),
                );
                tracing::info!(minutes = protection.minutes(), "scale-in protection follows the live calls");
                Some(tokio::spawn(protection.run(protection_stop.clone())))
            }
            None => None,
        };

        shutdown.await;
        inner.draining.store(true, Ordering::SeqCst);
        let live = inner.env.metrics.active_calls.load(Ordering::Relaxed);
        tracing::info!(live_calls = live, drain_secs = inner.settings.drain.as_secs(), "draining");
        inner.calls.close();
        if tokio::time::timeout(inner.settings.drain, inner.calls.wait()).await.is_err() {
            tracing::info!("drain period over: ending live calls");
            inner.drain.cancel();
            if tokio::time::timeout(Duration::from_secs(20), inner.calls.wait()).await.is_err() {
                tracing::error!("calls did not end after the drain; their artifacts may be in the spool");
            }
        }
        inner.env.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), inner.env.tasks.wait()).await;
        spool_stop.cancel();
        let _ = spool.await;
        let left = inner.env.artifacts.flush_spool().await;
        if left > 0 {
            tracing::error!(calls = left, spool = %inner.env.artifacts.spool_dir().display(), "artifacts left in the spool");
        }
        index_stop.cancel();
        let _ = index.await;
        protection_stop.cancel();
        if let Some(protection) = protection {
            let _ = protection.await;
        }
        emf_stop.cancel();
        if let Some(emf) = emf {
            let _ = emf.await;
        }
        stop_serving.cancel();
        serve.await??;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The Bedrock Runtime clients for Nova Sonic: the agent's region, the SDK's
/// credential chain (checked now: without credentials the agent is not ready), the
/// endpoint override, `TEMPOVOICE_EXTRA_CA_FILE`'s roots, and no retries (a
/// bidirectional stream that has started cannot be replayed). One client, with its
/// own connection, per [`crate::speech::nova::STREAMS_PER_CONNECTION`] streams the
/// task's calls can hold (two per call while a stream is replaced).
async fn nova_clients(settings: &Settings) -> Result<Vec<aws_sdk_bedrockruntime::Client>, String> {
    use aws_credential_types::provider::ProvideCredentials;
    use aws_smithy_http_client::tls;
    let region = settings.spec.config.integrations.aws_region.as_str().to_owned();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.clone()))
        .load()
        .await;
    let credentials = shared.credentials_provider().ok_or("no AWS credentials provider is configured")?;
    credentials.provide_credentials().await.map_err(|e| {
        format!("AWS credentials for Bedrock in {region}: {}", aws_sdk_bedrockruntime::error::DisplayErrorContext(&e))
    })?;
    let mut trust = tls::TrustStore::default();
    if let Some(pem) = &settings.extra_ca_pem {
        trust = trust.with_pem_certificate(pem.clone());
    }
    let context = tls::TlsContext::builder().with_trust_store(trust).build().map_err(|e| e.to_string())?;
    let streams = (settings.max_calls + settings.max_calls / 4).max(1);
    // Clients are cheap until used: a connection opens with a client's first stream.
    let count = streams.div_ceil(crate::speech::nova::STREAMS_PER_CONNECTION).min(256);
    let clients = (0..count)
        .map(|_| {
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
                .tls_context(context.clone())
                .build_https();
            let mut config = aws_sdk_bedrockruntime::config::Builder::from(&shared)
                .http_client(http)
                .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled());
            if let Some(endpoint) = &settings.bedrock_endpoint {
                config = config.endpoint_url(endpoint);
            }
            aws_sdk_bedrockruntime::Client::from_conf(config.build())
        })
        .collect();
    Ok(clients)
}

/// An HTTPS client that also trusts `TEMPOVOICE_EXTRA_CA_FILE`.
fn http_client(settings: &Settings) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut builder = reqwest::Client::builder();
    if let Some(pem) = &settings.extra_ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

impl AppState {
    pub fn metrics(&self) -> &Metrics {
        &self.inner.env.metrics
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.inner.env.artifacts
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/agent/{agent_id}/incoming-call", post(incoming_call))
        .route("/agent/{agent_id}/media-stream", get(media_stream))
        .route("/agent/{agent_id}/stream-status", post(stream_status))
        .route("/agent/{agent_id}/call-status", post(call_status))
        .route("/agent/{agent_id}/amd-status", post(amd_status))
        .route("/health", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.inner.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    } else if let Some(reason) = state.inner.provider.unusable() {
        (StatusCode::SERVICE_UNAVAILABLE, format!("speech provider {}: {reason}", state.inner.provider.name()))
            .into_response()
    } else {
        "ready".into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let artifacts = &state.inner.env.artifacts;
    let body = state.inner.env.metrics.render(artifacts.spooled(), artifacts.disk().used());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The URL Twilio requested: the configured public host (never the request's
/// `Host` or `X-Forwarded-Host`, which a client chooses), the scheme the load
/// balancer reports, and the request's path and query.
fn public_url(settings: &Settings, headers: &HeaderMap, uri: &Uri, websocket: bool) -> String {
    let header = |name: &str| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
    };
    let proto = header("x-forwarded-proto").unwrap_or_else(|| "https".into());
    let secure = proto != "http" && proto != "ws";
    let scheme = match (websocket, secure) {
        (true, true) => "wss",
        (true, false) => "ws",
        (false, true) => "https",
        (false, false) => "http",
    };
    let host = &settings.public_host;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{host}{path}")
}

impl AppState {
    /// Unless the request is for this agent and signed by Twilio (over the public URL
    /// and, for the webhook, its form parameters), the response refusing it.
    fn refusal(
        &self,
        agent_id: &str,
        headers: &HeaderMap,
        uri: &Uri,
        params: &[(String, String)],
        websocket: bool,
    ) -> Option<Response> {
        let inner = &self.inner;
        if agent_id != inner.env.agent_id {
            return Some((StatusCode::NOT_FOUND, "no such agent here").into_response());
        }
        let url = public_url(&inner.settings, headers, uri, websocket);
        let token = inner.settings.spec.secrets.twilio_auth_token.expose_secret();
        let signed = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|signature| crate::twilio::is_valid(token, &url, params, signature));
        if signed {
            return None;
        }
        inner.env.metrics.signature_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(url, "request refused: bad or missing X-Twilio-Signature");
        Some((StatusCode::FORBIDDEN, "invalid Twilio signature").into_response())
    }
}

/// A request Twilio made to one of the agent's webhooks (`/agent/{id}/…`): its form,
/// once the request is known to be for this agent and signed by Twilio (otherwise
/// the refusal is the answer).
struct TwilioForm {
    params: Vec<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
}

impl TwilioForm {
    /// The value of `name`, or `""`.
    fn get(&self, name: &str) -> &str {
        self.params.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
}

impl axum::extract::FromRequest<AppState> for TwilioForm {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = request.into_parts();
        let Path(agent_id) =
            Path::<String>::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let (headers, uri) = (parts.headers.clone(), parts.uri.clone());
        // Read as axum reads any body: within the router's body limit (413 beyond it).
        let body = axum::body::Bytes::from_request(axum::extract::Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
        if let Some(refused) = state.refusal(&agent_id, &headers, &uri, &params, false) {
            return Err(refused);
        }
        Ok(Self { params, headers, uri })
    }
}

fn twiml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

async fn incoming_call(State(state): State<AppState>, form: TwilioForm) -> Response {
    let inner = &state.inner;
    let (headers, uri) = (&form.headers, &form.uri);
    let param = |name: &str| form.get(name).to_owned();
    let call_sid = param("CallSid");
    if agent_spec::CallSid::parse(&call_sid).is_err() {
        return (StatusCode::UNPROCESSABLE_ENTITY, "CallSid: missing or not a Twilio call sid").into_response();
    }
    if !state.take_slot(&call_sid) {
        inner.env.metrics.calls_rejected_busy.fetch_add(1, Ordering::Relaxed);
        tracing::info!(call_sid, "call rejected: busy");
        return twiml(crate::twiml::reject_busy());
    }
    if let Some(url) = inner.env.config.integrations.pickup_webhook_url.clone() {
        let body = json!({
            "event": "call_picked_up",
            "agent_id": inner.env.agent_id,
            "tenant_id": inner.env.tenant_id,
            "call_sid": call_sid,
            "from": param("From"),
            "to": param("To"),
        });
        let handle = inner.env.webhooks.spawn(&inner.env.tasks, &inner.env.metrics, "pickup", url.to_string(), body);
        inner.env.answered.attach_pickup(&call_sid, handle);
    }
    let stream_url = {
        let base = public_url(&inner.settings, headers, &Uri::from_static("/"), true);
        format!("{}agent/{}/media-stream", base, inner.env.agent_id)
    };
    let status_url = {
        let base = public_url(&inner.settings, headers, &Uri::from_static("/"), false);
        format!("{}agent/{}/stream-status", base, inner.env.agent_id)
    };
    let from = param("From");
    let to = param("To");
    let direction = param("Direction");
    let token = inner.env.stream_tokens.issue(&call_sid);
    // An outbound call the control plane placed says so in its (signed) URL: whether
    // Twilio runs answering machine detection, and the caller's metadata.
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let from_query = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let (amd, metadata) = (from_query("amd"), from_query("metadata"));
    tracing::info!(call_sid, from, direction, amd, "call answered");
    let mut parameters = vec![
        ("from", from.as_str()),
        ("to", to.as_str()),
        ("callSid", call_sid.as_str()),
        ("direction", direction.as_str()),
        (STREAM_TOKEN_PARAMETER, token.as_str()),
    ];
    parameters
        .extend([("amd", amd.as_str()), ("metadata", metadata.as_str())].into_iter().filter(|(_, v)| !v.is_empty()));
    twiml(crate::twiml::connect_stream(&stream_url, &status_url, &parameters))
}

impl AppState {
    /// Reserves a call slot, unless the task is draining or full.
    fn take_slot(&self, call_sid: &str) -> bool {
        let inner = &self.inner;
        if inner.draining.load(Ordering::SeqCst) {
            return false;
        }
        let live = inner.env.metrics.active_calls.load(Ordering::SeqCst).max(0) as usize;
        let taken = inner.env.answered.reserve(call_sid, live, inner.settings.max_calls);
        if taken {
            inner.protection.poke();
        }
        taken
    }
}

async fn media_stream(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let inner = &state.inner;
    if let Some(refused) = state.refusal(&agent_id, &headers, &uri, &[], true) {
        return refused;
    }
    if inner.draining.load(Ordering::SeqCst) || inner.calls.is_closed() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    // Every open stream counts against the limit, started or not; which call it is
    // (and whether its slot was held here) is known at its `start`.
    if inner.env.metrics.active_calls.load(Ordering::SeqCst).max(0) as usize >= inner.settings.max_calls {
        inner.env.metrics.stream_refused(admission::Refusal::Full);
        tracing::warn!("media stream refused: every call slot is taken");
        return (StatusCode::SERVICE_UNAVAILABLE, "no free call slot").into_response();
    }
    let st = state.clone();
    // Media messages are ~300 bytes: small buffers keep a call's memory small.
    ws.max_message_size(1024 * 1024).read_buffer_size(4096).write_buffer_size(8192).on_upgrade(move |socket| {
        let tracker = st.inner.calls.clone();
        tracker.track_future(handle_socket(st, socket))
    })
}

/// Twilio's `<Stream statusCallback>`: counted by event; a failed stream is logged
/// with Twilio's reason.
async fn stream_status(State(state): State<AppState>, form: TwilioForm) -> Response {
    let param = |name: &str| form.get(name);
    let event = param("StreamEvent");
    state.inner.env.metrics.stream_event(event);
    let (call_sid, stream_sid) = (param("CallSid"), param("StreamSid"));
    if event == "stream-error" {
        tracing::error!(call_sid, stream_sid, error = param("StreamError"), "Twilio reports the media stream failed");
    } else {
        tracing::debug!(call_sid, stream_sid, event, "stream status");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Twilio's asynchronous answering machine detection result for an outbound call
/// (`AsyncAmdStatusCallback`): handed to the call if it runs on this task; the
/// call asks Twilio itself otherwise ([`crate::call::amd`]).
async fn amd_status(State(state): State<AppState>, form: TwilioForm) -> Response {
    let param = |name: &str| form.get(name);
    let (call_sid, answered_by) = (param("CallSid"), param("AnsweredBy"));
    if agent_spec::CallSid::parse(call_sid).is_err() || answered_by.is_empty() {
        return (StatusCode::UNPROCESSABLE_ENTITY, "CallSid and AnsweredBy are required").into_response();
    }
    let here = state.inner.env.amd.deliver(call_sid, answered_by);
    tracing::info!(call_sid, answered_by, here, "answering machine detection result");
    StatusCode::NO_CONTENT.into_response()
}

/// Twilio's call status callback (the number's `StatusCallback`, set by the control
/// plane): counted by final status; a call that failed before it reached the agent
/// (`busy`, `no-answer`, `failed`) is logged, since no media stream ever told of it.
async fn call_status(State(state): State<AppState>, form: TwilioForm) -> Response {
    let param = |name: &str| form.get(name);
    let (call_sid, status) = (param("CallSid"), param("CallStatus"));
    state.inner.env.metrics.call_status(status);
    match status {
        "busy" | "no-answer" | "failed" | "canceled" => {
            tracing::warn!(call_sid, status, direction = param("Direction"), "call ended before it reached the agent")
        }
        _ => tracing::debug!(call_sid, status, duration_secs = param("CallDuration"), "call status"),
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn handle_socket(state: AppState, socket: WebSocket) {
    let inner = &state.inner;
    let metrics = &inner.env.metrics;
    metrics.active_calls.fetch_add(1, Ordering::SeqCst);
    inner.protection.poke();
    let (sink, stream) = socket.split();
    let inbound = stream
        .take_while(|m| futures::future::ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_)))))
        .map(|m| match m {
            Ok(Message::Text(t)) => WsFrame::Text(t.as_str().to_owned()),
            _ => WsFrame::Other,
        });
    let outbound = sink.with(|s: String| futures::future::ready(Ok::<_, axum::Error>(Message::Text(s.into()))));
    let provider = &inner.provider;
    let artifacts =
        run_call(&inner.env, Box::pin(inbound), Box::pin(outbound), || provider.connect(), inner.drain.clone()).await;
    metrics.active_calls.fetch_sub(1, Ordering::SeqCst);
    inner.protection.poke();
    let Some(artifacts) = artifacts else { return };
    let call_sid = artifacts.call_sid.clone();
    let transcript: serde_json::Value = serde_json::from_slice(&artifacts.transcript).unwrap_or_default();
    let metadata: serde_json::Value = serde_json::from_slice(&artifacts.metadata).unwrap_or_default();
    inner.call_index.record(&artifacts.index);
    match inner.env.artifacts.store(artifacts).await {
        Ok(true) => tracing::info!(call_sid, "call artifacts stored"),
        Ok(false) => {
            metrics.s3_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(call_sid, "call artifacts spooled; they are retried in the background");
        }
        Err(e) => {
            metrics.s3_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(call_sid, error = %e, "write call artifacts to the spool");
        }
    }
    if let Some(url) = inner.env.config.integrations.transcript_webhook_url.clone() {
        let body =
            json!({ "event": "call_ended", "call_sid": call_sid, "metadata": metadata, "transcript": transcript });
        let delivery = inner.env.webhooks.spawn(&inner.env.tasks, metrics, "transcript", url.to_string(), body);
        let artifacts = Arc::clone(&inner.env.artifacts);
        let mut metadata = metadata;
        inner.env.tasks.spawn(async move {
            let Ok(result) = delivery.await else { return };
            // The delivery is recorded in the call's metadata.
            if let Some(list) = metadata.get_mut("webhooks").and_then(|w| w.as_array_mut()) {
                list.push(serde_json::to_value(&result).unwrap_or_default());
            }
            if let Err(e) =
                artifacts.update_metadata(&call_sid, &serde_json::to_vec_pretty(&metadata).unwrap_or_default()).await
            {
                tracing::warn!(call_sid, error = %e, "record the transcript webhook in the metadata");
            }
        });
    }
}
