//! Setting values parsed as the layers are extracted: each type here reads a value as every
//! source gives it (text, or a number in TOML) by its own rule, so a bad one stops extraction
//! with the key, where it was set and what is wrong ([`super::sources`] words it), and
//! [`super::Config::validate`] only fills in defaults.

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use lanyard_core::redact::redact_url;
use lanyard_core::{format_duration, parse_duration};
use lanyard_store::DatabaseUrl;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::github::origin_of;
use super::{LogFormat, RedisUrl};

/// A value read from its text. The message of an error is shown as it is, after the key; it
/// never repeats a value that may hold a secret.
pub(super) trait FromText: Sized {
    fn from_text(raw: &str) -> Result<Self, String>;
}

/// A setting parsed by `T`'s rule; `None` when no source sets it. Blank text (empty, or only
/// spaces) is refused, unless `BLANK_UNSETS`: then it unsets the setting, as an optional URL
/// or address set to nothing does ([`Unsettable`]).
#[derive(Debug, Clone)]
pub(super) struct Parsed<T, const BLANK_UNSETS: bool = false>(pub Option<T>);

/// A setting that blank text unsets.
pub(super) type Unsettable<T> = Parsed<T, true>;

impl<T, const B: bool> Default for Parsed<T, B> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T, const B: bool> Parsed<T, B> {
    pub fn or(self, default: T) -> T {
        self.0.unwrap_or(default)
    }

    pub fn or_else(self, default: impl FnOnce() -> T) -> T {
        self.0.unwrap_or_else(default)
    }
}

impl<'de, T: FromText, const B: bool> Deserialize<'de> for Parsed<T, B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor(PhantomData))
    }
}

struct TextVisitor<T, const B: bool>(PhantomData<T>);

impl<T: FromText, const B: bool> TextVisitor<T, B> {
    fn parse<E: de::Error>(raw: &str) -> Result<Parsed<T, B>, E> {
        let raw = raw.trim();
        match (raw.is_empty(), B) {
            (true, true) => Ok(Parsed(None)),
            (true, false) => Err(E::custom("is empty")),
            (false, _) => T::from_text(raw)
                .map(|v| Parsed(Some(v)))
                .map_err(E::custom),
        }
    }
}

impl<T: FromText, const B: bool> Visitor<'_> for TextVisitor<T, B> {
    type Value = Parsed<T, B>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value written as text")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Self::parse(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Self::parse(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::parse(&v.to_string())
    }
}

impl FromText for SocketAddr {
    fn from_text(raw: &str) -> Result<Self, String> {
        raw.parse()
            .map_err(|_| format!("{raw:?} is not an IP:port address, like 127.0.0.1:8080"))
    }
}

impl FromText for DatabaseUrl {
    fn from_text(raw: &str) -> Result<Self, String> {
        DatabaseUrl::parse(raw).map_err(|e| e.to_string())
    }
}

impl FromText for RedisUrl {
    fn from_text(raw: &str) -> Result<Self, String> {
        // Not repeated: a URL malformed enough may hide its password from redaction.
        if !raw.starts_with("redis://") {
            return Err("must start with redis://".into());
        }
        redis::Client::open(raw).map_err(|e| {
            let kind = e.kind();
            format!("{} is not a valid Redis URL ({kind:?})", redact_url(raw))
        })?;
        Ok(RedisUrl::new(raw.to_string()))
    }
}

impl FromText for LogFormat {
    fn from_text(raw: &str) -> Result<Self, String> {
        match raw {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not one of text, json")),
        }
    }
}

/// An absolute `http://` or `https://` URL, without a trailing slash (`public_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HttpUrl(pub String);

impl FromText for HttpUrl {
    fn from_text(raw: &str) -> Result<Self, String> {
        let url = raw.trim_end_matches('/');
        let parsed = url::Url::parse(url).ok();
        match parsed {
            Some(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {
                Ok(Self(url.to_string()))
            }
            _ => Err(format!(
                "{:?} must be an absolute http:// or https:// URL",
                redact_url(raw)
            )),
        }
    }
}

/// Origins, comma-separated, each `scheme://host[:port]` and nothing else
/// (`allowed_return_origins`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origins(pub Vec<String>);

impl FromText for Origins {
    fn from_text(raw: &str) -> Result<Self, String> {
        let origins = raw.split(',').map(str::trim).filter(|o| !o.is_empty());
        origins
            .map(|o| {
                origin_of(o)
                    .filter(|origin| origin == &o.trim_end_matches('/').to_ascii_lowercase())
                    .ok_or_else(|| format!("{o:?} is not an origin like https://app.example.com"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// The guaranteed minimum lifetime of a served credential (`token_min_remaining`): more than
/// nothing, less than the hour a GitHub App token lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Floor(pub Duration);

impl FromText for Floor {
    fn from_text(raw: &str) -> Result<Self, String> {
        let d = parse_duration(raw).map_err(|e| e.to_string())?;
        if d.is_zero() || d >= Duration::from_secs(3600) {
            return Err(format!(
                "{} must be more than 0s and less than 1h, the life of a GitHub App token",
                format_duration(d)
            ));
        }
        Ok(Self(d))
    }
}

/// A socket deadline (`http_header_timeout`, `http_request_timeout`): 1 s to 1 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Deadline(pub Duration);

impl FromText for Deadline {
    fn from_text(raw: &str) -> Result<Self, String> {
        super::workers::duration_between(raw, Duration::from_secs(1), Duration::from_secs(3600))
            .map(Self)
    }
}

/// Connections served at once (`http_max_connections`): 1 to 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnectionCount(pub usize);

impl FromText for ConnectionCount {
    fn from_text(raw: &str) -> Result<Self, String> {
        raw.parse::<usize>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .map(Self)
            .ok_or_else(|| format!("{raw:?} is not a whole number from 1 to 1000000"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: FromText>(toml_value: &str) -> Result<Option<T>, String> {
        read_as::<T, false>(toml_value)
    }

    fn read_unsettable<T: FromText>(toml_value: &str) -> Result<Option<T>, String> {
        read_as::<T, true>(toml_value)
    }

    fn read_as<T: FromText, const B: bool>(toml_value: &str) -> Result<Option<T>, String> {
        #[derive(Deserialize)]
        #[serde(bound = "")]
        struct One<T: FromText, const B: bool> {
            v: Parsed<T, B>,
        }
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(&format!("v = {toml_value}")))
            .extract::<One<T, B>>()
            .map(|one| one.v.0)
            .map_err(|e| e.kind.to_string())
    }

    #[test]
    fn each_value_is_parsed_by_its_rule_from_text_or_a_number() {
        let addr: SocketAddr = read("\"127.0.0.1:9\"").unwrap().unwrap();
        assert_eq!(addr.port(), 9);
        assert_eq!(read::<ConnectionCount>("512").unwrap().unwrap().0, 512);
        assert_eq!(
            read::<ConnectionCount>("\" 512 \"").unwrap().unwrap().0,
            512
        );
        let e = read::<Floor>("\"  \"").unwrap_err();
        assert!(e.contains("is empty"), "{e}");
        let blank = read_unsettable::<SocketAddr>("\"\"").unwrap();
        assert!(blank.is_none(), "blank unsets an optional address");
        let e = read::<SocketAddr>("8080").unwrap_err();
        assert!(e.contains("\"8080\" is not an IP:port address"), "{e}");
        let e = read::<Floor>("\"2h\"").unwrap_err();
        assert!(e.contains("less than 1h"), "{e}");
        let e = read::<LogFormat>("true").unwrap_err();
        assert!(e.contains("a value written as text"), "{e}");
        let e = read::<Origins>("\"https://a.test, https://b.test/x\"").unwrap_err();
        assert!(e.contains("https://b.test/x"), "{e}");
    }

    #[test]
    fn a_url_with_a_password_is_never_repeated() {
        let e = read::<RedisUrl>("\"http://u:hunter2@h\"").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = read::<DatabaseUrl>("\"mysql://u:hunter2@h/db\"").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
