//! The broker's rules, written once, hold for any provider: a scripted in-process provider is
//! obtained from once per scope per lifetime, renewed ahead of the floor, shared between
//! concurrent callers, cooled down after a failure while its current credential is served, and
//! revoked when its last holder stops; a provider whose renewal ends the previous credential is
//! renewed one connection at a time. All on the injected clock, in-process, on SQLite (and on
//! Postgres when `TEST_DATABASE_URL` is set).

mod locks;
mod rotation;
mod scripted;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::Duration;
use lanyard_broker::provider::{Lifetime, Renewal};
use lanyard_broker::BrokerError;
use lanyard_core::{Actor, Clock, ManualClock};
use lanyard_store::testing::{execute_script, uuid_literal};
use secrecy::ExposeSecret;

use scripted::{expiring, until, worlds, Scripted, HOST};

/// A provider whose refresh ends the previous token, which lives two hours (as GitLab's does).
fn rotating_two_hours(clock: &Arc<ManualClock>) -> Arc<Scripted> {
    let rotating = Renewal::Refresh {
        revokes_previous: true,
    };
    let provider = Scripted::new(clock, rotating, Lifetime::Expiring);
    *provider.life.lock().unwrap() = Duration::hours(2);
    provider
}

#[tokio::test]
async fn an_expiring_credential_is_obtained_once_and_renewed_ahead_of_the_floor() {
    for (w, provider) in worlds(expiring).await {
        let (_, lookup) = w.session(&["widgets"]).await;
        assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-1");
        for _ in 0..50 {
            assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-1");
        }
        assert_eq!(provider.obtains(), 1, "served from the cache");
        // 60-minute life, 15-minute floor: kept until 5 minutes before the floor.
        w.clock.advance(Duration::minutes(40));
        assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-1");
        w.clock.advance(Duration::minutes(1) + Duration::seconds(1));
        assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-2");
        assert_eq!(provider.obtains(), 2);
    }
}

#[tokio::test]
async fn concurrent_callers_of_one_scope_share_one_obtain() {
    for (w, provider) in worlds(expiring).await {
        let (_, lookup) = w.session(&["widgets"]).await;
        let closed = provider.close().await;
        let session = Arc::new(w.read(&lookup).await);
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let (broker, session) = (w.broker.clone(), session.clone());
            callers.spawn(async move {
                let served = broker.credential(&session, &session.scopes[0]).await;
                served.unwrap().credential.token.expose_secret().to_string()
            });
        }
        // Every caller reaches the one obtain (or waits on it) before it is let through: each
        // runs until it waits, and only the first has anything to wait for but the obtain.
        until("the obtain begins", || provider.obtains() == 1).await;
        for _ in 0..1000 {
            tokio::task::yield_now().await;
        }
        drop(closed);
        while let Some(served) = callers.join_next().await {
            assert_eq!(served.unwrap(), "credential-1");
        }
        assert_eq!(provider.obtains(), 1);
        assert_eq!(w.coalesced(), 39, "the others waited for the one obtain");
    }
}

#[tokio::test]
async fn a_failing_provider_serves_the_current_credential_and_cools_down() {
    for (w, provider) in worlds(expiring).await {
        let (_, lookup) = w.session(&["widgets"]).await;
        assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-1");
        provider.failing.store(true, Ordering::SeqCst);
        // Due for renewal, but the provider is down: the current one still meets the floor.
        w.clock.advance(Duration::minutes(42));
        assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-1");
        let tried = provider.obtains();
        assert_eq!(tried, 2);
        // Cooling down: no call upstream for a few seconds, however many requests come.
        for _ in 0..20 {
            assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-1");
        }
        assert_eq!(provider.obtains(), tried);
        // Past the cooldown it tries again, and past the floor nothing is served.
        w.clock.advance(Duration::seconds(6));
        w.fetch(&lookup).await.unwrap();
        assert_eq!(provider.obtains(), tried + 1);
        w.clock.advance(Duration::minutes(4));
        match w.fetch(&lookup).await {
            Err(BrokerError::Unavailable { retry_after }) => assert_eq!(retry_after, Some(7)),
            other => panic!("a credential below the floor was served: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_last_holder_stopping_revokes_the_credential_upstream() {
    for (w, provider) in worlds(expiring).await {
        let (first, a) = w.session(&["widgets"]).await;
        let (second, b) = w.session(&["widgets"]).await;
        assert_eq!(w.fetch(&a).await.unwrap(), "credential-1");
        assert_eq!(w.fetch(&b).await.unwrap(), "credential-1");
        let stop = |id| {
            let (store, now) = (w.store.clone(), w.clock.now());
            let team = w.team;
            async move {
                store
                    .stop_session(team, id, &Actor::operator(), now)
                    .await
                    .unwrap()
                    .unwrap()
                    .revoke
            }
        };
        // Another session still holds it: nothing is revoked.
        assert_eq!(w.broker.revoke(stop(first).await).await, 0);
        assert!(provider.revoked.lock().unwrap().is_empty());
        assert_eq!(w.broker.revoke(stop(second).await).await, 1);
        assert_eq!(*provider.revoked.lock().unwrap(), ["credential-1"]);
    }
}

#[tokio::test]
async fn a_refresh_provider_renews_a_connection_once_for_all_its_scopes_and_a_mint_each_scope() {
    for renewal in [
        Renewal::Mint,
        Renewal::Refresh {
            revokes_previous: false,
        },
    ] {
        let make = |clock: &Arc<ManualClock>| Scripted::new(clock, renewal, Lifetime::Expiring);
        for (w, provider) in worlds(make).await {
            // Two scopes of one connection, asked for at once.
            let (_, a) = w.session(&["widgets"]).await;
            let (_, b) = w.session(&["gadgets"]).await;
            let closed = provider.close().await;
            let fetches = tokio::spawn({
                let (broker, a, b) = (w.broker.clone(), w.read(&a).await, w.read(&b).await);
                async move {
                    let (x, y) = tokio::join!(
                        broker.credential(&a, &a.scopes[0]),
                        broker.credential(&b, &b.scopes[0])
                    );
                    let secret =
                        |s: lanyard_broker::Served| s.credential.token.expose_secret().to_string();
                    (secret(x.unwrap()), secret(y.unwrap()))
                }
            });
            match renewal {
                // Both callers hold an upstream slot before any obtain finishes: both are past
                // everything but the lock and the provider, and both scopes are minting.
                Renewal::Mint => {
                    until("both callers hold a slot", || w.slots_held() == 2).await;
                    until("both scopes are minting", || {
                        provider.in_flight.load(Ordering::SeqCst) == 2
                    })
                    .await;
                }
                // The connection's scopes share one key: one caller refreshes, the other waits
                // for its answer.
                Renewal::Refresh { .. } => {
                    until("one refresh is running", || {
                        provider.in_flight.load(Ordering::SeqCst) == 1
                    })
                    .await;
                }
            }
            drop(closed);
            let (x, y) = fetches.await.unwrap();
            let most = provider.most_in_flight.load(Ordering::SeqCst);
            match renewal {
                Renewal::Mint => {
                    assert_eq!(most, 2, "distinct scopes are minted side by side");
                    assert_eq!(provider.obtains(), 2);
                    assert_ne!(x, y);
                }
                Renewal::Refresh { .. } => {
                    assert_eq!(most, 1, "one refresh per connection");
                    assert_eq!(provider.obtains(), 1, "the connection's scopes share it");
                    assert_eq!(x, y);
                }
            }
        }
    }
}

#[tokio::test]
async fn a_static_credential_is_opened_each_time_and_never_served_past_its_expiry() {
    let make = |clock: &Arc<ManualClock>| Scripted::new(clock, Renewal::Mint, Lifetime::Static);
    for (w, provider) in worlds(make).await {
        let (_, lookup) = w.session(&["widgets"]).await;
        assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-1");
        assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-2");
        assert_eq!(provider.obtains(), 2, "static credentials are not cached");
        // What the connection holds has reached its expiry: refused, naming the connection.
        *provider.life.lock().unwrap() = Duration::zero();
        match w.fetch(&lookup).await {
            Err(BrokerError::Expired { host, owner, .. }) => {
                assert_eq!((host.as_str(), owner.as_str()), (HOST, "acme"));
            }
            other => panic!("an expired credential was served: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_credential_its_refresh_ends_is_served_with_its_rotation_instant_and_rotated_then() {
    for (w, provider) in worlds(rotating_two_hours).await {
        let (_, lookup) = w.session(&["widgets"]).await;
        let rotation = w.clock.now() + Duration::minutes(115);
        let served = w.serve(&lookup).await.unwrap();
        assert_eq!(served.expires_at, Some(rotation));
        // Never rotated before the instant its holders were told...
        w.clock.set(rotation);
        assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-1");
        assert_eq!(provider.obtains(), 1);
        // ...and rotated just after it, the successor served with its own.
        w.clock.advance(Duration::seconds(1));
        let next = w.serve(&lookup).await.unwrap();
        assert_eq!(next.credential.token.expose_secret(), "credential-2");
        assert_eq!(
            next.expires_at,
            Some(w.clock.now() + Duration::minutes(115))
        );
    }
}

/// A refresh is made with the connection as it is when the refresh begins, not as a session
/// read up to 2 s before saw it: another replica may have rotated its refresh token since.
#[tokio::test]
async fn a_refresh_reads_its_connection_afresh_and_a_mint_needs_not() {
    for renewal in [
        Renewal::Mint,
        Renewal::Refresh {
            revokes_previous: false,
        },
    ] {
        let make = |clock: &Arc<ManualClock>| Scripted::new(clock, renewal, Lifetime::Expiring);
        for (w, provider) in worlds(make).await {
            let (_, lookup) = w.session(&["widgets"]).await;
            let read_before = w.read(&lookup).await;
            let id = uuid_literal(w.url.dialect(), w.connection.id);
            let sql = format!("UPDATE github_connections SET installation_id = 43 WHERE id = {id}");
            execute_script(&w.url, &sql).await;
            let served = w
                .broker
                .credential(&read_before, &read_before.scopes[0])
                .await;
            // (A mint's token is then refused by the store's holder check, and the caller's
            // second try reads the session afresh: what matters is the first call upstream.)
            let first = provider.seen.lock().unwrap()[0];
            match renewal {
                Renewal::Mint => assert_eq!(first, Some(42), "a mint trusts the session's read"),
                Renewal::Refresh { .. } => {
                    assert_eq!(first, Some(43), "a refresh reads its connection afresh");
                    served.unwrap();
                }
            }
        }
    }
}

#[tokio::test]
async fn past_its_rotation_a_credential_its_refresh_ends_is_served_only_while_the_provider_is_down()
{
    for (w, provider) in worlds(rotating_two_hours).await {
        let (_, lookup) = w.session(&["widgets"]).await;
        let start = w.clock.now();
        assert_eq!(w.fetch(&lookup).await.unwrap(), "credential-1");
        provider.failing.store(true, Ordering::SeqCst);
        // Due for rotation, but the provider is down: the current one is still live (nothing
        // rotated it), and is served with its true expiry.
        w.clock
            .set(start + Duration::minutes(115) + Duration::seconds(1));
        let served = w.serve(&lookup).await.unwrap();
        assert_eq!(served.credential.token.expose_secret(), "credential-1");
        assert_eq!(served.expires_at, Some(start + Duration::hours(2)));
        // Never within its last 30 seconds.
        w.clock
            .set(start + Duration::hours(2) - Duration::seconds(29));
        match w.fetch(&lookup).await {
            Err(BrokerError::Unavailable { .. }) => {}
            other => panic!("a dying credential was served: {other:?}"),
        }
    }
}
