//! The real router on port 0 with a fresh database: sign-in, sessions, roles, bad input, health.

use crate::common;

use app::error::AppError;
use common::spawn;
use serde_json::Value;

async fn error_of(res: reqwest::Response) -> (u16, AppError) {
    let status = res.status().as_u16();
    let body = res.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("not an AppError: {body}")))
}

#[tokio::test]
async fn health_and_metrics() {
    let app = spawn().await;
    let c = app.client();
    let res = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    let metrics = c.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
}

#[tokio::test]
async fn sign_in_sessions_and_sign_out() {
    let app = spawn().await;
    let c = app.client();

    // Not signed in: no user.
    let res = app.call(&c, "current_user", &[]).await;
    assert_eq!(res.json::<Option<Value>>().await.unwrap(), None);

    // Wrong password and unknown user get the same answer.
    for (email, password) in [("admin@demo.test", "wrong"), ("nobody@demo.test", "demo-password")] {
        let (status, err) = error_of(app.call(&c, "login", &[("email", email), ("password", password)]).await).await;
        assert_eq!(status, 400);
        assert_eq!(err.to_string(), "Wrong email or password.");
    }
    let (status, err) = error_of(app.call(&c, "login", &[("email", "not-an-email"), ("password", "x")]).await).await;
    assert_eq!((status, err.field()), (400, Some("email")));

    // A session cookie set before signing in is replaced by a new id on sign-in.
    let res = app.call(&c, "login", &[("email", "Admin@Demo.Test"), ("password", "demo-password")]).await;
    assert_eq!(res.status(), 200);
    let cookie = res.headers().get("set-cookie").expect("session cookie").to_str().unwrap().to_string();
    assert!(cookie.starts_with("cm_session="), "{cookie}");
    // HttpOnly always; SameSite=None; Secure; Partitioned on this loopback server (see embed.rs).
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"), "{cookie}");
    let user: Value = app.call(&c, "current_user", &[]).await.json().await.unwrap();
    assert_eq!(user["email"], "admin@demo.test");
    assert_eq!(user["role"], "Admin");

    // Signing out ends the server session: the old cookie no longer works.
    let old_cookie = cookie.split(';').next().unwrap().to_string();
    assert_eq!(app.call(&c, "logout", &[]).await.status(), 200);
    let replay = app.client().post(app.url("/api/current_user")).header("cookie", old_cookie).send().await.unwrap();
    assert_eq!(replay.json::<Option<Value>>().await.unwrap(), None);
    assert_eq!(app.count("SELECT COUNT(*) FROM operations WHERE kind = 'signed_in'").await, 1);
}

/// The top bar's Sign out is a plain HTML form (no `ActionForm`): the browser's own post, before
/// or after hydration, is answered with a redirect to the sign-in page, and the session is over.
#[tokio::test]
async fn sign_out_form_post_redirects_to_sign_in_and_ends_the_session() {
    let app = spawn().await;
    let (c, cookie) = app.signed_in_at(&app.url(""), "admin@demo.test").await;
    let res = c
        .post(app.url("/api/logout"))
        .header("accept", "text/html,application/xhtml+xml")
        .header("referer", app.url("/microservices"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers().get("location").unwrap(), "/login");
    let replay = app.client().post(app.url("/api/current_user")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(replay.json::<Option<Value>>().await.unwrap(), None);
    assert_eq!(app.call(&c, "current_user", &[]).await.json::<Option<Value>>().await.unwrap(), None);
}

/// Server-function errors carry their own status (R18.6),
/// while a sign-in form posted before hydration (an HTML form, `Accept: text/html`) is sent back
/// to the form with the error in the URL rather than left on a bare error status.
#[tokio::test]
async fn failed_form_posts_go_back_to_the_form_and_calls_get_their_status() {
    let app = spawn().await;
    let c = app.client();
    let form = [("email", "admin@demo.test"), ("password", "wrong"), ("next", "/")];
    let res = c
        .post(app.url("/api/login"))
        .header("accept", "text/html,application/xhtml+xml")
        .header("referer", app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers().get("location").unwrap().to_str().unwrap().to_string();
    assert!(location.starts_with(&app.url("/login")) && location.contains("__err"), "{location}");

    let (status, err) = error_of(app.call(&c, "login", &form).await).await;
    assert_eq!((status, err.to_string().as_str()), (400, "Wrong email or password."));
    // An argument the server function cannot decode is the caller's fault, answered 400 too.
    let (status, err) = error_of(app.call(&c, "login", &[("email", "admin@demo.test")]).await).await;
    assert_eq!(status, 400, "{err:?}");
}

#[tokio::test]
async fn open_redirects_are_refused_after_sign_in() {
    let app = spawn().await;
    let c = app.client();
    for (next, expected) in
        [("/app/sales_hub", "/app/sales_hub"), ("//evil.example", "/"), ("https://evil.example", "/")]
    {
        let res =
            app.call(&c, "login", &[("email", "user@demo.test"), ("password", "demo-password"), ("next", next)]).await;
        assert_eq!(res.headers().get("location").unwrap(), expected);
    }
}

#[tokio::test]
async fn plain_users_cannot_call_builder_functions() {
    let app = spawn().await;
    let user = app.signed_in("user@demo.test").await;
    let (status, err) = error_of(app.call(&user, "workspace_connections", &[]).await).await;
    assert_eq!(status, 403);
    assert!(matches!(err, AppError::Forbidden(_)));
    let (status, _) = error_of(app.call(&user, "list_operations", &[]).await).await;
    assert_eq!(status, 403);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM operations WHERE kind = 'access_denied'").await,
        2,
        "refusals are logged"
    );

    let dev = app.signed_in("developer@demo.test").await;
    let res = app.call(&dev, "workspace_connections", &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Vec<Value>>().await.unwrap().len(),
        6,
        "the five demo connections and the Checkout payment gateway"
    );

    // Not signed in at all: 401.
    let (status, err) = error_of(app.call(&app.client(), "workspace_connections", &[]).await).await;
    assert_eq!((status, err), (401, AppError::Unauthenticated));
}

#[tokio::test]
async fn connection_visibility_follows_the_role() {
    let app = spawn().await;
    let names = |v: Vec<Value>| {
        let mut n: Vec<String> = v
            .iter()
            .map(|c| format!("{}:{}", c["display_name"].as_str().unwrap(), c["conn_type"].as_str().unwrap()))
            .collect();
        n.sort();
        n
    };
    let args = [("app", "sales_hub"), ("environment", "Production")];
    let admin = app.signed_in("admin@demo.test").await;
    let all = names(app.call(&admin, "app_connections", &args).await.json().await.unwrap());
    assert_eq!(all, ["CRM System:System", "My CRM:LoggedInUser", "Sales CRM:Admin"]);

    let user = app.signed_in("user@demo.test").await;
    let mine = names(app.call(&user, "app_connections", &args).await.json().await.unwrap());
    assert_eq!(mine, ["My CRM:LoggedInUser"], "plain users see only logged-in-user connections");

    // A component the plain user has no permission for is not found for them.
    let (status, _) = error_of(
        app.call(
            &user,
            "app_connections",
            &[("app", "sales_hub"), ("component", "load_deals"), ("environment", "Production")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    // The builder's tab lists only the connections of the component being edited.
    let one = names(
        app.call(
            &admin,
            "app_connections",
            &[("app", "sales_hub"), ("component", "crm_deals"), ("environment", "Development")],
        )
        .await
        .json()
        .await
        .unwrap(),
    );
    assert_eq!(one, ["CRM System:System"]);
}

#[tokio::test]
async fn bad_request_bodies_get_clear_errors_and_write_nothing() {
    let app = spawn().await;
    let c = app.client();
    let before = app.count("SELECT COUNT(*) FROM operations").await;

    // Malformed arguments.
    let res = c
        .post(app.url("/api/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("unexpected=%ZZ&&=")
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(res).await;
    assert_eq!(status, 400, "{err:?}");
    assert!(matches!(err, AppError::BadRequest(_)), "{err:?}");

    // Over-long body.
    let huge = "x".repeat(200 * 1024);
    let res = app.call(&c, "login", &[("email", "admin@demo.test"), ("password", &huge)]).await;
    assert_eq!(res.status(), 413);

    // Over-long password within the limit: refused, not hashed.
    let long = "x".repeat(4000);
    let (status, _) = error_of(app.call(&c, "login", &[("email", "admin@demo.test"), ("password", &long)]).await).await;
    assert_eq!(status, 400);
    assert_eq!(app.count("SELECT COUNT(*) FROM operations").await, before, "nothing written");
    assert_eq!(app.call(&c, "current_user", &[]).await.json::<Option<Value>>().await.unwrap(), None);
}

#[tokio::test]
async fn pages_render_on_the_server() {
    let app = spawn().await;
    let c = app.client();
    let login = c.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("Sign in") && login.contains("/pkg/connections.js"), "{login}");

    let admin = app.signed_in("admin@demo.test").await;
    let live = admin.get(app.url("/app/sales_hub")).send().await.unwrap().text().await.unwrap();
    assert!(live.contains("Sales Hub") && live.contains("aria-label=\"Settings\""), "{live}");
    let edit = admin.get(app.url("/app/sales_hub/edit")).send().await.unwrap().text().await.unwrap();
    assert!(edit.contains("aria-label=\"Integrations\""), "{edit}");

    let user = app.signed_in("user@demo.test").await;
    let edit = user.get(app.url("/app/sales_hub/edit")).send().await.unwrap().text().await.unwrap();
    assert!(edit.contains("Only super admins, admins and developers can edit applications."));
}

/// Pages and server-function answers go out compressed (brotli, else gzip) when the browser
/// accepts it; the favicon exists.
#[tokio::test]
async fn responses_are_compressed_and_there_is_a_favicon() {
    let app = common::spawn().await;
    let client = common::http();
    for (accept, expected) in [("br", Some("br")), ("gzip", Some("gzip")), ("identity", None)] {
        let res = client.get(app.url("/login")).header("accept-encoding", accept).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let encoding = res.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(encoding.as_deref(), expected, "Accept-Encoding: {accept}");
    }
    let direct = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = direct.get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], "/favicon.svg");
}

/// While Leptos generates a router's page routes, it keeps every resource of the process from
/// loading (a process-wide flag, leptos-rs/leptos#4773): a page that another router of the same
/// process rendered meanwhile never finished (a test hung that way in CI). The routes are now
/// generated once per process, so building routers (replicas here) no longer stalls pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_finish_while_other_routers_are_built() {
    let app = std::sync::Arc::new(spawn().await);
    let admin = app.signed_in("admin@demo.test").await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let building = tokio::spawn({
        let (app, done) = (app.clone(), done.clone());
        async move {
            let mut built = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) && built < 40 {
                common::spawn_replica(&app).await;
                built += 1;
            }
        }
    });
    for _ in 0..60 {
        let page = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            admin.get(app.url("/operations")).send().await?.text().await
        })
        .await
        .expect("the Operations page finished within 10 s")
        .expect("page");
        assert!(page.contains("Operations"), "{page}");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    building.await.expect("building routers");
}
