//! The embedded SQLite store (one instance). Writes that must be race-free run in
//! `BEGIN IMMEDIATE` transactions, which take SQLite's write lock up front; the busy timeout
//! makes concurrent writers queue rather than fail.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use super::common::{
    change_kind_str, decode_version, effective_end, encode_arrangement, is_unique_violation,
    list_limit, map_sqlx, normalise_arrangement, normalise_decision, now_ms, sorted_numbers,
    to_json, trunc, RawArrangement, RawCall,
};
use super::terminations::{hangup_str, RawTermination, TERMINATION_COLUMNS};
use super::{
    ArrangementFilter, ArrangementStore, ArrangementVersion, CallLog, ChangeKind, DecideFn,
    DecisionFilter, DecisionLogEntry, NewCall, RecordedDecision, StoreError,
};
use super::{
    Claim, NewNotification, OutboxItem, Review, ReviewStatus, Termination, TerminationFilter,
    TerminationOutcome, TerminationStore,
};
use crate::domain::{
    Arrangement, ArrangementId, ArrangementStatus, CallId, PhoneNumber, Provider, TerminationId,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

const ARRANGEMENT_COLUMNS: &str = "id, customer_ref, customer_name, phone_numbers, kind, windows, \
    allowance, designated_staff, max_call_minutes, language, reason, decided_by, \
    equality_advice_sought, advocate, starts_at, ends_at, review_due, revoked_at, revoked_reason, \
    created_at, updated_at, version";

const CALL_COLUMNS: &str = "provider, call_id, number, arrangement_id, arrangement_version, \
    decided_at, outcome, reason, route_to, next_permitted_at, source, counted, counted_before, \
    final_status, duration_seconds";

/// An SQLite-backed store.
pub struct SqliteStore {
    pool: SqlitePool,
    /// SQLite has one writer at a time. Queueing writers here, in arrival order, keeps them off
    /// SQLite's busy handler, whose growing sleeps (up to 100 ms each) made tail latency under
    /// concurrent writes hundreds of milliseconds.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| StoreError::Internal("decoding a time".into()))
}

fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

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
            .connect_with(opts)
            .await
            .map_err(map_sqlx)?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            tracing::error!(error = %e, "sqlite migrations failed");
            StoreError::Internal("database migration failed".into())
        })?;
        Ok(SqliteStore {
            pool,
            writer: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Close the pool: every later call fails with `Unavailable` (used at shutdown and in tests).
    pub async fn close(&self) {
        self.pool.close().await;
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

    /// `NumberInUse` if any number of `a` belongs to another arrangement whose in-force period
    /// overlaps `a`'s. Runs inside the caller's write transaction.
    async fn check_numbers(
        tx: &mut Transaction<'static, Sqlite>,
        a: &Arrangement,
    ) -> Result<(), StoreError> {
        let end = effective_end(a);
        for number in sorted_numbers(a) {
            let row = sqlx::query(
                "SELECT a.id FROM arrangement_numbers n JOIN arrangements a ON a.id = n.arrangement_id \
                 WHERE n.number = ? AND a.id <> ? AND a.starts_at < ? \
                 AND ? < (CASE WHEN a.revoked_at IS NOT NULL AND a.revoked_at < a.ends_at \
                          THEN a.revoked_at ELSE a.ends_at END) \
                 LIMIT 1",
            )
            .bind(number.as_str())
            .bind(a.id.as_str())
            .bind(ms(end))
            .bind(ms(a.starts_at))
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_sqlx)?;
            if let Some(row) = row {
                let other: String = row.try_get("id").map_err(map_sqlx)?;
                let arrangement_id = ArrangementId::parse(&other)
                    .map_err(|_| StoreError::Internal("decoding id".into()))?;
                return Err(StoreError::NumberInUse {
                    number,
                    arrangement_id,
                });
            }
        }
        Ok(())
    }

    async fn fetch_arrangement(
        tx: &mut Transaction<'static, Sqlite>,
        id: &ArrangementId,
    ) -> Result<Option<Arrangement>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ARRANGEMENT_COLUMNS} FROM arrangements WHERE id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_sqlx)?;
        row.map(|r| decode_arrangement(&r)).transpose()
    }

    async fn write_numbers(
        tx: &mut Transaction<'static, Sqlite>,
        a: &Arrangement,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM arrangement_numbers WHERE arrangement_id = ?")
            .bind(a.id.as_str())
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
        for number in sorted_numbers(a) {
            sqlx::query("INSERT INTO arrangement_numbers (number, arrangement_id) VALUES (?, ?)")
                .bind(number.as_str())
                .bind(a.id.as_str())
                .execute(&mut **tx)
                .await
                .map_err(map_sqlx)?;
        }
        Ok(())
    }

    async fn write_version(
        tx: &mut Transaction<'static, Sqlite>,
        a: &Arrangement,
        change: ChangeKind,
        actor: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO arrangement_versions (arrangement_id, version, change, actor, changed_at, snapshot) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(a.id.as_str())
        .bind(a.version)
        .bind(change_kind_str(change))
        .bind(actor)
        .bind(ms(a.updated_at))
        .bind(to_json(a)?)
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    /// Write every column of `a` (insert or replace the current version).
    async fn write_arrangement(
        tx: &mut Transaction<'static, Sqlite>,
        a: &Arrangement,
        insert: bool,
    ) -> Result<(), StoreError> {
        let e = encode_arrangement(a)?;
        let sql = if insert {
            "INSERT INTO arrangements (customer_ref, customer_name, phone_numbers, kind, windows, \
             allowance, designated_staff, max_call_minutes, language, reason, decided_by, \
             equality_advice_sought, advocate, starts_at, ends_at, review_due, revoked_at, \
             revoked_reason, created_at, updated_at, version, id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        } else {
            "UPDATE arrangements SET customer_ref = ?, customer_name = ?, phone_numbers = ?, \
             kind = ?, windows = ?, allowance = ?, designated_staff = ?, max_call_minutes = ?, \
             language = ?, reason = ?, decided_by = ?, equality_advice_sought = ?, advocate = ?, \
             starts_at = ?, ends_at = ?, review_due = ?, revoked_at = ?, revoked_reason = ?, \
             created_at = ?, updated_at = ?, version = ? WHERE id = ?"
        };
        sqlx::query(sql)
            .bind(&a.customer_ref)
            .bind(&a.customer_name)
            .bind(e.phone_numbers)
            .bind(e.kind)
            .bind(e.windows)
            .bind(e.allowance)
            .bind(e.designated_staff)
            .bind(e.max_call_minutes)
            .bind(e.language)
            .bind(&a.reason)
            .bind(&a.decided_by)
            .bind(a.equality_advice_sought)
            .bind(&a.advocate)
            .bind(ms(a.starts_at))
            .bind(ms(a.ends_at))
            .bind(date_str(a.review_due))
            .bind(a.revoked_at.map(ms))
            .bind(&a.revoked_reason)
            .bind(ms(a.created_at))
            .bind(ms(a.updated_at))
            .bind(a.version)
            .bind(a.id.as_str())
            .execute(&mut **tx)
            .await
            .map_err(|err| {
                if is_unique_violation(&err) {
                    StoreError::Internal("an arrangement with this id already exists".into())
                } else {
                    map_sqlx(err)
                }
            })?;
        Ok(())
    }

    async fn find_call(
        tx: &mut Transaction<'static, Sqlite>,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<RawCall>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE provider = ? AND call_id = ?"
        ))
        .bind(provider.as_str())
        .bind(call_id.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_sqlx)?;
        row.map(|r| decode_call(&r)).transpose()
    }
}

fn decode_arrangement(r: &SqliteRow) -> Result<Arrangement, StoreError> {
    let review_due: String = r.try_get("review_due").map_err(map_sqlx)?;
    let raw = RawArrangement {
        id: r.try_get("id").map_err(map_sqlx)?,
        customer_ref: r.try_get("customer_ref").map_err(map_sqlx)?,
        customer_name: r.try_get("customer_name").map_err(map_sqlx)?,
        phone_numbers: r.try_get("phone_numbers").map_err(map_sqlx)?,
        kind: r.try_get("kind").map_err(map_sqlx)?,
        windows: r.try_get("windows").map_err(map_sqlx)?,
        allowance: r.try_get("allowance").map_err(map_sqlx)?,
        designated_staff: r.try_get("designated_staff").map_err(map_sqlx)?,
        max_call_minutes: r.try_get("max_call_minutes").map_err(map_sqlx)?,
        language: r.try_get("language").map_err(map_sqlx)?,
        reason: r.try_get("reason").map_err(map_sqlx)?,
        decided_by: r.try_get("decided_by").map_err(map_sqlx)?,
        equality_advice_sought: r.try_get("equality_advice_sought").map_err(map_sqlx)?,
        advocate: r.try_get("advocate").map_err(map_sqlx)?,
        starts_at: from_ms(r.try_get("starts_at").map_err(map_sqlx)?)?,
        ends_at: from_ms(r.try_get("ends_at").map_err(map_sqlx)?)?,
        review_due: NaiveDate::parse_from_str(&review_due, "%Y-%m-%d")
            .map_err(|_| StoreError::Internal("decoding review_due".into()))?,
        revoked_at: r
            .try_get::<Option<i64>, _>("revoked_at")
            .map_err(map_sqlx)?
            .map(from_ms)
            .transpose()?,
        revoked_reason: r.try_get("revoked_reason").map_err(map_sqlx)?,
        created_at: from_ms(r.try_get("created_at").map_err(map_sqlx)?)?,
        updated_at: from_ms(r.try_get("updated_at").map_err(map_sqlx)?)?,
        version: r.try_get("version").map_err(map_sqlx)?,
    };
    raw.into_domain()
}

fn decode_call(r: &SqliteRow) -> Result<RawCall, StoreError> {
    Ok(RawCall {
        provider: r.try_get("provider").map_err(map_sqlx)?,
        call_id: r.try_get("call_id").map_err(map_sqlx)?,
        number: r.try_get("number").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
        arrangement_version: r.try_get("arrangement_version").map_err(map_sqlx)?,
        decided_at: from_ms(r.try_get("decided_at").map_err(map_sqlx)?)?,
        outcome: r.try_get("outcome").map_err(map_sqlx)?,
        reason: r.try_get("reason").map_err(map_sqlx)?,
        route_to: r.try_get("route_to").map_err(map_sqlx)?,
        next_permitted_at: r
            .try_get::<Option<i64>, _>("next_permitted_at")
            .map_err(map_sqlx)?
            .map(from_ms)
            .transpose()?,
        source: r.try_get("source").map_err(map_sqlx)?,
        counted: r.try_get("counted").map_err(map_sqlx)?,
        counted_before: r.try_get("counted_before").map_err(map_sqlx)?,
        final_status: r.try_get("final_status").map_err(map_sqlx)?,
        duration_seconds: r.try_get("duration_seconds").map_err(map_sqlx)?,
    })
}

#[async_trait]
impl ArrangementStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(())
    }

    async fn create_arrangement(
        &self,
        arrangement: &Arrangement,
        actor: &str,
    ) -> Result<Arrangement, StoreError> {
        // The caller's clock stamps the change (the API's `Clock`, pinned in tests).
        let mut a = normalise_arrangement(arrangement);
        a.version = 1;
        a.created_at = a.updated_at;
        let (_turn, mut tx) = self.begin_immediate().await?;
        Self::check_numbers(&mut tx, &a).await?;
        Self::write_arrangement(&mut tx, &a, true).await?;
        Self::write_numbers(&mut tx, &a).await?;
        Self::write_version(&mut tx, &a, ChangeKind::Created, actor).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(a)
    }

    async fn get_arrangement(&self, id: &ArrangementId) -> Result<Option<Arrangement>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ARRANGEMENT_COLUMNS} FROM arrangements WHERE id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        row.map(|r| decode_arrangement(&r)).transpose()
    }

    async fn list_arrangements(
        &self,
        filter: &ArrangementFilter,
    ) -> Result<Vec<Arrangement>, StoreError> {
        let now = ms(filter.now.unwrap_or_else(Utc::now));
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {ARRANGEMENT_COLUMNS} FROM arrangements WHERE 1 = 1"
        ));
        if let Some(phone) = &filter.phone {
            qb.push(" AND id IN (SELECT arrangement_id FROM arrangement_numbers WHERE number = ")
                .push_bind(phone.as_str().to_owned())
                .push(")");
        }
        if let Some(status) = filter.status {
            match status {
                ArrangementStatus::Revoked => {
                    qb.push(" AND revoked_at IS NOT NULL AND revoked_at <= ")
                        .push_bind(now);
                }
                other => {
                    qb.push(" AND (revoked_at IS NULL OR revoked_at > ")
                        .push_bind(now)
                        .push(")");
                    match other {
                        ArrangementStatus::Scheduled => {
                            qb.push(" AND starts_at > ").push_bind(now);
                        }
                        ArrangementStatus::Active => {
                            qb.push(" AND starts_at <= ")
                                .push_bind(now)
                                .push(" AND ends_at > ")
                                .push_bind(now);
                        }
                        _ => {
                            qb.push(" AND ends_at <= ").push_bind(now);
                        }
                    }
                }
            }
        }
        if let Some(before) = filter.review_due_before {
            qb.push(" AND review_due < ").push_bind(date_str(before));
        }
        if let Some(after) = &filter.after {
            // Keyset paging in the list's order; an unknown cursor gives an empty page.
            qb.push(
                " AND (created_at, id) > \
                 (SELECT created_at, id FROM arrangements WHERE id = ",
            )
            .push_bind(after.as_str().to_owned())
            .push(")");
        }
        qb.push(" ORDER BY created_at, id LIMIT ")
            .push_bind(list_limit(filter.limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(map_sqlx)?;
        rows.iter().map(decode_arrangement).collect()
    }

    async fn update_arrangement(
        &self,
        arrangement: &Arrangement,
        expected_version: i64,
        actor: &str,
    ) -> Result<Arrangement, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let current = Self::fetch_arrangement(&mut tx, &arrangement.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.version != expected_version {
            return Err(StoreError::VersionMismatch {
                current: current.version,
            });
        }
        let mut a = normalise_arrangement(arrangement);
        a.version = current.version + 1;
        a.created_at = current.created_at;
        a.revoked_at = current.revoked_at;
        a.revoked_reason = current.revoked_reason.clone();
        Self::check_numbers(&mut tx, &a).await?;
        Self::write_arrangement(&mut tx, &a, false).await?;
        Self::write_numbers(&mut tx, &a).await?;
        Self::write_version(&mut tx, &a, ChangeKind::Updated, actor).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(a)
    }

    async fn revoke_arrangement(
        &self,
        id: &ArrangementId,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Arrangement, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let current = Self::fetch_arrangement(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.revoked_at.is_some() {
            return Ok(current);
        }
        let mut a = current.clone();
        a.version = current.version + 1;
        a.updated_at = super::common::trunc(at);
        a.revoked_at = Some(super::common::trunc(at));
        a.revoked_reason = Some(reason.to_owned());
        Self::write_arrangement(&mut tx, &a, false).await?;
        Self::write_version(&mut tx, &a, ChangeKind::Revoked, actor).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(a)
    }

    async fn arrangement_history(
        &self,
        id: &ArrangementId,
    ) -> Result<Vec<ArrangementVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, change, actor, changed_at, snapshot FROM arrangement_versions \
             WHERE arrangement_id = ? ORDER BY version",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        rows.iter()
            .map(|r| {
                let change: String = r.try_get("change").map_err(map_sqlx)?;
                let snapshot: String = r.try_get("snapshot").map_err(map_sqlx)?;
                decode_version(
                    r.try_get("version").map_err(map_sqlx)?,
                    &change,
                    r.try_get("actor").map_err(map_sqlx)?,
                    from_ms(r.try_get("changed_at").map_err(map_sqlx)?)?,
                    &snapshot,
                )
            })
            .collect()
    }

    async fn arrangements_for_number(
        &self,
        number: &PhoneNumber,
    ) -> Result<Vec<Arrangement>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ARRANGEMENT_COLUMNS} FROM arrangements WHERE id IN \
             (SELECT arrangement_id FROM arrangement_numbers WHERE number = ?) \
             ORDER BY starts_at, id"
        ))
        .bind(number.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        rows.iter().map(decode_arrangement).collect()
    }

    fn subscribe_changes(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<Option<Vec<PhoneNumber>>>> {
        None
    }
}

#[async_trait]
impl CallLog for SqliteStore {
    async fn decide_and_record(
        &self,
        call: NewCall,
        decide: DecideFn,
    ) -> Result<RecordedDecision, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let known = sqlx::query("SELECT id FROM arrangements WHERE id = ?")
            .bind(call.arrangement.id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        if known.is_none() {
            return Err(StoreError::NotFound);
        }
        if let Some(existing) = Self::find_call(&mut tx, call.provider, &call.call_id).await? {
            tx.rollback().await.map_err(map_sqlx)?;
            return Ok(RecordedDecision {
                decision: existing.decision()?,
                counted_before: existing.counted_before(),
                replayed: true,
            });
        }
        let counted_before = match call.period {
            Some((from, to)) => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM calls WHERE arrangement_id = ? AND counted = 1 \
                     AND decided_at >= ? AND decided_at < ?",
                )
                .bind(call.arrangement.id.as_str())
                .bind(ms(from))
                .bind(ms(to))
                .fetch_one(&mut *tx)
                .await
                .map_err(map_sqlx)?;
                u32::try_from(n).unwrap_or(u32::MAX)
            }
            None => 0,
        };
        let decision = normalise_decision(decide(counted_before));
        let counted = decision.is_counted();
        let sql = format!(
            "INSERT INTO calls ({CALL_COLUMNS}) VALUES \
             (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)"
        );
        sqlx::query(&sql)
            .bind(call.provider.as_str())
            .bind(call.call_id.as_str())
            .bind(call.number.as_str())
            .bind(
                decision
                    .arrangement_id
                    .as_ref()
                    .map(|i| i.as_str().to_owned()),
            )
            .bind(decision.arrangement_version)
            .bind(ms(call.at))
            .bind(decision.outcome.as_str())
            .bind(decision.reason.as_str())
            .bind(decision.route_to.as_ref().map(|s| s.as_str().to_owned()))
            .bind(decision.next_permitted_at.map(ms))
            .bind(call.source.as_str())
            .bind(counted)
            .bind(i64::from(counted_before))
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(RecordedDecision {
            decision,
            counted_before,
            replayed: false,
        })
    }

    async fn count_calls(
        &self,
        arrangement_id: &ArrangementId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM calls WHERE arrangement_id = ? AND counted = 1 \
             AND decided_at >= ? AND decided_at < ?",
        )
        .bind(arrangement_id.as_str())
        .bind(ms(from))
        .bind(ms(to))
        .fetch_one(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn list_decisions(
        &self,
        filter: &DecisionFilter,
    ) -> Result<Vec<DecisionLogEntry>, StoreError> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {CALL_COLUMNS} FROM calls WHERE 1 = 1"));
        if let Some(phone) = &filter.phone {
            qb.push(" AND number = ")
                .push_bind(phone.as_str().to_owned());
        }
        if let Some(since) = filter.since {
            qb.push(" AND decided_at >= ").push_bind(ms(since));
        }
        if let Some(until) = filter.until {
            qb.push(" AND decided_at < ").push_bind(ms(until));
        }
        qb.push(" ORDER BY decided_at DESC, id DESC LIMIT ")
            .push_bind(list_limit(filter.limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(map_sqlx)?;
        rows.iter()
            .map(|r| decode_call(r).and_then(RawCall::into_entry))
            .collect()
    }

    async fn record_call_status(
        &self,
        provider: Provider,
        call_id: &CallId,
        status: &str,
        duration_seconds: Option<i64>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET final_status = ?, \
             duration_seconds = COALESCE(?, duration_seconds) \
             WHERE provider = ? AND call_id = ?",
        )
        .bind(status)
        .bind(duration_seconds)
        .bind(provider.as_str())
        .bind(call_id.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    async fn logged_caller(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<PhoneNumber>, StoreError> {
        let row = sqlx::query("SELECT number FROM calls WHERE provider = ? AND call_id = ?")
            .bind(provider.as_str())
            .bind(call_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?;
        match row {
            None => Ok(None),
            Some(r) => {
                let raw: String = r.try_get("number").map_err(map_sqlx)?;
                PhoneNumber::parse(&raw)
                    .map(Some)
                    .map_err(|_| StoreError::Internal("decoding a logged number".into()))
            }
        }
    }

    async fn purge_decisions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM calls WHERE decided_at < ?")
            .bind(ms(before))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(done.rows_affected())
    }
}

// ---------------------------------------------------------------------------------------------
// Terminations and the notification outbox
// ---------------------------------------------------------------------------------------------

fn decode_termination(r: &SqliteRow) -> Result<Termination, StoreError> {
    let opt_ms = |col: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        r.try_get::<Option<i64>, _>(col)
            .map_err(map_sqlx)?
            .map(from_ms)
            .transpose()
    };
    RawTermination {
        id: r.try_get("id").map_err(map_sqlx)?,
        provider: r.try_get("provider").map_err(map_sqlx)?,
        call_id: r.try_get("call_id").map_err(map_sqlx)?,
        caller: r.try_get("caller").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
        customer_ref: r.try_get("customer_ref").map_err(map_sqlx)?,
        agent: r.try_get("agent").map_err(map_sqlx)?,
        reason: r.try_get("reason").map_err(map_sqlx)?,
        warning_given: r.try_get("warning_given").map_err(map_sqlx)?,
        warned_at: opt_ms("warned_at")?,
        notes: r.try_get("notes").map_err(map_sqlx)?,
        terminated_at: from_ms(r.try_get("terminated_at").map_err(map_sqlx)?)?,
        hangup_result: r.try_get("hangup_result").map_err(map_sqlx)?,
        hangup_detail: r.try_get("hangup_detail").map_err(map_sqlx)?,
        claimed_until: from_ms(r.try_get("claimed_until").map_err(map_sqlx)?)?,
        review_outcome: r.try_get("review_outcome").map_err(map_sqlx)?,
        reviewer: r.try_get("reviewer").map_err(map_sqlx)?,
        review_notes: r.try_get("review_notes").map_err(map_sqlx)?,
        reviewed_at: opt_ms("reviewed_at")?,
    }
    .into_domain()
}

impl SqliteStore {
    async fn termination_by<'e, E>(
        exec: E,
        column: &str,
        a: &str,
        b: Option<&str>,
    ) -> Result<Option<Termination>, StoreError>
    where
        E: sqlx::SqliteExecutor<'e>,
    {
        let sql = match b {
            None => format!("SELECT {TERMINATION_COLUMNS} FROM terminations WHERE {column} = ?"),
            Some(_) => format!(
                "SELECT {TERMINATION_COLUMNS} FROM terminations WHERE provider = ? AND call_id = ?"
            ),
        };
        let mut q = sqlx::query(&sql).bind(a.to_owned());
        if let Some(b) = b {
            q = q.bind(b.to_owned());
        }
        let row = q.fetch_optional(exec).await.map_err(map_sqlx)?;
        row.map(|r| decode_termination(&r)).transpose()
    }
}

#[async_trait]
impl TerminationStore for SqliteStore {
    async fn claim_termination(&self, t: &Termination) -> Result<Claim, StoreError> {
        let mut t = t.clone();
        t.terminated_at = trunc(t.terminated_at);
        t.claimed_until = trunc(t.claimed_until);
        t.warned_at = t.warned_at.map(trunc);
        let done = sqlx::query(&format!(
            "INSERT INTO terminations ({TERMINATION_COLUMNS}) VALUES \
             (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL) \
             ON CONFLICT (provider, call_id) DO NOTHING"
        ))
        .bind(t.id.as_str())
        .bind(t.provider.as_str())
        .bind(t.call_id.as_str())
        .bind(t.caller.as_ref().map(|c| c.as_str().to_owned()))
        .bind(t.arrangement_id.as_ref().map(|a| a.as_str().to_owned()))
        .bind(t.customer_ref.clone())
        .bind(t.agent.as_str())
        .bind(t.reason.as_str())
        .bind(t.warning_given)
        .bind(t.warned_at.map(ms))
        .bind(t.notes.clone())
        .bind(ms(t.terminated_at))
        .bind(hangup_str(t.hangup))
        .bind(t.hangup_detail.clone())
        .bind(ms(t.claimed_until))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        if done.rows_affected() == 1 {
            t.review = None;
            return Ok(Claim::Created(t));
        }
        Self::termination_by(
            &self.pool,
            "",
            t.provider.as_str(),
            Some(t.call_id.as_str()),
        )
        .await?
        .map(Claim::Existing)
        .ok_or_else(|| StoreError::Internal("a claimed termination vanished".into()))
    }

    async fn lease_stale_termination(
        &self,
        id: &TerminationId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE terminations SET claimed_until = ? \
             WHERE id = ? AND hangup_result = 'pending' AND claimed_until < ?",
        )
        .bind(ms(until))
        .bind(id.as_str())
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    async fn stale_terminations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Termination>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TERMINATION_COLUMNS} FROM terminations \
             WHERE hangup_result = 'pending' AND claimed_until < ? \
             ORDER BY terminated_at, id LIMIT ?"
        ))
        .bind(ms(now))
        .bind(list_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        rows.iter().map(decode_termination).collect()
    }

    async fn complete_termination(
        &self,
        id: &TerminationId,
        outcome: &TerminationOutcome,
        notification: Option<&NewNotification>,
    ) -> Result<Termination, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let done = sqlx::query(
            "UPDATE terminations SET caller = ?, arrangement_id = ?, customer_ref = ?, \
             hangup_result = ?, hangup_detail = ? \
             WHERE id = ? AND hangup_result = 'pending'",
        )
        .bind(outcome.caller.as_ref().map(|c| c.as_str().to_owned()))
        .bind(
            outcome
                .arrangement_id
                .as_ref()
                .map(|a| a.as_str().to_owned()),
        )
        .bind(outcome.customer_ref.clone())
        .bind(outcome.hangup.as_str())
        .bind(outcome.hangup_detail.clone())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        if done.rows_affected() == 1 {
            if let Some(n) = notification {
                let now = ms(now_ms());
                sqlx::query(
                    "INSERT INTO termination_outbox \
                     (termination_id, event, payload, attempts, next_attempt_at, created_at) \
                     VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (termination_id, event) DO NOTHING",
                )
                .bind(id.as_str())
                .bind(n.event.as_str())
                .bind(n.payload.as_str())
                .bind(ms(n.due_at))
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
            }
        }
        let stored = Self::termination_by(&mut *tx, "id", id.as_str(), None).await?;
        tx.commit().await.map_err(map_sqlx)?;
        stored.ok_or(StoreError::NotFound)
    }

    async fn get_termination(&self, id: &TerminationId) -> Result<Option<Termination>, StoreError> {
        Self::termination_by(&self.pool, "id", id.as_str(), None).await
    }

    async fn find_termination(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<Termination>, StoreError> {
        Self::termination_by(&self.pool, "", provider.as_str(), Some(call_id.as_str())).await
    }

    async fn list_terminations(
        &self,
        filter: &TerminationFilter,
    ) -> Result<Vec<Termination>, StoreError> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {TERMINATION_COLUMNS} FROM terminations WHERE 1 = 1"
        ));
        match filter.status {
            Some(ReviewStatus::Pending) => {
                qb.push(" AND review_outcome IS NULL");
            }
            Some(ReviewStatus::Reviewed) => {
                qb.push(" AND review_outcome IS NOT NULL");
            }
            None => {}
        }
        if let Some(since) = filter.since {
            qb.push(" AND terminated_at >= ").push_bind(ms(since));
        }
        if let Some(before) = &filter.before {
            // Keyset paging in the list's order; an unknown cursor gives an empty page.
            qb.push(
                " AND (terminated_at, id) < \
                 (SELECT terminated_at, id FROM terminations WHERE id = ",
            )
            .push_bind(before.as_str().to_owned())
            .push(")");
        }
        qb.push(" ORDER BY terminated_at DESC, id DESC LIMIT ")
            .push_bind(list_limit(filter.limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(map_sqlx)?;
        rows.iter().map(decode_termination).collect()
    }

    async fn review_termination(
        &self,
        id: &TerminationId,
        review: &Review,
    ) -> Result<Termination, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let done = sqlx::query(
            "UPDATE terminations SET review_outcome = ?, reviewer = ?, review_notes = ?, \
             reviewed_at = ? WHERE id = ? AND review_outcome IS NULL",
        )
        .bind(review.outcome.as_str())
        .bind(review.reviewer.as_str())
        .bind(review.notes.clone())
        .bind(ms(review.reviewed_at))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let stored = Self::termination_by(&mut *tx, "id", id.as_str(), None).await?;
        tx.commit().await.map_err(map_sqlx)?;
        match stored {
            None => Err(StoreError::NotFound),
            Some(_) if done.rows_affected() == 0 => Err(StoreError::AlreadyReviewed),
            Some(t) => Ok(t),
        }
    }

    async fn purge_reviewed_terminations(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM terminations WHERE review_outcome IS NOT NULL AND terminated_at < ?",
        )
        .bind(ms(before))
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn take_due_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let rows = sqlx::query(
            "SELECT id, termination_id, event, payload, attempts FROM termination_outbox \
             WHERE delivered_at IS NULL AND next_attempt_at <= ? \
             AND (leased_until IS NULL OR leased_until < ?) \
             ORDER BY next_attempt_at, id LIMIT ?",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(list_limit(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id").map_err(map_sqlx)?;
            let termination_id: String = r.try_get("termination_id").map_err(map_sqlx)?;
            let attempts: i64 = r.try_get("attempts").map_err(map_sqlx)?;
            sqlx::query("UPDATE termination_outbox SET leased_until = ? WHERE id = ?")
                .bind(ms(lease_until))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
            items.push(OutboxItem {
                id,
                termination_id: TerminationId::parse(&termination_id)
                    .map_err(|_| StoreError::Internal("decoding a termination id".into()))?,
                event: r.try_get("event").map_err(map_sqlx)?,
                payload: r.try_get("payload").map_err(map_sqlx)?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            });
        }
        tx.commit().await.map_err(map_sqlx)?;
        Ok(items)
    }

    async fn notification_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE termination_outbox SET delivered_at = ?, leased_until = NULL WHERE id = ?",
        )
        .bind(ms(at))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn notification_failed(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE termination_outbox SET attempts = attempts + 1, next_attempt_at = ?, \
             leased_until = NULL, last_error = ? WHERE id = ?",
        )
        .bind(ms(retry_at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM termination_outbox WHERE delivered_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn release_leases_at_startup(&self, started_at: DateTime<Utc>) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        sqlx::query(
            "UPDATE termination_outbox SET leased_until = NULL WHERE leased_until IS NOT NULL",
        )
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
        sqlx::query(
            "UPDATE terminations SET claimed_until = 0 \
             WHERE hangup_result = 'pending' AND terminated_at < ?",
        )
        .bind(ms(started_at))
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
}
