//! Fault injection for tests and benchmarks: AWS's real transient errors, answered
//! in each service's own wire format (S3's REST XML, the query protocol's
//! `ErrorResponse` for ELB and IAM, `__type` JSON for ECS, ECR and Secrets Manager)
//! instead of sending the request. The SDK parses them into the same modeled errors
//! AWS would produce, and its retry policy classifies them as it would in
//! production: throttling and 5xx are retried by the SDK, the others reach the
//! deployer.
//!
//! The [`crate::CallRecorder`] interceptor decides, once per attempt, whether a
//! [`Fault`] matches; [`FaultClient`] (wrapping the real HTTP client) answers the
//! attempts it marked.

use std::collections::HashMap;
use std::fmt;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use crate::aws::{Call, CallRecorder, RecorderState};

/// The request header that marks an attempt to be answered with a fault. It is
/// added after signing and never leaves the process.
pub(crate) const FAULT_HEADER: &str = "x-tempovoice-injected-fault";

/// A transient error AWS answers, and the situation it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// S3 409 `OperationAborted`: a conflicting operation on the bucket is in
    /// progress (typical right after CreateBucket, and under concurrent config PUTs).
    OperationAborted,
    /// S3 404 `NoSuchBucket` for a bucket just created: not yet visible everywhere.
    NoSuchBucket,
    /// ECS `InvalidParameterException` on CreateService: a service of that name was
    /// deleted and is still DRAINING.
    ServiceDraining,
    /// ECS `InvalidParameterException` on CreateService: the listener rule that
    /// attaches the target group to the load balancer was just created and ECS does
    /// not see it yet.
    TargetGroupNotAssociated,
    /// Secrets Manager `InvalidRequestException` right after RestoreSecret: the
    /// restore is not yet visible.
    SecretScheduledForDeletion,
    /// The service's throttling error (`ThrottlingException`, ELB's and IAM's
    /// `Throttling`, S3's 503 `SlowDown`).
    Throttling,
    /// A 500 (`InternalError`, `InternalFailure`, `ServerException`, …).
    ServerError,
    /// A 503 `ServiceUnavailable`.
    Unavailable,
    /// Application Auto Scaling `ConcurrentUpdateException`: a change to the same
    /// scalable target is still being applied.
    AutoscalingBusy,
    /// Application Auto Scaling `ValidationException` on RegisterScalableTarget: the
    /// ECS service just created is not visible to it yet.
    ServiceNotYetScalable,
    /// Application Auto Scaling `ObjectNotFoundException` on PutScalingPolicy: the
    /// scalable target just registered is not visible yet.
    ScalableTargetNotYetVisible,
    /// Application Auto Scaling `ValidationException` on RegisterScalableTarget with
    /// tags: the target exists already (a concurrent deploy, or an attempt that timed
    /// out after AWS took it), and tags are only for creating one.
    ScalableTargetTagsOnExisting,
}

/// How many matching attempts a fault answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Times {
    /// The next `n` matching attempts.
    Count(u32),
    /// Each matching attempt with this probability (0 to 1), from a fixed-seed generator.
    Rate(f64),
}

/// What an injected answer says.
#[derive(Debug, Clone, PartialEq)]
pub enum Injected {
    /// AWS's error, in the service's wire format.
    Error(Transient),
    /// A successful answer with this body, in the service's wire format (JSON for
    /// ECS, the query protocol's XML for ELB): a state moto cannot reach, such as an
    /// ECS deployment in progress or a healthy target.
    Reply(String),
    /// An answer with this status, these headers and no body: what HeadBucket
    /// answers (403 for a bucket it may not see, 301 with `x-amz-bucket-region`
    /// for one in another region).
    Status { status: u16, headers: Vec<(String, String)> },
}

/// Answers matching attempts with an [`Injected`] answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The operation (`CreateBucket`); every operation when `None`.
    pub operation: Option<String>,
    /// The service (`S3`, `ECS`, `Elastic Load Balancing v2`, `Secrets Manager`,
    /// `ECR`, `IAM`); every service when `None`.
    pub service: Option<String>,
    pub answer: Injected,
    pub times: Times,
}

impl Fault {
    /// The next `n` attempts of `operation` fail with `error`.
    pub fn times(operation: &str, error: Transient, n: u32) -> Self {
        Self {
            operation: Some(operation.to_owned()),
            service: None,
            answer: Injected::Error(error),
            times: Times::Count(n),
        }
    }

    /// The next `n` attempts of `operation` succeed with `body`.
    pub fn reply(operation: &str, body: impl Into<String>, n: u32) -> Self {
        Self {
            operation: Some(operation.to_owned()),
            service: None,
            answer: Injected::Reply(body.into()),
            times: Times::Count(n),
        }
    }

    /// The next attempt of `operation` fails with `error`.
    pub fn once(operation: &str, error: Transient) -> Self {
        Self::times(operation, error, 1)
    }

    /// The next `n` attempts of `operation` are answered with `status` and `headers`
    /// and no body.
    pub fn status(operation: &str, status: u16, headers: &[(&str, &str)], n: u32) -> Self {
        Self {
            operation: Some(operation.to_owned()),
            service: None,
            answer: Injected::Status {
                status,
                headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            },
            times: Times::Count(n),
        }
    }

    /// Every attempt of any operation (of `service`, if given) fails with `error`
    /// with probability `rate`.
    pub fn rate(service: Option<&str>, error: Transient, rate: f64) -> Self {
        Self {
            operation: None,
            service: service.map(str::to_owned),
            answer: Injected::Error(error),
            times: Times::Rate(rate),
        }
    }

    fn matches(&self, call: &Call) -> bool {
        self.operation.as_deref().is_none_or(|o| o == call.operation)
            && self.service.as_deref().is_none_or(|s| s == call.service)
    }
}

/// An HTTP answer in a service's wire format.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    headers: Vec<(String, String)>,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    RestXml,
    Query,
    Json,
}

fn protocol(service: &str) -> Protocol {
    match service {
        "S3" => Protocol::RestXml,
        "Elastic Load Balancing v2" | "IAM" => Protocol::Query,
        _ => Protocol::Json,
    }
}

/// Status, code and message AWS answers `error` with, in `service`.
fn wire(error: Transient, service: &str) -> (u16, &'static str, &'static str) {
    use Protocol::*;
    use Transient::*;
    let p = protocol(service);
    match (error, p) {
        (OperationAborted, _) => (
            409,
            "OperationAborted",
            "A conflicting conditional operation is currently in progress against this resource. Please try again.",
        ),
        (NoSuchBucket, _) => (404, "NoSuchBucket", "The specified bucket does not exist"),
        (ServiceDraining, _) => (400, "InvalidParameterException", "Unable to Start a service that is still Draining."),
        (TargetGroupNotAssociated, _) => (
            400,
            "InvalidParameterException",
            "The target group with targetGroupArn does not have an associated load balancer.",
        ),
        (SecretScheduledForDeletion, _) => (
            400,
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion.",
        ),
        (Throttling, RestXml) => (503, "SlowDown", "Please reduce your request rate."),
        (Throttling, Query) => (400, "Throttling", "Rate exceeded"),
        (Throttling, Json) => (400, "ThrottlingException", "Rate exceeded"),
        (ServerError, RestXml) => (500, "InternalError", "We encountered an internal error. Please try again."),
        (ServerError, Query) => {
            (500, "InternalFailure", "The request processing has failed because of an unknown error.")
        }
        (ServerError, Json) => (500, "ServerException", "Server error"),
        (Unavailable, Json) => (503, "ServiceUnavailableException", "Service unavailable"),
        (AutoscalingBusy, _) => (
            400,
            "ConcurrentUpdateException",
            "You already have a pending update to an Application Auto Scaling resource.",
        ),
        (ServiceNotYetScalable, _) => (400, "ValidationException", "ECS service doesn't exist: service/injected"),
        (ScalableTargetNotYetVisible, _) => (400, "ObjectNotFoundException", "No scalable target registered"),
        (ScalableTargetTagsOnExisting, _) => (
            400,
            "ValidationException",
            "The scalable target that you tried to tag already exists. To update tags on an existing scalable \
             target, use the TagResource API.",
        ),
        (Unavailable, _) => (503, "ServiceUnavailable", "Service is unable to handle request."),
    }
}

fn answer(error: Transient, service: &str, request_id: u64) -> Answer {
    let (status, code, message) = wire(error, service);
    let id = format!("injected-{request_id:08x}");
    match protocol(service) {
        Protocol::RestXml => Answer {
            status,
            content_type: "application/xml",
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
                 <RequestId>{id}</RequestId><HostId>{id}</HostId></Error>"
            ),
            headers: Vec::new(),
        },
        Protocol::Query => Answer {
            status,
            content_type: "text/xml",
            body: format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>{id}</RequestId></ErrorResponse>",
                if status >= 500 { "Receiver" } else { "Sender" }
            ),
            headers: Vec::new(),
        },
        Protocol::Json => Answer {
            status,
            content_type: "application/x-amz-json-1.1",
            body: serde_json::json!({ "__type": code, "message": message }).to_string(),
            headers: Vec::new(),
        },
    }
}

/// Whether a fault answers this attempt of `call`: the answer's id, kept in
/// `state` for the client to take.
pub(crate) fn decide(state: &mut RecorderState, call: &Call) -> Option<u64> {
    let mut chosen = None;
    for i in 0..state.faults.len() {
        if !state.faults[i].matches(call) {
            continue;
        }
        let hit = match state.faults[i].times {
            Times::Count(0) => false,
            Times::Count(n) => {
                state.faults[i].times = Times::Count(n - 1);
                true
            }
            Times::Rate(rate) => {
                // xorshift64*: reproducible from the fixed seed.
                state.rng ^= state.rng >> 12;
                state.rng ^= state.rng << 25;
                state.rng ^= state.rng >> 27;
                let draw = state.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
                (draw as f64 / (1u64 << 53) as f64) < rate
            }
        };
        if hit {
            chosen = Some(state.faults[i].answer.clone());
            break;
        }
    }
    let injected = chosen?;
    state.injected.push(call.clone());
    let id = state.injected.len() as u64;
    let reply = match injected {
        Injected::Error(error) => answer(error, &call.service, id),
        Injected::Reply(body) => Answer {
            status: 200,
            content_type: match protocol(&call.service) {
                Protocol::Json => "application/x-amz-json-1.1",
                Protocol::Query => "text/xml",
                Protocol::RestXml => "application/xml",
            },
            body,
            headers: Vec::new(),
        },
        Injected::Status { status, headers } => {
            Answer { status, content_type: "application/xml", body: String::new(), headers }
        }
    };
    state.answers.insert(id, reply);
    Some(id)
}

/// The real HTTP client, answering marked attempts itself.
#[derive(Debug)]
pub(crate) struct FaultClient {
    inner: SharedHttpClient,
    recorder: CallRecorder,
}

impl FaultClient {
    pub(crate) fn shared(inner: SharedHttpClient, recorder: CallRecorder) -> SharedHttpClient {
        SharedHttpClient::new(Self { inner, recorder })
    }
}

impl HttpClient for FaultClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultConnector {
            inner: self.inner.http_connector(settings, components),
            recorder: self.recorder.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultConnector {
    inner: SharedHttpConnector,
    recorder: CallRecorder,
}

impl HttpConnector for FaultConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let marked = request.headers().get(FAULT_HEADER).and_then(|v| v.parse::<u64>().ok());
        let Some(answer) = marked.and_then(|id| self.recorder.lock().answers.remove(&id)) else {
            return self.inner.call(request);
        };
        let mut response =
            HttpResponse::new(StatusCode::try_from(answer.status).expect("a valid status"), SdkBody::from(answer.body));
        response.headers_mut().insert("content-type", answer.content_type);
        response.headers_mut().insert("x-amzn-requestid", "injected");
        for (k, v) in answer.headers {
            response.headers_mut().insert(k, v);
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}

/// Answers kept between the interceptor's decision and the connector's reply.
pub(crate) type Answers = HashMap<u64, Answer>;
