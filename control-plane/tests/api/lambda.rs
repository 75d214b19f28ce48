//! The deployer as a Lambda: the `deployer-lambda` binary runs against the Lambda
//! runtime API of `cargo lambda watch` on 127.0.0.1, and the control plane invokes it
//! through the Lambda Invoke API (aws-sdk-lambda), which provisions in moto.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::deployments::aws_base;
use crate::helpers::{TestApp, agent_body};

const FUNCTION: &str = "deployer-lambda";

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The deployer binary next to this test's own target directory, built if missing.
fn deployer_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap(); // target/debug/deps → target/debug
    let binary = dir.join(FUNCTION);
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status =
            Command::new(cargo).args(["build", "-p", FUNCTION]).current_dir(workspace_root()).status().unwrap();
        assert!(status.success(), "build the deployer binary");
    }
    binary
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits (up to 600 tries, 100 ms apart) until `port` accepts connections.
fn wait_for_port(port: u16, what: &str, child: &mut Running) {
    for _ in 0..600 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("{what} exited with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} never listened on {port}");
}

async fn wait_done(app: &TestApp, key: &str, agent: &str, deployment: &str) -> Value {
    let path = format!("/v1/agents/{agent}/deployments/{deployment}");
    for _ in 0..1200 {
        let body: Value = app.request(Method::GET, &path, Some(key)).send().await.unwrap().json().await.unwrap();
        if matches!(body["status"].as_str(), Some("active" | "failed" | "deleted")) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deployment {deployment} did not finish in 120 s");
}

#[tokio::test]
async fn the_control_plane_deploys_through_the_lambda_invoke_api() {
    let base = aws_base(1, 95);
    let port = free_port();
    let logs = tempfile::tempdir().unwrap();

    // The Lambda runtime and Invoke APIs, without cargo-lambda building the function:
    // the binary built with the workspace is run against them below.
    let mut watch = Running(
        Command::new(test_support::cargo_lambda())
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(workspace_root())
            .stdout(std::fs::File::create(logs.path().join("watch.log")).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cargo lambda (pip install cargo-lambda; scripts/test installs it)"),
    );
    wait_for_port(port, "cargo lambda watch", &mut watch);

    let mut function = Command::new(deployer_binary());
    function
        .env_clear()
        .envs(&base)
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt/{FUNCTION}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::fs::File::create(logs.path().join("function.log")).unwrap());
    let _function = Running(function.spawn().expect("start the deployer binary"));

    let lambda_app = |listeners: Option<String>| {
        let base = base.clone();
        move |vars: &mut std::collections::HashMap<String, String>| {
            vars.extend(base);
            vars.insert("TEMPOVOICE_DEPLOYER".into(), "lambda".into());
            vars.insert("DEPLOYER_LAMBDA_FUNCTION".into(), FUNCTION.into());
            vars.insert("AWS_ENDPOINT_URL_LAMBDA".into(), format!("http://127.0.0.1:{port}"));
            vars.insert("TEMPOVOICE_DEPLOY_MAX_ATTEMPTS".into(), "1".into());
            // Cluster, VPC, … are the Lambda's settings, not the control plane's.
            for k in ["TEMPOVOICE_CLUSTER", "TEMPOVOICE_VPC_ID", "TEMPOVOICE_SUBNETS", "TEMPOVOICE_SECURITY_GROUPS"] {
                vars.remove(k);
            }
            if let Some(l) = listeners {
                vars.insert("TEMPOVOICE_LISTENERS".into(), l);
            }
        }
    };
    let app = TestApp::spawn_with(lambda_app(None)).await;
    let tenant = app.new_tenant("t").await;

    let res = app.create_agent(&tenant, &agent_body("Front desk")).await;
    assert_eq!(res.status(), 202);
    let agent: Value = res.json().await.unwrap();
    let id = agent["id"].as_str().unwrap().to_owned();
    let done = wait_done(&app, &tenant.key, &id, agent["deployment"]["id"].as_str().unwrap()).await;
    let function_log = || std::fs::read_to_string(logs.path().join("function.log")).unwrap_or_default();
    assert_eq!(done["status"], "active", "{done:#}\nfunction log:\n{}", function_log());
    let created: Vec<&str> =
        done["resources"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(created, ["created"; 7], "{done:#}");

    // The resources are in moto, where the Lambda made them.
    let sdk = control_plane::deploy::sdk_config("us-east-1", Some(&base["AWS_ENDPOINT_URL"])).await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let services = ecs.list_services().cluster(&base["TEMPOVOICE_CLUSTER"]).send().await.unwrap();
    assert!(services.service_arns().iter().any(|a| a.contains(&id)), "{services:?}");

    // A function error comes back typed: a listener that does not exist fails the
    // rule step, not retryable, with the AWS code.
    let fake = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/nope/0123456789abcdef/0123456789abcdef\
         @voice.example.com";
    let broken = TestApp::spawn_with(lambda_app(Some(fake.to_owned()))).await;
    let other = broken.new_tenant("t").await;
    let agent: Value = broken.create_agent(&other, &agent_body("B")).await.json().await.unwrap();
    let failed =
        wait_done(&broken, &other.key, agent["id"].as_str().unwrap(), agent["deployment"]["id"].as_str().unwrap())
            .await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["error"]["step"], "listener_rule", "{failed:#}");
    assert!(failed["error"]["error_type"].as_str().unwrap().starts_with("NonRetryable.listener_rule."), "{failed:#}");

    // Delete through the Lambda too.
    let res = app.request(Method::DELETE, &format!("/v1/agents/{id}"), Some(&tenant.key)).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let teardown: Value = res.json().await.unwrap();
    let done = wait_done(&app, &tenant.key, &id, teardown["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "deleted", "{done:#}");
    let service = done["resources"].as_array().unwrap().iter().find(|r| r["kind"] == "service").unwrap();
    assert_eq!(service["action"], "deleted", "{done:#}");
}
