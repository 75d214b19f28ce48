//! Deployment workers: take due deployments from the database with a lease, run
//! them through the [`Deployer`], and record the outcome, resource by resource.
//!
//! - The lease is renewed while a deployment runs; a replica that dies leaves its
//!   deployments to be taken again once their lease expires.
//! - On shutdown, a running deployment gets the grace period to finish; after that
//!   it is handed back as pending, so the next start resumes it at once.
//! - Retryable failures go back to pending with exponential back-off until the
//!   attempts run out; others fail at once, with the deployer's step and AWS code.
//! - A deploy gets (or keeps) the agent's listener slot first; a delete frees the
//!   slot only once the teardown succeeded.
//! - A deploy AWS accepted is `rolling_out`: it is looked at every poll interval
//!   (the deployer's `health`) until ECS reports the rollout complete with healthy
//!   targets (`active`), the circuit breaker fails it, or the rollout timeout passes
//!   (`failed`, with ECS's reason).

use std::sync::Arc;
use std::time::Duration;

use agent_spec::api::{DeployedResource, DeploymentAction, DeploymentError, DeploymentStatus};
use agent_spec::draft::SecretsDraft;
use deployer_lambda::event::{Action, DeployerEvent, EVENT_VERSION, Outcome};
use deployer_lambda::health::{HealthRequest, Stage};
use deployer_lambda::provision::{DeleteRequest, DeployRequest, Placement as DeployPlacement};
use deployer_lambda::report::ResourceReport;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Deployer;
use super::numbers::{self, Numbers, Target};
use crate::db::now_ms;
use crate::settings::{DeploySettings, Settings};
use crate::store::deployments::{Completion, Deployment, NewEvent};
use crate::store::{Store, StoreError};
use crate::twilio::TwilioApi;

/// How often an idle worker looks for due deployments (a new deployment in this
/// process wakes it at once).
const POLL: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The workers' shared parts.
#[derive(Clone)]
pub struct Workers {
    store: Store,
    deployer: Arc<dyn Deployer>,
    settings: Arc<Settings>,
    /// Poked when this process queues a deployment.
    wake: Arc<Notify>,
    /// This process, as a lease owner.
    owner: Arc<str>,
    /// Twilio's numbers API, for `telephony.configure_number` (`None`: off).
    twilio: Option<TwilioApi>,
}

impl Workers {
    pub fn new(store: Store, deployer: Arc<dyn Deployer>, settings: Arc<Settings>, wake: Arc<Notify>) -> Self {
        let owner = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        let twilio = settings.twilio_api_base.as_deref().map(TwilioApi::new);
        Self { store, deployer, settings, wake, owner: owner.into(), twilio }
    }

    fn policy(&self) -> &DeploySettings {
        &self.settings.deploy
    }

    /// Starts the configured number of workers; they stop when `stop` is cancelled
    /// (each finishing or handing back its deployment within `grace`).
    pub fn spawn(self, stop: CancellationToken, grace: Duration) -> JoinSet<()> {
        let mut set = JoinSet::new();
        tracing::info!(workers = self.policy().workers, deployer = %self.deployer.describe(), "deployment workers starting");
        for _ in 0..self.policy().workers {
            let me = self.clone();
            let stop = stop.clone();
            set.spawn(async move { me.run(stop, grace).await });
        }
        set
    }

    async fn run(self, stop: CancellationToken, grace: Duration) {
        while !stop.is_cancelled() {
            let lease_until = now_ms() + self.policy().lease.as_millis() as i64;
            match self.store.claim_deployment(&self.owner, lease_until).await {
                Ok(Some(deployment)) => self.run_one(deployment, &stop, grace).await,
                Ok(None) => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(POLL) => {}
                        () = stop.cancelled() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not take a deployment; trying again shortly");
                    tokio::select! {
                        () = tokio::time::sleep(POLL * 4) => {}
                        () = stop.cancelled() => {}
                    }
                }
            }
        }
    }

    /// One attempt at `deployment`, with its lease renewed meanwhile.
    async fn run_one(&self, deployment: Deployment, stop: &CancellationToken, grace: Duration) {
        let span = tracing::info_span!(
            "deployment",
            deployment_id = %deployment.id,
            agent_id = %deployment.agent_id,
            tenant_id = %deployment.tenant_id,
            action = ?deployment.action,
            attempt = deployment.attempts,
        );
        let lease_lost = CancellationToken::new();
        let heartbeat = AbortOnDrop({
            let (store, id, owner, lease, lost) = (
                self.store.clone(),
                deployment.id.clone(),
                self.owner.clone(),
                self.policy().lease,
                lease_lost.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match store.renew_deployment_lease(&id, &owner, now_ms() + lease.as_millis() as i64).await {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.cancel();
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "could not renew the deployment lease"),
                    }
                }
            })
        });

        let attempt = self.attempt(&deployment).instrument(span.clone());
        tokio::pin!(attempt);
        let completion = tokio::select! {
            c = &mut attempt => Some(c),
            () = lease_lost.cancelled() => {
                tracing::warn!(parent: &span, "lease lost to another worker: abandoning this attempt");
                None
            }
            () = stop.cancelled() => match tokio::time::timeout(grace, &mut attempt).await {
                Ok(c) => Some(c),
                Err(_) => {
                    drop(heartbeat);
                    match self.store.release_deployment(&deployment.id, &self.owner).await {
                        Ok(_) => tracing::info!(parent: &span, "stopping: deployment handed back as pending"),
                        Err(e) => tracing::warn!(parent: &span, error = %e, "stopping: could not hand the deployment back; it resumes when its lease expires"),
                    }
                    return;
                }
            },
        };
        drop(heartbeat);
        let Some(completion) = completion else { return };
        match self.store.complete_deployment(&deployment, &self.owner, completion).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(parent: &span, "lease lost before the outcome was recorded"),
            Err(e) => tracing::error!(parent: &span, error = %e, "could not record the deployment's outcome"),
        }
    }

    /// Runs the deployment once and says how it ended (recording its events).
    async fn attempt(&self, d: &Deployment) -> Completion {
        if d.status == DeploymentStatus::RollingOut {
            return self.watch(d).await;
        }
        let started = match d.action {
            DeploymentAction::Deploy => format!("provisioning (attempt {})", d.attempts),
            DeploymentAction::Delete => format!("deleting (attempt {})", d.attempts),
        };
        self.event(d, "started", None, started).await;
        let result = match d.action {
            DeploymentAction::Deploy => self.deploy(d).await,
            DeploymentAction::Delete => self.delete(d).await,
        };
        match result {
            Ok((deployed_version, reports, image)) => {
                for r in &reports {
                    // The name, not the ARN: events are the tenant's to read, and an
                    // ARN names the platform's account.
                    let mut message = format!("{} {}", action_name(r), r.name);
                    if !r.changes.is_empty() {
                        message.push_str(&format!(" ({})", r.changes.join(", ")));
                    }
                    self.event(d, "resource", Some(kind_name(r)), message).await;
                }
                let resources: Vec<DeployedResource> = reports.iter().map(resource).collect();
                if d.action == DeploymentAction::Deploy && self.policy().rollout_check {
                    let timeout = self.policy().rollout_timeout;
                    let message = format!(
                        "AWS accepted every change; waiting for ECS to report the rollout complete with healthy \
                         targets (at most {} s)",
                        timeout.as_secs()
                    );
                    self.event(d, "rolling_out", None, message).await;
                    tracing::info!(deployment_id = %d.id, agent_id = %d.agent_id, "deployment rolling out");
                    let now = now_ms();
                    return Completion::RollingOut {
                        deployed_version,
                        resources,
                        image,
                        not_before: now + self.policy().rollout_poll.as_millis() as i64,
                        deadline: now + timeout.as_millis() as i64,
                    };
                }
                if d.action == DeploymentAction::Deploy {
                    if let Err(error) = self.activate(d).await {
                        return self.failed_attempt(d, error).await;
                    }
                }
                let done = match d.action {
                    DeploymentAction::Deploy => "active (rollout not checked: TEMPOVOICE_ROLLOUT_CHECK=off)",
                    DeploymentAction::Delete => "deleted",
                };
                self.event(d, "succeeded", None, done.to_owned()).await;
                tracing::info!(deployment_id = %d.id, agent_id = %d.agent_id, "deployment {done}");
                Completion::Succeeded { deployed_version, resources, image }
            }
            Err(error) => self.failed_attempt(d, error).await,
        }
    }

    /// An attempt that failed: another one after a back-off while it is worth it and
    /// attempts remain, else failed for good.
    async fn failed_attempt(&self, d: &Deployment, error: DeploymentError) -> Completion {
        if error.retryable && d.attempts < self.policy().max_attempts {
            let backoff = backoff(self.policy().retry_base, d.attempts);
            let message = format!(
                "attempt {} failed: {} in {} s ({} of {} attempts used)",
                d.attempts,
                tenant_message(&error),
                backoff.as_secs(),
                d.attempts,
                self.policy().max_attempts
            );
            tracing::warn!(deployment_id = %d.id, error_type = %error.error_type, error = %error.message, "{message}");
            self.event(d, "retry", error.step.as_deref(), message).await;
            return Completion::Retry { error, not_before: now_ms() + backoff.as_millis() as i64 };
        }
        tracing::warn!(deployment_id = %d.id, error_type = %error.error_type, error = %error.message, "deployment failed");
        self.event(d, "failed", error.step.as_deref(), tenant_message(&error)).await;
        Completion::Failed(error)
    }

    /// What makes a deployed agent reachable once its service runs: its Twilio
    /// number pointed at it (`telephony.configure_number`).
    async fn activate(&self, d: &Deployment) -> Result<(), DeploymentError> {
        let (agent, secrets) = match self.store.get_agent_with_secrets(&d.tenant_id, &d.agent_id).await {
            Ok(found) => found,
            // Deleted meanwhile: its delete gives the number back.
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(store_error(e)),
        };
        let listener =
            self.store.placement(&d.tenant_id, &d.agent_id).await.map_err(store_error)?.map(|p| p.listener_arn);
        let Some(urls) = self.settings.agent_urls(&agent.id, listener.as_deref()) else {
            return Err(control_error(false, "no_public_host", "the agent's listener names no public host"));
        };
        let telephony = &agent.config.telephony;
        let target = Target {
            tenant: &d.tenant_id,
            agent: &d.agent_id,
            account_sid: telephony.twilio_account_sid.as_str(),
            phone_number: telephony.call_phone_number.as_str(),
            secrets: &secrets,
            voice_url: &urls.voice,
            status_callback: &urls.call_status,
        };
        let mut events = Vec::new();
        let result = self.numbers().point(&target, telephony.configure_number, &mut events).await;
        for message in events {
            self.event(d, "resource", Some(numbers::STEP), message).await;
        }
        result
    }

    fn numbers(&self) -> Numbers<'_> {
        Numbers { store: &self.store, twilio: self.twilio.as_ref(), settings: &self.settings }
    }

    /// One look at a rolling-out deployment: final when ECS says so or the deadline
    /// passed; otherwise looked at again after the poll interval.
    async fn watch(&self, d: &Deployment) -> Completion {
        let now = now_ms();
        let deadline = d.rollout_deadline.unwrap_or(now);
        let again = Completion::Watch { not_before: now + self.policy().rollout_poll.as_millis() as i64 };
        let Some(td) = d.resources.iter().find(|r| r.kind == "task_definition").and_then(|r| r.arn.clone()) else {
            let error = control_error(false, "no_task_definition", "the deployment recorded no task definition");
            tracing::error!(deployment_id = %d.id, error = %error.message, "rollout cannot be watched");
            self.event(d, "failed", Some("rollout"), tenant_message(&error)).await;
            return Completion::Failed(error);
        };
        let event = DeployerEvent {
            version: EVENT_VERSION,
            action: Action::Health(HealthRequest {
                agent_id: d.agent_id.clone(),
                tenant_id: d.tenant_id.clone(),
                task_definition_arn: td,
            }),
        };
        let health = match self.deployer.invoke(event).await.map(|r| r.outcome) {
            Ok(Outcome::Health(h)) => h,
            Ok(other) => return Completion::Failed(unexpected(&other)),
            // AWS throttled the look, say: look again, within the deadline.
            Err(e) if e.retryable && now < deadline => {
                tracing::warn!(deployment_id = %d.id, error = %e.message, "could not look at the rollout; looking again");
                return again;
            }
            Err(e) => {
                tracing::warn!(deployment_id = %d.id, error_type = %e.error_type, error = %e.message, "could not look at the rollout");
                self.event(d, "failed", e.step.as_deref(), tenant_message(&e)).await;
                return Completion::Failed(e);
            }
        };
        let reason = health.reason.clone().unwrap_or_default();
        match health.stage {
            Stage::Healthy => {
                match self.activate(d).await {
                    Ok(()) => {}
                    Err(e) if e.retryable && now < deadline => {
                        let message = format!("{}; looking again", tenant_message(&e));
                        tracing::warn!(deployment_id = %d.id, error = %e.message, "could not make the agent reachable");
                        self.event(d, "retry", e.step.as_deref(), message).await;
                        return again;
                    }
                    Err(e) => {
                        tracing::warn!(deployment_id = %d.id, error_type = %e.error_type, error = %e.message, "could not make the agent reachable");
                        self.event(d, "failed", e.step.as_deref(), tenant_message(&e)).await;
                        return Completion::Failed(e);
                    }
                }
                let message =
                    format!("active: ECS reports the rollout complete; {} healthy target(s)", health.healthy_targets);
                self.event(d, "succeeded", None, message).await;
                tracing::info!(deployment_id = %d.id, agent_id = %d.agent_id, "deployment active");
                Completion::Succeeded {
                    deployed_version: d.deployed_version,
                    resources: d.resources.clone(),
                    image: d.image.clone(),
                }
            }
            Stage::Failed => {
                let code = health.rollout_state.clone().unwrap_or_else(|| "NotRunning".into());
                let error = DeploymentError {
                    error_type: format!("NonRetryable.rollout.{code}"),
                    step: Some("rollout".into()),
                    code: Some(code),
                    message: format!("the rollout failed: {reason}"),
                    retryable: false,
                };
                tracing::warn!(deployment_id = %d.id, agent_id = %d.agent_id, error = %error.message, "rollout failed");
                self.event(d, "failed", Some("rollout"), tenant_message(&error)).await;
                Completion::Failed(error)
            }
            Stage::RollingOut if now >= deadline => {
                let error = DeploymentError {
                    error_type: "NonRetryable.rollout.RolloutTimeout".into(),
                    step: Some("rollout".into()),
                    code: Some("RolloutTimeout".into()),
                    message: format!(
                        "the service was not healthy within the rollout timeout of {} s \
                         (TEMPOVOICE_ROLLOUT_TIMEOUT_SECS): {reason}",
                        self.policy().rollout_timeout.as_secs()
                    ),
                    retryable: false,
                };
                tracing::warn!(deployment_id = %d.id, agent_id = %d.agent_id, error = %error.message, "rollout timed out");
                self.event(d, "failed", Some("rollout"), tenant_message(&error)).await;
                Completion::Failed(error)
            }
            Stage::RollingOut => again,
        }
    }

    async fn event(&self, d: &Deployment, kind: &str, step: Option<&str>, message: String) {
        if let Err(e) = self.store.add_deployment_event(&d.id, NewEvent { kind, step, message }).await {
            tracing::warn!(deployment_id = %d.id, error = %e, "could not record a deployment event");
        }
    }

    async fn deploy(&self, d: &Deployment) -> Result<Applied, DeploymentError> {
        let (agent, secrets) = match self.store.get_agent_with_secrets(&d.tenant_id, &d.agent_id).await {
            Ok(found) => found,
            Err(StoreError::NotFound) => {
                return Err(control_error(false, "agent_deleted", "the agent was deleted before it was deployed"));
            }
            Err(e) => return Err(store_error(e)),
        };
        let listeners = &self.settings.listeners;
        if listeners.is_empty() {
            return Err(control_error(
                false,
                "no_listeners",
                "no ALB listener is configured for agents (TEMPOVOICE_LISTENERS)",
            ));
        }
        // A slot on a listener no longer configured is given up for a configured one.
        if let Some(current) = self.store.placement(&d.tenant_id, &d.agent_id).await.map_err(store_error)? {
            if !listeners.iter().any(|l| l.listener_arn == current.listener_arn) {
                tracing::warn!(listener = %current.listener_arn, "the agent's listener is no longer configured: placing it again");
                self.store.release_placement(&d.tenant_id, &d.agent_id).await.map_err(store_error)?;
            }
        }
        match self.store.check_listener_slot(&d.tenant_id, Some(&d.agent_id), self.settings.tenant_quotas).await {
            Ok(()) => {}
            Err(StoreError::OverQuota(over)) => return Err(control_error(false, "tenant_quota", &over.to_string())),
            Err(e) => return Err(store_error(e)),
        }
        let targets = crate::store::placements::targets_of(agent.config.sizing.most_tasks());
        let placement = match self
            .store
            .assign_placement(&d.tenant_id, &d.agent_id, listeners, targets, self.settings.quotas)
            .await
        {
            Ok(p) => p,
            Err(StoreError::Quota(message)) => return Err(control_error(false, "quota", &message)),
            Err(e @ StoreError::NoCapacity { .. }) => {
                return Err(control_error(
                    false,
                    "no_capacity",
                    &format!("{e}: add a listener to TEMPOVOICE_LISTENERS or delete agents"),
                ));
            }
            Err(e) => return Err(store_error(e)),
        };
        let Some(public_host) = self.settings.public_host_of(&placement.listener_arn).map(str::to_owned) else {
            return Err(control_error(
                false,
                "no_public_host",
                &format!(
                    "the agent's listener {} names no public host: its runtime could not check Twilio's \
                     signatures. Give it one in TEMPOVOICE_LISTENERS (listenerArn=capacity@host)",
                    placement.listener_arn
                ),
            ));
        };
        let event = DeployerEvent {
            version: EVENT_VERSION,
            action: Action::Deploy(Box::new(DeployRequest {
                agent_id: agent.id.clone(),
                tenant_id: agent.tenant_id.clone(),
                // The deployer is given the webhook URLs the config shows redacted; it
                // seals them again into the task's secrets.
                config: secrets.with_webhook_urls(&agent.config),
                secrets: SecretsDraft::from_secrets(&secrets),
                placement: DeployPlacement {
                    public_host: Some(public_host),
                    control_plane_url: self.settings.public_url.clone(),
                    listener_arn: placement.listener_arn,
                    priority: placement.priority,
                },
                image_tag: None,
            })),
        };
        match self.deployer.invoke(event).await?.outcome {
            Outcome::Deploy(report) => Ok((Some(agent.version), report.resources, report.image)),
            other => Err(unexpected(&other)),
        }
    }

    async fn delete(&self, d: &Deployment) -> Result<Applied, DeploymentError> {
        // Calls stop coming before the service goes: the number is given back first.
        if let Some(binding) = self.store.number_binding(&d.tenant_id, &d.agent_id).await.map_err(store_error)? {
            let message = self.numbers().give_back(&binding).await?;
            self.event(d, "resource", Some(numbers::STEP), message).await;
        }
        let placement = self.store.placement(&d.tenant_id, &d.agent_id).await.map_err(store_error)?;
        let event = DeployerEvent {
            version: EVENT_VERSION,
            action: Action::Delete(DeleteRequest {
                agent_id: d.agent_id.clone(),
                tenant_id: d.tenant_id.clone(),
                listener_arn: placement.map(|p| p.listener_arn),
                purge_transcripts: d.purge_transcripts,
            }),
        };
        match self.deployer.invoke(event).await?.outcome {
            Outcome::Delete(report) => {
                // The rule is gone: its slot can go to another agent.
                self.store.release_placement(&d.tenant_id, &d.agent_id).await.map_err(store_error)?;
                Ok((None, report.resources, None))
            }
            other => Err(unexpected(&other)),
        }
    }
}

/// What the deployer did: the agent version deployed, each resource, and the image
/// (pinned by digest) a deploy put in place.
type Applied = (Option<i64>, Vec<ResourceReport>, Option<String>);

/// Aborts the task when dropped: a worker that is itself aborted stops renewing.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Back-off before attempt `attempts + 1`: `base`, doubling, at most 10 minutes.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let factor = 1u32 << attempts.clamp(1, 16).saturating_sub(1) as u32;
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

/// What a tenant is told of a deployment's failure: the step, AWS's error code and
/// whether it is retried, never AWS's own words (which name the platform's account,
/// roles and resources) or the control plane's internals. The whole error stays in
/// the logs and on the admin API.
pub(crate) fn tenant_message(error: &DeploymentError) -> String {
    let step = error.step.as_deref().unwrap_or("deployment");
    let code = error.code.as_deref().unwrap_or("an error");
    let what = match (step, code) {
        // The tenant's own quota, or their own Twilio account: the message is ours
        // (it names nothing of the platform's), and theirs to act on.
        ("control_plane", "tenant_quota") | (numbers::STEP, _) => error.message.clone(),
        ("control_plane", _) => format!("the control plane could not carry out the deployment ({code})"),
        ("rollout", "RolloutTimeout") => "the agent's service did not become healthy within the rollout timeout".into(),
        ("rollout", _) => format!("the agent's service did not start ({code})"),
        ("validate", _) => "the deployer refused the agent's configuration".into(),
        _ => format!("the {step} step failed: AWS answered {code}"),
    };
    let next = if error.retryable { "it is retried" } else { "the operator has the details" };
    format!("{what}; {next}")
}

/// A failure of `step` with `code`, typed `Retryable|NonRetryable.{step}.{code}` as
/// the deployer's own.
pub(crate) fn step_error(step: &str, retryable: bool, code: &str, message: String) -> DeploymentError {
    let class = if retryable { "Retryable" } else { "NonRetryable" };
    DeploymentError {
        error_type: format!("{class}.{step}.{code}"),
        step: Some(step.to_owned()),
        code: Some(code.to_owned()),
        message,
        retryable,
    }
}

fn control_error(retryable: bool, code: &str, message: &str) -> DeploymentError {
    step_error("control_plane", retryable, code, message.to_owned())
}

pub(crate) fn store_error(e: StoreError) -> DeploymentError {
    let retryable = matches!(e, StoreError::Database(_) | StoreError::Contention { .. });
    control_error(retryable, "database", &format!("control-plane database: {e}"))
}

fn unexpected(outcome: &Outcome) -> DeploymentError {
    let got = serde_json::to_value(outcome).ok().and_then(|v| v.get("action").cloned()).unwrap_or_default();
    control_error(false, "bad_response", &format!("the deployer answered with a {got} outcome"))
}

fn kind_name(r: &ResourceReport) -> &'static str {
    use deployer_lambda::report::ResourceKind as K;
    match r.kind {
        K::Bucket => "bucket",
        K::Secret => "secret",
        K::TaskRole => "task_role",
        K::TargetGroup => "target_group",
        K::TaskDefinition => "task_definition",
        K::ListenerRule => "listener_rule",
        K::Service => "service",
        K::Autoscaling => "autoscaling",
    }
}

fn action_name(r: &ResourceReport) -> &'static str {
    use deployer_lambda::report::ResourceAction as A;
    match r.action {
        A::Created => "created",
        A::Updated => "updated",
        A::Unchanged => "unchanged",
        A::Deleted => "deleted",
        A::Retained => "retained",
        A::Absent => "absent",
        A::Present => "present",
    }
}

fn resource(r: &ResourceReport) -> DeployedResource {
    DeployedResource {
        kind: kind_name(r).to_owned(),
        name: r.name.clone(),
        arn: r.arn.clone(),
        action: action_name(r).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1), Duration::from_secs(10));
        assert_eq!(backoff(base, 2), Duration::from_secs(20));
        assert_eq!(backoff(base, 4), Duration::from_secs(80));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }
}
