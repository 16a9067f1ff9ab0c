//! The HTTP side of console sessions: the [`Staff`] extractor, cookies, the CSRF refusal and
//! the security headers on every console response. The session logic itself is in
//! [`crate::console::session`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

pub use crate::console::session::*;
use crate::state::AppState;

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

/// A `Set-Cookie` value for a console cookie; `max_age` 0 deletes it.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    HeaderValue::from_str(&cookie_text(secure(state), name, value, max_age))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
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

/// The answer to a POST whose CSRF token is missing or wrong: 403, nothing changed.
pub fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        super::html(crate::console::views::message_page(
            "Your request could not be checked",
            "The form you sent did not come from this console, or it has expired. Nothing \
             was changed. Go back, reload the page and try again.",
        )),
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
