//! Number bindings: the Twilio numbers the control plane pointed at agents, with
//! what each pointed at before. A binding is written before Twilio is asked to
//! re-point the number, so a crash in between still leaves the previous routing on
//! record; `UNIQUE (account_sid, phone_number)` keeps two agents from taking one
//! number at once.

use agent_spec::AgentSecrets;
use agent_spec::{AgentId, TenantId};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::db::now_ms;
use crate::twilio::VoiceRouting;

/// One agent's number, as the control plane pointed it.
#[derive(Debug, Clone)]
pub struct NumberBinding {
    pub agent_id: AgentId,
    pub tenant_id: TenantId,
    pub account_sid: String,
    pub phone_number: String,
    pub number_sid: String,
    /// The agent's secrets when it was bound: the auth token to give the number back with.
    pub secrets: AgentSecrets,
    /// The voice URL the agent set.
    pub voice_url: String,
    /// What the number routed to before the agent took it.
    pub previous: VoiceRouting,
    pub bound_at: i64,
}

/// A binding to write.
pub struct NewBinding<'a> {
    pub account_sid: &'a str,
    pub phone_number: &'a str,
    pub number_sid: &'a str,
    pub secrets: &'a AgentSecrets,
    pub voice_url: &'a str,
    pub previous: &'a VoiceRouting,
}

/// Another agent holds the number.
#[derive(Debug)]
pub struct NumberTaken;

struct Row {
    agent_id: String,
    tenant_id: String,
    account_sid: String,
    phone_number: String,
    number_sid: String,
    secrets: Vec<u8>,
    voice_url: String,
    previous_routing: String,
    bound_at: i64,
}

impl sqlx::FromRow<'_, AnyRow> for Row {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            agent_id: row.try_get("agent_id")?,
            tenant_id: row.try_get("tenant_id")?,
            account_sid: row.try_get("account_sid")?,
            phone_number: row.try_get("phone_number")?,
            number_sid: row.try_get("number_sid")?,
            secrets: row.try_get("secrets")?,
            voice_url: row.try_get("voice_url")?,
            previous_routing: row.try_get("previous_routing")?,
            bound_at: row.try_get("bound_at")?,
        })
    }
}

const COLUMNS: &str =
    "agent_id, tenant_id, account_sid, phone_number, number_sid, secrets, voice_url, previous_routing, bound_at";

impl Store {
    fn decode_binding(&self, row: Row) -> Result<NumberBinding, StoreError> {
        let corrupt =
            |reason: String| StoreError::Corrupt { what: format!("number binding of {}", row.agent_id), reason };
        let agent_id = AgentId::parse(&row.agent_id).map_err(|e| corrupt(e.to_string()))?;
        let tenant_id = TenantId::parse(&row.tenant_id).map_err(|e| corrupt(e.to_string()))?;
        let secrets = self.cipher.open(&tenant_id, &agent_id, &row.secrets).map_err(|e| corrupt(e.to_string()))?;
        let previous = serde_json::from_str(&row.previous_routing).map_err(|e| corrupt(e.to_string()))?;
        Ok(NumberBinding {
            agent_id,
            tenant_id,
            account_sid: row.account_sid,
            phone_number: row.phone_number,
            number_sid: row.number_sid,
            secrets,
            voice_url: row.voice_url,
            previous,
            bound_at: row.bound_at,
        })
    }

    /// The number the control plane pointed at `agent`, if any.
    pub async fn number_binding(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Option<NumberBinding>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM number_bindings WHERE tenant_id = $1 AND agent_id = $2"))
                .bind(tenant.as_str())
                .bind(agent.as_str())
                .fetch_optional(&self.db.pool)
                .await?;
        row.map(|r| self.decode_binding(r)).transpose()
    }

    /// Which agent (of any tenant) holds `phone_number` of `account_sid`.
    pub async fn number_holder(
        &self,
        account_sid: &str,
        phone_number: &str,
    ) -> Result<Option<(TenantId, AgentId)>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT tenant_id, agent_id FROM number_bindings WHERE account_sid = $1 AND phone_number = $2",
        )
        .bind(account_sid)
        .bind(phone_number)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some((tenant, agent)) = row else { return Ok(None) };
        let corrupt =
            |reason: String| StoreError::Corrupt { what: format!("number binding of {phone_number}"), reason };
        Ok(Some((
            TenantId::parse(&tenant).map_err(|e| corrupt(e.to_string()))?,
            AgentId::parse(&agent).map_err(|e| corrupt(e.to_string()))?,
        )))
    }

    /// Records that `agent` holds the number (replacing its binding of the same
    /// number: the previous routing given is the one kept). `Ok(Err(NumberTaken))`
    /// when another agent holds it.
    pub async fn save_number_binding(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        b: NewBinding<'_>,
    ) -> Result<Result<(), NumberTaken>, StoreError> {
        let sealed = self.cipher.seal(tenant, agent, b.secrets);
        let previous = serde_json::to_string(b.previous).expect("routing serializes");
        let result = sqlx::query(
            "INSERT INTO number_bindings (agent_id, tenant_id, account_sid, phone_number, number_sid, secrets, \
             voice_url, previous_routing, bound_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (agent_id) DO UPDATE SET account_sid = excluded.account_sid, \
             phone_number = excluded.phone_number, number_sid = excluded.number_sid, secrets = excluded.secrets, \
             voice_url = excluded.voice_url, previous_routing = excluded.previous_routing",
        )
        .bind(agent.as_str())
        .bind(tenant.as_str())
        .bind(b.account_sid)
        .bind(b.phone_number)
        .bind(b.number_sid)
        .bind(sealed)
        .bind(b.voice_url)
        .bind(previous)
        .bind(now_ms())
        .execute(&self.db.pool)
        .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Err(NumberTaken)),
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets `agent`'s binding (its number was given back, or is no longer managed).
    pub async fn remove_number_binding(&self, tenant: &TenantId, agent: &AgentId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM number_bindings WHERE tenant_id = $1 AND agent_id = $2")
            .bind(tenant.as_str())
            .bind(agent.as_str())
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// The tenant's bindings (the numbers page).
    pub async fn number_bindings(&self, tenant: &TenantId) -> Result<Vec<NumberBinding>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM number_bindings WHERE tenant_id = $1 ORDER BY phone_number, agent_id"
        ))
        .bind(tenant.as_str())
        .fetch_all(&self.db.pool)
        .await?;
        rows.into_iter().map(|r| self.decode_binding(r)).collect()
    }

    /// The tenant that owns agent `id`, if the agent exists (any tenant).
    pub async fn agent_tenant(&self, id: &AgentId) -> Result<Option<TenantId>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT tenant_id FROM agents WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|(t,)| {
            TenantId::parse(&t).map_err(|e| StoreError::Corrupt { what: format!("agent {id}"), reason: e.to_string() })
        })
        .transpose()
    }
}
