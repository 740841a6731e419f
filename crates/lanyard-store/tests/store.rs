//! The store's behaviour, on SQLite always and on Postgres when `TEST_DATABASE_URL` is set.

use chrono::{Duration, Utc};
use lanyard_core::{Actor, AuditKind, BearerSecret, Email, Label, SecretKind, TeamName, Tier};
use lanyard_store::testing::databases_under_test;
use lanyard_store::{AuditEvent, DatabaseUrl, NewApiKey, NewTeam, Store};
use tempfile::TempDir;

struct Backend {
    store: Store,
    url: DatabaseUrl,
    _dir: TempDir,
}

async fn backends() -> Vec<Backend> {
    let dir = TempDir::new().unwrap();
    let mut out = Vec::new();
    for url in databases_under_test(dir.path()).await {
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        out.push(Backend {
            store,
            url,
            _dir: TempDir::new().unwrap(),
        });
    }
    // keep the sqlite directory alive for the first backend
    out[0]._dir = dir;
    out
}

fn new_team(name: &str, email: Option<&str>) -> NewTeam {
    NewTeam {
        name: TeamName::parse(name).unwrap(),
        tier: Tier::Hobby,
        is_test_cohort: false,
        primary_user: email.map(|e| Email::parse(e).unwrap()),
        external_id: None,
        notification_email: None,
        actor: Actor::operator(),
        extra_audit: vec![],
    }
}

fn new_key() -> (BearerSecret, NewApiKey) {
    let secret = BearerSecret::generate(SecretKind::ApiKey);
    let key = NewApiKey {
        label: Label::default_label(),
        lookup: secret.lookup.clone(),
        hash: secret.hash.clone(),
    };
    (secret, key)
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for b in backends().await {
        assert_eq!(
            b.store.migrate().await.unwrap(),
            0,
            "{:?}",
            b.store.dialect()
        );
        b.store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn created_team_is_found_through_its_key_and_user() {
    for b in backends().await {
        let (secret, key) = new_key();
        let now = Utc::now();
        let created = b
            .store
            .create_team(&new_team("Acme", Some("dev@acme.test")), Some(&key), now)
            .await
            .unwrap();
        let presented = BearerSecret::parse(secret.expose()).unwrap();
        let p = b
            .store
            .api_key_principal(presented.lookup)
            .await
            .unwrap()
            .unwrap();
        assert!(presented.matches(&p.hash));
        assert_eq!(p.team.id, created.team.id);
        assert_eq!(p.team.name, "Acme");
        assert_eq!(p.team.tier, Tier::Hobby);
        assert!((p.team.created_at - now).num_milliseconds().abs() < 1000);

        let u = b
            .store
            .user_principal(created.user_id.unwrap(), created.team.id)
            .await
            .unwrap();
        assert_eq!(u.unwrap().email, "dev@acme.test");
        // A user id paired with another team's id is not found.
        let other = b
            .store
            .create_team(&new_team("Other", None), None, now)
            .await
            .unwrap();
        assert!(b
            .store
            .user_principal(created.user_id.unwrap(), other.team.id)
            .await
            .unwrap()
            .is_none());
        assert!(b
            .store
            .api_key_principal("nosuchlook")
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn audit_lists_newest_first_pages_and_outlives_the_team() {
    for b in backends().await {
        let (_, key) = new_key();
        let now = Utc::now();
        let mut team = new_team("Audited", None);
        team.is_test_cohort = true;
        team.extra_audit = (0..3)
            .map(|i| AuditEvent::new(AuditKind::SessionCreated, Actor::operator()).subject(i))
            .collect();
        let created = b.store.create_team(&team, Some(&key), now).await.unwrap();
        let all = b
            .store
            .list_audit(created.team.id, 100, None)
            .await
            .unwrap();
        let kinds: Vec<&str> = all.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "session.created",
                "session.created",
                "session.created",
                "api_key.created",
                "team.created"
            ]
        );
        assert!(all.windows(2).all(|w| w[0].id > w[1].id));

        let page1 = b.store.list_audit(created.team.id, 2, None).await.unwrap();
        let page2 = b
            .store
            .list_audit(created.team.id, 2, Some(page1[1].id))
            .await
            .unwrap();
        assert_eq!(page1.len(), 2);
        assert_eq!(
            page2.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![all[2].id, all[3].id]
        );

        let reaped = AuditEvent::new(AuditKind::E2eAccountReaped, Actor::e2e());
        let real = b
            .store
            .create_team(&new_team("Real", None), None, now)
            .await
            .unwrap();
        assert!(
            !b.store
                .delete_test_team(real.team.id, Some(&reaped), now)
                .await
                .unwrap(),
            "never a real team"
        );
        assert!(b.store.get_team(real.team.id).await.unwrap().is_some());
        assert!(b
            .store
            .delete_test_team(created.team.id, Some(&reaped), now + Duration::seconds(1))
            .await
            .unwrap());
        assert!(b.store.get_team(created.team.id).await.unwrap().is_none());
        assert!(
            b.store
                .api_key_principal(&key.lookup)
                .await
                .unwrap()
                .is_none(),
            "key went with the team"
        );
        let after = b
            .store
            .list_audit(created.team.id, 100, None)
            .await
            .unwrap();
        assert_eq!(after.len(), all.len() + 1, "records survive the team");
        assert_eq!(after[0].kind, "e2e.account.reaped");
        assert!(!b
            .store
            .delete_test_team(created.team.id, Some(&reaped), now)
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn a_failed_create_leaves_nothing_behind() {
    for b in backends().await {
        let (_, key) = new_key();
        let now = Utc::now();
        let first = b
            .store
            .create_team(&new_team("First", None), Some(&key), now)
            .await
            .unwrap();
        // Reusing the key's lookup violates its unique index after the team row was written.
        let err = b
            .store
            .create_team(&new_team("Second", None), Some(&key), now)
            .await;
        assert!(err.is_err());
        // Only the first team's records exist: nothing of "Second" was committed.
        let dump = lanyard_store::testing::dump_text(&b.url).await;
        assert!(dump.contains("First"), "the dump reads real rows");
        assert!(
            !dump.contains("Second"),
            "the failed create left a row behind"
        );
        assert_eq!(
            b.store
                .list_audit(first.team.id, 100, None)
                .await
                .unwrap()
                .len(),
            2
        );
        let p = b
            .store
            .api_key_principal(&key.lookup)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.team.name, "First");
    }
}
