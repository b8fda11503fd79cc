//! Random identifiers and tokens.

use rand::{distributions::Alphanumeric, Rng};

/// A short reference that ties an opaque error shown to a user to the log line with its cause.
pub fn short_reference() -> String {
    random_token(10)
}

/// A URL-safe random token of `len` alphanumeric characters (about 5.95 bits each).
pub fn random_token(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// Milliseconds since the Unix epoch: every timestamp in the database is stored this way so
/// that SQLite and Postgres agree on it.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
