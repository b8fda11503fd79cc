//! Sign-in throttling, kept in the database so every replica applies the same limits.
//!
//! Each wrong password counts against the account (its normalised email, whether or not it
//! exists) and against the client address. After a few free failures every further one locks
//! the subject for an exponentially growing time (capped); a locked subject is refused before
//! any password is hashed. A success clears the account's count only: clearing the address's
//! would let someone with one valid account reset it between guesses at others.

use super::db::Db;
use super::ids::now_ms;
use super::settings::Settings;
use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

closed_set! {
    /// What is throttled: sign-ins to one account, or from one address.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Scope ("scope", "throttle scope") {
        Account = "account", "Account";
        Address = "address", "Address";
    }
}

/// A failure count untouched for this long starts again from one. Accounts remember for a day
/// (a success clears them anyway); an address, which many people may share behind one NAT and
/// which no success clears, for an hour.
const FORGET_AFTER_MS: i64 = 24 * 60 * 60 * 1000;
const FORGET_ADDRESS_AFTER_MS: i64 = 60 * 60 * 1000;

/// Milliseconds until the later of the account's and the address's locks ends, if either is on.
pub async fn locked_for(db: &Db, account: &str, address: &str) -> Result<Option<i64>, sqlx::Error> {
    let until: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(locked_until) FROM login_throttle
         WHERE (scope = 'account' AND subject = $1) OR (scope = 'address' AND subject = $2)",
    )
    .bind(account)
    .bind(address)
    .fetch_one(&db.pool)
    .await?;
    let now = now_ms();
    Ok(until.filter(|u| *u > now).map(|u| u - now))
}

/// A lock a failure set: for how long, after how many failures in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub scope: Scope,
    pub failures: i64,
    pub millis: i64,
}

/// Counts a wrong password against `subject`; returns the lock it sets, if any.
pub async fn record_failure(
    db: &Db,
    settings: &Settings,
    scope: Scope,
    subject: &str,
) -> Result<Option<Lock>, sqlx::Error> {
    let now = now_ms();
    // One atomic upsert on both backends: concurrent failures each get their own count.
    let failures: i64 = sqlx::query_scalar(
        "INSERT INTO login_throttle (scope, subject, failures, locked_until, updated_at)
         VALUES ($1, $2, 1, 0, $3)
         ON CONFLICT (scope, subject) DO UPDATE SET
             failures = CASE WHEN login_throttle.updated_at < $4 THEN 1 ELSE login_throttle.failures + 1 END,
             updated_at = $3
         RETURNING failures",
    )
    .bind(scope.as_str())
    .bind(subject)
    .bind(now)
    .bind(
        now - match scope {
            Scope::Account => FORGET_AFTER_MS,
            Scope::Address => FORGET_ADDRESS_AFTER_MS,
        },
    )
    .fetch_one(&db.pool)
    .await?;
    let free = match scope {
        Scope::Account => settings.login_free_failures,
        Scope::Address => settings.login_free_failures_per_address,
    };
    let Some(millis) = backoff_ms(settings, failures, free) else { return Ok(None) };
    // Only ever later: a slower concurrent failure with a lower count cannot shorten the lock.
    sqlx::query("UPDATE login_throttle SET locked_until = $1 WHERE scope = $2 AND subject = $3 AND locked_until < $1")
        .bind(now + millis)
        .bind(scope.as_str())
        .bind(subject)
        .execute(&db.pool)
        .await?;
    Ok(Some(Lock { scope, failures, millis }))
}

/// A successful sign-in forgets the account's failures; stale rows go at the same time.
pub async fn record_success(db: &Db, account: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_throttle WHERE scope = 'account' AND subject = $1")
        .bind(account)
        .execute(&db.pool)
        .await?;
    let now = now_ms();
    sqlx::query("DELETE FROM login_throttle WHERE updated_at < $1 AND locked_until < $2")
        .bind(now - FORGET_AFTER_MS)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The lock after `failures` wrong passwords in a row: none for the first `free`, then the
/// start value doubling with each further failure, capped.
pub fn backoff_ms(settings: &Settings, failures: i64, free: u32) -> Option<i64> {
    let over = failures - i64::from(free);
    if over <= 0 {
        return None;
    }
    let cap = settings.login_backoff_max_secs.saturating_mul(1000);
    let shift = u32::try_from(over - 1).unwrap_or(u32::MAX).min(40);
    let millis = settings.login_backoff_start_ms.saturating_mul(1u64 << shift).min(cap);
    Some(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// The client address a sign-in is counted against: the peer, or with `--trust-forwarded-for`
/// the first `X-Forwarded-For` hop. IPv6 addresses count per /64, the block one host usually has.
pub fn client_address(settings: &Settings, peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
    let forwarded = settings
        .trust_forwarded_for
        .then(|| headers.get("x-forwarded-for")?.to_str().ok()?.split(',').next()?.trim().parse::<IpAddr>().ok())
        .flatten();
    match forwarded.or(peer.map(|p| p.ip())) {
        Some(IpAddr::V6(ip)) if ip.to_ipv4_mapped().is_none() => {
            let s = ip.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V6(ip)) => ip.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    }
}

/// Seconds for a `Retry-After` header: whole seconds, rounded up, at least one.
pub fn retry_after_secs(millis: i64) -> u64 {
    u64::try_from(millis.max(1)).unwrap_or(1).div_ceil(1000)
}

/// "2 minutes", "1 second", "3 hours": a wait as a person reads it (rounded up).
pub fn human_wait(secs: u64) -> String {
    let (n, unit) = match secs {
        0..=59 => (secs.max(1), "second"),
        60..=3599 => (secs.div_ceil(60), "minute"),
        _ => (secs.div_ceil(3600), "hour"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn backoff_doubles_after_the_free_failures_and_is_capped() {
        let s = Settings::parse_from(["server"]);
        let b = |f| backoff_ms(&s, f, 5);
        assert_eq!((b(1), b(5)), (None, None));
        assert_eq!((b(6), b(7), b(8)), (Some(1_000), Some(2_000), Some(4_000)));
        assert_eq!(b(16), Some(900_000));
        assert_eq!(b(10_000), Some(900_000));
    }

    #[test]
    fn waits_read_like_a_person_says_them() {
        assert_eq!(human_wait(1), "1 second");
        assert_eq!(human_wait(45), "45 seconds");
        assert_eq!(human_wait(61), "2 minutes");
        assert_eq!(human_wait(120), "2 minutes");
        assert_eq!(human_wait(900), "15 minutes");
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1_001), 2);
    }

    #[test]
    fn client_address_trusts_forwarded_for_only_when_told() {
        let mut s = Settings::parse_from(["server"]);
        let peer: SocketAddr = "10.0.0.1:5000".parse().expect("literal");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().expect("literal"));
        assert_eq!(client_address(&s, Some(peer), &h), "10.0.0.1");
        s.trust_forwarded_for = true;
        assert_eq!(client_address(&s, Some(peer), &h), "203.0.113.9");
        h.insert("x-forwarded-for", "2001:db8:1:2:3:4:5:6".parse().expect("literal"));
        assert_eq!(client_address(&s, Some(peer), &h), "2001:db8:1:2::/64");
        h.insert("x-forwarded-for", "garbage".parse().expect("literal"));
        assert_eq!(client_address(&s, Some(peer), &h), "10.0.0.1");
        assert_eq!(client_address(&s, None, &HeaderMap::new()), "unknown");
    }
}
