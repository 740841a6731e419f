//! `lanyard serve --dev` (CONTRACT §13): a throwaway local stack in one command. The server runs
//! on a temporary SQLite data dir against an embedded fake GitHub (the same faithful fake the
//! tests use) that serves a demo repository over git smart HTTP; a team, a connection and a
//! session are seeded, and what to type next is printed. Everything is removed on exit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::os::unix::fs::PermissionsExt;

use anyhow::Context;
use lanyard_core::{Actor, Clock, Email, Host, SystemClock, TeamName, Tier};
use lanyard_fake_github::{FakeGithub, APP_SLUG, CLIENT_ID};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{
    Config, E2eSeed, Flags, GithubHost, LogFormat, SeedCredential, DEFAULT_LISTEN,
};
use crate::domain::admin::{self, Provision, Provisioned};
use crate::domain::connections::Connect;
use crate::domain::sessions::{self, CreateSession};
use crate::services::Services;
use crate::{server, telemetry};

/// The fake GitHub's App installation, on the demo owner.
const INSTALLATION: u64 = 1;
const OWNER: &str = "demo";
const REPO: &str = "hello-lanyard";
/// Test accounts get an owner of their own: an e2e seed must be one no real team has connected.
const CI_INSTALLATION: u64 = 2;
const CI_OWNER: &str = "demo-ci";
/// How long a GitHub token lives in dev mode: short enough to watch the runner refresh it.
pub(super) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(120);

/// What was seeded, for the banner. Its secrets are printed once, on purpose: this is a
/// throwaway local stack and the user needs them to try it.
struct Seeded {
    team: TeamName,
    api_key: SecretString,
    session_id: uuid::Uuid,
    runner_token: SecretString,
}

/// Parses `--listen` for dev mode: loopback only, since the stack hands out real-looking
/// credentials with no protection beyond the machine's own.
pub(super) fn dev_listen(raw: Option<&str>) -> anyhow::Result<SocketAddr> {
    let raw = raw.unwrap_or(DEFAULT_LISTEN);
    let addr: SocketAddr = raw
        .trim()
        .parse()
        .map_err(|_| super::failure::bad("listen", format!("{raw:?} is not an IP:port address")))?;
    if !addr.ip().is_loopback() {
        return Err(super::failure::bad(
            "listen",
            format!("dev mode serves only on loopback (127.0.0.1 or [::1]), not {addr}: it is not for production, and its secrets are printed"),
        ));
    }
    Ok(addr)
}

pub(super) async fn run(listen: SocketAddr, token_lifetime: Duration) -> anyhow::Result<()> {
    let git = std::process::Command::new("git").arg("--version").output();
    if !git.is_ok_and(|out| out.status.success()) {
        anyhow::bail!("dev mode needs git on PATH: its fake GitHub serves the demo repository through git http-backend");
    }
    let root = tempfile::Builder::new()
        .prefix("lanyard-dev-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("cannot create the throwaway directory")?;
    let flags = Flags {
        config: None,
        listen: Some(listen.to_string()),
        data_dir: Some(root.path().join("data")),
    };
    // No file and no LANYARD_* variable: dev mode is the same on every machine.
    let mut config = Config::load(&flags, &BTreeMap::new())?.config;
    let _logs = telemetry::init(LogFormat::Text);
    tracing::warn!(
        "DEV MODE: a throwaway stack with a fake GitHub and printed secrets; NOT FOR PRODUCTION"
    );

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fake = FakeGithub::start(clock.clone()).await;
    fake.set_token_lifetime(token_lifetime);
    fake.add_installation(INSTALLATION, OWNER, &[REPO]);
    fake.add_installation(CI_INSTALLATION, CI_OWNER, &[REPO]);
    let secrets = lanyard_fake_github::write_secrets(&root.path().join("github"))
        .context("cannot write the fake GitHub's secrets")?;
    let repo_url = fake.repo_url(OWNER, REPO);
    let fake_host = Host::parse(&fake.host).context("the fake GitHub's host")?;
    config.github = vec![GithubHost {
        host: fake_host.clone(),
        api_url: fake.api_url.clone(),
        app_id: Some(fake.app_id),
        private_key_file: Some(secrets.app_private_key),
        web_url: fake.web_url.clone(),
        app_slug: Some(APP_SLUG.to_string()),
        client_id: Some(CLIENT_ID.to_string()),
        client_secret_file: Some(secrets.client_secret),
        webhook_secret_file: Some(secrets.webhook_secret),
        max_concurrent_mints: crate::config::DEFAULT_MAX_CONCURRENT_MINTS,
    }];
    // A quarter of the life: the runner refreshes at half of it, and the broker then mints.
    config.token_min_remaining = token_lifetime / 4;
    let e2e_token = random_secret();
    let admin_token = random_secret();
    config.e2e_account_token = Some(e2e_token.clone());
    config.admin_token = Some(admin_token.clone());
    config.e2e_seed = Some(E2eSeed {
        host: fake_host,
        owner: lanyard_core::github::Owner::parse(CI_OWNER).expect("a valid owner"),
        credential: SeedCredential::Installation(
            CI_INSTALLATION
                .try_into()
                .expect("a positive installation id"),
        ),
        repo_urls: vec![fake.repo_url(CI_OWNER, REPO)],
    });

    let stop = server::shutdown_signal()?;
    let server = server::start(config, clock).await?;
    let seeded = seed(&server.services, &fake.host, &repo_url).await?;
    let token_file = root.path().join("runner-token");
    write_private(&token_file, seeded.runner_token.expose_secret())?;
    let api = server.public_url.clone();
    let banner = Banner {
        api: &api,
        root: root.path(),
        repo_url: &repo_url,
        token_file: &token_file,
        token_lifetime,
        seeded: &seeded,
        e2e_token: &e2e_token,
        admin_token: &admin_token,
    };
    println!("{}", banner.render(&runner_program()));
    server.run_until(stop).await?;
    drop(fake);
    tracing::info!(dir = %root.path().display(), "dev mode stopped; removing its directory");
    Ok(())
}

fn random_secret() -> SecretString {
    SecretString::from(Alphanumeric.sample_string(&mut rand::thread_rng(), 40))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, contents.as_bytes())?;
    Ok(())
}

/// A team with an API key and a primary user, the demo owner connected through the App, and a
/// session on the demo repository: through the same domain calls as the admin API.
async fn seed(svc: &Services, host: &str, repo_url: &str) -> anyhow::Result<Seeded> {
    let name = TeamName::parse("Dev team").expect("a valid name");
    let provisioned = admin::provision(
        svc,
        Provision {
            name: name.clone(),
            tier: Tier::Pro,
            external_id: None,
            notification_email: None,
            is_test_cohort: false,
            primary_user: Some(Email::parse("dev@example.com").expect("a valid address")),
            actor: Actor::operator(),
        },
    )
    .await?;
    let Provisioned::Created { team, api_key } = provisioned else {
        anyhow::bail!("the throwaway database already held the dev team");
    };
    let connect = Connect::parse(host, OWNER, Some(INSTALLATION), None)?;
    admin::connect(svc, team.id, connect, &Actor::operator()).await?;
    let input = CreateSession::parse(&[repo_url.to_string()], None, None)?;
    let created = sessions::create(svc, &team, input, &Actor::operator()).await?;
    Ok(Seeded {
        team: name,
        api_key,
        session_id: created.session.id,
        runner_token: created.runner_token,
    })
}

/// How to run `lanyard-runner` from here: the binary beside this one, else the one on PATH,
/// else through cargo in a checkout of Lanyard.
fn runner_program() -> String {
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("lanyard-runner"))
        .filter(|p| p.is_file());
    if let Some(path) = beside {
        return quote(&path.to_string_lossy());
    }
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("lanyard-runner").is_file())
    });
    if !on_path && Path::new("crates/lanyard-runner/Cargo.toml").is_file() {
        // Not quiet: the first run builds the runner, and cargo shows that it is doing so.
        return "cargo run -p lanyard-runner --".into();
    }
    "lanyard-runner".into()
}

/// How to run this `lanyard` again: its own path, so the printed line runs as printed (it is
/// rarely on PATH while trying dev mode).
fn lanyard_program() -> String {
    std::env::current_exe()
        .ok()
        .map_or_else(|| "lanyard".into(), |exe| quote(&exe.to_string_lossy()))
}

/// Quotes for a POSIX shell when needed.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@%+=,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

struct Banner<'a> {
    api: &'a str,
    root: &'a Path,
    repo_url: &'a str,
    token_file: &'a PathBuf,
    token_lifetime: Duration,
    seeded: &'a Seeded,
    e2e_token: &'a SecretString,
    admin_token: &'a SecretString,
}

impl Banner<'_> {
    fn render(&self, runner: &str) -> String {
        let s = self.seeded;
        let clone_into = self.root.join(REPO);
        let runner_args = format!(
            "{runner} run --api {} --session {} --token-file {}",
            quote(self.api),
            s.session_id,
            quote(&self.token_file.to_string_lossy()),
        );
        let lifetime = lanyard_core::format_duration(self.token_lifetime);
        let (api, session, repo) = (self.api, s.session_id, self.repo_url);
        let auth = quote(&format!(
            "Authorization: Bearer {}",
            s.runner_token.expose_secret()
        ));
        [
            String::new(),
            format!("Lanyard dev mode is serving on {api}"),
            "NOT FOR PRODUCTION: a throwaway stack with a fake GitHub; its secrets are printed below.".into(),
            String::new(),
            format!("  team      {} (tier pro)", s.team.as_str()),
            format!("  API key   {}", s.api_key.expose_secret()),
            format!("  session   {session} on {repo} (GitHub tokens live {lifetime})"),
            String::new(),
            "Clone the demo repository through the runner, with a fresh token:".into(),
            String::new(),
            format!(
                "  {runner_args} -- git clone {repo} {}",
                quote(&clone_into.to_string_lossy())
            ),
            String::new(),
            "Fetch the session's credential yourself:".into(),
            String::new(),
            format!("  curl -H {auth} {api}/v1/sessions/{session}/credentials/github"),
            String::new(),
            "Watch the runner refresh: start a shell under it,".into(),
            String::new(),
            format!("  {runner_args} -- sh"),
            String::new(),
            format!("then type `{runner} status` now and again after a minute or two."),
            String::new(),
            format!(
                "Also here: the API docs at {api}/docs; the admin API with LANYARD_ADMIN_TOKEN={};",
                self.admin_token.expose_secret()
            ),
            format!(
                "test accounts with LANYARD_E2E_ACCOUNT_TOKEN={} {} e2e run --with-resources --api {api} -- CMD",
                self.e2e_token.expose_secret(),
                lanyard_program(),
            ),
            String::new(),
            format!(
                "Serving until Ctrl-C; then {} is removed.",
                self.root.display()
            ),
        ]
        .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served() {
        assert!(dev_listen(None).is_ok());
        assert!(dev_listen(Some("127.0.0.1:0")).is_ok());
        assert!(dev_listen(Some("[::1]:9000")).is_ok());
        for refused in ["0.0.0.0:8080", "10.1.2.3:80", "[::]:8080"] {
            let e = dev_listen(Some(refused)).unwrap_err().to_string();
            assert!(e.contains("loopback"), "{refused}: {e}");
        }
        assert!(dev_listen(Some("localhost")).is_err());
    }

    #[test]
    fn quoting_leaves_plain_words_alone_and_quotes_the_rest() {
        assert_eq!(
            quote("/tmp/lanyard-dev-x/runner-token"),
            "/tmp/lanyard-dev-x/runner-token"
        );
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
