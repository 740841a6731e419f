//! GitHub App permissions: the names and levels an installation token may carry, in one table,
//! and [`PermissionSet`], the only form in which a request's permissions travel past the edge.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::echo;

crate::string_enum! {
    /// A GitHub App permission name.
    pub enum Permission {
        Actions = "actions",
        Administration = "administration",
        Checks = "checks",
        Codespaces = "codespaces",
        Contents = "contents",
        DependabotSecrets = "dependabot_secrets",
        Deployments = "deployments",
        Environments = "environments",
        Issues = "issues",
        Metadata = "metadata",
        Packages = "packages",
        Pages = "pages",
        PullRequests = "pull_requests",
        RepositoryCustomProperties = "repository_custom_properties",
        RepositoryHooks = "repository_hooks",
        RepositoryProjects = "repository_projects",
        SecretScanningAlerts = "secret_scanning_alerts",
        Secrets = "secrets",
        SecurityEvents = "security_events",
        SingleFile = "single_file",
        Statuses = "statuses",
        VulnerabilityAlerts = "vulnerability_alerts",
        Workflows = "workflows",
        Members = "members",
        OrganizationAdministration = "organization_administration",
        OrganizationCustomRoles = "organization_custom_roles",
        OrganizationHooks = "organization_hooks",
        OrganizationPackages = "organization_packages",
        OrganizationPlan = "organization_plan",
        OrganizationProjects = "organization_projects",
        OrganizationSecrets = "organization_secrets",
        OrganizationSelfHostedRunners = "organization_self_hosted_runners",
        OrganizationUserBlocking = "organization_user_blocking",
        TeamDiscussions = "team_discussions",
    }
}

crate::string_enum! {
    /// A permission level.
    pub enum Access {
        Read = "read",
        Write = "write",
        Admin = "admin",
    }
}

impl Permission {
    /// The levels GitHub accepts for this permission: the one table of them.
    pub const fn levels(self) -> &'static [Access] {
        const READ: &[Access] = &[Access::Read];
        const READ_WRITE: &[Access] = &[Access::Read, Access::Write];
        const ALL: &[Access] = &[Access::Read, Access::Write, Access::Admin];
        match self {
            Permission::Metadata => READ,
            Permission::RepositoryProjects | Permission::OrganizationProjects => ALL,
            _ => READ_WRITE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error("permissions must name at least one permission; omit the field for the defaults (contents: read, metadata: read)")]
    Empty,
    #[error("{0:?} is not a GitHub App permission")]
    UnknownName(String),
    #[error("{name} cannot be {level:?}; use {allowed}")]
    BadLevel {
        name: Permission,
        level: String,
        allowed: String,
    },
}

/// A non-empty set of GitHub App permissions with valid levels. Ordered, so equal sets hash,
/// print and store identically.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermissionSet(BTreeMap<Permission, Access>);

impl PermissionSet {
    /// What a session gets when it asks for nothing: read its code and metadata.
    pub fn defaults() -> Self {
        Self(BTreeMap::from([
            (Permission::Contents, Access::Read),
            (Permission::Metadata, Access::Read),
        ]))
    }

    /// Parses names and levels as sent on the wire; the error names the first bad entry.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, PermissionError> {
        let mut set = BTreeMap::new();
        for (name, level) in entries {
            let permission =
                Permission::parse(name).ok_or_else(|| PermissionError::UnknownName(echo(name)))?;
            let allowed = permission.levels();
            let access = Access::parse(level)
                .filter(|a| allowed.contains(a))
                .ok_or_else(|| PermissionError::BadLevel {
                    name: permission,
                    level: echo(level),
                    allowed: allowed
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(" or "),
                })?;
            set.insert(permission, access);
        }
        if set.is_empty() {
            return Err(PermissionError::Empty);
        }
        Ok(Self(set))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Permission, Access)> + '_ {
        self.0.iter().map(|(p, a)| (*p, *a))
    }

    pub fn get(&self, permission: Permission) -> Option<Access> {
        self.0.get(&permission).copied()
    }

    /// `name=level` pairs joined by commas: a stable text form for cache keys.
    pub fn canonical(&self) -> String {
        self.iter()
            .map(|(p, a)| format!("{p}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter().map(|(p, a)| (p.as_str(), a.as_str())))
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        Self::parse(raw.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_sets_parse_and_print_in_order() {
        let set = PermissionSet::parse([("metadata", "read"), ("contents", "write")]).unwrap();
        assert_eq!(set.canonical(), "contents=write,metadata=read");
        assert_eq!(set.get(Permission::Contents), Some(Access::Write));
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"{"contents":"write","metadata":"read"}"#);
        assert_eq!(serde_json::from_str::<PermissionSet>(&json).unwrap(), set);
        assert!(PermissionSet::parse([("organization_projects", "admin")]).is_ok());
    }

    #[test]
    fn defaults_read_only() {
        assert_eq!(
            PermissionSet::defaults().canonical(),
            "contents=read,metadata=read"
        );
    }

    #[test]
    fn bad_sets_name_the_problem() {
        assert_eq!(PermissionSet::parse([]), Err(PermissionError::Empty));
        assert_eq!(
            PermissionSet::parse([("contentz", "read")]),
            Err(PermissionError::UnknownName("contentz".into()))
        );
        for (name, level) in [
            ("contents", "owner"),
            ("metadata", "write"),
            ("contents", "admin"),
        ] {
            let err = PermissionSet::parse([(name, level)]).unwrap_err();
            assert!(
                matches!(err, PermissionError::BadLevel { .. }),
                "{name}={level}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        let long = "x".repeat(10_000);
        let msg = PermissionSet::parse([(long.as_str(), "read")])
            .unwrap_err()
            .to_string();
        assert!(msg.len() < 200, "a huge name is not echoed whole: {msg}");
    }

    #[test]
    fn every_permission_has_levels_and_round_trips() {
        for &p in Permission::ALL {
            assert!(p.levels().contains(&Access::Read), "{p}");
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(name in "\\PC{0,40}", level in "\\PC{0,10}") {
            let _ = PermissionSet::parse([(name.as_str(), level.as_str())]);
        }
    }
}
