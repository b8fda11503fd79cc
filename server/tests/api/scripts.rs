//! The script editor's server side: a workflow's steps as text, saved with the connections they
//! reference (so the panel lists what the script uses), and Test running one step for real.

use crate::common;

use app::scripts::{ScriptView, StepTest};
use common::fixtures::api_key_auth;
use common::sandbox::Sandbox;
use common::TestApp;

async fn references(app: &TestApp, component: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT k.link_name FROM component_connections cc JOIN components c ON c.id = cc.component_id
         JOIN connections k ON k.id = cc.connection_id WHERE c.link_name = $1 ORDER BY k.link_name",
    )
    .bind(component)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
}

async fn definition(app: &TestApp, component: &str) -> String {
    sqlx::query_scalar("SELECT definition FROM components WHERE link_name = $1")
        .bind(component)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn scripts_open_save_with_their_references_and_test_a_step() {
    let sandbox = Sandbox::start(&[]).await;
    let app = common::spawn_with_sandbox(&sandbox).await;
    let dev = app.signed_in("developer@demo.test").await;
    let admin = app.signed_in("admin@demo.test").await;
    let user = app.signed_in("user@demo.test").await;

    // A workflow opens as its steps, one per line.
    let s: ScriptView = app.json(&dev, "get_script", &[("app", "sales_hub"), ("component", "load_deals")]).await;
    assert_eq!(s.name, "Load Deals");
    assert_eq!(s.text, "Open deals: GET sales_crm {api_base}/api/crm/Deals?per_page=5\n");
    // Only builders, and only workflows and functions.
    let (status, _) = app.fails(&user, "get_script", &[("app", "sales_hub"), ("component", "load_deals")]).await;
    assert_eq!(status, 403);
    let (status, e) = app.fails(&dev, "get_script", &[("app", "sales_hub"), ("component", "pipeline")]).await;
    assert_eq!(status, 400, "{e}");
    let (status, _) = app.fails(&dev, "get_script", &[("app", "sales_hub"), ("component", "nothing")]).await;
    assert_eq!(status, 404);

    // Bad text and unknown connections are refused with the line; nothing is lost.
    let before = (definition(&app, "recent_charges").await, references(&app, "recent_charges").await);
    let save = |text: &'static str| {
        let (app, dev) = (&app, &dev);
        async move {
            app.call(dev, "save_script", &[("app", "field_service"), ("component", "recent_charges"), ("text", text)])
                .await
        }
    };
    let res = save("Weather: GET weather {api_base}/api/weather\nno colon").await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Line 2:"));
    let res = save("Weather: GET nope {api_base}/api/weather").await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("There is no connection 'nope'"));
    assert_eq!((definition(&app, "recent_charges").await, references(&app, "recent_charges").await), before);
    assert_eq!(before.1, ["checkout"]);

    // Saved: the steps, and the connections the script now uses (the panel follows).
    let text = "# the site's weather, then the charges\nWeather: GET weather {api_base}/api/weather?city=Chennai\nCharges: GET checkout {api_base}/api/payments/charges?limit=3\n";
    let res = app
        .call(&dev, "save_script", &[("app", "field_service"), ("component", "recent_charges"), ("text", text)])
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(references(&app, "recent_charges").await, ["checkout", "weather"]);
    let s: ScriptView =
        app.json(&dev, "get_script", &[("app", "field_service"), ("component", "recent_charges")]).await;
    assert_eq!(s.text.lines().count(), 2, "{}", s.text);
    let panel: Vec<serde_json::Value> = app
        .json(
            &dev,
            "app_connections",
            &[("app", "field_service"), ("component", "recent_charges"), ("environment", "Development")],
        )
        .await;
    let listed: Vec<&str> = panel.iter().map(|c| c["link_name"].as_str().unwrap()).collect();
    assert!(listed.contains(&"weather") && listed.contains(&"checkout"), "{listed:?}");

    // Test runs a step as the builder in Development: the authorization prompt first, then the
    // service's real answer.
    let test = |step: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            app.call(
                admin,
                "test_script_step",
                &[("app", "field_service"), ("component", "recent_charges"), ("text", text), ("step", step)],
            )
            .await
        }
    };
    // The prompt is an answer (200), not a failure the browser would log.
    let res = test("0").await;
    assert_eq!(res.status(), 200);
    let prompt: StepTest = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    let StepTest::AuthorizationRequired { connection, prompt, message } = prompt else {
        panic!("expected the authorization prompt, got {prompt:?}")
    };
    assert_eq!((connection.as_str(), prompt), ("weather", true));
    assert!(message.contains("not authorized yet"), "{message}");
    app.authorize(&admin, "weather", &api_key_auth("Key", "sandbox-weather-key")).await;
    let res = test("0").await;
    assert_eq!(res.status(), 200);
    let StepTest::Answered(out) = serde_json::from_str(&res.text().await.unwrap()).unwrap() else {
        panic!("expected the service's answer")
    };
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.body.contains("Chennai"), "{}", out.body);
    assert!(!out.headers.is_empty());
    assert_eq!(test("7").await.status(), 400);
}

#[tokio::test]
async fn the_builder_canvas_outlines_a_component_and_its_connections() {
    use app::outline::{ComponentOutline, OutlinePart};
    let app = common::spawn().await;
    let dev = app.signed_in("developer@demo.test").await;
    let user = app.signed_in("user@demo.test").await;
    let outline = |component: &'static str| {
        let (app, dev) = (&app, &dev);
        async move {
            app.json::<ComponentOutline>(
                dev,
                "get_component_outline",
                &[("app", "sales_hub"), ("component", component)],
            )
            .await
        }
    };

    // A form: its on-load workflow (a link to it), its integration fields, its connections.
    let form = outline("deal_intake").await;
    assert_eq!(form.name, "Deal Intake");
    assert!(
        form.parts.contains(&OutlinePart::OnLoad { workflow: "load_deals".into(), name: Some("Load Deals".into()) }),
        "{form:?}"
    );
    assert!(
        form.parts.iter().any(|p| matches!(p, OutlinePart::Field { datasource, .. } if datasource == "CRM Deals")),
        "{form:?}"
    );
    let used: Vec<&str> = form.connections.iter().map(|c| c.display_name.as_str()).collect();
    assert_eq!(used, ["My CRM", "Sales CRM"]);

    // A page: its panels, each with the connection it reads.
    let page = outline("pipeline").await;
    assert_eq!(
        page.parts,
        [OutlinePart::Call {
            label: "Panel".into(),
            title: "My deals".into(),
            method: "GET".into(),
            connection: "my_crm".into(),
            url: "{api_base}/api/crm/Deals?per_page=5".into(),
        }]
    );

    // Builders only; an unknown component is not found.
    let (status, _) =
        app.fails(&user, "get_component_outline", &[("app", "sales_hub"), ("component", "deal_intake")]).await;
    assert_eq!(status, 403);
    let (status, _) = app.fails(&dev, "get_component_outline", &[("app", "sales_hub"), ("component", "nope")]).await;
    assert_eq!(status, 404);
}
