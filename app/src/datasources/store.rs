//! The server side of datasources: loading them, why Configure / Initiate is not offered (R11.2,
//! R11.4), the panel's view, Configure, adding a datasource, and a form's records.

use super::{
    validate_config, ConfigField, DatasourceView, FieldKind, FormRecordList, IntegrationField, NewDatasource,
    RecordCell,
};
use crate::auth::SessionUser;
use crate::connections::ssr::Connection;
use crate::domain::{DisplayName, Environment};
use crate::error::{AppError, AppResult};
use crate::operations::ssr::{Level, Operation, OperationKind};
use crate::ssr::AppState;
use std::collections::BTreeMap;

/// A datasource row with what decisions about it need.
#[derive(Debug, Clone)]
pub struct Datasource {
    pub id: i64,
    pub application_id: i64,
    pub app_link: String,
    pub connection_id: i64,
    pub name: String,
    pub module: String,
    pub config_fields: Vec<ConfigField>,
    pub config_values: Option<BTreeMap<String, String>>,
    pub enabled: bool,
}

/// A `datasources` row, its configuration still JSON text.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    application_id: i64,
    app_link: String,
    connection_id: i64,
    name: String,
    module: String,
    config_fields: String,
    config_values: Option<String>,
    enabled: i64,
}

const SELECT: &str = "SELECT d.id, d.application_id, a.link_name AS app_link, d.connection_id, d.name, d.module,
                             d.config_fields, d.config_values, d.enabled
                      FROM datasources d JOIN applications a ON a.id = d.application_id";

fn from_row(r: Row) -> AppResult<Datasource> {
    let config_fields: Vec<ConfigField> =
        serde_json::from_str(&r.config_fields).map_err(|e| AppError::internal("datasource config fields", e))?;
    let config_values = r
        .config_values
        .map(|v| serde_json::from_str(&v))
        .transpose()
        .map_err(|e| AppError::internal("datasource config values", e))?;
    Ok(Datasource {
        id: r.id,
        application_id: r.application_id,
        app_link: r.app_link,
        connection_id: r.connection_id,
        name: r.name,
        module: r.module,
        config_fields,
        config_values,
        enabled: r.enabled != 0,
    })
}

/// Loads a datasource of the caller's workspace (others are "not found").
pub async fn load(state: &AppState, workspace_id: i64, id: i64) -> AppResult<Datasource> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE d.id = $1 AND a.workspace_id = $2"))
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&state.db.pool)
        .await?;
    from_row(row.ok_or_else(|| AppError::not_found("There is no such datasource."))?)
}

/// A datasource as one user works with it: over its connection, in one environment.
pub struct InUse<'a> {
    pub user: &'a SessionUser,
    pub ds: Datasource,
    pub conn: Connection,
    pub environment: Environment,
}

impl<'a> InUse<'a> {
    /// Loads the datasource and its connection from `user`'s workspace (404 otherwise).
    pub async fn load(
        state: &AppState,
        user: &'a SessionUser,
        datasource_id: i64,
        environment: Environment,
    ) -> AppResult<Self> {
        let ds = load(state, user.workspace_id, datasource_id).await?;
        let conn = crate::connections::ssr::load(state, user.workspace_id, ds.connection_id).await?;
        Ok(InUse { user, ds, conn, environment })
    }

    /// Refuses (409 with the reason) when [`blocked`] says it cannot be used now.
    pub async fn ensure_usable(&self, state: &AppState) -> AppResult<()> {
        match blocked(state, self).await? {
            Some(reason) => Err(AppError::Conflict(reason)),
            None => Ok(()),
        }
    }
}

/// Why the datasource cannot be configured or synced now (R11.2, R11.4), if it cannot.
pub async fn blocked(state: &AppState, used: &InUse<'_>) -> AppResult<Option<String>> {
    let InUse { user, ds, conn, environment } = used;
    let (user, environment) = (*user, *environment);
    if conn.deprecated {
        return Ok(Some(format!(
            "{} is deprecated. Replace it with a current connection to the same service, then configure this datasource.",
            conn.display_name
        )));
    }
    if !conn.enabled {
        return Ok(Some(format!("{} An admin can enable it on the connection's page.", conn.disabled_message())));
    }
    if !ds.enabled {
        return Ok(Some("This datasource is disabled.".into()));
    }
    if crate::connections::ssr::ensure_app_access(
        state,
        crate::domain::ConnectionId(conn.id),
        crate::domain::ApplicationId(ds.application_id),
    )
    .await
    .is_err()
    {
        return Ok(Some(format!(
            "App access is off for {}. Enable it under Connection Access first.",
            conn.display_name
        )));
    }
    let authorized = crate::authorizations::ssr::credentials_for(state, conn, user, environment).await?.is_some();
    if !authorized {
        return Ok(Some(format!("Authorize {} first.", conn.display_name)));
    }
    Ok(None)
}

async fn integration_fields(state: &AppState, datasource_id: i64) -> AppResult<Vec<IntegrationField>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.name, c.link_name, f.field_name FROM integration_fields f JOIN components c ON c.id = f.component_id
         WHERE f.datasource_id = $1 ORDER BY c.name, f.field_name",
    )
    .bind(datasource_id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(rows.into_iter().map(|(form, form_link, field)| IntegrationField { form, form_link, field }).collect())
}

/// Why Initiate is not offered: whatever blocks Configure, a missing configuration, or no
/// integration field to update.
fn sync_blocked_reason(ds: &Datasource, blocked: &Option<String>, fields: &[IntegrationField]) -> Option<String> {
    let configured = ds.config_fields.is_empty() || ds.config_values.is_some();
    match (blocked, configured, fields.is_empty()) {
        (Some(b), _, _) => Some(b.clone()),
        (None, false, _) => Some("Configure the datasource before syncing.".into()),
        (None, true, true) => Some("No integration field uses this datasource.".into()),
        (None, true, false) => None,
    }
}

/// Why the user may not initiate a sync of the datasource now, if they may not.
pub async fn sync_blocked(state: &AppState, used: &InUse<'_>) -> AppResult<Option<String>> {
    let blocked = blocked(state, used).await?;
    let fields = integration_fields(state, used.ds.id).await?;
    Ok(sync_blocked_reason(&used.ds, &blocked, &fields))
}

/// The full view of one datasource for its user.
pub async fn view(state: &AppState, used: &InUse<'_>) -> AppResult<DatasourceView> {
    let (user, ds) = (used.user, &used.ds);
    let blocked = blocked(state, used).await?;
    let fields = integration_fields(state, ds.id).await?;
    let sync_blocked = sync_blocked_reason(ds, &blocked, &fields);
    Ok(DatasourceView {
        id: ds.id,
        name: ds.name.clone(),
        module: ds.module.clone(),
        config_fields: ds.config_fields.clone(),
        config_values: ds.config_values.clone().unwrap_or_default(),
        configured: ds.config_values.is_some(),
        configure_blocked: blocked,
        integration_fields: fields,
        sync_blocked,
        sync: crate::sync::ssr::view(state, user, ds.id).await?,
    })
}

pub async fn associated(
    state: &AppState,
    user: &SessionUser,
    app: &str,
    connection_id: i64,
    environment: Environment,
) -> AppResult<Vec<DatasourceView>> {
    let app = crate::applications::ssr::find(state, user, app).await?;
    let conn = crate::connections::ssr::load(state, user.workspace_id, connection_id).await?;
    let may = crate::policy::decide(
        user.role,
        conn.conn_type,
        crate::policy::Action::ManageDatasources,
        conn.policy_context(),
    );
    if !may.is_allowed() {
        return Ok(vec![]);
    }
    let rows: Vec<Row> =
        sqlx::query_as(&format!("{SELECT} WHERE d.application_id = $1 AND d.connection_id = $2 ORDER BY d.name"))
            .bind(app.id)
            .bind(conn.id)
            .fetch_all(&state.db.pool)
            .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let used = InUse { user, ds: from_row(r)?, conn: conn.clone(), environment };
        out.push(view(state, &used).await?);
    }
    Ok(out)
}

#[tracing::instrument(skip(state, values), fields(user_id = user.id))]
pub async fn configure(
    state: &AppState,
    user: &SessionUser,
    datasource_id: i64,
    environment: Environment,
    values: BTreeMap<String, String>,
) -> AppResult<()> {
    crate::auth::ssr::ensure_builder(state, user, "configure datasources").await?;
    let used = InUse::load(state, user, datasource_id, environment).await?;
    let (ds, conn) = (&used.ds, &used.conn);
    if ds.config_fields.is_empty() {
        return Err(AppError::invalid("values", "This datasource has nothing to configure."));
    }
    used.ensure_usable(state).await?;
    let clean = validate_config(&ds.config_fields, &values)?;
    let json = serde_json::to_string(&clean).map_err(|e| AppError::internal("config values", e))?;
    sqlx::query("UPDATE datasources SET config_values = $1 WHERE id = $2")
        .bind(json)
        .bind(ds.id)
        .execute(&state.db.pool)
        .await?;
    let verb = if ds.config_values.is_some() { "reconfigured" } else { "configured" };
    Operation::by(user, Level::Info, OperationKind::DatasourceConfigured)
        .on(conn.id)
        .env(environment)
        .detail(format!("{} {verb} datasource {}", user.email, ds.name))
        .record(&state.db)
        .await;
    Ok(())
}

pub async fn records(state: &AppState, user: &SessionUser, app: &str, form: &str) -> AppResult<FormRecordList> {
    let app = crate::applications::ssr::find(state, user, app).await?;
    let component = crate::applications::ssr::components(state, user, app.id)
        .await?
        .into_iter()
        .find(|c| c.link_name == form && c.kind == crate::domain::ComponentKind::Form)
        .ok_or_else(|| AppError::not_found(format!("There is no form '{form}' you can open.")))?;
    let integration: Vec<String> =
        sqlx::query_scalar("SELECT field_name FROM integration_fields WHERE component_id = $1")
            .bind(component.id)
            .fetch_all(&state.db.pool)
            .await?;
    let rows: Vec<String> = sqlx::query_scalar("SELECT data FROM form_records WHERE component_id = $1 ORDER BY id")
        .bind(component.id)
        .fetch_all(&state.db.pool)
        .await?;
    let rows = rows
        .iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(r).ok())
        .map(|data| {
            data.iter()
                .map(|(field, v)| {
                    let (value, missing) = match v {
                        serde_json::Value::Object(o) => (
                            o.get("value").and_then(|x| x.as_str()).unwrap_or_default().to_string(),
                            o.get("missing").and_then(|m| m.as_bool()).unwrap_or(false),
                        ),
                        serde_json::Value::String(s) => (s.clone(), false),
                        other => (other.to_string(), false),
                    };
                    RecordCell { field: field.clone(), value, integration: integration.contains(field), missing }
                })
                .collect()
        })
        .collect();
    Ok(FormRecordList { form: component.name, rows })
}

/// Adds a datasource after checking the module against the connector's modules.
pub async fn create(state: &AppState, user: &SessionUser, input: NewDatasource) -> AppResult<i64> {
    crate::auth::ssr::ensure_builder(state, user, "add datasources").await?;
    let name = DisplayName::parse("name", &input.name)?;
    let app = crate::applications::ssr::find(state, user, &input.app).await?;
    let conn_id = crate::connections::ssr::find_by_link(state, user, &input.connection).await?;
    let conn = crate::connections::ssr::load(state, user.workspace_id, conn_id).await?;
    let connector = crate::connectors::ssr::load(state, user.workspace_id, conn.connector_id).await?;
    if !connector.config.modules.iter().any(|m| m == &input.module) {
        return Err(AppError::invalid(
            "module",
            if connector.config.modules.is_empty() {
                format!("{} has no modules a datasource can read.", connector.name)
            } else {
                format!(
                    "{} has no module '{}'. Choose one of: {}.",
                    connector.name,
                    input.module,
                    connector.config.modules.join(", ")
                )
            },
        ));
    }
    for f in &input.config_fields {
        let ok_name =
            !f.name.is_empty() && f.name.len() <= 40 && f.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok_name || f.label.trim().is_empty() || (f.kind == FieldKind::Select && f.options.is_empty()) {
            return Err(AppError::invalid(
                "config_fields",
                "Each setting needs a name (letters, digits, _), a label, and options when it is a choice.",
            ));
        }
    }
    let fields = serde_json::to_string(&input.config_fields).map_err(|e| AppError::internal("config fields", e))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO datasources (application_id, connection_id, name, module, config_fields)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(app.id)
    .bind(conn.id)
    .bind(name.as_str())
    .bind(&input.module)
    .bind(fields)
    .fetch_one(&state.db.pool)
    .await?;
    Operation::by(user, Level::Info, OperationKind::DatasourceCreated)
        .on(conn.id)
        .detail(format!("{} added datasource {} ({})", user.email, name.as_str(), input.module))
        .record(&state.db)
        .await;
    Ok(id)
}
