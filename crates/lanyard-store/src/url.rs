//! `DatabaseUrl`: which backend to use, chosen by the URL's scheme. Redacts its password.

use std::fmt;
use std::path::PathBuf;

use lanyard_core::redact::redact_url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub const fn as_str(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    dialect: Dialect,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid database URL {redacted:?}: {reason}")]
pub struct DatabaseUrlError {
    redacted: String,
    reason: &'static str,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, DatabaseUrlError> {
        let url = raw.trim().to_string();
        let err = |reason| DatabaseUrlError {
            redacted: redact_url(&url),
            reason,
        };
        let dialect = if let Some(rest) = url.strip_prefix("sqlite:") {
            if rest.trim_start_matches('/').is_empty() {
                return Err(err(
                    "a sqlite URL needs a file path, like sqlite://./.lanyard/lanyard.db",
                ));
            }
            Dialect::Sqlite
        } else if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            if rest.is_empty() || rest.starts_with('/') && rest.len() == 1 {
                return Err(err(
                    "a postgres URL needs a host, like postgres://user@127.0.0.1:5432/lanyard",
                ));
            }
            Dialect::Postgres
        } else {
            return Err(err("the scheme must be sqlite:// or postgres://"));
        };
        Ok(Self { url, dialect })
    }

    /// The default embedded database inside a data directory.
    pub fn sqlite_in(data_dir: &std::path::Path) -> Self {
        Self {
            url: format!("sqlite://{}", data_dir.join("lanyard.db").display()),
            dialect: Dialect::Sqlite,
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The file behind a sqlite URL (so callers can create its directory).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or(rest);
        (path != ":memory:").then(|| PathBuf::from(path))
    }

    /// The URL with its password. Only for handing to the driver.
    pub fn expose(&self) -> &str {
        &self.url
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&redact_url(&self.url))
            .finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_password() {
        let url = DatabaseUrl::parse("postgres://lanyard:correct-horse@db:5432/lanyard").unwrap();
        for shown in [format!("{url:?}"), format!("{url}"), format!("{:#?}", url)] {
            assert!(!shown.contains("correct-horse"), "{shown}");
            assert!(shown.contains("db:5432/lanyard"), "{shown}");
        }
        assert!(url.expose().contains("correct-horse"));
    }

    #[test]
    fn scheme_picks_the_dialect() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://x.db").unwrap().dialect(),
            Dialect::Sqlite
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://h/db").unwrap().dialect(),
            Dialect::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/db").unwrap().dialect(),
            Dialect::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/a/lanyard.db")
                .unwrap()
                .sqlite_path()
                .unwrap(),
            PathBuf::from("/tmp/a/lanyard.db")
        );
    }

    #[test]
    fn bad_urls_explain_themselves_without_leaking() {
        let e = DatabaseUrl::parse("mysql://root:pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sqlite:// or postgres://") && !e.contains(":pw@"),
            "{e}"
        );
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("").is_err());
    }
}
