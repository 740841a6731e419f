//! The audit-kind registry (CONTRACT §10). Each kind says who reads it.

crate::string_enum! {
    pub enum AuditKind {
        TeamCreated = "team.created",
        TeamUpdated = "team.updated",
        TeamDeleted = "team.deleted",
        ApiKeyCreated = "api_key.created",
        ApiKeyRevoked = "api_key.revoked",
        GithubConnectionCreated = "github.connection.created",
        GithubConnectionDeleted = "github.connection.deleted",
        GithubConnectionSuspended = "github.connection.suspended",
        GithubConnectionResumed = "github.connection.resumed",
        GithubConnectionRotated = "github.connection.rotated",
        SessionCreated = "session.created",
        SessionStopped = "session.stopped",
        SessionExpired = "session.expired",
        CredentialMinted = "credential.minted",
        CredentialRevoked = "credential.revoked",
        E2eAccountCreated = "e2e.account.created",
        E2eAccountReaped = "e2e.account.reaped",
        NotificationQueued = "notification.queued",
        NotificationSent = "notification.sent",
        TeamChurnRisk = "team.churn_risk",
    }
}

crate::string_enum! {
    /// Who did what an audit record describes (CONTRACT §10). Which key, user or session it was
    /// goes alongside, as the record's `actor_id`.
    pub enum ActorKind {
        /// The team itself: an API key, a user's session JWT, or a session's runner.
        Team = "team",
        /// A platform through the admin API.
        Admin = "admin",
        /// The operator at the `lanyard` command line.
        Operator = "operator",
        /// GitHub, through a webhook.
        Github = "github",
        /// A background worker.
        Worker = "worker",
        /// The backstop sweep of forgotten test accounts.
        Sweep = "sweep",
        /// CI, through the guarded e2e surface.
        E2e = "e2e",
    }
}

/// An actor with, where there is one, the id of the key, user, session or worker that acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

impl Actor {
    const fn bare(kind: ActorKind) -> Self {
        Self { kind, id: None }
    }

    fn with_id(kind: ActorKind, id: impl std::fmt::Display) -> Self {
        Self {
            kind,
            id: Some(id.to_string()),
        }
    }

    pub fn api_key(key_id: impl std::fmt::Display) -> Self {
        Self::with_id(ActorKind::Team, format_args!("api_key:{key_id}"))
    }

    pub fn user(user_id: impl std::fmt::Display) -> Self {
        Self::with_id(ActorKind::Team, format_args!("user:{user_id}"))
    }

    /// A session's runner, for what the broker does on its behalf.
    pub fn runner(session_id: impl std::fmt::Display) -> Self {
        Self::with_id(ActorKind::Team, format_args!("session:{session_id}"))
    }

    pub fn worker(name: &str) -> Self {
        Self::with_id(ActorKind::Worker, name)
    }

    pub const fn operator() -> Self {
        Self::bare(ActorKind::Operator)
    }

    pub const fn admin() -> Self {
        Self::bare(ActorKind::Admin)
    }

    pub const fn github() -> Self {
        Self::bare(ActorKind::Github)
    }

    pub const fn sweep() -> Self {
        Self::bare(ActorKind::Sweep)
    }

    pub const fn e2e() -> Self {
        Self::bare(ActorKind::E2e)
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}({id})", self.kind),
            None => f.write_str(self.kind.as_str()),
        }
    }
}

impl AuditKind {
    /// Who consumes records of this kind.
    pub const fn consumer(self) -> &'static str {
        match self {
            AuditKind::TeamCreated => "the team's own audit feed (GET /v1/audit) and onboarding",
            AuditKind::TeamUpdated => "the team's audit feed, to trace tier and name changes a platform made",
            AuditKind::TeamDeleted => "platform operators tracing a deleted team; kept after the team is gone",
            AuditKind::ApiKeyCreated | AuditKind::ApiKeyRevoked => {
                "the team's security review of who holds API keys"
            }
            AuditKind::GithubConnectionCreated
            | AuditKind::GithubConnectionDeleted
            | AuditKind::GithubConnectionSuspended
            | AuditKind::GithubConnectionResumed
            | AuditKind::GithubConnectionRotated => {
                "the team's audit feed, to trace which GitHub owners agents can reach and why it changed"
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
            AuditKind::NotificationQueued | AuditKind::NotificationSent => {
                "the team's audit feed, to see what Lanyard told it and when it was delivered"
            }
            AuditKind::TeamChurnRisk => "the platform's customer success, to reach quiet teams",
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
            "team.updated",
            "team.deleted",
            "api_key.created",
            "github.connection.created",
            "github.connection.deleted",
            "github.connection.suspended",
            "github.connection.resumed",
            "github.connection.rotated",
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
