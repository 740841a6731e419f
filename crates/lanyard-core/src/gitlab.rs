//! GitLab vocabulary (CONTRACT §14): a namespace's full path (`acme`, `acme/platform`), a
//! project's repository URL (`https://HOST/A/B/…/PROJECT`), and which connected namespace
//! serves a repository: the longest that prefixes its path at a `/` boundary.

use std::fmt;

use serde::Serialize;

use crate::github::{echo, RepoRefError, RepoUrl, Scheme};
use crate::host::Host;

/// The most segments of a namespace's path: GitLab allows 20 ancestors above a group.
pub const MAX_DEPTH: usize = 21;

/// Why a namespace path was refused; carries the start of what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a GitLab namespace path (like acme or acme/platform: letters, digits, _, - and ., each part not starting with - nor ending in . .git or .atom)")]
pub struct NamespaceError(String);

/// One segment of a GitLab path (a group, subgroup, user or project slug), by GitLab's rules
/// for paths: 1 to 255 of letters, digits, `_`, `-` and `.`, not starting with `-`, not ending
/// in `.`, `.git` or `.atom` (so never `.` or `..`). Compared lowercased, as GitLab routes them.
fn slug_ok(slug: &str) -> bool {
    (1..=255).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !slug.starts_with('-')
        && !slug.ends_with('.')
        && !slug.ends_with(".git")
        && !slug.ends_with(".atom")
}

/// A namespace's full path, lowercased: `acme`, `acme/platform`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct NamespacePath(String);

impl NamespacePath {
    pub fn parse(raw: &str) -> Result<Self, NamespaceError> {
        let text = raw.trim().trim_matches('/').to_ascii_lowercase();
        let segments: Vec<&str> = text.split('/').collect();
        if segments.len() > MAX_DEPTH || !segments.iter().all(|s| slug_ok(s)) {
            return Err(NamespaceError(echo(raw.trim())));
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `path` (a project's full path) lies under this namespace, at a `/` boundary.
    pub fn contains(&self, path: &str) -> bool {
        path.strip_prefix(self.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl fmt::Display for NamespacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NamespacePath {
    type Error = NamespaceError;

    fn try_from(text: String) -> Result<Self, NamespaceError> {
        Self::parse(&text)
    }
}

/// A project on a GitLab host, from its repository URL: lowercased, with its full path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GitlabRepoRef {
    pub scheme: Scheme,
    pub host: Host,
    /// `group/sub/project`.
    pub path: String,
}

impl GitlabRepoRef {
    pub fn parse(raw: &str) -> Result<Self, RepoRefError> {
        Self::from_url(RepoUrl::parse(raw)?)
    }

    /// GitLab's rules on a repository URL's path: a namespace (1 to [`MAX_DEPTH`] segments)
    /// and a project, each segment a GitLab slug.
    pub fn from_url(url: RepoUrl) -> Result<Self, RepoRefError> {
        let n = url.segments.len();
        if !(2..=MAX_DEPTH + 1).contains(&n) {
            return Err(RepoRefError::Shape(url.shown));
        }
        if !url.segments.iter().all(|s| slug_ok(s)) {
            return Err(RepoRefError::Name(url.shown));
        }
        Ok(Self {
            scheme: url.scheme,
            host: url.host,
            path: url.segments.join("/").to_ascii_lowercase(),
        })
    }

    /// The connected namespace that serves this project: the longest of `namespaces` that
    /// prefixes its path at a `/` boundary.
    pub fn served_by<'a, T>(
        &self,
        namespaces: impl IntoIterator<Item = (&'a NamespacePath, T)>,
    ) -> Option<T> {
        namespaces
            .into_iter()
            .filter(|(n, _)| n.contains(&self.path))
            .max_by_key(|(n, _)| n.as_str().len())
            .map(|(_, t)| t)
    }
}

impl fmt::Display for GitlabRepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.scheme, self.host, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn namespaces_follow_gitlabs_path_rules() {
        for (raw, want) in [
            ("acme", "acme"),
            ("Acme/Platform", "acme/platform"),
            ("/acme/platform/", "acme/platform"),
            ("a.b_c-d/x1", "a.b_c-d/x1"),
            ("_build/.config", "_build/.config"),
        ] {
            assert_eq!(NamespacePath::parse(raw).unwrap().as_str(), want, "{raw}");
        }
        let deep = vec!["g"; MAX_DEPTH + 1].join("/");
        for bad in [
            "",
            "acme//x",
            "-acme",
            "./x",
            "acme.",
            "acme.git",
            "x/y.atom",
            "ac me",
            "acme/../x",
            deep.as_str(),
        ] {
            assert!(NamespacePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_repository_is_served_by_the_longest_connected_prefix_at_a_slash() {
        let repo =
            GitlabRepoRef::parse("https://GitLab.example.com/Acme/Platform/Api.git/").unwrap();
        assert_eq!(
            repo.to_string(),
            "https://gitlab.example.com/acme/platform/api"
        );
        let acme = NamespacePath::parse("acme").unwrap();
        let platform = NamespacePath::parse("acme/platform").unwrap();
        let plat = NamespacePath::parse("acme/plat").unwrap();
        let connected = [(&acme, "acme"), (&plat, "plat"), (&platform, "platform")];
        assert_eq!(repo.served_by(connected), Some("platform"));
        assert_eq!(
            repo.served_by([(&acme, 1), (&plat, 2)]),
            Some(1),
            "not at a boundary"
        );
        let other = GitlabRepoRef::parse("https://gitlab.example.com/acmex/api").unwrap();
        assert_eq!(other.served_by([(&acme, 1)]), None);
        for bad in [
            "https://gitlab.example.com/acme",
            "https://gitlab.example.com/acme/-x",
            "https://gitlab.example.com/acme/x?y=1",
            "gitlab.example.com/acme/x",
        ] {
            assert!(GitlabRepoRef::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn a_namespace_prefixes_exactly_the_paths_under_it(
            ns in "[a-z][a-z0-9]{0,5}(/[a-z][a-z0-9]{0,5}){0,3}",
            tail in "[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,2}",
        ) {
            let namespace = NamespacePath::parse(&ns).unwrap();
            let under = format!("{ns}/{tail}");
            prop_assert!(namespace.contains(&under));
            prop_assert!(!namespace.contains(&ns), "a namespace does not contain itself");
            let sibling = format!("{ns}{tail}");
            prop_assert!(!namespace.contains(&sibling));
        }
    }
}
