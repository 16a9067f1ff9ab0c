//! What the Telnyx webhook keeps between requests: the REST client, the set of event ids
//! already handled (deduplication on `data.id`), and the callers of recent inbound calls (so
//! that agent terminations can say who was on the line).
//!
//! [`TelnyxCalls`] is also the [`CallControl`] the application state uses for Telnyx: its
//! [`CallControl::lookup_call`] answers from that memory, which Telnyx's API cannot.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use moka::future::Cache;

use super::client::TelnyxClient;
use crate::domain::{CallId, CallerId, HangupResult, Provider};
use crate::providers::{CallControl, CallInfo, ProviderError};

/// How long an event id (or a handled step of a call) is remembered.
pub const SEEN_TTL: Duration = Duration::from_secs(10 * 60);
/// At most this many event ids are remembered (oldest evicted first, roughly).
pub const SEEN_CAPACITY: u64 = 100_000;
/// How long the caller of an inbound call is remembered: longer than the longest transfer
/// time limit Telnyx accepts (4 h).
pub const CALLER_TTL: Duration = Duration::from_secs(5 * 60 * 60);
/// At most this many callers are remembered.
pub const CALLER_CAPACITY: u64 = 100_000;

/// A remembered inbound call.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownCall {
    pub caller: CallerId,
    /// `occurred_at` of its `call.initiated`, for the duration recorded on hang-up.
    pub started_at: Option<DateTime<Utc>>,
}

/// The Telnyx webhook's memory and REST client. Cheap to share behind an `Arc`.
#[derive(Clone)]
pub struct TelnyxCalls {
    client: TelnyxClient,
    seen: Cache<String, ()>,
    calls: Cache<CallId, KnownCall>,
}

impl std::fmt::Debug for TelnyxCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelnyxCalls")
            .field("client", &self.client)
            .field("seen", &self.seen.entry_count())
            .field("calls", &self.calls.entry_count())
            .finish()
    }
}

impl TelnyxCalls {
    pub fn new(client: TelnyxClient) -> Self {
        TelnyxCalls {
            client,
            seen: Cache::builder()
                .max_capacity(SEEN_CAPACITY)
                .time_to_live(SEEN_TTL)
                .build(),
            calls: Cache::builder()
                .max_capacity(CALLER_CAPACITY)
                .time_to_live(CALLER_TTL)
                .build(),
        }
    }

    /// The REST client commands are sent with.
    pub fn client(&self) -> &TelnyxClient {
        &self.client
    }

    /// `true` the first time `key` is seen (within [`SEEN_TTL`]); `false` for a repeat. Atomic:
    /// of two concurrent calls with the same key, exactly one gets `true`.
    pub async fn first_time(&self, key: &str) -> bool {
        self.seen
            .entry(key.to_owned())
            .or_insert(())
            .await
            .is_fresh()
    }

    /// Remember the caller of an inbound call.
    pub async fn remember_call(&self, call_id: &CallId, call: KnownCall) {
        self.calls.insert(call_id.clone(), call).await;
    }

    /// The remembered inbound call, if any.
    pub async fn known_call(&self, call_id: &CallId) -> Option<KnownCall> {
        self.calls.get(call_id).await
    }
}

#[async_trait]
impl CallControl for TelnyxCalls {
    fn provider(&self) -> Provider {
        Provider::Telnyx
    }

    async fn hang_up(&self, call_id: &CallId) -> Result<HangupResult, ProviderError> {
        self.client.hang_up(call_id).await
    }

    /// The caller remembered from the call's `call.initiated` on this instance; `Ok(None)` when
    /// the call is unknown here (too old, or delivered to another instance).
    async fn lookup_call(&self, call_id: &CallId) -> Result<Option<CallInfo>, ProviderError> {
        Ok(self.known_call(call_id).await.map(|c| CallInfo {
            caller: c.caller,
            status: None,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::{Secret, TelnyxConfig};

    fn calls() -> TelnyxCalls {
        let cfg = TelnyxConfig {
            enabled: true,
            api_key: Secret::new("KEYtest"),
            public_key: None,
            verify_signatures: false,
            api_base_url: "http://127.0.0.1:9".into(),
            continue_to: "sip:main@pbx.example.org".into(),
        };
        TelnyxCalls::new(TelnyxClient::new(&cfg).unwrap())
    }

    #[tokio::test]
    async fn an_event_id_is_fresh_once() {
        let c = calls();
        assert!(c.first_time("evt-1").await);
        assert!(!c.first_time("evt-1").await);
        assert!(c.first_time("evt-2").await);
    }

    #[tokio::test]
    async fn concurrent_duplicates_yield_one_first() {
        let c = calls();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move { c.first_time("same").await }));
        }
        let mut firsts = 0;
        for t in tasks {
            if t.await.unwrap() {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1);
    }

    #[tokio::test]
    async fn lookup_answers_from_memory() {
        let c = calls();
        let id = CallId::parse("v3:known").unwrap();
        assert_eq!(c.lookup_call(&id).await.unwrap(), None);
        let caller = CallerId::classify("+447700900123");
        c.remember_call(
            &id,
            KnownCall {
                caller: caller.clone(),
                started_at: None,
            },
        )
        .await;
        let info = c.lookup_call(&id).await.unwrap().unwrap();
        assert_eq!(info.caller, caller);
        let other = CallId::parse("v3:other").unwrap();
        assert_eq!(c.lookup_call(&other).await.unwrap(), None);
    }
}
