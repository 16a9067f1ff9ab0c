//! `[decision.urgent]` (SPEC §14): the safeguarding route offered after a spoken refusal.
//!
//! ```toml
//! [decision.urgent]
//! enabled = true
//! digit = "9"                       # one of 0-9, * or #
//! twilio = "client:duty-manager"    # client:IDENTITY | sip:URI | +E164 (as [[staff]] twilio)
//! telnyx = "sip:duty@pbx.example"   # sip:URI | +E164                 (as [[staff]] telnyx)
//! vonage = "+447700900999"          # sip:URI | +E164 | app:USER       (as [[staff]] vonage)
//! ```
//!
//! Off when the table is absent or `enabled = false`; then nothing else is required. When on,
//! a target is required for every platform that is switched on.

use std::collections::BTreeMap;

use figment::value::Value;

use crate::config::{ConfigProblem, TelnyxTarget, TwilioTarget};
use crate::domain::PhoneNumber;
use crate::providers::vonage::VonageEndpoint;

/// The key path of the table.
const PATH: &str = "decision.urgent";

/// `[decision.urgent]`, read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrgentConfig {
    pub enabled: bool,
    /// The key that asks for the duty target: `0`-`9`, `*` or `#`.
    pub digit: char,
    pub twilio: Option<TwilioTarget>,
    pub telnyx: Option<TelnyxTarget>,
    pub vonage: Option<VonageEndpoint>,
}

impl Default for UrgentConfig {
    fn default() -> Self {
        UrgentConfig {
            enabled: false,
            digit: '9',
            twilio: None,
            telnyx: None,
            vonage: None,
        }
    }
}

impl UrgentConfig {
    /// `digit` as the platforms report it.
    pub fn digit_str(&self) -> String {
        self.digit.to_string()
    }

    /// Whether `pressed` (what the platform reported, possibly empty) is the urgent digit.
    pub fn is_urgent_digit(&self, pressed: Option<&str>) -> bool {
        pressed.map(str::trim) == Some(self.digit_str().as_str())
    }

    /// For `check-config`: nothing secret in here.
    pub fn summary(&self) -> Vec<(String, String)> {
        let mut out = vec![(format!("{PATH}.enabled"), self.enabled.to_string())];
        if self.enabled {
            out.push((format!("{PATH}.digit"), self.digit_str()));
            if let Some(t) = &self.twilio {
                out.push((format!("{PATH}.twilio"), twilio_string(t)));
            }
            if let Some(t) = &self.telnyx {
                out.push((format!("{PATH}.telnyx"), t.as_str().to_owned()));
            }
            if let Some(t) = &self.vonage {
                out.push((format!("{PATH}.vonage"), t.to_config_string()));
            }
        }
        out
    }
}

fn twilio_string(t: &TwilioTarget) -> String {
    match t {
        TwilioTarget::Client(c) => format!("client:{c}"),
        TwilioTarget::Sip(s) => s.clone(),
        TwilioTarget::Number(n) => n.as_str().to_owned(),
    }
}

/// Which platforms are switched on (a target is required for each when urgent is enabled).
#[derive(Clone, Copy, Debug, Default)]
pub struct Platforms {
    pub twilio: bool,
    pub telnyx: bool,
    pub vonage: bool,
}

fn problem(problems: &mut Vec<ConfigProblem>, key: &str, message: impl Into<String>) {
    problems.push(ConfigProblem {
        key: format!("{PATH}.{key}"),
        message: message.into(),
    });
}

fn is_sip(s: &str) -> bool {
    s.strip_prefix("sip:")
        .or_else(|| s.strip_prefix("sips:"))
        .is_some_and(|rest| {
            !rest.is_empty()
                && !rest
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        })
}

fn e164(s: &str) -> Option<PhoneNumber> {
    PhoneNumber::parse(s).ok().filter(|n| n.as_str() == s)
}

/// A Twilio target, as `[[staff]] twilio`: `client:IDENTITY`, `sip:URI` or `+E164`.
pub fn parse_twilio_target(s: &str) -> Option<TwilioTarget> {
    if let Some(identity) = s.strip_prefix("client:") {
        let ok = !identity.is_empty()
            && identity
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c));
        return ok.then(|| TwilioTarget::Client(identity.to_owned()));
    }
    if is_sip(s) {
        return Some(TwilioTarget::Sip(s.to_owned()));
    }
    e164(s).map(TwilioTarget::Number)
}

/// A Telnyx target, as `[[staff]] telnyx`: `sip:URI` or `+E164`.
pub fn parse_telnyx_target(s: &str) -> Option<TelnyxTarget> {
    if is_sip(s) {
        return Some(TelnyxTarget::Sip(s.to_owned()));
    }
    e164(s).map(TelnyxTarget::Number)
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(_, s) => Some(s.clone()),
        Value::Num(_, n) => n.to_i128().map(|v| v.to_string()),
        _ => None,
    }
}

/// Read `[decision.urgent]` (`section` is the raw table, if any). Every problem is returned with
/// its key path; the configuration only when there is none.
pub fn read(
    section: Option<&Value>,
    platforms: Platforms,
) -> (Option<UrgentConfig>, Vec<ConfigProblem>) {
    let mut problems = Vec::new();
    let Some(section) = section else {
        return (Some(UrgentConfig::default()), problems);
    };
    let Value::Dict(_, dict) = section else {
        problems.push(ConfigProblem {
            key: PATH.into(),
            message: "must be a table".into(),
        });
        return (None, problems);
    };
    let mut keys: BTreeMap<String, &Value> = dict.iter().map(|(k, v)| (k.clone(), v)).collect();
    let mut cfg = UrgentConfig::default();

    match keys.remove("enabled") {
        None => cfg.enabled = true,
        Some(Value::Bool(_, b)) => cfg.enabled = *b,
        Some(Value::String(_, s)) if s == "true" || s == "false" => cfg.enabled = s == "true",
        Some(_) => problem(&mut problems, "enabled", "must be true or false"),
    }
    if let Some(v) = keys.remove("digit") {
        let s = string_of(v).unwrap_or_default();
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => cfg.digit = c,
            _ => problem(
                &mut problems,
                "digit",
                "must be one key: a digit 0-9, \"*\" or \"#\"",
            ),
        }
    }
    if let Some(v) = keys.remove("twilio") {
        match string_of(v).as_deref().and_then(parse_twilio_target) {
            Some(t) => cfg.twilio = Some(t),
            None => problem(
                &mut problems,
                "twilio",
                "must be client:IDENTITY, sip:URI or +E.164",
            ),
        }
    } else if cfg.enabled && platforms.twilio {
        problem(
            &mut problems,
            "twilio",
            "is required: the urgent route is enabled and so is [twilio]",
        );
    }
    if let Some(v) = keys.remove("telnyx") {
        match string_of(v).as_deref().and_then(parse_telnyx_target) {
            Some(t) => cfg.telnyx = Some(t),
            None => problem(&mut problems, "telnyx", "must be sip:URI or +E.164"),
        }
    } else if cfg.enabled && platforms.telnyx {
        problem(
            &mut problems,
            "telnyx",
            "is required: the urgent route is enabled and so is [telnyx]",
        );
    }
    if let Some(v) = keys.remove("vonage") {
        match string_of(v).as_deref().and_then(VonageEndpoint::parse) {
            Some(t) => cfg.vonage = Some(t),
            None => problem(
                &mut problems,
                "vonage",
                "must be sip:URI, +E.164 or app:USER",
            ),
        }
    } else if cfg.enabled && platforms.vonage {
        problem(
            &mut problems,
            "vonage",
            "is required: the urgent route is enabled and so is [vonage]",
        );
    }
    for key in keys.keys() {
        problem(&mut problems, key, "unknown key");
    }
    if problems.is_empty() {
        (Some(cfg), problems)
    } else {
        (None, problems)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn value(toml_text: &str) -> Value {
        let table: toml::Table = toml_text.parse().unwrap();
        Value::serialize(table).unwrap()
    }

    const ALL: Platforms = Platforms {
        twilio: true,
        telnyx: true,
        vonage: true,
    };

    #[test]
    fn absent_is_off() {
        let (cfg, problems) = read(None, ALL);
        assert!(problems.is_empty());
        assert!(!cfg.unwrap().enabled);
    }

    #[test]
    fn targets_of_every_platform_are_read() {
        let v = value(
            r##"enabled = true
digit = "#"
twilio = "client:duty"
telnyx = "+447700900999"
vonage = "app:duty""##,
        );
        let (cfg, problems) = read(Some(&v), ALL);
        assert!(problems.is_empty(), "{problems:?}");
        let cfg = cfg.unwrap();
        assert_eq!(cfg.digit, '#');
        assert_eq!(cfg.twilio, Some(TwilioTarget::Client("duty".into())));
        assert_eq!(
            cfg.telnyx,
            Some(TelnyxTarget::Number(
                PhoneNumber::parse("+447700900999").unwrap()
            ))
        );
        assert_eq!(cfg.vonage, Some(VonageEndpoint::App("duty".into())));
        assert!(cfg.is_urgent_digit(Some("#")));
        assert!(!cfg.is_urgent_digit(Some("9")));
        assert!(!cfg.is_urgent_digit(None));
    }

    #[test]
    fn a_target_is_required_for_each_enabled_platform() {
        let v = value(r#"twilio = "client:duty""#);
        let (cfg, problems) = read(
            Some(&v),
            Platforms {
                twilio: true,
                telnyx: false,
                vonage: true,
            },
        );
        assert!(cfg.is_none());
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["decision.urgent.vonage"]);
    }

    #[test]
    fn disabled_needs_nothing_and_bad_values_are_named() {
        let v = value("enabled = false");
        let (cfg, problems) = read(Some(&v), ALL);
        assert!(problems.is_empty());
        assert!(!cfg.unwrap().enabled);

        let v = value(
            r#"enabled = false
digit = "12"
twilio = "alice"
telnyx = "client:x"
vonage = "07700"
colour = "red""#,
        );
        let (_, problems) = read(Some(&v), ALL);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "decision.urgent.digit",
                "decision.urgent.twilio",
                "decision.urgent.telnyx",
                "decision.urgent.vonage",
                "decision.urgent.colour"
            ]
        );
    }
}
