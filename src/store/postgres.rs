//! The PostgreSQL store, for several instances sharing one database.
//!
//! Race freedom: creating or updating an arrangement takes a transaction-scoped advisory lock
//! per phone number (in sorted order) before checking that no other arrangement in force has
//! it; deciding a call locks the arrangement's row (`SELECT … FOR UPDATE`), so counting and
//! recording are serialised per arrangement across every instance. Each instance writes the
//! calls that queue up together in one transaction (group commit: `postgres/group_commit.rs`). Every arrangement change
//! sends `pg_notify` in its transaction; a background `LISTEN` task turns those into
//! `subscribe_changes` items. The SQL shared with SQLite is in [`super::sql`]; this file holds
//! what is PostgreSQL's own.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Postgres, Transaction};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::common::{is_unique_violation, list_limit, map_sqlx, to_json, touched_numbers, trunc};
use super::sql::{shared_store, Dialect};
use super::TerminationOutcome;
use super::{DecideFn, NewCall, NewNotification, OutboxItem, RecordedDecision, StoreError};
use crate::domain::{Arrangement, ArrangementId, PhoneNumber, Review, Termination, TerminationId};
use shared::decode_outbox_item;

mod group_commit;
mod lifecycle;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The notification channel (with `_<schema>` appended for a store in a named schema).
pub const CHANGE_CHANNEL: &str = "fairline_arrangements";

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

use super::pg_listen::ChangeSender;

/// A PostgreSQL-backed store.
pub struct PgStore {
    pool: PgPool,
    channel: String,
    changes: ChangeSender,
    cancel: CancellationToken,
    /// Decided calls go through one writer task per instance that commits them in batches
    /// (group commit: [`group_commit`]).
    decisions: super::batch::DecisionQueue,
}

shared_store!(PgStore, sqlx::Postgres);

impl Drop for PgStore {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl PgStore {
    /// Connect to `url` (the server's default schema), migrate, and start listening for changes.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|_| StoreError::Internal("storage.url is not a valid postgres URL".into()))?;
        Self::connect_with(opts, CHANGE_CHANNEL.to_owned()).await
    }

    /// Connect with every connection's `search_path` set to `schema` (created when missing),
    /// migrate that schema, and listen on a channel named after it. Used by tests so that
    /// each runs in its own schema; `schema` is `[a-z0-9_]`, starting with a letter.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let valid = schema.len() <= 40
            && schema.starts_with(|c: char| c.is_ascii_lowercase())
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(StoreError::Internal("invalid schema name".into()));
        }
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|_| StoreError::Internal("not a valid postgres URL".into()))?;
        let mut conn = opts.connect().await.map_err(map_sqlx)?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&mut conn)
            .await
            .map_err(map_sqlx)?;
        conn.close().await.map_err(map_sqlx)?;
        let opts = opts.options([("search_path", schema)]);
        Self::connect_with(opts, format!("{CHANGE_CHANNEL}_{schema}")).await
    }

    /// Drop a schema made by `connect_in_schema` (test clean-up).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|_| StoreError::Internal("not a valid postgres URL".into()))?;
        let mut conn = opts.connect().await.map_err(map_sqlx)?;
        let quoted = schema.replace('"', "");
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{quoted}\" CASCADE"))
            .execute(&mut conn)
            .await
            .map_err(map_sqlx)?;
        conn.close().await.map_err(map_sqlx)?;
        Ok(())
    }

    async fn connect_with(opts: PgConnectOptions, channel: String) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(map_sqlx)?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            tracing::error!(error = %e, "postgres migrations failed");
            StoreError::Internal("database migration failed".into())
        })?;
        let (changes, _) = broadcast::channel(1024);
        let cancel = CancellationToken::new();
        // Listen before returning, so that no change made after `connect` is missed.
        let mut listener = PgListener::connect_with(&pool).await.map_err(map_sqlx)?;
        listener.listen(&channel).await.map_err(map_sqlx)?;
        tokio::spawn(super::pg_listen::listen_loop(
            listener,
            pool.clone(),
            channel.clone(),
            changes.clone(),
            cancel.clone(),
        ));
        let decisions = group_commit::start(pool.clone());
        Ok(PgStore {
            pool,
            channel,
            changes,
            cancel,
            decisions,
        })
    }

    /// Close the pool and stop listening: every later call fails with `Unavailable`.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.pool.close().await;
    }

    async fn notify(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        numbers: &[PhoneNumber],
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(to_json(&numbers)?)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
        Ok(())
    }

    async fn lock_numbers(
        tx: &mut Transaction<'static, Postgres>,
        numbers: &[PhoneNumber],
    ) -> Result<(), StoreError> {
        let mut keys: Vec<i64> = numbers.iter().map(|n| advisory_key(n.as_str())).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(&mut **tx)
                .await
                .map_err(map_sqlx)?;
        }
        Ok(())
    }
}

/// A stable 64-bit key for an advisory lock on a phone number (FNV-1a).
fn advisory_key(number: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "fairline:number:".bytes().chain(number.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// Writes lock what they depend on — the phone numbers (advisory locks, in sorted order) and
/// the arrangement's row — so that instances sharing the database serialise per arrangement.
#[async_trait]
impl Dialect for PgStore {
    async fn insert_arrangement(&self, a: &Arrangement, actor: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        Self::lock_numbers(&mut tx, &a.phone_numbers).await?;
        Self::write_new_arrangement(&mut tx, a, actor).await?;
        self.notify(&mut tx, &touched_numbers(None, a)).await?;
        tx.commit().await.map_err(map_sqlx)
    }

    async fn update_arrangement_locked(
        &self,
        arrangement: &Arrangement,
        expected_version: i64,
        actor: &str,
    ) -> Result<Arrangement, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let current = Self::fetch_arrangement(&mut tx, &arrangement.id, " FOR UPDATE")
            .await?
            .ok_or(StoreError::NotFound)?;
        let a = Self::next_version(&current, arrangement, expected_version)?;
        Self::lock_numbers(&mut tx, &a.phone_numbers).await?;
        Self::write_update(&mut tx, &a, actor).await?;
        self.notify(&mut tx, &touched_numbers(Some(&current), &a))
            .await?;
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let current = Self::fetch_arrangement(&mut tx, id, " FOR UPDATE")
            .await?
            .ok_or(StoreError::NotFound)?;
        let Some(a) = Self::write_revocation(&mut tx, &current, reason, actor, at).await? else {
            return Ok(current);
        };
        self.notify(&mut tx, &touched_numbers(Some(&current), &a))
            .await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(a)
    }

    fn changes(&self) -> Option<broadcast::Receiver<Option<Vec<PhoneNumber>>>> {
        Some(self.changes.subscribe())
    }

    /// Queued to the group-commit writer: counted, decided and written in arrival order, in
    /// one transaction with the calls queued behind it, and answered after the commit.
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let stored = Self::complete_in(&mut tx, id, outcome, notification).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(stored)
    }

    /// The update only touches a row not yet reviewed: no transaction needed.
    async fn review_termination_locked(
        &self,
        id: &TerminationId,
        review: &Review,
    ) -> Result<Termination, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map_sqlx)?;
        Self::review_in(&mut conn, id, review).await
    }

    /// Select and lease in one statement; rows another worker is leasing are skipped.
    async fn lease_due_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "UPDATE termination_outbox SET leased_until = $2 WHERE id IN ( \
               SELECT id FROM termination_outbox \
               WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
               AND (leased_until IS NULL OR leased_until < $1) \
               ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, termination_id, event, payload, attempts",
        )
        .bind(now)
        .bind(trunc(lease_until))
        .bind(list_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        let mut items = rows
            .iter()
            .map(decode_outbox_item)
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    /// Other instances may hold live leases: they run out on their own.
    async fn release_leases(&self, _started_at: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }
}

impl PgStore {
    /// One call in its own transaction, under its arrangement's row lock (the group-commit
    /// writer's path for a batch of one, and for a batch that could not be written in one pass).
    async fn decide_one(
        pool: &PgPool,
        call: &NewCall,
        decide: &DecideFn,
    ) -> Result<RecordedDecision, StoreError> {
        let mut tx = pool.begin().await.map_err(map_sqlx)?;
        // Serialise every decision under this arrangement, on every instance.
        let locked: Option<String> =
            sqlx::query_scalar("SELECT id FROM arrangements WHERE id = $1 FOR UPDATE")
                .bind(call.arrangement.id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_sqlx)?;
        if locked.is_none() {
            return Err(StoreError::NotFound);
        }
        if let Some(existing) = Self::find_call(&mut *tx, call.provider, &call.call_id).await? {
            tx.rollback().await.map_err(map_sqlx)?;
            return Self::replayed(existing);
        }
        let (decision, counted_before) = Self::decide_in(&mut tx, call, decide).await?;
        match Self::insert_call(&mut tx, call, &decision, counted_before).await {
            Ok(()) => {}
            Err(e) if is_unique_violation(&e) => {
                // The same call id was recorded concurrently (under another lock): replay it.
                tx.rollback().await.map_err(map_sqlx)?;
                let existing = Self::find_call(pool, call.provider, &call.call_id)
                    .await?
                    .ok_or_else(|| StoreError::Internal("a recorded call vanished".into()))?;
                return Self::replayed(existing);
            }
            Err(e) => return Err(map_sqlx(e)),
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(RecordedDecision {
            decision,
            counted_before,
            replayed: false,
        })
    }

    /// The pool, for the console's storage (src/store/console_sql.rs).
    pub(crate) fn console_pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool for live-call rows (src/store/console_sql.rs).
    pub(crate) fn live_pool(&self) -> &PgPool {
        &self.pool
    }

    /// PostgreSQL has no single writer to queue for (SQLite's store takes its turn here).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        None
    }
}
