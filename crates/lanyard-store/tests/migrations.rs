//! Migrations: a database made by the pre-sqlx migration runner upgrades in place with its rows
//! intact, and an applied migration that was edited stops start-up naming it. Both dialects.

use chrono::{Duration, Utc};
use lanyard_core::github::{Access, Permission, PermissionSet};
use lanyard_core::{Actor, BearerSecret, Tier};
use lanyard_store::testing::{databases_under_test, execute_script, uuid_literal as uuid};
use lanyard_store::{DatabaseUrl, Dialect, Store};
use tempfile::TempDir;
use uuid::Uuid;

/// The bookkeeping table of the pre-sqlx runner, and its two migrations as released.
fn legacy_schema(dialect: Dialect) -> String {
    let (accounts, github) = match dialect {
        Dialect::Sqlite => (
            include_str!("../migrations/sqlite/0001_accounts.sql"),
            include_str!("../migrations/sqlite/0002_github.sql"),
        ),
        Dialect::Postgres => (
            include_str!("../migrations/postgres/0001_accounts.sql"),
            include_str!("../migrations/postgres/0002_github.sql"),
        ),
    };
    format!(
        "CREATE TABLE lanyard_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         applied_at TEXT NOT NULL);\n{accounts}\n{github}\n\
         INSERT INTO lanyard_migrations VALUES (1, '0001_accounts', '2026-11-01T00:00:00Z');\n\
         INSERT INTO lanyard_migrations VALUES (2, '0002_github', '2026-11-01T00:00:00Z');\n"
    )
}

fn bytes(dialect: Dialect, hex: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("X'{hex}'"),
        Dialect::Postgres => format!("'\\x{hex}'::bytea"),
    }
}

struct Legacy {
    team: Uuid,
    key: BearerSecret,
    runner: BearerSecret,
    wide_runner: BearerSecret,
}

/// Rows as the pre-sqlx binary wrote them: JSON in TEXT columns, actors as `kind:id` strings,
/// and one session that asked for `{}` permissions.
fn legacy_rows(d: Dialect, l: &Legacy) -> String {
    let now = (Utc::now() - Duration::minutes(5)).to_rfc3339();
    let later = (Utc::now() + Duration::hours(2)).to_rfc3339();
    let (team, conn, s1, s2, tok) = (
        uuid(d, l.team),
        uuid(d, Uuid::new_v4()),
        uuid(d, Uuid::new_v4()),
        uuid(d, Uuid::new_v4()),
        uuid(d, Uuid::new_v4()),
    );
    let key_id = uuid(d, Uuid::new_v4());
    let t = if d == Dialect::Postgres { "TRUE" } else { "1" };
    let scopes = |session: &str| {
        format!(
            "INSERT INTO session_scopes VALUES ({session}, 'github.com', 'acme', 'k1', '[\"widgets\"]');\n"
        )
    };
    format!(
        "INSERT INTO teams (id, name, tier, is_test_cohort, created_at, sessions_created) \
         VALUES ({team}, 'Legacy Co', 'pro', FALSE, '{now}', 2);\n\
         INSERT INTO users VALUES ({uid}, {team}, 'dev@legacy.test', {t}, {t}, '{now}');\n\
         INSERT INTO api_keys VALUES ({key_id}, {team}, 'default', '{kl}', '{kh}', '{now}', NULL);\n\
         INSERT INTO github_connections VALUES ({conn}, {team}, 'github.com', 'acme', \
         'github_app', 7, NULL, '{now}');\n\
         INSERT INTO sessions VALUES ({s1}, {team}, '{rl}', '{rh}', '[\"https://github.com/acme/widgets\"]', \
         '{{\"contents\":\"write\",\"metadata\":\"read\"}}', '{now}', '{later}', NULL);\n\
         INSERT INTO sessions VALUES ({s2}, {team}, '{wl}', '{wh}', '[\"https://github.com/acme/widgets\"]', \
         '{{}}', '{now}', '{later}', NULL);\n\
         {sc1}{sc2}\
         INSERT INTO github_tokens VALUES ({tok}, {team}, 'k1', 'github.com', 7, {ct}, \
         '[\"widgets\"]', '{{\"contents\":\"write\",\"brand_new_permission\":\"read\"}}', '{now}', '{later}', NULL);\n\
         INSERT INTO audit_events (team_id, kind, actor, subject, data, created_at) \
         VALUES ({team}, 'team.created', 'cli:admin', NULL, '{{\"name\":\"Legacy Co\"}}', '{now}');\n",
        uid = uuid(d, Uuid::new_v4()),
        kl = l.key.lookup,
        kh = l.key.hash,
        rl = l.runner.lookup,
        rh = l.runner.hash,
        wl = l.wide_runner.lookup,
        wh = l.wide_runner.hash,
        sc1 = scopes(&s1),
        sc2 = scopes(&s2),
        ct = bytes(d, "00112233445566778899aabbccddeeff"),
    )
}

async fn upgraded(url: &DatabaseUrl) -> (Store, Legacy) {
    let legacy = Legacy {
        team: Uuid::new_v4(),
        key: BearerSecret::generate(lanyard_core::SecretKind::ApiKey),
        runner: BearerSecret::generate(lanyard_core::SecretKind::RunnerToken),
        wide_runner: BearerSecret::generate(lanyard_core::SecretKind::RunnerToken),
    };
    let script = legacy_schema(url.dialect()) + &legacy_rows(url.dialect(), &legacy);
    execute_script(url, &script).await;
    let store = Store::connect(url).await.unwrap();
    let applied = store.migrate().await.expect("the legacy database upgrades");
    let released = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(
        applied,
        released - 2,
        "only the migrations after the legacy ones run"
    );
    (store, legacy)
}

#[tokio::test]
async fn a_legacy_database_upgrades_in_place_with_its_rows() {
    let dir = TempDir::new().unwrap();
    for url in databases_under_test(dir.path()).await {
        let (store, legacy) = upgraded(&url).await;
        let who = format!("{:?}", url.dialect());

        let team = store
            .get_team(legacy.team)
            .await
            .unwrap()
            .expect("team kept");
        assert_eq!(
            (team.name.as_str(), team.tier),
            ("Legacy Co", Tier::Pro),
            "{who}"
        );
        let key = store.api_key_principal(&legacy.key.lookup).await.unwrap();
        assert!(key.expect("key kept").hash == legacy.key.hash, "{who}");

        let runner = store.runner_session(&legacy.runner.lookup).await.unwrap();
        let runner = runner.expect("session kept");
        assert_eq!(
            runner.session.repos,
            ["https://github.com/acme/widgets"],
            "{who}"
        );
        assert_eq!(
            runner.session.permissions.get(Permission::Contents),
            Some(Access::Write),
            "{who}"
        );
        assert_eq!(runner.primary_email.as_deref(), Some("dev@legacy.test"));
        let scope = &runner.scopes[0];
        assert_eq!(
            (scope.owner.as_str(), scope.repositories.len()),
            ("acme", 1)
        );
        assert_eq!(
            scope.connection().unwrap().installation_id.map(|i| i.get()),
            Some(7)
        );

        let wide = store
            .runner_session(&legacy.wide_runner.lookup)
            .await
            .unwrap();
        assert_eq!(
            wide.unwrap().session.permissions,
            PermissionSet::defaults(),
            "{who}: an old empty set became the documented defaults"
        );

        let token = store.latest_token("k1").await.unwrap().expect("token kept");
        assert_eq!(token.permissions["brand_new_permission"], "read", "{who}");
        assert_eq!(token.ciphertext.len(), 16);

        let audit = store.list_audit(legacy.team, 10, None).await.unwrap();
        assert_eq!(
            (audit[0].actor.as_str(), audit[0].data["name"].as_str()),
            ("cli:admin", Some("Legacy Co"))
        );

        assert_eq!(store.migrate().await.unwrap(), 0, "{who}: idempotent");
        let again = Store::connect(&url).await.unwrap();
        assert_eq!(
            again.migrate().await.unwrap(),
            0,
            "{who}: a restart adopts nothing twice"
        );
        // New rows write through the new schema beside the old ones.
        let actor = Actor::operator();
        assert!(store
            .revoke_api_key(
                legacy.team,
                key_id(&store, legacy.team).await,
                &actor,
                Utc::now()
            )
            .await
            .unwrap());
    }
}

async fn key_id(store: &Store, team: Uuid) -> Uuid {
    store.list_api_keys(team).await.unwrap()[0].id
}

#[tokio::test]
async fn an_edited_applied_migration_stops_start_up_naming_it() {
    let dir = TempDir::new().unwrap();
    for url in databases_under_test(dir.path()).await {
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let tamper = match url.dialect() {
            Dialect::Sqlite => "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 2",
            Dialect::Postgres => {
                "UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea WHERE version = 2"
            }
        };
        execute_script(&url, tamper).await;
        let store = Store::connect(&url).await.unwrap();
        let err = store.migrate().await.unwrap_err().to_string();
        assert!(
            err.contains("0002_github") && err.contains("edited"),
            "{:?}: {err}",
            url.dialect()
        );
    }
}

#[tokio::test]
async fn a_database_from_a_newer_lanyard_is_refused() {
    let dir = TempDir::new().unwrap();
    for url in databases_under_test(dir.path()).await {
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let future = bytes(url.dialect(), "00");
        execute_script(
            &url,
            &format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (9999, 'from the future', TRUE, {future}, 0)"
            ),
        )
        .await;
        let err = store.migrate().await.unwrap_err().to_string();
        assert!(err.contains("9999") && err.contains("newer"), "{err}");
    }
}
