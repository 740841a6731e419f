//! The error-code registry (CONTRACT §5).
//!
//! Every error Lanyard answers with is an [`ErrorCode`]. The enum and its exhaustive `spec` match
//! make an unregistered code impossible to emit; the tests below enforce the agent-action rules on
//! every entry.

/// Who an error is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Agents relay these to their user. `action` is a template: `{docs}` becomes an absolute link
    /// to this code's entry on the `/docs` page.
    Customer { action: &'static str },
    /// Only operators or CI see these; no agent action is rendered (a 5xx gets the support action).
    Operator,
}

/// One registry entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorSpec {
    pub status: u16,
    pub description: &'static str,
    pub audience: Audience,
    /// Seconds to suggest in `Retry-After`; required for 429, 502, 503 and 504.
    pub retry_after_seconds: Option<u32>,
}

crate::string_enum! {
    pub enum ErrorCode {
        Unauthorized = "unauthorized",
        NotFound = "not_found",
        MethodNotAllowed = "method_not_allowed",
        InvalidBody = "invalid_body",
        InvalidQuery = "invalid_query",
        InvalidLabel = "invalid_label",
        UnsupportedMediaType = "unsupported_media_type",
        PayloadTooLarge = "payload_too_large",
        RequestTimeout = "request_timeout",
        InvalidRepoUrl = "invalid_repo_url",
        InvalidPermissions = "invalid_permissions",
        InvalidTtl = "invalid_ttl",
        TtlTooLong = "ttl_too_long",
        InvalidConnection = "invalid_connection",
        UnknownGithubHost = "unknown_github_host",
        InstallationMismatch = "installation_mismatch",
        InstallationProofRequired = "installation_proof_required",
        InstallationNotOwned = "installation_not_owned",
        InstallationFlowUnconfigured = "installation_flow_unconfigured",
        InvalidState = "invalid_state",
        InvalidReturnTo = "invalid_return_to",
        InvalidSignature = "invalid_signature",
        ConnectionRevoked = "connection_revoked",
        ConnectionSuspended = "connection_suspended",
        PatInvalid = "pat_invalid",
        PatExpired = "pat_expired",
        ConnectionExists = "connection_exists",
        RepoNotConnected = "repo_not_connected",
        QuotaExceeded = "quota_exceeded",
        OwnerRequired = "owner_required",
        SessionEnded = "session_ended",
        GithubUnavailable = "github_unavailable",
        GithubRejected = "github_rejected",
        RateLimited = "rate_limited",
        InvalidTier = "invalid_tier",
        TierNotAllowed = "tier_not_allowed",
        InvalidTeamId = "invalid_team_id",
        InvalidTeam = "invalid_team",
        NotTestCohort = "not_test_cohort",
        NotReady = "not_ready",
        ServiceUnavailable = "service_unavailable",
        InternalError = "internal_error",
    }
}

/// The action for a 5xx without an action of its own.
pub const SUPPORT_ACTION: &str =
    "Tell the user Lanyard hit a server-side problem; retry shortly, and if it persists contact \
     the operator with the request id (see {docs}).";

impl ErrorCode {
    pub const fn spec(self) -> ErrorSpec {
        use Audience::{Customer, Operator};
        let (status, description, audience, retry) = match self {
            ErrorCode::Unauthorized => (
                401,
                "The bearer credential is missing, malformed, expired or revoked.",
                Customer {
                    action:
                        "Tell the user the Lanyard credential was refused; issue a new API key \
                             or sign in again, as described at {docs}.",
                },
                None,
            ),
            ErrorCode::NotFound => (
                404,
                "No such route, or no such object visible to this credential.",
                Customer {
                    action: "Tell the user the requested Lanyard resource does not exist; check \
                             the URL and id against {docs}.",
                },
                None,
            ),
            ErrorCode::MethodNotAllowed => (
                405,
                "The route exists but does not accept this HTTP method.",
                Customer {
                    action: "Tell the user this Lanyard route does not accept that method; use \
                             one listed at {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidBody => (
                400,
                "The request body is not valid JSON of the expected shape.",
                Customer {
                    action: "Tell the user the request body was malformed; send JSON shaped as \
                             documented at {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidQuery => (
                400,
                "A query parameter is missing, malformed or out of range.",
                Customer {
                    action: "Tell the user a query parameter was invalid; fix it as documented \
                             at {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidLabel => (
                422,
                "A label must be 1 to 100 characters with no control characters.",
                Customer {
                    action: "Tell the user the label was rejected; use 1 to 100 plain characters \
                             as described at {docs}.",
                },
                None,
            ),
            ErrorCode::UnsupportedMediaType => (
                415,
                "The request body must be sent with Content-Type: application/json.",
                Customer {
                    action: "Tell the user to send the body with Content-Type application/json, \
                             as shown at {docs}.",
                },
                None,
            ),
            ErrorCode::PayloadTooLarge => (
                413,
                "The request body is larger than the server accepts.",
                Customer {
                    action: "Tell the user the request body is too large; send a smaller body \
                             within the limits at {docs}.",
                },
                None,
            ),
            ErrorCode::RequestTimeout => (
                408,
                "The request, body included, took longer than the server allows.",
                Customer {
                    action: "Tell the user the request to Lanyard took too long to arrive or be \
                             answered; retry it, as described at {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidRepoUrl => (
                422,
                "A repository URL is not https://HOST/OWNER/REPO with its host's scheme, or there are too many.",
                Customer {
                    action: "Tell the user to list repositories as https://HOST/OWNER/REPO URLs on a \
                             configured host, as described at {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidPermissions => (
                422,
                "A permission name is not a GitHub App permission, or its level is not read, write or admin.",
                Customer {
                    action: "Tell the user to request GitHub App permissions by their documented \
                             names and levels, listed at {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidTtl => (
                422,
                "ttl_seconds must be a positive whole number of seconds.",
                Customer {
                    action: "Tell the user to pass ttl_seconds as a positive number of seconds, see \
                             {docs}.",
                },
                None,
            ),
            ErrorCode::TtlTooLong => (
                422,
                "The requested session TTL is longer than the team's tier allows.",
                Customer {
                    action: "Tell the user to request a shorter session or upgrade the tier; the \
                             limits are at {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidConnection => (
                422,
                "A connection needs host, owner and exactly one of installation_id or pat.",
                Customer {
                    action: "Tell the user to send host, owner and either installation_id or pat, \
                             as documented at {docs}.",
                },
                None,
            ),
            ErrorCode::UnknownGithubHost => (
                422,
                "The GitHub host is not configured on this Lanyard deployment (or has no App).",
                Customer {
                    action: "Tell the user this GitHub host is not configured; ask the operator to \
                             add it, as described at {docs}.",
                },
                None,
            ),
            ErrorCode::InstallationMismatch => (
                422,
                "The GitHub App installation does not exist or belongs to another account.",
                Customer {
                    action: "Tell the user to install the GitHub App on the named owner and pass \
                             that installation's id, see {docs}.",
                },
                None,
            ),
            ErrorCode::InstallationProofRequired => (
                403,
                "A team binds a GitHub App installation through the installation flow, which proves it owns it.",
                Customer {
                    action: "Tell the user to connect GitHub through the installation flow \
                             (POST /v1/github/installations), described at {docs}.",
                },
                None,
            ),
            ErrorCode::InstallationNotOwned => (
                403,
                "The GitHub user who authorised the App cannot see this installation.",
                Customer {
                    action: "Tell the user to sign in to GitHub as an owner of the account the App \
                             is installed on and retry the installation flow, see {docs}.",
                },
                None,
            ),
            ErrorCode::InstallationFlowUnconfigured => (
                422,
                "This GitHub host has no app_slug and client_id configured, so the installation flow is off.",
                Customer {
                    action: "Tell the user the installation flow is not set up for this GitHub \
                             host; ask the operator to configure it as described at {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidState => (
                400,
                "The installation flow's state is missing, forged, expired or already used.",
                Customer {
                    action: "Tell the user the GitHub setup link has expired or was used; start \
                             the installation flow again, as described at {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidReturnTo => (
                422,
                "return_to is not an absolute URL on an allowed origin.",
                Customer {
                    action: "Tell the user return_to must be a URL on an origin the operator \
                             allows (LANYARD_ALLOWED_RETURN_ORIGINS), see {docs}.",
                },
                None,
            ),
            ErrorCode::InvalidSignature => (
                401,
                "The webhook's X-Hub-Signature-256 is missing or does not match the host's webhook secret.",
                Operator,
                None,
            ),
            ErrorCode::ConnectionRevoked => (
                409,
                "The GitHub App was uninstalled, or the repository removed from it: this credential is no longer served.",
                Customer {
                    action: "Tell the user the GitHub App no longer covers this repository; \
                             reinstall it or reconnect the owner, as described at {docs}.",
                },
                None,
            ),
            ErrorCode::ConnectionSuspended => (
                409,
                "The GitHub App installation is suspended: its credentials are not served until it is resumed.",
                Customer {
                    action: "Tell the user the GitHub App installation is suspended; an owner can \
                             unsuspend it in GitHub's settings, see {docs}.",
                },
                None,
            ),
            ErrorCode::PatInvalid => (
                422,
                "GitHub refused the personal access token.",
                Customer {
                    action: "Tell the user GitHub refused the personal access token; create a new \
                             one and connect it again, as described at {docs}.",
                },
                None,
            ),
            ErrorCode::PatExpired => (
                409,
                "The connection's personal access token has expired.",
                Customer {
                    action: "Tell the user the personal access token has expired; create a new \
                             one and rotate it into the connection, as described at {docs}.",
                },
                None,
            ),
            ErrorCode::ConnectionExists => (
                409,
                "The team already has a connection for this owner on this host.",
                Customer {
                    action: "Tell the user this owner is already connected; delete the old \
                             connection first to replace it, see {docs}.",
                },
                None,
            ),
            ErrorCode::RepoNotConnected => (
                422,
                "A repository's owner is not connected to the team on its host.",
                Customer {
                    action: "Tell the user to connect the repository's owner to the team first, \
                             as described at {docs}.",
                },
                None,
            ),
            ErrorCode::QuotaExceeded => (
                403,
                "The team already has as many active sessions as its tier allows.",
                Customer {
                    action: "Tell the user to stop an active session or upgrade the tier; limits \
                             are listed at {docs}.",
                },
                None,
            ),
            ErrorCode::OwnerRequired => (
                422,
                "The session spans several hosts or owners; name one with host and owner.",
                Customer {
                    action: "Tell the user to repeat the request with host and owner set to one of \
                             the listed choices, see {docs}.",
                },
                None,
            ),
            ErrorCode::SessionEnded => (
                410,
                "The session was stopped or has expired; it serves no more credentials.",
                Customer {
                    action: "Tell the user this agent session has ended; start a new session to \
                             continue, as described at {docs}.",
                },
                None,
            ),
            ErrorCode::GithubUnavailable => (
                503,
                "GitHub did not answer or is throttling, and no cached token meets the guarantee.",
                Customer {
                    action: "Tell the user GitHub is unavailable right now; retry after the \
                             Retry-After delay, and see {docs}.",
                },
                Some(30),
            ),
            ErrorCode::GithubRejected => (
                502,
                "GitHub refused to mint a token for this scope (installation removed or repository not accessible).",
                Customer {
                    action: "Tell the user GitHub refused access; check the App installation still \
                             covers these repositories, see {docs}.",
                },
                Some(60),
            ),
            ErrorCode::RateLimited => (
                429,
                "Too many requests for this credential in the current window.",
                Customer {
                    action: "Tell the user the request rate limit was reached; wait for the \
                             Retry-After delay before retrying, see {docs}.",
                },
                Some(60),
            ),
            ErrorCode::InvalidTier => (
                400,
                "The tier is not one of anonymous, free, hobby, hobby_plus or pro.",
                Operator,
                None,
            ),
            ErrorCode::TierNotAllowed => (
                400,
                "Test accounts cannot use the team or growth tiers.",
                Operator,
                None,
            ),
            ErrorCode::InvalidTeamId => (400, "The team id is not a UUID.", Operator, None),
            ErrorCode::InvalidTeam => (
                422,
                "A team's name, tier, external_id or notification_email is not valid.",
                Operator,
                None,
            ),
            ErrorCode::NotTestCohort => (
                403,
                "The team is a real customer team; the e2e surface never touches it.",
                Operator,
                None,
            ),
            ErrorCode::NotReady => (
                503,
                "A dependency (database or Redis) is not answering.",
                Operator,
                Some(5),
            ),
            ErrorCode::ServiceUnavailable => (
                503,
                "The server cannot reach its database right now.",
                Customer {
                    action: "Tell the user Lanyard is briefly unavailable; retry after the \
                             Retry-After delay, and check {docs} if it persists.",
                },
                Some(5),
            ),
            ErrorCode::InternalError => (
                500,
                "An unexpected server-side failure; the cause is in the server log.",
                Operator,
                None,
            ),
        };
        ErrorSpec {
            status,
            description,
            audience,
            retry_after_seconds: retry,
        }
    }

    /// The agent action rendered against the deployment's public URL, if this code has one.
    pub fn agent_action(self, public_url: &str) -> Option<String> {
        let spec = self.spec();
        let template = match spec.audience {
            Audience::Customer { action } => action,
            Audience::Operator if spec.status >= 500 => SUPPORT_ACTION,
            Audience::Operator => return None,
        };
        let docs = format!(
            "{}/docs#error-{}",
            public_url.trim_end_matches('/'),
            self.as_str()
        );
        Some(template.replace("{docs}", &docs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    // A deliberately long deployment URL: the 280-character rule must hold for real hosts.
    const PUBLIC_URL: &str = "https://lanyard.credentials.example-agent-platform.com";

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for &code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
    }

    #[test]
    fn customer_actions_follow_the_rules() {
        for &code in ErrorCode::ALL {
            let spec = code.spec();
            assert!(
                (400..600).contains(&spec.status),
                "{code}: status {}",
                spec.status
            );
            assert!(!spec.description.is_empty(), "{code}: description");
            let Some(action) = code.agent_action(PUBLIC_URL) else {
                assert!(matches!(spec.audience, Audience::Operator) && spec.status < 500);
                continue;
            };
            assert!(action.starts_with("Tell the user"), "{code}: {action}");
            assert!(
                action.chars().count() < 280,
                "{code}: {} chars",
                action.chars().count()
            );
            let url = format!("{PUBLIC_URL}/docs#error-{code}");
            assert!(
                action.contains(&url),
                "{code}: no absolute docs URL in {action}"
            );
            assert!(
                !action.contains('{'),
                "{code}: unrendered placeholder in {action}"
            );
        }
    }

    #[test]
    fn throttling_and_unavailable_codes_carry_retry_after() {
        for &code in ErrorCode::ALL {
            let spec = code.spec();
            if matches!(spec.status, 429 | 502 | 503 | 504) {
                assert!(
                    spec.retry_after_seconds.is_some(),
                    "{code} needs retry_after_seconds"
                );
            }
        }
    }

    #[test]
    fn operator_5xx_falls_back_to_support_action() {
        let action = ErrorCode::InternalError.agent_action(PUBLIC_URL).unwrap();
        assert!(action.contains("contact the operator"));
    }
}
