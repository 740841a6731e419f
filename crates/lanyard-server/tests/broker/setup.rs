//! Connections and sessions: what is checked before anything is served.

use crate::*;

#[tokio::test]
async fn connections_verify_installations_and_hosts() {
    let w = world().await;
    let url = w.app.public_url();
    // 1002 belongs to globex, not initech.
    let r = w
        .app
        .connect_installation(&w.team, &w.fake.host, "initech", 1002)
        .await;
    expect_error(r, "installation_mismatch", &url).await;
    let r = w
        .app
        .connect_installation(&w.team, &w.fake.host, "initech", 9999)
        .await;
    expect_error(r, "installation_mismatch", &url).await;
    let r = w
        .app
        .connect_installation(&w.team, "gitlab.example.com", "acme", 1001)
        .await;
    expect_error(r, "unknown_github_host", &url).await;
    let r = w
        .app
        .connect_installation(&w.team, &w.fake.host, "acme", 1001)
        .await;
    expect_error(r, "connection_exists", &url).await;
    let r = w
        .app
        .post("/v1/github/connections")
        .bearer_auth(&w.team.api_key)
        .json(&serde_json::json!({"host": w.fake.host, "owner": "globex"}))
        .send()
        .await
        .unwrap();
    expect_error(r, "invalid_connection", &url).await;

    let list: serde_json::Value = w
        .app
        .get_json("/v1/github/connections", &w.team.api_key)
        .await;
    let conns = list["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["kind"], "github_app");
    assert_eq!(conns[0]["installation_id"], 1001);
    let id = conns[0]["connection_id"].as_str().unwrap();

    let other = w.app.create_team("Other", Tier::Free).await;
    let r = w
        .app
        .delete(&format!("/v1/github/connections/{id}"))
        .bearer_auth(&other.api_key)
        .send()
        .await
        .unwrap();
    expect_error(r, "not_found", &url).await;
    let r = w
        .app
        .delete(&format!("/v1/github/connections/{id}"))
        .bearer_auth(&w.team.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: serde_json::Value = w.app.get_json("/v1/audit", &w.team.api_key).await;
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[..2],
        ["github.connection.deleted", "github.connection.created"]
    );
}

#[tokio::test]
async fn sessions_validate_repos_permissions_quota_and_ttl() {
    let w = world_with(&[], Tier::Anonymous).await;
    let url = w.app.public_url();
    let post = |body: serde_json::Value| {
        w.app
            .post("/v1/sessions")
            .bearer_auth(&w.team.api_key)
            .json(&body)
            .send()
    };

    let stranger = w.fake.repo_url("initech", "tps");
    let r = post(serde_json::json!({"repos": [stranger]}))
        .await
        .unwrap();
    let body = expect_error(r, "repo_not_connected", &url).await;
    assert!(
        body["message"].as_str().unwrap().contains("initech/tps"),
        "{body}"
    );
    assert_eq!(body["repo"], stranger);

    for bad in [
        "https://github.com/acme/widgets",
        "ftp://x/y/z",
        &format!("https://{}/acme/widgets", w.fake.host),
    ] {
        let r = post(serde_json::json!({"repos": [bad]})).await.unwrap();
        let code = r.json::<serde_json::Value>().await.unwrap()["error"].clone();
        assert!(
            code == "invalid_repo_url" || code == "unknown_github_host",
            "{bad}: {code}"
        );
    }
    let widgets = w.fake.repo_url("acme", "widgets");
    let r = post(serde_json::json!({"repos": [widgets], "permissions": {}}))
        .await
        .unwrap();
    let body = expect_error(r, "invalid_permissions", &url).await;
    assert!(body["message"].as_str().unwrap().contains("at least one"));
    let r = post(serde_json::json!({"repos": [widgets], "permissions": {"contents": "owner"}}))
        .await
        .unwrap();
    expect_error(r, "invalid_permissions", &url).await;
    let r = post(serde_json::json!({"repos": [widgets], "ttl_seconds": 3 * 3600}))
        .await
        .unwrap();
    expect_error(r, "ttl_too_long", &url).await;
    let r = post(serde_json::json!({"repos": [widgets], "ttl_seconds": 0}))
        .await
        .unwrap();
    expect_error(r, "invalid_ttl", &url).await;

    // `.git` and a trailing slash normalise away; the anonymous tier allows one live session.
    let r = post(serde_json::json!({"repos": [format!("{widgets}.git/")]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["repos"], serde_json::json!([widgets]));
    assert!(created["runner_token"]
        .as_str()
        .unwrap()
        .starts_with("lrt_"));
    let r = post(serde_json::json!({"repos": [widgets]})).await.unwrap();
    expect_error(r, "quota_exceeded", &url).await;

    // Expired sessions free the quota: the default anonymous TTL is one hour.
    w.clock.advance(chrono::Duration::minutes(61));
    let r = post(serde_json::json!({"repos": [widgets]})).await.unwrap();
    assert_eq!(r.status(), 201);
    let sid = created["session_id"].as_str().unwrap();
    let got: serde_json::Value = w
        .app
        .get_json(&format!("/v1/sessions/{sid}"), &w.team.api_key)
        .await;
    assert_eq!(got["status"], "expired");
}

#[tokio::test]
async fn served_token_works_with_real_git_in_scope_only() {
    let w = world().await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["source"], "github_app");
    assert_eq!(body["host"], w.fake.host);
    assert_eq!(body["owner"], "acme");
    assert_eq!(body["repositories"], serde_json::json!(["widgets"]));
    // No permissions asked: the documented defaults, read only.
    assert_eq!(body["permissions"]["contents"], "read");
    assert_eq!(body["scheme"], "http", "the fake's api_url is http");
    let token = body["token"].as_str().unwrap();
    assert!(expiry(&body) - w.clock.now() >= chrono::Duration::minutes(15));

    let ok = ls_remote(&w.fake.repo_url("acme", "widgets"), token).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("refs/heads/main"));
    let out_of_scope = ls_remote(&w.fake.repo_url("acme", "gadgets"), token).await;
    assert!(
        !out_of_scope.status.success(),
        "a token scoped to widgets must not read gadgets"
    );
    assert_eq!(w.fake.git_auth_failures(), 1);
    let mint = &w.fake.mints()[0];
    assert_eq!(mint.repositories, ["widgets"]);
    assert_eq!(
        mint.permissions,
        [("contents", "read"), ("metadata", "read")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "GitHub was asked for the defaults, not for everything the installation has"
    );
    assert_eq!(mint.installation_id, 1001);
}

#[tokio::test]
async fn a_runner_token_is_valid_only_for_its_own_session() {
    let w = world().await;
    let repos = [w.fake.repo_url("acme", "widgets")];
    let (sid_a, runner_a) = w.app.start_session(&w.team, &repos).await;
    let (sid_b, _) = w.app.start_session(&w.team, &repos).await;
    let url = w.app.public_url();
    expect_error(
        w.app.fetch_credential(&sid_b, &runner_a, "").await,
        "not_found",
        &url,
    )
    .await;
    expect_error(
        w.app.fetch_credential("not-a-uuid", &runner_a, "").await,
        "not_found",
        &url,
    )
    .await;
    expect_error(
        w.app.fetch_credential(&sid_a, &w.team.api_key, "").await,
        "unauthorized",
        &url,
    )
    .await;
    // The last character changed to another one (a fixed '0' would equal
    // the real token whenever it already ended in '0').
    let mut forged = runner_a.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_ne!(forged, runner_a);
    expect_error(
        w.app.fetch_credential(&sid_a, &forged, "").await,
        "unauthorized",
        &url,
    )
    .await;
    // A runner token is not a team credential either.
    expect_error(
        w.app
            .get("/v1/me")
            .bearer_auth(&runner_a)
            .send()
            .await
            .unwrap(),
        "unauthorized",
        &url,
    )
    .await;
    assert_eq!(
        w.app.fetch_credential(&sid_a, &runner_a, "").await.status(),
        200
    );
}
