//! Webhook authenticity: Ed25519 over `"{telnyx-timestamp}|{raw body}"`, as a typestate.
//!
//! An [`UnverifiedEvent`] holds the two headers and the raw body; only [`VerifiedEvent`] (from
//! [`UnverifiedEvent::verify`] or, when `telnyx.verify_signatures = false`,
//! [`UnverifiedEvent::skip_verification`]) can be parsed, so forgetting the check does not compile.

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use http::{HeaderMap, StatusCode};

use super::events::{parse_event, ParseError, TelnyxEvent};

/// The header carrying the base64 Ed25519 signature.
pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
/// The header carrying the Unix time (seconds) at which Telnyx signed the event.
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";
/// How far the timestamp may be from our clock, in either direction.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Why a webhook is not accepted as coming from Telnyx. Every variant is answered with 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the telnyx-timestamp header is not a whole number of seconds")]
    MalformedTimestamp,
    #[error("the telnyx-timestamp is {skew_secs} s from our clock (tolerance ±300 s)")]
    TimestampOutOfRange {
        /// `now - timestamp`: positive when the event is old, negative when from the future.
        skew_secs: i64,
    },
    #[error("the signature is not base64 of exactly 64 bytes")]
    MalformedSignature,
    #[error("the configured Telnyx public key is not a valid Ed25519 key")]
    InvalidPublicKey,
    #[error("the signature does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// The HTTP status the webhook answers with: always 403.
    pub fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

/// A webhook as received, not yet checked.
#[derive(Clone, Debug)]
pub struct UnverifiedEvent {
    signature: Option<String>,
    timestamp: Option<String>,
    body: Bytes,
}

impl UnverifiedEvent {
    /// From the header values (already looked up; `None` when absent) and the raw body bytes.
    pub fn new(signature: Option<&str>, timestamp: Option<&str>, body: Bytes) -> Self {
        UnverifiedEvent {
            signature: signature.map(str::to_owned),
            timestamp: timestamp.map(str::to_owned),
            body,
        }
    }

    /// From the request's headers (looked up case-insensitively) and raw body bytes. Capture the
    /// body as `Bytes` before any JSON extractor: the signature covers the exact bytes.
    pub fn from_headers(headers: &HeaderMap, body: Bytes) -> Self {
        let get = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        UnverifiedEvent {
            signature: get(SIGNATURE_HEADER),
            timestamp: get(TIMESTAMP_HEADER),
            body,
        }
    }

    /// Check the signature with the account's public key, and that the timestamp is within
    /// ±[`TIMESTAMP_TOLERANCE_SECS`] of `now` (both directions; exactly 300 s is accepted).
    pub fn verify(
        self,
        public_key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<VerifiedEvent, SignatureError> {
        let signature_b64 = self
            .signature
            .as_deref()
            .ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
        let timestamp = self
            .timestamp
            .as_deref()
            .ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;

        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SignatureError::MalformedTimestamp);
        }
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| SignatureError::MalformedTimestamp)?;
        let skew_secs = now.timestamp().saturating_sub(ts);
        if skew_secs.saturating_abs() > TIMESTAMP_TOLERANCE_SECS {
            return Err(SignatureError::TimestampOutOfRange { skew_secs });
        }

        let sig_bytes = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| SignatureError::MalformedSignature)?;
        let sig_array: [u8; 64] = sig_bytes
            .as_slice()
            .try_into()
            .map_err(|_| SignatureError::MalformedSignature)?;
        let signature = Signature::from_bytes(&sig_array);
        let key =
            VerifyingKey::from_bytes(public_key).map_err(|_| SignatureError::InvalidPublicKey)?;

        let mut message = Vec::with_capacity(timestamp.len() + 1 + self.body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.push(b'|');
        message.extend_from_slice(&self.body);
        key.verify_strict(&message, &signature)
            .map_err(|_| SignatureError::Mismatch)?;

        Ok(VerifiedEvent {
            body: self.body,
            signature_checked: true,
        })
    }

    /// Accept the webhook without checking (only for `telnyx.verify_signatures = false`).
    pub fn skip_verification(self) -> VerifiedEvent {
        VerifiedEvent {
            body: self.body,
            signature_checked: false,
        }
    }
}

/// A webhook whose origin has been accepted; the only way to reach the parsed event.
#[derive(Clone, Debug)]
pub struct VerifiedEvent {
    body: Bytes,
    signature_checked: bool,
}

impl VerifiedEvent {
    /// Parse the v2 envelope. Malformed JSON or a v1 envelope is a [`ParseError`] (400).
    pub fn parse(&self) -> Result<TelnyxEvent, ParseError> {
        parse_event(&self.body)
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// `false` when the check was skipped by configuration.
    pub fn signature_checked(&self) -> bool {
        self.signature_checked
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use ed25519_dalek::{Signer, SigningKey};

    const VECTOR_PUBLIC_KEY: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
    const VECTOR_TIMESTAMP: &str = "1705314600";
    const VECTOR_SIGNATURE: &str =
        "Uz/Lm5ZYTeBA1zAs0bZ26mc5whvUGZq8FettO/wuWcaHKVwuhDvpHI+7ibNA3pDXtyUjrxCyu4oCjUGG8QpwBA==";
    const VECTOR_BODY: &str = r#"{"data":{"event_type":"call.initiated","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","occurred_at":"2024-01-15T10:30:00.000000Z","payload":{"call_control_id":"v3:abc","call_leg_id":"leg-1","call_session_id":"sess-1","connection_id":"1234567890","direction":"incoming","from":"+447700900123","to":"+442079460000","state":"parked"},"record_type":"event"},"meta":{"attempt":1,"delivered_to":"https://example.com/telnyx"}}"#;

    fn vector_key() -> [u8; 32] {
        base64::engine::general_purpose::STANDARD
            .decode(VECTOR_PUBLIC_KEY)
            .unwrap()
            .try_into()
            .unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn signed(key: &SigningKey, ts: i64, body: &str) -> UnverifiedEvent {
        let msg = format!("{ts}|{body}");
        let sig = key.sign(msg.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
        UnverifiedEvent::new(
            Some(&b64),
            Some(&ts.to_string()),
            Bytes::from(body.to_owned()),
        )
    }

    #[test]
    fn reference_vector_verifies_with_a_fixed_clock() {
        let ev = UnverifiedEvent::new(
            Some(VECTOR_SIGNATURE),
            Some(VECTOR_TIMESTAMP),
            Bytes::from_static(VECTOR_BODY.as_bytes()),
        );
        let verified = ev.verify(&vector_key(), at(1_705_314_600)).unwrap();
        assert!(verified.signature_checked());
        let parsed = verified.parse().unwrap();
        assert_eq!(parsed.event_type(), "call.initiated");
    }

    #[test]
    fn reference_vector_seed_gives_the_published_public_key() {
        let seed: [u8; 32] = core::array::from_fn(|i| i as u8);
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(key.verifying_key().to_bytes(), vector_key());
    }

    #[test]
    fn reference_vector_rejects_a_one_byte_change() {
        let body = VECTOR_BODY.replace("+447700900123", "+447700900124");
        let ev = UnverifiedEvent::new(
            Some(VECTOR_SIGNATURE),
            Some(VECTOR_TIMESTAMP),
            Bytes::from(body),
        );
        assert_eq!(
            ev.verify(&vector_key(), at(1_705_314_600)).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn reference_vector_rejects_a_changed_timestamp_header() {
        // Same instant for the window check, but the signed bytes differ.
        let ev = UnverifiedEvent::new(
            Some(VECTOR_SIGNATURE),
            Some("1705314601"),
            Bytes::from_static(VECTOR_BODY.as_bytes()),
        );
        assert_eq!(
            ev.verify(&vector_key(), at(1_705_314_600)).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn generated_key_signs_and_verifies() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let now = 1_800_000_000;
        let ev = signed(&key, now, VECTOR_BODY);
        assert!(ev.verify(&key.verifying_key().to_bytes(), at(now)).is_ok());
    }

    #[test]
    fn wrong_key_is_rejected() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let other = SigningKey::generate(&mut rand::rngs::OsRng);
        let now = 1_800_000_000;
        let ev = signed(&key, now, VECTOR_BODY);
        assert_eq!(
            ev.verify(&other.verifying_key().to_bytes(), at(now))
                .unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn altered_body_is_rejected() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let now = 1_800_000_000;
        let ev = signed(&key, now, VECTOR_BODY);
        let tampered = UnverifiedEvent {
            body: Bytes::from(format!("{VECTOR_BODY} ")),
            ..ev
        };
        assert_eq!(
            tampered
                .verify(&key.verifying_key().to_bytes(), at(now))
                .unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn timestamp_window_is_enforced_in_both_directions() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let pk = key.verifying_key().to_bytes();
        let now = 1_800_000_000;
        for (offset, ok) in [
            (-301, false),
            (-300, true),
            (-299, true),
            (0, true),
            (299, true),
            (300, true),
            (301, false),
        ] {
            // offset: how far the signed timestamp is from now (negative = old).
            let ev = signed(&key, now + offset, VECTOR_BODY);
            let result = ev.verify(&pk, at(now));
            assert_eq!(result.is_ok(), ok, "offset {offset}: {result:?}");
            if !ok {
                assert_eq!(
                    result.unwrap_err(),
                    SignatureError::TimestampOutOfRange { skew_secs: -offset }
                );
            }
        }
    }

    #[test]
    fn missing_headers_are_rejected() {
        let pk = vector_key();
        let now = at(1_705_314_600);
        let body = Bytes::from_static(VECTOR_BODY.as_bytes());
        let no_sig = UnverifiedEvent::new(None, Some(VECTOR_TIMESTAMP), body.clone());
        assert_eq!(
            no_sig.verify(&pk, now).unwrap_err(),
            SignatureError::MissingHeader(SIGNATURE_HEADER)
        );
        let no_ts = UnverifiedEvent::new(Some(VECTOR_SIGNATURE), None, body);
        assert_eq!(
            no_ts.verify(&pk, now).unwrap_err(),
            SignatureError::MissingHeader(TIMESTAMP_HEADER)
        );
        assert_eq!(
            SignatureError::MissingHeader(TIMESTAMP_HEADER).status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Telnyx-Signature-Ed25519",
            VECTOR_SIGNATURE.parse().unwrap(),
        );
        headers.insert("TELNYX-TIMESTAMP", VECTOR_TIMESTAMP.parse().unwrap());
        let ev =
            UnverifiedEvent::from_headers(&headers, Bytes::from_static(VECTOR_BODY.as_bytes()));
        assert!(ev.verify(&vector_key(), at(1_705_314_600)).is_ok());
    }

    #[test]
    fn bad_base64_and_wrong_length_signatures_are_rejected() {
        let pk = vector_key();
        let now = at(1_705_314_600);
        let body = Bytes::from_static(VECTOR_BODY.as_bytes());
        for sig in ["not base64!!", "", "AAAA", &VECTOR_SIGNATURE[..80]] {
            let ev = UnverifiedEvent::new(Some(sig), Some(VECTOR_TIMESTAMP), body.clone());
            assert_eq!(
                ev.verify(&pk, now).unwrap_err(),
                SignatureError::MalformedSignature,
                "signature {sig:?}"
            );
        }
    }

    #[test]
    fn non_integer_timestamps_are_rejected() {
        let pk = vector_key();
        let now = at(1_705_314_600);
        let body = Bytes::from_static(VECTOR_BODY.as_bytes());
        for ts in [
            "",
            "1705314600.5",
            "-1705314600",
            "abc",
            "99999999999999999999999",
        ] {
            let ev = UnverifiedEvent::new(Some(VECTOR_SIGNATURE), Some(ts), body.clone());
            assert_eq!(
                ev.verify(&pk, now).unwrap_err(),
                SignatureError::MalformedTimestamp,
                "timestamp {ts:?}"
            );
        }
    }

    #[test]
    fn skipping_verification_still_parses_but_says_so() {
        let ev = UnverifiedEvent::new(None, None, Bytes::from_static(VECTOR_BODY.as_bytes()));
        let v = ev.skip_verification();
        assert!(!v.signature_checked());
        assert_eq!(v.parse().unwrap().event_type(), "call.initiated");
    }
}
