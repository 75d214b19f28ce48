//! Scheduled callbacks: stored when the runtime reports a caller's request, placed
//! by a worker when due. A worker takes a due callback with a lease, under a
//! conditional `UPDATE` that only one replica can win; a lease that runs out (the
//! replica died while placing) lets another take it over.

use agent_spec::api::{Callback, CallbackStatus};
use agent_spec::{AgentId, CallSid, TenantId};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::db::{from_ms, now_ms};

/// A callback as the worker needs it.
#[derive(Debug, Clone)]
pub struct StoredCallback {
    pub tenant_id: TenantId,
    /// What the caller said on the earlier call.
    pub context: String,
    /// When the current attempt at placing it began: a worker taking over a dead
    /// one's attempt asks Twilio for calls made since.
    pub attempt_started_at: Option<i64>,
    pub callback: Callback,
}

/// A callback to store.
pub struct NewCallback<'a> {
    pub call_sid: &'a CallSid,
    pub to: &'a str,
    pub requested_time: &'a str,
    pub context: &'a str,
    pub due_at: i64,
}

/// Why a callback cannot be cancelled.
#[derive(Debug)]
pub enum CancelRefused {
    NotFound,
    /// It is being placed, or is done.
    Too(CallbackStatus),
}

/// How long callbacks are kept after they are done.
const KEEP_DONE_MS: i64 = 30 * 24 * 3600 * 1000;

const COLUMNS: &str = "id, tenant_id, agent_id, call_sid, to_number, requested_time, context, due_at, status, \
                       attempts, attempt_started_at, placed_call_sid, error, created_at, updated_at";

struct Row {
    id: String,
    tenant_id: String,
    agent_id: String,
    call_sid: String,
    to_number: String,
    requested_time: String,
    context: String,
    due_at: i64,
    status: String,
    attempts: i64,
    attempt_started_at: Option<i64>,
    placed_call_sid: Option<String>,
    error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl sqlx::FromRow<'_, AnyRow> for Row {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            agent_id: row.try_get("agent_id")?,
            call_sid: row.try_get("call_sid")?,
            to_number: row.try_get("to_number")?,
            requested_time: row.try_get("requested_time")?,
            context: row.try_get("context")?,
            due_at: row.try_get("due_at")?,
            status: row.try_get("status")?,
            attempts: row.try_get("attempts")?,
            attempt_started_at: row.try_get("attempt_started_at")?,
            placed_call_sid: row.try_get("placed_call_sid")?,
            error: row.try_get("error")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

fn decode(row: Row) -> Result<StoredCallback, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what: format!("callback {}", row.id), reason };
    let tenant_id = TenantId::parse(&row.tenant_id).map_err(|e| corrupt(e.to_string()))?;
    let agent_id = AgentId::parse(&row.agent_id).map_err(|e| corrupt(e.to_string()))?;
    let call_sid = CallSid::parse(&row.call_sid).map_err(|e| corrupt(e.to_string()))?;
    let status = CallbackStatus::parse(&row.status).ok_or_else(|| corrupt(format!("status {:?}", row.status)))?;
    let placed_call_sid =
        row.placed_call_sid.as_deref().map(CallSid::parse).transpose().map_err(|e| corrupt(e.to_string()))?;
    Ok(StoredCallback {
        tenant_id,
        context: row.context,
        attempt_started_at: row.attempt_started_at,
        callback: Callback {
            id: row.id,
            agent_id,
            status,
            to: row.to_number,
            due_at: from_ms(row.due_at),
            requested_time: row.requested_time,
            call_sid,
            placed_call_sid,
            attempts: row.attempts,
            error: row.error,
            created_at: from_ms(row.created_at),
            updated_at: from_ms(row.updated_at),
        },
    })
}

/// Due now: scheduled and its time has come, or being placed by a worker whose lease ran out.
const DUE: &str = "((status = 'scheduled' AND due_at <= $3) OR (status = 'placing' AND lease_expires_at < $3))";

impl Store {
    /// Stores the callback asked for on `call_sid`, or moves the one already asked
    /// for on that call (while it is still scheduled).
    pub async fn schedule_callback(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        new: NewCallback<'_>,
    ) -> Result<StoredCallback, StoreError> {
        let now = now_ms();
        let id = format!("cb{:016x}", rand::random::<u64>());
        sqlx::query(
            "INSERT INTO callbacks (id, tenant_id, agent_id, call_sid, to_number, requested_time, context, due_at, \
                 status, attempts, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'scheduled', 0, $9, $9) \
             ON CONFLICT (agent_id, call_sid) DO UPDATE SET requested_time = excluded.requested_time, \
                 context = excluded.context, due_at = excluded.due_at, updated_at = excluded.updated_at \
             WHERE callbacks.status = 'scheduled' AND callbacks.tenant_id = excluded.tenant_id",
        )
        .bind(&id)
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(new.call_sid.as_str())
        .bind(new.to)
        .bind(new.requested_time)
        .bind(new.context)
        .bind(new.due_at)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        let row: Row = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM callbacks WHERE agent_id = $1 AND call_sid = $2 AND tenant_id = $3"
        ))
        .bind(agent.as_str())
        .bind(new.call_sid.as_str())
        .bind(tenant.as_str())
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        decode(row)
    }

    /// The agent's callbacks: those to come first (the next due first), then the
    /// most recent of those done. Done ones older than 30 days are dropped here.
    pub async fn list_callbacks(&self, tenant: &TenantId, agent: &AgentId) -> Result<Vec<Callback>, StoreError> {
        sqlx::query(
            "DELETE FROM callbacks WHERE tenant_id = $1 AND agent_id = $2 \
             AND status IN ('placed', 'failed', 'cancelled') AND updated_at < $3",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(now_ms() - KEEP_DONE_MS)
        .execute(&self.db.pool)
        .await?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM callbacks WHERE tenant_id = $1 AND agent_id = $2 \
             ORDER BY CASE WHEN status IN ('scheduled', 'placing') THEN 0 ELSE 1 END, \
                 CASE WHEN status IN ('scheduled', 'placing') THEN due_at ELSE -updated_at END, id \
             LIMIT 200"
        ))
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .fetch_all(&self.db.pool)
        .await?;
        rows.into_iter().map(|r| decode(r).map(|c| c.callback)).collect()
    }

    /// Cancels a scheduled callback.
    pub async fn cancel_callback(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        id: &str,
    ) -> Result<Result<Callback, CancelRefused>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE callbacks SET status = 'cancelled', updated_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND agent_id = $4 AND status = 'scheduled' RETURNING {COLUMNS}"
        ))
        .bind(now_ms())
        .bind(id)
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .fetch_optional(&self.db.pool)
        .await?;
        if let Some(row) = row {
            return Ok(Ok(decode(row)?.callback));
        }
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM callbacks WHERE id = $1 AND tenant_id = $2 AND agent_id = $3"
        ))
        .bind(id)
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(Err(match row {
            Some(row) => CancelRefused::Too(decode(row)?.callback.status),
            None => CancelRefused::NotFound,
        }))
    }

    /// Cancels the agent's scheduled callbacks, saying why (its deletion); those
    /// being placed or done are left as they are. Returns how many were cancelled.
    pub async fn cancel_agent_callbacks(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        why: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE callbacks SET status = 'cancelled', error = $1, updated_at = $2 \
             WHERE tenant_id = $3 AND agent_id = $4 AND status = 'scheduled'",
        )
        .bind(why)
        .bind(now_ms())
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Takes the next due callback for `owner` until `lease_until`. An attempt taken
    /// over from a dead worker keeps its `attempt_started_at`.
    pub async fn claim_callback(&self, owner: &str, lease_until: i64) -> Result<Option<StoredCallback>, StoreError> {
        // The outer condition repeats the inner one: under PostgreSQL's read committed,
        // a worker that lost the race re-checks the row it waited for and updates nothing.
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE callbacks SET \
                 attempt_started_at = CASE WHEN status = 'placing' THEN attempt_started_at ELSE $3 END, \
                 status = 'placing', attempts = attempts + 1, lease_owner = $1, lease_expires_at = $2, \
                 updated_at = $3 \
             WHERE id = (SELECT id FROM callbacks WHERE {DUE} ORDER BY due_at, id LIMIT 1) AND {DUE} \
             RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(lease_until)
        .bind(now_ms())
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(decode).transpose()
    }

    /// Ends `owner`'s attempt: `Placed` with the call's sid, `Scheduled` again at
    /// `retry_at` with the error, or `Failed` with it. False when `owner` no longer
    /// held the lease (another worker took it over).
    pub async fn finish_callback_attempt(
        &self,
        id: &str,
        owner: &str,
        outcome: CallbackOutcome<'_>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let (status, placed, error, due) = match outcome {
            CallbackOutcome::Placed(sid) => ("placed", Some(sid.as_str()), None, None),
            CallbackOutcome::Retry { at, error } => ("scheduled", None, Some(error), Some(at)),
            CallbackOutcome::Failed(error) => ("failed", None, Some(error), None),
        };
        let done = sqlx::query(
            "UPDATE callbacks SET status = $1, placed_call_sid = $2, error = $3, due_at = COALESCE($4, due_at), \
                 lease_owner = NULL, lease_expires_at = NULL, updated_at = $5 \
             WHERE id = $6 AND lease_owner = $7 AND status = 'placing'",
        )
        .bind(status)
        .bind(placed)
        .bind(error)
        .bind(due)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// How an attempt at placing a callback ended.
pub enum CallbackOutcome<'a> {
    Placed(&'a CallSid),
    Retry { at: i64, error: &'a str },
    Failed(&'a str),
}
