//! git's credential-helper protocol: `key=value` lines ending at a blank line or EOF.

use std::collections::BTreeMap;

/// The longest line accepted; git's own limit is far lower for these keys.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("line {0} is not key=value")]
    Malformed(usize),
    #[error("line {0} is longer than {MAX_LINE} bytes")]
    TooLong(usize),
    #[error("line {0} has an empty key")]
    EmptyKey(usize),
    #[error("line {0} contains a NUL byte")]
    Nul(usize),
}

/// Parses the attributes git sends. Unknown keys are kept (and ignored by callers); array keys
/// such as `wwwauth[]` keep their last value.
pub fn parse(input: &str) -> Result<BTreeMap<String, String>, ProtocolError> {
    let mut out = BTreeMap::new();
    for (i, line) in input.split('\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > MAX_LINE {
            return Err(ProtocolError::TooLong(n));
        }
        if line.is_empty() {
            break;
        }
        if line.contains('\0') {
            return Err(ProtocolError::Nul(n));
        }
        let (key, value) = line.split_once('=').ok_or(ProtocolError::Malformed(n))?;
        if key.is_empty() {
            return Err(ProtocolError::EmptyKey(n));
        }
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

/// The owner a request is for: the first segment of `path` (sent with `credential.useHttpPath`).
pub fn owner_of(attrs: &BTreeMap<String, String>) -> Option<String> {
    let path = attrs.get("path")?;
    let owner = path.trim_start_matches('/').split('/').next()?;
    (!owner.is_empty()).then(|| owner.to_ascii_lowercase())
}

/// The answer to `get`.
pub fn format_get(password: &str, expiry_unix: Option<i64>) -> String {
    let mut out = format!("username=x-access-token\npassword={password}\n");
    if let Some(t) = expiry_unix {
        out.push_str(&format!("password_expiry_utc={t}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_request_with_unknown_keys() {
        let a = parse("protocol=https\nhost=github.com\npath=Acme/widgets.git\ncapability[]=authtype\nwwwauth[]=Basic realm=\"GitHub\"\n\n").unwrap();
        assert_eq!(a["protocol"], "https");
        assert_eq!(a["host"], "github.com");
        assert_eq!(
            a["wwwauth[]"], "Basic realm=\"GitHub\"",
            "values may contain '='"
        );
        assert_eq!(owner_of(&a).as_deref(), Some("acme"));
    }

    #[test]
    fn stops_at_the_blank_line_and_accepts_eof_and_crlf() {
        let a = parse("host=a\r\n\nhost=b\n").unwrap();
        assert_eq!(a["host"], "a");
        assert_eq!(parse("host=x").unwrap()["host"], "x");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(
            parse("protocol=https\nnonsense\n"),
            Err(ProtocolError::Malformed(2))
        );
        assert_eq!(parse("=value\n"), Err(ProtocolError::EmptyKey(1)));
        assert_eq!(parse("host=a\0b\n"), Err(ProtocolError::Nul(1)));
        let long = format!("path={}\n", "x".repeat(MAX_LINE));
        assert_eq!(parse(&long), Err(ProtocolError::TooLong(1)));
    }

    #[test]
    fn answers_with_the_fixed_username_and_the_expiry() {
        assert_eq!(
            format_get("tok", Some(1_700_000_000)),
            "username=x-access-token\npassword=tok\npassword_expiry_utc=1700000000\n"
        );
        assert!(!format_get("pat", None).contains("expiry"));
        let no_path = parse("host=github.com\n").unwrap();
        assert_eq!(owner_of(&no_path), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }
    }
}
