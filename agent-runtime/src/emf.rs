//! The task's metrics for CloudWatch, in CloudWatch's embedded metric format (EMF):
//! one JSON line on stdout every `TEMPOVOICE_EMF_SECS` (60 by default; 0 turns them
//! off), which the awslogs log driver already ships and CloudWatch Logs turns into
//! metrics. No sidecar, no API call, nothing on the call path.
//!
//! Namespace `TempoVoice`, dimension `AgentId`:
//! - `LiveCalls`: calls in progress on this task at that moment. Averaged over an
//!   agent's tasks it is the live calls per task that target tracking scales on;
//! - `CallsEnded`, `BusyRejects` (calls refused at the task's limit or while
//!   draining), `ProviderErrors` (calls whose speech provider was unavailable or
//!   failed), `UploadFailures` (artifact uploads S3 refused; they are spooled and
//!   retried): counts since the previous line.
//!
//! `TaskId` rides along as a plain member, for Logs Insights queries.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub const NAMESPACE: &str = "TempoVoice";

/// One interval's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub live_calls: u64,
    pub calls_ended: u64,
    pub busy_rejects: u64,
    pub provider_errors: u64,
    pub upload_failures: u64,
}

/// The running totals the counts are taken from.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    ended: u64,
    busy: u64,
    provider: u64,
    uploads: u64,
}

impl Totals {
    fn of(m: &Metrics) -> Self {
        Self {
            ended: m.calls_ended(),
            busy: m.calls_rejected_busy.load(Ordering::Relaxed),
            provider: m.provider_unavailable.load(Ordering::Relaxed) + m.provider_failed.load(Ordering::Relaxed),
            uploads: m.s3_errors.load(Ordering::Relaxed),
        }
    }
}

/// One EMF document, as one line.
pub fn line(agent_id: &str, task_id: &str, figures: Figures, timestamp_ms: i64) -> String {
    let count = |name: &str| json!({"Name": name, "Unit": "Count"});
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["AgentId"]],
                "Metrics": [
                    count("LiveCalls"),
                    count("CallsEnded"),
                    count("BusyRejects"),
                    count("ProviderErrors"),
                    count("UploadFailures"),
                ],
            }],
        },
        "AgentId": agent_id,
        "TaskId": task_id,
        "LiveCalls": figures.live_calls,
        "CallsEnded": figures.calls_ended,
        "BusyRejects": figures.busy_rejects,
        "ProviderErrors": figures.provider_errors,
        "UploadFailures": figures.upload_failures,
    })
    .to_string()
}

/// Writes a line every `every` until `stop` (and a last one then, so the counts of
/// the task's final interval are not lost).
pub async fn run(
    metrics: Arc<Metrics>,
    agent_id: String,
    task_id: String,
    every: Duration,
    out: Arc<Mutex<dyn Write + Send>>,
    stop: CancellationToken,
) {
    let mut before = Totals::of(&metrics);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = ticks.tick() => false,
            () = stop.cancelled() => true,
        };
        let now = Totals::of(&metrics);
        let figures = Figures {
            live_calls: metrics.active_calls.load(Ordering::Relaxed).max(0) as u64,
            calls_ended: now.ended - before.ended,
            busy_rejects: now.busy - before.busy,
            provider_errors: now.provider - before.provider,
            upload_failures: now.uploads - before.uploads,
        };
        before = now;
        let timestamp = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let text = line(&agent_id, &task_id, figures, timestamp);
        if let Ok(mut out) = out.lock() {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        if last {
            break;
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use serde_json::Value;

    const UNITS: [&str; 27] = [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    /// The document rules of CloudWatch's EMF specification: a JSON object with
    /// `_aws` (`Timestamp`, milliseconds; `CloudWatchMetrics`, directives); each
    /// directive a `Namespace` (1–255 characters), `Dimensions` (sets of at most 30
    /// keys, each naming a string member of the root) and `Metrics` (at most 100, each
    /// `Name` naming a number member of the root, with a known `Unit` and a
    /// `StorageResolution` of 1 or 60 when given); no other members in these objects.
    pub fn check(line: &str) -> Result<(), String> {
        let root: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let root = root.as_object().ok_or("the root is not an object")?;
        let aws = root.get("_aws").and_then(Value::as_object).ok_or("no _aws object")?;
        if let Some(extra) = aws.keys().find(|k| !["Timestamp", "CloudWatchMetrics"].contains(&k.as_str())) {
            return Err(format!("_aws has {extra}"));
        }
        let ts = aws.get("Timestamp").and_then(Value::as_i64).ok_or("no integer Timestamp")?;
        if ts < 1_000_000_000_000 {
            return Err("Timestamp is not in milliseconds".into());
        }
        let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no CloudWatchMetrics")?;
        for d in directives {
            let d = d.as_object().ok_or("a directive is not an object")?;
            if let Some(extra) = d.keys().find(|k| !["Namespace", "Dimensions", "Metrics"].contains(&k.as_str())) {
                return Err(format!("a directive has {extra}"));
            }
            let ns = d.get("Namespace").and_then(Value::as_str).ok_or("no Namespace")?;
            if ns.is_empty() || ns.len() > 255 {
                return Err("Namespace length".into());
            }
            for set in d.get("Dimensions").and_then(Value::as_array).ok_or("no Dimensions")? {
                let keys = set.as_array().ok_or("a dimension set is not an array")?;
                if keys.len() > 30 {
                    return Err("more than 30 dimensions".into());
                }
                for k in keys {
                    let k = k.as_str().ok_or("a dimension key is not a string")?;
                    if !root.get(k).is_some_and(Value::is_string) {
                        return Err(format!("dimension {k} is not a string member of the root"));
                    }
                }
            }
            let metrics = d.get("Metrics").and_then(Value::as_array).ok_or("no Metrics")?;
            if metrics.len() > 100 {
                return Err("more than 100 metrics".into());
            }
            for m in metrics {
                let m = m.as_object().ok_or("a metric is not an object")?;
                if let Some(extra) = m.keys().find(|k| !["Name", "Unit", "StorageResolution"].contains(&k.as_str())) {
                    return Err(format!("a metric has {extra}"));
                }
                let name = m.get("Name").and_then(Value::as_str).ok_or("a metric without a Name")?;
                if !root.get(name).is_some_and(Value::is_number) {
                    return Err(format!("metric {name} is not a number member of the root"));
                }
                if let Some(unit) = m.get("Unit") {
                    if !unit.as_str().is_some_and(|u| UNITS.contains(&u)) {
                        return Err(format!("metric {name} has unit {unit}"));
                    }
                }
                if let Some(r) = m.get("StorageResolution") {
                    if !matches!(r.as_i64(), Some(1 | 60)) {
                        return Err(format!("metric {name} has StorageResolution {r}"));
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn lines_follow_the_specification_and_count_each_interval() {
        let metrics = Arc::new(Metrics::default());
        let sink: Arc<Mutex<Vec<u8>>> = Arc::default();
        let out: Arc<Mutex<dyn Write + Send>> = sink.clone();
        let stop = CancellationToken::new();
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let task = tokio::spawn(run(
                Arc::clone(&metrics),
                "k3v7q2mxa7bd4fhe".into(),
                "t00aa".into(),
                Duration::from_secs(60),
                out,
                stop.clone(),
            ));
            // The writer takes its baseline first.
            tokio::time::sleep(Duration::from_secs(1)).await;
            metrics.active_calls.store(3, Ordering::Relaxed);
            metrics.call_ended("end_call");
            metrics.call_ended("transferred");
            metrics.calls_rejected_busy.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(60)).await;
            metrics.provider_failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(60)).await;
            stop.cancel();
            task.await.unwrap();
        });
        let text = String::from_utf8(sink.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for l in text.lines() {
            check(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        }
        assert_eq!(lines.len(), 3, "two intervals and the last: {text}");
        assert_eq!((lines[0]["LiveCalls"].as_u64(), lines[0]["CallsEnded"].as_u64()), (Some(3), Some(2)));
        assert_eq!(lines[0]["BusyRejects"], 1);
        assert_eq!((lines[1]["CallsEnded"].as_u64(), lines[1]["ProviderErrors"].as_u64()), (Some(0), Some(1)));
        assert_eq!(lines[0]["AgentId"], "k3v7q2mxa7bd4fhe");
    }

    #[test]
    fn the_checker_catches_what_cloudwatch_refuses() {
        let good = line("a", "t", Figures::default(), 1_764_300_000_000);
        assert!(check(&good).is_ok());
        assert!(
            check(&good.replace("\"AgentId\":\"a\"", "\"AgentId\":1")).is_err(),
            "a dimension that is not a string"
        );
        assert!(check(&good.replace("\"Unit\":\"Count\"", "\"Unit\":\"Calls\"")).is_err());
        assert!(check(&good.replace("1764300000000", "1764300000")).is_err(), "seconds");
        assert!(check(&good.replace("\"LiveCalls\":0", "\"LiveCalls\":\"0\"")).is_err());
    }
}
