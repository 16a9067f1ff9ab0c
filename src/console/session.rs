//! Console sessions (SPEC §12): a random id in an HttpOnly, SameSite=Strict cookie (`Secure`
//! when `public_url` is https); the store keeps only its SHA-256. Idle and absolute timeouts
//! are measured on the injected clock. Every form carries the session's CSRF token; the
//! sign-in form, before there is a session, a token that must match a cookie of its own.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
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

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn secure(state: &AppState) -> bool {
    state.config.server.public_url.starts_with("https://")
}

/// A `Set-Cookie` value for a console cookie; `max_age` 0 deletes it.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure(state) {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Why a request has no valid session.
pub enum NoSession {
    /// Not signed in, timed out or signed out: to the sign-in page.
    SignIn { timed_out: bool },
    /// The store failed.
    Unavailable,
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            NoSession::SignIn { timed_out } => {
                let to = if timed_out {
                    "/console/sign-in?timed_out=1"
                } else {
                    "/console/sign-in"
                };
                Redirect::to(to).into_response()
            }
            NoSession::Unavailable => super::pages::unavailable(),
        }
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = NoSession;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(id) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(NoSession::SignIn { timed_out: false });
        };
        let id_hash = hash_id(id);
        let session = state
            .store
            .get_session(&id_hash)
            .await
            .map_err(|_| NoSession::Unavailable)?
            .ok_or(NoSession::SignIn { timed_out: true })?;
        let now = state.clock.now();
        if expired(state, &session, now) {
            if let Err(e) = state.store.delete_session(&id_hash).await {
                tracing::warn!(error = %e, "could not delete an expired console session");
            }
            return Err(NoSession::SignIn { timed_out: true });
        }
        if !parts.headers.contains_key(BACKGROUND_HEADER) {
            state
                .store
                .touch_session(&id_hash, now)
                .await
                .map_err(|_| NoSession::Unavailable)?;
        }
        Ok(Staff {
            name: session.name,
            role: session.role,
            csrf_token: session.csrf_token,
            id_hash,
        })
    }
}

/// Past the idle timeout since last use, or past the absolute lifetime since sign-in.
pub fn expired(state: &AppState, s: &ConsoleSession, now: chrono::DateTime<chrono::Utc>) -> bool {
    let idle = chrono::Duration::from_std(state.config.console.session_idle)
        .unwrap_or(chrono::Duration::minutes(30));
    let absolute = chrono::Duration::from_std(super::config::ABSOLUTE_LIFETIME)
        .unwrap_or(chrono::Duration::hours(12));
    now - s.last_seen_at >= idle || now - s.created_at >= absolute
}

/// The answer to a POST whose CSRF token is missing or wrong: 403, nothing changed.
pub fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        super::views::message_page(
            "Your request could not be checked",
            "The form you sent did not come from this console, or it has expired. Nothing \
             was changed. Go back, reload the page and try again.",
        ),
    )
        .into_response()
}

/// Security headers on every console response.
pub async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}
