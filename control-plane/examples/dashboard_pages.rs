//! Benchmark: time to first byte and page weight of the dashboard's heaviest pages,
//! served by the control plane on 127.0.0.1 (release build), with the API called in
//! process as in production:
//!
//! - the agents list of a tenant with 500 agents (first page, next page, and a search
//!   that reads all 500);
//! - a call page with a 200-turn transcript (with interruptions, tool calls and DTMF)
//!   and its metadata, read from the agent's bucket in S3 (moto).
//!
//! Needs a moto server: `AWS_ENDPOINT_URL=http://127.0.0.1:4566` (plus
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`). Run:
//!
//! ```sh
//! cargo run --release -p control-plane --example dashboard_pages -- [requests per page]
//! ```

use std::time::{Duration, Instant};

use agent_spec::calls::{CallMetadata, DtmfRecord, Role, ToolCall, ToolCallRecord, Transcript, Turn};
use serde_json::{Value, json};
#[path = "support/bench_app.rs"]
mod bench_app;
use bench_app::BenchApp;

const AGENTS: usize = 500;
const TURNS: usize = 200;
const CALL_SID: &str = "CA00000000000000000000000000000001";

fn agent(i: usize) -> Value {
    let prompt = "You are the front desk of a busy neighbourhood bakery. Greet callers warmly, answer questions \
                  about opening hours, orders, allergens and prices from the knowledge base, take messages, and \
                  transfer to a person when asked. Keep answers under three sentences. "
        .repeat(4);
    json!({
        "name": format!("Front desk {i:03}"),
        "description": "Answers the main line of the bakery on weekdays and weekends.",
        "system_prompt": prompt,
        "knowledge_base": [{"title": "Opening hours", "text": "Open Tuesday to Sunday, seven to three. ".repeat(20)}],
        "guardrails": {"custom_rules": ["Never discuss pricing of custom cakes.", "Never give medical advice."]},
        "voice": {"provider": "local"},
        "telephony": {"call_phone_number": format!("+1415555{i:04}"), "twilio_account_sid": "AC0123456789abcdef0123456789abcdef"},
        "integrations": {"transcript_webhook_url": "https://hooks.example.com/transcripts"},
        "secrets": {"twilio_auth_token": "0123456789abcdef0123456789abcdef"}
    })
}

fn transcript() -> Transcript {
    let turns = (0..TURNS)
        .map(|i| {
            let role = if i % 2 == 0 { Role::Agent } else { Role::Caller };
            let text = match role {
                Role::Agent => {
                    "We are open Tuesday to Sunday from seven in the morning to three in the afternoon; \
                                 would you like to place an order for pickup?"
                }
                Role::Caller => {
                    "Yes, I would like two loaves of sourdough and a dozen croissants for Saturday morning."
                }
            };
            Turn {
                role,
                text: text.into(),
                start_ms: i as u64 * 4_000,
                end_ms: i as u64 * 4_000 + 3_500,
                interrupted: i % 17 == 0,
                tool_calls: if i % 50 == 48 {
                    vec![ToolCallRecord {
                        call: ToolCall::ScheduleCallback { requested_time: "Saturday at nine".into(), at: None },
                        result: "ok".into(),
                    }]
                } else {
                    vec![]
                },
            }
        })
        .collect();
    let dtmf = (0..10).map(|i| DtmfRecord { digit: (i % 10).to_string(), at_ms: i * 61_000 + 500 }).collect();
    Transcript { call_sid: CALL_SID.into(), turns, dtmf }
}

fn metadata(agent_id: &str, tenant_id: &str) -> CallMetadata {
    CallMetadata {
        call_sid: CALL_SID.into(),
        stream_sid: "MZ00000000000000000000000000000001".into(),
        account_sid: "AC0123456789abcdef0123456789abcdef".into(),
        from: Some("+15550001234".into()),
        to: Some("+14155550000".into()),
        agent_id: agent_id.into(),
        tenant_id: tenant_id.into(),
        agent_name: "Front desk 000".into(),
        provider: "local".into(),
        started_at: "2026-11-21T09:00:00Z".into(),
        ended_at: "2026-11-21T09:13:20Z".into(),
        duration_secs: 800.0,
        end_reason: "end_call".into(),
        turn_latency_ms: (0..100).map(|i| 500 + i).collect(),
        caller_turns: 100,
        agent_turns: 100,
        interruptions: 12,
        guardrail_cuts: 0,
        usage: Default::default(),
        frames_in: 40_000,
        frames_out: 20_000,
        malformed_messages: 0,
        recording: true,
        recording_cut_at_ms: None,
        voicemail: false,
        webhooks: vec![],
        errors: vec![],
        direction: None,
        answered_by: None,
        metadata: None,
    }
}

struct Measured {
    ttfb: Vec<Duration>,
    bytes: usize,
}

async fn measure(http: &reqwest::Client, url: &str, cookie: &str, requests: usize) -> Measured {
    let mut ttfb = Vec::with_capacity(requests);
    let mut bytes = 0;
    for round in 0..requests + requests / 10 {
        let start = Instant::now();
        let response = http.get(url).header("accept", "text/html").header("cookie", cookie).send().await.unwrap();
        let first = start.elapsed();
        assert_eq!(response.status(), 200, "{url}");
        let body = response.bytes().await.unwrap();
        // The first tenth warms up.
        if round >= requests / 10 {
            ttfb.push(first);
            bytes = body.len();
        }
    }
    ttfb.sort_unstable();
    Measured { ttfb, bytes }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(500);
    let app = BenchApp::start(&[]).await?;
    let (base, prefix) = (app.base.clone(), app.prefix.clone());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let (tenant_id, key) = app.tenant(&http, "Bench bakery").await?;
    let mut first_agent = String::new();
    for i in 0..AGENTS {
        let created: Value = http
            .post(format!("{base}/v1/agents?deploy=false"))
            .bearer_auth(&key)
            .json(&agent(i))
            .send()
            .await?
            .json()
            .await?;
        if i == 0 {
            first_agent = created["id"].as_str().unwrap().to_owned();
        }
    }

    // The first agent's call, where the runtime would have put it.
    let agent_id = agent_spec::AgentId::parse(&first_agent)?;
    let bucket = deployer_lambda::naming::AgentNames::new(&prefix, &agent_id).bucket;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket(&bucket).send().await?;
    let transcript = serde_json::to_vec(&transcript())?;
    let metadata = serde_json::to_vec(&metadata(&first_agent, &tenant_id))?;
    for (file, body) in [("transcript.json", transcript.clone()), ("metadata.json", metadata)] {
        s3.put_object().bucket(&bucket).key(format!("calls/{CALL_SID}/{file}")).body(body.into()).send().await?;
    }

    let signed_in = http
        .post(format!("{base}/api/sign_in"))
        .header("accept", "text/html")
        .form(&[("api_key", key.as_str()), ("next", "/")])
        .send()
        .await?;
    let cookie = signed_in.headers()["set-cookie"].to_str()?.split(';').next().unwrap().to_owned();
    let first_page: Value =
        http.get(format!("{base}/v1/agents?limit=50")).bearer_auth(&key).send().await?.json().await?;
    let cursor = first_page["next_cursor"].as_str().unwrap().to_owned();
    let css = http.get(format!("{base}/assets/dashboard.css")).send().await?.bytes().await?.len();
    let js = http.get(format!("{base}/assets/dashboard.js")).send().await?.bytes().await?.len();

    let pages = [
        ("agents list, first page (50 of 500)", "/".to_owned()),
        ("agents list, next page", format!("/?cursor={cursor}")),
        ("agents search over all 500", "/?q=front+desk+49".to_owned()),
        ("call page, 200-turn transcript", format!("/agents/{first_agent}/calls/{CALL_SID}")),
    ];
    println!(
        "{AGENTS} agents, {TURNS}-turn transcript ({} KiB JSON); {requests} sequential requests per page after {} warm-up; \
         stylesheet {css} B, script {js} B (cached after the first page)\n",
        transcript.len() / 1024,
        requests / 10
    );
    println!("| page | TTFB p50 | p90 | p99 | max | HTML | with CSS + JS |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, path) in pages {
        let m = measure(&http, &format!("{base}{path}"), &cookie, requests).await;
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} KB | {:.1} KB |",
            pct(&m.ttfb, 0.50),
            pct(&m.ttfb, 0.90),
            pct(&m.ttfb, 0.99),
            m.ttfb.last().unwrap().as_secs_f64() * 1000.0,
            m.bytes as f64 / 1000.0,
            (m.bytes + css + js) as f64 / 1000.0,
        );
    }
    app.stop().await?;
    Ok(())
}
