//! Repository URLs, owners and names as a session's `repos` and a connection's `owner` carry them.
#![no_main]
use lanyard_core::github::{Owner, RepoName, RepoRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(repo) = RepoRef::parse(text) {
        // What parses is canonical: it parses again to itself.
        assert!(Owner::parse(repo.owner.as_str()).is_ok());
        assert!(RepoName::parse(repo.name.as_str()).is_some());
    }
    let _ = Owner::parse(text);
    let _ = RepoName::parse(text);
    let _ = lanyard_core::ApiUrl::parse(text);
});
