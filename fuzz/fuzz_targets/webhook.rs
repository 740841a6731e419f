//! The body of a GitHub webhook delivery, for each event Lanyard acts on (the signature is
//! checked before this reader runs; the reader must still never panic).
#![no_main]
use lanyard_server::domain::webhooks::read_change;
use lanyard_server::metrics::WebhookEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for event in WebhookEvent::ALL {
        let _ = read_change(*event, data);
    }
});
