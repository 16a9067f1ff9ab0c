//! `[twilio]` and `[telnyx]` (Vonage's section is read by `providers::vonage::config`), and the
//! forms of a member of staff's address on each platform.

use std::collections::BTreeSet;

use super::Secret;
use crate::domain::PhoneNumber;
use crate::fields::{Fields, Optional, Required};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseBlockedWith {
    Reject,
    Message,
}

impl RefuseBlockedWith {
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseBlockedWith::Reject => "reject",
            RefuseBlockedWith::Message => "message",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TwilioConfig {
    /// SPEC §11: on when the section is present (unless `enabled = false`), off when absent.
    pub enabled: bool,
    pub account_sid: String,
    pub auth_token: Secret,
    pub verify_signatures: bool,
    pub continue_url: String,
    /// Without a trailing slash.
    pub api_base_url: String,
    pub refuse_blocked_with: RefuseBlockedWith,
    pub ring_timeout_seconds: u32,
}

#[derive(Clone, Debug)]
pub struct TelnyxConfig {
    /// SPEC §11: on when the section is present (unless `enabled = false`), off when absent.
    pub enabled: bool,
    pub api_key: Secret,
    /// The 32-byte Ed25519 public key, when configured.
    pub public_key: Option<[u8; 32]>,
    pub verify_signatures: bool,
    /// Without a trailing slash.
    pub api_base_url: String,
    pub continue_to: String,
}

/// Where a member of staff is rung on Twilio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwilioTarget {
    Client(String),
    Sip(String),
    Number(PhoneNumber),
}

/// Where a member of staff is transferred on Telnyx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TelnyxTarget {
    Sip(String),
    Number(PhoneNumber),
}

impl TelnyxTarget {
    pub fn as_str(&self) -> &str {
        match self {
            TelnyxTarget::Sip(s) => s,
            TelnyxTarget::Number(n) => n.as_str(),
        }
    }
}

/// `enabled` of a provider section (SPEC §11): as written, else whether the operator wrote the
/// section at all (in the file or as environment variables).
pub(super) fn enabled(t: &mut Fields<'_>, written: &BTreeSet<String>) -> bool {
    let section_written = written.contains(t.path());
    t.boolean("enabled", Optional).unwrap_or(section_written)
}

pub(super) fn read_twilio(t: &mut Fields<'_>, written: &BTreeSet<String>) -> Option<TwilioConfig> {
    let enabled = enabled(t, written);
    let account_sid = t.parsed(
        "account_sid",
        Required,
        |s| {
            let hex = s.len() == 34
                && s.starts_with("AC")
                && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
            hex.then(|| s.to_string()).ok_or(())
        },
        "must be AC followed by 32 hexadecimal digits",
    );
    let auth_token = t.string("auth_token", Required);
    let verify_signatures = t.boolean("verify_signatures", Required);
    let continue_url = t.url("continue_url", Required, false).flatten();
    let api_base_url = t.url("api_base_url", Required, false).flatten();
    let refuse_blocked_with = t.choice(
        "refuse_blocked_with",
        Required,
        &[
            ("reject", RefuseBlockedWith::Reject),
            ("message", RefuseBlockedWith::Message),
        ],
        "must be \"reject\" or \"message\"",
    );
    let ring_timeout = t.uint("ring_timeout_seconds", Required, 5..=600);
    if enabled && verify_signatures == Some(true) && auth_token.as_deref() == Some("") {
        t.problem(
            "auth_token",
            "is empty but twilio.verify_signatures = true: set the auth token (FAIRLINE_TWILIO__AUTH_TOKEN)",
        );
    }
    Some(TwilioConfig {
        enabled,
        account_sid: account_sid?,
        auth_token: Secret::new(auth_token?),
        verify_signatures: verify_signatures?,
        continue_url: continue_url?,
        api_base_url: api_base_url?,
        refuse_blocked_with: refuse_blocked_with?,
        ring_timeout_seconds: u32::try_from(ring_timeout?).ok()?,
    })
}

pub(super) fn read_telnyx(t: &mut Fields<'_>, written: &BTreeSet<String>) -> Option<TelnyxConfig> {
    let enabled = enabled(t, written);
    let api_key = t.string("api_key", Required);
    let public_key_raw = t.string("public_key", Required);
    let verify_signatures = t.boolean("verify_signatures", Required);
    let api_base_url = t.url("api_base_url", Required, false).flatten();
    let continue_to = t.parsed(
        "continue_to",
        Required,
        |s| {
            let ok = is_sip_uri(s) || PhoneNumber::parse(s).is_ok_and(|n| n.as_str() == s);
            ok.then(|| s.to_string()).ok_or(())
        },
        "must be a sip: URI or a +E.164 number",
    );
    let public_key = match public_key_raw.as_deref() {
        None | Some("") => {
            if public_key_raw.is_some() && enabled && verify_signatures == Some(true) {
                t.problem(
                    "public_key",
                    "is empty but telnyx.verify_signatures = true: set the base64 Ed25519 public key",
                );
            }
            None
        }
        Some(raw) => match ed25519_public_key(raw) {
            Ok(k) => Some(k),
            Err(message) => {
                t.problem("public_key", message);
                return None;
            }
        },
    };
    Some(TelnyxConfig {
        enabled,
        api_key: Secret::new(api_key?),
        public_key,
        verify_signatures: verify_signatures?,
        api_base_url: api_base_url?,
        continue_to: continue_to?,
    })
}

/// A base64 Ed25519 public key, as Telnyx's portal shows it.
fn ed25519_public_key(raw: &str) -> Result<[u8; 32], &'static str> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| "must be base64 of exactly 32 bytes")?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "must be base64 of exactly 32 bytes")?;
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map(|_| key)
        .map_err(|_| "is not a valid Ed25519 public key")
}

/// `sip:` or `sips:` and something that could be an address.
pub(super) fn is_sip_uri(s: &str) -> bool {
    s.strip_prefix("sip:")
        .or_else(|| s.strip_prefix("sips:"))
        .is_some_and(|rest| {
            !rest.is_empty()
                && !rest
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        })
}

/// A member of staff's Twilio address: `client:IDENTITY`, `sip:URI` or `+E.164`.
pub fn twilio_target(s: &str) -> Option<TwilioTarget> {
    if let Some(identity) = s.strip_prefix("client:") {
        let ok = !identity.is_empty()
            && identity
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c));
        ok.then(|| TwilioTarget::Client(identity.to_string()))
    } else if is_sip_uri(s) {
        Some(TwilioTarget::Sip(s.to_string()))
    } else {
        PhoneNumber::parse(s)
            .ok()
            .filter(|n| n.as_str() == s)
            .map(TwilioTarget::Number)
    }
}

/// A member of staff's Telnyx address: `sip:URI` or `+E.164`.
pub fn telnyx_target(s: &str) -> Option<TelnyxTarget> {
    if is_sip_uri(s) {
        Some(TelnyxTarget::Sip(s.to_string()))
    } else {
        PhoneNumber::parse(s)
            .ok()
            .filter(|n| n.as_str() == s)
            .map(TelnyxTarget::Number)
    }
}
