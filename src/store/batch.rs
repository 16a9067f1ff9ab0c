//! Deciding a batch of calls in one pass (group commit), the part both backends share.
//!
//! A backend's batch writer reads, inside its transaction, which of the batch's arrangements
//! exist, which of its calls were decided before, and the counted calls of each period the
//! batch touches; [`plan`] then decides every call in arrival order, adding the batch's own
//! earlier calls to the stored counts in memory, exactly as if each call had been counted and
//! written one after another. The backend inserts the rows of [`Decided`] and commits.

use std::collections::{HashMap, HashSet};

use tokio::sync::{mpsc, oneshot};

use crate::engine::Decision;
use crate::store::common::{normalise_decision, RawCall};
use crate::store::{DecideFn, NewCall, RecordedDecision, StoreError};

/// At most this many calls in one transaction.
pub(crate) const MAX_BATCH: usize = 256;

/// Calls waiting for a writer; senders wait (asynchronously) when it is full.
const QUEUE: usize = 4 * MAX_BATCH;

pub(crate) type Reply = oneshot::Sender<Result<RecordedDecision, StoreError>>;

/// One call queued for a backend's batch writer, and who waits for its answer.
pub(crate) struct Request {
    pub call: NewCall,
    pub decide: DecideFn,
    pub reply: Reply,
}

/// The sending side of a backend's batch writer task.
pub(crate) struct DecisionQueue {
    queue: mpsc::Sender<Request>,
}

impl DecisionQueue {
    /// The queue and the receiver its writer task drains (the task ends when the queue is
    /// dropped).
    pub(crate) fn new() -> (DecisionQueue, mpsc::Receiver<Request>) {
        let (queue, rx) = mpsc::channel(QUEUE);
        (DecisionQueue { queue }, rx)
    }

    /// Queue a call and wait until it is committed (or failed).
    pub(crate) async fn decide_and_record(
        &self,
        call: NewCall,
        decide: DecideFn,
    ) -> Result<RecordedDecision, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the decision writer has stopped".into());
        self.queue
            .send(Request {
                call,
                decide,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// How many calls wait for the writer.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        QUEUE - self.queue.capacity()
    }
}

/// The batch as [`plan`] reads it.
pub(crate) fn batch_calls(batch: &[Request]) -> Vec<BatchCall<'_>> {
    batch
        .iter()
        .map(|r| BatchCall {
            call: &r.call,
            decide: &r.decide,
            open: !r.reply.is_closed(),
        })
        .collect()
}

/// Answer every waiter of `batch` with `e`.
pub(crate) fn fail_all(batch: Vec<Request>, e: &StoreError) {
    for r in batch {
        let _ = r.reply.send(Err(copy_error(e)));
    }
}

/// The same error for another waiter (`StoreError` is not `Clone`: it is built from drivers'
/// errors).
pub(crate) fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(s) => StoreError::Unavailable(s.clone()),
        StoreError::NotFound => StoreError::NotFound,
        other => StoreError::Internal(other.to_string()),
    }
}

/// One call of a batch; `open` is false when its waiter gave up (nothing is written for it).
pub(crate) struct BatchCall<'a> {
    pub call: &'a NewCall,
    pub decide: &'a DecideFn,
    pub open: bool,
}

/// What a waiter is answered, unless it gave up (`None`).
pub(crate) type Answer = Option<Result<RecordedDecision, StoreError>>;

/// A period's counted calls are keyed by arrangement id and the period's bounds in milliseconds
/// (the store keeps instants to the millisecond).
pub(crate) type CountKey = (String, i64, i64);

/// A call to insert: the batch's call at `index`, decided.
pub(crate) struct Decided {
    pub index: usize,
    pub decision: Decision,
    pub counted_before: u32,
}

/// The distinct arrangement ids of the open calls.
pub(crate) fn arrangement_ids(calls: &[BatchCall<'_>]) -> Vec<String> {
    let mut ids: Vec<String> = calls
        .iter()
        .filter(|c| c.open)
        .map(|c| c.call.arrangement.id.as_str().to_owned())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The distinct (provider, call id) of the open calls, sorted by provider.
pub(crate) fn call_keys<'a>(calls: &[BatchCall<'a>]) -> Vec<(&'a str, &'a str)> {
    let mut keys: Vec<(&str, &str)> = calls
        .iter()
        .filter(|c| c.open)
        .map(|c| (c.call.provider.as_str(), c.call.call_id.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The periods to count: the distinct (arrangement, period) of the open calls with an
/// allowance whose arrangement exists, each with its bounds as the calls carry them.
pub(crate) fn count_keys(
    calls: &[BatchCall<'_>],
    present: &HashSet<String>,
) -> Vec<(CountKey, Period)> {
    let mut keys: Vec<(CountKey, Period)> = calls
        .iter()
        .filter(|c| c.open && present.contains(c.call.arrangement.id.as_str()))
        .filter_map(|c| c.call.period.map(|p| (key_of(c.call, p), p)))
        .collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    keys.dedup_by(|a, b| a.0 == b.0);
    keys
}

/// An allowance period: start inclusive, end exclusive.
pub(crate) type Period = (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>);

fn key_of(call: &NewCall, (from, to): Period) -> CountKey {
    (
        call.arrangement.id.as_str().to_owned(),
        from.timestamp_millis(),
        to.timestamp_millis(),
    )
}

/// Decide every open call in arrival order. `present`: the arrangements that exist;
/// `earlier`: calls decided before, by (provider, call id); `stored`: the counted calls of
/// each of [`count_keys`] in the store. A call's own failure (its arrangement gone, a stored
/// row that cannot be read, the engine panicking) is its answer and writes nothing.
pub(crate) fn plan(
    calls: &[BatchCall<'_>],
    present: &HashSet<String>,
    earlier: &HashMap<(String, String), RawCall>,
    stored: &HashMap<CountKey, u32>,
) -> (Vec<Answer>, Vec<Decided>) {
    let mut decided: Vec<Decided> = Vec::new();
    let mut answers = Vec::with_capacity(calls.len());
    for (index, c) in calls.iter().enumerate() {
        if !c.open {
            answers.push(None);
            continue;
        }
        let answer = plan_one(calls, index, present, earlier, stored, &mut decided);
        answers.push(Some(answer));
    }
    (answers, decided)
}

fn plan_one(
    calls: &[BatchCall<'_>],
    index: usize,
    present: &HashSet<String>,
    earlier: &HashMap<(String, String), RawCall>,
    stored: &HashMap<CountKey, u32>,
    decided: &mut Vec<Decided>,
) -> Result<RecordedDecision, StoreError> {
    let call = calls[index].call;
    if !present.contains(call.arrangement.id.as_str()) {
        return Err(StoreError::NotFound);
    }
    let key = (
        call.provider.as_str().to_owned(),
        call.call_id.as_str().to_owned(),
    );
    if let Some(raw) = earlier.get(&key) {
        return Ok(RecordedDecision {
            decision: raw.decision()?,
            counted_before: raw.counted_before(),
            replayed: true,
        });
    }
    if let Some(first) = decided
        .iter()
        .find(|d| same_call(calls[d.index].call, call))
    {
        return Ok(RecordedDecision {
            decision: first.decision.clone(),
            counted_before: first.counted_before,
            replayed: true,
        });
    }
    let counted_before = match call.period {
        None => 0,
        Some(period) => {
            let key = key_of(call, period);
            let Some(&in_store) = stored.get(&key) else {
                return Err(StoreError::Internal("a period was not counted".into()));
            };
            let in_batch = decided
                .iter()
                .filter(|d| counts_toward(d, calls[d.index].call, &key))
                .count();
            in_store.saturating_add(u32::try_from(in_batch).unwrap_or(u32::MAX))
        }
    };
    let decide = calls[index].decide;
    let decision =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decide(counted_before)))
            .map_err(|_| StoreError::Internal("deciding the call failed".into()))?;
    let decision = normalise_decision(decision);
    decided.push(Decided {
        index,
        decision: decision.clone(),
        counted_before,
    });
    Ok(RecordedDecision {
        decision,
        counted_before,
        replayed: false,
    })
}

fn same_call(a: &NewCall, b: &NewCall) -> bool {
    a.provider == b.provider && a.call_id == b.call_id
}

/// Would the row written for `d` be counted by `COUNT_CALLS` for `key`?
fn counts_toward(d: &Decided, call: &NewCall, key: &CountKey) -> bool {
    let at = call.at.timestamp_millis();
    d.decision.is_counted()
        && d.decision.arrangement_id.as_ref().map(|a| a.as_str()) == Some(key.0.as_str())
        && at >= key.1
        && at < key.2
}

/// A restricted arrangement in force now for `number`, with an allowance of `count` calls a
/// day, as both backends' group-commit tests store it.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_arrangement(count: u32, number: &str) -> crate::domain::Arrangement {
    use crate::domain::{
        Allowance, AllowancePeriod, Arrangement, ArrangementId, ArrangementKind, LanguageSetting,
        PhoneNumber,
    };
    use chrono::{Duration, SubsecRound, Utc};
    let t = Utc::now().trunc_subsecs(3);
    Arrangement {
        id: ArrangementId::generate(),
        customer_ref: "PSOW-2026-00123".into(),
        customer_name: None,
        phone_numbers: vec![PhoneNumber::parse(number).unwrap()],
        kind: ArrangementKind::Restricted,
        windows: Vec::new(),
        allowance: Some(Allowance {
            count,
            per: AllowancePeriod::Day,
        }),
        designated_staff: Vec::new(),
        max_call_minutes: None,
        language: LanguageSetting::En,
        reason: "repeated abusive calls".into(),
        decided_by: "Director of Investigations".into(),
        equality_advice_sought: true,
        advocate: None,
        starts_at: t - Duration::days(1),
        ends_at: t + Duration::days(30),
        review_due: (t + Duration::days(20)).date_naive(),
        revoked_at: None,
        revoked_reason: None,
        created_at: t,
        updated_at: t,
        version: 0,
        customer_explanation: None,
        open_appeals: 0,
        urgent_route: true,
    }
}
