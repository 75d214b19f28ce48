//! Placement of agents across ALB listeners. An ALB takes at most 100 target groups
//! (a hard limit) and 100 rules by default, so a fleet is spread over several ALBs.
//! Each configured listener owns the rule priorities `base + 1 ..= base + capacity`;
//! an agent gets the lowest free one on the first listener with room.
//!
//! `UNIQUE (listener_arn, priority)` makes the database the arbiter: a slot count can
//! never exceed a listener's capacity, and two concurrent assignments can never get
//! the same priority. A losing insert simply tries the next free slot.

use agent_spec::{AgentId, TenantId};

use super::{Store, StoreError};
use crate::db::now_ms;

/// First priority minus one: leaves 1–1000 to rules the operator manages by hand.
pub const PRIORITY_BASE: u32 = 1000;
/// Rules (and target groups) per ALB that TempoVoice may use by default.
pub const DEFAULT_CAPACITY: u32 = 95;
/// Targets per Application Load Balancer (an AWS quota, adjustable).
pub const TARGETS_PER_ALB: u32 = 1_000;
/// Target groups per Region (an AWS quota, adjustable): the default of
/// `TEMPOVOICE_TARGET_GROUP_QUOTA`.
pub const DEFAULT_TARGET_GROUP_QUOTA: u32 = 3_000;

/// The quotas a placement is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub targets_per_alb: u32,
    pub target_groups: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self { targets_per_alb: TARGETS_PER_ALB, target_groups: DEFAULT_TARGET_GROUP_QUOTA }
    }
}

/// The most targets an agent registers: the most tasks autoscaling may run,
/// doubled while a rolling deploy runs the new tasks beside the old.
pub fn targets_of(max_tasks: u32) -> u32 {
    max_tasks.max(1) * 2
}

/// One listener agents can be placed on, and how many it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerCapacity {
    pub listener_arn: String,
    pub capacity: u32,
    /// The host its ALB answers Twilio on: every agent placed here gets it in its
    /// voice URL and its runtime's `TEMPOVOICE_PUBLIC_HOST`.
    pub public_host: Option<String>,
}

/// Where an agent's listener rule goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub listener_arn: String,
    pub priority: u32,
}

const MAX_ATTEMPTS: usize = 64;

impl Store {
    /// The agent's placement, assigning one if it has none, for an agent that
    /// registers up to `targets` targets. Errors with [`StoreError::NoCapacity`] when
    /// every listener is full, and [`StoreError::Quota`] when the placement would
    /// exceed an AWS quota (targets per ALB, target groups per Region).
    pub async fn assign_placement(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        listeners: &[ListenerCapacity],
        targets: u32,
        quotas: Quotas,
    ) -> Result<Placement, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            if let Some(existing) = self.placement(tenant, agent).await? {
                // Its sizing may have grown: the ALB must still take its targets.
                let others = self.targets_on(&existing.listener_arn, Some(agent)).await?;
                if others + i64::from(targets) > i64::from(quotas.targets_per_alb) {
                    return Err(StoreError::Quota(targets_message(&existing.listener_arn, others, targets, quotas)));
                }
                sqlx::query("UPDATE placements SET targets = $1 WHERE tenant_id = $2 AND agent_id = $3")
                    .bind(i64::from(targets))
                    .bind(tenant.as_str())
                    .bind(agent.as_str())
                    .execute(&self.db.pool)
                    .await?;
                return Ok(existing);
            }
            let (placed,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM placements").fetch_one(&self.db.pool).await?;
            if placed >= i64::from(quotas.target_groups) {
                return Err(StoreError::Quota(format!(
                    "{placed} agents are placed, each with its own target group: another would exceed the quota \
                     'Target groups per Region' ({}). Raise it in Service Quotas (Elastic Load Balancing) and set \
                     TEMPOVOICE_TARGET_GROUP_QUOTA to the new value, or delete agents",
                    quotas.target_groups
                )));
            }
            let candidate = match self.lowest_free_slot(listeners, targets, quotas).await? {
                Slot::Free(candidate) => candidate,
                Slot::NoRoomForTargets { listener, used } => {
                    return Err(StoreError::Quota(targets_message(&listener, used, targets, quotas)));
                }
                Slot::Full => {
                    let total: u32 = listeners.iter().map(|l| l.capacity).sum();
                    return Err(StoreError::NoCapacity { listeners: listeners.len(), slots: total });
                }
            };
            let inserted = sqlx::query(
                "INSERT INTO placements (agent_id, tenant_id, listener_arn, priority, created_at, targets) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(agent.as_str())
            .bind(tenant.as_str())
            .bind(&candidate.listener_arn)
            .bind(i64::from(candidate.priority))
            .bind(now_ms())
            .bind(i64::from(targets))
            .execute(&self.db.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(candidate),
                // Another assignment took this slot (or this agent got one) first: look again.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contention { what: format!("placement of agent {agent}") })
    }

    pub async fn placement(&self, tenant: &TenantId, agent: &AgentId) -> Result<Option<Placement>, StoreError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT listener_arn, priority FROM placements WHERE tenant_id = $1 AND agent_id = $2")
                .bind(tenant.as_str())
                .bind(agent.as_str())
                .fetch_optional(&self.db.pool)
                .await?;
        Ok(row.map(|(listener_arn, priority)| Placement { listener_arn, priority: priority as u32 }))
    }

    /// Frees the agent's slot (after its listener rule is gone).
    pub async fn release_placement(&self, tenant: &TenantId, agent: &AgentId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM placements WHERE tenant_id = $1 AND agent_id = $2")
            .bind(tenant.as_str())
            .bind(agent.as_str())
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Targets registered on `listener`'s ALB by the agents placed there (but `except`).
    async fn targets_on(&self, listener: &str, except: Option<&AgentId>) -> Result<i64, StoreError> {
        // PostgreSQL sums BIGINTs as NUMERIC: cast back.
        let (sum,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(targets), 0) AS BIGINT) FROM placements WHERE listener_arn = $1 AND agent_id <> $2",
        )
                .bind(listener)
                .bind(except.map(AgentId::as_str).unwrap_or(""))
                .fetch_one(&self.db.pool)
                .await?;
        Ok(sum)
    }

    /// The lowest free priority on the first listener with a free slot and room for
    /// `targets` more targets, in configured order.
    async fn lowest_free_slot(
        &self,
        listeners: &[ListenerCapacity],
        targets: u32,
        quotas: Quotas,
    ) -> Result<Slot, StoreError> {
        let mut short_of_targets = None;
        for listener in listeners {
            let used = self.targets_on(&listener.listener_arn, None).await?;
            if used + i64::from(targets) > i64::from(quotas.targets_per_alb) {
                short_of_targets.get_or_insert((listener.listener_arn.clone(), used));
                continue;
            }
            let used: Vec<(i64,)> =
                sqlx::query_as("SELECT priority FROM placements WHERE listener_arn = $1 ORDER BY priority")
                    .bind(&listener.listener_arn)
                    .fetch_all(&self.db.pool)
                    .await?;
            let mut next = i64::from(PRIORITY_BASE) + 1;
            for (p,) in used {
                if p > next {
                    break;
                }
                if p == next {
                    next += 1;
                }
            }
            if next <= i64::from(PRIORITY_BASE + listener.capacity) {
                return Ok(Slot::Free(Placement {
                    listener_arn: listener.listener_arn.clone(),
                    priority: next as u32,
                }));
            }
        }
        Ok(match short_of_targets {
            Some((listener, used)) => Slot::NoRoomForTargets { listener, used },
            None => Slot::Full,
        })
    }
}

enum Slot {
    Free(Placement),
    /// Slots are left, but no listener with one can take the agent's targets.
    NoRoomForTargets {
        listener: String,
        used: i64,
    },
    Full,
}

fn targets_message(listener: &str, used: i64, targets: u32, quotas: Quotas) -> String {
    format!(
        "the agent registers up to {targets} targets (its tasks × 2 during a rolling deploy), and the load balancer \
         of {listener} already takes {used}: together over the quota 'Targets per Application Load Balancer' ({}). \
         Add a load balancer to TEMPOVOICE_LISTENERS, lower the agent's sizing.max_tasks, or raise the quota in \
         Service Quotas (Elastic Load Balancing)",
        quotas.targets_per_alb
    )
}
