//! Twilio REST API (2010-04-01 Calls resource): hang up and look up calls.
//!
//! Every request has a 2 s connect timeout and a 5 s overall timeout. Connection errors,
//! timeouts and 5xx answers are retried (by default 3 attempts in all, 200 ms then 400 ms apart);
//! other answers are final. Redirects are not followed. Neither the auth token nor caller
//! numbers are logged.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::config::{Secret, TwilioConfig};
use crate::domain::{CallId, CallerId, HangupResult, Provider};
pub use crate::providers::rest::RetryPolicy;
use crate::providers::rest::{Answer, Operation, Retryable};
use crate::providers::{CallControl, CallInfo, ProviderError};

/// Twilio error code "Call is not in-progress".
const CALL_NOT_IN_PROGRESS: i64 = 21220;
/// How many parent links [`TwilioClient::lookup_call`] follows at most.
const MAX_PARENT_HOPS: usize = 2;

/// A Twilio REST client for one account, implementing [`CallControl`].
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    base: url::Url,
    account_sid: String,
    auth_token: Secret,
    retry: RetryPolicy,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("base", &self.base.as_str())
            .field("account_sid", &self.account_sid)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// The parts of a Call resource we read.
#[derive(Debug, Deserialize)]
struct CallResource {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    to: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    parent_call_sid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// What one request came back with, after retries.
impl TwilioClient {
    /// A client for `cfg.account_sid` at `cfg.api_base_url`. Fails (never panics) when the base
    /// URL is not an http(s) URL or the HTTP client cannot be built; both are reported as
    /// [`ProviderError::Unreachable`].
    pub fn new(cfg: &TwilioConfig) -> Result<Self, ProviderError> {
        let base = url::Url::parse(cfg.api_base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| {
                ProviderError::Unreachable("twilio.api_base_url is not an http(s) URL".into())
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fairline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ProviderError::Unreachable(format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(TwilioClient {
            http,
            base,
            account_sid: cfg.account_sid.clone(),
            auth_token: cfg.auth_token.clone(),
            retry: RetryPolicy::default(),
        })
    }

    /// Replace the retry policy (tests use short back-offs).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry.at_least_once();
        self
    }

    /// `{base}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`, each segment encoded.
    pub fn call_url(&self, call_sid: &str) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().extend([
                "2010-04-01",
                "Accounts",
                self.account_sid.as_str(),
                "Calls",
                &format!("{call_sid}.json"),
            ]);
        }
        url
    }

    async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        let operation = Operation {
            provider: "twilio",
            what,
            retry: self.retry,
            retryable: Retryable::ServerErrors,
        };
        operation
            .send(|| Ok(build().basic_auth(&self.account_sid, Some(self.auth_token.expose()))))
            .await
    }

    async fn fetch(&self, call_sid: &str) -> Result<CallResource, ProviderError> {
        let url = self.call_url(call_sid);
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

fn api_error(body: &str) -> Option<ApiError> {
    serde_json::from_str(body).ok()
}

fn rejected(answer: &Answer) -> ProviderError {
    let detail = match api_error(&answer.body) {
        Some(ApiError {
            code: Some(code),
            message,
        }) => format!("Twilio error {code}: {}", message.unwrap_or_default()),
        _ => answer.body.chars().take(200).collect(),
    };
    ProviderError::Rejected {
        status: answer.status.as_u16(),
        detail,
    }
}

#[async_trait]
impl CallControl for TwilioClient {
    fn provider(&self) -> Provider {
        Provider::Twilio
    }

    /// `POST …/Calls/{CallSid}.json` with `Status=completed`. 2xx → `Completed`; 404 or 400 with
    /// error 21220 → `AlreadyEnded`; any other 4xx (or 3xx) → `Rejected`; unreachable or 5xx
    /// after the retries → `Unreachable`.
    async fn hang_up(&self, call_id: &CallId) -> Result<HangupResult, ProviderError> {
        let url = self.call_url(call_id.as_str());
        let answer = self
            .send("hang_up", || {
                self.http.post(url.clone()).form(&[("Status", "completed")])
            })
            .await?;
        let status = answer.status.as_u16();
        if answer.status.is_success() {
            tracing::info!(provider = "twilio", call_id = %call_id, "call hung up");
            return Ok(HangupResult::Completed);
        }
        let already_ended = status == 404
            || (status == 400
                && api_error(&answer.body).and_then(|e| e.code) == Some(CALL_NOT_IN_PROGRESS));
        if already_ended {
            tracing::info!(provider = "twilio", call_id = %call_id, status, "call had already ended");
            return Ok(HangupResult::AlreadyEnded);
        }
        Err(rejected(&answer))
    }

    /// `GET …/Calls/{CallSid}.json`. The caller is the call's `from`, or for a child leg
    /// (`parent_call_sid` set) the parent's `from`; `status` is the looked-up call's own status.
    /// An unknown call is `Err(NotFound)`.
    async fn lookup_call(&self, call_id: &CallId) -> Result<Option<CallInfo>, ProviderError> {
        let call = self.fetch(call_id.as_str()).await?;
        let status = call.status.clone();
        let mut from = call.from;
        let mut parent = call.parent_call_sid;
        for _ in 0..MAX_PARENT_HOPS {
            match parent.as_deref().filter(|p| !p.is_empty()) {
                Some(p) => {
                    let up = self.fetch(p).await?;
                    from = up.from;
                    parent = up.parent_call_sid;
                }
                None => break,
            }
        }
        Ok(Some(CallInfo {
            caller: CallerId::classify(from.as_deref().unwrap_or("")),
            status,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::RefuseBlockedWith;
    use wiremock::matchers::{body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const ACCOUNT: &str = "AC3e7c1f9a2b4d6e8f0a1b2c3d4e5f6a7b";
    const CALL: &str = "CA5f8b3c1e2d4a6b7c8d9e0f1a2b3c4d5e";
    const CHILD: &str = "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    const PARENT_JSON: &str = include_str!("../../../fixtures/twilio/call-resource.json");
    const CHILD_JSON: &str = include_str!("../../../fixtures/twilio/call-resource-child.json");

    fn cfg(base: &str) -> TwilioConfig {
        TwilioConfig {
            enabled: true,
            account_sid: ACCOUNT.into(),
            auth_token: Secret::new("s3cret-token"),
            verify_signatures: true,
            continue_url: "https://example.org/".into(),
            api_base_url: base.into(),
            refuse_blocked_with: RefuseBlockedWith::Reject,
            ring_timeout_seconds: 30,
        }
    }

    fn client(base: &str) -> TwilioClient {
        TwilioClient::new(&cfg(base))
            .unwrap()
            .with_retry_policy(RetryPolicy {
                attempts: 3,
                initial_backoff: Duration::from_millis(5),
            })
    }

    fn call_path(sid: &str) -> String {
        format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json")
    }

    fn basic() -> String {
        use base64::Engine as _;
        let raw = format!("{ACCOUNT}:s3cret-token");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    fn id(s: &str) -> CallId {
        CallId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn hang_up_sends_the_exact_request() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(call_path(CALL)))
            .and(header("authorization", basic().as_str()))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string("Status=completed"))
            .respond_with(ResponseTemplate::new(200).set_body_string(PARENT_JSON))
            .expect(1)
            .mount(&server)
            .await;
        let result = client(&server.uri()).hang_up(&id(CALL)).await.unwrap();
        assert_eq!(result, HangupResult::Completed);
    }

    #[tokio::test]
    async fn hang_up_404_is_already_ended() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(404).set_body_string(
                r#"{"code":20404,"message":"The requested resource was not found","status":404}"#,
            ))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            client(&server.uri()).hang_up(&id(CALL)).await.unwrap(),
            HangupResult::AlreadyEnded
        );
    }

    #[tokio::test]
    async fn hang_up_400_21220_is_already_ended_other_400_is_rejected() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(call_path(CALL)))
            .respond_with(ResponseTemplate::new(400).set_body_string(
                r#"{"code":21220,"message":"Unable to update record: Call is not in-progress. Cannot redirect.","more_info":"https://www.twilio.com/docs/errors/21220","status":400}"#,
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(call_path(CHILD)))
            .respond_with(ResponseTemplate::new(400).set_body_string(
                r#"{"code":21218,"message":"Invalid ApplicationSid","status":400}"#,
            ))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server.uri());
        assert_eq!(
            c.hang_up(&id(CALL)).await.unwrap(),
            HangupResult::AlreadyEnded
        );
        match c.hang_up(&id(CHILD)).await.unwrap_err() {
            ProviderError::Rejected { status, detail } => {
                assert_eq!(status, 400);
                assert!(detail.contains("21218"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn hang_up_401_is_rejected_without_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_string(r#"{"code":20003,"message":"Authenticate","status":401}"#),
            )
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server.uri()).hang_up(&id(CALL)).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::Rejected { status: 401, .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains("s3cret-token"));
    }

    #[tokio::test]
    async fn hang_up_500_is_retried_then_unreachable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .expect(3)
            .mount(&server)
            .await;
        let err = client(&server.uri()).hang_up(&id(CALL)).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn hang_up_recovers_after_a_503() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string(PARENT_JSON))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            client(&server.uri()).hang_up(&id(CALL)).await.unwrap(),
            HangupResult::Completed
        );
    }

    #[tokio::test]
    async fn hang_up_server_down_is_unreachable() {
        // wiremock pools its servers (a dropped one keeps listening): use a port nobody holds.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = client(&uri).hang_up(&id(CALL)).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn hang_up_timeout_is_unreachable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(6)))
            .mount(&server)
            .await;
        let c = client(&server.uri()).with_retry_policy(RetryPolicy {
            attempts: 1,
            initial_backoff: Duration::from_millis(1),
        });
        let err = c.hang_up(&id(CALL)).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn lookup_plain_call() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(call_path(CALL)))
            .and(header("authorization", basic().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_string(PARENT_JSON))
            .expect(1)
            .mount(&server)
            .await;
        let info = client(&server.uri())
            .lookup_call(&id(CALL))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.status.as_deref(), Some("in-progress"));
        match info.caller {
            CallerId::Number(n) => assert_eq!(n.as_str(), "+442920123456"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn lookup_child_leg_resolves_to_parent_caller() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(call_path(CHILD)))
            .respond_with(ResponseTemplate::new(200).set_body_string(CHILD_JSON))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(call_path(CALL)))
            .respond_with(ResponseTemplate::new(200).set_body_string(PARENT_JSON))
            .expect(1)
            .mount(&server)
            .await;
        let info = client(&server.uri())
            .lookup_call(&id(CHILD))
            .await
            .unwrap()
            .unwrap();
        // The child's own `from` is the organisation's number; the caller is the parent's.
        assert_eq!(
            info.caller,
            CallerId::Number(crate::domain::PhoneNumber::parse("+442920123456").unwrap())
        );
        assert_eq!(info.status.as_deref(), Some("in-progress"));
    }

    #[tokio::test]
    async fn lookup_unknown_call_is_not_found() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_string(r#"{"code":20404}"#))
            .mount(&server)
            .await;
        let err = client(&server.uri())
            .lookup_call(&id(CALL))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NotFound), "{err:?}");
    }

    #[test]
    fn call_url_encodes_segments_and_keeps_a_base_path() {
        let c = client("http://127.0.0.1:9/twilio/");
        assert_eq!(
            c.call_url("CA1/../x?y").as_str(),
            format!("http://127.0.0.1:9/twilio/2010-04-01/Accounts/{ACCOUNT}/Calls/CA1%2F..%2Fx%3Fy.json")
        );
    }

    #[test]
    fn bad_base_url_is_an_error_not_a_panic() {
        assert!(TwilioClient::new(&cfg("not a url")).is_err());
        assert!(TwilioClient::new(&cfg("mailto:x@example.org")).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let c = client("https://api.twilio.com");
        assert!(!format!("{c:?}").contains("s3cret-token"));
    }
}
