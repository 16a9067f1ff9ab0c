//! The arrangement cache in front of the store: number → every arrangement listing it (an
//! empty list is a negative entry). An entry is fresh for `cache.ttl_seconds`; a stale or
//! missing entry is refreshed from the store within `decision.lookup_timeout_ms`; when the
//! store fails or is too slow a stale entry is served rather than nothing (SPEC §4).
//!
//! Entries are never dropped for age (only for `max_entries`), so that a stale entry is
//! available when the store is down. Invalidation marks entries stale instead of removing them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use crate::domain::{Arrangement, PhoneNumber};
use crate::store::{DecisionSource, SharedStore, StoreError};
use crate::telemetry::CacheResult;

/// The result of a cached lookup.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// Every arrangement listing the number (empty: none), and where it came from.
    Found {
        arrangements: Arc<Vec<Arrangement>>,
        source: DecisionSource,
    },
    /// Nothing cached, and the store failed or did not answer in time.
    Failed,
}

#[derive(Clone)]
struct Entry {
    arrangements: Arc<Vec<Arrangement>>,
    /// When the store was read; `None` once invalidated.
    fetched_at: Option<Instant>,
    /// `invalidate_all` generation at the time of the read.
    epoch: u64,
}

struct Inner {
    store: SharedStore,
    /// Keyed with foldhash (seeded per process): SipHash showed in the webhook's profile, and
    /// the keys are short numbers.
    entries: moka::future::Cache<PhoneNumber, Entry, foldhash::fast::RandomState>,
    ttl: Duration,
    lookup_timeout: Duration,
    /// Bumped by `invalidate_all`: entries from an earlier epoch are stale.
    epoch: AtomicU64,
    /// Bumped by every invalidation: a read that overlapped one is stored as stale.
    invalidations: AtomicU64,
}

/// A cheap-to-clone cache of arrangements by number.
#[derive(Clone)]
pub struct ArrangementCache {
    inner: Arc<Inner>,
}

fn count(result: CacheResult) {
    crate::telemetry::call_metrics().cache_lookup(result);
}

impl ArrangementCache {
    pub fn new(
        store: SharedStore,
        cfg: &crate::config::CacheConfig,
        lookup_timeout: Duration,
    ) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(cfg.max_entries)
            .build_with_hasher(foldhash::fast::RandomState::default());
        ArrangementCache {
            inner: Arc::new(Inner {
                store,
                entries,
                ttl: cfg.ttl,
                lookup_timeout,
                epoch: AtomicU64::new(0),
                invalidations: AtomicU64::new(0),
            }),
        }
    }

    fn is_fresh(&self, e: &Entry, at: Instant) -> bool {
        e.epoch == self.inner.epoch.load(Ordering::Acquire)
            && e.fetched_at
                .is_some_and(|t| at.saturating_duration_since(t) < self.inner.ttl)
    }

    /// Read the store under the lookup timeout and cache the answer.
    async fn fetch(&self, number: &PhoneNumber) -> Result<Arc<Vec<Arrangement>>, StoreError> {
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let invalidations = self.inner.invalidations.load(Ordering::Acquire);
        let read = tokio::time::timeout(
            self.inner.lookup_timeout,
            self.inner.store.arrangements_for_number(number),
        )
        .await
        .map_err(|_| StoreError::Unavailable("lookup timed out".into()))??;
        let arrangements = Arc::new(read);
        // If an invalidation happened while we were reading, what we read may predate the
        // change: keep it (for stale use) but not as fresh.
        let overlapped = self.inner.invalidations.load(Ordering::Acquire) != invalidations;
        let entry = Entry {
            arrangements: arrangements.clone(),
            fetched_at: (!overlapped).then(Instant::now),
            epoch,
        };
        // A read that overlapped `drop_all` / `invalidate_all` may predate a missed change:
        // answer with it, but do not keep it (not even for stale use).
        if self.inner.epoch.load(Ordering::Acquire) == epoch {
            self.inner.entries.insert(number.clone(), entry).await;
        }
        Ok(arrangements)
    }

    /// The arrangements listing `number`: a fresh cache entry, else the store (within the
    /// lookup timeout), else a stale entry, else `Failed`.
    pub async fn lookup(&self, number: &PhoneNumber) -> Lookup {
        self.lookup_at(number, Instant::now()).await
    }

    /// [`Self::lookup`] with freshness judged at `at` (a call's decision reads the clock once
    /// for its timing and its cache entry).
    pub async fn lookup_at(&self, number: &PhoneNumber, at: Instant) -> Lookup {
        let cached = self.inner.entries.get(number).await;
        if let Some(e) = &cached {
            if self.is_fresh(e, at) {
                count(if e.arrangements.is_empty() {
                    CacheResult::NegativeHit
                } else {
                    CacheResult::Hit
                });
                return Lookup::Found {
                    arrangements: e.arrangements.clone(),
                    source: DecisionSource::Cache,
                };
            }
        }
        match self.fetch(number).await {
            Ok(arrangements) => {
                count(CacheResult::Miss);
                Lookup::Found {
                    arrangements,
                    source: DecisionSource::Store,
                }
            }
            Err(e) => {
                tracing::warn!(number = %number.masked(), error = %e, "arrangement lookup failed");
                match cached {
                    Some(e) => {
                        count(CacheResult::Stale);
                        Lookup::Found {
                            arrangements: e.arrangements,
                            source: DecisionSource::StaleCache,
                        }
                    }
                    None => {
                        count(CacheResult::Failed);
                        Lookup::Failed
                    }
                }
            }
        }
    }

    /// Mark the entries for `numbers` stale: the next lookup reads the store (and may still
    /// serve the old entry if the store is down).
    pub async fn invalidate(&self, numbers: &[PhoneNumber]) {
        self.inner.invalidations.fetch_add(1, Ordering::AcqRel);
        for n in numbers {
            if let Some(mut e) = self.inner.entries.get(n).await {
                e.fetched_at = None;
                self.inner.entries.insert(n.clone(), e).await;
            }
        }
    }

    /// Mark every entry stale.
    pub fn invalidate_all(&self) {
        self.inner.invalidations.fetch_add(1, Ordering::AcqRel);
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Drop every entry, positive and negative, so that none is served again, even as a
    /// stale entry when the store fails: used when notifications may have been missed (the
    /// change listener reconnected after an outage), since an entry read before then may
    /// predate a change.
    pub fn drop_all(&self) {
        self.invalidations_and_epoch();
        self.inner.entries.invalidate_all();
    }

    fn invalidations_and_epoch(&self) {
        self.inner.invalidations.fetch_add(1, Ordering::AcqRel);
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Follow the store's change notifications (PostgreSQL), invalidating what changed; `None`
    /// when the store has none (SQLite: the API invalidates locally).
    pub fn spawn_change_listener(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.spawn_change_listener_until(tokio_util::sync::CancellationToken::new())
    }

    /// As [`Self::spawn_change_listener`], ending when `shutdown` is cancelled (the store's
    /// sender lives as long as the store, so the channel alone would never close).
    pub fn spawn_change_listener_until(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let mut rx = self.inner.store.subscribe_changes()?;
        let cache = self.clone();
        Some(tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = rx.recv() => r,
                };
                match received {
                    Ok(Some(numbers)) => cache.invalidate(&numbers).await,
                    Ok(None) => cache.drop_all(),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "change notifications lagged; dropping all");
                        cache.drop_all();
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        }))
    }
}
