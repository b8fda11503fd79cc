//! The panel's entries (live and edit mode) and the Microservices list: what each person may see
//! is decided by [`crate::policy`] row by row.

use super::{ConnectionEntry, ConnectionPage, ConnectionQuery, Status, PAGE_SIZE};
use crate::auth::SessionUser;
use crate::domain::{ConnectionType, Environment};
use crate::error::{AppError, AppResult};
use crate::policy::{decide, Action, Context};
use crate::ssr::db::Backend;
use crate::ssr::AppState;

/// One panel entry as read (before the policy decides whether the caller sees it).
#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    display_name: String,
    link_name: String,
    service_name: String,
    conn_type: String,
    installed_from: Option<String>,
    account_name: Option<String>,
    account_status: Option<String>,
    used_in_datasource_or_schedule: i64,
    primary_accounts: i64,
    auth_type: String,
    connector_config: String,
    same_for_all_envs: i64,
    status_reason: Option<String>,
}

/// The panel entry's columns; each caller adds its own bound `WHERE` (no SQL is assembled
/// from values).
macro_rules! entry_select {
    () => {
        concat!(
            "
    SELECT c.id, c.display_name, c.link_name, k.name AS service_name, c.conn_type, c.installed_from,
           a.name AS account_name,
           CASE WHEN c.enabled = 0 THEN 'disabled'
                WHEN a.status IS NULL AND EXISTS (
                  SELECT 1 FROM revoked_authorizations r
                  WHERE r.connection_id = c.id AND r.environment = $1
                    AND r.subject_user_id = CASE WHEN c.conn_type = 'user' THEN $2 ELSE ",
            shared_subject!(),
            " END)
                THEN 'revoked' ELSE ",
            link_status!(),
            " END AS account_status, ",
            usage_columns!(),
            ",
           k.auth_type, k.config AS connector_config, c.same_for_all_envs, ",
            link_reason!(),
            " AS status_reason
    FROM connections c
    JOIN connectors k ON k.id = c.connector_id
    LEFT JOIN connection_authorizations ca
           ON ca.connection_id = c.id AND ca.environment = $1
          AND ca.subject_user_id = CASE WHEN c.conn_type = 'user' THEN $2 ELSE ",
            shared_subject!(),
            " END
    LEFT JOIN authorized_accounts a ON a.id = ca.account_id"
        )
    };
}

fn entry(user: &SessionUser, row: EntryRow) -> AppResult<Option<ConnectionEntry>> {
    let config: crate::connectors::ConnectorConfig =
        serde_json::from_str(&row.connector_config).map_err(|e| AppError::internal("connector config", e))?;
    let conn_type = ConnectionType::parse(&row.conn_type)?;
    let cx = Context {
        used_in_datasource_or_schedule: row.used_in_datasource_or_schedule > 0,
        primary_account_configured: row.primary_accounts > 0,
    };
    if !decide(user.role, conn_type, Action::View, cx).is_allowed() {
        return Ok(None);
    }
    let status = Status::from_db(row.account_status.as_deref());
    let account_name = if matches!(status, Status::NotConnected | Status::Revoked) { None } else { row.account_name };
    Ok(Some(ConnectionEntry {
        id: row.id,
        display_name: row.display_name,
        link_name: row.link_name,
        service_name: row.service_name,
        conn_type,
        status,
        status_reason: if status == Status::NeedsReauthorization { row.status_reason } else { None },
        account_name,
        authorize: decide(user.role, conn_type, Action::Authorize, cx),
        installed_from: row.installed_from,
        auth_type: crate::domain::AuthType::parse(&row.auth_type)?,
        same_for_all_envs: row.same_for_all_envs != 0,
        username_label: config.username_label(),
        password_label: config.password_label(),
        payment_gateway: config.payment_gateway,
    }))
}

fn visible(user: &SessionUser, rows: Vec<EntryRow>) -> AppResult<Vec<ConnectionEntry>> {
    Ok(rows.into_iter().map(|r| entry(user, r)).collect::<AppResult<Vec<_>>>()?.into_iter().flatten().collect())
}

/// The panel of one application (or one of its components): driven from the application's
/// components, so its cost follows the connections the application uses, not the size of
/// the workspace. `$1` environment, `$2` caller, `$3` workspace, `$4` application, `$5` one
/// component's link name or '', `$6` 1 when the caller may open every component.
pub const FOR_APPLICATION: &str = concat!(
    entry_select!(),
    // `+ 0` keeps SQLite from walking the workspace's connections by their workspace index:
    // the ids from the subquery drive the look-ups.
    " WHERE c.workspace_id + 0 = $3 AND c.id IN (
       SELECT cc.connection_id FROM components sc
       JOIN component_connections cc ON cc.component_id = sc.id
       WHERE sc.application_id = $4
         AND ($5 = '' OR sc.link_name = $5)
         AND ($6 = 1 OR EXISTS (SELECT 1 FROM component_permissions p
                                WHERE p.component_id = sc.id AND p.user_id = $2)))
     ORDER BY c.display_name"
);

pub async fn for_application(
    state: &AppState,
    user: &SessionUser,
    app: &str,
    component: Option<&str>,
    environment: Environment,
) -> AppResult<Vec<ConnectionEntry>> {
    // Opened on every page of the running app: the answer is kept a second (`ssr::cache`),
    // cleared by any write through this server; a worker's or another replica's change
    // (a refresh that failed, a revoke) shows within the second.
    let key = crate::ssr::cache::PanelKey {
        user_id: user.id,
        app: app.to_string(),
        component: component.map(str::to_string),
        environment,
    };
    state.caches.panels.get_or_load(key, || read_for_application(state, user, app, component, environment)).await
}

async fn read_for_application(
    state: &AppState,
    user: &SessionUser,
    app: &str,
    component: Option<&str>,
    environment: Environment,
) -> AppResult<Vec<ConnectionEntry>> {
    let app = crate::applications::ssr::find_cached(state, user, app).await?;
    if let Some(link) = component {
        // Only components the caller may open count (plain users: the ones they have
        // permission for); asking for another one is "not found".
        let allowed = crate::applications::ssr::components(state, user, app.id).await?;
        if !allowed.iter().any(|c| c.link_name == link) {
            return Err(AppError::not_found(format!("There is no component '{link}' you can open.")));
        }
    }
    let rows: Vec<EntryRow> = sqlx::query_as(FOR_APPLICATION)
        .bind(environment.as_str())
        .bind(user.id)
        .bind(user.workspace_id)
        .bind(app.id)
        .bind(component.unwrap_or_default())
        .bind(user.role.is_builder() as i64)
        .fetch_all(&state.db.pool)
        .await?;
    visible(user, rows)
}

pub async fn for_workspace(state: &AppState, user: &SessionUser) -> AppResult<Vec<ConnectionEntry>> {
    let sql = concat!(entry_select!(), " WHERE c.workspace_id = $3 ORDER BY c.display_name");
    let rows: Vec<EntryRow> = sqlx::query_as(sql)
        .bind(Environment::Development.as_str())
        .bind(user.id)
        .bind(user.workspace_id)
        .fetch_all(&state.db.pool)
        .await?;
    visible(user, rows)
}

/// The Microservices list's rows after the search and filters: `$1` environment, `$2` caller,
/// `$3` workspace, `$4` lower-case `LIKE` pattern or '', `$5` connection type or '', `$6`
/// status or ''. `$search` is the condition on `c` and `k` for a search; the callers add the
/// order, the page start and the limit.
macro_rules! filtered {
    ($search:expr) => {
        concat!(
            "SELECT * FROM (",
            entry_select!(),
            " WHERE ",
            $search,
            " AND ($5 = '' OR c.conn_type = $5)
            ) e
            WHERE ($6 = '' OR COALESCE(e.account_status, 'not_connected') = $6)"
        )
    };
}

/// A search by reading the workspace's connections in link-name order: the list without a
/// search, searches shorter than the trigram indexes answer, and searches matching so many
/// connections that a page of them is found after a few rows.
macro_rules! scanned {
    () => {
        filtered!(
            "c.workspace_id = $3
                AND ($4 = '' OR LOWER(c.display_name) LIKE $4 ESCAPE '\\'
                     OR LOWER(c.link_name) LIKE $4 ESCAPE '\\' OR LOWER(k.name) LIKE $4 ESCAPE '\\')"
        )
    };
}

/// A search answered from the trigram index on SQLite (migration 0016: FTS5, `$7` the search
/// as one phrase) over the name and the link name. The unary `+` keeps SQLite's planner from
/// starting at the workspace's index: the matched ids drive the look-ups.
macro_rules! searched_sqlite {
    () => {
        filtered!(
            "c.id IN (SELECT rowid FROM connection_search WHERE connection_search MATCH $7)
             AND +c.workspace_id = $3"
        )
    };
}

/// The same on PostgreSQL, from its `pg_trgm` indexes on the lower-case name and link name
/// (migration 0016; a scan where the extension is not available). `ANY(ARRAY(…))` makes the
/// matched ids one value the planner looks up by primary key, rather than a set it guesses
/// the size of and joins against every connection.
macro_rules! searched_postgres {
    () => {
        filtered!(
            "c.id = ANY(ARRAY(SELECT c1.id FROM connections c1 WHERE c1.workspace_id = $3
                AND (LOWER(c1.display_name) LIKE $4 ESCAPE '\\' OR LOWER(c1.link_name) LIKE $4 ESCAPE '\\')))
             AND c.workspace_id = $3"
        )
    };
}

/// One page of the Microservices list, by link name (keyset: `$7` is the link name the page
/// starts after, `$8` the page size plus one, to know whether another page follows).
pub const PAGE: &str = concat!(scanned!(), " AND e.link_name > $7 ORDER BY e.link_name LIMIT $8");
/// How many rows [`PAGE`]'s filters match.
const COUNT: &str = concat!("SELECT COUNT(*) FROM (", scanned!(), ") m");

/// A page of a search the trigram index answers on SQLite: `$8` after, `$9` the limit.
pub const SEARCH_PAGE_SQLITE: &str = concat!(searched_sqlite!(), " AND e.link_name > $8 ORDER BY e.link_name LIMIT $9");
pub const SEARCH_COUNT_SQLITE: &str = concat!("SELECT COUNT(*) FROM (", searched_sqlite!(), ") m");
/// A page of a search the trigram indexes answer on PostgreSQL: `$7` after, `$8` the limit.
pub const SEARCH_PAGE_POSTGRES: &str =
    concat!(searched_postgres!(), " AND e.link_name > $7 ORDER BY e.link_name LIMIT $8");
pub const SEARCH_COUNT_POSTGRES: &str = concat!("SELECT COUNT(*) FROM (", searched_postgres!(), ") m");

/// A search matching at most this many connections is read from the ids the indexes give
/// (and sorted); one matching more is read in link-name order, where a page of them is
/// found after about `PAGE_SIZE × total / matching` rows.
const SORT_AT_MOST: i64 = 2_000;

/// Whether the search is in the name of a service the workspace may use (`$1` the `LIKE`
/// pattern, `$2` the workspace): then it matches every connection of that service, usually
/// many, and the list is read in link-name order with the service's name.
const SERVICE_MATCHES: &str = "SELECT COUNT(*) FROM connectors
     WHERE (workspace_id IS NULL OR workspace_id = $2) AND LOWER(name) LIKE $1 ESCAPE '\\'";

/// How many of the workspace's (`$1`) enabled connections need attention: started from the few
/// authorizations that do (partial indexes), each looked up by its connection id. The unary `+`
/// keeps SQLite's planner (which has no statistics) from starting at the workspace's index
/// instead, which read every connection of the workspace: 11 ms with 100 000 of them.
pub const ATTENTION: &str = "SELECT COUNT(*) FROM connections c
     WHERE c.id IN (SELECT ca.connection_id FROM authorized_accounts a
                    JOIN connection_authorizations ca ON ca.account_id = a.id
                    WHERE a.status = 'needs_reauthorization'
                    UNION
                    SELECT ca.connection_id FROM connection_authorizations ca
                    WHERE ca.reconsent_reason IS NOT NULL)
       AND +c.workspace_id = $1 AND c.enabled = 1";

/// The search and filters of a [`ConnectionQuery`], checked.
struct Filters {
    pattern: String,
    /// The search as one FTS5 phrase (SQLite's trigram index), when it is long enough for
    /// the trigram indexes: three characters or more.
    phrase: Option<String>,
    conn_type: Option<ConnectionType>,
    status: Option<Status>,
    environment: Environment,
}

impl Filters {
    fn parse(query: &ConnectionQuery) -> AppResult<Filters> {
        let q = query.q.trim();
        if q.chars().count() > 100 {
            return Err(AppError::invalid("q", "Search for at most 100 characters."));
        }
        let escaped: String = q
            .to_lowercase()
            .chars()
            .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
            .collect();
        let optional = |s: &str| (!s.is_empty()).then_some(s.to_string());
        Ok(Filters {
            pattern: if q.is_empty() { String::new() } else { format!("%{escaped}%") },
            phrase: (q.chars().count() >= 3).then(|| format!("\"{}\"", q.replace('"', "\"\""))),
            conn_type: optional(&query.conn_type).map(|t| ConnectionType::parse(&t)).transpose()?,
            status: optional(&query.status).map(|s| Status::parse(&s)).transpose()?,
            environment: optional(&query.env).map_or(Ok(Environment::Development), |e| Environment::parse(&e))?,
        })
    }

    fn is_empty(&self) -> bool {
        self.pattern.is_empty() && self.conn_type.is_none() && self.status.is_none()
    }
}

pub async fn page(state: &AppState, user: &SessionUser, query: &ConnectionQuery) -> AppResult<ConnectionPage> {
    let f = Filters::parse(query)?;
    if query.after.len() > 200 {
        return Err(AppError::invalid("after", "Not a page of this list."));
    }
    // The search and filters, bound as `$1`..`$6` of [`filtered!`].
    macro_rules! with_filters {
        ($query:expr) => {
            $query
                .bind(f.environment.as_str())
                .bind(user.id)
                .bind(user.workspace_id)
                .bind(f.pattern.as_str())
                .bind(f.conn_type.map(|t| t.as_str()).unwrap_or_default())
                .bind(f.status.map(|s| s.as_str()).unwrap_or_default())
        };
    }
    let counts: Vec<(String, i64)> =
        // Kept by triggers (migration 0014): no scan of the workspace's connections.
        sqlx::query_as("SELECT conn_type, n FROM connection_counts WHERE workspace_id = $1 AND n > 0 ORDER BY conn_type")
            .bind(user.workspace_id)
            .fetch_all(&state.db.pool)
            .await?;
    let by_type = counts
        .into_iter()
        .map(|(t, n)| Ok((ConnectionType::parse(&t)?, n)))
        .collect::<AppResult<Vec<(ConnectionType, i64)>>>()?;
    let total = by_type.iter().map(|(_, n)| n).sum();
    let backend = state.db.backend;
    let services_match = f.phrase.is_some()
        && sqlx::query_scalar::<_, i64>(SERVICE_MATCHES)
            .bind(f.pattern.as_str())
            .bind(user.workspace_id)
            .fetch_one(&state.db.pool)
            .await?
            > 0;
    let (matching, indexed) = if f.is_empty() {
        (total, false)
    } else if let (true, None, Some(t)) = (f.pattern.is_empty(), f.status, f.conn_type) {
        // A type filter alone: its count is kept too.
        (by_type.iter().find(|(k, _)| *k == t).map_or(0, |(_, n)| *n), false)
    } else if let Some(phrase) = f.phrase.as_ref().filter(|_| !services_match) {
        // Found from the names alone: the trigram indexes give the few that match.
        let n: i64 = match backend {
            Backend::Sqlite => with_filters!(sqlx::query_scalar(SEARCH_COUNT_SQLITE)).bind(phrase.as_str()),
            Backend::Postgres => with_filters!(sqlx::query_scalar(SEARCH_COUNT_POSTGRES)),
        }
        .fetch_one(&state.db.pool)
        .await?;
        (n, n <= SORT_AT_MOST)
    } else {
        (with_filters!(sqlx::query_scalar(COUNT)).fetch_one(&state.db.pool).await?, false)
    };
    let after = query.after.as_str();
    let mut rows: Vec<EntryRow> = match (indexed, backend, &f.phrase) {
        (true, Backend::Sqlite, Some(phrase)) => {
            with_filters!(sqlx::query_as(SEARCH_PAGE_SQLITE)).bind(phrase.as_str()).bind(after).bind(PAGE_SIZE + 1)
        }
        (true, Backend::Postgres, _) => {
            with_filters!(sqlx::query_as(SEARCH_PAGE_POSTGRES)).bind(after).bind(PAGE_SIZE + 1)
        }
        _ => with_filters!(sqlx::query_as(PAGE)).bind(after).bind(PAGE_SIZE + 1),
    }
    .fetch_all(&state.db.pool)
    .await?;
    let next_after = if rows.len() as i64 > PAGE_SIZE {
        rows.truncate(PAGE_SIZE as usize);
        rows.last().map(|r| r.link_name.clone())
    } else {
        None
    };
    let attention: i64 = sqlx::query_scalar(ATTENTION).bind(user.workspace_id).fetch_one(&state.db.pool).await?;
    Ok(ConnectionPage {
        entries: visible(user, rows)?,
        environment: f.environment,
        next_after,
        matching,
        total,
        by_type,
        attention,
    })
}
