//! Agent configurations, per tenant. The config is stored as JSON (re-validated
//! when read back), the secrets sealed by [`SecretsCipher`](crate::crypto::SecretsCipher).
//! Every update is conditional on the version the caller read (optimistic
//! concurrency): a stale write is a [`StoreError::VersionConflict`], never a lost update.

use agent_spec::api::{AgentResponse, DeploymentStatus, DeploymentSummary, SecretState, SecretsStatus};
use agent_spec::{AgentConfig, AgentId, AgentSecrets, DeploymentId, TenantId};

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::quotas::{QuotaLimits, check_agent, quota_use_on};
use super::{Store, StoreError};
use crate::db::{from_ms, now_ms};

/// An agent as stored, without its secrets.
#[derive(Debug, Clone)]
pub struct StoredAgent {
    pub id: AgentId,
    pub tenant_id: TenantId,
    pub config: AgentConfig,
    pub secrets: SecretsStatus,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Its latest deployment, where the read joined it in.
    pub deployment: Option<DeploymentSummary>,
    /// The listener it is placed on, where the read joined it in.
    pub listener_arn: Option<String>,
    /// The image of its latest active deploy, where the read joined it in.
    pub runtime_image: Option<String>,
}

impl StoredAgent {
    pub fn into_response(self) -> AgentResponse {
        AgentResponse {
            id: self.id,
            tenant_id: self.tenant_id,
            version: self.version,
            created_at: from_ms(self.created_at),
            updated_at: from_ms(self.updated_at),
            config: self.config,
            secrets: self.secrets,
            voice_url: None,
            deployment: self.deployment,
            runtime_image: self.runtime_image,
        }
    }
}

/// Position in a tenant's agent list (ordered by creation time, then id):
/// `{created_at}.{id}` ([`super::cursor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub created_at: i64,
    pub id: AgentId,
}

impl PageCursor {
    pub fn encode(&self) -> String {
        super::cursor::encode(self.created_at, self.id.as_str())
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (created_at, id) = super::cursor::decode(raw, AgentId::parse)?;
        Some(Self { created_at, id })
    }
}

/// Whether any agent is stored (so sealed secrets exist).
pub async fn has_agents(db: &crate::db::Db) -> Result<bool, StoreError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM agents LIMIT 1").fetch_optional(&db.pool).await?;
    Ok(row.is_some())
}

// Bits of the `secrets_set` column.
const OPENAI_API_KEY_SET: i64 = 1;
const WEBHOOK_SIGNING_SECRET_SET: i64 = 2;

fn secrets_set_bits(s: &AgentSecrets) -> i64 {
    let mut bits = 0;
    if s.openai_api_key.is_some() {
        bits |= OPENAI_API_KEY_SET;
    }
    if s.webhook_signing_secret.is_some() {
        bits |= WEBHOOK_SIGNING_SECRET_SET;
    }
    bits
}

fn status_from_bits(bits: i64) -> SecretsStatus {
    SecretsStatus {
        // Validation refuses an agent without it, so every stored agent has one.
        twilio_auth_token: SecretState::Set,
        openai_api_key: (bits & OPENAI_API_KEY_SET != 0).into(),
        webhook_signing_secret: (bits & WEBHOOK_SIGNING_SECRET_SET != 0).into(),
    }
}

const COLUMNS: &str = "id, tenant_id, config, secrets_set, version, created_at, updated_at";

/// An `agents` row as selected by [`COLUMNS`].
struct Row {
    id: String,
    tenant_id: String,
    config: String,
    secrets_set: i64,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

impl sqlx::FromRow<'_, AnyRow> for Row {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            config: row.try_get("config")?,
            secrets_set: row.try_get("secrets_set")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// What reads that show the agent select: its row and its latest deployment, joined
/// in the same query (one round trip for `GET /v1/agents/{id}` and each list page).
const SHOWN_COLUMNS: &str = "a.id, a.tenant_id, a.config, a.secrets_set, a.version, a.created_at, a.updated_at, \
                             d.id AS dep_id, d.action AS dep_action, d.status AS dep_status, \
                             d.updated_at AS dep_updated_at, p.listener_arn AS placement_listener, \
                             (SELECT r.image FROM deployments r WHERE r.agent_id = a.id AND r.action = 'deploy' \
                              AND r.status = 'active' AND r.image IS NOT NULL \
                              ORDER BY r.created_at DESC, r.id DESC LIMIT 1) AS running_image";
const SHOWN_FROM: &str = "agents a LEFT JOIN deployments d ON d.id = (SELECT l.id FROM deployments l \
                          WHERE l.agent_id = a.id ORDER BY l.created_at DESC, l.id DESC LIMIT 1) \
                          LEFT JOIN placements p ON p.agent_id = a.id AND p.tenant_id = a.tenant_id";

struct ShownRow {
    row: Row,
    dep_id: Option<String>,
    dep_action: Option<String>,
    dep_status: Option<String>,
    dep_updated_at: Option<i64>,
    placement_listener: Option<String>,
    running_image: Option<String>,
}

impl sqlx::FromRow<'_, AnyRow> for ShownRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            row: Row::from_row(row)?,
            dep_id: row.try_get("dep_id")?,
            dep_action: row.try_get("dep_action")?,
            dep_status: row.try_get("dep_status")?,
            dep_updated_at: row.try_get("dep_updated_at")?,
            placement_listener: row.try_get("placement_listener")?,
            running_image: row.try_get("running_image")?,
        })
    }
}

fn decode_shown(shown: ShownRow) -> Result<StoredAgent, StoreError> {
    let ShownRow { row, dep_id, dep_action, dep_status, dep_updated_at, placement_listener, running_image } = shown;
    let mut agent = decode_row(row)?;
    agent.listener_arn = placement_listener;
    agent.runtime_image = running_image;
    if let (Some(id), Some(action), Some(status), Some(updated_at)) = (dep_id, dep_action, dep_status, dep_updated_at) {
        let corrupt = |reason: String| StoreError::Corrupt { what: format!("deployment {id}"), reason };
        agent.deployment = Some(DeploymentSummary {
            id: DeploymentId::parse(&id).map_err(|e| corrupt(e.to_string()))?,
            action: super::deployments::parse_action(&action)
                .ok_or_else(|| corrupt(format!("unknown action {action:?}")))?,
            status: DeploymentStatus::parse(&status).ok_or_else(|| corrupt(format!("unknown status {status:?}")))?,
            updated_at: from_ms(updated_at),
        });
    }
    Ok(agent)
}

/// A row with its sealed secrets.
struct SealedRow {
    row: Row,
    secrets: Vec<u8>,
}

impl sqlx::FromRow<'_, AnyRow> for SealedRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self { row: Row::from_row(row)?, secrets: row.try_get("secrets")? })
    }
}

/// Re-validates a stored row: ids, and the config through `AgentConfig`'s own types.
fn decode_row(row: Row) -> Result<StoredAgent, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what: format!("agent {}", row.id), reason };
    Ok(StoredAgent {
        id: AgentId::parse(&row.id).map_err(|e| corrupt(e.to_string()))?,
        tenant_id: TenantId::parse(&row.tenant_id).map_err(|e| corrupt(e.to_string()))?,
        config: serde_json::from_str(&row.config).map_err(|e| corrupt(e.to_string()))?,
        secrets: status_from_bits(row.secrets_set),
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        deployment: None,
        listener_arn: None,
        runtime_image: None,
    })
}

impl Store {
    /// Stores a new agent if it fits the tenant's quotas (`defaults` with the tenant's
    /// overrides): [`StoreError::OverQuota`] otherwise.
    pub async fn create_agent(
        &self,
        tenant: &TenantId,
        config: AgentConfig,
        secrets: &AgentSecrets,
        defaults: QuotaLimits,
    ) -> Result<StoredAgent, StoreError> {
        let id = AgentId::generate();
        let now = now_ms();
        let sealed = self.cipher.seal(tenant, &id, secrets);
        let limits = defaults.with(self.quota_overrides(tenant).await?);
        let mut tx = self.quota_transaction(tenant).await?;
        let used = quota_use_on(&mut tx, tenant, None).await?;
        check_agent(limits, used, &config, true)?;
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, config, secrets, secrets_set, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(serde_json::to_string(&config).expect("config serializes"))
        .bind(sealed)
        .bind(secrets_set_bits(secrets))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(StoredAgent {
            id,
            tenant_id: tenant.clone(),
            config,
            secrets: SecretsStatus::from(secrets),
            version: 1,
            created_at: now,
            updated_at: now,
            deployment: None,
            listener_arn: None,
            runtime_image: None,
        })
    }

    /// The agent with its latest deployment.
    pub async fn get_agent(&self, tenant: &TenantId, id: &AgentId) -> Result<StoredAgent, StoreError> {
        let row: Option<ShownRow> =
            sqlx::query_as(&format!("SELECT {SHOWN_COLUMNS} FROM {SHOWN_FROM} WHERE a.tenant_id = $1 AND a.id = $2"))
                .bind(tenant.as_str())
                .bind(id.as_str())
                .fetch_optional(&self.db.pool)
                .await?;
        decode_shown(row.ok_or(StoreError::NotFound)?)
    }

    /// The agent with its decrypted secrets (for updates and deployment only).
    pub async fn get_agent_with_secrets(
        &self,
        tenant: &TenantId,
        id: &AgentId,
    ) -> Result<(StoredAgent, AgentSecrets), StoreError> {
        let row: Option<SealedRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS}, secrets FROM agents WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.as_str())
                .bind(id.as_str())
                .fetch_optional(&self.db.pool)
                .await?;
        let SealedRow { row, secrets: sealed } = row.ok_or(StoreError::NotFound)?;
        let agent = decode_row(row)?;
        let secrets = self
            .cipher
            .open(tenant, id, &sealed)
            .map_err(|e| StoreError::Corrupt { what: format!("secrets of agent {id}"), reason: e.to_string() })?;
        Ok((agent, secrets))
    }

    /// One page of the tenant's agents after `after`, oldest first, and the cursor
    /// of the next page if there is one. Keyset pagination: agents created or deleted
    /// meanwhile never make another agent appear twice or be skipped.
    pub async fn list_agents(
        &self,
        tenant: &TenantId,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<(Vec<StoredAgent>, Option<PageCursor>), StoreError> {
        let fetch = i64::from(limit) + 1;
        let rows: Vec<ShownRow> = match after {
            None => sqlx::query_as(&format!(
                "SELECT {SHOWN_COLUMNS} FROM {SHOWN_FROM} WHERE a.tenant_id = $1 ORDER BY a.created_at, a.id LIMIT $2"
            ))
            .bind(tenant.as_str())
            .bind(fetch)
            .fetch_all(&self.db.pool)
            .await?,
            Some(c) => {
                sqlx::query_as(&format!(
                    "SELECT {SHOWN_COLUMNS} FROM {SHOWN_FROM} WHERE a.tenant_id = $1 \
                     AND (a.created_at > $2 OR (a.created_at = $2 AND a.id > $3)) ORDER BY a.created_at, a.id LIMIT $4"
                ))
                .bind(tenant.as_str())
                .bind(c.created_at)
                .bind(c.id.as_str())
                .bind(fetch)
                .fetch_all(&self.db.pool)
                .await?
            }
        };
        let mut agents = rows.into_iter().map(decode_shown).collect::<Result<Vec<_>, _>>()?;
        let next = if agents.len() > limit as usize {
            agents.truncate(limit as usize);
            agents.last().map(|a| PageCursor { created_at: a.created_at, id: a.id.clone() })
        } else {
            None
        };
        Ok((agents, next))
    }

    /// Replaces the agent's config and secrets if its version is still
    /// `expected_version`, returning the row as written (not as re-read, which a
    /// concurrent writer could already have changed).
    pub async fn update_agent(
        &self,
        tenant: &TenantId,
        id: &AgentId,
        expected_version: i64,
        config: AgentConfig,
        secrets: &AgentSecrets,
        defaults: QuotaLimits,
    ) -> Result<StoredAgent, StoreError> {
        let limits = defaults.with(self.quota_overrides(tenant).await?);
        let mut tx = self.quota_transaction(tenant).await?;
        let used = quota_use_on(&mut tx, tenant, Some(id)).await?;
        check_agent(limits, used, &config, false)?;
        let written: Option<Row> = sqlx::query_as(&format!(
            "UPDATE agents SET config = $1, secrets = $2, secrets_set = $3, version = version + 1, updated_at = $4 \
             WHERE tenant_id = $5 AND id = $6 AND version = $7 RETURNING {COLUMNS}"
        ))
        .bind(serde_json::to_string(&config).expect("config serializes"))
        .bind(self.cipher.seal(tenant, id, secrets))
        .bind(secrets_set_bits(secrets))
        .bind(now_ms())
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(expected_version)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match written {
            Some(row) => decode_row(row),
            None => {
                let current = self.get_agent(tenant, id).await?;
                Err(StoreError::VersionConflict { current: current.version })
            }
        }
    }

    /// Checks that the secrets cipher opens what is already stored (one agent is
    /// enough: all are sealed with the same key). Run at start-up, so a wrong or lost
    /// key stops the server instead of failing every later update.
    pub async fn verify_secrets_key(&self) -> Result<(), StoreError> {
        let row: Option<(String, String, Vec<u8>)> =
            sqlx::query_as("SELECT tenant_id, id, secrets FROM agents ORDER BY created_at LIMIT 1")
                .fetch_optional(&self.db.pool)
                .await?;
        let Some((tenant, id, sealed)) = row else { return Ok(()) };
        let corrupt = |reason: String| StoreError::Corrupt { what: format!("agent {id}"), reason };
        let tenant = TenantId::parse(&tenant).map_err(|e| corrupt(e.to_string()))?;
        let agent = AgentId::parse(&id).map_err(|e| corrupt(e.to_string()))?;
        self.cipher.open(&tenant, &agent, &sealed).map(drop).map_err(|e| corrupt(e.to_string()))
    }

    pub async fn has_agents(&self) -> Result<bool, StoreError> {
        has_agents(&self.db).await
    }

    /// Deletes the agent, if its version is still `expected_version` when given.
    pub async fn delete_agent(
        &self,
        tenant: &TenantId,
        id: &AgentId,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let result = match expected_version {
            None => {
                sqlx::query("DELETE FROM agents WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .execute(&self.db.pool)
                    .await?
            }
            Some(v) => {
                sqlx::query("DELETE FROM agents WHERE tenant_id = $1 AND id = $2 AND version = $3")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .bind(v)
                    .execute(&self.db.pool)
                    .await?
            }
        };
        if result.rows_affected() == 0 {
            let current = self.get_agent(tenant, id).await?;
            return Err(StoreError::VersionConflict { current: current.version });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = PageCursor { created_at: 1_700_000_000_123, id: AgentId::generate() };
        assert_eq!(PageCursor::decode(&c.encode()), Some(c));
        for bad in ["", "!!!", "12.not-an-id", "x.abcdefghijklmnop"] {
            assert_eq!(PageCursor::decode(bad), None, "{bad}");
        }
    }
}
