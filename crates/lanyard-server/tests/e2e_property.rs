//! Property: random interleavings of creates, reaps of test teams and reaps aimed at real teams
//! never delete a real team, never answer 5xx, and never leave a half-created test team.

use lanyard_core::{Actor, Tier};
use lanyard_server::domain::e2e::{self, E2eError};
use lanyard_testkit::TestApp;
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Create { with_resources: bool },
    ReapTest(usize),
    ReapReal(usize),
    ReapUnknown,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<bool>().prop_map(|with_resources| Op::Create { with_resources }),
        (0..8usize).prop_map(Op::ReapTest),
        (0..3usize).prop_map(Op::ReapReal),
        Just(Op::ReapUnknown),
    ]
}

enum Done {
    Created(Uuid, Uuid),
    Reaped,
    RefusedReal,
}

async fn run(batches: Vec<Vec<Op>>) {
    let app = TestApp::spawn().await;
    let mut reals = Vec::new();
    for i in 0..3 {
        reals.push(app.create_team(&format!("Real {i}"), Tier::Pro).await);
    }
    let mut created: Vec<(Uuid, Uuid)> = Vec::new();
    for batch in batches {
        let mut tasks = tokio::task::JoinSet::new();
        for op in batch {
            let state = app.services().clone();
            let target = match &op {
                Op::ReapTest(i) if !created.is_empty() => created[i % created.len()].0,
                Op::ReapReal(i) => reals[*i].id,
                _ => Uuid::new_v4(),
            };
            tasks.spawn(async move {
                match op {
                    Op::Create { with_resources } => {
                        let account = e2e::create(&state, Tier::Free, with_resources)
                            .await
                            .expect("create never fails");
                        Done::Created(account.team_id, account.user_id)
                    }
                    Op::ReapReal(_) => match e2e::reap(&state, target, &Actor::e2e()).await {
                        Err(E2eError::NotTestCohort) => Done::RefusedReal,
                        other => panic!("a real team must be refused, got {other:?}"),
                    },
                    Op::ReapTest(_) | Op::ReapUnknown => {
                        e2e::reap(&state, target, &Actor::e2e())
                            .await
                            .expect("reaps never fail");
                        Done::Reaped
                    }
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Done::Created(team, user) = done.expect("no panic") {
                created.push((team, user));
            }
        }
    }
    for real in &reals {
        assert!(
            app.store().get_team(real.id).await.unwrap().is_some(),
            "a real team was deleted"
        );
        assert!(app
            .store()
            .user_principal(real.user_id, real.id)
            .await
            .unwrap()
            .is_some());
    }
    for (team, user) in created {
        let audit = app.store().list_audit(team, 100, None).await.unwrap();
        assert!(
            audit.iter().any(|a| a.kind == "e2e.account.created"),
            "created is always audited"
        );
        match app.store().get_team(team).await.unwrap() {
            None => {
                assert!(app
                    .store()
                    .user_principal(user, team)
                    .await
                    .unwrap()
                    .is_none());
                assert!(
                    audit.iter().any(|a| a.kind == "e2e.account.reaped"),
                    "a reap is always audited"
                );
            }
            Some(t) => {
                assert!(t.is_test_cohort);
                assert!(
                    app.store()
                        .user_principal(user, team)
                        .await
                        .unwrap()
                        .is_some(),
                    "half-created team"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn interleavings_never_touch_real_teams(batches in prop::collection::vec(prop::collection::vec(op(), 1..6), 1..5)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(batches));
    }
}
