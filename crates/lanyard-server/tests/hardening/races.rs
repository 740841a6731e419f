//! Races between stops, mints and replicas: no token is ever left live at GitHub without a
//! live holder, and no replica serves a revoked token for long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_core::{ManualClock, Tier};
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{expect_error, TestApp, TestTeam};

/// How long GitHub takes to answer a mint in the races below: long enough for the test to act
/// while the mint is in flight, on a loaded machine.
const MINT_DELAY: Duration = Duration::from_secs(3);

/// Waits until a call is waiting out the fake's delay, i.e. is at GitHub now.
async fn at_github(fake: &FakeGithub) {
    let started = Instant::now();
    while fake.calls_delayed() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no call reached GitHub"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct World {
    app: TestApp,
    fake: FakeGithub,
    team: TestTeam,
}

async fn world() -> World {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(7, "acme", &["widgets"]);
    let app = TestApp::builder().clock(&clock).github(&fake).spawn().await;
    let team = app.create_team("Racing", Tier::Pro).await;
    let r = app.connect_installation(&team, &fake.host, "acme", 7).await;
    assert_eq!(r.status(), 201);
    World { app, fake, team }
}

impl World {
    async fn session(&self) -> (String, String) {
        self.app
            .start_session(&self.team, &[self.fake.repo_url("acme", "widgets")])
            .await
    }

    async fn token(app: &TestApp, sid: &str, runner: &str) -> Option<String> {
        let r = app.fetch_credential(sid, runner, "").await;
        if r.status() != 200 {
            return None;
        }
        let body: serde_json::Value = r.json().await.unwrap();
        Some(body["token"].as_str().unwrap().to_string())
    }

    async fn stop(&self, app: &TestApp, sid: &str) {
        app.stop_session(&self.team, sid).await;
    }
}

#[tokio::test]
async fn a_stop_while_its_token_is_minted_leaves_no_live_token() {
    let w = world().await;
    let (sid, runner) = w.session().await;
    w.fake.set_delay(MINT_DELAY);
    let app = &w.app;
    let fetching = async { app.fetch_credential(&sid, &runner, "").await };
    let stopping = async {
        // The fetch is at GitHub, waiting for its mint.
        at_github(&w.fake).await;
        w.stop(app, &sid).await;
    };
    let (r, ()) = tokio::join!(fetching, stopping);
    expect_error(r, "session_ended", &app.public_url()).await;
    assert_eq!(w.fake.mint_count(), 1, "the mint went through");
    assert_eq!(
        w.fake.live_token_count(),
        0,
        "the token minted for a stopped session was revoked"
    );
    let audit = app.store().list_audit(w.team.id, 50, None).await.unwrap();
    let revoked = audit
        .iter()
        .find(|a| a.kind == "credential.revoked")
        .unwrap();
    assert!(
        revoked.data["reason"]
            .as_str()
            .unwrap()
            .contains("no live session"),
        "{:?}",
        revoked.data
    );
}

#[tokio::test]
async fn two_holders_stopped_at_once_revoke_their_shared_token() {
    let w = world().await;
    for round in 0..5 {
        let (a, ra) = w.session().await;
        let (b, rb) = w.session().await;
        let ta = World::token(&w.app, &a, &ra).await.unwrap();
        let tb = World::token(&w.app, &b, &rb).await.unwrap();
        assert_eq!(ta, tb, "one token per scope");
        tokio::join!(w.stop(&w.app, &a), w.stop(&w.app, &b));
        assert!(
            !w.fake.token_is_live(&ta),
            "round {round}: both stopped, and the token they shared is still live"
        );
    }
}

/// A repository taken out of the installation while a live session's token is minted: the mint
/// finds no live holder of the scope, and the answer says the scope was revoked (409), not that
/// the session ended (410, which would stop the whole agent).
#[tokio::test]
async fn a_scope_revoked_during_its_mint_answers_revoked_not_ended() {
    use lanyard_testkit::fake_github::webhooks::{deliver, installation_repositories_event};
    let w = world().await;
    let (sid, runner) = w.session().await;
    w.fake.set_delay(MINT_DELAY);
    let app = &w.app;
    let fetching = async { app.fetch_credential(&sid, &runner, "").await };
    let removing = async {
        // The mint is at GitHub (waiting for its reply) when the delivery saying the
        // repository left arrives.
        at_github(&w.fake).await;
        let payload = installation_repositories_event("removed", 7, "acme", &[], &["widgets"]);
        let r = deliver(
            &reqwest::Client::new(),
            &app.url(&format!("/v1/github/webhooks/{}", w.fake.host)),
            lanyard_testkit::fake_github::WEBHOOK_SECRET,
            "installation_repositories",
            "d-removed-mid-mint",
            &payload,
        )
        .await;
        assert_eq!(r.status(), 200);
    };
    let (r, ()) = tokio::join!(fetching, removing);
    expect_error(r, "connection_revoked", &app.public_url()).await;
    w.fake.set_delay(Duration::ZERO);
    assert_eq!(
        w.fake.live_token_count(),
        0,
        "the token minted for the revoked scope was revoked"
    );
}

/// A client that gives up while its token is being minted: the mint still finishes on the
/// server, holding its lock, is stored, and is what the next request gets, even a request made
/// while GitHub is still minting. No second mint, and no token left live at GitHub that no row
/// accounts for.
#[tokio::test]
async fn a_client_gone_mid_mint_leaves_its_token_stored_not_stray() {
    let w = world().await;
    let (sid, runner) = w.session().await;
    w.fake.set_delay(MINT_DELAY);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let url = w.app.url(&format!("/v1/sessions/{sid}/credentials/github"));
    let gone = impatient.get(url).bearer_auth(&runner).send().await;
    assert!(gone.is_err(), "the client gave up before the answer");
    // The abandoned mint is still at GitHub: the next request waits for it, not mints anew.
    assert_eq!(w.fake.calls_delayed(), 1, "the mint is still at GitHub");
    let token = World::token(&w.app, &sid, &runner).await.unwrap();
    assert_eq!(
        w.fake.mint_count(),
        1,
        "the abandoned mint was stored and reused"
    );
    assert_eq!(w.fake.live_token_count(), 1);
    assert!(w.fake.token_is_live(&token));
}
