//! NCCO answers (SPEC §15, reference §3.3): a JSON array of actions, `application/json`.
//!
//! * `Continue` → `[{"action":"connect","from":"{to}","endpoint":[continue_to]}]`;
//! * `Route` → `connect` to the member of staff's `vonage` endpoint with `timeout` (the ring
//!   timeout), `limit` (`max_call_minutes × 60`, at most Vonage's 7200), `eventType:
//!   "synchronous"` and `eventUrl: ["{public_url}/webhooks/vonage/event"]`. A member of staff
//!   without a Vonage endpoint cannot be rung here, so the call continues instead (as on the
//!   other platforms);
//! * `Refuse` → one `talk` per message in order (`en-GB`, Welsh `cy-GB`); the call ends when
//!   the NCCO runs out;
//! * `Reject` → `[]` (Vonage has no reject before answer).

use serde_json::{json, Value};

use crate::domain::Language;
use crate::messages::SpokenMessage;
use crate::providers::CallAction;

use super::config::{VonageConfig, VonageEndpoint};

/// The `Content-Type` of every NCCO.
pub const CONTENT_TYPE: &str = "application/json";
/// The event webhook path (relative to `server.public_url`).
pub const EVENT_PATH: &str = "/webhooks/vonage/event";
/// Vonage's maximum for `connect.limit`, in seconds.
pub const MAX_LIMIT_SECONDS: u64 = 7200;
/// Vonage's `talk.text` limit, in characters.
pub const MAX_TALK_CHARS: usize = 1500;

/// An endpoint object for `connect`.
pub fn endpoint(e: &VonageEndpoint) -> Value {
    match e {
        VonageEndpoint::Sip(uri) => json!({"type": "sip", "uri": uri}),
        VonageEndpoint::Phone(n) => {
            json!({"type": "phone", "number": n.as_str().trim_start_matches('+')})
        }
        VonageEndpoint::App(user) => json!({"type": "app", "user": user}),
    }
}

/// The NCCO for a decision. `to` is the called number from the answer webhook.
pub fn render(
    action: &CallAction,
    cfg: &VonageConfig,
    ring_timeout_seconds: u32,
    public_url: &str,
    to: Option<&str>,
) -> Value {
    match action {
        CallAction::Continue => render_continue(cfg, to),
        CallAction::Route {
            staff,
            max_call_minutes,
        } => match cfg.staff_endpoint(&staff.id) {
            Some(target) => render_route(
                target,
                ring_timeout_seconds,
                *max_call_minutes,
                public_url,
                to,
            ),
            None => render_continue(cfg, to),
        },
        CallAction::Refuse { messages } => render_talk(messages),
        CallAction::Reject => json!([]),
    }
}

fn connect(to: Option<&str>, endpoint: Value) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("action".into(), json!("connect"));
    if let Some(to) = to {
        m.insert("from".into(), json!(to));
    }
    m.insert("endpoint".into(), json!([endpoint]));
    m
}

/// Into the organisation's normal call flow: `connect` to `continue_to`. Without one (only
/// possible when Vonage is disabled) the NCCO is empty.
pub fn render_continue(cfg: &VonageConfig, to: Option<&str>) -> Value {
    match &cfg.continue_to {
        Some(target) => Value::Array(vec![Value::Object(connect(to, endpoint(target)))]),
        None => json!([]),
    }
}

/// Ring a member of staff, with the synchronous event callback.
pub fn render_route(
    target: &VonageEndpoint,
    ring_timeout_seconds: u32,
    max_call_minutes: Option<u32>,
    public_url: &str,
    to: Option<&str>,
) -> Value {
    let mut m = connect(to, endpoint(target));
    m.insert("timeout".into(), json!(ring_timeout_seconds));
    if let Some(minutes) = max_call_minutes {
        m.insert(
            "limit".into(),
            json!((u64::from(minutes) * 60).min(MAX_LIMIT_SECONDS)),
        );
    }
    m.insert("eventType".into(), json!("synchronous"));
    m.insert(
        "eventUrl".into(),
        json!([format!("{}{EVENT_PATH}", public_url.trim_end_matches('/'))]),
    );
    Value::Array(vec![Value::Object(m)])
}

fn talk(message: &SpokenMessage) -> Value {
    let language = match message.language {
        Language::En => "en-GB",
        Language::Cy => "cy-GB",
    };
    let text: String = message.text.chars().take(MAX_TALK_CHARS).collect();
    json!({"action": "talk", "text": text, "language": language})
}

/// Speak the messages in order; the call ends when the NCCO runs out.
pub fn render_talk(messages: &[SpokenMessage]) -> Value {
    Value::Array(messages.iter().map(talk).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::StaffMember;
    use crate::domain::{PhoneNumber, StaffId};

    fn cfg() -> VonageConfig {
        let mut c = VonageConfig {
            enabled: true,
            continue_to: Some(VonageEndpoint::Sip("sip:main@pbx.example.org".into())),
            ..VonageConfig::default()
        };
        c.staff.insert(
            StaffId::parse("alice").unwrap(),
            VonageEndpoint::App("alice".into()),
        );
        c
    }

    fn staff(id: &str) -> StaffMember {
        StaffMember {
            id: StaffId::parse(id).unwrap(),
            name: id.into(),
            twilio: None,
            telnyx: None,
        }
    }

    #[test]
    fn endpoints_have_vonage_shapes() {
        assert_eq!(
            endpoint(&VonageEndpoint::Phone(
                PhoneNumber::parse("+442079460999").unwrap()
            )),
            json!({"type": "phone", "number": "442079460999"})
        );
        assert_eq!(
            endpoint(&VonageEndpoint::Sip("sip:a@b".into())),
            json!({"type": "sip", "uri": "sip:a@b"})
        );
        assert_eq!(
            endpoint(&VonageEndpoint::App("u1".into())),
            json!({"type": "app", "user": "u1"})
        );
    }

    #[test]
    fn decisions_render_per_spec() {
        let c = cfg();
        let url = "https://calls.example.org/";
        assert_eq!(
            render(&CallAction::Continue, &c, 30, url, Some("442079460000")),
            json!([{"action": "connect", "from": "442079460000",
                    "endpoint": [{"type": "sip", "uri": "sip:main@pbx.example.org"}]}])
        );
        let route = CallAction::Route {
            staff: staff("alice"),
            max_call_minutes: Some(200),
        };
        assert_eq!(
            render(&route, &c, 25, url, Some("442079460000")),
            json!([{"action": "connect", "from": "442079460000", "timeout": 25, "limit": 7200,
                    "eventType": "synchronous",
                    "eventUrl": ["https://calls.example.org/webhooks/vonage/event"],
                    "endpoint": [{"type": "app", "user": "alice"}]}])
        );
        // No Vonage endpoint for bob: continue.
        let bob = CallAction::Route {
            staff: staff("bob"),
            max_call_minutes: None,
        };
        assert_eq!(
            render(&bob, &c, 25, url, None),
            json!([{"action": "connect",
                    "endpoint": [{"type": "sip", "uri": "sip:main@pbx.example.org"}]}])
        );
        let refuse = CallAction::Refuse {
            messages: vec![
                SpokenMessage {
                    language: Language::Cy,
                    text: "Hwyl".into(),
                },
                SpokenMessage {
                    language: Language::En,
                    text: "Bye".into(),
                },
            ],
        };
        assert_eq!(
            render(&refuse, &c, 25, url, None),
            json!([{"action": "talk", "text": "Hwyl", "language": "cy-GB"},
                   {"action": "talk", "text": "Bye", "language": "en-GB"}])
        );
        assert_eq!(render(&CallAction::Reject, &c, 25, url, None), json!([]));
    }
}
