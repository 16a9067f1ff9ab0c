//! `[server]` and `[storage]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Secret;
use crate::fields::{Fields, Optional, Required};

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// The base URL the platforms use, without a trailing slash.
    pub public_url: String,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
}

#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// `sqlite://…` or `postgres://…`; may hold a password, so it is a secret.
    pub url: Secret,
    /// `[storage] spool_dir`: where terminations are kept while the store is down (SPEC §11);
    /// `None`: see [`crate::spool::spool_dir`].
    pub spool_dir: Option<PathBuf>,
}

impl StorageConfig {
    pub fn is_postgres(&self) -> bool {
        let u = self.url.expose();
        u.starts_with("postgres://") || u.starts_with("postgresql://")
    }
}

pub(super) fn read_server(t: &mut Fields<'_>) -> Option<ServerConfig> {
    let bind = t.string_with("bind", Required, |s| {
        s.parse::<SocketAddr>()
            .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:8080"))
    });
    let public_url = t.url("public_url", Required, false).flatten();
    let request_timeout_ms = t.uint("request_timeout_ms", Required, 100..=600_000);
    let max_body_bytes = t.uint("max_body_bytes", Required, 1024..=64 * 1024 * 1024);
    Some(ServerConfig {
        bind: bind?,
        public_url: public_url?,
        request_timeout: Duration::from_millis(request_timeout_ms?),
        max_body_bytes: usize::try_from(max_body_bytes?).ok()?,
    })
}

pub(super) fn read_storage(t: &mut Fields<'_>) -> Option<StorageConfig> {
    let url = t.parsed(
        "url",
        Required,
        |u| {
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if known.iter().any(|p| u.starts_with(p)) {
                Ok(u.to_string())
            } else {
                Err(())
            }
        },
        "must start with sqlite:, postgres:// or postgresql://",
    );
    let spool_dir = t
        .string("spool_dir", Optional)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    Some(StorageConfig {
        url: Secret::new(url?),
        spool_dir,
    })
}
