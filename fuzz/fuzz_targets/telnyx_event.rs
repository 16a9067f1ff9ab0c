//! The Telnyx webhook path on arbitrary bytes: Ed25519 check over `timestamp|body`, envelope
//! parsing, client_state decoding and command planning must never panic.
#![no_main]

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use fairline::providers::telnyx;
use libfuzzer_sys::fuzz_target;

const PUBLIC_KEY: [u8; 32] = [
    3, 161, 7, 191, 243, 206, 16, 190, 29, 112, 221, 24, 231, 75, 192, 153, 103, 228, 214, 48,
    155, 165, 13, 95, 29, 220, 134, 100, 18, 85, 49, 184,
];

fuzz_target!(|data: &[u8]| {
    let now = Utc.timestamp_opt(1_705_314_600, 0).single();
    let Some(now) = now else { return };
    let body = Bytes::copy_from_slice(data);
    let signed = telnyx::UnverifiedEvent::new(
        Some("Uz/Lm5ZYTeBA1zAs0bZ26mc5whvUGZq8FettO/wuWcaHKVwuhDvpHI+7ibNA3pDXtyUjrxCyu4oCjUGG8QpwBA=="),
        Some("1705314600"),
        body.clone(),
    );
    let _ = signed.verify(&PUBLIC_KEY, now);
    let event = telnyx::UnverifiedEvent::new(None, None, body).skip_verification();
    if let Ok(ev) = event.parse() {
        let _ = telnyx::plan_event(&ev);
        let _ = ev.incoming_call();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = telnyx::ClientState::decode(s);
    }
});
