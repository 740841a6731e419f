//! `expires_at` as the runner reads it from Lanyard, and durations as flags and settings give them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = lanyard_core::wire::parse_expiry(text);
    if let Ok(d) = lanyard_core::parse_duration(text) {
        let _ = lanyard_core::format_duration(d);
    }
});
