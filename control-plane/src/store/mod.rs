//! Persistence. [`Store`] holds the pool and the secrets cipher; its methods are
//! grouped by resource ([`tenants`], [`api_keys`], [`sessions`], [`agents`], [`quotas`]). Every method on
//! tenant-owned data takes the tenant id and puts it in the `WHERE` clause, so one
//! tenant's request can never read or change another tenant's rows.

pub mod agents;
pub mod api_keys;
pub mod callbacks;
pub mod cursor;
pub mod deployments;
pub mod numbers;
pub mod outbound;
pub mod placements;
pub mod quotas;
pub mod sessions;
pub mod tenants;

use crate::crypto::SecretsCipher;
use crate::db::Db;

#[derive(Debug, Clone)]
pub struct Store {
    pub db: Db,
    cipher: SecretsCipher,
}

impl Store {
    pub fn new(db: Db, cipher: SecretsCipher) -> Self {
        Self { db, cipher }
    }
}

/// What a store call can fail with, shaped around what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row for this tenant.
    #[error("not found")]
    NotFound,
    /// The row changed since the caller read it.
    #[error("version conflict: the current version is {current}")]
    VersionConflict { current: i64 },
    /// A stored row cannot be read back (bad JSON, undecryptable secrets).
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt { what: String, reason: String },
    /// Every listener is full.
    #[error("every listener is full ({listeners} listeners, {slots} agent slots in all)")]
    NoCapacity { listeners: usize, slots: u32 },
    /// Placing the agent would exceed an AWS quota; the message names it and how to raise it.
    #[error("{0}")]
    Quota(String),
    /// The change would take the tenant over one of its quotas.
    #[error(transparent)]
    OverQuota(#[from] quotas::OverQuota),
    /// Concurrent writers kept taking the same rows; worth retrying later.
    #[error("too much contention on {what}")]
    Contention { what: String },
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// Counts of what the database holds, for the control plane's metrics.
#[derive(Debug, Default)]
pub struct Figures {
    /// (action, status, count).
    pub deployments: Vec<(String, String, u64)>,
    /// (status, count).
    pub callbacks: Vec<(String, u64)>,
    pub live_outbound_calls: u64,
    pub agents: u64,
    pub tenants: u64,
}

impl Store {
    pub async fn figures(&self) -> Result<Figures, StoreError> {
        let deployments: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT action, status, COUNT(*) FROM deployments GROUP BY action, status ORDER BY action, status",
        )
        .fetch_all(&self.db.pool)
        .await?;
        let callbacks: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM callbacks GROUP BY status ORDER BY status")
                .fetch_all(&self.db.pool)
                .await?;
        let (live,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM outbound_calls WHERE ended_at IS NULL AND live_until > $1")
                .bind(crate::db::now_ms())
                .fetch_one(&self.db.pool)
                .await?;
        let (agents,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM agents").fetch_one(&self.db.pool).await?;
        let (tenants,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tenants").fetch_one(&self.db.pool).await?;
        let n = |v: i64| v.max(0) as u64;
        Ok(Figures {
            deployments: deployments.into_iter().map(|(a, s, c)| (a, s, n(c))).collect(),
            callbacks: callbacks.into_iter().map(|(s, c)| (s, n(c))).collect(),
            live_outbound_calls: n(live),
            agents: n(agents),
            tenants: n(tenants),
        })
    }
}
