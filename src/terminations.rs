//! Ending a call and reviewing it (SPEC §9): the end-call flow, shared by the API, the outbox
//! worker (which finishes interrupted terminations) and any other front end (a console).
//!
//! A termination is claimed first — a row unique per `(provider, call_id)` with a provisional
//! hang-up state — and only the caller that created the row talks to the platform: it looks the
//! call up (for the caller), hangs up, links the caller's arrangement in force, then records the
//! outcome and enqueues the notification in one transaction. Every other attempt gets the same
//! record, after waiting briefly for a first attempt still in flight. The platform work runs in
//! its own task, so a request that times out or is dropped does not leave the termination
//! half-done. No HTTP here: callers map [`EndCallOutcome`] and [`TerminationError`] to their
//! own answers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{
    Arrangement, CallId, HangupResult, PhoneNumber, Provider, Review, ReviewOutcome, Termination,
    TerminationId, TerminationReason,
};
use crate::outbox::EVENT_TERMINATION_CREATED;
use crate::providers::{caller_number, CallControl, ProviderError};
use crate::state::AppState;
use crate::store::{Claim, NewNotification, StoreError, TerminationOutcome};

/// How long the claiming request owns a provisional termination; after that (its process
/// died) the outbox worker or a later attempt finishes it. Longer than the worst case of a
/// lookup plus a hang-up with the platform clients' retries.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// How often a second attempt looks at a first attempt still in flight.
const WAIT_POLL: Duration = Duration::from_millis(100);
/// The longest free-text notes accepted (characters).
pub const MAX_NOTES_CHARS: usize = 4000;
/// `warned_at` may be this far ahead of our clock (the agent's clock may run fast).
pub const WARNED_AT_SKEW: chrono::Duration = chrono::Duration::seconds(60);

// ---------------------------------------------------------------------------------------------
// The record's JSON shape (API answers and the notification payload)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HangupView {
    /// `completed`, `already_ended` or `failed` (`pending` only while the first press is
    /// still talking to the platform).
    #[schema(example = "completed")]
    pub result: String,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    /// `pending` or `reviewed`.
    pub status: String,
    pub outcome: Option<ReviewOutcome>,
    pub reviewer: Option<String>,
    pub notes: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// A termination record (SPEC §9).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TerminationView {
    #[schema(example = "trm_01JF3Z8W6Q4E1V7B2N5K9M0P3R")]
    pub id: String,
    #[schema(example = "twilio")]
    pub provider: String,
    pub call_id: String,
    /// The caller's number (E.164), or null when the platform did not say.
    pub caller: Option<String>,
    pub arrangement_id: Option<String>,
    pub customer_ref: Option<String>,
    /// The name of the API token that ended the call.
    pub agent: String,
    pub reason: TerminationReason,
    pub warning_given: bool,
    pub warned_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    pub terminated_at: DateTime<Utc>,
    pub hangup: HangupView,
    pub police_report_required: bool,
    pub review: ReviewView,
}

impl From<&Termination> for TerminationView {
    fn from(t: &Termination) -> Self {
        TerminationView {
            id: t.id.to_string(),
            provider: t.provider.as_str().into(),
            call_id: t.call_id.to_string(),
            caller: t.caller.as_ref().map(|c| c.to_string()),
            arrangement_id: t.arrangement_id.as_ref().map(|a| a.to_string()),
            customer_ref: t.customer_ref.clone(),
            agent: t.agent.clone(),
            reason: t.reason,
            warning_given: t.warning_given,
            warned_at: t.warned_at,
            notes: t.notes.clone(),
            terminated_at: t.terminated_at,
            hangup: HangupView {
                result: t.hangup.map_or("pending", HangupResult::as_str).into(),
                detail: t.hangup_detail.clone(),
            },
            police_report_required: t.reason.police_report_required(),
            review: match &t.review {
                None => ReviewView {
                    status: "pending".into(),
                    outcome: None,
                    reviewer: None,
                    notes: None,
                    reviewed_at: None,
                },
                Some(r) => ReviewView {
                    status: "reviewed".into(),
                    outcome: Some(r.outcome),
                    reviewer: Some(r.reviewer.clone()),
                    notes: r.notes.clone(),
                    reviewed_at: Some(r.reviewed_at),
                },
            },
        }
    }
}

/// The notification POSTed to `notifications.webhook_url`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TerminationNotification {
    /// `termination.created`
    pub event: String,
    /// The termination id: receivers deduplicate on it.
    pub id: String,
    pub termination: TerminationView,
}

// ---------------------------------------------------------------------------------------------
// The service's inputs, outcomes and errors
// ---------------------------------------------------------------------------------------------

/// A request to end a call. [`end_call`] refuses one that breaks a SPEC §9 rule
/// ([`EndCall::violations`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EndCall {
    pub provider: Provider,
    pub call_id: CallId,
    /// Who ends the call (the API token's name, or a person's name).
    pub agent: String,
    pub reason: TerminationReason,
    pub warning_given: bool,
    pub warned_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    /// When the call was ended (to the millisecond).
    pub at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// The SPEC §9 rules of a request to end a call
// ---------------------------------------------------------------------------------------------

/// A SPEC §9 rule that a request to end a call breaks: the field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleViolation {
    pub field: &'static str,
    pub message: String,
}

impl RuleViolation {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        RuleViolation {
            field,
            message: message.into(),
        }
    }
}

/// A call may be ended without a warning only for a threat of violence.
pub fn warning_rule(reason: TerminationReason, warning_given: bool) -> Option<RuleViolation> {
    (!warning_given && reason != TerminationReason::ThreatOfViolence).then(|| {
        RuleViolation::new(
            "warning_given",
            "a call may be ended without a warning only for threat_of_violence",
        )
    })
}

/// `warned_at` is not in the future (give or take the agent's clock).
pub fn warned_at_rule(warned_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<RuleViolation> {
    (warned_at > now + WARNED_AT_SKEW)
        .then(|| RuleViolation::new("warned_at", "must not be in the future"))
}

/// No warning, so no time of the warning.
pub fn warned_without_warning_rule(warning_given: bool) -> Option<RuleViolation> {
    (!warning_given)
        .then(|| RuleViolation::new("warned_at", "must not be given when warning_given is false"))
}

/// Notes are at most [`MAX_NOTES_CHARS`] characters.
pub fn notes_length_rule(notes: &str) -> Option<RuleViolation> {
    (notes.chars().count() > MAX_NOTES_CHARS).then(|| {
        RuleViolation::new(
            "notes",
            format!("must be at most {MAX_NOTES_CHARS} characters"),
        )
    })
}

/// `other` needs notes (blank notes are none).
pub fn notes_required_rule(
    reason: TerminationReason,
    notes: Option<&str>,
) -> Option<RuleViolation> {
    let blank = notes.is_none_or(|n| n.trim().is_empty());
    (reason == TerminationReason::Other && blank)
        .then(|| RuleViolation::new("notes", "are required when the reason is other"))
}

impl EndCall {
    /// Every SPEC §9 rule this request breaks, in field order (`at` is now), as the API
    /// reports them.
    pub fn violations(&self) -> Vec<RuleViolation> {
        let mut found: Vec<RuleViolation> = Vec::new();
        found.extend(warning_rule(self.reason, self.warning_given));
        if let Some(t) = self.warned_at {
            match warned_at_rule(t, self.at) {
                Some(v) => found.push(v),
                None => found.extend(warned_without_warning_rule(self.warning_given)),
            }
        }
        let notes = self.notes.as_deref();
        match notes.and_then(notes_length_rule) {
            Some(v) => found.push(v),
            None => found.extend(notes_required_rule(self.reason, notes)),
        }
        found
    }
}

/// What [`end_call`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum EndCallOutcome {
    /// This request ended the call (or found it already over on the platform) and recorded it.
    Ended(Termination),
    /// This request recorded the termination, but the platform could not hang up.
    NotEnded(Termination),
    /// The call had been ended before (a repeated press): the existing record.
    AlreadyRecorded(Termination),
    /// The store was down: the record is in the local spool, not yet in the store
    /// (`first`: this press hung up and spooled it; otherwise an earlier press did).
    Spooled {
        termination: Termination,
        first: bool,
    },
}

impl EndCallOutcome {
    pub fn termination(&self) -> &Termination {
        match self {
            EndCallOutcome::Ended(t)
            | EndCallOutcome::NotEnded(t)
            | EndCallOutcome::AlreadyRecorded(t)
            | EndCallOutcome::Spooled { termination: t, .. } => t,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TerminationError {
    /// The request breaks SPEC §9 rules: nothing was done.
    #[error("the request to end the call breaks {} rule(s)", .0.len())]
    Invalid(Vec<RuleViolation>),
    /// An earlier request is still ending this call; try again in a moment.
    #[error("this call is being ended by an earlier request; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("termination task failed: {0}")]
    Task(String),
}

// ---------------------------------------------------------------------------------------------
// The flow
// ---------------------------------------------------------------------------------------------

fn lease_end(from: DateTime<Utc>) -> DateTime<Utc> {
    from + chrono::Duration::from_std(CLAIM_LEASE).unwrap_or_default()
}

/// End a call: claim it, and either talk to the platform and record the outcome (this request
/// created the claim) or return the existing record once it is settled.
pub async fn end_call(
    state: &AppState,
    request: EndCall,
) -> Result<EndCallOutcome, TerminationError> {
    let violations = request.violations();
    if !violations.is_empty() {
        return Err(TerminationError::Invalid(violations));
    }
    // A press while this call's termination waits in the local spool: that record.
    match state.spool.find(request.provider, &request.call_id).await {
        Ok(Some(t)) => {
            return Ok(EndCallOutcome::Spooled {
                termination: t,
                first: false,
            })
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not read the termination spool"),
    }
    let claim = Termination {
        id: TerminationId::generate(),
        provider: request.provider,
        call_id: request.call_id,
        caller: None,
        arrangement_id: None,
        customer_ref: None,
        agent: request.agent,
        reason: request.reason,
        warning_given: request.warning_given,
        warned_at: request.warned_at,
        notes: request.notes,
        terminated_at: request.at,
        hangup: None,
        hangup_detail: None,
        claimed_until: lease_end(Utc::now()),
        review: None,
    };
    // The store is down (or too slow, or cannot write): end the call anyway (SPEC §11).
    let claimed = match tokio::time::timeout(
        crate::spool::store_wait(state),
        state.store.claim_termination(&claim),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not claim a termination in the store");
            return offline(state, claim).await;
        }
        Err(_) => {
            tracing::warn!("the store did not answer a termination claim in time");
            return offline(state, claim).await;
        }
    };
    match claimed {
        Claim::Created(t) => {
            let done = finish_detached(state, t).await?;
            Ok(if done.hangup == Some(HangupResult::Failed) {
                EndCallOutcome::NotEnded(done)
            } else {
                EndCallOutcome::Ended(done)
            })
        }
        Claim::Existing(t) => Ok(EndCallOutcome::AlreadyRecorded(settled(state, t).await?)),
    }
}

async fn offline(state: &AppState, claim: Termination) -> Result<EndCallOutcome, TerminationError> {
    let (termination, first) = crate::spool::end_call_offline(state, claim).await?;
    Ok(EndCallOutcome::Spooled { termination, first })
}

/// Record a manager's review, once: `StoreError::AlreadyReviewed` the second time,
/// `StoreError::NotFound` for an unknown id.
pub async fn review(
    state: &AppState,
    id: &TerminationId,
    review: &Review,
) -> Result<Termination, StoreError> {
    let t = state.store.review_termination(id, review).await?;
    tracing::info!(
        termination_id = %t.id,
        outcome = review.outcome.as_str(),
        "termination reviewed"
    );
    Ok(t)
}

/// A short description of a platform failure, safe to store and return (no URLs, no bodies).
fn failure_detail(e: &ProviderError) -> String {
    match e {
        ProviderError::Unreachable(_) => "the platform could not be reached".into(),
        ProviderError::Rejected { status, .. } => {
            format!("the platform refused the hang-up (HTTP {status})")
        }
        ProviderError::NotFound => "the platform does not know this call".into(),
    }
}

/// Who called: the platform's answer, else the shared decision log (Telnyx has no lookup;
/// another instance may have seen the call, and a call under an arrangement is logged).
async fn identify_caller(
    state: &AppState,
    control: &dyn CallControl,
    claimed: &Termination,
) -> Option<PhoneNumber> {
    let caller = match control.lookup_call(&claimed.call_id).await {
        Ok(Some(info)) => caller_number(&info.caller).cloned(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(
                provider = %claimed.provider,
                call_id = %claimed.call_id,
                error = %failure_detail(&e),
                "call lookup failed; the termination is recorded without the caller"
            );
            None
        }
    };
    match caller {
        Some(n) => Some(n),
        None => state
            .store
            .logged_caller(claimed.provider, &claimed.call_id)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(call_id = %claimed.call_id, error = %e, "decision-log lookup failed");
                None
            }),
    }
}

/// Ask the platform to hang up; a failure is recorded, with a safe description.
pub(crate) async fn hang_up(
    control: &dyn CallControl,
    claimed: &Termination,
) -> (HangupResult, Option<String>) {
    let (hangup, detail) = match control.hang_up(&claimed.call_id).await {
        Ok(result) => (result, None),
        Err(e) => {
            tracing::error!(
                provider = %claimed.provider,
                call_id = %claimed.call_id,
                error = %e,
                "hang-up failed"
            );
            (HangupResult::Failed, Some(failure_detail(&e)))
        }
    };
    metrics::counter!(
        "fairline_hangups_total",
        "provider" => claimed.provider.as_str(),
        "result" => hangup.as_str()
    )
    .increment(1);
    (hangup, detail)
}

/// The caller's arrangement in force when the call was ended, if any.
pub(crate) async fn arrangement_in_force(
    state: &AppState,
    caller: Option<&PhoneNumber>,
    at: DateTime<Utc>,
) -> Option<Arrangement> {
    let number = caller?;
    match state.store.arrangements_for_number(number).await {
        Ok(list) => list
            .into_iter()
            .filter(|a| a.in_force_at(at))
            .max_by_key(|a| a.starts_at),
        Err(e) => {
            tracing::warn!(
                caller = %number.masked(),
                error = %e,
                "could not look up the caller's arrangement for a termination"
            );
            None
        }
    }
}

/// The notification of a completed termination, when a receiver is configured.
pub(crate) fn notification_for(
    state: &AppState,
    claimed: &Termination,
    outcome: &TerminationOutcome,
) -> Result<Option<NewNotification>, StoreError> {
    match state.config.notifications.webhook_url.as_deref() {
        Some(url) if !url.is_empty() => {}
        _ => return Ok(None),
    }
    let mut done = claimed.clone();
    done.caller = outcome.caller.clone();
    done.arrangement_id = outcome.arrangement_id.clone();
    done.customer_ref = outcome.customer_ref.clone();
    done.hangup = Some(outcome.hangup);
    done.hangup_detail = outcome.hangup_detail.clone();
    let body = TerminationNotification {
        event: EVENT_TERMINATION_CREATED.into(),
        id: done.id.to_string(),
        termination: TerminationView::from(&done),
    };
    let payload = serde_json::to_string(&body)
        .map_err(|e| StoreError::Internal(format!("encoding a notification: {e}")))?;
    Ok(Some(NewNotification {
        event: EVENT_TERMINATION_CREATED.into(),
        payload,
        due_at: Utc::now(),
    }))
}

/// Talk to the platform for a claimed (provisional) termination and record the outcome with
/// its notification. Only the owner of the claim calls this.
pub async fn finish(state: &AppState, claimed: Termination) -> Result<Termination, StoreError> {
    let control = state.call_control(claimed.provider);
    let caller = identify_caller(state, control.as_ref(), &claimed).await;
    let (hangup, hangup_detail) = hang_up(control.as_ref(), &claimed).await;
    let arrangement = arrangement_in_force(state, caller.as_ref(), claimed.terminated_at).await;
    let outcome = TerminationOutcome {
        caller,
        arrangement_id: arrangement.as_ref().map(|a| a.id.clone()),
        customer_ref: arrangement.map(|a| a.customer_ref),
        hangup,
        hangup_detail,
    };
    let notification = notification_for(state, &claimed, &outcome)?;
    let stored = state
        .store
        .complete_termination(&claimed.id, &outcome, notification.as_ref())
        .await?;
    if notification.is_some() {
        state.outbox.wake();
    }
    tracing::info!(
        termination_id = %stored.id,
        provider = %stored.provider,
        call_id = %stored.call_id,
        caller = %stored.caller.as_ref().map_or_else(|| "unknown".to_string(), |c| c.masked()),
        reason = stored.reason.as_str(),
        hangup = hangup.as_str(),
        "call ended by staff"
    );
    Ok(stored)
}

/// Run [`finish`] in its own task, so that it completes even if the request is dropped.
async fn finish_detached(
    state: &AppState,
    claimed: Termination,
) -> Result<Termination, TerminationError> {
    let s = state.clone();
    match tokio::spawn(async move { finish(&s, claimed).await }).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(TerminationError::Task(e.to_string())),
    }
}

/// Finish terminations left provisional past their lease (their process stopped half-way):
/// look the call up and hang up again (a call already over is `already_ended`), record, and
/// enqueue the notification. Returns how many were finished here.
pub async fn recover_stale(state: &AppState) -> Result<usize, StoreError> {
    let now = Utc::now();
    let mut finished = 0;
    for t in state.store.stale_terminations(now, 10).await? {
        // A claim abandoned when the store stopped answering, whose call this instance
        // ended and spooled: the spool's drain completes it, with no second hang-up.
        if matches!(state.spool.find(t.provider, &t.call_id).await, Ok(Some(_))) {
            continue;
        }
        if state
            .store
            .lease_stale_termination(&t.id, now, lease_end(now))
            .await?
        {
            tracing::warn!(
                termination_id = %t.id,
                provider = %t.provider,
                call_id = %t.call_id,
                "finishing a termination interrupted before its hang-up was recorded"
            );
            finish(state, t).await?;
            finished += 1;
        }
    }
    Ok(finished)
}

/// An attempt that did not create the row: wait for the first attempt to finish, briefly.
async fn settled(state: &AppState, mut t: Termination) -> Result<Termination, TerminationError> {
    let budget = state
        .config
        .server
        .request_timeout
        .saturating_sub(Duration::from_millis(500))
        .max(Duration::from_millis(500));
    let deadline = tokio::time::Instant::now() + budget;
    while t.is_provisional() {
        let now = Utc::now();
        if t.claimed_until < now {
            // Its owner is gone: take it over, if nobody else does first.
            if state
                .store
                .lease_stale_termination(&t.id, now, lease_end(now))
                .await?
            {
                return finish_detached(state, t).await;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TerminationError::Busy);
        }
        tokio::time::sleep(WAIT_POLL).await;
        t = state
            .store
            .get_termination(&t.id)
            .await?
            .ok_or_else(|| StoreError::Internal("a claimed termination vanished".into()))?;
    }
    Ok(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use async_trait::async_trait;
    use chrono::SubsecRound;

    use super::*;
    use crate::providers::CallInfo;
    use crate::state::Overrides;

    /// A platform that counts hang-ups and answers each with `answer` (`None`: unreachable).
    struct FakePlatform {
        answer: Option<HangupResult>,
        hangups: AtomicUsize,
    }

    #[async_trait]
    impl CallControl for FakePlatform {
        fn provider(&self) -> Provider {
            Provider::Twilio
        }
        async fn hang_up(&self, _call_id: &CallId) -> Result<HangupResult, ProviderError> {
            self.hangups.fetch_add(1, Ordering::SeqCst);
            self.answer
                .ok_or_else(|| ProviderError::Unreachable("connection refused".into()))
        }
        async fn lookup_call(&self, _call_id: &CallId) -> Result<Option<CallInfo>, ProviderError> {
            Ok(None)
        }
    }

    async fn state_with(
        dir: &tempfile::TempDir,
        answer: Option<HangupResult>,
    ) -> (AppState, Arc<FakePlatform>) {
        let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
        let config = crate::config::from_sources(
            include_str!("../config/default.toml"),
            &[("FAIRLINE_STORAGE__URL".to_string(), url)],
        )
        .unwrap();
        let platform = Arc::new(FakePlatform {
            answer,
            hangups: AtomicUsize::new(0),
        });
        let overrides = Overrides {
            twilio: Some(platform.clone()),
            ..Overrides::default()
        };
        (AppState::build(config, overrides).await.unwrap(), platform)
    }

    fn request(call: &str) -> EndCall {
        EndCall {
            provider: Provider::Twilio,
            call_id: CallId::parse(call).unwrap(),
            agent: "Alice Jones".into(),
            reason: TerminationReason::Swearing,
            warning_given: true,
            warned_at: None,
            notes: Some("kept swearing after a warning".into()),
            at: Utc::now().trunc_subsecs(3),
        }
    }

    #[tokio::test]
    async fn a_front_end_ends_a_call_once_without_http() {
        let dir = tempfile::tempdir().unwrap();
        let (state, platform) = state_with(&dir, Some(HangupResult::Completed)).await;
        let first = end_call(&state, request("CA01")).await.unwrap();
        let EndCallOutcome::Ended(t) = &first else {
            panic!("expected Ended, got {first:?}");
        };
        assert_eq!(t.agent, "Alice Jones");
        assert_eq!(t.hangup, Some(HangupResult::Completed));
        assert_eq!(t.notes.as_deref(), Some("kept swearing after a warning"));

        let again = end_call(&state, request("CA01")).await.unwrap();
        assert_eq!(again, EndCallOutcome::AlreadyRecorded(t.clone()));
        assert_eq!(platform.hangups.load(Ordering::SeqCst), 1);
        assert_eq!(
            state.store.get_termination(&t.id).await.unwrap().as_ref(),
            Some(t)
        );
    }

    #[tokio::test]
    async fn a_request_breaking_the_rules_is_refused_before_the_platform_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (state, platform) = state_with(&dir, Some(HangupResult::Completed)).await;
        let mut bad = request("CA03");
        bad.warning_given = false;
        bad.warned_at = Some(bad.at);
        bad.reason = TerminationReason::Other;
        bad.notes = Some("   ".into());
        let Err(TerminationError::Invalid(found)) = end_call(&state, bad).await else {
            panic!("expected Invalid");
        };
        let fields: Vec<&str> = found.iter().map(|v| v.field).collect();
        assert_eq!(fields, ["warning_given", "warned_at", "notes"]);
        assert_eq!(platform.hangups.load(Ordering::SeqCst), 0);
        let call = CallId::parse("CA03").unwrap();
        let stored = state.store.find_termination(Provider::Twilio, &call).await;
        assert_eq!(stored.unwrap(), None);
    }

    #[test]
    fn the_rules_allow_a_threat_without_warning_and_limit_notes() {
        let mut r = request("CA04");
        r.reason = TerminationReason::ThreatOfViolence;
        r.warning_given = false;
        assert_eq!(r.violations(), []);
        r.warned_at = Some(r.at + chrono::Duration::minutes(5));
        r.notes = Some("x".repeat(MAX_NOTES_CHARS + 1));
        let fields: Vec<&str> = r.violations().iter().map(|v| v.field).collect();
        assert_eq!(fields, ["warned_at", "notes"]);
        r.warned_at = Some(r.at + WARNED_AT_SKEW);
        r.notes = Some("é".repeat(MAX_NOTES_CHARS));
        let found = r.violations();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "must not be given when warning_given is false"
        );
    }

    #[tokio::test]
    async fn a_failed_hang_up_is_recorded_as_not_ended() {
        let dir = tempfile::tempdir().unwrap();
        let (state, platform) = state_with(&dir, None).await;
        let outcome = end_call(&state, request("CA02")).await.unwrap();
        let EndCallOutcome::NotEnded(t) = &outcome else {
            panic!("expected NotEnded, got {outcome:?}");
        };
        assert_eq!(t.hangup, Some(HangupResult::Failed));
        assert_eq!(
            t.hangup_detail.as_deref(),
            Some("the platform could not be reached")
        );
        assert_eq!(platform.hangups.load(Ordering::SeqCst), 1);
    }
}
