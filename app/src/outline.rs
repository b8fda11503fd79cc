//! What a component does, as the builder's canvas draws it: a form's on-load workflow and its
//! integration fields, a page's panels, an integration report's module, and the connections the
//! component uses. (Workflows and functions open in the script editor instead, [`crate::scripts`].)

use crate::domain::{ComponentKind, ConnectionType};
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One element of the canvas, drawn as what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutlinePart {
    /// A form's on-load workflow, by link name, with its name when the application has it.
    OnLoad { workflow: String, name: Option<String> },
    /// A form's integration field: a lookup filled from a datasource's module.
    Field { field: String, datasource: String, module: String },
    /// A call the component makes over a connection: a page's panel, a report's read, a step
    /// run on load. `label` says which ("Panel", "Reads", "On load").
    Call { label: String, title: String, method: String, connection: String, url: String },
    /// Anything else worth saying: a report's module, "nothing" on load, no panels yet.
    Note { label: String, detail: String },
}

/// A connection the component uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedConnection {
    pub display_name: String,
    pub link_name: String,
    pub conn_type: ConnectionType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentOutline {
    pub kind: ComponentKind,
    pub name: String,
    pub parts: Vec<OutlinePart>,
    pub connections: Vec<UsedConnection>,
}

#[server(prefix = "/api", endpoint = "get_component_outline")]
pub async fn get_component_outline(app: String, component: String) -> Result<ComponentOutline, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("open the builder").await?;
    ssr::outline(&state, &user, &app, &component).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::error::AppResult;
    use crate::scripts::Step;
    use crate::ssr::AppState;
    use serde_json::Value;

    fn note(label: &str, detail: impl Into<String>) -> OutlinePart {
        OutlinePart::Note { label: label.into(), detail: detail.into() }
    }

    /// A call for each step of a list: its title, method, connection and URL.
    fn steps(label: &str, list: Option<&Value>) -> Vec<OutlinePart> {
        let items: Vec<&Value> = match list {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => vec![],
        };
        items
            .into_iter()
            .filter_map(Step::from_definition)
            .map(|s| OutlinePart::Call {
                label: label.into(),
                title: s.title,
                method: s.method.as_str().into(),
                connection: s.connection,
                url: s.url,
            })
            .collect()
    }

    pub async fn outline(
        state: &AppState,
        user: &SessionUser,
        app_link: &str,
        link: &str,
    ) -> AppResult<ComponentOutline> {
        let (app, c) = crate::applications::ssr::component_definition(state, user, app_link, link).await?;
        let (id, kind, name, def) = (c.id, c.kind, c.name, c.definition);
        let mut parts = Vec::new();
        match kind {
            ComponentKind::Form => {
                match def.get("on_load") {
                    Some(Value::String(workflow)) => {
                        let target: Option<String> = sqlx::query_scalar(
                            "SELECT name FROM components WHERE application_id = $1 AND link_name = $2",
                        )
                        .bind(app.id)
                        .bind(workflow)
                        .fetch_optional(&state.db.pool)
                        .await?;
                        parts.push(OutlinePart::OnLoad { workflow: workflow.clone(), name: target });
                    }
                    Some(list) => parts.extend(steps("On load", Some(list))),
                    None => parts.push(note("On load", "nothing")),
                }
                let fields: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT f.field_name, d.name, d.module FROM integration_fields f
                     JOIN datasources d ON d.id = f.datasource_id WHERE f.component_id = $1 ORDER BY f.id",
                )
                .bind(id)
                .fetch_all(&state.db.pool)
                .await?;
                for (field, datasource, module) in fields {
                    parts.push(OutlinePart::Field { field, datasource, module });
                }
            }
            ComponentKind::Page => {
                let panels = steps("Panel", def.get("panels"));
                if panels.is_empty() {
                    parts.push(note("Panels", "none yet"));
                }
                parts.extend(panels);
            }
            ComponentKind::IntegrationReport => {
                if let Some(module) = def.get("module").and_then(Value::as_str) {
                    parts.push(note("Module", module));
                }
                parts.extend(steps("Reads", def.get("invoke").map(|_| &def)));
            }
            ComponentKind::Workflow | ComponentKind::Function => {
                parts.push(note("Script", "opens in the script editor"));
            }
            ComponentKind::Report | ComponentKind::Blueprint | ComponentKind::Schedule => {
                parts.push(note(kind.label(), "not drawn here; the connections it uses are below"));
            }
        }
        let connections: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT k.display_name, k.link_name, k.conn_type FROM component_connections cc
             JOIN connections k ON k.id = cc.connection_id WHERE cc.component_id = $1 ORDER BY k.display_name",
        )
        .bind(id)
        .fetch_all(&state.db.pool)
        .await?;
        let connections = connections
            .into_iter()
            .map(|(display_name, link_name, kind)| {
                Ok(UsedConnection { display_name, link_name, conn_type: ConnectionType::parse(&kind)? })
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(ComponentOutline { kind, name, parts, connections })
    }
}
