//! What arrives in `Authorization: Bearer …`: API keys, runner tokens and session JWTs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = lanyard_core::BearerSecret::parse(text);
    let keys = lanyard_server::jwt::JwtKeys::new(
        &secrecy::SecretString::from("fuzzing-secret-of-at-least-thirty-two-bytes".to_string()),
        "http://127.0.0.1:8080",
    );
    assert!(keys.verify(text, chrono::Utc::now()).is_err(), "a forged token verified");
});
