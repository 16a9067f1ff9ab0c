//! Ended calls (terminations, SPEC §9) and the durable notification outbox.
//!
//! A termination is *claimed* first: inserted with a provisional hang-up state under a unique
//! `(provider, call_id)` constraint, so that of any number of presses for one call, on any
//! number of instances, exactly one creates the row and talks to the platform. That request
//! then *completes* it (hang-up result, caller, arrangement) and enqueues its notification in
//! one transaction. A provisional row carries a lease (`claimed_until`); once the lease has run
//! out (the claiming process died), anyone may take it over with [`TerminationStore::lease_stale_termination`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{
    ArrangementId, CallId, HangupResult, PhoneNumber, Provider, Review, ReviewOutcome, Termination,
    TerminationId, TerminationReason,
};

/// The result of [`TerminationStore::claim_termination`].
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This request created the row: it alone talks to the platform.
    Created(Termination),
    /// A row for `(provider, call_id)` existed already (possibly still provisional).
    Existing(Termination),
}

/// What the claiming request learnt, written in one transaction with the notification.
#[derive(Clone, Debug, PartialEq)]
pub struct TerminationOutcome {
    pub caller: Option<PhoneNumber>,
    pub arrangement_id: Option<ArrangementId>,
    pub customer_ref: Option<String>,
    pub hangup: HangupResult,
    pub hangup_detail: Option<String>,
}

/// A notification to enqueue with a completed termination.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotification {
    /// e.g. `termination.created`.
    pub event: String,
    /// The JSON body to POST.
    pub payload: String,
    pub due_at: DateTime<Utc>,
}

/// A notification taken from the outbox for delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub termination_id: TerminationId,
    pub event: String,
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewStatus {
    Pending,
    Reviewed,
}

#[derive(Clone, Debug, Default)]
pub struct TerminationFilter {
    pub status: Option<ReviewStatus>,
    /// Terminated at or after.
    pub since: Option<DateTime<Utc>>,
    /// At most this many, newest first (the store caps it at 1000).
    pub limit: u32,
    /// Paging: only terminations listed after this one (older, in the list's order).
    pub before: Option<TerminationId>,
}

#[async_trait]
pub trait TerminationStore: Send + Sync + 'static {
    /// Insert `t` (provisional: `t.hangup` is `None`) unless a termination of
    /// `(t.provider, t.call_id)` exists; then return that one instead. Durable on return.
    async fn claim_termination(&self, t: &Termination) -> Result<Claim, StoreError>;

    /// Take over a provisional termination whose lease ran out before `now`: on success its
    /// lease runs to `until` and `true` is returned; `false` when it is not provisional or
    /// someone else holds a live lease.
    async fn lease_stale_termination(
        &self,
        id: &TerminationId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Provisional terminations whose lease ran out before `now`, oldest first.
    async fn stale_terminations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Termination>, StoreError>;

    /// In one transaction: record the outcome of a provisional termination and, when given,
    /// enqueue its notification. A termination that is no longer provisional is left alone
    /// (no notification is enqueued). Returns the stored record; `NotFound` for an unknown id.
    async fn complete_termination(
        &self,
        id: &TerminationId,
        outcome: &TerminationOutcome,
        notification: Option<&NewNotification>,
    ) -> Result<Termination, StoreError>;

    async fn get_termination(&self, id: &TerminationId) -> Result<Option<Termination>, StoreError>;

    async fn find_termination(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<Termination>, StoreError>;

    /// Newest first (by `terminated_at`, then id).
    async fn list_terminations(
        &self,
        filter: &TerminationFilter,
    ) -> Result<Vec<Termination>, StoreError>;

    /// Record a review, once: `AlreadyReviewed` the second time, `NotFound` for an unknown id.
    async fn review_termination(
        &self,
        id: &TerminationId,
        review: &Review,
    ) -> Result<Termination, StoreError>;

    /// Delete **reviewed** terminations (and their notifications) terminated before `before`;
    /// returns how many terminations were deleted. Pending ones are always kept.
    async fn purge_reviewed_terminations(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Take up to `limit` undelivered notifications due at `now` and not leased by another
    /// worker, leasing them until `lease_until` (so no other worker takes them meanwhile).
    async fn take_due_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError>;

    /// The receiver accepted the notification.
    async fn notification_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// A delivery attempt failed: count it, release the lease, retry at `retry_at`.
    async fn notification_failed(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Undelivered notifications.
    async fn outbox_depth(&self) -> Result<u64, StoreError>;

    /// Called once when this process starts its outbox worker. A single-instance store
    /// (SQLite) releases every outbox lease, and the claims of terminations made before
    /// `started_at`: whoever held them was an earlier run of this process. A shared store
    /// (PostgreSQL) does nothing: leases run out on their own.
    async fn release_leases_at_startup(&self, started_at: DateTime<Utc>) -> Result<(), StoreError>;
}

/// The stored name of a hang-up state; `pending` while provisional.
pub(crate) fn hangup_str(h: Option<HangupResult>) -> &'static str {
    match h {
        None => "pending",
        Some(r) => r.as_str(),
    }
}

fn hangup_from(s: &str) -> Result<Option<HangupResult>, StoreError> {
    match s {
        "pending" => Ok(None),
        "completed" => Ok(Some(HangupResult::Completed)),
        "already_ended" => Ok(Some(HangupResult::AlreadyEnded)),
        "failed" => Ok(Some(HangupResult::Failed)),
        _ => Err(StoreError::Internal("decoding a hang-up result".into())),
    }
}

/// A termination row, as both backends read it.
pub(crate) struct RawTermination {
    pub id: String,
    pub provider: String,
    pub call_id: String,
    pub caller: Option<String>,
    pub arrangement_id: Option<String>,
    pub customer_ref: Option<String>,
    pub agent: String,
    pub reason: String,
    pub warning_given: bool,
    pub warned_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    pub terminated_at: DateTime<Utc>,
    pub hangup_result: String,
    pub hangup_detail: Option<String>,
    pub claimed_until: DateTime<Utc>,
    pub review_outcome: Option<String>,
    pub reviewer: Option<String>,
    pub review_notes: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

impl RawTermination {
    pub fn into_domain(self) -> Result<Termination, StoreError> {
        let bad = |what: &str| StoreError::Internal(format!("decoding a termination's {what}"));
        let review = match (self.review_outcome, self.reviewed_at) {
            (Some(o), Some(at)) => Some(Review {
                outcome: ReviewOutcome::parse(&o).ok_or_else(|| bad("review outcome"))?,
                reviewer: self.reviewer.unwrap_or_default(),
                notes: self.review_notes,
                reviewed_at: at,
            }),
            _ => None,
        };
        Ok(Termination {
            id: TerminationId::parse(&self.id).map_err(|_| bad("id"))?,
            provider: self.provider.parse().map_err(|_| bad("provider"))?,
            call_id: CallId::parse(&self.call_id).map_err(|_| bad("call id"))?,
            caller: self
                .caller
                .map(|c| PhoneNumber::parse(&c))
                .transpose()
                .map_err(|_| bad("caller"))?,
            arrangement_id: self
                .arrangement_id
                .map(|a| ArrangementId::parse(&a))
                .transpose()
                .map_err(|_| bad("arrangement id"))?,
            customer_ref: self.customer_ref,
            agent: self.agent,
            reason: TerminationReason::parse(&self.reason).ok_or_else(|| bad("reason"))?,
            warning_given: self.warning_given,
            warned_at: self.warned_at,
            notes: self.notes,
            terminated_at: self.terminated_at,
            hangup: hangup_from(&self.hangup_result)?,
            hangup_detail: self.hangup_detail,
            claimed_until: self.claimed_until,
            review,
        })
    }
}
