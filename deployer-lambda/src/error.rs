//! [`DeployError`]: what went wrong, at which step, with the AWS error code, and
//! whether retrying the same request can succeed. The Lambda reports it as the
//! invocation's error type `Retryable.{step}.{code}` or `NonRetryable.{step}.{code}`.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

/// A provisioning step, named in errors and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Validate,
    RuntimeImage,
    Bucket,
    Secret,
    TaskRole,
    TargetGroup,
    TaskDefinition,
    ListenerRule,
    Service,
    Autoscaling,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::RuntimeImage => "runtime_image",
            Self::Bucket => "bucket",
            Self::Secret => "secret",
            Self::TaskRole => "task_role",
            Self::TargetGroup => "target_group",
            Self::TaskDefinition => "task_definition",
            Self::ListenerRule => "listener_rule",
            Self::Service => "service",
            Self::Autoscaling => "autoscaling",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{step}: {message}")]
pub struct DeployError {
    pub step: Step,
    /// The AWS error code (`AccessDenied`, `PriorityInUse`, …), if AWS answered.
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
}

/// AWS error codes that mean "try again later" (or "someone else just did it").
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "ServerException",
    "RequestTimeout",
    "PriorityInUse",
    "ResourceInUse",
    "OperationAborted",
    "ConflictException",
    // A concurrent deploy of the same agent created the resource between this deploy's
    // look and its create: the next attempt finds it and converges.
    "DuplicateTargetGroupName",
    "ResourceExistsException",
    // Application Auto Scaling: another change to the same target is in progress.
    "ConcurrentUpdateException",
    "InternalServiceException",
];

impl DeployError {
    /// Input the deployer cannot accept: nothing was created.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { step: Step::Validate, code: None, message: message.into(), retryable: false }
    }

    pub fn new(step: Step, code: Option<&str>, message: impl Into<String>, retryable: bool) -> Self {
        Self { step, code: code.map(str::to_owned), message: message.into(), retryable }
    }

    /// Classifies an SDK error: no answer (timeout, connection) and throttling or
    /// server-side codes are retryable; everything else is not.
    pub fn aws<E, R>(step: Step, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let no_answer =
            matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_));
        let code = err.code().map(str::to_owned);
        let message = match err.message() {
            Some(m) => m.to_owned(),
            None => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        };
        let retryable = no_answer || code.as_deref().is_some_and(|c| RETRYABLE_CODES.contains(&c));
        Self { step, code, message, retryable }
    }

    /// The Lambda error type: `Retryable.bucket.SlowDown`, `NonRetryable.validate`.
    pub fn error_type(&self) -> String {
        let class = if self.retryable { "Retryable" } else { "NonRetryable" };
        match &self.code {
            Some(code) => format!("{class}.{}.{code}", self.step),
            None => format!("{class}.{}", self.step),
        }
    }
}

/// The error code of an SDK error, for "does not exist" checks.
pub fn code_of<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.code()
}
