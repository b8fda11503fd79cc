//! What a component does, as the builder's canvas draws it: a form's on-load workflow and its
//! integration fields, a page's panels, an integration report's module, and the connections the
//! component uses. (Workflows and functions open in the script editor instead, [`crate::scripts`].)

use crate::domain::{ComponentKind, ConnectionType};
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One line of the outline: "On load: runs the workflow Load Deals".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutlinePart {
    pub label: String,
    pub detail: String,
    /// Another component of the application this line points at, by name and link name (the
    /// builder opens it); `detail` then leads up to its name.
    pub component: Option<(String, String)>,
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

    fn part(label: &str, detail: impl Into<String>) -> OutlinePart {
        OutlinePart { label: label.into(), detail: detail.into(), component: None }
    }

    /// "Open deals — GET sales_crm {api_base}/api/crm/Deals" for each step of a list.
    fn steps(label: &str, list: Option<&Value>) -> Vec<OutlinePart> {
        let items: Vec<&Value> = match list {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => vec![],
        };
        items
            .into_iter()
            .filter_map(Step::from_definition)
            .map(|s| part(label, format!("{} — {} {} {}", s.title, s.method.as_str(), s.connection, s.url)))
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
                        let detail = match &target {
                            Some(_) => "runs the workflow".to_string(),
                            None => format!("runs the workflow {workflow}, which is missing"),
                        };
                        parts.push(OutlinePart {
                            label: "On load".into(),
                            detail,
                            component: target.map(|n| (n, workflow.clone())),
                        });
                    }
                    Some(list) => parts.extend(steps("On load", Some(list))),
                    None => parts.push(part("On load", "nothing")),
                }
                let fields: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT f.field_name, d.name, d.module FROM integration_fields f
                     JOIN datasources d ON d.id = f.datasource_id WHERE f.component_id = $1 ORDER BY f.id",
                )
                .bind(id)
                .fetch_all(&state.db.pool)
                .await?;
                for (field, datasource, module) in fields {
                    parts.push(part("Integration field", format!("{field} ← {datasource} ({module})")));
                }
            }
            ComponentKind::Page => {
                let panels = steps("Panel", def.get("panels"));
                if panels.is_empty() {
                    parts.push(part("Panels", "none yet"));
                }
                parts.extend(panels);
            }
            ComponentKind::IntegrationReport => {
                if let Some(module) = def.get("module").and_then(Value::as_str) {
                    parts.push(part("Module", module));
                }
                parts.extend(steps("Reads", def.get("invoke").map(|_| &def)));
            }
            ComponentKind::Workflow | ComponentKind::Function => {
                parts.push(part("Script", "opens in the script editor"));
            }
            ComponentKind::Report | ComponentKind::Blueprint | ComponentKind::Schedule => {
                parts.push(part(kind.label(), "not drawn here; the connections it uses are below"));
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
