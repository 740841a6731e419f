//! The refresh engine: one entry per (host, owner) credential of the session, refreshed in the
//! background by the policy, and served to git, gh and scripts through the local socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lanyard_core::github::Scheme;
use lanyard_core::wire::{CredentialSource, CredentialStatus};
use lanyard_core::Clock;
use rand::Rng;
use secrecy::SecretString;
use tokio::sync::{watch, Notify};

use crate::client::{ApiClient, EndCause, FetchError, Fetched};
use crate::policy::Policy;

mod types;
pub use types::{Ended, EngineError, Handout};

/// What is known about one credential. The token never leaves through `status`.
#[derive(Debug, Clone)]
struct CredState {
    token: SecretString,
    expires_at: Option<DateTime<Utc>>,
    source: CredentialSource,
    last_refresh: DateTime<Utc>,
    /// The last time a refresh was tried, whatever came of it.
    last_attempt: DateTime<Utc>,
    last_error: Option<String>,
    failures: u32,
    next_refresh: DateTime<Utc>,
}

#[derive(Debug)]
struct Cred {
    host: String,
    owner: String,
    scheme: Scheme,
    state: Mutex<CredState>,
    /// One refresh of this credential at a time; the others never wait on it.
    refreshing: tokio::sync::Mutex<()>,
}

/// How long a refusal is given to turn out transient (a token file caught mid-rewrite) before
/// the runner believes it.
const CONFIRM_REFUSAL: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Engine {
    client: ApiClient,
    clock: Arc<dyn Clock>,
    policy: Policy,
    creds: Vec<Arc<Cred>>,
    wake: Notify,
    ended: watch::Sender<Option<Ended>>,
}

fn jitter_unit() -> f64 {
    rand::thread_rng().gen_range(-1.0..=1.0)
}

impl Engine {
    /// Fetches every credential of the session (discovering owners through `owner_required`).
    /// Fails fast with the cause when the session or token is bad or the server unreachable.
    pub async fn start(
        client: ApiClient,
        clock: Arc<dyn Clock>,
        policy: Policy,
    ) -> Result<Arc<Self>, FetchError> {
        let first = client.fetch(None, None).await;
        let fetched = match first {
            Ok(f) => vec![f],
            Err(FetchError::OwnerRequired(choices)) => {
                let mut all = Vec::with_capacity(choices.len());
                for (host, owner) in choices {
                    all.push(client.fetch(Some(&host), Some(&owner)).await?);
                }
                all
            }
            Err(e) => return Err(e),
        };
        let now = clock.now();
        let creds = fetched
            .into_iter()
            .map(|f| {
                let next_refresh = policy.after_success(now, f.expires_at, jitter_unit());
                Arc::new(Cred {
                    host: f.host.to_ascii_lowercase(),
                    owner: f.owner.to_ascii_lowercase(),
                    scheme: f.scheme,
                    state: Mutex::new(CredState {
                        token: f.token,
                        expires_at: f.expires_at,
                        source: f.source,
                        last_refresh: now,
                        last_attempt: now,
                        last_error: None,
                        failures: 0,
                        next_refresh,
                    }),
                    refreshing: tokio::sync::Mutex::new(()),
                })
            })
            .collect();
        let (ended, _) = watch::channel(None);
        Ok(Arc::new(Self {
            client,
            clock,
            policy,
            creds,
            wake: Notify::new(),
            ended,
        }))
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Resolves once the server says the session is over, with the cause and its message.
    pub fn ended(&self) -> watch::Receiver<Option<Ended>> {
        self.ended.subscribe()
    }

    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.creds.iter().map(|c| c.host.clone()).collect();
        hosts.dedup();
        hosts
    }

    fn lock(cred: &Cred) -> std::sync::MutexGuard<'_, CredState> {
        cred.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ended_message(&self) -> Option<String> {
        self.ended.borrow().as_ref().map(|e| e.message.clone())
    }

    /// Fetches one credential. A refusal that would end the session is asked once more after a
    /// short pause (re-reading the token file), so a file caught mid-rotation ends nothing.
    async fn fetch(&self, cred: &Cred) -> Result<Fetched, FetchError> {
        let first = self.client.fetch(Some(&cred.host), Some(&cred.owner)).await;
        match &first {
            Err(e) if e.end_cause().is_some() => {
                tokio::time::sleep(CONFIRM_REFUSAL).await;
                self.client.fetch(Some(&cred.host), Some(&cred.owner)).await
            }
            _ => first,
        }
    }

    /// Refreshes one credential now (or waits for the refresh of it already in flight).
    async fn refresh(&self, cred: &Cred) {
        let started_at = self.clock.now();
        let _guard = cred.refreshing.lock().await;
        if Self::lock(cred).last_attempt > started_at {
            return; // another caller tried while we waited: share its result, success or not
        }
        let result = self.fetch(cred).await;
        let now = self.clock.now();
        Self::lock(cred).last_attempt = now;
        match result {
            Ok(Fetched {
                token,
                expires_at,
                source,
                ..
            }) => {
                let mut s = Self::lock(cred);
                s.token = token;
                s.expires_at = expires_at;
                s.source = source;
                s.last_refresh = now;
                s.last_error = None;
                s.failures = 0;
                s.next_refresh = self.policy.after_success(now, expires_at, jitter_unit());
                tracing::debug!(host = %cred.host, owner = %cred.owner, expires_at = %expiry(expires_at), "refreshed credential");
            }
            Err(e) if e.end_cause().is_some() => {
                let cause = e.end_cause().unwrap_or(EndCause::SessionEnded);
                tracing::warn!(host = %cred.host, owner = %cred.owner, ?cause, error = %e, "the server will not serve this session again");
                Self::lock(cred).last_error = Some(e.to_string());
                self.ended.send_replace(Some(Ended {
                    cause,
                    message: e.to_string(),
                }));
            }
            Err(e) => {
                let mut s = Self::lock(cred);
                s.failures += 1;
                s.last_error = Some(e.to_string());
                let mut next = self.policy.after_failure(now, s.failures, jitter_unit());
                if let FetchError::Unavailable {
                    retry_after: Some(secs),
                    ..
                } = &e
                {
                    next = next.max(
                        now + chrono::Duration::seconds(
                            i64::try_from(*secs).unwrap_or(60).min(300),
                        ),
                    );
                }
                s.next_refresh = next;
                let still_valid = s.expires_at.is_none_or(|e| e > now);
                tracing::warn!(host = %cred.host, owner = %cred.owner, failures = s.failures, error = %e, still_valid, "credential refresh failed; retrying with backoff");
            }
        }
    }

    /// Runs until `shutdown` fires or the session ends: refreshes whatever is due, then sleeps
    /// until the next due time or a wake-up (erase, a due token asked for).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() || self.ended.borrow().is_some() {
                return;
            }
            let now = self.clock.now();
            let due: Vec<Arc<Cred>> = self
                .creds
                .iter()
                .filter(|c| Self::lock(c).next_refresh <= now)
                .cloned()
                .collect();
            // Each due credential refreshes on its own task: one slow owner delays no other.
            let mut refreshes = tokio::task::JoinSet::new();
            for cred in due {
                let engine = self.clone();
                refreshes.spawn(async move { engine.refresh(&cred).await });
            }
            while refreshes.join_next().await.is_some() {}
            let next = self.creds.iter().map(|c| Self::lock(c).next_refresh).min();
            let wait = next
                .map(|n| (n - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(60))
                .max(Duration::from_millis(50));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    fn find(&self, host: Option<&str>, owner: Option<&str>) -> Result<Arc<Cred>, EngineError> {
        let host = host.map(str::to_ascii_lowercase);
        let owner = owner.map(str::to_ascii_lowercase);
        let matching: Vec<&Arc<Cred>> = self
            .creds
            .iter()
            .filter(|c| host.as_deref().is_none_or(|h| c.host == h))
            .filter(|c| owner.as_deref().is_none_or(|o| c.owner == o))
            .collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NoCredential(format!(
                "{}/{}",
                host.as_deref().unwrap_or("*"),
                owner.as_deref().unwrap_or("*")
            ))),
            many => Err(EngineError::Ambiguous(
                many.iter()
                    .map(|c| format!("{}/{}", c.host, c.owner))
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// A token for this host/owner that meets the refresh policy (for scripts): refreshed first
    /// if it is due. While refreshing fails, the current token is served as long as it is valid.
    pub async fn token(
        &self,
        host: Option<&str>,
        owner: Option<&str>,
    ) -> Result<Handout, EngineError> {
        let cred = self.find(host, owner)?;
        self.serve(&cred, true).await
    }

    /// Hands out `cred`'s token. A due refresh is waited for only when `wait_if_due`, or when the
    /// token held has expired; otherwise the background loop is woken to do it.
    async fn serve(&self, cred: &Cred, wait_if_due: bool) -> Result<Handout, EngineError> {
        if let Some(message) = self.ended_message() {
            return Err(EngineError::Ended(message));
        }
        let now = self.clock.now();
        let (due, valid) = {
            let s = Self::lock(cred);
            (s.next_refresh <= now, s.expires_at.is_none_or(|e| e > now))
        };
        if due && (wait_if_due || !valid) {
            self.refresh(cred).await;
        }
        if due {
            self.wake.notify_one();
        }
        if let Some(message) = self.ended_message() {
            return Err(EngineError::Ended(message));
        }
        let s = Self::lock(cred);
        if s.expires_at.is_some_and(|e| e <= self.clock.now()) {
            return Err(EngineError::Expired(
                s.last_error.clone().unwrap_or_default(),
            ));
        }
        Ok(Handout {
            token: s.token.clone(),
            expires_at: s.expires_at,
            host: cred.host.clone(),
            owner: cred.owner.clone(),
            scheme: cred.scheme,
        })
    }

    /// For git: the credential of `host` whose owner is `owner`, or the host's only one, and only
    /// over the host's own scheme (an `https` host's token never goes to `protocol=http`). git
    /// never waits on a refresh while a valid token is held: the background loop does it.
    pub async fn for_git(
        &self,
        host: &str,
        owner: Option<&str>,
        protocol: Option<&str>,
    ) -> Result<Handout, EngineError> {
        let cred = self.find(Some(host), owner)?;
        if protocol != Some(cred.scheme.as_str()) {
            return Err(EngineError::NoCredential(format!(
                "{}://{host}",
                protocol.unwrap_or("(no protocol)")
            )));
        }
        self.serve(&cred, false).await
    }

    /// `erase`: git was refused with this credential; refresh it now.
    pub async fn force_refresh(&self, host: &str, owner: Option<&str>) -> Result<(), EngineError> {
        let cred = self.find(Some(host), owner)?;
        Self::lock(&cred).next_refresh = self.clock.now();
        self.refresh(&cred).await;
        self.wake.notify_one();
        Ok(())
    }

    pub fn status(&self) -> Vec<CredentialStatus> {
        self.creds
            .iter()
            .map(|c| {
                let s = Self::lock(c);
                CredentialStatus {
                    host: c.host.clone(),
                    owner: c.owner.clone(),
                    source: s.source,
                    expires_at: s.expires_at,
                    last_refresh: s.last_refresh,
                    next_refresh: s.next_refresh,
                    last_error: s.last_error.clone(),
                    consecutive_failures: s.failures,
                }
            })
            .collect()
    }
}

/// An expiry as a log field: RFC 3339 in UTC, or `none` for a credential without one.
pub fn expiry(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "none".to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod expiry_tests {
    #[test]
    fn an_expiry_is_logged_in_utc_or_as_none() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(super::expiry(Some(at)), "2026-12-07T10:00:00Z");
        assert_eq!(super::expiry(None), "none");
    }
}
