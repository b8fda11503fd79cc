//! The embeddable panel: frame-ancestors per application allowlist, everything else unframeable,
//! the allowlist only builders change, the snippet and the example page.

use crate::common;

use common::spawn;
use serde_json::Value;

async fn frame_headers(app: &common::TestApp, path: &str) -> (String, Option<String>) {
    let res = app.client().get(app.url(path)).send().await.unwrap();
    let h = res.headers();
    (
        h.get("content-security-policy").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default(),
        h.get("x-frame-options").map(|v| v.to_str().unwrap().to_string()),
    )
}

#[tokio::test]
async fn frame_ancestors_follow_each_applications_allowlist() {
    let app = spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let user = app.signed_in("user@demo.test").await;

    // Nothing allowlisted yet: only the platform itself may frame the panel.
    assert_eq!(frame_headers(&app, "/embed/sales_hub").await, ("frame-ancestors 'self'".into(), None));

    let saved: Value = app
        .json(
            &admin,
            "set_embed_origins",
            &[
                ("app", "sales_hub"),
                ("origins", "https://Partner.example, http://localhost:8080\nhttps://partner.example"),
            ],
        )
        .await;
    assert_eq!(saved["origins"], serde_json::json!(["https://partner.example", "http://localhost:8080"]));
    assert_eq!(
        frame_headers(&app, "/embed/sales_hub").await,
        ("frame-ancestors 'self' https://partner.example http://localhost:8080".into(), None)
    );
    assert_eq!(frame_headers(&app, "/embed/sales_hub?component=deal_intake").await.1, None);
    // Another application keeps its own (empty) list; unknown applications get none.
    assert_eq!(frame_headers(&app, "/embed/field_service").await.0, "frame-ancestors 'self'");
    assert_eq!(frame_headers(&app, "/embed/nope").await.0, "frame-ancestors 'self'");
    // Every other page and answer refuses to be framed.
    for path in ["/", "/login", "/app/sales_hub", "/app/sales_hub/edit", "/embed-example", "/healthz", "/embedded"] {
        assert_eq!(frame_headers(&app, path).await, ("frame-ancestors 'none'".into(), Some("DENY".into())), "{path}");
    }

    // Anyone who may open the application reads the list; only builders change it.
    let read: Value = app.json(&user, "embed_settings", &[("app", "sales_hub")]).await;
    assert_eq!(read["origins"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        read["snippet"],
        format!(r#"<script src="{}/embed.js" data-app="sales_hub"></script>"#, app.url("")),
        "the snippet loads the script from this server's public address"
    );
    let (status, _) =
        app.fails(&user, "set_embed_origins", &[("app", "sales_hub"), ("origins", "https://evil.example")]).await;
    assert_eq!(status, 403);
    assert_eq!(
        frame_headers(&app, "/embed/sales_hub").await.0,
        "frame-ancestors 'self' https://partner.example http://localhost:8080"
    );
    // Anything that is not a plain origin is refused, so nothing can be smuggled into the header.
    for bad in ["https://a.example; script-src *", "*", "https://a.example/path", "'unsafe-inline'"] {
        let (status, e) = app.fails(&admin, "set_embed_origins", &[("app", "sales_hub"), ("origins", bad)]).await;
        assert_eq!((status, e.field()), (400, Some("origins")), "{bad}");
    }
    let (status, _) = app.fails(&admin, "set_embed_origins", &[("app", "nope"), ("origins", "")]).await;
    assert_eq!(status, 404);
    let (status, _) = app.fails(&app.client(), "embed_settings", &[("app", "sales_hub")]).await;
    assert_eq!(status, 401);

    // Clearing the list leaves only the platform.
    app.json::<Value>(&admin, "set_embed_origins", &[("app", "sales_hub"), ("origins", "")]).await;
    assert_eq!(frame_headers(&app, "/embed/sales_hub").await.0, "frame-ancestors 'self'");
}

#[tokio::test]
async fn snippet_and_example_page() {
    let app = spawn().await;
    let res = app.client().get(app.url("/embed.js")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(res.text().await.unwrap().contains("createElement('iframe')"));
    let page = app.client().get(app.url("/embed-example")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/embed.js") && page.contains("aria-label=\"Events\""), "{page}");
}

/// The session cookie an embedded panel on another site can keep: on a loopback (or HTTPS)
/// server it is `SameSite=None; Secure; Partitioned` (CHIPS), HttpOnly as ever.
#[tokio::test]
async fn the_session_cookie_is_partitioned_for_panels_embedded_on_other_sites() {
    let app = spawn().await;
    let res = common::http()
        .post(app.url("/api/login"))
        .form(&[("email", "admin@demo.test"), ("password", app::ssr::seed::DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let session = cookies.iter().find(|c| c.starts_with("cm_session=")).expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=None", "Secure", "Partitioned"] {
        assert!(session.split("; ").any(|a| a == attribute), "{attribute} missing: {session}");
    }
    assert_eq!(session.matches("Partitioned").count(), 1, "{session}");
}

/// With cookies sent from other sites, the server refuses state-changing requests a browser
/// marks as coming from another origin or site: a page elsewhere cannot sign someone in, or
/// change an allowlist with the visitor's session. The panel's own requests (this origin) pass.
#[tokio::test]
async fn state_changing_requests_from_other_sites_are_refused() {
    let app = spawn().await;
    let admin = app.signed_in("admin@demo.test").await;
    let own = app.url("");
    let set = |origin: Option<&str>, site: Option<&str>| {
        let mut req = admin
            .post(app.url("/api/set_embed_origins"))
            .form(&[("app", "sales_hub"), ("origins", "https://attacker.example")]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(s) = site {
            req = req.header("sec-fetch-site", s);
        }
        req.send()
    };
    for (origin, site) in [
        (Some("https://attacker.example"), None),
        (Some("null"), None),
        (Some("https://attacker.example"), Some("cross-site")),
        (None, Some("cross-site")),
        (Some("http://localhost:1"), Some("same-site")),
    ] {
        let res = set(origin, site).await.unwrap();
        assert_eq!(res.status(), 403, "{origin:?} {site:?}");
        assert_eq!(res.text().await.unwrap(), "Cross-site request refused.");
    }
    let read: Value = app.json(&admin, "embed_settings", &[("app", "sales_hub")]).await;
    assert_eq!(read["origins"], serde_json::json!([]), "nothing changed");
    // The same request from this origin, as the panel and the builder send it.
    let res = set(Some(&own), Some("same-origin")).await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let read: Value = app.json(&admin, "embed_settings", &[("app", "sales_hub")]).await;
    assert_eq!(read["origins"], serde_json::json!(["https://attacker.example"]));
    // Reading stays possible from anywhere (the embed route itself is framed by other sites).
    let res = admin.get(app.url("/embed/sales_hub")).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Signing in from another site is refused too (no login CSRF).
    let res = app
        .client()
        .post(app.url("/api/login"))
        .header("origin", "https://attacker.example")
        .form(&[("email", "admin@demo.test"), ("password", app::ssr::seed::DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("set-cookie").is_none());
}
