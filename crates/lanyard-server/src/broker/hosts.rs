//! The configured GitHub hosts, each with its client, built once at start-up and handed to the
//! broker and the domain.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use lanyard_core::github::Scheme;
use lanyard_core::Clock;
use lanyard_github::{AppCredentials, GithubHost};

use crate::config::GithubHost as HostConfig;
use crate::metrics::Fixed;

/// One configured host.
#[derive(Debug)]
pub struct Host {
    pub client: Arc<GithubHost>,
    /// The only scheme repositories on this host are served over (that of its `api_url`).
    pub scheme: Scheme,
    /// The host as a metric label: fixed by configuration.
    pub label: Fixed,
}

#[derive(Debug, Default)]
pub struct GithubHosts {
    hosts: HashMap<String, Host>,
}

impl GithubHosts {
    /// Builds a client per configured host, reading each App's private key.
    pub fn from_config(config: &[HostConfig], clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let mut hosts = HashMap::new();
        for h in config {
            let app = match (h.app_id, &h.private_key_file) {
                (Some(app_id), Some(path)) => {
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
            let client = GithubHost::new(&h.host, &h.api_url, app, clock.clone())?;
            let scheme = if h.api_url.starts_with("http://") {
                Scheme::Http
            } else {
                Scheme::Https
            };
            let host = Host {
                client: Arc::new(client),
                scheme,
                label: Fixed(h.host.as_str().into()),
            };
            hosts.insert(h.host.clone(), host);
        }
        Ok(Self { hosts })
    }

    pub fn get(&self, host: &str) -> Option<&Host> {
        self.hosts.get(host)
    }
}
