//! Environment promotion (issue 13): an application's connections exported as one versioned
//! JSON document — connectors (a built-in's key, or a custom connector's definition without any
//! secret), link and display names, types, scopes, "same for all environments" and the
//! application's access — and imported into another workspace or environment. An import is
//! planned first (every conflict reported, nothing written), then applied in one transaction:
//! connections are matched by link name, missing ones created unauthorized.

use crate::domain::{ConnectionType, Environment};
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod document;
pub use document::*;

closed_set! {
    /// What an import does with one connection or custom connector of the document.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum PlanAction ("action", "plan action") {
        /// Nothing by that link name here: it is created (connections unauthorized).
        Create = "create", "Create";
        /// One by that link name is here and agrees: it is used as it is.
        Match = "match", "Matched";
    }
}

/// A custom connector of the document, as the import treats it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedConnector {
    pub link_name: String,
    pub name: String,
    pub action: PlanAction,
    /// An OAuth2 connector created without its client secret (never exported): a builder sets
    /// it on the connector's Edit page before anyone can authorize its connections.
    pub needs_client_secret: bool,
}

/// A connection of the document, as the import treats it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedConnection {
    pub link_name: String,
    pub display_name: String,
    /// The connector's name (the service).
    pub service: String,
    pub conn_type: ConnectionType,
    pub action: PlanAction,
    /// The application gets access to it (the document grants it and it is not enabled yet).
    pub grants_access: bool,
    /// The chosen environments in which nobody has a working authorization of it.
    pub needs_authorizing: Vec<Environment>,
    /// Differences an existing connection keeps (display name, scopes, …): the import leaves them.
    pub notes: Vec<String>,
}

/// Something that keeps the document from being imported; every one is reported at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// What it is about: `document`, `application sales_hub`, `connection sales_crm`,
    /// `custom connector acme`.
    pub subject: String,
    pub message: String,
}

/// What an import would do (a dry run) or did (`applied`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportPlan {
    /// The application (link name) in this workspace that gets access.
    pub application: String,
    /// The environments "needs authorizing" is about.
    pub environments: Vec<Environment>,
    pub connectors: Vec<PlannedConnector>,
    pub connections: Vec<PlannedConnection>,
    pub conflicts: Vec<Conflict>,
    pub applied: bool,
}

impl ImportPlan {
    /// Connections that nobody has authorized in some chosen environment.
    pub fn needing_authorization(&self) -> impl Iterator<Item = &PlannedConnection> {
        self.connections.iter().filter(|c| !c.needs_authorizing.is_empty())
    }

    /// The 409 an apply answers when the plan has conflicts: all of them, in one message.
    pub fn refusal(&self) -> AppError {
        let list = self.conflicts.iter().map(|c| format!("{}: {}", c.subject, c.message)).collect::<Vec<_>>();
        AppError::Conflict(format!("Nothing was imported: {} conflict(s). {}", self.conflicts.len(), list.join(" · ")))
    }
}

impl std::fmt::Display for ImportPlan {
    /// The report `server import` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let envs = self.environments.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
        let what = if self.applied { "Imported" } else { "Plan (nothing written)" };
        writeln!(f, "{what} for application {} ({envs})", self.application)?;
        for c in &self.conflicts {
            writeln!(f, "  CONFLICT {}: {}", c.subject, c.message)?;
        }
        for k in &self.connectors {
            let secret = if k.needs_client_secret { " — needs its client secret (Edit page)" } else { "" };
            writeln!(f, "  {:<7} custom connector {} ({}){secret}", k.action.label(), k.link_name, k.name)?;
        }
        for c in &self.connections {
            let access = if c.grants_access { "; application access granted" } else { "" };
            writeln!(f, "  {:<7} {} ({}, {}){access}", c.action.label(), c.link_name, c.service, c.conn_type.label())?;
            for n in &c.notes {
                writeln!(f, "          note: {n}")?;
            }
        }
        let needing: Vec<String> = self
            .needing_authorization()
            .map(|c| {
                let envs = c.needs_authorizing.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
                format!("{} ({envs})", c.link_name)
            })
            .collect();
        if needing.is_empty() {
            writeln!(f, "Needs authorizing: nothing")
        } else {
            writeln!(f, "Needs authorizing: {}", needing.join(", "))
        }
    }
}

/// The application's connections as an export document (pretty JSON; builders). No secret is
/// ever part of it.
#[server(prefix = "/api", endpoint = "export_connections")]
pub async fn export_connections(app: String) -> Result<String, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    let doc = ssr::export(&state, &ssr::Actor::User(&user), &app).await?;
    ssr::to_json(&doc)
}

/// What importing `document` into `app` would do, with every conflict (builders). Writes nothing.
#[server(prefix = "/api", endpoint = "plan_import")]
pub async fn plan_import(
    app: String,
    document: String,
    #[server(default)] environment: Option<Environment>,
) -> Result<ImportPlan, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::plan(&state, &ssr::Actor::User(&user), ssr::Import { app: &app, document: &document, environment }).await
}

/// Imports `document` into `app` in one transaction (builders); refused with every conflict,
/// writing nothing, when the plan has any.
#[server(prefix = "/api", endpoint = "apply_import")]
pub async fn apply_import(
    app: String,
    document: String,
    #[server(default)] environment: Option<Environment>,
) -> Result<ImportPlan, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::apply(&state, &ssr::Actor::User(&user), ssr::Import { app: &app, document: &document, environment }).await
}

#[cfg(feature = "ssr")]
mod apply;
#[cfg(feature = "ssr")]
mod export;
#[cfg(feature = "ssr")]
mod plan;

/// The server side: [`ssr::export`], [`ssr::plan`] and [`ssr::apply`] (what the server
/// functions, `server export` / `server import` and the tests call).
#[cfg(feature = "ssr")]
pub mod ssr {
    pub use super::apply::{apply, import_command};
    pub use super::export::{export, export_command, find_workspace, to_json, Actor};
    pub use super::plan::{plan, Import};
}
