//! Shared helpers for the integration tests.
#![allow(dead_code)]

/// The PostgreSQL server for tests, when `FAIRLINE_TEST_POSTGRES_URL` is set.
/// A fresh schema name for one PostgreSQL test, with the server URL; or `None`, printing a
/// "skipped" line, when `FAIRLINE_TEST_POSTGRES_URL` is not set. Records the test's name in
/// `FAIRLINE_PG_TESTS_RAN_FILE` (CI fails when no PostgreSQL test ran).
pub fn pg_schema(test: &str) -> Option<(String, String)> {
    use std::io::Write;
    let Some(url) = postgres_url() else {
        // Straight to stderr so that the harness's capture does not hide it.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: FAIRLINE_TEST_POSTGRES_URL not set"
        );
        return None;
    };
    if let Ok(path) = std::env::var("FAIRLINE_PG_TESTS_RAN_FILE") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}");
        }
    }
    Some((url, format!("t_{}", uuid::Uuid::new_v4().simple())))
}

pub fn postgres_url() -> Option<String> {
    std::env::var("FAIRLINE_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fairline::domain::{Arrangement, ArrangementId, CallId, PhoneNumber, Provider};
use fairline::store::{
    ArrangementFilter, ArrangementStore, ArrangementVersion, CallLog, DecideFn, DecisionFilter,
    DecisionLogEntry, NewCall, RecordedDecision, Store, StoreError,
};

/// A failure to inject into [`SlowStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    None = 0,
    /// Number lookups panic.
    Panic = 1,
    /// Recording a decision never finishes.
    Hang = 2,
}

/// A store wrapper that is slow or faulty on demand: number lookups and pings take `delay` (to
/// test lookup timeouts), and a [`Fault`] can be injected.
pub struct SlowStore {
    inner: Arc<dyn Store>,
    delay_ms: AtomicU64,
    fault: std::sync::atomic::AtomicU8,
}

impl SlowStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        SlowStore {
            inner,
            delay_ms: AtomicU64::new(0),
            fault: std::sync::atomic::AtomicU8::new(Fault::None as u8),
        }
    }

    pub fn set_fault(&self, f: Fault) {
        self.fault.store(f as u8, Ordering::SeqCst);
    }

    fn fault(&self) -> Fault {
        match self.fault.load(Ordering::SeqCst) {
            1 => Fault::Panic,
            2 => Fault::Hang,
            _ => Fault::None,
        }
    }

    pub fn set_delay(&self, d: Duration) {
        self.delay_ms.store(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    async fn pause(&self) {
        let ms = self.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

#[async_trait]
impl ArrangementStore for SlowStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.ping().await
    }
    async fn create_arrangement(
        &self,
        a: &Arrangement,
        actor: &str,
    ) -> Result<Arrangement, StoreError> {
        self.inner.create_arrangement(a, actor).await
    }
    async fn get_arrangement(&self, id: &ArrangementId) -> Result<Option<Arrangement>, StoreError> {
        self.inner.get_arrangement(id).await
    }
    async fn list_arrangements(
        &self,
        f: &ArrangementFilter,
    ) -> Result<Vec<Arrangement>, StoreError> {
        self.inner.list_arrangements(f).await
    }
    async fn update_arrangement(
        &self,
        a: &Arrangement,
        expected_version: i64,
        actor: &str,
    ) -> Result<Arrangement, StoreError> {
        self.inner
            .update_arrangement(a, expected_version, actor)
            .await
    }
    async fn revoke_arrangement(
        &self,
        id: &ArrangementId,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Arrangement, StoreError> {
        self.inner.revoke_arrangement(id, reason, actor, at).await
    }
    async fn arrangement_history(
        &self,
        id: &ArrangementId,
    ) -> Result<Vec<ArrangementVersion>, StoreError> {
        self.inner.arrangement_history(id).await
    }
    async fn arrangements_for_number(
        &self,
        n: &PhoneNumber,
    ) -> Result<Vec<Arrangement>, StoreError> {
        self.pause().await;
        if self.fault() == Fault::Panic {
            panic!("injected panic in the store");
        }
        self.inner.arrangements_for_number(n).await
    }
    fn subscribe_changes(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<Option<Vec<PhoneNumber>>>> {
        self.inner.subscribe_changes()
    }
}

#[async_trait]
impl CallLog for SlowStore {
    async fn decide_and_record(
        &self,
        call: NewCall,
        decide: DecideFn,
    ) -> Result<RecordedDecision, StoreError> {
        if self.fault() == Fault::Hang {
            std::future::pending::<()>().await;
        }
        self.inner.decide_and_record(call, decide).await
    }
    async fn count_calls(
        &self,
        id: &ArrangementId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        self.inner.count_calls(id, from, to).await
    }
    async fn list_decisions(
        &self,
        f: &DecisionFilter,
    ) -> Result<Vec<DecisionLogEntry>, StoreError> {
        self.inner.list_decisions(f).await
    }
    async fn logged_caller(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<PhoneNumber>, StoreError> {
        self.inner.logged_caller(provider, call_id).await
    }
    async fn record_call_status(
        &self,
        provider: Provider,
        call_id: &CallId,
        status: &str,
        duration_seconds: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.inner
            .record_call_status(provider, call_id, status, duration_seconds)
            .await
    }
    async fn purge_decisions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.purge_decisions(before).await
    }
}

/// Pass every `TerminationStore` call through to `self.inner` (for test store wrappers that
/// only tamper with arrangements and calls).
#[macro_export]
macro_rules! delegate_termination_store {
    ($t:ty) => {
        #[async_trait::async_trait]
        impl fairline::store::TerminationStore for $t {
            async fn claim_termination(
                &self,
                t: &fairline::domain::Termination,
            ) -> Result<fairline::store::Claim, StoreError> {
                self.inner.claim_termination(t).await
            }
            async fn lease_stale_termination(
                &self,
                id: &fairline::domain::TerminationId,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                self.inner.lease_stale_termination(id, now, until).await
            }
            async fn stale_terminations(
                &self,
                now: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<fairline::domain::Termination>, StoreError> {
                self.inner.stale_terminations(now, limit).await
            }
            async fn complete_termination(
                &self,
                id: &fairline::domain::TerminationId,
                outcome: &fairline::store::TerminationOutcome,
                notification: Option<&fairline::store::NewNotification>,
            ) -> Result<fairline::domain::Termination, StoreError> {
                self.inner
                    .complete_termination(id, outcome, notification)
                    .await
            }
            async fn get_termination(
                &self,
                id: &fairline::domain::TerminationId,
            ) -> Result<Option<fairline::domain::Termination>, StoreError> {
                self.inner.get_termination(id).await
            }
            async fn find_termination(
                &self,
                provider: Provider,
                call_id: &CallId,
            ) -> Result<Option<fairline::domain::Termination>, StoreError> {
                self.inner.find_termination(provider, call_id).await
            }
            async fn list_terminations(
                &self,
                f: &fairline::store::TerminationFilter,
            ) -> Result<Vec<fairline::domain::Termination>, StoreError> {
                self.inner.list_terminations(f).await
            }
            async fn review_termination(
                &self,
                id: &fairline::domain::TerminationId,
                review: &fairline::domain::Review,
            ) -> Result<fairline::domain::Termination, StoreError> {
                self.inner.review_termination(id, review).await
            }
            async fn purge_reviewed_terminations(
                &self,
                before: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                self.inner.purge_reviewed_terminations(before).await
            }
            async fn take_due_notifications(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<fairline::store::OutboxItem>, StoreError> {
                self.inner
                    .take_due_notifications(now, lease_until, limit)
                    .await
            }
            async fn notification_delivered(
                &self,
                id: i64,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                self.inner.notification_delivered(id, at).await
            }
            async fn notification_failed(
                &self,
                id: i64,
                retry_at: DateTime<Utc>,
                error: &str,
            ) -> Result<(), StoreError> {
                self.inner.notification_failed(id, retry_at, error).await
            }
            async fn outbox_depth(&self) -> Result<u64, StoreError> {
                self.inner.outbox_depth().await
            }
            async fn release_leases_at_startup(
                &self,
                started_at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                self.inner.release_leases_at_startup(started_at).await
            }
        }
    };
}

delegate_termination_store!(SlowStore);

/// Pass every `LifecycleStore` call (reviews, appeals) through to `self.inner`.
#[macro_export]
macro_rules! delegate_lifecycle_store {
    ($t:ty) => {
        #[async_trait::async_trait]
        impl fairline::store::lifecycle::LifecycleStore for $t {
            async fn record_review(
                &self,
                review: &fairline::store::lifecycle::ArrangementReview,
                end_reason: &str,
            ) -> Result<
                (fairline::store::lifecycle::ArrangementReview, Arrangement),
                fairline::store::lifecycle::LifecycleError,
            > {
                self.inner.record_review(review, end_reason).await
            }
            async fn list_reviews(
                &self,
                id: &ArrangementId,
            ) -> Result<Vec<fairline::store::lifecycle::ArrangementReview>, StoreError> {
                self.inner.list_reviews(id).await
            }
            async fn record_appeal(
                &self,
                appeal: &fairline::store::lifecycle::Appeal,
            ) -> Result<
                (fairline::store::lifecycle::Appeal, Arrangement),
                fairline::store::lifecycle::LifecycleError,
            > {
                self.inner.record_appeal(appeal).await
            }
            async fn decide_appeal(
                &self,
                id: &fairline::domain::AppealId,
                decision: &fairline::store::lifecycle::AppealDecision,
                revoke_reason: &str,
            ) -> Result<
                (fairline::store::lifecycle::Appeal, Arrangement),
                fairline::store::lifecycle::LifecycleError,
            > {
                self.inner.decide_appeal(id, decision, revoke_reason).await
            }
            async fn get_appeal(
                &self,
                id: &fairline::domain::AppealId,
            ) -> Result<Option<fairline::store::lifecycle::Appeal>, StoreError> {
                self.inner.get_appeal(id).await
            }
            async fn list_appeals(
                &self,
                status: Option<fairline::store::lifecycle::AppealStatus>,
                arrangement_id: Option<&ArrangementId>,
                limit: u32,
            ) -> Result<Vec<fairline::store::lifecycle::Appeal>, StoreError> {
                self.inner.list_appeals(status, arrangement_id, limit).await
            }
            async fn queue_notice(
                &self,
                n: &fairline::store::lifecycle::NewNotice,
            ) -> Result<bool, StoreError> {
                self.inner.queue_notice(n).await
            }
            async fn take_due_notices(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<fairline::store::lifecycle::Notice>, StoreError> {
                self.inner.take_due_notices(now, lease_until, limit).await
            }
            async fn notice_delivered(
                &self,
                id: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                self.inner.notice_delivered(id, at).await
            }
            async fn notice_failed(
                &self,
                id: &str,
                retry_at: DateTime<Utc>,
                error: &str,
            ) -> Result<(), StoreError> {
                self.inner.notice_failed(id, retry_at, error).await
            }
            async fn list_notices(
                &self,
                limit: u32,
            ) -> Result<Vec<fairline::store::lifecycle::Notice>, StoreError> {
                self.inner.list_notices(limit).await
            }
            async fn pending_notices(&self) -> Result<u64, StoreError> {
                self.inner.pending_notices().await
            }
        }
    };
}

/// Pass every `ConsoleStore` call through to `self.inner` (for test store wrappers).
#[macro_export]
macro_rules! delegate_console_store {
    ($t:ty) => {
        #[async_trait::async_trait]
        impl fairline::store::ConsoleStore for $t {
            async fn create_session(
                &self,
                s: &fairline::store::ConsoleSession,
            ) -> Result<(), StoreError> {
                self.inner.create_session(s).await
            }
            async fn get_session(
                &self,
                id_hash: &str,
            ) -> Result<Option<fairline::store::ConsoleSession>, StoreError> {
                self.inner.get_session(id_hash).await
            }
            async fn touch_session(
                &self,
                id_hash: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                self.inner.touch_session(id_hash, at).await
            }
            async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
                self.inner.delete_session(id_hash).await
            }
            async fn purge_sessions(
                &self,
                idle_before: DateTime<Utc>,
                created_before: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                self.inner.purge_sessions(idle_before, created_before).await
            }
            async fn insert_live_calls(
                &self,
                calls: &[fairline::store::LiveCall],
            ) -> Result<(), StoreError> {
                self.inner.insert_live_calls(calls).await
            }
            async fn delete_live_call(
                &self,
                provider: Provider,
                call_id: &CallId,
            ) -> Result<bool, StoreError> {
                self.inner.delete_live_call(provider, call_id).await
            }
            async fn get_live_call(
                &self,
                provider: Provider,
                call_id: &CallId,
            ) -> Result<Option<fairline::store::LiveCall>, StoreError> {
                self.inner.get_live_call(provider, call_id).await
            }
            async fn list_live_calls(
                &self,
                since: DateTime<Utc>,
            ) -> Result<Vec<fairline::store::LiveCall>, StoreError> {
                self.inner.list_live_calls(since).await
            }
            async fn purge_live_calls(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                self.inner.purge_live_calls(before).await
            }
            async fn create_login(
                &self,
                login: &fairline::store::PendingLogin,
            ) -> Result<(), StoreError> {
                self.inner.create_login(login).await
            }
            async fn take_login(
                &self,
                state_hash: &str,
            ) -> Result<Option<fairline::store::PendingLogin>, StoreError> {
                self.inner.take_login(state_hash).await
            }
        }
    };
}

delegate_lifecycle_store!(SlowStore);
delegate_console_store!(SlowStore);

/// Pass every `UrgentStore` call through to `self.inner` (for test store wrappers).
#[macro_export]
macro_rules! delegate_urgent_store {
    ($t:ty) => {
        #[async_trait::async_trait]
        impl fairline::store::UrgentStore for $t {
            async fn record_urgent_route(
                &self,
                provider: Provider,
                call_id: &CallId,
            ) -> Result<bool, StoreError> {
                self.inner.record_urgent_route(provider, call_id).await
            }
            async fn queue_notification(
                &self,
                id: &fairline::domain::TerminationId,
                n: &fairline::store::NewNotification,
            ) -> Result<(), StoreError> {
                self.inner.queue_notification(id, n).await
            }
        }
    };
}

delegate_urgent_store!(SlowStore);
