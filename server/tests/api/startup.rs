//! Start-up rules: migrations on both backends, the demo seed, and the encryption key check.

use crate::common;

use app::ssr::crypto::Cipher;

#[tokio::test]
async fn migrations_and_seed_on_this_backend() {
    let (settings, _dir) = common::settings().await;
    let built = server::build(settings.clone()).await.unwrap();
    let db = &built.state.db;
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db.pool).await.unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM users").await, 4);
    assert_eq!(count("SELECT COUNT(*) FROM environments").await, 3);
    assert_eq!(count("SELECT COUNT(*) FROM connections").await, 6);
    assert_eq!(count("SELECT COUNT(DISTINCT conn_type) FROM connections").await, 3);
    assert_eq!(count("SELECT COUNT(DISTINCT kind) FROM components").await, 8, "every component kind is seeded");

    // Seeding twice does nothing; migrations are idempotent.
    assert!(!app::ssr::seed::seed_demo(db).await.unwrap());
    db.migrate().await.unwrap();

    // Constraint violations are recognisable (mapped to domain conflicts by callers).
    let dup = sqlx::query(
        "INSERT INTO connections (workspace_id, connector_id, display_name, link_name, conn_type, created_at)
         SELECT workspace_id, connector_id, 'Dup', link_name, conn_type, 0 FROM connections WHERE link_name = 'sales_crm'",
    )
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert!(app::ssr::db::is_unique_violation(&dup), "{dup}");
    let bad_type =
        sqlx::query("UPDATE connections SET conn_type = 'root' WHERE link_name = 'sales_crm'").execute(&db.pool).await;
    assert!(bad_type.is_err(), "CHECK constraint on connection types");
}

#[tokio::test]
async fn refuses_to_start_with_another_key() {
    let (mut settings, _dir) = common::settings().await;
    server::build(settings.clone()).await.unwrap();
    server::build(settings.clone()).await.expect("same key starts again");
    settings.encryption_key = Some(Cipher::generate_key());
    let err = server::build(settings.clone()).await.err().expect("must refuse a different key");
    assert!(format!("{err:#}").contains("refusing to start"), "{err:#}");
    settings.encryption_key = None;
    let err = server::build(settings).await.err().expect("must refuse a missing key");
    assert!(format!("{err:#}").contains("no encryption key"), "{err:#}");
}

#[tokio::test]
async fn demo_key_is_generated_once_into_the_data_directory() {
    let (mut settings, dir) = common::settings().await;
    settings.encryption_key = None;
    settings.generate_key = true;
    server::build(settings.clone()).await.unwrap();
    let key = std::fs::read_to_string(dir.path().join("encryption.key")).unwrap();
    server::build(settings).await.unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("encryption.key")).unwrap(), key);
}
