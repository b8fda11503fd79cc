//! Planning an import: every check made, every conflict collected, nothing written. The plan
//! carries what [`super::apply`] needs to write it in one transaction.

use super::export::{find_application, Actor};
use super::{
    Conflict, ConnectorRef, CustomConnectorDefinition, ExportDocument, ExportedConnection, ImportPlan, PlanAction,
    PlannedConnection, PlannedConnector,
};
use crate::connections::ssr::checked_scopes;
use crate::connectors::{input_from_config, validate_custom, ConnectorConfig, ConnectorKind, GrantType, ScopeDef};
use crate::domain::{AuthType, ConnectionType, DisplayName, Environment, LinkName};
use crate::error::{AppError, AppResult};
use crate::ssr::AppState;

/// Validation wants a client secret for OAuth2; an imported connector is stored without one.
const NO_SECRET: &str = "not-exported";

/// A custom connector to create.
pub(super) struct NewConnector {
    pub link_name: LinkName,
    pub name: DisplayName,
    pub description: String,
    pub auth_type: AuthType,
    pub config: ConnectorConfig,
}

/// The connector a new connection is made from.
#[derive(Clone)]
pub(super) enum ConnectorTarget {
    Existing(i64),
    /// Created by the same import (index into [`Prepared::connectors`]).
    New(usize),
}

/// A connection to create.
pub(super) struct NewConnection {
    pub connector: ConnectorTarget,
    pub link_name: LinkName,
    pub display_name: DisplayName,
    pub conn_type: ConnectionType,
    pub scopes: Vec<String>,
    pub same_for_all_envs: bool,
}

pub(super) enum Target {
    Existing(i64),
    New(NewConnection),
}

/// What applying the plan writes.
pub(super) struct Prepared {
    pub app_id: i64,
    /// How created connections say where they came from (R2.9).
    pub source: String,
    pub connectors: Vec<NewConnector>,
    /// Each connection of the document, and whether the application gets access to it.
    pub connections: Vec<(Target, bool)>,
}

/// A custom connector definition once checked: where connections find it and its scopes.
struct Known {
    target: ConnectorTarget,
    name: String,
    scopes: Vec<ScopeDef>,
}

#[derive(sqlx::FromRow)]
struct StoredConnector {
    id: i64,
    name: String,
    description: String,
    auth_type: String,
    config: String,
    has_secret: i64,
}

#[derive(sqlx::FromRow)]
struct ExistingConnection {
    id: i64,
    display_name: String,
    #[sqlx(try_from = "String")]
    conn_type: ConnectionType,
    scopes: String,
    same_for_all_envs: i64,
    #[sqlx(try_from = "String")]
    connector_kind: ConnectorKind,
    connector_link: String,
}

/// An import asked for: the document's text, the application that gets access (the document's
/// own when empty) and the environment "needs authorizing" is about (all three when `None`).
#[derive(Debug, Clone, Copy)]
pub struct Import<'a> {
    pub app: &'a str,
    pub document: &'a str,
    pub environment: Option<Environment>,
}

/// What `import` would do. Writes nothing.
#[tracing::instrument(skip_all, fields(app = import.app, workspace = actor.workspace_id()))]
pub async fn plan(state: &AppState, actor: &Actor<'_>, import: Import<'_>) -> AppResult<ImportPlan> {
    Ok(prepare(state, actor, import).await?.0)
}

pub(super) async fn prepare(
    state: &AppState,
    actor: &Actor<'_>,
    Import { app, document, environment }: Import<'_>,
) -> AppResult<(ImportPlan, Prepared)> {
    actor.ensure_may_promote(state).await?;
    let doc = ExportDocument::parse(document)?;
    let ws = actor.workspace_id();
    let app_link = if app.trim().is_empty() { doc.application.link_name.clone() } else { app.trim().into() };
    let mut conflicts = Vec::new();
    let mut conflict = |subject: String, message: String| conflicts.push(Conflict { subject, message });
    let app = find_application(state, ws, &app_link).await?;
    if app.is_none() {
        conflict(
            format!("application {app_link}"),
            "There is no such application in this workspace; install or create it first.".into(),
        );
    }
    let environments = environment.map(|e| vec![e]).unwrap_or_else(|| Environment::ALL.to_vec());
    let mut prepared = Prepared {
        app_id: app.as_ref().map(|(id, _)| *id).unwrap_or_default(),
        source: format!("Import of {} from {}", doc.application.name, doc.workspace),
        connectors: Vec::new(),
        connections: Vec::new(),
    };

    let mut known: Vec<(String, Known)> = Vec::new();
    let mut planned_connectors = Vec::new();
    for def in &doc.custom_connectors {
        let subject = format!("custom connector {}", def.link_name);
        if known.iter().any(|(l, _)| l == &def.link_name) {
            conflict(subject, "The document defines it twice.".into());
            continue;
        }
        match check_definition(state, ws, def, &mut prepared).await? {
            Ok((planned, k)) => {
                planned_connectors.push(planned);
                known.push((def.link_name.clone(), k));
            }
            Err(message) => conflict(subject, message),
        }
    }

    let mut planned_connections = Vec::new();
    for (i, c) in doc.connections.iter().enumerate() {
        let subject = format!("connection {}", c.link_name);
        if doc.connections[..i].iter().any(|o| o.link_name == c.link_name) {
            conflict(subject, "The document lists it twice.".into());
            continue;
        }
        match check_connection(state, ws, c, &known, app.as_ref().map(|(id, _)| *id), &environments).await? {
            Ok((planned, target)) => {
                prepared.connections.push((target, planned.grants_access));
                planned_connections.push(planned);
            }
            Err(problems) => problems.into_iter().for_each(|m| conflict(subject.clone(), m)),
        }
    }
    let plan = ImportPlan {
        application: app_link,
        environments,
        connectors: planned_connectors,
        connections: planned_connections,
        conflicts,
        applied: false,
    };
    Ok((plan, prepared))
}

/// Checks one custom connector definition against validation and the workspace's connector
/// of the same link name. `Err` is the conflict's message.
async fn check_definition(
    state: &AppState,
    ws: i64,
    def: &CustomConnectorDefinition,
    prepared: &mut Prepared,
) -> AppResult<Result<(PlannedConnector, Known), String>> {
    if def.link_name.trim().is_empty() {
        return Ok(Err("The definition has no link name.".into()));
    }
    let mut v = match validate_custom(&def.to_input(NO_SECRET)) {
        Ok(v) => v,
        Err(e) => return Ok(Err(format!("{} ({})", e, e.field().unwrap_or("definition")))),
    };
    if v.auth_type == AuthType::OAuth2 {
        let cfg = &v.config;
        if cfg.token_url.is_none() || (cfg.grant_type == GrantType::AuthorizationCode && cfg.authorize_url.is_none()) {
            return Ok(Err("An OAuth2 definition needs its authorization and token URLs.".into()));
        }
        for url in [&cfg.token_url, &cfg.refresh_url, &cfg.revoke_url].into_iter().flatten() {
            let checked = url::Url::parse(url)
                .map_err(|e| e.to_string())
                .and_then(|u| state.outbound.check_oauth_endpoint(&u).map_err(|e| e.to_string()));
            if let Err(why) = checked {
                return Ok(Err(why));
            }
        }
    }
    v.config.iss_parameter_supported = def.iss_parameter_supported;
    let normalized = CustomConnectorDefinition::from_input(
        input_from_config(v.name.as_str(), v.link_name.as_str(), &v.description, v.auth_type, &v.config),
        def.iss_parameter_supported,
    );
    let stored: Option<StoredConnector> = sqlx::query_as(
        "SELECT id, name, description, auth_type, config,
                CASE WHEN secret_ct IS NULL THEN 0 ELSE 1 END AS has_secret
         FROM connectors WHERE workspace_id = $1 AND kind = 'custom' AND link_name = $2",
    )
    .bind(ws)
    .bind(v.link_name.as_str())
    .fetch_optional(&state.db.pool)
    .await?;
    let oauth = v.auth_type == AuthType::OAuth2;
    let known_scopes = v.config.scopes.clone();
    let Some(s) = stored else {
        let planned = PlannedConnector {
            link_name: v.link_name.to_string(),
            name: v.name.to_string(),
            action: PlanAction::Create,
            needs_client_secret: oauth,
        };
        let k = Known {
            target: ConnectorTarget::New(prepared.connectors.len()),
            name: v.name.to_string(),
            scopes: known_scopes,
        };
        prepared.connectors.push(NewConnector {
            link_name: v.link_name,
            name: v.name,
            description: v.description,
            auth_type: v.auth_type,
            config: v.config,
        });
        return Ok(Ok((planned, k)));
    };
    let config: ConnectorConfig =
        serde_json::from_str(&s.config).map_err(|e| AppError::internal("connector config", e))?;
    let here = CustomConnectorDefinition::from_input(
        input_from_config(&s.name, v.link_name.as_str(), &s.description, AuthType::parse(&s.auth_type)?, &config),
        config.iss_parameter_supported,
    );
    let differs = here.differences(&normalized);
    if !differs.is_empty() {
        return Ok(Err(format!(
            "A custom connector with this link name is here with another definition (differs in: {}).",
            differs.join(", ")
        )));
    }
    let planned = PlannedConnector {
        link_name: v.link_name.to_string(),
        name: s.name.clone(),
        action: PlanAction::Match,
        needs_client_secret: oauth && s.has_secret == 0,
    };
    Ok(Ok((planned, Known { target: ConnectorTarget::Existing(s.id), name: s.name, scopes: config.scopes })))
}

/// Checks one connection of the document. `Err` lists every problem found with it.
async fn check_connection(
    state: &AppState,
    ws: i64,
    c: &ExportedConnection,
    known: &[(String, Known)],
    app_id: Option<i64>,
    environments: &[Environment],
) -> AppResult<Result<(PlannedConnection, Target), Vec<String>>> {
    let mut problems = Vec::new();
    let link = LinkName::parse(&c.link_name).map_err(|e| problems.push(e.to_string())).ok();
    let name = DisplayName::parse("display_name", &c.display_name).map_err(|e| problems.push(e.to_string())).ok();
    let conn_type = ConnectionType::parse(&c.conn_type).map_err(|e| problems.push(e.to_string())).ok();
    let connector: Option<(ConnectorTarget, String, Vec<ScopeDef>)> = match &c.connector {
        ConnectorRef::Builtin { link_name } => {
            let row: Option<(i64, String, String)> = sqlx::query_as(
                "SELECT id, name, config FROM connectors WHERE workspace_id IS NULL AND kind = 'builtin' AND link_name = $1",
            )
            .bind(link_name)
            .fetch_optional(&state.db.pool)
            .await?;
            match row {
                Some((id, name, config)) => {
                    let config: ConnectorConfig =
                        serde_json::from_str(&config).map_err(|e| AppError::internal("connector config", e))?;
                    Some((ConnectorTarget::Existing(id), name, config.scopes))
                }
                None => {
                    problems.push(format!("There is no built-in connector '{link_name}' on this server."));
                    None
                }
            }
        }
        ConnectorRef::Custom { link_name } => match known.iter().find(|(l, _)| l == link_name) {
            Some((_, k)) => Some((k.target.clone(), k.name.clone(), k.scopes.clone())),
            None if c.conn_type == ConnectionType::System.as_str() => None,
            None => {
                problems.push(format!("It uses the custom connector '{link_name}', which the document does not define (or defines wrongly)."));
                None
            }
        },
    };
    if conn_type == Some(ConnectionType::System) && matches!(c.connector, ConnectorRef::Custom { .. }) {
        problems.push("System connections are made from built-in connectors only.".into());
    }
    let scopes = connector.as_ref().and_then(|(_, name, offered)| {
        checked_scopes(name, offered, &c.scopes).map_err(|e| problems.push(e.to_string())).ok()
    });
    let existing: Option<ExistingConnection> = sqlx::query_as(
        "SELECT c.id, c.display_name, c.conn_type, c.scopes, c.same_for_all_envs,
                k.kind AS connector_kind, k.link_name AS connector_link
         FROM connections c JOIN connectors k ON k.id = c.connector_id
         WHERE c.workspace_id = $1 AND c.link_name = $2",
    )
    .bind(ws)
    .bind(&c.link_name)
    .fetch_optional(&state.db.pool)
    .await?;
    let (Some(link), Some(name), Some(conn_type), Some((target, service, _)), Some(scopes)) =
        (link, name, conn_type, connector, scopes)
    else {
        return Ok(Err(problems));
    };
    let Some(e) = existing else {
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        let planned = PlannedConnection {
            link_name: link.to_string(),
            display_name: name.to_string(),
            service,
            conn_type,
            action: PlanAction::Create,
            grants_access: c.application_access,
            needs_authorizing: environments.to_vec(),
            notes: vec![],
        };
        let new = NewConnection {
            connector: target,
            link_name: link,
            display_name: name,
            conn_type,
            scopes,
            same_for_all_envs: c.same_for_all_environments,
        };
        return Ok(Ok((planned, Target::New(new))));
    };
    let kind_there = match &c.connector {
        ConnectorRef::Builtin { .. } => ConnectorKind::BuiltIn,
        ConnectorRef::Custom { .. } => ConnectorKind::Custom,
    };
    if e.connector_kind != kind_there || e.connector_link != c.connector.link_name() {
        problems.push(format!(
            "A connection with this link name is here, made from the {} connector '{}'; the document's is made from the {} connector '{}'.",
            e.connector_kind.label().to_lowercase(),
            e.connector_link,
            kind_there.label().to_lowercase(),
            c.connector.link_name()
        ));
    }
    if e.conn_type != conn_type {
        problems.push(format!(
            "A connection with this link name is here as a {}; the document's is a {}.",
            e.conn_type.label(),
            conn_type.label()
        ));
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let mut notes = Vec::new();
    if e.display_name != name.as_str() {
        notes.push(format!("Keeps its name '{}' (the document says '{name}').", e.display_name));
    }
    let mut here: Vec<&str> = e.scopes.split_whitespace().collect();
    let mut there: Vec<&str> = scopes.iter().map(String::as_str).collect();
    here.sort_unstable();
    there.sort_unstable();
    if here != there {
        notes.push(format!("Keeps its scopes '{}' (the document asks for '{}').", here.join(" "), there.join(" ")));
    }
    if (e.same_for_all_envs != 0) != c.same_for_all_environments {
        notes.push("Keeps its own \"same authorization for all environments\" setting.".into());
    }
    let access_here: Option<i64> = match app_id {
        Some(app) => {
            sqlx::query_scalar("SELECT enabled FROM connection_access WHERE connection_id = $1 AND application_id = $2")
                .bind(e.id)
                .bind(app)
                .fetch_optional(&state.db.pool)
                .await?
        }
        None => None,
    };
    let connected: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT ca.environment FROM connection_authorizations ca
         JOIN authorized_accounts a ON a.id = ca.account_id
         WHERE ca.connection_id = $1 AND a.status = 'connected' AND ca.reconsent_reason IS NULL",
    )
    .bind(e.id)
    .fetch_all(&state.db.pool)
    .await?;
    let planned = PlannedConnection {
        link_name: link.to_string(),
        display_name: e.display_name,
        service,
        conn_type,
        action: PlanAction::Match,
        grants_access: c.application_access && access_here != Some(1),
        needs_authorizing: environments
            .iter()
            .copied()
            .filter(|env| !connected.iter().any(|c| c == env.as_str()))
            .collect(),
        notes,
    };
    Ok(Ok((planned, Target::Existing(e.id))))
}
