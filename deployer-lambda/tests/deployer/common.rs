//! Test base on moto server: what Terraform makes in AWS (VPC, subnets, security
//! group, ALB with a listener, ECS cluster, ECR repository holding a runtime image
//! tag, roles, log group), made by `scripts/bootstrap-local` fresh under a unique
//! prefix for each test, so tests can share one moto server. The server is at
//! AWS_ENDPOINT_URL (scripts/test starts it on 127.0.0.1).

#![allow(dead_code)]

use std::collections::HashMap;

use agent_spec::draft::{AgentDraft, SecretsDraft, TelephonyDraft};
use agent_spec::secrets::SecretPatch;
use agent_spec::{AgentConfig, AgentId, TenantId};
use aws_config::BehaviorVersion;
use deployer_lambda::{AwsClients, CallRecorder, DeployRequest, DeployerSettings, Placement};
use test_support::BaseOptions;

pub const REGION: &str = "us-east-1";
pub const IMAGE_TAG: &str = "v1";
/// The test agents' Twilio auth token (distinct from every other test value).
pub const TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", test_support::random_token(8))
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(test_support::aws_endpoint())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

pub struct Base {
    pub sdk: aws_config::SdkConfig,
    pub clients: AwsClients,
    pub recorder: CallRecorder,
    pub settings: DeployerSettings,
    pub listener_arn: String,
    /// The host the listener's ALB answers on (its DNS name).
    pub public_host: String,
    /// Every listener (one per ALB) with its host; the first is `listener_arn`.
    pub listeners: Vec<(String, String)>,
    pub subnets: Vec<String>,
    pub security_group: String,
}

/// Builds a fresh base and the deployer's clients (with a call recorder) and settings.
pub async fn base() -> Base {
    base_with(|_| {}).await
}

/// The same, with extra or changed deployer settings.
pub async fn base_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> Base {
    base_full(1, adjust).await
}

/// A base with `listeners` load balancers.
pub async fn base_full(listeners: usize, adjust: impl FnOnce(&mut HashMap<String, String>)) -> Base {
    let sdk = sdk_config().await;
    let options = BaseOptions { image_tag: IMAGE_TAG.into(), listeners, ..BaseOptions::default() };
    let mut map = tokio::task::spawn_blocking(move || test_support::aws_base('d', &options)).await.unwrap();
    // bootstrap-local turns the TLS-only bucket policy off for the platform on moto
    // (moto evaluates Deny statements without their conditions); the deployer's own
    // tests check the policy it writes, so they keep the production default.
    map.remove("TEMPOVOICE_TRANSCRIPTS_TLS_ONLY");
    // `arn=capacity@host`
    let listener_arn = map["TEMPOVOICE_LISTENERS"].split_once('=').map(|(arn, _)| arn.to_owned()).unwrap();
    let listeners: Vec<(String, String)> = map["TEMPOVOICE_LISTENERS"]
        .split(',')
        .map(|entry| {
            let (arn_capacity, host) = entry.rsplit_once('@').unwrap();
            (arn_capacity.split_once('=').unwrap().0.to_owned(), host.to_owned())
        })
        .collect();
    let public_host = listeners[0].1.clone();
    let subnets = map["TEMPOVOICE_SUBNETS"].split(',').map(str::to_owned).collect();
    let security_group = map["TEMPOVOICE_SECURITY_GROUPS"].clone();
    adjust(&mut map);
    let settings = DeployerSettings::from_map(REGION, &map).unwrap();
    let recorder = CallRecorder::new();
    let clients = AwsClients::new(&sdk, Some(recorder.clone()));
    Base { sdk, clients, recorder, settings, listener_arn, public_host, listeners, subnets, security_group }
}

pub use test_support::push_image;

pub fn config() -> AgentConfig {
    agent_draft().validate(None).unwrap().0
}

pub fn agent_draft() -> AgentDraft {
    AgentDraft {
        name: "Front desk".into(),
        system_prompt: "You answer calls for Rosa's Bakery.".into(),
        telephony: TelephonyDraft {
            call_phone_number: "+14155550100".into(),
            twilio_account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            ..Default::default()
        },
        secrets: secrets(TOKEN),
        ..Default::default()
    }
}

pub fn secrets(token: &str) -> SecretsDraft {
    SecretsDraft { twilio_auth_token: SecretPatch::set(token), ..Default::default() }
}

pub fn request(base: &Base, agent: &AgentId, tenant: &TenantId, priority: u32) -> DeployRequest {
    DeployRequest {
        agent_id: agent.clone(),
        tenant_id: tenant.clone(),
        config: config(),
        secrets: secrets(TOKEN),
        placement: Placement {
            listener_arn: base.listener_arn.clone(),
            priority,
            public_host: Some(base.public_host.clone()),
            control_plane_url: None,
        },
        image_tag: None,
    }
}

/// Every call `base`'s recorder has seen needs only actions the deployer's policy
/// grants (docs/deployer-iam-actions.json, which the IAM test holds the policy to):
/// the fault paths — retries, waits, restores — need nothing the main paths do not.
pub fn assert_calls_are_documented(base: &Base) {
    let doc = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/deployer-iam-actions.json");
    let documented: std::collections::BTreeSet<String> =
        serde_json::from_str::<Vec<String>>(&std::fs::read_to_string(doc).unwrap()).unwrap().into_iter().collect();
    let needed: std::collections::BTreeSet<String> =
        base.recorder.calls_ever().iter().flat_map(deployer_lambda::aws::iam_actions).collect();
    let missing: Vec<&String> = needed.difference(&documented).collect();
    assert!(missing.is_empty(), "these paths need IAM actions the deployer's policy does not grant: {missing:?}");
}

/// The agent's scalable target and scaling policy in the local AWS, as Application
/// Auto Scaling describes them (each filtered to the agent's service).
pub async fn autoscaling_of(
    base: &Base,
    names: &deployer_lambda::naming::AgentNames,
) -> (
    Option<aws_sdk_applicationautoscaling::types::ScalableTarget>,
    Option<aws_sdk_applicationautoscaling::types::ScalingPolicy>,
) {
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let id = deployer_lambda::resources::scaling::resource_id(&base.settings.cluster, &names.service);
    let aas = aws_sdk_applicationautoscaling::Client::new(&base.sdk);
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&id)
        .send()
        .await
        .unwrap();
    let policies =
        aas.describe_scaling_policies().service_namespace(ServiceNamespace::Ecs).resource_id(&id).send().await.unwrap();
    (
        targets.scalable_targets().iter().find(|t| t.resource_id() == id).cloned(),
        policies.scaling_policies().iter().find(|p| p.resource_id() == id).cloned(),
    )
}
