//! Autoscaling under a ramp of calls, with time compressed: real `agent-runtime`
//! tasks (release binary) take real calls from the call simulator, 0 → 3× one
//! task's limit → 0, while this program plays the parts AWS plays:
//!
//! - **CloudWatch and target tracking**, from the tasks' own EMF lines
//!   (`TempoVoice/LiveCalls`, read from their stdout as the awslogs driver ships
//!   them): each period the metric is the average of the datapoints the tasks
//!   wrote; 3 periods in a row above the target scale out to
//!   `ceil(tasks × metric / target)`, 15 in a row under 90 % of it scale in to the
//!   same formula (never under `min_tasks` or over `max_tasks`); a scale-out waits
//!   1 period after the last one, a scale-in 5 (the deployer's 60 s and 300 s);
//! - **ECS**: a new task serves after 1 period (Fargate's start); a scale-in stops
//!   only tasks without scale-in protection, as the ECS agent's endpoint (a
//!   stand-in per task, which the runtime calls itself) reports it, and stops fewer
//!   if too few are unprotected; a stopped task leaves the load balancer at once and
//!   is killed when its calls have ended: the target group's deregistration delay,
//!   which the deployer sets to the agent's longest call + 30 s, holds it that long.
//!   So no call is cut either way; what protection changes is whether ECS takes
//!   busy tasks out of service for a scale-in (`TEMPOVOICE_RAMP_PROTECTION=off`
//!   plays ECS without it);
//! - **the load balancer**: round robin over the tasks in service. A task at its
//!   limit answers busy (`<Reject reason="busy"/>`), counted as a busy reject.
//!
//! One period stands for CloudWatch's minute. Callers arrive as demand rises and
//! each talks for `TEMPOVOICE_RAMP_CALL_PERIODS` periods (the script of the load
//! benchmark, repeated); a rejected caller is another caller, retried next tick.
//!
//! ```text
//! cargo build --release -p agent-runtime --bin agent-runtime --example scaling_ramp
//! target/release/examples/scaling_ramp
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TEMPOVOICE_RAMP_LIMIT` | `20` | calls per task (`sizing.calls_per_task`) |
//! | `TEMPOVOICE_RAMP_TARGET` | 70 % of the limit | `sizing.target_calls_per_task` |
//! | `TEMPOVOICE_RAMP_MAX_TASKS` | `5` | `sizing.max_tasks` (`min_tasks` is 1) |
//! | `TEMPOVOICE_RAMP_PERIOD_SECS` | `2` | the stand-in for CloudWatch's one-minute period |
//! | `TEMPOVOICE_RAMP_CALL_PERIODS` | `5` | how long each call lasts |
//! | `TEMPOVOICE_RAMP_RUNS` | `3` | runs, each with fresh tasks |
//! | `TEMPOVOICE_RAMP_PROTECTION` | `on` | `off`: scale-ins pick tasks whether or not they are protected |

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_runtime::callsim::{CallOptions, Ending, Step, TwilioSim};
use agent_spec::draft::{AgentDraft, SecretsDraft, TelephonyDraft};
use agent_spec::{AgentId, AgentSpec, SecretPatch, TenantId};
use secrecy::ExposeSecret;

#[path = "support/runtime_process.rs"]
mod support;
use support::{S3StandIn, runtime_command};

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
/// Ramp up, hold, ramp down, then quiet (periods).
const UP: u64 = 15;
const HOLD: u64 = 10;
const DOWN: u64 = 15;
const QUIET: u64 = 28;
const SCALE_OUT_PERIODS: u32 = 3;
const SCALE_IN_PERIODS: u32 = 15;
const SCALE_OUT_COOLDOWN: u64 = 1;
const SCALE_IN_COOLDOWN: u64 = 5;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The stand-in for one task's ECS agent endpoint: whether the task is protected.
async fn protection_stand_in(protected: Arc<AtomicBool>) -> anyhow::Result<String> {
    use axum::Json;
    let app = axum::Router::new().route(
        "/api/task/task-protection/v1/state",
        axum::routing::put(move |Json(body): Json<serde_json::Value>| {
            let protected = Arc::clone(&protected);
            async move {
                let on = body["ProtectionEnabled"].as_bool().unwrap_or(false);
                protected.store(on, Ordering::SeqCst);
                Json(serde_json::json!({"protection": {"ProtectionEnabled": on, "TaskArn": "arn:aws:ecs:us-east-1:123456789012:task/ramp/x"}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let uri = format!("http://{}/api/task", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(uri)
}

/// One runtime process: a task of the agent's service.
struct Task {
    id: usize,
    child: std::process::Child,
    port: u16,
    protected: Arc<AtomicBool>,
    /// Calls placed on it and not yet ended.
    live: Arc<AtomicU64>,
    /// Period from which the load balancer sends it calls.
    serving_from: u64,
    stopping: bool,
}

impl Drop for Task {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Env {
    bin: String,
    vars: BTreeMap<String, String>,
    s3: S3StandIn,
    sim_api: String,
    spool: tempfile::TempDir,
    period: Duration,
    limit: u64,
    target: u64,
}

/// (period, task, LiveCalls) of every EMF line the tasks wrote.
type Datapoints = Arc<Mutex<Vec<(u64, usize, f64)>>>;

async fn start_task(env: &Env, id: usize, now: u64, clock: Arc<AtomicU64>, points: Datapoints) -> anyhow::Result<Task> {
    let protected = Arc::new(AtomicBool::new(false));
    let agent_uri = protection_stand_in(Arc::clone(&protected)).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let spool = env.spool.path().join(format!("task-{id}"));
    std::fs::create_dir_all(&spool)?;
    let mut child = runtime_command(&env.bin, &[], &env.vars, &env.s3.endpoint, &env.sim_api, &spool, port)
        .env("TEMPOVOICE_EMF_SECS", env.period.as_secs().to_string())
        .env("ECS_AGENT_URI", agent_uri)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(spool.join("stderr.log"))?)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if doc.get("_aws").is_some()
                && let Some(live) = doc["LiveCalls"].as_f64()
            {
                points.lock().unwrap().push((clock.load(Ordering::SeqCst), id, live));
            }
        }
    });
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("http://127.0.0.1:{port}/health/ready")).send().await.is_ok_and(|r| r.status().is_success())
        {
            return Ok(Task {
                id,
                child,
                port,
                protected,
                live: Arc::new(AtomicU64::new(0)),
                serving_from: now + 1,
                stopping: false,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("task {id} did not become ready")
}

/// Concurrent calls the callers want at period `p` (fractional periods allowed).
fn demand(p: f64, peak: f64) -> f64 {
    let (up, hold, down) = (UP as f64, HOLD as f64, DOWN as f64);
    if p < up {
        peak * p / up
    } else if p < up + hold {
        peak
    } else if p < up + hold + down {
        peak * (1.0 - (p - up - hold) / down)
    } else {
        0.0
    }
}

#[derive(Default)]
struct Outcome {
    placed: u64,
    completed: u64,
    busy: u64,
    cut: u64,
    scale_outs: u32,
    scale_ins: u32,
    most_tasks: usize,
    /// Tasks chosen for scale-in that had live calls at that moment.
    stopped_with_calls: u32,
    /// Periods from the metric's first period above target to the first scale-out.
    first_scale_out_after: Option<u64>,
    /// Periods from demand reaching 0 to the service back at `min_tasks`.
    back_to_min_after: Option<u64>,
}

async fn run(env: &Env, sim: Arc<TwilioSim>, agent_id: &str, max_tasks: usize, run_no: u64) -> anyhow::Result<Outcome> {
    let target = env.target as f64;
    let peak = 3.0 * env.limit as f64;
    let clock = Arc::new(AtomicU64::new(0));
    let points: Datapoints = Arc::default();
    let mut tasks: Vec<Task> = vec![start_task(env, 0, 0, Arc::clone(&clock), Arc::clone(&points)).await?];
    tasks[0].serving_from = 0;
    let mut desired = 1usize;
    let mut next_id = 1;
    let out = Arc::new(Mutex::new(Outcome::default()));
    let mut calls = tokio::task::JoinSet::new();
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut rr = 0usize;
    let (mut high, mut low) = (0u32, 0u32);
    let (mut last_out, mut last_in): (Option<u64>, Option<u64>) = (None, None);
    let mut first_high: Option<u64> = None;
    let ticks_per_period = 10u64;
    let respect_protection = std::env::var("TEMPOVOICE_RAMP_PROTECTION").as_deref() != Ok("off");
    let call_len = env.period * env_num("TEMPOVOICE_RAMP_CALL_PERIODS", 5) as u32;
    let phrase = Arc::new(agent_runtime::callsim::speech(
        "What are your opening hours?",
        agent_runtime::callsim::DEFAULT_CALLER_VOICE,
    )?);
    // The first run's timeline; the others are summed up at the end.
    let timeline = run_no == 1;
    if timeline {
        println!(
            "\nRun {run_no}: per period, callers wanted, calls live, tasks serving (+ starting, − draining), LiveCalls per task (EMF average), decision:\n"
        );
        println!(
            "| period | wanted | live | tasks | LiveCalls/task | busy so far | decision |\n|---|---|---|---|---|---|---|"
        );
    }
    let total = UP + HOLD + DOWN + QUIET;
    for period in 0..total {
        clock.store(period, Ordering::SeqCst);
        for tick in 0..ticks_per_period {
            let p = period as f64 + tick as f64 / ticks_per_period as f64;
            let want = demand(p, peak).round() as u64;
            let serving: Vec<usize> =
                (0..tasks.len()).filter(|&i| !tasks[i].stopping && tasks[i].serving_from <= period).collect();
            while in_flight.load(Ordering::SeqCst) < want && !serving.is_empty() {
                let task = &tasks[serving[rr % serving.len()]];
                rr += 1;
                in_flight.fetch_add(1, Ordering::SeqCst);
                task.live.fetch_add(1, Ordering::SeqCst);
                let options = CallOptions {
                    voice_url: format!("http://127.0.0.1:{}/agent/{agent_id}/incoming-call", task.port),
                    public_host: format!("127.0.0.1:{}", task.port),
                    from: "+15550001234".into(),
                    to: "+14155550100".into(),
                    script: vec![
                        Step::WaitForAgent { quiet: Duration::from_millis(400), timeout: Duration::from_millis(1500) },
                        Step::Say(Arc::clone(&phrase)),
                        Step::WaitForAgent { quiet: Duration::from_millis(400), timeout: Duration::from_secs(10) },
                    ],
                    realtime: true,
                    max_duration: call_len + Duration::from_secs(30),
                    bad_signature: false,
                    repeat_for: Some(call_len),
                    keep_heard: false,
                };
                let (sim, out, in_flight, live) =
                    (Arc::clone(&sim), Arc::clone(&out), Arc::clone(&in_flight), Arc::clone(&task.live));
                calls.spawn(async move {
                    let report = sim.call(&options).await;
                    let mut o = out.lock().unwrap();
                    o.placed += 1;
                    match report {
                        Ok(r) if r.rejected => o.busy += 1,
                        Ok(r) if r.ending == Some(Ending::CallerHungUp) => o.completed += 1,
                        _ => o.cut += 1,
                    }
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    live.fetch_sub(1, Ordering::SeqCst);
                });
            }
            tokio::time::sleep(env.period / ticks_per_period as u32).await;
        }

        // CloudWatch: the period's datapoints, averaged.
        let period_points: Vec<f64> =
            points.lock().unwrap().iter().filter(|(p, ..)| *p == period).map(|(_, _, v)| *v).collect();
        let metric =
            (!period_points.is_empty()).then(|| period_points.iter().sum::<f64>() / period_points.len() as f64);
        let mut decision = String::new();
        if let Some(m) = metric {
            high = if m > target { high + 1 } else { 0 };
            low = if m < 0.9 * target { low + 1 } else { 0 };
            if m > target && first_high.is_none() {
                first_high = Some(period);
            }
            let wanted = ((desired as f64 * m / target).ceil() as usize).clamp(1, max_tasks);
            let cooled = |last: Option<u64>, wait: u64| last.is_none_or(|l| period >= l + wait);
            if high >= SCALE_OUT_PERIODS && wanted > desired && cooled(last_out, SCALE_OUT_COOLDOWN) {
                decision = format!("scale out {desired} → {wanted}");
                desired = wanted;
                last_out = Some(period);
                let mut o = out.lock().unwrap();
                o.scale_outs += 1;
                if o.first_scale_out_after.is_none() {
                    o.first_scale_out_after = first_high.map(|f| period - f);
                }
            } else if low >= SCALE_IN_PERIODS
                && wanted < desired
                && cooled(last_in, SCALE_IN_COOLDOWN)
                && cooled(last_out, SCALE_IN_COOLDOWN)
            {
                decision = format!("scale in {desired} → {wanted}");
                desired = wanted;
                last_in = Some(period);
                out.lock().unwrap().scale_ins += 1;
            }
        }
        // ECS: start tasks up to the desired count; stop unprotected ones down to it.
        let alive = tasks.iter().filter(|t| !t.stopping).count();
        for _ in alive..desired {
            tasks.push(start_task(env, next_id, period, Arc::clone(&clock), Arc::clone(&points)).await?);
            next_id += 1;
        }
        let mut excess = alive.saturating_sub(desired);
        for t in tasks.iter_mut().rev().filter(|t| !t.stopping) {
            if excess == 0 {
                break;
            }
            if !respect_protection || !t.protected.load(Ordering::SeqCst) {
                t.stopping = true;
                excess -= 1;
                if t.live.load(Ordering::SeqCst) > 0 {
                    out.lock().unwrap().stopped_with_calls += 1;
                }
                decision.push_str(&format!(" · stop task {}", t.id));
            }
        }
        if excess > 0 {
            decision.push_str(&format!(" · {excess} protected, kept"));
        }
        // Deregistered and drained: SIGTERM once its calls have ended.
        tasks.retain(|t| !(t.stopping && t.live.load(Ordering::SeqCst) == 0));
        let serving = tasks.iter().filter(|t| !t.stopping && t.serving_from <= period + 1).count();
        let starting = tasks.iter().filter(|t| !t.stopping && t.serving_from > period + 1).count();
        let draining = tasks.iter().filter(|t| t.stopping).count();
        {
            let mut o = out.lock().unwrap();
            o.most_tasks = o.most_tasks.max(tasks.len());
            if period >= UP + HOLD + DOWN && tasks.len() == 1 && o.back_to_min_after.is_none() {
                o.back_to_min_after = Some(period - (UP + HOLD + DOWN));
            }
        }
        let busy = out.lock().unwrap().busy;
        let mut shown_tasks = serving.to_string();
        if starting > 0 {
            shown_tasks.push_str(&format!(" +{starting}"));
        }
        if draining > 0 {
            shown_tasks.push_str(&format!(" −{draining}"));
        }
        if !timeline {
            continue;
        }
        println!(
            "| {period} | {} | {} | {shown_tasks} | {} | {busy} | {} |",
            demand(period as f64 + 1.0, peak).round(),
            in_flight.load(Ordering::SeqCst),
            metric.map_or("-".into(), |m| format!("{m:.1}")),
            decision.trim_start_matches(" · ")
        );
    }
    while calls.join_next().await.is_some() {}
    let o = std::mem::take(&mut *out.lock().unwrap());
    Ok(o)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let limit = env_num("TEMPOVOICE_RAMP_LIMIT", 20);
    let max_tasks = env_num("TEMPOVOICE_RAMP_MAX_TASKS", 5) as usize;
    let period = Duration::from_secs(env_num("TEMPOVOICE_RAMP_PERIOD_SECS", 2).max(1));
    let runs = env_num("TEMPOVOICE_RAMP_RUNS", 3).max(1);
    let mut draft = AgentDraft {
        name: "Ramp".into(),
        system_prompt: "Ramp test agent.".into(),
        greeting: "Hello.".into(),
        voice: agent_spec::draft::VoiceDraft { provider: agent_spec::SpeechProvider::Local, ..Default::default() },
        enable_recording: false,
        telephony: TelephonyDraft {
            call_phone_number: "+14155550100".into(),
            twilio_account_sid: ACCOUNT_SID.into(),
            ..Default::default()
        },
        secrets: SecretsDraft { twilio_auth_token: SecretPatch::set(AUTH_TOKEN), ..Default::default() },
        ..Default::default()
    };
    draft.sizing.calls_per_task = limit as u32;
    draft.sizing.max_tasks = Some(max_tasks as u32);
    draft.sizing.target_calls_per_task = std::env::var("TEMPOVOICE_RAMP_TARGET").ok().and_then(|v| v.parse().ok());
    draft.guardrails.max_conversation_turns = 1000;
    let (config, secrets) = draft.validate(None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let target = config.sizing.target_calls_per_task;
    let spec = AgentSpec { agent_id: AgentId::generate(), tenant_id: TenantId::generate(), config, secrets };
    let environment = spec.to_env();
    let mut vars: BTreeMap<String, String> =
        environment.vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    for (k, v) in &environment.secrets {
        vars.insert((*k).to_owned(), v.expose_secret().to_owned());
    }
    let sim = Arc::new(TwilioSim::start(ACCOUNT_SID, AUTH_TOKEN).await?);
    let env = Env {
        bin: std::env::var("TEMPOVOICE_RUNTIME_BIN").unwrap_or_else(|_| "target/release/agent-runtime".into()),
        vars,
        s3: S3StandIn::start().await?,
        sim_api: sim.api_base(),
        spool: tempfile::tempdir()?,
        period,
        limit,
        target: u64::from(target),
    };
    println!(
        "calls_per_task {limit}, target_calls_per_task {target}, tasks 1–{max_tasks}; ramp 0 → {} calls over {UP} periods, \
         held {HOLD}, down over {DOWN}, quiet {QUIET}; one period = {} s standing for 60 s",
        3 * limit,
        period.as_secs()
    );
    let mut outcomes = Vec::new();
    for run_no in 1..=runs {
        outcomes.push(run(&env, Arc::clone(&sim), spec.agent_id.as_str(), max_tasks, run_no).await?);
    }
    println!(
        "\n| run | calls placed | completed | busy rejects | cut | scale-outs | scale-ins | most tasks | stopped with live calls | first scale-out, periods after the metric passed the target | back to min_tasks, periods after the last call |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, o) in outcomes.iter().enumerate() {
        let periods = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            o.placed,
            o.completed,
            o.busy,
            o.cut,
            o.scale_outs,
            o.scale_ins,
            o.most_tasks,
            o.stopped_with_calls,
            periods(o.first_scale_out_after),
            periods(o.back_to_min_after)
        );
    }
    Ok(())
}
