//! GitHub vocabulary: repository references and App permission names.

use std::collections::BTreeMap;
use std::fmt;

/// The permissions a GitHub App installation token can carry, and whether `admin` is a level.
pub const APP_PERMISSIONS: &[(&str, bool)] = &[
    ("actions", false),
    ("administration", false),
    ("checks", false),
    ("codespaces", false),
    ("contents", false),
    ("dependabot_secrets", false),
    ("deployments", false),
    ("environments", false),
    ("issues", false),
    ("metadata", false),
    ("packages", false),
    ("pages", false),
    ("pull_requests", false),
    ("repository_custom_properties", false),
    ("repository_hooks", false),
    ("repository_projects", true),
    ("secret_scanning_alerts", false),
    ("secrets", false),
    ("security_events", false),
    ("single_file", false),
    ("statuses", false),
    ("vulnerability_alerts", false),
    ("workflows", false),
    ("members", false),
    ("organization_administration", false),
    ("organization_custom_roles", false),
    ("organization_hooks", false),
    ("organization_packages", false),
    ("organization_plan", false),
    ("organization_projects", true),
    ("organization_secrets", false),
    ("organization_self_hosted_runners", false),
    ("organization_user_blocking", false),
    ("team_discussions", false),
];

/// Checks permission names and levels; the error names the first bad entry.
pub fn validate_permissions(p: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, level) in p {
        let Some((_, admin)) = APP_PERMISSIONS.iter().find(|(n, _)| n == name) else {
            return Err(format!("{name:?} is not a GitHub App permission"));
        };
        let ok = matches!(level.as_str(), "read" | "write") || (*admin && level == "admin");
        if !ok {
            return Err(format!("{name:?} cannot be {level:?}; use read or write"));
        }
        if name == "metadata" && level != "read" {
            return Err("\"metadata\" can only be read".into());
        }
    }
    Ok(())
}

/// A repository on a GitHub host, parsed from `https://HOST/OWNER/REPO` (a trailing `.git` or
/// `/` is accepted). Owner and name are lowercased: GitHub treats them case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoRef {
    pub scheme: String,
    pub host: String,
    pub owner: String,
    pub name: String,
}

impl RepoRef {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = raw.trim();
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| *s == "https" || *s == "http")
            .ok_or_else(|| {
                format!("{url:?} must start with https:// (or http:// for a local host)")
            })?;
        if rest.contains(['?', '#', '@', ' ', '\\']) {
            return Err(format!(
                "{url:?} must not contain credentials, a query or a fragment"
            ));
        }
        let rest = rest.trim_end_matches('/');
        let rest = rest.strip_suffix(".git").unwrap_or(rest);
        let parts: Vec<&str> = rest.split('/').collect();
        let [host, owner, name] = parts[..] else {
            return Err(format!("{url:?} must be HOST/OWNER/REPO"));
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        let owner_ok = !owner.is_empty()
            && owner.len() <= 39
            && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !owner.starts_with('-');
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !(host_ok && owner_ok && name_ok) {
            return Err(format!(
                "{url:?} has an invalid host, owner or repository name"
            ));
        }
        Ok(Self {
            scheme: scheme.to_string(),
            host: host.to_ascii_lowercase(),
            owner: owner.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
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
            (r.host.as_str(), r.name.as_str()),
            ("127.0.0.1:8080", "x.y_z")
        );
    }

    #[test]
    fn rejects_what_is_not_a_repo() {
        for bad in [
            "github.com/a/b",
            "ftp://github.com/a/b",
            "https://github.com/a",
            "https://github.com/a/b/c",
            "https://x:ghp_secret@github.com/a/b",
            "https://github.com/a/b?x=1",
            "https://github.com/-a/b",
            "https://github.com/a/..",
            "https://github.com/a b/c",
        ] {
            assert!(RepoRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn permissions() {
        let ok: BTreeMap<_, _> = [
            ("contents".into(), "write".into()),
            ("metadata".into(), "read".into()),
        ]
        .into();
        assert!(validate_permissions(&ok).is_ok());
        for (n, l) in [
            ("contents", "owner"),
            ("contentz", "read"),
            ("metadata", "write"),
            ("contents", "admin"),
        ] {
            let bad: BTreeMap<_, _> = [(n.to_string(), l.to_string())].into();
            assert!(validate_permissions(&bad).is_err(), "{n}={l}");
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
