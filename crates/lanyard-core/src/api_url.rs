//! The base URL a Lanyard client sends its secrets to (an e2e token, a runner token).
//!
//! `https://` is accepted for any host; `http://` only for loopback (`localhost`, `127.0.0.0/8`,
//! `[::1]`), where nothing crosses a network. Credentials, queries and fragments in the URL are
//! refused: a secret goes in a header, never in a URL. Clients built on an [`ApiUrl`] must also
//! follow no redirects, so a secret never travels on to another place.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiUrlError {
    #[error("{0:?} is not an http(s) URL (expected https://host[:port][/path])")]
    Malformed(String),
    #[error("{0:?} would send secrets in clear text: http:// is allowed only to a loopback host; use https://")]
    InsecureHttp(String),
    #[error(
        "{0:?} carries credentials, a query or a fragment; give only scheme, host, port and path"
    )]
    Extra(String),
}

/// A checked base URL, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrl(String);

/// Quotes an unchecked URL for an error message: at most 200 characters, with anything that may
/// be a secret (credentials before `@`, a query, a fragment) replaced by `…`.
fn echo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let (scheme, rest) = raw.split_at(start);
    // Credentials end at the last `@` before the path: a `#` or `?` inside a password must not
    // cut them short and leave the rest of it shown.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("…@{}", &rest[at + 1..]),
        None => rest.to_string(),
    };
    let kept = rest.split(['?', '#']).next().unwrap_or_default();
    let mut shown = format!("{scheme}{kept}");
    if kept.len() < rest.len() {
        shown.push('…');
    }
    shown.chars().take(200).collect()
}

impl ApiUrl {
    pub fn parse(raw: &str) -> Result<Self, ApiUrlError> {
        let trimmed = raw.trim();
        // The URL parser would drop a tab or newline inside silently: refuse it instead.
        if trimmed
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(ApiUrlError::Malformed(echo(raw)));
        }
        let url = url::Url::parse(trimmed).map_err(|_| ApiUrlError::Malformed(echo(raw)))?;
        if !matches!(url.scheme(), "https" | "http") || url.cannot_be_a_base() {
            return Err(ApiUrlError::Malformed(echo(raw)));
        }
        let userinfo = !url.username().is_empty() || url.password().is_some();
        if userinfo || url.query().is_some() || url.fragment().is_some() {
            return Err(ApiUrlError::Extra(echo(raw)));
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err(ApiUrlError::Malformed(echo(raw))),
        };
        if url.scheme() == "http" && !loopback {
            return Err(ApiUrlError::InsecureHttp(echo(raw)));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ApiUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_url_never_shows_a_password_or_a_query() {
        for (raw, shown) in [
            ("https://user:pa#ss@h.example", "https://…@h.example"),
            ("https://user:pa?ss@h.example/x", "https://…@h.example/x"),
            ("https://h.example/p?token=abc", "https://h.example/p…"),
            ("https://h.example?token=abc", "https://h.example…"),
        ] {
            assert_eq!(echo(raw), shown, "{raw}");
        }
    }

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        for ok in [
            "https://lanyard.example.com",
            "https://lanyard.example.com:8443/base/",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "HTTP://localhost:1/",
            "http://[::1]:8080",
        ] {
            assert!(ApiUrl::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            ApiUrl::parse("https://l.example/base/").unwrap().as_str(),
            "https://l.example/base"
        );
        for insecure in [
            "http://lanyard.example.com",
            "http://10.0.0.1:8080",
            "http://localhost.evil.example",
            "http://[::2]:80",
            "http://0.0.0.0:8080",
        ] {
            assert!(
                matches!(ApiUrl::parse(insecure), Err(ApiUrlError::InsecureHttp(_))),
                "{insecure}"
            );
        }
        let e = ApiUrl::parse("http://user:hunter2@l.example/?token=s3cret").unwrap_err();
        let shown = e.to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret") && shown.contains("l.example"),
            "{shown}"
        );
        for extra in [
            "https://user:pw@l.example",
            "http://127.0.0.1@evil.example",
            "https://l.example/?x=1",
            "https://l.example/#f",
        ] {
            assert!(
                matches!(ApiUrl::parse(extra), Err(ApiUrlError::Extra(_))),
                "{extra}"
            );
        }
        for bad in [
            "lanyard.example.com",
            "ftp://l.example",
            "https://",
            "https://:80",
            "https://l.example:99999",
            "https://l.example:x",
            "https://[::1",
            "https://l.exa mple",
        ] {
            assert!(
                matches!(ApiUrl::parse(bad), Err(ApiUrlError::Malformed(_))),
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_accepts_clear_text_off_loopback(s in "\\PC{0,80}") {
            if let Ok(url) = ApiUrl::parse(&s) {
                let u = url.as_str();
                proptest::prop_assert!(u.starts_with("https://") || u.starts_with("http://"));
                if let Some(rest) = u.strip_prefix("http://") {
                    let host = rest.split('/').next().unwrap();
                    proptest::prop_assert!(host.starts_with("127.") || host.starts_with("[::1]")
                        || host.to_ascii_lowercase().starts_with("localhost"), "{}", u);
                }
            }
        }
    }
}
