//! Connectors: the built-in catalog (data, in `app/connectors/catalog.json`) and the custom
//! connectors builders define (seed 002: "Create custom connector", "Difference in authorization
//! of custom connectors").

use crate::domain::{AuthType, DisplayName, LinkName, Scope, ServiceUrl};
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectorKind {
    BuiltIn,
    Custom,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ScopeDef {
    pub name: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: String,
}

/// A connector as the browser sees it: enough to pick it, choose scopes and ask for the right
/// credentials — never a client secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorSummary {
    pub id: i64,
    pub kind: ConnectorKind,
    pub name: String,
    pub link_name: String,
    pub description: String,
    pub auth_type: AuthType,
    pub scopes: Vec<ScopeDef>,
    /// API key connectors: the name of the key (e.g. `appid`).
    pub key_name: Option<String>,
    /// Basic-auth connectors: how to label the two fields.
    pub username_label: String,
    pub password_label: String,
    pub modules: Vec<String>,
    pub logo_url: Option<String>,
}

/// What the custom connector builder submits (General and Security sections).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CustomConnectorInput {
    pub name: String,
    pub link_name: String,
    pub description: String,
    /// `oauth2`, `api_key` or `basic`.
    pub auth_type: String,
    /// OAuth2: `authorization_code` or `client_credentials`.
    pub grant_type: String,
    pub client_id: String,
    pub client_secret: String,
    pub authorize_url: String,
    pub token_url: String,
    pub refresh_url: String,
    pub revoke_url: String,
    /// OAuth2 client authentication and API key placement: `header` or `query`.
    pub placement: String,
    pub scopes: String,
    /// `comma`, `space` or `plus`.
    pub scope_delimiter: String,
    pub key_name: String,
    pub username_label: String,
    pub password_label: String,
    /// The service's API origin; credentials are only ever sent there.
    pub api_base: String,
    /// An optional logo (an https image URL) shown on the connector's card.
    pub logo_url: String,
    /// OAuth2: the authorization server's issuer identifier. When known, an authorization
    /// response must come from it (RFC 9207 `iss`).
    pub issuer: String,
    /// OAuth2: the server's metadata document (RFC 8414 / OpenID discovery); it fills the
    /// endpoints left empty and tells whether responses carry `iss`.
    pub discovery_url: String,
}

#[server(prefix = "/api", endpoint = "list_connectors")]
pub async fn list_connectors() -> Result<Vec<ConnectorSummary>, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("create connections").await?;
    ssr::list(&state, user.workspace_id).await
}

#[server(prefix = "/api", endpoint = "create_custom_connector")]
pub async fn create_custom_connector(input: CustomConnectorInput) -> Result<ConnectorSummary, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("create custom connectors").await?;
    ssr::create_custom(&state, &user, input).await
}

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
        "" | "header" => "header",
        "query" => "query",
        other => {
            return Err(AppError::invalid(
                "placement",
                format!("Send parameters as header or query string, not '{other}'."),
            ))
        }
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
    let mut config = ConnectorConfig {
        logo_url,
        api_base: Some(api_base.as_str().trim_end_matches('/').to_string()),
        client_auth: placement.to_string(),
        placement: placement.to_string(),
        ..Default::default()
    };
    let mut secret = None;
    let mut discovery_url = None;
    match auth_type {
        AuthType::OAuth2 => {
            config.grant_type = match input.grant_type.as_str() {
                "" | "authorization_code" => "authorization_code".into(),
                "client_credentials" => "client_credentials".into(),
                other => return Err(AppError::invalid("grant_type", format!("Unknown grant type '{other}'."))),
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
            if config.grant_type == "authorization_code" && config.authorize_url.is_none() && !discovers {
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

/// The stored configuration of a connector (the `connectors.config` column). Secrets are not
/// part of it: a client secret is kept encrypted in `connectors.secret_ct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ConnectorConfig {
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub refresh_url: Option<String>,
    pub revoke_url: Option<String>,
    /// The provider's issuer, checked against the `iss` response parameter (RFC 9207).
    pub issuer: Option<String>,
    pub iss_parameter_supported: bool,
    pub api_base: Option<String>,
    /// An endpoint answering who the authorized account is (used to name it).
    pub account_url: Option<String>,
    pub client_id: Option<String>,
    /// `header` (client_secret_basic) or `query` (client_secret_post).
    pub client_auth: String,
    pub grant_type: String,
    pub scope_delimiter: String,
    pub scopes: Vec<ScopeDef>,
    pub extra_authorize_params: std::collections::BTreeMap<String, String>,
    pub key_name: Option<String>,
    pub key_prefix: Option<String>,
    /// API key: `header` or `query`.
    pub placement: String,
    pub username_label: String,
    pub password_label: String,
    pub modules: Vec<String>,
    /// Where a module's records are listed, relative to `api_base` (`{module}` is replaced).
    pub records_path: Option<String>,
    pub logo_url: Option<String>,
    /// A payment gateway (used by payment workflows); the panel lists these apart (seed 000 §4).
    pub payment_gateway: bool,
}

impl ConnectorConfig {
    /// How to label the username field at authorization ("Username" unless configured).
    pub fn username_label(&self) -> String {
        if self.username_label.is_empty() {
            "Username".into()
        } else {
            self.username_label.clone()
        }
    }

    /// How to label the password field at authorization ("Password" unless configured).
    pub fn password_label(&self) -> String {
        if self.password_label.is_empty() {
            "Password".into()
        } else {
            self.password_label.clone()
        }
    }

    /// Resolves the data-center placeholders of services whose servers differ by region
    /// (Zoho: accounts.zoho.com / .eu / .in / .com.au).
    pub fn for_data_center(mut self, dc: &str) -> Self {
        let (accounts, api) = match dc {
            "eu" => ("accounts.zoho.eu", "www.zohoapis.eu"),
            "in" => ("accounts.zoho.in", "www.zohoapis.in"),
            "au" => ("accounts.zoho.com.au", "www.zohoapis.com.au"),
            _ => ("accounts.zoho.com", "www.zohoapis.com"),
        };
        let fix = |u: &mut Option<String>| {
            if let Some(s) = u {
                *s = s.replace("{zoho_accounts}", accounts).replace("{zoho_api}", api);
            }
        };
        for u in [
            &mut self.authorize_url,
            &mut self.token_url,
            &mut self.refresh_url,
            &mut self.revoke_url,
            &mut self.issuer,
            &mut self.api_base,
            &mut self.account_url,
        ] {
            fix(u);
        }
        self
    }
}

/// Where a connection is used. Connections made from custom connectors are usable only from
/// invoke-URL tasks (seed 002).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    InvokeUrl,
    Datasource,
    PaymentWorkflow,
}

pub fn ensure_usable(kind: ConnectorKind, usage: Usage) -> Result<(), AppError> {
    match (kind, usage) {
        (ConnectorKind::Custom, Usage::Datasource | Usage::PaymentWorkflow) => Err(AppError::invalid(
            "connection",
            "Connections made from custom connectors can be used only in invoke URL tasks.",
        )),
        _ => Ok(()),
    }
}

#[cfg(feature = "ssr")]
pub mod discovery;

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::auth::SessionUser;
    use crate::error::AppResult;
    use crate::ssr::db::{is_unique_violation, Db};
    use crate::ssr::ids::now_ms;
    use crate::ssr::AppState;

    /// A connector with its (decrypted) client secret, for server-side use only.
    #[derive(Clone)]
    pub struct Connector {
        pub id: i64,
        pub kind: ConnectorKind,
        pub name: String,
        pub link_name: String,
        pub auth_type: AuthType,
        pub config: ConnectorConfig,
        pub client_secret: Option<String>,
    }

    impl std::fmt::Debug for Connector {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Connector")
                .field("id", &self.id)
                .field("link_name", &self.link_name)
                .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
                .finish_non_exhaustive()
        }
    }

    #[derive(Deserialize)]
    struct Catalog {
        connectors: Vec<CatalogEntry>,
    }

    #[derive(Deserialize)]
    struct CatalogEntry {
        name: String,
        link_name: String,
        auth_type: String,
        #[serde(default)]
        description: String,
        config: serde_json::Value,
    }

    const CATALOG: &str = include_str!("../../connectors/catalog.json");

    pub(crate) fn secret_aad(id: i64) -> Vec<u8> {
        format!("connectors:{id}").into_bytes()
    }

    /// Writes the built-in catalog into the database (insert or update by link name). Client
    /// credentials of real services come from `CONNECTOR_<LINK_NAME>_CLIENT_ID/_SECRET`.
    pub async fn sync_catalog(db: &Db, cipher: &crate::ssr::crypto::Cipher, sandbox_url: &str) -> AppResult<usize> {
        let catalog: Catalog = serde_json::from_str(CATALOG).map_err(|e| AppError::internal("connector catalog", e))?;
        let sandbox = sandbox_url.trim_end_matches('/');
        for entry in &catalog.connectors {
            let text = entry.config.to_string().replace("{sandbox}", sandbox);
            let mut config: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| AppError::internal("connector catalog", e))?;
            let env_key = format!("CONNECTOR_{}", entry.link_name.to_uppercase());
            let mut secret = config.get("client_secret").and_then(|s| s.as_str()).map(str::to_owned);
            if let Some(obj) = config.as_object_mut() {
                obj.remove("client_secret");
                if let Ok(id) = std::env::var(format!("{env_key}_CLIENT_ID")) {
                    obj.insert("client_id".into(), id.into());
                }
            }
            if let Ok(s) = std::env::var(format!("{env_key}_CLIENT_SECRET")) {
                secret = Some(s);
            }
            let config: ConnectorConfig =
                serde_json::from_value(config).map_err(|e| AppError::internal("connector catalog", e))?;
            let config_text = serde_json::to_string(&config).map_err(|e| AppError::internal("connector catalog", e))?;
            let mut tx = db.pool.begin().await?;
            // Write first, so SQLite takes the write lock before reading: a transaction that
            // reads and then writes fails at once (SQLITE_BUSY_SNAPSHOT) when another server
            // process on the same file wrote in between, e.g. two replicas starting together.
            sqlx::query("DELETE FROM connectors WHERE 1 = 0").execute(&mut *tx).await?;
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM connectors WHERE workspace_id IS NULL AND link_name = $1")
                    .bind(&entry.link_name)
                    .fetch_optional(&mut *tx)
                    .await?;
            let id = match existing {
                Some(id) => {
                    sqlx::query("UPDATE connectors SET name = $1, description = $2, auth_type = $3, config = $4 WHERE id = $5")
                        .bind(&entry.name)
                        .bind(&entry.description)
                        .bind(&entry.auth_type)
                        .bind(&config_text)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    id
                }
                None => {
                    sqlx::query_scalar(
                        "INSERT INTO connectors (workspace_id, kind, name, link_name, description, auth_type, config, created_at)
                         VALUES (NULL, 'builtin', $1, $2, $3, $4, $5, $6) RETURNING id",
                    )
                    .bind(&entry.name)
                    .bind(&entry.link_name)
                    .bind(&entry.description)
                    .bind(&entry.auth_type)
                    .bind(&config_text)
                    .bind(now_ms())
                    .fetch_one(&mut *tx)
                    .await?
                }
            };
            let secret_ct = secret.map(|s| cipher.encrypt(&secret_aad(id), s.as_bytes()));
            sqlx::query("UPDATE connectors SET secret_ct = $1 WHERE id = $2")
                .bind(secret_ct)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(catalog.connectors.len())
    }

    type Row = (i64, String, String, String, String, String, String);

    fn summary((id, kind, name, link_name, description, auth_type, config): Row) -> AppResult<ConnectorSummary> {
        let config: ConnectorConfig =
            serde_json::from_str(&config).map_err(|e| AppError::internal("connector config", e))?;
        let (username_label, password_label) = (config.username_label(), config.password_label());
        Ok(ConnectorSummary {
            id,
            kind: if kind == "custom" { ConnectorKind::Custom } else { ConnectorKind::BuiltIn },
            name,
            link_name,
            description,
            auth_type: AuthType::parse(&auth_type)?,
            scopes: config.scopes,
            key_name: config.key_name,
            username_label,
            password_label,
            modules: config.modules,
            logo_url: config.logo_url,
        })
    }

    /// Built-in connectors and the workspace's custom connectors, by name.
    pub async fn list(state: &AppState, workspace_id: i64) -> AppResult<Vec<ConnectorSummary>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, kind, name, link_name, description, auth_type, config FROM connectors
             WHERE workspace_id IS NULL OR workspace_id = $1 ORDER BY kind, name",
        )
        .bind(workspace_id)
        .fetch_all(&state.db.pool)
        .await?;
        rows.into_iter().map(summary).collect()
    }

    /// Loads a connector visible to `workspace_id`, decrypting its client secret.
    pub async fn load(state: &AppState, workspace_id: i64, id: i64) -> AppResult<Connector> {
        let row: Option<(i64, String, String, String, String, String, Option<Vec<u8>>, String)> = sqlx::query_as(
            "SELECT k.id, k.kind, k.name, k.link_name, k.auth_type, k.config, k.secret_ct, w.data_center
             FROM connectors k JOIN workspaces w ON w.id = $2
             WHERE k.id = $1 AND (k.workspace_id IS NULL OR k.workspace_id = $2)",
        )
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&state.db.pool)
        .await?;
        let (id, kind, name, link_name, auth_type, config, secret_ct, data_center) =
            row.ok_or_else(|| AppError::not_found("There is no such connector."))?;
        let client_secret = match secret_ct {
            Some(ct) => Some(
                String::from_utf8(
                    state
                        .cipher
                        .decrypt(&secret_aad(id), &ct)
                        .map_err(|e| AppError::internal("connector secret", e))?,
                )
                .map_err(|e| AppError::internal("connector secret", e))?,
            ),
            None => None,
        };
        Ok(Connector {
            id,
            kind: if kind == "custom" { ConnectorKind::Custom } else { ConnectorKind::BuiltIn },
            name,
            link_name,
            auth_type: AuthType::parse(&auth_type)?,
            config: serde_json::from_str::<ConnectorConfig>(&config)
                .map_err(|e| AppError::internal("connector config", e))?
                .for_data_center(&data_center),
            client_secret,
        })
    }

    pub async fn find_by_link(state: &AppState, workspace_id: i64, link_name: &str) -> AppResult<i64> {
        sqlx::query_scalar(
            "SELECT id FROM connectors WHERE link_name = $1 AND (workspace_id IS NULL OR workspace_id = $2)
             ORDER BY workspace_id NULLS FIRST LIMIT 1",
        )
        .bind(link_name)
        .bind(workspace_id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| AppError::not_found(format!("There is no connector '{link_name}'.")))
    }

    pub async fn create_custom(
        state: &AppState,
        user: &SessionUser,
        input: CustomConnectorInput,
    ) -> AppResult<ConnectorSummary> {
        let mut v = validate_custom(&input)?;
        if v.auth_type == AuthType::OAuth2 {
            super::discovery::complete_endpoints(state, &mut v).await?;
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
        {
            use crate::operations::ssr::{record, Level, Operation, OperationKind};
            record(
                &state.db,
                Operation {
                    workspace_id: Some(user.workspace_id),
                    actor_user_id: Some(user.id),
                    detail: &format!("custom connector {}", v.link_name),
                    ..Operation::new(Level::Info, OperationKind::ConnectorCreated)
                },
            )
            .await;
        }
        summary((
            id,
            "custom".into(),
            v.name.to_string(),
            v.link_name.to_string(),
            v.description,
            v.auth_type.as_str().into(),
            config,
        ))
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

    #[test]
    fn zoho_endpoints_follow_the_data_center() {
        let cfg = ConnectorConfig {
            authorize_url: Some("https://{zoho_accounts}/oauth/v2/auth".into()),
            api_base: Some("https://{zoho_api}".into()),
            ..Default::default()
        };
        for (dc, auth, api) in [
            ("us", "https://accounts.zoho.com/oauth/v2/auth", "https://www.zohoapis.com"),
            ("eu", "https://accounts.zoho.eu/oauth/v2/auth", "https://www.zohoapis.eu"),
            ("in", "https://accounts.zoho.in/oauth/v2/auth", "https://www.zohoapis.in"),
            ("au", "https://accounts.zoho.com.au/oauth/v2/auth", "https://www.zohoapis.com.au"),
        ] {
            let c = cfg.clone().for_data_center(dc);
            assert_eq!((c.authorize_url.as_deref(), c.api_base.as_deref()), (Some(auth), Some(api)), "{dc}");
        }
    }

    #[test]
    fn custom_connections_only_in_invoke_url() {
        assert!(ensure_usable(ConnectorKind::Custom, Usage::InvokeUrl).is_ok());
        assert!(ensure_usable(ConnectorKind::Custom, Usage::Datasource).is_err());
        assert!(ensure_usable(ConnectorKind::BuiltIn, Usage::Datasource).is_ok());
    }

    #[test]
    fn name_rules_of_the_seed() {
        for ok in ["Atlassian", "_x", "9to5", "A*B_C-D@E/F!G:H|I&J~K\\L+M"] {
            assert!(validate_custom(&CustomConnectorInput { name: ok.into(), ..oauth_input() }).is_ok(), "{ok}");
        }
    }
}
