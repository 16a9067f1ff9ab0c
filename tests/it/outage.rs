//! When the store fails (SPEC §11, issue 13): two instances on one PostgreSQL database, one of
//! them (B) reaching it through a TCP proxy that the test cuts — by refusing new connections,
//! by resetting connections, or by black-holing them (accepted, never forwarded) — and
//! restores. A change made on A once the store is back must be enforced on B within 1 s.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fairline::config;
use fairline::state::{AppState, Overrides};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::app::{arrangement, test_toml, TestApp};
use crate::procs::{twilio_call, twiml_verbs};
use crate::support;

// ---------------------------------------------------------------------------------------------
// A TCP proxy that can be cut
// ---------------------------------------------------------------------------------------------

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cut {
    /// Forward both ways.
    Pass = 0,
    /// Close new connections at once (with a reset); existing ones are reset.
    Refuse = 1,
    /// Reset existing connections, and new ones as soon as the client has spoken.
    Reset = 2,
    /// Accept new connections and never forward them; existing ones stop forwarding for good.
    BlackHole = 3,
}

#[derive(Clone, Copy, Debug)]
enum Command {
    Reset,
    Stall,
}

/// A TCP proxy to `upstream`, for as long as it lives.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    commands: broadcast::Sender<Command>,
    stop: CancellationToken,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Make closing `stream` send a reset (linger zero does not block on drop).
#[allow(deprecated)]
fn reset(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(Cut::Pass as u8));
        let (commands, _) = broadcast::channel(16);
        let stop = CancellationToken::new();
        let (m, c, s) = (mode.clone(), commands.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = s.cancelled() => return,
                    r = listener.accept() => r,
                };
                let Ok((client, _)) = accepted else { continue };
                let rx = c.subscribe();
                let stop = s.clone();
                let mode = m.load(Ordering::SeqCst);
                tokio::spawn(handle(client, upstream, mode, rx, stop));
            }
        });
        Proxy {
            addr,
            mode,
            commands,
            stop,
        }
    }

    /// Cut (or restore, with `Cut::Pass`) the connections.
    pub fn set(&self, cut: Cut) {
        self.mode.store(cut as u8, Ordering::SeqCst);
        let command = match cut {
            Cut::Pass => return,
            Cut::Refuse | Cut::Reset => Command::Reset,
            Cut::BlackHole => Command::Stall,
        };
        let _ = self.commands.send(command);
    }
}

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    mode: u8,
    mut commands: broadcast::Receiver<Command>,
    stop: CancellationToken,
) {
    match mode {
        m if m == Cut::Refuse as u8 => {
            reset(&client);
            return;
        }
        m if m == Cut::Reset as u8 => {
            let _ = tokio::time::timeout(Duration::from_secs(1), client.readable()).await;
            reset(&client);
            return;
        }
        m if m == Cut::BlackHole as u8 => {
            // Hold the connection open, forwarding nothing, until the proxy goes.
            stop.cancelled().await;
            return;
        }
        _ => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        reset(&client);
        return;
    };
    let command = tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        c = commands.recv() => c,
    };
    match command {
        Ok(Command::Stall) => stop.cancelled().await,
        _ => {
            reset(&client);
            reset(&server);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------------

/// An in-process instance on PostgreSQL `url` in `schema` (unsigned Twilio webhooks).
async fn instance(url: &str, schema: &str, extra: &str) -> TestApp {
    let store = fairline::store::postgres::PgStore::connect_in_schema(url, schema)
        .await
        .expect("postgres store");
    let env = [(
        "FAIRLINE_TWILIO__VERIFY_SIGNATURES".to_string(),
        "false".to_string(),
    )];
    let config = config::from_sources(&test_toml(url, extra), &env).expect("config");
    let state = AppState::with_store(config, Arc::new(store), Overrides::default()).expect("state");
    TestApp::start(state, None).await
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    u.set_host(Some(&addr.ip().to_string())).unwrap();
    u.set_port(Some(addr.port())).unwrap();
    u.to_string()
}

fn upstream_of(url: &str) -> SocketAddr {
    let u = reqwest::Url::parse(url).unwrap();
    let host = u.host_str().unwrap_or("127.0.0.1");
    let port = u.port().unwrap_or(5432);
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .unwrap()
        .next()
        .unwrap()
}

/// The first TwiML verb B answers for a call from `from`.
async fn verb(client: &reqwest::Client, base: &str, from: &str, n: &mut u32) -> String {
    *n += 1;
    let sid = format!("CA{:032}", *n);
    let (status, xml) = twilio_call(client, base, &sid, from).await.unwrap();
    assert_eq!(status, 200, "{xml}");
    twiml_verbs(&xml).into_iter().next().unwrap_or_default()
}

/// Call `base` from `from` every 20 ms until the first verb is `want`; the time it took.
async fn until(
    client: &reqwest::Client,
    base: &str,
    from: &str,
    want: &str,
    n: &mut u32,
) -> Duration {
    let start = Instant::now();
    loop {
        if verb(client, base, from, n).await == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{from}: never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// B caches a negative entry (X) and a block (Y); B's store is cut for `outage` by `cut`
/// while calls keep arriving; once restored, A blocks X and revokes Y's block: B enforces
/// both within 1 s of each change.
async fn change_after_outage(test: &str, cut: Cut, outage: Duration) {
    let Some((url, schema)) = support::pg_schema(test) else {
        return;
    };
    let proxy = Proxy::start(upstream_of(&url)).await;
    let a = instance(&url, &schema, "").await;
    let b = instance(&through(&url, proxy.addr), &schema, "").await;
    let client = reqwest::Client::new();
    let (x, y) = ("+442920111222", "+442920333444");
    let blocked_y = a
        .create_arrangement(arrangement(y, json!({"kind": "blocked"})))
        .await;
    let mut n = 0;
    assert_eq!(verb(&client, &b.url, x, &mut n).await, "Redirect");
    until(&client, &b.url, y, "Reject", &mut n).await;

    proxy.set(cut);
    let cut_at = Instant::now();
    // During the outage B keeps answering from its cache (stale entries, SPEC §4).
    while cut_at.elapsed() < outage {
        assert_eq!(verb(&client, &b.url, x, &mut n).await, "Redirect");
        assert_eq!(verb(&client, &b.url, y, &mut n).await, "Reject");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.set(Cut::Pass);
    let restored = Instant::now();
    // As soon as B's store answers again (`/readyz`), B reads both numbers afresh — entries
    // that a change made next would make stale, unless B's listener is back or drops them.
    loop {
        let r = client
            .get(format!("{}/readyz", b.url))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(restored.elapsed() < Duration::from_secs(5), "B never ready");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(verb(&client, &b.url, x, &mut n).await, "Redirect");
    assert_eq!(verb(&client, &b.url, y, &mut n).await, "Reject");

    a.create_arrangement(arrangement(x, json!({"kind": "blocked"})))
        .await;
    let x_changed = Instant::now();
    let x_took = until(&client, &b.url, x, "Reject", &mut n).await;
    let x_since_restore = restored.elapsed();

    let id = blocked_y["id"].as_str().unwrap();
    let r = a
        .manager(
            reqwest::Method::POST,
            &format!("/api/v1/arrangements/{id}/revoke"),
        )
        .json(&json!({"reason": "appeal upheld"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let y_took = until(&client, &b.url, y, "Redirect", &mut n).await;
    eprintln!(
        "{test}: {cut:?} for {outage:?}: block enforced on B {x_took:?} after the change \
         ({x_since_restore:?} after the store returned, {:?} after the change was made); \
         revocation {y_took:?}",
        x_changed.elapsed()
    );
    let limit = Duration::from_millis(1100);
    assert!(x_took <= limit, "block took {x_took:?}");
    assert!(y_took <= limit, "revocation took {y_took:?}");

    a.stop().await;
    b.stop().await;
    let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_change_reaches_b_within_1s_after_a_1s_reset() {
    change_after_outage("outage::reset_1s", Cut::Reset, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_change_reaches_b_within_1s_after_a_5s_refusal() {
    change_after_outage("outage::refuse_5s", Cut::Refuse, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_change_reaches_b_within_1s_after_a_15s_black_hole() {
    change_after_outage(
        "outage::black_hole_15s",
        Cut::BlackHole,
        Duration::from_secs(15),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Ending a call while the store is down
// ---------------------------------------------------------------------------------------------

mod end_call {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use fairline::config;
    use fairline::state::{AppState, Overrides};
    use serde_json::{json, Value};
    use sqlx::Connection;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::{through, upstream_of, Cut, Proxy};
    use crate::app::{test_toml, TestApp, ACCOUNT_SID, AGENT_TOKEN, MANAGER_TOKEN};
    use crate::procs::{create_database, drop_database, free_port};
    use crate::support;

    const CALL: &str = "CA7d1e9c3b5a4f60718293a4b5c6d7e8f0";
    const CALLER: &str = "+442920123456";

    fn call_path() -> String {
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL}.json")
    }

    /// A fake Twilio that knows the call and accepts its hang-up.
    async fn twilio() -> MockServer {
        let twilio = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(call_path()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"sid": CALL, "from": CALLER})),
            )
            .mount(&twilio)
            .await;
        Mock::given(method("POST"))
            .and(path(call_path()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sid": CALL})))
            .mount(&twilio)
            .await;
        twilio
    }

    /// A notification receiver that accepts everything.
    async fn receiver() -> MockServer {
        let r = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&r)
            .await;
        r
    }

    async fn hangups(twilio: &MockServer) -> usize {
        twilio
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .count()
    }

    async fn press(client: &reqwest::Client, base: &str) -> (u16, Value, Duration) {
        let start = Instant::now();
        let r = client
            .post(format!("{base}/api/v1/calls/twilio/{CALL}/terminate"))
            .bearer_auth(AGENT_TOKEN)
            .json(&json!({"reason": "abusive", "warning_given": true, "notes": "shouting"}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap(), start.elapsed())
    }

    /// GET the termination `id` from `base` once it is in the store (manager).
    async fn stored(client: &reqwest::Client, base: &str, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let r = client
                .get(format!("{base}/api/v1/terminations/{id}"))
                .bearer_auth(MANAGER_TOKEN)
                .send()
                .await
                .unwrap();
            let status = r.status();
            if status == 200 {
                // Between the drain's claim and its completion the record is `pending`.
                let rec: Value = r.json().await.unwrap();
                if rec["hangup"]["result"] != "pending" {
                    return rec;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "termination {id} never reached the store (last status {status})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn notifications(receiver: &MockServer, settle: Duration) -> Vec<Value> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if !receiver
                .received_requests()
                .await
                .unwrap_or_default()
                .is_empty()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give a duplicate the chance to show up.
        tokio::time::sleep(settle).await;
        receiver
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    /// The first press during an outage: the platform hangs up within the request timeout,
    /// 202 with `stored: false`.
    fn assert_spooled(status: u16, body: &Value, took: Duration) {
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["stored"], json!(false), "{body}");
        assert_eq!(body["hangup"]["result"], "completed", "{body}");
        assert_eq!(body["caller"], CALLER, "{body}");
        assert!(body["id"].as_str().unwrap().starts_with("trm_"));
        assert!(took < Duration::from_secs(5), "answered after {took:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pg_end_call_in_a_black_hole_outage_hangs_up_spools_and_stores_once() {
        let Some((url, schema)) = support::pg_schema("outage::pg_end_call_black_hole") else {
            return;
        };
        let twilio = twilio().await;
        let receiver = receiver().await;
        let spool = tempfile::tempdir().unwrap();
        let proxy = Proxy::start(upstream_of(&url)).await;
        let b_url = through(&url, proxy.addr);
        let store = fairline::store::postgres::PgStore::connect_in_schema(&b_url, &schema)
            .await
            .unwrap();
        let env = [
            ("FAIRLINE_TWILIO__API_BASE_URL".to_string(), twilio.uri()),
            (
                "FAIRLINE_STORAGE__SPOOL_DIR".to_string(),
                spool.path().display().to_string(),
            ),
        ];
        let extra = format!(
            "[notifications]\nwebhook_url = \"{}/hook\"\n",
            receiver.uri()
        );
        let cfg = config::from_sources(&test_toml(&b_url, &extra), &env).unwrap();
        let state = AppState::with_store(cfg, Arc::new(store), Overrides::default()).unwrap();
        state.outbox.set_base_backoff(Duration::from_millis(30));
        let b = TestApp::start(state, None).await;
        let client = reqwest::Client::new();

        proxy.set(Cut::BlackHole);
        let (status, first, took) = press(&client, &b.url).await;
        assert_spooled(status, &first, took);
        assert_eq!(hangups(&twilio).await, 1);
        assert_eq!(b.state.spool.depth().await, 1);
        // A second press meanwhile: the same record, nothing more hung up.
        let (status, again, _) = press(&client, &b.url).await;
        assert_eq!(status, 202);
        assert_eq!(again, first);
        assert_eq!(hangups(&twilio).await, 1);

        proxy.set(Cut::Pass);
        let id = first["id"].as_str().unwrap();
        let rec = stored(&client, &b.url, id).await;
        assert_eq!(rec["hangup"]["result"], "completed");
        assert_eq!(rec["caller"], CALLER);
        let sent = notifications(&receiver, Duration::from_millis(700)).await;
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["id"], id);
        let start = Instant::now();
        while b.state.spool.depth().await > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "spool never emptied"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Now the store has it: a later press answers 200 with the stored record.
        let (status, later, _) = press(&client, &b.url).await;
        assert_eq!(status, 200, "{later}");
        assert_eq!(later["id"], id);
        assert_eq!(hangups(&twilio).await, 1);
        b.stop().await;
        let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
    }

    fn start_binary(config: &Path, port: u16, env: &[(&str, String)]) -> std::process::Child {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fairline"));
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .env("FAIRLINE_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("FAIRLINE_OUTBOX_BACKOFF_MS", "50")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("start fairline")
    }

    async fn wait_healthy(client: &reqwest::Client, base: &str) {
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fairline did not start");
    }

    async fn spool_depth(client: &reqwest::Client, base: &str) -> Option<String> {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with("fairline_termination_spool_depth"))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
    }

    /// How the store goes down and comes back for the real binary.
    enum Outage {
        /// Another connection holds SQLite's write lock.
        SqliteLocked(Option<sqlx::SqliteConnection>),
        /// The PostgreSQL connections go through a proxy that is black-holed.
        Postgres(Proxy),
    }

    impl Outage {
        async fn start(&mut self, db: &Path) {
            match self {
                Outage::SqliteLocked(held) => {
                    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
                    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
                    sqlx::query("BEGIN EXCLUSIVE")
                        .execute(&mut c)
                        .await
                        .unwrap();
                    *held = Some(c);
                }
                Outage::Postgres(p) => p.set(Cut::BlackHole),
            }
        }

        async fn end(&mut self) {
            match self {
                Outage::SqliteLocked(held) => {
                    if let Some(mut c) = held.take() {
                        sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
                        c.close().await.unwrap();
                    }
                }
                Outage::Postgres(p) => p.set(Cut::Pass),
            }
        }
    }

    /// Press during an outage, SIGKILL the process while the termination is only spooled,
    /// bring the store back, restart: exactly one record and one notification.
    async fn sigkill_while_spooled(storage_url: &str, dir: &Path, mut outage: Outage) {
        let twilio = twilio().await;
        let receiver = receiver().await;
        let cfg_path = dir.join("fairline.toml");
        let extra = format!(
            "[notifications]\nwebhook_url = \"{}/hook\"\n",
            receiver.uri()
        );
        std::fs::write(&cfg_path, test_toml(storage_url, &extra)).unwrap();
        let env = [
            ("FAIRLINE_TWILIO__API_BASE_URL", twilio.uri()),
            (
                "FAIRLINE_STORAGE__SPOOL_DIR",
                dir.join("spool").display().to_string(),
            ),
        ];
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let mut first = start_binary(&cfg_path, port, &env);
        wait_healthy(&client, &base).await;

        outage.start(&dir.join("fairline.db")).await;
        let (status, rec, took) = press(&client, &base).await;
        assert_spooled(status, &rec, took);
        assert_eq!(hangups(&twilio).await, 1);
        assert_eq!(spool_depth(&client, &base).await.as_deref(), Some("1"));
        first.kill().unwrap(); // SIGKILL
        first.wait().unwrap();

        outage.end().await;
        let mut second = start_binary(&cfg_path, port, &env);
        wait_healthy(&client, &base).await;
        let id = rec["id"].as_str().unwrap();
        let got = stored(&client, &base, id).await;
        assert_eq!(got["hangup"]["result"], "completed");
        assert_eq!(got["caller"], CALLER);
        let sent = notifications(&receiver, Duration::from_millis(1000)).await;
        assert_eq!(sent.len(), 1, "exactly one notification: {sent:?}");
        assert_eq!(sent[0]["id"], id);
        let list: Value = client
            .get(format!("{base}/api/v1/terminations"))
            .bearer_auth(MANAGER_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
        let start = Instant::now();
        while spool_depth(&client, &base).await.as_deref() != Some("0") {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "spool depth never 0"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(hangups(&twilio).await, 1, "no second hang-up");
        let _ = second.kill();
        let _ = second.wait();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_locked_sigkill_while_spooled_then_one_record_and_one_notification() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
        sigkill_while_spooled(&url, dir.path(), Outage::SqliteLocked(None)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pg_black_hole_sigkill_while_spooled_then_one_record_and_one_notification() {
        let Some((base_url, _)) = support::pg_schema("outage::pg_sigkill_while_spooled") else {
            return;
        };
        let (db_url, db_name) = create_database(&base_url).await;
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::start(upstream_of(&db_url)).await;
        let via = through(&db_url, proxy.addr);
        sigkill_while_spooled(&via, dir.path(), Outage::Postgres(proxy)).await;
        drop_database(&base_url, &db_name).await;
    }
}

/// SQLite in process: the database is locked by another connection while End call is pressed.
/// The abandoned claim may still be written once the lock goes; the spooled record (same id)
/// completes it, so there is still one record, one hang-up and one notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_locked_end_call_spools_then_stores_once() {
    use sqlx::Connection;
    let twilio = wiremock::MockServer::start().await;
    let sid = "CA0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let call = format!(
        "/2010-04-01/Accounts/{}/Calls/{sid}.json",
        crate::app::ACCOUNT_SID
    );
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(call.as_str()))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"sid": sid, "from": "+442920123456"})),
        )
        .mount(&twilio)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(call.as_str()))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&twilio)
        .await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let db = dir.path().join("fairline.db");
    let url = format!("sqlite://{}", db.display());
    let env = [("FAIRLINE_TWILIO__API_BASE_URL".to_string(), twilio.uri())];
    let cfg = config::from_sources(&test_toml(&url, ""), &env).unwrap();
    let state = AppState::build(cfg, Overrides::default()).await.unwrap();
    assert_eq!(state.spool.dir(), dir.path().join("spool"));
    let app = TestApp::start(state, Some(dir.clone())).await;

    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let mut lock = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    let press = || async {
        let r = app
            .agent(
                reqwest::Method::POST,
                &format!("/api/v1/calls/twilio/{sid}/terminate"),
            )
            .json(&json!({"reason": "threat_of_violence", "warning_given": false}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.unwrap())
    };
    let start = Instant::now();
    let (status, first) = press().await;
    assert_eq!(status, 202, "{first}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(first["stored"], json!(false));
    assert_eq!(first["police_report_required"], json!(true));
    let (status, again) = press().await;
    assert_eq!((status, &again), (202, &first));
    assert_eq!(app.state.spool.depth().await, 1);

    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();
    let id = first["id"].as_str().unwrap();
    let start = Instant::now();
    loop {
        let r = app
            .manager(reqwest::Method::GET, &format!("/api/v1/terminations/{id}"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            let rec: serde_json::Value = r.json().await.unwrap();
            if rec["hangup"]["result"] == "completed" && app.state.spool.depth().await == 0 {
                assert_eq!(rec["caller"], "+442920123456");
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, later) = press().await;
    assert_eq!(status, 200);
    assert_eq!(later["id"], id);
    let posts = twilio
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(posts, 1, "one hang-up");
    app.stop().await;
}
