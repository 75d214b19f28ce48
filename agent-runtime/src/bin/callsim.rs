//! `callsim`: call an agent runtime the way Twilio does, from a terminal.
//!
//! ```text
//! callsim --url http://127.0.0.1:8080/agent/{id}/incoming-call --auth-token … \
//!         --account-sid AC… --text "What are your opening hours?" --out agent.wav
//! ```
//!
//! The runtime's `TWILIO_API_BASE` must point at the simulator's REST API for
//! hang-ups and transfers to reach it: start it with `--rest-port`, or read the
//! address it prints.
//!
//! Outbound calls: with `--answer person|machine|busy|no-answer`, callsim places no
//! call; it waits for the calls an agent places through its REST API (the control
//! plane's `TEMPOVOICE_TWILIO_API_BASE`) and answers `--calls` of them as that
//! callee, playing Twilio's answering machine detection and status callbacks:
//!
//! ```text
//! callsim --answer machine --number +14155550100 --runtime http://127.0.0.1:8081 \
//!         --rest-port 8090 --account-sid AC… --auth-token …
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::callsim::{CallOptions, Step, TwilioSim, speech, write_wav};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Call a TempoVoice agent runtime as Twilio would")]
struct Args {
    /// The runtime's voice webhook URL (where it listens); not with --answer.
    #[arg(long, required_unless_present = "answer")]
    url: Option<String>,
    /// Answer the outbound calls agents place, as this callee, instead of calling.
    #[arg(long, value_enum)]
    answer: Option<Callee>,
    /// With --answer: where the agent's runtime listens; requests Twilio would send
    /// to the public host of the call's URL go there.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    runtime: String,
    /// A number of the simulated account (an agent calls from its own). Repeatable.
    #[arg(long)]
    number: Vec<String>,
    /// The public host Twilio would call (default: the URL's host and port).
    #[arg(long)]
    public_host: Option<String>,
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    auth_token: String,
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    account_sid: String,
    #[arg(long, default_value = "+15550001234")]
    from: String,
    #[arg(long, default_value = "+15550009999")]
    to: String,
    /// A WAV file the caller says (any rate), after the agent's previous turn. Repeatable.
    #[arg(long)]
    say: Vec<PathBuf>,
    /// Text the caller says (synthesized with espeak-ng). Repeatable; after --say files.
    #[arg(long)]
    text: Vec<String>,
    /// Say the N-th --text (counting from 1) over the agent's answer, a second into
    /// it, instead of after it: a barge-in. Repeatable.
    #[arg(long = "barge-in", value_name = "N")]
    barge_in: Vec<usize>,
    /// The espeak-ng voice of --text.
    #[arg(long, default_value = agent_runtime::callsim::DEFAULT_CALLER_VOICE)]
    voice: String,
    /// Keys pressed after the last utterance.
    #[arg(long)]
    dtmf: Option<String>,
    /// Hang up after the script instead of waiting for the agent to.
    #[arg(long)]
    hang_up: bool,
    /// Send frames as fast as the runtime takes them instead of every 20 ms.
    #[arg(long)]
    fast: bool,
    /// Write what the agent said (as heard) to this WAV file (single call).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Concurrent calls.
    #[arg(long, default_value_t = 1)]
    calls: usize,
    /// Give up on a call after this many seconds.
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
    /// Repeat the script for this many seconds, then hang up (load tests).
    #[arg(long)]
    repeat_secs: Option<u64>,
    /// Serve the simulated Twilio REST API on this port of 127.0.0.1 (default: any free port).
    #[arg(long, default_value_t = 0)]
    rest_port: u16,
    /// Seconds to wait before placing the calls (time to point the runtime at the REST port).
    #[arg(long, default_value_t = 0)]
    wait_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rest = std::net::SocketAddr::from(([127, 0, 0, 1], args.rest_port));
    let sim = TwilioSim::start_on(&args.account_sid, &args.auth_token, rest).await?;
    for number in &args.number {
        sim.add_number(&args.account_sid, number, "");
    }
    eprintln!("Twilio REST API simulated at {} (TWILIO_API_BASE)", sim.api_base());
    if let Some(callee) = args.answer {
        return answer_outbound(&sim, &args, callee).await;
    }
    tokio::time::sleep(Duration::from_secs(args.wait_secs)).await;
    let voice_url = args.url.clone().expect("clap requires --url without --answer");
    let url = url::Url::parse(&voice_url)?;
    let public_host = args.public_host.clone().unwrap_or_else(|| match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("localhost")),
        None => url.host_str().unwrap_or("localhost").to_owned(),
    });
    let wait = Step::WaitForAgent { quiet: Duration::from_millis(800), timeout: Duration::from_secs(20) };
    let mut script = vec![wait.clone()];
    for file in &args.say {
        script.push(Step::Say(Arc::new(agent_runtime::audio::read_wav_8khz(file)?)));
        script.push(wait.clone());
    }
    if let Some(n) = args.barge_in.iter().find(|n| **n == 0 || **n > args.text.len()) {
        anyhow::bail!("--barge-in {n}: there is no --text number {n} (they count from 1)");
    }
    for (i, text) in args.text.iter().enumerate() {
        if args.barge_in.contains(&(i + 1)) {
            // In place of waiting for the agent's turn to end.
            script.pop();
            script.push(Step::WaitForAgentSpeaking { after: Duration::from_secs(1), timeout: Duration::from_secs(20) });
        }
        script.push(Step::Say(Arc::new(speech(text, &args.voice)?)));
        script.push(wait.clone());
    }
    if let Some(digits) = &args.dtmf {
        script.extend(digits.chars().map(Step::Dtmf));
    }
    if args.hang_up {
        script.push(Step::HangUp);
    }
    let options = CallOptions {
        voice_url,
        public_host,
        from: args.from.clone(),
        to: args.to.clone(),
        script,
        realtime: !args.fast,
        max_duration: Duration::from_secs(args.max_secs),
        bad_signature: false,
        keep_heard: true,
        repeat_for: args.repeat_secs.map(Duration::from_secs),
    };
    let sim = Arc::new(sim);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.calls {
        let sim = Arc::clone(&sim);
        let options = options.clone();
        tasks.spawn(async move { sim.call(&options).await });
    }
    let mut reports = Vec::new();
    let mut failures = 0;
    while let Some(r) = tasks.join_next().await {
        match r? {
            Ok(r) => reports.push(r),
            Err(e) => {
                failures += 1;
                eprintln!("call failed: {e:#}");
            }
        }
    }
    if args.calls == 1 {
        if let Some(r) = reports.first() {
            println!("call {} ended: {:?}", r.call_sid, r.ending);
            for request in sim.requests() {
                println!("REST {} {:?} (authorized: {})", request.call_sid, request.form, request.authorized);
            }
            println!("first agent audio after {:?} ms; reply latencies {:?} ms", r.first_audio_ms, r.reply_latency_ms);
            println!(
                "agent audio played: {} ms; clears: {}; marks echoed: {}",
                r.agent_played_ms,
                r.clears.len(),
                r.marks.len()
            );
            if let Some(out) = &args.out {
                write_wav(out, &r.heard)?;
                println!("agent audio written to {}", out.display());
            }
        }
    }
    let mut latencies: Vec<u64> = reports.iter().flat_map(|r| r.reply_latency_ms.iter().copied()).collect();
    latencies.sort_unstable();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied();
    let frames: u64 = reports.iter().map(|r| r.frames_sent).sum();
    let late: u64 = reports.iter().map(|r| r.late_ticks).sum();
    let received: u64 = reports.iter().map(|r| r.media_received).sum();
    println!("| calls | failed | rejected | frames sent | late ticks | agent frames | reply p50 ms | reply p99 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {failures} | {} | {frames} | {late} | {received} | {} | {} |",
        args.calls,
        reports.iter().filter(|r| r.rejected).count(),
        pct(0.5).map_or("-".into(), |v| v.to_string()),
        pct(0.99).map_or("-".into(), |v| v.to_string()),
    );
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Who answers the outbound calls (`--answer`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Callee {
    /// Says "Hello?", is detected as a person, then says each --text after the agent's turn.
    Person,
    /// Plays a greeting (the first --text, or a stock one) and a beep, then records.
    Machine,
    Busy,
    NoAnswer,
}

async fn answer_outbound(sim: &TwilioSim, args: &Args, callee: Callee) -> anyhow::Result<()> {
    use agent_runtime::callsim::outbound::Answer;
    let wait = Step::WaitForAgent { quiet: Duration::from_millis(800), timeout: Duration::from_secs(20) };
    for n in 1..=args.calls {
        eprintln!("waiting for outbound call {n} of {}", args.calls);
        let Some(call) = sim.next_outbound(Duration::from_secs(args.max_secs.max(600))).await else {
            anyhow::bail!("no outbound call came");
        };
        println!(
            "call {} from {} to {}",
            call.sid,
            call.param("From").unwrap_or_default(),
            call.param("To").unwrap_or_default()
        );
        let answer = match callee {
            Callee::Busy => Answer::Busy,
            Callee::NoAnswer => Answer::NoAnswer,
            Callee::Machine => {
                let greeting = args
                    .text
                    .first()
                    .map_or("Hi, you have reached us. Please leave a message after the tone.", String::as_str);
                Answer::Machine { greeting: Arc::new(speech(greeting, &args.voice)?), listen: Duration::from_secs(60) }
            }
            Callee::Person => {
                let mut script =
                    vec![Step::Say(Arc::new(speech("Hello?", &args.voice)?)), Step::Amd("human"), wait.clone()];
                for text in &args.text {
                    script.push(Step::Say(Arc::new(speech(text, &args.voice)?)));
                    script.push(wait.clone());
                }
                if args.hang_up {
                    script.push(Step::HangUp);
                }
                Answer::Person(script)
            }
        };
        let outcome = sim.answer(call, answer, &args.runtime).await?;
        for (status, http) in &outcome.status_callbacks {
            println!("status callback {status}: HTTP {http}");
        }
        if let Some(report) = &outcome.report {
            println!(
                "call {} ended: {:?}; agent audio played: {} ms",
                report.call_sid, report.ending, report.agent_played_ms
            );
            if let Some(out) = &args.out {
                write_wav(out, &report.heard)?;
                println!("agent audio written to {}", out.display());
            }
        }
    }
    Ok(())
}
