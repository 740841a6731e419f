//! Parse-don't-validate newtypes for names users type.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("team name must not be empty")]
    EmptyTeamName,
    #[error("team name must be at most 100 characters")]
    TeamNameTooLong,
    #[error("team name must not contain control characters")]
    TeamNameControl,
    #[error("email address is not valid")]
    InvalidEmail,
}

/// A team's display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamName(String);

impl TeamName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(NameError::EmptyTeamName);
        }
        if name.chars().count() > 100 {
            return Err(NameError::TeamNameTooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::TeamNameControl);
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, with its domain lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let s = raw.trim();
        let (local, domain) = s.rsplit_once('@').ok_or(NameError::InvalidEmail)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && s.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !local.contains('@')
            && s.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            return Err(NameError::InvalidEmail);
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names() {
        assert_eq!(TeamName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert_eq!(TeamName::parse("   "), Err(NameError::EmptyTeamName));
        assert_eq!(
            TeamName::parse(&"x".repeat(101)),
            Err(NameError::TeamNameTooLong)
        );
        assert_eq!(TeamName::parse("a\u{7}b"), Err(NameError::TeamNameControl));
        assert!(TeamName::parse("Équipe Ünïcode").is_ok());
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Dev+x@Example.COM").unwrap().as_str(),
            "Dev+x@example.com"
        );
        for bad in [
            "",
            "nobody",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
