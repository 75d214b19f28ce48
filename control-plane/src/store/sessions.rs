//! Sessions: an API key exchanged for a random session token (the dashboard's
//! sign-in), which then authenticates like the key until it expires, is revoked (its
//! holder signs out) or its API key is revoked. A token is `tvs_{secret}` with 260
//! random bits; only its SHA-256 is stored, with the tenant, the key it was opened
//! with and its expiry. A browser cookie therefore never holds the API key, and
//! signing out ends the session on the server: a copy of the cookie is worthless.

use agent_spec::TenantId;
use secrecy::{ExposeSecret, SecretString};

use super::api_keys::{Credential, hash_key, parse_tenant, random_base32};
use super::{Store, StoreError};
use crate::db::{from_ms, now_ms};

const PREFIX: &str = "tvs_";
/// 52 base32 characters: 260 random bits.
const SECRET_LEN: usize = 52;
const SESSION_ID_LEN: usize = 16;

/// The shortest and longest session a key can open.
pub const MIN_LIFETIME: time::Duration = time::Duration::minutes(1);
pub const MAX_LIFETIME: time::Duration = time::Duration::days(30);
/// Sessions one API key holds open at most; opening one more ends its oldest.
pub const MAX_SESSIONS_PER_KEY: i64 = 1_000;

/// Whether `raw` has the shape of a session token (cheap check before any lookup).
pub fn looks_like_session_token(raw: &str) -> bool {
    raw.len() == PREFIX.len() + SECRET_LEN && raw.starts_with(PREFIX)
}

/// A session just opened. `token` is the only copy.
pub struct OpenedSession {
    pub session_id: String,
    pub token: SecretString,
    pub key_id: String,
    pub expires_at: time::OffsetDateTime,
}

impl std::fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSession")
            .field("session_id", &self.session_id)
            .field("key_id", &self.key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens a session of `tenant` with its key `key_id`, lasting `lifetime`
    /// (clamped to [`MIN_LIFETIME`]..=[`MAX_LIFETIME`]). Expired sessions (of every
    /// tenant) are deleted on the way, and the key keeps at most
    /// [`MAX_SESSIONS_PER_KEY`] (its oldest end), so the table stays bounded.
    pub async fn open_session(
        &self,
        tenant: &TenantId,
        key_id: &str,
        lifetime: time::Duration,
    ) -> Result<OpenedSession, StoreError> {
        let lifetime = lifetime.clamp(MIN_LIFETIME, MAX_LIFETIME);
        let now = now_ms();
        let expires = now + lifetime.whole_milliseconds() as i64;
        let session_id = random_base32(SESSION_ID_LEN);
        let token = SecretString::from(format!("{PREFIX}{}", random_base32(SECRET_LEN)));
        let mut tx = self.db.pool.begin().await?;
        // Housekeeping, not a read of anyone's data: rows past their expiry
        // authenticate nobody.
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO sessions (id, tenant_id, key_id, token_hash, created_at, expires_at) \
             SELECT $1, tenant_id, id, $2, $3, $4 FROM api_keys \
             WHERE tenant_id = $5 AND id = $6 AND revoked_at IS NULL",
        )
        .bind(&session_id)
        .bind(hash_key(token.expose_secret()))
        .bind(now)
        .bind(expires)
        .bind(tenant.as_str())
        .bind(key_id)
        .execute(&mut *tx)
        .await
        .and_then(|done| if done.rows_affected() == 1 { Ok(()) } else { Err(sqlx::Error::RowNotFound) })
        .map_err(|e| match e {
            // The key was revoked (or is not this tenant's) meanwhile.
            sqlx::Error::RowNotFound => StoreError::NotFound,
            e => e.into(),
        })?;
        sqlx::query(
            "DELETE FROM sessions WHERE tenant_id = $1 AND key_id = $2 AND id NOT IN \
             (SELECT id FROM sessions WHERE tenant_id = $1 AND key_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3)",
        )
        .bind(tenant.as_str())
        .bind(key_id)
        .bind(MAX_SESSIONS_PER_KEY)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(OpenedSession { session_id, token, key_id: key_id.to_owned(), expires_at: from_ms(expires) })
    }

    /// The credential a session token stands for, if the session is live and its
    /// API key is not revoked.
    pub(super) async fn authenticate_session(
        &self,
        presented: &str,
        now_ms: i64,
    ) -> Result<Option<Credential>, StoreError> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT s.id, s.tenant_id, s.key_id FROM sessions s JOIN api_keys k ON k.id = s.key_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND k.revoked_at IS NULL",
        )
        .bind(hash_key(presented))
        .bind(now_ms)
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|(session_id, tenant, key_id)| {
            Ok(Credential { tenant: parse_tenant(&tenant)?, key_id, session_id: Some(session_id) })
        })
        .transpose()
    }

    /// Ends a session of `tenant` (signing out). Ending it twice is not an error.
    pub async fn revoke_session(&self, tenant: &TenantId, session_id: &str) -> Result<(), StoreError> {
        let ended =
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(tenant.as_str())
                .bind(session_id)
                .execute(&self.db.pool)
                .await?;
        if ended.rows_affected() == 0 {
            let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM sessions WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(session_id)
                .fetch_optional(&self.db.pool)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        let token = format!("{PREFIX}{}", random_base32(SECRET_LEN));
        assert!(looks_like_session_token(&token));
        assert!(!looks_like_session_token("tvs_short"));
        assert!(!super::super::api_keys::looks_like_key(&token), "a session token is not a key");
    }
}
