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
