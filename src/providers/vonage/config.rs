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

use figment::value::Value;

use crate::config::{ConfigProblem, Secret};
use crate::domain::{PhoneNumber, StaffId};

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

/// Read `[vonage]` (`section`, absent when `None`) and the `vonage` keys of `[[staff]]`
/// (`staff`, the raw array). Every problem is returned, with its key path; the config is only
/// returned when there is none.
pub fn read(
    section: Option<&Value>,
    staff: Option<&Value>,
) -> (Option<VonageConfig>, Vec<ConfigProblem>) {
    let mut r = SectionReader::default();
    let staff_map = r.staff(staff);
    let Some(section) = section else {
        let cfg = VonageConfig {
            staff: staff_map,
            ..VonageConfig::default()
        };
        return finish(r, cfg);
    };
    let Value::Dict(_, dict) = section else {
        r.problem("vonage", "must be a table");
        return (None, r.problems);
    };
    let mut keys: BTreeMap<String, &Value> = dict.iter().map(|(k, v)| (k.clone(), v)).collect();
    let enabled = r.boolean(&mut keys, "enabled").unwrap_or(true);
    let verify_signatures = r.boolean(&mut keys, "verify_signatures").unwrap_or(true);
    let application_id = r.string(&mut keys, "application_id");
    let private_key = r.string(&mut keys, "private_key");
    let signature_secret = r.string(&mut keys, "signature_secret");
    let api_base_url = r.string(&mut keys, "api_base_url");
    let continue_to = r.string(&mut keys, "continue_to");
    for key in keys.keys() {
        r.problem(&format!("vonage.{key}"), "unknown key");
    }

    let mut cfg = VonageConfig {
        enabled,
        verify_signatures,
        staff: staff_map,
        ..VonageConfig::default()
    };
    match api_base_url.as_deref() {
        None => {}
        Some(raw) => match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                cfg.api_base_url = raw.trim_end_matches('/').to_owned();
            }
            _ => r.problem(
                "vonage.api_base_url",
                &format!("{raw:?} is not an http(s) URL"),
            ),
        },
    }
    if let Some(raw) = continue_to.as_deref().filter(|s| !s.is_empty()) {
        match VonageEndpoint::parse(raw) {
            Some(e) => cfg.continue_to = Some(e),
            None => r.problem(
                "vonage.continue_to",
                "must be a sip: URI, a +E.164 number or app:USER",
            ),
        }
    }
    cfg.application_id = application_id.unwrap_or_default();
    cfg.signature_secret = Secret::new(signature_secret.unwrap_or_default());
    cfg.private_key = Secret::new(normalise_pem(&private_key.unwrap_or_default()));

    if enabled {
        if cfg.application_id.trim().is_empty() {
            r.problem(
                "vonage.application_id",
                "is required when [vonage] is enabled",
            );
        }
        if cfg.continue_to.is_none() && continue_to.as_deref().is_none_or(str::is_empty) {
            r.problem(
                "vonage.continue_to",
                "is required when [vonage] is enabled (sip:URI, +E.164 or app:USER)",
            );
        }
        if cfg.private_key.is_empty() {
            r.problem(
                "vonage.private_key",
                "is required when [vonage] is enabled: the application's RSA private key, PEM \
                 (FAIRLINE_VONAGE__PRIVATE_KEY)",
            );
        } else if jsonwebtoken::EncodingKey::from_rsa_pem(cfg.private_key.expose().as_bytes())
            .is_err()
        {
            // Never echo the value.
            r.problem(
                "vonage.private_key",
                "is not an RSA private key in PEM form (-----BEGIN PRIVATE KEY----- or \
                 -----BEGIN RSA PRIVATE KEY-----)",
            );
        }
        if cfg.verify_signatures && cfg.signature_secret.is_empty() {
            r.problem(
                "vonage.signature_secret",
                "is empty but vonage.verify_signatures = true: set the account's signature \
                 secret (FAIRLINE_VONAGE__SIGNATURE_SECRET)",
            );
        }
    }
    finish(r, cfg)
}

fn finish(r: SectionReader, cfg: VonageConfig) -> (Option<VonageConfig>, Vec<ConfigProblem>) {
    if r.problems.is_empty() {
        (Some(cfg), r.problems)
    } else {
        (None, r.problems)
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

#[derive(Default)]
struct SectionReader {
    problems: Vec<ConfigProblem>,
}

impl SectionReader {
    fn problem(&mut self, key: &str, message: &str) {
        self.problems.push(ConfigProblem {
            key: key.to_owned(),
            message: message.to_owned(),
        });
    }

    fn string(&mut self, keys: &mut BTreeMap<String, &Value>, key: &str) -> Option<String> {
        match keys.remove(key)? {
            Value::String(_, s) => Some(s.clone()),
            _ => {
                self.problem(&format!("vonage.{key}"), "must be a string");
                None
            }
        }
    }

    fn boolean(&mut self, keys: &mut BTreeMap<String, &Value>, key: &str) -> Option<bool> {
        match keys.remove(key)? {
            Value::Bool(_, b) => Some(*b),
            Value::String(_, s) if s == "true" || s == "false" => Some(s == "true"),
            _ => {
                self.problem(&format!("vonage.{key}"), "must be true or false");
                None
            }
        }
    }

    /// The `vonage` key of every `[[staff]]` table (the rest of the table is read, and its
    /// problems reported, by `src/config.rs`).
    fn staff(&mut self, staff: Option<&Value>) -> BTreeMap<StaffId, VonageEndpoint> {
        let mut out = BTreeMap::new();
        let Some(Value::Array(_, items)) = staff else {
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let Value::Dict(_, d) = item else { continue };
            let Some(raw) = d.get("vonage") else { continue };
            let path = format!("staff[{i}].vonage");
            let Value::String(_, raw) = raw else {
                self.problem(&path, "must be a string");
                continue;
            };
            let Some(endpoint) = VonageEndpoint::parse(raw) else {
                self.problem(
                    &path,
                    &format!("{raw:?} is not sip:URI, +E.164 or app:USER"),
                );
                continue;
            };
            // A bad or missing id is reported by the main staff reader.
            if let Some(Value::String(_, id)) = d.get("id") {
                if let Ok(id) = StaffId::parse(id) {
                    out.insert(id, endpoint);
                }
            }
        }
        out
    }
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
