//! `[e2e_seed]`: with a seed configured, a test account's seeded runner token fetches a real
//! credential for the seed's repositories, and the reap revokes it at GitHub.

use std::sync::Arc;

use lanyard_core::ManualClock;
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{write_private, TestApp};

use crate::{create, reap, token};

async fn seeded_app(
    seed: &str,
    fake: &FakeGithub,
    clock: &ManualClock,
) -> (TestApp, String, tempfile::TempDir) {
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("lanyard.toml");
    write_private(&config, seed);
    let t = token();
    let app = TestApp::builder()
        .clock(clock)
        .github(fake)
        .env("LANYARD_E2E_ACCOUNT_TOKEN", &t)
        .env("LANYARD_CONFIG", config.to_str().unwrap())
        .spawn()
        .await;
    (app, t, dir)
}

/// Creates a seeded account, fetches its credential, reaps it: the token it got, now dead.
async fn seeded_round_trip(app: &TestApp, t: &str, owner: &str, repo: &str) -> String {
    let account: serde_json::Value =
        create(app, t, Some(serde_json::json!({"with_resources": true})))
            .await
            .json()
            .await
            .unwrap();
    let seeded = &account["seeded_tokens"][0];
    let session = seeded["session_id"].as_str().unwrap();
    let runner_token = seeded["token"].as_str().unwrap();
    let r = app.fetch_credential(session, runner_token, "").await;
    assert_eq!(r.status(), 200, "the seeded token fetches a credential");
    let credential: serde_json::Value = r.json().await.unwrap();
    assert_eq!(credential["owner"], owner);
    assert_eq!(credential["repositories"], serde_json::json!([repo]));
    let team = account["team_id"].as_str().unwrap();
    let reaped: serde_json::Value = reap(app, t, team).await.json().await.unwrap();
    assert_eq!(reaped["sessions_stopped"], 1, "{reaped}");
    credential["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_installation_seed_gives_a_working_session_that_the_reap_revokes() {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(77, "ci-org", &["integration", "other"]);
    let seed = format!(
        "[e2e_seed]\nhost = \"{}\"\nowner = \"ci-org\"\ninstallation_id = 77\nrepos = [\"integration\"]\n",
        fake.host
    );
    let (app, t, _dir) = seeded_app(&seed, &fake, &clock).await;
    let token = seeded_round_trip(&app, &t, "ci-org", "integration").await;
    assert!(!fake.token_is_live(&token), "the reap revoked it at GitHub");
    assert_eq!(fake.revocation_count(), 1);
    assert_eq!(
        fake.mints()[0].repositories,
        vec!["integration".to_string()],
        "scoped to the seed's repositories"
    );
}

#[tokio::test]
async fn a_pat_seed_serves_the_pat() {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    let pat = format!("github_pat_{}", uuid::Uuid::new_v4().simple());
    fake.add_pat(&pat, "ci-user", &["tests"]);
    let pat_dir = tempfile::TempDir::new().unwrap();
    let pat_file = pat_dir.path().join("pat");
    write_private(&pat_file, format!("{pat}\n"));
    let seed = format!(
        "[e2e_seed]\nhost = \"{}\"\nowner = \"ci-user\"\npat_file = \"{}\"\nrepos = [\"tests\"]\n",
        fake.host,
        pat_file.display()
    );
    let (app, t, _dir) = seeded_app(&seed, &fake, &clock).await;
    let served = seeded_round_trip(&app, &t, "ci-user", "tests").await;
    assert_eq!(served, pat);
    // The file is read at each seeding, through a 4 KiB cap: the same PAT padded past it (it
    // would trim to a good one) makes no account.
    write_private(&pat_file, format!("{pat}\n{}", " ".repeat(5000)));
    let r = create(&app, &t, Some(serde_json::json!({"with_resources": true}))).await;
    assert_eq!(r.status(), 500, "a PAT file past the cap made an account");
    let test_teams = lanyard_testkit::count(
        &app.database_url,
        "SELECT COUNT(*) FROM teams WHERE is_test_cohort = TRUE",
    )
    .await;
    assert_eq!(test_teams, 0, "the half-made account was removed");
}

#[tokio::test]
async fn a_seed_that_a_customer_team_has_connected_is_refused_and_leaves_nothing() {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(77, "customer-org", &["product"]);
    let seed = format!(
        "[e2e_seed]\nhost = \"{}\"\nowner = \"customer-org\"\ninstallation_id = 77\nrepos = [\"product\"]\n",
        fake.host
    );
    let (app, t, _dir) = seeded_app(&seed, &fake, &clock).await;
    let customer = app.create_team("Customer", lanyard_core::Tier::Pro).await;
    let r = app
        .connect_installation(&customer, &fake.host, "customer-org", 77)
        .await;
    assert_eq!(r.status(), 201);
    let r = create(&app, &t, Some(serde_json::json!({"with_resources": true}))).await;
    assert_eq!(r.status(), 500, "the operator's seed is wrong: no account");
    let test_teams = lanyard_testkit::count(
        &app.database_url,
        "SELECT COUNT(*) FROM teams WHERE is_test_cohort = TRUE",
    )
    .await;
    assert_eq!(test_teams, 0, "the half-made account was removed");
    assert_eq!(
        fake.mint_count(),
        0,
        "no token for the customer's repositories"
    );
    // Without resources the account needs no seed and is made as before.
    let r = create(&app, &t, None).await;
    assert_eq!(r.status(), 200);
}
