//! API keys. A key is `tvk_{keyId}_{secret}`: the key id (12 base32 characters) is
//! public and names the key in listings and revocation; the secret is 160 random
//! bits. Only the SHA-256 of the whole key is stored. A fast hash is right here:
//! the key is random, not a password, so there is nothing to brute-force.

use agent_spec::TenantId;
use agent_spec::api::IssuedApiKey;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{Store, StoreError};
use crate::db::{from_ms, now_ms};

const PREFIX: &str = "tvk_";
const KEY_ID_LEN: usize = 12;
const SECRET_LEN: usize = 32;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

pub(super) fn random_base32(len: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len).map(|_| char::from(ALPHABET[rng.gen_range(0..32)])).collect()
}

pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Whether `raw` has the shape of one of our keys (cheap check before any lookup).
pub fn looks_like_key(raw: &str) -> bool {
    raw.len() == PREFIX.len() + KEY_ID_LEN + 1 + SECRET_LEN
        && raw.starts_with(PREFIX)
        && raw.as_bytes()[PREFIX.len() + KEY_ID_LEN] == b'_'
}

/// The key id of `raw` when it has the shape of a key (`tvk_{keyId}_{secret}`, the
/// id in our alphabet), whether or not such a key exists: what failed attempts
/// are counted against.
pub fn key_id_of(raw: &str) -> Option<&str> {
    if !looks_like_key(raw) {
        return None;
    }
    let id = &raw[PREFIX.len()..PREFIX.len() + KEY_ID_LEN];
    id.bytes().all(|b| ALPHABET.contains(&b)).then_some(id)
}

/// Who a credential authenticates: the tenant, the API key (presented, or the one a
/// session was opened with) and, for a session token, the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub tenant: TenantId,
    pub key_id: String,
    pub session_id: Option<String>,
}

pub(super) fn parse_tenant(raw: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(raw).map_err(|e| StoreError::Corrupt { what: "tenant id".into(), reason: e.to_string() })
}

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub label: String,
    #[serde(with = "agent_spec::api::timestamp")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "agent_spec::api::timestamp::option")]
    pub revoked_at: Option<time::OffsetDateTime>,
}

impl Store {
    /// Issues a key for `tenant`. The returned `api_key` is the only copy.
    pub async fn issue_api_key(&self, tenant: &TenantId, label: &str) -> Result<IssuedApiKey, StoreError> {
        if !self.tenant_exists(tenant).await? {
            return Err(StoreError::NotFound);
        }
        let key_id = random_base32(KEY_ID_LEN);
        let key = SecretString::from(format!("{PREFIX}{key_id}_{}", random_base32(SECRET_LEN)));
        let now = now_ms();
        sqlx::query("INSERT INTO api_keys (id, tenant_id, key_hash, label, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key_id)
            .bind(tenant.as_str())
            .bind(hash_key(key.expose_secret()))
            .bind(label)
            .bind(now)
            .execute(&self.db.pool)
            .await?;
        Ok(IssuedApiKey {
            key_id,
            tenant_id: tenant.clone(),
            label: label.to_owned(),
            api_key: key.expose_secret().to_owned(),
            created_at: from_ms(now),
        })
    }

    /// Who a presented credential (an API key or a session token) authenticates, if
    /// it exists, has not expired and neither it nor its API key is revoked.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Credential>, StoreError> {
        self.authenticate_at(presented, now_ms()).await
    }

    /// [`Store::authenticate`] as of `now_ms` (Unix milliseconds).
    pub async fn authenticate_at(&self, presented: &str, now_ms: i64) -> Result<Option<Credential>, StoreError> {
        if looks_like_key(presented) {
            let row: Option<(String, String)> =
                sqlx::query_as("SELECT id, tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                    .bind(hash_key(presented))
                    .fetch_optional(&self.db.pool)
                    .await?;
            return row
                .map(|(key_id, tenant)| Ok(Credential { tenant: parse_tenant(&tenant)?, key_id, session_id: None }))
                .transpose();
        }
        if super::sessions::looks_like_session_token(presented) {
            return self.authenticate_session(presented, now_ms).await;
        }
        Ok(None)
    }

    /// Revokes a key of `tenant`, and the sessions opened with it. Revoking twice is
    /// not an error. (A session is refused once its key is revoked in any case: see
    /// [`Store::authenticate`]; marking them keeps the table truthful.)
    pub async fn revoke_api_key(&self, tenant: &TenantId, key_id: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.db.pool.begin().await?;
        let revoked =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL")
                .bind(now)
                .bind(tenant.as_str())
                .bind(key_id)
                .execute(&mut *tx)
                .await?;
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE tenant_id = $2 AND key_id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(tenant.as_str())
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if revoked.rows_affected() == 0 {
            // Already revoked is fine; a key this tenant does not have is not.
            let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM api_keys WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(key_id)
                .fetch_optional(&self.db.pool)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        Ok(())
    }

    pub async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyInfo>, StoreError> {
        if !self.tenant_exists(tenant).await? {
            return Err(StoreError::NotFound);
        }
        let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, label, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key_id, label, created, revoked)| ApiKeyInfo {
                key_id,
                label,
                created_at: from_ms(created),
                revoked_at: revoked.map(from_ms),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape() {
        let key = format!("{PREFIX}{}_{}", random_base32(KEY_ID_LEN), random_base32(SECRET_LEN));
        assert!(looks_like_key(&key));
        assert!(!looks_like_key("tvk_short"));
        assert!(!looks_like_key(&key.replace('_', "-")));
        assert_eq!(key_id_of(&key), Some(&key[4..16]));
        assert_eq!(key_id_of("tvk_AAAAAAAAAAAA_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"), None, "not our alphabet");
        assert_eq!(key_id_of("tvs_whatever"), None);
    }
}
