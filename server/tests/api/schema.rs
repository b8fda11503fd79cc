//! The SQLite and PostgreSQL migration folders describe the same schema: after migrating a fresh
//! database of each, the tables, their columns (kind of type and nullability) and their indexes
//! (columns, uniqueness, partial or not) are the same. Runs where a PostgreSQL server is given
//! (`TEST_DATABASE_URL`, as in the test command's second pass).

use crate::common;

use app::ssr::db::Db;
use std::collections::BTreeSet;

/// A column as both backends can describe it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    table: String,
    name: String,
    kind: &'static str,
    not_null: bool,
}

/// A secondary index (primary keys are left out: they are part of the table's definition).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    table: String,
    columns: String,
    unique: bool,
    partial: bool,
}

/// The kind of a declared type, since each backend spells types its own way.
fn kind(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") || t.contains("serial") {
        "integer"
    } else if t.contains("char") || t.contains("text") {
        "text"
    } else if t.contains("blob") || t.contains("bytea") {
        "bytes"
    } else if t.contains("bool") {
        "boolean"
    } else if t.contains("real") || t.contains("double") || t.contains("float") || t.contains("numeric") {
        "number"
    } else {
        "other"
    }
}

const NOT_OURS: [&str; 2] = ["_sqlx_migrations", "sqlite_sequence"];

/// The search index over connections' names (migration 0016) is each backend's own: an FTS5
/// table (and the tables FTS5 keeps it in) on SQLite, `pg_trgm` indexes named `…_trgm` on
/// PostgreSQL.
fn is_sqlite_search_index(table: &str) -> bool {
    table == "connection_search" || table.starts_with("connection_search_")
}

async fn sqlite_schema(db: &Db) -> (BTreeSet<Column>, BTreeSet<Index>) {
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&db.pool).await.unwrap();
    let (mut columns, mut indexes) = (BTreeSet::new(), BTreeSet::new());
    for table in tables.into_iter().filter(|t| !NOT_OURS.contains(&t.as_str()) && !is_sqlite_search_index(t)) {
        let cols: Vec<(String, String, i64, i64)> =
            sqlx::query_as(r#"SELECT name, type, "notnull", pk FROM pragma_table_info($1)"#)
                .bind(&table)
                .fetch_all(&db.pool)
                .await
                .unwrap();
        for (name, declared, not_null, pk) in cols {
            columns.insert(Column {
                table: table.clone(),
                name,
                kind: kind(&declared),
                not_null: not_null != 0 || pk != 0,
            });
        }
        let list: Vec<(String, i64, String, i64)> =
            sqlx::query_as(r#"SELECT name, "unique", origin, partial FROM pragma_index_list($1)"#)
                .bind(&table)
                .fetch_all(&db.pool)
                .await
                .unwrap();
        for (name, unique, _, partial) in list.into_iter().filter(|(_, _, origin, _)| origin != "pk") {
            let cols: Vec<Option<String>> = sqlx::query_scalar("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                .bind(&name)
                .fetch_all(&db.pool)
                .await
                .unwrap();
            indexes.insert(Index {
                table: table.clone(),
                columns: cols.into_iter().map(|c| c.unwrap_or_else(|| "<expr>".into())).collect::<Vec<_>>().join(","),
                unique: unique != 0,
                partial: partial != 0,
            });
        }
    }
    (columns, indexes)
}

async fn postgres_schema(db: &Db) -> (BTreeSet<Column>, BTreeSet<Index>) {
    let cols: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable::text
         FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let columns = cols
        .into_iter()
        .filter(|(t, ..)| !NOT_OURS.contains(&t.as_str()))
        .map(|(table, name, declared, nullable)| Column {
            table,
            name,
            kind: kind(&declared),
            not_null: nullable == "NO",
        })
        .collect();
    let rows: Vec<(String, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT t.relname::text,
                CASE WHEN ix.indisunique THEN 1 ELSE 0 END,
                CASE WHEN ix.indpred IS NULL THEN 0 ELSE 1 END,
                (SELECT string_agg(COALESCE(a.attname::text, '<expr>'), ',' ORDER BY k.n)
                   FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                   LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum)
         FROM pg_index ix
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_namespace ns ON ns.oid = t.relnamespace
         WHERE ns.nspname = 'public' AND NOT ix.indisprimary AND i.relname NOT LIKE '%\\_trgm'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let indexes = rows
        .into_iter()
        .filter(|(t, ..)| !NOT_OURS.contains(&t.as_str()))
        .map(|(table, unique, partial, columns)| Index {
            table,
            columns: columns.unwrap_or_default(),
            unique: unique != 0,
            partial: partial != 0,
        })
        .collect();
    (columns, indexes)
}

fn differences<T: Ord + std::fmt::Debug>(what: &str, sqlite: &BTreeSet<T>, postgres: &BTreeSet<T>) -> Vec<String> {
    let only = |a: &BTreeSet<T>, b: &BTreeSet<T>, side: &str| {
        a.difference(b).map(|x| format!("{what} only in {side}: {x:?}")).collect::<Vec<_>>()
    };
    let mut out = only(sqlite, postgres, "SQLite");
    out.extend(only(postgres, sqlite, "PostgreSQL"));
    out
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_describe_the_same_schema() {
    if !common::is_postgres() {
        // The SQLite-only pass has no PostgreSQL to compare with; the test command's second
        // pass (scripts/with-postgres.sh) runs this test for real.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::connect(&format!("sqlite://{}/schema.db?mode=rwc", dir.path().display())).await.unwrap();
    let postgres = Db::connect(&common::fresh_database(dir.path()).await).await.unwrap();
    let (s_cols, s_idx) = sqlite_schema(&sqlite).await;
    let (p_cols, p_idx) = postgres_schema(&postgres).await;
    assert!(s_cols.len() > 50, "the SQLite schema was read: {s_cols:?}");
    let tables = |c: &BTreeSet<Column>| c.iter().map(|c| c.table.clone()).collect::<BTreeSet<_>>();
    let mut diff = differences("table", &tables(&s_cols), &tables(&p_cols));
    diff.extend(differences("column", &s_cols, &p_cols));
    diff.extend(differences("index", &s_idx, &p_idx));
    assert!(diff.is_empty(), "the migration folders drifted apart:\n{}", diff.join("\n"));
}
