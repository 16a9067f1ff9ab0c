//! Configuration: built-in defaults < TOML file < `FAIRLINE_<SECTION>__<KEY>` environment
//! variables (SPEC §2–§3). The merged document is read key by key with the one field reader
//! ([`crate::fields`]) so that every problem is reported at once with its key path, and
//! unknown keys are errors.
//!
//! One file per section: [`server`] (`[server]`, `[storage]`), [`organisation`],
//! [`decision`] (`[decision]`, `[cache]`), [`providers`] (`[twilio]`, `[telnyx]`), [`staff`]
//! (`[[staff]]`, `[auth]`), [`notifications`] (`[notifications]`, `[retention]`),
//! [`lifecycle`] (the §13 keys). `[vonage]`, `[decision.urgent]`, `[console]` and
//! `[messages]` are read by the modules they configure.

use std::collections::BTreeSet;
use std::path::Path;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;

use crate::domain::StaffId;
use crate::fields::{Fields, Source};
pub use crate::messages::MessageOverrides;

mod decision;
mod defaults;
pub mod lifecycle;
mod notifications;
mod organisation;
mod providers;
mod secret;
mod server;
mod staff;

pub use decision::{CacheConfig, DecisionConfig, LookupFailurePolicy};
pub use defaults::{BUILT_IN_DEFAULTS, DEFAULT_CONFIG_PATH};
pub use notifications::{NotificationsConfig, RetentionConfig};
pub use organisation::OrganisationConfig;
pub use providers::{RefuseBlockedWith, TelnyxConfig, TelnyxTarget, TwilioConfig, TwilioTarget};
pub use secret::{hash_token, redact_url, Secret};
pub use server::{ServerConfig, StorageConfig};
pub use staff::{ApiToken, AuthConfig, Role, StaffMember};

/// One problem with the configuration, at a key path (`twilio.auth_token`).
pub type ConfigProblem = crate::fields::FieldProblem;

/// A member of staff's Twilio or Telnyx address, as `[[staff]]` and `[decision.urgent]` write it.
pub use providers::{telnyx_target as parse_telnyx_target, twilio_target as parse_twilio_target};

#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub organisation: OrganisationConfig,
    pub decision: DecisionConfig,
    pub cache: CacheConfig,
    pub twilio: TwilioConfig,
    pub telnyx: TelnyxConfig,
    /// `[vonage]` (read by `providers::vonage::config`).
    pub vonage: crate::providers::vonage::VonageConfig,
    pub staff: Vec<StaffMember>,
    pub auth: AuthConfig,
    pub notifications: NotificationsConfig,
    pub retention: RetentionConfig,
    pub messages: MessageOverrides,
    /// Reviews, letters, notices and signed notifications (SPEC §13).
    pub lifecycle: lifecycle::LifecycleConfig,
    /// `[console]` (src/console/config.rs).
    pub console: crate::console::config::ConsoleConfig,
}

impl Config {
    /// Whether a platform is switched on (SPEC §11); a disabled one's webhooks and end-call
    /// path answer 404.
    pub fn provider_enabled(&self, provider: crate::domain::Provider) -> bool {
        match provider {
            crate::domain::Provider::Twilio => self.twilio.enabled,
            crate::domain::Provider::Telnyx => self.telnyx.enabled,
            crate::domain::Provider::Vonage => self.vonage.enabled,
        }
    }

    /// The platforms switched on, by name.
    pub fn enabled_providers(&self) -> Vec<&'static str> {
        let mut on = Vec::new();
        if self.twilio.enabled {
            on.push("twilio");
        }
        if self.telnyx.enabled {
            on.push("telnyx");
        }
        if self.vonage.enabled {
            on.push("vonage");
        }
        on
    }

    pub fn staff_member(&self, id: &StaffId) -> Option<&StaffMember> {
        self.staff.iter().find(|s| &s.id == id)
    }

    /// A human-readable summary for `check-config`, with secrets hidden.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| {
            out.push_str(&format!("{k:<34} {v}\n"));
        };
        let on = self.enabled_providers();
        line(
            "providers",
            if on.is_empty() {
                "none enabled (no webhook is served)".to_string()
            } else {
                format!("{} enabled", on.join(", "))
            },
        );
        line("server.bind", self.server.bind.to_string());
        line("server.public_url", self.server.public_url.clone());
        line(
            "server.request_timeout_ms",
            self.server.request_timeout.as_millis().to_string(),
        );
        line(
            "server.max_body_bytes",
            self.server.max_body_bytes.to_string(),
        );
        line("storage.url", redact_url(self.storage.url.expose()));
        line("organisation.name", self.organisation.name.clone());
        line(
            "organisation.timezone",
            self.organisation.timezone.name().to_string(),
        );
        line(
            "organisation.language",
            self.organisation.language.to_string(),
        );
        line(
            "organisation.closed_dates",
            self.organisation
                .closed_dates
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
        line(
            "decision.lookup_timeout_ms",
            self.decision.lookup_timeout.as_millis().to_string(),
        );
        line(
            "decision.on_lookup_failure",
            self.decision.on_lookup_failure.as_str().into(),
        );
        for (key, value) in self.decision.urgent.summary() {
            line(&key, value);
        }
        line("cache.ttl_seconds", self.cache.ttl.as_secs().to_string());
        line("cache.max_entries", self.cache.max_entries.to_string());
        line("twilio.enabled", self.twilio.enabled.to_string());
        line("twilio.account_sid", self.twilio.account_sid.clone());
        line("twilio.auth_token", self.twilio.auth_token.to_string());
        line(
            "twilio.verify_signatures",
            self.twilio.verify_signatures.to_string(),
        );
        line("twilio.continue_url", self.twilio.continue_url.clone());
        line("twilio.api_base_url", self.twilio.api_base_url.clone());
        line(
            "twilio.refuse_blocked_with",
            self.twilio.refuse_blocked_with.as_str().into(),
        );
        line(
            "twilio.ring_timeout_seconds",
            self.twilio.ring_timeout_seconds.to_string(),
        );
        line("telnyx.enabled", self.telnyx.enabled.to_string());
        line("telnyx.api_key", self.telnyx.api_key.to_string());
        line(
            "telnyx.public_key",
            if self.telnyx.public_key.is_some() {
                "(set)"
            } else {
                "(empty)"
            }
            .into(),
        );
        line(
            "telnyx.verify_signatures",
            self.telnyx.verify_signatures.to_string(),
        );
        line("telnyx.api_base_url", self.telnyx.api_base_url.clone());
        line("telnyx.continue_to", self.telnyx.continue_to.clone());
        for (k, v) in self.vonage.summary() {
            line(&k, v);
        }
        for s in &self.staff {
            line(&format!("staff.{}", s.id), s.name.clone());
        }
        for t in &self.auth.tokens {
            line(
                &format!("auth.tokens.{}", t.name),
                format!("{} (hash hidden)", t.role.as_str()),
            );
        }
        line(
            "notifications.webhook_url",
            self.notifications
                .webhook_url
                .as_deref()
                .map(redact_url)
                .unwrap_or_else(|| "(none)".into()),
        );
        for (key, value) in self.lifecycle.summary_lines() {
            line(key, value);
        }
        line(
            "retention.decision_log_days",
            self.retention.decision_log_days.to_string(),
        );
        line(
            "retention.termination_days",
            self.retention.termination_days.to_string(),
        );
        out
    }
}

/// The error of loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigProblem>),
}

impl ConfigError {
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Unreadable { .. } => vec![self.to_string()],
            ConfigError::Invalid(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }
}

/// Load from a file (which must exist) with the process environment on top.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    from_sources(&text, &env).map_err(|e| match e {
        ConfigError::Unreadable { message, .. } => ConfigError::Unreadable {
            path: path.display().to_string(),
            message,
        },
        other => other,
    })
}

/// Load from TOML text and an explicit environment (tests pass their own).
pub fn from_sources(toml_text: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
    // Environment variables become TOML values (so `true`, `30` and `["a"]` keep their types).
    let mut env_dict = Dict::new();
    let mut problems = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("FAIRLINE_") else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue; // FAIRLINE_LOG_FORMAT and friends are not configuration keys.
        };
        let section = section.to_ascii_lowercase();
        let key = key.to_ascii_lowercase();
        let parsed = parse_env_value(value);
        match env_dict
            .entry(section.clone())
            .or_insert_with(|| Value::from(Dict::new()))
        {
            Value::Dict(_, d) => {
                d.insert(key, parsed);
            }
            _ => problems.push(ConfigProblem::new(
                format!("{section}.{key}"),
                format!("environment variable {name} names a section that is not a table"),
            )),
        }
    }

    let mut written: BTreeSet<String> = env_dict.keys().cloned().collect();
    if let Ok(table) = toml_text.parse::<toml::Table>() {
        written.extend(table.keys().cloned());
    }
    let figment = Figment::new()
        .merge(Toml::string(BUILT_IN_DEFAULTS))
        .merge(Toml::string(toml_text))
        .merge(figment::providers::Serialized::defaults(env_dict));
    let root: Dict = figment.extract().map_err(|e| ConfigError::Unreadable {
        path: String::new(),
        message: e.to_string(),
    })?;
    // One reader for the whole document: the merged TOML as a JSON value.
    let root = serde_json::to_value(&root).map_err(|e| ConfigError::Unreadable {
        path: String::new(),
        message: e.to_string(),
    })?;
    let mut top = Fields::new(Source::Config, "", Some(&root));
    let config = read(&mut top, &written);
    problems.extend(top.finish());
    match config {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(ConfigError::Invalid(problems)),
    }
}

fn parse_env_value(raw: &str) -> Value {
    // Try the value as a TOML value; fall back to a plain string.
    let doc = format!("v = {raw}");
    if let Ok(table) = doc.parse::<toml::Table>() {
        if let Some(v) = table.get("v") {
            if let Ok(value) = Value::serialize(v) {
                return value;
            }
        }
    }
    Value::from(raw.to_string())
}

/// Read every section; `None` when any is wrong (the problems are in `top`).
fn read(top: &mut Fields<'_>, written: &BTreeSet<String>) -> Option<Config> {
    let mut t = top.section("server");
    let server = server::read_server(&mut t);
    top.absorb(t);

    let mut t = top.section("storage");
    let storage = server::read_storage(&mut t);
    top.absorb(t);

    let mut t = top.section("organisation");
    let (organisation, letterhead) = organisation::read(&mut t);
    top.absorb(t);

    let mut t = top.section("decision");
    let urgent_value = t.take("urgent");
    let decision = decision::read_decision(&mut t);
    top.absorb(t);

    let mut t = top.section("cache");
    let cache = decision::read_cache(&mut t);
    top.absorb(t);

    let mut t = top.section("twilio");
    let twilio = providers::read_twilio(&mut t, written);
    top.absorb(t);

    let mut t = top.section("telnyx");
    let telnyx = providers::read_telnyx(&mut t, written);
    top.absorb(t);

    // [vonage], and the `vonage` addresses of [[staff]].
    let staff_value = top.take("staff");
    let vonage_present = top.has("vonage");
    let mut t = top.section("vonage");
    let vonage = crate::providers::vonage::config::read(&mut t, vonage_present, staff_value);
    top.absorb(t);

    // [[staff]]
    let staff = staff::read_staff(top, staff_value);

    // [decision.urgent] (src/urgent/config.rs), once the platforms are known.
    let urgent_present = urgent_value.is_some();
    let mut t = Fields::new(Source::Config, "decision.urgent", urgent_value);
    let urgent = crate::urgent::config::read(
        &mut t,
        urgent_present,
        crate::urgent::config::Platforms {
            twilio: twilio.as_ref().is_some_and(|t| t.enabled),
            telnyx: telnyx.as_ref().is_some_and(|t| t.enabled),
            vonage: vonage.as_ref().is_some_and(|v| v.enabled),
        },
    );
    top.absorb(t);

    let mut t = top.section("auth");
    let auth = staff::read_auth(&mut t);
    top.absorb(t);

    let mut t = top.section("notifications");
    let (notifications, lifecycle) = notifications::read_notifications(&mut t);
    top.absorb(t);

    let mut t = top.section("retention");
    let retention = notifications::read_retention(&mut t);
    top.absorb(t);

    let mut t = top.section("messages");
    let messages = MessageOverrides::read(&mut t);
    top.absorb(t);

    let mut t = top.section("letters");
    let letters_dir = lifecycle::read_letters(&mut t);
    top.absorb(t);

    // [console] (src/console/config.rs)
    let mut t = top.section("console");
    let console = crate::console::config::read(&mut t);
    top.absorb(t);

    let (lookup_timeout, on_lookup_failure) = decision?;
    Some(Config {
        server: server?,
        storage: storage?,
        organisation: organisation?,
        decision: DecisionConfig {
            lookup_timeout,
            on_lookup_failure,
            urgent: urgent?,
        },
        cache: cache?,
        twilio: twilio?,
        telnyx: telnyx?,
        vonage: vonage?,
        staff: staff?,
        auth: auth?,
        notifications: notifications?,
        retention: retention?,
        messages: messages?,
        lifecycle: lifecycle::LifecycleConfig::combine(lifecycle, letterhead, letters_dir)?,
        console: console?,
    })
}

#[cfg(test)]
mod tests;
