//! Reviews and appeals of arrangements (SPEC §13): the records, the storage trait, and the SQL
//! text both backends share (`$N` placeholders; SQLite binds instants as milliseconds and dates
//! as text, PostgreSQL as `TIMESTAMPTZ` / `DATE`).
//!
//! Every write here changes the arrangement in the same transaction as the record: it bumps the
//! version, writes a history entry and (PostgreSQL) notifies the other instances.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::domain::{AppealId, Arrangement, ArrangementId, ReviewId};

/// What a review decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// The rules stay; the next review is due on `next_review_due`.
    Continue,
    /// The rules are to change (the change itself is made with PUT).
    Vary,
    /// The rules end now: the arrangement is revoked.
    End,
}

impl ReviewDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Continue => "continue",
            ReviewDecision::Vary => "vary",
            ReviewDecision::End => "end",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "continue" => Some(ReviewDecision::Continue),
            "vary" => Some(ReviewDecision::Vary),
            "end" => Some(ReviewDecision::End),
            _ => None,
        }
    }
}

/// A review of an arrangement, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrangementReview {
    pub id: ReviewId,
    pub arrangement_id: ArrangementId,
    /// The arrangement's version this review made.
    pub arrangement_version: i64,
    pub outcome: ReviewDecision,
    pub notes: Option<String>,
    pub next_review_due: Option<NaiveDate>,
    pub reviewer: String,
    pub reviewed_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppealStatus {
    Open,
    Decided,
}

impl AppealStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppealStatus::Open => "open",
            AppealStatus::Decided => "decided",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(AppealStatus::Open),
            "decided" => Some(AppealStatus::Decided),
            _ => None,
        }
    }
}

/// What an appeal decision found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppealOutcome {
    /// The appeal succeeds: the arrangement is revoked.
    Upheld,
    Dismissed,
    /// The rules are to change (made with PUT).
    Varied,
}

impl AppealOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AppealOutcome::Upheld => "upheld",
            AppealOutcome::Dismissed => "dismissed",
            AppealOutcome::Varied => "varied",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "upheld" => Some(AppealOutcome::Upheld),
            "dismissed" => Some(AppealOutcome::Dismissed),
            "varied" => Some(AppealOutcome::Varied),
            _ => None,
        }
    }
}

/// The decision on an appeal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppealDecision {
    pub outcome: AppealOutcome,
    /// Who decided (free text, e.g. a post), as the request said.
    pub decided_by: String,
    pub notes: Option<String>,
    /// The API token that recorded the decision.
    pub recorded_by: String,
    pub decided_at: DateTime<Utc>,
}

/// An appeal against an arrangement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Appeal {
    pub id: AppealId,
    pub arrangement_id: ArrangementId,
    pub received_at: DateTime<Utc>,
    pub grounds: String,
    /// The API token that recorded the appeal.
    pub recorded_by: String,
    pub created_at: DateTime<Utc>,
    pub decision: Option<AppealDecision>,
}

impl Appeal {
    pub fn status(&self) -> AppealStatus {
        if self.decision.is_some() {
            AppealStatus::Decided
        } else {
            AppealStatus::Open
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The arrangement has been revoked: it can no longer be reviewed or appealed.
    #[error("the arrangement is revoked")]
    Revoked,
    /// The appeal has been decided already (decisions are made once).
    #[error("the appeal has already been decided")]
    AlreadyDecided,
}

#[async_trait]
pub trait LifecycleStore: Send + Sync + 'static {
    /// Record a review (its `arrangement_version` is filled in) and change the arrangement in
    /// one transaction: `continue` sets `review_due` to `next_review_due`, `end` revokes at
    /// `reviewed_at` with `end_reason`; every outcome makes a new version (`reviewed`).
    /// `NotFound`, `Revoked`.
    async fn record_review(
        &self,
        review: &ArrangementReview,
        end_reason: &str,
    ) -> Result<(ArrangementReview, Arrangement), LifecycleError>;

    /// The reviews of an arrangement, oldest first (`NotFound` for an unknown arrangement).
    async fn list_reviews(
        &self,
        arrangement_id: &ArrangementId,
    ) -> Result<Vec<ArrangementReview>, StoreError>;

    /// Record an appeal (open) and a new version of the arrangement (`appealed`), stamped
    /// `appeal.created_at`. `NotFound`, `Revoked`.
    async fn record_appeal(&self, appeal: &Appeal)
        -> Result<(Appeal, Arrangement), LifecycleError>;

    /// Decide an open appeal, once, and make a new version of its arrangement
    /// (`appeal_decided`); `upheld` revokes the arrangement with `revoke_reason` (unless it
    /// is revoked already). `NotFound`, `AlreadyDecided`.
    async fn decide_appeal(
        &self,
        id: &AppealId,
        decision: &AppealDecision,
        revoke_reason: &str,
    ) -> Result<(Appeal, Arrangement), LifecycleError>;

    async fn get_appeal(&self, id: &AppealId) -> Result<Option<Appeal>, StoreError>;

    /// Appeals, oldest first, optionally only those with `status`, at most `limit`.
    async fn list_appeals(
        &self,
        status: Option<AppealStatus>,
        arrangement_id: Option<&ArrangementId>,
        limit: u32,
    ) -> Result<Vec<Appeal>, StoreError>;

    /// Queue a notice unless one with the same `key` was ever queued (by any instance):
    /// `true` when this call queued it.
    async fn queue_notice(&self, notice: &NewNotice) -> Result<bool, StoreError>;

    /// Lease up to `limit` notices due at `now` until `lease_until`, oldest first.
    async fn take_due_notices(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notice>, StoreError>;

    async fn notice_delivered(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    async fn notice_failed(
        &self,
        id: &str,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Every notice queued (delivered or not), oldest first, at most `limit`.
    async fn list_notices(&self, limit: u32) -> Result<Vec<Notice>, StoreError>;

    /// Notices not delivered yet (part of the outbox depth).
    async fn pending_notices(&self) -> Result<u64, StoreError>;
}

/// A notice to queue (SPEC §13).
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotice {
    /// `ntc_…`; also the `webhook-id` and `Idempotency-Key` of every delivery attempt.
    pub id: String,
    /// Unique per event and arrangement version (or appeal): `event:arr_…:vN`.
    pub key: String,
    pub event: String,
    pub arrangement_id: ArrangementId,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

/// A queued notice.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub id: String,
    pub key: String,
    pub event: String,
    pub arrangement_id: String,
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: u32,
    pub delivered_at: Option<DateTime<Utc>>,
}

pub(crate) const INSERT_NOTICE: &str = "INSERT INTO notices \
    (id, notice_key, event, arrangement_id, payload, next_attempt_at, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (notice_key) DO NOTHING";

pub(crate) const NOTICE_COLUMNS: &str =
    "id, notice_key, event, arrangement_id, payload, attempts, delivered_at";

pub(crate) const NOTICE_DELIVERED: &str =
    "UPDATE notices SET delivered_at = $1, leased_until = NULL WHERE id = $2";

pub(crate) const NOTICE_FAILED: &str = "UPDATE notices SET attempts = attempts + 1, \
    next_attempt_at = $1, leased_until = NULL, last_error = $2 WHERE id = $3";

pub(crate) const PENDING_NOTICES: &str = "SELECT COUNT(*) FROM notices WHERE delivered_at IS NULL";

pub(crate) fn list_notices_sql() -> String {
    format!("SELECT {NOTICE_COLUMNS} FROM notices ORDER BY created_at, id LIMIT $1")
}

// ---------------------------------------------------------------------------------------------
// SQL text shared by both backends
// ---------------------------------------------------------------------------------------------

pub(crate) const INSERT_REVIEW: &str = "INSERT INTO arrangement_reviews \
    (id, arrangement_id, arrangement_version, outcome, notes, next_review_due, reviewer, reviewed_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub(crate) const SELECT_REVIEWS: &str = "SELECT id, arrangement_id, arrangement_version, outcome, \
    notes, next_review_due, reviewer, reviewed_at FROM arrangement_reviews \
    WHERE arrangement_id = $1 ORDER BY reviewed_at, id";

pub(crate) const ARRANGEMENT_EXISTS: &str = "SELECT id FROM arrangements WHERE id = $1";

pub(crate) const INSERT_APPEAL: &str = "INSERT INTO appeals \
    (id, arrangement_id, received_at, grounds, status, recorded_by, created_at) \
    VALUES ($1, $2, $3, $4, 'open', $5, $6)";

pub(crate) const APPEAL_COLUMNS: &str = "id, arrangement_id, received_at, grounds, recorded_by, \
    created_at, outcome, decided_by, decision_notes, decision_recorded_by, decided_at";

pub(crate) fn appeal_sql() -> String {
    format!("SELECT {APPEAL_COLUMNS} FROM appeals WHERE id = $1")
}

/// `$1` status or NULL, `$2` arrangement id or NULL, `$3` limit.
pub(crate) fn list_appeals_sql() -> String {
    format!(
        "SELECT {APPEAL_COLUMNS} FROM appeals \
         WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR arrangement_id = $2) \
         ORDER BY created_at, id LIMIT $3"
    )
}

/// Decide an appeal if it is still open; no row changed means it was decided already.
pub(crate) const DECIDE_APPEAL: &str = "UPDATE appeals SET status = 'decided', outcome = $2, \
    decided_by = $3, decision_notes = $4, decision_recorded_by = $5, decided_at = $6 \
    WHERE id = $1 AND status = 'open'";

/// An appeal row as read from either backend, before parsing.
pub(crate) struct RawAppeal {
    pub id: String,
    pub arrangement_id: String,
    pub received_at: DateTime<Utc>,
    pub grounds: String,
    pub recorded_by: String,
    pub created_at: DateTime<Utc>,
    pub outcome: Option<String>,
    pub decided_by: Option<String>,
    pub decision_notes: Option<String>,
    pub decision_recorded_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

impl RawAppeal {
    pub fn into_domain(self) -> Result<Appeal, StoreError> {
        let bad = |what: &str| StoreError::Internal(format!("decoding appeal {what}"));
        let decision = match (self.outcome, self.decided_at) {
            (Some(outcome), Some(decided_at)) => Some(AppealDecision {
                outcome: AppealOutcome::parse(&outcome).ok_or_else(|| bad("outcome"))?,
                decided_by: self.decided_by.unwrap_or_default(),
                notes: self.decision_notes,
                recorded_by: self.decision_recorded_by.unwrap_or_default(),
                decided_at,
            }),
            _ => None,
        };
        Ok(Appeal {
            id: AppealId::parse(&self.id).map_err(|_| bad("id"))?,
            arrangement_id: ArrangementId::parse(&self.arrangement_id)
                .map_err(|_| bad("arrangement_id"))?,
            received_at: self.received_at,
            grounds: self.grounds,
            recorded_by: self.recorded_by,
            created_at: self.created_at,
            decision,
        })
    }
}

/// A review row as read from either backend, before parsing.
pub(crate) struct RawReview {
    pub id: String,
    pub arrangement_id: String,
    pub arrangement_version: i64,
    pub outcome: String,
    pub notes: Option<String>,
    pub next_review_due: Option<NaiveDate>,
    pub reviewer: String,
    pub reviewed_at: DateTime<Utc>,
}

impl RawReview {
    pub fn into_domain(self) -> Result<ArrangementReview, StoreError> {
        let bad = |what: &str| StoreError::Internal(format!("decoding review {what}"));
        Ok(ArrangementReview {
            id: ReviewId::parse(&self.id).map_err(|_| bad("id"))?,
            arrangement_id: ArrangementId::parse(&self.arrangement_id)
                .map_err(|_| bad("arrangement_id"))?,
            arrangement_version: self.arrangement_version,
            outcome: ReviewDecision::parse(&self.outcome).ok_or_else(|| bad("outcome"))?,
            notes: self.notes,
            next_review_due: self.next_review_due,
            reviewer: self.reviewer,
            reviewed_at: self.reviewed_at,
        })
    }
}

/// The arrangement after a review: a new version stamped `review.reviewed_at`.
pub(crate) fn apply_review(
    current: &Arrangement,
    review: &ArrangementReview,
    end_reason: &str,
) -> Arrangement {
    let at = super::common::trunc(review.reviewed_at);
    let mut a = current.clone();
    a.version = current.version + 1;
    a.updated_at = at;
    match review.outcome {
        ReviewDecision::Continue => {
            if let Some(d) = review.next_review_due {
                a.review_due = d;
            }
        }
        ReviewDecision::Vary => {}
        ReviewDecision::End => {
            a.revoked_at = Some(at);
            a.revoked_reason = Some(end_reason.to_owned());
        }
    }
    a
}

/// The arrangement after an appeal was received (`delta` = +1) or decided (`delta` = -1).
pub(crate) fn apply_appeal(
    current: &Arrangement,
    at: DateTime<Utc>,
    delta: i32,
    revoke_reason: Option<&str>,
) -> Arrangement {
    let at = super::common::trunc(at);
    let mut a = current.clone();
    a.version = current.version + 1;
    a.updated_at = at;
    a.open_appeals = current.open_appeals.saturating_add_signed(delta);
    if let (Some(reason), None) = (revoke_reason, current.revoked_at) {
        a.revoked_at = Some(at);
        a.revoked_reason = Some(reason.to_owned());
    }
    a
}
