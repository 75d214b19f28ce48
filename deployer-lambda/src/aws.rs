//! The AWS clients, built once (at Lambda cold start) from one `aws-config`
//! `SdkConfig`. `AWS_ENDPOINT_URL` points them all at moto locally; S3 then uses
//! path-style addressing, since bucket subdomains of 127.0.0.1 do not resolve.
//!
//! [`CallRecorder`] is an SDK interceptor that records every operation (service and
//! name) and can fail a named one: tests count mutating calls with it and inject
//! faults at each step.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub s3: aws_sdk_s3::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    pub fn new(sdk: &aws_config::SdkConfig, recorder: Option<CallRecorder>) -> Self {
        let local = sdk.endpoint_url().is_some();
        macro_rules! client {
            ($krate:ident) => {{
                let mut config = $krate::config::Builder::from(sdk);
                if let Some(r) = &recorder {
                    config = config.interceptor(r.clone());
                }
                $krate::Client::from_conf(config.build())
            }};
        }
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(local);
        if let Some(r) = &recorder {
            s3 = s3.interceptor(r.clone());
        }
        Self {
            ecs: client!(aws_sdk_ecs),
            elb: client!(aws_sdk_elasticloadbalancingv2),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            ecr: client!(aws_sdk_ecr),
            secrets: client!(aws_sdk_secretsmanager),
        }
    }
}

/// One recorded AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
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
struct RecorderState {
    calls: Vec<Call>,
    fail_operation: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CallRecorder {
    state: Arc<Mutex<RecorderState>>,
}

impl CallRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("recorder lock").calls.clone()
    }

    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_mutating).collect()
    }

    pub fn clear(&self) {
        self.state.lock().expect("recorder lock").calls.clear();
    }

    /// Makes every call of `operation` (e.g. `CreateTargetGroup`) fail until cleared.
    pub fn fail(&self, operation: Option<&str>) {
        self.state.lock().expect("recorder lock").fail_operation = operation.map(str::to_owned);
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
    fn read_before_serialization(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else { return Ok(()) };
        let mut state = self.state.lock().expect("recorder lock");
        state.calls.push(Call { service: meta.service().to_owned(), operation: meta.name().to_owned() });
        if state.fail_operation.as_deref() == Some(meta.name()) {
            return Err(Box::new(InjectedFailure(meta.name().to_owned())));
        }
        Ok(())
    }
}
