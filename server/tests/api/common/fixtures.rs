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

/// What the authorize dialog posts for one connection: the account's name, the environments
/// (empty: the connector's default), and the credentials the connector's auth type reads
/// (none for OAuth2). Build with [`api_key_auth`], [`basic_auth`] or [`oauth`], override with
/// `Authorization { replace: true, ..basic_auth(..) }`.
#[derive(Debug, Clone, Default)]
pub struct Authorization<'a> {
    pub account_name: &'a str,
    pub environments: &'a [&'a str],
    pub api_key: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub replace: bool,
}

pub fn api_key_auth<'a>(account_name: &'a str, api_key: &'a str) -> Authorization<'a> {
    Authorization { account_name, api_key, ..Default::default() }
}

pub fn basic_auth<'a>(
    account_name: &'a str,
    environments: &'a [&'a str],
    username: &'a str,
    password: &'a str,
) -> Authorization<'a> {
    Authorization { account_name, environments, username, password, ..Default::default() }
}

pub fn oauth(account_name: &str) -> Authorization<'_> {
    Authorization { account_name, ..Default::default() }
}

impl Authorization<'_> {
    /// The form fields for `connection_id`: the account name (even empty) and every other field
    /// that is set.
    pub fn form(&self, connection_id: i64) -> Vec<(String, String)> {
        let mut fields = vec![
            ("connection_id".into(), connection_id.to_string()),
            ("account_name".into(), self.account_name.to_string()),
        ];
        let mut add = |k: &str, v: &str| {
            if !v.is_empty() {
                fields.push((k.to_string(), v.to_string()));
            }
        };
        add("credentials[api_key]", self.api_key);
        add("credentials[username]", self.username);
        add("credentials[password]", self.password);
        add("replace", if self.replace { "true" } else { "" });
        for (i, e) in self.environments.iter().enumerate() {
            fields.push((format!("environments[{i}]"), e.to_string()));
        }
        fields
    }
}
