//! git's credential protocol as the runner's helper reads it from stdin.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(attrs) = lanyard_runner::helper::parse(text) {
        let _ = lanyard_runner::helper::owner_of(&attrs);
        for (key, value) in &attrs {
            assert!(!key.is_empty() && !key.contains('\n') && !value.contains('\n'));
        }
    }
});
