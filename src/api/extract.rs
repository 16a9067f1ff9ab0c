//! Extractors for the JSON API: bearer-token authentication with roles, and a JSON body that
//! rejects in problem+json (415 for another content type, 400 for malformed JSON, 422 for a
//! value of the wrong shape, naming the field).

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::error::{ApiError, FieldError};
use crate::config::Role;
use crate::state::AppState;

/// The authenticated caller of the API: the token's configured name and role.
#[derive(Clone, Debug)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn require_manager(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Manager => Ok(()),
            Role::Agent => Err(ApiError::Forbidden),
        }
    }
}

impl<S> FromRequestParts<S> for Principal
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare against every configured hash in constant time, without stopping early.
        let mut found: Option<Principal> = None;
        for t in &app.config.auth.tokens {
            if bool::from(t.sha256.ct_eq(&digest)) && found.is_none() {
                found = Some(Principal {
                    name: t.name.clone(),
                    role: t.role,
                });
            }
        }
        found.ok_or(ApiError::Unauthorized)
    }
}

/// A JSON request body, rejected in the API's problem+json shape.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest("the request body could not be read".into())
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parse JSON, naming the offending field on a shape error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error_lite(de);
    result
}

fn serde_path_to_error_lite<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, ApiError> {
    match T::deserialize(&mut *de).and_then(|v| de.end().map(|_| v)) {
        Ok(v) => Ok(v),
        Err(e) => match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => Err(
                ApiError::BadRequest(format!("the request body is not valid JSON: {e}")),
            ),
            serde_json::error::Category::Io => Err(ApiError::BadRequest(
                "the request body could not be read".into(),
            )),
            serde_json::error::Category::Data => {
                let msg = e.to_string();
                let msg = match msg.rfind(" at line ") {
                    Some(i) => msg[..i].to_string(),
                    None => msg,
                };
                let field = field_from_message(&msg).unwrap_or_else(|| "body".into());
                Err(ApiError::Validation(vec![FieldError::new(field, msg)]))
            }
        },
    }
}

/// serde names a missing or unknown field in backticks: use it as the field name.
fn field_from_message(msg: &str) -> Option<String> {
    if msg.starts_with("missing field") || msg.starts_with("unknown field") {
        let start = msg.find('`')? + 1;
        let end = start + msg[start..].find('`')?;
        return Some(msg[start..end].to_string());
    }
    None
}
