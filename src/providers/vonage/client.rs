//! Vonage Voice REST API: look a call up (`GET /v1/calls/{uuid}`) and hang it up
//! (`PUT /v1/calls/{uuid}` `{"action":"hangup"}`), authenticated with an **application JWT**:
//! RS256 with the application's private key, claims `application_id`, `iat`, `exp`
//! (`iat` + 15 min) and a fresh `jti` for every request (reference §3.5).
//!
//! Every request has a 2 s connect timeout and a 5 s overall timeout. Connection errors,
//! timeouts, 429 and 5xx answers are retried (by default 3 attempts in all, 200 ms then 400 ms
//! apart); other answers are final. Redirects are not followed. Neither the key, the JWT nor
//! caller numbers are logged.
//!
//! A 404, or a call whose status is already final (`completed`, …), means the call had
//! already ended.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::domain::{CallId, CallerId, Provider};
use crate::providers::rest::{Answer, Operation, RetryPolicy, Retryable};
use crate::providers::{CallControl, CallInfo, HangupResult, ProviderError};

use super::config::VonageConfig;
use super::events::FINAL_STATUSES;

/// How long an application JWT is valid (the SDKs' default).
pub const APPLICATION_JWT_TTL_SECS: i64 = 15 * 60;

/// The claims of an application JWT.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApplicationClaims {
    pub application_id: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// A Vonage REST client for one application, implementing [`CallControl`].
#[derive(Clone)]
pub struct VonageClient {
    http: reqwest::Client,
    base: url::Url,
    application_id: String,
    /// `None` when Vonage is disabled (no key configured): every request fails.
    key: Option<EncodingKey>,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for VonageClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VonageClient")
            .field("base", &self.base.as_str())
            .field("application_id", &self.application_id)
            .field("has_key", &self.key.is_some())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// One side of a call in the lookup answer: `{"type":"phone","number":"447700900123"}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Party {
    Endpoint {
        #[serde(default)]
        number: Option<String>,
        #[serde(default)]
        user: Option<String>,
    },
    Plain(String),
}

#[derive(Debug, Deserialize)]
struct CallResource {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    from: Option<Party>,
}

impl VonageClient {
    /// A client for `cfg.application_id` at `cfg.api_base_url`. When Vonage is enabled the
    /// private key must parse (the configuration has checked it); when disabled no key is
    /// needed. Never panics.
    pub fn new(cfg: &VonageConfig) -> Result<Self, ProviderError> {
        let base = url::Url::parse(cfg.api_base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| {
                ProviderError::Unreachable("vonage.api_base_url is not an http(s) URL".into())
            })?;
        let key = if cfg.private_key.is_empty() {
            None
        } else {
            match EncodingKey::from_rsa_pem(cfg.private_key.expose().as_bytes()) {
                Ok(k) => Some(k),
                Err(_) if !cfg.enabled => None,
                Err(_) => {
                    return Err(ProviderError::Unreachable(
                        "vonage.private_key is not an RSA private key in PEM form".into(),
                    ))
                }
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fairline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ProviderError::Unreachable(format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(VonageClient {
            http,
            base,
            application_id: cfg.application_id.clone(),
            key,
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
        })
    }

    /// Replace the retry policy (tests use short back-offs).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry.at_least_once();
        self
    }

    /// The clock for the JWT's `iat`/`exp`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// `{base}/v1/calls/{uuid}`, the uuid encoded as one path segment.
    pub fn call_url(&self, uuid: &str) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().extend(["v1", "calls", uuid]);
        }
        url
    }

    /// A fresh application JWT.
    pub fn application_jwt(&self) -> Result<String, ProviderError> {
        let key = self.key.as_ref().ok_or_else(|| {
            ProviderError::Unreachable("vonage has no private key configured".into())
        })?;
        let iat = self.clock.now().timestamp();
        let claims = ApplicationClaims {
            application_id: self.application_id.clone(),
            iat,
            exp: iat + APPLICATION_JWT_TTL_SECS,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key).map_err(|e| {
            ProviderError::Unreachable(format!(
                "cannot sign the application JWT: {}",
                e.kind_name()
            ))
        })
    }

    async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        let operation = Operation {
            provider: "vonage",
            what,
            retry: self.retry,
            retryable: Retryable::ServerErrorsAndTooMany,
        };
        // A fresh application JWT for each attempt.
        operation
            .send(|| Ok(build().bearer_auth(self.application_jwt()?)))
            .await
    }

    async fn fetch(&self, uuid: &str) -> Result<CallResource, ProviderError> {
        let url = self.call_url(uuid);
        let answer = self.send("lookup", || self.http.get(url.clone())).await?;
        if answer.status.as_u16() == 404 {
            return Err(ProviderError::NotFound);
        }
        if !answer.status.is_success() {
            return Err(rejected(&answer));
        }
        serde_json::from_str(&answer.body).map_err(|e| ProviderError::Rejected {
            status: answer.status.as_u16(),
            detail: format!("unexpected call resource: {e}"),
        })
    }
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> &'static str {
        match self.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) => "invalid RSA key",
            _ => "signing failed",
        }
    }
}

fn rejected(answer: &Answer) -> ProviderError {
    // Vonage errors are problem+json (`title`, `detail`); keep a short, number-free excerpt.
    let detail = serde_json::from_str::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| {
            v.get("title")
                .and_then(|t| t.as_str())
                .map(|t| t.chars().take(200).collect::<String>())
        })
        .unwrap_or_else(|| format!("HTTP {}", answer.status.as_u16()));
    ProviderError::Rejected {
        status: answer.status.as_u16(),
        detail,
    }
}

fn is_final(status: Option<&str>) -> bool {
    status.is_some_and(|s| FINAL_STATUSES.contains(&s))
}

#[async_trait]
impl CallControl for VonageClient {
    fn provider(&self) -> Provider {
        Provider::Vonage
    }

    /// `PUT /v1/calls/{uuid}` `{"action":"hangup"}`. 2xx → `Completed`; 404 → `AlreadyEnded`;
    /// another 4xx for a call Vonage reports as over (`completed`, …) → `AlreadyEnded`, else
    /// `Rejected`; unreachable, 429 or 5xx after the retries → `Unreachable`.
    async fn hang_up(&self, call_id: &CallId) -> Result<HangupResult, ProviderError> {
        let url = self.call_url(call_id.as_str());
        let answer = self
            .send("hang_up", || {
                self.http
                    .put(url.clone())
                    .json(&serde_json::json!({"action": "hangup"}))
            })
            .await?;
        let status = answer.status.as_u16();
        if answer.status.is_success() {
            tracing::info!(provider = "vonage", call_id = %call_id, "call hung up");
            return Ok(HangupResult::Completed);
        }
        if status == 404 {
            tracing::info!(provider = "vonage", call_id = %call_id, status, "call had already ended");
            return Ok(HangupResult::AlreadyEnded);
        }
        if answer.status.is_client_error() && status != 401 && status != 403 {
            // Vonage refuses to hang up a call that is over; ask it what the call's state is.
            match self.fetch(call_id.as_str()).await {
                Ok(call) if is_final(call.status.as_deref()) => {
                    tracing::info!(provider = "vonage", call_id = %call_id, status, "call had already ended");
                    return Ok(HangupResult::AlreadyEnded);
                }
                Err(ProviderError::NotFound) => return Ok(HangupResult::AlreadyEnded),
                _ => {}
            }
        }
        Err(rejected(&answer))
    }

    /// `GET /v1/calls/{uuid}`: the caller is the call's `from` number (digits without `+`).
    async fn lookup_call(&self, call_id: &CallId) -> Result<Option<CallInfo>, ProviderError> {
        let call = self.fetch(call_id.as_str()).await?;
        let caller = match call.from {
            Some(Party::Endpoint {
                number: Some(n), ..
            }) => CallerId::classify(&n),
            Some(Party::Plain(n)) => CallerId::classify(&n),
            Some(Party::Endpoint {
                number: None,
                user: Some(_),
            }) => CallerId::Unrecognised,
            _ => CallerId::Withheld,
        };
        Ok(Some(CallInfo {
            caller,
            status: call.status,
        }))
    }
}
