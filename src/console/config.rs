//! `[console]` (SPEC §12): the staff console's settings, read from the layered configuration.

use std::time::Duration;

use figment::value::Value;
use serde::Deserialize;

use crate::config::{ConfigProblem, Secret};

/// The idle timeout when `console.session_idle_minutes` is not set.
pub const DEFAULT_IDLE_MINUTES: u64 = 30;
/// However active, a session ends this long after sign-in.
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// A session not used for this long ends.
    pub session_idle: Duration,
    /// Sign-in with the organisation's identity provider, when `[console.oidc]` is set.
    pub oidc: Option<OidcConfig>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_idle: Duration::from_secs(DEFAULT_IDLE_MINUTES * 60),
            oidc: None,
        }
    }
}

/// `[console.oidc]`: OpenID Connect (authorization code + PKCE).
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// The issuer URL; its `/.well-known/openid-configuration` is read at each sign-in.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The ID-token claim that lists the person's roles (e.g. `roles`, `groups`).
    pub role_claim: String,
    /// Any of these in the role claim makes the person an agent…
    pub agent_roles: Vec<String>,
    /// …and any of these a manager (manager wins).
    pub manager_roles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    session_idle_minutes: Option<u64>,
    oidc: Option<RawOidc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    client_id: String,
    client_secret: String,
    role_claim: String,
    #[serde(default)]
    agent_roles: Vec<String>,
    #[serde(default)]
    manager_roles: Vec<String>,
}

/// Read `[console]` (absent: the defaults). Problems are added to `problems`; `None` then.
pub fn read(value: Option<&Value>, problems: &mut Vec<ConfigProblem>) -> Option<ConsoleConfig> {
    let Some(value) = value else {
        return Some(ConsoleConfig::default());
    };
    let raw: RawConsole = match value.deserialize() {
        Ok(r) => r,
        Err(e) => {
            problems.push(ConfigProblem {
                key: "console".into(),
                message: e.to_string(),
            });
            return None;
        }
    };
    let mut ok = true;
    let mut problem = |key: &str, message: &str| {
        problems.push(ConfigProblem {
            key: format!("console.oidc.{key}"),
            message: message.into(),
        });
        ok = false;
    };
    let oidc = raw.oidc.map(|o| {
        match url::Url::parse(&o.issuer) {
            Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => {}
            _ => problem("issuer", "must be an http(s) URL"),
        }
        if o.client_id.trim().is_empty() {
            problem("client_id", "must not be empty");
        }
        if o.client_secret.is_empty() {
            problem("client_secret", "must not be empty");
        }
        if o.role_claim.trim().is_empty() {
            problem("role_claim", "must not be empty");
        }
        if o.agent_roles.is_empty() && o.manager_roles.is_empty() {
            problem(
                "agent_roles",
                "agent_roles or manager_roles must name at least one role",
            );
        }
        OidcConfig {
            issuer: o.issuer,
            client_id: o.client_id,
            client_secret: Secret::new(o.client_secret),
            role_claim: o.role_claim,
            agent_roles: o.agent_roles,
            manager_roles: o.manager_roles,
        }
    });
    let minutes = raw.session_idle_minutes.unwrap_or(DEFAULT_IDLE_MINUTES);
    if !(1..=720).contains(&minutes) {
        problems.push(ConfigProblem {
            key: "console.session_idle_minutes".into(),
            message: "must be a whole number from 1 to 720".into(),
        });
        ok = false;
    }
    ok.then(|| ConsoleConfig {
        session_idle: Duration::from_secs(minutes * 60),
        oidc,
    })
}
