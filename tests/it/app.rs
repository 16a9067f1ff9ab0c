//! Starting the real server on port 0 for a test.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use fairline::config::{self, Config};
use fairline::state::{AppState, Overrides};
use serde_json::Value;

pub const MANAGER_TOKEN: &str = "test-manager-token";
pub const AGENT_TOKEN: &str = "test-agent-token";
pub const TWILIO_TOKEN: &str = "test-twilio-auth-token";
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// The base configuration for tests (SQLite in a temp dir unless told otherwise).
pub fn test_toml(storage_url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
public_url = "https://calls.example.org"

[storage]
url = "{storage_url}"

[organisation]
name = "Test Ombudsman"
timezone = "Europe/London"
language = "en"
closed_dates = ["2026-12-25", "2026-12-28"]

[twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{TWILIO_TOKEN}"
verify_signatures = true
continue_url = "https://example.org/twiml/main-menu"

[telnyx]
verify_signatures = false

[[staff]]
id = "alice"
name = "Alice Jones"
twilio = "client:alice"
telnyx = "sip:alice@pbx.example.org"

[[staff]]
id = "bob"
name = "Bob Evans"
twilio = "sip:bob@pbx.example.org"
telnyx = "+442079460999"

[[auth.tokens]]
name = "casework-manager"
role = "manager"
sha256 = "{}"

[[auth.tokens]]
name = "contact-centre"
role = "agent"
sha256 = "{}"

{extra}
"#,
        config::hash_token(MANAGER_TOKEN),
        config::hash_token(AGENT_TOKEN),
    )
}

pub fn test_config(storage_url: &str, extra: &str) -> Config {
    match config::from_sources(&test_toml(storage_url, extra), &[]) {
        Ok(c) => c,
        Err(e) => panic!("test config invalid: {e}"),
    }
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub task: tokio::task::JoinHandle<()>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl TestApp {
    /// SQLite in a fresh temp directory, the test config plus `extra` TOML.
    pub async fn spawn(extra: &str) -> TestApp {
        Self::spawn_with(extra, Overrides::default()).await
    }

    pub async fn spawn_with(extra: &str, overrides: Overrides) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
        let config = test_config(&url, extra);
        let state = AppState::build(config, overrides).await.expect("state");
        Self::start(state, Some(dir)).await
    }

    /// PostgreSQL (from `FAIRLINE_TEST_POSTGRES_URL`) in schema `schema`, which several
    /// instances may share. `None` when no PostgreSQL server is configured for tests.
    pub async fn spawn_pg(
        url: &str,
        schema: &str,
        extra: &str,
        overrides: Overrides,
    ) -> Option<TestApp> {
        let store = fairline::store::postgres::PgStore::connect_in_schema(url, schema)
            .await
            .expect("postgres store");
        let config = test_config(url, extra);
        let state = AppState::with_store(config, Arc::new(store), overrides).expect("state");
        Some(Self::start(state, None).await)
    }

    /// Serve an already-built state.
    pub async fn start(state: AppState, dir: Option<Arc<tempfile::TempDir>>) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let s = state.clone();
        let task = tokio::spawn(async move {
            let _ = fairline::serve(s, listener).await;
        });
        TestApp {
            addr,
            url: format!("http://{addr}"),
            state,
            client: reqwest::Client::new(),
            task,
            _dir: dir,
        }
    }

    pub fn manager(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(MANAGER_TOKEN)
    }

    pub fn agent(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(AGENT_TOKEN)
    }

    /// Create an arrangement through the API; panics unless 201.
    pub async fn create_arrangement(&self, body: Value) -> Value {
        let resp = self
            .manager(reqwest::Method::POST, "/api/v1/arrangements")
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = resp.status();
        let json: Value = resp.json().await.expect("json");
        assert_eq!(status, 201, "create failed: {json}");
        json
    }

    pub async fn stop(self) {
        self.state.shutdown.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.task).await;
    }
}

/// A restricted arrangement body for `number` with the given extra fields merged in. It is in
/// force from 2000 to 2199, so tests on the real clock pass whatever today's date is.
pub fn arrangement(number: &str, extra: Value) -> Value {
    let mut base = serde_json::json!({
        "customer_ref": "PSOW-2026-00123",
        "phone_numbers": [number],
        "kind": "restricted",
        "reason": "Repeated abusive calls to caseworkers",
        "decided_by": "Director of Investigations",
        "starts_at": "2000-01-01T00:00:00Z",
        "ends_at": "2199-12-31T00:00:00Z",
        "review_due": "2199-12-01"
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}
