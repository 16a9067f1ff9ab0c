//! Group commit for decided calls on SQLite.
//!
//! Every call under an arrangement is counted, decided and written to the decision log before it
//! is answered. With one `BEGIN IMMEDIATE` transaction per call, each answer waited for its own
//! fsync (`synchronous = FULL`), one after another. Here one writer task per store takes the
//! first queued call, drains whatever else has queued behind it (up to [`MAX_BATCH`]), and
//! decides them in arrival order inside ONE `BEGIN IMMEDIATE` transaction: each call is counted
//! with the calls before it in the batch, so the allowance stays exact. The batch is read and
//! written with a few statements (its calls looked up together, each period counted once, its
//! rows inserted together), not five or six per call. One commit (one fsync) later, every
//! waiter is answered. No answer leaves before the commit that holds its row.
//!
//! - A request that fails fails alone: its own failures (arrangement gone, the engine
//!   panicking) are its answer; should a statement fail, the batch is rolled back and written
//!   again call by call, each inside its own `SAVEPOINT`, rolled back to on failure. Should
//!   the transaction itself be lost (SQLite rolls back a whole transaction on an I/O error, a
//!   full disk, …), the rest of the batch fails with the store's error.
//! - A failed commit fails every waiter of the batch with the store's error (the webhook then
//!   decides without counting, as it does on any store failure).
//! - A waiter that gave up before its turn (the webhook's write budget ran out) is skipped:
//!   nothing is written for it.
//! - The writer takes the store's writer queue (the mutex every other `BEGIN IMMEDIATE` write
//!   takes) for each batch, so the store's other writes still serialise with it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, Mutex};

use super::SqliteStore;
use crate::domain::ArrangementId;
use crate::store::batch::{
    self, copy_error, fail_all, Answer, BatchCall, Decided, DecisionQueue, Reply, Request,
    MAX_BATCH,
};
use crate::store::common::{map_sqlx, trunc, RawCall};
use crate::store::sql::{Ts, CALL_COLUMNS};
use crate::store::{DecideFn, NewCall, RecordedDecision, StoreError};

/// Start the writer task on the current runtime; it ends when the queue is dropped.
pub(super) fn start(pool: SqlitePool, turn: Arc<Mutex<()>>) -> DecisionQueue {
    let (queue, rx) = DecisionQueue::new();
    tokio::spawn(run(pool, turn, rx));
    queue
}

async fn run(pool: SqlitePool, turn: Arc<Mutex<()>>, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let guard = turn.lock().await;
        // Whatever queued while another write held the turn joins this batch.
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        write_batch(&pool, std::mem::take(&mut batch)).await;
        drop(guard);
    }
}

/// Run `batch` in one transaction, in order, and answer every waiter after the commit. The
/// caller holds the writer turn.
///
/// First in one pass ([`in_one_pass`]): a handful of statements for the whole batch instead
/// of five or six for each call. Should any statement of it fail, that transaction is rolled
/// back and the batch is written again call by call, each call in its own savepoint
/// ([`call_by_call`]), so that a call that cannot be written fails alone and the calls after
/// it are counted without it. Nothing else writes while the caller holds the turn, so the
/// second attempt reads what the first one read.
pub(super) async fn write_batch(pool: &SqlitePool, batch: Vec<Request>) {
    let batch: Vec<Request> = batch.into_iter().filter(|r| !r.reply.is_closed()).collect();
    if batch.is_empty() {
        return;
    }
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
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
            match pool.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => call_by_call(tx, batch).await,
                Err(e) => fail_all(batch, &map_sqlx(e)),
            }
        }
    }
}

/// The whole batch with a few statements: which arrangements exist, which calls were decided
/// before, the counted calls of each period once; then [`batch::plan`] decides every call in
/// arrival order, and all the rows are inserted together. An error means nothing of this
/// transaction may be kept.
async fn in_one_pass(
    tx: &mut Transaction<'static, Sqlite>,
    batch: &[Request],
) -> Result<Vec<Answer>, StoreError> {
    let calls = batch::batch_calls(batch);
    let mut present = HashSet::new();
    for id in batch::arrangement_ids(&calls) {
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM arrangements WHERE id = ?")
            .bind(&id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_sqlx)?;
        if found.is_some() {
            present.insert(id);
        }
    }
    let earlier = decided_before(tx, &calls).await?;
    let mut stored = HashMap::new();
    for (key, (from, to)) in batch::count_keys(&calls, &present) {
        let id = ArrangementId::parse(&key.0)
            .map_err(|_| StoreError::Internal("an arrangement id in a batch".into()))?;
        let n = SqliteStore::count_in(&mut **tx, &id, from, to).await?;
        stored.insert(key, n);
    }
    let (answers, decided) = batch::plan(&calls, &present, &earlier, &stored);
    insert_decided(tx, &calls, &decided).await?;
    Ok(answers)
}

/// The look-up sizes: a batch's call ids are asked for with as few statements as these allow
/// (the last id repeated to fill one), and each text is prepared once per connection.
const LOOKUP_SIZES: [usize; 3] = [1, 8, 64];

/// The stored rows of the batch's calls that were decided before, by (provider, call id).
async fn decided_before(
    tx: &mut Transaction<'static, Sqlite>,
    calls: &[BatchCall<'_>],
) -> Result<HashMap<(String, String), RawCall>, StoreError> {
    let wanted = batch::call_keys(calls);
    let mut found = HashMap::new();
    for same_provider in wanted.chunk_by(|a, b| a.0 == b.0) {
        for chunk in same_provider.chunks(LOOKUP_SIZES[LOOKUP_SIZES.len() - 1]) {
            let size = LOOKUP_SIZES
                .into_iter()
                .find(|&s| s >= chunk.len())
                .unwrap_or(chunk.len());
            let sql = format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE provider = ? AND call_id IN ({})",
                vec!["?"; size].join(", ")
            );
            let mut query = sqlx::query(&sql).bind(same_provider[0].0);
            for k in 0..size {
                query = query.bind(chunk[k.min(chunk.len() - 1)].1);
            }
            for row in query.fetch_all(&mut **tx).await.map_err(map_sqlx)? {
                let raw = super::shared::decode_call(&row)?;
                found.insert((raw.provider.clone(), raw.call_id.clone()), raw);
            }
        }
    }
    Ok(found)
}

/// The sizes the batch's rows are inserted in, largest first (a few fixed statement texts).
const INSERT_SIZES: [usize; 4] = [64, 16, 4, 1];

/// Insert the decided calls' rows, in arrival order.
async fn insert_decided(
    tx: &mut Transaction<'static, Sqlite>,
    calls: &[BatchCall<'_>],
    decided: &[Decided],
) -> Result<(), StoreError> {
    let mut rest = decided;
    for size in INSERT_SIZES {
        while rest.len() >= size {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)";
            let sql = format!(
                "INSERT INTO calls ({CALL_COLUMNS}) VALUES {}",
                vec![row; size].join(", ")
            );
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

/// What went wrong with one request written call by call.
enum Failure {
    /// Only this request: its savepoint was rolled back; the transaction goes on.
    Request(StoreError),
    /// The transaction is lost: every request of the batch fails.
    Transaction(StoreError),
}

/// The batch call by call in `tx`, each call in its own savepoint; answers after the commit.
async fn call_by_call(mut tx: Transaction<'static, Sqlite>, batch: Vec<Request>) {
    let mut known = HashSet::new();
    let mut done: Vec<(Reply, Result<RecordedDecision, StoreError>)> =
        Vec::with_capacity(batch.len());
    let mut lost: Option<StoreError> = None;
    for r in batch {
        if let Some(e) = &lost {
            done.push((r.reply, Err(copy_error(e))));
            continue;
        }
        if r.reply.is_closed() {
            continue;
        }
        match one(&mut tx, &r.call, &r.decide, &mut known).await {
            Ok(recorded) => done.push((r.reply, Ok(recorded))),
            Err(Failure::Request(e)) => done.push((r.reply, Err(e))),
            Err(Failure::Transaction(e)) => {
                tracing::error!(error = %e, "the decision log's write transaction was lost");
                done.push((r.reply, Err(copy_error(&e))));
                lost = Some(e);
            }
        }
    }
    let committed = match lost {
        Some(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
        None => tx.commit().await.map_err(map_sqlx),
    };
    for (reply, result) in done {
        let _ = reply.send(match &committed {
            Ok(()) => result,
            Err(e) => Err(copy_error(e)),
        });
    }
}

/// Decide and record one call inside its own savepoint.
async fn one(
    tx: &mut Transaction<'static, Sqlite>,
    call: &NewCall,
    decide: &DecideFn,
    known: &mut HashSet<String>,
) -> Result<RecordedDecision, Failure> {
    sqlx::query("SAVEPOINT fairline_call")
        .execute(&mut **tx)
        .await
        .map_err(|e| Failure::Transaction(map_sqlx(e)))?;
    let result = record(tx, call, decide, known).await;
    let end = if result.is_ok() {
        sqlx::query("RELEASE fairline_call")
            .execute(&mut **tx)
            .await
    } else {
        match sqlx::query("ROLLBACK TO fairline_call")
            .execute(&mut **tx)
            .await
        {
            Ok(_) => {
                sqlx::query("RELEASE fairline_call")
                    .execute(&mut **tx)
                    .await
            }
            Err(e) => Err(e),
        }
    };
    end.map_err(|e| Failure::Transaction(map_sqlx(e)))?;
    result.map_err(Failure::Request)
}

/// One call: replay a call decided before, otherwise count, decide and insert.
async fn record(
    tx: &mut Transaction<'static, Sqlite>,
    call: &NewCall,
    decide: &DecideFn,
    known: &mut HashSet<String>,
) -> Result<RecordedDecision, StoreError> {
    let id = call.arrangement.id.as_str();
    if !known.contains(id) {
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM arrangements WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_sqlx)?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
        known.insert(id.to_owned());
    }
    if let Some(existing) = SqliteStore::find_call(&mut **tx, call.provider, &call.call_id).await? {
        return SqliteStore::replayed(existing);
    }
    let (decision, counted_before) = SqliteStore::decide_in(tx, call, decide).await?;
    SqliteStore::insert_call(tx, call, &decision, counted_before)
        .await
        .map_err(map_sqlx)?;
    Ok(RecordedDecision {
        decision,
        counted_before,
        replayed: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use chrono::{DateTime, Duration, SubsecRound, Utc};

    use super::*;
    use crate::domain::{Arrangement, ArrangementId, CallId, Provider};
    use crate::engine::{Decision, Outcome, Reason};
    use crate::store::{ArrangementStore, CallLog, DecisionFilter, DecisionSource};
    use tokio::sync::oneshot;

    async fn store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_path(&dir.path().join("fairline.db"))
            .await
            .unwrap();
        (store, dir)
    }

    fn now() -> DateTime<Utc> {
        Utc::now().trunc_subsecs(3)
    }

    /// A restricted arrangement in force now, with an allowance of `count` calls a day.
    async fn arranged(store: &SqliteStore, count: u32) -> Arrangement {
        arranged_for(store, count, "+442920123456").await
    }

    async fn arranged_for(store: &SqliteStore, count: u32, number: &str) -> Arrangement {
        let a = crate::store::batch::test_arrangement(count, number);
        store.create_arrangement(&a, "m").await.unwrap()
    }

    fn call(a: &Arrangement, call_id: &str) -> NewCall {
        let t = now();
        NewCall {
            provider: Provider::Twilio,
            call_id: CallId::parse(call_id).unwrap(),
            number: a.phone_numbers[0].clone(),
            arrangement: a.clone(),
            at: t,
            source: DecisionSource::Store,
            period: Some((t - Duration::hours(1), t + Duration::hours(23))),
        }
    }

    /// Continue while fewer than `limit` calls were counted, then refuse.
    fn limit(a: &Arrangement, limit: u32) -> DecideFn {
        let id = a.id.clone();
        Box::new(move |counted| {
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
        })
    }

    type Answer = oneshot::Receiver<Result<RecordedDecision, StoreError>>;

    fn request(call: NewCall, decide: DecideFn) -> (Request, Answer) {
        let (reply, answer) = oneshot::channel();
        (
            Request {
                call,
                decide,
                reply,
            },
            answer,
        )
    }

    /// Run `requests` as one batch, as the writer does, and collect the answers in order.
    async fn batch(
        store: &SqliteStore,
        requests: Vec<(NewCall, DecideFn)>,
    ) -> Vec<Result<RecordedDecision, StoreError>> {
        let (requests, answers): (Vec<_>, Vec<_>) =
            requests.into_iter().map(|(c, d)| request(c, d)).unzip();
        let turn = store.writer.clone().lock_owned().await;
        write_batch(&store.pool, requests).await;
        drop(turn);
        let mut out = Vec::new();
        for a in answers {
            out.push(a.await.expect("every waiter is answered"));
        }
        out
    }

    async fn logged(store: &SqliteStore) -> Vec<(String, bool)> {
        let mut rows: Vec<(String, bool)> = store
            .list_decisions(&DecisionFilter {
                limit: 1000,
                ..DecisionFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.call_id.as_str().to_owned(), e.counted))
            .collect();
        rows.sort();
        rows
    }

    #[tokio::test]
    async fn a_batch_counts_in_arrival_order_and_commits_every_call() {
        let (store, _dir) = store().await;
        let a = arranged(&store, 2).await;
        let answers = batch(
            &store,
            (0..5)
                .map(|i| (call(&a, &format!("CA{i}")), limit(&a, 2)))
                .collect(),
        )
        .await;
        let seen: Vec<(u32, Outcome)> = answers
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                (r.counted_before, r.decision.outcome)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, Outcome::Continue),
                (1, Outcome::Continue),
                (2, Outcome::Refuse),
                (2, Outcome::Refuse),
                (2, Outcome::Refuse),
            ]
        );
        assert_eq!(logged(&store).await.len(), 5);
    }

    #[tokio::test]
    async fn a_failing_request_fails_alone() {
        let (store, _dir) = store().await;
        let a = arranged(&store, 5).await;
        // A real SQL failure in the middle of the batch: the insert of one call is refused.
        sqlx::query(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON calls WHEN NEW.call_id = 'CAbad' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let ghost = {
            let mut g = a.clone();
            g.id = ArrangementId::generate();
            g
        };
        let panics: DecideFn = Box::new(|_| panic!("injected panic in the engine"));
        let answers = batch(
            &store,
            vec![
                (call(&a, "CA1"), limit(&a, 5)),
                (call(&a, "CAbad"), limit(&a, 5)),
                (call(&ghost, "CAghost"), limit(&ghost, 5)),
                (call(&a, "CApanic"), panics),
                (call(&a, "CA2"), limit(&a, 5)),
            ],
        )
        .await;
        let mut answers = answers.into_iter();
        let first = answers.next().unwrap().unwrap();
        assert_eq!(first.counted_before, 0);
        assert!(matches!(answers.next(), Some(Err(StoreError::Internal(_)))));
        assert!(matches!(answers.next(), Some(Err(StoreError::NotFound))));
        assert!(matches!(answers.next(), Some(Err(StoreError::Internal(_)))));
        let last = answers.next().unwrap().unwrap();
        assert_eq!(last.counted_before, 1, "counts the first call only");
        assert_eq!(
            logged(&store).await,
            vec![("CA1".to_owned(), true), ("CA2".to_owned(), true)]
        );
    }

    #[tokio::test]
    async fn the_same_call_twice_in_one_batch_is_recorded_once() {
        let (store, _dir) = store().await;
        let a = arranged(&store, 1).await;
        let answers = batch(
            &store,
            vec![
                (call(&a, "CAdup"), limit(&a, 1)),
                (call(&a, "CAdup"), limit(&a, 0)),
                (call(&a, "CAother"), limit(&a, 1)),
            ],
        )
        .await;
        let answers: Vec<RecordedDecision> = answers.into_iter().map(Result::unwrap).collect();
        assert!(!answers[0].replayed);
        assert_eq!(answers[0].decision.outcome, Outcome::Continue);
        assert!(answers[1].replayed, "the second copy is a replay");
        assert_eq!(answers[1].decision, answers[0].decision);
        assert_eq!(answers[2].decision.outcome, Outcome::Refuse);
        assert_eq!(answers[2].counted_before, 1);
        assert_eq!(
            logged(&store).await,
            vec![("CAdup".to_owned(), true), ("CAother".to_owned(), false)]
        );
    }

    #[tokio::test]
    async fn a_large_mixed_batch_is_counted_per_arrangement_and_period() {
        let (store, _dir) = store().await;
        let a = arranged(&store, 1000).await;
        let b = arranged_for(&store, 1000, "+442920654321").await;
        // 150 calls (more than one look-up and several insert sizes): a and b alternate, and
        // every fifth call of a falls in the next period (its own count starts again).
        let mut requests = Vec::new();
        for i in 0..150 {
            let (arr, mut c) = if i % 2 == 0 {
                (&a, call(&a, &format!("CAmix{i}")))
            } else {
                (&b, call(&b, &format!("CAmix{i}")))
            };
            if i % 2 == 0 && i % 5 == 0 {
                let (_, end) = c.period.unwrap();
                c.period = Some((end, end + Duration::days(1)));
                c.at = end + Duration::minutes(1);
            }
            requests.push((c, limit(arr, 1000)));
        }
        let answers = batch(&store, requests).await;
        let (mut next_a, mut next_a_later, mut next_b) = (0, 0, 0);
        for (i, r) in answers.into_iter().enumerate() {
            let r = r.unwrap();
            assert!(!r.replayed);
            let expected = if i % 2 == 1 {
                &mut next_b
            } else if i % 5 == 0 {
                &mut next_a_later
            } else {
                &mut next_a
            };
            assert_eq!(r.counted_before, *expected, "call {i}");
            *expected += 1;
        }
        assert_eq!((next_a, next_a_later, next_b), (60, 15, 75));
        assert_eq!(logged(&store).await.len(), 150);
        // What the next batch counts is what the store holds, not what the batch remembered.
        let again = batch(&store, vec![(call(&a, "CAafter"), limit(&a, 1000))]).await;
        assert_eq!(again[0].as_ref().unwrap().counted_before, 60);
    }

    /// The batches above are written in one pass, not by the call-by-call fallback (which
    /// would give the same answers, slower): `in_one_pass` itself succeeds on them, and fails
    /// (for the fallback to take over) only when a statement does.
    #[tokio::test]
    async fn the_one_pass_write_succeeds_unless_a_statement_fails() {
        let (store, _dir) = store().await;
        let a = arranged(&store, 3).await;
        let (requests, _answers): (Vec<_>, Vec<_>) = (0..5)
            .map(|i| request(call(&a, &format!("CAone{i}")), limit(&a, 3)))
            .unzip();
        let mut tx = store.pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let answers = in_one_pass(&mut tx, &requests).await.expect("one pass");
        let counted: Vec<u32> = answers
            .into_iter()
            .map(|a| a.unwrap().unwrap().counted_before)
            .collect();
        assert_eq!(counted, vec![0, 1, 2, 3, 3]);
        tx.commit().await.unwrap();
        assert_eq!(logged(&store).await.len(), 5);

        sqlx::query(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON calls WHEN NEW.call_id = 'CAtwo1' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let (requests, _answers): (Vec<_>, Vec<_>) = (0..3)
            .map(|i| request(call(&a, &format!("CAtwo{i}")), limit(&a, 3)))
            .unzip();
        let mut tx = store.pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        assert!(in_one_pass(&mut tx, &requests).await.is_err());
        tx.rollback().await.unwrap();
    }

    #[tokio::test]
    async fn a_call_decided_in_an_earlier_batch_is_replayed_as_stored() {
        let (store, _dir) = store().await;
        let a = arranged(&store, 1).await;
        let first = batch(&store, vec![(call(&a, "CAonce"), limit(&a, 1))]).await;
        let first = first.into_iter().next().unwrap().unwrap();
        assert_eq!(first.decision.outcome, Outcome::Continue);
        // Decided again (a platform retry) beside a new call: the retry is the stored answer
        // and is not counted twice; the new call sees one counted call.
        let answers = batch(
            &store,
            vec![
                (call(&a, "CAonce"), limit(&a, 0)),
                (call(&a, "CAnew"), limit(&a, 1)),
            ],
        )
        .await;
        let replay = answers[0].as_ref().unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.decision, first.decision);
        assert_eq!(replay.counted_before, 0);
        let new = answers[1].as_ref().unwrap();
        assert_eq!(
            (new.counted_before, new.decision.outcome),
            (1, Outcome::Refuse)
        );
        assert_eq!(
            logged(&store).await,
            vec![("CAnew".to_owned(), false), ("CAonce".to_owned(), true)]
        );
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_waiter_and_keeps_nothing() {
        let (store, _dir) = store().await;
        let a = arranged(&store, 5).await;
        // A deferred foreign key that is broken only at commit time.
        sqlx::query(
            "CREATE TABLE commit_guard (id INTEGER PRIMARY KEY, \
             ref TEXT REFERENCES arrangements(id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        sqlx::query(
            "CREATE TRIGGER break_commit AFTER INSERT ON calls WHEN NEW.call_id = 'CAbreak' \
             BEGIN INSERT INTO commit_guard (ref) VALUES ('no such arrangement'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let answers = batch(
            &store,
            vec![
                (call(&a, "CA1"), limit(&a, 5)),
                (call(&a, "CAbreak"), limit(&a, 5)),
            ],
        )
        .await;
        assert!(answers.iter().all(Result::is_err), "{answers:?}");
        assert!(logged(&store).await.is_empty());
        // The writer goes on with the next batch.
        let r = store
            .decide_and_record(call(&a, "CA3"), limit(&a, 5))
            .await
            .unwrap();
        assert_eq!(r.counted_before, 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_is_not_written() {
        let (store, _dir) = store().await;
        let a = arranged(&store, 5).await;
        let (gone, answer) = request(call(&a, "CAgone"), limit(&a, 5));
        drop(answer);
        let (kept, answer) = request(call(&a, "CAkept"), limit(&a, 5));
        write_batch(&store.pool, vec![gone, kept]).await;
        assert_eq!(answer.await.unwrap().unwrap().counted_before, 0);
        assert_eq!(logged(&store).await, vec![("CAkept".to_owned(), true)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_queued_behind_another_write_are_committed_together_and_exactly() {
        let (store, _dir) = store().await;
        let store = Arc::new(store);
        let a = arranged(&store, 1).await;
        // Another write holds the turn while 40 calls queue up.
        let turn = store.writer.clone().lock_owned().await;
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let store = store.clone();
                let c = call(&a, &format!("CAq{i}"));
                let d = limit(&a, 1);
                tokio::spawn(async move { store.decide_and_record(c, d).await })
            })
            .collect();
        // Let them queue (the writer holds the first while it waits for its turn); how they
        // split into batches does not change what is asserted.
        for _ in 0..200 {
            if store.decisions.queued() >= 39 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(turn);
        let mut counted_before = Vec::new();
        let mut permitted = 0;
        for t in tasks {
            let r = t.await.unwrap().unwrap();
            counted_before.push(r.counted_before);
            if r.decision.outcome == Outcome::Continue {
                permitted += 1;
            }
        }
        assert_eq!(permitted, 1);
        counted_before.sort_unstable();
        assert_eq!(counted_before[0], 0);
        assert!(counted_before[1..].iter().all(|&n| n == 1));
        assert_eq!(logged(&store).await.len(), 40);
    }
}
