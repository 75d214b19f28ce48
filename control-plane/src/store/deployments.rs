//! Deployments: durable requests to converge or tear down one agent's AWS
//! resources. The API inserts them; workers ([`crate::deploy::worker`]) take them
//! with a lease, so a deployment survives a restart of the control plane and two
//! replicas never run the same one at once.
//!
//! Per agent, deployments run one at a time, oldest first: a worker only takes a
//! deployment when no older unfinished one of the same agent exists.

use agent_spec::api::{
    DeployedResource, DeploymentAction, DeploymentError, DeploymentEvent, DeploymentResponse, DeploymentStatus,
    DeploymentSummary,
};
use agent_spec::{AgentId, DeploymentId, TenantId};

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::db::{from_ms, now_ms};

const UNFINISHED: &str = "('pending', 'provisioning', 'rolling_out', 'deleting')";

fn action_str(action: DeploymentAction) -> &'static str {
    match action {
        DeploymentAction::Deploy => "deploy",
        DeploymentAction::Delete => "delete",
    }
}

pub(crate) fn parse_action(raw: &str) -> Option<DeploymentAction> {
    match raw {
        "deploy" => Some(DeploymentAction::Deploy),
        "delete" => Some(DeploymentAction::Delete),
        _ => None,
    }
}

const COLUMNS: &str = "id, tenant_id, agent_id, action, status, agent_version, deployed_version, purge_transcripts, \
                       attempts, error, resources, created_at, updated_at, finished_at, rollout_deadline, image";

struct Row {
    id: String,
    tenant_id: String,
    agent_id: String,
    action: String,
    status: String,
    agent_version: Option<i64>,
    deployed_version: Option<i64>,
    purge_transcripts: i64,
    attempts: i64,
    error: Option<String>,
    resources: Option<String>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
    rollout_deadline: Option<i64>,
    image: Option<String>,
}

impl sqlx::FromRow<'_, AnyRow> for Row {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            agent_id: row.try_get("agent_id")?,
            action: row.try_get("action")?,
            status: row.try_get("status")?,
            agent_version: row.try_get("agent_version")?,
            deployed_version: row.try_get("deployed_version")?,
            purge_transcripts: row.try_get("purge_transcripts")?,
            attempts: row.try_get("attempts")?,
            error: row.try_get("error")?,
            resources: row.try_get("resources")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            finished_at: row.try_get("finished_at")?,
            rollout_deadline: row.try_get("rollout_deadline")?,
            image: row.try_get("image")?,
        })
    }
}

/// A deployment as stored (without its events).
#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: DeploymentId,
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    pub action: DeploymentAction,
    pub status: DeploymentStatus,
    pub agent_version: Option<i64>,
    pub deployed_version: Option<i64>,
    pub purge_transcripts: bool,
    pub attempts: i64,
    pub error: Option<DeploymentError>,
    pub resources: Vec<DeployedResource>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// While `rolling_out`: when the watch gives up (ms).
    pub rollout_deadline: Option<i64>,
    /// The runtime image (pinned by digest) a deploy put in place.
    pub image: Option<String>,
}

impl Deployment {
    pub fn into_response(self, events: Vec<DeploymentEvent>) -> DeploymentResponse {
        DeploymentResponse {
            id: self.id,
            agent_id: self.agent_id,
            action: self.action,
            status: self.status,
            agent_version: self.agent_version,
            deployed_version: self.deployed_version,
            purge_transcripts: self.purge_transcripts,
            attempts: self.attempts,
            created_at: from_ms(self.created_at),
            updated_at: from_ms(self.updated_at),
            finished_at: self.finished_at.map(from_ms),
            error: self.error,
            resources: self.resources,
            image: self.image,
            events,
        }
    }

    pub fn summary(&self) -> DeploymentSummary {
        DeploymentSummary {
            id: self.id.clone(),
            action: self.action,
            status: self.status,
            updated_at: from_ms(self.updated_at),
        }
    }
}

fn decode(row: Row) -> Result<Deployment, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what: format!("deployment {}", row.id), reason };
    Ok(Deployment {
        id: DeploymentId::parse(&row.id).map_err(|e| corrupt(e.to_string()))?,
        tenant_id: TenantId::parse(&row.tenant_id).map_err(|e| corrupt(e.to_string()))?,
        agent_id: AgentId::parse(&row.agent_id).map_err(|e| corrupt(e.to_string()))?,
        action: parse_action(&row.action).ok_or_else(|| corrupt(format!("unknown action {:?}", row.action)))?,
        status: DeploymentStatus::parse(&row.status)
            .ok_or_else(|| corrupt(format!("unknown status {:?}", row.status)))?,
        agent_version: row.agent_version,
        deployed_version: row.deployed_version,
        purge_transcripts: row.purge_transcripts != 0,
        attempts: row.attempts,
        error: row.error.as_deref().map(serde_json::from_str).transpose().map_err(|e| corrupt(e.to_string()))?,
        resources: row
            .resources
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?
            .unwrap_or_default(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        finished_at: row.finished_at,
        rollout_deadline: row.rollout_deadline,
        image: row.image,
    })
}

/// Position in an agent's deployments (newest first): `{created_at}.{id}`
/// ([`super::cursor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentCursor {
    pub created_at: i64,
    pub id: DeploymentId,
}

impl DeploymentCursor {
    pub fn encode(&self) -> String {
        super::cursor::encode(self.created_at, self.id.as_str())
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (created_at, id) = super::cursor::decode(raw, DeploymentId::parse)?;
        Some(Self { created_at, id })
    }
}

/// A new event of a deployment.
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub step: Option<&'a str>,
    pub message: String,
}

/// How a worker's attempt ended.
pub enum Completion {
    /// Done: `active` or `deleted`.
    Succeeded { deployed_version: Option<i64>, resources: Vec<DeployedResource>, image: Option<String> },
    /// Failed for good.
    Failed(DeploymentError),
    /// Failed, worth another attempt at `not_before`.
    Retry { error: DeploymentError, not_before: i64 },
    /// AWS accepted every change: `rolling_out`, looked at again at `not_before`
    /// until ECS reports it healthy or `deadline` passes.
    RollingOut {
        deployed_version: Option<i64>,
        resources: Vec<DeployedResource>,
        image: Option<String>,
        not_before: i64,
        deadline: i64,
    },
    /// Still rolling out: look again at `not_before`.
    Watch { not_before: i64 },
}

impl Store {
    /// Queues a deployment of `agent`. A `deploy` while another `deploy` of the agent
    /// is still pending returns that one instead (it deploys the configuration current
    /// when it runs, so one is enough), made due at once. A `delete` ends every
    /// pending `deploy` of the agent: there is nothing left for them to do.
    pub async fn enqueue_deployment(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        action: DeploymentAction,
        agent_version: Option<i64>,
        purge_transcripts: bool,
    ) -> Result<Deployment, StoreError> {
        let now = now_ms();
        match action {
            DeploymentAction::Deploy => {
                let pending: Option<Row> = sqlx::query_as(&format!(
                    "UPDATE deployments SET not_before = $1, agent_version = $2, updated_at = $1 \
                     WHERE id = (SELECT id FROM deployments WHERE tenant_id = $3 AND agent_id = $4 \
                                 AND action = 'deploy' AND status = 'pending' ORDER BY created_at DESC LIMIT 1) \
                     AND status = 'pending' RETURNING {COLUMNS}"
                ))
                .bind(now)
                .bind(agent_version)
                .bind(tenant.as_str())
                .bind(agent.as_str())
                .fetch_optional(&self.db.pool)
                .await?;
                if let Some(row) = pending {
                    return decode(row);
                }
            }
            DeploymentAction::Delete => {
                let superseded = DeploymentError {
                    error_type: "Superseded".into(),
                    step: None,
                    code: None,
                    message: "the agent was deleted before this deployment ran or finished rolling out".into(),
                    retryable: false,
                };
                // Pending deploys, and the watch of one rolling out: the delete ends them.
                sqlx::query(
                    "UPDATE deployments SET status = 'failed', error = $1, updated_at = $2, finished_at = $2, \
                     lease_owner = NULL, lease_expires_at = NULL \
                     WHERE tenant_id = $3 AND agent_id = $4 AND action = 'deploy' \
                     AND status IN ('pending', 'rolling_out')",
                )
                .bind(serde_json::to_string(&superseded).expect("error serializes"))
                .bind(now)
                .bind(tenant.as_str())
                .bind(agent.as_str())
                .execute(&self.db.pool)
                .await?;
            }
        }
        let id = DeploymentId::generate();
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO deployments (id, tenant_id, agent_id, action, status, agent_version, purge_transcripts, \
             attempts, not_before, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, 0, $7, $7, $7) RETURNING {COLUMNS}"
        ))
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(action_str(action))
        .bind(agent_version)
        .bind(i64::from(purge_transcripts))
        .bind(now)
        .fetch_one(&self.db.pool)
        .await?;
        let what = match action {
            DeploymentAction::Deploy => "deploy queued".to_owned(),
            DeploymentAction::Delete if purge_transcripts => "delete queued (transcripts purged)".to_owned(),
            DeploymentAction::Delete => "delete queued (transcript bucket kept)".to_owned(),
        };
        self.add_deployment_event(&id, NewEvent { kind: "queued", step: None, message: what }).await?;
        decode(row)
    }

    /// Takes the next due deployment for `owner` until `lease_until`: a pending one
    /// whose time has come, or one whose worker's lease ran out (its process died).
    /// Per agent, only the oldest unfinished deployment is eligible.
    pub async fn claim_deployment(&self, owner: &str, lease_until: i64) -> Result<Option<Deployment>, StoreError> {
        let now = now_ms();
        // A rolling-out deployment is due to be looked at when its time has come and
        // no worker holds it (or the one that did died).
        const DUE: &str = "((status = 'pending' AND not_before <= $3) \
                           OR (status IN ('provisioning', 'deleting') AND lease_expires_at < $3) \
                           OR (status = 'rolling_out' AND not_before <= $3 \
                               AND (lease_expires_at IS NULL OR lease_expires_at < $3)))";
        const D_DUE: &str = "((d.status = 'pending' AND d.not_before <= $3) \
                             OR (d.status IN ('provisioning', 'deleting') AND d.lease_expires_at < $3) \
                             OR (d.status = 'rolling_out' AND d.not_before <= $3 \
                                 AND (d.lease_expires_at IS NULL OR d.lease_expires_at < $3)))";
        // The outer condition repeats the inner one: under PostgreSQL's read committed,
        // a worker that lost the race re-checks the row it waited for and updates nothing.
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE deployments SET \
                 status = CASE WHEN status = 'rolling_out' THEN 'rolling_out' \
                               WHEN action = 'delete' THEN 'deleting' ELSE 'provisioning' END, \
                 attempts = attempts + CASE WHEN status = 'rolling_out' THEN 0 ELSE 1 END, \
                 lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
             WHERE id = (SELECT d.id FROM deployments d WHERE {D_DUE} \
                 AND NOT EXISTS (SELECT 1 FROM deployments e WHERE e.agent_id = d.agent_id \
                     AND e.status IN {UNFINISHED} \
                     AND (e.created_at < d.created_at OR (e.created_at = d.created_at AND e.id < d.id))) \
                 ORDER BY d.created_at, d.id LIMIT 1) \
             AND {DUE} RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(decode).transpose()
    }

    /// Extends the lease; false if `owner` no longer holds it.
    pub async fn renew_deployment_lease(
        &self,
        id: &DeploymentId,
        owner: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE deployments SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3 AND status IN {UNFINISHED}"
        ))
        .bind(lease_until)
        .bind(id.as_str())
        .bind(owner)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records how an attempt ended; false (and nothing written) if `owner` lost the
    /// lease meanwhile.
    pub async fn complete_deployment(
        &self,
        deployment: &Deployment,
        owner: &str,
        completion: Completion,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut deadline = deployment.rollout_deadline;
        let mut image = None;
        let (status, not_before, error, resources, deployed_version, finished_at) = match completion {
            Completion::Succeeded { deployed_version, resources, image: deployed } => {
                image = deployed;
                let status = match deployment.action {
                    DeploymentAction::Deploy => DeploymentStatus::Active,
                    DeploymentAction::Delete => DeploymentStatus::Deleted,
                };
                (status, now, None, Some(resources), deployed_version, Some(now))
            }
            Completion::Failed(error) => (DeploymentStatus::Failed, now, Some(error), None, None, Some(now)),
            Completion::Retry { error, not_before } => {
                (DeploymentStatus::Pending, not_before, Some(error), None, None, None)
            }
            Completion::RollingOut { deployed_version, resources, image: deployed, not_before, deadline: until } => {
                deadline = Some(until);
                image = deployed;
                (DeploymentStatus::RollingOut, not_before, None, Some(resources), deployed_version, None)
            }
            Completion::Watch { not_before } => (DeploymentStatus::RollingOut, not_before, None, None, None, None),
        };
        let done = sqlx::query(&format!(
            "UPDATE deployments SET status = $1, not_before = $2, error = $3, \
                 resources = COALESCE($4, resources), deployed_version = COALESCE($5, deployed_version), \
                 finished_at = $6, updated_at = $7, lease_owner = NULL, lease_expires_at = NULL, \
                 rollout_deadline = $10, image = COALESCE($11, image) \
             WHERE id = $8 AND lease_owner = $9 AND status IN {UNFINISHED}"
        ))
        .bind(status.as_str())
        .bind(not_before)
        .bind(error.map(|e| serde_json::to_string(&e).expect("error serializes")))
        .bind(resources.map(|r| serde_json::to_string(&r).expect("resources serialize")))
        .bind(deployed_version)
        .bind(finished_at)
        .bind(now)
        .bind(deployment.id.as_str())
        .bind(owner)
        .bind(deadline)
        .bind(image)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a deployment back unfinished (the worker is stopping): pending again,
    /// due at once, and the interrupted attempt not counted.
    pub async fn release_deployment(&self, id: &DeploymentId, owner: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE deployments SET not_before = $1, updated_at = $1, \
                 status = CASE WHEN status = 'rolling_out' THEN 'rolling_out' ELSE 'pending' END, \
                 attempts = attempts - CASE WHEN status = 'rolling_out' THEN 0 ELSE 1 END, \
                 lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $2 AND lease_owner = $3 AND status IN {UNFINISHED}"
        ))
        .bind(now_ms())
        .bind(id.as_str())
        .bind(owner)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn add_deployment_event(&self, id: &DeploymentId, event: NewEvent<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO deployment_events (deployment_id, seq, at, kind, step, message) \
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM deployment_events WHERE deployment_id = $1",
        )
        .bind(id.as_str())
        .bind(now_ms())
        .bind(event.kind)
        .bind(event.step)
        .bind(event.message)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// One deployment of the tenant's agent, with its events.
    pub async fn get_deployment(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        id: &DeploymentId,
    ) -> Result<DeploymentResponse, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM deployments WHERE tenant_id = $1 AND agent_id = $2 AND id = $3"
        ))
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.db.pool)
        .await?;
        let deployment = decode(row.ok_or(StoreError::NotFound)?)?;
        let events: Vec<(i64, String, Option<String>, String)> = sqlx::query_as(
            "SELECT at, kind, step, message FROM deployment_events WHERE deployment_id = $1 ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(&self.db.pool)
        .await?;
        let events = events
            .into_iter()
            .map(|(at, kind, step, message)| DeploymentEvent { at: from_ms(at), kind, step, message })
            .collect();
        Ok(deployment.into_response(events))
    }

    /// The internal view of one deployment (for workers and tests).
    pub async fn deployment(&self, id: &DeploymentId) -> Result<Deployment, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM deployments WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.db.pool)
            .await?;
        decode(row.ok_or(StoreError::NotFound)?)
    }

    /// Whether the tenant has, or had, this agent: it exists, or has deployments
    /// (a deleted agent's teardown stays visible).
    pub async fn agent_is_known(&self, tenant: &TenantId, agent: &AgentId) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM agents WHERE tenant_id = $1 AND id = $2 \
             UNION ALL SELECT 1 FROM deployments WHERE tenant_id = $1 AND agent_id = $2 LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.is_some())
    }

    /// A page of the agent's deployments, newest first, without events.
    pub async fn list_deployments(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        before: Option<&DeploymentCursor>,
        limit: u32,
    ) -> Result<(Vec<Deployment>, Option<DeploymentCursor>), StoreError> {
        let fetch = i64::from(limit) + 1;
        let rows: Vec<Row> = match before {
            None => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM deployments WHERE tenant_id = $1 AND agent_id = $2 \
                     ORDER BY created_at DESC, id DESC LIMIT $3"
                ))
                .bind(tenant.as_str())
                .bind(agent.as_str())
                .bind(fetch)
                .fetch_all(&self.db.pool)
                .await?
            }
            Some(c) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM deployments WHERE tenant_id = $1 AND agent_id = $2 \
                     AND (created_at < $3 OR (created_at = $3 AND id < $4)) \
                     ORDER BY created_at DESC, id DESC LIMIT $5"
                ))
                .bind(tenant.as_str())
                .bind(agent.as_str())
                .bind(c.created_at)
                .bind(c.id.as_str())
                .bind(fetch)
                .fetch_all(&self.db.pool)
                .await?
            }
        };
        let mut out = rows.into_iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let next = if out.len() > limit as usize {
            out.truncate(limit as usize);
            out.last().map(|d| DeploymentCursor { created_at: d.created_at, id: d.id.clone() })
        } else {
            None
        };
        Ok((out, next))
    }

    /// The agent's latest deployment, if it has one.
    pub async fn latest_deployment(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Option<DeploymentSummary>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM deployments WHERE tenant_id = $1 AND agent_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.map(decode).transpose()?.map(|d| d.summary()))
    }
}

impl Store {
    /// Every agent whose AWS resources are accounted for: each stored agent, and each
    /// agent with an unfinished deployment (a teardown in flight). A sweep reports
    /// the resources of any other agent as orphans.
    pub async fn known_agent_ids(&self) -> Result<Vec<AgentId>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT id FROM agents UNION SELECT agent_id FROM deployments WHERE status IN {UNFINISHED}"
        ))
        .fetch_all(&self.db.pool)
        .await?;
        rows.into_iter()
            .map(|(id,)| {
                AgentId::parse(&id)
                    .map_err(|e| StoreError::Corrupt { what: format!("agent id {id}"), reason: e.to_string() })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = DeploymentCursor { created_at: 1_700_000_000_123, id: DeploymentId::generate() };
        assert_eq!(DeploymentCursor::decode(&c.encode()), Some(c));
        assert_eq!(DeploymentCursor::decode("!!"), None);
    }
}
