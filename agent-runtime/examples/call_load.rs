//! The runtime's own cost per call: `N` concurrent calls from the call simulator
//! against the release `agent-runtime` binary pinned to one core, with the local
//! pipeline's recognition off and its replies cached (the work that stays in the
//! runtime when a cloud provider does the recognition).
//!
//! ```text
//! cargo build --release -p agent-runtime --bin agent-runtime --example call_load
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 taskset -c 1 target/release/examples/call_load 250 500 1000
//! ```
//!
//! Each call repeats for `TEMPOVOICE_BENCH_SECS` (default 30): the caller says a
//! 1.3 s phrase, the agent answers, the caller pauses 1.5 s, and again. Calls arrive
//! evenly over `TEMPOVOICE_BENCH_RAMP_SECS` (default 10, about one such round), so
//! their turns are spread as independent callers' are. The runtime runs under
//! `taskset -c 0`.
//!
//! `TEMPOVOICE_BENCH_PROVIDER=openai` or `nova` runs the calls through that cloud
//! provider instead, played by `speechsim`'s fake in this process (on the other core,
//! beside the simulator): recognition off in the fake and its turns cut by frame
//! energy rather than earshot (so the load generator stays light), every turn answered
//! with the same cached line, and the runtime does all a cloud call costs it — Media
//! Streams, earshot, the provider's protocol (μ-law passed through as base64 JSON
//! for OpenAI; μ-law ↔ PCM16, base64, event-stream framing, SigV4 signing and TLS
//! for Nova). The table then also gives provider audio received → media frames
//! written (`tempovoice_agent_audio_seconds`).
//! Reported per load: inbound frame handling p50/p99 and end-of-turn → first audio
//! p50/p99 (the runtime's histograms, upper bucket bounds), the greeting's delay
//! after `start` as the simulator heard it, frames lost (sent by the
//! simulator and not counted by the runtime), simulator ticks late by > 5 ms, RSS and
//! CPU per call (from /proc, over the steady part of the run).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_runtime::callsim::{CallOptions, Step, TwilioSim};
use agent_spec::draft::{AgentDraft, SecretsDraft, TelephonyDraft};
use agent_spec::{AgentId, AgentSpec, SecretPatch, TenantId};
use secrecy::ExposeSecret;

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const OPENAI_KEY: &str = "sk-bench-0123456789abcdefghijklmnop";

fn histogram_quantile(metrics: &str, name: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(&format!("{name}_bucket{{le=\"")) else { continue };
        let (le, count) = rest.split_once("\"} ")?;
        if le == "+Inf" {
            continue;
        }
        buckets.push((le.parse().ok()?, count.parse().ok()?));
    }
    let total = metrics.lines().find_map(|l| l.strip_prefix(&format!("{name}_count ")))?.parse::<f64>().ok()?;
    if total == 0.0 {
        return None;
    }
    buckets.iter().find(|(_, c)| *c >= q * total).map(|(le, _)| *le)
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn proc_stat(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let ticks = fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (rss_kib, ticks)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let loads: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let loads = if loads.is_empty() { vec![100] } else { loads };
    let secs: u64 = std::env::var("TEMPOVOICE_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let ramp: u64 = std::env::var("TEMPOVOICE_BENCH_RAMP_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    anyhow::ensure!(
        secs >= ramp + 15,
        "TEMPOVOICE_BENCH_SECS ({secs}) must be at least TEMPOVOICE_BENCH_RAMP_SECS ({ramp}) + 15"
    );
    let runtime_bin = std::env::var("TEMPOVOICE_RUNTIME_BIN").unwrap_or_else(|_| "target/release/agent-runtime".into());

    let provider = std::env::var("TEMPOVOICE_BENCH_PROVIDER").unwrap_or_else(|_| "local".into());
    let speech = match provider.as_str() {
        "local" => agent_spec::SpeechProvider::Local,
        "openai" => agent_spec::SpeechProvider::OpenaiRealtime,
        "nova" => agent_spec::SpeechProvider::NovaSonic,
        other => anyhow::bail!("TEMPOVOICE_BENCH_PROVIDER: {other:?} is not local, openai or nova"),
    };
    let draft = AgentDraft {
        name: "Load".into(),
        system_prompt: "Load test agent.".into(),
        greeting: "Hello.".into(),
        voice: agent_spec::draft::VoiceDraft { provider: speech, ..Default::default() },
        enable_recording: false,
        telephony: TelephonyDraft {
            call_phone_number: "+14155550100".into(),
            twilio_account_sid: ACCOUNT_SID.into(),
            ..Default::default()
        },
        secrets: SecretsDraft {
            twilio_auth_token: SecretPatch::set(AUTH_TOKEN),
            openai_api_key: if speech == agent_spec::SpeechProvider::OpenaiRealtime {
                SecretPatch::set(OPENAI_KEY)
            } else {
                SecretPatch::Keep
            },
            ..Default::default()
        },
        ..Default::default()
    };
    let mut draft = draft;
    draft.guardrails.max_conversation_turns = 1000;
    draft.idle_prompt_after_secs = 60;
    let (config, secrets) = draft.validate(None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let spec = AgentSpec { agent_id: AgentId::generate(), tenant_id: TenantId::generate(), config, secrets };
    let env = spec.to_env();
    let mut vars: BTreeMap<String, String> = env.vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    for (k, v) in &env.secrets {
        vars.insert((*k).to_owned(), v.expose_secret().to_owned());
    }

    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").map_err(|_| anyhow::anyhow!("AWS_ENDPOINT_URL must point at moto"))?;
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&aws).force_path_style(true).build());
    let bucket = format!("tv-load-{}", AgentId::generate());
    s3.create_bucket().bucket(&bucket).send().await?;

    let sim = Arc::new(TwilioSim::start(ACCOUNT_SID, AUTH_TOKEN).await?);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    let spool = tempfile::tempdir()?;
    // The fake provider, in this process (the other core).
    let brain_dir = tempfile::tempdir()?;
    let brain_settings = agent_runtime::speech::local::LocalSettings {
        recognition: false,
        model_dir: agent_runtime::speech::recognizer::DEFAULT_MODEL_DIR.into(),
        espeak: "espeak-ng".into(),
        work_dir: brain_dir.path().to_owned(),
    };
    let mut provider_env: Vec<(&str, String)> = Vec::new();
    let _openai;
    let _nova;
    match speech {
        agent_spec::SpeechProvider::OpenaiRealtime => {
            let brain = agent_runtime::speechsim::brain(&spec.config, &brain_settings)?;
            let fake = agent_runtime::speechsim::openai::OpenAiFake::start(
                "127.0.0.1:0".parse()?,
                agent_runtime::speechsim::openai::OpenAiFakeOptions {
                    api_key: OPENAI_KEY.into(),
                    brain,
                    late_transcripts: false,
                    drop_after_responses: None,
                    hearing: agent_runtime::speechsim::Hearing::Energy,
                },
            )
            .await?;
            provider_env.push(("OPENAI_REALTIME_URL", fake.url()));
            _openai = Some(fake);
        }
        agent_spec::SpeechProvider::NovaSonic => {
            let brain = agent_runtime::speechsim::brain(&spec.config, &brain_settings)?;
            let fake = agent_runtime::speechsim::nova::NovaFake::start(
                "127.0.0.1:0".parse()?,
                agent_runtime::speechsim::nova::NovaFakeOptions {
                    access_key_id: "testing".into(),
                    region: spec.config.integrations.aws_region.as_str().to_owned(),
                    brain,
                    stream_limit: None,
                    hearing: agent_runtime::speechsim::Hearing::Energy,
                },
            )
            .await?;
            let ca = spool.path().join("nova-ca.pem");
            std::fs::write(&ca, fake.ca_pem())?;
            provider_env.push(("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.endpoint()));
            provider_env.push(("TEMPOVOICE_EXTRA_CA_FILE", ca.display().to_string()));
            _nova = Some(fake);
        }
        agent_spec::SpeechProvider::Local => {}
    }
    let mut child = std::process::Command::new("taskset")
        .args(["-c", "0", &runtime_bin])
        .env_clear()
        .envs(&vars)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("S3_BUCKET_NAME", &bucket)
        .env("S3_BUCKET_REGION", "us-east-1")
        .env("TEMPOVOICE_LISTEN", format!("127.0.0.1:{port}"))
        .env("TEMPOVOICE_PUBLIC_HOST", format!("127.0.0.1:{port}"))
        .env("TWILIO_API_BASE", sim.api_base())
        .env("TEMPOVOICE_SPOOL_DIR", spool.path())
        .env("TEMPOVOICE_ASR", "off")
        .env("TEMPOVOICE_MAX_CALLS", "100000")
        .env("RUST_LOG", std::env::var("TEMPOVOICE_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .envs(provider_env.iter().map(|(k, v)| (*k, v.as_str())))
        .spawn()?;
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..400 {
        let r = http.get(format!("{base}/health/ready")).send().await;
        if r.is_ok_and(|r| r.status().is_success()) {
            ready = true;
            break;
        }
        if child.try_wait()?.is_some() {
            anyhow::bail!("the runtime exited at start-up (its error is above)");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(ready, "the runtime did not become ready within 20 s");
    // The runtime binary is `taskset`'s child.
    let runtime_pid = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()
        .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(pid);

    let phrase = Arc::new(agent_runtime::callsim::speech(
        "What are your opening hours?",
        agent_runtime::callsim::DEFAULT_CALLER_VOICE,
    )?);
    println!(
        "| provider | calls | frames sent | frames lost | late sim ticks | frame p50 µs | frame p99 µs | provider audio → frames p50 µs | p99 µs | end-of-turn → audio p50 ms | p99 ms | turns | greeting p50 ms | p99 ms | RSS/call KiB | CPU/call % of a core |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &loads {
        let metrics_before = http.get(format!("{base}/metrics")).send().await?.text().await?;
        let (rss_idle, _) = proc_stat(runtime_pid);
        let options = CallOptions {
            voice_url: format!("{base}/agent/{}/incoming-call", spec.agent_id),
            public_host: format!("127.0.0.1:{port}"),
            from: "+15550001234".into(),
            to: "+14155550100".into(),
            // The script repeats: the first wait hears the greeting, and in later
            // rounds is the caller's 1.5 s pause before asking again.
            script: vec![
                Step::WaitForAgent { quiet: Duration::from_millis(400), timeout: Duration::from_millis(1500) },
                Step::Say(Arc::clone(&phrase)),
                Step::WaitForAgent { quiet: Duration::from_millis(400), timeout: Duration::from_secs(10) },
            ],
            realtime: true,
            max_duration: Duration::from_secs(secs + 60),
            bad_signature: false,
            repeat_for: Some(Duration::from_secs(secs)),
        };
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let sim = Arc::clone(&sim);
            let options = options.clone();
            tasks.spawn(async move {
                // Arrivals spread over the ramp, about one script cycle, so the calls'
                // turns (all alike) fall at every point of the cycle, as independent
                // callers' would, rather than all at once.
                tokio::time::sleep(Duration::from_micros((i as u64 * ramp * 1_000_000) / n.max(1) as u64)).await;
                sim.call(&options).await
            });
        }
        // Steady state: from 5 s after the last arrival to 5 s before the first call ends.
        tokio::time::sleep(Duration::from_secs(ramp + 5)).await;
        let (rss_busy, cpu0) = proc_stat(runtime_pid);
        let window = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs - ramp - 10)).await;
        let (_, cpu1) = proc_stat(runtime_pid);
        let elapsed = window.elapsed().as_secs_f64();
        let mut reports = Vec::new();
        while let Some(r) = tasks.join_next().await {
            match r? {
                Ok(r) => reports.push(r),
                Err(e) => eprintln!("call failed: {e:#}"),
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let metrics = http.get(format!("{base}/metrics")).send().await?.text().await?;
        let sent: u64 = reports.iter().map(|r| r.frames_sent).sum();
        let received =
            counter(&metrics, "tempovoice_frames_in_total") - counter(&metrics_before, "tempovoice_frames_in_total");
        let late: u64 = reports.iter().map(|r| r.late_ticks).sum();
        // Histograms are cumulative over the process; report this load's share by
        // taking the quantiles of the whole run when it is the first load, else of
        // the difference (buckets subtract).
        let diff = subtract_histograms(&metrics, &metrics_before);
        let frame_p50 = histogram_quantile(&diff, "tempovoice_frame_handling_seconds", 0.5);
        let frame_p99 = histogram_quantile(&diff, "tempovoice_frame_handling_seconds", 0.99);
        let turn_p50 = histogram_quantile(&diff, "tempovoice_turn_latency_seconds", 0.5);
        let turn_p99 = histogram_quantile(&diff, "tempovoice_turn_latency_seconds", 0.99);
        let turns = counter(&diff, "tempovoice_turn_latency_seconds_count");
        let audio_p50 = histogram_quantile(&diff, "tempovoice_agent_audio_seconds", 0.5);
        let audio_p99 = histogram_quantile(&diff, "tempovoice_agent_audio_seconds", 0.99);
        // Greeting: `start` to the first agent audio the simulator played.
        let mut greetings: Vec<u64> = reports.iter().filter_map(|r| r.first_audio_ms).collect();
        greetings.sort_unstable();
        let greeting = |q: f64| {
            greetings
                .get(((greetings.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .map_or("-".to_owned(), |v| v.to_string())
        };
        let ticks_per_sec = 100.0;
        let cpu_pct = (cpu1 - cpu0) as f64 / ticks_per_sec / elapsed * 100.0 / n as f64;
        let fmt = |v: Option<f64>, scale: f64| v.map_or("-".into(), |v| format!("≤ {}", v * scale));
        println!(
            "| {provider} | {n} | {sent} | {} | {late} | {} | {} | {} | {} | {} | {} | {turns} | {} | {} | {:.0} | {:.3} |",
            sent.saturating_sub(received),
            fmt(frame_p50, 1e6),
            fmt(frame_p99, 1e6),
            fmt(audio_p50, 1e6),
            fmt(audio_p99, 1e6),
            fmt(turn_p50, 1e3),
            fmt(turn_p99, 1e3),
            greeting(0.5),
            greeting(0.99),
            rss_busy.saturating_sub(rss_idle) as f64 / n as f64,
            cpu_pct,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

/// `after - before` for every histogram line (`_bucket`, `_count`, `_sum`).
fn subtract_histograms(after: &str, before: &str) -> String {
    let values = |text: &str| -> BTreeMap<String, f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?))))
            .collect()
    };
    let b = values(before);
    let mut out = String::new();
    for line in after.lines().filter(|l| !l.starts_with('#')) {
        if let Some((k, v)) = line.rsplit_once(' ') {
            if let Ok(v) = v.parse::<f64>() {
                out.push_str(&format!("{k} {}\n", v - b.get(k).copied().unwrap_or(0.0)));
            }
        }
    }
    out
}
