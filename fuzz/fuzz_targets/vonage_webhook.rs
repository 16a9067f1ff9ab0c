//! The Vonage webhook path on arbitrary bytes: the bearer-JWT check (as a POST body, and as a
//! GET query hashed as ordered JSON), field parsing and NCCO rendering must never panic.
#![no_main]

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use fairline::config::Secret;
use fairline::providers::vonage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(now) = Utc.timestamp_opt(1_705_314_660, 0).single() else {
        return;
    };
    let secret = Secret::new("fuzz-signature-secret");
    let text = String::from_utf8_lossy(data);
    // The bytes as a token, a body and a query.
    let auth = format!("Bearer {text}");
    let _ = vonage::UnverifiedRequest::post(Some(&auth), Bytes::copy_from_slice(data))
        .verify(&secret, now);
    let _ = vonage::UnverifiedRequest::get(Some(&auth), &text).verify(&secret, now);
    for req in [
        vonage::UnverifiedRequest::post(None, Bytes::copy_from_slice(data)),
        vonage::UnverifiedRequest::get(None, &text),
    ] {
        if let Ok(fields) = req.skip_verification().fields() {
            if let Ok(call) = vonage::answer(&fields) {
                let cfg = vonage::VonageConfig::default();
                let _ = vonage::render_continue(&cfg, call.to.as_deref());
            }
            let _ = vonage::call_event(&fields);
        }
    }
});
