//! Typed fixtures: custom connectors described with the app's own input type
//! (`CustomConnectorInput`), posted as the builder's form posts them.

use super::sandbox::Sandbox;
use app::connectors::CustomConnectorInput;

/// The sandbox CRM as a custom OAuth2 connector (authorization code, its registered client,
/// scope `crm.deals.read`). Override fields with `CustomConnectorInput { .., ..sandbox_crm(..) }`.
pub fn sandbox_crm(name: &str, sandbox: &Sandbox) -> CustomConnectorInput {
    CustomConnectorInput {
        name: name.into(),
        auth_type: "oauth2".into(),
        client_id: "crm-connector".into(),
        client_secret: "crm-connector-secret".into(),
        authorize_url: sandbox.endpoint("/auth"),
        token_url: sandbox.endpoint("/token"),
        scopes: "crm.deals.read".into(),
        api_base: sandbox.url.clone(),
        ..Default::default()
    }
}

/// A custom API-key connector for `api_base`, the key sent as `key_name` (in a header).
pub fn api_key(name: &str, key_name: &str, api_base: &str) -> CustomConnectorInput {
    CustomConnectorInput {
        name: name.into(),
        auth_type: "api_key".into(),
        key_name: key_name.into(),
        api_base: api_base.into(),
        ..Default::default()
    }
}

/// The builder's form fields (`input[...]`) for `input`: every field that is set.
pub fn form(input: &CustomConnectorInput) -> Vec<(String, String)> {
    let serde_json::Value::Object(fields) = serde_json::to_value(input).expect("connector input") else {
        panic!("a connector input is an object")
    };
    fields
        .into_iter()
        .filter_map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) if !s.is_empty() => s,
                serde_json::Value::Bool(true) => "true".into(),
                _ => return None,
            };
            Some((format!("input[{k}]"), v))
        })
        .collect()
}
