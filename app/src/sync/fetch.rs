//! Reading a datasource's module page by page over its connection: every call goes through the
//! invoke-URL path (connection access, the guarded outbound client, token refresh). Two parts run
//! side by side: the reader asks for the next page as soon as a page says more follow (before its
//! records are read), while the writer stores the pages read so far under the run (not yet the
//! datasource's records: the run's last transaction makes them so, R12.1, R12.3).

use super::stage::{stage, Staged};
use super::store::{apply, record_progress};
use crate::datasources::ssr::InUse;
use crate::domain::Environment;
use crate::error::{AppError, AppResult};
use crate::invoke::{InvokeRequest, InvokeResponse};
use crate::ssr::AppState;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

/// A guard against services that never stop saying "more records".
const MAX_PAGES: i64 = 10_000;
/// Pages read and not yet written: the reader runs at most this far ahead of the writer.
const PAGES_AHEAD: usize = 8;
/// How often the run's progress (records read, API calls) is written while pages are read.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Reads every page while writing the pages read so far, then makes them the datasource's
/// records in one transaction.
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
    let used = InUse::load(state, &user, datasource_id, environment).await?;
    used.ensure_usable(state).await?;
    let module_url = module_url(state, &used).await?;

    let started = Instant::now();
    let (pages, written) = mpsc::channel::<Staged>(PAGES_AHEAD);
    let reader = Reader { state, owner, run_id, used: &used };
    let writer = async {
        let (mut written, mut busy, mut writes) = (written, Duration::ZERO, 0u32);
        while let Some(mut batch) = written.recv().await {
            // Whatever the reader got meanwhile goes into the same write.
            while let Ok(more) = written.try_recv() {
                batch.append(more);
            }
            let at = Instant::now();
            stage(state, datasource_id, run_id, batch).await?;
            busy += at.elapsed();
            writes += 1;
        }
        Ok::<_, AppError>((busy, writes))
    };
    // Both run to their end, even when one fails: a writer dropped mid-`COPY` leaves its pooled
    // PostgreSQL connection with answers nobody read (the next `COPY` on it then fails with a
    // protocol error), and a write still in flight could land after the failed run's rows are
    // deleted.
    let (read, written) = tokio::join!(reader.read(module_url, pages), writer);
    let ((records, api_calls, waited), (busy, writes)) = (read?, written?);
    let read = started.elapsed();
    apply(state, owner, run_id, &used.ds, records, api_calls).await?;
    // Where a run's time went: waiting for the service, or writing (the two overlap).
    tracing::info!(
        run_id,
        records,
        api_calls,
        read_ms = read.as_millis() as u64,
        waiting_for_service_ms = waited.as_millis() as u64,
        writing_ms = busy.as_millis() as u64,
        writes,
        completing_ms = (started.elapsed() - read).as_millis() as u64,
        "sync run done"
    );
    Ok(())
}

/// The module's address with the datasource's configured filters as query parameters.
async fn module_url(state: &AppState, used: &InUse<'_>) -> AppResult<url::Url> {
    let (ds, conn) = (&used.ds, &used.conn);
    let connector = crate::connectors::ssr::load(state, used.user.workspace_id, conn.connector_id).await?;
    let base = connector
        .config
        .api_base
        .clone()
        .ok_or_else(|| AppError::Upstream("This connector has no API address configured.".into()))?;
    let path = connector.config.records_path.clone().unwrap_or_else(|| "/{module}".into());
    let module_url = format!("{}{}", base.trim_end_matches('/'), path.replace("{module}", &ds.module));
    let mut url = url::Url::parse(&module_url)
        .map_err(|_| AppError::Upstream("This connector's records address is not a valid URL.".into()))?;
    {
        let values = ds.config_values.clone().unwrap_or_default();
        let mut q = url.query_pairs_mut();
        for f in &ds.config_fields {
            if let (Some(param), Some(v)) = (&f.param, values.get(&f.name)) {
                q.append_pair(param, v);
            }
        }
    }
    Ok(url)
}

struct Reader<'a> {
    state: &'a AppState,
    owner: &'a str,
    run_id: i64,
    used: &'a InUse<'a>,
}

impl Reader<'_> {
    /// Asks for `page` in a task of its own, so the service answers it while the page before is
    /// read and written (dropping the handle stops it).
    fn request(&self, module_url: &url::Url, page: i64) -> AbortOnDropHandle<AppResult<InvokeResponse>> {
        let mut url = module_url.clone();
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &self.state.settings.sync_page_size.to_string());
        let request = InvokeRequest {
            app: self.used.ds.app_link.clone(),
            connection: self.used.conn.link_name.clone(),
            method: "GET".into(),
            url: url.to_string(),
            environment: Some(self.used.environment),
            ..Default::default()
        };
        let (state, user) = (self.state.clone(), self.used.user.clone());
        AbortOnDropHandle::new(tokio::spawn(
            async move { crate::invoke::ssr::sync_page(&state, &user, request).await }.in_current_span(),
        ))
    }

    /// Asks for page after page, handing each to the writer; the number of distinct records
    /// and of API calls once the service says there are no more, and the time spent waiting for
    /// the service's answers.
    async fn read(self, module_url: url::Url, pages: mpsc::Sender<Staged>) -> AppResult<(i64, i64, Duration)> {
        let state = self.state;
        let mut ids: HashSet<String> = HashSet::new();
        let mut api_calls = 1i64;
        let mut progress_at = Instant::now();
        let mut next = Some(self.request(&module_url, 1));
        let mut page = 0;
        let mut waited = Duration::ZERO;
        while let Some(pending) = next.take() {
            page += 1;
            let at = Instant::now();
            let answer = pending.await.map_err(|e| AppError::internal("sync page request", e))?;
            waited += at.elapsed();
            let res = match answer {
                Ok(r) => r,
                Err(e) => {
                    record_progress(state, self.run_id, self.owner, ids.len() as i64, api_calls).await;
                    return Err(on_page(page, e));
                }
            };
            let envelope = envelope(page, res.status, &res.body)?;
            if envelope.more() {
                if page >= MAX_PAGES {
                    return Err(AppError::Upstream(format!(
                        "The service kept reporting more records after {MAX_PAGES} pages; the sync stopped."
                    )));
                }
                api_calls += 1;
                next = Some(self.request(&module_url, page + 1));
            }
            let mut staged = Staged::default();
            for (id, data) in envelope.records(page)? {
                // A record an earlier page had (the service's paging moved) replaces that one.
                if ids.insert(id.clone()) {
                    staged.new.push((id, data));
                } else {
                    staged.again.push((id, data));
                }
            }
            if pages.send(staged).await.is_err() {
                // The writer stopped: its error is what the run failed of.
                break;
            }
            if next.is_some() && progress_at.elapsed() >= PROGRESS_EVERY {
                record_progress(state, self.run_id, self.owner, ids.len() as i64, api_calls).await;
                progress_at = Instant::now();
            }
        }
        Ok((ids.len() as i64, api_calls, waited))
    }
}

fn on_page(page: i64, e: AppError) -> AppError {
    match e {
        AppError::AuthorizationRequired { message, .. } => AppError::Upstream(message),
        AppError::Upstream(m) => AppError::Upstream(format!("Page {page}: {m}")),
        other => other,
    }
}

/// One page of a module: its records, each id once (the last one wins), as `(id, the record's
/// JSON as the service sent it)`, and whether more pages follow.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    pub records: Vec<(String, String)>,
    pub more: bool,
}

/// `{"data": [...], "info": {"more_records": bool}}`, the records kept as they were sent.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Vec<&'a serde_json::value::RawValue>,
    info: Option<serde_json::Value>,
}

/// A record's id; its other fields are skipped, not parsed into values.
#[derive(serde::Deserialize)]
struct Keyed {
    id: Option<serde_json::Value>,
}

/// Reads one page (`{"data": [...], "info": {"more_records": bool}}`).
pub fn parse_page(page: i64, status: u16, body: &str) -> AppResult<Page> {
    let envelope = envelope(page, status, body)?;
    Ok(Page { more: envelope.more(), records: envelope.records(page)? })
}

/// A page's outline: the service's refusal, or the list of records (not yet read) and whether
/// more follow. Enough to ask for the next page.
fn envelope(page: i64, status: u16, body: &str) -> AppResult<Envelope<'_>> {
    if status != 200 {
        let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let why = json
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
    serde_json::from_str(body).map_err(|_| {
        if serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok() {
            AppError::Upstream(format!("The service's answer on page {page} has no \"data\" list."))
        } else {
            AppError::Upstream(format!("The service's answer on page {page} is not valid JSON."))
        }
    })
}

impl Envelope<'_> {
    /// Whether another page follows: the service says so, and this one was not empty (an empty
    /// page that says more would loop for ever).
    fn more(&self) -> bool {
        let said = self.info.as_ref().and_then(|i| i.get("more_records")).and_then(|m| m.as_bool());
        said.unwrap_or(false) && !self.data.is_empty()
    }

    /// The records, each id once (the last one wins), as `(id, the record's JSON as sent)`.
    fn records(&self, page: i64) -> AppResult<Vec<(String, String)>> {
        let mut records = Vec::with_capacity(self.data.len());
        let mut positions = std::collections::HashMap::with_capacity(self.data.len());
        for item in &self.data {
            let no_id = || AppError::Upstream(format!("A record on page {page} has no id."));
            let id = match serde_json::from_str::<Keyed>(item.get()).map_err(|_| no_id())?.id {
                Some(serde_json::Value::String(s)) if !s.is_empty() => s,
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => return Err(no_id()),
            };
            let data = item.get().to_owned();
            match positions.get(&id) {
                Some(&at) => records[at] = (id, data),
                None => {
                    positions.insert(id.clone(), records.len());
                    records.push((id, data));
                }
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_keeps_records_as_sent_once_per_id() {
        let body = r#"{"data":[{"id":"D-1","name":"A"},{"id":7,"name":"B"},{"id":"D-1","name":"C"}],
                       "info":{"more_records":true}}"#;
        let page = parse_page(1, 200, body).unwrap();
        assert!(page.more);
        assert_eq!(
            page.records,
            vec![("D-1".into(), r#"{"id":"D-1","name":"C"}"#.into()), ("7".into(), r#"{"id":7,"name":"B"}"#.into())]
        );
    }

    #[test]
    fn the_last_page_and_an_empty_page_end_the_reading() {
        let last = parse_page(3, 200, r#"{"data":[{"id":"x"}],"info":{"more_records":false}}"#).unwrap();
        assert!(!last.more);
        let empty = parse_page(4, 200, r#"{"data":[],"info":{"more_records":true}}"#).unwrap();
        assert!(!empty.more, "an empty page that says more would loop for ever");
        assert!(!parse_page(1, 200, r#"{"data":[{"id":"x"}]}"#).unwrap().more);
    }

    #[test]
    fn bad_pages_are_refused_with_a_readable_reason() {
        let reason = |body: &str, status| parse_page(2, status, body).unwrap_err().to_string();
        assert!(
            reason(r#"{"message":"down for maintenance"}"#, 503).contains("HTTP 503 on page 2: down for maintenance")
        );
        assert!(reason("<html>", 200).contains("page 2 is not valid JSON"));
        assert!(reason(r#"{"data":{"id":"x"}}"#, 200).contains("has no \"data\" list"));
        assert!(reason(r#"{"data":[{"name":"no id"}]}"#, 200).contains("A record on page 2 has no id"));
        assert!(reason(r#"{"data":[{"id":""}]}"#, 200).contains("has no id"));
        assert!(reason(r#"{"data":["plain"]}"#, 200).contains("has no id"));
    }
}
