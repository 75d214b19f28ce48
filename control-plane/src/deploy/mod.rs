//! How the control plane reaches the deployer: the [`Deployer`] trait, with an
//! in-process implementation (the `deployer-lambda` library, called directly) and a
//! Lambda implementation (`aws-sdk-lambda` Invoke of the deployer function). Both
//! speak the deployer's versioned event contract, and both report failures as a
//! [`DeploymentError`] carrying the deployer's `Retryable|NonRetryable.{step}.{code}`.
//!
//! [`worker`] runs queued deployments through a `Deployer`.

pub mod numbers;
pub mod worker;

use std::future::Future;
use std::pin::Pin;

use agent_spec::api::DeploymentError;
use aws_sdk_lambda::primitives::Blob;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use deployer_lambda::event::{DeployerEvent, DeployerResponse};
use deployer_lambda::{AwsClients, DeployError, DeployerSettings};
use serde::Deserialize;

pub type DeployFuture<'a> = Pin<Box<dyn Future<Output = Result<DeployerResponse, DeploymentError>> + Send + 'a>>;

/// Runs one deployer event.
pub trait Deployer: Send + Sync + 'static {
    /// For logs: `in-process` or `lambda:{function}`.
    fn describe(&self) -> String;
    fn invoke(&self, event: DeployerEvent) -> DeployFuture<'_>;
}

/// The deployer library in this process.
pub struct InProcessDeployer {
    clients: AwsClients,
    settings: DeployerSettings,
}

impl InProcessDeployer {
    pub fn new(sdk: &aws_config::SdkConfig, settings: DeployerSettings) -> Self {
        Self { clients: AwsClients::new(sdk, None), settings }
    }

    /// With clients of the caller's making (tests count and fail calls through them).
    pub fn with_clients(clients: AwsClients, settings: DeployerSettings) -> Self {
        Self { clients, settings }
    }
}

impl Deployer for InProcessDeployer {
    fn describe(&self) -> String {
        "in-process".into()
    }

    fn invoke(&self, event: DeployerEvent) -> DeployFuture<'_> {
        Box::pin(
            async move { deployer_lambda::handle(&self.clients, &self.settings, event).await.map_err(from_deploy) },
        )
    }
}

fn from_deploy(e: DeployError) -> DeploymentError {
    DeploymentError {
        error_type: e.error_type(),
        step: Some(e.step.to_string()),
        code: e.code.clone(),
        message: e.message,
        retryable: e.retryable,
    }
}

/// The deployer Lambda, invoked synchronously (`RequestResponse`).
pub struct LambdaDeployer {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaDeployer {
    /// `endpoint`: the Lambda API's, when not AWS's (`AWS_ENDPOINT_URL_LAMBDA`).
    pub fn new(sdk: &aws_config::SdkConfig, function: String, endpoint: Option<&str>) -> Self {
        let mut config = aws_sdk_lambda::config::Builder::from(sdk);
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        // A deploy can take minutes: no SDK-level timeout shorter than the function's.
        let config = config
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(std::time::Duration::from_secs(15 * 60 + 30))
                    .read_timeout(std::time::Duration::from_secs(15 * 60 + 30))
                    .build(),
            )
            .build();
        Self { client: aws_sdk_lambda::Client::from_conf(config), function }
    }
}

/// The body of a function error, as Lambda returns it.
#[derive(Deserialize)]
struct FunctionError {
    #[serde(rename = "errorType", default)]
    error_type: String,
    #[serde(rename = "errorMessage", default)]
    error_message: String,
}

/// Reads the deployer's error type `Retryable.{step}.{code}`. Anything else (a
/// runtime crash, `Sandbox.Timedout`) is treated as retryable: the deployer
/// converges, so running it again is safe.
pub fn from_function_error(error_type: &str, message: &str) -> DeploymentError {
    let mut parts = error_type.splitn(3, '.');
    let (class, step, code) = (parts.next(), parts.next(), parts.next());
    let (retryable, step, code) = match class {
        Some("Retryable") => (true, step, code),
        Some("NonRetryable") => (false, step, code),
        _ => (true, None, None),
    };
    DeploymentError {
        error_type: error_type.to_owned(),
        step: step.map(str::to_owned),
        code: code.map(str::to_owned),
        message: message.to_owned(),
        retryable,
    }
}

impl Deployer for LambdaDeployer {
    fn describe(&self) -> String {
        format!("lambda:{}", self.function)
    }

    fn invoke(&self, event: DeployerEvent) -> DeployFuture<'_> {
        Box::pin(async move {
            let payload = serde_json::to_vec(&event).expect("events serialize");
            let sent = self.client.invoke().function_name(&self.function).payload(Blob::new(payload)).send().await;
            let out = match sent {
                Ok(out) => out,
                Err(err) => {
                    // Some Lambda emulators answer a function error with a 5xx whose
                    // body is the function's error: read it as one.
                    if let Some(body) = err.raw_response().and_then(|r| r.body().bytes()) {
                        if let Ok(f) = serde_json::from_slice::<FunctionError>(body) {
                            if !f.error_type.is_empty() {
                                return Err(from_function_error(&f.error_type, &f.error_message));
                            }
                        }
                    }
                    let code = err.code().map(str::to_owned);
                    let missing = code.as_deref() == Some("ResourceNotFoundException");
                    let message = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
                    return Err(DeploymentError {
                        error_type: format!("{}.invoke{}", if missing { "NonRetryable" } else { "Retryable" }, {
                            code.as_deref().map(|c| format!(".{c}")).unwrap_or_default()
                        }),
                        step: Some("invoke".into()),
                        code,
                        message: if missing {
                            format!(
                                "deployer Lambda {} does not exist (DEPLOYER_LAMBDA_FUNCTION): {message}",
                                self.function
                            )
                        } else {
                            format!("invoking the deployer Lambda {} failed: {message}", self.function)
                        },
                        retryable: !missing,
                    });
                }
            };
            let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
            if out.function_error().is_some() {
                let f: FunctionError = serde_json::from_slice(body).unwrap_or(FunctionError {
                    error_type: out.function_error().unwrap_or_default().to_owned(),
                    error_message: String::from_utf8_lossy(body).into_owned(),
                });
                return Err(from_function_error(&f.error_type, &f.error_message));
            }
            serde_json::from_slice(body).map_err(|e| DeploymentError {
                error_type: "NonRetryable.invoke.BadResponse".into(),
                step: Some("invoke".into()),
                code: None,
                message: format!("the deployer Lambda answered something that is not a deployer response: {e}"),
                retryable: false,
            })
        })
    }
}

/// The SDK configuration for `region`, talking to `endpoint` when set (moto).
pub async fn sdk_config(region: &str, endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(region.to_owned()));
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_error_types_are_read() {
        let e = from_function_error("Retryable.bucket.SlowDown", "slow down");
        assert!(e.retryable);
        assert_eq!((e.step.as_deref(), e.code.as_deref()), (Some("bucket"), Some("SlowDown")));
        let e = from_function_error("NonRetryable.validate", "bad");
        assert!(!e.retryable);
        assert_eq!((e.step.as_deref(), e.code), (Some("validate"), None));
        let e = from_function_error("Sandbox.Timedout", "Task timed out");
        assert!(e.retryable && e.step.is_none());
    }
}
