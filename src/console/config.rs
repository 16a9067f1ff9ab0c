//! `[console]` (SPEC §12): the staff console's settings, read from the layered configuration.

use std::time::Duration;

use figment::value::Value;
use serde::Deserialize;

use crate::config::ConfigProblem;

/// The idle timeout when `console.session_idle_minutes` is not set.
pub const DEFAULT_IDLE_MINUTES: u64 = 30;
/// However active, a session ends this long after sign-in.
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// A session not used for this long ends.
    pub session_idle: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_idle: Duration::from_secs(DEFAULT_IDLE_MINUTES * 60),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    session_idle_minutes: Option<u64>,
    oidc: Option<Value>,
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
    if raw.oidc.is_some() {
        problems.push(ConfigProblem {
            key: "console.oidc".into(),
            message: "OpenID Connect sign-in is not available in this version; \
                      remove [console.oidc] and sign in with an API token"
                .into(),
        });
        ok = false;
    }
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
    })
}
