//! The `connections.*` events the embedded panel posts to the page that embeds it (the schema
//! is documented in README "Embedding"), addressed to this server's origin and the allowlisted
//! origins only.

use crate::domain::Environment;

/// Posts panel events to the embedding page; present only inside `/embed/:app`.
#[derive(Clone, Debug)]
pub struct EmbedEvents {
    pub app: String,
    pub origins: Vec<String>,
}

/// The message posted for one event (the documented schema, see README "Embedding").
pub fn event_json(kind: &str, app: &str, connection: &str, environment: Environment, at: &str) -> String {
    serde_json::json!({
        "type": kind,
        "app": app,
        "connection": connection,
        "environment": environment.as_str(),
        "at": at,
    })
    .to_string()
}

impl EmbedEvents {
    #[cfg(feature = "hydrate")]
    pub fn emit(&self, kind: &str, connection: &str, environment: Environment) {
        use leptos::web_sys::js_sys;
        let at = js_sys::Date::new_0().to_iso_string().as_string().unwrap_or_default();
        let Ok(message) = js_sys::JSON::parse(&event_json(kind, &self.app, connection, environment, &at)) else {
            return;
        };
        let Ok(Some(parent)) = leptos::prelude::window().parent() else { return };
        let own = leptos::prelude::window().location().origin().unwrap_or_default();
        for origin in std::iter::once(&own).chain(self.origins.iter()) {
            // A target origin other than the parent's is dropped by the browser.
            let _ = parent.post_message(&message, origin);
        }
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn emit(&self, _kind: &str, _connection: &str, _environment: Environment) {}
}

/// Emits `kind` for `connection` when the panel runs inside the embed page.
pub fn emit(events: &Option<EmbedEvents>, kind: &str, connection: &str, environment: Environment) {
    if let Some(e) = events {
        e.emit(kind, connection, environment);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_schema() {
        let v: serde_json::Value = serde_json::from_str(&super::event_json(
            "connections.revoked",
            "sales_hub",
            "sales_crm",
            crate::domain::Environment::Production,
            "2026-11-22T05:00:00.000Z",
        ))
        .unwrap();
        assert_eq!(v["type"], "connections.revoked");
        assert_eq!(v["app"], "sales_hub");
        assert_eq!(v["connection"], "sales_crm");
        assert_eq!(v["environment"], "production");
        assert_eq!(v.as_object().unwrap().len(), 5);
    }
}
