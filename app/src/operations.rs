//! The operations log: sign-ins, refused attempts, connection status changes, sync runs and
//! their errors. Builders read it on the Operations page.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

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
    use crate::error::AppResult;
    use crate::ssr::db::Db;
    use crate::ssr::ids::now_ms;
    use crate::ssr::AppState;

    #[derive(Debug, Clone, Copy)]
    pub enum Level {
        Info,
        Warn,
        Error,
    }

    impl Level {
        fn as_str(self) -> &'static str {
            match self {
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Error => "error",
            }
        }
    }

    /// Appends an entry. A failure to log is itself logged and never fails the caller.
    #[allow(clippy::too_many_arguments)]
    pub async fn record(
        db: &Db,
        workspace_id: Option<i64>,
        level: Level,
        kind: &str,
        actor_user_id: Option<i64>,
        connection_id: Option<i64>,
        environment: Option<&str>,
        detail: &str,
    ) {
        let res = sqlx::query(
            "INSERT INTO operations (workspace_id, at, level, kind, actor_user_id, connection_id, environment, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(workspace_id)
        .bind(now_ms())
        .bind(level.as_str())
        .bind(kind)
        .bind(actor_user_id)
        .bind(connection_id)
        .bind(environment)
        .bind(detail)
        .execute(&db.pool)
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, kind, "could not write the operations log");
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
