//! Storage behind small traits, with SQLite (embedded default) and PostgreSQL implementations.
//!
//! `ArrangementStore` keeps arrangements and their history; `CallLog` records decisions for
//! calls under an arrangement and counts calls under an allowance, race-free.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub(crate) mod batch;
pub(crate) mod common;
pub mod console;
mod console_sql;
pub mod lifecycle;
mod lifecycle_sql;
mod pg_listen;
pub mod postgres;
pub(crate) mod sql;
pub mod sqlite;
pub mod terminations;
pub mod urgent;
mod urgent_sql;

pub use console::{ConsoleSession, ConsoleStore, LiveCall, PendingLogin};
pub use terminations::{
    Claim, NewNotification, OutboxItem, ReviewStatus, TerminationFilter, TerminationOutcome,
    TerminationStore,
};
pub use urgent::UrgentStore;

use crate::domain::{Arrangement, ArrangementId, ArrangementStatus, CallId, PhoneNumber, Provider};
use crate::engine::Decision;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("stale version: the current version is {current}")]
    VersionMismatch { current: i64 },
    #[error("a phone number is already in arrangement {arrangement_id}, in force")]
    NumberInUse {
        number: PhoneNumber,
        arrangement_id: ArrangementId,
    },
    #[error("already reviewed")]
    AlreadyReviewed,
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

/// Filters for listing arrangements. `status` is derived at `now`.
#[derive(Clone, Debug, Default)]
pub struct ArrangementFilter {
    pub phone: Option<PhoneNumber>,
    pub status: Option<ArrangementStatus>,
    pub review_due_before: Option<NaiveDate>,
    /// Only arrangements whose review is due on or after this date.
    pub review_due_from: Option<NaiveDate>,
    /// Only this customer reference (any letter case).
    pub customer_ref: Option<String>,
    pub now: Option<DateTime<Utc>>,
    /// At most this many (the store may cap it).
    pub limit: u32,
    /// Paging: only arrangements listed after this one (oldest first, then by id).
    pub after: Option<ArrangementId>,
}

/// What happened to an arrangement in one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
    Revoked,
    /// A review was recorded (SPEC §13); `end` also revokes.
    Reviewed,
    /// An appeal was received.
    Appealed,
    /// An appeal was decided; `upheld` also revokes.
    AppealDecided,
}

/// One version of an arrangement: who changed it, when, and what it then said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrangementVersion {
    pub version: i64,
    pub change: ChangeKind,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
    pub arrangement: Arrangement,
}

/// Where the arrangement behind a decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionSource {
    /// Read from the store (a cache miss).
    Store,
    /// A fresh cache entry.
    Cache,
    /// A stale cache entry, served because the store failed or was too slow.
    StaleCache,
    /// Nothing could be looked up: `decision.on_lookup_failure`.
    FailureDefault,
}

impl DecisionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionSource::Store => "store",
            DecisionSource::Cache => "cache",
            DecisionSource::StaleCache => "stale_cache",
            DecisionSource::FailureDefault => "failure_default",
        }
    }
}

/// A call under an arrangement, about to be decided and recorded.
#[derive(Clone, Debug)]
pub struct NewCall {
    pub provider: Provider,
    pub call_id: CallId,
    pub number: PhoneNumber,
    pub arrangement: Arrangement,
    pub at: DateTime<Utc>,
    pub source: DecisionSource,
    /// The allowance period containing `at` (start inclusive, end exclusive), when the
    /// arrangement has an allowance: calls counted in it are passed to the decide function.
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The outcome of `CallLog::decide_and_record`.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedDecision {
    pub decision: Decision,
    /// Counted calls in the period before this one (0 without an allowance).
    pub counted_before: u32,
    /// True when the call id had been decided before: the stored decision is returned.
    pub replayed: bool,
}

/// One row of the decision log (SPEC §6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionLogEntry {
    pub provider: Provider,
    pub call_id: CallId,
    pub number: PhoneNumber,
    pub decided_at: DateTime<Utc>,
    pub decision: Decision,
    pub source: DecisionSource,
    pub counted: bool,
    pub final_status: Option<String>,
    pub duration_seconds: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct DecisionFilter {
    pub phone: Option<PhoneNumber>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// Turns the number of calls already counted in the period into a decision. It is the pure
/// engine: a store may call it again with the same count (SQLite's group commit does, when a
/// batch written in one pass has to be written again call by call) and gets the same answer.
pub type DecideFn = Box<dyn Fn(u32) -> Decision + Send + Sync>;

#[async_trait]
pub trait ArrangementStore: Send + Sync + 'static {
    /// Is the store reachable?
    async fn ping(&self) -> Result<(), StoreError>;

    /// Insert a new arrangement (version 1) and its first history entry, stamped with the
    /// arrangement's `updated_at` (the caller's clock; `created_at` is set to it). `NumberInUse` when one
    /// of its numbers belongs to another arrangement whose in-force period overlaps and is
    /// not revoked.
    async fn create_arrangement(
        &self,
        arrangement: &Arrangement,
        actor: &str,
    ) -> Result<Arrangement, StoreError>;

    async fn get_arrangement(&self, id: &ArrangementId) -> Result<Option<Arrangement>, StoreError>;

    async fn list_arrangements(
        &self,
        filter: &ArrangementFilter,
    ) -> Result<Vec<Arrangement>, StoreError>;

    /// Replace an arrangement if its stored version is `expected_version`; the stored version
    /// becomes `expected_version + 1`, stamped with the arrangement's `updated_at` (the caller's
    /// clock). `VersionMismatch`, `NotFound`, `NumberInUse`.
    async fn update_arrangement(
        &self,
        arrangement: &Arrangement,
        expected_version: i64,
        actor: &str,
    ) -> Result<Arrangement, StoreError>;

    /// Revoke from `at`; a new version with `revoked_at` and `revoked_reason`, stamped `at`.
    async fn revoke_arrangement(
        &self,
        id: &ArrangementId,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Arrangement, StoreError>;

    /// Every version, oldest first. `NotFound` for an unknown id.
    async fn arrangement_history(
        &self,
        id: &ArrangementId,
    ) -> Result<Vec<ArrangementVersion>, StoreError>;

    /// Every arrangement (any status) that lists `number`: the caller picks the one in force.
    async fn arrangements_for_number(
        &self,
        number: &PhoneNumber,
    ) -> Result<Vec<Arrangement>, StoreError>;

    /// Changes made by any instance sharing this store, as the numbers whose lookups changed
    /// (`None` in an item: resynchronise everything, e.g. after the listener reconnected).
    /// `None` when the backend has no cross-instance notifications (SQLite: one instance).
    fn subscribe_changes(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<Option<Vec<PhoneNumber>>>>;
}

#[async_trait]
pub trait CallLog: Send + Sync + 'static {
    /// In one transaction serialised per arrangement: if `(provider, call_id)` was decided
    /// before, return that decision (`replayed`, with the `counted_before` stored then);
    /// otherwise count the counted calls of the arrangement in `call.period`, call `decide`
    /// with that count, store the call (counted when the decision `is_counted`) in the decision
    /// log, and commit. `NotFound` when `call.arrangement` is not in the store. Instants are
    /// kept to the millisecond: the returned decision's `next_permitted_at` is truncated to
    /// milliseconds, exactly as a replay returns it.
    async fn decide_and_record(
        &self,
        call: NewCall,
        decide: DecideFn,
    ) -> Result<RecordedDecision, StoreError>;

    /// Counted calls of an arrangement in `[from, to)`, without side effects.
    async fn count_calls(
        &self,
        arrangement_id: &ArrangementId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u32, StoreError>;

    async fn list_decisions(
        &self,
        filter: &DecisionFilter,
    ) -> Result<Vec<DecisionLogEntry>, StoreError>;

    /// Record a call's final status and duration; `false` when the call is not in the log
    /// (calls not under an arrangement are never stored).
    async fn record_call_status(
        &self,
        provider: Provider,
        call_id: &CallId,
        status: &str,
        duration_seconds: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// The caller of a call in the decision log (calls under an arrangement), if it is there:
    /// lets any instance name the caller of a call another instance decided.
    async fn logged_caller(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<PhoneNumber>, StoreError>;

    /// Delete decision-log rows decided before `before`; returns how many.
    async fn purge_decisions(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Everything the service needs from storage.
pub trait Store:
    ArrangementStore
    + CallLog
    + TerminationStore
    + ConsoleStore
    + lifecycle::LifecycleStore
    + UrgentStore
{
}
impl<T> Store for T where
    T: ArrangementStore
        + CallLog
        + TerminationStore
        + ConsoleStore
        + lifecycle::LifecycleStore
        + UrgentStore
{
}

pub type SharedStore = Arc<dyn Store>;

/// Open the store named by `storage.url`: SQLite for `sqlite:` URLs (the file and its directory
/// are created when missing; WAL, `synchronous = FULL`, a busy timeout, foreign keys), or
/// PostgreSQL for `postgres://` / `postgresql://` URLs. Migrations are run in both cases.
pub async fn open(cfg: &crate::config::StorageConfig) -> Result<SharedStore, StoreError> {
    let url = cfg.url.expose();
    if cfg.is_postgres() {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open_url(url).await?))
    } else {
        Err(StoreError::Internal(
            "storage.url must start with sqlite: or postgres://".into(),
        ))
    }
}
