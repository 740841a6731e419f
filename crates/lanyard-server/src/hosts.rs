//! The configured GitHub hosts, each with its client, built once at start-up: the domain uses
//! them for installations, connections and webhooks, and the broker is handed their providers
//! ([`GithubHosts::providers`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use lanyard_core::github::Scheme;
use lanyard_core::{Clock, Host};
use lanyard_github::{AppCredentials, GithubHost};
use secrecy::SecretString;

use lanyard_broker::crypto::Sealer;
use lanyard_broker::providers::{GithubApp, StoredPat};
use lanyard_broker::Providers;
use lanyard_store::ConnectionKind;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::config::GithubHost as HostConfig;
use crate::metrics::{Fixed, MintLabels};

/// The App's OAuth side: what the installation flow needs.
#[derive(Debug)]
pub struct OAuthApp {
    pub app_slug: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// One configured host.
#[derive(Debug)]
pub struct ConfiguredHost {
    /// As repository URLs name it.
    pub name: Host,
    pub client: Arc<GithubHost>,
    /// The only scheme repositories on this host are served over (that of its `api_url`).
    pub scheme: Scheme,
    /// The host as a metric label: fixed by configuration.
    pub label: Fixed,
    /// Set when the installation flow is configured (app_slug, client_id and its secret).
    pub oauth: Option<OAuthApp>,
    /// Set when webhooks are configured.
    pub webhook_secret: Option<SecretString>,
    /// The bound on mints in flight to this host, fairly between teams (`max_concurrent_mints`).
    pub max_concurrent_mints: usize,
}

pub fn read_secret(what: &str, host: &Host, path: &Path) -> anyhow::Result<SecretString> {
    crate::config::require_private(path)
        .map_err(|e| anyhow::anyhow!("the {what} for {host}: {e}"))?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {} for {host}", path.display()))?;
    let secret = text.trim();
    anyhow::ensure!(
        !secret.is_empty(),
        "the {what} {} for {host} is empty",
        path.display()
    );
    anyhow::ensure!(
        !secret.starts_with("REPLACE_ME"),
        "the {what} {} for {host} still holds the example's placeholder",
        path.display()
    );
    Ok(SecretString::from(secret.to_string()))
}

#[derive(Debug, Default)]
pub struct GithubHosts {
    hosts: HashMap<Host, ConfiguredHost>,
}

impl GithubHosts {
    /// Builds a client per configured host, reading each App's private key.
    pub fn from_config(config: &[HostConfig], clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let mut hosts = HashMap::new();
        for h in config {
            let host = build_host(h, clock.clone())?;
            hosts.insert(h.host.clone(), host);
        }
        Ok(Self { hosts })
    }

    pub fn get(&self, host: &Host) -> Option<&ConfiguredHost> {
        self.hosts.get(host)
    }

    /// The broker's providers for these hosts: each App's installation tokens, counted in
    /// `mints`, and each host's PATs, opened with `sealer`. A host without an App still has its
    /// App provider: it revokes tokens minted while it had one (a token revokes itself), and a
    /// mint there fails as misconfigured.
    pub fn providers(
        &self,
        sealer: &Sealer,
        clock: Arc<dyn Clock>,
        mints: &Family<MintLabels, Counter>,
    ) -> Providers {
        let mut providers = Providers::default();
        let pats = Arc::new(StoredPat::new(sealer.clone(), clock));
        for (name, host) in &self.hosts {
            let app = GithubApp::new(host.client.clone(), mints);
            providers.register(
                name.as_str(),
                ConnectionKind::GithubApp,
                Arc::new(app),
                host.max_concurrent_mints,
            );
            // Opened in-process: no upstream call, so one slot is as good as many.
            providers.register(name.as_str(), ConnectionKind::Pat, pats.clone(), 1);
        }
        providers
    }
}

/// Builds one host's client: reads and checks its App key and its OAuth and webhook secrets.
pub fn build_host(h: &HostConfig, clock: Arc<dyn Clock>) -> anyhow::Result<ConfiguredHost> {
    let app = match (h.app_id, &h.private_key_file) {
        (Some(app_id), Some(path)) => {
            crate::config::require_private(path)
                .map_err(|e| anyhow::anyhow!("the GitHub App private key for {}: {e}", h.host))?;
            let pem = std::fs::read(path).with_context(|| {
                format!(
                    "cannot read the GitHub App private key {} for {}",
                    path.display(),
                    h.host
                )
            })?;
            Some(AppCredentials::from_pem(app_id, &pem).with_context(|| {
                format!("GitHub App private key {} for {}", path.display(), h.host)
            })?)
        }
        (None, None) => None,
        _ => anyhow::bail!(
            "GitHub host {} needs both app_id and private_key_file, or neither (PATs only)",
            h.host
        ),
    };
    let client = GithubHost::new(h.host.as_str(), &h.api_url, app, clock)?.with_web_url(&h.web_url);
    let oauth = match (&h.app_slug, &h.client_id, &h.client_secret_file) {
        (Some(slug), Some(id), Some(secret)) => Some(OAuthApp {
            app_slug: slug.clone(),
            client_id: id.clone(),
            client_secret: read_secret("OAuth client secret", &h.host, secret)?,
        }),
        _ => None,
    };
    let webhook_secret = h
        .webhook_secret_file
        .as_deref()
        .map(|p| read_secret("webhook secret", &h.host, p))
        .transpose()?;
    let scheme = if h.api_url.starts_with("http://") {
        Scheme::Http
    } else {
        Scheme::Https
    };
    Ok(ConfiguredHost {
        name: h.host.clone(),
        client: Arc::new(client),
        scheme,
        label: Fixed(h.host.as_str().into()),
        oauth,
        webhook_secret,
        max_concurrent_mints: h.max_concurrent_mints,
    })
}
