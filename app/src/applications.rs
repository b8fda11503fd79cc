//! Applications and their components (forms, pages, reports, workflows, …) as the live mode and
//! the builder see them. Plain users see only the components they were given permission for.

use crate::domain::ComponentKind;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationSummary {
    pub id: i64,
    pub name: String,
    pub link_name: String,
    pub theme: String,
    pub installed_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSummary {
    pub id: i64,
    pub kind: ComponentKind,
    pub name: String,
    pub link_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationView {
    pub app: ApplicationSummary,
    pub components: Vec<ComponentSummary>,
}

#[server(prefix = "/api", endpoint = "list_applications")]
pub async fn list_applications() -> Result<Vec<ApplicationSummary>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::list(&state, &user).await
}

#[server(prefix = "/api", endpoint = "get_application")]
pub async fn get_application(app: String) -> Result<ApplicationView, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::view(&state, &user, &app).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::error::AppResult;
    use crate::ssr::AppState;

    type AppRow = (i64, String, String, String, Option<String>);

    fn summary((id, name, link_name, theme, installed_from): AppRow) -> ApplicationSummary {
        ApplicationSummary { id, name, link_name, theme, installed_from }
    }

    pub async fn list(state: &AppState, user: &SessionUser) -> AppResult<Vec<ApplicationSummary>> {
        let rows: Vec<AppRow> = sqlx::query_as(
            "SELECT id, name, link_name, theme, installed_from FROM applications WHERE workspace_id = $1 ORDER BY name",
        )
        .bind(user.workspace_id)
        .fetch_all(&state.db.pool)
        .await?;
        Ok(rows.into_iter().map(summary).collect())
    }

    /// The application with the given link name in the caller's workspace.
    pub async fn find(state: &AppState, user: &SessionUser, link_name: &str) -> AppResult<ApplicationSummary> {
        let row: Option<AppRow> = sqlx::query_as(
            "SELECT id, name, link_name, theme, installed_from FROM applications WHERE workspace_id = $1 AND link_name = $2",
        )
        .bind(user.workspace_id)
        .bind(link_name)
        .fetch_optional(&state.db.pool)
        .await?;
        row.map(summary).ok_or_else(|| AppError::not_found(format!("There is no application '{link_name}'.")))
    }

    /// Components of an application the caller may open.
    pub async fn components(state: &AppState, user: &SessionUser, app_id: i64) -> AppResult<Vec<ComponentSummary>> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT c.id, c.kind, c.name, c.link_name FROM components c
             WHERE c.application_id = $1
               AND ($2 OR EXISTS (SELECT 1 FROM component_permissions p WHERE p.component_id = c.id AND p.user_id = $3))
             ORDER BY c.id",
        )
        .bind(app_id)
        .bind(user.role.is_builder())
        .bind(user.id)
        .fetch_all(&state.db.pool)
        .await?;
        rows.into_iter()
            .map(|(id, kind, name, link_name)| {
                Ok(ComponentSummary { id, kind: ComponentKind::parse(&kind)?, name, link_name })
            })
            .collect()
    }

    pub async fn view(state: &AppState, user: &SessionUser, link_name: &str) -> AppResult<ApplicationView> {
        let app = find(state, user, link_name).await?;
        let components = components(state, user, app.id).await?;
        Ok(ApplicationView { app, components })
    }
}
