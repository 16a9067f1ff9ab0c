//! `[console]` (SPEC §12): the staff console's settings, read from the layered configuration.

use std::time::Duration;

use crate::config::Secret;
use crate::fields::{Fields, Optional, Required};

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

/// Read `[console]` (`t`; absent reads as the defaults). Problems go into `t`; `None` then.
pub fn read(t: &mut Fields<'_>) -> Option<ConsoleConfig> {
    let before = t.problem_count();
    let minutes = t
        .uint("session_idle_minutes", Optional, 1..=720)
        .unwrap_or(DEFAULT_IDLE_MINUTES);
    let oidc = if t.has("oidc") {
        let mut o = t.section("oidc");
        let oidc = read_oidc(&mut o);
        t.absorb(o);
        oidc
    } else {
        None
    };
    (t.problem_count() == before).then(|| ConsoleConfig {
        session_idle: Duration::from_secs(minutes * 60),
        oidc,
    })
}

/// `[console.oidc]`: the identity provider, and which of its roles make an agent or a manager.
fn read_oidc(o: &mut Fields<'_>) -> Option<OidcConfig> {
    // Kept exactly as written: the ID token's `iss` must match it, trailing slash and all.
    let issuer = o.parsed(
        "issuer",
        Required,
        |s| match url::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {
                Ok(s.to_string())
            }
            _ => Err(()),
        },
        "must be an http(s) URL",
    );
    let client_id = o.text("client_id", Required, 500);
    let client_secret = o.string("client_secret", Required);
    if client_secret.as_deref() == Some("") {
        o.problem("client_secret", "must not be empty");
    }
    let role_claim = o.text("role_claim", Required, 200);
    let agent_roles = o.strings("agent_roles", Optional).unwrap_or_default();
    let manager_roles = o.strings("manager_roles", Optional).unwrap_or_default();
    if agent_roles.is_empty() && manager_roles.is_empty() {
        o.problem(
            "agent_roles",
            "agent_roles or manager_roles must name at least one role",
        );
    }
    Some(OidcConfig {
        issuer: issuer?,
        client_id: client_id?,
        client_secret: Secret::new(client_secret?),
        role_claim: role_claim?,
        agent_roles,
        manager_roles,
    })
}
