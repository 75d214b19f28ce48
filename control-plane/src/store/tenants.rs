//! Tenants: the operator's customers. Created by the operator (CLI or admin API).

use agent_spec::TenantId;
use agent_spec::api::TenantResponse;

use super::{Store, StoreError};
use crate::db::{from_ms, now_ms};

impl Store {
    pub async fn create_tenant(&self, name: &str) -> Result<TenantResponse, StoreError> {
        let id = TenantId::generate();
        let now = now_ms();
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(name)
            .bind(now)
            .execute(&self.db.pool)
            .await?;
        Ok(TenantResponse { id, name: name.to_owned(), created_at: from_ms(now) })
    }

    pub async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.is_some())
    }
}
