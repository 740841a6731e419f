//! `lanyard doctor` (CONTRACT §13): loads the configuration exactly as `serve` does and checks
//! each part it would depend on, changing nothing: the data dir and its secrets, the database
//! and its migrations, Redis, each GitHub host's App (app JWT → `GET /app`), the installation
//! flow's and webhooks' secrets, the e2e seed, and the tokens that switch surfaces on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lanyard_core::{Clock, SystemClock};
use lanyard_github::GithubError;
use lanyard_store::{Dialect, Store};
use serde::Serialize;

use crate::config::{Config, GithubHost, SeedCredential};
use crate::hosts::build_host;
use crate::redis_conn::RedisHandle;
use crate::services::DataDir;

/// No check waits longer than this on the network.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize)]
pub(super) struct Check {
    check: String,
    ok: bool,
    detail: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    ok: bool,
    checks: Vec<Check>,
}

impl Report {
    fn push(&mut self, check: impl Into<String>, result: Result<String, String>) {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.ok &= ok;
        self.checks.push(Check {
            check: check.into(),
            ok,
            detail,
        });
    }

    /// One line per check: a mark, the check's name and the reason.
    pub(super) fn render(&self) -> String {
        let width = self.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let mark = if c.ok { '✓' } else { '✗' };
            out.push_str(&format!("{mark} {:<width$}  {}\n", c.check, c.detail));
        }
        out.push_str(if self.ok {
            "all checks passed\n"
        } else {
            "some checks failed\n"
        });
        out
    }

    pub(super) fn ok(&self) -> bool {
        self.ok
    }
}

/// The report for a configuration that did not load: the one reason, as `serve` would give it.
pub(super) fn unloadable(error: &anyhow::Error) -> Report {
    let mut report = Report {
        ok: true,
        checks: Vec::new(),
    };
    report.push("config", Err(format!("{error:#}")));
    report
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(NETWORK_TIMEOUT, f).await.map_err(|_| {
        format!(
            "{what} did not answer within {}s",
            NETWORK_TIMEOUT.as_secs()
        )
    })
}

pub(super) async fn run(config: &Config, source: String) -> Report {
    let mut report = Report {
        ok: true,
        checks: Vec::new(),
    };
    report.push("config", Ok(source));
    report.push("data_dir", data_dir(config));
    report.push("secrets", crate::secrets::inspect(config));
    let store = database(config, &mut report).await;
    if let Some(store) = &store {
        report.push("migrations", migrations(store).await);
    }
    report.push("redis", redis(config).await);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    for host in &config.github {
        report.push(format!("github {}", host.host), app(host, &clock).await);
        report.push(format!("oauth {}", host.host), oauth(host));
        report.push(format!("webhooks {}", host.host), webhooks(host));
    }
    if config.github.is_empty() {
        report.push(
            "github",
            Err("no GitHub host is configured, so every session's repository gets 422 unknown_github_host: add a [[github]] table, or set LANYARD_GITHUB_HOST with LANYARD_GITHUB_APP_ID and LANYARD_GITHUB_APP_PRIVATE_KEY_FILE (docs/github-app.md)".into()),
        );
    }
    if config.e2e_seed.is_some() {
        report.push("e2e_seed", e2e_seed(config, store.as_ref(), &clock).await);
    }
    if let Some(store) = store {
        store.close().await;
    }
    let surface = |set: bool, what: &str| {
        Ok(if set {
            format!("set: {what} is on")
        } else {
            format!("unset: {what} is inert")
        })
    };
    report.push(
        "e2e_token",
        surface(config.e2e_account_token.is_some(), "the e2e surface"),
    );
    report.push(
        "admin_token",
        surface(config.admin_token.is_some(), "the admin API"),
    );
    report.push(
        "smtp",
        Ok(match &config.smtp {
            Some(smtp) => format!("notifications are sent from {}", smtp.from),
            None => "unset: notifications are kept, marked undeliverable".into(),
        }),
    );
    report
}

fn data_dir(config: &Config) -> Result<String, String> {
    let dir = config.data_dir.display();
    match crate::services::inspect_data_dir(&config.data_dir).map_err(|e| format!("{e:#}"))? {
        DataDir::Missing => Ok(format!("{dir} does not exist yet; serve creates it (0700)")),
        DataDir::Private(mode) => Ok(format!("{dir} (mode {mode:04o})")),
        DataDir::Tightenable(mode) => Ok(format!(
            "{dir} is open to others (mode {mode:04o}); serve tightens it to 0700 on start"
        )),
        DataDir::Refused(why) => Err(why),
    }
}

/// Connects (read only: a SQLite file that does not exist yet is left uncreated).
async fn database(config: &Config, report: &mut Report) -> Option<Store> {
    let url = &config.database_url;
    if url.dialect() == Dialect::Sqlite {
        if let Some(path) = url.sqlite_path().filter(|p| !p.exists()) {
            report.push(
                "database",
                Ok(format!(
                    "{} does not exist yet; serve creates it",
                    path.display()
                )),
            );
            let pending = "every migration pending; serve applies them on start".to_string();
            report.push("migrations", Ok(pending));
            return None;
        }
    }
    let connected = within("the database", async {
        let store = Store::connect(url).await?;
        store.ping().await?;
        Ok::<_, lanyard_store::StoreError>(store)
    })
    .await
    .and_then(|r| r.map_err(|e| e.to_string()));
    match connected {
        Ok(store) => {
            report.push("database", Ok(format!("{url} answers")));
            Some(store)
        }
        Err(e) => {
            report.push("database", Err(format!("cannot reach {url}: {e}")));
            report.push(
                "migrations",
                Err("not checked: the database is unreachable".into()),
            );
            None
        }
    }
}

async fn migrations(store: &Store) -> Result<String, String> {
    let status = within("the database", store.migration_status())
        .await?
        .map_err(|e| e.to_string())?;
    Ok(if status.pending.is_empty() {
        format!("{} applied, none pending", status.applied)
    } else {
        format!(
            "{} applied; pending, applied by serve on start: {}",
            status.applied,
            status.pending.join(", ")
        )
    })
}

async fn redis(config: &Config) -> Result<String, String> {
    let Some(url) = &config.redis_url else {
        return Ok("unset: limits, cache and coalescing stay in this process".into());
    };
    let handle = RedisHandle::new(url.clone()).map_err(|e| format!("{url}: {e}"))?;
    within("Redis", handle.ping())
        .await?
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    Ok(format!("{url} answers PING"))
}

/// The host's client with its App key only: the OAuth and webhook secrets get rows of their own.
fn app_only(host: &GithubHost) -> GithubHost {
    GithubHost {
        client_secret_file: None,
        webhook_secret_file: None,
        ..host.clone()
    }
}

async fn app(host: &GithubHost, clock: &Arc<dyn Clock>) -> Result<String, String> {
    let built = build_host(&app_only(host), clock.clone()).map_err(|e| format!("{e:#}"))?;
    let Some(app_id) = host.app_id.filter(|_| built.client.has_app()) else {
        return Ok(format!("no App configured at {}: PATs only", host.api_url));
    };
    match within(&host.api_url, built.client.app()).await? {
        Ok(info) if info.id == app_id => Ok(format!(
            "{} accepts the app JWT of app {app_id}{}",
            host.api_url,
            info.slug.map(|s| format!(" ({s})")).unwrap_or_default()
        )),
        Ok(info) => Err(format!(
            "the private key belongs to app {}, but app_id is {app_id}",
            info.id
        )),
        Err(GithubError::Rejected { status: 401, .. }) => Err(format!(
            "{} refused the app JWT (401): the private key or app_id {app_id} is wrong",
            host.api_url
        )),
        Err(e) => Err(format!("{}: {e}", host.api_url)),
    }
}

fn oauth(host: &GithubHost) -> Result<String, String> {
    match (&host.app_slug, &host.client_id, &host.client_secret_file) {
        (None, None, None) => Ok("off: no app_slug or client_id, so no installation flow".into()),
        (Some(slug), Some(id), Some(secret)) => {
            crate::hosts::read_secret("OAuth client secret", &host.host, secret)
                .map_err(|e| format!("{e:#}"))?;
            Ok(format!(
                "installation flow on: {}/apps/{slug}, client {id}",
                host.web_url
            ))
        }
        _ => Err(
            "the installation flow needs app_slug, client_id and client_secret_file together"
                .into(),
        ),
    }
}

fn webhooks(host: &GithubHost) -> Result<String, String> {
    match &host.webhook_secret_file {
        None => Ok("off: no webhook_secret_file, so the webhook route answers 404".into()),
        Some(path) => {
            crate::hosts::read_secret("webhook secret", &host.host, path)
                .map_err(|e| format!("{e:#}"))?;
            Ok(format!("deliveries verified with {}", path.display()))
        }
    }
}

async fn e2e_seed(
    config: &Config,
    store: Option<&Store>,
    clock: &Arc<dyn Clock>,
) -> Result<String, String> {
    let seed = config.e2e_seed.as_ref().expect("checked by the caller");
    let repos = seed.repo_urls.len();
    if let Some(store) = store {
        let taken = within(
            "the database",
            store.connected_by_a_real_team(
                seed.host.as_str(),
                seed.owner.as_str(),
                seed.installation_row_id(),
            ),
        )
        .await?
        .map_err(|e| e.to_string())?;
        if taken {
            return Err(format!(
                "{} on {} is connected to a team that is not a test cohort: test accounts would get its tokens",
                seed.owner, seed.host
            ));
        }
    }
    match &seed.credential {
        SeedCredential::PatFile(path) => {
            crate::domain::e2e::read_seed_pat(path)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "{} on {} by PAT, {repos} repositories",
                seed.owner, seed.host
            ))
        }
        SeedCredential::Installation(id) => {
            let host = config
                .github
                .iter()
                .find(|h| h.host == seed.host)
                .ok_or("its host is not configured")?;
            let built = build_host(&app_only(host), clock.clone()).map_err(|e| format!("{e:#}"))?;
            let found = within(&host.api_url, built.client.installation(*id))
                .await?
                .map_err(|e| format!("installation {id} on {}: {e}", seed.host))?;
            if !found
                .account_login
                .eq_ignore_ascii_case(seed.owner.as_str())
            {
                return Err(format!(
                    "installation {id} is on {}, not {}",
                    found.account_login, seed.owner
                ));
            }
            Ok(format!(
                "installation {id} on {} at {}, {repos} repositories",
                seed.owner, seed.host
            ))
        }
    }
}
