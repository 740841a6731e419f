//! The admin API: one Lanyard team per platform project, invisible without the admin token.

use lanyard_testkit::{expect_error, ADMIN_TOKEN};
use reqwest::Method;

use crate::*;

impl World {
    async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.app.request(method, path).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

/// Every admin route, as method and path.
fn admin_routes(team: uuid::Uuid) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/admin/v1/teams".into()),
        (Method::GET, "/admin/v1/teams?external_id=x".into()),
        (Method::PATCH, format!("/admin/v1/teams/{team}")),
        (Method::DELETE, format!("/admin/v1/teams/{team}")),
        (Method::POST, format!("/admin/v1/teams/{team}/api-keys")),
        (
            Method::POST,
            format!("/admin/v1/teams/{team}/github/connections"),
        ),
        (Method::PUT, "/admin/v1/anything".into()),
        // Methods a route does not take: no 405 (nor its Allow header) gives the route away.
        (Method::GET, format!("/admin/v1/teams/{team}")),
        (Method::PUT, "/admin/v1/teams".into()),
        (Method::GET, format!("/admin/v1/teams/{team}/api-keys")),
    ]
}

/// Every admin route, with each of these bearers, answers exactly as an unknown route does.
async fn assert_hidden(w: &World, bearers: &[Option<String>]) {
    let unknown = shape(w.app.get("/no/such/route").send().await.unwrap()).await;
    assert_eq!(unknown.0, 404);
    for (method, path) in admin_routes(w.team.id) {
        for bearer in bearers {
            let mut req = w
                .app
                .request(method.clone(), &path)
                .json(&serde_json::json!({"name": "Sneaky"}));
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            let answer = shape(req.send().await.unwrap()).await;
            assert_eq!(answer, unknown, "{method} {path} with {bearer:?}");
        }
    }
}

#[tokio::test]
async fn without_the_admin_token_every_admin_route_is_an_unknown_route() {
    let off = world_with(|b| b.without_admin()).await;
    assert_hidden(&off, &[None, Some(ADMIN_TOKEN.to_string())]).await;

    // Enabled, but the wrong token, a prefix of it, another credential or none at all.
    let on = world().await;
    let wrong = [
        Some("not-the-admin-token".to_string()),
        Some(ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1].to_string()),
        Some(format!("{ADMIN_TOKEN}x")),
        Some(on.team.api_key.clone()),
        None,
    ];
    assert_hidden(&on, &wrong).await;
    let (status, found) = on.admin(Method::GET, "/admin/v1/teams", None).await;
    assert_eq!(status, 200);
    assert!(
        found["teams"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "Sneaky"),
        "nothing was created"
    );
    // Refused admin calls count as unknown routes: no admin route label is fed by them.
    let metrics = on.app.metrics_text().await;
    assert!(
        !metrics.contains("route=\"/admin/v1/teams\",status=\"404\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn provisioning_is_idempotent_on_the_external_id_even_when_raced() {
    let w = world().await;
    let body = serde_json::json!({"name": "Project 7", "tier": "hobby", "external_id": "proj-7",
        "notification_email": "ops@platform.example.test"});
    let (status, first) = w
        .admin(Method::POST, "/admin/v1/teams", Some(body.clone()))
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["created"], true);
    assert_eq!(first["tier"], "hobby");
    let key = first["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("lk_"), "{first}");
    // The key works as the team's.
    let r = w.app.get("/v1/me").bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let (status, again) = w.admin(Method::POST, "/admin/v1/teams", Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(again["created"], false);
    assert_eq!(again["team_id"], first["team_id"]);
    assert!(again.get("api_key").is_none(), "no second key: {again}");

    // Eight platform workers provisioning the same project at once get one team.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let req =
            w.app.post("/admin/v1/teams").bearer_auth(ADMIN_TOKEN).json(
                &serde_json::json!({"name": format!("Racer {i}"), "external_id": "proj-raced"}),
            );
        tasks.spawn(async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        });
    }
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result.unwrap();
        assert!(status == 201 || status == 200, "{status} {body}");
        created += usize::from(status == 201);
        ids.insert(body["team_id"].as_str().unwrap().to_string());
    }
    assert_eq!((created, ids.len()), (1, 1));
    let (_, found) = w
        .admin(Method::GET, "/admin/v1/teams?external_id=proj-raced", None)
        .await;
    assert_eq!(found["teams"].as_array().unwrap().len(), 1);
    assert_eq!(found["teams"][0]["is_test_cohort"], false);
}

#[tokio::test]
async fn a_team_is_changed_given_keys_and_bound_to_installations() {
    let w = world().await;
    let (_, team) = w
        .admin(
            Method::POST,
            "/admin/v1/teams",
            Some(serde_json::json!({"name": "Changeable", "external_id": "proj-8"})),
        )
        .await;
    let id = team["team_id"].as_str().unwrap().to_string();
    let path = format!("/admin/v1/teams/{id}");
    let (status, changed) = w
        .admin(
            Method::PATCH,
            &path,
            Some(serde_json::json!({"name": "Renamed", "tier": "pro"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["name"].as_str(), changed["tier"].as_str()),
        (Some("Renamed"), Some("pro"))
    );
    assert_eq!(changed["external_id"], "proj-8");
    let (status, bad) = w
        .admin(
            Method::PATCH,
            &path,
            Some(serde_json::json!({"tier": "platinum"})),
        )
        .await;
    assert_eq!(
        (status, bad["error"].as_str()),
        (400, Some("invalid_tier")),
        "{bad}"
    );
    let (status, _) = w
        .admin(
            Method::PATCH,
            &format!("/admin/v1/teams/{}", uuid::Uuid::new_v4()),
            Some(serde_json::json!({"name": "Ghost"})),
        )
        .await;
    assert_eq!(status, 404);

    let (status, issued) = w
        .admin(
            Method::POST,
            &format!("{path}/api-keys"),
            Some(serde_json::json!({"label": "ci"})),
        )
        .await;
    assert_eq!(status, 201);
    let key = issued["api_key"].as_str().unwrap();

    // Bound directly, checked against GitHub: the right owner binds, a wrong one does not.
    let connections = format!("{path}/github/connections");
    let connect = |owner: &str, installation: u64| {
        w.admin(
            Method::POST,
            &connections,
            Some(serde_json::json!({"host": w.fake.host, "owner": owner, "installation_id": installation})),
        )
    };
    let (status, wrong) = connect("globex", 1001).await;
    assert_eq!(
        (status, wrong["error"].as_str()),
        (422, Some("installation_mismatch"))
    );
    let (status, missing) = connect("acme", 9999).await;
    assert_eq!(missing["error"], "installation_mismatch", "{status}");
    let (status, bound) = connect("acme", 1001).await;
    assert_eq!(status, 201, "{bound}");
    let r = w
        .app
        .post("/v1/sessions")
        .bearer_auth(key)
        .json(&serde_json::json!({"repos": [w.fake.repo_url("acme", "widgets")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "the new key starts sessions on the bound installation"
    );
}

#[tokio::test]
async fn deleting_a_team_stops_its_sessions_revokes_their_tokens_and_keeps_the_audit() {
    let w = world().await;
    let url = w.app.public_url();
    w.bind_acme().await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    let token = r.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(w.fake.token_is_live(&token));

    let (status, deleted) = w
        .admin(
            Method::DELETE,
            &format!("/admin/v1/teams/{}", w.team.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["sessions_stopped"], 1);
    assert_eq!(deleted["team_deleted"], true);
    assert!(
        !w.fake.token_is_live(&token),
        "its token was revoked at GitHub"
    );

    let r = w.app.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 401, "the runner token died with the team");
    let r = w
        .app
        .get("/v1/me")
        .bearer_auth(&w.team.api_key)
        .send()
        .await
        .unwrap();
    expect_error(r, "unauthorized", &url).await;
    let (status, _) = w
        .admin(
            Method::DELETE,
            &format!("/admin/v1/teams/{}", w.team.id),
            None,
        )
        .await;
    assert_eq!(status, 404, "a second delete finds nothing");

    let audit = w
        .app
        .store()
        .list_audit(w.team.id, 100, None)
        .await
        .unwrap();
    let kinds: Vec<&str> = audit.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"team.deleted"), "{kinds:?}");
    assert!(kinds.contains(&"github.connection.created"), "{kinds:?}");
    assert!(kinds.contains(&"session.stopped"), "{kinds:?}");
}
