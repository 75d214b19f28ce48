//! Per-tenant quotas: how many agents a tenant keeps, the CPU they may run (task CPU
//! units × the most tasks autoscaling may run, 1024 units = 1 vCPU), the listener slots they take (one
//! per deployed agent) and the bytes of their knowledge bases. The operator's
//! defaults come from settings (`TEMPOVOICE_TENANT_MAX_*`); the admin API and the CLI
//! override them per tenant.
//!
//! A check and the write it guards run under one lock per tenant (an advisory lock
//! on PostgreSQL, an immediate transaction on SQLite), so concurrent requests cannot
//! together go over.

use agent_spec::{AgentConfig, AgentId, TenantId};
use serde::{Deserialize, Serialize};
use sqlx::Any;
use utoipa::ToSchema;

use super::{Store, StoreError};
use crate::db::{Backend, now_ms};

/// A tenant's quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaLimits {
    /// Agents kept (deployed or not).
    pub agents: u64,
    /// Task CPU units × `max_tasks`, summed over the tenant's agents (1024 = 1 vCPU).
    pub cpu_units: u64,
    /// Listener slots: agents placed on a load balancer (deployed).
    pub listener_slots: u64,
    /// Bytes of knowledge-base text, summed over the tenant's agents.
    pub knowledge_bytes: u64,
}

/// The largest quota (the database stores signed 64-bit numbers).
pub const QUOTA_MAX: u64 = i64::MAX as u64;

/// The operator's per-tenant overrides; `null` is the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaOverrides {
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub agents: Option<u64>,
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub cpu_units: Option<u64>,
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub listener_slots: Option<u64>,
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub knowledge_bytes: Option<u64>,
}

/// What a tenant uses of each quota.
pub type QuotaUse = QuotaLimits;

/// A tenant's quotas, their overrides and its use (`GET /v1/admin/tenants/{id}/quotas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantQuotas {
    /// In force: the overrides, else the operator's defaults.
    pub limits: QuotaLimits,
    pub overrides: QuotaOverrides,
    #[serde(rename = "use")]
    pub used: QuotaUse,
}

impl QuotaLimits {
    pub fn with(self, o: QuotaOverrides) -> Self {
        Self {
            agents: o.agents.unwrap_or(self.agents),
            cpu_units: o.cpu_units.unwrap_or(self.cpu_units),
            listener_slots: o.listener_slots.unwrap_or(self.listener_slots),
            knowledge_bytes: o.knowledge_bytes.unwrap_or(self.knowledge_bytes),
        }
    }
}

/// Which quota a change would exceed, with the numbers, for the tenant's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{quota} quota: {reason}")]
pub struct OverQuota {
    /// `agents`, `cpu_units`, `listener_slots`, `knowledge_bytes`.
    pub quota: &'static str,
    /// The request field that asked for more (`sizing`, `knowledge_base`, …).
    pub field: &'static str,
    pub reason: String,
}

/// The CPU an agent may run: task CPU units × the tasks it may scale to (a paused
/// agent runs none).
pub fn cpu_units_of(config: &AgentConfig) -> u64 {
    u64::from(config.sizing.cpu) * u64::from(config.sizing.most_tasks())
}

/// The bytes of an agent's knowledge base.
pub fn knowledge_bytes_of(config: &AgentConfig) -> u64 {
    config.knowledge_base.iter().map(|d| (d.title.len() + d.text.len()) as u64).sum()
}

/// Checks that `config` (replacing the agent's own figures when it is an update) fits.
pub fn check_agent(limits: QuotaLimits, used: QuotaUse, config: &AgentConfig, new: bool) -> Result<(), OverQuota> {
    if new && used.agents + 1 > limits.agents {
        return Err(OverQuota {
            quota: "agents",
            field: "name",
            reason: format!(
                "{} of {} agents in use; delete one, or ask the operator for more",
                used.agents, limits.agents
            ),
        });
    }
    let cpu = cpu_units_of(config);
    if used.cpu_units + cpu > limits.cpu_units {
        return Err(OverQuota {
            quota: "cpu_units",
            field: "sizing",
            reason: format!(
                "this agent asks for {cpu} CPU units (cpu × max_tasks; 1024 = 1 vCPU) and the tenant's other \
                 agents use {} of {}",
                used.cpu_units, limits.cpu_units
            ),
        });
    }
    let bytes = knowledge_bytes_of(config);
    if used.knowledge_bytes + bytes > limits.knowledge_bytes {
        return Err(OverQuota {
            quota: "knowledge_bytes",
            field: "knowledge_base",
            reason: format!(
                "this agent's knowledge base is {bytes} bytes and the tenant's other agents use {} of {}",
                used.knowledge_bytes, limits.knowledge_bytes
            ),
        });
    }
    Ok(())
}

/// agents, cpu_units, listener_slots, knowledge_bytes; NULL for the default.
type OverrideRow = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);

impl Store {
    pub async fn quota_overrides(&self, tenant: &TenantId) -> Result<QuotaOverrides, StoreError> {
        let row: Option<OverrideRow> = sqlx::query_as(
            "SELECT agents, cpu_units, listener_slots, knowledge_bytes FROM tenant_quotas WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(&self.db.pool)
        .await?;
        let n = |v: Option<i64>| v.map(|v| v.max(0) as u64);
        Ok(row.map_or_else(QuotaOverrides::default, |(a, c, l, k)| QuotaOverrides {
            agents: n(a),
            cpu_units: n(c),
            listener_slots: n(l),
            knowledge_bytes: n(k),
        }))
    }

    /// Replaces the tenant's overrides (`NotFound` for an unknown tenant).
    pub async fn set_quota_overrides(&self, tenant: &TenantId, o: QuotaOverrides) -> Result<(), StoreError> {
        if !self.tenant_exists(tenant).await? {
            return Err(StoreError::NotFound);
        }
        let n = |v: Option<u64>| v.map(|v| v.min(i64::MAX as u64) as i64);
        sqlx::query(
            "INSERT INTO tenant_quotas (tenant_id, agents, cpu_units, listener_slots, knowledge_bytes, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id) DO UPDATE SET agents = $2, cpu_units = $3, listener_slots = $4, \
             knowledge_bytes = $5, updated_at = $6",
        )
        .bind(tenant.as_str())
        .bind(n(o.agents))
        .bind(n(o.cpu_units))
        .bind(n(o.listener_slots))
        .bind(n(o.knowledge_bytes))
        .bind(now_ms())
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// What the tenant uses, leaving out agent `except` (the one being changed).
    pub async fn quota_use(&self, tenant: &TenantId, except: Option<&AgentId>) -> Result<QuotaUse, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        quota_use_on(&mut conn, tenant, except).await
    }

    /// Whether `agent` (or a new agent, `None`) may take a listener slot: yes if it
    /// has one; otherwise [`OverQuota`] when the tenant's slots are all taken.
    /// Checked when a deployment is asked for and again when it is placed.
    pub async fn check_listener_slot(
        &self,
        tenant: &TenantId,
        agent: Option<&AgentId>,
        defaults: QuotaLimits,
    ) -> Result<(), StoreError> {
        if let Some(agent) = agent {
            if self.placement(tenant, agent).await?.is_some() {
                return Ok(());
            }
        }
        let limit = defaults.with(self.quota_overrides(tenant).await?).listener_slots;
        let used = self.quota_use(tenant, agent).await?.listener_slots;
        if used + 1 > limit {
            return Err(OverQuota {
                quota: "listener_slots",
                field: "deploy",
                reason: format!(
                    "{used} of {limit} listener slots in use (one per deployed agent); delete an agent, or ask the \
                     operator for more"
                ),
            }
            .into());
        }
        Ok(())
    }

    /// Starts a transaction that holds the tenant's quota lock until it ends.
    pub(crate) async fn quota_transaction(
        &self,
        tenant: &TenantId,
    ) -> Result<sqlx::Transaction<'static, Any>, StoreError> {
        match self.db.backend {
            // One writer at a time: the check and the write see the same rows.
            Backend::Sqlite => Ok(self.db.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.db.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::TEXT")
                    .bind(format!("tempovoice-quota:{tenant}"))
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }
}

/// The tenant's use, read on `conn` (inside its quota transaction, for a check).
pub(crate) async fn quota_use_on(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    except: Option<&AgentId>,
) -> Result<QuotaUse, StoreError> {
    let except = except.map(AgentId::as_str).unwrap_or("");
    let configs: Vec<(String,)> = sqlx::query_as("SELECT config FROM agents WHERE tenant_id = $1 AND id <> $2")
        .bind(tenant.as_str())
        .bind(except)
        .fetch_all(&mut *conn)
        .await?;
    let mut used = QuotaUse { agents: 0, cpu_units: 0, listener_slots: 0, knowledge_bytes: 0 };
    for (json,) in configs {
        let config: AgentConfig = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt { what: "agent config".into(), reason: e.to_string() })?;
        used.agents += 1;
        used.cpu_units += cpu_units_of(&config);
        used.knowledge_bytes += knowledge_bytes_of(&config);
    }
    let (slots,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM placements WHERE tenant_id = $1 AND agent_id <> $2")
        .bind(tenant.as_str())
        .bind(except)
        .fetch_one(&mut *conn)
        .await?;
    used.listener_slots = slots.max(0) as u64;
    Ok(used)
}
