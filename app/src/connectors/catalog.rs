//! The built-in connector catalog (R5.3): a data file compiled into the server and written into the
//! database at start-up, with the client credentials of real services taken from the environment.

use super::ssr::secret_aad;
use super::ConnectorConfig;
use crate::error::{AppError, AppResult};
use crate::ssr::db::Db;
use crate::ssr::ids::now_ms;
use serde::Deserialize;

#[derive(Deserialize)]
struct Catalog {
    connectors: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    name: String,
    link_name: String,
    auth_type: String,
    #[serde(default)]
    description: String,
    config: serde_json::Value,
}

const CATALOG: &str = include_str!("../../connectors/catalog.json");

/// Writes the built-in catalog into the database (insert or update by link name). Client
/// credentials of real services come from `CONNECTOR_<LINK_NAME>_CLIENT_ID/_SECRET`.
pub async fn sync_catalog(db: &Db, cipher: &crate::ssr::crypto::Cipher, sandbox_url: &str) -> AppResult<usize> {
    let catalog: Catalog = serde_json::from_str(CATALOG).map_err(|e| AppError::internal("connector catalog", e))?;
    let sandbox = sandbox_url.trim_end_matches('/');
    for entry in &catalog.connectors {
        let text = entry.config.to_string().replace("{sandbox}", sandbox);
        let mut config: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| AppError::internal("connector catalog", e))?;
        let env_key = format!("CONNECTOR_{}", entry.link_name.to_uppercase());
        let mut secret = config.get("client_secret").and_then(|s| s.as_str()).map(str::to_owned);
        if let Some(obj) = config.as_object_mut() {
            obj.remove("client_secret");
            if let Ok(id) = std::env::var(format!("{env_key}_CLIENT_ID")) {
                obj.insert("client_id".into(), id.into());
            }
        }
        if let Ok(s) = std::env::var(format!("{env_key}_CLIENT_SECRET")) {
            secret = Some(s);
        }
        let config: ConnectorConfig =
            serde_json::from_value(config).map_err(|e| AppError::internal("connector catalog", e))?;
        let config_text = serde_json::to_string(&config).map_err(|e| AppError::internal("connector catalog", e))?;
        // Reads then writes: on SQLite the write lock is taken first (see `begin_write`), as
        // two replicas starting together on one file would otherwise collide.
        let mut tx = db.begin_write().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM connectors WHERE workspace_id IS NULL AND link_name = $1")
                .bind(&entry.link_name)
                .fetch_optional(&mut *tx)
                .await?;
        let id = match existing {
            Some(id) => {
                sqlx::query("UPDATE connectors SET name = $1, description = $2, auth_type = $3, config = $4 WHERE id = $5")
                    .bind(&entry.name)
                    .bind(&entry.description)
                    .bind(&entry.auth_type)
                    .bind(&config_text)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            None => {
                sqlx::query_scalar(
                    "INSERT INTO connectors (workspace_id, kind, name, link_name, description, auth_type, config, created_at)
                     VALUES (NULL, 'builtin', $1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&entry.name)
                .bind(&entry.link_name)
                .bind(&entry.description)
                .bind(&entry.auth_type)
                .bind(&config_text)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?
            }
        };
        let secret_ct = secret.map(|s| cipher.encrypt(&secret_aad(id), s.as_bytes()));
        sqlx::query("UPDATE connectors SET secret_ct = $1 WHERE id = $2")
            .bind(secret_ct)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(catalog.connectors.len())
}
