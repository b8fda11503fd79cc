//! What the panel shows when a connection is clicked (R2.7, R4.4, R4.3): its permissions
//! (scopes), its references (the components of the application that use it, each a link) and
//! whether the caller may switch or revoke its authorization. Decided on the server.

use crate::domain::ComponentKind;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A component of the application that uses the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub kind: ComponentKind,
    pub name: String,
    pub link_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelDetails {
    pub connection_id: i64,
    pub link_name: String,
    /// The permissions the connection asks the service for.
    pub scopes: Vec<String>,
    pub references: Vec<Reference>,
    /// The names of the application's datasources that sync over the connection (builders
    /// only: datasources are theirs to manage; empty for everyone else).
    pub datasources: Vec<String>,
    /// May pick another account or authorize a new one (Switch).
    pub may_switch: bool,
    /// May revoke the authorization.
    pub may_revoke: bool,
}

/// Details of a connection as used by `app`, for the panel. A connection the caller may not see,
/// or that no component of `app` the caller may open uses, is "not found".
#[server(prefix = "/api", endpoint = "connection_panel_details")]
pub async fn connection_panel_details(app: String, connection_id: i64) -> Result<PanelDetails, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::panel_details(&state, &user, &app, connection_id).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::error::AppResult;
    use crate::policy::{decide, Action, Decision};
    use crate::ssr::AppState;

    pub async fn panel_details(
        state: &AppState,
        user: &SessionUser,
        app: &str,
        connection_id: i64,
    ) -> AppResult<PanelDetails> {
        let not_found = || AppError::not_found("There is no such connection in this application.");
        let app = crate::applications::ssr::find(state, user, app).await?;
        let conn = crate::connections::ssr::load(state, user.workspace_id, connection_id).await?;
        let cx = conn.policy_context();
        if !decide(user.role, conn.conn_type, Action::View, cx).is_allowed() {
            return Err(not_found());
        }
        let allowed = crate::applications::ssr::components(state, user, app.id).await?;
        let used: Vec<i64> = sqlx::query_scalar(
            "SELECT cc.component_id FROM component_connections cc JOIN components c ON c.id = cc.component_id
             WHERE cc.connection_id = $1 AND c.application_id = $2",
        )
        .bind(conn.id)
        .bind(app.id)
        .fetch_all(&state.db.pool)
        .await?;
        let references: Vec<Reference> = allowed
            .into_iter()
            .filter(|c| used.contains(&c.id))
            .map(|c| Reference { kind: c.kind, name: c.name, link_name: c.link_name })
            .collect();
        if references.is_empty() {
            return Err(not_found());
        }
        let datasources: Vec<String> = if decide(user.role, conn.conn_type, Action::ManageDatasources, cx).is_allowed()
        {
            sqlx::query_scalar(
                "SELECT name FROM datasources WHERE connection_id = $1 AND application_id = $2 ORDER BY name",
            )
            .bind(conn.id)
            .bind(app.id)
            .fetch_all(&state.db.pool)
            .await?
        } else {
            Vec::new()
        };
        Ok(PanelDetails {
            connection_id: conn.id,
            link_name: conn.link_name.clone(),
            scopes: conn.scopes.split_whitespace().map(str::to_owned).collect(),
            references,
            datasources,
            may_switch: decide(user.role, conn.conn_type, Action::Authorize, cx) == Decision::Allowed,
            may_revoke: decide(user.role, conn.conn_type, Action::Revoke, cx) == Decision::Allowed,
        })
    }
}
