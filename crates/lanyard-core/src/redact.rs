//! Redaction of credentials inside connection URLs, for `Debug`, `Display` and logs.

/// Replaces the password of `scheme://user:password@host/...` and any `password=` query value
/// with `***`. Everything else is kept, so the URL stays useful in an error message.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            let userinfo = &out[auth_start..auth_start + at];
            if let Some(colon) = userinfo.find(':') {
                let pw_start = auth_start + colon + 1;
                out.replace_range(pw_start..auth_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_userinfo_passwords_and_password_params() {
        assert_eq!(
            redact_url("postgres://app:s3cr3t@db:5432/lanyard"),
            "postgres://app:***@db:5432/lanyard"
        );
        assert_eq!(
            redact_url("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        let r = redact_url("postgres://db/x?user=a&password=topsecret&sslmode=require");
        assert!(
            !r.contains("topsecret") && r.contains("sslmode=require"),
            "{r}"
        );
        assert_eq!(
            redact_url("sqlite://./.lanyard/lanyard.db"),
            "sqlite://./.lanyard/lanyard.db"
        );
        assert_eq!(redact_url("postgres://user@db/x"), "postgres://user@db/x");
    }

    #[test]
    fn passwords_containing_at_signs_are_hidden_whole() {
        let r = redact_url("postgres://u:p@ss@w0rd@db/x");
        assert!(!r.contains("ss") && !r.contains("w0rd"), "{r}");
    }
}
