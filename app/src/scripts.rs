//! Scripts: the steps of a workflow or function as text the builder edits (the script editor,
//! the help page's third way to open the connections panel). One step per line:
//!
//! ```text
//! # a comment
//! Open deals: GET sales_crm {api_base}/api/crm/Deals?per_page=5
//! New deal: POST sales_crm {api_base}/api/crm/Deals {"name": "Acme", "amount": 1200}
//! ```
//!
//! `<title>: <method> <connection link name> <url> [<JSON body>]`, where the URL starts with
//! `{api_base}` (the connection's connector API address) or `https://`, and POST, PUT and PATCH
//! may end with a JSON body (sent as `application/json`). [`parse`] is shared by the browser (a
//! syntax check as the builder types) and the server (which refuses what does not parse, and
//! checks the connections exist). Saving replaces the component's steps and the connections it
//! references, in one transaction, so the panel shows what the script uses. "Test" runs one step
//! as the builder in Development through the raw invoke path (its policy, its audit).
//!
//! [`Step`] is also how a component's definition (JSON) holds its steps: [`steps_in`] reads them
//! for the runtime, the outline and the editor alike.

use crate::domain::LinkName;
use crate::error::AppError;
use crate::invoke::InvokeResponse;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// At most this many steps (the runtime's limit).
pub const MAX_STEPS: usize = 20;

closed_set! {
    /// The HTTP method of a step.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
    pub enum Method ("method", "method") {
        #[default]
        Get = "GET", "GET";
        Post = "POST", "POST";
        Put = "PUT", "PUT";
        Patch = "PATCH", "PATCH";
        Delete = "DELETE", "DELETE";
    }
}

impl Method {
    /// Whether a step with this method may carry a body.
    pub fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

/// One step of a script: a call over one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub title: String,
    pub connection: String,
    #[serde(default)]
    pub method: Method,
    pub url: String,
    /// JSON text, for POST, PUT and PATCH.
    #[serde(default)]
    pub body: Option<String>,
}

impl Step {
    /// A step as a component's definition holds it:
    /// `{"title": …, "invoke": {"connection": …, "method": …, "url": …, "body": …}}` (the method
    /// is GET when absent; the body is any JSON value).
    pub fn from_definition(s: &Value) -> Option<Step> {
        let invoke = s.get("invoke")?;
        let connection = invoke.get("connection")?.as_str()?.to_string();
        let url = invoke.get("url")?.as_str()?.to_string();
        let method = match invoke.get("method") {
            None => Method::Get,
            Some(m) => Method::parse(&m.as_str()?.to_ascii_uppercase()).ok()?,
        };
        let body = match invoke.get("body") {
            None | Some(Value::Null) => None,
            Some(_) if !method.has_body() => return None,
            Some(b) => Some(b.to_string()),
        };
        let title = s.get("title").and_then(Value::as_str).unwrap_or(&connection).to_string();
        Some(Step { title, connection, method, url, body })
    }

    /// The step as a component's definition holds it (read back by [`Step::from_definition`]).
    pub fn to_definition(&self) -> Value {
        let mut invoke = json!({"connection": self.connection, "url": self.url});
        if self.method != Method::Get {
            invoke["method"] = json!(self.method.as_str());
        }
        if let Some(body) = &self.body {
            invoke["body"] = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.clone()));
        }
        json!({"title": self.title, "invoke": invoke})
    }

    /// One line of a script (what [`parse`] reads).
    pub fn line(&self) -> String {
        let mut line = format!("{}: {} {} {}", self.title, self.method.as_str(), self.connection, self.url);
        if let Some(body) = &self.body {
            line.push(' ');
            line.push_str(body);
        }
        line
    }
}

/// The steps of a definition's list (`steps`, `panels`, `on_load`; one step on its own counts as
/// a list of one). `Err(n)`: the list is not one, or its `n`-th step (0-based) cannot be read.
pub fn steps_in(list: &Value) -> Result<Vec<Step>, usize> {
    let items: Vec<&Value> = match list {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![list],
        _ => return Err(0),
    };
    items.into_iter().enumerate().map(|(i, s)| Step::from_definition(s).ok_or(i)).collect()
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
    let rest = rest.trim_start();
    let (word, rest) = next_word(rest);
    let method = match word {
        "" => return Err("Write a method (GET, POST, …), a connection's link name and a URL after the colon.".into()),
        m => Method::parse(&m.to_ascii_uppercase())
            .map_err(|_| format!("'{m}' is not a method: write GET, POST, PUT, PATCH or DELETE after the colon."))?,
    };
    let (connection, rest) = next_word(rest);
    if connection.is_empty() {
        return Err(format!("Name the connection (its link name) after {}.", method.as_str()));
    }
    let connection = LinkName::parse(connection).map_err(|e| format!("Connection '{connection}': {e}"))?;
    let (url, rest) = next_word(rest);
    if url.is_empty() {
        return Err("Give the URL after the connection.".into());
    }
    if !(url.starts_with("{api_base}/") || url.starts_with("https://")) {
        return Err("Start the URL with {api_base}/ (the connector's API address) or https://.".into());
    }
    let body = match rest.trim() {
        "" => None,
        text if method.has_body() => {
            let value: Value =
                serde_json::from_str(text).map_err(|e| format!("The body is not JSON ({e}); URLs have no spaces."))?;
            if !(value.is_object() || value.is_array()) {
                return Err("Write the body as a JSON object or array.".into());
            }
            // Kept as one line, so the script reads back the same.
            Some(value.to_string())
        }
        text => {
            let extra = next_word(text).0;
            return Err(format!(
                "Unexpected '{extra}' after the URL (URLs have no spaces; only POST, PUT and PATCH take a body)."
            ));
        }
    };
    Ok(Step {
        title: title.to_string(),
        connection: connection.as_str().to_string(),
        method,
        url: url.to_string(),
        body,
    })
}

/// The first word of `text` (after leading spaces) and what follows it.
fn next_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    text.split_once(char::is_whitespace).unwrap_or((text, ""))
}

/// The text of `steps`, as [`parse`] reads it back.
pub fn render(steps: &[Step]) -> String {
    steps.iter().map(|s| s.line() + "\n").collect()
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

/// What Test gives: the service's answer, or the connection the builder must authorize first.
///
/// The second is an expected answer, not a failure: it is answered with 200 (as
/// [`crate::runtime::ComponentRun`] is) so the browser does not log a failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome")]
pub enum StepTest {
    Answered(InvokeResponse),
    /// `prompt`: the builder may authorize it (from Integrations); `message` says what to do.
    AuthorizationRequired {
        connection: String,
        prompt: bool,
        message: String,
    },
}

/// Runs step `step` (0-based) of the script as written (saved or not).
#[server(prefix = "/api", endpoint = "test_script_step")]
pub async fn test_script_step(app: String, component: String, text: String, step: usize) -> Result<StepTest, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("test scripts").await?;
    match ssr::test_step(&state, &user, &app, &component, &text, step).await {
        Ok(res) => Ok(StepTest::Answered(res)),
        Err(AppError::AuthorizationRequired { connection, prompt, message }) => {
            Ok(StepTest::AuthorizationRequired { connection, prompt, message })
        }
        Err(e) => Err(e),
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::domain::{ComponentKind, Environment};
    use crate::error::AppResult;
    use crate::ssr::AppState;

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

    /// The steps of a saved script; a step that cannot be read is left out (and not saved back).
    fn steps_of(definition: &Value) -> Vec<Step> {
        let list = definition.get("steps").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        list.iter().filter_map(Step::from_definition).collect()
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
        let list: Vec<Value> = steps.iter().map(Step::to_definition).collect();
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
        let request = crate::runtime::ssr::request(state, user, app, step, Environment::Development).await?;
        crate::invoke::ssr::invoke(state, user, request).await
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
        let text = "Ok: GET sales_crm {api_base}/a\nno colon here\nBad: FETCH sales_crm {api_base}/a\nX: GET Sales {api_base}/a\nY: GET c http://plain/a\nZ: GET c {api_base}/a extra";
        let errors = parse(text).expect_err("refused");
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert!(errors[1].message.contains("'FETCH' is not a method"), "{errors:?}");
        assert!(errors[2].to_string().starts_with("Line 4: Connection 'Sales'"), "{errors:?}");
        assert!(errors[4].message.contains("only POST, PUT and PATCH take a body"), "{errors:?}");
    }

    #[test]
    fn writes_send_a_json_body_and_read_back_the_same() {
        let text = "New deal: POST sales_crm {api_base}/api/crm/Deals {\"name\": \"Acme\", \"amount\": 1200}\n\
                    Close: PATCH sales_crm {api_base}/api/crm/Deals/7 [1, 2]\n\
                    Drop: DELETE sales_crm {api_base}/api/crm/Deals/7\n\
                    Ping: post c https://x.example/p\n";
        let steps = parse(text).expect("parses");
        let methods: Vec<Method> = steps.iter().map(|s| s.method).collect();
        assert_eq!(methods, [Method::Post, Method::Patch, Method::Delete, Method::Post]);
        assert_eq!(steps[0].body.as_deref(), Some(r#"{"amount":1200,"name":"Acme"}"#));
        assert_eq!(steps[0].url, "{api_base}/api/crm/Deals");
        assert_eq!((steps[2].body.as_deref(), steps[3].body.as_deref()), (None, None));
        assert_eq!(parse(&render(&steps)).expect("round trip"), steps);
        // As a component's definition holds them, and back.
        let list = serde_json::Value::Array(steps.iter().map(Step::to_definition).collect());
        assert_eq!(list[0]["invoke"]["body"]["amount"], 1200);
        assert_eq!(list[2]["invoke"]["method"], "DELETE");
        assert_eq!(steps_in(&list).expect("reads back"), steps);

        for (line, why) in [
            ("A: POST c {api_base}/a {oops", "not JSON"),
            ("A: PUT c {api_base}/a 42", "JSON object or array"),
            ("A: GET c {api_base}/a {\"x\": 1}", "only POST, PUT and PATCH take a body"),
            ("A: DELETE c {api_base}/a []", "only POST, PUT and PATCH take a body"),
        ] {
            let errors = parse(line).expect_err(line);
            assert!(errors[0].message.contains(why), "{line}: {errors:?}");
        }
    }

    #[test]
    fn definitions_without_a_method_are_gets_and_unreadable_steps_are_named() {
        let one = serde_json::json!({"invoke": {"connection": "crm", "url": "{api_base}/x"}});
        let steps = steps_in(&one).expect("one step");
        assert_eq!((steps[0].method, steps[0].title.as_str()), (Method::Get, "crm"));
        let list = serde_json::json!([one, {"invoke": {"connection": "crm", "url": "/x", "method": "BREW"}}]);
        assert_eq!(steps_in(&list), Err(1));
        let body_on_get = serde_json::json!({"invoke": {"connection": "crm", "url": "/x", "body": {}}});
        assert_eq!(steps_in(&body_on_get), Err(0));
        assert_eq!(steps_in(&serde_json::json!("steps")), Err(0));
    }

    #[test]
    fn too_many_steps_are_refused() {
        let text = "S: GET c {api_base}/a\n".repeat(MAX_STEPS + 1);
        assert!(parse(&text).is_err());
        assert!(parse(&"S: GET c {api_base}/a\n".repeat(MAX_STEPS)).is_ok());
    }
}
