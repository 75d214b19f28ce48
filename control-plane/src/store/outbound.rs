//! Outbound calls placed through the API, counted for the concurrency guard. A slot
//! is reserved (under the tenant's quota lock, so two requests cannot both take
//! the last one) before Twilio is asked to call; it is given back when Twilio
//! refuses, and freed when Twilio reports the call's final status or `live_until`
//! passes.

use agent_spec::{AgentId, TenantId};

use super::{Store, StoreError};
use crate::db::now_ms;

/// The most live outbound calls, per tenant and per agent.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    pub per_tenant: i64,
    pub per_agent: i64,
}

/// A reservation was refused: `scope` (`tenant` or `agent`) has `limit` live calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyCalls {
    pub scope: &'static str,
    pub limit: i64,
}

/// A call to reserve a slot for.
pub struct NewCall<'a> {
    pub id: &'a str,
    pub to: &'a str,
    pub from: &'a str,
    pub live_until: i64,
}

/// How long a call is kept after it ended (or its slot freed itself).
const PRUNE_AFTER_MS: i64 = 24 * 3600 * 1000;

/// Statuses after which Twilio's call is over.
pub fn is_final(status: &str) -> bool {
    matches!(status, "completed" | "busy" | "no-answer" | "failed" | "canceled")
}

impl Store {
    /// Reserves a slot for `call` unless the tenant or the agent already has its
    /// limit of live outbound calls.
    pub async fn reserve_outbound_call(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        call: NewCall<'_>,
        limits: CallLimits,
    ) -> Result<Result<(), TooManyCalls>, StoreError> {
        let now = now_ms();
        let mut tx = self.quota_transaction(tenant).await?;
        // Calls over for a day are of no more use here: the table stays small.
        sqlx::query(
            "DELETE FROM outbound_calls WHERE tenant_id = $1 AND (ended_at < $2 OR (ended_at IS NULL AND live_until < $2))",
        )
        .bind(tenant.as_str())
        .bind(now - PRUNE_AFTER_MS)
        .execute(&mut *tx)
        .await?;
        let (tenant_live, agent_live): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN agent_id = $2 THEN 1 ELSE 0 END), 0) FROM outbound_calls \
             WHERE tenant_id = $1 AND ended_at IS NULL AND live_until > $3",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if agent_live >= limits.per_agent {
            return Ok(Err(TooManyCalls { scope: "agent", limit: limits.per_agent }));
        }
        if tenant_live >= limits.per_tenant {
            return Ok(Err(TooManyCalls { scope: "tenant", limit: limits.per_tenant }));
        }
        sqlx::query(
            "INSERT INTO outbound_calls (id, tenant_id, agent_id, to_number, from_number, status, created_at, live_until) \
             VALUES ($1, $2, $3, $4, $5, 'reserved', $6, $7)",
        )
        .bind(call.id)
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(call.to)
        .bind(call.from)
        .bind(now)
        .bind(call.live_until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Twilio created the reserved call as `call_sid`.
    pub async fn outbound_call_created(&self, id: &str, call_sid: &str, status: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbound_calls SET call_sid = $1, status = $2 WHERE id = $3")
            .bind(call_sid)
            .bind(status)
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Gives the reserved slot back (Twilio refused the call).
    pub async fn release_outbound_call(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM outbound_calls WHERE id = $1 AND call_sid IS NULL")
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Records the status Twilio reported for `call_sid` of `agent`; a final one
    /// frees the slot. False when no such call was placed for the agent.
    pub async fn outbound_call_status(
        &self,
        agent: &AgentId,
        call_sid: &str,
        status: &str,
    ) -> Result<bool, StoreError> {
        let ended = is_final(status).then(now_ms);
        let updated = sqlx::query(
            "UPDATE outbound_calls SET status = $1, ended_at = COALESCE(ended_at, $2) \
             WHERE agent_id = $3 AND call_sid = $4",
        )
        .bind(status)
        .bind(ended)
        .bind(agent.as_str())
        .bind(call_sid)
        .execute(&self.db.pool)
        .await?;
        Ok(updated.rows_affected() > 0)
    }
}
