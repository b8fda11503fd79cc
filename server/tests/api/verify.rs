//! Verified credentials (issue 15): new API keys and basic credentials are checked with the
//! connector's test request through the guarded client before anything is saved; a service that
//! refuses them is answered with its own reason, and a connector without a test request saves
//! them marked "not verified".

use crate::common::{self, fixtures, sandbox::Sandbox};
use app::authorizations::AuthorizeOutcome;
use app::error::AppError;

#[tokio::test]
async fn credentials_the_service_refuses_are_not_saved() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;

    // A wrong API key: refused with the service's reason, nothing stored, still not connected.
    let (status, e) = app.authorize_fails(&admin, "weather", &fixtures::api_key_auth("Ops", "wrong-key")).await;
    assert_eq!(status, 400);
    assert!(
        matches!(&e, AppError::Invalid { field, message } if field == "api_key"
            && message.contains("refused these credentials") && message.contains("Invalid API key")),
        "{e:?}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0);

    // Wrong basic credentials: the same, on the password.
    let wrong = fixtures::basic_auth("Builder", &["Production"], "builder@sandbox.test", "not-the-token");
    let (_, e) = app.authorize_fails(&admin, "issue_tracker", &wrong).await;
    assert!(
        matches!(&e, AppError::Invalid { field, message } if field == "password"
        && message.contains("Basic authentication failed")),
        "{e:?}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0);

    // The right ones are verified.
    let out = app.authorize(&admin, "weather", &fixtures::api_key_auth("Ops", "sandbox-weather-key")).await;
    assert_eq!(out, AuthorizeOutcome::Authorized { account_name: "Ops".into(), verified: true });

    // A custom connector without a test request saves the key unverified; with one, it checks.
    let base = sandbox.url.clone();
    let unchecked =
        app.custom_connection(&admin, &fixtures::api_key("Plain Weather", "X-Api-Key", &base), "Plain", &[]).await;
    let out = app.authorize(&admin, &unchecked, &fixtures::api_key_auth("Any", "anything")).await;
    assert_eq!(out, AuthorizeOutcome::Authorized { account_name: "Any".into(), verified: false });
    let checked_input = app::connectors::CustomConnectorInput {
        test_url: "/api/weather?city=Pune".into(),
        ..fixtures::api_key("Checked Weather", "X-Api-Key", &base)
    };
    let checked = app.custom_connection(&admin, &checked_input, "Checked", &[]).await;
    let (status, _) = app.authorize_fails(&admin, &checked, &fixtures::api_key_auth("Bad", "wrong-key")).await;
    assert_eq!(status, 400);
    let out = app.authorize(&admin, &checked, &fixtures::api_key_auth("Good", "sandbox-weather-key")).await;
    assert_eq!(out, AuthorizeOutcome::Authorized { account_name: "Good".into(), verified: true });

    // The test request is a path under the API base: credentials go nowhere else.
    for bad in ["https://elsewhere.example/me", "//elsewhere.example/me", "me"] {
        let input = app::connectors::CustomConnectorInput {
            test_url: bad.into(),
            ..fixtures::api_key("Elsewhere", "X-Api-Key", &base)
        };
        let form = fixtures::form(&input);
        let (status, e) = app.fails(&admin, "create_custom_connector", &common::pairs(&form)).await;
        assert_eq!((status, e.field()), (400, Some("test_url")), "{bad}: {e:?}");
    }
}

#[tokio::test]
async fn an_unreachable_service_saves_nothing() {
    // The built-in connectors point at a port nothing listens on.
    let app = common::spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let (status, e) = app.authorize_fails(&admin, "weather", &fixtures::api_key_auth("Ops", "key")).await;
    assert!(status >= 400, "{e:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0);
}
