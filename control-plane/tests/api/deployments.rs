//! Deployments end to end, against moto on 127.0.0.1 (AWS_ENDPOINT_URL): the AWS base
//! comes from `scripts/bootstrap-local` (as the README's run command makes it), the
//! deployer runs in process, and agents are followed through the API from create to
//! teardown. Also: restart resumption, retries, placement limits, transcripts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agent_spec::api::DeploymentError;
use control_plane::deploy::{DeployFuture, Deployer, InProcessDeployer};
use deployer_lambda::DeployerSettings;
use deployer_lambda::event::DeployerEvent;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant, agent_body, error_of};

/// A fresh AWS base on moto, as settings variables (unique names per test), made by
/// `scripts/bootstrap-local` as the README's run command makes it.
pub fn aws_base(listeners: usize, capacity: u32) -> HashMap<String, String> {
    test_support::aws_base('t', &test_support::BaseOptions { listeners, capacity, ..Default::default() })
}

/// Settings for an app deploying in process onto `base`.
fn deploying(base: &HashMap<String, String>) -> impl FnOnce(&mut HashMap<String, String>) + '_ {
    move |vars| {
        vars.extend(base.clone());
        vars.insert("TEMPOVOICE_DEPLOYER".into(), "in-process".into());
        vars.insert("TEMPOVOICE_DEPLOY_RETRY_SECS".into(), "0".into());
    }
}

async fn sdk() -> aws_config::SdkConfig {
    control_plane::deploy::sdk_config("us-east-1", std::env::var("AWS_ENDPOINT_URL").ok().as_deref()).await
}

fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build())
}

/// The whole record of a deployment, as the operator sees it on the admin API.
async fn admin_view(app: &TestApp, tenant: &TestTenant, agent: &str, deployment: &str) -> Value {
    let path = format!("/v1/admin/tenants/{}/agents/{agent}/deployments/{deployment}", tenant.id);
    let res = app.admin(Method::GET, &path, None).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

async fn get_json(app: &TestApp, tenant: &TestTenant, path: &str) -> (u16, Value) {
    let res = app.request(Method::GET, path, Some(&tenant.key)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Polls the deployment until it ends (active, failed, deleted); panics after 90 s.
async fn wait_done(app: &TestApp, tenant: &TestTenant, agent: &str, deployment: &str) -> Value {
    let path = format!("/v1/agents/{agent}/deployments/{deployment}");
    for _ in 0..900 {
        let (status, body) = get_json(app, tenant, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        if matches!(body["status"].as_str(), Some("active" | "failed" | "deleted")) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deployment {deployment} did not finish in 90 s");
}

fn resource_actions(deployment: &Value) -> HashMap<String, String> {
    deployment["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap().to_owned(), r["action"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn an_agent_is_deployed_updated_and_torn_down_through_the_api() {
    let base = aws_base(1, 95);
    let app = TestApp::spawn_with(|vars| {
        deploying(&base)(vars);
        test_support::with_public_host(vars, "voice.example.com");
    })
    .await;
    let tenant = app.new_tenant("Rosa's Bakery").await;

    // `deploy=false` stores the agent only.
    let res = app
        .request(Method::POST, "/v1/agents?deploy=false", Some(&tenant.key))
        .json(&agent_body("Draft"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let draft: Value = res.json().await.unwrap();
    assert!(draft["deployment"].is_null(), "{draft:#}");

    // Create: 202, the agent with its queued deployment and voice URL.
    let res = app.create_agent(&tenant, &agent_body("Front desk")).await;
    assert_eq!(res.status(), 202);
    assert!(res.headers().get("location").is_some());
    let agent: Value = res.json().await.unwrap();
    let id = agent["id"].as_str().unwrap().to_owned();
    // The voice URL comes from the listener the agent is placed on, at its first deploy.
    assert_eq!(agent["voice_url"], Value::Null, "not placed yet: {agent:#}");
    assert_eq!(agent["deployment"]["action"], "deploy");
    let first = agent["deployment"]["id"].as_str().unwrap().to_owned();

    let done = wait_done(&app, &tenant, &id, &first).await;
    assert_eq!(done["status"], "active", "{done:#}");
    assert_eq!(done["deployed_version"], 1);
    assert_eq!(done["attempts"], 1);
    let actions = resource_actions(&done);
    assert_eq!(actions.len(), 8, "{actions:?}");
    assert!(actions.values().all(|a| a == "created"), "{actions:?}");
    // The tenant sees resources by name; ARNs (the platform's account id, its role
    // names) are the operator's.
    for r in done["resources"].as_array().unwrap() {
        assert!(r["arn"].is_null() && r["name"].as_str().is_some(), "{r}");
    }
    assert!(!done.to_string().contains("arn:aws:"), "{done:#}");
    let whole = admin_view(&app, &tenant, &id, &first).await;
    for r in whole["resources"].as_array().unwrap() {
        assert!(r["arn"].as_str().is_some_and(|a| a.starts_with("arn:aws:")), "{r}");
    }
    // A tenant cannot read it there.
    let res = app
        .request(
            Method::GET,
            &format!("/v1/admin/tenants/{}/agents/{id}/deployments/{first}", tenant.id),
            Some(&tenant.key),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let kinds: Vec<&str> = done["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"queued"));
    assert_eq!(kinds.last(), Some(&"succeeded"));
    // Eight AWS resources, then the agent's Twilio number (not pointed: configure_number is off here).
    assert_eq!(kinds.iter().filter(|k| **k == "resource").count(), 9, "{kinds:?}");
    let (_, shown) = get_json(&app, &tenant, &format!("/v1/agents/{id}")).await;
    assert_eq!(shown["deployment"]["status"], "active");
    assert_eq!(shown["voice_url"], format!("https://voice.example.com/agent/{id}/incoming-call"));
    // The image it runs, pinned by digest, as the deployment put it in place.
    assert!(done["image"].as_str().is_some_and(|i| i.contains("@sha256:")), "{done:#}");
    assert_eq!(shown["runtime_image"], done["image"]);

    // The service exists in the cluster the base made, on the listener it made.
    let sdk = sdk().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let services = ecs.list_services().cluster(&base["TEMPOVOICE_CLUSTER"]).send().await.unwrap();
    assert!(services.service_arns().iter().any(|a| a.contains(&id)), "{services:?}");

    // Update: a new deployment that changes only the task definition and the service.
    let mut body = agent_body("Front desk");
    body["system_prompt"] = json!("You answer the phone for Rosa's Bakery. Mention the sourdough.");
    body.as_object_mut().unwrap().remove("secrets"); // kept as stored
    let res = app
        .request(Method::PUT, &format!("/v1/agents/{id}"), Some(&tenant.key))
        .header("If-Match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let updated: Value = res.json().await.unwrap();
    let second = updated["deployment"]["id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let done = wait_done(&app, &tenant, &id, &second).await;
    assert_eq!(done["status"], "active", "{done:#}");
    assert_eq!(done["deployed_version"], 2);
    let actions = resource_actions(&done);
    assert_eq!(actions["task_definition"], "updated");
    assert_eq!(actions["service"], "updated");
    for kind in ["bucket", "secret", "task_role", "target_group", "listener_rule"] {
        assert_eq!(actions[kind], "unchanged", "{kind}: {actions:?}");
    }

    // A redeploy through POST …/deployments changes nothing.
    let res =
        app.request(Method::POST, &format!("/v1/agents/{id}/deployments"), Some(&tenant.key)).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let redeploy: Value = res.json().await.unwrap();
    let done = wait_done(&app, &tenant, &id, redeploy["id"].as_str().unwrap()).await;
    assert!(resource_actions(&done).values().all(|a| a == "unchanged"), "{done:#}");

    // The list shows all three, newest first.
    let (_, page) = get_json(&app, &tenant, &format!("/v1/agents/{id}/deployments?limit=2")).await;
    let listed: Vec<&str> = page["deployments"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [redeploy["id"].as_str().unwrap(), second.as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = get_json(&app, &tenant, &format!("/v1/agents/{id}/deployments?cursor={cursor}")).await;
    assert_eq!(rest["deployments"][0]["id"], first.as_str());

    // Another tenant sees none of it.
    let other = app.new_tenant("Other").await;
    for path in [format!("/v1/agents/{id}/deployments/{first}"), format!("/v1/agents/{id}/deployments")] {
        let (status, code, ..) =
            error_of(app.request(Method::GET, &path, Some(&other.key)).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "{path}");
    }
    let res =
        app.request(Method::POST, &format!("/v1/agents/{id}/deployments"), Some(&other.key)).send().await.unwrap();
    assert_eq!(res.status(), 404);

    // Delete: 202 with the teardown; the bucket is kept; the deployment stays readable.
    let res = app.request(Method::DELETE, &format!("/v1/agents/{id}"), Some(&tenant.key)).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let teardown: Value = res.json().await.unwrap();
    assert_eq!(teardown["action"], "delete");
    let done = wait_done(&app, &tenant, &id, teardown["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "deleted", "{done:#}");
    let actions = resource_actions(&done);
    assert_eq!(actions["bucket"], "retained");
    for kind in ["secret", "task_role", "target_group", "task_definition", "listener_rule", "service"] {
        assert_eq!(actions[kind], "deleted", "{kind}: {actions:?}");
    }
    let (status, _) = get_json(&app, &tenant, &format!("/v1/agents/{id}")).await;
    assert_eq!(status, 404);
    let (status, _) = get_json(&app, &tenant, &format!("/v1/agents/{id}/deployments")).await;
    assert_eq!(status, 200, "a deleted agent's deployments stay readable");
}

#[tokio::test]
async fn a_tenant_over_its_listener_slot_quota_cannot_deploy_another_agent() {
    let base = aws_base(1, 95);
    let app = TestApp::spawn_with(|vars| {
        deploying(&base)(vars);
        vars.insert("TEMPOVOICE_TENANT_MAX_LISTENER_SLOTS".into(), "1".into());
    })
    .await;
    let tenant = app.new_tenant("t").await;
    let other = app.new_tenant("u").await;
    let first: Value = app.create_agent(&tenant, &agent_body("One")).await.json().await.unwrap();
    let done =
        wait_done(&app, &tenant, first["id"].as_str().unwrap(), first["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "active", "{done:#}");

    // A second deployed agent would take a second slot: refused before it is stored.
    let (status, code, fields, body) = error_of(app.create_agent(&tenant, &agent_body("Two")).await).await;
    assert_eq!((status, code.as_str(), fields), (422, "quota_exceeded", vec!["deploy".to_owned()]), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("1 of 1 listener slots in use"), "{body}");
    // Stored without deploying, then asked to deploy: refused too.
    let res = app
        .request(Method::POST, "/v1/agents?deploy=false", Some(&tenant.key))
        .json(&agent_body("Two"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let second: Value = res.json().await.unwrap();
    let path = format!("/v1/agents/{}/deployments", second["id"].as_str().unwrap());
    let (status, code, ..) = error_of(app.request(Method::POST, &path, Some(&tenant.key)).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (422, "quota_exceeded"));
    // The deployed agent may be deployed again; another tenant deploys its own.
    let again = format!("/v1/agents/{}/deployments", first["id"].as_str().unwrap());
    assert_eq!(app.request(Method::POST, &again, Some(&tenant.key)).send().await.unwrap().status(), 202);
    let theirs: Value = app.create_agent(&other, &agent_body("Theirs")).await.json().await.unwrap();
    let done =
        wait_done(&app, &other, theirs["id"].as_str().unwrap(), theirs["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "active", "{done:#}");
}

#[tokio::test]
async fn a_full_listener_fails_the_deployment_clearly_and_a_delete_frees_its_slot() {
    let base = aws_base(1, 1);
    let app = TestApp::spawn_with(deploying(&base)).await;
    let tenant = app.new_tenant("t").await;

    let first: Value = app.create_agent(&tenant, &agent_body("One")).await.json().await.unwrap();
    let first_id = first["id"].as_str().unwrap();
    let done = wait_done(&app, &tenant, first_id, first["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "active", "{done:#}");

    let second: Value = app.create_agent(&tenant, &agent_body("Two")).await.json().await.unwrap();
    let second_id = second["id"].as_str().unwrap();
    let done = wait_done(&app, &tenant, second_id, second["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["attempts"], 1, "not retried: waiting will not make room");
    assert_eq!(done["error"]["code"], "no_capacity");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("no_capacity") && !message.contains("TEMPOVOICE_LISTENERS"), "{message}");
    let whole = admin_view(&app, &tenant, second_id, second["deployment"]["id"].as_str().unwrap()).await;
    let message = whole["error"]["message"].as_str().unwrap();
    assert!(message.contains("every listener is full") && message.contains("TEMPOVOICE_LISTENERS"), "{message}");
    assert!(done["resources"].as_array().unwrap().is_empty(), "nothing was created");

    // Deleting the first (with its transcripts) frees the slot; the second then deploys.
    let res = app
        .request(Method::DELETE, &format!("/v1/agents/{first_id}?purge_transcripts=true"), Some(&tenant.key))
        .send()
        .await
        .unwrap();
    let teardown: Value = res.json().await.unwrap();
    assert_eq!(teardown["purge_transcripts"], true);
    let done = wait_done(&app, &tenant, first_id, teardown["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "deleted");
    assert_eq!(resource_actions(&done)["bucket"], "deleted", "{done:#}");
    let res = app
        .request(Method::POST, &format!("/v1/agents/{second_id}/deployments"), Some(&tenant.key))
        .send()
        .await
        .unwrap();
    let again: Value = res.json().await.unwrap();
    let done = wait_done(&app, &tenant, second_id, again["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "active", "{done:#}");
}

#[tokio::test]
async fn an_agent_on_the_second_load_balancer_gets_that_load_balancers_voice_url() {
    let base = aws_base(2, 1);
    let hosts: Vec<String> =
        base["TEMPOVOICE_LISTENERS"].split(',').map(|entry| entry.rsplit_once('@').unwrap().1.to_owned()).collect();
    assert_eq!(hosts.len(), 2);
    assert_ne!(hosts[0], hosts[1]);
    let app = TestApp::spawn_with(deploying(&base)).await;
    let tenant = app.new_tenant("t").await;
    let ecs = aws_sdk_ecs::Client::new(&sdk().await);
    for (i, name) in ["One", "Two"].iter().enumerate() {
        let agent: Value = app.create_agent(&tenant, &agent_body(name)).await.json().await.unwrap();
        let id = agent["id"].as_str().unwrap();
        let done = wait_done(&app, &tenant, id, agent["deployment"]["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "active", "{done:#}");
        let (_, shown) = get_json(&app, &tenant, &format!("/v1/agents/{id}")).await;
        assert_eq!(shown["voice_url"], format!("https://{}/agent/{id}/incoming-call", hosts[i]), "agent {name}");

        // Its runtime checks Twilio's signatures against that same host.
        let family = format!("{}-agent-{id}", base["TEMPOVOICE_PREFIX"]);
        let td = ecs.describe_task_definition().task_definition(&family).send().await.unwrap();
        let env = td.task_definition().unwrap().container_definitions()[0].environment().to_vec();
        let host = env.iter().find(|kv| kv.name() == Some("TEMPOVOICE_PUBLIC_HOST")).and_then(|kv| kv.value());
        assert_eq!(host, Some(hosts[i].as_str()), "agent {name}");
    }
}

/// The in-process deployer, failing its first `failures` invocations as given.
struct Flaky {
    inner: InProcessDeployer,
    failures: AtomicUsize,
    error: DeploymentError,
    /// Invocations that never return (a hung or dying process).
    hang: bool,
}

impl Deployer for Flaky {
    fn describe(&self) -> String {
        "flaky".into()
    }

    fn invoke(&self, event: DeployerEvent) -> DeployFuture<'_> {
        Box::pin(async move {
            if self.hang {
                std::future::pending::<()>().await;
            }
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Err(self.error.clone());
            }
            self.inner.invoke(event).await
        })
    }
}

async fn flaky(base: &HashMap<String, String>, failures: usize, retryable: bool, hang: bool) -> Arc<dyn Deployer> {
    let settings = DeployerSettings::from_map("us-east-1", base).unwrap();
    let clients = deployer_lambda::AwsClients::new(&sdk().await, None);
    let class = if retryable { "Retryable" } else { "NonRetryable" };
    Arc::new(Flaky {
        inner: InProcessDeployer::with_clients(clients, settings),
        failures: AtomicUsize::new(failures),
        error: DeploymentError {
            error_type: format!("{class}.target_group.Throttling"),
            step: Some("target_group".into()),
            code: Some("Throttling".into()),
            message: "Rate exceeded".into(),
            retryable,
        },
        hang,
    })
}

async fn spawn_with_deployer(vars: impl FnOnce(&mut HashMap<String, String>), deployer: Arc<dyn Deployer>) -> TestApp {
    TestApp::spawn_full(vars, Some(deployer)).await
}

#[tokio::test]
async fn retryable_failures_are_retried_and_others_fail_at_once() {
    let base = aws_base(1, 95);
    let app = spawn_with_deployer(deploying(&base), flaky(&base, 2, true, false).await).await;
    let tenant = app.new_tenant("t").await;
    let agent: Value = app.create_agent(&tenant, &agent_body("A")).await.json().await.unwrap();
    let id = agent["id"].as_str().unwrap();
    let done = wait_done(&app, &tenant, id, agent["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "active", "{done:#}");
    assert_eq!(done["attempts"], 3);
    let retries: Vec<&Value> = done["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "retry").collect();
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[0]["step"], "target_group");
    // The tenant reads the step and AWS's error code, not AWS's words.
    let said = retries[0]["message"].as_str().unwrap();
    assert!(said.contains("AWS answered Throttling") && !said.contains("Rate exceeded"), "{said}");

    let app = spawn_with_deployer(deploying(&base), flaky(&base, 1, false, false).await).await;
    let tenant = app.new_tenant("t").await;
    let agent: Value = app.create_agent(&tenant, &agent_body("B")).await.json().await.unwrap();
    let id = agent["id"].as_str().unwrap();
    let done = wait_done(&app, &tenant, id, agent["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["error"]["error_type"], "NonRetryable.target_group.Throttling");
    assert_eq!(done["error"]["step"], "target_group");
    let whole = admin_view(&app, &tenant, id, agent["deployment"]["id"].as_str().unwrap()).await;
    assert!(whole["error"]["message"].as_str().unwrap().contains("Rate exceeded"), "{whole:#}");
    assert!(!done["error"]["message"].as_str().unwrap().contains("Rate exceeded"), "{done:#}");

    // A deployer-side refusal: the runtime image tag does not exist; nothing is made.
    let mut missing_image = base.clone();
    missing_image.insert("TEMPOVOICE_RUNTIME_IMAGE_TAG".into(), "no-such-tag".into());
    let app = TestApp::spawn_with(deploying(&missing_image)).await;
    let tenant = app.new_tenant("t").await;
    let agent: Value = app.create_agent(&tenant, &agent_body("C")).await.json().await.unwrap();
    let id = agent["id"].as_str().unwrap();
    let done = wait_done(&app, &tenant, id, agent["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["error_type"], "NonRetryable.runtime_image.ImageNotFoundException");
    assert!(done["error"]["message"].as_str().unwrap().contains("ImageNotFoundException"), "{done:#}");
    let whole = admin_view(&app, &tenant, id, agent["deployment"]["id"].as_str().unwrap()).await;
    assert!(whole["error"]["message"].as_str().unwrap().contains("no-such-tag"), "{whole:#}");
}

#[tokio::test]
async fn deployments_survive_a_restart_and_a_crash() {
    let base = aws_base(1, 95);
    let data = tempfile::tempdir().unwrap();
    let db = crate::helpers::fresh_database(data.path()).await;
    let secrets_key = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";
    let shared = |vars: &mut HashMap<String, String>| {
        deploying(&base)(vars);
        vars.insert("DATABASE_URL".into(), db.clone());
        vars.insert("TEMPOVOICE_SECRETS_KEY".into(), secrets_key.into());
        vars.insert("TEMPOVOICE_SHUTDOWN_GRACE_SECS".into(), "1".into());
        vars.insert("TEMPOVOICE_DEPLOY_LEASE_SECS".into(), "5".into());
    };

    // A replica that takes no deployments queues one, and stops.
    let first = TestApp::spawn_with(|vars| {
        shared(vars);
        vars.insert("TEMPOVOICE_DEPLOY_WORKERS".into(), "0".into());
    })
    .await;
    let tenant = first.new_tenant("t").await;
    let agent: Value = first.create_agent(&tenant, &agent_body("A")).await.json().await.unwrap();
    let id = agent["id"].as_str().unwrap().to_owned();
    let queued = agent["deployment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(agent["deployment"]["status"], "pending");
    first.stop().await;

    // A replica whose deployer hangs is stopped gracefully: the deployment is handed
    // back as pending, its interrupted attempt not counted.
    let hung = spawn_with_deployer(shared, flaky(&base, 0, true, true).await).await;
    let path = format!("/v1/agents/{id}/deployments/{queued}");
    for _ in 0..100 {
        if get_json(&hung, &tenant, &path).await.1["status"] == "provisioning" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get_json(&hung, &tenant, &path).await.1["status"], "provisioning");
    hung.stop().await;

    // A replica that dies mid-deployment (no graceful stop) leaves a lease that expires.
    let crashed = spawn_with_deployer(shared, flaky(&base, 0, true, true).await).await;
    for _ in 0..100 {
        if get_json(&crashed, &tenant, &path).await.1["status"] == "provisioning" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    crashed.server.abort();

    // The next replica finishes it: at once for nothing, after the lease for the crash.
    let last = TestApp::spawn_with(shared).await;
    let done = wait_done(&last, &tenant, &id, &queued).await;
    assert_eq!(done["status"], "active", "{done:#}");
    // The handed-back attempt is not counted: the crashed one and the last one are.
    assert_eq!(done["attempts"], 2, "{done:#}");
    assert_eq!(resource_actions(&done).len(), 8);
}

#[tokio::test]
async fn transcripts_are_read_from_the_agents_bucket() {
    let base = aws_base(1, 95);
    let app = TestApp::spawn_with(deploying(&base)).await;
    let tenant = app.new_tenant("t").await;
    let agent: Value = app.create_agent(&tenant, &agent_body("A")).await.json().await.unwrap();
    let id = agent["id"].as_str().unwrap().to_owned();
    let done = wait_done(&app, &tenant, &id, agent["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "active", "{done:#}");
    let bucket = done["resources"].as_array().unwrap().iter().find(|r| r["kind"] == "bucket").unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();

    // No calls yet.
    let (status, page) = get_json(&app, &tenant, &format!("/v1/agents/{id}/calls")).await;
    assert_eq!((status, page["calls"].as_array().unwrap().len()), (200, 0));

    // Three calls, as the runtime writes them, one after another: their files, and a
    // line each in the task's index segment.
    let s3 = s3(&sdk().await);
    let sids: Vec<String> = (0..3).map(|i| format!("CA{:032x}", 0xabc0 + i)).collect();
    let mut index = String::new();
    // Today, early: every call starts and ends today (UTC).
    let base = time::OffsetDateTime::now_utc().replace_time(time::macros::time!(00:01));
    let at = |i: i64, secs: i64| {
        agent_spec::api::timestamp::format(base + time::Duration::minutes(i) + time::Duration::seconds(secs)).unwrap()
    };
    for (i, sid) in sids.iter().enumerate() {
        let metadata = json!({
            "call_sid": sid, "started_at": at(i as i64, 0), "duration_secs": 30.5 + i as f64,
            "from": "+14155550123", "to": "+14155550100", "end_reason": "caller_hung_up"
        });
        let transcript = json!({ "call_sid": sid, "turns": [{ "role": "agent", "text": format!("Hello {i}") }] });
        for (file, body) in [
            ("transcript.json", transcript.to_string().into_bytes()),
            ("recording.wav", format!("RIFF-fake-wav-{i}").into_bytes()),
            ("metadata.json", metadata.to_string().into_bytes()),
        ] {
            s3.put_object().bucket(&bucket).key(format!("calls/{sid}/{file}")).body(body.into()).send().await.unwrap();
        }
        let mut line = metadata.clone();
        line["ended_at"] = json!(at(i as i64, 30));
        if i == 1 {
            line["end_reason"] = json!("transferred");
        }
        index.push_str(&format!("{line}\n"));
    }
    let key = agent_spec::calls::index_key(time::OffsetDateTime::now_utc().date(), "tdeadbeef", 0);
    s3.put_object().bucket(&bucket).key(key).body(index.into_bytes().into()).send().await.unwrap();

    // The empty listing read above is reused for up to 2 s (LIST_TTL).
    let mut page = Value::Null;
    for _ in 0..50 {
        page = get_json(&app, &tenant, &format!("/v1/agents/{id}/calls?limit=2")).await.1;
        if !page["calls"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed: Vec<&str> = page["calls"].as_array().unwrap().iter().map(|c| c["call_sid"].as_str().unwrap()).collect();
    assert_eq!(listed, [sids[2].as_str(), sids[1].as_str()], "newest first");
    assert_eq!(page["calls"][0]["duration_secs"], 32.5);
    assert_eq!(page["calls"][0]["from"], "+14155550123");
    assert_eq!(page["calls"][0]["started_at"], at(2, 0).as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = get_json(&app, &tenant, &format!("/v1/agents/{id}/calls?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["calls"].as_array().unwrap().len(), 1);
    assert_eq!(rest["calls"][0]["call_sid"], sids[0].as_str());
    assert!(rest["next_cursor"].is_null());

    // At a glance: the day's three calls, their durations, one transferred.
    let (status, stats) = get_json(&app, &tenant, &format!("/v1/agents/{id}/calls/stats?days=7")).await;
    assert_eq!((status, stats["days"].as_array().unwrap().len(), stats["calls"].as_u64()), (200, 7, Some(3)));
    let day = at(0, 0)[..10].to_owned();
    let today = stats["days"].as_array().unwrap().iter().find(|d| d["date"] == day.as_str()).unwrap();
    assert_eq!((today["calls"].as_u64(), today["by_end_reason"]["transferred"].as_u64()), (Some(3), Some(1)));
    assert_eq!((stats["median_duration_secs"].as_f64(), stats["p90_duration_secs"].as_f64()), (Some(31.5), Some(32.5)));
    assert!((stats["transferred_share"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(stats["voicemail_share"].as_f64(), Some(0.0));
    for bad in ["days=0", "days=91", "days=x", "weeks=2"] {
        let (status, ..) = error_of(
            app.request(Method::GET, &format!("/v1/agents/{id}/calls/stats?{bad}"), Some(&tenant.key))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 422, "{bad}");
    }

    let call = &sids[1];
    let (status, transcript) = get_json(&app, &tenant, &format!("/v1/agents/{id}/calls/{call}/transcript")).await;
    assert_eq!((status, transcript["turns"][0]["text"].as_str()), (200, Some("Hello 1")));
    let (status, metadata) = get_json(&app, &tenant, &format!("/v1/agents/{id}/calls/{call}/metadata")).await;
    assert_eq!((status, metadata["end_reason"].as_str()), (200, Some("caller_hung_up")));
    let res = app
        .request(Method::GET, &format!("/v1/agents/{id}/calls/{call}/recording"), Some(&tenant.key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "audio/wav");
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"RIFF-fake-wav-1");

    // Bad sids are refused before any key is built; unknown ones are 404.
    for bad in
        ["CA..%2F..%2Fsecret", "CAXYZ", "ca0123456789abcdef0123456789abcdef", "CA0123456789ABCDEF0123456789ABCDEF"]
    {
        let (status, code, fields, _) = error_of(
            app.request(Method::GET, &format!("/v1/agents/{id}/calls/{bad}/transcript"), Some(&tenant.key))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, code.as_str(), fields), (422, "invalid_request", vec!["callSid".to_owned()]), "{bad}");
    }
    let unknown = format!("CA{:032x}", 1);
    for file in ["transcript", "metadata", "recording"] {
        let (status, ..) = error_of(
            app.request(Method::GET, &format!("/v1/agents/{id}/calls/{unknown}/{file}"), Some(&tenant.key))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{file}");
    }

    // Another tenant: 404 for the list and every artifact.
    let other = app.new_tenant("Other").await;
    for path in [
        format!("/v1/agents/{id}/calls"),
        format!("/v1/agents/{id}/calls/{call}/transcript"),
        format!("/v1/agents/{id}/calls/{call}/metadata"),
        format!("/v1/agents/{id}/calls/{call}/recording"),
    ] {
        let (status, code, ..) =
            error_of(app.request(Method::GET, &path, Some(&other.key)).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "{path}");
    }
}

#[tokio::test]
async fn with_the_deployer_off_agents_are_stored_only() {
    let app = TestApp::spawn().await;
    let tenant = app.new_tenant("t").await;
    let agent = app.new_agent(&tenant, "A").await;
    assert!(agent["deployment"].is_null() && agent["voice_url"].is_null());
    let id = agent["id"].as_str().unwrap();
    for (method, path) in
        [(Method::POST, format!("/v1/agents/{id}/deployments")), (Method::GET, format!("/v1/agents/{id}/calls"))]
    {
        let (status, code, ..) = error_of(app.request(method, &path, Some(&tenant.key)).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (503, "deployer_off"), "{path}");
    }
    let res = app.request(Method::DELETE, &format!("/v1/agents/{id}"), Some(&tenant.key)).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (status, _, fields, _) = error_of(
        app.request(Method::DELETE, &format!("/v1/agents/{id}?deploy=maybe"), Some(&tenant.key)).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, fields), (422, vec!["deploy".to_owned()]));
}

#[tokio::test]
async fn unreachable_aws_fails_deployments_after_their_attempts_and_calls_with_502() {
    let base = aws_base(1, 95);
    // Nothing listens on this port: every AWS call fails to connect.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let app = TestApp::spawn_with(|vars| {
        deploying(&base)(vars);
        vars.insert("AWS_ENDPOINT_URL".into(), format!("http://{dead}"));
        vars.insert("TEMPOVOICE_DEPLOY_MAX_ATTEMPTS".into(), "2".into());
    })
    .await;
    let tenant = app.new_tenant("t").await;
    let agent: Value = app.create_agent(&tenant, &agent_body("A")).await.json().await.unwrap();
    let id = agent["id"].as_str().unwrap();

    // No answer is retryable: retried once, then failed with the step that could not reach AWS.
    let done = wait_done(&app, &tenant, id, agent["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(done["attempts"], 2, "{done:#}");
    assert_eq!(done["error"]["retryable"], true, "{done:#}");
    assert!(done["error"]["error_type"].as_str().unwrap().starts_with("Retryable."), "{done:#}");
    assert!(done["resources"].as_array().unwrap().is_empty());

    // Reading calls: S3 does not answer → 502, never a 200 with an empty list.
    let (status, code, ..) =
        error_of(app.request(Method::GET, &format!("/v1/agents/{id}/calls"), Some(&tenant.key)).send().await.unwrap())
            .await;
    assert_eq!((status, code.as_str()), (502, "upstream"));
    let call = format!("CA{:032x}", 7);
    let (status, code, ..) = error_of(
        app.request(Method::GET, &format!("/v1/agents/{id}/calls/{call}/transcript"), Some(&tenant.key))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (502, "upstream"));
}

/// Polls the deployment until it has `status`; panics after 60 s.
async fn wait_status(app: &TestApp, tenant: &TestTenant, agent: &str, deployment: &str, status: &str) -> Value {
    let path = format!("/v1/agents/{agent}/deployments/{deployment}");
    for _ in 0..600 {
        let (_, body) = get_json(app, tenant, &path).await;
        if body["status"] == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deployment {deployment} never reached {status}");
}

#[tokio::test]
async fn a_deploy_rolls_out_until_ecs_reports_it_healthy_and_fails_when_it_never_is() {
    use deployer_lambda::CallRecorder;
    use deployer_lambda::faults::Fault;

    let base = aws_base(1, 95);
    let recorder = CallRecorder::new();
    let clients = deployer_lambda::AwsClients::new(&sdk().await, Some(recorder.clone()));
    let settings = DeployerSettings::from_map("us-east-1", &base).unwrap();
    let deployer: Arc<dyn Deployer> = Arc::new(InProcessDeployer::with_clients(clients, settings));
    let vars = |v: &mut HashMap<String, String>| {
        deploying(&base)(v);
        v.insert("TEMPOVOICE_ROLLOUT_CHECK".into(), "ecs".into());
        v.insert("TEMPOVOICE_ROLLOUT_POLL_SECS".into(), "1".into());
        v.insert("TEMPOVOICE_ROLLOUT_TIMEOUT_SECS".into(), "10".into());
    };
    let app = spawn_with_deployer(vars, deployer).await;
    let tenant = app.new_tenant("t").await;
    let res = app.create_agent(&tenant, &agent_body("Front desk")).await;
    assert_eq!(res.status(), 202);
    let agent: Value = res.json().await.unwrap();
    let id = agent["id"].as_str().unwrap().to_owned();
    let first = agent["deployment"]["id"].as_str().unwrap().to_owned();

    // AWS accepted everything; moto reports no rollout state, so it stays rolling out.
    let rolling = wait_status(&app, &tenant, &id, &first, "rolling_out").await;
    let (_, shown) = get_json(&app, &tenant, &format!("/v1/agents/{id}")).await;
    assert_eq!(shown["deployment"]["status"], "rolling_out");
    let whole = admin_view(&app, &tenant, &id, &first).await;
    assert_eq!(whole["status"], rolling["status"]);
    let arn = |kind: &str| {
        whole["resources"].as_array().unwrap().iter().find(|r| r["kind"] == kind).unwrap()["arn"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let td = arn("task_definition");

    // ECS completes the rollout and the target is healthy: active.
    let services = json!({"services": [{
        "serviceArn": arn("service"), "serviceName": "svc", "status": "ACTIVE",
        "desiredCount": 1, "runningCount": 1, "pendingCount": 0, "taskDefinition": td,
        "loadBalancers": [{"targetGroupArn": arn("target_group"), "containerName": "agent-runtime", "containerPort": 8080}],
        "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": td, "desiredCount": 1,
                          "runningCount": 1, "pendingCount": 0, "rolloutState": "COMPLETED",
                          "rolloutStateReason": "ECS deployment ecs-svc/1 completed."}]
    }], "failures": []});
    let targets = "<DescribeTargetHealthResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
        <DescribeTargetHealthResult><TargetHealthDescriptions><member><Target><Id>10.0.1.9</Id><Port>8080</Port></Target>\
        <TargetHealth><State>healthy</State></TargetHealth></member></TargetHealthDescriptions>\
        </DescribeTargetHealthResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>\
        </DescribeTargetHealthResponse>";
    recorder.inject(Fault::reply("DescribeServices", services.to_string(), 1));
    recorder.inject(Fault::reply("DescribeTargetHealth", targets, 1));
    let done = wait_done(&app, &tenant, &id, &first).await;
    assert_eq!(done["status"], "active", "{done:#}");
    let kinds: Vec<&str> = done["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"rolling_out") && kinds.last() == Some(&"succeeded"), "{kinds:?}");
    assert_eq!(done["attempts"], 1, "looking at a rollout is not another attempt: {done:#}");
    // Once healthy, the number step runs (here with configure_number off: it says so).
    let number = done["events"].as_array().unwrap().iter().find(|e| e["step"] == "twilio_number").expect("number step");
    assert!(number["message"].as_str().unwrap().contains("configure_number is off"), "{number}");
    recorder.clear_faults();

    // A change that never gets healthy: failed when the rollout timeout passes.
    let mut body = agent_body("Front desk");
    body["system_prompt"] = json!("You answer the phone for Rosa's Bakery. Mention the rye.");
    body.as_object_mut().unwrap().remove("secrets");
    let res = app
        .request(Method::PUT, &format!("/v1/agents/{id}"), Some(&tenant.key))
        .header("If-Match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let updated: Value = res.json().await.unwrap();
    let second = updated["deployment"]["id"].as_str().unwrap().to_owned();
    let failed = wait_done(&app, &tenant, &id, &second).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["error"]["code"], "RolloutTimeout", "{failed:#}");
    assert!(failed["error"]["message"].as_str().unwrap().contains("within the rollout timeout"), "{failed:#}");
    let whole = admin_view(&app, &tenant, &id, &second).await;
    assert!(whole["error"]["message"].as_str().unwrap().contains("TEMPOVOICE_ROLLOUT_TIMEOUT_SECS"), "{whole:#}");
}

/// `POST /v1/admin/sweep`: the deployer hears of every agent the database knows, so
/// only an agent whose row is gone while its resources stay is reported; nothing is
/// deleted; an AWS failure under it answers 502.
#[tokio::test]
async fn the_admin_sweep_reports_only_agents_the_database_no_longer_knows() {
    use deployer_lambda::CallRecorder;

    let base = aws_base(1, 95);
    let recorder = CallRecorder::new();
    let clients = deployer_lambda::AwsClients::new(&sdk().await, Some(recorder.clone()));
    let settings = DeployerSettings::from_map("us-east-1", &base).unwrap();
    let deployer: Arc<dyn Deployer> = Arc::new(InProcessDeployer::with_clients(clients, settings));
    let app = spawn_with_deployer(deploying(&base), deployer).await;
    let tenant = app.new_tenant("t").await;
    let mut ids = Vec::new();
    for name in ["Kept", "Lost"] {
        let agent: Value = app.create_agent(&tenant, &agent_body(name)).await.json().await.unwrap();
        let id = agent["id"].as_str().unwrap().to_owned();
        let done = wait_done(&app, &tenant, &id, agent["deployment"]["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "active", "{done:#}");
        ids.push(id);
    }
    let sweep = || app.admin(Method::POST, "/v1/admin/sweep", None);

    let res = sweep().await;
    assert_eq!(res.status(), 200);
    let clean: Value = res.json().await.unwrap();
    assert_eq!(clean["orphans"], json!([]), "{clean:#}");

    // The second agent's teardown fails for good (ECS refuses to delete its service):
    // the database forgets the agent, its resources stay in AWS.
    recorder.fail(Some("DeleteService"));
    let res = app.request(Method::DELETE, &format!("/v1/agents/{}", ids[1]), Some(&tenant.key)).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let teardown: Value = res.json().await.unwrap();
    let done = wait_done(&app, &tenant, &ids[1], teardown["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    recorder.fail(None);
    recorder.clear();
    let report: Value = sweep().await.json().await.unwrap();
    let orphans: Vec<&str> =
        report["orphans"].as_array().unwrap().iter().map(|o| o["agent_id"].as_str().unwrap()).collect();
    assert_eq!(orphans, [ids[1].as_str()], "{report:#}");
    assert_eq!(recorder.mutating_calls(), [], "a dry run deletes nothing");

    // AWS failing under the sweep: 502, told as such.
    recorder.fail(Some("ListServices"));
    let (status, code, ..) = error_of(sweep().await).await;
    assert_eq!((status, code.as_str()), (502, "upstream"));
    recorder.fail(None);
}
