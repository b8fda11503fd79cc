//! Scripts: the steps of a workflow or function as text the builder edits (the script editor,
//! the help page's third way to open the connections panel). One step per line:
//!
//! ```text
//! # a comment
//! Open deals: GET sales_crm {api_base}/api/crm/Deals?per_page=5
//! ```
//!
//! `<title>: GET <connection link name> <url>`, where the URL starts with `{api_base}` (the
//! connection's connector API address) or `https://`. [`parse`] is shared by the browser (a
//! syntax check as the builder types) and the server (which refuses what does not parse, and
//! checks the connections exist). Saving replaces the component's steps and the connections it
//! references, in one transaction, so the panel shows what the script uses. "Test" runs one step
//! as the builder in Development through the raw invoke path (its policy, its audit).

use crate::domain::LinkName;
use crate::error::AppError;
use crate::invoke::InvokeResponse;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// At most this many steps (the runtime's limit).
pub const MAX_STEPS: usize = 20;

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub title: String,
    pub connection: String,
    pub url: String,
}

/// A line of the script that does not parse, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Line {}: {}", self.line, self.message)
    }
}

/// Parses a script: its steps, or every line that is wrong.
pub fn parse(text: &str) -> Result<Vec<Step>, Vec<SyntaxError>> {
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(step) => steps.push(step),
            Err(message) => errors.push(SyntaxError { line: i + 1, message }),
        }
    }
    if steps.len() > MAX_STEPS {
        errors.push(SyntaxError {
            line: text.lines().count(),
            message: format!("A script has at most {MAX_STEPS} steps (this one has {}).", steps.len()),
        });
    }
    if errors.is_empty() {
        Ok(steps)
    } else {
        Err(errors)
    }
}

fn parse_line(line: &str) -> Result<Step, String> {
    let (title, rest) =
        line.split_once(':').ok_or_else(|| "Write a step as `<title>: GET <connection> <url>`.".to_string())?;
    let title = title.trim();
    if title.is_empty() {
        return Err("Give the step a title before the colon.".into());
    }
    if title.chars().count() > 80 {
        return Err("Keep the title to 80 characters.".into());
    }
    let mut words = rest.split_whitespace();
    match words.next() {
        Some("GET") => {}
        Some(m @ ("POST" | "PUT" | "PATCH" | "DELETE")) => {
            return Err(format!("Only GET steps run here; {m} is not supported yet."))
        }
        Some(other) => return Err(format!("'{other}' is not a method: write GET after the colon.")),
        None => return Err("Write GET, a connection's link name and a URL after the colon.".into()),
    }
    let connection = words.next().ok_or_else(|| "Name the connection (its link name) after GET.".to_string())?;
    let connection = LinkName::parse(connection).map_err(|e| format!("Connection '{connection}': {e}"))?;
    let url = words.next().ok_or_else(|| "Give the URL after the connection.".to_string())?;
    if !(url.starts_with("{api_base}/") || url.starts_with("https://")) {
        return Err("Start the URL with {api_base}/ (the connector's API address) or https://.".into());
    }
    if let Some(extra) = words.next() {
        return Err(format!("Unexpected '{extra}' after the URL (URLs have no spaces)."));
    }
    Ok(Step { title: title.to_string(), connection: connection.as_str().to_string(), url: url.to_string() })
}

/// The text of `steps`, as [`parse`] reads it back.
pub fn render(steps: &[Step]) -> String {
    steps.iter().map(|s| format!("{}: GET {} {}\n", s.title, s.connection, s.url)).collect()
}

/// A script as the editor opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptView {
    pub name: String,
    pub text: String,
}

#[server(prefix = "/api", endpoint = "get_script")]
pub async fn get_script(app: String, component: String) -> Result<ScriptView, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("open the script editor").await?;
    ssr::get(&state, &user, &app, &component).await
}

#[server(prefix = "/api", endpoint = "save_script")]
pub async fn save_script(app: String, component: String, text: String) -> Result<usize, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("edit scripts").await?;
    ssr::save(&state, &user, &app, &component, &text).await
}

/// Runs step `step` (0-based) of the script as written (saved or not).
#[server(prefix = "/api", endpoint = "test_script_step")]
pub async fn test_script_step(
    app: String,
    component: String,
    text: String,
    step: usize,
) -> Result<InvokeResponse, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("test scripts").await?;
    ssr::test_step(&state, &user, &app, &component, &text, step).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::domain::{ComponentKind, Environment};
    use crate::error::AppResult;
    use crate::invoke::InvokeRequest;
    use crate::ssr::AppState;
    use serde_json::{json, Value};

    /// The workflow or function `link` of application `app_link`, with its definition.
    async fn script_component(
        state: &AppState,
        user: &SessionUser,
        app_link: &str,
        link: &str,
    ) -> AppResult<(i64, String, Value)> {
        let (_, c) = crate::applications::ssr::component_definition(state, user, app_link, link).await?;
        if !matches!(c.kind, ComponentKind::Workflow | ComponentKind::Function) {
            return Err(AppError::invalid("component", "Only workflows and functions have a script."));
        }
        Ok((c.id, c.name, c.definition))
    }

    fn steps_of(definition: &Value) -> Vec<Step> {
        definition
            .get("steps")
            .and_then(Value::as_array)
            .map(|steps| {
                steps
                    .iter()
                    .filter_map(|s| {
                        let invoke = s.get("invoke")?;
                        let connection = invoke.get("connection")?.as_str()?.to_string();
                        let url = invoke.get("url")?.as_str()?.to_string();
                        let title = s.get("title").and_then(Value::as_str).unwrap_or(&connection).to_string();
                        Some(Step { title, connection, url })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The parsed steps, or the syntax errors as one user-facing error.
    fn checked(text: &str) -> AppResult<Vec<Step>> {
        parse(text).map_err(|errors| {
            AppError::invalid("script", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))
        })
    }

    pub async fn get(state: &AppState, user: &SessionUser, app: &str, link: &str) -> AppResult<ScriptView> {
        let (_, name, definition) = script_component(state, user, app, link).await?;
        Ok(ScriptView { name, text: render(&steps_of(&definition)) })
    }

    /// Saves the script: its steps and, in the same transaction, the connections it references.
    pub async fn save(state: &AppState, user: &SessionUser, app: &str, link: &str, text: &str) -> AppResult<usize> {
        let (id, _, mut definition) = script_component(state, user, app, link).await?;
        let steps = checked(text)?;
        let mut connections = Vec::new();
        for step in &steps {
            let found = crate::connections::ssr::find_by_link(state, user, &step.connection).await?;
            if !connections.contains(&found) {
                connections.push(found);
            }
        }
        let list: Vec<Value> = steps
            .iter()
            .map(|s| json!({"title": s.title, "invoke": {"connection": s.connection, "url": s.url}}))
            .collect();
        match definition.as_object_mut() {
            Some(obj) => {
                obj.insert("steps".into(), Value::Array(list));
            }
            None => definition = json!({ "steps": list }),
        }
        let mut tx = state.db.pool.begin().await?;
        sqlx::query("UPDATE components SET definition = $1 WHERE id = $2")
            .bind(definition.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM component_connections WHERE component_id = $1").bind(id).execute(&mut *tx).await?;
        for connection in &connections {
            sqlx::query("INSERT INTO component_connections (component_id, connection_id) VALUES ($1, $2)")
                .bind(id)
                .bind(connection)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(steps.len())
    }

    /// Runs one step as the builder, in Development, through the raw invoke path.
    pub async fn test_step(
        state: &AppState,
        user: &SessionUser,
        app: &str,
        link: &str,
        text: &str,
        index: usize,
    ) -> AppResult<InvokeResponse> {
        script_component(state, user, app, link).await?;
        let steps = checked(text)?;
        let step = steps.get(index).ok_or_else(|| {
            AppError::invalid("step", format!("The script has {} steps; choose one of them.", steps.len()))
        })?;
        let url = crate::runtime::ssr::resolve_url(state, user, &step.connection, &step.url).await?;
        crate::invoke::ssr::invoke(
            state,
            user,
            InvokeRequest {
                app: app.to_owned(),
                connection: step.connection.clone(),
                method: "GET".into(),
                url,
                environment: Some(Environment::Development),
                ..Default::default()
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_steps_and_skips_comments_and_blank_lines() {
        let text = "# deals\n\nOpen deals: GET sales_crm {api_base}/api/crm/Deals?per_page=5\nMore: GET my_crm https://crm.example/x\n";
        let steps = parse(text).expect("parses");
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].title, "Open deals");
        assert_eq!(steps[0].connection, "sales_crm");
        assert_eq!(steps[1].url, "https://crm.example/x");
        assert_eq!(parse(&render(&steps)).expect("round trip"), steps);
    }

    #[test]
    fn every_wrong_line_is_reported_with_its_number() {
        let text = "Ok: GET sales_crm {api_base}/a\nno colon here\nBad: POST sales_crm {api_base}/a\nX: GET Sales {api_base}/a\nY: GET c http://plain/a\nZ: GET c {api_base}/a extra";
        let errors = parse(text).expect_err("refused");
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert!(errors[1].message.contains("POST"), "{errors:?}");
        assert!(errors[2].to_string().starts_with("Line 4: Connection 'Sales'"), "{errors:?}");
    }

    #[test]
    fn too_many_steps_are_refused() {
        let text = "S: GET c {api_base}/a\n".repeat(MAX_STEPS + 1);
        assert!(parse(&text).is_err());
        assert!(parse(&"S: GET c {api_base}/a\n".repeat(MAX_STEPS)).is_ok());
    }
}
