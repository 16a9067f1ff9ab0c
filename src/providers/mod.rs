//! Phone platforms. Each provider module verifies a webhook's signature over the raw bytes,
//! parses it into a provider-neutral [`CallEvent`], renders a [`CallAction`] in its own wire
//! format, and implements [`CallControl`] (hang up, look a call up) over its REST API.
//! Adding a provider touches neither the engine nor the store.

use async_trait::async_trait;

use crate::domain::{CallId, CallerId, HangupResult, PhoneNumber, Provider};
use crate::messages::SpokenMessage;

pub mod rest;
pub mod telnyx;
pub mod twilio;
pub mod vonage;

/// An incoming call, as any platform reports it.
#[derive(Clone, Debug)]
pub struct CallEvent {
    pub provider: Provider,
    pub call_id: CallId,
    /// The caller as classified from the platform's `From`.
    pub caller: CallerId,
}

/// What the platform is to do with a call, provider-neutral.
#[derive(Clone, Debug, PartialEq)]
pub enum CallAction {
    /// Into the organisation's normal call flow.
    Continue,
    /// Ring a designated member of staff (the provider module looks up its own target kind).
    Route {
        staff: crate::config::StaffMember,
        max_call_minutes: Option<u32>,
    },
    /// Answer, speak the messages in order, hang up.
    Refuse { messages: Vec<SpokenMessage> },
    /// Refuse without answering (a block with `refuse_blocked_with = "reject"`).
    Reject,
}

/// What a platform says about one call.
#[derive(Clone, Debug, PartialEq)]
pub struct CallInfo {
    /// The caller (for a child leg, the parent's caller).
    pub caller: CallerId,
    pub status: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Could not reach the platform, or it kept failing (timeouts, 5xx) after retries.
    #[error("the platform could not be reached: {0}")]
    Unreachable(String),
    /// The platform answered with an error that retrying will not fix.
    #[error("the platform refused the request (HTTP {status}): {detail}")]
    Rejected { status: u16, detail: String },
    #[error("the call is not known to the platform")]
    NotFound,
}

/// Controlling live calls through a platform's REST API.
#[async_trait]
pub trait CallControl: Send + Sync + 'static {
    fn provider(&self) -> Provider;

    /// End a live call. `AlreadyEnded` when the platform says it was over; an `Err` when the
    /// platform could not be reached or refused.
    async fn hang_up(&self, call_id: &CallId) -> Result<HangupResult, ProviderError>;

    /// Who is calling on this call (for terminations); `Ok(None)` when the platform does not
    /// offer a lookup.
    async fn lookup_call(&self, call_id: &CallId) -> Result<Option<CallInfo>, ProviderError>;
}

/// What a webhook handler reads of a request: its method, the URI as received (before any
/// nesting), its headers and its whole body. Taken from the request by value, where axum's
/// `HeaderMap` and `OriginalUri` extractors would copy them.
///
/// The body is read under the route's `DefaultBodyLimit` exactly as axum's `Bytes` extractor
/// reads it (413 when too large, with or without a Content-Length).
pub struct WebhookRequest {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for WebhookRequest {
    type Rejection = axum::response::Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let (mut parts, body) = request.into_parts();
        let uri = match parts.extensions.remove::<axum::extract::OriginalUri>() {
            Some(axum::extract::OriginalUri(original)) => original,
            None => std::mem::take(&mut parts.uri),
        };
        let headers = std::mem::take(&mut parts.headers);
        let method = parts.method.clone();
        // What remains (the extensions, where the body limit lives) goes with the body.
        let rest = axum::extract::Request::from_parts(parts, body);
        let body = bytes::Bytes::from_request(rest, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(WebhookRequest {
            method,
            uri,
            headers,
            body,
        })
    }
}

/// Run a webhook's decision under `limit`, catching a panic: `Err` with a description on
/// timeout or panic. On timeout the work is dropped (cancelled), so a late result has no effect
/// on the answer.
///
/// It runs in place rather than in a spawned task (a hand-off to another worker thread per call
/// was the largest single cost of an unknown caller's webhook), and the first poll goes without
/// a timer: a decision from the cache is ready at once and needs none. Only work that has to
/// wait (the store, a lock) is put under the timer, which then runs for the whole `limit`.
pub async fn guarded<T, F>(limit: std::time::Duration, work: F) -> Result<T, String>
where
    F: std::future::Future<Output = T>,
{
    use futures::FutureExt;
    let mut work = std::pin::pin!(std::panic::AssertUnwindSafe(work).catch_unwind());
    let settled = match work.as_mut().now_or_never() {
        Some(done) => Ok(done),
        None => tokio::time::timeout(limit, work).await,
    };
    match settled {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err("the decision panicked".into()),
        Err(_) => Err(format!("no decision within {} ms", limit.as_millis())),
    }
}

/// Helper for providers: the caller number, if it is one.
pub fn caller_number(caller: &CallerId) -> Option<&PhoneNumber> {
    match caller {
        CallerId::Number(n) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::guarded;
    use std::time::Duration;

    /// Pending `n` times (waking itself each time), then `value`.
    async fn after_yields(n: usize, value: u32) -> u32 {
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
        value
    }

    #[tokio::test]
    async fn guarded_answers_ready_and_waiting_work_and_turns_panics_and_timeouts_into_errors() {
        // Ready on the first poll (no timer), and after waiting (under the timer).
        assert_eq!(guarded(Duration::from_secs(1), async { 7 }).await, Ok(7));
        assert_eq!(
            guarded(Duration::from_secs(1), after_yields(3, 8)).await,
            Ok(8)
        );
        // Work that needs a wake-up from elsewhere still gets it after the first poll.
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(9);
        });
        assert_eq!(
            guarded(Duration::from_secs(5), async { rx.await.unwrap() }).await,
            Ok(9)
        );
        let slow = guarded(Duration::from_millis(20), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            1
        })
        .await;
        assert!(slow.unwrap_err().contains("no decision within 20 ms"));
        // A panic on the first poll, and one after waiting.
        #[allow(clippy::panic)]
        let boom = guarded(Duration::from_secs(1), async {
            if std::hint::black_box(true) {
                panic!("boom");
            }
            1
        })
        .await;
        assert!(boom.unwrap_err().contains("panicked"));
        #[allow(clippy::panic)]
        let late = guarded(Duration::from_secs(1), async {
            after_yields(2, 0).await;
            if std::hint::black_box(true) {
                panic!("late boom");
            }
            1
        })
        .await;
        assert!(late.unwrap_err().contains("panicked"));
    }
}
