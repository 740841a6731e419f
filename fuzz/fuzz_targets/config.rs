//! The configuration loader: `KEY=VALUE` lines become the `LANYARD_*` environment it reads; a
//! bad value must be an error that names the key, never a panic.
#![no_main]
use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use lanyard_server::config::{Config, Flags};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("LANYARD_") && !k.ends_with("_FILE") && *k != "LANYARD_CONFIG")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = Config::load(&Flags::default(), &env);
});
