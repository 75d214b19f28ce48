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
//! 1.3 s phrase, the agent answers, and again. The runtime runs under `taskset -c 0`.
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
    let runtime_bin = std::env::var("TEMPOVOICE_RUNTIME_BIN").unwrap_or_else(|_| "target/release/agent-runtime".into());

    let draft = AgentDraft {
        name: "Load".into(),
        system_prompt: "Load test agent.".into(),
        greeting: "Hello.".into(),
        voice: agent_spec::draft::VoiceDraft {
            provider: agent_spec::SpeechProvider::Local,
            model: None,
            voice_id: None,
        },
        enable_recording: false,
        telephony: TelephonyDraft {
            call_phone_number: "+14155550100".into(),
            twilio_account_sid: ACCOUNT_SID.into(),
            ..Default::default()
        },
        secrets: SecretsDraft { twilio_auth_token: SecretPatch::set(AUTH_TOKEN), ..Default::default() },
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
        .env("TWILIO_API_BASE", sim.api_base())
        .env("TEMPOVOICE_SPOOL_DIR", spool.path())
        .env("TEMPOVOICE_ASR", "off")
        .env("TEMPOVOICE_MAX_CALLS", "100000")
        .env("RUST_LOG", "warn")
        .spawn()?;
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
        "| calls | frames sent | frames lost | late sim ticks | frame p50 µs | frame p99 µs | end-of-turn → audio p50 ms | p99 ms | turns | greeting p50 ms | p99 ms | RSS/call KiB | CPU/call % of a core |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &loads {
        let metrics_before = http.get(format!("{base}/metrics")).send().await?.text().await?;
        let (rss_idle, _) = proc_stat(runtime_pid);
        let options = CallOptions {
            voice_url: format!("{base}/agent/{}/incoming-call", spec.agent_id),
            public_host: format!("127.0.0.1:{port}"),
            from: "+15550001234".into(),
            to: "+14155550100".into(),
            script: vec![
                Step::WaitForAgent { quiet: Duration::from_millis(400), timeout: Duration::from_secs(10) },
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
                // Spread call arrivals over 2 s.
                tokio::time::sleep(Duration::from_micros((i as u64 * 2_000_000) / n.max(1) as u64)).await;
                sim.call(&options).await
            });
        }
        // Steady state: from 5 s after the last arrival to 5 s before the first call ends.
        tokio::time::sleep(Duration::from_secs(7)).await;
        let (rss_busy, cpu0) = proc_stat(runtime_pid);
        let window = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs.saturating_sub(14).max(5))).await;
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
            "| {n} | {sent} | {} | {late} | {} | {} | {} | {} | {turns} | {} | {} | {:.0} | {:.3} |",
            sent.saturating_sub(received),
            fmt(frame_p50, 1e6),
            fmt(frame_p99, 1e6),
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
