//! Signing outgoing notifications per the Standard Webhooks specification (SPEC §13):
//! `webhook-id` (stable for one notification across retries), `webhook-timestamp` (Unix
//! seconds of this attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">` keyed with the bytes of `notifications.signing_secret`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::lifecycle::SigningSecret;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// `v1,<base64 signature>` for one message.
pub fn signature(secret: &SigningSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.key()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The three headers for one delivery attempt.
pub fn headers(
    secret: &SigningSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (HEADER_ID, id.to_owned()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_SIGNATURE, signature(secret, id, timestamp, body)),
    ]
}

/// The `webhook-id` of an outbox notification: the same on every attempt and every instance.
pub fn message_id(subject: &str, event: &str) -> String {
    format!("msg_{subject}_{}", event.replace('.', "_"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The example in the Standard Webhooks specification (and its reference libraries' tests).
    #[test]
    fn the_specifications_example_vector() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            signature(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn any_change_changes_the_signature() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let base = signature(&secret, "msg_1", 100, b"{}");
        assert_ne!(base, signature(&secret, "msg_2", 100, b"{}"));
        assert_ne!(base, signature(&secret, "msg_1", 101, b"{}"));
        assert_ne!(base, signature(&secret, "msg_1", 100, b"{ }"));
        assert_eq!(
            message_id("trm_01J", "termination.created"),
            "msg_trm_01J_termination_created"
        );
    }
}
