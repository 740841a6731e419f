//! PATs are checked with GitHub, carry the expiry GitHub reports, are never served past it, and
//! rotate in place under live sessions.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use lanyard_testkit::expect_error;

use crate::*;

const OLD_PAT: &str = "github_pat_11AAAAold0123456789abcdefghijklmnopqrstuv";
const NEW_PAT: &str = "github_pat_11AAAAnew0123456789abcdefghijklmnopqrstuv";

impl World {
    async fn connect_pat(&self, owner: &str, pat: &str) -> reqwest::Response {
        self.app
            .post("/v1/github/connections")
            .bearer_auth(&self.team.api_key)
            .json(&serde_json::json!({"host": self.fake.host, "owner": owner, "pat": pat}))
            .send()
            .await
            .unwrap()
    }

    async fn rotate(&self, id: &str, pat: &str) -> reqwest::Response {
        self.app
            .patch(&format!("/v1/github/connections/{id}"))
            .bearer_auth(&self.team.api_key)
            .json(&serde_json::json!({"pat": pat}))
            .send()
            .await
            .unwrap()
    }

    async fn credential(&self, sid: &str, runner: &str) -> serde_json::Value {
        let r = self.app.fetch_credential(sid, runner, "").await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

fn at(value: &serde_json::Value) -> DateTime<Utc> {
    value.as_str().expect("a timestamp").parse().unwrap()
}

#[tokio::test]
async fn a_pat_github_refuses_is_not_stored() {
    let w = world().await;
    let url = w.app.public_url();
    let r = w
        .connect_pat("solo", "ghp_madeup0123456789abcdefghijklmnopqr")
        .await;
    let body = expect_error(r, "pat_invalid", &url).await;
    assert!(
        !body["message"].as_str().unwrap().contains("ghp_madeup"),
        "{body}"
    );
    assert!(w.connections().await.is_empty());
}

#[tokio::test]
async fn an_expiring_pat_is_served_with_its_expiry_and_never_after_it() {
    let w = world().await;
    // Sooner than the session ends (a day).
    let expires = (lanyard_core::Clock::now(&w.clock) + Duration::hours(2)).trunc_subsecs(0);
    w.fake
        .add_pat_expiring(OLD_PAT, "solo", &["notes"], Some(expires));
    let r = w.connect_pat("solo", OLD_PAT).await;
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(at(&created["pat_expires_at"]), expires, "{created}");
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("solo", "notes")])
        .await;
    let body = w.credential(&sid, &runner).await;
    assert_eq!(body["source"], "pat");
    assert_eq!(body["token"], OLD_PAT);
    assert_eq!(at(&body["expires_at"]), expires);
    let compat = format!(
        "/api/projects/{}/agentic-sessions/{sid}/credentials/github",
        w.team.id
    );
    let body: serde_json::Value = w
        .app
        .get(&compat)
        .bearer_auth(&runner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(at(&body["expiresAt"]), expires);

    // A minute past it: refused on both routes, whatever the cache held.
    w.clock.advance(Duration::hours(2) + Duration::minutes(1));
    let url = w.app.public_url();
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    expect_error(r, "pat_expired", &url).await;
    let r = w
        .app
        .get(&compat)
        .bearer_auth(&runner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn rotation_reaches_live_sessions_and_a_bad_pat_leaves_the_old_one() {
    let w = world().await;
    w.fake.add_pat(OLD_PAT, "solo", &["notes"]);
    let expires = (lanyard_core::Clock::now(&w.clock) + Duration::days(90)).trunc_subsecs(0);
    w.fake
        .add_pat_expiring(NEW_PAT, "solo", &["notes"], Some(expires));
    let r = w.connect_pat("solo", OLD_PAT).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["connection_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("solo", "notes")])
        .await;
    assert_eq!(w.credential(&sid, &runner).await["token"], OLD_PAT);

    let url = w.app.public_url();
    let r = w
        .rotate(&id, "ghp_notreal0123456789abcdefghijklmnopq")
        .await;
    expect_error(r, "pat_invalid", &url).await;
    assert_eq!(w.credential(&sid, &runner).await["token"], OLD_PAT);

    let r = w.rotate(&id, NEW_PAT).await;
    assert_eq!(r.status(), 200);
    let view = r.text().await.unwrap();
    assert!(!view.contains(NEW_PAT), "a PAT is never echoed: {view}");
    let body = w.credential(&sid, &runner).await;
    assert_eq!(
        body["token"], NEW_PAT,
        "the live session has the new PAT at once"
    );
    assert_eq!(at(&body["expires_at"]), expires);
    let rotated = w
        .audit()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "github.connection.rotated")
        .count();
    assert_eq!(rotated, 1);

    // Another team cannot rotate it, and an App connection has no PAT to rotate.
    let other = w.app.create_team("Other", lanyard_core::Tier::Free).await;
    let r = w
        .app
        .patch(&format!("/v1/github/connections/{id}"))
        .bearer_auth(&other.api_key)
        .json(&serde_json::json!({"pat": NEW_PAT}))
        .send()
        .await
        .unwrap();
    expect_error(r, "not_found", &url).await;
    let acme = w.bind_acme().await;
    let r = w.rotate(&acme, NEW_PAT).await;
    assert_eq!(r.status().as_u16() / 100, 4, "a 4xx");
}
