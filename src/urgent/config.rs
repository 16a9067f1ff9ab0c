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

use crate::config::{parse_telnyx_target, parse_twilio_target, TelnyxTarget, TwilioTarget};
use crate::fields::{Fields, Optional};
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

/// Read `[decision.urgent]` (`t`; `present` when the table is written). Every problem goes into
/// `t` with its key path; the configuration is returned only when there is none.
pub fn read(t: &mut Fields<'_>, present: bool, platforms: Platforms) -> Option<UrgentConfig> {
    if !present {
        return Some(UrgentConfig::default());
    }
    let before = t.problem_count();
    let defaults = UrgentConfig::default();
    let enabled = t.boolean("enabled", Optional).unwrap_or(true);
    let digit = t.parsed(
        "digit",
        Optional,
        |s| {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Ok(c),
                _ => Err(()),
            }
        },
        "must be one key: a digit 0-9, \"*\" or \"#\"",
    );
    let twilio = target(
        t,
        "twilio",
        enabled && platforms.twilio,
        parse_twilio_target,
        "must be client:IDENTITY, sip:URI or +E.164",
    );
    let telnyx = target(
        t,
        "telnyx",
        enabled && platforms.telnyx,
        parse_telnyx_target,
        "must be sip:URI or +E.164",
    );
    let vonage = target(
        t,
        "vonage",
        enabled && platforms.vonage,
        VonageEndpoint::parse,
        "must be sip:URI, +E.164 or app:USER",
    );
    (t.problem_count() == before).then(|| UrgentConfig {
        enabled,
        digit: digit.unwrap_or(defaults.digit),
        twilio,
        telnyx,
        vonage,
    })
}

/// A platform's duty target, required when the route is on and so is the platform.
fn target<T>(
    t: &mut Fields<'_>,
    key: &str,
    required: bool,
    parse: fn(&str) -> Option<T>,
    message: &str,
) -> Option<T> {
    if !t.has(key) && required {
        t.take(key);
        t.problem(
            key,
            format!("is required: the urgent route is enabled and so is [{key}]"),
        );
        return None;
    }
    t.parsed(key, Optional, |s| parse(s).ok_or(()), message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use crate::config::ConfigProblem;
    use crate::domain::PhoneNumber;
    use crate::fields::Source;

    fn value(toml_text: &str) -> serde_json::Value {
        let table: toml::Table = toml_text.parse().unwrap();
        serde_json::to_value(table).unwrap()
    }

    /// Read as the configuration does: the table under `decision.urgent`.
    fn read_urgent(
        v: Option<&serde_json::Value>,
        platforms: Platforms,
    ) -> (Option<UrgentConfig>, Vec<ConfigProblem>) {
        let mut t = Fields::new(Source::Config, PATH, v);
        let cfg = read(&mut t, v.is_some(), platforms);
        (cfg, t.finish())
    }

    const ALL: Platforms = Platforms {
        twilio: true,
        telnyx: true,
        vonage: true,
    };

    #[test]
    fn absent_is_off() {
        let (cfg, problems) = read_urgent(None, ALL);
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
        let (cfg, problems) = read_urgent(Some(&v), ALL);
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
        let (cfg, problems) = read_urgent(
            Some(&v),
            Platforms {
                twilio: true,
                telnyx: false,
                vonage: true,
            },
        );
        assert!(cfg.is_none());
        let keys: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(keys, ["decision.urgent.vonage"]);
    }

    #[test]
    fn disabled_needs_nothing_and_bad_values_are_named() {
        let v = value("enabled = false");
        let (cfg, problems) = read_urgent(Some(&v), ALL);
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
        let (_, problems) = read_urgent(Some(&v), ALL);
        let keys: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
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
