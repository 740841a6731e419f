//! Sessions that end: revocation by the last holder, 410s, and owners to choose from.

use crate::*;

#[tokio::test]
async fn a_shared_token_lives_until_its_last_holder_stops() {
    let w = world().await;
    let repos = [w.fake.repo_url("acme", "widgets")];
    let (sid_a, runner_a) = w.app.start_session(&w.team, &repos).await;
    let (sid_b, runner_b) = w.app.start_session(&w.team, &repos).await;
    let token = credential(&w, &sid_a, &runner_a).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        credential(&w, &sid_b, &runner_b).await["token"],
        token.as_str()
    );

    let r: serde_json::Value = w.app.stop_session(&w.team, &sid_a).await;
    assert_eq!(r["status"], "stopped");
    assert_eq!(r["tokens_revoked"], 0, "B still holds the token");
    assert!(w.fake.token_is_live(&token));
    assert_eq!(
        credential(&w, &sid_b, &runner_b).await["token"],
        token.as_str()
    );

    let r: serde_json::Value = w.app.stop_session(&w.team, &sid_b).await;
    assert_eq!(r["tokens_revoked"], 1);
    assert!(
        !w.fake.token_is_live(&token),
        "revoked at GitHub after the last holder stopped"
    );
    assert_eq!(w.fake.revocation_count(), 1);
    let page: serde_json::Value = w.app.get_json("/v1/audit?limit=3", &w.team.api_key).await;
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["credential.revoked", "session.stopped", "session.stopped"]
    );
}

#[tokio::test]
async fn a_stopped_session_gets_410() {
    let w = world().await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    credential(&w, &sid, &runner).await;
    w.app.stop_session(&w.team, &sid).await;
    expect_error(
        w.app.fetch_credential(&sid, &runner, "").await,
        "session_ended",
        &w.app.public_url(),
    )
    .await;
    let got: serde_json::Value = w
        .app
        .get_json(&format!("/v1/sessions/{sid}"), &w.team.api_key)
        .await;
    assert_eq!(got["status"], "stopped");
}

#[tokio::test]
async fn an_expired_session_gets_410() {
    let w = world().await;
    let r = w
        .app
        .post("/v1/sessions")
        .bearer_auth(&w.team.api_key)
        .json(
            &serde_json::json!({"repos": [w.fake.repo_url("acme", "widgets")], "ttl_seconds": 600}),
        )
        .send()
        .await
        .unwrap();
    let created: serde_json::Value = r.json().await.unwrap();
    let (sid, runner) = (
        created["session_id"].as_str().unwrap(),
        created["runner_token"].as_str().unwrap(),
    );
    assert_eq!(w.app.fetch_credential(sid, runner, "").await.status(), 200);
    w.clock.advance(chrono::Duration::minutes(11));
    expect_error(
        w.app.fetch_credential(sid, runner, "").await,
        "session_ended",
        &w.app.public_url(),
    )
    .await;
}

#[tokio::test]
async fn sessions_over_several_owners_need_an_owner() {
    let w = world().await;
    let r = w
        .app
        .connect_installation(&w.team, &w.fake.host, "globex", 1002)
        .await;
    assert_eq!(r.status(), 201);
    let (sid, runner) = w
        .app
        .start_session(
            &w.team,
            &[
                w.fake.repo_url("acme", "widgets"),
                w.fake.repo_url("globex", "thing"),
            ],
        )
        .await;
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    let body = expect_error(r, "owner_required", &w.app.public_url()).await;
    assert!(body.get("token").is_none());
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert!(choices.contains(&serde_json::json!({"host": w.fake.host, "owner": "globex"})));
    let r = w.app.fetch_credential(&sid, &runner, "?owner=globex").await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["owner"], "globex");
    assert_eq!(body["repositories"], serde_json::json!(["thing"]));
    let r = w
        .app
        .fetch_credential(&sid, &runner, &format!("?host={}&owner=acme", w.fake.host))
        .await;
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["repositories"],
        serde_json::json!(["widgets"])
    );
    assert_eq!(w.fake.mint_count(), 2, "one credential per (host, owner)");
}

/// Deleting a connection stops a live session's credentials for that owner at once, even right
/// after the session was served (and so cached), and revokes at GitHub the tokens minted through
/// it (CONTRACT §17), audited with why.
#[tokio::test]
async fn a_deleted_connection_stops_serving_at_once_and_its_tokens_die() {
    let w = world().await;
    let url = w.app.public_url();
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let (other_sid, other_runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "gadgets")])
        .await;
    let first = credential(&w, &sid, &runner).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let second = credential(&w, &other_sid, &other_runner).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(w.fake.token_is_live(&first) && w.fake.token_is_live(&second));
    delete_the_connection(&w).await;
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    let body = expect_error(r, "repo_not_connected", &url).await;
    assert!(body["message"].as_str().unwrap().contains("acme"));
    assert!(
        !w.fake.token_is_live(&first) && !w.fake.token_is_live(&second),
        "a deleted connection's tokens are still live at GitHub"
    );
    let audit = w.app.store().list_audit(w.team.id, 50, None).await.unwrap();
    let reasons: Vec<_> = audit
        .iter()
        .filter(|a| a.kind == "credential.revoked")
        .map(|a| a.data["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reasons, ["its connection was deleted"; 2], "{audit:?}");
}
