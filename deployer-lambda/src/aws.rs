//! The AWS clients, built once (at Lambda cold start) from one `aws-config`
//! `SdkConfig`, with an explicit retry policy and timeouts. `AWS_ENDPOINT_URL`
//! points them all at moto locally; S3 then uses path-style addressing, since
//! bucket subdomains of 127.0.0.1 do not resolve.
//!
//! [`CallRecorder`] is an SDK interceptor that records every operation (service and
//! name). Tests count mutating calls with it, fail a named operation outright, and
//! inject the transient errors AWS really answers ([`crate::faults`]): those are
//! answered on the wire, without the request reaching the server, so the SDK's own
//! retry classification and the deployer's handling both see exactly what AWS would
//! send.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::faults::{FAULT_HEADER, Fault, FaultClient};

/// Attempts per AWS call, the first included, in the SDK's standard retry mode:
/// throttling, 5xx answers, timeouts and connection failures are retried with
/// exponential back-off and full jitter, within the SDK's retry quota. (Adaptive
/// mode was measured too: its client-side rate limiter, shared by every call to a
/// service, stretched a deploy that met two throttles from seconds to over a
/// minute.) What still fails after the last attempt reaches the deployer's own
/// handling (see `docs/deployer.md`).
pub const MAX_ATTEMPTS: u32 = 6;
/// First back-off (doubling, with full jitter) and the longest one.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// TCP connect, one attempt, and one operation with all its retries.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub s3: aws_sdk_s3::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub iam: aws_sdk_iam::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
}

impl AwsClients {
    pub fn new(sdk: &aws_config::SdkConfig, recorder: Option<CallRecorder>) -> Self {
        let local = sdk.endpoint_url().is_some();
        // With a recorder, the HTTP client is wrapped so injected faults are answered
        // on the wire; the SDK's default client when the config names none.
        let http_client = match &recorder {
            Some(r) => {
                let inner = sdk.http_client().unwrap_or_else(|| {
                    use aws_smithy_http_client::tls;
                    aws_smithy_http_client::Builder::new()
                        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
                        .build_https()
                });
                Some(FaultClient::shared(inner, r.clone()))
            }
            None => sdk.http_client(),
        };
        macro_rules! client {
            ($krate:ident $(, $extra:ident($arg:expr))*) => {{
                let mut config = $krate::config::Builder::from(sdk)
                    .retry_config(retry_config())
                    .timeout_config(timeout_config())
                    $(.$extra($arg))*;
                if let Some(c) = &http_client {
                    config = config.http_client(c.clone());
                }
                if let Some(r) = &recorder {
                    config = config.interceptor(r.clone());
                }
                $krate::Client::from_conf(config.build())
            }};
        }
        Self {
            ecs: client!(aws_sdk_ecs),
            elb: client!(aws_sdk_elasticloadbalancingv2),
            s3: client!(aws_sdk_s3, force_path_style(local)),
            ecr: client!(aws_sdk_ecr),
            secrets: client!(aws_sdk_secretsmanager),
            iam: client!(aws_sdk_iam),
            autoscaling: client!(aws_sdk_applicationautoscaling),
        }
    }
}

/// One recorded AWS call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub service: String,
    pub operation: String,
}

impl Call {
    /// Whether the operation changes something (by the AWS naming convention).
    pub fn is_mutating(&self) -> bool {
        const READS: [&str; 4] = ["Describe", "Get", "List", "Head"];
        !READS.iter().any(|p| self.operation.starts_with(p))
    }
}

#[derive(Debug, Default)]
pub(crate) struct RecorderState {
    calls: Vec<Call>,
    /// Every distinct call since the recorder was made: `clear` leaves it.
    seen: std::collections::BTreeSet<Call>,
    fail_operation: Option<String>,
    pub(crate) faults: Vec<Fault>,
    /// Faults answered so far, by operation.
    pub(crate) injected: Vec<Call>,
    /// Answers decided by the interceptor, for the fault client to send.
    pub(crate) answers: crate::faults::Answers,
    /// State of the generator that decides probabilistic faults (xorshift).
    pub(crate) rng: u64,
}

#[derive(Debug, Clone, Default)]
pub struct CallRecorder {
    pub(crate) state: Arc<Mutex<RecorderState>>,
}

impl CallRecorder {
    pub fn new() -> Self {
        let recorder = Self::default();
        recorder.lock().rng = 0x9E37_79B9_7F4A_7C15;
        recorder
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, RecorderState> {
        self.state.lock().expect("recorder lock")
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_mutating).collect()
    }

    pub fn clear(&self) {
        self.lock().calls.clear();
    }

    /// Each distinct call made since the recorder was made, cleared or not: what a
    /// role running these paths needs permission for.
    pub fn calls_ever(&self) -> Vec<Call> {
        self.lock().seen.iter().cloned().collect()
    }

    /// Makes every call of `operation` (e.g. `CreateTargetGroup`) fail until cleared,
    /// before it is sent, with an error that is not AWS's.
    pub fn fail(&self, operation: Option<&str>) {
        self.lock().fail_operation = operation.map(str::to_owned);
    }

    /// Answers matching attempts with a transient AWS error (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Drops every injected fault, and returns the attempts they answered.
    pub fn clear_faults(&self) -> Vec<Call> {
        let mut state = self.lock();
        state.faults.clear();
        std::mem::take(&mut state.injected)
    }

    /// The attempts answered with an injected fault so far.
    pub fn injected(&self) -> Vec<Call> {
        self.lock().injected.clone()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("injected failure of {0}")]
pub struct InjectedFailure(pub String);

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "CallRecorder"
    }

    // Not `read_before_execution`: for interceptors on the client config, that runs
    // before the operation's own configuration (and its `Metadata`) is applied.
    // Once per operation, however often the SDK retries it.
    fn read_before_serialization(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else { return Ok(()) };
        let mut state = self.lock();
        let call = Call { service: meta.service().to_owned(), operation: meta.name().to_owned() };
        state.seen.insert(call.clone());
        state.calls.push(call);
        if state.fail_operation.as_deref() == Some(meta.name()) {
            return Err(Box::new(InjectedFailure(meta.name().to_owned())));
        }
        Ok(())
    }

    // Once per attempt: a fault that matches marks the request, and the fault
    // client answers it in AWS's wire format instead of sending it.
    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else { return Ok(()) };
        let call = Call { service: meta.service().to_owned(), operation: meta.name().to_owned() };
        if let Some(answer) = crate::faults::decide(&mut self.lock(), &call) {
            context.request_mut().headers_mut().insert(FAULT_HEADER, answer.to_string());
        }
        Ok(())
    }
}

/// The IAM actions an AWS call needs: the operation's own (S3's differ in places),
/// plus what its parameters bring: tags on create (`ecs:TagResource`,
/// `elasticloadbalancing:AddTags`, `secretsmanager:TagResource`, `iam:TagRole`,
/// `application-autoscaling:TagResource`) and `iam:PassRole` where a task
/// definition or service hands roles to ECS. Application Auto Scaling also checks,
/// before it acts, that the caller could do what it will do on the caller's behalf:
/// read and update the ECS service, and create, read and delete the target-tracking
/// alarms in CloudWatch; and the first registration in an account creates its
/// service-linked role. The
/// recorder's list of calls, mapped through this, is what the deployer's own role
/// must allow (docs/deployer-iam-actions.json, checked by a test).
pub fn iam_actions(call: &Call) -> Vec<String> {
    let op = call.operation.as_str();
    let prefix = match call.service.as_str() {
        "S3" => "s3",
        "ECS" => "ecs",
        "Elastic Load Balancing v2" => "elasticloadbalancing",
        "Secrets Manager" => "secretsmanager",
        "ECR" => "ecr",
        "IAM" => "iam",
        "Lambda" => "lambda",
        "Application Auto Scaling" => "application-autoscaling",
        other => return vec![format!("{other}:{op}")],
    };
    let own = match (prefix, op) {
        ("s3", "HeadBucket") => vec!["ListBucket"],
        ("s3", "ListBuckets") => vec!["ListAllMyBuckets"],
        ("s3", "ListObjectVersions") => vec!["ListBucketVersions"],
        ("s3", "ListObjectsV2") => vec!["ListBucket"],
        ("lambda", "Invoke") => vec!["InvokeFunction"],
        ("s3", "DeleteObjects") => vec!["DeleteObject", "DeleteObjectVersion"],
        ("s3", "GetPublicAccessBlock") => vec!["GetBucketPublicAccessBlock"],
        ("s3", "PutPublicAccessBlock") => vec!["PutBucketPublicAccessBlock"],
        ("s3", "GetBucketEncryption") => vec!["GetEncryptionConfiguration"],
        ("s3", "PutBucketEncryption") => vec!["PutEncryptionConfiguration"],
        ("s3", "GetBucketLifecycleConfiguration") => vec!["GetLifecycleConfiguration"],
        ("s3", "PutBucketLifecycleConfiguration") => vec!["PutLifecycleConfiguration"],
        ("ecs", "CreateService" | "RegisterTaskDefinition") => vec![op, "TagResource"],
        ("elasticloadbalancing", "CreateTargetGroup" | "CreateRule") => vec![op, "AddTags"],
        ("secretsmanager", "CreateSecret") => vec![op, "TagResource"],
        ("iam", "CreateRole") => vec![op, "TagRole"],
        ("application-autoscaling", "RegisterScalableTarget") => vec![op, "TagResource"],
        _ => vec![op],
    };
    let mut actions: Vec<String> = own.into_iter().map(|a| format!("{prefix}:{a}")).collect();
    if prefix == "ecs" && matches!(op, "RegisterTaskDefinition" | "CreateService" | "UpdateService") {
        actions.push("iam:PassRole".to_owned());
    }
    let checked_for_the_caller: &[&str] = match (prefix, op) {
        ("application-autoscaling", "RegisterScalableTarget") => {
            &["iam:CreateServiceLinkedRole", "ecs:DescribeServices", "ecs:UpdateService"]
        }
        ("application-autoscaling", "PutScalingPolicy") => {
            &["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"]
        }
        ("application-autoscaling", "DeleteScalingPolicy" | "DeregisterScalableTarget") => {
            &["cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"]
        }
        _ => &[],
    };
    actions.extend(checked_for_the_caller.iter().map(|a| (*a).to_owned()));
    actions
}
