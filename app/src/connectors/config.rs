//! A connector's configuration: how it authorizes (grant type, where secrets go), its
//! endpoints and scopes, and where its connections may be used.

use super::{ConnectorKind, ScopeDef};
use crate::error::AppError;
use serde::{Deserialize, Serialize};

closed_set! {
    /// How an OAuth2 connector obtains its tokens. Configurations stored before this was typed
    /// may hold "" for the default.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum GrantType ("grant_type", "grant type") {
        #[default]
        #[serde(alias = "")]
        AuthorizationCode = "authorization_code", "Authorization Code";
        ClientCredentials = "client_credentials", "Client Credentials";
    }
}

closed_set! {
    /// Where a secret goes on a request: the API key, or the OAuth2 client credentials
    /// (`header`: client_secret_basic, `query`: client_secret_post).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Placement ("placement", "placement") {
        #[default]
        #[serde(alias = "")]
        Header = "header", "Header";
        Query = "query", "Query string";
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
    /// How the client authenticates at the token endpoint.
    pub client_auth: Placement,
    pub grant_type: GrantType,
    pub scope_delimiter: String,
    pub scopes: Vec<ScopeDef>,
    pub extra_authorize_params: std::collections::BTreeMap<String, String>,
    pub key_name: Option<String>,
    pub key_prefix: Option<String>,
    /// Where the API key goes.
    pub placement: Placement,
    pub username_label: String,
    pub password_label: String,
    pub modules: Vec<String>,
    /// Where a module's records are listed, relative to `api_base` (`{module}` is replaced).
    pub records_path: Option<String>,
    /// A request (a path under `api_base`) that succeeds only with valid credentials: Authorize
    /// and Switch run it with new API keys and basic credentials and refuse those the service
    /// rejects. Without one, such credentials are saved unverified.
    pub test_url: Option<String>,
    pub logo_url: Option<String>,
    /// A payment gateway (used by payment workflows); the panel lists these apart (R2.6).
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
/// invoke-URL tasks (R5.5).
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
