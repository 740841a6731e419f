//! Ops routes: health, readiness, metrics, the OpenAPI document and the docs page.

use lanyard_core::{ErrorCode, Tier};
use lanyard_testkit::{expect_error, redis_under_test, TestApp};

#[tokio::test]
async fn healthz_answers_ok_with_a_request_id() {
    let app = TestApp::spawn().await;
    let r = app.get("/healthz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some());
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["status"], "ok");
}

#[tokio::test]
async fn readyz_reports_each_dependency() {
    let app = TestApp::spawn().await;
    let r = app.get("/readyz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    let expected_redis = if redis_under_test().is_some() {
        "ok"
    } else {
        "not_configured"
    };
    assert_eq!(body["checks"]["redis"], expected_redis, "{body}");
}

#[tokio::test]
async fn readyz_is_503_when_redis_is_unreachable() {
    // Port 1 on loopback: nothing listens there.
    let app = TestApp::builder()
        .env("LANYARD_REDIS_URL", "redis://127.0.0.1:1")
        .spawn()
        .await;
    let r = app.get("/readyz").send().await.unwrap();
    let body = expect_error(r, "not_ready", &app.public_url()).await;
    assert_eq!(body["checks"]["redis"], "unavailable");
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.store().close().await;
    let r = app.get("/readyz").send().await.unwrap();
    let body = expect_error(r, "not_ready", &app.public_url()).await;
    assert_eq!(body["checks"]["database"], "unavailable");
}

#[tokio::test]
async fn metrics_label_requests_by_route_template_never_raw_path() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Metrics", Tier::Free).await;
    let key_id = uuid::Uuid::new_v4();
    let r = app
        .delete(&format!("/v1/api-keys/{key_id}"))
        .bearer_auth(&team.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.get("/no/such/route/123").send().await.unwrap();
    app.get("/healthz").send().await.unwrap();

    let r = app.get("/metrics").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("openmetrics-text"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains(r#"lanyard_http_requests_total{route="/v1/api-keys/{key_id}",method="DELETE",status="404"} 1"#),
        "{text}"
    );
    assert!(text
        .contains(r#"lanyard_http_requests_total{route="/healthz",method="GET",status="200"} 1"#));
    assert!(text.contains(r#"route="unmatched""#));
    assert!(
        !text.contains(&key_id.to_string()),
        "raw ids must not become labels"
    );
    assert!(
        !text.contains("/no/such/route"),
        "raw paths must not become labels"
    );
    assert!(text.contains("lanyard_http_request_duration_seconds_bucket"));
    for family in lanyard_server::metrics::FAMILIES {
        let declared = format!("# TYPE {} ", lanyard_server::metrics::type_name(family));
        assert!(text.contains(&declared), "{family} missing");
    }
}

/// A documented path with every `{param}` replaced by a fresh id.
fn fill_ids(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&uuid::Uuid::new_v4().to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn openapi_document_covers_every_route_and_matches_the_cli() {
    let fake = lanyard_testkit::fake_github::FakeGithub::start(std::sync::Arc::new(
        lanyard_core::SystemClock,
    ))
    .await;
    let app = TestApp::builder().github(&fake).spawn().await;
    let r = app.get("/openapi.json").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let served = r.text().await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let expected = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/docs", "get"),
        ("/v1/me", "get"),
        ("/v1/me", "patch"),
        ("/v1/usage", "get"),
        ("/v1/notifications", "get"),
        ("/v1/audit", "get"),
        ("/v1/api-keys", "get"),
        ("/v1/api-keys", "post"),
        ("/v1/api-keys/{key_id}", "delete"),
        ("/v1/github/connections", "get"),
        ("/v1/github/connections", "post"),
        ("/v1/github/connections/{connection_id}", "delete"),
        ("/v1/github/connections/{connection_id}", "patch"),
        ("/v1/github/installations", "post"),
        ("/v1/github/setup", "get"),
        ("/v1/github/webhooks/{host}", "post"),
        ("/admin/v1/teams", "post"),
        ("/admin/v1/teams", "get"),
        ("/admin/v1/teams/{team_id}", "patch"),
        ("/admin/v1/teams/{team_id}", "delete"),
        ("/admin/v1/teams/{team_id}/api-keys", "post"),
        ("/admin/v1/teams/{team_id}/github/connections", "post"),
        ("/v1/sessions", "get"),
        ("/v1/sessions", "post"),
        ("/v1/sessions/{session_id}", "get"),
        ("/v1/sessions/{session_id}", "delete"),
        ("/v1/sessions/{session_id}/credentials/github", "get"),
        (
            "/api/projects/{team_id}/agentic-sessions/{session_id}/credentials/github",
            "get",
        ),
    ];
    for (path, method) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the document"
        );
        // And the route really is served: anything but the unknown-route 404 envelope.
        let r = app
            .client
            .request(
                method.to_ascii_uppercase().parse().unwrap(),
                app.url(&fill_ids(&path.replace("{host}", &fake.host))),
            )
            .bearer_auth(lanyard_testkit::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        let unknown = status == 404 && body["message"] == "No such route.";
        assert!(
            !unknown && status != 405,
            "{method} {path} is documented but not routed"
        );
    }
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        operations,
        expected.len(),
        "a route was added: list it here and test it"
    );
    assert_eq!(
        served.trim(),
        lanyard_server::http::routes::openapi_json().trim(),
        "`lanyard openapi` prints what is served"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn docs_page_renders_the_api_without_network_assets() {
    let app = TestApp::spawn().await;
    let r = app.get("/docs").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    for path in ["/v1/me", "/v1/audit", "/v1/api-keys", "/healthz"] {
        assert!(html.contains(path), "{path} not on the page");
    }
    for &code in ErrorCode::ALL {
        assert!(
            html.contains(&format!("id=\"error-{code}\"")),
            "{code} anchor missing"
        );
    }
    for external in ["src=\"http", "href=\"http", "@import", "<script"] {
        assert!(
            !html.contains(external),
            "the page must not load {external}"
        );
    }
}

/// A made-up HTTP method is counted as `other`: requests with a 20 KB method name add one
/// fixed label set, however many arrive (they once grew the scrape by megabytes, unauthenticated).
#[tokio::test]
async fn a_made_up_method_never_becomes_a_label() {
    let app = TestApp::spawn().await;
    let scrape = || async { app.metrics_text().await };
    let method = reqwest::Method::from_bytes("X".repeat(20_000).as_bytes()).unwrap();
    let flood = || async {
        for _ in 0..50 {
            let r = app
                .client
                .request(method.clone(), app.url("/healthz"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405);
        }
    };
    flood().await;
    let _ = scrape().await; // the scrape's own route is counted from here on
    let first = scrape().await;
    flood().await;
    let second = scrape().await;
    assert!(first.len() < 64 * 1024, "{} bytes", first.len());
    assert!(
        second.len() < first.len() + 100,
        "the scrape grew from {} to {} bytes",
        first.len(),
        second.len()
    );
    assert!(
        second.contains(r#"method="other",status="405"} 100"#),
        "{second}"
    );
    assert!(!second.contains("XXXX"));
}

/// CONTRACT §17: no response that carries a secret can be cached. Each route that hands one out
/// (a key, a runner token, a token, an e2e account with its JWT) answers `no-store`, and so do
/// the errors and every other API answer; only the documentation pages choose their own.
#[tokio::test]
async fn responses_that_carry_a_secret_are_never_cached() {
    use lanyard_testkit::fake_github::FakeGithub;
    let e2e = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let clock = lanyard_core::ManualClock::starting_now();
    let fake = FakeGithub::start(std::sync::Arc::new(clock.clone())).await;
    fake.add_installation(5, "acme", &["widgets"]);
    let app = TestApp::builder()
        .clock(&clock)
        .github(&fake)
        .env("LANYARD_E2E_ACCOUNT_TOKEN", &e2e)
        .spawn()
        .await;
    let admin = lanyard_testkit::ADMIN_TOKEN;
    let no_store = |what: &str, r: &reqwest::Response| {
        assert_eq!(
            r.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{what} ({})",
            r.status()
        );
    };
    let r = app
        .post("/admin/v1/teams")
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": "Cached"}))
        .send()
        .await
        .unwrap();
    no_store("a provisioned team's key", &r);
    let team = app.create_team("Secret", Tier::Pro).await;
    let r = app
        .post(&format!("/admin/v1/teams/{}/api-keys", team.id))
        .bearer_auth(admin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    no_store("an admin-issued key", &r);
    let r = app
        .post("/v1/api-keys")
        .bearer_auth(&team.api_key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    no_store("a team-issued key", &r);
    assert_eq!(
        app.connect_installation(&team, &fake.host, "acme", 5)
            .await
            .status(),
        201
    );
    let repo = fake.repo_url("acme", "widgets");
    let r = app
        .post("/v1/sessions")
        .bearer_auth(&team.api_key)
        .json(&serde_json::json!({"repos": [repo]}))
        .send()
        .await
        .unwrap();
    no_store("a new session's runner token", &r);
    let body: serde_json::Value = r.json().await.unwrap();
    let (sid, runner) = (
        body["session_id"].as_str().unwrap(),
        body["runner_token"].as_str().unwrap(),
    );
    let r = app.fetch_credential(sid, runner, "").await;
    assert_eq!(r.status(), 200);
    no_store("a credential", &r);
    let r = app
        .get(&format!(
            "/api/projects/{}/agentic-sessions/{sid}/credentials/github",
            team.id
        ))
        .bearer_auth(runner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    no_store("a compat credential", &r);
    let r = app
        .post("/internal/e2e/account")
        .header("x-e2e-token", &e2e)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    no_store("an e2e account", &r);
    no_store("an error", &app.get("/v1/me").send().await.unwrap());
    for page in ["/docs", "/openapi.json"] {
        let r = app.get(page).send().await.unwrap();
        assert_eq!(r.headers()["cache-control"], "no-cache", "{page}");
    }
}
