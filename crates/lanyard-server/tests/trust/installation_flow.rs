//! A team binds only installations its GitHub user can see, through the installation flow.

use lanyard_testkit::expect_error;

use crate::*;

#[tokio::test]
async fn a_team_binds_an_installation_its_user_can_see() {
    let w = world().await;
    let state = w.state(None).await;
    let r = w.complete(&state, "alice", "1001").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("acme") && page.contains("connected"),
        "{page}"
    );
    assert!(page.contains("Trusting"), "the page names the team: {page}");

    let connections = w.connections().await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["owner"], "acme", "the owner GitHub reports");
    assert_eq!(connections[0]["kind"], "github_app");
    assert_eq!(connections[0]["installation_id"], 1001);
    assert_eq!(connections[0]["status"], "active");
    let created = w
        .audit()
        .await
        .into_iter()
        .find(|e| e["kind"] == "github.connection.created")
        .unwrap();
    assert_eq!(created["data"]["proof"], "oauth");

    // And it serves: a session on acme's repository gets a working token.
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_user_who_cannot_see_the_installation_binds_nothing() {
    let w = world().await;
    for (user, installation) in [("mallory", "1001"), ("alice", "1002"), ("carol", "1001")] {
        let state = w.state(None).await;
        let r = w.complete(&state, user, installation).await;
        assert_eq!(r.status(), 403, "{user} on {installation}");
        let page = r.text().await.unwrap();
        assert!(page.contains("installation_not_owned"), "{page}");
        assert!(
            !page.contains("globex"),
            "the page names no account: {page}"
        );
    }
    assert!(w.connections().await.is_empty(), "nothing was bound");
    // A code GitHub refuses is no proof either.
    let state = w.state(None).await;
    let r = w
        .setup(&[
            ("installation_id", "1001"),
            ("code", "made-up-code"),
            ("state", &state),
        ])
        .await;
    assert_eq!(r.status(), 403);
    assert!(w.connections().await.is_empty());
}

#[tokio::test]
async fn two_tabs_finishing_the_flow_at_once_bind_one_connection() {
    let w = world().await;
    let (a, b) = (w.state(None).await, w.state(None).await);
    let (ra, rb) = tokio::join!(
        w.complete(&a, "alice", "1001"),
        w.complete(&b, "alice", "1001")
    );
    assert_eq!((ra.status().as_u16(), rb.status().as_u16()), (200, 200));
    assert_eq!(w.connections().await.len(), 1);
}

#[tokio::test]
async fn an_installation_on_a_user_account_binds_only_for_that_user() {
    let w = world().await;
    w.fake.add_installation(1003, "dave", &["dotfiles"]);
    w.fake.add_user("dave", &[1003]);
    w.fake.add_collaborator("erin", &[1003]);
    let state = w.state(None).await;
    let r = w.complete(&state, "erin", "1003").await;
    assert_eq!(
        r.status(),
        403,
        "a collaborator on dave's repositories is not dave"
    );
    assert!(w.connections().await.is_empty());
    let state = w.state(None).await;
    let r = w.complete(&state, "dave", "1003").await;
    assert_eq!(r.status(), 200);
    assert_eq!(w.connections().await[0]["owner"], "dave");
}

#[tokio::test]
async fn forged_expired_and_reused_states_are_refused() {
    let w = world().await;
    let w = &w;
    let attempt = |state: String| async move {
        let r = w.complete(&state, "alice", "1001").await;
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    };
    let invalid = |(status, page): (u16, String)| {
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("invalid_state"), "{page}");
    };
    // Missing, malformed, forged (a valid payload with a made-up signature, and another team's
    // payload with this one's signature).
    invalid(attempt(String::new()).await);
    invalid(attempt("not-a-state".into()).await);
    let state = w.state(None).await;
    let (payload, signature) = state.split_once('.').unwrap();
    invalid(attempt(format!("{payload}.AAAA{}", &signature[4..])).await);
    let other = w.app.create_team("Other", lanyard_core::Tier::Free).await;
    let other_state = {
        let r = w
            .app
            .post("/v1/github/installations")
            .bearer_auth(&other.api_key)
            .json(&serde_json::json!({"host": w.fake.host}))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        v["install_url"]
            .as_str()
            .unwrap()
            .split_once("state=")
            .unwrap()
            .1
            .to_string()
    };
    let (other_payload, _) = other_state.split_once('.').unwrap();
    invalid(attempt(format!("{other_payload}.{signature}")).await);

    // Used once, then refused.
    let (status, _) = attempt(state.clone()).await;
    assert_eq!(status, 200);
    invalid(attempt(state).await);

    // Expired after ten minutes.
    let state = w.state(None).await;
    w.clock.advance(chrono::Duration::minutes(11));
    invalid(attempt(state).await);
    let bound: Vec<_> = w.connections().await;
    assert_eq!(bound.len(), 1, "only the one good attempt bound anything");
}

#[tokio::test]
async fn a_team_cannot_bind_an_installation_directly() {
    let w = world().await;
    let url = w.app.public_url();
    for (owner, id) in [("acme", 1001), ("initech", 1002), ("nobody", 424_242)] {
        let r = w
            .app
            .post("/v1/github/connections")
            .bearer_auth(&w.team.api_key)
            .json(&serde_json::json!({"host": w.fake.host, "owner": owner, "installation_id": id}))
            .send()
            .await
            .unwrap();
        let body = expect_error(r, "installation_proof_required", &url).await;
        let message = body["message"].as_str().unwrap();
        for account in ["acme", "globex", "initech"] {
            assert!(!message.contains(account), "{message}");
        }
    }
    // A session JWT is a team credential too.
    let r = w
        .app
        .post("/v1/github/connections")
        .bearer_auth(w.app.jwt_for(&w.team))
        .json(&serde_json::json!({"host": w.fake.host, "owner": "globex", "installation_id": 1002}))
        .send()
        .await
        .unwrap();
    expect_error(r, "installation_proof_required", &url).await;
    assert!(w.connections().await.is_empty());
}

#[tokio::test]
async fn return_to_must_be_on_an_allowed_origin_and_gets_the_connection_id() {
    let w = world_with(|b| {
        b.env(
            "LANYARD_ALLOWED_RETURN_ORIGINS",
            "https://platform.example.test, http://127.0.0.1:9",
        )
    })
    .await;
    let url = w.app.public_url();
    for foreign in [
        "https://evil.example.test/steal",
        "https://platform.example.test.evil.test/",
        "javascript:alert(1)",
        "//platform.example.test/x",
        "https://user@platform.example.test/x",
        // Allowed origin, but a header-breaking path: refused at the start, not after binding.
        "https://platform.example.test/a\r\nSet-Cookie: x=1",
        "https://platform.example.test/a b",
        "https://platform.example.test/caf\u{e9}",
    ] {
        let r = w
            .start_flow(serde_json::json!({"host": w.fake.host, "return_to": foreign}))
            .await;
        expect_error(r, "invalid_return_to", &url).await;
    }
    let state = w
        .state(Some(
            "https://platform.example.test/projects/7?tab=github#done",
        ))
        .await;
    let r = w.complete(&state, "alice", "1001").await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let id = w.connections().await[0]["connection_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        location,
        format!("https://platform.example.test/projects/7?tab=github&connection_id={id}#done")
    );
}

#[tokio::test]
async fn a_pending_approval_binds_nothing_and_says_so() {
    let w = world().await;
    let state = w.state(None).await;
    let r = w
        .setup(&[("setup_action", "request"), ("state", &state)])
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("approv"), "{page}");
    assert!(w.connections().await.is_empty());
}

#[tokio::test]
async fn a_host_without_the_flow_configured_says_so() {
    let (app, fake) = app_only().await;
    let team = app.create_team("Plain", lanyard_core::Tier::Free).await;
    let r = app
        .post("/v1/github/installations")
        .bearer_auth(&team.api_key)
        .json(&serde_json::json!({"host": fake.host}))
        .send()
        .await
        .unwrap();
    expect_error(r, "installation_flow_unconfigured", &app.public_url()).await;
    let r = app
        .post("/v1/github/installations")
        .bearer_auth(&team.api_key)
        .json(&serde_json::json!({"host": "ghe.unknown.test"}))
        .send()
        .await
        .unwrap();
    expect_error(r, "unknown_github_host", &app.public_url()).await;
}
