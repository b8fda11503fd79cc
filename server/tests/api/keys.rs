//! Live encryption-key rotation: several keys at once, the background pass that re-encrypts
//! every stored value to the primary key while requests keep succeeding, start-up refusing to
//! drop a key values still need, and `server keys status`.

use crate::common;

use app::authorizations::AuthorizeOutcome;
use app::invoke::InvokeResponse;
use app::ssr::crypto::Cipher;
use app::ssr::db::Db;
use app::ssr::keys::{self, Column, RowKey};
use common::sandbox::Sandbox;
use common::{fixtures, TestApp};
use std::time::Duration;

/// Every encrypted value stored: column, row, ciphertext.
async fn stored(db: &Db) -> Vec<(Column, RowKey, Vec<u8>)> {
    let mut out = Vec::new();
    for column in Column::ALL {
        let sql = match column {
            Column::KeyCheck => "SELECT name, value FROM server_facts WHERE name = 'key_check'",
            Column::AccountCredentials => "SELECT id, credentials_ct FROM authorized_accounts",
            Column::ConnectorSecrets => "SELECT id, secret_ct FROM connectors WHERE secret_ct IS NOT NULL",
            Column::PendingFlowVerifiers => "SELECT state, pkce_verifier_ct FROM oauth_pending",
            Column::PendingRevocations => "SELECT id, token_ct FROM pending_revocations",
            Column::IdempotentAnswers => "SELECT id, answer_ct FROM api_idempotency WHERE answer_ct IS NOT NULL",
            Column::WebhookSecrets => "SELECT id, secret_ct FROM webhook_endpoints",
        };
        if matches!(column, Column::KeyCheck | Column::PendingFlowVerifiers) {
            let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(sql).fetch_all(&db.pool).await.unwrap();
            out.extend(rows.into_iter().map(|(k, ct)| (column, RowKey::Name(k), ct)));
        } else {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(sql).fetch_all(&db.pool).await.unwrap();
            out.extend(rows.into_iter().map(|(k, ct)| (column, RowKey::Id(k), ct)));
        }
    }
    out
}

/// Every stored value decrypted with `cipher` (panics on any it cannot read).
async fn plaintexts(db: &Db, cipher: &Cipher) -> Vec<(Column, RowKey, Vec<u8>)> {
    stored(db)
        .await
        .into_iter()
        .map(|(column, key, ct)| {
            let plain = cipher
                .decrypt(&column.aad(&key), &ct)
                .unwrap_or_else(|e| panic!("{column:?} {key:?} (v{}): {e}", ct[0]));
            (column, key, plain)
        })
        .collect()
}

/// An authorized account nothing uses, encrypted like the real ones (placeholder first, then
/// the value bound to the new row's id).
async fn insert_account(db: &Db, cipher: &Cipher, n: usize) -> i64 {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO authorized_accounts (workspace_id, connector_id, config_key, owner_user_id, name, credentials_ct, authorized_at)
         VALUES (1, (SELECT MIN(id) FROM connectors), 'bulk', 2, $1, $2, 0) RETURNING id",
    )
    .bind(format!("Bulk {n}"))
    .bind(Vec::<u8>::new())
    .fetch_one(&db.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE authorized_accounts SET credentials_ct = $1 WHERE id = $2")
        .bind(cipher.encrypt(&Column::AccountCredentials.aad(&RowKey::Id(id)), format!("bulk-{n}").as_bytes()))
        .bind(id)
        .execute(&db.pool)
        .await
        .unwrap();
    id
}

async fn invoke(app: &TestApp, c: &reqwest::Client, application: &str, conn: &str, url: &str) -> InvokeResponse {
    let res = app
        .call(
            c,
            "invoke_url",
            &[
                ("request[app]", application),
                ("request[connection]", conn),
                ("request[method]", "GET"),
                ("request[url]", url),
            ],
        )
        .await;
    let status = res.status();
    let body = res.text().await.unwrap();
    assert!(status.is_success(), "invoke {conn}: {status}: {body}");
    let answer: InvokeResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(answer.status, 200, "{conn}: {}", answer.body);
    answer
}

fn keys_setting(entries: &[(u8, &str)]) -> Vec<String> {
    entries.iter().map(|(v, k)| format!("v{v}:{k}")).collect()
}

#[tokio::test]
async fn rotation_re_encrypts_every_value_while_serving() {
    // Access tokens live 4 s, so calls during and after the rotation refresh them too.
    let sandbox = Sandbox::start(&[("SANDBOX_ACCESS_TOKEN_TTL", "4")]).await;
    let (mut settings, dir) = common::settings().await;
    settings.sandbox_url = sandbox.url.clone();
    settings.outbound_allowlist = vec![sandbox.url.trim_start_matches("http://").to_string()];
    let k1 = settings.encryption_key.clone().expect("a key");
    let k2 = Cipher::generate_key();

    // Before: one key, configured the way it always was (version 1).
    let app1 = common::spawn_with(settings.clone(), dir).await;
    let db = app1.state.db.clone();
    let admin = app1.signed_in("admin@demo.test").await;
    let weather_url = sandbox.endpoint("/api/weather?city=Chennai");
    let crm_url = sandbox.endpoint("/api/crm/Deals?per_page=1");
    // An API-key account.
    app1.authorize(&admin, "weather", &fixtures::api_key_auth("Key", "sandbox-weather-key")).await;
    // An OAuth account with a refresh token.
    let (_, refresh) = app1.connect_oauth(&admin, "sales_crm").await;
    assert!(refresh.is_some());
    // A custom connector with a client secret.
    let custom = app1.custom_connector(&admin, &fixtures::sandbox_crm("Rotated CRM", &sandbox)).await;
    let custom_id = custom["id"].as_i64().unwrap();
    // A pending OAuth flow (authorization started, never finished).
    let out = app1.authorize(&admin, "sales_crm", &fixtures::oauth("Pending")).await;
    assert!(matches!(out, AuthorizeOutcome::Redirect { .. }), "{out:?}");
    // A pending revocation, due tomorrow.
    let rev_id: i64 = sqlx::query_scalar(
        "INSERT INTO pending_revocations (connector_id, workspace_id, token_ct, token_type_hint, next_attempt_at)
         VALUES ($1, 1, $2, 'refresh_token', $3) RETURNING id",
    )
    .bind(custom_id)
    .bind(Vec::<u8>::new())
    .bind(app::ssr::ids::now_ms() + 86_400_000)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE pending_revocations SET token_ct = $1 WHERE id = $2")
        .bind(app1.state.cipher.encrypt(&Column::PendingRevocations.aad(&RowKey::Id(rev_id)), b"queued-refresh-token"))
        .bind(rev_id)
        .execute(&db.pool)
        .await
        .unwrap();
    // An API answer kept for Idempotency-Key retries (it holds a connect-session token).
    let key: serde_json::Value =
        app1.json(&admin, "create_api_key", &[("name", "Rotation"), ("scopes", "connect_sessions")]).await;
    let res = common::http()
        .post(app1.url("/v1/connect-sessions"))
        .bearer_auth(key["secret"].as_str().unwrap())
        .header("Idempotency-Key", "rotation")
        .json(&serde_json::json!({"end_user": {"id": "r1", "display_name": "R"}, "application": "sales_hub"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // A webhook endpoint's signing secret.
    let args = [("url", "https://hooks.example/rotation"), ("description", ""), ("events", "sync.failed")];
    let _: serde_json::Value = app1.json(&admin, "create_webhook_endpoint", &args).await;
    // Enough accounts that the pass takes several batches.
    for n in 0..(2 * keys::BATCH_SIZE as usize + 30) {
        insert_account(&db, &app1.state.cipher, n).await;
    }
    let before = plaintexts(&db, &app1.state.cipher).await;
    let columns: std::collections::BTreeSet<Column> = before.iter().map(|(c, _, _)| *c).collect();
    assert_eq!(columns.len(), Column::ALL.len(), "a value in every encrypted column: {columns:?}");
    assert!(stored(&db).await.iter().all(|(_, _, ct)| ct[0] == 1), "everything written under v1");

    // Restart with v1 and v2, v2 primary: requests keep succeeding while the pass runs.
    let mut both = settings.clone();
    both.encryption_key = None;
    both.encryption_keys = keys_setting(&[(1, &k1), (2, &k2)]);
    both.encryption_key_version = 2;
    let app2 = common::spawn_with(both, tempfile::tempdir().unwrap()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut calls = 0;
    loop {
        assert!(invoke(&app2, &admin, "field_service", "weather", &weather_url).await.body.contains("Chennai"));
        invoke(&app2, &admin, "sales_hub", "sales_crm", &crm_url).await;
        calls += 2;
        let left = keys::count_by_version(&db).await.unwrap().iter().filter(|c| c.version != 2).count();
        if left == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the re-encryption pass did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(calls >= 2);

    // Every value now starts with 2 and reads as before under v2 alone, with its own AAD.
    let v2_only = Cipher::from_base64(2, &k2).unwrap();
    assert!(stored(&db).await.iter().all(|(_, _, ct)| ct[0] == 2));
    let after = plaintexts(&db, &v2_only).await;
    for (column, key, plain) in &before {
        // Refreshes rewrote the OAuth account with new tokens; everything else is unchanged.
        if *column == Column::AccountCredentials && plain.windows(13).any(|w| w == b"refresh_token") {
            continue;
        }
        let now = after.iter().find(|(c, k, _)| c == column && k == key).map(|(_, _, p)| p);
        assert_eq!(now, Some(plain), "{column:?} {key:?}");
    }
    let status = keys::KeyStatus::load(&db, Some(&app2.state.cipher)).await.unwrap();
    assert_eq!(status.total(1), 0);
    assert_eq!(status.droppable(), vec![1]);

    // v1 removed: the server starts with only v2 (the single-key settings) and still works,
    // including an OAuth refresh of the re-encrypted refresh token.
    let mut only_v2 = settings.clone();
    only_v2.encryption_key = Some(k2.clone());
    only_v2.encryption_key_version = 2;
    let app3 = common::spawn_with(only_v2, tempfile::tempdir().unwrap()).await;
    tokio::time::sleep(Duration::from_millis(4300)).await;
    assert!(invoke(&app3, &admin, "field_service", "weather", &weather_url).await.body.contains("Chennai"));
    invoke(&app3, &admin, "sales_hub", "sales_crm", &crm_url).await;
    let connector = app::connectors::ssr::load(&app3.state, 1, custom_id).await.unwrap();
    assert_eq!(connector.client_secret.as_deref(), Some("crm-connector-secret"));
    assert!(stored(&db).await.iter().all(|(_, _, ct)| ct[0] == 2), "new writes use v2");
}

#[tokio::test]
async fn start_up_refuses_to_drop_a_key_values_still_need() {
    let (mut settings, _dir) = common::settings().await;
    let k1 = settings.encryption_key.clone().expect("a key");
    let k2 = Cipher::generate_key();
    let built = server::build(settings.clone()).await.unwrap();
    let db = built.state.db.clone();
    insert_account(&db, &built.state.cipher, 0).await;
    insert_account(&db, &built.state.cipher, 1).await;

    // Only v2, as a single key or as a list: refused, naming v1 and what needs it.
    settings.encryption_key = Some(k2.clone());
    settings.encryption_key_version = 2;
    let err = format!("{:#}", server::build(settings.clone()).await.err().expect("v1 is still needed"));
    assert!(err.contains("v1 (") && err.contains("authorized_accounts: 2") && err.contains("server_facts: 1"), "{err}");
    assert!(err.contains("refusing to start") && !err.contains(&k1) && !err.contains(&k2), "{err}");
    settings.encryption_key = None;
    settings.encryption_keys = keys_setting(&[(2, &k2)]);
    let err = format!("{:#}", server::build(settings.clone()).await.err().expect("v1 is still needed"));
    assert!(err.contains("v1 (") && err.contains("authorized_accounts: 2"), "{err}");

    // The primary must be one of the keys.
    settings.encryption_keys = keys_setting(&[(1, &k1), (2, &k2)]);
    settings.encryption_key_version = 3;
    let err = format!("{:#}", server::build(settings.clone()).await.err().expect("no v3"));
    assert!(err.contains("v3") && err.contains("v1, v2"), "{err}");
    // A wrong key under an old version is caught at start-up, not when its rows are read.
    settings.encryption_keys = keys_setting(&[(1, &Cipher::generate_key()), (2, &k2)]);
    settings.encryption_key_version = 2;
    let err = format!("{:#}", server::build(settings.clone()).await.err().expect("wrong v1"));
    assert!(err.contains("key v1 cannot read") && err.contains("refusing to start"), "{err}");
    // One key setting or the other, not both.
    settings.encryption_key = Some(k2.clone());
    settings.encryption_keys = keys_setting(&[(1, &k1), (2, &k2)]);
    let err = format!("{:#}", server::build(settings.clone()).await.err().expect("ambiguous"));
    assert!(err.contains("not both"), "{err}");

    // Both keys, from a key file with comments: starts.
    settings.encryption_key = None;
    settings.encryption_keys = Vec::new();
    let file = settings.data_dir.join("keys.txt");
    std::fs::write(&file, format!("# old key, drop when `server keys status` shows 0\nv1:{k1}\n\nv2:{k2}\n")).unwrap();
    settings.encryption_keys_file = Some(file);
    let rotating = server::build(settings.clone()).await.expect("v1 and v2 configured");
    // Once the pass moved everything to v2, v1 may go.
    let pass = keys::reencrypt_all(&db, &rotating.state.cipher, keys::BATCH_SIZE).await.unwrap();
    assert!(pass.rewritten >= 3 && pass.failed == 0, "{pass:?}");
    settings.encryption_keys_file = None;
    settings.encryption_keys = keys_setting(&[(2, &k2)]);
    server::build(settings).await.expect("nothing needs v1 any more");
}

/// Runs the real `server` binary with `args`, the test database and the given keys.
async fn run_server(app_settings: &app::ssr::settings::Settings, keys: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .current_dir(&app_settings.data_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", app_settings.database_url())
        .env("CONNECTIONS_ENCRYPTION_KEYS", keys)
        .env("CONNECTIONS_ENCRYPTION_KEY_VERSION", "2")
        .args(args)
        .output()
        .await
        .expect("run the server binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "server {args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test]
async fn keys_status_counts_values_per_version_and_replicas_share_the_pass() {
    let (settings, _dir) = common::settings().await;
    let k1 = settings.encryption_key.clone().expect("a key");
    let k2 = Cipher::generate_key();
    let built = server::build(settings.clone()).await.unwrap();
    let db = built.state.db.clone();
    for n in 0..(keys::BATCH_SIZE as usize + 5) {
        insert_account(&db, &built.state.cipher, n).await;
    }
    let key_list = format!("v1:{k1},v2:{k2}");

    let report = run_server(&settings, &key_list, &["keys", "status"]).await;
    let line = |prefix: &str| {
        report
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{report}"))
            .to_string()
    };
    let accounts: Vec<String> =
        line("authorized_accounts.credentials_ct").split_whitespace().map(String::from).collect();
    assert_eq!(accounts[1..], ["105".to_string(), "0".to_string()], "{report}");
    let facts: Vec<String> = line("server_facts.value").split_whitespace().map(String::from).collect();
    assert_eq!(facts[1..], ["1".to_string(), "0".to_string()], "{report}");
    assert!(line("v1:").contains("still need it"), "{report}");
    assert!(line("v2:").contains("primary"), "{report}");
    assert_eq!(line("May be dropped now:"), "May be dropped now: none", "{report}");
    assert!(!report.contains(&k1) && !report.contains(&k2));

    // Two replicas' passes at once: every value is rewritten exactly once.
    let to_rewrite: i64 = keys::count_by_version(&db).await.unwrap().iter().map(|c| c.rows).sum();
    let cipher = Cipher::from_entries(2, &keys_setting(&[(1, &k1), (2, &k2)])).unwrap();
    let (a, b) = tokio::join!(keys::reencrypt_all(&db, &cipher, 10), keys::reencrypt_all(&db, &cipher, 10));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.rewritten + b.rewritten) as i64, to_rewrite, "{a:?} {b:?}");
    assert_eq!(a.failed + b.failed, 0);

    let report = run_server(&settings, &key_list, &["keys", "status"]).await;
    assert!(report.contains("v1: no values left: may be dropped"), "{report}");
    assert!(report.contains("May be dropped now: v1"), "{report}");

    // The settings keep working without a subcommand, and --help names both.
    let help = run_server(&settings, &key_list, &["--help"]).await;
    assert!(help.contains("keys") && help.contains("--encryption-keys") && help.contains("--listen"), "{help}");
}
