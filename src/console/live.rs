//! Live calls (SPEC §12): a row per decided call, shared through the store, deleted at the
//! call's final status or after 4 hours.
//!
//! The webhook must not wait for this write: [`LiveCalls::decided`] only puts the row on a
//! bounded queue (and drops it, with a metric and a warning, when the queue is full); one
//! background writer per instance takes what is queued and writes it in batches. "Call ended"
//! goes through the same queue, so on one instance a call's delete never overtakes its insert.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::domain::{CallId, CallerId, Provider};
use crate::engine::Decision;
use crate::state::AppState;
use crate::store::LiveCall;

/// How many writes may wait for the writer.
pub const QUEUE_CAPACITY: usize = 10_000;
/// The most writes the writer takes at once.
const BATCH: usize = 500;
/// How long the writer waits for more rows after the first of a batch.
const LINGER: Duration = Duration::from_millis(20);
/// A row older than this is not a call in progress any more.
pub const MAX_AGE: chrono::Duration = chrono::Duration::hours(4);
/// How often expired rows and sessions are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Write {
    Insert(LiveCall),
    Delete(Provider, CallId),
}

/// The queue in front of the live-call writer.
pub struct LiveCalls {
    tx: mpsc::Sender<Write>,
    rx: Mutex<Option<mpsc::Receiver<Write>>>,
}

impl Default for LiveCalls {
    fn default() -> Self {
        Self::new(QUEUE_CAPACITY)
    }
}

impl LiveCalls {
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        LiveCalls {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// A call was decided: queue its live-call row (never waits).
    pub fn decided(
        &self,
        provider: Provider,
        call_id: &CallId,
        caller: &CallerId,
        decision: &Decision,
        at: DateTime<Utc>,
    ) {
        let row = LiveCall {
            provider,
            call_id: call_id.clone(),
            started_at: at,
            caller: match caller {
                CallerId::Number(n) => Some(n.clone()),
                _ => None,
            },
            outcome: decision.outcome,
            reason: decision.reason,
            route_to: decision.route_to.clone(),
            arrangement_id: decision.arrangement_id.clone(),
        };
        self.queue(Write::Insert(row), "insert");
    }

    /// A call reached its final status: queue the removal of its row (never waits).
    pub fn ended(&self, provider: Provider, call_id: &CallId) {
        self.queue(Write::Delete(provider, call_id.clone()), "delete");
    }

    fn queue(&self, w: Write, kind: &'static str) {
        match self.tx.try_send(w) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("fairline_live_calls_dropped_total", "kind" => kind).increment(1);
                tracing::warn!(
                    kind,
                    "live-call queue full: a live-call {kind} was dropped (the 4-hour sweep tidies up)"
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics::counter!("fairline_live_calls_dropped_total", "kind" => kind).increment(1);
            }
        }
    }

    fn take_receiver(&self) -> Option<mpsc::Receiver<Write>> {
        match self.rx.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

/// The provider-neutral "call ended" that provider modules call at a call's final status.
pub fn call_ended(state: &AppState, provider: Provider, call_id: &CallId) {
    state.live_calls.ended(provider, call_id);
}

/// Start the writer and the sweep (sessions past their timeouts, live calls past 4 hours).
pub fn spawn(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(rx) = state.live_calls.take_receiver() {
        tasks.push(tokio::spawn(writer(state.clone(), rx)));
    }
    tasks.push(tokio::spawn(sweep(state.clone())));
    tasks
}

async fn writer(state: AppState, mut rx: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = state.shutdown.cancelled() => {
                // Flush what is already queued, then stop.
                rx.close();
                rx.recv_many(&mut batch, BATCH).await
            }
        };
        if n == 0 {
            return;
        }
        // Let the rows of the calls decided in the next moment join this batch: under load
        // a few large transactions instead of one per handful of calls (each a hand-off to
        // the database's thread). A row reaches the console LINGER later at most.
        if batch.len() < BATCH && !state.shutdown.is_cancelled() {
            tokio::select! {
                _ = tokio::time::sleep(LINGER) => {}
                _ = state.shutdown.cancelled() => {}
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
        }
        apply(&state, std::mem::take(&mut batch)).await;
    }
}

/// Apply queued writes in order: consecutive inserts in one statement.
async fn apply(state: &AppState, writes: Vec<Write>) {
    let mut inserts: Vec<LiveCall> = Vec::new();
    for w in writes {
        match w {
            Write::Insert(c) => inserts.push(c),
            Write::Delete(provider, call_id) => {
                let before = inserts.len();
                inserts.retain(|c| !(c.provider == provider && c.call_id == call_id));
                if inserts.len() != before {
                    continue; // Inserted and ended in the same batch: nothing to write.
                }
                flush(state, &mut inserts).await;
                if let Err(e) = state.store.delete_live_call(provider, &call_id).await {
                    metrics::counter!("fairline_live_calls_dropped_total", "kind" => "delete")
                        .increment(1);
                    tracing::warn!(error = %e, "could not remove a live call (the sweep will)");
                }
            }
        }
    }
    flush(state, &mut inserts).await;
}

async fn flush(state: &AppState, inserts: &mut Vec<LiveCall>) {
    keep_first_of_each_call(inserts);
    if inserts.is_empty() {
        return;
    }
    if let Err(e) = state.store.insert_live_calls(inserts).await {
        metrics::counter!("fairline_live_calls_dropped_total", "kind" => "insert")
            .increment(inserts.len() as u64);
        tracing::warn!(error = %e, calls = inserts.len(), "could not record live calls");
    }
    inserts.clear();
}

/// A platform that asks again about the same call (a retried webhook) queues its row again;
/// the insert keeps the first row of a call (`ON CONFLICT DO NOTHING`), so the later ones of
/// the same batch need not reach the database.
fn keep_first_of_each_call(inserts: &mut Vec<LiveCall>) {
    if inserts.len() < 2 {
        return;
    }
    let mut seen = std::collections::HashSet::with_capacity_and_hasher(
        inserts.len(),
        foldhash::fast::RandomState::default(),
    );
    let first: Vec<bool> = inserts
        .iter()
        .map(|c| seen.insert((c.provider, c.call_id.as_str())))
        .collect();
    drop(seen);
    let mut next = first.into_iter();
    inserts.retain(|_| next.next().unwrap_or(true));
}

async fn sweep(state: AppState) {
    loop {
        let now = state.clock.now();
        if let Err(e) = state.store.purge_live_calls(now - MAX_AGE).await {
            tracing::warn!(error = %e, "could not sweep old live calls");
        }
        let idle = chrono::Duration::from_std(state.config.console.session_idle)
            .unwrap_or(chrono::Duration::minutes(30));
        let absolute = chrono::Duration::from_std(super::config::ABSOLUTE_LIFETIME)
            .unwrap_or(chrono::Duration::hours(12));
        if let Err(e) = state.store.purge_sessions(now - idle, now - absolute).await {
            tracing::warn!(error = %e, "could not sweep expired console sessions");
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engine::{Outcome, Reason};

    #[test]
    fn a_full_queue_drops_instead_of_waiting() {
        let q = LiveCalls::new(2);
        let d = Decision::plain(Outcome::Continue, Reason::NoArrangement);
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for n in 0..5 {
            let id = CallId::parse(&format!("CA{n:032x}")).unwrap();
            // Never blocks, never fails: the fourth and fifth are dropped.
            q.decided(Provider::Twilio, &id, &CallerId::Withheld, &d, at);
        }
        let mut rx = q.take_receiver().unwrap();
        let mut got = Vec::new();
        while let Ok(w) = rx.try_recv() {
            got.push(w);
        }
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[0], Write::Insert(c) if c.caller.is_none()));
        // The receiver is handed out once.
        assert!(q.take_receiver().is_none());
    }

    #[test]
    fn a_call_queued_twice_in_a_batch_is_written_once_with_its_first_row() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let row = |provider, n: u32, outcome| LiveCall {
            provider,
            call_id: CallId::parse(&format!("CA{n:032x}")).unwrap(),
            started_at: at,
            caller: None,
            outcome,
            reason: Reason::NoArrangement,
            route_to: None,
            arrangement_id: None,
        };
        let mut rows = vec![
            row(Provider::Twilio, 1, Outcome::Continue),
            row(Provider::Twilio, 2, Outcome::Continue),
            row(Provider::Twilio, 1, Outcome::Refuse),
            // The same id on another platform is another call.
            row(Provider::Telnyx, 1, Outcome::Refuse),
            row(Provider::Twilio, 2, Outcome::Refuse),
        ];
        keep_first_of_each_call(&mut rows);
        let kept: Vec<(Provider, String, Outcome)> = rows
            .iter()
            .map(|c| (c.provider, c.call_id.as_str().to_owned(), c.outcome))
            .collect();
        assert_eq!(
            kept,
            vec![
                (Provider::Twilio, format!("CA{:032x}", 1), Outcome::Continue),
                (Provider::Twilio, format!("CA{:032x}", 2), Outcome::Continue),
                (Provider::Telnyx, format!("CA{:032x}", 1), Outcome::Refuse),
            ]
        );
    }
}
