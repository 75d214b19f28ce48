//! The deployer Lambda: clients and settings once at cold start, then one event per
//! invocation. The event is never logged (it carries the agent's secrets).

use deployer_lambda::event::{DeployerEvent, DeployerResponse};
use deployer_lambda::{AwsClients, DeployError, DeployerSettings};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

#[derive(Debug)]
struct Failure(DeployError);

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Self {
        Diagnostic { error_type: f.0.error_type(), error_message: f.0.to_string() }
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serving::logging::init(serving::logging::LogFormat::Json, std::io::stdout);

    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = sdk.region().map(ToString::to_string).unwrap_or_else(|| "us-east-1".into());
    let settings = DeployerSettings::from_lookup(&region, |k| std::env::var(k).ok())?;
    let clients = AwsClients::new(&sdk, None);
    let (clients, settings) = (&clients, &settings);

    lambda_runtime::run(service_fn(move |event: LambdaEvent<DeployerEvent>| async move {
        let result = deployer_lambda::handle(clients, settings, event.payload).await;
        match &result {
            Ok(_) => tracing::info!("done"),
            Err(e) => tracing::warn!(error_type = %e.error_type(), error = %e, "failed"),
        }
        result.map_err(Failure).map(|r: DeployerResponse| r)
    }))
    .await
}
