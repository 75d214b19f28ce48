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
    /// The agent's placement, assigning one if it has none. Errors with
    /// [`StoreError::NoCapacity`] when every listener is full.
    pub async fn assign_placement(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        listeners: &[ListenerCapacity],
    ) -> Result<Placement, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            if let Some(existing) = self.placement(tenant, agent).await? {
                return Ok(existing);
            }
            let Some(candidate) = self.lowest_free_slot(listeners).await? else {
                let total: u32 = listeners.iter().map(|l| l.capacity).sum();
                return Err(StoreError::NoCapacity { listeners: listeners.len(), slots: total });
            };
            let inserted = sqlx::query(
                "INSERT INTO placements (agent_id, tenant_id, listener_arn, priority, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(agent.as_str())
            .bind(tenant.as_str())
            .bind(&candidate.listener_arn)
            .bind(i64::from(candidate.priority))
            .bind(now_ms())
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

    /// The lowest free priority on the first listener with room, in configured order.
    async fn lowest_free_slot(&self, listeners: &[ListenerCapacity]) -> Result<Option<Placement>, StoreError> {
        for listener in listeners {
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
                return Ok(Some(Placement { listener_arn: listener.listener_arn.clone(), priority: next as u32 }));
            }
        }
        Ok(None)
    }
}
