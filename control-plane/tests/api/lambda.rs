//! The deployer as a Lambda: the `deployer-lambda` binary runs against the Lambda
//! runtime API of `cargo lambda watch` on 127.0.0.1, and the control plane invokes it
//! through the Lambda Invoke API (aws-sdk-lambda), which provisions in moto.

use std::net::TcpStream;
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

/// `cargo lambda watch` (the Lambda runtime and Invoke APIs, without building the
/// function) with the workspace's deployer binary running against it on `base`.
struct LambdaPeer {
    _watch: Running,
    _function: Running,
    port: u16,
    logs: tempfile::TempDir,
}

impl LambdaPeer {
    fn start(base: &std::collections::HashMap<String, String>) -> LambdaPeer {
        let port = free_port();
        let logs = tempfile::tempdir().unwrap();
        let mut watch = Running(
            Command::new(test_support::cargo_lambda())
                .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1"])
                .args(["--invoke-port", &port.to_string()])
                .current_dir(test_support::workspace_root())
                .stdout(std::fs::File::create(logs.path().join("watch.log")).unwrap())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("cargo lambda (pip install cargo-lambda; scripts/test installs it)"),
        );
        wait_for_port(port, "cargo lambda watch", &mut watch);
        let mut function = Command::new(test_support::workspace_binary(FUNCTION));
        function
            .env_clear()
            .envs(base)
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt/{FUNCTION}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(std::fs::File::create(logs.path().join("function.log")).unwrap());
        let function = Running(function.spawn().expect("start the deployer binary"));
        LambdaPeer { _watch: watch, _function: function, port, logs }
    }

    fn function_log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("function.log")).unwrap_or_default()
    }
}

/// Settings for an app deploying through the Lambda on `base`.
fn lambda_app(
    base: &std::collections::HashMap<String, String>,
    port: u16,
    listeners: Option<String>,
) -> impl FnOnce(&mut std::collections::HashMap<String, String>) + use<> {
    let base = base.clone();
    move |vars| {
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
}

#[tokio::test]
async fn the_control_plane_deploys_through_the_lambda_invoke_api() {
    let base = aws_base(1, 95);
    let lambda = LambdaPeer::start(&base);
    let port = lambda.port;

    let app = TestApp::spawn_with(lambda_app(&base, port, None)).await;
    let tenant = app.new_tenant("t").await;

    // As a tenant asks for it: up to 4 tasks.
    let mut body = agent_body("Front desk");
    body["sizing"] = serde_json::json!({ "max_tasks": 4 });
    let res = app.create_agent(&tenant, &body).await;
    assert_eq!(res.status(), 202);
    let agent: Value = res.json().await.unwrap();
    let id = agent["id"].as_str().unwrap().to_owned();
    let done = wait_done(&app, &tenant.key, &id, agent["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "active", "{done:#}\nfunction log:\n{}", lambda.function_log());
    let created: Vec<&str> =
        done["resources"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(created, ["created"; 8], "{done:#}");

    // The resources are in moto, where the Lambda made them.
    let sdk = control_plane::deploy::sdk_config("us-east-1", Some(&base["AWS_ENDPOINT_URL"])).await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let services = ecs.list_services().cluster(&base["TEMPOVOICE_CLUSTER"]).send().await.unwrap();
    assert!(services.service_arns().iter().any(|a| a.contains(&id)), "{services:?}");
    // Its autoscaling: a scalable target of 1–4 tasks and the policy on live calls.
    let aas = aws_sdk_applicationautoscaling::Client::new(&sdk);
    let scaling = || async {
        use aws_sdk_applicationautoscaling::types::ServiceNamespace;
        // Every page: the local AWS holds other tests' agents too.
        let targets: Vec<_> = aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap();
        let policies: Vec<_> = aas
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap();
        let target = targets.into_iter().find(|t| t.resource_id().contains(&id));
        let policy = policies.into_iter().find(|p| p.resource_id().contains(&id));
        (target, policy)
    };
    let (target, policy) = scaling().await;
    let target = target.expect("a scalable target");
    assert_eq!((target.min_capacity(), target.max_capacity()), (1, 4));
    let tracking = policy.expect("a scaling policy").target_tracking_scaling_policy_configuration().cloned().unwrap();
    assert_eq!(tracking.target_value(), 35.0);
    assert_eq!(tracking.customized_metric_specification().unwrap().metric_name(), Some("LiveCalls"));

    // A function error comes back typed: a listener that does not exist fails the
    // rule step, not retryable, with the AWS code.
    let fake = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/nope/0123456789abcdef/0123456789abcdef\
         @voice.example.com";
    let broken = TestApp::spawn_with(lambda_app(&base, port, Some(fake.to_owned()))).await;
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
    let (target, policy) = scaling().await;
    assert!(target.is_none() && policy.is_none(), "the delete removed the autoscaling: {target:?} {policy:?}");
}

/// `scripts/rollout`, as CI runs it, against the Lambda Invoke API of `cargo lambda
/// watch`: its payload, its report, and its exit status.
async fn run_script(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    // Off the runtime's thread: the control plane this test runs answers the sweep.
    tokio::task::spawn_blocking(move || run_script_blocking(&args, &env)).await.unwrap()
}

fn run_script_blocking(args: &[String], env: &[(String, String)]) -> (i32, String, String) {
    let summary = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(test_support::python())
        .arg(test_support::workspace_root().join("scripts/rollout"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("GITHUB_STEP_SUMMARY", summary.path())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run scripts/rollout with the venv's Python");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    if out.status.code() != Some(2) {
        let written = std::fs::read_to_string(summary.path()).unwrap();
        assert!(written.starts_with("### "), "no step summary: {written:?}\n{stdout}{stderr}");
    }
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

#[tokio::test]
async fn scripts_rollout_rolls_out_through_the_lambda_and_names_a_failed_agent() {
    let base = aws_base(1, 95);
    let lambda = LambdaPeer::start(&base);
    let app = TestApp::spawn_with(lambda_app(&base, lambda.port, None)).await;
    let tenant = app.new_tenant("t").await;
    let mut ids = Vec::new();
    for name in ["A", "B"] {
        let agent: Value = app.create_agent(&tenant, &agent_body(name)).await.json().await.unwrap();
        let id = agent["id"].as_str().unwrap().to_owned();
        let done = wait_done(&app, &tenant.key, &id, agent["deployment"]["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "active", "{done:#}\nfunction log:\n{}", lambda.function_log());
        ids.push(id);
    }
    let sdk = control_plane::deploy::sdk_config("us-east-1", Some(&base["AWS_ENDPOINT_URL"])).await;
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let repository = &base["TEMPOVOICE_RUNTIME_REPOSITORY"];
    let lambda_env = [("AWS_ENDPOINT_URL_LAMBDA", format!("http://127.0.0.1:{}", lambda.port))];

    // A good rollout, by the digest a release's push reports: every agent updated, exit 0.
    let v2 = test_support::push_image(&ecr, repository, "v2").await;
    let (code, out, err) = run_script(&["rollout", "--function", FUNCTION, "--image", &v2], &lambda_env).await;
    assert_eq!(code, 0, "{out}{err}\nfunction log:\n{}", lambda.function_log());
    assert!(out.contains(&format!("@{v2}")), "{out}");
    for id in &ids {
        assert!(out.lines().any(|l| l.starts_with(id.as_str()) && l.contains("updated")), "{id}: {out}");
    }
    assert!(out.contains("rollout: 2 updated"), "{out}");

    // Agent B's task definition is gone (removed by hand): the next rollout fails for
    // B alone, exits 1 and names it; A is still rolled out.
    let td = ecs_task_definition(&ecs, &base, &ids[1]).await;
    ecs.deregister_task_definition().task_definition(&td).send().await.unwrap();
    ecs.delete_task_definitions().task_definitions(&td).send().await.unwrap();
    test_support::push_image(&ecr, repository, "v3").await;
    let (code, out, err) = run_script(&["rollout", "--function", FUNCTION, "--image", "v3"], &lambda_env).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("rollout failed for 1 agent(s): {}", ids[1])), "{err}");
    let line_of = |id: &str| out.lines().find(|l| l.starts_with(id)).unwrap_or_default().to_owned();
    assert!(line_of(&ids[0]).contains("updated"), "{out}");
    assert!(line_of(&ids[1]).contains("failed") && line_of(&ids[1]).contains("task_definition"), "{out}");
    assert!(out.contains("rollout: 1 failed, 1 updated"), "{out}");

    // Requests that cannot be made exit 2 and say why.
    let (code, _, err) = run_script(&["rollout", "--function", FUNCTION, "--image", "repo:v3"], &lambda_env).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--image 'repo:v3'"), "{err}");
    let unknown = format!("sha256:{}", "0".repeat(64));
    let (code, _, err) = run_script(&["rollout", "--function", FUNCTION, "--image", &unknown], &lambda_env).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("NonRetryable.runtime_image.ImageNotFoundException"), "{err}");

    // The scheduled sweep, a dry run through the control plane: clean, then an orphan
    // (a service of an agent the database does not know) is named and exits 1.
    let admin = [("TEMPOVOICE_ADMIN_TOKEN", app.admin_token.clone())];
    let (code, out, err) = run_script(&["sweep", "--control-plane", &app.url("")], &admin).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sweep (dry run): 0 orphaned agent(s), 0 expired bucket(s)"), "{out}");
    let stranger = agent_spec::AgentId::generate();
    let names = deployer_lambda::naming::AgentNames::new(&base["TEMPOVOICE_PREFIX"], &stranger);
    let tags = names.tags(&agent_spec::TenantId::generate()).into_iter();
    ecs.create_service()
        .cluster(&base["TEMPOVOICE_CLUSTER"])
        .service_name(&names.service)
        .task_definition(ecs_task_definition(&ecs, &base, &ids[0]).await)
        .desired_count(0)
        .set_tags(Some(tags.map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build()).collect()))
        .send()
        .await
        .unwrap();
    let (code, out, err) = run_script(&["sweep", "--control-plane", &app.url("")], &admin).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.lines().any(|l| l.starts_with(stranger.as_str()) && l.contains("service")), "{out}");
    assert!(!ids.iter().any(|id| out.contains(id.as_str())), "known agents are not orphans: {out}");
    let (code, _, err) =
        run_script(&["sweep", "--control-plane", &app.url("")], &[("TEMPOVOICE_ADMIN_TOKEN", "x".repeat(40))]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("401"), "{err}");
}

/// The task definition agent `id`'s service runs.
async fn ecs_task_definition(
    ecs: &aws_sdk_ecs::Client,
    base: &std::collections::HashMap<String, String>,
    id: &str,
) -> String {
    let service = format!("{}-agent-{id}", base["TEMPOVOICE_PREFIX"]);
    let described =
        ecs.describe_services().cluster(&base["TEMPOVOICE_CLUSTER"]).services(&service).send().await.unwrap();
    described.services()[0].task_definition().unwrap().to_owned()
}
