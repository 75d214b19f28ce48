//! The runtime's own cost per call: `N` concurrent calls from the call simulator
//! against the release `agent-runtime` binary pinned to one core, with the local
//! pipeline's recognition off and its replies cached (the work that stays in the
//! runtime when a cloud provider does the recognition).
//!
//! ```text
//! cargo build --release -p agent-runtime --bin agent-runtime --example call_load
//! taskset -c 1 target/release/examples/call_load 250 500 1000
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
//! Every load runs `TEMPOVOICE_BENCH_RUNS` times (default 3), each against a fresh
//! runtime process, and is reported run by run and then as the median and range
//! over its runs. Per run: frames sent and lost (sent by the simulator and not
//! counted by the runtime); simulator ticks late by > 5 ms; the share of the
//! nominal 50 frames a second per call that reached the runtime during the measured
//! window, and how busy the generator's own core was (when either says the
//! generator could not keep up, the row says so); inbound frame handling p99 and
//! end-of-turn → first audio p50/p99 (the runtime's histograms, upper bucket
//! bounds); the greeting's delay after `start` as the simulator heard it; RSS per
//! call; CPU per call over the steady window, with the lowest and highest of its
//! one-second samples; and whether every call's artifacts were stored.
//!
//! The artifacts go to an S3 stand-in in this process (it answers `PutObject` and
//! counts the calls' metadata objects), so no S3 emulator shares either core; the
//! runtime's S3 code is tested against moto in the test suite.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_runtime::callsim::{CallOptions, Step, TwilioSim};
use agent_spec::draft::{AgentDraft, SecretsDraft, TelephonyDraft};
use agent_spec::{AgentId, AgentSpec, SecretPatch, TenantId};
use secrecy::ExposeSecret;

#[path = "support/runtime_process.rs"]
mod support;
use support::{S3StandIn, runtime_command};

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
    let env_num = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let secs = env_num("TEMPOVOICE_BENCH_SECS", 30);
    let ramp = env_num("TEMPOVOICE_BENCH_RAMP_SECS", 10);
    let runs = env_num("TEMPOVOICE_BENCH_RUNS", 3).max(1);
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

    let s3 = S3StandIn::start().await?;
    let sim = Arc::new(TwilioSim::start(ACCOUNT_SID, AUTH_TOKEN).await?);
    let spool = tempfile::tempdir()?;
    // The fake provider, in this process (the other core).
    let brain_dir = tempfile::tempdir()?;
    let brain_settings = agent_runtime::speech::local::LocalSettings {
        recognition: false,
        model_dir: agent_runtime::speech::recognizer::DEFAULT_MODEL_DIR.into(),
        espeak: "espeak-ng".into(),
        work_dir: brain_dir.path().to_owned(),
    };
    let mut provider_env: Vec<(&'static str, String)> = Vec::new();
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
    let phrase = Arc::new(agent_runtime::callsim::speech(
        "What are your opening hours?",
        agent_runtime::callsim::DEFAULT_CALLER_VOICE,
    )?);
    let runtime = RuntimeCommand {
        bin: runtime_bin,
        vars,
        provider_env,
        s3_endpoint: s3.endpoint.clone(),
        sim_api: sim.api_base(),
        spool: spool.path().to_owned(),
    };
    let load = Load { sim, s3, phrase, agent_id: spec.agent_id.to_string(), secs, ramp, provider: provider.clone() };

    println!("Each run (a fresh runtime process):\n");
    println!("{RUN_HEADER}");
    let mut summaries = Vec::new();
    for &n in &loads {
        let mut results = Vec::new();
        for run in 1..=runs {
            let r = load.run(&runtime, n).await?;
            println!("{}", r.row(run));
            results.push(r);
        }
        summaries.push(summary(n, &results));
    }
    println!("\nMedian (lowest-highest) over {runs} runs:\n");
    println!("{SUMMARY_HEADER}");
    for s in summaries {
        println!("{s}");
    }
    Ok(())
}

const RUN_HEADER: &str = "| provider | calls | run | frames sent | frames lost | late sim ticks | frames delivered % | generator core % | frame p99 µs | provider audio → frames p99 µs | end-of-turn → audio p50 ms | p99 ms | turns | greeting p50 ms | p99 ms | RSS/call KiB | CPU/call % of a core (1 s samples) | core 0 busy/call % | artifacts stored | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";
const SUMMARY_HEADER: &str = "| provider | calls | frames lost (most) | late sim ticks | frames delivered % (least) | end-of-turn → audio p99 ms | greeting p99 ms | RSS/call KiB | CPU/call % of a core | core 0 busy/call % | generator-bound runs |\n|---|---|---|---|---|---|---|---|---|---|---|";

/// How to start the runtime under test.
struct RuntimeCommand {
    bin: String,
    vars: BTreeMap<String, String>,
    provider_env: Vec<(&'static str, String)>,
    s3_endpoint: String,
    sim_api: String,
    spool: std::path::PathBuf,
}

/// A runtime process pinned to core 0; killed when dropped.
struct Runtime {
    child: std::process::Child,
    pid: u32,
    base: String,
    port: u16,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RuntimeCommand {
    async fn spawn(&self, http: &reqwest::Client) -> anyhow::Result<Runtime> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        drop(listener);
        let spool = self.spool.join(format!("spool-{port}"));
        std::fs::create_dir_all(&spool)?;
        let child = runtime_command(
            "taskset",
            &["-c", "0", &self.bin],
            &self.vars,
            &self.s3_endpoint,
            &self.sim_api,
            &spool,
            port,
        )
        .env("TEMPOVOICE_MAX_CALLS", "100000")
        .env("RUST_LOG", std::env::var("TEMPOVOICE_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .envs(self.provider_env.iter().map(|(k, v)| (*k, v.as_str())))
        .spawn()?;
        let pid = child.id();
        let mut runtime = Runtime { child, pid, base: format!("http://127.0.0.1:{port}"), port };
        for _ in 0..400 {
            let r = http.get(format!("{}/health/ready", runtime.base)).send().await;
            if r.is_ok_and(|r| r.status().is_success()) {
                // The runtime binary is `taskset`'s child.
                runtime.pid = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                    .ok()
                    .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
                    .unwrap_or(pid);
                return Ok(runtime);
            }
            if runtime.child.try_wait()?.is_some() {
                anyhow::bail!("the runtime exited at start-up (its error is above)");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the runtime did not become ready within 20 s")
    }
}

struct Load {
    sim: Arc<TwilioSim>,
    s3: S3StandIn,
    phrase: Arc<Vec<i16>>,
    agent_id: String,
    secs: u64,
    ramp: u64,
    provider: String,
}

/// One run of one load.
struct RunResult {
    provider: String,
    calls: usize,
    sent: u64,
    lost: u64,
    late: u64,
    delivered_pct: f64,
    generator_pct: f64,
    frame_p99: Option<f64>,
    audio_p99: Option<f64>,
    turn_p50: Option<f64>,
    turn_p99: Option<f64>,
    turns: u64,
    greeting_p50: Option<u64>,
    greeting_p99: Option<u64>,
    rss_kib: f64,
    cpu_pct: f64,
    cpu_low: f64,
    cpu_high: f64,
    /// Core 0's busy time per call: the runtime's, and any kernel work done there
    /// in no process's name (receive processing steered to it, ksoftirqd).
    core_pct: f64,
    artifacts: (u64, usize),
}

impl RunResult {
    /// The generator, not the runtime, held the load back.
    fn generator_bound(&self) -> bool {
        self.delivered_pct < 99.0 || self.generator_pct > 95.0 || self.late as f64 > 0.01 * self.sent as f64
    }

    fn row(&self, run: u64) -> String {
        let us = |v: Option<f64>| v.map_or("-".into(), |v| format!("≤ {}", v * 1e6));
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("≤ {}", v * 1e3));
        let exact = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        format!(
            "| {} | {} | {run} | {} | {} | {} | {:.1} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.3} ({:.3}–{:.3}) | {:.3} | {} of {} | {} |",
            self.provider,
            self.calls,
            self.sent,
            self.lost,
            self.late,
            self.delivered_pct,
            self.generator_pct,
            us(self.frame_p99),
            us(self.audio_p99),
            ms(self.turn_p50),
            ms(self.turn_p99),
            self.turns,
            exact(self.greeting_p50),
            exact(self.greeting_p99),
            self.rss_kib,
            self.cpu_pct,
            self.cpu_low,
            self.cpu_high,
            self.core_pct,
            self.artifacts.0,
            self.artifacts.1,
            if self.generator_bound() { "generator-bound" } else { "" },
        )
    }
}

/// The median and range of a load's runs.
fn summary(n: usize, runs: &[RunResult]) -> String {
    fn spread(mut values: Vec<f64>, digits: usize) -> String {
        values.sort_by(f64::total_cmp);
        let Some((&low, &high)) = values.first().zip(values.last()) else { return "-".into() };
        let median = if values.len() % 2 == 1 {
            values[values.len() / 2]
        } else {
            (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
        };
        format!("{median:.digits$} ({low:.digits$}–{high:.digits$})")
    }
    let opt = |f: &dyn Fn(&RunResult) -> Option<f64>| runs.iter().filter_map(f).collect::<Vec<_>>();
    format!(
        "| {} | {n} | {} | {} | {:.1} | ≤ {} | {} | {} | {} | {} | {} of {} |",
        runs.first().map_or("", |r| r.provider.as_str()),
        runs.iter().map(|r| r.lost).max().unwrap_or(0),
        spread(runs.iter().map(|r| r.late as f64).collect(), 0),
        runs.iter().map(|r| r.delivered_pct).fold(f64::INFINITY, f64::min),
        spread(opt(&|r| r.turn_p99.map(|v| v * 1e3)), 1),
        spread(opt(&|r| r.greeting_p99.map(|v| v as f64)), 0),
        spread(runs.iter().map(|r| r.rss_kib).collect(), 0),
        spread(runs.iter().map(|r| r.cpu_pct).collect(), 3),
        spread(runs.iter().map(|r| r.core_pct).collect(), 3),
        runs.iter().filter(|r| r.generator_bound()).count(),
        runs.len(),
    )
}

impl Load {
    async fn run(&self, command: &RuntimeCommand, n: usize) -> anyhow::Result<RunResult> {
        let http = reqwest::Client::new();
        let runtime = command.spawn(&http).await?;
        let base = &runtime.base;
        let metrics_before = http.get(format!("{base}/metrics")).send().await?.text().await?;
        let (rss_idle, _) = proc_stat(runtime.pid);
        let stored_before = self.s3.stored();
        let options = CallOptions {
            voice_url: format!("{base}/agent/{}/incoming-call", self.agent_id),
            public_host: format!("127.0.0.1:{}", runtime.port),
            from: "+15550001234".into(),
            to: "+14155550100".into(),
            // The script repeats: the first wait hears the greeting, and in later
            // rounds is the caller's 1.5 s pause before asking again.
            script: vec![
                Step::WaitForAgent { quiet: Duration::from_millis(400), timeout: Duration::from_millis(1500) },
                Step::Say(Arc::clone(&self.phrase)),
                Step::WaitForAgent { quiet: Duration::from_millis(400), timeout: Duration::from_secs(10) },
            ],
            realtime: true,
            max_duration: Duration::from_secs(self.secs + 60),
            bad_signature: false,
            repeat_for: Some(Duration::from_secs(self.secs)),
            keep_heard: false,
        };
        let (secs, ramp) = (self.secs, self.ramp);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let sim = Arc::clone(&self.sim);
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
        let (rss_busy, cpu0) = proc_stat(runtime.pid);
        let (_, generator0) = proc_stat(std::process::id());
        let core0 = core_busy(0);
        let frames0 =
            counter(&http.get(format!("{base}/metrics")).send().await?.text().await?, "tempovoice_frames_in_total");
        let window = Instant::now();
        let mut samples = Vec::new();
        let mut last = cpu0;
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
        for _ in 0..(secs - ramp - 10) {
            tick.tick().await;
            let (_, cpu) = proc_stat(runtime.pid);
            samples.push((cpu - last) as f64 / TICKS_PER_SEC * 100.0 / n as f64);
            last = cpu;
        }
        let elapsed = window.elapsed().as_secs_f64();
        let (_, cpu1) = proc_stat(runtime.pid);
        let (_, generator1) = proc_stat(std::process::id());
        let core1 = core_busy(0);
        let frames1 =
            counter(&http.get(format!("{base}/metrics")).send().await?.text().await?, "tempovoice_frames_in_total");
        let mut reports = Vec::new();
        while let Some(r) = tasks.join_next().await {
            match r? {
                Ok(r) => reports.push(r),
                Err(e) => eprintln!("call failed: {e:#}"),
            }
        }
        // The calls' artifacts: every call stores its metadata last.
        let stored_by = Instant::now() + Duration::from_secs(10);
        while self.s3.stored() - stored_before < reports.len() as u64 && Instant::now() < stored_by {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let metrics = http.get(format!("{base}/metrics")).send().await?.text().await?;
        drop(runtime);
        let sent: u64 = reports.iter().map(|r| r.frames_sent).sum();
        let received =
            counter(&metrics, "tempovoice_frames_in_total") - counter(&metrics_before, "tempovoice_frames_in_total");
        let diff = subtract_histograms(&metrics, &metrics_before);
        // Greeting: `start` to the first agent audio the simulator played.
        let mut greetings: Vec<u64> = reports.iter().filter_map(|r| r.first_audio_ms).collect();
        greetings.sort_unstable();
        let greeting =
            |q: f64| greetings.get(((greetings.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
        let (cpu_low, cpu_high) = samples.iter().fold((f64::INFINITY, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        Ok(RunResult {
            provider: self.provider.clone(),
            calls: n,
            sent,
            lost: sent.saturating_sub(received),
            late: reports.iter().map(|r| r.late_ticks).sum(),
            delivered_pct: (frames1 - frames0) as f64 / (n as f64 * 50.0 * elapsed) * 100.0,
            generator_pct: (generator1 - generator0) as f64 / TICKS_PER_SEC / elapsed * 100.0,
            frame_p99: histogram_quantile(&diff, "tempovoice_frame_handling_seconds", 0.99),
            audio_p99: histogram_quantile(&diff, "tempovoice_agent_audio_seconds", 0.99),
            turn_p50: histogram_quantile(&diff, "tempovoice_turn_latency_seconds", 0.5),
            turn_p99: histogram_quantile(&diff, "tempovoice_turn_latency_seconds", 0.99),
            turns: counter(&diff, "tempovoice_turn_latency_seconds_count"),
            greeting_p50: greeting(0.5),
            greeting_p99: greeting(0.99),
            rss_kib: rss_busy.saturating_sub(rss_idle) as f64 / n as f64,
            cpu_pct: (cpu1 - cpu0) as f64 / TICKS_PER_SEC / elapsed * 100.0 / n as f64,
            core_pct: (core1 - core0) as f64 / TICKS_PER_SEC / elapsed * 100.0 / n as f64,
            cpu_low,
            cpu_high,
            artifacts: (self.s3.stored() - stored_before, reports.len()),
        })
    }
}

/// Busy clock ticks of core `n` (user, nice, system, irq, softirq) from /proc/stat.
fn core_busy(n: usize) -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let name = format!("cpu{n} ");
    let Some(line) = stat.lines().find(|l| l.starts_with(&name)) else { return 0 };
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    [0, 1, 2, 5, 6].iter().filter_map(|&i| fields.get(i)).sum()
}

/// Clock ticks per second of /proc's CPU times.
const TICKS_PER_SEC: f64 = 100.0;

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
