//! Group commit for decided calls on PostgreSQL.
//!
//! Deciding a call locks its arrangement's row (`FOR UPDATE`) until the commit, so the calls
//! of one arrangement were written one transaction — one commit, one WAL flush — after another,
//! on every instance. Here one writer task per instance takes the first queued call and
//! whatever has queued behind it (up to [`MAX_BATCH`]) and writes them in ONE transaction:
//! it locks the batch's arrangements (in id order, so that instances never wait on each other
//! in a cycle), looks the batch's call ids up together, counts each period once, decides every
//! call in arrival order ([`batch::plan`]), inserts the rows together and commits. Every
//! waiter is answered after the commit.
//!
//! - A batch of one call, and a batch whose statements fail (a call id recorded meanwhile by
//!   another instance under an arrangement that changed, say), are written call by call, each
//!   in its own transaction as before ([`PgStore::decide_one`]): a call that cannot be written
//!   fails alone.
//! - A failed commit fails every waiter of the batch with the store's error (the webhook then
//!   decides without counting, as on any store failure).
//! - A waiter that gave up before its turn is skipped: nothing is written for it.

use std::collections::{HashMap, HashSet};

use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::mpsc;

use super::PgStore;
use crate::domain::ArrangementId;
use crate::store::batch::{
    self, copy_error, fail_all, Answer, BatchCall, Decided, DecisionQueue, Request, MAX_BATCH,
};
use crate::store::common::{map_sqlx, trunc, RawCall};
use crate::store::sql::{Ts, CALL_COLUMNS};
use crate::store::StoreError;

/// Start the writer task on the current runtime; it ends when the queue is dropped.
pub(super) fn start(pool: PgPool) -> DecisionQueue {
    let (queue, rx) = DecisionQueue::new();
    tokio::spawn(run(pool, rx));
    queue
}

async fn run(pool: PgPool, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write_batch(&pool, std::mem::take(&mut batch)).await;
    }
}

/// Write `batch` in one transaction (or call by call: see the module's notes).
pub(super) async fn write_batch(pool: &PgPool, batch: Vec<Request>) {
    let batch: Vec<Request> = batch.into_iter().filter(|r| !r.reply.is_closed()).collect();
    if batch.len() < 2 {
        return call_by_call(pool, batch).await;
    }
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, &map_sqlx(e)),
    };
    match in_one_pass(&mut tx, &batch).await {
        Ok(answers) => {
            let committed = tx.commit().await.map_err(map_sqlx);
            for (r, answer) in batch.into_iter().zip(answers) {
                let Some(answer) = answer else { continue };
                let _ = r.reply.send(match &committed {
                    Ok(()) => answer,
                    Err(e) => Err(copy_error(e)),
                });
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "writing a batch of decided calls again call by call");
            let _ = tx.rollback().await;
            call_by_call(pool, batch).await;
        }
    }
}

/// Each call in its own transaction, in arrival order.
async fn call_by_call(pool: &PgPool, batch: Vec<Request>) {
    for r in batch {
        if r.reply.is_closed() {
            continue;
        }
        let result = PgStore::decide_one(pool, &r.call, &r.decide).await;
        let _ = r.reply.send(result);
    }
}

async fn in_one_pass(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[Request],
) -> Result<Vec<Answer>, StoreError> {
    let calls = batch::batch_calls(batch);
    // Lock in id order: two instances locking overlapping sets cannot wait on each other.
    let locked: Vec<String> =
        sqlx::query_scalar("SELECT id FROM arrangements WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(batch::arrangement_ids(&calls))
            .fetch_all(&mut **tx)
            .await
            .map_err(map_sqlx)?;
    let present: HashSet<String> = locked.into_iter().collect();
    let earlier = decided_before(tx, &calls).await?;
    let mut stored = HashMap::new();
    for (key, (from, to)) in batch::count_keys(&calls, &present) {
        let id = ArrangementId::parse(&key.0)
            .map_err(|_| StoreError::Internal("an arrangement id in a batch".into()))?;
        let n = PgStore::count_in(&mut **tx, &id, from, to).await?;
        stored.insert(key, n);
    }
    let (answers, decided) = batch::plan(&calls, &present, &earlier, &stored);
    insert_decided(tx, &calls, &decided).await?;
    Ok(answers)
}

/// The stored rows of the batch's calls that were decided before, by (provider, call id).
async fn decided_before(
    tx: &mut Transaction<'static, Postgres>,
    calls: &[BatchCall<'_>],
) -> Result<HashMap<(String, String), RawCall>, StoreError> {
    let wanted = batch::call_keys(calls);
    let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE provider = $1 AND call_id = ANY($2)");
    let mut found = HashMap::new();
    for same_provider in wanted.chunk_by(|a, b| a.0 == b.0) {
        let ids: Vec<String> = same_provider.iter().map(|k| k.1.to_owned()).collect();
        let rows = sqlx::query(&sql)
            .bind(same_provider[0].0)
            .bind(ids)
            .fetch_all(&mut **tx)
            .await
            .map_err(map_sqlx)?;
        for row in rows {
            let raw = super::shared::decode_call(&row)?;
            found.insert((raw.provider.clone(), raw.call_id.clone()), raw);
        }
    }
    Ok(found)
}

/// The sizes the batch's rows are inserted in, largest first (a few fixed statement texts).
const INSERT_SIZES: [usize; 4] = [64, 16, 4, 1];

/// The parameters of one row.
const ROW_PARAMETERS: usize = 13;

fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=ROW_PARAMETERS)
                .map(|c| format!("${}", r * ROW_PARAMETERS + c))
                .collect();
            format!("({}, NULL, NULL)", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO calls ({CALL_COLUMNS}) VALUES {}",
        values.join(", ")
    )
}

/// Insert the decided calls' rows, in arrival order.
async fn insert_decided(
    tx: &mut Transaction<'static, Postgres>,
    calls: &[BatchCall<'_>],
    decided: &[Decided],
) -> Result<(), StoreError> {
    let mut rest = decided;
    for size in INSERT_SIZES {
        while rest.len() >= size {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let sql = insert_sql(size);
            let mut query = sqlx::query(&sql);
            for d in chunk {
                let call = calls[d.index].call;
                let decision = &d.decision;
                query = query
                    .bind(call.provider.as_str())
                    .bind(call.call_id.as_str())
                    .bind(call.number.as_str())
                    .bind(decision.arrangement_id.as_ref().map(|i| i.as_str()))
                    .bind(decision.arrangement_version)
                    .bind(Ts(trunc(call.at)))
                    .bind(decision.outcome.as_str())
                    .bind(decision.reason.as_str())
                    .bind(decision.route_to.as_ref().map(|s| s.as_str()))
                    .bind(decision.next_permitted_at.map(Ts))
                    .bind(call.source.as_str())
                    .bind(decision.is_counted())
                    .bind(i64::from(d.counted_before));
            }
            query.execute(&mut **tx).await.map_err(map_sqlx)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use tokio::sync::oneshot;

    use crate::domain::{Arrangement, CallId, Provider};
    use crate::engine::{Decision, Outcome, Reason};
    use crate::store::{ArrangementStore, DecideFn, DecisionSource, NewCall, RecordedDecision};

    #[test]
    fn the_insert_statement_numbers_every_row_s_parameters() {
        let sql = insert_sql(2);
        assert!(
            sql.contains("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL)")
        );
        assert!(sql.ends_with(
            "($14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, NULL, NULL)"
        ));
    }

    /// A store in a fresh schema, or `None` when `FAIRLINE_TEST_POSTGRES_URL` is not set.
    async fn store(name: &str) -> Option<(PgStore, String, String)> {
        let url = std::env::var("FAIRLINE_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty());
        let Some(url) = url else {
            eprintln!("{name}: skipped: FAIRLINE_TEST_POSTGRES_URL not set");
            return None;
        };
        let schema = format!("gc_{}", ulid::Ulid::new().to_string().to_lowercase());
        let store = PgStore::connect_in_schema(&url, &schema).await.unwrap();
        Some((store, url, schema))
    }

    async fn arranged(store: &PgStore, count: u32, number: &str) -> Arrangement {
        let a = crate::store::batch::test_arrangement(count, number);
        store.create_arrangement(&a, "m").await.unwrap()
    }

    fn request(
        a: &Arrangement,
        call_id: &str,
        limit: u32,
    ) -> (
        Request,
        oneshot::Receiver<Result<RecordedDecision, StoreError>>,
    ) {
        let t = Utc::now();
        let id = a.id.clone();
        let decide: DecideFn = Box::new(move |counted| {
            let (outcome, reason) = if counted < limit {
                (Outcome::Continue, Reason::WithinArrangement)
            } else {
                (Outcome::Refuse, Reason::AllowanceUsed)
            };
            Decision {
                outcome,
                reason,
                arrangement_id: Some(id.clone()),
                arrangement_version: Some(1),
                route_to: None,
                next_permitted_at: None,
            }
        });
        let (reply, answer) = oneshot::channel();
        let call = NewCall {
            provider: Provider::Twilio,
            call_id: CallId::parse(call_id).unwrap(),
            number: a.phone_numbers[0].clone(),
            arrangement: a.clone(),
            at: t,
            source: DecisionSource::Store,
            period: Some((t - Duration::hours(1), t + Duration::hours(23))),
        };
        (
            Request {
                call,
                decide,
                reply,
            },
            answer,
        )
    }

    async fn counted(store: &PgStore) -> Vec<(String, bool)> {
        let mut rows: Vec<(String, bool)> =
            sqlx::query_as("SELECT call_id, counted FROM calls ORDER BY call_id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        rows.sort();
        rows
    }

    #[tokio::test]
    async fn a_batch_is_decided_in_order_in_one_transaction_and_falls_back_call_by_call() {
        let Some((store, url, schema)) = store("postgres group commit").await else {
            return;
        };
        let a = arranged(&store, 2, "+442920123456").await;
        let mut ghost = a.clone();
        ghost.id = ArrangementId::generate();
        // One pass: counted in arrival order, a duplicate replayed, a missing arrangement alone.
        let (requests, answers): (Vec<_>, Vec<_>) = vec![
            request(&a, "CA1", 2),
            request(&a, "CA1", 0),
            request(&ghost, "CAghost", 2),
            request(&a, "CA2", 2),
            request(&a, "CA3", 2),
        ]
        .into_iter()
        .unzip();
        let mut tx = store.pool.begin().await.unwrap();
        assert!(in_one_pass(&mut tx, &requests).await.is_ok(), "one pass");
        tx.rollback().await.unwrap();
        write_batch(&store.pool, requests).await;
        let mut got = Vec::new();
        for a in answers {
            got.push(a.await.unwrap());
        }
        let first = got[0].as_ref().unwrap();
        assert_eq!((first.counted_before, first.replayed), (0, false));
        assert!(got[1].as_ref().unwrap().replayed);
        assert!(matches!(got[2], Err(StoreError::NotFound)));
        let third = got[4].as_ref().unwrap();
        assert_eq!(
            (third.counted_before, third.decision.outcome),
            (2, Outcome::Refuse)
        );
        assert_eq!(
            counted(&store).await,
            vec![
                ("CA1".into(), true),
                ("CA2".into(), true),
                ("CA3".into(), false)
            ]
        );

        // A statement fails: the batch is written again call by call, the failing call alone
        // fails and the call after it is counted without it.
        let b = arranged(&store, 5, "+442920654321").await;
        sqlx::query(
            "CREATE FUNCTION refuse_bad() RETURNS trigger AS $$ BEGIN \
             IF NEW.call_id = 'CAbad' THEN RAISE EXCEPTION 'injected failure'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON calls \
             FOR EACH ROW EXECUTE FUNCTION refuse_bad()",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let (requests, answers): (Vec<_>, Vec<_>) = vec![
            request(&b, "CAb1", 5),
            request(&b, "CAbad", 5),
            request(&b, "CAb2", 5),
        ]
        .into_iter()
        .unzip();
        write_batch(&store.pool, requests).await;
        let mut got = Vec::new();
        for a in answers {
            got.push(a.await.unwrap());
        }
        assert_eq!(got[0].as_ref().unwrap().counted_before, 0);
        assert!(got[1].is_err());
        assert_eq!(
            got[2].as_ref().unwrap().counted_before,
            1,
            "counts CAb1 only"
        );
        store.close().await;
        PgStore::drop_schema(&url, &schema).await.unwrap();
    }
}
