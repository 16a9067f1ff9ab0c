//! Vonage signed webhooks, as a typestate: an [`UnverifiedRequest`] holds the raw request and
//! exposes nothing; only [`UnverifiedRequest::verify`] (or, when
//! `vonage.verify_signatures = false`, [`UnverifiedRequest::skip_verification`]) turns it into a
//! [`VerifiedPayload`], the only type that gives access to the fields.
//!
//! What is checked (SPEC §15, reference §3.4):
//!
//! * `Authorization: Bearer <JWT>`, the JWT signed **HS256** with the account's signature
//!   secret (any other algorithm is refused);
//! * its `iat` is within ±[`TOLERANCE_SECS`] of the injected clock (and an `exp`, when present,
//!   has not passed by more than that);
//! * its `payload_hash` is the hex SHA-256 of the payload: for a POST the raw body bytes; for a
//!   GET the query parameters as a compact JSON object (`{"k":"v",…}`, no whitespace, every
//!   value a string) **in the order they were received** — so a request whose query was
//!   reordered on the way does not verify.
//!
//! Every failure is a [`SignatureError`], answered 401 with nothing else done. Nothing of the
//! token or the payload is ever printed.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// How far `iat` may be from our clock, either way.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook was not accepted. Always answered 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Authorization: Bearer header is missing")]
    Missing,
    #[error("the bearer token is not a JWT signed with HS256")]
    Malformed,
    #[error("the JWT signature does not match the signature secret")]
    BadSignature,
    #[error("the JWT's iat is more than 300 s from now (or it has expired)")]
    Stale,
    #[error("the JWT has no payload_hash claim")]
    NoPayloadHash,
    #[error("the payload_hash does not match the request's payload")]
    PayloadMismatch,
}

impl SignatureError {
    /// 401 for every signature problem.
    pub fn http_status(&self) -> u16 {
        401
    }
}

/// The claims of a signed webhook's JWT (reference §3.4.1). Only `iat` and `payload_hash` are
/// checked; the rest are carried for completeness (and for [`sign`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WebhookClaims {
    #[serde(deserialize_with = "seconds")]
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_seconds"
    )]
    pub exp: Option<i64>,
}

/// A NumericDate: whole seconds, or fractional ones (truncated), as JWT allows.
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                .map(|f| f.trunc() as i64)
        })
        .ok_or_else(|| serde::de::Error::custom("not a NumericDate"))
}

fn opt_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    seconds(d).map(Some)
}

/// Sign webhook claims the way Vonage does (HS256). For tests, tools and the documentation's
/// curl example; Fairline itself only verifies.
pub fn sign(claims: &WebhookClaims, secret: &Secret) -> Result<String, SignatureError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
    .map_err(|_| SignatureError::Malformed)
}

/// Hex SHA-256 of a payload.
pub fn payload_hash(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

/// The decoded query parameters, in the order received. `+` is a space, as in any form.
pub fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect()
}

/// The query parameters as the compact JSON object Vonage hashes for a GET: keys in the
/// order received, every value a string, no whitespace. A repeated key keeps its first
/// position and its last value (as a JavaScript object would).
pub fn query_json(pairs: &[(String, String)]) -> String {
    let mut ordered: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        match ordered.iter_mut().find(|(name, _)| *name == k.as_str()) {
            Some(slot) => slot.1 = v.as_str(),
            None => ordered.push((k.as_str(), v.as_str())),
        }
    }
    let mut out = String::from("{");
    for (i, (k, v)) in ordered.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(k));
        out.push(':');
        out.push_str(&json_string(v));
    }
    out.push('}');
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// How the payload arrived.
#[derive(Clone)]
enum Raw {
    /// A GET: the raw query string (without `?`; empty when none).
    Query(String),
    /// A POST: the raw body.
    Body(Bytes),
}

/// A Vonage webhook request as received, not yet trusted.
#[derive(Clone)]
pub struct UnverifiedRequest {
    token: Option<String>,
    raw: Raw,
}

impl std::fmt::Debug for UnverifiedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Payloads hold caller numbers and the token is a credential: print neither.
        f.debug_struct("UnverifiedRequest")
            .field("has_token", &self.token.is_some())
            .field(
                "kind",
                &match self.raw {
                    Raw::Query(_) => "query",
                    Raw::Body(_) => "body",
                },
            )
            .finish()
    }
}

impl UnverifiedRequest {
    /// A GET: `raw_query` is the query exactly as received (no leading `?`).
    pub fn get(authorization: Option<&str>, raw_query: &str) -> Self {
        UnverifiedRequest {
            token: bearer(authorization),
            raw: Raw::Query(raw_query.to_owned()),
        }
    }

    /// A POST with its raw body.
    pub fn post(authorization: Option<&str>, body: Bytes) -> Self {
        UnverifiedRequest {
            token: bearer(authorization),
            raw: Raw::Body(body),
        }
    }

    /// From an HTTP request's parts: a GET reads the query, anything else the body.
    pub fn from_http(
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> Self {
        let auth = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if method == http::Method::GET {
            UnverifiedRequest::get(auth, uri.query().unwrap_or(""))
        } else {
            UnverifiedRequest::post(auth, body)
        }
    }

    fn payload_bytes(&self) -> Vec<u8> {
        match &self.raw {
            Raw::Query(q) => query_json(&query_pairs(q)).into_bytes(),
            Raw::Body(b) => b.to_vec(),
        }
    }

    /// Check the JWT (HS256 with `secret`), its `iat` against `now`, and its `payload_hash`.
    /// Prepares the key for this one request: a server keeps a [`Verifier`] instead.
    pub fn verify(
        self,
        secret: &Secret,
        now: DateTime<Utc>,
    ) -> Result<VerifiedPayload, SignatureError> {
        self.verify_with(&Verifier::new(secret), now)
    }

    /// [`verify`](Self::verify) with a prepared [`Verifier`].
    pub fn verify_with(
        self,
        verifier: &Verifier,
        now: DateTime<Utc>,
    ) -> Result<VerifiedPayload, SignatureError> {
        let token = self.token.as_deref().ok_or(SignatureError::Missing)?;
        let claims = verifier.decode(token)?;
        let now = now.timestamp();
        if (now - claims.iat).abs() > TOLERANCE_SECS {
            return Err(SignatureError::Stale);
        }
        if claims.exp.is_some_and(|exp| exp + TOLERANCE_SECS < now) {
            return Err(SignatureError::Stale);
        }
        let claimed = claims
            .payload_hash
            .as_deref()
            .ok_or(SignatureError::NoPayloadHash)?
            .to_ascii_lowercase();
        let actual = payload_hash(&self.payload_bytes());
        if !bool::from(claimed.as_bytes().ct_eq(actual.as_bytes())) {
            return Err(SignatureError::PayloadMismatch);
        }
        Ok(VerifiedPayload {
            raw: self.raw,
            signature_checked: true,
        })
    }

    /// Accept without checking (`vonage.verify_signatures = false`).
    pub fn skip_verification(self) -> VerifiedPayload {
        VerifiedPayload {
            raw: self.raw,
            signature_checked: false,
        }
    }

    /// [`verify`](Self::verify) when `verify_signatures`, otherwise
    /// [`skip_verification`](Self::skip_verification).
    pub fn verify_if(
        self,
        verify_signatures: bool,
        verifier: &Verifier,
        now: DateTime<Utc>,
    ) -> Result<VerifiedPayload, SignatureError> {
        if verify_signatures {
            self.verify_with(verifier, now)
        } else {
            Ok(self.skip_verification())
        }
    }
}

fn bearer(authorization: Option<&str>) -> Option<String> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_owned())
}

/// The signature secret's HS256 key and the JWT checks, prepared once for a server.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is the signature secret: never print it.
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        Verifier {
            key: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    /// Decode and check the HS256 signature; the time claims are checked by the caller against
    /// the injected clock (jsonwebtoken's own `exp` check would read the system clock).
    fn decode(&self, token: &str) -> Result<WebhookClaims, SignatureError> {
        jsonwebtoken::decode::<WebhookClaims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => SignatureError::BadSignature,
                _ => SignatureError::Malformed,
            })
    }
}

/// The payload of a request whose JWT was checked (or deliberately not checked).
#[derive(Clone)]
pub struct VerifiedPayload {
    raw: Raw,
    signature_checked: bool,
}

impl std::fmt::Debug for VerifiedPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedPayload")
            .field("signature_checked", &self.signature_checked)
            .finish_non_exhaustive()
    }
}

/// The payload is neither a query nor a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the webhook body is not a JSON object")]
pub struct NotAnObject;

impl VerifiedPayload {
    pub fn signature_checked(&self) -> bool {
        self.signature_checked
    }

    /// The fields: a GET's query parameters (strings), or a POST's JSON object.
    pub fn fields(&self) -> Result<serde_json::Map<String, serde_json::Value>, NotAnObject> {
        match &self.raw {
            Raw::Query(q) => Ok(query_pairs(q)
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect()),
            Raw::Body(b) => match serde_json::from_slice::<serde_json::Value>(b) {
                Ok(serde_json::Value::Object(map)) => Ok(map),
                _ => Err(NotAnObject),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // Reference §3.4.3 (computed with the documented algorithm, not captured from Vonage).
    const REF_SECRET: &str = "test-signature-secret-0123456789abcdef";
    const REF_BODY: &str = r#"{"from":"447700900123","to":"442079460000","uuid":"aaaaaaaa-bbbb-cccc-dddd-0123456789ab","conversation_uuid":"CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab","status":"completed","direction":"inbound","timestamp":"2024-01-15T10:31:00.000Z"}"#;
    const REF_HASH: &str = "52ceb7484678b6da7ee743f925ce36d35acac0eb566f23c141d90377aae7aac1";
    const REF_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDUzMTQ2NjAsImp0aSI6ImMxZjBkNGI2LTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMSIsImlzcyI6IlZvbmFnZSIsInBheWxvYWRfaGFzaCI6IjUyY2ViNzQ4NDY3OGI2ZGE3ZWU3NDNmOTI1Y2UzNmQzNWFjYWMwZWI1NjZmMjNjMTQxZDkwMzc3YWFlN2FhYzEiLCJhcGlfa2V5IjoiYWJjZDEyMzQiLCJhcHBsaWNhdGlvbl9pZCI6ImFhYWFhYWFhLWJiYmItY2NjYy1kZGRkLTAxMjM0NTY3ODlhYiJ9.caDYKmi3xPuZUP0NkfPOW2RpZ9WkLKAxbYZMDml2HX4";
    const REF_IAT: i64 = 1_705_314_660;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn bearer_of(token: &str) -> String {
        format!("Bearer {token}")
    }

    #[test]
    fn reference_vector_verifies_and_a_one_byte_change_does_not() {
        assert_eq!(payload_hash(REF_BODY.as_bytes()), REF_HASH);
        let secret = Secret::new(REF_SECRET);
        let ok = UnverifiedRequest::post(Some(&bearer_of(REF_TOKEN)), REF_BODY.into())
            .verify(&secret, at(REF_IAT + 10))
            .unwrap();
        assert!(ok.signature_checked());
        assert_eq!(ok.fields().unwrap()["status"], "completed");

        let tampered = REF_BODY.replace("447700900123", "447700900124");
        assert_eq!(
            UnverifiedRequest::post(Some(&bearer_of(REF_TOKEN)), tampered.into())
                .verify(&secret, at(REF_IAT))
                .unwrap_err(),
            SignatureError::PayloadMismatch
        );
        assert_eq!(
            UnverifiedRequest::post(Some(&bearer_of(REF_TOKEN)), REF_BODY.into())
                .verify(&Secret::new("another-secret"), at(REF_IAT))
                .unwrap_err(),
            SignatureError::BadSignature
        );
    }

    #[test]
    fn iat_must_be_within_300_seconds_either_way() {
        let secret = Secret::new(REF_SECRET);
        let check = |now: i64| {
            UnverifiedRequest::post(Some(&bearer_of(REF_TOKEN)), REF_BODY.into())
                .verify(&secret, at(now))
        };
        assert!(check(REF_IAT + 300).is_ok());
        assert!(check(REF_IAT - 300).is_ok());
        assert_eq!(check(REF_IAT + 301).unwrap_err(), SignatureError::Stale);
        assert_eq!(check(REF_IAT - 301).unwrap_err(), SignatureError::Stale);
    }

    #[test]
    fn get_hashes_the_query_in_received_order() {
        let secret = Secret::new("s3cret");
        let query = "to=442079460000&from=447700900123&uuid=u-1&conversation_uuid=CON-1";
        let json = query_json(&query_pairs(query));
        assert_eq!(
            json,
            r#"{"to":"442079460000","from":"447700900123","uuid":"u-1","conversation_uuid":"CON-1"}"#
        );
        let token = sign(
            &WebhookClaims {
                iat: 1_800_000_000,
                payload_hash: Some(payload_hash(json.as_bytes())),
                ..WebhookClaims::default()
            },
            &secret,
        )
        .unwrap();
        let now = at(1_800_000_000);
        let ok = UnverifiedRequest::get(Some(&bearer_of(&token)), query)
            .verify(&secret, now)
            .unwrap();
        let fields = ok.fields().unwrap();
        assert_eq!(fields["from"], "447700900123");
        let reordered = "from=447700900123&to=442079460000&uuid=u-1&conversation_uuid=CON-1";
        assert_eq!(
            UnverifiedRequest::get(Some(&bearer_of(&token)), reordered)
                .verify(&secret, now)
                .unwrap_err(),
            SignatureError::PayloadMismatch
        );
    }

    #[test]
    fn missing_malformed_and_unhashed_tokens_are_refused() {
        let secret = Secret::new("s3cret");
        let now = at(1_800_000_000);
        let r = |auth: Option<&str>| UnverifiedRequest::post(auth, Bytes::from_static(b"{}"));
        assert_eq!(
            r(None).verify(&secret, now).unwrap_err(),
            SignatureError::Missing
        );
        assert_eq!(
            r(Some("Basic abc")).verify(&secret, now).unwrap_err(),
            SignatureError::Missing
        );
        assert_eq!(
            r(Some("Bearer not.a.jwt"))
                .verify(&secret, now)
                .unwrap_err(),
            SignatureError::Malformed
        );
        let no_hash = sign(
            &WebhookClaims {
                iat: 1_800_000_000,
                ..WebhookClaims::default()
            },
            &secret,
        )
        .unwrap();
        assert_eq!(
            r(Some(&bearer_of(&no_hash)))
                .verify(&secret, now)
                .unwrap_err(),
            SignatureError::NoPayloadHash
        );
        // An unsigned ("none") or differently signed token is not accepted.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &WebhookClaims {
                iat: 1_800_000_000,
                payload_hash: Some(payload_hash(b"{}")),
                ..WebhookClaims::default()
            },
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert!(r(Some(&bearer_of(&hs512))).verify(&secret, now).is_err());
        // Skipping verification still exposes the payload.
        assert!(!r(None).skip_verification().signature_checked());
    }

    #[test]
    fn fractional_iat_is_accepted() {
        let secret = Secret::new("s3cret");
        let body = br#"{"uuid":"u"}"#;
        let claims =
            serde_json::json!({"iat": 1_800_000_000.25, "payload_hash": payload_hash(body)});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        UnverifiedRequest::post(Some(&bearer_of(&token)), Bytes::from_static(body))
            .verify(&secret, at(1_800_000_100))
            .unwrap();
    }

    #[test]
    fn repeated_query_keys_keep_first_position_and_last_value() {
        let pairs = query_pairs("a=1&b=2&a=3&c=x+y%2Bz");
        assert_eq!(query_json(&pairs), r#"{"a":"3","b":"2","c":"x y+z"}"#);
    }
}
