use super::*;

#[test]
fn the_documented_codes_come_from_the_mapping() {
    // The credential route's codes, as the review found them missing from the document.
    let codes = CredentialError::codes();
    for code in [
        ErrorCode::ConnectionRevoked,
        ErrorCode::ConnectionSuspended,
        ErrorCode::PatExpired,
        ErrorCode::RateLimited,
        ErrorCode::SessionEnded,
        ErrorCode::OwnerRequired,
        ErrorCode::GithubUnavailable,
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    assert!(SessionError::codes().contains(&ErrorCode::RateLimited));
    // Nothing the mapping does not make: a session error never says GitHub is down.
    assert!(!SessionError::codes().contains(&ErrorCode::GithubUnavailable));
}
