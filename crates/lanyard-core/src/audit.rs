//! The audit-kind registry (CONTRACT §10). Each kind says who reads it.

crate::string_enum! {
    pub enum AuditKind {
        TeamCreated = "team.created",
        ApiKeyCreated = "api_key.created",
        ApiKeyRevoked = "api_key.revoked",
        GithubConnectionCreated = "github.connection.created",
        GithubConnectionDeleted = "github.connection.deleted",
        SessionCreated = "session.created",
        SessionStopped = "session.stopped",
        SessionExpired = "session.expired",
        CredentialMinted = "credential.minted",
        CredentialRevoked = "credential.revoked",
        E2eAccountCreated = "e2e.account.created",
        E2eAccountReaped = "e2e.account.reaped",
    }
}

impl AuditKind {
    /// Who consumes records of this kind.
    pub const fn consumer(self) -> &'static str {
        match self {
            AuditKind::TeamCreated => "the team's own audit feed (GET /v1/audit) and onboarding",
            AuditKind::ApiKeyCreated | AuditKind::ApiKeyRevoked => {
                "the team's security review of who holds API keys"
            }
            AuditKind::GithubConnectionCreated | AuditKind::GithubConnectionDeleted => {
                "the team's audit feed, to trace which GitHub owners agents can reach"
            }
            AuditKind::SessionCreated | AuditKind::SessionStopped | AuditKind::SessionExpired => {
                "the team's audit feed and usage metering of agent sessions"
            }
            AuditKind::CredentialMinted | AuditKind::CredentialRevoked => {
                "incident response: which token existed when, and when it died"
            }
            AuditKind::E2eAccountCreated | AuditKind::E2eAccountReaped => {
                "operators auditing CI's use of the e2e surface; kept after the team is reaped"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_is_unique_dotted_and_has_a_consumer() {
        let mut seen = HashSet::new();
        for &kind in AuditKind::ALL {
            let s = kind.as_str();
            assert!(seen.insert(s), "duplicate {s}");
            assert!(
                s.contains('.') && !s.starts_with('.') && !s.ends_with('.'),
                "{s}"
            );
            assert!(s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_' || c.is_ascii_digit()));
            assert!(kind.consumer().len() > 10, "{s} needs a consumer line");
            assert_eq!(AuditKind::parse(s), Some(kind));
        }
    }

    #[test]
    fn contract_kinds_are_all_registered() {
        for s in [
            "team.created",
            "api_key.created",
            "github.connection.created",
            "github.connection.deleted",
            "session.created",
            "session.stopped",
            "session.expired",
            "credential.minted",
            "credential.revoked",
            "e2e.account.created",
            "e2e.account.reaped",
        ] {
            assert!(
                AuditKind::parse(s).is_some(),
                "{s} missing from the registry"
            );
        }
    }
}
