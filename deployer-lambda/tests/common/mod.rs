//! Test base on moto server: what Terraform makes in AWS (VPC, subnets, security
//! group, ALB with a listener, ECS cluster, ECR repository holding a runtime image
//! tag), made fresh with unique names for each test, so tests can share one moto
//! server. The server is at AWS_ENDPOINT_URL (scripts/test starts it on 127.0.0.1).

#![allow(dead_code)]

use std::collections::HashMap;

use agent_spec::draft::{AgentDraft, SecretsDraft, TelephonyDraft};
use agent_spec::secrets::SecretPatch;
use agent_spec::{AgentConfig, AgentId, TenantId};
use aws_config::BehaviorVersion;
use deployer_lambda::{AwsClients, CallRecorder, DeployRequest, DeployerSettings, Placement};
use rand::Rng;

pub const REGION: &str = "us-east-1";
pub const IMAGE_TAG: &str = "v1";
/// The test agents' Twilio auth token (distinct from every other test value).
pub const TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";

pub fn unique(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let suffix: String = (0..8).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect();
    format!("{prefix}{suffix}")
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL must point at a moto server (scripts/test starts one): \
         moto_server -H 127.0.0.1 -p 5000 and AWS_ENDPOINT_URL=http://127.0.0.1:5000",
    );
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
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
    pub subnets: Vec<String>,
    pub security_group: String,
}

/// Builds a fresh base and the deployer's clients (with a call recorder) and settings.
pub async fn base() -> Base {
    base_with(|_| {}).await
}

/// The same, with extra or changed deployer settings.
pub async fn base_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> Base {
    let sdk = sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let ecr = aws_sdk_ecr::Client::new(&sdk);

    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await.unwrap();
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
    let mut subnets = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.0.{i}.0/24"))
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().and_then(|s| s.subnet_id()).unwrap().to_owned());
    }
    let sg = ec2
        .create_security_group()
        .group_name(unique("agents-"))
        .description("agent tasks")
        .vpc_id(&vpc_id)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned();
    let lb = elb.create_load_balancer().name(unique("alb-")).set_subnets(Some(subnets.clone())).send().await.unwrap();
    let lb_arn = lb.load_balancers().first().and_then(|l| l.load_balancer_arn()).unwrap().to_owned();
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    aws_sdk_elasticloadbalancingv2::types::FixedResponseActionConfig::builder()
                        .status_code("404")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let listener_arn = listener.listeners().first().and_then(|l| l.listener_arn()).unwrap().to_owned();
    let cluster = unique("cluster-");
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let repository = unique("runtime-");
    ecr.create_repository().repository_name(&repository).send().await.unwrap();
    push_image(&ecr, &repository, IMAGE_TAG).await;

    let map: HashMap<String, String> = [
        ("TEMPOVOICE_PREFIX", unique("t")),
        ("TEMPOVOICE_CLUSTER", cluster),
        ("TEMPOVOICE_VPC_ID", vpc_id),
        ("TEMPOVOICE_SUBNETS", subnets.join(",")),
        ("TEMPOVOICE_SECURITY_GROUPS", sg.clone()),
        ("TEMPOVOICE_EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/tempovoice-execution".into()),
        ("TEMPOVOICE_TASK_ROLE_ARN", "arn:aws:iam::123456789012:role/tempovoice-agent".into()),
        ("TEMPOVOICE_RUNTIME_REPOSITORY", repository),
        ("TEMPOVOICE_RUNTIME_IMAGE_TAG", IMAGE_TAG.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut map = map;
    adjust(&mut map);
    let settings = DeployerSettings::from_map(REGION, &map).unwrap();
    let recorder = CallRecorder::new();
    let clients = AwsClients::new(&sdk, Some(recorder.clone()));
    Base { sdk, clients, recorder, settings, listener_arn, subnets, security_group: sg }
}

/// Pushes a minimal image manifest under `tag`.
pub async fn push_image(ecr: &aws_sdk_ecr::Client, repository: &str, tag: &str) {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                   "digest": format!("sha256:{}", "a".repeat(64))},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                    "digest": format!("sha256:{}", "b".repeat(64))}]
    });
    ecr.put_image()
        .repository_name(repository)
        .image_manifest(manifest.to_string())
        .image_tag(tag)
        .send()
        .await
        .unwrap();
}

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
        placement: Placement { listener_arn: base.listener_arn.clone(), priority },
        image_tag: None,
    }
}
