//! Custom connectors (R5.4): what a builder may define — basic auth, API key (header or query) or
//! OAuth2 (authorization code or client credentials) — checked field by field in the browser
//! before submitting and again, authoritatively, on the server, which then stores the connector
//! with its client secret encrypted.

use super::{ConnectorConfig, CustomConnectorInput, GrantType, Placement, ScopeDef};
use crate::domain::{AuthType, DisplayName, LinkName, Scope, ServiceUrl};
use crate::error::AppError;

/// Validates the builder's input; the same checks run in the browser before submitting.
pub fn validate_custom(input: &CustomConnectorInput) -> Result<ValidatedConnector, AppError> {
    let name = DisplayName::parse("name", &input.name)?;
    let link_raw =
        if input.link_name.trim().is_empty() { LinkName::derive_from(&input.name) } else { input.link_name.clone() };
    let link_name = LinkName::parse(&link_raw)?;
    if input.description.chars().count() > 500 {
        return Err(AppError::invalid("description", "Use at most 500 characters."));
    }
    let auth_type = AuthType::parse(&input.auth_type)?;
    let api_base = ServiceUrl::parse("api_base", &input.api_base)?;
    let opt_url = |field: &str, raw: &str| -> Result<Option<String>, AppError> {
        if raw.trim().is_empty() {
            Ok(None)
        } else {
            ServiceUrl::parse(field, raw).map(|u| Some(u.as_str().to_string()))
        }
    };
    let placement = match input.placement.as_str() {
        "" => Placement::Header,
        other => Placement::parse(other).map_err(|_| {
            AppError::invalid("placement", format!("Send parameters as header or query string, not '{other}'."))
        })?,
    };
    let logo_url = if input.logo_url.trim().is_empty() {
        None
    } else {
        let logo = ServiceUrl::parse("logo_url", &input.logo_url)?;
        if !logo.as_str().starts_with("https://") {
            return Err(AppError::invalid("logo_url", "Use an https:// address for the logo."));
        }
        Some(logo.as_str().to_string())
    };
    let test_url = match input.test_url.trim() {
        "" => None,
        t if t.starts_with('/') && !t.starts_with("//") && t.len() <= 500 && !t.chars().any(char::is_whitespace) => {
            Some(t.to_string())
        }
        _ => {
            return Err(AppError::invalid(
                "test_url",
                "Enter a path under the API base URL, like /v1/me (credentials are only sent there).",
            ))
        }
    };
    let mut config = ConnectorConfig {
        logo_url,
        test_url,
        api_base: Some(api_base.as_str().trim_end_matches('/').to_string()),
        client_auth: placement,
        placement,
        ..Default::default()
    };
    let mut secret = None;
    let mut discovery_url = None;
    match auth_type {
        AuthType::OAuth2 => {
            config.grant_type = match input.grant_type.as_str() {
                "" => GrantType::AuthorizationCode,
                other => GrantType::parse(other)?,
            };
            if input.client_id.trim().is_empty() || input.client_id.len() > 500 {
                return Err(AppError::invalid("client_id", "Enter the client ID the service gave you."));
            }
            if input.client_secret.is_empty() || input.client_secret.len() > 2000 {
                return Err(AppError::invalid("client_secret", "Enter the client secret the service gave you."));
            }
            config.client_id = Some(input.client_id.trim().to_string());
            secret = Some(input.client_secret.clone());
            config.issuer = opt_url("issuer", &input.issuer)?.map(|i| i.trim_end_matches('/').to_string());
            discovery_url = opt_url("discovery_url", &input.discovery_url)?;
            // With metadata to read, the server fills the endpoints left empty when it saves.
            let discovers = discovery_url.is_some() || config.issuer.is_some();
            config.authorize_url = opt_url("authorize_url", &input.authorize_url)?;
            if config.grant_type == GrantType::AuthorizationCode && config.authorize_url.is_none() && !discovers {
                ServiceUrl::parse("authorize_url", &input.authorize_url)?;
            }
            config.token_url = opt_url("token_url", &input.token_url)?;
            if config.token_url.is_none() && !discovers {
                ServiceUrl::parse("token_url", &input.token_url)?;
            }
            config.refresh_url = opt_url("refresh_url", &input.refresh_url)?;
            config.revoke_url = opt_url("revoke_url", &input.revoke_url)?;
            config.scope_delimiter = match input.scope_delimiter.as_str() {
                "" | "space" => " ",
                "comma" => ",",
                "plus" => "+",
                other => return Err(AppError::invalid("scope_delimiter", format!("Unknown delimiter '{other}'."))),
            }
            .to_string();
            config.scopes = Scope::parse_list(&input.scopes)?
                .into_iter()
                .map(|s| ScopeDef { name: s.as_str().to_string(), required: false, description: String::new() })
                .collect();
        }
        AuthType::ApiKey => {
            let key = input.key_name.trim();
            if key.is_empty() || key.len() > 100 || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(AppError::invalid("key_name", "Enter the key's parameter name (letters, digits, - _ .)."));
            }
            config.key_name = Some(key.to_string());
        }
        AuthType::Basic => {
            config.username_label = label(&input.username_label, "Username")?;
            config.password_label = label(&input.password_label, "Password")?;
        }
    }
    Ok(ValidatedConnector {
        name,
        link_name,
        description: input.description.trim().to_string(),
        auth_type,
        config,
        secret,
        discovery_url,
    })
}

fn label(raw: &str, default: &str) -> Result<String, AppError> {
    if raw.trim().is_empty() {
        return Ok(default.to_string());
    }
    Ok(DisplayName::parse("labels", raw)?.to_string())
}

/// The builder's fields back from a stored custom connector (the client secret left blank).
pub fn input_from_config(
    name: &str,
    link_name: &str,
    description: &str,
    auth_type: AuthType,
    config: &ConnectorConfig,
) -> CustomConnectorInput {
    let text = |o: &Option<String>| o.clone().unwrap_or_default();
    CustomConnectorInput {
        name: name.into(),
        link_name: link_name.into(),
        description: description.into(),
        auth_type: auth_type.as_str().into(),
        grant_type: config.grant_type.as_str().into(),
        client_id: text(&config.client_id),
        client_secret: String::new(),
        authorize_url: text(&config.authorize_url),
        token_url: text(&config.token_url),
        refresh_url: text(&config.refresh_url),
        revoke_url: text(&config.revoke_url),
        placement: if auth_type == AuthType::OAuth2 { config.client_auth } else { config.placement }.as_str().into(),
        scopes: config.scopes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" "),
        scope_delimiter: match config.scope_delimiter.as_str() {
            "," => "comma",
            "+" => "plus",
            _ => "space",
        }
        .into(),
        key_name: text(&config.key_name),
        username_label: config.username_label.clone(),
        password_label: config.password_label.clone(),
        api_base: text(&config.api_base),
        test_url: text(&config.test_url),
        logo_url: text(&config.logo_url),
        issuer: text(&config.issuer),
        discovery_url: String::new(),
    }
}

/// A custom connector that passed validation.
#[derive(Clone)]
pub struct ValidatedConnector {
    pub name: DisplayName,
    pub link_name: LinkName,
    pub description: String,
    pub auth_type: AuthType,
    pub config: ConnectorConfig,
    pub secret: Option<String>,
    /// Where to read the authorization server's metadata, when given.
    pub discovery_url: Option<String>,
}

impl std::fmt::Debug for ValidatedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedConnector")
            .field("name", &self.name)
            .field("link_name", &self.link_name)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "ssr")]
pub(super) mod ssr {
    use super::validate_custom;
    use crate::auth::SessionUser;
    use crate::connectors::ssr::{secret_aad, summary, Row};
    use crate::connectors::{ConnectorKind, ConnectorSummary, CustomConnectorInput};
    use crate::domain::AuthType;
    use crate::error::{AppError, AppResult};
    use crate::operations::ssr::{Level, Operation, OperationKind};
    use crate::ssr::db::is_unique_violation;
    use crate::ssr::ids::now_ms;
    use crate::ssr::AppState;

    pub use super::super::custom_edit::{custom_form, delete_custom, update_custom};

    pub async fn create_custom(
        state: &AppState,
        user: &SessionUser,
        input: CustomConnectorInput,
    ) -> AppResult<ConnectorSummary> {
        let mut v = validate_custom(&input)?;
        if v.auth_type == AuthType::OAuth2 {
            crate::connectors::discovery::complete_endpoints(state, &mut v).await?;
        }
        let config = serde_json::to_string(&v.config).map_err(|e| AppError::internal("connector config", e))?;
        let mut tx = state.db.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO connectors (workspace_id, kind, name, link_name, description, auth_type, config, created_by, created_at)
             VALUES ($1, 'custom', $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(user.workspace_id)
        .bind(v.name.as_str())
        .bind(v.link_name.as_str())
        .bind(&v.description)
        .bind(v.auth_type.as_str())
        .bind(&config)
        .bind(user.id)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                AppError::invalid("link_name", format!("A connector with the link name '{}' already exists.", v.link_name))
            } else {
                e.into()
            }
        })?;
        if let Some(secret) = &v.secret {
            sqlx::query("UPDATE connectors SET secret_ct = $1 WHERE id = $2")
                .bind(state.cipher.encrypt(&secret_aad(id), secret.as_bytes()))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Operation::by(user, Level::Info, OperationKind::ConnectorCreated)
            .detail(format!("custom connector {}", v.link_name))
            .record(&state.db)
            .await;
        summary(Row {
            id,
            kind: ConnectorKind::Custom.as_str().into(),
            name: v.name.to_string(),
            link_name: v.link_name.to_string(),
            description: v.description,
            auth_type: v.auth_type.as_str().into(),
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth_input() -> CustomConnectorInput {
        CustomConnectorInput {
            name: "Dropbox Like".into(),
            auth_type: "oauth2".into(),
            client_id: "dropbox-like".into(),
            client_secret: "s3cret".into(),
            authorize_url: "http://127.0.0.1:4010/auth".into(),
            token_url: "http://127.0.0.1:4010/token".into(),
            scopes: "files.read, crm.deals.read".into(),
            scope_delimiter: "comma".into(),
            api_base: "http://127.0.0.1:4010".into(),
            ..Default::default()
        }
    }

    #[test]
    fn oauth2_connector() {
        let v = validate_custom(&oauth_input()).unwrap();
        assert_eq!(v.link_name.as_str(), "dropbox_like");
        assert_eq!(v.config.scope_delimiter, ",");
        assert_eq!(v.config.scopes.len(), 2);
        assert_eq!(v.secret.as_deref(), Some("s3cret"));
        assert!(!format!("{v:?}").contains("s3cret"));
    }

    /// With an issuer or a metadata URL, the endpoints may be left for the server to discover.
    #[test]
    fn endpoints_may_come_from_metadata() {
        let bare = CustomConnectorInput { authorize_url: "".into(), token_url: "".into(), ..oauth_input() };
        assert_eq!(validate_custom(&bare).unwrap_err().field(), Some("authorize_url"));
        let with_issuer = CustomConnectorInput { issuer: "https://auth.example.com/".into(), ..bare.clone() };
        let v = validate_custom(&with_issuer).unwrap();
        assert_eq!(v.config.issuer.as_deref(), Some("https://auth.example.com"));
        assert_eq!(v.config.token_url, None);
        let with_metadata = CustomConnectorInput {
            discovery_url: "https://auth.example.com/.well-known/openid-configuration".into(),
            ..bare
        };
        assert!(validate_custom(&with_metadata).unwrap().discovery_url.is_some());
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases: Vec<(CustomConnectorInput, &str)> = vec![
            (CustomConnectorInput { name: "".into(), ..oauth_input() }, "name"),
            (CustomConnectorInput { name: "x".repeat(51), ..oauth_input() }, "name"),
            (CustomConnectorInput { name: "Bad <b>".into(), ..oauth_input() }, "name"),
            (CustomConnectorInput { token_url: "not a url".into(), ..oauth_input() }, "token_url"),
            (CustomConnectorInput { authorize_url: "".into(), ..oauth_input() }, "authorize_url"),
            (CustomConnectorInput { client_secret: "".into(), ..oauth_input() }, "client_secret"),
            (CustomConnectorInput { scope_delimiter: "semicolon".into(), ..oauth_input() }, "scope_delimiter"),
            (CustomConnectorInput { scopes: "a\"b".into(), ..oauth_input() }, "scopes"),
            (
                CustomConnectorInput { auth_type: "api_key".into(), key_name: "has space".into(), ..oauth_input() },
                "key_name",
            ),
            (CustomConnectorInput { api_base: "ftp://x".into(), ..oauth_input() }, "api_base"),
            (CustomConnectorInput { logo_url: "http://insecure.example/logo.png".into(), ..oauth_input() }, "logo_url"),
        ];
        for (input, field) in cases {
            assert_eq!(validate_custom(&input).unwrap_err().field(), Some(field), "{input:?}");
        }
    }

    /// R5.1: display names may use the punctuation the rule lists.
    #[test]
    fn display_name_rules() {
        for ok in ["Atlassian", "_x", "9to5", "A*B_C-D@E/F!G:H|I&J~K\\L+M"] {
            assert!(validate_custom(&CustomConnectorInput { name: ok.into(), ..oauth_input() }).is_ok(), "{ok}");
        }
    }
}
