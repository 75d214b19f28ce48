//! The database: one sqlx `AnyPool` over SQLite (default, a file under the data
//! directory) or PostgreSQL (when `DATABASE_URL` is a `postgres://` URL). The same
//! queries run on both: `$N` placeholders, BIGINT timestamps in Unix milliseconds,
//! TEXT and bytes columns only. Migrations are embedded, one set per backend.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// The migrations, embedded in the binary, one set per backend: (version, file name
/// after the version, SQL). `migrations::tests` checks them against the directories.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "tenants_keys_agents", include_str!("../migrations/sqlite/0001_tenants_keys_agents.sql")),
    (2, "placements", include_str!("../migrations/sqlite/0002_placements.sql")),
    (3, "deployments", include_str!("../migrations/sqlite/0003_deployments.sql")),
    (4, "rollout_watch", include_str!("../migrations/sqlite/0004_rollout_watch.sql")),
    (5, "placement_targets", include_str!("../migrations/sqlite/0005_placement_targets.sql")),
    (6, "sessions", include_str!("../migrations/sqlite/0006_sessions.sql")),
    (7, "tenant_quotas", include_str!("../migrations/sqlite/0007_tenant_quotas.sql")),
    (8, "number_bindings", include_str!("../migrations/sqlite/0008_number_bindings.sql")),
    (9, "outbound_calls", include_str!("../migrations/sqlite/0009_outbound_calls.sql")),
    (10, "callbacks", include_str!("../migrations/sqlite/0010_callbacks.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "tenants_keys_agents", include_str!("../migrations/postgres/0001_tenants_keys_agents.sql")),
    (2, "placements", include_str!("../migrations/postgres/0002_placements.sql")),
    (3, "deployments", include_str!("../migrations/postgres/0003_deployments.sql")),
    (4, "rollout_watch", include_str!("../migrations/postgres/0004_rollout_watch.sql")),
    (5, "placement_targets", include_str!("../migrations/postgres/0005_placement_targets.sql")),
    (6, "sessions", include_str!("../migrations/postgres/0006_sessions.sql")),
    (7, "tenant_quotas", include_str!("../migrations/postgres/0007_tenant_quotas.sql")),
    (8, "number_bindings", include_str!("../migrations/postgres/0008_number_bindings.sql")),
    (9, "outbound_calls", include_str!("../migrations/postgres/0009_outbound_calls.sql")),
    (10, "callbacks", include_str!("../migrations/postgres/0010_callbacks.sql")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres://")
        }
    }
}

#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

impl Db {
    /// Connects (creating the SQLite file and its directory if needed) and applies
    /// pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .context("parse DATABASE_URL")?
            // Statements are logged at debug; only slow ones at warn.
            .log_statements(tracing::log::LevelFilter::Debug)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL is durable in WAL mode
                        // across application crashes; a busy writer waits instead of failing.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connect to the database")?;
        let migrations = match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrator = sqlx::migrate::Migrator::new(migrations::Embedded(migrations))
            .await
            .context("read the embedded database migrations")?;
        migrator.run(&pool).await.context("apply database migrations")?;
        Ok(Db { pool, backend })
    }

    /// Readiness: the database answers a query.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }
}

/// Makes sure the SQLite file can be created: its directory exists and the URL asks
/// for read-write-create.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("DATABASE_URL must name a SQLite file, e.g. sqlite://data/tempovoice.db");
    }
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create database directory {}", dir.display()))?;
    }
    let query = if query.split('&').any(|p| p.starts_with("mode=")) {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Now, in Unix milliseconds: the representation of every timestamp in the database.
pub fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos().div_euclid(1_000_000) as i64
}

/// A database timestamp as a date-time.
pub fn from_ms(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/db.sqlite");
        let url = format!("sqlite://{}", file.display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(file.parent().unwrap().is_dir());
        assert!(prepare_sqlite_url("sqlite::memory:").is_err());
        assert!(prepare_sqlite_url(&format!("{url}?mode=ro")).unwrap().ends_with("?mode=ro"));
        assert!(Backend::of_url("mysql://x").is_err());
    }
}

/// Migrations compiled into the binary, given to sqlx's `Migrator` as a migration
/// source. sqlx's `migrate!` macro does the same at compile time, but its macros crate
/// compiles every database driver a second time for the compiler (about 70 s of CPU
/// on a cold build); these are the same migrations, with the same checksums (the
/// SHA-384 of each file) and descriptions, so databases migrated either way agree.
mod migrations {
    use sqlx::error::BoxDynError;
    use sqlx::migrate::{Migration, MigrationSource, MigrationType};

    #[derive(Debug)]
    pub struct Embedded(pub &'static [(i64, &'static str, &'static str)]);

    impl<'s> MigrationSource<'s> for Embedded {
        fn resolve(self) -> futures::future::BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
            Box::pin(async move {
                Ok(self
                    .0
                    .iter()
                    .map(|(version, name, sql)| {
                        // As sqlx names a migration file's description; a file that starts
                        // with `-- no-transaction` runs outside a transaction.
                        let description = name.replace('_', " ");
                        let no_tx = sql.starts_with("-- no-transaction");
                        Migration::new(*version, description.into(), MigrationType::Simple, (*sql).into(), no_tx)
                    })
                    .collect())
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use std::path::Path;

        use sqlx::migrate::Migrator;

        use super::Embedded;

        /// Every file of each migrations directory is embedded, in order, with the
        /// version, description, checksum and transaction mode sqlx reads from it.
        #[tokio::test]
        async fn the_embedded_migrations_are_the_directorys() {
            for (dir, embedded) in
                [("sqlite", super::super::SQLITE_MIGRATIONS), ("postgres", super::super::POSTGRES_MIGRATIONS)]
            {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
                let from_files = Migrator::new(path.as_path()).await.unwrap();
                let from_binary = Migrator::new(Embedded(embedded)).await.unwrap();
                let summary = |m: &Migrator| -> Vec<_> {
                    m.iter()
                        .map(|m| (m.version, m.description.to_string(), m.checksum.to_vec(), m.no_tx, m.migration_type))
                        .collect()
                };
                assert_eq!(summary(&from_binary), summary(&from_files), "migrations/{dir}");
                assert!(!summary(&from_files).is_empty(), "migrations/{dir} has migrations");
            }
        }
    }
}
