//! Webhooks from GitHub keep connections true: signed, applied once, and felt on every replica.

use lanyard_server::broker::SESSION_TTL;
use lanyard_testkit::expect_error;
use lanyard_testkit::fake_github::webhooks::{
    deliver, installation_event, installation_repositories_event, signature, WEBHOOK_SECRET,
};

use crate::*;

impl World {
    fn hook_url(&self) -> String {
        self.app
            .url(&format!("/v1/github/webhooks/{}", self.fake.host))
    }

    async fn deliver(
        &self,
        event: &str,
        delivery: &str,
        payload: &serde_json::Value,
    ) -> reqwest::Response {
        deliver(
            &reqwest::Client::new(),
            &self.hook_url(),
            WEBHOOK_SECRET,
            event,
            delivery,
            payload,
        )
        .await
    }

    /// A live session on acme/widgets, its token, and the session ids.
    async fn serving_session(&self) -> (String, String, String) {
        let (sid, runner) = self
            .app
            .start_session(&self.team, &[self.fake.repo_url("acme", "widgets")])
            .await;
        let r = self.app.fetch_credential(&sid, &runner, "").await;
        assert_eq!(r.status(), 200);
        let token = r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
        (sid, runner, token)
    }

    /// An `installation` event for acme's installation; returns the status.
    async fn acme(&self, action: &str, delivery: &str) -> u16 {
        let payload = installation_event(action, 1001, "acme");
        let r = self.deliver("installation", delivery, &payload).await;
        r.status().as_u16()
    }
}

#[tokio::test]
async fn a_delivery_without_the_right_signature_changes_nothing() {
    let w = world().await;
    w.bind_acme().await;
    let (sid, runner, token) = w.serving_session().await;
    let payload = installation_event("deleted", 1001, "acme");
    let body = serde_json::to_vec(&payload).unwrap();
    let url = w.app.public_url();
    let client = reqwest::Client::new();
    let send = |sig: Option<String>, body: Vec<u8>| {
        let mut req = client
            .post(w.hook_url())
            .header("content-type", "application/json")
            .header("x-github-event", "installation")
            .header("x-github-delivery", "d-forged");
        if let Some(sig) = sig {
            req = req.header("x-hub-signature-256", sig);
        }
        req.body(body).send()
    };
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    for (sig, body) in [
        (None, body.clone()),
        (Some(signature("a guessed secret", &body)), body.clone()),
        (Some(signature(WEBHOOK_SECRET, &body)), tampered),
        (Some("sha256=zz".into()), body.clone()),
        (
            Some(signature(WEBHOOK_SECRET, &body).replace("sha256=", "sha1=")),
            body.clone(),
        ),
    ] {
        let r = send(sig, body).await.unwrap();
        expect_error(r, "invalid_signature", &url).await;
    }
    assert_eq!(w.connections().await.len(), 1, "nothing was processed");
    assert!(w.fake.token_is_live(&token));
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        w.app
            .metric(r#"lanyard_github_webhooks_total{event="installation",result="refused"}"#)
            .await,
        Some(5.0)
    );

    // The same delivery, signed, after all those: it is still new, and it applies.
    let r = w.deliver("installation", "d-forged", &payload).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_uninstall_ends_serving_on_every_replica_and_revokes_its_tokens() {
    let w = world().await;
    w.bind_acme().await;
    let replica = w.app.replica(&[]).await;
    let (sid, runner, token) = w.serving_session().await;
    // The replica has the session cached too.
    let r = replica.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 200);

    w.fake.delete_installation(1001);
    let payload = installation_event("deleted", 1001, "acme");
    let r = w.deliver("installation", "d-uninstall-1", &payload).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["ok"], true);
    assert!(w.connections().await.is_empty(), "the connection is gone");
    assert!(!w.fake.token_is_live(&token));

    let url = w.app.public_url();
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    expect_error(r, "connection_revoked", &url).await;
    // The other replica read the session less than 2 s ago (on the server's clock): it serves
    // its cached answer until they are up, and then the uninstall.
    let r = replica.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 200);
    w.app
        .clock
        .advance(chrono::Duration::from_std(SESSION_TTL).unwrap());
    let r = replica.fetch_credential(&sid, &runner, "").await;
    expect_error(r, "connection_revoked", &replica.public_url()).await;
    let audit = w.audit().await;
    let deleted = audit
        .iter()
        .find(|e| e["kind"] == "github.connection.deleted")
        .expect("audited");
    assert_eq!(deleted["actor"], "github");
}

#[tokio::test]
async fn a_redelivery_or_a_replayed_body_changes_nothing() {
    let w = world().await;
    w.bind_acme().await;
    w.fake.suspend_installation(1001, true);
    assert_eq!(w.acme("suspend", "d-suspend").await, 200);
    w.fake.suspend_installation(1001, false);
    assert_eq!(w.acme("unsuspend", "d-unsuspend").await, 200);
    assert_eq!(w.connections().await[0]["status"], "active");
    // GitHub redelivers the suspension (a retry, or a replay from its UI): it is not applied again.
    assert_eq!(w.acme("suspend", "d-suspend").await, 200);
    // Nor is the same signed body under a made-up delivery id.
    assert_eq!(w.acme("suspend", "d-replayed").await, 200);
    assert_eq!(w.connections().await[0]["status"], "active");
    let suspensions = w
        .audit()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "github.connection.suspended")
        .count();
    assert_eq!(suspensions, 1);
    assert_eq!(
        w.app
            .metric(r#"lanyard_github_webhooks_total{event="installation",result="duplicate"}"#)
            .await,
        Some(2.0)
    );
}

#[tokio::test]
async fn a_suspension_github_does_not_confirm_is_ignored() {
    let w = world().await;
    w.bind_acme().await;
    // GitHub says the installation is not suspended (the event is stale, or out of order).
    assert_eq!(w.acme("suspend", "d-stale").await, 204);
    assert_eq!(w.connections().await[0]["status"], "active");
    // While GitHub cannot be asked, the signed payload is trusted.
    w.fake.fail_with(503, None);
    let payload = installation_event("suspend", 1001, "acme");
    let mut payload_b = payload.clone();
    payload_b["installation"]["updated_at"] = 1_764_000_200.into();
    let r = w.deliver("installation", "d-unconfirmed", &payload_b).await;
    assert_eq!(r.status(), 200);
    w.fake.recover();
    assert_eq!(w.connections().await[0]["status"], "suspended");
}

#[tokio::test]
async fn a_suspended_installation_serves_nothing_until_it_is_resumed() {
    let w = world().await;
    w.bind_acme().await;
    let (sid, runner, _token) = w.serving_session().await;
    w.fake.suspend_installation(1001, true);
    assert_eq!(w.acme("suspend", "d-s1").await, 200);
    assert_eq!(w.connections().await[0]["status"], "suspended");
    let url = w.app.public_url();
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    expect_error(r, "connection_suspended", &url).await;
    // A new session on it is refused the same way once it asks for a credential.
    w.fake.suspend_installation(1001, false);
    assert_eq!(w.acme("unsuspend", "d-s2").await, 200);
    assert_eq!(w.connections().await[0]["status"], "active");
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_removed_repository_ends_the_scopes_that_held_it() {
    let w = world().await;
    w.bind_acme().await;
    let (widgets, widgets_runner, widgets_token) = w.serving_session().await;
    let (gadgets, gadgets_runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "gadgets")])
        .await;
    assert_eq!(
        w.app
            .fetch_credential(&gadgets, &gadgets_runner, "")
            .await
            .status(),
        200
    );

    w.fake.remove_repository(1001, "widgets");
    // GitHub's casing, not ours: the repository is matched without it.
    let payload = installation_repositories_event("removed", 1001, "acme", &[], &["Widgets"]);
    let r = w
        .deliver("installation_repositories", "d-rm", &payload)
        .await;
    assert_eq!(r.status(), 200);

    let url = w.app.public_url();
    let r = w.app.fetch_credential(&widgets, &widgets_runner, "").await;
    expect_error(r, "connection_revoked", &url).await;
    assert!(
        !w.fake.token_is_live(&widgets_token),
        "its token was revoked"
    );
    let r = w.app.fetch_credential(&gadgets, &gadgets_runner, "").await;
    assert_eq!(
        r.status(),
        200,
        "a scope without the repository still serves"
    );
    assert_eq!(
        w.connections().await.len(),
        1,
        "the connection itself stays"
    );
}

#[tokio::test]
async fn events_lanyard_does_not_act_on_answer_204() {
    let w = world().await;
    w.bind_acme().await;
    for (event, payload) in [
        ("installation", installation_event("created", 1001, "acme")),
        (
            "installation",
            installation_event("new_permissions_accepted", 1001, "acme"),
        ),
        (
            "installation_repositories",
            installation_repositories_event("added", 1001, "acme", &["newrepo"], &[]),
        ),
        (
            "push",
            serde_json::json!({"ref": "refs/heads/main", "installation": {"id": 1001}}),
        ),
        (
            "ping",
            serde_json::json!({"zen": "Keep it logically awesome.", "hook_id": 1}),
        ),
    ] {
        let r = w
            .deliver(
                event,
                &format!("d-{event}-{}", uuid::Uuid::new_v4()),
                &payload,
            )
            .await;
        assert_eq!(r.status(), 204, "{event}");
    }
    assert_eq!(w.connections().await[0]["status"], "active");
    // The event label is from a fixed set: a made-up event is counted as `other`.
    assert_eq!(
        w.app
            .metric(r#"lanyard_github_webhooks_total{event="other",result="ignored"}"#)
            .await,
        Some(2.0)
    );
}

#[tokio::test]
async fn a_host_without_a_webhook_secret_has_no_webhook_route() {
    let (app, fake) = app_only().await;
    let unknown = shape(app.get("/no/such/route").send().await.unwrap()).await;
    for host in [fake.host.as_str(), "ghe.unknown.test"] {
        let r = deliver(
            &reqwest::Client::new(),
            &app.url(&format!("/v1/github/webhooks/{host}")),
            WEBHOOK_SECRET,
            "installation",
            "d-1",
            &installation_event("deleted", 1001, "acme"),
        )
        .await;
        assert_eq!(shape(r).await, unknown, "{host}");
    }
}

#[tokio::test]
async fn a_huge_or_unreadable_delivery_is_refused_without_a_5xx() {
    let w = world().await;
    let url = w.app.public_url();
    // Over the 2 MB cap: refused before it is read.
    let big = vec![b' '; 3 * 1024 * 1024];
    let r = reqwest::Client::new()
        .post(w.hook_url())
        .header("x-github-event", "installation")
        .header("x-github-delivery", "d-big")
        .header("x-hub-signature-256", signature(WEBHOOK_SECRET, &big))
        .body(big)
        .send()
        .await
        .unwrap();
    expect_error(r, "payload_too_large", &url).await;
    // Signed but not JSON: 400, and the delivery id is not burnt.
    let body = b"not json".to_vec();
    let r = reqwest::Client::new()
        .post(w.hook_url())
        .header("x-github-event", "installation")
        .header("x-github-delivery", "d-garbled")
        .header("x-hub-signature-256", signature(WEBHOOK_SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    w.bind_acme().await;
    w.fake.suspend_installation(1001, true);
    assert_eq!(w.acme("suspend", "d-garbled").await, 200);
    assert_eq!(w.connections().await[0]["status"], "suspended");
}
