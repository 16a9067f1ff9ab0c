//! The console's only ways into the §9 flows: ending a call and reviewing an ended call run
//! the very code of the API endpoints, in-process, as the signed-in person. If those flows
//! move (e.g. to `src/terminations.rs`), only these two functions change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, Principal};
use crate::api::rejection::ApiPath;
use crate::api::terminations::{ReviewBody, TerminateBody};
use crate::domain::Provider;
use crate::state::AppState;

use super::session::Staff;

/// What ending a call came to.
#[derive(Clone, Debug)]
pub struct Ended {
    /// 201 (ended now), 200 (ended before by someone), 202 (kept locally: store down), 502.
    pub status: StatusCode,
    pub termination_id: Option<String>,
    /// `completed`, `already_ended`, `failed` (or `pending`).
    pub hangup_result: String,
}

/// End a call exactly as `POST /api/v1/calls/{provider}/{call_id}/terminate` does.
pub async fn end_call(
    state: &AppState,
    staff: &Staff,
    provider: Provider,
    call_id: &str,
    body: TerminateBody,
) -> Result<Ended, ApiError> {
    let response = crate::api::terminations::terminate(
        State(state.clone()),
        principal(staff),
        ApiPath((provider.as_str().to_owned(), call_id.to_owned())),
        ApiJson(body),
    )
    .await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map_err(|_| ApiError::Internal("could not read the end-call record".into()))?;
    let record: Value = serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::Internal("the end-call record was not JSON".into()))?;
    Ok(Ended {
        status,
        termination_id: record.get("id").and_then(Value::as_str).map(str::to_owned),
        hangup_result: record
            .pointer("/hangup/result")
            .and_then(Value::as_str)
            .unwrap_or("failed")
            .to_owned(),
    })
}

/// Review an ended call exactly as `POST /api/v1/terminations/{id}/review` does.
pub async fn review(
    state: &AppState,
    staff: &Staff,
    id: &str,
    body: ReviewBody,
) -> Result<(), ApiError> {
    let r = crate::api::terminations::review(
        State(state.clone()),
        principal(staff),
        ApiPath(id.to_owned()),
        ApiJson(body),
    )
    .await?;
    let status = r.into_response().status();
    if status.is_success() {
        Ok(())
    } else {
        Err(ApiError::Internal(format!("review answered {status}")))
    }
}

fn principal(staff: &Staff) -> Principal {
    Principal {
        name: staff.name.clone(),
        role: staff.role,
    }
}
