//! Ending a call when the store is down (SPEC §11 "Ending a call works when the store is
//! down"): hang up first, keep the termination in a durable local spool, answer 202 with
//! `"stored": false`, and move it into the store — with its notification into the outbox —
//! once the store answers again, also after a restart.
//!
//! The spool is a directory (`[storage] spool_dir`; by default `spool` next to the SQLite
//! file, or `data/spool`) holding one JSON file per termination, named after
//! `(provider, call_id)` so that a second press finds it without the store. A file is
//! written to a temporary name, fsynced, renamed into place, and the directory fsynced,
//! before the agent is answered. Each instance drains its own spool; moving a record into the
//! store is idempotent (the store's `(provider, call_id)` claim), so a crash between the
//! store write and the file's removal repeats nothing.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::config::StorageConfig;
use crate::domain::{
    CallId, HangupResult, PhoneNumber, Provider, Termination, TerminationId, TerminationReason,
};
use crate::providers::caller_number;
use crate::state::AppState;
use crate::store::{Claim, StoreError, TerminationOutcome};
use crate::terminations::{TerminationError, TerminationView, CLAIM_LEASE};

/// The Prometheus gauge of spooled terminations not yet in the store.
pub const DEPTH_GAUGE: &str = "fairline_termination_spool_depth";
/// How often the spool is offered to the store.
const DRAIN_INTERVAL: Duration = Duration::from_secs(1);
/// How long one record may take to move into the store.
const MOVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the platform's caller lookup may take on the offline path (after the hang-up).
const LOOKUP_BUDGET: Duration = Duration::from_secs(1);

/// The spool directory for a storage configuration.
pub fn spool_dir(cfg: &StorageConfig) -> PathBuf {
    if let Some(d) = &cfg.spool_dir {
        return d.clone();
    }
    let url = cfg.url.expose();
    let file = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|p| !p.is_empty() && !p.starts_with(":memory:"));
    match file.and_then(|f| Path::new(f).parent()) {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("spool"),
        _ => PathBuf::from("data").join("spool"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("spool record unreadable: {0}")]
    Corrupt(String),
    #[error("spool task failed: {0}")]
    Task(String),
}

/// One spooled termination, as stored on disk.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    id: String,
    provider: Provider,
    call_id: String,
    caller: Option<String>,
    agent: String,
    reason: TerminationReason,
    warning_given: bool,
    warned_at: Option<DateTime<Utc>>,
    notes: Option<String>,
    terminated_at: DateTime<Utc>,
    hangup: HangupResult,
    hangup_detail: Option<String>,
}

impl Record {
    fn of(t: &Termination) -> Record {
        Record {
            id: t.id.to_string(),
            provider: t.provider,
            call_id: t.call_id.to_string(),
            caller: t.caller.as_ref().map(|c| c.to_string()),
            agent: t.agent.clone(),
            reason: t.reason,
            warning_given: t.warning_given,
            warned_at: t.warned_at,
            notes: t.notes.clone(),
            terminated_at: t.terminated_at,
            hangup: t.hangup.unwrap_or(HangupResult::Failed),
            hangup_detail: t.hangup_detail.clone(),
        }
    }

    fn termination(self) -> Result<Termination, SpoolError> {
        let bad = |what: &str| SpoolError::Corrupt(format!("invalid {what}"));
        Ok(Termination {
            id: TerminationId::parse(&self.id).map_err(|_| bad("id"))?,
            provider: self.provider,
            call_id: CallId::parse(&self.call_id).map_err(|_| bad("call id"))?,
            caller: match self.caller {
                Some(c) => Some(PhoneNumber::parse(&c).map_err(|_| bad("caller"))?),
                None => None,
            },
            arrangement_id: None,
            customer_ref: None,
            agent: self.agent,
            reason: self.reason,
            warning_given: self.warning_given,
            warned_at: self.warned_at,
            notes: self.notes,
            terminated_at: self.terminated_at,
            hangup: Some(self.hangup),
            hangup_detail: self.hangup_detail,
            claimed_until: self.terminated_at,
            review: None,
        })
    }
}

/// The durable local spool of terminations made while the store was down.
pub struct Spool {
    dir: PathBuf,
    /// One lock per call on the offline path, so that two presses hang up once.
    calls: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    wake: tokio::sync::Notify,
}

fn file_name(provider: Provider, call_id: &CallId) -> String {
    format!(
        "{}-{}.json",
        provider.as_str(),
        hex::encode(call_id.as_str().as_bytes())
    )
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, SpoolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SpoolError::Task(e.to_string()))?
}

fn read_record(path: &Path) -> Result<Termination, SpoolError> {
    let bytes = std::fs::read(path)?;
    let record: Record =
        serde_json::from_slice(&bytes).map_err(|e| SpoolError::Corrupt(e.to_string()))?;
    record.termination()
}

fn spooled_paths(dir: &Path) -> Result<Vec<PathBuf>, SpoolError> {
    let mut paths = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(paths),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

impl Spool {
    pub fn new(dir: PathBuf) -> Spool {
        Spool {
            dir,
            calls: std::sync::Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The spooled termination of a call, if any.
    pub async fn find(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<Termination>, SpoolError> {
        let path = self.dir.join(file_name(provider, call_id));
        blocking(move || match read_record(&path) {
            Ok(t) => Ok(Some(t)),
            Err(SpoolError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    /// Write `t` durably: a temporary file, fsynced, renamed into place, directory fsynced.
    pub async fn put(&self, t: &Termination) -> Result<(), SpoolError> {
        let dir = self.dir.clone();
        let name = file_name(t.provider, &t.call_id);
        let body = serde_json::to_vec_pretty(&Record::of(t))
            .map_err(|e| SpoolError::Corrupt(e.to_string()))?;
        let tmp_name = format!(".{name}.{}.tmp", t.id);
        blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(tmp_name);
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, dir.join(name))?;
            sync_dir(&dir)?;
            Ok(())
        })
        .await?;
        self.publish_depth().await;
        self.wake.notify_one();
        Ok(())
    }

    /// Every spooled termination with its file, oldest name first; unreadable files are
    /// logged and left in place for an operator.
    async fn list(&self) -> Result<Vec<(PathBuf, Termination)>, SpoolError> {
        let dir = self.dir.clone();
        blocking(move || {
            let mut out = Vec::new();
            for path in spooled_paths(&dir)? {
                match read_record(&path) {
                    Ok(t) => out.push((path, t)),
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "unreadable spooled termination left in place");
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn remove(&self, path: PathBuf) -> Result<(), SpoolError> {
        let dir = self.dir.clone();
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            sync_dir(&dir)?;
            Ok(())
        })
        .await
    }

    /// How many terminations are spooled.
    pub async fn depth(&self) -> usize {
        let dir = self.dir.clone();
        blocking(move || spooled_paths(&dir))
            .await
            .map(|p| p.len())
            .unwrap_or(0)
    }

    async fn publish_depth(&self) {
        #[allow(clippy::cast_precision_loss)]
        let depth = self.depth().await as f64;
        metrics::gauge!(DEPTH_GAUGE).set(depth);
    }

    fn call_lock(&self, provider: Provider, call_id: &CallId) -> Arc<tokio::sync::Mutex<()>> {
        let key = file_name(provider, call_id);
        match self.calls.lock() {
            Ok(mut map) => map.entry(key).or_default().clone(),
            Err(poisoned) => poisoned.into_inner().entry(key).or_default().clone(),
        }
    }
}

/// How long an end-call press waits for the store before deciding it is down: a fifth of the
/// request timeout, between the lookup timeout and 2 s, leaving the rest for the hang-up.
pub fn store_wait(state: &AppState) -> Duration {
    (state.config.server.request_timeout / 5)
        .max(state.config.decision.lookup_timeout)
        .min(Duration::from_secs(2))
}

/// End a call without the store: unless the call is spooled already (then that record, and
/// nothing is hung up), hang up, learn the caller from the platform, and spool the record.
/// Returns the record and whether this press made it.
pub async fn end_call_offline(
    state: &AppState,
    mut t: Termination,
) -> Result<(Termination, bool), TerminationError> {
    let lock = state.spool.call_lock(t.provider, &t.call_id);
    let _held = lock.lock().await;
    if let Some(found) = state
        .spool
        .find(t.provider, &t.call_id)
        .await
        .map_err(|e| TerminationError::Task(e.to_string()))?
    {
        return Ok((found, false));
    }
    tracing::warn!(
        provider = %t.provider,
        call_id = %t.call_id,
        "the store is unavailable: ending the call and keeping the termination in the local spool"
    );
    let control = state.call_control(t.provider);
    let (hangup, detail) = crate::terminations::hang_up(control.as_ref(), &t).await;
    let caller = match tokio::time::timeout(LOOKUP_BUDGET, control.lookup_call(&t.call_id)).await {
        Ok(Ok(Some(info))) => caller_number(&info.caller).cloned(),
        _ => None,
    };
    t.caller = caller;
    t.hangup = Some(hangup);
    t.hangup_detail = detail;
    if let Err(e) = state.spool.put(&t).await {
        tracing::error!(call_id = %t.call_id, error = %e, "could not spool a termination");
        return Err(TerminationError::Task(format!(
            "the call was {}; the termination could not be kept: {e}",
            if hangup == HangupResult::Failed {
                "not ended"
            } else {
                "ended"
            }
        )));
    }
    Ok((t, true))
}

/// The answer for a spooled record: the record with `"stored": false`.
pub fn spooled_body(t: &Termination) -> serde_json::Value {
    let mut v = serde_json::to_value(TerminationView::from(t)).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("stored".into(), serde_json::Value::Bool(false));
    }
    v
}

/// Move one spooled termination into the store with its notification. Idempotent: a record
/// already in the store (this one, or another press's for the same call) is left as it is.
async fn move_into_store(state: &AppState, spooled: &Termination) -> Result<(), StoreError> {
    let mut claim = spooled.clone();
    claim.hangup = None;
    claim.hangup_detail = None;
    claim.claimed_until = Utc::now() + chrono::Duration::from_std(CLAIM_LEASE).unwrap_or_default();
    let existing = match state.store.claim_termination(&claim).await? {
        Claim::Created(t) | Claim::Existing(t) => t,
    };
    if existing.id != spooled.id {
        tracing::info!(
            termination_id = %existing.id,
            spooled_id = %spooled.id,
            call_id = %spooled.call_id,
            "this call's termination is already recorded; the spooled copy is dropped"
        );
        return Ok(());
    }
    if !existing.is_provisional() {
        return Ok(());
    }
    let arrangement = crate::terminations::arrangement_in_force(
        state,
        spooled.caller.as_ref(),
        spooled.terminated_at,
    )
    .await;
    let outcome = TerminationOutcome {
        caller: spooled.caller.clone(),
        arrangement_id: arrangement.as_ref().map(|a| a.id.clone()),
        customer_ref: arrangement.map(|a| a.customer_ref),
        hangup: spooled.hangup.unwrap_or(HangupResult::Failed),
        hangup_detail: spooled.hangup_detail.clone(),
    };
    let notification = crate::terminations::notification_for(state, &existing, &outcome)?;
    state
        .store
        .complete_termination(&spooled.id, &outcome, notification.as_ref())
        .await?;
    if notification.is_some() {
        state.outbox.wake();
    }
    tracing::info!(
        termination_id = %spooled.id,
        call_id = %spooled.call_id,
        "spooled termination moved into the store"
    );
    Ok(())
}

/// Offer every spooled termination to the store, oldest first, stopping at the first failure.
/// Returns how many were moved.
pub async fn drain(state: &AppState) -> Result<usize, SpoolError> {
    let mut moved = 0;
    for (path, t) in state.spool.list().await? {
        match tokio::time::timeout(MOVE_TIMEOUT, move_into_store(state, &t)).await {
            Ok(Ok(())) => {
                state.spool.remove(path).await?;
                moved += 1;
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the store does not take spooled terminations yet");
                break;
            }
            Err(_) => {
                tracing::debug!("moving a spooled termination timed out");
                break;
            }
        }
    }
    state.spool.publish_depth().await;
    Ok(moved)
}

/// The background task draining this instance's spool.
pub fn spawn(state: &AppState) -> JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = drain(&state).await {
                tracing::error!(error = %e, "draining the termination spool failed");
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(DRAIN_INTERVAL) => {}
                _ = state.spool.wake.notified() => {}
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn storage(url: &str, spool_dir: Option<&str>) -> StorageConfig {
        StorageConfig {
            url: Secret::new(url.to_string()),
            spool_dir: spool_dir.map(PathBuf::from),
        }
    }

    #[test]
    fn the_spool_sits_next_to_the_sqlite_file_unless_configured() {
        let dir = |url, cfg| spool_dir(&storage(url, cfg));
        assert_eq!(
            dir("sqlite://data/fairline.db", None),
            Path::new("data/spool")
        );
        assert_eq!(
            dir("sqlite:///var/lib/f/fl.db?mode=rwc", None),
            Path::new("/var/lib/f/spool")
        );
        assert_eq!(dir("sqlite::memory:", None), Path::new("data/spool"));
        assert_eq!(dir("postgres://u@h/db", None), Path::new("data/spool"));
        assert_eq!(
            dir("postgres://u@h/db", Some("/srv/sp")),
            Path::new("/srv/sp")
        );
    }

    fn termination(call: &str) -> Termination {
        let at = Utc::now();
        Termination {
            id: TerminationId::generate(),
            provider: Provider::Telnyx,
            call_id: CallId::parse(call).unwrap(),
            caller: Some(PhoneNumber::parse("+442920123456").unwrap()),
            arrangement_id: None,
            customer_ref: None,
            agent: "contact-centre".into(),
            reason: TerminationReason::Racist,
            warning_given: true,
            warned_at: Some(at),
            notes: Some("notes".into()),
            terminated_at: at,
            hangup: Some(HangupResult::AlreadyEnded),
            hangup_detail: None,
            claimed_until: at,
            review: None,
        }
    }

    #[tokio::test]
    async fn a_record_round_trips_and_is_found_by_its_call() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"));
        assert_eq!(spool.depth().await, 0);
        let call = "v3:abc/def:ghi";
        let t = termination(call);
        spool.put(&t).await.unwrap();
        assert_eq!(spool.depth().await, 1);
        let found = spool
            .find(Provider::Telnyx, &CallId::parse(call).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, t);
        let other = CallId::parse("v3:other").unwrap();
        assert_eq!(spool.find(Provider::Telnyx, &other).await.unwrap(), None);
        assert_eq!(
            spool.find(Provider::Twilio, &t.call_id).await.unwrap(),
            None
        );
        let listed = spool.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        spool.remove(listed[0].0.clone()).await.unwrap();
        assert_eq!(spool.depth().await, 0);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 0);
    }
}
