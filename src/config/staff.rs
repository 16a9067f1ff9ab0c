//! `[[staff]]` (the people calls may be routed to) and `[[auth.tokens]]` (who may use the API
//! and the console, and in which role).

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::providers::{telnyx_target, twilio_target, TelnyxTarget, TwilioTarget};
use crate::domain::StaffId;
use crate::fields::{Fields, Optional, Required};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffMember {
    pub id: StaffId,
    pub name: String,
    pub twilio: Option<TwilioTarget>,
    pub telnyx: Option<TelnyxTarget>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Agent,
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Manager => "manager",
        }
    }
}

#[derive(Clone)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    pub tokens: Vec<ApiToken>,
}

/// The items of a list of tables (`[[staff]]`) at `path`, or a problem.
fn tables<'a>(
    parent: &mut Fields<'_>,
    path: &str,
    value: Option<&'a Value>,
) -> Vec<(String, &'a Value)> {
    match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v))
            .collect(),
        Some(_) => {
            parent.problem_at(path, "must be a list of tables ([[...]])");
            Vec::new()
        }
    }
}

/// `[[staff]]`: each with an `id`, a `name` and where to reach them on each platform.
pub(super) fn read_staff(top: &mut Fields<'_>, value: Option<&Value>) -> Option<Vec<StaffMember>> {
    let before = top.problem_count();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (path, item) in tables(top, "staff", value) {
        let mut t = top.item(path, item);
        let id = t.string_with("id", Required, |s| {
            StaffId::parse(s).map_err(|e| format!("{s:?}: {e}"))
        });
        let name = t.string("name", Required);
        let twilio = t.string_with("twilio", Optional, |s| {
            twilio_target(s)
                .ok_or_else(|| format!("{s:?} is not client:IDENTITY, sip:URI or +E.164"))
        });
        let telnyx = t.string_with("telnyx", Optional, |s| {
            telnyx_target(s).ok_or_else(|| format!("{s:?} is not sip:URI or +E.164"))
        });
        // Read by providers::vonage::config.
        t.skip(&["vonage"]);
        if let (Some(id), Some(name)) = (id, name) {
            if !seen.insert(id.clone()) {
                t.problem("id", format!("duplicate staff id {:?}", id.as_str()));
            }
            out.push(StaffMember {
                id,
                name,
                twilio,
                telnyx,
            });
        }
        top.absorb(t);
    }
    (top.problem_count() == before).then_some(out)
}

/// `[auth]`: `[[auth.tokens]]`, each a name, a role and the token's SHA-256.
pub(super) fn read_auth(t: &mut Fields<'_>) -> Option<AuthConfig> {
    let before = t.problem_count();
    let mut tokens = Vec::new();
    let mut names = BTreeSet::new();
    let mut hashes = BTreeSet::new();
    let path = t.path_of("tokens");
    let value = t.take("tokens");
    for (path, item) in tables(t, &path, value) {
        let mut token = t.item(path, item);
        let name = token.text("name", Required, 200);
        let role = token.choice(
            "role",
            Required,
            &[("agent", Role::Agent), ("manager", Role::Manager)],
            "must be \"agent\" or \"manager\"",
        );
        let sha256 = token.parsed(
            "sha256",
            Required,
            |s| {
                let digits = s.strip_prefix("sha256:").ok_or(())?;
                let bytes = hex::decode(digits).map_err(|_| ())?;
                <[u8; 32]>::try_from(bytes).map_err(|_| ())
            },
            "must be \"sha256:\" and 64 hex digits (from `fairline token hash`)",
        );
        if let (Some(name), Some(role), Some(sha256)) = (name, role, sha256) {
            if !names.insert(name.clone()) {
                token.problem("name", format!("duplicate token name {name:?}"));
            }
            if !hashes.insert(sha256) {
                token.problem("sha256", "the same token is configured twice");
            }
            tokens.push(ApiToken { name, role, sha256 });
        }
        t.absorb(token);
    }
    (t.problem_count() == before).then_some(AuthConfig { tokens })
}
