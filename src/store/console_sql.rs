//! [`ConsoleStore`] for SQLite and PostgreSQL: one SQL text with `$N` placeholders for both;
//! only the binding of instants differs (INTEGER ms in SQLite, TIMESTAMPTZ in PostgreSQL).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::common::{enum_from, enum_str, map_sqlx, trunc};
use super::console::{ConsoleSession, ConsoleStore, LiveCall, PendingLogin};
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::StoreError;
use crate::config::Role;
use crate::domain::{ArrangementId, CallId, PhoneNumber, Provider, StaffId};

const INSERT_SESSION: &str = "INSERT INTO console_sessions \
    (id_hash, csrf_token, name, role, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6)";
const GET_SESSION: &str = "SELECT id_hash, csrf_token, name, role, created_at, last_seen_at \
    FROM console_sessions WHERE id_hash = $1";
const TOUCH_SESSION: &str = "UPDATE console_sessions SET last_seen_at = $2 \
    WHERE id_hash = $1 AND last_seen_at < $2";
const DELETE_SESSION: &str = "DELETE FROM console_sessions WHERE id_hash = $1";
const PURGE_SESSIONS: &str =
    "DELETE FROM console_sessions WHERE last_seen_at < $1 OR created_at < $2";
const LIVE_COLUMNS: &str =
    "provider, call_id, started_at, caller, outcome, reason, route_to, arrangement_id";
const DELETE_LIVE: &str = "DELETE FROM live_calls WHERE provider = $1 AND call_id = $2";
const PURGE_LIVE: &str = "DELETE FROM live_calls WHERE started_at < $1";
const INSERT_LOGIN: &str = "INSERT INTO console_logins \
    (state_hash, nonce, pkce_verifier, created_at) VALUES ($1, $2, $3, $4)";
const TAKE_LOGIN: &str = "DELETE FROM console_logins WHERE state_hash = $1 \
    RETURNING state_hash, nonce, pkce_verifier, created_at";
const PURGE_LOGINS: &str = "DELETE FROM console_logins WHERE created_at < $1";
/// The most live calls one page lists.
const MAX_LIVE: i64 = 1000;

fn role_str(r: Role) -> &'static str {
    r.as_str()
}

fn role_from(s: &str) -> Result<Role, StoreError> {
    match s {
        "agent" => Ok(Role::Agent),
        "manager" => Ok(Role::Manager),
        other => Err(StoreError::Internal(format!(
            "unknown session role {other:?}"
        ))),
    }
}

fn from_ms(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Internal("instant out of range".into()))
}

fn bad(what: &str) -> impl Fn(crate::domain::IdError) -> StoreError + '_ {
    move |e| StoreError::Internal(format!("decoding {what}: {}", e.0))
}

/// The parts of a live-call row that are text, decoded.
struct LiveText {
    provider: String,
    call_id: String,
    caller: Option<String>,
    outcome: String,
    reason: String,
    route_to: Option<String>,
    arrangement_id: Option<String>,
}

impl LiveText {
    fn decode(self, started_at: DateTime<Utc>) -> Result<LiveCall, StoreError> {
        Ok(LiveCall {
            provider: self.provider.parse().map_err(bad("provider"))?,
            call_id: CallId::parse(&self.call_id).map_err(bad("call id"))?,
            started_at,
            caller: match self.caller {
                Some(c) => {
                    Some(PhoneNumber::parse(&c).map_err(|_| {
                        StoreError::Internal("decoding a live call's caller".into())
                    })?)
                }
                None => None,
            },
            outcome: enum_from(&self.outcome, "outcome")?,
            reason: enum_from(&self.reason, "reason")?,
            route_to: match self.route_to {
                Some(s) => Some(StaffId::parse(&s).map_err(bad("route_to"))?),
                None => None,
            },
            arrangement_id: match self.arrangement_id {
                Some(s) => Some(ArrangementId::parse(&s).map_err(bad("arrangement id"))?),
                None => None,
            },
        })
    }
}

fn live_text<R: Row>(r: &R) -> Result<LiveText, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(LiveText {
        provider: r.try_get("provider").map_err(map_sqlx)?,
        call_id: r.try_get("call_id").map_err(map_sqlx)?,
        caller: r.try_get("caller").map_err(map_sqlx)?,
        outcome: r.try_get("outcome").map_err(map_sqlx)?,
        reason: r.try_get("reason").map_err(map_sqlx)?,
        route_to: r.try_get("route_to").map_err(map_sqlx)?,
        arrangement_id: r.try_get("arrangement_id").map_err(map_sqlx)?,
    })
}

struct SessionText {
    id_hash: String,
    csrf_token: String,
    name: String,
    role: String,
}

fn session_text<R: Row>(r: &R) -> Result<SessionText, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(SessionText {
        id_hash: r.try_get("id_hash").map_err(map_sqlx)?,
        csrf_token: r.try_get("csrf_token").map_err(map_sqlx)?,
        name: r.try_get("name").map_err(map_sqlx)?,
        role: r.try_get("role").map_err(map_sqlx)?,
    })
}

impl SessionText {
    fn decode(
        self,
        created_at: DateTime<Utc>,
        last_seen_at: DateTime<Utc>,
    ) -> Result<ConsoleSession, StoreError> {
        Ok(ConsoleSession {
            id_hash: self.id_hash,
            csrf_token: self.csrf_token,
            name: self.name,
            role: role_from(&self.role)?,
            created_at,
            last_seen_at,
        })
    }
}

/// The text columns of a live call, encoded.
fn live_row(c: &LiveCall) -> Result<[Option<String>; 7], StoreError> {
    Ok([
        Some(c.provider.as_str().to_owned()),
        Some(c.call_id.as_str().to_owned()),
        c.caller.as_ref().map(|n| n.as_str().to_owned()),
        Some(enum_str(&c.outcome)?),
        Some(enum_str(&c.reason)?),
        c.route_to.as_ref().map(|s| s.as_str().to_owned()),
        c.arrangement_id.as_ref().map(|s| s.as_str().to_owned()),
    ])
}

/// How the placeholders of a batch insert are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholders {
    /// `$1, $2, …` (PostgreSQL).
    Numbered,
    /// `?` (SQLite). Numbered parameters cost SQLite a linear search of the statement's names
    /// for every one of them, when parsing and again when sqlx binds: for 1,600 parameters
    /// that quadratic search was the largest single cost of a saturated webhook's profile.
    Anonymous,
}

/// `INSERT … VALUES ($1…$8), ($9…$16)…` (or `(?, …)`) for `n` calls; the instant is the third
/// column.
fn insert_live_sql(n: usize, conflict: &str, style: Placeholders) -> String {
    let mut sql = format!("INSERT INTO live_calls ({LIVE_COLUMNS}) VALUES ");
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..8 {
            if col > 0 {
                sql.push_str(", ");
            }
            match style {
                Placeholders::Numbered => {
                    sql.push('$');
                    sql.push_str(&(i * 8 + col + 1).to_string());
                }
                Placeholders::Anonymous => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(conflict);
    sql
}

/// The sizes a batch is cut into: a few fixed statements, each prepared once and kept in the
/// connection's statement cache (one statement text per batch length would churn it).
/// A full batch of the live-call writer (500 rows) is one statement: one hand-off to the
/// database's thread instead of four. SQLite allows 32766 parameters and PostgreSQL 65535;
/// the largest uses 4000.
const INSERT_CHUNKS: [usize; 5] = [500, 100, 20, 5, 1];

/// `calls` cut into slices of the sizes of [`INSERT_CHUNKS`], largest first.
fn live_chunks(calls: &[LiveCall]) -> Vec<&[LiveCall]> {
    let mut out = Vec::new();
    let mut rest = calls;
    for size in INSERT_CHUNKS {
        while rest.len() >= size {
            let (chunk, tail) = rest.split_at(size);
            out.push(chunk);
            rest = tail;
        }
    }
    out
}

const ON_CONFLICT: &str = "ON CONFLICT (provider, call_id) DO NOTHING";

macro_rules! console_store_impl {
    ($store:ty, $instant:expr, $decode_instant:expr, $instant_ty:ty, $placeholders:expr) => {
        #[async_trait]
        impl ConsoleStore for $store {
            async fn create_session(&self, s: &ConsoleSession) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                sqlx::query(INSERT_SESSION)
                    .bind(&s.id_hash)
                    .bind(&s.csrf_token)
                    .bind(&s.name)
                    .bind(role_str(s.role))
                    .bind($instant(s.created_at))
                    .bind($instant(s.last_seen_at))
                    .execute(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                Ok(())
            }

            async fn get_session(
                &self,
                id_hash: &str,
            ) -> Result<Option<ConsoleSession>, StoreError> {
                let row = sqlx::query(GET_SESSION)
                    .bind(id_hash)
                    .fetch_optional(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                let Some(r) = row else {
                    return Ok(None);
                };
                let created: $instant_ty = r.try_get("created_at").map_err(map_sqlx)?;
                let seen: $instant_ty = r.try_get("last_seen_at").map_err(map_sqlx)?;
                let text = session_text(&r)?;
                Ok(Some(
                    text.decode($decode_instant(created)?, $decode_instant(seen)?)?,
                ))
            }

            async fn touch_session(
                &self,
                id_hash: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                sqlx::query(TOUCH_SESSION)
                    .bind(id_hash)
                    .bind($instant(at))
                    .execute(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                Ok(())
            }

            async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                sqlx::query(DELETE_SESSION)
                    .bind(id_hash)
                    .execute(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                Ok(())
            }

            async fn purge_sessions(
                &self,
                idle_before: DateTime<Utc>,
                created_before: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let _turn = self.write_turn().await;
                let r = sqlx::query(PURGE_SESSIONS)
                    .bind($instant(idle_before))
                    .bind($instant(created_before))
                    .execute(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                // Sign-ins under way are good for minutes; anything as old as a session is gone.
                sqlx::query(PURGE_LOGINS)
                    .bind($instant(idle_before.min(created_before)))
                    .execute(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                Ok(r.rows_affected())
            }

            async fn insert_live_calls(&self, calls: &[LiveCall]) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                for chunk in live_chunks(calls) {
                    let sql = insert_live_sql(chunk.len(), ON_CONFLICT, $placeholders);
                    let mut q = sqlx::query(&sql);
                    for c in chunk {
                        let [provider, call_id, caller, outcome, reason, route_to, arr] =
                            live_row(c)?;
                        q = q
                            .bind(provider)
                            .bind(call_id)
                            .bind($instant(c.started_at))
                            .bind(caller)
                            .bind(outcome)
                            .bind(reason)
                            .bind(route_to)
                            .bind(arr);
                    }
                    q.execute(self.live_pool()).await.map_err(map_sqlx)?;
                }
                Ok(())
            }

            async fn delete_live_call(
                &self,
                provider: Provider,
                call_id: &CallId,
            ) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await;
                let r = sqlx::query(DELETE_LIVE)
                    .bind(provider.as_str())
                    .bind(call_id.as_str())
                    .execute(self.live_pool())
                    .await
                    .map_err(map_sqlx)?;
                Ok(r.rows_affected() > 0)
            }

            async fn get_live_call(
                &self,
                provider: Provider,
                call_id: &CallId,
            ) -> Result<Option<LiveCall>, StoreError> {
                let sql = format!(
                    "SELECT {LIVE_COLUMNS} FROM live_calls WHERE provider = $1 AND call_id = $2"
                );
                let row = sqlx::query(&sql)
                    .bind(provider.as_str())
                    .bind(call_id.as_str())
                    .fetch_optional(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                match row {
                    None => Ok(None),
                    Some(r) => {
                        let started: $instant_ty = r.try_get("started_at").map_err(map_sqlx)?;
                        Ok(Some(live_text(&r)?.decode($decode_instant(started)?)?))
                    }
                }
            }

            async fn list_live_calls(
                &self,
                since: DateTime<Utc>,
            ) -> Result<Vec<LiveCall>, StoreError> {
                let sql = format!(
                    "SELECT {LIVE_COLUMNS} FROM live_calls WHERE started_at >= $1 \
                     ORDER BY started_at DESC, call_id LIMIT $2"
                );
                let rows = sqlx::query(&sql)
                    .bind($instant(since))
                    .bind(MAX_LIVE)
                    .fetch_all(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let started: $instant_ty = r.try_get("started_at").map_err(map_sqlx)?;
                    out.push(live_text(r)?.decode($decode_instant(started)?)?);
                }
                Ok(out)
            }

            async fn purge_live_calls(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                let _turn = self.write_turn().await;
                let r = sqlx::query(PURGE_LIVE)
                    .bind($instant(before))
                    .execute(self.live_pool())
                    .await
                    .map_err(map_sqlx)?;
                Ok(r.rows_affected())
            }

            async fn create_login(&self, l: &PendingLogin) -> Result<(), StoreError> {
                let _turn = self.write_turn().await;
                sqlx::query(INSERT_LOGIN)
                    .bind(&l.state_hash)
                    .bind(&l.nonce)
                    .bind(&l.pkce_verifier)
                    .bind($instant(l.created_at))
                    .execute(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                Ok(())
            }

            async fn take_login(
                &self,
                state_hash: &str,
            ) -> Result<Option<PendingLogin>, StoreError> {
                let _turn = self.write_turn().await;
                let row = sqlx::query(TAKE_LOGIN)
                    .bind(state_hash)
                    .fetch_optional(self.console_pool())
                    .await
                    .map_err(map_sqlx)?;
                let Some(r) = row else {
                    return Ok(None);
                };
                let created: $instant_ty = r.try_get("created_at").map_err(map_sqlx)?;
                Ok(Some(PendingLogin {
                    state_hash: r.try_get("state_hash").map_err(map_sqlx)?,
                    nonce: r.try_get("nonce").map_err(map_sqlx)?,
                    pkce_verifier: r.try_get("pkce_verifier").map_err(map_sqlx)?,
                    created_at: $decode_instant(created)?,
                }))
            }
        }
    };
}

fn sqlite_instant(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn pg_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    trunc(t)
}

fn pg_decode(t: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
    Ok(t)
}

console_store_impl!(
    SqliteStore,
    sqlite_instant,
    from_ms,
    i64,
    Placeholders::Anonymous
);
console_store_impl!(
    PgStore,
    pg_instant,
    pg_decode,
    DateTime<Utc>,
    Placeholders::Numbered
);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_insert_numbers_its_placeholders_in_rows_of_eight() {
        let sql = insert_live_sql(2, ON_CONFLICT, Placeholders::Numbered);
        assert!(sql.contains("($1, $2, $3, $4, $5, $6, $7, $8), ($9, $10,"));
        assert!(sql.ends_with(
            "($9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (provider, call_id) DO NOTHING"
        ));
    }

    #[test]
    fn a_sqlite_batch_insert_uses_anonymous_placeholders() {
        let sql = insert_live_sql(2, ON_CONFLICT, Placeholders::Anonymous);
        assert!(!sql.contains('$'), "{sql}");
        assert_eq!(sql.matches('?').count(), 16);
        assert!(
            sql.contains("VALUES (?, ?, ?, ?, ?, ?, ?, ?), (?, ?,"),
            "{sql}"
        );
    }

    #[test]
    fn a_batch_is_cut_into_the_fixed_chunk_sizes_in_order() {
        for n in [0usize, 1, 9, 10, 11, 199, 200, 263, 500, 1137] {
            let calls: Vec<LiveCall> = (0..n).map(live_call).collect();
            let chunks = live_chunks(&calls);
            assert!(
                chunks.iter().all(|c| INSERT_CHUNKS.contains(&c.len())),
                "{n}"
            );
            let ids: Vec<&str> = chunks
                .iter()
                .flat_map(|c| c.iter().map(|x| x.call_id.as_str()))
                .collect();
            let expected: Vec<&str> = calls.iter().map(|x| x.call_id.as_str()).collect();
            assert_eq!(ids, expected, "{n}");
        }
        let calls: Vec<LiveCall> = (0..1137).map(live_call).collect();
        let sizes: Vec<usize> = live_chunks(&calls).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [500, 500, 100, 20, 5, 5, 5, 1, 1]);
    }

    fn live_call(i: usize) -> LiveCall {
        LiveCall {
            provider: Provider::Twilio,
            call_id: CallId::parse(&format!("CA{i:032}")).unwrap(),
            caller: None,
            started_at: Utc::now(),
            outcome: crate::engine::Outcome::Continue,
            reason: crate::engine::Reason::UnrecognisedNumber,
            route_to: None,
            arrangement_id: None,
        }
    }
}
