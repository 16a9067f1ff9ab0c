//! The PostgreSQL change listener (SPEC §5, §11 "After a store outage…").
//!
//! One dedicated connection runs `LISTEN`; every notification becomes a `subscribe_changes`
//! item. Notifications sent while that connection is down are lost, so:
//!
//! * the connection is checked every [`PROBE_INTERVAL`] while idle (`SELECT 1`, answered
//!   within [`PROBE_TIMEOUT`]), which also finds a connection that died silently (a network
//!   that drops packets instead of resetting);
//! * a lost connection is replaced by attempts started every [`RETRY_INTERVAL`], overlapping
//!   (an attempt stuck on an unanswering network does not delay the next), the first to
//!   succeed winning;
//! * after every reconnection `None` is sent: the cache drops every entry, positive and
//!   negative, before it answers from the cache again.
//!
//! So a change made once the store answers again reaches this instance within about
//! `RETRY_INTERVAL` plus one connection set-up, instead of at the end of a back-off or a TTL.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::domain::PhoneNumber;

/// How often an idle listening connection is checked.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// How long a check may take before the connection is deemed lost.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How far apart reconnection attempts start.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// How long one reconnection attempt may take before it is abandoned.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// At most this many attempts in flight at once.
const MAX_ATTEMPTS_IN_FLIGHT: usize = 12;
/// Log one failed attempt in this many (attempts run four times a second).
const LOG_EVERY: u64 = 40;

pub(super) type ChangeSender = broadcast::Sender<Option<Vec<PhoneNumber>>>;

/// Why following a connection stopped.
enum Followed {
    Lost,
    Stop,
}

/// Follow `listener` and replace it whenever it is lost, until `cancel` or the pool closes.
pub(super) async fn listen_loop(
    mut listener: PgListener,
    pool: PgPool,
    channel: String,
    tx: ChangeSender,
    cancel: CancellationToken,
) {
    // Report a lost connection at once rather than reconnecting inside `try_recv`, which
    // has no time limit.
    listener.eager_reconnect(false);
    loop {
        match follow(&mut listener, &tx, &cancel).await {
            Followed::Stop => return,
            Followed::Lost => {}
        }
        drop(listener);
        metrics::counter!("fairline_change_listener_reconnects_total", "stage" => "lost")
            .increment(1);
        listener = match reconnect(&pool, &channel, &cancel).await {
            Some(l) => l,
            None => return,
        };
        listener.eager_reconnect(false);
        tracing::info!("change listener reconnected; dropping cached arrangements");
        metrics::counter!("fairline_change_listener_reconnects_total", "stage" => "reconnected")
            .increment(1);
        // Notifications may have been missed: drop every cached entry.
        let _ = tx.send(None);
    }
}

/// Forward notifications until the connection is lost (or a check of it fails).
async fn follow(
    listener: &mut PgListener,
    tx: &ChangeSender,
    cancel: &CancellationToken,
) -> Followed {
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Followed::Stop,
            r = listener.try_recv() => Some(r),
            _ = tokio::time::sleep(PROBE_INTERVAL) => None,
        };
        match next {
            Some(Ok(Some(n))) => {
                let item = serde_json::from_str::<Vec<PhoneNumber>>(n.payload()).ok();
                let _ = tx.send(item);
            }
            Some(Ok(None)) => {
                tracing::warn!("change listener lost its connection");
                return Followed::Lost;
            }
            Some(Err(sqlx::Error::PoolClosed)) => return Followed::Stop,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "change listener failed; reconnecting");
                return Followed::Lost;
            }
            None => {
                let probe = tokio::time::timeout(
                    PROBE_TIMEOUT,
                    sqlx::query("SELECT 1").execute(&mut *listener),
                );
                let answered = tokio::select! {
                    _ = cancel.cancelled() => return Followed::Stop,
                    r = probe => r,
                };
                match answered {
                    Ok(Ok(_)) => {}
                    Ok(Err(sqlx::Error::PoolClosed)) => return Followed::Stop,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "change listener check failed; reconnecting");
                        return Followed::Lost;
                    }
                    Err(_) => {
                        tracing::warn!("change listener check timed out; reconnecting");
                        return Followed::Lost;
                    }
                }
            }
        }
    }
}

async fn attempt(pool: PgPool, channel: String) -> Result<PgListener, sqlx::Error> {
    let connect = async {
        let mut l = PgListener::connect_with(&pool).await?;
        l.listen(&channel).await?;
        Ok::<_, sqlx::Error>(l)
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, connect)
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}

/// Start an attempt every [`RETRY_INTERVAL`] until one succeeds; `None` on cancel or when the
/// pool is closed.
async fn reconnect(pool: &PgPool, channel: &str, cancel: &CancellationToken) -> Option<PgListener> {
    let mut attempts: JoinSet<Result<PgListener, sqlx::Error>> = JoinSet::new();
    let mut tick = tokio::time::interval(RETRY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures: u64 = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tick.tick() => {
                if pool.is_closed() {
                    return None;
                }
                if attempts.len() < MAX_ATTEMPTS_IN_FLIGHT {
                    attempts.spawn(attempt(pool.clone(), channel.to_owned()));
                }
            }
            Some(done) = attempts.join_next() => match done {
                Ok(Ok(l)) => return Some(l),
                Ok(Err(sqlx::Error::PoolClosed)) => return None,
                Ok(Err(e)) => {
                    if failures.is_multiple_of(LOG_EVERY) {
                        tracing::warn!(error = %e, failures, "change listener cannot connect; retrying");
                    }
                    failures += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change listener attempt task failed");
                    failures += 1;
                }
            },
        }
    }
}
