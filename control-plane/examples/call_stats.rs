//! Benchmark: an agent's calls at a glance (`GET /v1/agents/{id}/calls/stats`, 30
//! days) and its first page of calls (`GET /v1/agents/{id}/calls?limit=50`), served
//! by the control plane on 127.0.0.1 (release build) from the agent's call index in
//! S3 (moto): `calls` calls over the last 29 days, written as two runtime tasks write
//! them (a segment per task and day).
//!
//! Two cases per route:
//! - **listing reused**: requests back to back, as a page and its refreshes are; the
//!   index's listing is reused for its 2 s and every segment is cached by ETag, so a
//!   request reads nothing from S3;
//! - **listing each time**: requests 2.2 s apart, so each lists the index in S3 (and
//!   fetches nothing else: the segments are unchanged).
//!
//! Timings include the HTTP round trip, authentication and the database lookup of
//! the agent. Needs a moto server: `AWS_ENDPOINT_URL=http://127.0.0.1:4566` (plus
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`). Run:
//!
//! ```sh
//! cargo run --release -p control-plane --example call_stats -- [calls] [requests]
//! ```

use std::time::{Duration, Instant};

use agent_spec::calls::{CallIndexEntry, index_key};
#[path = "support/bench_app.rs"]
mod bench_app;
use bench_app::BenchApp;
use serde_json::{Value, json};

const REASONS: [&str; 8] =
    ["end_call", "caller_hung_up", "end_call", "transferred", "voicemail", "idle", "end_call", "provider_error"];

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

async fn time_get(http: &reqwest::Client, url: &str, key: &str) -> (Duration, usize) {
    let start = Instant::now();
    let response = http.get(url).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let body = response.bytes().await.unwrap();
    (start.elapsed(), body.len())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let requests: usize = std::env::args().nth(2).map(|n| n.parse()).transpose()?.unwrap_or(500);
    let app = BenchApp::start(&[("TEMPOVOICE_DASHBOARD", "off")]).await?;
    let (base, prefix) = (app.base.clone(), app.prefix.clone());
    let http = reqwest::Client::new();
    let (_, key) = app.tenant(&http, "Bench").await?;
    let agent = json!({
        "name": "Front desk", "system_prompt": "You answer the phone.", "greeting": "Hello.",
        "voice": {"provider": "local"},
        "telephony": {"call_phone_number": "+14155550100", "twilio_account_sid": "AC0123456789abcdef0123456789abcdef"},
        "secrets": {"twilio_auth_token": "0123456789abcdef0123456789abcdef"}
    });
    let created: Value =
        http.post(format!("{base}/v1/agents?deploy=false")).bearer_auth(&key).json(&agent).send().await?.json().await?;
    let agent_id = created["id"].as_str().unwrap().to_owned();

    // The index, as two tasks of the agent wrote it: `calls` calls over 30 days.
    let bucket = deployer_lambda::naming::AgentNames::new(&prefix, &agent_spec::AgentId::parse(&agent_id)?).bucket;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket(&bucket).send().await?;
    let now = time::OffsetDateTime::now_utc();
    let mut segments: std::collections::BTreeMap<String, String> = Default::default();
    for n in 0..calls {
        let started = now - time::Duration::minutes((n as i64 * 41_760) / calls as i64 + 5);
        let secs = 15 + (n * 97) % 600;
        let ended = started + time::Duration::seconds(secs as i64);
        let task = if n % 2 == 0 { "t00aa" } else { "t00bb" };
        let entry = CallIndexEntry {
            call_sid: format!("CA{n:032x}"),
            started_at: started.format(&time::format_description::well_known::Rfc3339)?,
            ended_at: ended.format(&time::format_description::well_known::Rfc3339)?,
            duration_secs: secs as f64,
            from: Some("+15550001234".into()),
            to: Some("+14155550100".into()),
            direction: Some("inbound".into()),
            end_reason: REASONS[n % REASONS.len()].into(),
            voicemail: false,
            answered_by: None,
        };
        let segment = segments.entry(index_key(ended.date(), task, 0)).or_default();
        segment.push_str(&serde_json::to_string(&entry)?);
        segment.push('\n');
    }
    for (key, body) in &segments {
        s3.put_object().bucket(&bucket).key(key).body(body.clone().into_bytes().into()).send().await?;
    }

    let stats_url = format!("{base}/v1/agents/{agent_id}/calls/stats");
    let list_url = format!("{base}/v1/agents/{agent_id}/calls?limit=50");
    let (cold_stats, bytes) = time_get(&http, &stats_url, &key).await;
    let stats: Value = http.get(&stats_url).bearer_auth(&key).send().await?.json().await?;
    anyhow::ensure!(stats["calls"].as_u64() == Some(calls as u64), "the stats count {} calls", stats["calls"]);
    let (cold_list, list_bytes) = time_get(&http, &list_url, &key).await;

    println!(
        "{calls} calls in {} index segments; {requests} requests per case; stats {bytes} B, first page of calls {list_bytes} B",
        segments.len()
    );
    println!(
        "first request (lists and fetches every segment): stats {:.1} ms, list {:.1} ms",
        cold_stats.as_secs_f64() * 1000.0,
        cold_list.as_secs_f64() * 1000.0
    );
    println!("| route | case | requests | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for (route, url) in [("calls/stats", &stats_url), ("calls?limit=50", &list_url)] {
        let mut reused = Vec::with_capacity(requests);
        for _ in 0..requests {
            reused.push(time_get(&http, url, &key).await.0);
        }
        reused.sort_unstable();
        // Fewer of these: each waits out the listing's 2 s.
        let spaced_n = (requests / 20).max(10);
        let mut spaced = Vec::with_capacity(spaced_n);
        for _ in 0..spaced_n {
            tokio::time::sleep(Duration::from_millis(2200)).await;
            spaced.push(time_get(&http, url, &key).await.0);
        }
        spaced.sort_unstable();
        for (case, sorted) in [("listing reused", &reused), ("listing each time", &spaced)] {
            println!(
                "| {route} | {case} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
                sorted.len(),
                pct(sorted, 0.5),
                pct(sorted, 0.9),
                pct(sorted, 0.99),
                pct(sorted, 1.0)
            );
        }
    }
    app.stop().await
}
