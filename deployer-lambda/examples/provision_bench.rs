//! Provisioning benchmark: every AWS call goes through a loopback proxy in front of
//! moto that adds a fixed delay (default 50 ms), as a far-away AWS endpoint would, so
//! the critical path shows in the wall time. For each scenario it reports the wall
//! time per agent, the AWS calls per agent (mutating and read), and the sequential
//! round-trip layers: the longest chain of calls each starting after the previous
//! one answered, measured from the proxy's log.
//!
//! ```sh
//! moto_server -H 127.0.0.1 -p 5000 &
//! AWS_ENDPOINT_URL=http://127.0.0.1:5000 cargo run -p deployer-lambda --example provision_bench -- [agents] [delay_ms] [fleet]
//! ```
//!
//! Defaults: 5 agents per scenario, 50 ms, a fleet of 200 agents provisioned back to back,
//! then rolled out to a new image: once with no fault, then three times with 10 % of
//! all AWS attempts answered with the service's throttling error (injected on the wire
//! by the call recorder, so the SDK's retries and the rollout's own retry both play).

#[path = "../tests/deployer/common.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_spec::{AgentId, TenantId};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One request as the proxy saw it, in microseconds since the proxy started.
#[derive(Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    delay: Duration,
    client: reqwest::Client,
    epoch: Instant,
    log: Arc<Mutex<Vec<Span>>>,
}

async fn forward(State(p): State<Proxy>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let start = p.epoch.elapsed().as_micros() as u64;
    tokio::time::sleep(p.delay).await;
    let url = format!("{}{}", p.upstream, uri.path_and_query().map(|q| q.as_str()).unwrap_or("/"));
    let mut req = p.client.request(method, url).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    let response = match req.send().await {
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            let body = r.bytes().await.unwrap_or_default();
            let mut out = (status, body).into_response();
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" {
                    out.headers_mut().insert(name, value.clone());
                }
            }
            out
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let end = p.epoch.elapsed().as_micros() as u64;
    p.log.lock().unwrap().push(Span { start, end });
    response
}

/// Longest chain of calls where each starts after the previous one ended.
fn layers(spans: &[Span]) -> usize {
    let mut spans = spans.to_vec();
    spans.sort_by_key(|s| s.start);
    let mut depth = vec![1usize; spans.len()];
    for i in 0..spans.len() {
        for j in 0..i {
            if spans[j].end <= spans[i].start {
                depth[i] = depth[i].max(depth[j] + 1);
            }
        }
    }
    depth.into_iter().max().unwrap_or(0)
}

struct Measured {
    wall: Duration,
    mutating: usize,
    read: usize,
    layers: usize,
}

async fn measure<F, Fut>(base: &common::Base, log: &Arc<Mutex<Vec<Span>>>, run: F) -> Measured
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    base.recorder.clear();
    log.lock().unwrap().clear();
    let start = Instant::now();
    run().await;
    let wall = start.elapsed();
    let calls = base.recorder.calls();
    let mutating = calls.iter().filter(|c| c.is_mutating()).count();
    Measured { wall, mutating, read: calls.len() - mutating, layers: layers(&log.lock().unwrap()) }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let agents: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let delay_ms: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let fleet: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let upstream = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL must name a moto server on 127.0.0.1");

    let log = Arc::new(Mutex::new(Vec::new()));
    let proxy = Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        delay: Duration::from_millis(delay_ms),
        client: reqwest::Client::new(),
        epoch: Instant::now(),
        log: log.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // SAFETY: set before any other thread reads the environment (the proxy task only
    // serves requests and reads nothing from it).
    unsafe { std::env::set_var("AWS_ENDPOINT_URL", &proxy_url) };

    println!("provisioning benchmark: moto at {upstream}, +{delay_ms} ms per AWS call, {agents} agents per row\n");
    println!(
        "| mode | scenario | wall per agent (median) | AWS calls (mutating / read) | sequential round-trip layers |"
    );
    println!("| --- | --- | ---: | ---: | ---: |");
    let tenant = TenantId::generate();
    let mut next_priority = 1000;
    for (mode, sequential) in [("concurrent", false), ("sequential", true)] {
        let mut base = common::base().await;
        base.settings.sequential_steps = sequential;
        let mut rows: Vec<(&str, Vec<Measured>)> =
            vec![("fresh", vec![]), ("no-op redeploy", vec![]), ("config change", vec![])];
        for _ in 0..agents {
            let agent = AgentId::generate();
            next_priority += 1;
            let req = common::request(&base, &agent, &tenant, next_priority);
            let mut changed = req.clone();
            changed.config.system_prompt = "You answer calls for Rosa's Bakery, now open Mondays.".into();
            let (clients, settings) = (&base.clients, &base.settings);
            let deploy = |r: deployer_lambda::DeployRequest| async move {
                deployer_lambda::deploy(clients, settings, r).await.expect("deploy");
            };
            let fresh = measure(&base, &log, || deploy(req.clone())).await;
            let noop = measure(&base, &log, || deploy(req.clone())).await;
            let change = measure(&base, &log, || deploy(changed)).await;
            rows[0].1.push(fresh);
            rows[1].1.push(noop);
            rows[2].1.push(change);
        }
        for (scenario, ms) in rows {
            let wall = median(ms.iter().map(|m| m.wall.as_secs_f64() * 1000.0).collect());
            let mutating = median(ms.iter().map(|m| m.mutating as f64).collect());
            let read = median(ms.iter().map(|m| m.read as f64).collect());
            let layers = median(ms.iter().map(|m| m.layers as f64).collect());
            println!("| {mode} | {scenario} | {wall:.0} ms | {mutating:.0} / {read:.0} | {layers:.0} |");
        }
    }

    if fleet > 0 {
        let mut base = common::base().await;
        let start = Instant::now();
        let mut per_agent = Vec::new();
        for i in 0..fleet {
            let agent = AgentId::generate();
            let req = common::request(&base, &agent, &tenant, 2000 + i as u32);
            let t = Instant::now();
            deployer_lambda::deploy(&base.clients, &base.settings, req).await.unwrap();
            per_agent.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let total = start.elapsed();
        let first10 = per_agent[..10.min(fleet)].iter().sum::<f64>() / 10.min(fleet) as f64;
        let last10 = per_agent[fleet.saturating_sub(10)..].iter().sum::<f64>() / 10.min(fleet) as f64;
        let mut sorted = per_agent.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("\n| fleet | agents | total | per agent p50 | per agent p95 | first 10 mean | last 10 mean |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        println!(
            "| back to back, concurrent steps | {fleet} | {:.1} s | {:.0} ms | {:.0} ms | {first10:.0} ms | {last10:.0} ms |",
            total.as_secs_f64(),
            sorted[fleet / 2],
            sorted[(fleet * 95 / 100).min(fleet - 1)],
        );

        // Rollouts of the fleet onto new images: no fault, then 10 % throttled.
        let ecr = aws_sdk_ecr::Client::new(&base.sdk);
        let agents: Vec<AgentId> = {
            let ecs = aws_sdk_ecs::Client::new(&base.sdk);
            let mut ids = Vec::new();
            let mut pages = ecs.list_services().cluster(&base.settings.cluster).into_paginator().send();
            while let Some(page) = pages.next().await {
                for arn in page.unwrap().service_arns() {
                    let name = arn.rsplit('/').next().unwrap();
                    ids.extend(deployer_lambda::naming::AgentNames::agent_of_service(&base.settings.prefix, name));
                }
            }
            ids
        };
        base.settings.sequential_steps = false;
        println!(
            "\n| rollout of {} agents | injected throttling | run | total | per agent | updated | failed | throttles answered |",
            agents.len()
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let runs: [(&str, f64); 4] = [("v2", 0.0), ("v3", 0.10), ("v4", 0.10), ("v5", 0.10)];
        let mut throttled_totals = Vec::new();
        for (i, (tag, rate)) in runs.iter().enumerate() {
            common::push_image(&ecr, &base.settings.runtime_repository, tag).await;
            base.recorder.clear_faults();
            if *rate > 0.0 {
                base.recorder.inject(deployer_lambda::faults::Fault::rate(
                    None,
                    deployer_lambda::faults::Transient::Throttling,
                    *rate,
                ));
            }
            let t = Instant::now();
            let report = deployer_lambda::fleet::rollout(
                &base.clients,
                &base.settings,
                deployer_lambda::fleet::RolloutRequest { image_tag: (*tag).to_owned(), agents: Some(agents.clone()) },
            )
            .await
            .expect("rollout");
            let total = t.elapsed();
            let throttles = base.recorder.clear_faults().len();
            let updated =
                report.agents.iter().filter(|a| a.action == deployer_lambda::fleet::RolloutAction::Updated).count();
            let failed =
                report.agents.iter().filter(|a| a.action == deployer_lambda::fleet::RolloutAction::Failed).count();
            if *rate > 0.0 {
                throttled_totals.push(total.as_secs_f64());
            }
            println!(
                "| image {tag} | {:.0} % | {} | {:.1} s | {:.0} ms | {updated} | {failed} | {throttles} |",
                rate * 100.0,
                i + 1,
                total.as_secs_f64(),
                total.as_secs_f64() * 1000.0 / agents.len() as f64,
            );
        }
        throttled_totals.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if let (Some(lo), Some(hi)) = (throttled_totals.first(), throttled_totals.last()) {
            println!(
                "\nthrottled rollouts: median {:.1} s, range {lo:.1}–{hi:.1} s over {} runs",
                throttled_totals[throttled_totals.len() / 2],
                throttled_totals.len()
            );
        }
    }
}
