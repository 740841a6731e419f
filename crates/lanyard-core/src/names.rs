//! Parse-don't-validate newtypes for names users type.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} must be at most {MAX_TEXT} characters")]
    TooLong(&'static str),
    #[error("{0} must not contain control characters")]
    Control(&'static str),
    #[error("email address is not valid")]
    InvalidEmail,
}

/// The longest display text (a team name, a label) Lanyard keeps.
pub const MAX_TEXT: usize = 100;

/// The one rule for short display text: trimmed, 1 to [`MAX_TEXT`] characters, no control
/// characters. `what` names the field in the error.
fn display_text(raw: &str, what: &'static str) -> Result<String, NameError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(NameError::Empty(what));
    }
    if text.chars().nth(MAX_TEXT).is_some() {
        return Err(NameError::TooLong(what));
    }
    if text.chars().any(char::is_control) {
        return Err(NameError::Control(what));
    }
    Ok(text.to_string())
}

/// A team's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamName(String);

impl TeamName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        display_text(raw, "team name").map(Self)
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

/// A label to recognise an API key by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(String);

impl Label {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        display_text(raw, "label").map(Self)
    }

    /// The label of a key nobody named.
    pub fn default_label() -> Self {
        Self("default".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
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
        assert_eq!(TeamName::parse("   "), Err(NameError::Empty("team name")));
        assert_eq!(
            TeamName::parse(&"x".repeat(101)),
            Err(NameError::TooLong("team name"))
        );
        assert!(TeamName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            TeamName::parse("a\u{7}b"),
            Err(NameError::Control("team name"))
        );
        assert!(TeamName::parse("Équipe Ünïcode").is_ok());
        assert_eq!(Label::parse(" ci ").unwrap().as_str(), "ci");
        assert_eq!(Label::parse("\n"), Err(NameError::Empty("label")));
        assert_eq!(Label::parse("a\u{0}b"), Err(NameError::Control("label")));
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
