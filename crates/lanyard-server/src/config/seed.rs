//! `[e2e_seed]` (CONTRACT §8): the connection and repositories a test account's seeded session
//! gets, usually a CI test organisation. TOML only: it is a table, not a scalar.

use std::path::PathBuf;

use lanyard_core::github::InstallationId;
use lanyard_core::github::{Owner, RepoRef};
use lanyard_core::Host;
use serde::Deserialize;

use super::github::GithubHost;
use super::sources::require_private;
use super::ConfigError;

const KEY: &str = "e2e_seed";
/// A seed names at most this many repositories (a session's own limit).
const MAX_REPOS: usize = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeedLayer {
    pub host: String,
    pub owner: String,
    pub installation_id: Option<u64>,
    pub pat_file: Option<PathBuf>,
    pub repos: Vec<String>,
}

/// How the seed's owner is reached: the App's installation, or a PAT kept in a file (read at
/// each seeding, so it can be rotated without a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedCredential {
    Installation(InstallationId),
    PatFile(PathBuf),
}

/// A validated seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2eSeed {
    pub host: Host,
    pub owner: Owner,
    pub credential: SeedCredential,
    /// Full repository URLs on `host`, in its scheme, as a session asks for them.
    pub repo_urls: Vec<String>,
}

impl E2eSeed {
    /// The installation as the store keeps it (`None` for a PAT seed).
    pub fn installation_row_id(&self) -> Option<InstallationId> {
        match &self.credential {
            SeedCredential::Installation(id) => Some(*id),
            SeedCredential::PatFile(_) => None,
        }
    }
}

fn invalid(message: String) -> ConfigError {
    ConfigError::invalid(KEY, message)
}

pub(super) fn validate_seed(
    seed: Option<SeedLayer>,
    hosts: &[GithubHost],
) -> Result<Option<E2eSeed>, ConfigError> {
    let Some(seed) = seed else {
        return Ok(None);
    };
    let host_name = Host::parse(&seed.host).ok();
    let host = hosts
        .iter()
        .find(|h| Some(&h.host) == host_name.as_ref())
        .ok_or_else(|| {
            invalid(format!(
                "host {:?} is not one of the configured GitHub hosts",
                seed.host
            ))
        })?;
    let owner = Owner::parse(&seed.owner).map_err(|e| invalid(format!("owner: {e}")))?;
    let credential = match (seed.installation_id, seed.pat_file) {
        (Some(id), None) => SeedCredential::Installation(
            InstallationId::try_from(id).map_err(|e| invalid(format!("installation_id: {e}")))?,
        ),
        (None, Some(path)) => {
            require_private(&path).map_err(|e| invalid(format!("pat_file: {e}")))?;
            if !path.is_file() {
                return Err(invalid(format!(
                    "pat_file {} is not a readable file",
                    path.display()
                )));
            }
            SeedCredential::PatFile(path)
        }
        _ => {
            return Err(invalid(
                "give exactly one of installation_id and pat_file".into(),
            ))
        }
    };
    if seed.repos.is_empty() || seed.repos.len() > MAX_REPOS {
        return Err(invalid(format!(
            "repos must name 1 to {MAX_REPOS} repositories of {owner}"
        )));
    }
    let scheme = if host.api_url.starts_with("http://") {
        "http"
    } else {
        "https"
    };
    let repo_urls = seed
        .repos
        .iter()
        .map(|name| {
            let name = name.trim();
            let url = format!("{scheme}://{}/{owner}/{name}", host.host);
            if name.contains('/') {
                return Err(invalid(format!(
                    "repos: {name:?} must be a repository name under {owner}, without slashes"
                )));
            }
            RepoRef::parse(&url)
                .map(|r| r.to_string())
                .map_err(|e| invalid(format!("repos: {name:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(E2eSeed {
        host: host.host.clone(),
        owner,
        credential,
        repo_urls,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::SeedCredential;
    use crate::config::{Config, Flags};

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("lanyard.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn env(_: &[(&str, &str)]) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn an_e2e_seed_names_a_configured_host_one_credential_and_repository_names() {
        let dir = tempfile::TempDir::new().unwrap();
        let host = "[[github]]\nhost = \"127.0.0.1:9\"\napi_url = \"http://127.0.0.1:9/api/v3\"\n";
        let load = |seed: &str| {
            let path = write(&dir, &format!("{host}\n[e2e_seed]\n{seed}"));
            let flags = Flags {
                config: Some(path),
                ..Flags::default()
            };
            Config::load(&flags, &env(&[])).map(|l| l.config)
        };
        let c = load("host = \"127.0.0.1:9\"\nowner = \"Acme-CI\"\ninstallation_id = 7\nrepos = [\"fixtures\", \"more\"]\n").unwrap();
        let seed = c.e2e_seed.unwrap();
        assert_eq!(
            seed.credential,
            SeedCredential::Installation(7_u64.try_into().unwrap())
        );
        assert_eq!(seed.owner.as_str(), "acme-ci");
        assert_eq!(
            seed.repo_urls,
            [
                "http://127.0.0.1:9/acme-ci/fixtures",
                "http://127.0.0.1:9/acme-ci/more"
            ],
            "in the host's scheme"
        );
        let refused = |seed: &str, needle: &str| {
            let e = load(seed).unwrap_err().to_string();
            assert!(e.contains("e2e_seed") && e.contains(needle), "{seed}: {e}");
        };
        refused(
            "host = \"github.com\"\nowner = \"a\"\ninstallation_id = 7\nrepos = [\"r\"]\n",
            "not one of the configured",
        );
        refused(
            "host = \"127.0.0.1:9\"\nowner = \"a\"\nrepos = [\"r\"]\n",
            "exactly one",
        );
        refused(
            "host = \"127.0.0.1:9\"\nowner = \"a\"\ninstallation_id = 7\npat_file = \"/x\"\nrepos = [\"r\"]\n",
            "exactly one",
        );
        refused(
            "host = \"127.0.0.1:9\"\nowner = \"a\"\ninstallation_id = 7\nrepos = []\n",
            "1 to 100",
        );
        refused(
            "host = \"127.0.0.1:9\"\nowner = \"a\"\ninstallation_id = 7\nrepos = [\"other/r\"]\n",
            "without slashes",
        );
        refused(
            "host = \"127.0.0.1:9\"\nowner = \"a\"\npat_file = \"/nonexistent/pat\"\nrepos = [\"r\"]\n",
            "pat_file",
        );
        let path = write(
            &dir,
            "[e2e_seed]\nhost = \"x\"\nowner = \"a\"\nrepos = [\"r\"]\nbranch = \"main\"\n",
        );
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        let e = Config::load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("unknown key `branch`"), "{e}");
    }
}
