//! The `control-plane` binary as an operator runs it: CLI bootstrap, serve, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{agent_body, fresh_database};

const BIN: &str = env!("CARGO_BIN_EXE_control-plane");

fn command(data_dir: &std::path::Path, database_url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TEMPOVOICE_DATA_DIR", data_dir)
        .env("DATABASE_URL", database_url)
        .env("TEMPOVOICE_LISTEN", "127.0.0.1:0")
        .env("TEMPOVOICE_LOG_FORMAT", "json")
        .env("TEMPOVOICE_DEPLOYER", "off");
    if database_url.starts_with("postgres") {
        cmd.env("TEMPOVOICE_SECRETS_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=");
    }
    cmd
}

/// Runs `cmd` to its end, or kills it after 10 s: a server that started instead of
/// refusing its settings fails the test rather than hanging it.
fn run_to_refusal(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run control-plane");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait_with_output().unwrap()
}

fn run_json(cmd: &mut Command) -> Value {
    let out = cmd.output().expect("run control-plane");
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[tokio::test]
async fn operator_bootstraps_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;

    let created = run_json(command(dir.path(), &db).args(["tenant", "create", "--name", "Rosa's Bakery"]));
    let tenant = created["tenant"]["id"].as_str().unwrap().to_owned();
    let key = created["api_key"]["api_key"].as_str().unwrap().to_owned();
    let issued = run_json(command(dir.path(), &db).args(["key", "issue", "--tenant", &tenant, "--label", "CI"]));
    let listed = run_json(command(dir.path(), &db).args(["key", "list", "--tenant", &tenant]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    run_json(command(dir.path(), &db).args([
        "key",
        "revoke",
        "--tenant",
        &tenant,
        "--key-id",
        issued["key_id"].as_str().unwrap(),
    ]));

    // Quotas: shown, overridden, returned to the default; a bad value names its flag.
    let shown = run_json(command(dir.path(), &db).args(["tenant", "quotas", "--tenant", &tenant]));
    assert_eq!((shown["limits"]["agents"].clone(), shown["use"]["agents"].clone()), (100.into(), 0.into()));
    let set = run_json(command(dir.path(), &db).args(["tenant", "quotas", "--tenant", &tenant, "--agents", "7"]));
    assert_eq!((set["limits"]["agents"].clone(), set["overrides"]["agents"].clone()), (7.into(), 7.into()));
    let back =
        run_json(command(dir.path(), &db).args(["tenant", "quotas", "--tenant", &tenant, "--agents", "default"]));
    assert_eq!((back["limits"]["agents"].clone(), back["overrides"]["agents"].clone()), (100.into(), Value::Null));
    let out = command(dir.path(), &db)
        .args(["tenant", "quotas", "--tenant", &tenant, "--cpu-units", "lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cpu-units"), "{out:?}");

    // Bad input names the flag and fails.
    let out = command(dir.path(), &db).args(["key", "issue", "--tenant", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant"));
    let out = command(dir.path(), &db).args(["tenant", "create", "--name", "  "]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name is required"), "{out:?}");

    // Serve; find the port in the "listening" log line.
    let mut child = command(dir.path(), &db).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["message"] == "control plane listening" {
                addr = v["addr"].as_str().map(str::to_owned);
                break;
            }
        }
        line.clear();
    }
    let addr = addr.expect("the server logs its address");
    let log_rest = std::thread::spawn(move || {
        let mut rest = String::new();
        for l in stderr.lines() {
            rest.push_str(&l.unwrap_or_default());
            rest.push('\n');
        }
        rest
    });

    let client = reqwest::Client::new();
    let res = client
        .post(format!("http://{addr}/v1/agents"))
        .bearer_auth(&key)
        .json(&agent_body("CLI agent"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = client
        .get(format!("http://{addr}/v1/agents"))
        .bearer_auth(issued["api_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the revoked key is refused");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = exited.unwrap_or_else(|| {
        child.kill().ok();
        panic!("no exit within 5 s of SIGTERM")
    });
    assert!(exited.success(), "exit status {exited}");
    let logs = log_rest.join().unwrap();
    assert!(logs.contains("\"tenant_id\":\""), "request logs carry the tenant id: {logs}");
    assert!(logs.contains("stopped"), "{logs}");
    assert!(!logs.contains(&key));
}

#[test]
fn bad_settings_are_named_and_refused() {
    let out =
        Command::new(BIN).env("TEMPOVOICE_LISTEN", "nowhere").env("TEMPOVOICE_LOG_FORMAT", "yaml").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TEMPOVOICE_LISTEN") && stderr.contains("TEMPOVOICE_LOG_FORMAT"), "{stderr}");
}

#[tokio::test]
async fn the_old_name_of_the_listen_address_is_refused_naming_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    // Everything else is valid: the old name alone stops it, rather than being
    // ignored while the server listens on the default address.
    for (old, new) in [("TEMPOVOICE_BIND", "TEMPOVOICE_LISTEN"), ("TEMPOVOICE_ADMIN_BIND", "TEMPOVOICE_ADMIN_LISTEN")] {
        let out = run_to_refusal(command(dir.path(), &db).env(old, "127.0.0.1:0"));
        assert!(!out.status.success(), "{old} is refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("{old} was renamed {new}: set {new} instead")), "{stderr}");
    }
}
