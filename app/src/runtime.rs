//! A minimal runtime for live mode (R3.1, R3.7): a form whose on-load workflow calls a
//! connection, a page panel showing data fetched over a connection, and an integration report
//! listing a service's records. Every call goes through the invoke-URL path as a component's
//! call ([`crate::invoke::ssr::call`] with [`crate::invoke::ssr::Purpose::Component`]): the policy
//! decides per step whether the caller may use that connection type through a component, an
//! unauthorized connection answers [`ComponentRun::AuthorizationRequired`] with `prompt` decided
//! by the policy, and the call always uses production (live mode).
//!
//! Definitions (the `components.definition` JSON):
//! - form: `{"on_load": "<workflow link name>"}` or `{"on_load": [step, …]}`
//! - workflow: `{"steps": [step, …]}`
//! - page: `{"panels": [step, …]}`
//! - integration report: `{"module": "Deals", "invoke": {…}}` (one step)
//!
//! where a step is `{"title": "…", "invoke": {"connection": "<link>", "url": "{api_base}/…"}}`
//! (optionally with `"method"` and, for POST, PUT and PATCH, a JSON `"body"`: see
//! [`crate::scripts::Step`]); `{api_base}` is the connection's connector API address.

use crate::domain::ComponentKind;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Records fetched by one step, as a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSection {
    pub title: String,
    pub connection: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentOutput {
    pub kind: ComponentKind,
    pub name: String,
    pub link_name: String,
    pub sections: Vec<DataSection>,
}

/// What opening a component gives: its output, or the connection it needs authorized first.
///
/// The second is an expected answer in live mode, not a failure: it is answered with 200 so the
/// browser does not log it as a failed request (the invoke URL and `/v1` answer 428).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome")]
pub enum ComponentRun {
    Ready(ComponentOutput),
    /// `prompt`: the caller may authorize it (the dialog opens); otherwise `message` says whom
    /// to ask.
    AuthorizationRequired {
        connection: String,
        prompt: bool,
        message: String,
    },
}

/// Runs a component of `app` for the caller (live mode, production environment).
#[server(prefix = "/api", endpoint = "run_component")]
pub async fn run_component(app: String, component: String) -> Result<ComponentRun, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    match ssr::run(&state, &user, &app, &component).await {
        Ok(out) => Ok(ComponentRun::Ready(out)),
        Err(AppError::AuthorizationRequired { connection, prompt, message }) => {
            Ok(ComponentRun::AuthorizationRequired { connection, prompt, message })
        }
        Err(e) => Err(e),
    }
}

/// Turns a JSON answer (`{"data": [...]}` or `[...]`) into columns and rows: the scalar fields of
/// the records, at most `max_cols` columns and `max_rows` rows.
pub fn tabulate(body: &serde_json::Value, max_cols: usize, max_rows: usize) -> (Vec<String>, Vec<Vec<String>>) {
    use serde_json::Value;
    let records: &[Value] = match body {
        Value::Array(a) => a,
        Value::Object(o) => o.get("data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]),
        _ => &[],
    };
    let columns: Vec<String> = records
        .first()
        .and_then(Value::as_object)
        .map(|o| {
            o.iter().filter(|(_, v)| !(v.is_object() || v.is_array())).map(|(k, _)| k.clone()).take(max_cols).collect()
        })
        .unwrap_or_default();
    let rows = records
        .iter()
        .take(max_rows)
        .map(|r| {
            columns
                .iter()
                .map(|c| match r.get(c) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(v) => v.to_string(),
                })
                .collect()
        })
        .collect();
    (columns, rows)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::domain::Environment;
    use crate::error::AppResult;
    use crate::invoke::InvokeRequest;
    use crate::scripts::{steps_in, Step};
    use crate::ssr::AppState;
    use serde_json::Value;

    const MAX_STEPS: usize = 5;

    fn steps_of(list: &Value) -> AppResult<Vec<Step>> {
        let bad = || AppError::invalid("component", "This component's definition cannot be run.");
        let steps = steps_in(list).map_err(|_| bad())?;
        if steps.len() > MAX_STEPS {
            return Err(bad());
        }
        Ok(steps)
    }

    async fn definition(state: &AppState, id: i64) -> AppResult<Value> {
        let raw: String = sqlx::query_scalar("SELECT definition FROM components WHERE id = $1")
            .bind(id)
            .fetch_one(&state.db.pool)
            .await?;
        serde_json::from_str(&raw).map_err(|e| AppError::internal("component definition", e))
    }

    pub async fn run(state: &AppState, user: &SessionUser, app_link: &str, link: &str) -> AppResult<ComponentOutput> {
        let app = crate::applications::ssr::find(state, user, app_link).await?;
        let allowed = crate::applications::ssr::components(state, user, app.id).await?;
        let c = allowed
            .into_iter()
            .find(|c| c.link_name == link)
            .ok_or_else(|| AppError::not_found(format!("There is no component '{link}' you can open.")))?;
        let def = definition(state, c.id).await?;
        let steps = match c.kind {
            ComponentKind::Form => match def.get("on_load") {
                None => vec![],
                Some(Value::String(workflow)) => {
                    // The on-load workflow runs as part of the form, whoever opens it.
                    let id: i64 = sqlx::query_scalar(
                        "SELECT id FROM components WHERE application_id = $1 AND link_name = $2 AND kind = 'workflow'",
                    )
                    .bind(app.id)
                    .bind(workflow)
                    .fetch_optional(&state.db.pool)
                    .await?
                    .ok_or_else(|| AppError::invalid("component", "The form's on-load workflow is missing."))?;
                    match definition(state, id).await?.get("steps") {
                        Some(list) => steps_of(list)?,
                        None => vec![],
                    }
                }
                Some(list) => steps_of(list)?,
            },
            ComponentKind::Page => def.get("panels").map(steps_of).transpose()?.unwrap_or_default(),
            ComponentKind::IntegrationReport => {
                def.get("invoke").map(|_| steps_of(&def)).transpose()?.unwrap_or_default()
            }
            _ => return Err(AppError::invalid("component", "This kind of component has no live view here.")),
        };
        let mut sections = Vec::new();
        for step in steps {
            sections.push(run_step(state, user, &app.link_name, step).await?);
        }
        Ok(ComponentOutput { kind: c.kind, name: c.name, link_name: c.link_name, sections })
    }

    /// `url` with `{api_base}` replaced by the API address of `connection`'s connector.
    pub(crate) async fn resolve_url(
        state: &AppState,
        user: &SessionUser,
        connection: &str,
        url: &str,
    ) -> AppResult<String> {
        if !url.contains("{api_base}") {
            return Ok(url.to_owned());
        }
        let id = crate::connections::ssr::find_by_link(state, user, connection).await?;
        let conn = crate::connections::ssr::load(state, user.workspace_id, id).await?;
        let connector = crate::connectors::ssr::load(state, user.workspace_id, conn.connector_id).await?;
        let base = connector.config.api_base.unwrap_or_default();
        Ok(url.replace("{api_base}", base.trim_end_matches('/')))
    }

    /// The invoke request of `step` for application `app` in `environment`: its method, its URL
    /// with `{api_base}` resolved, and its JSON body.
    pub(crate) async fn request(
        state: &AppState,
        user: &SessionUser,
        app: &str,
        step: &Step,
        environment: Environment,
    ) -> AppResult<InvokeRequest> {
        let url = resolve_url(state, user, &step.connection, &step.url).await?;
        let headers = match step.body {
            Some(_) => vec![("content-type".to_owned(), "application/json".to_owned())],
            None => vec![],
        };
        Ok(InvokeRequest {
            app: app.to_owned(),
            connection: step.connection.clone(),
            method: step.method.as_str().to_owned(),
            url,
            headers,
            body: step.body.clone(),
            environment: Some(environment),
        })
    }

    async fn run_step(state: &AppState, user: &SessionUser, app: &str, step: Step) -> AppResult<DataSection> {
        let request = request(state, user, app, &step, Environment::Production).await?;
        // The component permission was checked in `run`; `call` checks the policy for using
        // this step's connection type through a component, refusing (and auditing) otherwise.
        let response = crate::invoke::ssr::call(state, user, crate::invoke::ssr::Purpose::Component, request).await?;
        if response.status >= 400 {
            return Err(AppError::Upstream(format!(
                "The service answered {} for \"{}\". Try again later.",
                response.status, step.title
            )));
        }
        let body: Value = serde_json::from_str(&response.body)
            .map_err(|_| AppError::Upstream(format!("The service's answer for \"{}\" is not JSON.", step.title)))?;
        let (columns, rows) = tabulate(&body, 6, 50);
        Ok(DataSection { title: step.title, connection: step.connection, columns, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::tabulate;
    use serde_json::json;

    #[test]
    fn tabulates_records() {
        let body = json!({"data": [{"amount": 10, "id": "D-1", "name": null, "owner": {"x": 1}}], "info": {}});
        let (cols, rows) = tabulate(&body, 6, 50);
        // Nested values are left out; the order of the fields is the answer's.
        let mut sorted = cols.clone();
        sorted.sort();
        assert_eq!(sorted, ["amount", "id", "name"]);
        let row: Vec<(String, String)> = cols.into_iter().zip(rows[0].clone()).collect();
        assert!(row.contains(&("id".into(), "D-1".into())) && row.contains(&("amount".into(), "10".into())));
        assert!(row.contains(&("name".into(), String::new())));
        assert_eq!(tabulate(&json!("nope"), 6, 50), (vec![], vec![]));
    }
}
