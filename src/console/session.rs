//! Console sessions (SPEC §12): a random id in an HttpOnly, SameSite=Strict cookie (`Secure`
//! when `public_url` is https); the store keeps only its SHA-256. Idle and absolute timeouts
//! are measured on the injected clock. Every form carries the session's CSRF token; the
//! sign-in form, before there is a session, a token that must match a cookie of its own.
//!
//! This is the HTTP-free part; the extractor, cookies and headers are in
//! `crate::api::console::session`.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Role;
use crate::state::AppState;
use crate::store::ConsoleSession;

pub const SESSION_COOKIE: &str = "fairline_console";
pub const SIGN_IN_COOKIE: &str = "fairline_console_sign_in";
/// Sent by the Live calls page's own refresh: it does not count as activity.
pub const BACKGROUND_HEADER: &str = "x-fairline-background";

/// A signed-in member of staff.
#[derive(Clone, Debug)]
pub struct Staff {
    pub name: String,
    pub role: Role,
    pub csrf_token: String,
    pub id_hash: String,
}

impl Staff {
    pub fn is_manager(&self) -> bool {
        self.role == Role::Manager
    }
}

/// 32 random bytes, base64url without padding.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Constant-time comparison of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Console cookies are `Secure` when the public URL is https.
pub fn secure(state: &AppState) -> bool {
    state.config.server.public_url.starts_with("https://")
}

/// The text of a `Set-Cookie` value for a console cookie; `max_age` 0 deletes it.
pub fn cookie_text(secure: bool, name: &str, value: &str, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Past the idle timeout since last use, or past the absolute lifetime since sign-in.
pub fn expired(state: &AppState, s: &ConsoleSession, now: chrono::DateTime<chrono::Utc>) -> bool {
    let idle = chrono::Duration::from_std(state.config.console.session_idle)
        .unwrap_or(chrono::Duration::minutes(30));
    let absolute = chrono::Duration::from_std(super::config::ABSOLUTE_LIFETIME)
        .unwrap_or(chrono::Duration::hours(12));
    now - s.last_seen_at >= idle || now - s.created_at >= absolute
}
