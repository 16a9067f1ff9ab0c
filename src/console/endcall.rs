//! The console's ways into the §9 flows: ending a call and reviewing an ended call go through
//! the same services the API endpoints use ([`crate::terminations::end_call`] and
//! [`crate::terminations::review`]), as the signed-in person. No HTTP here.

use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::{CallId, HangupResult, Provider, Review, ReviewOutcome, TerminationId};
use crate::state::AppState;
use crate::store::StoreError;
use crate::terminations::{EndCall, EndCallOutcome, RuleViolation, TerminationError};

use super::session::Staff;

/// What the agent said about the call, checked in the form's words.
#[derive(Clone, Debug, PartialEq)]
pub struct EndDetails {
    pub reason: crate::domain::TerminationReason,
    pub warning_given: bool,
    pub warned_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
}

/// What ending a call came to.
#[derive(Clone, Debug)]
pub struct Ended {
    pub termination_id: String,
    /// `completed`, `already_ended` or `failed`.
    pub hangup_result: &'static str,
}

/// Why a call could not be ended.
#[derive(Debug)]
pub enum EndError {
    /// The §9 rules refused the request: nothing was done.
    Invalid(Vec<RuleViolation>),
    /// Another press is ending this call right now.
    Busy,
    /// Something else failed (the store, the task).
    Failed(String),
}

/// End a call through the §9 service, as `POST /api/v1/calls/{provider}/{call_id}/terminate`
/// does.
pub async fn end_call(
    state: &AppState,
    staff: &Staff,
    provider: Provider,
    call_id: CallId,
    details: EndDetails,
) -> Result<Ended, EndError> {
    let request = EndCall {
        provider,
        call_id,
        agent: staff.name.clone(),
        reason: details.reason,
        warning_given: details.warning_given,
        warned_at: details.warned_at,
        notes: details.notes,
        at: state.clock.now().trunc_subsecs(3),
    };
    let outcome = crate::terminations::end_call(state, request)
        .await
        .map_err(|e| match e {
            TerminationError::Invalid(v) => EndError::Invalid(v),
            TerminationError::Busy => EndError::Busy,
            other => EndError::Failed(other.to_string()),
        })?;
    let t = outcome.termination();
    let hangup = match &outcome {
        EndCallOutcome::NotEnded(_) => HangupResult::Failed,
        _ => t.hangup.unwrap_or(HangupResult::Failed),
    };
    Ok(Ended {
        termination_id: t.id.to_string(),
        hangup_result: hangup.as_str(),
    })
}

/// Why a review was not recorded.
#[derive(Debug)]
pub enum ReviewError {
    AlreadyReviewed,
    NotFound,
    Failed(String),
}

/// Review an ended call through the §9 service, as `POST /api/v1/terminations/{id}/review`
/// does (once only).
pub async fn review(
    state: &AppState,
    staff: &Staff,
    id: &TerminationId,
    outcome: ReviewOutcome,
    notes: Option<String>,
) -> Result<(), ReviewError> {
    let review = Review {
        outcome,
        reviewer: staff.name.clone(),
        notes,
        reviewed_at: state.clock.now().trunc_subsecs(3),
    };
    match crate::terminations::review(state, id, &review).await {
        Ok(_) => Ok(()),
        Err(StoreError::AlreadyReviewed) => Err(ReviewError::AlreadyReviewed),
        Err(StoreError::NotFound) => Err(ReviewError::NotFound),
        Err(e) => Err(ReviewError::Failed(e.to_string())),
    }
}
