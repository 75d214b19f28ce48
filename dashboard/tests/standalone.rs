//! The dashboard served alone: the `dashboard` binary as an operator runs it, and
//! its `App` stopped by a future of the test's own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dashboard::standalone::{App, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_dashboard");

fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("TEMPOVOICE_LISTEN", "127.0.0.1:0")
        .env("TEMPOVOICE_API_URL", "http://127.0.0.1:9")
        .env("TEMPOVOICE_LOG_FORMAT", "json");
    cmd
}

/// Runs `cmd` to its end, or kills it after 10 s: a server that started instead of
/// refusing its settings fails the test rather than hanging it.
fn run_to_refusal(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run dashboard");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait_with_output().unwrap()
}

/// `GET path` on a connection of its own; the whole response.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[test]
fn the_old_name_of_the_listen_address_is_refused_naming_the_new_one() {
    let out = run_to_refusal(command().env("TEMPOVOICE_DASHBOARD_LISTEN", "127.0.0.1:0"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TEMPOVOICE_DASHBOARD_LISTEN was renamed TEMPOVOICE_LISTEN: set TEMPOVOICE_LISTEN instead"),
        "{stderr}"
    );
}

#[test]
fn bad_settings_are_all_named_and_refused() {
    let out = run_to_refusal(
        command()
            .env("TEMPOVOICE_API_URL", "not a url")
            .env("TEMPOVOICE_HEADER_TIMEOUT_SECS", "0")
            .env("TEMPOVOICE_DASHBOARD_SESSION_KEY", "short"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in ["TEMPOVOICE_API_URL", "TEMPOVOICE_HEADER_TIMEOUT_SECS", "TEMPOVOICE_DASHBOARD_SESSION_KEY"] {
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}

#[tokio::test]
async fn the_binary_serves_and_stops_on_sigterm() {
    let mut child = command().stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if v["message"] == "dashboard listening" {
                addr = v["addr"].as_str().and_then(|a| a.parse().ok());
                break;
            }
        }
        line.clear();
    }
    let addr = addr.expect("the dashboard logs its address, in JSON");
    let rest = std::thread::spawn(move || stderr.lines().map(|l| l.unwrap_or_default() + "\n").collect::<String>());

    let response = get(addr, "/no-such-page").await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exited = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("no exit within 10 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "exit status {exited}");
    let logs = rest.join().unwrap();
    assert!(logs.contains("\"message\":\"stopped\""), "{logs}");
}

/// Served through `serving::serve`: a client that has not sent a request's headers
/// within `TEMPOVOICE_HEADER_TIMEOUT_SECS` is disconnected. The app stops when the
/// future it was given resolves.
#[tokio::test]
async fn a_slow_client_is_disconnected_and_the_app_stops_when_told() {
    let vars = HashMap::from([
        ("TEMPOVOICE_LISTEN", "127.0.0.1:0"),
        ("TEMPOVOICE_API_URL", "http://127.0.0.1:9"),
        ("TEMPOVOICE_HEADER_TIMEOUT_SECS", "1"),
    ]);
    let settings = Settings::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap();
    let app = App::build(settings).await.unwrap();
    let addr = app.local_addr();
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));

    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer))
        .await
        .expect("the slow client is disconnected");
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_err() || answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(get(addr, "/no-such-page").await.starts_with("HTTP/1.1 404"));

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops within the grace period")
        .expect("the server task does not panic")
        .expect("a clean stop");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting");
}
