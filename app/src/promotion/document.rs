//! The export document, version 1: what it holds and how it is read. Unknown fields are refused
//! (a `client_secret` pasted into a definition is an error, not silently dropped).

use crate::connectors::CustomConnectorInput;
use crate::error::AppError;
use serde::{Deserialize, Serialize};

/// `format` of every export document.
pub const FORMAT: &str = "connections-manager/export";
/// The document version this server writes and reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDocument {
    pub format: String,
    pub version: u32,
    /// When it was exported (Unix milliseconds).
    pub exported_at_ms: i64,
    /// The workspace it came from (its name), for people.
    pub workspace: String,
    pub application: ExportedApplication,
    pub connections: Vec<ExportedConnection>,
    /// The custom connectors those connections use, without any secret.
    #[serde(default)]
    pub custom_connectors: Vec<CustomConnectorDefinition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedApplication {
    pub link_name: String,
    pub name: String,
}

/// One connection the application references (used by its components or datasources, or
/// given access to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedConnection {
    pub link_name: String,
    pub display_name: String,
    /// `admin`, `user` (logged-in user) or `system`.
    #[serde(rename = "type")]
    pub conn_type: String,
    pub connector: ConnectorRef,
    pub scopes: Vec<String>,
    pub same_for_all_environments: bool,
    /// Whether the application may use it (Connection Access).
    pub application_access: bool,
}

/// Which connector a connection is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConnectorRef {
    /// A connector of the built-in catalog, by its key (link name).
    Builtin { link_name: String },
    /// A custom connector defined in the document's `custom_connectors`.
    Custom { link_name: String },
}

impl ConnectorRef {
    pub fn link_name(&self) -> &str {
        match self {
            ConnectorRef::Builtin { link_name } | ConnectorRef::Custom { link_name } => link_name,
        }
    }
}

/// A custom connector's definition: the custom connector form's fields, never the client
/// secret (an OAuth2 connector is imported without one and must be given it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CustomConnectorDefinition {
    pub link_name: String,
    pub name: String,
    pub description: String,
    pub auth_type: String,
    pub grant_type: String,
    pub client_id: String,
    pub authorize_url: String,
    pub token_url: String,
    pub refresh_url: String,
    pub revoke_url: String,
    pub placement: String,
    pub scopes: Vec<String>,
    pub scope_delimiter: String,
    pub key_name: String,
    pub username_label: String,
    pub password_label: String,
    pub api_base: String,
    pub test_url: String,
    pub logo_url: String,
    pub issuer: String,
    /// The authorization server puts `iss` in its answers (RFC 9207), as its metadata said.
    pub iss_parameter_supported: bool,
}

impl CustomConnectorDefinition {
    /// From the form's fields (the secret and the metadata URL are not part of a definition).
    pub fn from_input(input: CustomConnectorInput, iss_parameter_supported: bool) -> Self {
        CustomConnectorDefinition {
            link_name: input.link_name,
            name: input.name,
            description: input.description,
            auth_type: input.auth_type,
            grant_type: input.grant_type,
            client_id: input.client_id,
            authorize_url: input.authorize_url,
            token_url: input.token_url,
            refresh_url: input.refresh_url,
            revoke_url: input.revoke_url,
            placement: input.placement,
            scopes: input.scopes.split_whitespace().map(str::to_owned).collect(),
            scope_delimiter: input.scope_delimiter,
            key_name: input.key_name,
            username_label: input.username_label,
            password_label: input.password_label,
            api_base: input.api_base,
            test_url: input.test_url,
            logo_url: input.logo_url,
            issuer: input.issuer,
            iss_parameter_supported,
        }
    }

    /// The form's fields, with `client_secret` as given (validation wants one for OAuth2).
    pub fn to_input(&self, client_secret: &str) -> CustomConnectorInput {
        let d = self.clone();
        CustomConnectorInput {
            name: d.name,
            link_name: d.link_name,
            description: d.description,
            auth_type: d.auth_type,
            grant_type: d.grant_type,
            client_id: d.client_id,
            client_secret: client_secret.to_string(),
            authorize_url: d.authorize_url,
            token_url: d.token_url,
            refresh_url: d.refresh_url,
            revoke_url: d.revoke_url,
            placement: d.placement,
            scopes: d.scopes.join(" "),
            scope_delimiter: d.scope_delimiter,
            key_name: d.key_name,
            username_label: d.username_label,
            password_label: d.password_label,
            api_base: d.api_base,
            test_url: d.test_url,
            logo_url: d.logo_url,
            issuer: d.issuer,
            discovery_url: String::new(),
        }
    }

    /// The fields in which `other` differs, by name.
    pub fn differences(&self, other: &Self) -> Vec<&'static str> {
        let (a, b) = (self, other);
        let fields: [(&'static str, bool); 20] = [
            ("name", a.name == b.name),
            ("description", a.description == b.description),
            ("auth_type", a.auth_type == b.auth_type),
            ("grant_type", a.grant_type == b.grant_type),
            ("client_id", a.client_id == b.client_id),
            ("authorize_url", a.authorize_url == b.authorize_url),
            ("token_url", a.token_url == b.token_url),
            ("refresh_url", a.refresh_url == b.refresh_url),
            ("revoke_url", a.revoke_url == b.revoke_url),
            ("placement", a.placement == b.placement),
            ("scopes", a.scopes == b.scopes),
            ("scope_delimiter", a.scope_delimiter == b.scope_delimiter),
            ("key_name", a.key_name == b.key_name),
            ("username_label", a.username_label == b.username_label),
            ("password_label", a.password_label == b.password_label),
            ("api_base", a.api_base == b.api_base),
            ("test_url", a.test_url == b.test_url),
            ("logo_url", a.logo_url == b.logo_url),
            ("issuer", a.issuer == b.issuer),
            ("iss_parameter_supported", a.iss_parameter_supported == b.iss_parameter_supported),
        ];
        fields.into_iter().filter(|(_, same)| !same).map(|(name, _)| name).collect()
    }
}

impl ExportDocument {
    /// Reads a document: JSON of this format and version, or a 400 that says what is wrong.
    pub fn parse(text: &str) -> Result<ExportDocument, AppError> {
        let bad = |m: String| AppError::invalid("document", m);
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("The document is not JSON ({e}).")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(bad(format!("This is not a connections export (its \"format\" is not \"{FORMAT}\").")));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "Version {v} exports cannot be read here (this server reads version {VERSION})."
                )))
            }
            None => return Err(bad("The document has no \"version\".".into())),
        }
        serde_json::from_value(value).map_err(|e| bad(format!("The document is not a valid export: {e}.")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_documents_say_what_is_wrong() {
        let cases = [
            ("not json", "not JSON"),
            (r#"{"format":"other","version":1}"#, "not a connections export"),
            (r#"{"format":"connections-manager/export","version":2}"#, "Version 2"),
            (r#"{"format":"connections-manager/export"}"#, "no \"version\""),
            (r#"{"format":"connections-manager/export","version":1}"#, "missing field"),
        ];
        for (text, says) in cases {
            let e = ExportDocument::parse(text).unwrap_err();
            assert_eq!(e.field(), Some("document"));
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn definitions_refuse_secrets_and_round_trip_the_form() {
        let with_secret = r#"{"link_name":"x","client_secret":"s"}"#;
        assert!(serde_json::from_str::<CustomConnectorDefinition>(with_secret).is_err());
        let input = CustomConnectorInput {
            name: "Acme".into(),
            link_name: "acme".into(),
            auth_type: "oauth2".into(),
            client_secret: "secret".into(),
            scopes: "a b".into(),
            ..Default::default()
        };
        let d = CustomConnectorDefinition::from_input(input.clone(), true);
        assert_eq!(d.scopes, ["a", "b"]);
        assert_eq!(d.to_input("secret"), input);
        assert!(!serde_json::to_string(&d).unwrap().contains("secret"));
        let other = CustomConnectorDefinition { token_url: "https://t".into(), ..d.clone() };
        assert_eq!(d.differences(&other), ["token_url"]);
    }
}
