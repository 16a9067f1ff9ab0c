//! The PostgreSQL store, for several instances sharing one database.
//!
//! Race freedom: creating or updating an arrangement takes a transaction-scoped advisory lock
//! per phone number (in sorted order) before checking that no other arrangement in force has
//! it; deciding a call locks the arrangement's row (`SELECT … FOR UPDATE`), so counting and
//! recording are serialised per arrangement across every instance. Every arrangement change
//! sends `pg_notify` in its transaction; a background `LISTEN` task turns those into
//! `subscribe_changes` items.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, PgPool, Postgres, QueryBuilder, Row, Transaction};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::common::{
    change_kind_str, decode_version, effective_end, encode_arrangement, is_unique_violation,
    list_limit, map_sqlx, normalise_arrangement, normalise_decision, now_ms, sorted_numbers,
    to_json, touched_numbers, trunc, RawArrangement, RawCall,
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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The notification channel (with `_<schema>` appended for a store in a named schema).
pub const CHANGE_CHANNEL: &str = "fairline_arrangements";

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

const ARRANGEMENT_COLUMNS: &str =
    "id, customer_ref, customer_name, phone_numbers::text AS phone_numbers, \
    kind, windows::text AS windows, allowance::text AS allowance, \
    designated_staff::text AS designated_staff, max_call_minutes, language, reason, decided_by, \
    equality_advice_sought, advocate, starts_at, ends_at, review_due, revoked_at, revoked_reason, \
    created_at, updated_at, version";

const CALL_COLUMNS: &str = "provider, call_id, number, arrangement_id, arrangement_version, \
    decided_at, outcome, reason, route_to, next_permitted_at, source, counted, counted_before, \
    final_status, duration_seconds";

type ChangeSender = broadcast::Sender<Option<Vec<PhoneNumber>>>;

/// A PostgreSQL-backed store.
pub struct PgStore {
    pool: PgPool,
    channel: String,
    changes: ChangeSender,
    cancel: CancellationToken,
}

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
        tokio::spawn(listen_loop(
            listener,
            pool.clone(),
            channel.clone(),
            changes.clone(),
            cancel.clone(),
        ));
        Ok(PgStore {
            pool,
            channel,
            changes,
            cancel,
        })
    }

    /// Close the pool and stop listening: every later call fails with `Unavailable`.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.pool.close().await;
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

    async fn check_numbers(
        tx: &mut Transaction<'static, Postgres>,
        a: &Arrangement,
    ) -> Result<(), StoreError> {
        let end = effective_end(a);
        for number in sorted_numbers(a) {
            let row = sqlx::query(
                "SELECT a.id FROM arrangement_numbers n JOIN arrangements a ON a.id = n.arrangement_id \
                 WHERE n.number = $1 AND a.id <> $2 AND a.starts_at < $3 \
                 AND $4 < (CASE WHEN a.revoked_at IS NOT NULL AND a.revoked_at < a.ends_at \
                          THEN a.revoked_at ELSE a.ends_at END) \
                 LIMIT 1",
            )
            .bind(number.as_str())
            .bind(a.id.as_str())
            .bind(end)
            .bind(a.starts_at)
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

    async fn fetch_for_update(
        tx: &mut Transaction<'static, Postgres>,
        id: &ArrangementId,
    ) -> Result<Option<Arrangement>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ARRANGEMENT_COLUMNS} FROM arrangements WHERE id = $1 FOR UPDATE"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_sqlx)?;
        row.map(|r| decode_arrangement(&r)).transpose()
    }

    async fn write_numbers(
        tx: &mut Transaction<'static, Postgres>,
        a: &Arrangement,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM arrangement_numbers WHERE arrangement_id = $1")
            .bind(a.id.as_str())
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx)?;
        for number in sorted_numbers(a) {
            sqlx::query("INSERT INTO arrangement_numbers (number, arrangement_id) VALUES ($1, $2)")
                .bind(number.as_str())
                .bind(a.id.as_str())
                .execute(&mut **tx)
                .await
                .map_err(map_sqlx)?;
        }
        Ok(())
    }

    async fn write_version(
        tx: &mut Transaction<'static, Postgres>,
        a: &Arrangement,
        change: ChangeKind,
        actor: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO arrangement_versions (arrangement_id, version, change, actor, changed_at, snapshot) \
             VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        )
        .bind(a.id.as_str())
        .bind(a.version)
        .bind(change_kind_str(change))
        .bind(actor)
        .bind(a.updated_at)
        .bind(to_json(a)?)
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn write_arrangement(
        tx: &mut Transaction<'static, Postgres>,
        a: &Arrangement,
        insert: bool,
    ) -> Result<(), StoreError> {
        let e = encode_arrangement(a)?;
        let sql = if insert {
            "INSERT INTO arrangements (customer_ref, customer_name, phone_numbers, kind, windows, \
             allowance, designated_staff, max_call_minutes, language, reason, decided_by, \
             equality_advice_sought, advocate, starts_at, ends_at, review_due, revoked_at, \
             revoked_reason, created_at, updated_at, version, id) \
             VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        } else {
            "UPDATE arrangements SET customer_ref = $1, customer_name = $2, \
             phone_numbers = $3::jsonb, kind = $4, windows = $5::jsonb, allowance = $6::jsonb, \
             designated_staff = $7::jsonb, max_call_minutes = $8, language = $9, reason = $10, \
             decided_by = $11, equality_advice_sought = $12, advocate = $13, starts_at = $14, \
             ends_at = $15, review_due = $16, revoked_at = $17, revoked_reason = $18, \
             created_at = $19, updated_at = $20, version = $21 WHERE id = $22"
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
            .bind(a.starts_at)
            .bind(a.ends_at)
            .bind(a.review_due)
            .bind(a.revoked_at)
            .bind(&a.revoked_reason)
            .bind(a.created_at)
            .bind(a.updated_at)
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

    async fn find_call(
        exec: impl sqlx::PgExecutor<'_>,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<RawCall>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE provider = $1 AND call_id = $2"
        ))
        .bind(provider.as_str())
        .bind(call_id.as_str())
        .fetch_optional(exec)
        .await
        .map_err(map_sqlx)?;
        row.map(|r| decode_call(&r)).transpose()
    }

    fn replayed(existing: RawCall) -> Result<RecordedDecision, StoreError> {
        Ok(RecordedDecision {
            decision: existing.decision()?,
            counted_before: existing.counted_before(),
            replayed: true,
        })
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

async fn listen_loop(
    listener: PgListener,
    pool: PgPool,
    channel: String,
    tx: ChangeSender,
    cancel: CancellationToken,
) {
    let mut current = Some(listener);
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match current.take() {
            Some(l) => l,
            None => {
                let attempt = async {
                    let mut l = PgListener::connect_with(&pool).await?;
                    l.listen(&channel).await?;
                    Ok::<_, sqlx::Error>(l)
                };
                let result = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = attempt => r,
                };
                match result {
                    Ok(l) => {
                        tracing::info!("change listener reconnected; resynchronising caches");
                        let _ = tx.send(None);
                        backoff = Duration::from_millis(100);
                        l
                    }
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener cannot connect; retrying");
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return,
                r = listener.try_recv() => r,
            };
            match next {
                Ok(Some(n)) => {
                    let item = serde_json::from_str::<Vec<PhoneNumber>>(n.payload()).ok();
                    let _ = tx.send(item);
                }
                Ok(None) => {
                    // The connection was lost; the next try_recv reconnects and re-listens.
                    // Anything sent meanwhile was missed: resynchronise.
                    tracing::warn!("change listener lost its connection");
                    let _ = tx.send(None);
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "change listener failed; reconnecting");
                    let _ = tx.send(None);
                    break;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn decode_arrangement(r: &PgRow) -> Result<Arrangement, StoreError> {
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
        starts_at: r.try_get("starts_at").map_err(map_sqlx)?,
        ends_at: r.try_get("ends_at").map_err(map_sqlx)?,
        review_due: r.try_get::<NaiveDate, _>("review_due").map_err(map_sqlx)?,
        revoked_at: r.try_get("revoked_at").map_err(map_sqlx)?,
        revoked_reason: r.try_get("revoked_reason").map_err(map_sqlx)?,
        created_at: r.try_get("created_at").map_err(map_sqlx)?,
        updated_at: r.try_get("updated_at").map_err(map_sqlx)?,
        version: r.try_get("version").map_err(map_sqlx)?,
    };
    raw.into_domain()
}

fn decode_call(r: &PgRow) -> Result<RawCall, StoreError> {
    Ok(RawCall {
        provider: r.try_get("provider").map_err(map_sqlx)?,
        call_id: r.try_get("call_id").map_err(map_sqlx)?,
        number: r.try_get("number").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
        arrangement_version: r.try_get("arrangement_version").map_err(map_sqlx)?,
        decided_at: r.try_get("decided_at").map_err(map_sqlx)?,
        outcome: r.try_get("outcome").map_err(map_sqlx)?,
        reason: r.try_get("reason").map_err(map_sqlx)?,
        route_to: r.try_get("route_to").map_err(map_sqlx)?,
        next_permitted_at: r.try_get("next_permitted_at").map_err(map_sqlx)?,
        source: r.try_get("source").map_err(map_sqlx)?,
        counted: r.try_get("counted").map_err(map_sqlx)?,
        counted_before: r.try_get("counted_before").map_err(map_sqlx)?,
        final_status: r.try_get("final_status").map_err(map_sqlx)?,
        duration_seconds: r.try_get("duration_seconds").map_err(map_sqlx)?,
    })
}

#[async_trait]
impl ArrangementStore for PgStore {
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        Self::lock_numbers(&mut tx, &a.phone_numbers).await?;
        Self::check_numbers(&mut tx, &a).await?;
        Self::write_arrangement(&mut tx, &a, true).await?;
        Self::write_numbers(&mut tx, &a).await?;
        Self::write_version(&mut tx, &a, ChangeKind::Created, actor).await?;
        self.notify(&mut tx, &touched_numbers(None, &a)).await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(a)
    }

    async fn get_arrangement(&self, id: &ArrangementId) -> Result<Option<Arrangement>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ARRANGEMENT_COLUMNS} FROM arrangements WHERE id = $1"
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
        let now = filter.now.unwrap_or_else(Utc::now);
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {ARRANGEMENT_COLUMNS} FROM arrangements WHERE TRUE"
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
            qb.push(" AND review_due < ").push_bind(before);
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let current = Self::fetch_for_update(&mut tx, &arrangement.id)
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
        Self::lock_numbers(&mut tx, &a.phone_numbers).await?;
        Self::check_numbers(&mut tx, &a).await?;
        Self::write_arrangement(&mut tx, &a, false).await?;
        Self::write_numbers(&mut tx, &a).await?;
        Self::write_version(&mut tx, &a, ChangeKind::Updated, actor).await?;
        self.notify(&mut tx, &touched_numbers(Some(&current), &a))
            .await?;
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let current = Self::fetch_for_update(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.revoked_at.is_some() {
            return Ok(current);
        }
        let mut a = current.clone();
        a.version = current.version + 1;
        a.updated_at = trunc(at);
        a.revoked_at = Some(trunc(at));
        a.revoked_reason = Some(reason.to_owned());
        Self::write_arrangement(&mut tx, &a, false).await?;
        Self::write_version(&mut tx, &a, ChangeKind::Revoked, actor).await?;
        self.notify(&mut tx, &touched_numbers(Some(&current), &a))
            .await?;
        tx.commit().await.map_err(map_sqlx)?;
        Ok(a)
    }

    async fn arrangement_history(
        &self,
        id: &ArrangementId,
    ) -> Result<Vec<ArrangementVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, change, actor, changed_at, snapshot::text AS snapshot \
             FROM arrangement_versions WHERE arrangement_id = $1 ORDER BY version",
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
                    r.try_get("changed_at").map_err(map_sqlx)?,
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
             (SELECT arrangement_id FROM arrangement_numbers WHERE number = $1) \
             ORDER BY starts_at, id"
        ))
        .bind(number.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_sqlx)?;
        rows.iter().map(decode_arrangement).collect()
    }

    fn subscribe_changes(&self) -> Option<broadcast::Receiver<Option<Vec<PhoneNumber>>>> {
        Some(self.changes.subscribe())
    }
}

#[async_trait]
impl CallLog for PgStore {
    async fn decide_and_record(
        &self,
        call: NewCall,
        decide: DecideFn,
    ) -> Result<RecordedDecision, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        // Serialise every decision under this arrangement, on every instance.
        let locked = sqlx::query("SELECT id FROM arrangements WHERE id = $1 FOR UPDATE")
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
        let counted_before = match call.period {
            Some((from, to)) => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM calls WHERE arrangement_id = $1 AND counted \
                     AND decided_at >= $2 AND decided_at < $3",
                )
                .bind(call.arrangement.id.as_str())
                .bind(from)
                .bind(to)
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
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL)"
        );
        let inserted = sqlx::query(&sql)
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
            .bind(trunc(call.at))
            .bind(decision.outcome.as_str())
            .bind(decision.reason.as_str())
            .bind(decision.route_to.as_ref().map(|s| s.as_str().to_owned()))
            .bind(decision.next_permitted_at)
            .bind(call.source.as_str())
            .bind(counted)
            .bind(i64::from(counted_before))
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                // The same call id was recorded concurrently (under another lock): replay it.
                tx.rollback().await.map_err(map_sqlx)?;
                let existing = Self::find_call(&self.pool, call.provider, &call.call_id)
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

    async fn count_calls(
        &self,
        arrangement_id: &ArrangementId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM calls WHERE arrangement_id = $1 AND counted \
             AND decided_at >= $2 AND decided_at < $3",
        )
        .bind(arrangement_id.as_str())
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn list_decisions(
        &self,
        filter: &DecisionFilter,
    ) -> Result<Vec<DecisionLogEntry>, StoreError> {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("SELECT {CALL_COLUMNS} FROM calls WHERE TRUE"));
        if let Some(phone) = &filter.phone {
            qb.push(" AND number = ")
                .push_bind(phone.as_str().to_owned());
        }
        if let Some(since) = filter.since {
            qb.push(" AND decided_at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            qb.push(" AND decided_at < ").push_bind(until);
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
            "UPDATE calls SET final_status = $1, \
             duration_seconds = COALESCE($2, duration_seconds) \
             WHERE provider = $3 AND call_id = $4",
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
        let row = sqlx::query("SELECT number FROM calls WHERE provider = $1 AND call_id = $2")
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
        let done = sqlx::query("DELETE FROM calls WHERE decided_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(done.rows_affected())
    }
}

// ---------------------------------------------------------------------------------------------
// Terminations and the notification outbox
// ---------------------------------------------------------------------------------------------

fn decode_termination(r: &PgRow) -> Result<Termination, StoreError> {
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
        warned_at: r.try_get("warned_at").map_err(map_sqlx)?,
        notes: r.try_get("notes").map_err(map_sqlx)?,
        terminated_at: r.try_get("terminated_at").map_err(map_sqlx)?,
        hangup_result: r.try_get("hangup_result").map_err(map_sqlx)?,
        hangup_detail: r.try_get("hangup_detail").map_err(map_sqlx)?,
        claimed_until: r.try_get("claimed_until").map_err(map_sqlx)?,
        review_outcome: r.try_get("review_outcome").map_err(map_sqlx)?,
        reviewer: r.try_get("reviewer").map_err(map_sqlx)?,
        review_notes: r.try_get("review_notes").map_err(map_sqlx)?,
        reviewed_at: r.try_get("reviewed_at").map_err(map_sqlx)?,
    }
    .into_domain()
}

async fn pg_termination_by_id(
    exec: impl sqlx::PgExecutor<'_>,
    id: &str,
) -> Result<Option<Termination>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {TERMINATION_COLUMNS} FROM terminations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(exec)
    .await
    .map_err(map_sqlx)?;
    row.map(|r| decode_termination(&r)).transpose()
}

#[async_trait]
impl TerminationStore for PgStore {
    async fn claim_termination(&self, t: &Termination) -> Result<Claim, StoreError> {
        let mut t = t.clone();
        t.terminated_at = trunc(t.terminated_at);
        t.claimed_until = trunc(t.claimed_until);
        t.warned_at = t.warned_at.map(trunc);
        t.review = None;
        let done = sqlx::query(&format!(
            "INSERT INTO terminations ({TERMINATION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL, NULL, NULL, NULL) \
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
        .bind(t.warned_at)
        .bind(t.notes.clone())
        .bind(t.terminated_at)
        .bind(hangup_str(t.hangup))
        .bind(t.hangup_detail.clone())
        .bind(t.claimed_until)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        if done.rows_affected() == 1 {
            return Ok(Claim::Created(t));
        }
        self.find_termination(t.provider, &t.call_id)
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
            "UPDATE terminations SET claimed_until = $1 \
             WHERE id = $2 AND hangup_result = 'pending' AND claimed_until < $3",
        )
        .bind(trunc(until))
        .bind(id.as_str())
        .bind(now)
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
             WHERE hangup_result = 'pending' AND claimed_until < $1 \
             ORDER BY terminated_at, id LIMIT $2"
        ))
        .bind(now)
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
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        let done = sqlx::query(
            "UPDATE terminations SET caller = $1, arrangement_id = $2, customer_ref = $3, \
             hangup_result = $4, hangup_detail = $5 \
             WHERE id = $6 AND hangup_result = 'pending'",
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
                sqlx::query(
                    "INSERT INTO termination_outbox \
                     (termination_id, event, payload, attempts, next_attempt_at, created_at) \
                     VALUES ($1, $2, $3, 0, $4, $5) ON CONFLICT (termination_id, event) DO NOTHING",
                )
                .bind(id.as_str())
                .bind(n.event.as_str())
                .bind(n.payload.as_str())
                .bind(trunc(n.due_at))
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map_err(map_sqlx)?;
            }
        }
        let stored = pg_termination_by_id(&mut *tx, id.as_str()).await?;
        tx.commit().await.map_err(map_sqlx)?;
        stored.ok_or(StoreError::NotFound)
    }

    async fn get_termination(&self, id: &TerminationId) -> Result<Option<Termination>, StoreError> {
        pg_termination_by_id(&self.pool, id.as_str()).await
    }

    async fn find_termination(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<Termination>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TERMINATION_COLUMNS} FROM terminations WHERE provider = $1 AND call_id = $2"
        ))
        .bind(provider.as_str())
        .bind(call_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_sqlx)?;
        row.map(|r| decode_termination(&r)).transpose()
    }

    async fn list_terminations(
        &self,
        filter: &TerminationFilter,
    ) -> Result<Vec<Termination>, StoreError> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
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
            qb.push(" AND terminated_at >= ").push_bind(since);
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
        let done = sqlx::query(
            "UPDATE terminations SET review_outcome = $1, reviewer = $2, review_notes = $3, \
             reviewed_at = $4 WHERE id = $5 AND review_outcome IS NULL",
        )
        .bind(review.outcome.as_str())
        .bind(review.reviewer.as_str())
        .bind(review.notes.clone())
        .bind(trunc(review.reviewed_at))
        .bind(id.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        match pg_termination_by_id(&self.pool, id.as_str()).await? {
            None => Err(StoreError::NotFound),
            Some(_) if done.rows_affected() == 0 => Err(StoreError::AlreadyReviewed),
            Some(t) => Ok(t),
        }
    }

    async fn purge_reviewed_terminations(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM terminations WHERE review_outcome IS NOT NULL AND terminated_at < $1",
        )
        .bind(before)
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
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let termination_id: String = r.try_get("termination_id").map_err(map_sqlx)?;
            let attempts: i32 = r.try_get("attempts").map_err(map_sqlx)?;
            items.push(OutboxItem {
                id: r.try_get("id").map_err(map_sqlx)?,
                termination_id: TerminationId::parse(&termination_id)
                    .map_err(|_| StoreError::Internal("decoding a termination id".into()))?,
                event: r.try_get("event").map_err(map_sqlx)?,
                payload: r.try_get("payload").map_err(map_sqlx)?,
                attempts: u32::try_from(attempts).unwrap_or(0),
            });
        }
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn notification_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE termination_outbox SET delivered_at = $1, leased_until = NULL WHERE id = $2",
        )
        .bind(trunc(at))
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
            "UPDATE termination_outbox SET attempts = attempts + 1, next_attempt_at = $1, \
             leased_until = NULL, last_error = $2 WHERE id = $3",
        )
        .bind(trunc(retry_at))
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

    async fn release_leases_at_startup(
        &self,
        _started_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Other instances may hold live leases: they run out on their own.
        Ok(())
    }
}

impl PgStore {
    /// The pool, for the console's storage (src/store/console_sql.rs).
    pub(crate) fn console_pool(&self) -> &PgPool {
        &self.pool
    }
}
