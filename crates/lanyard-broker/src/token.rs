//! A token as the broker serves it from memory: the secret, its life, its scope, and its
//! rendered response.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::provider::Renewal;

/// Tokens are replaced at most this long before they would stop meeting the floor.
const MAX_REFRESH_AHEAD: chrono::Duration = chrono::Duration::minutes(5);

/// A credential as served: the token, its life, and its scope. `Debug` shows neither the token
/// nor the rendered body that holds it.
pub struct CachedToken {
    pub token: SecretString,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub repositories: Vec<String>,
    /// As GitHub granted them.
    pub permissions: BTreeMap<String, String>,
    /// The serving edge's rendering of this credential, made on first use: every session served
    /// this token shares its scope (the cache key), so the rendering is the same for all of them.
    /// Shared: each answer holds a reference to it, not a copy. Plain bytes: the broker knows
    /// nothing of how they are served.
    pub rendered: OnceLock<Bytes>,
    /// Its row in the store, when it has one.
    pub stored_id: Option<uuid::Uuid>,
    /// Where in the order of this replica's session reads and cached tokens it was obtained
    /// ([`super::cache::Caches::next_mark`]): a session read begun before cannot know of it; one
    /// begun after says whether it is still the scope's live token.
    pub mark: u64,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("repositories", &self.repositories)
            .field("rendered", &self.rendered.get().is_some())
            .finish_non_exhaustive()
    }
}

impl CachedToken {
    /// A token as minted at `created_at` (and so in memory since then).
    pub fn new(
        token: SecretString,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        repositories: Vec<String>,
        permissions: BTreeMap<String, String>,
    ) -> Self {
        Self {
            token,
            created_at,
            expires_at,
            repositories,
            permissions,
            rendered: OnceLock::new(),
            stored_id: None,
            mark: 0,
        }
    }

    /// The token as stored under `id`.
    pub fn stored_as(mut self, id: uuid::Uuid) -> Self {
        self.stored_id = Some(id);
        self
    }

    /// The token as obtained at `mark` (see [`Self::mark`]).
    pub fn marked(mut self, mark: u64) -> Self {
        self.mark = mark;
        self
    }

    /// Whether a session read begun at `read_mark`, which found `live` to be its scope's newest
    /// live token, leaves this cached token servable: the read could not know of it (it was
    /// obtained after the read began, live then), or it found this very token. Otherwise it was
    /// revoked since, on any replica, or replaced. Ordered by marks, not times: two events in
    /// the same clock tick (or on a test's stopped clock) still have an order.
    pub fn seen_live(&self, read_mark: u64, live: Option<uuid::Uuid>) -> bool {
        self.mark > read_mark || (self.stored_id.is_some() && self.stored_id == live)
    }
}

impl CachedToken {
    /// Meets its provider's guarantee at `now`: may be served.
    pub fn servable(&self, now: DateTime<Utc>, rule: Freshness) -> bool {
        now < self.expires_at && now <= rule.serve_until(self.created_at, self.expires_at)
    }

    /// Meets the guarantee with time to spare: served without trying to renew it.
    pub fn fresh(&self, now: DateTime<Utc>, rule: Freshness) -> bool {
        now < self.expires_at && now <= rule.renew_at(self.created_at, self.expires_at)
    }

    /// The expiry it is served with at `now`: its true one, or, for a credential whose renewal
    /// ends it, the instant Lanyard rotates it (CONTRACT §14), so every holder sees the rotation
    /// coming. Past that instant it is served only while the provider cannot rotate it, and
    /// then with its true expiry.
    pub fn served_expiry(&self, now: DateTime<Utc>, rule: Freshness) -> DateTime<Utc> {
        if rule.renewal.ends_previous() {
            let rotation = rule.rotation(self.created_at, self.expires_at);
            if now <= rotation {
                return rotation;
            }
        }
        self.expires_at
    }
}

/// How one provider's credentials are kept fresh: the configured floor
/// (`token_min_remaining`) applied by the provider's [`Renewal`] (CONTRACT §6 and §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub floor: chrono::Duration,
    pub renewal: Renewal,
}

impl Freshness {
    /// The last instant a credential obtained at `created`, ending at `expires`, is served.
    ///
    /// - Minted: with at least the floor left.
    /// - Refreshed, the previous living on: with at least the floor left, or, when it lives less
    ///   than the floor, at least half its life.
    /// - Refreshed, the previous ended by it: it is rotated at [`Self::rotation`] and served
    ///   past that only while the provider cannot rotate it (a transient failure), until
    ///   shortly before it dies.
    pub fn serve_until(&self, created: DateTime<Utc>, expires: DateTime<Utc>) -> DateTime<Utc> {
        let life = expires - created;
        let left = match self.renewal {
            Renewal::Mint => self.floor,
            Renewal::Refresh {
                revokes_previous: false,
            } if life < self.floor => life / 2,
            Renewal::Refresh {
                revokes_previous: false,
            } => self.floor,
            Renewal::Refresh {
                revokes_previous: true,
            } => (life / 4).min(LAST_SERVED_BEFORE_DEATH),
        };
        minus(expires, left)
    }

    /// When a credential whose renewal ends it is rotated: 5 minutes before its expiry, or
    /// halfway through its life when it lives under 10 minutes.
    pub fn rotation(&self, created: DateTime<Utc>, expires: DateTime<Utc>) -> DateTime<Utc> {
        let life = expires - created;
        if life < ROTATE_HALFWAY_BELOW {
            created.checked_add_signed(life / 2).unwrap_or(expires)
        } else {
            minus(expires, ROTATE_BEFORE_EXPIRY)
        }
    }

    /// The last instant it is served without trying to renew it. A credential whose renewal
    /// ends it: its rotation, and never earlier. Otherwise ahead of [`Self::serve_until`] by
    /// half the time between obtaining it and then (at most [`MAX_REFRESH_AHEAD`]), so callers
    /// keep being served the current one while one of them renews it.
    pub fn renew_at(&self, created: DateTime<Utc>, expires: DateTime<Utc>) -> DateTime<Utc> {
        if self.renewal.ends_previous() {
            return self.rotation(created, expires);
        }
        let until = self.serve_until(created, expires);
        let spare = ((until - created) / 2).clamp(chrono::Duration::zero(), MAX_REFRESH_AHEAD);
        minus(until, spare)
    }
}

/// `at - by`, or the earliest time there is (never served) for a row so corrupt it overflows.
fn minus(at: DateTime<Utc>, by: chrono::Duration) -> DateTime<Utc> {
    at.checked_sub_signed(by)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A credential whose renewal ends it is rotated this long before its expiry...
const ROTATE_BEFORE_EXPIRY: chrono::Duration = chrono::Duration::minutes(5);
/// ...unless it lives less than this, when it is rotated halfway through its life.
const ROTATE_HALFWAY_BELOW: chrono::Duration = chrono::Duration::minutes(10);
/// While it cannot be rotated, it is served until this long (or a quarter of its life) before it
/// dies.
const LAST_SERVED_BEFORE_DEATH: chrono::Duration = chrono::Duration::seconds(30);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn rule(renewal: Renewal) -> Freshness {
        Freshness {
            floor: Duration::minutes(15),
            renewal,
        }
    }

    fn token(created: DateTime<Utc>, life: Duration) -> CachedToken {
        CachedToken::new(
            SecretString::from("t"),
            created,
            created + life,
            Vec::new(),
            BTreeMap::new(),
        )
    }

    #[test]
    fn a_minted_token_keeps_the_floor_and_is_renewed_ahead_of_it() {
        let (now, mint) = (Utc::now(), rule(Renewal::Mint));
        let t = token(now, Duration::minutes(60));
        // Renewed 5 minutes (at most) before it would fall below the floor.
        assert!(t.fresh(now + Duration::minutes(40), mint));
        assert!(!t.fresh(now + Duration::minutes(41), mint));
        assert!(t.servable(now + Duration::minutes(45), mint));
        assert!(!t.servable(now + Duration::minutes(45) + Duration::seconds(1), mint));
        assert_eq!(t.served_expiry(now, mint), now + Duration::minutes(60));
    }

    #[test]
    fn a_refreshed_token_shorter_lived_than_the_floor_is_served_for_half_its_life() {
        let now = Utc::now();
        let refresh = rule(Renewal::Refresh {
            revokes_previous: false,
        });
        let t = token(now, Duration::minutes(2));
        assert!(t.servable(now + Duration::minutes(1), refresh));
        assert!(!t.servable(now + Duration::minutes(1) + Duration::seconds(1), refresh));
        // Renewed ahead: halfway to that point.
        assert!(t.fresh(now + Duration::seconds(30), refresh));
        assert!(!t.fresh(now + Duration::seconds(31), refresh));
        // One that lives longer than the floor keeps the whole floor, as a minted one does, even
        // when that is more than half its life.
        let long = token(now, Duration::minutes(20));
        assert!(long.servable(now + Duration::minutes(5), refresh));
        assert!(!long.servable(now + Duration::minutes(5) + Duration::seconds(1), refresh));
    }

    #[test]
    fn a_token_its_refresh_ends_is_served_until_its_rotation_and_rotated_no_earlier() {
        let now = Utc::now();
        let rotating = rule(Renewal::Refresh {
            revokes_previous: true,
        });
        // GitLab's two hours: rotated 5 minutes before the end, and served with that instant.
        let t = token(now, Duration::hours(2));
        let rotation = now + Duration::minutes(115);
        assert_eq!(t.served_expiry(now, rotating), rotation);
        assert!(t.fresh(rotation, rotating));
        let after = rotation + Duration::seconds(1);
        assert!(!t.fresh(after, rotating));
        // Past it, served only while it cannot be rotated, with its true expiry, until 30 s
        // before it dies.
        assert!(t.servable(after, rotating));
        assert_eq!(t.served_expiry(after, rotating), now + Duration::hours(2));
        let end = now + Duration::hours(2) - Duration::seconds(30);
        assert!(t.servable(end, rotating));
        assert!(!t.servable(end + Duration::seconds(1), rotating));
        // Under 10 minutes of life: rotated halfway.
        let short = token(now, Duration::minutes(2));
        assert_eq!(
            short.served_expiry(now, rotating),
            now + Duration::minutes(1)
        );
    }

    #[test]
    fn a_credential_already_dead_or_absurdly_dated_is_never_served() {
        let now = Utc::now();
        for renewal in [
            Renewal::Mint,
            Renewal::Refresh {
                revokes_previous: false,
            },
            Renewal::Refresh {
                revokes_previous: true,
            },
        ] {
            let rule = Freshness {
                floor: chrono::Duration::minutes(15),
                renewal,
            };
            let dead = CachedToken::new(SecretString::from("t"), now, now, vec![], BTreeMap::new());
            assert!(
                !dead.servable(now, rule) && !dead.fresh(now, rule),
                "{renewal:?}"
            );
            // A row dated at the very start of time overflows nothing and serves nothing.
            let ancient = DateTime::<Utc>::MIN_UTC;
            let odd = CachedToken::new(
                SecretString::from("t"),
                ancient,
                ancient,
                vec![],
                BTreeMap::new(),
            );
            assert!(!odd.servable(now, rule), "{renewal:?}");
        }
    }
}
