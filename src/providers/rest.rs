//! What the platforms' REST clients share: one request sent with retries and exponential
//! back-off. Connection errors, timeouts and the answers a platform marks as worth retrying
//! (5xx, and for some 429) are tried again; any other answer is final and returned as it is.
//! Nothing here logs a credential or a caller's number.

use std::time::Duration;

use reqwest::StatusCode;

use super::ProviderError;

/// How often and how patiently a request is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each later one.
    pub initial_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The same policy with at least one attempt.
    pub fn at_least_once(self) -> Self {
        RetryPolicy {
            attempts: self.attempts.max(1),
            ..self
        }
    }
}

/// A final answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

/// The statuses worth another attempt.
#[derive(Clone, Copy, Debug)]
pub enum Retryable {
    /// 5xx.
    ServerErrors,
    /// 5xx and 429 Too Many Requests.
    ServerErrorsAndTooMany,
}

impl Retryable {
    fn matches(self, status: StatusCode) -> bool {
        match self {
            Retryable::ServerErrors => status.is_server_error(),
            Retryable::ServerErrorsAndTooMany => {
                status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
            }
        }
    }
}

/// One operation against a platform's REST API.
pub struct Operation<'a> {
    /// `twilio`, `telnyx`, `vonage` (in logs).
    pub provider: &'static str,
    /// What is being done (`hangup`, `lookup`, an action name), in logs and errors.
    pub what: &'a str,
    pub retry: RetryPolicy,
    pub retryable: Retryable,
}

impl Operation<'_> {
    /// Send the request `build` makes (afresh for each attempt: credentials that expire, such
    /// as a signed JWT, are made anew) until a final answer, or
    /// [`ProviderError::Unreachable`] after the last attempt.
    pub async fn send(
        &self,
        mut build: impl FnMut() -> Result<reqwest::RequestBuilder, ProviderError>,
    ) -> Result<Answer, ProviderError> {
        let attempts = self.retry.attempts.max(1);
        let mut backoff = self.retry.initial_backoff;
        let mut last_problem = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            match build()?.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.text().await {
                        Ok(body) if !self.retryable.matches(status) => {
                            return Ok(Answer { status, body })
                        }
                        Ok(_) => last_problem = format!("HTTP {}", status.as_u16()),
                        Err(e) => last_problem = transport_problem(&e),
                    }
                }
                Err(e) => last_problem = transport_problem(&e),
            }
            tracing::warn!(
                provider = self.provider,
                operation = self.what,
                attempt,
                attempts,
                problem = %last_problem,
                "platform request failed"
            );
        }
        Err(ProviderError::Unreachable(format!(
            "{}: {last_problem} after {attempts} attempt(s)",
            self.what
        )))
    }
}

/// What went wrong on the way, in words.
fn transport_problem(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("{kind}: {e}")
}
