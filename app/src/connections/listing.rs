//! The Microservices list: one page of 50 of the workspace's connections by link name (keyset),
//! searched and filtered, with its counts. A page is read in link-name order from the
//! workspace's index unless an index can name the candidates first: a search the trigram
//! indexes answer (migration 0016), or a status some row records (an authorization, a
//! revocation, the disabled flag). Up to [`SORT_AT_MOST`] of them are looked up and sorted.

use super::list::{entry_select, visible, EntryRow};
use super::{ConnectionPage, ConnectionQuery, Status, PAGE_SIZE};
use crate::auth::SessionUser;
use crate::domain::{ConnectionType, Environment};
use crate::error::{AppError, AppResult};
use crate::ssr::db::Backend;
use crate::ssr::AppState;

/// The Microservices list's rows after the search and filters: `$1` environment, `$2` caller,
/// `$3` workspace, `$4` lower-case `LIKE` pattern or '', `$5` connection type or '', `$6`
/// status or ''. `$rows` says which connections are read (a condition on `c` and `k`); the
/// callers add the order, the page start and the limit.
macro_rules! filtered {
    ($rows:expr) => {
        concat!(
            "SELECT * FROM (",
            entry_select!(),
            " WHERE ",
            $rows,
            " AND ($5 = '' OR c.conn_type = $5)
            ) e
            WHERE ($6 = '' OR COALESCE(e.account_status, 'not_connected') = $6)"
        )
    };
}

/// The workspace's connections read in link-name order, the search (`$4`) checked on each: the
/// list without a search or a recorded status, searches the trigram indexes do not answer, and
/// anything matching so many connections that a page of them is found after a few rows.
macro_rules! scanned {
    () => {
        filtered!(
            "c.workspace_id = $3
                AND ($4 = '' OR LOWER(c.display_name) LIKE $4 ESCAPE '\\'
                     OR LOWER(c.link_name) LIKE $4 ESCAPE '\\' OR LOWER(k.name) LIKE $4 ESCAPE '\\')"
        )
    };
}

/// The rows whose ids `$ids` gives, on SQLite. The unary `+` keeps SQLite's planner from
/// starting at the workspace's index: the ids drive the look-ups.
macro_rules! by_ids_sqlite {
    ($ids:expr) => {
        filtered!(concat!("c.id IN (", $ids, ") AND +c.workspace_id = $3"))
    };
}

/// The same on PostgreSQL. `ANY(ARRAY(…))` makes the ids one value the planner looks up by
/// primary key, rather than a set it guesses the size of and joins against every connection.
macro_rules! by_ids_postgres {
    ($ids:expr) => {
        filtered!(concat!("c.id = ANY(ARRAY(", $ids, ")) AND c.workspace_id = $3"))
    };
}

/// The ids a search matches, from the trigram index on SQLite (migration 0016: FTS5, `$7` the
/// search as one phrase) over the name and the link name.
macro_rules! searched_sqlite {
    () => {
        "SELECT rowid FROM connection_search WHERE connection_search MATCH $7"
    };
}

/// The same on PostgreSQL, from its `pg_trgm` indexes on the lower-case name and link name
/// (migration 0016; a scan where the extension is not available).
macro_rules! searched_postgres {
    () => {
        "SELECT c1.id FROM connections c1 WHERE c1.workspace_id = $3
           AND (LOWER(c1.display_name) LIKE $4 ESCAPE '\\' OR LOWER(c1.link_name) LIKE $4 ESCAPE '\\')"
    };
}

/// The connections with an authorization that needs reauthorization (its account stopped
/// working, or it asks for new consent), in any workspace, environment or for anyone: found
/// from those few rows (partial indexes, migration 0014). `$guard` is put before each branch's
/// condition (`"… AND"`, or `""`).
macro_rules! needing_reauthorization {
    ($guard:expr) => {
        concat!(
            "SELECT ca.connection_id FROM authorized_accounts a
               JOIN connection_authorizations ca ON ca.account_id = a.id
              WHERE ",
            $guard,
            " a.status = 'needs_reauthorization'
             UNION SELECT ca.connection_id FROM connection_authorizations ca
              WHERE ",
            $guard,
            " ca.reconsent_reason IS NOT NULL"
        )
    };
}

/// The connections that may have the status `$6` in the environment `$1` for someone, when
/// it is one a row records ([`Status::is_recorded`]): from those rows (the authorizations, the
/// revocations, partial indexes on the accounts needing reauthorization or revoked and on
/// disabled connections; migrations 0014 and 0017), not by reading every connection of the
/// workspace for it. The page's filter then keeps those that have it for the caller.
macro_rules! with_status {
    () => {
        concat!(
            "SELECT ca.connection_id FROM connection_authorizations ca
              WHERE $6 = 'connected' AND ca.environment = $1
             UNION ",
            needing_reauthorization!("$6 = 'needs_reauthorization' AND"),
            " UNION SELECT r.connection_id FROM revoked_authorizations r
              WHERE $6 = 'revoked' AND r.environment = $1
             UNION SELECT ca.connection_id FROM authorized_accounts a
               JOIN connection_authorizations ca ON ca.account_id = a.id
              WHERE $6 = 'revoked' AND a.status = 'revoked'
             UNION SELECT c0.id FROM connections c0
              WHERE $6 = 'disabled' AND c0.enabled = 0 AND c0.workspace_id = $3"
        )
    };
}

/// One page of `$rows`, by link name (keyset): `$after` is the link name the page starts after,
/// `$limit` the page size plus one, to know whether another page follows.
macro_rules! keyset_page {
    ($rows:expr, $after:literal, $limit:literal) => {
        concat!($rows, " AND e.link_name > ", $after, " ORDER BY e.link_name LIMIT ", $limit)
    };
}

/// How many rows `$rows` matches.
macro_rules! counted {
    ($rows:expr) => {
        concat!("SELECT COUNT(*) FROM (", $rows, ") m")
    };
}

/// One page of the Microservices list, read in link-name order.
pub const PAGE: &str = keyset_page!(scanned!(), "$7", "$8");
/// How many rows [`PAGE`]'s filters match.
const COUNT: &str = counted!(scanned!());

/// A page of a search the trigram index answers on SQLite.
pub const SEARCH_PAGE_SQLITE: &str = keyset_page!(by_ids_sqlite!(searched_sqlite!()), "$8", "$9");
const SEARCH_COUNT_SQLITE: &str = counted!(by_ids_sqlite!(searched_sqlite!()));
/// A page of a search the trigram indexes answer on PostgreSQL.
const SEARCH_PAGE_POSTGRES: &str = keyset_page!(by_ids_postgres!(searched_postgres!()), "$7", "$8");
const SEARCH_COUNT_POSTGRES: &str = counted!(by_ids_postgres!(searched_postgres!()));

/// A page of the connections with a recorded status, without a search.
pub const STATUS_PAGE_SQLITE: &str = keyset_page!(by_ids_sqlite!(with_status!()), "$7", "$8");
const STATUS_COUNT_SQLITE: &str = counted!(by_ids_sqlite!(with_status!()));
const STATUS_PAGE_POSTGRES: &str = keyset_page!(by_ids_postgres!(with_status!()), "$7", "$8");
const STATUS_COUNT_POSTGRES: &str = counted!(by_ids_postgres!(with_status!()));

/// Up to this many matches, a page is read from the ids the indexes give (and sorted); more are
/// read in link-name order, where a page of them is found after about
/// `PAGE_SIZE × total / matching` rows.
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
pub const ATTENTION: &str = concat!(
    "SELECT COUNT(*) FROM connections c WHERE c.id IN (",
    needing_reauthorization!(""),
    ") AND +c.workspace_id = $1 AND c.enabled = 1"
);

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

/// Where a page's rows come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The workspace's connections in link-name order, filtered as they are read.
    Scan,
    /// The ids the trigram indexes give for a search (its FTS5 phrase on SQLite).
    Search(&'a str),
    /// The ids of the connections that may have a status some row records.
    WithStatus,
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
    let source = match (&f.phrase, f.status) {
        (Some(phrase), _) if !service_matches(state, user, &f.pattern).await? => Source::Search(phrase),
        (_, Some(status)) if f.pattern.is_empty() && status.is_recorded() => Source::WithStatus,
        _ => Source::Scan,
    };
    let backend = state.db.backend;
    let (matching, source) = if f.is_empty() {
        (total, Source::Scan)
    } else if let (true, None, Some(t)) = (f.pattern.is_empty(), f.status, f.conn_type) {
        // A type filter alone: its count is kept too.
        (by_type.iter().find(|(k, _)| *k == t).map_or(0, |(_, n)| *n), Source::Scan)
    } else {
        let n: i64 = match (source, backend) {
            (Source::Scan, _) => with_filters!(sqlx::query_scalar(COUNT)),
            (Source::Search(phrase), Backend::Sqlite) => {
                with_filters!(sqlx::query_scalar(SEARCH_COUNT_SQLITE)).bind(phrase)
            }
            (Source::Search(_), Backend::Postgres) => with_filters!(sqlx::query_scalar(SEARCH_COUNT_POSTGRES)),
            (Source::WithStatus, Backend::Sqlite) => with_filters!(sqlx::query_scalar(STATUS_COUNT_SQLITE)),
            (Source::WithStatus, Backend::Postgres) => with_filters!(sqlx::query_scalar(STATUS_COUNT_POSTGRES)),
        }
        .fetch_one(&state.db.pool)
        .await?;
        (n, if n <= SORT_AT_MOST { source } else { Source::Scan })
    };
    let (after, limit) = (query.after.as_str(), PAGE_SIZE + 1);
    let mut rows: Vec<EntryRow> = match (source, backend) {
        (Source::Scan, _) => with_filters!(sqlx::query_as(PAGE)).bind(after).bind(limit),
        (Source::Search(phrase), Backend::Sqlite) => {
            with_filters!(sqlx::query_as(SEARCH_PAGE_SQLITE)).bind(phrase).bind(after).bind(limit)
        }
        (Source::Search(_), Backend::Postgres) => {
            with_filters!(sqlx::query_as(SEARCH_PAGE_POSTGRES)).bind(after).bind(limit)
        }
        (Source::WithStatus, Backend::Sqlite) => {
            with_filters!(sqlx::query_as(STATUS_PAGE_SQLITE)).bind(after).bind(limit)
        }
        (Source::WithStatus, Backend::Postgres) => {
            with_filters!(sqlx::query_as(STATUS_PAGE_POSTGRES)).bind(after).bind(limit)
        }
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

/// Whether `pattern` is in the name of a service the workspace may use ([`SERVICE_MATCHES`]).
async fn service_matches(state: &AppState, user: &SessionUser, pattern: &str) -> AppResult<bool> {
    let n: i64 =
        sqlx::query_scalar(SERVICE_MATCHES).bind(pattern).bind(user.workspace_id).fetch_one(&state.db.pool).await?;
    Ok(n > 0)
}
