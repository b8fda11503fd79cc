//! Reading a datasource's module page by page over its connection: every call goes through the
//! invoke-URL path (connection access, the guarded outbound client, token refresh), and nothing is
//! written until every page has been read (R12.1, R12.3).

use super::store::{apply, record_progress};
use crate::domain::Environment;
use crate::error::{AppError, AppResult};
use crate::invoke::InvokeRequest;
use crate::ssr::AppState;
use std::collections::HashMap;

/// A guard against services that never stop saying "more records".
const MAX_PAGES: i64 = 10_000;

/// Fetches every page, then applies the records in one transaction.
pub(super) async fn perform(state: &AppState, owner: &str, run_id: i64) -> AppResult<()> {
    let (datasource_id, user_id, environment): (i64, i64, String) =
        sqlx::query_as("SELECT datasource_id, user_id, environment FROM sync_runs WHERE id = $1")
            .bind(run_id)
            .fetch_one(&state.db.pool)
            .await?;
    let environment = Environment::parse(&environment)?;
    let user = crate::auth::ssr::user_by_id(state, user_id)
        .await?
        .ok_or_else(|| AppError::Conflict("The user who initiated this sync no longer exists.".into()))?;
    let used = crate::datasources::ssr::InUse::load(state, &user, datasource_id, environment).await?;
    used.ensure_usable(state).await?;
    let (ds, conn) = (&used.ds, &used.conn);
    let connector = crate::connectors::ssr::load(state, user.workspace_id, conn.connector_id).await?;
    let base = connector
        .config
        .api_base
        .clone()
        .ok_or_else(|| AppError::Upstream("This connector has no API address configured.".into()))?;
    let path = connector.config.records_path.clone().unwrap_or_else(|| "/{module}".into());
    let module_url = format!("{}{}", base.trim_end_matches('/'), path.replace("{module}", &ds.module));
    let mut base_url = url::Url::parse(&module_url)
        .map_err(|_| AppError::Upstream("This connector's records address is not a valid URL.".into()))?;
    {
        let values = ds.config_values.clone().unwrap_or_default();
        let mut q = base_url.query_pairs_mut();
        for f in &ds.config_fields {
            if let (Some(param), Some(v)) = (&f.param, values.get(&f.name)) {
                q.append_pair(param, v);
            }
        }
    }

    let mut records: HashMap<String, String> = HashMap::new();
    let mut api_calls = 0i64;
    let mut page = 1i64;
    loop {
        if page > MAX_PAGES {
            return Err(AppError::Upstream(format!(
                "The service kept reporting more records after {MAX_PAGES} pages; the sync stopped."
            )));
        }
        let mut url = base_url.clone();
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &state.settings.sync_page_size.to_string());
        api_calls += 1;
        let res = crate::invoke::ssr::invoke(
            state,
            &user,
            InvokeRequest {
                app: ds.app_link.clone(),
                connection: conn.link_name.clone(),
                method: "GET".into(),
                url: url.to_string(),
                environment: Some(environment),
                ..Default::default()
            },
        )
        .await;
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                record_progress(state, run_id, owner, records.len() as i64, api_calls).await;
                return Err(on_page(page, e));
            }
        };
        let more = parse_page(page, res.status, &res.body, &mut records)?;
        record_progress(state, run_id, owner, records.len() as i64, api_calls).await;
        if !more {
            break;
        }
        page += 1;
    }
    apply(state, owner, run_id, ds, records, api_calls).await
}

fn on_page(page: i64, e: AppError) -> AppError {
    match e {
        AppError::AuthorizationRequired { message, .. } => AppError::Upstream(message),
        AppError::Upstream(m) => AppError::Upstream(format!("Page {page}: {m}")),
        other => other,
    }
}

/// Reads one page (`{"data": [...], "info": {"more_records": bool}}`) into `records`.
/// Returns whether more pages follow.
pub fn parse_page(page: i64, status: u16, body: &str, records: &mut HashMap<String, String>) -> AppResult<bool> {
    let json: Result<serde_json::Value, _> = serde_json::from_str(body);
    if status != 200 {
        let why = json
            .ok()
            .and_then(|j| {
                j.get("message")
                    .or_else(|| j.get("error"))
                    .and_then(|m| m.as_str())
                    .map(|m| m.chars().take(200).collect::<String>())
            })
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return Err(AppError::Upstream(format!("The service answered HTTP {status} on page {page}{why}.")));
    }
    let json =
        json.map_err(|_| AppError::Upstream(format!("The service's answer on page {page} is not valid JSON.")))?;
    let data = json
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| AppError::Upstream(format!("The service's answer on page {page} has no \"data\" list.")))?;
    for item in data {
        let id = match item.get("id") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                return Err(AppError::Upstream(format!("A record on page {page} has no id.")));
            }
        };
        records.insert(id, item.to_string());
    }
    Ok(json.pointer("/info/more_records").and_then(|m| m.as_bool()).unwrap_or(false) && !data.is_empty())
}
