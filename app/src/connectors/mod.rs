//! Connectors: the built-in catalog (data, in `app/connectors/catalog.json`, R5.3; loaded by
//! `catalog.rs`) and the custom connectors builders define (R5.4, R5.5; checked and stored by
//! `custom.rs`).

use crate::domain::AuthType;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

closed_set! {
    /// Where a connector comes from: the built-in catalog or a builder's definition.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ConnectorKind ("kind", "connector kind") {
        BuiltIn = "builtin", "Built-in";
        Custom = "custom", "Custom";
    }
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
    /// API key and basic auth: a path under the API base that answers only valid credentials
    /// (e.g. `/v1/me`); new credentials are checked with it. Optional.
    pub test_url: String,
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

/// A custom connector as its Edit form shows it: every field but the client secret, which is
/// write-only (`secret_set` says one is stored; leaving the field blank keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomConnectorForm {
    pub id: i64,
    pub input: CustomConnectorInput,
    pub secret_set: bool,
    /// Connections created from it (it can be deleted only when there are none).
    pub connections: Vec<String>,
}

/// A custom connector's fields for its Edit form (builders).
#[server(prefix = "/api", endpoint = "custom_connector")]
pub async fn custom_connector(connector_id: i64) -> Result<CustomConnectorForm, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("edit custom connectors").await?;
    ssr::custom_form(&state, &user, connector_id).await
}

/// Saves a custom connector's fields (builders). A blank client secret keeps the stored one. A
/// change that invalidates existing authorizations (auth type, grant, client ID, endpoints, API
/// base, key) is refused with what it would affect until `confirmed`; then those authorizations
/// show "Needs reauthorization".
#[server(prefix = "/api", endpoint = "update_custom_connector")]
pub async fn update_custom_connector(
    connector_id: i64,
    input: CustomConnectorInput,
    #[server(default)] confirmed: bool,
) -> Result<ConnectorSummary, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("edit custom connectors").await?;
    ssr::update_custom(&state, &user, connector_id, input, confirmed).await
}

/// Deletes a custom connector no connection uses (builders).
#[server(prefix = "/api", endpoint = "delete_custom_connector")]
pub async fn delete_custom_connector(connector_id: i64) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_builder("delete custom connectors").await?;
    ssr::delete_custom(&state, &user, connector_id).await
}

pub use custom::{input_from_config, validate_custom, ValidatedConnector};

mod custom;
#[cfg(feature = "ssr")]
mod custom_edit;

mod config;
pub use config::*;

#[cfg(feature = "ssr")]
pub mod discovery;

#[cfg(feature = "ssr")]
mod catalog;

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::*;
    use crate::error::AppResult;
    use crate::ssr::AppState;

    pub use super::catalog::sync_catalog;
    pub use super::custom::ssr::{create_custom, custom_form, delete_custom, update_custom};

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

    pub(crate) fn secret_aad(id: i64) -> Vec<u8> {
        format!("connectors:{id}").into_bytes()
    }

    /// A `connectors` row as lists read it.
    #[derive(sqlx::FromRow)]
    pub(super) struct Row {
        pub id: i64,
        pub kind: String,
        pub name: String,
        pub link_name: String,
        pub description: String,
        pub auth_type: String,
        pub config: String,
    }

    pub(super) fn summary(
        Row { id, kind, name, link_name, description, auth_type, config }: Row,
    ) -> AppResult<ConnectorSummary> {
        let config: ConnectorConfig =
            serde_json::from_str(&config).map_err(|e| AppError::internal("connector config", e))?;
        let (username_label, password_label) = (config.username_label(), config.password_label());
        Ok(ConnectorSummary {
            id,
            kind: ConnectorKind::parse(&kind)?,
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
        #[derive(sqlx::FromRow)]
        struct ConnectorRow {
            id: i64,
            kind: String,
            name: String,
            link_name: String,
            auth_type: String,
            config: String,
            secret_ct: Option<Vec<u8>>,
            data_center: String,
        }
        let row: Option<ConnectorRow> = sqlx::query_as(
            "SELECT k.id, k.kind, k.name, k.link_name, k.auth_type, k.config, k.secret_ct, w.data_center
             FROM connectors k JOIN workspaces w ON w.id = $2
             WHERE k.id = $1 AND (k.workspace_id IS NULL OR k.workspace_id = $2)",
        )
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&state.db.pool)
        .await?;
        let ConnectorRow { id, kind, name, link_name, auth_type, config, secret_ct, data_center } =
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
            kind: ConnectorKind::parse(&kind)?,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Configurations stored while these were strings ("" for the default) still load.
    #[test]
    fn stored_grant_types_and_placements_load() {
        let old: ConnectorConfig =
            serde_json::from_str(r#"{"grant_type":"","placement":"","client_auth":"query"}"#).unwrap();
        assert_eq!(
            (old.grant_type, old.placement, old.client_auth),
            (GrantType::AuthorizationCode, Placement::Header, Placement::Query)
        );
        let cc: ConnectorConfig = serde_json::from_str(r#"{"grant_type":"client_credentials"}"#).unwrap();
        assert_eq!(cc.grant_type, GrantType::ClientCredentials);
        let written = serde_json::to_value(&cc).unwrap();
        assert_eq!(
            (written["grant_type"].as_str(), written["placement"].as_str()),
            (Some("client_credentials"), Some("header"))
        );
        assert!(serde_json::from_str::<ConnectorConfig>(r#"{"placement":"body"}"#).is_err());
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
}
