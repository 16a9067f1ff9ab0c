//! The built-in defaults (SPEC §3), beneath the file and the environment.

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
