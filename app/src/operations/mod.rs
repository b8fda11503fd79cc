//! The operations log: sign-ins, refused attempts, connection status changes, sync runs and
//! their errors. Builders read it on the Operations page.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

closed_set! {
    /// What an Operations entry records (its `kind` column; serialized as the stored form).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum OperationKind ("kind", "operation kind") {
        SignedIn = "signed_in", "Signed in";
        SignInFailed = "sign_in_failed", "Sign-in failed";
        SignInLocked = "sign_in_locked", "Sign-in locked";
        AccessDenied = "access_denied", "Access denied";
        ConnectorCreated = "connector_created", "Connector created";
        ConnectorEdited = "connector_edited", "Connector edited";
        ConnectorDeleted = "connector_deleted", "Connector deleted";
        ConnectionCreated = "connection_created", "Connection created";
        ConnectionEdited = "connection_edited", "Connection edited";
        ConnectionDisabled = "connection_disabled", "Connection disabled";
        ConnectionEnabled = "connection_enabled", "Connection enabled";
        ConnectionDeleted = "connection_deleted", "Connection deleted";
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
        ApiKeyCreated = "api_key_created", "API key created";
        ApiKeyRevoked = "api_key_revoked", "API key revoked";
        ApiCall = "api_call", "API call";
        ApiCallRefused = "api_call_refused", "API call refused";
        ConnectSessionCreated = "connect_session_created", "Connect session created";
        ConnectSessionUsed = "connect_session_used", "Connect session used";
        ConnectSessionRefused = "connect_session_refused", "Connect session refused";
        ConnectionsExported = "connections_exported", "Connections exported";
        ConnectionsImported = "connections_imported", "Connections imported";
        ConnectionsImportRefused = "connections_import_refused", "Connections import refused";
        WebhookEndpointCreated = "webhook_endpoint_created", "Webhook endpoint registered";
        WebhookEndpointEnabled = "webhook_endpoint_enabled", "Webhook endpoint turned on";
        WebhookEndpointDisabled = "webhook_endpoint_disabled", "Webhook endpoint turned off";
        WebhookEndpointDeleted = "webhook_endpoint_deleted", "Webhook endpoint deleted";
    }
}

closed_set! {
    /// How serious an Operations entry is (its `level` column; serialized as the stored form).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Level ("level", "level") {
        Info = "info", "OK";
        Warn = "warn", "Warning";
        Error = "error", "Error";
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct OperationEntry {
    pub id: i64,
    pub at_ms: i64,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub level: Level,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub kind: OperationKind,
    pub actor: Option<String>,
    pub connection: Option<String>,
    pub environment: Option<String>,
    pub detail: String,
}

/// What the Operations page shows: one kind, one connection (by link name), and whether
/// successful sign-ins are listed (they are folded away by default: they flood the log).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperationFilter {
    pub kind: Option<OperationKind>,
    pub connection: Option<String>,
    pub sign_ins: bool,
}

impl OperationFilter {
    /// From the page's query (`?kind=revoked&connection=sales_crm&sign_ins=1`); an unknown kind
    /// is refused with the field named.
    pub fn from_query(kind: Option<&str>, connection: Option<&str>, sign_ins: Option<&str>) -> Result<Self, AppError> {
        let kind = kind.filter(|k| !k.is_empty()).map(OperationKind::parse).transpose()?;
        let connection = connection.map(str::trim).filter(|c| !c.is_empty()).map(str::to_string);
        Ok(OperationFilter { kind, connection, sign_ins: matches!(sign_ins, Some("1" | "on" | "true")) })
    }
}

/// The newest 200 entries of the workspace that match `filter` (builders).
#[server(prefix = "/api", endpoint = "list_operations")]
pub async fn list_operations(#[server(default)] filter: OperationFilter) -> Result<Vec<OperationEntry>, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("view the operations log").await?;
    ssr::filtered(&state, user.workspace_id, &filter, 200).await
}

#[cfg(feature = "ssr")]
pub mod queue;

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::OperationEntry;
    pub use super::{Level, OperationKind};
    use crate::domain::Environment;
    use crate::error::AppResult;
    use crate::ssr::db::Db;
    use crate::ssr::ids::now_ms;
    use crate::ssr::AppState;
    use std::borrow::Cow;

    /// One Operations entry, built from the level and kind, then the parts it has:
    /// `Operation::by(user, Level::Info, OperationKind::Revoked).on(conn.id).envs(&envs).detail(d).record(&db)`.
    /// Parts left out are empty.
    #[derive(Debug, Clone)]
    pub struct Operation<'a> {
        pub workspace_id: Option<i64>,
        pub level: Level,
        pub kind: OperationKind,
        pub actor_user_id: Option<i64>,
        pub connection_id: Option<i64>,
        /// One environment, or several joined by commas.
        pub environment: Option<Cow<'a, str>>,
        /// Never a secret: shown on the Operations page.
        pub detail: Cow<'a, str>,
    }

    impl<'a> Operation<'a> {
        /// An entry done by `user`, in their workspace.
        pub fn by(user: &crate::auth::SessionUser, level: Level, kind: OperationKind) -> Self {
            Operation::new(level, kind).workspace(user.workspace_id).actor(user.id)
        }

        pub fn new(level: Level, kind: OperationKind) -> Self {
            Operation {
                workspace_id: None,
                level,
                kind,
                actor_user_id: None,
                connection_id: None,
                environment: None,
                detail: Cow::Borrowed(""),
            }
        }

        pub fn workspace(self, workspace_id: impl Into<Option<i64>>) -> Self {
            Operation { workspace_id: workspace_id.into(), ..self }
        }

        pub fn actor(self, user_id: impl Into<Option<i64>>) -> Self {
            Operation { actor_user_id: user_id.into(), ..self }
        }

        /// The connection the entry is about.
        pub fn on(self, connection_id: impl Into<Option<i64>>) -> Self {
            Operation { connection_id: connection_id.into(), ..self }
        }

        pub fn env(self, environment: Environment) -> Self {
            self.environment(Some(environment.as_str()))
        }

        /// Several environments, shown joined by commas.
        pub fn envs(self, environments: &[Environment]) -> Self {
            let joined = environments.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",");
            Operation { environment: Some(Cow::Owned(joined)), ..self }
        }

        pub fn environment(self, environment: Option<&'a str>) -> Self {
            Operation { environment: environment.map(Cow::Borrowed), ..self }
        }

        pub fn detail(self, detail: impl Into<Cow<'a, str>>) -> Self {
            Operation { detail: detail.into(), ..self }
        }

        /// Appends the entry. A failure to log is itself logged and never fails the caller.
        pub async fn record(self, db: &Db) {
            let res = sqlx::query(
                "INSERT INTO operations (workspace_id, at, level, kind, actor_user_id, connection_id, environment, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(self.workspace_id)
            .bind(now_ms())
            .bind(self.level.as_str())
            .bind(self.kind.as_str())
            .bind(self.actor_user_id)
            .bind(self.connection_id)
            .bind(self.environment.as_deref())
            .bind(self.detail.as_ref())
            .execute(&db.pool)
            .await;
            if let Err(e) = res {
                tracing::error!(error = %e, kind = self.kind.as_str(), "could not write the operations log");
            }
        }
    }

    impl Operation<'static> {
        /// Appends the entry through the batched queue (the hot paths): written within moments,
        /// and before the log is next read on this server.
        pub async fn queue(self, state: &AppState) {
            state.operations.push(self).await;
        }
    }

    /// The newest `limit` entries matching `filter` (bound parameters only).
    pub async fn filtered(
        state: &AppState,
        workspace_id: i64,
        filter: &super::OperationFilter,
        limit: i64,
    ) -> AppResult<Vec<OperationEntry>> {
        state.operations.flush().await;
        Ok(sqlx::query_as(
            "SELECT o.id, o.at AS at_ms, o.level, o.kind, u.email AS actor, c.display_name AS connection,
                    o.environment, o.detail
             FROM operations o
             LEFT JOIN users u ON u.id = o.actor_user_id
             LEFT JOIN connections c ON c.id = o.connection_id
             WHERE o.workspace_id = $1 AND ($2 = '' OR o.kind = $2) AND ($3 = '' OR c.link_name = $3)
               AND ($4 = 1 OR $2 = $5 OR o.kind <> $5)
             ORDER BY o.at DESC, o.id DESC
             LIMIT $6",
        )
        .bind(workspace_id)
        .bind(filter.kind.map(OperationKind::as_str).unwrap_or_default())
        .bind(filter.connection.as_deref().unwrap_or_default())
        .bind(i64::from(filter.sign_ins))
        .bind(OperationKind::SignedIn.as_str())
        .bind(limit)
        .fetch_all(&state.db.pool)
        .await?)
    }

    /// The newest `limit` entries older than the entry `before` (all when `None`).
    pub async fn page(
        state: &AppState,
        workspace_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> AppResult<Vec<OperationEntry>> {
        state.operations.flush().await;
        let rows: Vec<OperationEntry> = sqlx::query_as(
            "SELECT o.id, o.at AS at_ms, o.level, o.kind, u.email AS actor, c.display_name AS connection,
                    o.environment, o.detail
             FROM operations o
             LEFT JOIN users u ON u.id = o.actor_user_id
             LEFT JOIN connections c ON c.id = o.connection_id
             WHERE o.workspace_id = $1 AND ($2 = 0 OR o.id < $2)
             ORDER BY o.at DESC, o.id DESC
             LIMIT $3",
        )
        .bind(workspace_id)
        .bind(before.unwrap_or(0))
        .bind(limit)
        .fetch_all(&state.db.pool)
        .await?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page, the `/v1` API and the filter carry the stored form, whichever way they read it.
    #[test]
    fn kinds_and_levels_serialize_as_their_stored_form() {
        for kind in OperationKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
            assert_eq!(OperationKind::try_from(kind.as_str().to_string()).unwrap(), kind);
        }
        for level in Level::ALL {
            assert_eq!(serde_json::to_value(level).unwrap(), serde_json::json!(level.as_str()));
            assert_eq!(Level::try_from(level.as_str().to_string()).unwrap(), level);
        }
        assert!(OperationKind::try_from("no_such_kind".to_string()).is_err());
    }
}
