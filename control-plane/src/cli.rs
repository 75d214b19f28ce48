//! The `control-plane` command. With no subcommand it serves the API. The operator
//! subcommands work on the same database as the server (same settings), print JSON
//! on stdout, and need no running server:
//!
//! ```text
//! control-plane tenant create --name "Rosa's Bakery"     # tenant + its first API key
//! control-plane key issue  --tenant <id> [--label CI]
//! control-plane key list   --tenant <id>
//! control-plane key revoke --tenant <id> --key-id <keyId>
//! ```

use agent_spec::TenantId;
use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::settings::Settings;
use crate::store::StoreError;

#[derive(Debug, Parser)]
#[command(name = "control-plane", version, about = "TempoVoice control plane")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API (the default).
    Serve,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage a tenant's API keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and issue its first API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// Label of the first API key.
        #[arg(long, default_value = "default")]
        key_label: String,
    },
    /// Show a tenant's quotas and use; with any of the flags, set those overrides
    /// first (a number, or `default` for the operator's default).
    Quotas {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        agents: Option<String>,
        /// Task CPU units × desired count over the tenant's agents (1024 = 1 vCPU).
        #[arg(long)]
        cpu_units: Option<String>,
        #[arg(long)]
        listener_slots: Option<String>,
        #[arg(long)]
        knowledge_bytes: Option<String>,
    },
}

/// `--flag N` sets an override, `--flag default` clears it; absent keeps it.
fn quota_flag(flag: &str, value: Option<String>, current: Option<u64>) -> anyhow::Result<Option<u64>> {
    match value.as_deref() {
        None => Ok(current),
        Some("default") => Ok(None),
        Some(v) => {
            v.parse::<u64>().map(Some).map_err(|_| anyhow::anyhow!("--{flag} {v:?} is not a whole number or `default`"))
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a new API key (shown once).
    Issue {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List a tenant's keys (ids and labels, never the keys).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key: requests with it are refused from now on.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        key_id: String,
    },
}

fn tenant_id(raw: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(raw).map_err(|e| anyhow::anyhow!("--tenant {e}"))
}

fn not_found(e: StoreError, what: &str) -> anyhow::Error {
    match e {
        StoreError::NotFound => anyhow::anyhow!("{what} not found"),
        other => anyhow::Error::new(other),
    }
}

/// Runs an operator subcommand against the database named by `settings`.
pub async fn run_operator_command(settings: &Settings, command: Command) -> anyhow::Result<()> {
    let store = crate::open_store(settings).await?;
    let label = |flag: &str, v: &str, required: bool| {
        agent_spec::values::single_line(v, required, crate::http::admin::LABEL_MAX)
            .map_err(|e| anyhow::anyhow!("{flag} {e}"))
    };
    let output = match command {
        Command::Serve => unreachable!("serve is handled by main"),
        Command::Tenant(TenantCommand::Create { name, key_label }) => {
            let name = label("--name", &name, true)?;
            let key_label = label("--key-label", &key_label, false)?;
            let tenant = store.create_tenant(&name).await.context("create tenant")?;
            let key = store.issue_api_key(&tenant.id, &key_label).await.context("issue api key")?;
            serde_json::json!({ "tenant": tenant, "api_key": key })
        }
        Command::Tenant(TenantCommand::Quotas { tenant, agents, cpu_units, listener_slots, knowledge_bytes }) => {
            let tenant = tenant_id(&tenant)?;
            if !store.tenant_exists(&tenant).await? {
                anyhow::bail!("tenant not found");
            }
            let current = store.quota_overrides(&tenant).await?;
            let overrides = crate::store::quotas::QuotaOverrides {
                agents: quota_flag("agents", agents, current.agents)?,
                cpu_units: quota_flag("cpu-units", cpu_units, current.cpu_units)?,
                listener_slots: quota_flag("listener-slots", listener_slots, current.listener_slots)?,
                knowledge_bytes: quota_flag("knowledge-bytes", knowledge_bytes, current.knowledge_bytes)?,
            };
            if overrides != current {
                store.set_quota_overrides(&tenant, overrides).await.map_err(|e| not_found(e, "tenant"))?;
            }
            let used = store.quota_use(&tenant, None).await?;
            serde_json::to_value(crate::store::quotas::TenantQuotas {
                limits: settings.tenant_quotas.with(overrides),
                overrides,
                used,
            })?
        }
        Command::Key(KeyCommand::Issue { tenant, label: key_label }) => {
            let key_label = label("--label", &key_label, false)?;
            let key =
                store.issue_api_key(&tenant_id(&tenant)?, &key_label).await.map_err(|e| not_found(e, "tenant"))?;
            serde_json::to_value(key)?
        }
        Command::Key(KeyCommand::List { tenant }) => {
            let keys = store.list_api_keys(&tenant_id(&tenant)?).await.map_err(|e| not_found(e, "tenant"))?;
            serde_json::to_value(keys)?
        }
        Command::Key(KeyCommand::Revoke { tenant, key_id }) => {
            store.revoke_api_key(&tenant_id(&tenant)?, &key_id).await.map_err(|e| not_found(e, "api key"))?;
            serde_json::json!({ "revoked": key_id })
        }
    };
    store.db.pool.close().await;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}
