//! Associated datasources (R11.1): a datasource belongs to an application, reads one
//! module of a connection's service, may need configuration values, and feeds the integration
//! fields of forms. Builders see them under "Associated Datasources" in the connections panel,
//! configure them there and initiate the integration-fields sync ([`crate::sync`]).

use crate::domain::Environment;
use crate::error::AppError;
use crate::sync::SyncView;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The kind of value a configuration field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    #[default]
    Text,
    Number,
    Select,
}

/// One value a datasource's module needs (e.g. the pipeline stage to read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigField {
    pub name: String,
    pub label: String,
    #[serde(default)]
    pub kind: FieldKind,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
    /// The query parameter the value is sent as when the module is read (none: not sent).
    #[serde(default)]
    pub param: Option<String>,
}

const MAX_TEXT_VALUE: usize = 200;

/// Checks submitted configuration values against the fields: every required field present,
/// numbers are numbers, selections are among the options, no unknown names. Empty optional
/// values are dropped. Shared by the browser (before sending) and the server (authoritative).
pub fn validate_config(
    fields: &[ConfigField],
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, AppError> {
    if let Some(unknown) = values.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
        return Err(AppError::invalid(unknown.clone(), format!("This datasource has no setting '{unknown}'.")));
    }
    let mut clean = BTreeMap::new();
    for f in fields {
        let value = values.get(&f.name).map(|v| v.trim()).unwrap_or_default();
        if value.is_empty() {
            if f.required {
                return Err(AppError::invalid(f.name.clone(), format!("{} is required.", f.label)));
            }
            continue;
        }
        if value.chars().count() > MAX_TEXT_VALUE || value.chars().any(char::is_control) {
            return Err(AppError::invalid(
                f.name.clone(),
                format!("{} must be at most {MAX_TEXT_VALUE} characters on one line.", f.label),
            ));
        }
        match f.kind {
            FieldKind::Number => {
                if !value.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err(AppError::invalid(f.name.clone(), format!("{} must be a number.", f.label)));
                }
            }
            FieldKind::Select => {
                if !f.options.iter().any(|o| o == value) {
                    return Err(AppError::invalid(
                        f.name.clone(),
                        format!("{} must be one of: {}.", f.label, f.options.join(", ")),
                    ));
                }
            }
            FieldKind::Text => {}
        }
        clean.insert(f.name.clone(), value.to_string());
    }
    Ok(clean)
}

/// A datasource as the "Associated Datasources" section shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasourceView {
    pub id: i64,
    pub name: String,
    pub module: String,
    pub config_fields: Vec<ConfigField>,
    pub config_values: BTreeMap<String, String>,
    pub configured: bool,
    /// Why Configure / Reconfigure is not offered (None: it is).
    pub configure_blocked: Option<String>,
    /// The integration fields fed by this datasource.
    pub integration_fields: Vec<IntegrationField>,
    /// Why Initiate is not offered (None: it is).
    pub sync_blocked: Option<String>,
    pub sync: SyncView,
}

impl DatasourceView {
    pub fn needs_configuration(&self) -> bool {
        !self.config_fields.is_empty()
    }
}

/// A form field whose values come from a datasource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationField {
    pub form: String,
    pub form_link: String,
    pub field: String,
}

/// What a builder submits to add a datasource to an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NewDatasource {
    pub app: String,
    pub connection: String,
    pub name: String,
    pub module: String,
    #[serde(default)]
    pub config_fields: Vec<ConfigField>,
}

/// The datasources of `app` that read over `connection_id`, for builders (others get none:
/// datasources are managed by super admins, admins and developers only).
#[server(prefix = "/api", endpoint = "associated_datasources")]
pub async fn associated_datasources(
    app: String,
    connection_id: i64,
    environment: Environment,
) -> Result<Vec<DatasourceView>, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::associated(&state, &user, &app, connection_id, environment).await
}

/// Saves a datasource's configuration (Configure / Reconfigure).
#[server(prefix = "/api", endpoint = "configure_datasource")]
pub async fn configure_datasource(
    datasource_id: i64,
    environment: Environment,
    #[server(default)] values: BTreeMap<String, String>,
) -> Result<(), AppError> {
    let (state, user) = crate::auth::ssr::require_builder("configure datasources").await?;
    ssr::configure(&state, &user, datasource_id, environment, values).await
}

#[server(prefix = "/api", endpoint = "create_datasource")]
pub async fn create_datasource(input: NewDatasource) -> Result<i64, AppError> {
    let (state, user) = crate::auth::ssr::require_builder("add datasources").await?;
    ssr::create(&state, &user, input).await
}

/// One value of a form record; integration fields show the service's value as of the last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCell {
    pub field: String,
    pub value: String,
    pub integration: bool,
    /// The referenced record was not found in the service at the last sync.
    pub missing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormRecordList {
    pub form: String,
    pub rows: Vec<Vec<RecordCell>>,
}

/// A form's records, for anyone who may open the form.
#[server(prefix = "/api", endpoint = "form_records")]
pub async fn form_records(app: String, form: String) -> Result<FormRecordList, AppError> {
    let (state, user) = crate::auth::ssr::require_user().await?;
    ssr::records(&state, &user, &app, &form).await
}

#[cfg(feature = "ssr")]
mod store;

/// The server side (in `store.rs`); other modules and the tests use these paths.
#[cfg(feature = "ssr")]
pub mod ssr {
    pub use super::store::{
        associated, blocked, configure, create, load, records, sync_blocked, view, Datasource, InUse,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<ConfigField> {
        vec![
            ConfigField {
                name: "stage".into(),
                label: "Pipeline stage".into(),
                kind: FieldKind::Select,
                options: vec!["All".into(), "Proposal".into()],
                required: true,
                param: Some("stage".into()),
            },
            ConfigField {
                name: "min".into(),
                label: "Minimum amount".into(),
                kind: FieldKind::Number,
                options: vec![],
                required: false,
                param: None,
            },
        ]
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn configuration_values_are_checked_by_shape() {
        let f = fields();
        assert_eq!(validate_config(&f, &values(&[("stage", " Proposal ")])).unwrap(), values(&[("stage", "Proposal")]));
        assert!(validate_config(&f, &values(&[("stage", "Proposal"), ("min", "12.5")])).is_ok());
        for (bad, field) in [
            (values(&[]), "stage"),
            (values(&[("stage", "Won")]), "stage"),
            (values(&[("stage", "All"), ("min", "ten")]), "min"),
            (values(&[("stage", "All"), ("min", "NaN")]), "min"),
            (values(&[("stage", "All"), ("colour", "red")]), "colour"),
            (values(&[("stage", "All"), ("min", &"9".repeat(201))]), "min"),
        ] {
            let err = validate_config(&f, &bad).unwrap_err();
            assert_eq!(err.field(), Some(field), "{bad:?} → {err:?}");
        }
    }
}
