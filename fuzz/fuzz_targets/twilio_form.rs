//! The Twilio webhook path on arbitrary bytes: signature check over the raw body, form
//! parsing, and event extraction must never panic.
#![no_main]

use bytes::Bytes;
use fairline::config::Secret;
use fairline::providers::twilio;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte picks the signature header; the rest is the body.
    let (sig, body) = match data.split_first() {
        Some((b, rest)) if b % 2 == 0 => (Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=".to_string()), rest),
        Some((_, rest)) => (None, rest),
        None => (None, data),
    };
    let body = Bytes::copy_from_slice(body);
    let token = Secret::new("12345");
    let req = twilio::UnverifiedRequest::new("/webhooks/twilio/voice?x=1", sig, body.clone());
    let _ = req.verify("https://calls.example.org", &token);
    let req = twilio::UnverifiedRequest::new("/webhooks/twilio/voice", None, body);
    if let Ok(form) = req.skip_verification() {
        let _ = twilio::incoming_call(&form);
        let _ = twilio::dial_status(&form);
        let _ = twilio::status_callback(&form);
    }
});
