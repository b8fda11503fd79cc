//! Sign-in throttling (per account and per client address, in the database), the cap on
//! password checks at once, session lifetime and cookie, and bounded, guarded metrics.

use crate::common;

use app::error::AppError;
use app::ssr::seed::DEMO_PASSWORD;
use app::ssr::settings::Settings;
use common::{spawn, spawn_with, TestApp};
use std::time::{Duration, Instant};

/// One sign-in from a fresh client, optionally from `forwarded` (`X-Forwarded-For`):
/// the status, `Retry-After`, and the body.
async fn sign_in(app: &TestApp, email: &str, password: &str, forwarded: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = app.client().post(app.url("/api/login")).form(&[("email", email), ("password", password)]);
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_string());
    (status, retry, res.text().await.expect("body"))
}

fn message(body: &str) -> String {
    serde_json::from_str::<AppError>(body).unwrap_or_else(|e| panic!("not an AppError ({e}): {body}")).to_string()
}

/// Settings whose first back-off is a minute, so nothing expires by itself during a test.
async fn throttled(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut settings, dir) = common::settings().await;
    settings.login_backoff_start_ms = 60_000;
    adjust(&mut settings);
    spawn_with(settings, dir).await
}

/// Ends every lock now, as the passing of the back-off would.
async fn expire_locks(app: &TestApp) {
    sqlx::query("UPDATE login_throttle SET locked_until = $1")
        .bind(app::ssr::ids::now_ms() - 1)
        .execute(&app.state.db.pool)
        .await
        .expect("expire locks");
}

#[tokio::test]
async fn wrong_passwords_back_off_with_429_and_the_right_one_works_once_it_expires() {
    let app = throttled(|_| {}).await;
    let who = "superadmin@demo.test";
    let mut answers = Vec::new();
    for i in 0..20 {
        answers.push(sign_in(&app, who, &format!("Wr0ng-horse-{i}"), None).await);
    }
    // Five free failures, then the sixth sets a one-minute lock: everything after is refused.
    for (i, (status, retry, body)) in answers.iter().enumerate() {
        if i < 6 {
            assert_eq!((*status, message(body).as_str()), (400, "Wrong email or password."), "attempt {i}");
        } else {
            assert_eq!(*status, 429, "attempt {i}: {body}");
            let secs: u64 = retry.as_deref().expect("Retry-After").parse().expect("seconds");
            assert!((1..=60).contains(&secs), "{secs}");
            assert_eq!(message(body), "Too many failed sign-ins. Try again in 1 minute.");
        }
    }
    // Refused before any password is hashed: with every hashing permit taken, a locked account
    // still gets the back-off answer, not "too many at once".
    let held = app.state.login_hashing.clone().acquire_many_owned(4).await.expect("permits");
    let (status, retry, body) = sign_in(&app, who, DEMO_PASSWORD, None).await;
    assert_eq!((status, message(&body).as_str()), (429, "Too many failed sign-ins. Try again in 1 minute."));
    assert!(retry.is_some());
    drop(held);
    // The right password is refused while locked, then works once the back-off has passed.
    let (status, _, _) = sign_in(&app, who, DEMO_PASSWORD, None).await;
    assert_eq!(status, 429);
    expire_locks(&app).await;
    let me = app.signed_in(who).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM login_throttle WHERE scope = 'account'").await, 0, "success resets");

    // Failed sign-ins and the lock are in Operations, without the password.
    let ops: Vec<serde_json::Value> = app.json(&me, "list_operations", &[]).await;
    let of = |kind: &str| ops.iter().filter(|o| o["kind"] == kind).count();
    assert_eq!(of("sign_in_failed"), 6, "{ops:#?}");
    assert_eq!(of("sign_in_locked"), 1, "{ops:#?}");
    let locked = ops.iter().find(|o| o["kind"] == "sign_in_locked").expect("lock entry");
    let detail = locked["detail"].as_str().expect("detail");
    assert!(detail.contains(who) && detail.contains("1 minute") && detail.contains('6'), "{detail}");
    let all = serde_json::to_string(&ops).expect("json");
    assert!(!all.contains("Wr0ng-horse") && !all.contains(DEMO_PASSWORD), "a password was logged: {all}");
}

#[tokio::test]
async fn accounts_are_throttled_from_every_address_and_addresses_across_accounts() {
    let app = throttled(|s| {
        s.trust_forwarded_for = true;
        s.login_free_failures = 3;
        s.login_free_failures_per_address = 5;
    })
    .await;
    // Per account: four wrong passwords from one address lock admin@ for every address.
    for _ in 0..4 {
        let (status, _, _) = sign_in(&app, "admin@demo.test", "wrong", Some("198.51.100.1")).await;
        assert_eq!(status, 400);
    }
    let (status, retry, _) = sign_in(&app, "admin@demo.test", DEMO_PASSWORD, Some("198.51.100.2, 10.0.0.1")).await;
    assert_eq!((status, retry.is_some()), (429, true), "the account's lock holds from another address");

    // Per address: one wrong password each for six different accounts (unknown ones count
    // too) locks the address, for any account; other addresses are not affected.
    for i in 0..6 {
        let (status, _, _) = sign_in(&app, &format!("nobody{i}@demo.test"), "wrong", Some("203.0.113.5")).await;
        assert_eq!(status, 400, "attempt {i}");
    }
    let (status, retry, body) = sign_in(&app, "developer@demo.test", DEMO_PASSWORD, Some("203.0.113.5")).await;
    assert_eq!((status, retry.is_some()), (429, true), "{body}");
    let (status, _, body) = sign_in(&app, "developer@demo.test", DEMO_PASSWORD, Some("203.0.113.6")).await;
    assert_eq!(status, 200, "{body}");
    let rows =
        app.count("SELECT COUNT(*) FROM login_throttle WHERE scope = 'address' AND subject = '203.0.113.5'").await;
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn password_checks_beyond_the_cap_are_refused_at_once_never_failed() {
    let app = throttled(|s| {
        s.login_hash_concurrency = 1;
        s.login_free_failures = 1_000;
        s.login_free_failures_per_address = 1_000;
    })
    .await;
    // The one permit taken: a sign-in is refused at once with Retry-After: 1.
    let held = app.state.login_hashing.clone().acquire_owned().await.expect("permit");
    let (status, retry, body) = sign_in(&app, "user@demo.test", DEMO_PASSWORD, None).await;
    assert_eq!((status, retry.as_deref()), (429, Some("1")), "{body}");
    assert_eq!(message(&body), "Too many sign-ins at once. Try again in a second.");
    drop(held);

    // Many at once: some are refused, none fails, and the permit comes back.
    let calls = (0..16).map(|i| {
        let app = &app;
        async move {
            let password = if i % 2 == 0 { DEMO_PASSWORD.to_string() } else { format!("wrong-{i}") };
            sign_in(app, "user@demo.test", &password, None).await
        }
    });
    let answers = futures::future::join_all(calls).await;
    for (status, retry, body) in &answers {
        assert!([200, 400, 429].contains(status), "{status}: {body}");
        if *status == 429 {
            assert_eq!(retry.as_deref(), Some("1"), "{body}");
        }
    }
    assert!(answers.iter().any(|a| a.0 == 429), "{answers:?}");
    app.signed_in("user@demo.test").await;
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_active() {
    let (mut settings, dir) = common::settings().await;
    settings.session_max_hours = 2.0 / 3600.0;
    let app = spawn_with(settings, dir).await;
    let c = app.signed_in("admin@demo.test").await;
    let started = Instant::now();
    let mut ended = None;
    while started.elapsed() < Duration::from_secs(30) {
        let user: Option<serde_json::Value> = app.json(&c, "current_user", &[]).await;
        if user.is_none() {
            ended = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ended.is_some(), "the session outlived its lifetime while in use");
    let res = app.call(&c, "list_operations", &[]).await;
    assert_eq!(res.status(), 401);
    // Signing in again starts a new lifetime.
    let c = app.signed_in("admin@demo.test").await;
    assert!(app.json::<Option<serde_json::Value>>(&c, "current_user", &[]).await.is_some());
}

async fn session_cookie(app: &TestApp) -> String {
    let res = common::http()
        .post(app.url("/api/login"))
        .form(&[("email", "admin@demo.test"), ("password", DEMO_PASSWORD)])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let cookies: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().expect("ascii").to_string()).collect();
    cookies.into_iter().find(|c| c.contains("cm_session=")).expect("a session cookie")
}

#[tokio::test]
async fn over_https_the_session_cookie_is_host_prefixed_and_secure() {
    for secure_cookies in [false, true] {
        let (mut settings, dir) = common::settings().await;
        settings.public_url = Some("https://connections.example.test".into());
        settings.secure_cookies = secure_cookies;
        let app = spawn_with(settings, dir).await;
        let cookie = session_cookie(&app).await;
        assert!(cookie.starts_with("__Host-cm_session="), "{cookie}");
        let attributes: Vec<&str> = cookie.split("; ").collect();
        for a in ["Secure", "HttpOnly", "Path=/"] {
            assert!(attributes.contains(&a), "{a} missing: {cookie}");
        }
        assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
        // Embedding on other sites keeps working over HTTPS (--secure-cookies).
        let cross_site = attributes.contains(&"SameSite=None") && attributes.contains(&"Partitioned");
        assert_eq!(cross_site, secure_cookies, "{cookie}");
    }
    // Plain HTTP keeps the plain name.
    assert!(session_cookie(&spawn().await).await.starts_with("cm_session="));
}

/// The distinct values of the `path` label in a Prometheus text page.
fn path_labels(page: &str) -> std::collections::BTreeSet<String> {
    page.lines()
        .filter_map(|l| l.split("path=\"").nth(1).and_then(|rest| rest.split('"').next()))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn unknown_paths_do_not_grow_the_metrics() {
    let app = spawn().await;
    let c = app.client();
    let before = path_labels(&c.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap());
    for i in 0..200 {
        let res = c.post(app.url(&format!("/api/nope_{i}"))).form(&[("a", "b")]).send().await.unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let page = c.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(page.lines().filter(|l| l.contains("nope")).count(), 0);
    let after = path_labels(&page);
    // Other tests in this binary add their own routes meanwhile; 200 raw paths would add 200.
    assert!(after.len() < before.len() + 50, "{} → {}: {after:?}", before.len(), after.len());
    assert!(after.contains("unmatched"), "{after:?}");
}

#[tokio::test]
async fn metrics_can_require_a_token_or_move_to_their_own_address() {
    let (mut settings, dir) = common::settings().await;
    settings.metrics_token = Some("metrics-t0ken".into());
    let app = spawn_with(settings, dir).await;
    let get = |auth: Option<&'static str>| {
        let mut req = common::http().get(app.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    assert_eq!(get(None).await.unwrap().status(), 401);
    assert_eq!(get(Some("Bearer wrong")).await.unwrap().status(), 401);
    let res = get(Some("Bearer metrics-t0ken")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_requests_total"));

    let (mut settings, dir) = common::settings().await;
    settings.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let own = server::spawn_metrics_listener(&settings).await.unwrap().expect("a metrics address");
    let app = spawn_with(settings, dir).await;
    let main = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_ne!(main.status(), 200, "not on the main listener");
    let res = reqwest::get(format!("http://{own}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_requests_total"));
}

/// Concurrent failures for one subject (as from several replicas at once) each get their own
/// count: the upsert is atomic on both backends.
#[tokio::test]
async fn concurrent_failures_are_each_counted() {
    use app::ssr::throttle::{record_failure, Scope};
    let app = throttled(|_| {}).await;
    let (_, replica) = common::spawn_replica(&app).await;
    let calls = (0..40).map(|i| {
        let state = if i % 2 == 0 { app.state.clone() } else { replica.clone() };
        async move { record_failure(&state.db, &state.settings, Scope::Account, "victim@demo.test").await }
    });
    let locks = futures::future::join_all(calls).await;
    let mut counts: Vec<i64> = locks.into_iter().filter_map(|l| l.expect("recorded")).map(|l| l.failures).collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (6..=40).collect::<Vec<i64>>(),
        "every failure past the free five locks, each with its own count"
    );
    let (failures, locked_until): (i64, i64) =
        sqlx::query_as("SELECT failures, locked_until FROM login_throttle WHERE subject = 'victim@demo.test'")
            .fetch_one(&app.state.db.pool)
            .await
            .expect("row");
    assert_eq!(failures, 40);
    assert!(locked_until >= app::ssr::ids::now_ms() + 600_000, "the longest (capped, 15 min) lock wins");
}

/// The Operations log hides successful sign-ins unless asked, and filters by event and
/// connection (link name); the page reads the filter from its URL.
#[tokio::test]
async fn the_operations_log_folds_sign_ins_and_filters_by_event_and_connection() {
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let _ = app.signed_in("developer@demo.test").await;
    let kinds = |ops: &[serde_json::Value]| {
        ops.iter().map(|o| o["kind"].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>()
    };
    let all: Vec<serde_json::Value> = app.json(&admin, "list_operations", &[]).await;
    assert!(!kinds(&all).contains(&"signed_in".to_string()), "sign-ins folded away: {:?}", kinds(&all));
    let with: Vec<serde_json::Value> = app.json(&admin, "list_operations", &[("filter[sign_ins]", "true")]).await;
    assert_eq!(kinds(&with).iter().filter(|k| *k == "signed_in").count(), 2, "{:?}", kinds(&with));
    let only: Vec<serde_json::Value> = app.json(&admin, "list_operations", &[("filter[kind]", "signed_in")]).await;
    assert!(!only.is_empty() && kinds(&only).iter().all(|k| k == "signed_in"), "{:?}", kinds(&only));

    // By connection: a revoke of the weather connection, and nothing of other connections.
    let id = app.connection_id("weather").await.to_string();
    let res = app.call(&admin, "set_connection_enabled", &[("connection_id", &id), ("enabled", "false")]).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    let weather: Vec<serde_json::Value> =
        app.json(&admin, "list_operations", &[("filter[connection]", "weather")]).await;
    assert_eq!(kinds(&weather), ["connection_disabled"], "{weather:?}");
    assert!(app
        .json::<Vec<serde_json::Value>>(&admin, "list_operations", &[("filter[connection]", "sales_crm")])
        .await
        .is_empty());
    let (status, _) = app.fails(&admin, "list_operations", &[("filter[kind]", "Exploded")]).await;
    assert_eq!(status, 400);

    // The page: the filter form, the table's columns, events in words.
    let page = admin.get(app.url("/operations?kind=connection_disabled")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("aria-label=\"Filter the operations log\""), "{page}");
    for column in ["Time", "Event", "Result", "Who", "Connection", "Environment"] {
        assert!(page.contains(&format!("<th>{column}</th>")), "{column}");
    }
    assert!(page.contains("<td data-label=\"Event\">Connection disabled</td>"), "the event in words");
    assert!(!page.contains(">Signed in</td>"));
}
