//! The embedded SQLite store (one instance). Writes that must be race-free run in
//! `BEGIN IMMEDIATE` transactions, which take SQLite's write lock up front; the busy timeout
//! makes concurrent writers queue rather than fail. The SQL shared with PostgreSQL is in
//! [`super::sql`]; this file holds what is SQLite's own. Decided calls are written by one
//! writer task with group commit (`sqlite/group_commit.rs`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::common::{list_limit, map_sqlx};
use super::sql::{shared_store, Dialect, Ts};
use super::TerminationOutcome;
use super::{DecideFn, NewCall, NewNotification, OutboxItem, RecordedDecision, StoreError};
use crate::domain::{Arrangement, ArrangementId, PhoneNumber, Review, Termination, TerminationId};
use shared::decode_outbox_item;

mod group_commit;
mod lifecycle;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// An SQLite-backed store.
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for the live-call rows, which commit without an fsync.
    live: SqlitePool,
    /// SQLite has one writer at a time. Queueing writers here, in arrival order, keeps them off
    /// SQLite's busy handler, whose growing sleeps (up to 100 ms each) made tail latency under
    /// concurrent writes hundreds of milliseconds.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Decided calls go through one writer task that commits them in batches (group commit:
    /// [`group_commit`]); it takes `writer` for each batch.
    decisions: super::batch::DecisionQueue,
}

shared_store!(SqliteStore, sqlx::Sqlite);

impl SqliteStore {
    /// Open (creating the file and its directory when missing) and migrate, from a
    /// `sqlite:` URL such as `sqlite://data/fairline.db`.
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::Internal("storage.url is not a valid sqlite URL".into()))?;
        Self::open_with(opts).await
    }

    /// Open (creating when missing) and migrate the database file at `path`.
    pub async fn open_path(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    async fn open_with(opts: SqliteConnectOptions) -> Result<Self, StoreError> {
        let file = opts.get_filename().to_path_buf();
        if let Some(parent) = file.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create the database directory: {e}"))
                })?;
            }
        }
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts.clone())
            .await
            .map_err(map_sqlx)?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            tracing::error!(error = %e, "sqlite migrations failed");
            StoreError::Internal("database migration failed".into())
        })?;
        // Live-call rows are not a log (SPEC §12): their commits skip the fsync (WAL with
        // synchronous = NORMAL), and the next decision's commit makes them durable anyway.
        let live = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts.synchronous(SqliteSynchronous::Normal))
            .await
            .map_err(map_sqlx)?;
        let writer = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let decisions = group_commit::start(pool.clone(), writer.clone());
        Ok(SqliteStore {
            pool,
            live,
            writer,
            decisions,
        })
    }

    /// Close the pool: every later call fails with `Unavailable` (used at shutdown and in tests).
    pub async fn close(&self) {
        self.pool.close().await;
        self.live.close().await;
    }

    /// A write transaction, and this process's turn as SQLite's writer (held until the guard
    /// is dropped, after the commit).
    async fn begin_immediate(
        &self,
    ) -> Result<
        (
            tokio::sync::OwnedMutexGuard<()>,
            Transaction<'static, Sqlite>,
        ),
        StoreError,
    > {
        let turn = self.writer.clone().lock_owned().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx)?;
        Ok((turn, tx))
    }
}

/// Every write that must be race-free takes the writer queue and `BEGIN IMMEDIATE`: SQLite
/// serialises them all, so no row locks are needed.
#[async_trait]
impl Dialect for SqliteStore {
    async fn insert_arrangement(&self, a: &Arrangement, actor: &str) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        Self::write_new_arrangement(&mut tx, a, actor).await?;
        tx.commit().await.map_err(map_sqlx)
    }

    async fn update_arrangement_locked(
        &self,
        arrangement: &Arrangement,
        expected_version: i64,
        actor: &str,
    ) -> Result<Arrangement, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let current = Self::fetch_arrangement(&mut tx, &arrangement.id, "")
            .await?
            .ok_or(StoreError::NotFound)?;
        let a = Self::next_version(&current, arrangement, expected_version)?;
        Self::write_update(&mut tx, &a, actor).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(a)
    }

    async fn revoke_arrangement_locked(
        &self,
        id: &ArrangementId,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Arrangement, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let current = Self::fetch_arrangement(&mut tx, id, "")
            .await?
            .ok_or(StoreError::NotFound)?;
        let Some(a) = Self::write_revocation(&mut tx, &current, reason, actor, at).await? else {
            return Ok(current);
        };
        tx.commit().await.map_err(map_sqlx)?;
        Ok(a)
    }

    /// One instance: nothing to hear from others.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Option<Vec<PhoneNumber>>>> {
        None
    }

    /// Queued to the group-commit writer: counted, decided and written in arrival order, in
    /// one transaction with the calls queued behind the writer, and answered after the commit.
    async fn decide_and_record_locked(
        &self,
        call: NewCall,
        decide: DecideFn,
    ) -> Result<RecordedDecision, StoreError> {
        self.decisions.decide_and_record(call, decide).await
    }

    async fn complete_termination_locked(
        &self,
        id: &TerminationId,
        outcome: &TerminationOutcome,
        notification: Option<&NewNotification>,
    ) -> Result<Termination, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let stored = Self::complete_in(&mut tx, id, outcome, notification).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(stored)
    }

    async fn review_termination_locked(
        &self,
        id: &TerminationId,
        review: &Review,
    ) -> Result<Termination, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let result = Self::review_in(&mut tx, id, review).await;
        tx.commit().await.map_err(map_sqlx)?;
        result
    }

    /// Select and lease in one write transaction: no other worker can take the same rows.
    async fn lease_due_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let rows = sqlx::query(
            "SELECT id, termination_id, event, payload, attempts FROM termination_outbox \
             WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
             AND (leased_until IS NULL OR leased_until < $1) \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(Ts(now))
        .bind(list_limit(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let items = rows
            .iter()
            .map(decode_outbox_item)
            .collect::<Result<Vec<_>, _>>()?;
        for item in &items {
            sqlx::query("UPDATE termination_outbox SET leased_until = $1 WHERE id = $2")
                .bind(Ts(lease_until))
                .bind(item.id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(items)
    }

    /// One instance: every lease and claim still held was held by an earlier run.
    async fn release_leases(&self, started_at: DateTime<Utc>) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        sqlx::query(
            "UPDATE termination_outbox SET leased_until = NULL WHERE leased_until IS NOT NULL",
        )
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        sqlx::query(
            "UPDATE terminations SET claimed_until = 0 \
             WHERE hangup_result = 'pending' AND terminated_at < $1",
        )
        .bind(Ts(started_at))
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(())
    }
}

impl SqliteStore {
    /// The pool, for the console's storage (src/store/console_sql.rs).
    pub(crate) fn console_pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool for live-call rows (src/store/console_sql.rs).
    pub(crate) fn live_pool(&self) -> &SqlitePool {
        &self.live
    }

    /// This process's turn as SQLite's writer, for a write outside `BEGIN IMMEDIATE` (live
    /// calls, sessions, statuses, the outbox): without it such a write and the decision writer
    /// meet in SQLite's busy handler, whose sleeps (1, 2, 5, 10 ms …) were the webhook's tail.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        Some(self.writer.clone().lock_owned().await)
    }
}
