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
    let limit = Duration::from_millis(1250);
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
