//! Running the real `fairline` binary as a child process (for kill, restart and log tests).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free port on loopback (bound and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A `fairline serve` child process.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub url: String,
    pub config: PathBuf,
}

impl Server {
    /// Write `toml` (with `bind` set to a free port) to `dir` and start the binary on it.
    /// `log` receives stdout and stderr when given.
    pub async fn start(
        dir: &Path,
        name: &str,
        toml: &str,
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Server {
        let port = free_port();
        let toml = toml.replace(
            "bind = \"127.0.0.1:0\"",
            &format!("bind = \"127.0.0.1:{port}\""),
        );
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, toml).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fairline"));
        cmd.args(["serve", "--config"]).arg(&config);
        for (k, v) in env {
            cmd.env(k, v);
        }
        match log {
            Some(path) => {
                let f = std::fs::File::create(path).expect("log file");
                let g = f.try_clone().expect("clone");
                cmd.stdout(Stdio::from(f)).stderr(Stdio::from(g));
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd.spawn().expect("spawn fairline");
        let server = Server {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            config,
        };
        server.wait_ready().await;
        server
    }

    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(format!("{}/readyz", self.url)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fairline on port {} did not become ready", self.port);
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit code.
    pub async fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh PostgreSQL database for a test that runs real binaries; dropped by `drop_database`.
pub async fn create_database(base_url: &str) -> (String, String) {
    use sqlx::Connection;
    let name = format!("fl_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base_url)
        .await
        .expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = match base_url.rfind('/') {
        Some(i) => format!("{}/{name}", &base_url[..i]),
        None => panic!("unexpected PostgreSQL URL"),
    };
    (url, name)
}

pub async fn drop_database(base_url: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(base_url).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

/// Post an (unsigned) Twilio incoming-call form.
pub async fn twilio_call(
    client: &reqwest::Client,
    base: &str,
    call_sid: &str,
    from: &str,
) -> reqwest::Result<(u16, String)> {
    let body = format!(
        "AccountSid=AC0123456789abcdef0123456789abcdef&ApiVersion=2010-04-01&CallSid={call_sid}&CallStatus=ringing&Direction=inbound&From={}&To=%2B442079460000",
        from.replace('+', "%2B")
    );
    let r = client
        .post(format!("{base}/webhooks/twilio/voice"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await?))
}

/// The TwiML verbs under <Response>, in order.
pub fn twiml_verbs(xml: &str) -> Vec<String> {
    let doc =
        roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("invalid TwiML {xml:?}: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response", "{xml}");
    root.children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name().to_string())
        .collect()
}
