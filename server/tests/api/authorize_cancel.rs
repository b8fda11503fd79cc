//! Ending an OAuth2 flow from the dialog (R16.5): Cancel (or a closed popup) ends it at the
//! server, so a consent given afterwards is refused; only the person who started it may; the
//! popup's "ended" page says why.

use crate::authorize::{land, start, status};
use crate::common;

use app::authorizations::FlowStatus;
use common::sandbox::{authorize_in_browser, Sandbox};
use common::spawn_with_sandbox;

#[tokio::test]
async fn a_cancelled_flow_refuses_a_late_consent() {
    let sandbox = Sandbox::start(&[]).await;
    let app = spawn_with_sandbox(&sandbox).await;
    let admin = app.signed_in("admin@demo.test").await;
    let id = app.connection_id("sales_crm").await;

    let (flow, url) = start(&app, &admin, id, "Cancelled one", &[]).await;
    // Someone else cannot cancel it (it is not theirs: nothing to find).
    let other = app.signed_in("superadmin@demo.test").await;
    assert_eq!(app.fails(&other, "cancel_authorization", &[("flow", &flow)]).await.0, 404);
    assert!(matches!(status(&app, &admin, &flow).await, FlowStatus::Pending { .. }));

    let cancelled: FlowStatus = app.json(&admin, "cancel_authorization", &[("flow", &flow)]).await;
    assert_eq!(cancelled, FlowStatus::Cancelled);
    assert_eq!(status(&app, &admin, &flow).await, FlowStatus::Cancelled);
    // The person consents in the window anyway: refused, nothing stored.
    let consent = authorize_in_browser(&url, "alice", "alice-password", true).await;
    let page = land(&admin, &consent.callback_url).await;
    assert!(page.contains("not valid or was already used"), "{page}");
    assert_eq!(status(&app, &admin, &flow).await, FlowStatus::Cancelled);
    assert_eq!(app.count("SELECT COUNT(*) FROM authorized_accounts").await, 0, "nothing was stored");

    // A flow that already ended keeps its outcome when cancelled afterwards.
    let again: FlowStatus = app.json(&admin, "cancel_authorization", &[("flow", &flow)]).await;
    assert_eq!(again, FlowStatus::Cancelled);
}

#[tokio::test]
async fn the_ended_page_says_why_and_closes_itself() {
    let app = common::spawn().await;
    let client = common::http();
    for (why, says) in [("expired", "window expired"), ("cancelled", "cancelled")] {
        let res = client.get(app.url(&format!("/oauth/ended?why={why}"))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let page = res.text().await.unwrap();
        assert!(page.contains(&format!("data-outcome=\"{why}\"")), "{page}");
        assert!(page.contains(says), "{page}");
        assert!(page.contains("window.close()"), "{page}");
    }
    let res = client.get(app.url("/oauth/ended?why=<script>")).send().await.unwrap();
    assert_eq!(res.status(), 400, "anything else is refused");
}
