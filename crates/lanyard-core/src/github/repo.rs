//! Repository references: `https://HOST/OWNER/REPO`, with the owner and name rules written once.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::echo;
use crate::host::Host;

crate::string_enum! {
    /// The URL scheme a host's repositories are served over.
    pub enum Scheme {
        Https = "https",
        Http = "http",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a GitHub user or organisation login (1 to 39 letters, digits or hyphens, not starting with a hyphen)")]
pub struct OwnerError(String);

/// A GitHub user or organisation login, lowercased: GitHub treats logins case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Owner(String);

impl Owner {
    pub fn parse(raw: &str) -> Result<Self, OwnerError> {
        let s = raw.trim();
        let ok = !s.is_empty()
            && s.len() <= 39
            && !s.starts_with('-')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(OwnerError(echo(raw)));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Owner {
    type Error = OwnerError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl<'de> Deserialize<'de> for Owner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A repository name, lowercased: 1 to 100 letters, digits, `-`, `_` or `.`, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RepoName(String);

impl RepoName {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 100
            && raw != "."
            && raw != ".."
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        ok.then(|| Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a repository URL was refused. Each variant carries the start of the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoRefError {
    #[error("{0:?} must start with https:// (or http:// for a local host)")]
    Scheme(String),
    #[error("{0:?} must not contain credentials, a query or a fragment")]
    Extras(String),
    #[error("{0:?} must be HOST/OWNER/REPO")]
    Shape(String),
    #[error("{0:?} has an invalid host")]
    Host(String),
    #[error("{0:?} has an invalid owner")]
    Owner(String),
    #[error("{0:?} has an invalid repository name")]
    Name(String),
}

/// A repository on a GitHub host, parsed from `https://HOST/OWNER/REPO` (a trailing `.git` or
/// `/` is accepted and normalised away). Host, owner and name are lowercased.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoRef {
    pub scheme: Scheme,
    pub host: Host,
    pub owner: Owner,
    pub name: RepoName,
}

/// A repository URL taken apart, before any provider's rules on its path: the scheme, the host,
/// and the path's segments (a trailing `.git` or `/` normalised away). Shared by GitHub's
/// `HOST/OWNER/REPO` and GitLab's `HOST/GROUP/…/PROJECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUrl {
    pub scheme: Scheme,
    pub host: Host,
    pub segments: Vec<String>,
    /// The start of the text, for errors.
    pub shown: String,
}

impl RepoUrl {
    pub fn parse(raw: &str) -> Result<Self, RepoRefError> {
        let text = raw.trim();
        let shown = || echo(text);
        // A backslash would be read as a slash, and whitespace inside dropped or escaped: both
        // mean the text is not the URL it looks like.
        if text.bytes().any(|b| b == b'\\' || b.is_ascii_control()) {
            return Err(RepoRefError::Shape(shown()));
        }
        // Only `scheme://host/…`: the URL parser would also read `https:host/…`.
        if !text.contains("://") {
            return Err(RepoRefError::Scheme(shown()));
        }
        // The URL parser resolves `.` and `..` (`a/x/../b` is `a/b`): refuse them as names.
        let dots = |seg: &str| {
            let seg = seg.to_ascii_lowercase().replace("%2e", ".");
            seg == "." || seg == ".."
        };
        if text.split(['/', '?', '#']).skip(3).any(dots) {
            return Err(RepoRefError::Name(shown()));
        }
        let url = url::Url::parse(text).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => RepoRefError::Scheme(shown()),
            url::ParseError::EmptyHost
            | url::ParseError::IdnaError
            | url::ParseError::InvalidDomainCharacter
            | url::ParseError::InvalidIpv4Address
            | url::ParseError::InvalidIpv6Address
            | url::ParseError::InvalidPort => RepoRefError::Host(shown()),
            _ => RepoRefError::Shape(shown()),
        })?;
        let scheme = Scheme::parse(url.scheme()).ok_or_else(|| RepoRefError::Scheme(shown()))?;
        let userinfo = !url.username().is_empty() || url.password().is_some();
        if userinfo || url.query().is_some() || url.fragment().is_some() {
            return Err(RepoRefError::Extras(shown()));
        }
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => return Err(RepoRefError::Host(shown())),
        };
        // A URL's host is a DNS name: no underscore, though a configured host may have one.
        let host = Host::parse(&host)
            .ok()
            .filter(|h| !h.as_str().contains('_'))
            .ok_or_else(|| RepoRefError::Host(shown()))?;
        let path = url.path().trim_start_matches('/').trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        Ok(Self {
            scheme,
            host,
            segments: path.split('/').map(String::from).collect(),
            shown: shown(),
        })
    }
}

impl RepoRef {
    pub fn parse(raw: &str) -> Result<Self, RepoRefError> {
        Self::from_url(RepoUrl::parse(raw)?)
    }

    /// GitHub's rules on a repository URL's path: exactly an owner and a name.
    pub fn from_url(url: RepoUrl) -> Result<Self, RepoRefError> {
        let RepoUrl {
            scheme,
            host,
            segments,
            shown,
        } = url;
        let [owner, name] = segments.as_slice() else {
            return Err(RepoRefError::Shape(shown));
        };
        let owner = Owner::parse(owner).map_err(|_| RepoRefError::Owner(shown.clone()))?;
        let name = RepoName::parse(name).ok_or(RepoRefError::Name(shown))?;
        Ok(Self {
            scheme,
            host,
            owner,
            name,
        })
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}/{}/{}",
            self.scheme, self.host, self.owner, self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_normalises() {
        let r = RepoRef::parse("https://GitHub.com/Acme/Widgets.git/").unwrap();
        assert_eq!(r.to_string(), "https://github.com/acme/widgets");
        let r = RepoRef::parse("http://127.0.0.1:8080/acme/x.y_z").unwrap();
        assert_eq!(
            (r.scheme, r.host.as_str(), r.name.as_str()),
            (Scheme::Http, "127.0.0.1:8080", "x.y_z")
        );
    }

    #[test]
    fn rejects_what_is_not_a_repo_with_a_typed_reason() {
        use RepoRefError as E;
        for (bad, want) in [
            ("github.com/a/b", E::Scheme(String::new())),
            ("ftp://github.com/a/b", E::Scheme(String::new())),
            ("https://github.com/a", E::Shape(String::new())),
            ("https://github.com/a/b/c", E::Shape(String::new())),
            ("https://x:pw@github.com/a/b", E::Extras(String::new())),
            ("https://github.com/a/b?x=1", E::Extras(String::new())),
            ("https://github.com/-a/b", E::Owner(String::new())),
            ("https://github.com/a/..", E::Name(String::new())),
            ("https://git_hub.com/a/b", E::Host(String::new())),
            ("https://github.com/a/x/../b", E::Name(String::new())),
            ("https://github.com/a/%2E%2e", E::Name(String::new())),
            (
                "https:github.com/x/../acme/widgets",
                E::Scheme(String::new()),
            ),
            ("https://github.com\\a\\b", E::Shape(String::new())),
            ("https://github.com/ac me!/widgets", E::Owner(String::new())),
        ] {
            let got = RepoRef::parse(bad).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&want),
                "{bad}: {got}"
            );
        }
        let long = format!("https://github.com/a/{}", "x".repeat(5000));
        assert!(RepoRef::parse(&long).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn owners_follow_one_rule() {
        assert_eq!(Owner::parse(" Acme-Corp ").unwrap().as_str(), "acme-corp");
        for bad in ["", "-acme", "a b", "a_b", &"x".repeat(40)] {
            assert!(Owner::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,60}") {
            if let Ok(r) = RepoRef::parse(&s) {
                prop_assert_eq!(RepoRef::parse(&r.to_string()).unwrap(), r);
            }
        }
    }
}
