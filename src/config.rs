//! Configuration: built-in defaults < TOML file < `FAIRLINE_<SECTION>__<KEY>` environment
//! variables (SPEC §2–§3). The merged document is read key by key so that every problem is
//! reported at once with its key path, and unknown keys are errors.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use figment::providers::{Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use sha2::{Digest, Sha256};

use crate::domain::{LanguageSetting, PhoneNumber, StaffId};
use crate::messages::MessageKey;

pub mod lifecycle;

/// The built-in defaults (SPEC §3), applied beneath the file.
pub const BUILT_IN_DEFAULTS: &str = r#"
[server]
bind = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
request_timeout_ms = 5000
max_body_bytes = 65536

[storage]
url = "sqlite://data/fairline.db"

[organisation]
name = "Example Ombudsman"
timezone = "Europe/London"
language = "en"
closed_dates = []

[decision]
lookup_timeout_ms = 250
on_lookup_failure = "continue"

[cache]
ttl_seconds = 30
max_entries = 1000000

[twilio]
account_sid = "AC00000000000000000000000000000000"
auth_token = ""
verify_signatures = true
continue_url = "https://example.org/twiml/main-menu"
api_base_url = "https://api.twilio.com"
refuse_blocked_with = "reject"
ring_timeout_seconds = 30

[telnyx]
api_key = ""
public_key = ""
verify_signatures = true
api_base_url = "https://api.telnyx.com"
continue_to = "sip:main-queue@pbx.example.org"

[notifications]
webhook_url = ""

[retention]
decision_log_days = 730
termination_days = 2190
"#;

/// The path `serve` reads when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// A secret string: `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "(empty)"
        } else {
            "(secret)"
        })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

// ---------------------------------------------------------------------------------------------
// Typed configuration
// ---------------------------------------------------------------------------------------------

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
    pub spool_dir: Option<std::path::PathBuf>,
}

impl StorageConfig {
    pub fn is_postgres(&self) -> bool {
        let u = self.url.expose();
        u.starts_with("postgres://") || u.starts_with("postgresql://")
    }
}

#[derive(Clone, Debug)]
pub struct OrganisationConfig {
    pub name: String,
    pub timezone: Tz,
    pub language: LanguageSetting,
    pub closed_dates: BTreeSet<NaiveDate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupFailurePolicy {
    Continue,
    Refuse,
}

#[derive(Clone, Debug)]
pub struct DecisionConfig {
    pub lookup_timeout: Duration,
    pub on_lookup_failure: LookupFailurePolicy,
    /// `[decision.urgent]`: the safeguarding route (src/urgent/config.rs).
    pub urgent: crate::urgent::UrgentConfig,
}

#[derive(Clone, Debug)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub max_entries: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseBlockedWith {
    Reject,
    Message,
}

#[derive(Clone, Debug)]
pub struct TwilioConfig {
    /// SPEC §11: on when the section is present (unless `enabled = false`), off when absent.
    pub enabled: bool,
    pub account_sid: String,
    pub auth_token: Secret,
    pub verify_signatures: bool,
    pub continue_url: String,
    /// Without a trailing slash.
    pub api_base_url: String,
    pub refuse_blocked_with: RefuseBlockedWith,
    pub ring_timeout_seconds: u32,
}

#[derive(Clone, Debug)]
pub struct TelnyxConfig {
    /// SPEC §11: on when the section is present (unless `enabled = false`), off when absent.
    pub enabled: bool,
    pub api_key: Secret,
    /// The 32-byte Ed25519 public key, when configured.
    pub public_key: Option<[u8; 32]>,
    pub verify_signatures: bool,
    /// Without a trailing slash.
    pub api_base_url: String,
    pub continue_to: String,
}

/// Where a member of staff is rung on Twilio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwilioTarget {
    Client(String),
    Sip(String),
    Number(PhoneNumber),
}

/// Where a member of staff is transferred on Telnyx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TelnyxTarget {
    Sip(String),
    Number(PhoneNumber),
}

impl TelnyxTarget {
    pub fn as_str(&self) -> &str {
        match self {
            TelnyxTarget::Sip(s) => s,
            TelnyxTarget::Number(n) => n.as_str(),
        }
    }
}

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

#[derive(Clone, Debug)]
pub struct NotificationsConfig {
    pub webhook_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RetentionConfig {
    pub decision_log_days: u32,
    pub termination_days: u32,
}

/// `[messages.en]` / `[messages.cy]` overrides of the built-in texts.
#[derive(Clone, Debug, Default)]
pub struct MessageOverrides {
    pub en: HashMap<MessageKey, String>,
    pub cy: HashMap<MessageKey, String>,
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
            match self.decision.on_lookup_failure {
                LookupFailurePolicy::Continue => "continue".into(),
                LookupFailurePolicy::Refuse => "refuse".into(),
            },
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
            match self.twilio.refuse_blocked_with {
                RefuseBlockedWith::Reject => "reject".into(),
                RefuseBlockedWith::Message => "message".into(),
            },
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

/// Hide the user-info part (`user:password@`) and the query of a URL.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("***");
                let _ = u.set_password(None);
            }
            if u.query().is_some() {
                u.set_query(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparseable)".into(),
    }
}

/// `sha256:` + lowercase hex of the token's SHA-256, as `fairline token hash` prints it.
pub fn hash_token(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// One problem with the configuration, at a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

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
            _ => problems.push(ConfigProblem {
                key: format!("{section}.{key}"),
                message: format!("environment variable {name} names a section that is not a table"),
            }),
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
    let mut reader = Reader { problems, written };
    let config = reader.read(&root);
    if reader.problems.is_empty() {
        if let Some(c) = config {
            return Ok(c);
        }
    }
    Err(ConfigError::Invalid(reader.problems))
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

struct Reader {
    problems: Vec<ConfigProblem>,
    /// Top-level sections the operator wrote (in the file or as environment variables), as
    /// opposed to those that only the built-in defaults supply.
    written: BTreeSet<String>,
}

/// One table being read; keys are removed as they are read so that leftovers are unknown.
struct Table<'a> {
    path: String,
    entries: BTreeMap<String, &'a Value>,
}

impl Reader {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn table<'a>(&mut self, path: &str, value: Option<&'a Value>) -> Table<'a> {
        let mut entries = BTreeMap::new();
        match value {
            None => {}
            Some(Value::Dict(_, d)) => {
                for (k, v) in d {
                    entries.insert(k.clone(), v);
                }
            }
            Some(_) => self.problem(path, "must be a table"),
        }
        Table {
            path: path.to_string(),
            entries,
        }
    }

    /// `enabled` of a provider section (SPEC §11): as written, else whether the operator wrote
    /// the section at all.
    fn enabled(&mut self, t: &mut Table<'_>) -> bool {
        let written = self.written.contains(t.path.as_str());
        if t.entries.contains_key("enabled") {
            self.boolean(t, "enabled").unwrap_or(written)
        } else {
            written
        }
    }

    fn finish(&mut self, table: Table<'_>) {
        for key in table.entries.keys() {
            let full = if table.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", table.path)
            };
            self.problem(full, "unknown key");
        }
    }

    fn string(&mut self, t: &mut Table<'_>, key: &str) -> Option<String> {
        let path = format!("{}.{key}", t.path);
        match t.entries.remove(key) {
            None => {
                self.problem(path, "is required");
                None
            }
            Some(Value::String(_, s)) => Some(s.clone()),
            Some(Value::Num(_, n)) => n
                .to_i128()
                .map(|v| v.to_string())
                .or_else(|| n.to_u128().map(|v| v.to_string()))
                .or_else(|| n.to_f64().map(|v| v.to_string())),
            Some(_) => {
                self.problem(path, "must be a string");
                None
            }
        }
    }

    fn opt_string(&mut self, t: &mut Table<'_>, key: &str) -> Option<String> {
        if t.entries.contains_key(key) {
            self.string(t, key)
        } else {
            None
        }
    }

    fn uint(&mut self, t: &mut Table<'_>, key: &str, min: u64, max: u64) -> Option<u64> {
        let path = format!("{}.{key}", t.path);
        let v = match t.entries.remove(key) {
            None => {
                self.problem(path, "is required");
                return None;
            }
            Some(Value::Num(_, n)) => n
                .to_i128()
                .and_then(|v| u64::try_from(v).ok())
                .or_else(|| n.to_u128().and_then(|v| u64::try_from(v).ok())),
            Some(Value::String(_, s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        match v {
            Some(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.problem(path, format!("must be a whole number from {min} to {max}"));
                None
            }
        }
    }

    fn boolean(&mut self, t: &mut Table<'_>, key: &str) -> Option<bool> {
        let path = format!("{}.{key}", t.path);
        match t.entries.remove(key) {
            None => {
                self.problem(path, "is required");
                None
            }
            Some(Value::Bool(_, b)) => Some(*b),
            Some(Value::String(_, s)) if s == "true" || s == "false" => Some(s == "true"),
            Some(_) => {
                self.problem(path, "must be true or false");
                None
            }
        }
    }

    fn url(&mut self, t: &mut Table<'_>, key: &str, allow_empty: bool) -> Option<Option<String>> {
        let path = format!("{}.{key}", t.path);
        let raw = self.string(t, key)?;
        if raw.is_empty() {
            if allow_empty {
                return Some(None);
            }
            self.problem(path, "must be an http(s) URL");
            return None;
        }
        match url::Url::parse(&raw) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                Some(Some(raw.trim_end_matches('/').to_string()))
            }
            _ => {
                self.problem(path, format!("{raw:?} is not an http(s) URL"));
                None
            }
        }
    }

    fn read(&mut self, root: &Dict) -> Option<Config> {
        let mut top = Table {
            path: String::new(),
            entries: root.iter().map(|(k, v)| (k.clone(), v)).collect(),
        };

        // [server]
        let v = top.entries.remove("server");
        let mut t = self.table("server", v);
        let bind = self
            .string(&mut t, "bind")
            .and_then(|s| match s.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.problem(
                        "server.bind",
                        format!("{s:?} is not an address like 127.0.0.1:8080"),
                    );
                    None
                }
            });
        let public_url = self.url(&mut t, "public_url", false).flatten();
        let request_timeout_ms = self.uint(&mut t, "request_timeout_ms", 100, 600_000);
        let max_body_bytes = self.uint(&mut t, "max_body_bytes", 1024, 64 * 1024 * 1024);
        self.finish(t);

        // [storage]
        let v = top.entries.remove("storage");
        let mut t = self.table("storage", v);
        let storage_url = self.string(&mut t, "url").and_then(|u| {
            if u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://")
            {
                Some(u)
            } else {
                self.problem(
                    "storage.url",
                    "must start with sqlite:, postgres:// or postgresql://",
                );
                None
            }
        });
        let spool_dir = self
            .opt_string(&mut t, "spool_dir")
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from);
        self.finish(t);

        // [organisation]
        let v = top.entries.remove("organisation");
        let mut t = self.table("organisation", v);
        let org_name = self.string(&mut t, "name");
        let timezone = self
            .string(&mut t, "timezone")
            .and_then(|s| match s.parse::<Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    self.problem(
                        "organisation.timezone",
                        format!("{s:?} is not an IANA timezone name"),
                    );
                    None
                }
            });
        let language = self.language(&mut t, "organisation.language", "language");
        let letterhead = self.lifecycle_organisation(&mut t);
        let closed_dates = self.closed_dates(&mut t);
        self.finish(t);

        // [decision]
        let v = top.entries.remove("decision");
        let mut t = self.table("decision", v);
        let lookup_timeout_ms = self.uint(&mut t, "lookup_timeout_ms", 1, 60_000);
        let on_lookup_failure =
            self.string(&mut t, "on_lookup_failure")
                .and_then(|s| match s.as_str() {
                    "continue" => Some(LookupFailurePolicy::Continue),
                    "refuse" => Some(LookupFailurePolicy::Refuse),
                    _ => {
                        self.problem(
                            "decision.on_lookup_failure",
                            "must be \"continue\" or \"refuse\"",
                        );
                        None
                    }
                });
        let urgent_value = t.entries.remove("urgent");
        self.finish(t);

        // [cache]
        let v = top.entries.remove("cache");
        let mut t = self.table("cache", v);
        let ttl_seconds = self.uint(&mut t, "ttl_seconds", 0, 86_400);
        let max_entries = self.uint(&mut t, "max_entries", 1, 100_000_000);
        self.finish(t);

        // [twilio]
        let v = top.entries.remove("twilio");
        let mut t = self.table("twilio", v);
        let twilio_enabled = self.enabled(&mut t);
        let account_sid = self.string(&mut t, "account_sid").and_then(|s| {
            if s.len() == 34 && s.starts_with("AC") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
            {
                Some(s)
            } else {
                self.problem(
                    "twilio.account_sid",
                    "must be AC followed by 32 hexadecimal digits",
                );
                None
            }
        });
        let auth_token = self.string(&mut t, "auth_token");
        let twilio_verify = self.boolean(&mut t, "verify_signatures");
        let continue_url = self.url(&mut t, "continue_url", false).flatten();
        let twilio_api = self.url(&mut t, "api_base_url", false).flatten();
        let refuse_blocked_with = self
            .string(&mut t, "refuse_blocked_with")
            .and_then(|s| match s.as_str() {
                "reject" => Some(RefuseBlockedWith::Reject),
                "message" => Some(RefuseBlockedWith::Message),
                _ => {
                    self.problem(
                        "twilio.refuse_blocked_with",
                        "must be \"reject\" or \"message\"",
                    );
                    None
                }
            });
        let ring_timeout = self.uint(&mut t, "ring_timeout_seconds", 5, 600);
        self.finish(t);
        if twilio_enabled && twilio_verify == Some(true) && auth_token.as_deref() == Some("") {
            self.problem(
                "twilio.auth_token",
                "is empty but twilio.verify_signatures = true: set the auth token (FAIRLINE_TWILIO__AUTH_TOKEN)",
            );
        }

        // [telnyx]
        let v = top.entries.remove("telnyx");
        let mut t = self.table("telnyx", v);
        let telnyx_enabled = self.enabled(&mut t);
        let api_key = self.string(&mut t, "api_key");
        let public_key_raw = self.string(&mut t, "public_key");
        let telnyx_verify = self.boolean(&mut t, "verify_signatures");
        let telnyx_api = self.url(&mut t, "api_base_url", false).flatten();
        let continue_to = self.string(&mut t, "continue_to").and_then(|s| {
            if is_sip_uri(&s) || PhoneNumber::parse(&s).is_ok_and(|n| n.as_str() == s) {
                Some(s)
            } else {
                self.problem(
                    "telnyx.continue_to",
                    "must be a sip: URI or a +E.164 number",
                );
                None
            }
        });
        self.finish(t);
        let mut public_key = None;
        if let Some(raw) = public_key_raw.as_deref() {
            if raw.is_empty() {
                if telnyx_enabled && telnyx_verify == Some(true) {
                    self.problem(
                        "telnyx.public_key",
                        "is empty but telnyx.verify_signatures = true: set the base64 Ed25519 public key",
                    );
                }
            } else {
                use base64::Engine;
                match base64::engine::general_purpose::STANDARD.decode(raw.trim()) {
                    Ok(bytes) if bytes.len() == 32 => {
                        let mut k = [0u8; 32];
                        k.copy_from_slice(&bytes);
                        if ed25519_dalek::VerifyingKey::from_bytes(&k).is_ok() {
                            public_key = Some(k);
                        } else {
                            self.problem("telnyx.public_key", "is not a valid Ed25519 public key");
                        }
                    }
                    _ => self.problem("telnyx.public_key", "must be base64 of exactly 32 bytes"),
                }
            }
        }

        // [vonage] and [[staff]] vonage = …
        let staff_value = top.entries.remove("staff");
        let (vonage, vonage_problems) =
            crate::providers::vonage::config::read(top.entries.remove("vonage"), staff_value);
        self.problems.extend(vonage_problems);

        // [[staff]]
        let staff = self.staff(staff_value);

        // [decision.urgent] (src/urgent/config.rs), once the platforms are known.
        let (urgent, urgent_problems) = crate::urgent::config::read(
            urgent_value,
            crate::urgent::config::Platforms {
                twilio: twilio_enabled,
                telnyx: telnyx_enabled,
                vonage: vonage.as_ref().is_some_and(|v| v.enabled),
            },
        );
        self.problems.extend(urgent_problems);

        // [auth]
        let v = top.entries.remove("auth");
        let mut t = self.table("auth", v);
        let tokens = self.tokens(t.entries.remove("tokens"));
        self.finish(t);

        // [notifications]
        let v = top.entries.remove("notifications");
        let mut t = self.table("notifications", v);
        let webhook_url = self.url(&mut t, "webhook_url", true);
        let lifecycle = self.lifecycle_notifications(&mut t);
        self.finish(t);

        // [retention]
        let v = top.entries.remove("retention");
        let mut t = self.table("retention", v);
        let decision_log_days = self.uint(&mut t, "decision_log_days", 1, 36_500);
        let termination_days = self.uint(&mut t, "termination_days", 1, 36_500);
        self.finish(t);

        // [messages]
        let v = top.entries.remove("messages");
        let messages = self.messages(v);
        let letters_dir = self.lifecycle_letters(top.entries.remove("letters"));

        // [console] (src/console/config.rs)
        let v = top.entries.remove("console");
        let console = crate::console::config::read(v, &mut self.problems);

        self.finish(top);

        Some(Config {
            server: ServerConfig {
                bind: bind?,
                public_url: public_url?,
                request_timeout: Duration::from_millis(request_timeout_ms?),
                max_body_bytes: usize::try_from(max_body_bytes?).ok()?,
            },
            storage: StorageConfig {
                url: Secret::new(storage_url?),
                spool_dir,
            },
            organisation: OrganisationConfig {
                name: org_name?,
                timezone: timezone?,
                language: language?,
                closed_dates: closed_dates?,
            },
            decision: DecisionConfig {
                lookup_timeout: Duration::from_millis(lookup_timeout_ms?),
                on_lookup_failure: on_lookup_failure?,
                urgent: urgent?,
            },
            cache: CacheConfig {
                ttl: Duration::from_secs(ttl_seconds?),
                max_entries: max_entries?,
            },
            twilio: TwilioConfig {
                enabled: twilio_enabled,
                account_sid: account_sid?,
                auth_token: Secret::new(auth_token?),
                verify_signatures: twilio_verify?,
                continue_url: continue_url?,
                api_base_url: twilio_api?,
                refuse_blocked_with: refuse_blocked_with?,
                ring_timeout_seconds: u32::try_from(ring_timeout?).ok()?,
            },
            telnyx: TelnyxConfig {
                enabled: telnyx_enabled,
                api_key: Secret::new(api_key?),
                public_key,
                verify_signatures: telnyx_verify?,
                api_base_url: telnyx_api?,
                continue_to: continue_to?,
            },
            vonage: vonage?,
            staff: staff?,
            auth: AuthConfig { tokens: tokens? },
            notifications: NotificationsConfig {
                webhook_url: webhook_url?,
            },
            retention: RetentionConfig {
                decision_log_days: u32::try_from(decision_log_days?).ok()?,
                termination_days: u32::try_from(termination_days?).ok()?,
            },
            messages: messages?,
            lifecycle: lifecycle::LifecycleConfig::combine(lifecycle, letterhead, letters_dir)?,
            console: console?,
        })
    }

    fn language(&mut self, t: &mut Table<'_>, path: &str, key: &str) -> Option<LanguageSetting> {
        let s = self.string(t, key)?;
        match s.parse::<LanguageSetting>() {
            Ok(l) => Some(l),
            Err(_) => {
                self.problem(path, "must be one of \"en\", \"cy\", \"en+cy\", \"cy+en\"");
                None
            }
        }
    }

    fn closed_dates(&mut self, t: &mut Table<'_>) -> Option<BTreeSet<NaiveDate>> {
        let mut out = BTreeSet::new();
        let mut ok = true;
        match t.entries.remove("closed_dates") {
            None => {}
            Some(Value::Array(_, items)) => {
                for (i, item) in items.iter().enumerate() {
                    let parsed = match item {
                        Value::String(_, s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
                        _ => None,
                    };
                    match parsed {
                        Some(d) => {
                            out.insert(d);
                        }
                        None => {
                            ok = false;
                            self.problem(
                                format!("organisation.closed_dates[{i}]"),
                                "is not a date (YYYY-MM-DD)",
                            );
                        }
                    }
                }
            }
            Some(_) => {
                ok = false;
                self.problem(
                    "organisation.closed_dates",
                    "must be a list of dates (YYYY-MM-DD)",
                );
            }
        }
        ok.then_some(out)
    }

    fn array_of_tables<'a>(&mut self, path: &str, v: Option<&'a Value>) -> Vec<&'a Value> {
        match v {
            None => vec![],
            Some(Value::Array(_, items)) => items.iter().collect(),
            Some(_) => {
                self.problem(path, "must be a list of tables ([[...]])");
                vec![]
            }
        }
    }

    fn staff(&mut self, v: Option<&Value>) -> Option<Vec<StaffMember>> {
        let before = self.problems.len();
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, item) in self.array_of_tables("staff", v).into_iter().enumerate() {
            let path = format!("staff[{i}]");
            let mut t = self.table(&path, Some(item));
            let id = self
                .string(&mut t, "id")
                .and_then(|s| match StaffId::parse(&s) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        self.problem(format!("{path}.id"), format!("{s:?}: {e}"));
                        None
                    }
                });
            let name = self.string(&mut t, "name");
            let twilio = self.opt_string(&mut t, "twilio").and_then(|s| {
                let target = if let Some(identity) = s.strip_prefix("client:") {
                    (!identity.is_empty()
                        && identity
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c)))
                    .then(|| TwilioTarget::Client(identity.to_string()))
                } else if is_sip_uri(&s) {
                    Some(TwilioTarget::Sip(s.clone()))
                } else {
                    PhoneNumber::parse(&s)
                        .ok()
                        .filter(|n| n.as_str() == s)
                        .map(TwilioTarget::Number)
                };
                if target.is_none() {
                    self.problem(
                        format!("{path}.twilio"),
                        format!("{s:?} is not client:IDENTITY, sip:URI or +E.164"),
                    );
                }
                target
            });
            let telnyx = self.opt_string(&mut t, "telnyx").and_then(|s| {
                let target = if is_sip_uri(&s) {
                    Some(TelnyxTarget::Sip(s.clone()))
                } else {
                    PhoneNumber::parse(&s)
                        .ok()
                        .filter(|n| n.as_str() == s)
                        .map(TelnyxTarget::Number)
                };
                if target.is_none() {
                    self.problem(
                        format!("{path}.telnyx"),
                        format!("{s:?} is not sip:URI or +E.164"),
                    );
                }
                target
            });
            // Read by providers::vonage::config.
            t.entries.remove("vonage");
            self.finish(t);
            if let (Some(id), Some(name)) = (id, name) {
                if !seen.insert(id.clone()) {
                    self.problem(
                        format!("{path}.id"),
                        format!("duplicate staff id {:?}", id.as_str()),
                    );
                }
                out.push(StaffMember {
                    id,
                    name,
                    twilio,
                    telnyx,
                });
            }
        }
        (self.problems.len() == before).then_some(out)
    }

    fn tokens(&mut self, v: Option<&Value>) -> Option<Vec<ApiToken>> {
        let before = self.problems.len();
        let mut out = Vec::new();
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for (i, item) in self
            .array_of_tables("auth.tokens", v)
            .into_iter()
            .enumerate()
        {
            let path = format!("auth.tokens[{i}]");
            let mut t = self.table(&path, Some(item));
            let name = self.string(&mut t, "name").and_then(|n| {
                if n.is_empty() {
                    self.problem(format!("{path}.name"), "must not be empty");
                    None
                } else {
                    Some(n)
                }
            });
            let role = self.string(&mut t, "role").and_then(|r| match r.as_str() {
                "agent" => Some(Role::Agent),
                "manager" => Some(Role::Manager),
                _ => {
                    self.problem(format!("{path}.role"), "must be \"agent\" or \"manager\"");
                    None
                }
            });
            let sha = self.string(&mut t, "sha256").and_then(|s| {
                let hexpart = s.strip_prefix("sha256:").unwrap_or("");
                match hex::decode(hexpart) {
                    Ok(b) if b.len() == 32 => {
                        let mut a = [0u8; 32];
                        a.copy_from_slice(&b);
                        Some(a)
                    }
                    _ => {
                        self.problem(
                            format!("{path}.sha256"),
                            "must be \"sha256:\" and 64 hex digits (from `fairline token hash`)",
                        );
                        None
                    }
                }
            });
            self.finish(t);
            if let (Some(name), Some(role), Some(sha256)) = (name, role, sha) {
                if !names.insert(name.clone()) {
                    self.problem(
                        format!("{path}.name"),
                        format!("duplicate token name {name:?}"),
                    );
                }
                if !hashes.insert(sha256) {
                    self.problem(
                        format!("{path}.sha256"),
                        "the same token is configured twice",
                    );
                }
                out.push(ApiToken { name, role, sha256 });
            }
        }
        (self.problems.len() == before).then_some(out)
    }

    fn messages(&mut self, v: Option<&Value>) -> Option<MessageOverrides> {
        let before = self.problems.len();
        let mut top = self.table("messages", v);
        let mut out = MessageOverrides::default();
        for lang in ["en", "cy"] {
            let path = format!("messages.{lang}");
            let sub = top.entries.remove(lang);
            let mut t = self.table(&path, sub);
            let mut map = HashMap::new();
            for (key, mk) in [
                ("outside_window", MessageKey::OutsideWindow),
                ("allowance_used", MessageKey::AllowanceUsed),
                ("blocked", MessageKey::Blocked),
                ("staff_unavailable", MessageKey::StaffUnavailable),
                ("service_unavailable", MessageKey::ServiceUnavailable),
                ("urgent_offer", MessageKey::UrgentOffer),
            ] {
                if let Some(text) = self.opt_string(&mut t, key) {
                    if text.trim().is_empty() {
                        self.problem(format!("{path}.{key}"), "must not be empty");
                    } else {
                        map.insert(mk, text);
                    }
                }
            }
            self.finish(t);
            if lang == "en" {
                out.en = map;
            } else {
                out.cy = map;
            }
        }
        self.finish(top);
        (self.problems.len() == before).then_some(out)
    }
}

fn is_sip_uri(s: &str) -> bool {
    s.strip_prefix("sip:")
        .or_else(|| s.strip_prefix("sips:"))
        .is_some_and(|rest| {
            !rest.is_empty()
                && !rest
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>')
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn problems(toml: &str, vars: &[(&str, &str)]) -> Vec<String> {
        match from_sources(toml, &env(vars)) {
            Ok(_) => vec![],
            Err(e) => e.problems(),
        }
    }

    const MINIMAL: &str = "[[auth.tokens]]\nname = \"m\"\nrole = \"manager\"\nsha256 = \"sha256:2fb45d55493f2a01708bf8079a547104e5d60bd027b54ec838971fd0ecbedb54\"\n";

    #[test]
    fn a_provider_is_on_when_its_section_is_written_and_off_when_absent() {
        let c = from_sources(MINIMAL, &[]).unwrap();
        assert!(!c.twilio.enabled && !c.telnyx.enabled);
        assert!(c.enabled_providers().is_empty());

        let twilio = format!("{MINIMAL}[twilio]\nverify_signatures = false\n");
        let c = from_sources(&twilio, &[]).unwrap();
        assert!(c.twilio.enabled && !c.telnyx.enabled);
        assert_eq!(c.enabled_providers(), ["twilio"]);

        let off = format!("{MINIMAL}[twilio]\nenabled = false\n");
        let c = from_sources(&off, &[]).unwrap();
        assert!(!c.twilio.enabled);

        // An environment variable naming the section counts as writing it.
        let c = from_sources(
            MINIMAL,
            &env(&[("FAIRLINE_TELNYX__VERIFY_SIGNATURES", "false")]),
        )
        .unwrap();
        assert!(c.telnyx.enabled && !c.twilio.enabled);

        // A disabled platform's missing keys are not problems; an enabled one's are.
        assert!(problems(MINIMAL, &[]).is_empty());
        let p = problems(&format!("{MINIMAL}[telnyx]\n"), &[]);
        assert!(
            p.iter().any(|p| p.starts_with("telnyx.public_key")),
            "{p:?}"
        );
        assert!(problems(&format!("{MINIMAL}[telnyx]\nenabled = false\n"), &[]).is_empty());
        let p = problems(&format!("{MINIMAL}[telnyx]\nenabled = \"yes\"\n"), &[]);
        assert!(p.iter().any(|p| p.starts_with("telnyx.enabled")), "{p:?}");
    }

    #[test]
    fn the_default_file_loads() {
        let text = include_str!("../config/default.toml");
        let c = from_sources(text, &[]).unwrap();
        assert_eq!(c.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.storage.url.expose(), "sqlite://data/fairline.db");
        assert_eq!(c.organisation.timezone, chrono_tz::Europe::London);
        assert_eq!(c.staff.len(), 2);
        assert_eq!(c.auth.tokens.len(), 2);
        assert_eq!(c.cache.ttl, Duration::from_secs(30));
        assert_eq!(c.decision.on_lookup_failure, LookupFailurePolicy::Continue);
        assert_eq!(c.twilio.refuse_blocked_with, RefuseBlockedWith::Reject);
        assert!(c.notifications.webhook_url.is_none());
    }

    #[test]
    fn the_production_example_loads_with_secrets_from_the_environment() {
        let text = include_str!("../config/production.example.toml");
        let p = problems(text, &[]);
        assert_eq!(
            p,
            vec!["twilio.auth_token: is empty but twilio.verify_signatures = true: set the auth token (FAIRLINE_TWILIO__AUTH_TOKEN)".to_string()]
        );
        let c = from_sources(text, &env(&[("FAIRLINE_TWILIO__AUTH_TOKEN", "12345")])).unwrap();
        assert_eq!(c.twilio.auth_token.expose(), "12345");
        assert!(c.telnyx.public_key.is_some());
        assert_eq!(c.organisation.language, LanguageSetting::EnCy);
        assert_eq!(c.messages.en.len(), 1);
        assert!(c.storage.is_postgres());
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = from_sources(
            "[server]\nbind = \"127.0.0.1:9000\"\n[twilio]\nverify_signatures = false\n[telnyx]\nverify_signatures = false\n",
            &env(&[
                ("FAIRLINE_SERVER__BIND", "127.0.0.1:9100"),
                ("FAIRLINE_CACHE__TTL_SECONDS", "5"),
                ("FAIRLINE_TWILIO__VERIFY_SIGNATURES", "false"),
                ("FAIRLINE_ORGANISATION__CLOSED_DATES", "[\"2026-12-25\"]"),
                ("FAIRLINE_LOG_FORMAT", "json"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.bind.to_string(), "127.0.0.1:9100");
        assert_eq!(c.cache.ttl, Duration::from_secs(5));
        assert_eq!(c.organisation.closed_dates.len(), 1);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_key() {
        let toml = r#"
[server]
bind = "nowhere"
public_url = "not a url"
[organisation]
timezone = "Europe/Cardif"
language = "fr"
closed_dates = ["2026-12-25", "25/12/2026"]
[decision]
on_lookup_failure = "maybe"
[twilio]
verify_signatures = true
auth_token = ""
continue_url = "ftp://example.org/x"
[telnyx]
verify_signatures = true
public_key = "not base64!"
[[staff]]
id = "Alice"
name = "A"
[[staff]]
id = "bob"
name = "B"
twilio = "bob@example.org"
[[staff]]
id = "bob"
name = "B again"
[[auth.tokens]]
name = "x"
role = "admin"
sha256 = "abc"
[mystery]
key = 1
"#;
        let p = problems(toml, &[]);
        let expect = [
            "server.bind:",
            "server.public_url:",
            "organisation.timezone:",
            "organisation.language:",
            "organisation.closed_dates[1]:",
            "decision.on_lookup_failure:",
            "twilio.auth_token:",
            "twilio.continue_url:",
            "telnyx.public_key:",
            "staff[0].id:",
            "staff[1].twilio:",
            "staff[2].id: duplicate staff id",
            "auth.tokens[0].role:",
            "auth.tokens[0].sha256:",
            "mystery: unknown key",
        ];
        for e in expect {
            assert!(
                p.iter().any(|x| x.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn unknown_keys_inside_sections_are_errors() {
        let p = problems(
            "[twilio]\nverify_signatures = false\nauth_tokn = \"x\"\n[telnyx]\nverify_signatures = false\n",
            &[],
        );
        assert_eq!(p, vec!["twilio.auth_tokn: unknown key".to_string()]);
        let p = problems(
            "[twilio]\nverify_signatures = false\n[telnyx]\nverify_signatures = false\n",
            &[("FAIRLINE_SERVER__BINDD", "x")],
        );
        assert_eq!(p, vec!["server.bindd: unknown key".to_string()]);
    }

    #[test]
    fn secrets_are_hidden_from_debug_and_summary() {
        let c = from_sources(
            include_str!("../config/production.example.toml"),
            &env(&[
                ("FAIRLINE_TWILIO__AUTH_TOKEN", "s3cret-twilio"),
                ("FAIRLINE_TELNYX__API_KEY", "KEYs3cret"),
                (
                    "FAIRLINE_STORAGE__URL",
                    "postgres://fairline:hunter2@db/fairline",
                ),
            ]),
        )
        .unwrap();
        let dbg = format!("{c:?}");
        let summary = c.summary();
        for secret in ["s3cret-twilio", "KEYs3cret", "hunter2"] {
            assert!(!dbg.contains(secret), "{secret} in Debug");
            assert!(!summary.contains(secret), "{secret} in summary");
        }
        assert!(!summary.contains("461ebf6d4b05"));
    }

    #[test]
    fn token_hash_format() {
        assert_eq!(
            hash_token("dev-agent-token"),
            "sha256:461ebf6d4b05429948791eef4c4b12032c438a092bee97eeca46ec0bb29806a2"
        );
    }
}
