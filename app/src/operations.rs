//! The operations log: sign-ins, refused attempts, connection status changes, sync runs and
//! their errors. Builders read it on the Operations page.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

closed_set! {
    /// What an Operations entry records (its `kind` column).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum OperationKind ("kind", "operation kind") {
        SignedIn = "signed_in", "Signed in";
        SignInFailed = "sign_in_failed", "Sign-in failed";
        SignInLocked = "sign_in_locked", "Sign-in locked";
        AccessDenied = "access_denied", "Access denied";
        ConnectorCreated = "connector_created", "Connector created";
        ConnectionCreated = "connection_created", "Connection created";
        SystemConnectionCreated = "system_connection_created", "System connection created";
        AccessEnabled = "access_enabled", "Application access enabled";
        AccessDisabled = "access_disabled", "Application access disabled";
        Authorized = "authorized", "Authorized";
        AuthorizationReused = "authorization_reused", "Authorization reused";
        AccountRenamed = "account_renamed", "Account renamed";
        OauthFailed = "oauth_failed", "OAuth2 authorization failed";
        TokenRefreshed = "token_refreshed", "Access token refreshed";
        TokenRefreshFailed = "token_refresh_failed", "Token refresh failed";
        NeedsReauthorization = "needs_reauthorization", "Needs reauthorization";
        Reconnected = "reconnected", "Reconnected";
        Revoked = "revoked", "Revoked";
        RevocationRefused = "revocation_refused", "Revocation refused by the service";
        RevocationAbandoned = "revocation_abandoned", "Revocation abandoned";
        InvokeUrl = "invoke_url", "Invoke URL call";
        EmbedOriginsChanged = "embed_origins_changed", "Embedding sites changed";
        DatasourceCreated = "datasource_created", "Datasource created";
        DatasourceConfigured = "datasource_configured", "Datasource configured";
        SyncQueued = "sync_queued", "Sync queued";
        SyncCompleted = "sync_completed", "Sync completed";
        SyncFailed = "sync_failed", "Sync failed";
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationEntry {
    pub id: i64,
    pub at_ms: i64,
    pub level: String,
    pub kind: String,
    pub actor: Option<String>,
    pub connection: Option<String>,
    pub environment: Option<String>,
    pub detail: String,
}

#[server(prefix = "/api", endpoint = "list_operations")]
pub async fn list_operations() -> Result<Vec<OperationEntry>, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("view the operations log").await?;
    ssr::list(&state, user.workspace_id, 200).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::OperationEntry;
    pub use super::OperationKind;
    use crate::error::AppResult;
    use crate::ssr::db::Db;
    use crate::ssr::ids::now_ms;
    use crate::ssr::AppState;

    closed_set! {
        /// How serious an Operations entry is (its `level` column).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Level ("level", "level") {
            Info = "info", "Info";
            Warn = "warn", "Warning";
            Error = "error", "Error";
        }
    }

    /// One Operations entry; fields left out are empty
    /// (`Operation { detail: &d, ..Operation::new(Level::Info, OperationKind::Revoked) }`).
    #[derive(Debug, Clone, Copy)]
    pub struct Operation<'a> {
        pub workspace_id: Option<i64>,
        pub level: Level,
        pub kind: OperationKind,
        pub actor_user_id: Option<i64>,
        pub connection_id: Option<i64>,
        /// One environment, or several joined by commas.
        pub environment: Option<&'a str>,
        /// Never a secret: shown on the Operations page.
        pub detail: &'a str,
    }

    impl Operation<'_> {
        /// An entry done by `user`, in their workspace.
        pub fn by(user: &crate::auth::SessionUser, level: Level, kind: OperationKind) -> Self {
            Operation {
                workspace_id: Some(user.workspace_id),
                actor_user_id: Some(user.id),
                ..Operation::new(level, kind)
            }
        }

        pub fn new(level: Level, kind: OperationKind) -> Self {
            Operation {
                workspace_id: None,
                level,
                kind,
                actor_user_id: None,
                connection_id: None,
                environment: None,
                detail: "",
            }
        }
    }

    /// Appends an entry. A failure to log is itself logged and never fails the caller.
    pub async fn record(db: &Db, op: Operation<'_>) {
        let res = sqlx::query(
            "INSERT INTO operations (workspace_id, at, level, kind, actor_user_id, connection_id, environment, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(op.workspace_id)
        .bind(now_ms())
        .bind(op.level.as_str())
        .bind(op.kind.as_str())
        .bind(op.actor_user_id)
        .bind(op.connection_id)
        .bind(op.environment)
        .bind(op.detail)
        .execute(&db.pool)
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, kind = op.kind.as_str(), "could not write the operations log");
        }
    }

    pub async fn list(state: &AppState, workspace_id: i64, limit: i64) -> AppResult<Vec<OperationEntry>> {
        type Row = (i64, i64, String, String, Option<String>, Option<String>, Option<String>, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT o.id, o.at, o.level, o.kind, u.email, c.display_name, o.environment, o.detail
             FROM operations o
             LEFT JOIN users u ON u.id = o.actor_user_id
             LEFT JOIN connections c ON c.id = o.connection_id
             WHERE o.workspace_id = $1
             ORDER BY o.at DESC, o.id DESC
             LIMIT $2",
        )
        .bind(workspace_id)
        .bind(limit)
        .fetch_all(&state.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, at_ms, level, kind, actor, connection, environment, detail)| OperationEntry {
                id,
                at_ms,
                level,
                kind,
                actor,
                connection,
                environment,
                detail,
            })
            .collect())
    }
}
