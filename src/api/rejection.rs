//! Every error answer of `/api/v1` is RFC 9457 problem+json, including those that axum's own
//! extractors and routing produce: query strings and path segments that cannot be read, a
//! method the path does not have (405), and answers made by tower layers in front of the
//! handlers (the body limit's 413).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::{ApiError, PROBLEM_JSON};

/// Query parameters, rejected as a 400 problem when the query string cannot be read into `T`
/// (a non-integer `limit`, a repeated parameter, bad percent-encoding).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters, rejected as a 400 problem when a segment cannot be read (not UTF-8).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::BadRequest(format!("the query string is invalid: {}", e.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        match e {
            PathRejection::FailedToDeserializePathParams(inner) => {
                ApiError::BadRequest(format!("the path is invalid: {}", inner.body_text()))
            }
            // A handler mounted without its path parameters: a bug, not the client's fault.
            other => ApiError::Internal(other.body_text()),
        }
    }
}

/// The answer for a method that the path does not have (the `Allow` header is added by the
/// router).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Middleware in front of the whole app: an error answer under `/api/` that is not already a
/// problem document (made by a layer such as the body limit) becomes one with the same status.
pub async fn problem_json_errors(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let head = req.method() == Method::HEAD;
    let resp = next.run(req).await;
    let status = resp.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    // 502 from the end-call endpoint carries the termination record (SPEC §9): keep it.
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_problem || is_json || head {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    let replacement = ApiError::from_status(status).into_response();
    let (new_parts, body) = replacement.into_parts();
    parts.status = new_parts.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, body)
}

impl ApiError {
    /// The problem for a status produced outside the handlers.
    pub fn from_status(status: StatusCode) -> ApiError {
        match status {
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::FORBIDDEN => ApiError::Forbidden,
            StatusCode::NOT_FOUND => ApiError::NotFound("no such endpoint".into()),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable,
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ApiError::Timeout,
            s if s.is_client_error() => ApiError::BadRequest(
                s.canonical_reason()
                    .unwrap_or("the request was refused")
                    .to_string(),
            ),
            s => ApiError::Internal(format!("a layer answered {s} without a problem document")),
        }
    }
}
