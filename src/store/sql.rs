//! One SQL text for both stores.
//!
//! Every query that reads or writes the same way on SQLite and PostgreSQL is written once, in
//! [`shared_store!`], with `$N` placeholders (sqlx's SQLite driver accepts them). The macro is
//! expanded in each backend for its own `sqlx::Database`, so the queries stay checked against
//! each driver's types: no `sqlx::Any`. What differs between the columns is hidden by two
//! newtypes with per-backend `Type`/`Encode`/`Decode`:
//! - [`Ts`], an instant: INTEGER milliseconds since the epoch in SQLite, TIMESTAMPTZ in
//!   PostgreSQL;
//! - [`JsonText`], a JSON document being written: TEXT in SQLite, JSONB in PostgreSQL (reads
//!   use `CAST(… AS TEXT)`, which both accept).
//!
//! Dates are `NaiveDate` on both (sqlx stores `YYYY-MM-DD` text in SQLite, DATE in PostgreSQL).
//!
//! What really differs — opening the pool and migrating, how a write transaction serialises
//! (`BEGIN IMMEDIATE` and the writer queue vs row and advisory locks), replaying a call
//! recorded concurrently, `SKIP LOCKED` leasing, releasing leases at startup, LISTEN/NOTIFY —
//! stays in each backend as its [`Dialect`] implementation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgTypeInfo, Postgres};
use sqlx::sqlite::{Sqlite, SqliteTypeInfo};
use sqlx::{Database, Decode, Encode, Type};

use super::{
    DecideFn, NewCall, NewNotification, OutboxItem, PhoneNumber, RecordedDecision, StoreError,
    TerminationOutcome,
};
use crate::domain::{Arrangement, ArrangementId, Review, Termination, TerminationId};

// ---------------------------------------------------------------------------------------------
// Column newtypes
// ---------------------------------------------------------------------------------------------

/// An instant column: INTEGER milliseconds since the epoch in SQLite (sub-millisecond parts
/// are dropped), TIMESTAMPTZ in PostgreSQL (bound as given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ts(pub DateTime<Utc>);

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(self.0.timestamp_millis(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let ms = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        DateTime::from_timestamp_millis(ms)
            .map(Ts)
            .ok_or_else(|| "an instant out of range".into())
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(Ts)
    }
}

/// A JSON document to write: TEXT in SQLite, JSONB in PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JsonText(pub String);

/// PostgreSQL's `jsonb` type.
const JSONB_OID: Oid = Oid(3802);

impl Type<Sqlite> for JsonText {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for JsonText {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode_by_ref(&self.0, buf)
    }
}

impl Type<Postgres> for JsonText {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSONB_OID)
    }
}

impl<'q> Encode<'q, Postgres> for JsonText {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        // The binary jsonb format: a version byte (1), then the JSON text.
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

// ---------------------------------------------------------------------------------------------
// What each backend does its own way
// ---------------------------------------------------------------------------------------------

/// The store operations whose transactions, locks or notifications differ between the
/// backends. [`shared_store!`] implements the store traits by calling these for those
/// operations and the shared SQL for every other.
#[async_trait]
pub(crate) trait Dialect: Send + Sync {
    /// `ArrangementStore::create_arrangement` for an arrangement already normalised, at
    /// version 1.
    async fn insert_arrangement(&self, a: &Arrangement, actor: &str) -> Result<(), StoreError>;

    async fn update_arrangement_locked(
        &self,
        arrangement: &Arrangement,
        expected_version: i64,
        actor: &str,
    ) -> Result<Arrangement, StoreError>;

    async fn revoke_arrangement_locked(
        &self,
        id: &ArrangementId,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Arrangement, StoreError>;

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Option<Vec<PhoneNumber>>>>;

    async fn decide_and_record_locked(
        &self,
        call: NewCall,
        decide: DecideFn,
    ) -> Result<RecordedDecision, StoreError>;

    async fn complete_termination_locked(
        &self,
        id: &TerminationId,
        outcome: &TerminationOutcome,
        notification: Option<&NewNotification>,
    ) -> Result<Termination, StoreError>;

    async fn review_termination_locked(
        &self,
        id: &TerminationId,
        review: &Review,
    ) -> Result<Termination, StoreError>;

    async fn lease_due_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError>;

    async fn release_leases(&self, started_at: DateTime<Utc>) -> Result<(), StoreError>;
}

// ---------------------------------------------------------------------------------------------
// The shared SQL
// ---------------------------------------------------------------------------------------------

/// The columns of `arrangements`, JSON ones read as text, and the derived count of open
/// appeals (SPEC §13).
pub(crate) const ARRANGEMENT_COLUMNS: &str = "id, customer_ref, customer_name, \
    CAST(phone_numbers AS TEXT) AS phone_numbers, kind, CAST(windows AS TEXT) AS windows, \
    CAST(allowance AS TEXT) AS allowance, CAST(designated_staff AS TEXT) AS designated_staff, \
    max_call_minutes, language, reason, decided_by, equality_advice_sought, advocate, starts_at, \
    ends_at, review_due, revoked_at, revoked_reason, created_at, updated_at, version, \
    customer_explanation, urgent_route, (SELECT COUNT(*) FROM appeals p \
    WHERE p.arrangement_id = arrangements.id AND p.status = 'open') AS open_appeals";

pub(crate) const CALL_COLUMNS: &str = "provider, call_id, number, arrangement_id, \
    arrangement_version, decided_at, outcome, reason, route_to, next_permitted_at, source, \
    counted, counted_before, final_status, duration_seconds";

pub(crate) const TERMINATION_COLUMNS: &str = "id, provider, call_id, caller, arrangement_id, \
    customer_ref, agent, reason, warning_given, warned_at, notes, terminated_at, hangup_result, \
    hangup_detail, claimed_until, review_outcome, reviewer, review_notes, reviewed_at";

/// Counted calls of an arrangement in `[$2, $3)`.
pub(crate) const COUNT_CALLS: &str = "SELECT COUNT(*) FROM calls WHERE arrangement_id = $1 \
    AND counted = TRUE AND decided_at >= $2 AND decided_at < $3";

/// Implements `ArrangementStore`, `CallLog` and `TerminationStore` for `$store` (which has a
/// `pool: sqlx::Pool<$db>` field and implements [`Dialect`]) with the shared SQL, and adds the
/// helpers its dialect-specific methods use.
macro_rules! shared_store {
    ($store:ident, $db:ty) => {
        /// The SQL shared with the other backend: see `crate::store::sql`.
        mod shared {
            use async_trait::async_trait;
            use chrono::{DateTime, Utc};
            use sqlx::QueryBuilder;

            use super::$store;
            use $crate::domain::{
                Arrangement, ArrangementId, ArrangementStatus, CallId, PhoneNumber, Provider,
                Review, Termination, TerminationId,
            };
            use $crate::engine::Decision;
            use $crate::store::common::{
                change_kind_str, decode_version, effective_end, encode_arrangement,
                is_unique_violation, list_limit, map_sqlx, normalise_arrangement,
                normalise_decision, now_ms, sorted_numbers, to_json, trunc, RawArrangement, RawCall,
            };
            use $crate::store::sql::{
                Dialect, JsonText, Ts, ARRANGEMENT_COLUMNS, CALL_COLUMNS, COUNT_CALLS,
                TERMINATION_COLUMNS,
            };
            use $crate::store::terminations::{hangup_str, RawTermination};
            use $crate::store::{
                ArrangementFilter, ArrangementStore, ArrangementVersion, CallLog, ChangeKind, Claim,
                DecideFn, DecisionFilter, DecisionLogEntry, NewCall, NewNotification, OutboxItem,
                RecordedDecision, ReviewStatus, StoreError, TerminationFilter, TerminationOutcome,
                TerminationStore,
            };

            type Conn = <$db as sqlx::Database>::Connection;
            type DbRow = <$db as sqlx::Database>::Row;

            fn get<'r, T>(r: &'r DbRow, column: &str) -> Result<T, StoreError>
            where
                T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
            {
                sqlx::Row::try_get(r, column).map_err(map_sqlx)
            }

            fn get_ts(r: &DbRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
                Ok(get::<Ts>(r, column)?.0)
            }

            fn get_opt_ts(r: &DbRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
                Ok(get::<Option<Ts>>(r, column)?.map(|t| t.0))
            }

            fn decode_arrangement(r: &DbRow) -> Result<Arrangement, StoreError> {
                RawArrangement {
                    id: get(r, "id")?,
                    customer_ref: get(r, "customer_ref")?,
                    customer_name: get(r, "customer_name")?,
                    phone_numbers: get(r, "phone_numbers")?,
                    kind: get(r, "kind")?,
                    windows: get(r, "windows")?,
                    allowance: get(r, "allowance")?,
                    designated_staff: get(r, "designated_staff")?,
                    max_call_minutes: get(r, "max_call_minutes")?,
                    language: get(r, "language")?,
                    reason: get(r, "reason")?,
                    decided_by: get(r, "decided_by")?,
                    equality_advice_sought: get(r, "equality_advice_sought")?,
                    advocate: get(r, "advocate")?,
                    starts_at: get_ts(r, "starts_at")?,
                    ends_at: get_ts(r, "ends_at")?,
                    review_due: get(r, "review_due")?,
                    revoked_at: get_opt_ts(r, "revoked_at")?,
                    revoked_reason: get(r, "revoked_reason")?,
                    created_at: get_ts(r, "created_at")?,
                    updated_at: get_ts(r, "updated_at")?,
                    version: get(r, "version")?,
                    customer_explanation: get(r, "customer_explanation")?,
                    open_appeals: get(r, "open_appeals")?,
                    urgent_route: get(r, "urgent_route")?,
                }
                .into_domain()
            }

            pub(super) fn decode_call(r: &DbRow) -> Result<RawCall, StoreError> {
                Ok(RawCall {
                    provider: get(r, "provider")?,
                    call_id: get(r, "call_id")?,
                    number: get(r, "number")?,
                    arrangement_id: get(r, "arrangement_id")?,
                    arrangement_version: get(r, "arrangement_version")?,
                    decided_at: get_ts(r, "decided_at")?,
                    outcome: get(r, "outcome")?,
                    reason: get(r, "reason")?,
                    route_to: get(r, "route_to")?,
                    next_permitted_at: get_opt_ts(r, "next_permitted_at")?,
                    source: get(r, "source")?,
                    counted: get(r, "counted")?,
                    counted_before: get(r, "counted_before")?,
                    final_status: get(r, "final_status")?,
                    duration_seconds: get(r, "duration_seconds")?,
                })
            }

            fn decode_termination(r: &DbRow) -> Result<Termination, StoreError> {
                RawTermination {
                    id: get(r, "id")?,
                    provider: get(r, "provider")?,
                    call_id: get(r, "call_id")?,
                    caller: get(r, "caller")?,
                    arrangement_id: get(r, "arrangement_id")?,
                    customer_ref: get(r, "customer_ref")?,
                    agent: get(r, "agent")?,
                    reason: get(r, "reason")?,
                    warning_given: get(r, "warning_given")?,
                    warned_at: get_opt_ts(r, "warned_at")?,
                    notes: get(r, "notes")?,
                    terminated_at: get_ts(r, "terminated_at")?,
                    hangup_result: get(r, "hangup_result")?,
                    hangup_detail: get(r, "hangup_detail")?,
                    claimed_until: get_ts(r, "claimed_until")?,
                    review_outcome: get(r, "review_outcome")?,
                    reviewer: get(r, "reviewer")?,
                    review_notes: get(r, "review_notes")?,
                    reviewed_at: get_opt_ts(r, "reviewed_at")?,
                }
                .into_domain()
            }

            pub(super) fn decode_outbox_item(r: &DbRow) -> Result<OutboxItem, StoreError> {
                let termination_id: String = get(r, "termination_id")?;
                let attempts: i32 = get(r, "attempts")?;
                Ok(OutboxItem {
                    id: get(r, "id")?,
                    termination_id: TerminationId::parse(&termination_id)
                        .map_err(|_| StoreError::Internal("decoding a termination id".into()))?,
                    event: get(r, "event")?,
                    payload: get(r, "payload")?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                })
            }

            /// Helpers for the dialect-specific methods: each runs inside the caller's
            /// transaction (or on any executor).
            impl $store {
                /// The pool, for store extensions in other files.
                #[allow(dead_code)]
                pub(crate) fn pool(&self) -> &sqlx::Pool<$db> {
                    &self.pool
                }

                /// `NumberInUse` if any number of `a` belongs to another arrangement whose in-force
                /// period overlaps `a`'s.
                pub(super) async fn check_numbers(
                    conn: &mut Conn,
                    a: &Arrangement,
                ) -> Result<(), StoreError> {
                    let end = effective_end(a);
                    for number in sorted_numbers(a) {
                        let other: Option<String> = sqlx::query_scalar(
                            "SELECT a.id FROM arrangement_numbers n \
                             JOIN arrangements a ON a.id = n.arrangement_id \
                             WHERE n.number = $1 AND a.id <> $2 AND a.starts_at < $3 \
                             AND $4 < (CASE WHEN a.revoked_at IS NOT NULL \
                                      AND a.revoked_at < a.ends_at \
                                      THEN a.revoked_at ELSE a.ends_at END) \
                             LIMIT 1",
                        )
                        .bind(number.as_str())
                        .bind(a.id.as_str())
                        .bind(Ts(end))
                        .bind(Ts(a.starts_at))
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(map_sqlx)?;
                        if let Some(other) = other {
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

                /// The arrangement `id`; `lock` is appended to the query (`" FOR UPDATE"` or `""`).
                pub(super) async fn fetch_arrangement(
                    conn: &mut Conn,
                    id: &ArrangementId,
                    lock: &str,
                ) -> Result<Option<Arrangement>, StoreError> {
                    let row = sqlx::query(&format!(
                        "SELECT {ARRANGEMENT_COLUMNS} FROM arrangements WHERE id = $1{lock}"
                    ))
                    .bind(id.as_str())
                    .fetch_optional(conn)
                    .await
                    .map_err(map_sqlx)?;
                    row.map(|r| decode_arrangement(&r)).transpose()
                }

                pub(super) async fn write_numbers(
                    conn: &mut Conn,
                    a: &Arrangement,
                ) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM arrangement_numbers WHERE arrangement_id = $1")
                        .bind(a.id.as_str())
                        .execute(&mut *conn)
                        .await
                        .map_err(map_sqlx)?;
                    for number in sorted_numbers(a) {
                        sqlx::query(
                            "INSERT INTO arrangement_numbers (number, arrangement_id) \
                             VALUES ($1, $2)",
                        )
                        .bind(number.as_str())
                        .bind(a.id.as_str())
                        .execute(&mut *conn)
                        .await
                        .map_err(map_sqlx)?;
                    }
                    Ok(())
                }

                pub(super) async fn write_version(
                    conn: &mut Conn,
                    a: &Arrangement,
                    change: ChangeKind,
                    actor: &str,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO arrangement_versions \
                         (arrangement_id, version, change, actor, changed_at, snapshot) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(a.id.as_str())
                    .bind(a.version)
                    .bind(change_kind_str(change))
                    .bind(actor)
                    .bind(Ts(a.updated_at))
                    .bind(JsonText(to_json(a)?))
                    .execute(conn)
                    .await
                    .map_err(map_sqlx)?;
                    Ok(())
                }

                /// Write every column of `a` (insert, or replace the current version).
                pub(super) async fn write_arrangement(
                    conn: &mut Conn,
                    a: &Arrangement,
                    insert: bool,
                ) -> Result<(), StoreError> {
                    let e = encode_arrangement(a)?;
                    let sql = if insert {
                        "INSERT INTO arrangements (customer_ref, customer_name, phone_numbers, \
                         kind, windows, allowance, designated_staff, max_call_minutes, language, \
                         reason, decided_by, equality_advice_sought, advocate, starts_at, ends_at, \
                         review_due, revoked_at, revoked_reason, created_at, updated_at, version, \
                         id, customer_explanation, urgent_route) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                         $16, $17, $18, $19, $20, $21, $22, $23, $24)"
                    } else {
                        "UPDATE arrangements SET customer_ref = $1, customer_name = $2, \
                         phone_numbers = $3, kind = $4, windows = $5, allowance = $6, \
                         designated_staff = $7, max_call_minutes = $8, language = $9, \
                         reason = $10, \
                         decided_by = $11, equality_advice_sought = $12, advocate = $13, \
                         starts_at = $14, ends_at = $15, review_due = $16, revoked_at = $17, \
                         revoked_reason = $18, created_at = $19, updated_at = $20, version = $21, \
                         customer_explanation = $23, urgent_route = $24 \
                         WHERE id = $22"
                    };
                    sqlx::query(sql)
                        .bind(&a.customer_ref)
                        .bind(&a.customer_name)
                        .bind(JsonText(e.phone_numbers))
                        .bind(e.kind)
                        .bind(JsonText(e.windows))
                        .bind(e.allowance.map(JsonText))
                        .bind(JsonText(e.designated_staff))
                        .bind(e.max_call_minutes)
                        .bind(e.language)
                        .bind(&a.reason)
                        .bind(&a.decided_by)
                        .bind(a.equality_advice_sought)
                        .bind(&a.advocate)
                        .bind(Ts(a.starts_at))
                        .bind(Ts(a.ends_at))
                        .bind(a.review_due)
                        .bind(a.revoked_at.map(Ts))
                        .bind(&a.revoked_reason)
                        .bind(Ts(a.created_at))
                        .bind(Ts(a.updated_at))
                        .bind(a.version)
                        .bind(a.id.as_str())
                        .bind(&a.customer_explanation)
                        .bind(a.urgent_route)
                        .execute(conn)
                        .await
                        .map_err(|err| {
                            if is_unique_violation(&err) {
                                StoreError::Internal(
                                    "an arrangement with this id already exists".into(),
                                )
                            } else {
                                map_sqlx(err)
                            }
                        })?;
                    Ok(())
                }

                /// Create: the arrangement row, its numbers and its first version.
                pub(super) async fn write_new_arrangement(
                    conn: &mut Conn,
                    a: &Arrangement,
                    actor: &str,
                ) -> Result<(), StoreError> {
                    Self::check_numbers(&mut *conn, a).await?;
                    Self::write_arrangement(&mut *conn, a, true).await?;
                    Self::write_numbers(&mut *conn, a).await?;
                    Self::write_version(conn, a, ChangeKind::Created, actor).await
                }

                /// The next version of `current` (read under the backend's lock): `arrangement`,
                /// normalised, when `current` is at `expected_version`.
                pub(super) fn next_version(
                    current: &Arrangement,
                    arrangement: &Arrangement,
                    expected_version: i64,
                ) -> Result<Arrangement, StoreError> {
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
                    Ok(a)
                }

                /// Write an updated version made by [`Self::next_version`].
                pub(super) async fn write_update(
                    conn: &mut Conn,
                    a: &Arrangement,
                    actor: &str,
                ) -> Result<(), StoreError> {
                    Self::check_numbers(&mut *conn, a).await?;
                    Self::write_arrangement(&mut *conn, a, false).await?;
                    Self::write_numbers(&mut *conn, a).await?;
                    Self::write_version(conn, a, ChangeKind::Updated, actor).await
                }

                /// Revoke `current` (read under the backend's lock) from `at`; an arrangement
                /// revoked already is returned as it is (`None`: nothing written).
                pub(super) async fn write_revocation(
                    conn: &mut Conn,
                    current: &Arrangement,
                    reason: &str,
                    actor: &str,
                    at: DateTime<Utc>,
                ) -> Result<Option<Arrangement>, StoreError> {
                    if current.revoked_at.is_some() {
                        return Ok(None);
                    }
                    let mut a = current.clone();
                    a.version = current.version + 1;
                    a.updated_at = trunc(at);
                    a.revoked_at = Some(trunc(at));
                    a.revoked_reason = Some(reason.to_owned());
                    Self::write_arrangement(&mut *conn, &a, false).await?;
                    Self::write_version(conn, &a, ChangeKind::Revoked, actor).await?;
                    Ok(Some(a))
                }

                pub(super) async fn find_call<'e>(
                    exec: impl sqlx::Executor<'e, Database = $db>,
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

                pub(super) fn replayed(existing: RawCall) -> Result<RecordedDecision, StoreError> {
                    Ok(RecordedDecision {
                        decision: existing.decision()?,
                        counted_before: existing.counted_before(),
                        replayed: true,
                    })
                }

                pub(super) async fn count_in<'e>(
                    exec: impl sqlx::Executor<'e, Database = $db>,
                    arrangement_id: &ArrangementId,
                    from: DateTime<Utc>,
                    to: DateTime<Utc>,
                ) -> Result<u32, StoreError> {
                    let n: i64 = sqlx::query_scalar(COUNT_CALLS)
                        .bind(arrangement_id.as_str())
                        .bind(Ts(from))
                        .bind(Ts(to))
                        .fetch_one(exec)
                        .await
                        .map_err(map_sqlx)?;
                    Ok(u32::try_from(n).unwrap_or(u32::MAX))
                }

                /// Count the calls in the period of `call` and decide. Runs inside the caller's
                /// transaction, which serialises decisions under the arrangement. The decide
                /// function is the pure engine; should it ever panic, this call fails alone
                /// (with SQLite's group commit, other calls share the transaction).
                pub(super) async fn decide_in(
                    conn: &mut Conn,
                    call: &NewCall,
                    decide: &DecideFn,
                ) -> Result<(Decision, u32), StoreError> {
                    let counted_before = match call.period {
                        Some((from, to)) => {
                            Self::count_in(conn, &call.arrangement.id, from, to).await?
                        }
                        None => 0,
                    };
                    let decision = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        decide(counted_before)
                    }))
                    .map_err(|_| StoreError::Internal("deciding the call failed".into()))?;
                    Ok((normalise_decision(decision), counted_before))
                }

                /// Record a decided call; the driver's error is returned as it is, so that a
                /// backend can recognise a unique violation.
                pub(super) async fn insert_call(
                    conn: &mut Conn,
                    call: &NewCall,
                    decision: &Decision,
                    counted_before: u32,
                ) -> Result<(), sqlx::Error> {
                    sqlx::query(&format!(
                        "INSERT INTO calls ({CALL_COLUMNS}) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL)"
                    ))
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
                    .bind(Ts(trunc(call.at)))
                    .bind(decision.outcome.as_str())
                    .bind(decision.reason.as_str())
                    .bind(decision.route_to.as_ref().map(|s| s.as_str().to_owned()))
                    .bind(decision.next_permitted_at.map(Ts))
                    .bind(call.source.as_str())
                    .bind(decision.is_counted())
                    .bind(i64::from(counted_before))
                    .execute(conn)
                    .await?;
                    Ok(())
                }

                pub(super) async fn termination_by_id<'e>(
                    exec: impl sqlx::Executor<'e, Database = $db>,
                    id: &TerminationId,
                ) -> Result<Option<Termination>, StoreError> {
                    let row = sqlx::query(&format!(
                        "SELECT {TERMINATION_COLUMNS} FROM terminations WHERE id = $1"
                    ))
                    .bind(id.as_str())
                    .fetch_optional(exec)
                    .await
                    .map_err(map_sqlx)?;
                    row.map(|r| decode_termination(&r)).transpose()
                }

                /// Record the outcome of a provisional termination and enqueue its notification,
                /// inside the caller's transaction. Returns the stored record.
                pub(super) async fn complete_in(
                    conn: &mut Conn,
                    id: &TerminationId,
                    outcome: &TerminationOutcome,
                    notification: Option<&NewNotification>,
                ) -> Result<Termination, StoreError> {
                    let done = sqlx::query(
                        "UPDATE terminations SET caller = $1, arrangement_id = $2, \
                         customer_ref = $3, \
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
                    .execute(&mut *conn)
                    .await
                    .map_err(map_sqlx)?;
                    if let (1, Some(n)) = (done.rows_affected(), notification) {
                        sqlx::query(
                            "INSERT INTO termination_outbox \
                             (termination_id, event, payload, attempts, next_attempt_at, \
                             created_at) \
                             VALUES ($1, $2, $3, 0, $4, $5) \
                             ON CONFLICT (termination_id, event) DO NOTHING",
                        )
                        .bind(id.as_str())
                        .bind(n.event.as_str())
                        .bind(n.payload.as_str())
                        .bind(Ts(trunc(n.due_at)))
                        .bind(Ts(now_ms()))
                        .execute(&mut *conn)
                        .await
                        .map_err(map_sqlx)?;
                    }
                    Self::termination_by_id(conn, id)
                        .await?
                        .ok_or(StoreError::NotFound)
                }

                /// Record a review, once, on `conn`.
                pub(super) async fn review_in(
                    conn: &mut Conn,
                    id: &TerminationId,
                    review: &Review,
                ) -> Result<Termination, StoreError> {
                    let done = sqlx::query(
                        "UPDATE terminations SET review_outcome = $1, reviewer = $2, \
                         review_notes = $3, reviewed_at = $4 \
                         WHERE id = $5 AND review_outcome IS NULL",
                    )
                    .bind(review.outcome.as_str())
                    .bind(review.reviewer.as_str())
                    .bind(review.notes.clone())
                    .bind(Ts(trunc(review.reviewed_at)))
                    .bind(id.as_str())
                    .execute(&mut *conn)
                    .await
                    .map_err(map_sqlx)?;
                    match Self::termination_by_id(conn, id).await? {
                        None => Err(StoreError::NotFound),
                        Some(_) if done.rows_affected() == 0 => Err(StoreError::AlreadyReviewed),
                        Some(t) => Ok(t),
                    }
                }
            }

            #[async_trait]
            impl ArrangementStore for $store {
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
                    self.insert_arrangement(&a, actor).await?;
                    Ok(a)
                }

                async fn get_arrangement(
                    &self,
                    id: &ArrangementId,
                ) -> Result<Option<Arrangement>, StoreError> {
                    let mut conn = self.pool.acquire().await.map_err(map_sqlx)?;
                    Self::fetch_arrangement(&mut conn, id, "").await
                }

                async fn list_arrangements(
                    &self,
                    filter: &ArrangementFilter,
                ) -> Result<Vec<Arrangement>, StoreError> {
                    let now = Ts(filter.now.unwrap_or_else(Utc::now));
                    let mut qb: QueryBuilder<$db> = QueryBuilder::new(format!(
                        "SELECT {ARRANGEMENT_COLUMNS} FROM arrangements WHERE 1 = 1"
                    ));
                    if let Some(phone) = &filter.phone {
                        qb.push(
                            " AND id IN (SELECT arrangement_id FROM arrangement_numbers \
                             WHERE number = ",
                        )
                        .push_bind(phone.as_str().to_owned())
                        .push(")");
                    }
                    match filter.status {
                        None => {}
                        Some(ArrangementStatus::Revoked) => {
                            qb.push(" AND revoked_at IS NOT NULL AND revoked_at <= ")
                                .push_bind(now);
                        }
                        Some(other) => {
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
                    if let Some(before) = filter.review_due_before {
                        qb.push(" AND review_due < ").push_bind(before);
                    }
                    if let Some(from) = filter.review_due_from {
                        qb.push(" AND review_due >= ").push_bind(from);
                    }
                    if let Some(r) = &filter.customer_ref {
                        qb.push(" AND UPPER(customer_ref) = UPPER(")
                            .push_bind(r.trim().to_owned())
                            .push(")");
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
                    self.update_arrangement_locked(arrangement, expected_version, actor)
                        .await
                }

                async fn revoke_arrangement(
                    &self,
                    id: &ArrangementId,
                    reason: &str,
                    actor: &str,
                    at: DateTime<Utc>,
                ) -> Result<Arrangement, StoreError> {
                    self.revoke_arrangement_locked(id, reason, actor, at).await
                }

                async fn arrangement_history(
                    &self,
                    id: &ArrangementId,
                ) -> Result<Vec<ArrangementVersion>, StoreError> {
                    let rows = sqlx::query(
                        "SELECT version, change, actor, changed_at, \
                         CAST(snapshot AS TEXT) AS snapshot \
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
                            let change: String = get(r, "change")?;
                            let snapshot: String = get(r, "snapshot")?;
                            decode_version(
                                get(r, "version")?,
                                &change,
                                get(r, "actor")?,
                                get_ts(r, "changed_at")?,
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

                fn subscribe_changes(
                    &self,
                ) -> Option<tokio::sync::broadcast::Receiver<Option<Vec<PhoneNumber>>>> {
                    self.changes()
                }
            }

            #[async_trait]
            impl CallLog for $store {
                async fn decide_and_record(
                    &self,
                    call: NewCall,
                    decide: DecideFn,
                ) -> Result<RecordedDecision, StoreError> {
                    self.decide_and_record_locked(call, decide).await
                }

                async fn count_calls(
                    &self,
                    arrangement_id: &ArrangementId,
                    from: DateTime<Utc>,
                    to: DateTime<Utc>,
                ) -> Result<u32, StoreError> {
                    Self::count_in(&self.pool, arrangement_id, from, to).await
                }

                async fn list_decisions(
                    &self,
                    filter: &DecisionFilter,
                ) -> Result<Vec<DecisionLogEntry>, StoreError> {
                    let mut qb: QueryBuilder<$db> =
                        QueryBuilder::new(format!("SELECT {CALL_COLUMNS} FROM calls WHERE 1 = 1"));
                    if let Some(phone) = &filter.phone {
                        qb.push(" AND number = ")
                            .push_bind(phone.as_str().to_owned());
                    }
                    if let Some(since) = filter.since {
                        qb.push(" AND decided_at >= ").push_bind(Ts(since));
                    }
                    if let Some(until) = filter.until {
                        qb.push(" AND decided_at < ").push_bind(Ts(until));
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
                    let _turn = self.write_turn().await;
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
                    let number: Option<String> = sqlx::query_scalar(
                        "SELECT number FROM calls WHERE provider = $1 AND call_id = $2",
                    )
                    .bind(provider.as_str())
                    .bind(call_id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_sqlx)?;
                    number
                        .map(|raw| PhoneNumber::parse(&raw))
                        .transpose()
                        .map_err(|_| StoreError::Internal("decoding a logged number".into()))
                }

                async fn purge_decisions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                    let _turn = self.write_turn().await;
                    let done = sqlx::query("DELETE FROM calls WHERE decided_at < $1")
                        .bind(Ts(before))
                        .execute(&self.pool)
                        .await
                        .map_err(map_sqlx)?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl TerminationStore for $store {
                async fn claim_termination(&self, t: &Termination) -> Result<Claim, StoreError> {
                    let _turn = self.write_turn().await;
                    let mut t = t.clone();
                    t.terminated_at = trunc(t.terminated_at);
                    t.claimed_until = trunc(t.claimed_until);
                    t.warned_at = t.warned_at.map(trunc);
                    t.review = None;
                    let done = sqlx::query(&format!(
                        "INSERT INTO terminations ({TERMINATION_COLUMNS}) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                         NULL, NULL, NULL, NULL) \
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
                    .bind(t.warned_at.map(Ts))
                    .bind(t.notes.clone())
                    .bind(Ts(t.terminated_at))
                    .bind(hangup_str(t.hangup))
                    .bind(t.hangup_detail.clone())
                    .bind(Ts(t.claimed_until))
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx)?;
                    if done.rows_affected() == 1 {
                        return Ok(Claim::Created(t));
                    }
                    self.find_termination(t.provider, &t.call_id)
                        .await?
                        .map(Claim::Existing)
                        .ok_or_else(|| {
                            StoreError::Internal("a claimed termination vanished".into())
                        })
                }

                async fn lease_stale_termination(
                    &self,
                    id: &TerminationId,
                    now: DateTime<Utc>,
                    until: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let _turn = self.write_turn().await;
                    let done = sqlx::query(
                        "UPDATE terminations SET claimed_until = $1 \
                         WHERE id = $2 AND hangup_result = 'pending' AND claimed_until < $3",
                    )
                    .bind(Ts(trunc(until)))
                    .bind(id.as_str())
                    .bind(Ts(now))
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
                    .bind(Ts(now))
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
                    self.complete_termination_locked(id, outcome, notification)
                        .await
                }

                async fn get_termination(
                    &self,
                    id: &TerminationId,
                ) -> Result<Option<Termination>, StoreError> {
                    Self::termination_by_id(&self.pool, id).await
                }

                async fn find_termination(
                    &self,
                    provider: Provider,
                    call_id: &CallId,
                ) -> Result<Option<Termination>, StoreError> {
                    let row = sqlx::query(&format!(
                        "SELECT {TERMINATION_COLUMNS} FROM terminations \
                         WHERE provider = $1 AND call_id = $2"
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
                    let mut qb: QueryBuilder<$db> = QueryBuilder::new(format!(
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
                        qb.push(" AND terminated_at >= ").push_bind(Ts(since));
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
                    self.review_termination_locked(id, review).await
                }

                async fn purge_reviewed_terminations(
                    &self,
                    before: DateTime<Utc>,
                ) -> Result<u64, StoreError> {
                    let _turn = self.write_turn().await;
                    let done = sqlx::query(
                        "DELETE FROM terminations \
                         WHERE review_outcome IS NOT NULL AND terminated_at < $1",
                    )
                    .bind(Ts(before))
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
                    self.lease_due_notifications(now, lease_until, limit).await
                }

                async fn notification_delivered(
                    &self,
                    id: i64,
                    at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let _turn = self.write_turn().await;
                    sqlx::query(
                        "UPDATE termination_outbox SET delivered_at = $1, leased_until = NULL \
                         WHERE id = $2",
                    )
                    .bind(Ts(trunc(at)))
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
                    let _turn = self.write_turn().await;
                    sqlx::query(
                        "UPDATE termination_outbox SET attempts = attempts + 1, \
                         next_attempt_at = $1, leased_until = NULL, last_error = $2 WHERE id = $3",
                    )
                    .bind(Ts(trunc(retry_at)))
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
                    started_at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    self.release_leases(started_at).await
                }
            }
        }
    };
}

pub(crate) use shared_store;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A millisecond instant (what both stores keep).
    fn instant() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
    }

    #[tokio::test]
    async fn sqlite_keeps_instants_as_integer_milliseconds_and_json_as_text() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let t = instant();
        let (kind, ms): (String, i64) = sqlx::query_as("SELECT typeof($1), $1")
            .bind(Ts(t))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((kind.as_str(), ms), ("integer", t.timestamp_millis()));
        let back: Ts = sqlx::query_scalar("SELECT $1")
            .bind(Ts(t))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(back, Ts(t));
        let (kind, text): (String, String) = sqlx::query_as("SELECT typeof($1), $1")
            .bind(JsonText(r#"["+442920123456"]"#.into()))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            (kind.as_str(), text.as_str()),
            ("text", r#"["+442920123456"]"#)
        );
    }

    #[tokio::test]
    async fn postgres_keeps_instants_as_timestamptz_and_json_as_jsonb() {
        let Some(url) = std::env::var("FAIRLINE_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            eprintln!("skipped: FAIRLINE_TEST_POSTGRES_URL not set");
            return;
        };
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let t = instant();
        let (kind, back): (String, Ts) = sqlx::query_as("SELECT pg_typeof($1)::text, $1")
            .bind(Ts(t))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((kind.as_str(), back), ("timestamp with time zone", Ts(t)));
        let (kind, text): (String, String) =
            sqlx::query_as("SELECT pg_typeof($1)::text, CAST($1 AS TEXT)")
                .bind(JsonText(r#"{"a": [1, 2]}"#.into()))
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(
            (kind.as_str(), text.as_str()),
            ("jsonb", r#"{"a": [1, 2]}"#)
        );
        pool.close().await;
    }
}
