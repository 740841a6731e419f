//! A host as repository URLs name it: `github.com`, `ghe.example.com:8443`, `127.0.0.1:8080`.
//! Parsed once where it enters (configuration, a request, a repository URL, a webhook's
//! route); everything past that compares hosts as values, never lowercasing them again.

use std::borrow::Borrow;
use std::fmt;

use serde::Serialize;

use crate::github::echo;

/// Why a host was refused; carries the start of what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a bare host like github.com or ghe.example.com:8443 (letters, digits, dots and hyphens, then an optional port)")]
pub struct HostError(String);

/// A host: dot-separated labels of 1 to 63 lowercase letters, digits, hyphens or underscores
/// (a local service's name may have one; configuration always took them), not starting or
/// ending with a hyphen, 253 bytes in all;
/// then an optional `:port` (1 to 65535, written without leading zeros). No scheme, path or
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Host(String);

impl Host {
    pub fn parse(raw: &str) -> Result<Self, HostError> {
        let refused = || HostError(echo(raw.trim()));
        let text = raw.trim().to_ascii_lowercase();
        let (name, port) = match text.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (text.as_str(), None),
        };
        let label_ok = |label: &str| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(refused());
        }
        let Some(port) = port else {
            return Ok(Self(text));
        };
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        match port.parse::<u16>() {
            Ok(n) if digits && n > 0 => Ok(Self(format!("{name}:{n}"))),
            _ => Err(refused()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// As stored: the store keeps hosts as text and reads them back through this.
impl TryFrom<String> for Host {
    type Error = HostError;

    fn try_from(text: String) -> Result<Self, HostError> {
        Host::parse(&text)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for Host {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Host {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Host {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Host {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Host {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Host> for String {
    fn eq(&self, other: &Host) -> bool {
        *self == other.0
    }
}

impl<'de> serde::Deserialize<'de> for Host {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Host::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_lowercased_once_and_anything_else_is_refused() {
        for (raw, want) in [
            ("github.com", "github.com"),
            (" GitHub.COM ", "github.com"),
            ("ghe.example.com:8443", "ghe.example.com:8443"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("localhost", "localhost"),
            ("gitlab-web:08080", "gitlab-web:8080"),
            ("gitlab_web", "gitlab_web"),
        ] {
            assert_eq!(Host::parse(raw).unwrap().as_str(), want, "{raw}");
        }
        for bad in [
            "",
            "https://github.com",
            "github.com/acme",
            "user@github.com",
            "github.com:",
            "github.com:0",
            "github.com:65536",
            "github.com:80:80",
            ".github.com",
            "github.com-",
            "git hub.com",
            "[::1]:80",
            "a..b",
            "github.com:+80",
            &format!("{}.com", "a".repeat(64)),
            &"a".repeat(254),
        ] {
            let e = Host::parse(bad).unwrap_err();
            assert!(e.to_string().contains("bare host"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_refusal_echoes_only_the_start_of_what_was_given() {
        let long = format!("https://{}", "x".repeat(10_000));
        let e = Host::parse(&long).unwrap_err().to_string();
        assert!(e.len() < 300, "{}", e.len());
    }
}
