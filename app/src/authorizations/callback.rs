//! `GET /oauth/callback` (R8.8, R8.9): the popup the provider sends back to. Its page is the
//! template `callback_page.html` around a status line and a script: `callback.js` (the outcome)
//! or `callback_handoff.js` (the answer handed to the window that started the flow); every value
//! put into them is escaped for where it goes.

use super::oauth::{finish, is_flow_state};
use super::FlowStatus;
use crate::ssr::AppState;
use serde::Deserialize;

/// The query parameters the provider sends back to the redirect URI.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// `GET /oauth/callback`: finishes the flow and shows the outcome in the popup, which tells
/// the page that opened it and closes itself. The page polls the flow status as well, so it
/// learns the outcome even if the popup was blocked or closed.
pub async fn callback_handler(
    axum::extract::State(state): axum::extract::State<AppState>,
    session: tower_sessions::Session,
    axum::extract::Query(params): axum::extract::Query<CallbackParams>,
) -> axum::response::Response {
    let user = crate::auth::ssr::session_user(&state, &session).await.ok().flatten();
    let flow = params.state.clone().unwrap_or_default();
    let flow_js = serde_json::to_string(
        &flow.chars().filter(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect::<String>(),
    )
    .unwrap_or_else(|_| "\"\"".into());
    // Started by a session this window does not have (the panel embedded on another site
    // keeps its session in its frame): hand the answer to the window that opened this one,
    // which finishes it with its own session. Nothing is consumed here.
    if pending_owner(&state, &flow).await.is_some_and(|owner| user.as_ref().map(|u| u.id) != Some(owner)) {
        return handoff_page(&flow_js);
    }
    let status = finish(&state, user.as_ref(), params).await;
    let outcome = match &status {
        FlowStatus::Connected { .. } => "connected",
        FlowStatus::Expired => "expired",
        FlowStatus::Denied => "denied",
        FlowStatus::Cancelled => "cancelled",
        FlowStatus::Failed { .. } | FlowStatus::Pending { .. } => "failed",
    };
    popup_page(outcome_html(outcome, &escape_html(&status.message()), &flow_js))
}

/// Why the dialog sent its popup to `/oauth/ended`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ended {
    Expired,
    Cancelled,
}

#[derive(Debug, Deserialize)]
pub struct EndedParams {
    why: Ended,
}

/// `GET /oauth/ended?why=expired|cancelled`: where the dialog sends the provider's popup when
/// the flow ends without an answer (the window expired, or Cancel): the popup says so, then
/// closes itself.
pub async fn ended_handler(
    axum::extract::Query(EndedParams { why }): axum::extract::Query<EndedParams>,
) -> axum::response::Response {
    let (outcome, status) = match why {
        Ended::Expired => ("expired", FlowStatus::Expired),
        Ended::Cancelled => ("cancelled", FlowStatus::Cancelled),
    };
    popup_page(ended_html(outcome, &escape_html(&status.message())))
}

/// The page of [`ended_handler`]: `outcome` one of a closed set of words, `message_html` escaped.
fn ended_html(outcome: &str, message_html: &str) -> String {
    let status = fill(
        "<p role=\"status\" data-outcome=\"{{outcome}}\">{{message}}</p>\n<p>This window closes by itself.</p>",
        &[("outcome", outcome), ("message", message_html)],
    );
    fill(PAGE, &[("status", &status), ("script", "setTimeout(function () { window.close() }, 2500)")])
}

/// The outcome page. `outcome` is one of a closed set of words, `message_html` is escaped HTML and
/// `flow_js` a JSON string of `[A-Za-z0-9_-]` only, so each is safe where the template puts it
/// (an attribute, the page's text, the script).
fn outcome_html(outcome: &str, message_html: &str, flow_js: &str) -> String {
    let status = fill(
        "<p role=\"status\" data-outcome=\"{{outcome}}\">{{message}}</p>\n<p>You can close this window.</p>",
        &[("outcome", outcome), ("message", message_html)],
    );
    let script = fill(include_str!("callback.js"), &[("outcome", outcome), ("flow", flow_js)]);
    fill(PAGE, &[("status", &status), ("script", &script)])
}

/// The page that hands the provider's answer to the opener; `flow_js` as in [`outcome_html`].
fn handoff_html(flow_js: &str) -> String {
    let status = "<p role=\"status\" data-outcome=\"handoff\" id=\"s\">This authorization was started in another window. Go back to it to finish; if it was not you, start again from Authorize.</p>";
    let script = fill(include_str!("callback_handoff.js"), &[("flow", flow_js)]);
    fill(PAGE, &[("status", status), ("script", &script)])
}

/// The popup's page around its status line and script (`{{status}}`, `{{script}}`).
const PAGE: &str = include_str!("callback_page.html");

/// Replaces each `{{name}}` in `template` by its value, in one pass: a value is never searched for
/// placeholders itself, so text from the provider inside a message cannot bring one in.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let found = after.find("}}").and_then(|end| {
            let name = &after[..end];
            values.iter().find(|(k, _)| *k == name).map(|(_, v)| (end, *v))
        });
        match found {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The authorization popup's answer: never cached, and no referrer (its URL carries the
/// provider's answer).
fn popup_page(html: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut res = axum::response::Html(html).into_response();
    res.headers_mut().insert("cache-control", axum::http::HeaderValue::from_static("no-store"));
    res.headers_mut().insert("referrer-policy", axum::http::HeaderValue::from_static("no-referrer"));
    res
}

/// Who started the unfinished flow `flow`, if it is one.
async fn pending_owner(state: &AppState, flow: &str) -> Option<i64> {
    if !is_flow_state(flow) {
        return None;
    }
    sqlx::query_scalar("SELECT user_id FROM oauth_pending WHERE state = $1 AND consumed_at IS NULL")
        .bind(flow)
        .fetch_optional(&state.db.pool)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not read the pending oauth flow");
            None
        })
}

/// The popup's page when the flow belongs to another session: it posts the provider's
/// answer (code, iss or error, never shown) to the opener — addressed to this origin only —
/// whose authorization dialog finishes it with [`super::complete_authorization`].
fn handoff_page(flow_js: &str) -> axum::response::Response {
    popup_page(handoff_html(flow_js))
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_page_gets_every_value_where_it_belongs() {
        let page = outcome_html("denied", &escape_html("<b>\"no\" & 'never'</b>"), "\"abc-_1\"");
        assert!(
            page.contains("data-outcome=\"denied\">&lt;b&gt;&quot;no&quot; &amp; &#39;never&#39;&lt;/b&gt;</p>"),
            "{page}"
        );
        assert!(page.contains("flow: \"abc-_1\", outcome: \"denied\"}, location.origin)"), "{page}");
        assert!(!page.contains("{{"), "{page}");
        let handoff = handoff_html("\"xyz\"");
        assert!(handoff.contains("{type: \"connections:oauth_handoff\", flow: \"xyz\"}"), "{handoff}");
        assert!(handoff.contains("data-outcome=\"handoff\""), "{handoff}");
        assert!(!handoff.contains("{{"), "{handoff}");
        let ended = ended_html("expired", "gone &amp; done");
        assert!(ended.contains("data-outcome=\"expired\">gone &amp; done</p>"), "{ended}");
        assert!(ended.contains("window.close()"), "{ended}");
    }

    #[test]
    fn a_placeholder_inside_a_value_stays_text() {
        let page = outcome_html("failed", &escape_html("error: {{flow}} {{outcome}}"), "\"f\"");
        assert!(page.contains(">error: {{flow}} {{outcome}}</p>"), "{page}");
        assert_eq!(fill("a {{x}} {{unknown}} {{ b", &[("x", "{{x}}")]), "a {{x}} {{unknown}} {{ b");
    }
}
