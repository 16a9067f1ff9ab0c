//! `X-Twilio-Signature` verification, as a typestate: an [`UnverifiedRequest`] holds the raw
//! request and exposes nothing; only [`UnverifiedRequest::verify`] (or, when
//! `twilio.verify_signatures = false`, [`UnverifiedRequest::skip_verification`]) turns it into a
//! [`VerifiedForm`], the only type that gives access to the POST fields.
//!
//! The algorithm is the one of Twilio's own request validators (twilio-python, twilio-node):
//!
//! * the signed URL is `server.public_url` (any trailing `/` removed) followed by the raw path and
//!   query **exactly as received** (never decoded, re-sorted or re-encoded);
//! * for every POST field, sorted by name (byte order), and for a repeated field every value
//!   sorted too, `name` + `value` is appended with no delimiter; empty values take part;
//!   values are the form-decoded ones (`+` is a space, `%2B` a plus) and are not trimmed;
//! * the digest is HMAC-SHA1 keyed with the auth token, base64-encoded, and compared in
//!   constant time with the header;
//! * because Twilio itself is inconsistent about ports, the URL is tried both **with** the port
//!   (`:443` for https, `:80` otherwise, added when absent) and **without** any port (a custom
//!   port is removed too). Either match is accepted.
//!
//! Shared-key signing (`X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=HMAC_SHA256`) is
//! **not supported**: when that header names any algorithm other than HMAC-SHA1 the request is
//! rejected with [`SignatureError::UnsupportedAlgorithm`] rather than silently checked with
//! SHA-1 and the auth token. The JSON-body variant (`bodySHA256`) is not used by Voice webhooks
//! and is not implemented.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// The header carrying Twilio's signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";
/// The header Twilio adds when a webhook is signed with a shared key instead of the auth token.
pub const SIGNATURE_SETTINGS_HEADER: &str = "X-Twilio-Webhooks-Signature-Settings";

type HmacSha1 = Hmac<Sha1>;

/// Why a webhook was not accepted. [`SignatureError::http_status`] gives the answer to send:
/// 403 for anything about the signature, 400 for a body that is not a form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Twilio-Signature` header.
    #[error("the X-Twilio-Signature header is missing")]
    Missing,
    /// The signature does not match (wrong token, wrong URL, tampered body, bad base64).
    #[error("the X-Twilio-Signature does not match the request")]
    Invalid,
    /// `X-Twilio-Webhooks-Signature-Settings` names an algorithm other than HMAC-SHA1
    /// (shared-key signing), which Fairline does not support.
    #[error("unsupported webhook signing algorithm {0:?} (shared-key signing is not supported)")]
    UnsupportedAlgorithm(String),
    /// The body is not a valid `application/x-www-form-urlencoded` UTF-8 form.
    #[error("malformed form body: {0}")]
    MalformedBody(String),
}

impl SignatureError {
    /// 403 for a missing, invalid or unsupported signature; 400 for a malformed body.
    pub fn http_status(&self) -> u16 {
        match self {
            SignatureError::MalformedBody(_) => 400,
            SignatureError::Missing
            | SignatureError::Invalid
            | SignatureError::UnsupportedAlgorithm(_) => 403,
        }
    }
}

/// A Twilio webhook request as received, not yet trusted.
#[derive(Clone)]
pub struct UnverifiedRequest {
    path_and_query: String,
    signature: Option<String>,
    signature_settings: Option<String>,
    body: Bytes,
}

impl std::fmt::Debug for UnverifiedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body holds caller numbers: never print it.
        f.debug_struct("UnverifiedRequest")
            .field("path_and_query", &self.path_and_query)
            .field("has_signature", &self.signature.is_some())
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl UnverifiedRequest {
    /// `path_and_query` is the request target exactly as received (in axum:
    /// `OriginalUri`'s `path_and_query()`), `signature` the `X-Twilio-Signature` value, `body`
    /// the raw body bytes (take them before any `Form` extractor).
    pub fn new(path_and_query: impl Into<String>, signature: Option<String>, body: Bytes) -> Self {
        UnverifiedRequest {
            path_and_query: path_and_query.into(),
            signature,
            signature_settings: None,
            body,
        }
    }

    /// The value of `X-Twilio-Webhooks-Signature-Settings`, when present.
    pub fn with_signature_settings(mut self, settings: Option<String>) -> Self {
        self.signature_settings = settings;
        self
    }

    /// Build from an HTTP request's parts. A header value that is not visible ASCII is
    /// kept lossily (and so fails verification).
    pub fn from_http(uri: &http::Uri, headers: &http::HeaderMap, body: Bytes) -> Self {
        let path_and_query = uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        UnverifiedRequest::new(path_and_query, header(SIGNATURE_HEADER), body)
            .with_signature_settings(header(SIGNATURE_SETTINGS_HEADER))
    }

    /// Check the signature against `public_url` + the raw path and query, with the auth token.
    /// Prepares the key for this one request: a server keeps a [`Verifier`] instead.
    pub fn verify(
        self,
        public_url: &str,
        auth_token: &Secret,
    ) -> Result<VerifiedForm, SignatureError> {
        self.verify_with(&Verifier::new(public_url, auth_token))
    }

    /// Check the signature with a prepared [`Verifier`].
    pub fn verify_with(self, verifier: &Verifier) -> Result<VerifiedForm, SignatureError> {
        let Some(header) = self.signature.as_deref() else {
            return Err(SignatureError::Missing);
        };
        check_settings(self.signature_settings.as_deref())?;
        // An HMAC-SHA1 tag is 20 bytes; anything that does not fit is not a signature.
        let mut expected = [0u8; 32];
        let expected = match BASE64.decode_slice(header.trim().as_bytes(), &mut expected) {
            Ok(n) => &expected[..n],
            Err(_) => return Err(SignatureError::Invalid),
        };
        // Sign over what Twilio signed: the decoded fields. A body that does not decode cleanly
        // is signed lossily, so that an unauthenticated request gets a 403, not a 400.
        let fields = match decode_strict(&self.body) {
            Ok(fields) => fields,
            Err(e) => {
                let lossy = decode_lossy(&self.body);
                let pairs = lossy
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                if !verifier.matches(&self.path_and_query, pairs, expected) {
                    return Err(SignatureError::Invalid);
                }
                return Err(e);
            }
        };
        if !verifier.matches(&self.path_and_query, fields.pairs().collect(), expected) {
            return Err(SignatureError::Invalid);
        }
        Ok(VerifiedForm {
            path_and_query: self.path_and_query,
            fields,
            signature_checked: true,
        })
    }

    /// Accept without checking (`twilio.verify_signatures = false`); the body must still be a form.
    pub fn skip_verification(self) -> Result<VerifiedForm, SignatureError> {
        let fields = decode_strict(&self.body)?;
        Ok(VerifiedForm {
            path_and_query: self.path_and_query,
            fields,
            signature_checked: false,
        })
    }

    /// [`verify_with`](Self::verify_with) when `verify_signatures`,
    /// [`skip_verification`](Self::skip_verification) otherwise.
    pub fn verify_if(
        self,
        verify_signatures: bool,
        verifier: &Verifier,
    ) -> Result<VerifiedForm, SignatureError> {
        if verify_signatures {
            self.verify_with(verifier)
        } else {
            self.skip_verification()
        }
    }
}

/// The auth token's HMAC key and the public URL's two signed forms, prepared once for a server
/// (keying HMAC-SHA1 and building the URLs per request showed in the webhook's profile).
#[derive(Clone)]
pub struct Verifier {
    /// `public_url` without its trailing `/`, without and with the port (see [`url_candidates`]),
    /// the configured form first.
    bases: [String; 2],
    key: HmacSha1,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is the auth token: never print it.
        f.debug_struct("Verifier")
            .field("bases", &self.bases)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(public_url: &str, auth_token: &Secret) -> Self {
        let base = public_url.trim_end_matches('/');
        let [without_port, with_port] = url_candidates(base);
        // The form as configured first: it is the URL set in Twilio's console, so the other
        // form is only computed for the requests it does not match.
        let bases = if with_port == base {
            [with_port, without_port]
        } else {
            [without_port, with_port]
        };
        Verifier {
            bases,
            key: keyed(auth_token),
        }
    }

    /// Whether `expected` is the tag of `base + path_and_query` and `fields` for either base.
    fn matches(
        &self,
        path_and_query: &str,
        mut sorted: Vec<(&str, &str)>,
        expected: &[u8],
    ) -> bool {
        sorted.sort_unstable();
        // What follows the base, in one piece: a few large updates instead of two per field.
        let len = path_and_query.len()
            + sorted
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>();
        let mut signed = Vec::with_capacity(len);
        signed.extend_from_slice(path_and_query.as_bytes());
        for (name, value) in &sorted {
            signed.extend_from_slice(name.as_bytes());
            signed.extend_from_slice(value.as_bytes());
        }
        self.bases.iter().any(|base| {
            let mut mac = self.key.clone();
            mac.update(base.as_bytes());
            mac.update(&signed);
            bool::from(mac.finalize().into_bytes().as_slice().ct_eq(expected))
        })
    }
}

/// The form fields of a request whose signature was checked (or deliberately not checked).
#[derive(Clone)]
pub struct VerifiedForm {
    path_and_query: String,
    fields: Fields,
    signature_checked: bool,
}

/// Decoded form fields: every name and value in one string, in the order received (two
/// allocations per request instead of two per field).
#[derive(Clone, Default)]
struct Fields {
    text: String,
    /// The byte ranges of each field's name and value in `text`, on character boundaries.
    spans: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl Fields {
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|(name, value)| {
            (
                self.text.get(name.clone()).unwrap_or_default(),
                self.text.get(value.clone()).unwrap_or_default(),
            )
        })
    }
}

impl std::fmt::Debug for VerifiedForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Field names only: values hold caller numbers.
        f.debug_struct("VerifiedForm")
            .field("path_and_query", &self.path_and_query)
            .field(
                "fields",
                &self.fields.pairs().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("signature_checked", &self.signature_checked)
            .finish()
    }
}

impl VerifiedForm {
    /// The first value of a field, exactly as decoded (not trimmed).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .pairs()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Every value of a field, in the order received.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .pairs()
            .filter(move |(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// All fields in the order received.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields.pairs()
    }

    /// The raw path and query the request was made to.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// False when built by [`UnverifiedRequest::skip_verification`].
    pub fn signature_checked(&self) -> bool {
        self.signature_checked
    }
}

/// The `X-Twilio-Signature` Twilio would send for a POST to `url` with these (decoded) fields.
/// For tests and fixtures: `url` is the full URL as Twilio requests it.
pub fn compute_signature(url: &str, fields: &[(String, String)], auth_token: &Secret) -> String {
    BASE64.encode(hmac_sha1(url, fields, auth_token))
}

fn keyed(auth_token: &Secret) -> HmacSha1 {
    // HMAC takes a key of any length, so this cannot fail; the fallback keeps it total.
    HmacSha1::new_from_slice(auth_token.expose().as_bytes())
        .unwrap_or_else(|_| <HmacSha1 as hmac::digest::KeyInit>::new(&Default::default()))
}

fn hmac_sha1(url: &str, fields: &[(String, String)], auth_token: &Secret) -> Vec<u8> {
    // Sorted by name, then each name's values sorted: the order of the (name, value) pairs.
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort_unstable();
    let mut mac = keyed(auth_token);
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

fn check_settings(settings: Option<&str>) -> Result<(), SignatureError> {
    let Some(settings) = settings else {
        return Ok(());
    };
    for part in settings.split(',') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("algorithm") {
            let alg = value.trim();
            let normalised = alg.to_ascii_uppercase().replace('-', "_");
            if normalised != "HMAC_SHA1" {
                return Err(SignatureError::UnsupportedAlgorithm(alg.to_owned()));
            }
        }
    }
    Ok(())
}

fn decode_lossy(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The bytes [`decode_strict`] acts on: `&`, `=`, `%` and `+`.
const FORM_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'&' as usize] = true;
    table[b'=' as usize] = true;
    table[b'%' as usize] = true;
    table[b'+' as usize] = true;
    table
};

/// Decode a form body, refusing bytes or escapes that are not UTF-8.
///
/// One pass over the body: runs of bytes other than `&`, `=`, `%` and `+` are found with a
/// table and copied whole (a Twilio body has one of those every dozen bytes or so: a table
/// beats a SIMD search restarted at each of them); a `+` becomes a space and `%XY` is decoded
/// where it stands (a `%` not followed by two hex digits is kept, and a decoded `%2B` stays a
/// plus). Empty pieces (`&&`) are skipped; a piece without `=` is a name with an empty value;
/// only a piece's first `=` separates, later ones belong to the value.
fn decode_strict(body: &[u8]) -> Result<Fields, SignatureError> {
    let mut text: Vec<u8> = Vec::with_capacity(body.len());
    let mut spans = Vec::with_capacity(32);
    // The current piece: where it starts in the body, where its name starts in `text`, and
    // where its value starts once its first `=` is seen.
    let mut piece_start = 0usize;
    let mut name_start = 0usize;
    let mut value_start: Option<usize> = None;
    let end_piece = |text: &Vec<u8>,
                     spans: &mut Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
                     raw_len: usize,
                     name_start: usize,
                     value_start: Option<usize>| {
        if raw_len == 0 {
            return;
        }
        let end = text.len();
        match value_start {
            Some(v) => spans.push((name_start..v, v..end)),
            None => spans.push((name_start..end, end..end)),
        }
    };
    let mut i = 0usize;
    while i < body.len() {
        let run = body[i..]
            .iter()
            .position(|&b| FORM_SPECIAL[usize::from(b)])
            .unwrap_or(body.len() - i);
        text.extend_from_slice(&body[i..i + run]);
        i += run;
        let Some(&special) = body.get(i) else {
            break;
        };
        i += 1;
        match special {
            b'&' => {
                end_piece(
                    &text,
                    &mut spans,
                    i - 1 - piece_start,
                    name_start,
                    value_start,
                );
                piece_start = i;
                name_start = text.len();
                value_start = None;
            }
            b'=' if value_start.is_none() => value_start = Some(text.len()),
            b'=' => text.push(b'='),
            b'+' => text.push(b' '),
            _ => {
                let byte = match (body.get(i), body.get(i + 1)) {
                    (Some(&hi), Some(&lo)) => hex_digit(hi).zip(hex_digit(lo)),
                    _ => None,
                };
                match byte {
                    Some((hi, lo)) => {
                        text.push(hi << 4 | lo);
                        i += 2;
                    }
                    None => text.push(b'%'),
                }
            }
        }
    }
    end_piece(
        &text,
        &mut spans,
        body.len() - piece_start,
        name_start,
        value_start,
    );

    let not_utf8 = || SignatureError::MalformedBody("a field is not UTF-8 once decoded".into());
    let text = String::from_utf8(text).map_err(|_| not_utf8())?;
    // The whole is UTF-8; each name and value must be on its own, i.e. start and end on a
    // character boundary (a character split between a name and its value is refused).
    let on_boundaries =
        |r: &std::ops::Range<usize>| text.is_char_boundary(r.start) && text.is_char_boundary(r.end);
    if !spans
        .iter()
        .all(|(name, value)| on_boundaries(name) && on_boundaries(value))
    {
        return Err(not_utf8());
    }
    Ok(Fields { text, spans })
}

/// The value of one hexadecimal digit.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The two forms of a URL Twilio may have signed: with the port (`:443`/`:80` added when
/// absent) and without any port. Only the authority is touched; path and query stay raw.
fn url_candidates(full: &str) -> [String; 2] {
    let Some((scheme, rest)) = full.split_once("://") else {
        return [full.to_owned(), full.to_owned()];
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let (host, port) = split_port(hostport);
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    let with_port = format!(
        "{scheme}://{userinfo}{host}:{}{tail}",
        port.unwrap_or(default_port)
    );
    let without_port = format!("{scheme}://{userinfo}{host}{tail}");
    [without_port, with_port]
}

fn split_port(hostport: &str) -> (&str, Option<&str>) {
    // An IPv6 literal: the port, if any, follows "]:".
    let search_from = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => i,
            None => return (hostport, None),
        }
    } else {
        0
    };
    match hostport[search_from..].rfind(':') {
        Some(rel) => {
            let i = search_from + rel;
            let port = &hostport[i + 1..];
            if port.bytes().all(|b| b.is_ascii_digit()) {
                (&hostport[..i], (!port.is_empty()).then_some(port))
            } else {
                (hostport, None)
            }
        }
        None => (hostport, None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn token() -> Secret {
        Secret::new("12345")
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn encode(list: &[(&str, &str)]) -> Bytes {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in list {
            s.append_pair(k, v);
        }
        Bytes::from(s.finish())
    }

    const DOCS_FIELDS: [(&str, &str); 5] = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ];

    const SDK_FIELDS: [(&str, &str); 5] = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];

    fn request(path: &str, sig: Option<&str>, body: Bytes) -> UnverifiedRequest {
        UnverifiedRequest::new(path, sig.map(str::to_owned), body)
    }

    #[test]
    fn twilio_documentation_example_verifies() {
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            encode(&DOCS_FIELDS),
        );
        let form = req.verify("https://mycompany.com", &token()).unwrap();
        assert_eq!(form.get("Caller"), Some("+12349013030"));
        assert!(form.signature_checked());
        assert_eq!(
            compute_signature(
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &pairs(&DOCS_FIELDS),
                &token()
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn sdk_vectors_compute() {
        let f = pairs(&SDK_FIELDS);
        for (url, sig) in [
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
            (
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ),
            (
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
        ] {
            assert_eq!(compute_signature(url, &f, &token()), sig, "{url}");
        }
    }

    #[test]
    fn https_without_port_accepts_the_443_form() {
        // Twilio signed https://mycompany.com:443/…; we are configured without a port.
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("kvajT1Ptam85bY51eRf/AJRuM3w="),
            encode(&SDK_FIELDS),
        );
        assert!(req.verify("https://mycompany.com", &token()).is_ok());
    }

    #[test]
    fn https_with_443_accepts_the_portless_form() {
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            encode(&SDK_FIELDS),
        );
        assert!(req.verify("https://mycompany.com:443/", &token()).is_ok());
    }

    #[test]
    fn http_without_port_accepts_the_80_form() {
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("0ZXoZLH/DfblKGATFgpif+LLRf4="),
            encode(&SDK_FIELDS),
        );
        assert!(req.verify("http://mycompany.com", &token()).is_ok());
        // …but http is not https: the :443 signature does not match an http URL.
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("kvajT1Ptam85bY51eRf/AJRuM3w="),
            encode(&SDK_FIELDS),
        );
        assert_eq!(
            req.verify("http://mycompany.com", &token()).unwrap_err(),
            SignatureError::Invalid
        );
    }

    #[test]
    fn custom_port_is_accepted_as_signed_and_stripped() {
        let f = pairs(&SDK_FIELDS);
        // Signed with the custom port:
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
            encode(&SDK_FIELDS),
        );
        assert!(req.verify("http://mycompany.com:1234", &token()).is_ok());
        // Signed without any port (as twilio-python's test: the port is stripped):
        let sig = compute_signature("https://mycompany.com/myapp.php?foo=1&bar=2", &f, &token());
        let req = request("/myapp.php?foo=1&bar=2", Some(&sig), encode(&SDK_FIELDS));
        assert!(req.verify("https://mycompany.com:1234", &token()).is_ok());
        // A different custom port is not accepted.
        let sig = compute_signature(
            "https://mycompany.com:9999/myapp.php?foo=1&bar=2",
            &f,
            &token(),
        );
        let req = request("/myapp.php?foo=1&bar=2", Some(&sig), encode(&SDK_FIELDS));
        assert_eq!(
            req.verify("https://mycompany.com:1234", &token())
                .unwrap_err(),
            SignatureError::Invalid
        );
    }

    #[test]
    fn empty_fields_take_part() {
        let fields = [("CallSid", "CA1"), ("FromCity", ""), ("To", "+441")];
        let url = "https://h.example/webhooks/twilio/voice";
        let sig = compute_signature(url, &pairs(&fields), &token());
        let req = request("/webhooks/twilio/voice", Some(&sig), encode(&fields));
        let form = req.verify("https://h.example", &token()).unwrap();
        assert_eq!(form.get("FromCity"), Some(""));
        // Dropping the empty field changes the signature.
        let without = [("CallSid", "CA1"), ("To", "+441")];
        let req = request("/webhooks/twilio/voice", Some(&sig), encode(&without));
        assert_eq!(
            req.verify("https://h.example", &token()).unwrap_err(),
            SignatureError::Invalid
        );
    }

    #[test]
    fn repeated_field_value_order_does_not_matter() {
        let url = "https://h.example/x";
        let a = [("Tag", "b"), ("CallSid", "CA1"), ("Tag", "a")];
        let b = [("Tag", "a"), ("CallSid", "CA1"), ("Tag", "b")];
        let sig = compute_signature(url, &pairs(&a), &token());
        assert_eq!(sig, compute_signature(url, &pairs(&b), &token()));
        let req = request("/x", Some(&sig), encode(&b));
        let form = req.verify("https://h.example", &token()).unwrap();
        assert_eq!(form.get_all("Tag").collect::<Vec<_>>(), vec!["a", "b"]);
        // The values are sorted, not just concatenated in any order: compare with a manual HMAC.
        let mut mac = HmacSha1::new_from_slice(b"12345").unwrap();
        mac.update(b"https://h.example/xCallSidCA1TagaTagb");
        assert_eq!(sig, BASE64.encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn query_string_is_signed_raw() {
        let fields = [("CallSid", "CA1")];
        let raw = "/webhooks/twilio/voice?b=2&a=x%20y+z";
        let sig = compute_signature(
            &format!("https://h.example{raw}"),
            &pairs(&fields),
            &token(),
        );
        assert!(request(raw, Some(&sig), encode(&fields))
            .verify("https://h.example/", &token())
            .is_ok());
        // Re-sorted or re-encoded query strings do not match.
        for other in [
            "/webhooks/twilio/voice?a=x%20y+z&b=2",
            "/webhooks/twilio/voice?b=2&a=x+y+z",
        ] {
            assert_eq!(
                request(other, Some(&sig), encode(&fields))
                    .verify("https://h.example", &token())
                    .unwrap_err(),
                SignatureError::Invalid
            );
        }
    }

    #[test]
    fn plus_and_percent_2b_decode_differently() {
        let body = Bytes::from_static(b"From=%2B442920123456&Name=A+B&Pct=%25");
        let form = request("/", None, body).skip_verification().unwrap();
        assert_eq!(form.get("From"), Some("+442920123456"));
        assert_eq!(form.get("Name"), Some("A B"));
        assert_eq!(form.get("Pct"), Some("%"));
        assert!(!form.signature_checked());
    }

    #[test]
    fn values_are_not_trimmed() {
        let fields = [("Body", " padded ")];
        let sig = compute_signature("https://h.example/", &pairs(&fields), &token());
        let form = request("/", Some(&sig), encode(&fields))
            .verify("https://h.example", &token())
            .unwrap();
        assert_eq!(form.get("Body"), Some(" padded "));
    }

    #[test]
    fn wrong_token_is_invalid() {
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            encode(&DOCS_FIELDS),
        );
        assert_eq!(
            req.verify("https://mycompany.com", &Secret::new("54321"))
                .unwrap_err(),
            SignatureError::Invalid
        );
    }

    #[test]
    fn missing_header_is_missing() {
        let err = request("/myapp.php?foo=1&bar=2", None, encode(&DOCS_FIELDS))
            .verify("https://mycompany.com", &token())
            .unwrap_err();
        assert_eq!(err, SignatureError::Missing);
        assert_eq!(err.http_status(), 403);
    }

    #[test]
    fn tampered_body_is_invalid() {
        let mut tampered = DOCS_FIELDS;
        tampered[3] = ("From", "+12349013031");
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            encode(&tampered),
        );
        assert_eq!(
            req.verify("https://mycompany.com", &token()).unwrap_err(),
            SignatureError::Invalid
        );
        // An extra field too.
        let mut extra = DOCS_FIELDS.to_vec();
        extra.push(("Extra", ""));
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            encode(&extra),
        );
        assert_eq!(
            req.verify("https://mycompany.com", &token()).unwrap_err(),
            SignatureError::Invalid
        );
    }

    #[test]
    fn garbage_header_is_invalid() {
        for sig in ["", "not base64!!", "AAAA"] {
            let req = request("/myapp.php?foo=1&bar=2", Some(sig), encode(&DOCS_FIELDS));
            assert_eq!(
                req.verify("https://mycompany.com", &token()).unwrap_err(),
                SignatureError::Invalid
            );
        }
    }

    #[test]
    fn shared_key_signing_is_rejected() {
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            encode(&DOCS_FIELDS),
        )
        .with_signature_settings(Some("key=KS123,algorithm=HMAC_SHA256".into()));
        let err = req.verify("https://mycompany.com", &token()).unwrap_err();
        assert_eq!(
            err,
            SignatureError::UnsupportedAlgorithm("HMAC_SHA256".into())
        );
        assert_eq!(err.http_status(), 403);
        // Naming SHA-1 explicitly is fine.
        let req = request(
            "/myapp.php?foo=1&bar=2",
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            encode(&DOCS_FIELDS),
        )
        .with_signature_settings(Some("algorithm=HMAC_SHA1".into()));
        assert!(req.verify("https://mycompany.com", &token()).is_ok());
    }

    #[test]
    fn malformed_body_is_400_only_after_a_valid_signature() {
        let body = Bytes::from_static(b"CallSid=CA1&Bad=%FF");
        let err = request("/", None, body.clone())
            .skip_verification()
            .unwrap_err();
        assert!(matches!(err, SignatureError::MalformedBody(_)));
        assert_eq!(err.http_status(), 400);
        // Unsigned: 403, not 400.
        assert_eq!(
            request("/", Some("AAAA"), body.clone())
                .verify("https://h.example", &token())
                .unwrap_err(),
            SignatureError::Invalid
        );
        // Signed over the lossy decoding: 400.
        let lossy = decode_lossy(&body);
        let sig = compute_signature("https://h.example/", &lossy, &token());
        let err = request("/", Some(&sig), body)
            .verify("https://h.example", &token())
            .unwrap_err();
        assert!(matches!(err, SignatureError::MalformedBody(_)));
        let raw_invalid = Bytes::from_static(&[b'A', b'=', 0xff]);
        assert!(request("/", None, raw_invalid).skip_verification().is_err());
    }

    #[test]
    fn strict_decoding_matches_form_urlencoded() {
        for body in [
            "a=1&b=&c&&d=x%2By+z&e=%zz&f=%4&g==h&%41=%42",
            "",
            "From=%2B442920123456&FromCity=&CallerName=O%27Brien",
        ] {
            let strict: Vec<(String, String)> = decode_strict(body.as_bytes())
                .unwrap()
                .pairs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let reference: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            assert_eq!(strict, reference, "{body}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Any body over the characters that matter: the strict decoding is exactly
        /// `form_urlencoded`'s whenever it succeeds, and fails only where that one had to
        /// replace bytes that were not UTF-8.
        #[test]
        fn strict_decoding_agrees_with_form_urlencoded_on_any_body(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("&".to_owned()),
                    proptest::strategy::Just("=".to_owned()),
                    proptest::strategy::Just("+".to_owned()),
                    proptest::strategy::Just("%".to_owned()),
                    "%[0-9a-fA-F]{2}",
                    "%[0-9a-fA-F]",
                    "[a-zA-Z0-9]{1,6}",
                    proptest::strategy::Just("é".to_owned()),
                    proptest::strategy::Just("%C3%A9".to_owned()),
                    proptest::strategy::Just("%E2%82".to_owned()),
                ],
                0..24,
            )
        ) {
            let body = pieces.concat();
            let reference: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            match decode_strict(body.as_bytes()) {
                Ok(fields) => {
                    let strict: Vec<(String, String)> = fields
                        .pairs()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    proptest::prop_assert_eq!(strict, reference, "{}", body);
                }
                Err(_) => proptest::prop_assert!(
                    reference
                        .iter()
                        .any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}')),
                    "{}", body
                ),
            }
        }
    }

    #[test]
    fn from_http_takes_the_raw_target_and_headers() {
        let uri: http::Uri = "/webhooks/twilio/voice?x=a%20b".parse().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("x-twilio-signature", "abc=".parse().unwrap());
        let req = UnverifiedRequest::from_http(&uri, &headers, Bytes::new());
        assert_eq!(req.path_and_query, "/webhooks/twilio/voice?x=a%20b");
        assert_eq!(req.signature.as_deref(), Some("abc="));
        assert_eq!(req.signature_settings, None);
    }

    #[test]
    fn url_candidates_touch_only_the_authority() {
        assert_eq!(
            url_candidates("https://h.example/p:1?q=a:b").to_vec(),
            vec![
                "https://h.example/p:1?q=a:b",
                "https://h.example:443/p:1?q=a:b"
            ]
        );
        assert_eq!(
            url_candidates("http://[::1]:8080/x").to_vec(),
            vec!["http://[::1]/x", "http://[::1]:8080/x"]
        );
        assert_eq!(
            url_candidates("http://[::1]/x").to_vec(),
            vec!["http://[::1]/x", "http://[::1]:80/x"]
        );
    }

    #[test]
    fn raw_bytes_that_are_not_utf8_are_a_malformed_body() {
        for body in [
            &b"CallSid=CA1&From=\xff\xfe"[..],
            &b"\xc3=x"[..],
            &b"From=%C3%28"[..],
            // A character split between a name and its value: the decoded whole would be
            // UTF-8, each part is not.
            &b"a%C3=%A9b"[..],
        ] {
            let req = UnverifiedRequest::new("/v", None, Bytes::copy_from_slice(body));
            assert!(
                matches!(
                    req.skip_verification(),
                    Err(SignatureError::MalformedBody(_))
                ),
                "{body:?}"
            );
        }
    }
}
