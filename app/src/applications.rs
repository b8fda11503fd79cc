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

/// Adds an integration report on a service's module. When the application needs a connection
/// for it, the platform uses the workspace's system connection for that service, or creates one
/// with access to all of the service's modules (R5.5 "system connections").
#[server(prefix = "/api", endpoint = "add_integration_report")]
pub async fn add_integration_report(
    app: String,
    name: String,
    connector: String,
    module: String,
) -> Result<AddedReport, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("add integration reports").await?;
    ssr::add_integration_report(&state, &user, &app, &name, &connector, &module).await
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedReport {
    pub component: ComponentSummary,
    /// The system connection the report uses.
    pub connection_link_name: String,
    /// Whether the platform had to create that connection.
    pub created_connection: bool,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::error::AppResult;
    use crate::operations::ssr::{Level, Operation, OperationKind};
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

    /// [`find`] for reads on a hot path (the connections panel): an answer at most a second
    /// old (`ssr::cache`), cleared by any write through this server. Writes use [`find`].
    pub async fn find_cached(state: &AppState, user: &SessionUser, link_name: &str) -> AppResult<ApplicationSummary> {
        let key = (user.workspace_id, link_name.to_string());
        state.caches.applications.get_or_load(key, || find(state, user, link_name)).await
    }

    /// A component of application `app_link` as a builder edits it: id, kind, name and its
    /// definition (the `components.definition` JSON).
    pub struct ComponentDefinition {
        pub id: i64,
        pub kind: ComponentKind,
        pub name: String,
        pub definition: serde_json::Value,
    }

    pub async fn component_definition(
        state: &AppState,
        user: &SessionUser,
        app_link: &str,
        link: &str,
    ) -> AppResult<(ApplicationSummary, ComponentDefinition)> {
        let app = find(state, user, app_link).await?;
        let row: Option<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, kind, name, definition FROM components WHERE application_id = $1 AND link_name = $2",
        )
        .bind(app.id)
        .bind(link)
        .fetch_optional(&state.db.pool)
        .await?;
        let (id, kind, name, definition) =
            row.ok_or_else(|| AppError::not_found(format!("There is no component '{link}' in {}.", app.name)))?;
        let definition =
            serde_json::from_str(&definition).map_err(|e| AppError::internal("component definition", e))?;
        Ok((app, ComponentDefinition { id, kind: ComponentKind::parse(&kind)?, name, definition }))
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

    pub async fn add_integration_report(
        state: &AppState,
        user: &SessionUser,
        app_link: &str,
        name: &str,
        connector_link: &str,
        module: &str,
    ) -> AppResult<AddedReport> {
        use crate::connectors::{ensure_usable, Usage};
        use crate::domain::{DisplayName, LinkName};
        let app = find(state, user, app_link).await?;
        let name = DisplayName::parse("name", name)?;
        let connector_id = crate::connectors::ssr::find_by_link(state, user.workspace_id, connector_link).await?;
        let connector = crate::connectors::ssr::load(state, user.workspace_id, connector_id).await?;
        ensure_usable(connector.kind, Usage::Datasource)?;
        if !connector.config.modules.iter().any(|m| m == module) {
            return Err(AppError::invalid(
                "module",
                format!(
                    "{} has no module '{module}'. Choose one of: {}.",
                    connector.name,
                    connector.config.modules.join(", ")
                ),
            ));
        }
        let now = crate::ssr::ids::now_ms();
        let mut tx = state.db.pool.begin().await?;
        let existing: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, link_name FROM connections WHERE workspace_id = $1 AND connector_id = $2 AND conn_type = 'system'
             ORDER BY id LIMIT 1",
        )
        .bind(user.workspace_id)
        .bind(connector.id)
        .fetch_optional(&mut *tx)
        .await?;
        let (connection_id, connection_link, created) = match existing {
            Some((id, link)) => (id, link, false),
            None => {
                let base = format!("{}_system", LinkName::derive_from(&connector.name));
                let taken: Vec<String> =
                    sqlx::query_scalar("SELECT link_name FROM connections WHERE workspace_id = $1")
                        .bind(user.workspace_id)
                        .fetch_all(&mut *tx)
                        .await?;
                let link = (1..)
                    .map(|i| if i == 1 { base.clone() } else { format!("{base}_{i}") })
                    .find(|l| !taken.contains(l))
                    .unwrap_or(base);
                let scopes: Vec<String> = connector.config.scopes.iter().map(|s| s.name.clone()).collect();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, scopes,
                                              same_for_all_envs, created_by, created_at)
                     VALUES ($1, $2, $3, $4, 'system', $5, 1, $6, $7) RETURNING id",
                )
                .bind(user.workspace_id)
                .bind(connector.id)
                .bind(format!("{} (System)", connector.name))
                .bind(&link)
                .bind(scopes.join(" "))
                .bind(user.id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                (id, link, true)
            }
        };
        crate::connections::ssr::grant_access(&mut tx, connection_id, app.id).await?;
        let component_link = LinkName::derive_from(name.as_str());
        let component_id: i64 = sqlx::query_scalar(
            "INSERT INTO components (application_id, kind, name, link_name, definition)
             VALUES ($1, 'integration_report', $2, $3, $4) RETURNING id",
        )
        .bind(app.id)
        .bind(name.as_str())
        .bind(&component_link)
        .bind(serde_json::json!({ "module": module, "connector": connector.link_name }).to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if crate::ssr::db::is_unique_violation(&e) {
                AppError::invalid("name", format!("This application already has a component '{component_link}'."))
            } else {
                e.into()
            }
        })?;
        sqlx::query("INSERT INTO component_connections (component_id, connection_id) VALUES ($1, $2)")
            .bind(component_id)
            .bind(connection_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if created {
            Operation::by(user, Level::Info, OperationKind::SystemConnectionCreated)
                .on(connection_id)
                .detail(format!("for integration report {component_link} ({module})"))
                .record(&state.db)
                .await;
        }
        Ok(AddedReport {
            component: ComponentSummary {
                id: component_id,
                kind: ComponentKind::IntegrationReport,
                name: name.to_string(),
                link_name: component_link,
            },
            connection_link_name: connection_link,
            created_connection: created,
        })
    }
}
