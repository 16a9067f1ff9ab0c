//! The `[vonage]` section and the `vonage` key of `[[staff]]` (SPEC §11, §15).
//!
//! The section is read here, from the merged configuration document, so that `src/config.rs`
//! only has to hand over the two raw values and collect the problems:
//!
//! * no `[vonage]` section → disabled, nothing required;
//! * a `[vonage]` section → enabled unless `enabled = false`;
//! * when enabled: `application_id`, `private_key` (an RSA private key in PEM, checked here) and
//!   `continue_to` are required, and `signature_secret` is required unless
//!   `verify_signatures = false`;
//! * `api_base_url` defaults to `https://api.nexmo.com`, `verify_signatures` to `true`;
//! * endpoints (`continue_to`, `[[staff]] vonage`) are `sip:URI`, `+E164` or `app:USER`.
//!
//! Unknown keys in `[vonage]` are errors, like everywhere else. The private key and the
//! signature secret are [`Secret`]s: never printed, never logged.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::Secret;
use crate::domain::{PhoneNumber, StaffId};
use crate::fields::{Fields, Optional, Source};

/// Vonage's REST API host.
pub const DEFAULT_API_BASE_URL: &str = "https://api.nexmo.com";

/// Where Vonage connects a call: the three endpoint kinds Fairline uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VonageEndpoint {
    /// `sip:…` (or `sips:…`) → `{"type":"sip","uri":…}`.
    Sip(String),
    /// `+E164` → `{"type":"phone","number":"<digits without +>"}`.
    Phone(PhoneNumber),
    /// `app:USER` → `{"type":"app","user":USER}` (a Client SDK user).
    App(String),
}

impl VonageEndpoint {
    /// Parse `sip:URI`, `+E164` (exactly as written in E.164) or `app:USER`.
    pub fn parse(raw: &str) -> Option<VonageEndpoint> {
        if let Some(user) = raw.strip_prefix("app:") {
            let ok = !user.is_empty()
                && user.len() <= 100
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.@+".contains(c));
            return ok.then(|| VonageEndpoint::App(user.to_owned()));
        }
        if let Some(rest) = raw
            .strip_prefix("sip:")
            .or_else(|| raw.strip_prefix("sips:"))
        {
            let ok = !rest.is_empty()
                && !rest
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == '"');
            return ok.then(|| VonageEndpoint::Sip(raw.to_owned()));
        }
        if raw.starts_with('+') {
            return PhoneNumber::parse(raw)
                .ok()
                .filter(|n| n.as_str() == raw)
                .map(VonageEndpoint::Phone);
        }
        None
    }

    /// As written in the configuration.
    pub fn to_config_string(&self) -> String {
        match self {
            VonageEndpoint::Sip(uri) => uri.clone(),
            VonageEndpoint::Phone(n) => n.as_str().to_owned(),
            VonageEndpoint::App(user) => format!("app:{user}"),
        }
    }
}

/// `[vonage]`.
#[derive(Clone, Debug)]
pub struct VonageConfig {
    pub enabled: bool,
    pub application_id: String,
    /// The application's RSA private key, PEM.
    pub private_key: Secret,
    /// The account's signature secret (HS256 key of signed webhooks).
    pub signature_secret: Secret,
    pub verify_signatures: bool,
    /// Without a trailing slash.
    pub api_base_url: String,
    /// Where an allowed call is connected; `None` only when disabled.
    pub continue_to: Option<VonageEndpoint>,
    /// `[[staff]] vonage = …`, by staff id.
    pub staff: BTreeMap<StaffId, VonageEndpoint>,
}

impl Default for VonageConfig {
    /// Disabled: no `[vonage]` section.
    fn default() -> Self {
        VonageConfig {
            enabled: false,
            application_id: String::new(),
            private_key: Secret::default(),
            signature_secret: Secret::default(),
            verify_signatures: true,
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            continue_to: None,
            staff: BTreeMap::new(),
        }
    }
}

impl VonageConfig {
    /// The staff member's Vonage endpoint, if configured.
    pub fn staff_endpoint(&self, id: &StaffId) -> Option<&VonageEndpoint> {
        self.staff.get(id)
    }

    /// `check-config` lines, secrets hidden.
    pub fn summary(&self) -> Vec<(String, String)> {
        let mut out = vec![("vonage.enabled".to_owned(), self.enabled.to_string())];
        if !self.enabled {
            return out;
        }
        out.push(("vonage.application_id".into(), self.application_id.clone()));
        out.push(("vonage.private_key".into(), self.private_key.to_string()));
        out.push((
            "vonage.signature_secret".into(),
            self.signature_secret.to_string(),
        ));
        out.push((
            "vonage.verify_signatures".into(),
            self.verify_signatures.to_string(),
        ));
        out.push(("vonage.api_base_url".into(), self.api_base_url.clone()));
        out.push((
            "vonage.continue_to".into(),
            self.continue_to
                .as_ref()
                .map(VonageEndpoint::to_config_string)
                .unwrap_or_else(|| "(none)".into()),
        ));
        for (id, endpoint) in &self.staff {
            out.push((format!("staff.{id}.vonage"), endpoint.to_config_string()));
        }
        out
    }
}

/// Read `[vonage]` (`t`; `present` when the operator wrote it) and the `vonage` keys of
/// `[[staff]]` (`staff`, the raw list). Every problem goes into `t`, with its key path; the
/// config is only returned when there is none.
pub fn read(t: &mut Fields<'_>, present: bool, staff: Option<&Value>) -> Option<VonageConfig> {
    let before = t.problem_count();
    let staff_map = read_staff(t, staff);
    if !present {
        let cfg = VonageConfig {
            staff: staff_map,
            ..VonageConfig::default()
        };
        return (t.problem_count() == before).then_some(cfg);
    }
    let enabled = t.boolean("enabled", Optional).unwrap_or(true);
    let verify_signatures = t.boolean("verify_signatures", Optional).unwrap_or(true);
    let application_id = t.string("application_id", Optional);
    let private_key = t.string("private_key", Optional);
    let signature_secret = t.string("signature_secret", Optional);
    let api_base_url = t.url("api_base_url", Optional, false).flatten();
    let continue_to_raw = t.string("continue_to", Optional).filter(|s| !s.is_empty());
    let continue_to = continue_to_raw.as_deref().and_then(|raw| {
        let endpoint = VonageEndpoint::parse(raw);
        if endpoint.is_none() {
            t.problem(
                "continue_to",
                "must be a sip: URI, a +E.164 number or app:USER",
            );
        }
        endpoint
    });

    let cfg = VonageConfig {
        enabled,
        verify_signatures,
        staff: staff_map,
        application_id: application_id.unwrap_or_default(),
        signature_secret: Secret::new(signature_secret.unwrap_or_default()),
        private_key: Secret::new(normalise_pem(&private_key.unwrap_or_default())),
        api_base_url: api_base_url.unwrap_or_else(|| DEFAULT_API_BASE_URL.to_owned()),
        continue_to,
    };
    if enabled {
        required_when_enabled(t, &cfg, continue_to_raw.is_some());
    }
    (t.problem_count() == before).then_some(cfg)
}

/// What an enabled `[vonage]` must have.
fn required_when_enabled(t: &mut Fields<'_>, cfg: &VonageConfig, continue_to_written: bool) {
    if cfg.application_id.trim().is_empty() {
        t.problem("application_id", "is required when [vonage] is enabled");
    }
    if cfg.continue_to.is_none() && !continue_to_written {
        t.problem(
            "continue_to",
            "is required when [vonage] is enabled (sip:URI, +E.164 or app:USER)",
        );
    }
    if cfg.private_key.is_empty() {
        t.problem(
            "private_key",
            "is required when [vonage] is enabled: the application's RSA private key, PEM \
             (FAIRLINE_VONAGE__PRIVATE_KEY)",
        );
    } else if jsonwebtoken::EncodingKey::from_rsa_pem(cfg.private_key.expose().as_bytes()).is_err()
    {
        // Never echo the value.
        t.problem(
            "private_key",
            "is not an RSA private key in PEM form (-----BEGIN PRIVATE KEY----- or \
             -----BEGIN RSA PRIVATE KEY-----)",
        );
    }
    if cfg.verify_signatures && cfg.signature_secret.is_empty() {
        t.problem(
            "signature_secret",
            "is empty but vonage.verify_signatures = true: set the account's signature \
             secret (FAIRLINE_VONAGE__SIGNATURE_SECRET)",
        );
    }
}

/// A PEM given through an environment variable often has literal `\n` for its line breaks.
fn normalise_pem(raw: &str) -> String {
    if !raw.contains('\n') && raw.contains("\\n") {
        raw.replace("\\n", "\n")
    } else {
        raw.to_owned()
    }
}

/// The `vonage` key of every `[[staff]]` table (the rest of each table is read, and its
/// problems reported, by `config::staff`).
fn read_staff(t: &mut Fields<'_>, staff: Option<&Value>) -> BTreeMap<StaffId, VonageEndpoint> {
    let mut out = BTreeMap::new();
    let Some(Value::Array(items)) = staff else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            continue; // reported by the main staff reader
        }
        let mut member = Fields::new(Source::Config, &format!("staff[{i}]"), Some(item));
        let endpoint = member.string_with("vonage", Optional, |raw| {
            VonageEndpoint::parse(raw)
                .ok_or_else(|| format!("{raw:?} is not sip:URI, +E.164 or app:USER"))
        });
        // A bad or missing id is reported by the main staff reader.
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| StaffId::parse(id).ok());
        if let (Some(id), Some(endpoint)) = (id, endpoint) {
            out.insert(id, endpoint);
        }
        for problem in member.finish_shared() {
            t.problem_at(problem.field, problem.message);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_the_three_kinds_and_nothing_else() {
        assert_eq!(
            VonageEndpoint::parse("sip:alice@pbx.example.org"),
            Some(VonageEndpoint::Sip("sip:alice@pbx.example.org".into()))
        );
        assert_eq!(
            VonageEndpoint::parse("app:staff-0042"),
            Some(VonageEndpoint::App("staff-0042".into()))
        );
        match VonageEndpoint::parse("+442079460999") {
            Some(VonageEndpoint::Phone(n)) => assert_eq!(n.as_str(), "+442079460999"),
            other => panic!("{other:?}"),
        }
        for bad in [
            "",
            "442079460999",
            "02079460999",
            "+44 20 7946 0999",
            "app:",
            "app:a b",
            "sip:",
            "sip:a b@c",
            "client:alice",
        ] {
            assert_eq!(VonageEndpoint::parse(bad), None, "{bad:?}");
        }
    }
}
