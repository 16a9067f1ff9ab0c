//! The Call Control REST client: `POST {api_base_url}/v2/calls/{call_control_id}/actions/{action}`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::commands::{new_command_id, Command};
use crate::config::{Secret, TelnyxConfig};
use crate::domain::{CallId, HangupResult, Provider};
pub use crate::providers::rest::RetryPolicy;
use crate::providers::rest::{Operation, Retryable};
use crate::providers::{CallControl, CallInfo, ProviderError};

/// Telnyx's error code for "Call has already ended".
pub const ERROR_CALL_ENDED: &str = "90018";

/// A Telnyx Call Control client. Cheap to clone (the HTTP connection pool is shared).
#[derive(Clone, Debug)]
pub struct TelnyxClient {
    http: reqwest::Client,
    base: url::Url,
    api_key: Secret,
    retry: RetryPolicy,
}

/// A 4xx answer.
struct ClientError {
    status: u16,
    codes: Vec<String>,
    detail: String,
}

impl TelnyxClient {
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

    /// A client for `cfg.api_base_url` with `cfg.api_key`, 2 s connect and 5 s request timeouts
    /// and the default [`RetryPolicy`].
    pub fn new(cfg: &TelnyxConfig) -> Result<Self, ProviderError> {
        let base = url::Url::parse(&cfg.api_base_url).map_err(|e| {
            ProviderError::Unreachable(format!("telnyx.api_base_url is not a URL: {e}"))
        })?;
        if base.cannot_be_a_base() {
            return Err(ProviderError::Unreachable(
                "telnyx.api_base_url cannot be a base URL".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Self::CONNECT_TIMEOUT)
            .timeout(Self::REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::Unreachable(format!("HTTP client: {e}")))?;
        Ok(TelnyxClient {
            http,
            base,
            api_key: cfg.api_key.clone(),
            retry: RetryPolicy::default(),
        })
    }

    /// Replace the retry policy (tests use short back-offs).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The URL of one action; the call id is one percent-encoded path segment (`:` and `@` kept).
    pub fn action_url(&self, call_control_id: &CallId, action: &str) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([
                "v2",
                "calls",
                call_control_id.as_str(),
                "actions",
                action,
            ]);
        }
        url
    }

    /// Send one command. A `command_id` is added if the body has none, and the same one is sent
    /// on every retry. `Ok` on 2xx; [`ProviderError::Rejected`] on any other 4xx;
    /// [`ProviderError::Unreachable`] when the platform could not be reached or kept answering
    /// 5xx. `body` must be a JSON object (or null, sent as `{}`).
    pub async fn send(
        &self,
        call_control_id: &CallId,
        action: &str,
        body: Value,
    ) -> Result<(), ProviderError> {
        self.post(call_control_id, action, body)
            .await?
            .map_err(|e| ProviderError::Rejected {
                status: e.status,
                detail: e.detail,
            })
    }

    /// Send a planned [`Command`].
    pub async fn send_command(
        &self,
        call_control_id: &CallId,
        command: &Command,
    ) -> Result<(), ProviderError> {
        self.send(call_control_id, command.action, command.body.clone())
            .await
    }

    async fn post(
        &self,
        call_control_id: &CallId,
        action: &str,
        body: Value,
    ) -> Result<Result<(), ClientError>, ProviderError> {
        let mut body = match body {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            _ => {
                return Err(ProviderError::Rejected {
                    status: 0,
                    detail: "a command body must be a JSON object".into(),
                })
            }
        };
        let command_id = match body.get("command_id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                let id = new_command_id();
                body.insert("command_id".into(), Value::String(id.clone()));
                id
            }
        };
        let body = Value::Object(body);
        let url = self.action_url(call_control_id, action);
        let operation = Operation {
            provider: "telnyx",
            what: action,
            retry: self.retry,
            retryable: Retryable::ServerErrors,
        };
        let answer = operation
            .send(|| {
                Ok(self
                    .http
                    .post(url.clone())
                    .bearer_auth(self.api_key.expose())
                    .json(&body))
            })
            .await
            .map_err(|e| match e {
                ProviderError::Unreachable(why) => {
                    ProviderError::Unreachable(format!("{why} (call {call_control_id})"))
                }
                other => other,
            })?;
        let status = answer.status.as_u16();
        if answer.status.is_success() {
            tracing::debug!(call_id = %call_control_id, action, %command_id, "telnyx command accepted");
            return Ok(Ok(()));
        }
        let (codes, detail) = describe_errors(&answer.body);
        tracing::warn!(call_id = %call_control_id, action, %command_id, status, codes = ?codes,
            "telnyx refused the command");
        Ok(Err(ClientError {
            status,
            codes,
            detail,
        }))
    }
}

/// The `errors[].code` values and a readable summary of a Telnyx error body.
fn describe_errors(text: &str) -> (Vec<String>, String) {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let errors = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut codes = Vec::new();
    let mut parts = Vec::new();
    for e in &errors {
        let code = match e.get("code") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let title = e
            .get("detail")
            .or_else(|| e.get("title"))
            .and_then(Value::as_str)
            .unwrap_or("");
        parts.push(format!("{code} {title}").trim().to_owned());
        if !code.is_empty() {
            codes.push(code);
        }
    }
    let detail = if parts.is_empty() {
        text.chars().take(200).collect()
    } else {
        parts.join("; ")
    };
    (codes, detail)
}

#[async_trait]
impl CallControl for TelnyxClient {
    fn provider(&self) -> Provider {
        Provider::Telnyx
    }

    /// `actions/hangup`: 2xx → `Completed`; 422 with error `90018` → `AlreadyEnded`.
    async fn hang_up(&self, call_id: &CallId) -> Result<HangupResult, ProviderError> {
        let body = super::commands::hangup_command().body;
        match self.post(call_id, "hangup", body).await? {
            Ok(()) => Ok(HangupResult::Completed),
            Err(e) if e.status == 422 && e.codes.iter().any(|c| c == ERROR_CALL_ENDED) => {
                Ok(HangupResult::AlreadyEnded)
            }
            Err(e) => Err(ProviderError::Rejected {
                status: e.status,
                detail: e.detail,
            }),
        }
    }

    /// Telnyx has no simple lookup from `call_control_id` to the caller: always `Ok(None)`.
    /// The webhook handler can remember the caller from the `call.initiated` event instead.
    async fn lookup_call(&self, _call_id: &CallId) -> Result<Option<CallInfo>, ProviderError> {
        Ok(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    fn config(base: &str) -> TelnyxConfig {
        TelnyxConfig {
            enabled: true,
            api_key: Secret::new("KEY0123456789ABCDEF"),
            public_key: None,
            verify_signatures: false,
            api_base_url: base.to_owned(),
            continue_to: "sip:main-queue@pbx.example.org".into(),
        }
    }

    fn client(base: &str) -> TelnyxClient {
        TelnyxClient::new(&config(base))
            .unwrap()
            .with_retry_policy(RetryPolicy {
                attempts: 3,
                initial_backoff: Duration::from_millis(10),
            })
    }

    fn call() -> CallId {
        CallId::parse("v3:abc").unwrap()
    }

    fn body_of(r: &Request) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    fn ok() -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({"data": {"result": "ok"}}))
    }

    #[tokio::test]
    async fn sends_to_the_exact_path_with_bearer_auth_and_json() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/calls/v3:abc/actions/transfer"))
            .and(header("authorization", "Bearer KEY0123456789ABCDEF"))
            .and(header("content-type", "application/json"))
            .respond_with(ok())
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server.uri());
        c.send(
            &call(),
            "transfer",
            json!({"to": "sip:a@b", "command_id": "cmd-1"}),
        )
        .await
        .unwrap();
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(
            body_of(&reqs[0]),
            json!({"to": "sip:a@b", "command_id": "cmd-1"})
        );
    }

    #[tokio::test]
    async fn adds_a_command_id_when_missing() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ok())
            .mount(&server)
            .await;
        client(&server.uri())
            .send(&call(), "answer", Value::Null)
            .await
            .unwrap();
        let reqs = server.received_requests().await.unwrap();
        let id = body_of(&reqs[0])["command_id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok());
    }

    #[test]
    fn action_url_keeps_colons_and_encodes_the_rest() {
        let c = client("https://api.telnyx.com");
        let id = CallId::parse("v3:a/b?c#d").unwrap();
        assert_eq!(
            c.action_url(&id, "hangup").as_str(),
            "https://api.telnyx.com/v2/calls/v3:a%2Fb%3Fc%23d/actions/hangup"
        );
        let c = client("http://127.0.0.1:9999/base/");
        assert_eq!(
            c.action_url(&call(), "speak").as_str(),
            "http://127.0.0.1:9999/base/v2/calls/v3:abc/actions/speak"
        );
    }

    #[tokio::test]
    async fn retries_a_500_with_the_same_command_id() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ok())
            .with_priority(2)
            .mount(&server)
            .await;
        let cmd = super::super::commands::hangup_command();
        client(&server.uri())
            .send_command(&call(), &cmd)
            .await
            .unwrap();
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(reqs.len(), 2);
        let ids: Vec<Value> = reqs
            .iter()
            .map(|r| body_of(r)["command_id"].clone())
            .collect();
        assert_eq!(ids[0], ids[1]);
        assert_eq!(ids[0].as_str(), cmd.command_id());
    }

    #[tokio::test]
    async fn generated_command_id_is_also_reused_across_retries() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let err = client(&server.uri())
            .send(&call(), "answer", json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(reqs.len(), 3, "bounded at three attempts");
        let first = body_of(&reqs[0])["command_id"].clone();
        assert!(first.is_string());
        assert!(reqs.iter().all(|r| body_of(r)["command_id"] == first));
    }

    #[tokio::test]
    async fn a_4xx_is_rejected_without_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(422).set_body_json(json!({"errors": [
                {"code": "90034", "title": "Call not answered yet", "detail": "Answer first."}]})))
            .mount(&server)
            .await;
        let err = client(&server.uri())
            .send(&call(), "speak", json!({}))
            .await
            .unwrap_err();
        match err {
            ProviderError::Rejected { status, detail } => {
                assert_eq!(status, 422);
                assert!(detail.contains("90034"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn hang_up_completed() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/calls/v3:abc/actions/hangup"))
            .respond_with(ok())
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server.uri());
        assert_eq!(c.hang_up(&call()).await.unwrap(), HangupResult::Completed);
        assert_eq!(c.provider(), Provider::Telnyx);
    }

    #[tokio::test]
    async fn hang_up_on_an_ended_call_is_already_ended() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/calls/v3:abc/actions/hangup"))
            .respond_with(ResponseTemplate::new(422).set_body_json(json!({"errors": [
                {"code": "90018", "title": "Call has already ended",
                 "detail": "This call is no longer active and can't receive commands."}]})))
            .mount(&server)
            .await;
        assert_eq!(
            client(&server.uri()).hang_up(&call()).await.unwrap(),
            HangupResult::AlreadyEnded
        );
    }

    #[tokio::test]
    async fn hang_up_other_4xx_is_rejected() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({"errors": [
                {"code": "10009", "title": "Authentication failed"}]})))
            .mount(&server)
            .await;
        let err = client(&server.uri()).hang_up(&call()).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::Rejected { status: 401, .. }),
            "{err:?}"
        );
        // A 422 with another code is not "already ended".
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(422).set_body_json(json!({"errors": [
                {"code": "90034", "title": "Call not answered yet"}]})))
            .mount(&server)
            .await;
        let err = client(&server.uri()).hang_up(&call()).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::Rejected { status: 422, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn server_down_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let c = client(&format!("http://{addr}"));
        let err = c.hang_up(&call()).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
        let err = c.send(&call(), "answer", json!({})).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn lookup_is_not_offered() {
        let c = client("http://127.0.0.1:9");
        assert_eq!(c.lookup_call(&call()).await.unwrap(), None);
    }

    #[test]
    fn debug_does_not_show_the_api_key() {
        let c = client("http://127.0.0.1:9");
        assert!(!format!("{c:?}").contains("KEY0123456789ABCDEF"));
    }

    #[test]
    fn a_bad_base_url_is_an_error() {
        assert!(TelnyxClient::new(&config("not a url")).is_err());
        assert!(TelnyxClient::new(&config("mailto:x@y")).is_err());
    }
}
