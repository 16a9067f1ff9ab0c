//! The v2 webhook envelope and the events Fairline acts on.
//!
//! `{"data": {"event_type", "id", "occurred_at", "payload": {…}}, "meta": {…}}`; unknown keys
//! are ignored. A v1 envelope (no `data` wrapper, `event_type` such as `call_initiated` at the
//! top level) is reported as [`ParseError::ApiV1`] so the operator can fix the application.

use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::Deserialize;

use super::state::ClientState;
use crate::domain::{CallId, CallerId, Provider};
use crate::providers::CallEvent;

/// Why a (verified) body is not a usable event. Answered with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error(
        "Telnyx sent an API v1 webhook (event_type {event_type:?}); set the Call Control \
         application's webhook API version to 2 in the Telnyx portal"
    )]
    ApiV1 { event_type: String },
    #[error("not a Telnyx v2 call event: {0}")]
    Shape(String),
}

impl ParseError {
    /// The HTTP status the webhook answers with: always 400.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

/// `payload.direction` of `call.initiated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A caller ringing one of our numbers.
    Incoming,
    /// A leg Fairline or the PBX created (for example the staff leg of a transfer).
    Outgoing,
    Unknown,
}

/// `call.initiated`. `from`/`to` are classified so that `Debug` masks numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct CallInitiated {
    pub event_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub call_control_id: CallId,
    pub direction: Direction,
    pub from: CallerId,
    pub to: CallerId,
    /// `parked` for a new inbound call.
    pub state: Option<String>,
    pub client_state: Option<ClientState>,
}

impl CallInitiated {
    /// The provider-neutral incoming call; `None` for an outgoing leg (which is never decided).
    pub fn to_call_event(&self) -> Option<CallEvent> {
        (self.direction == Direction::Incoming).then(|| CallEvent {
            provider: Provider::Telnyx,
            call_id: self.call_control_id.clone(),
            caller: self.from.clone(),
        })
    }
}

/// `call.answered`.
#[derive(Clone, Debug, PartialEq)]
pub struct CallAnswered {
    pub event_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub call_control_id: CallId,
    pub client_state: Option<ClientState>,
}

/// `call.speak.ended`.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeakEnded {
    pub event_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub call_control_id: CallId,
    /// `completed`, `call_hangup` or `cancelled_amd`.
    pub status: Option<String>,
    pub client_state: Option<ClientState>,
}

/// `call.hangup`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hangup {
    pub event_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub call_control_id: CallId,
    /// e.g. `normal_clearing`, `call_rejected`, `time_limit`.
    pub hangup_cause: Option<String>,
    /// `caller`, `callee` or `unknown`.
    pub hangup_source: Option<String>,
    pub client_state: Option<ClientState>,
}

/// A parsed Telnyx v2 webhook.
#[derive(Clone, Debug, PartialEq)]
pub enum TelnyxEvent {
    CallInitiated(CallInitiated),
    CallAnswered(CallAnswered),
    SpeakEnded(SpeakEnded),
    Hangup(Hangup),
    /// `call.gather.ended` (the safeguarding offer, src/providers/telnyx/urgent.rs).
    GatherEnded(GatherEnded),
    /// Any other event type (acknowledge with 200 and ignore).
    Other {
        event_id: String,
        event_type: String,
    },
}

impl TelnyxEvent {
    /// `data.id`: deduplicate deliveries on this.
    pub fn event_id(&self) -> &str {
        match self {
            TelnyxEvent::CallInitiated(e) => &e.event_id,
            TelnyxEvent::CallAnswered(e) => &e.event_id,
            TelnyxEvent::SpeakEnded(e) => &e.event_id,
            TelnyxEvent::Hangup(e) => &e.event_id,
            TelnyxEvent::GatherEnded(e) => &e.event_id,
            TelnyxEvent::Other { event_id, .. } => event_id,
        }
    }

    /// `data.event_type`, e.g. `call.initiated`.
    pub fn event_type(&self) -> &str {
        match self {
            TelnyxEvent::CallInitiated(_) => "call.initiated",
            TelnyxEvent::CallAnswered(_) => "call.answered",
            TelnyxEvent::SpeakEnded(_) => "call.speak.ended",
            TelnyxEvent::Hangup(_) => "call.hangup",
            TelnyxEvent::GatherEnded(_) => "call.gather.ended",
            TelnyxEvent::Other { event_type, .. } => event_type,
        }
    }

    /// The call the event is about (`None` for [`TelnyxEvent::Other`]).
    pub fn call_control_id(&self) -> Option<&CallId> {
        match self {
            TelnyxEvent::CallInitiated(e) => Some(&e.call_control_id),
            TelnyxEvent::CallAnswered(e) => Some(&e.call_control_id),
            TelnyxEvent::SpeakEnded(e) => Some(&e.call_control_id),
            TelnyxEvent::Hangup(e) => Some(&e.call_control_id),
            TelnyxEvent::GatherEnded(e) => Some(&e.call_control_id),
            TelnyxEvent::Other { .. } => None,
        }
    }

    /// An inbound `call.initiated` as a provider-neutral [`CallEvent`]; `None` otherwise.
    pub fn incoming_call(&self) -> Option<CallEvent> {
        match self {
            TelnyxEvent::CallInitiated(e) => e.to_call_event(),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    data: Option<Data>,
    event_type: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Data {
    event_type: String,
    id: String,
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct RawInitiated {
    call_control_id: CallId,
    direction: Option<String>,
    from: Option<String>,
    to: Option<String>,
    state: Option<String>,
    client_state: Option<String>,
}

#[derive(Deserialize)]
struct RawCommon {
    call_control_id: CallId,
    client_state: Option<String>,
    status: Option<String>,
    hangup_cause: Option<String>,
    hangup_source: Option<String>,
}

/// `call.gather.ended`.
#[derive(Clone, Debug, PartialEq)]
pub struct GatherEnded {
    pub event_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub call_control_id: CallId,
    /// The keys pressed (empty or absent when none).
    pub digits: Option<String>,
    /// `valid`, `invalid`, `call_hangup`, `cancelled`, `cancelled_amd` or `timeout`.
    pub status: Option<String>,
    pub client_state: Option<ClientState>,
}

#[derive(Deserialize)]
struct RawGather {
    call_control_id: CallId,
    client_state: Option<String>,
    digits: Option<String>,
    status: Option<String>,
}

fn decode_state(raw: Option<&str>) -> Option<ClientState> {
    raw.and_then(ClientState::decode)
}

/// Parse a webhook body (use [`super::VerifiedEvent::parse`] in the handler).
pub(crate) fn parse_event(body: &[u8]) -> Result<TelnyxEvent, ParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    if !value.is_object() {
        return Err(ParseError::Shape("the body is not a JSON object".into()));
    }
    let envelope: Envelope =
        serde_json::from_value(value).map_err(|e| ParseError::Shape(e.to_string()))?;
    let data = match (envelope.data, envelope.event_type) {
        (Some(d), _) => d,
        (None, Some(t)) => {
            return Err(ParseError::ApiV1 {
                event_type: t.as_str().unwrap_or("?").to_owned(),
            })
        }
        (None, None) => return Err(ParseError::Shape("no \"data\" object".into())),
    };
    let shape = |e: serde_json::Error| ParseError::Shape(format!("{}: {e}", data.event_type));

    let event = match data.event_type.as_str() {
        "call.initiated" => {
            let p: RawInitiated = serde_json::from_value(data.payload.clone()).map_err(shape)?;
            TelnyxEvent::CallInitiated(CallInitiated {
                event_id: data.id,
                occurred_at: data.occurred_at,
                call_control_id: p.call_control_id,
                direction: match p.direction.as_deref() {
                    Some("incoming") => Direction::Incoming,
                    Some("outgoing") => Direction::Outgoing,
                    _ => Direction::Unknown,
                },
                from: CallerId::classify(p.from.as_deref().unwrap_or("")),
                to: CallerId::classify(p.to.as_deref().unwrap_or("")),
                state: p.state,
                client_state: decode_state(p.client_state.as_deref()),
            })
        }
        "call.answered" | "call.speak.ended" | "call.hangup" => {
            let p: RawCommon = serde_json::from_value(data.payload.clone()).map_err(shape)?;
            let client_state = decode_state(p.client_state.as_deref());
            match data.event_type.as_str() {
                "call.answered" => TelnyxEvent::CallAnswered(CallAnswered {
                    event_id: data.id,
                    occurred_at: data.occurred_at,
                    call_control_id: p.call_control_id,
                    client_state,
                }),
                "call.speak.ended" => TelnyxEvent::SpeakEnded(SpeakEnded {
                    event_id: data.id,
                    occurred_at: data.occurred_at,
                    call_control_id: p.call_control_id,
                    status: p.status,
                    client_state,
                }),
                _ => TelnyxEvent::Hangup(Hangup {
                    event_id: data.id,
                    occurred_at: data.occurred_at,
                    call_control_id: p.call_control_id,
                    hangup_cause: p.hangup_cause,
                    hangup_source: p.hangup_source,
                    client_state,
                }),
            }
        }
        "call.gather.ended" => {
            let p: RawGather = serde_json::from_value(data.payload.clone()).map_err(shape)?;
            TelnyxEvent::GatherEnded(GatherEnded {
                event_id: data.id,
                occurred_at: data.occurred_at,
                call_control_id: p.call_control_id,
                digits: p.digits,
                status: p.status,
                client_state: decode_state(p.client_state.as_deref()),
            })
        }
        _ => TelnyxEvent::Other {
            event_id: data.id,
            event_type: data.event_type,
        },
    };
    Ok(event)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::domain::{Language, PhoneNumber};
    use crate::messages::SpokenMessage;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/telnyx/",
                $name
            ))
        };
    }

    fn parse(s: &str) -> Result<TelnyxEvent, ParseError> {
        parse_event(s.as_bytes())
    }

    #[test]
    fn inbound_call_initiated_becomes_a_call_event() {
        let ev = parse(fixture!("call_initiated_inbound.json")).unwrap();
        assert_eq!(ev.event_id(), "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0");
        let TelnyxEvent::CallInitiated(ci) = &ev else {
            panic!("{ev:?}")
        };
        assert_eq!(ci.direction, Direction::Incoming);
        assert_eq!(ci.state.as_deref(), Some("parked"));
        assert_eq!(ci.client_state, None);
        assert_eq!(
            ci.occurred_at.map(|t| t.to_rfc3339()),
            Some("2024-01-15T10:30:00+00:00".to_owned())
        );
        let call = ev.incoming_call().unwrap();
        assert_eq!(call.provider, Provider::Telnyx);
        assert_eq!(call.call_id.as_str(), "v3:Xx1ExampleCallControlIdxx");
        assert_eq!(
            call.caller,
            CallerId::Number(PhoneNumber::parse("+442920123456").unwrap())
        );
    }

    #[test]
    fn outbound_call_initiated_is_not_an_incoming_call() {
        let ev = parse(fixture!("call_initiated_outbound.json")).unwrap();
        let TelnyxEvent::CallInitiated(ci) = &ev else {
            panic!("{ev:?}")
        };
        assert_eq!(ci.direction, Direction::Outgoing);
        assert!(ev.incoming_call().is_none());
    }

    #[test]
    fn withheld_caller_is_classified() {
        let body = fixture!("call_initiated_inbound.json").replace("+442920123456", "anonymous");
        let ev = parse(&body).unwrap();
        assert_eq!(ev.incoming_call().unwrap().caller, CallerId::Withheld);
    }

    #[test]
    fn call_answered_carries_our_refuse_state() {
        let ev = parse(fixture!("call_answered.json")).unwrap();
        let TelnyxEvent::CallAnswered(a) = &ev else {
            panic!("{ev:?}")
        };
        assert_eq!(a.call_control_id.as_str(), "v3:Xx1ExampleCallControlIdxx");
        assert_eq!(
            a.client_state,
            Some(ClientState::Refuse {
                messages: vec![
                    SpokenMessage {
                        language: Language::En,
                        text: "We cannot take your call now. Goodbye.".into()
                    },
                    SpokenMessage {
                        language: Language::Cy,
                        text: "Ni allwn dderbyn eich galwad nawr. Hwyl fawr.".into()
                    },
                ]
            })
        );
        assert!(ev.incoming_call().is_none());
    }

    #[test]
    fn speak_ended_carries_status_and_state() {
        let ev = parse(fixture!("call_speak_ended.json")).unwrap();
        let TelnyxEvent::SpeakEnded(s) = &ev else {
            panic!("{ev:?}")
        };
        assert_eq!(s.status.as_deref(), Some("completed"));
        assert_eq!(
            s.client_state,
            Some(ClientState::Speaking {
                index: 1,
                remaining: vec![]
            })
        );
    }

    #[test]
    fn hangup_carries_cause_and_tolerates_foreign_client_state() {
        let ev = parse(fixture!("call_hangup.json")).unwrap();
        let TelnyxEvent::Hangup(h) = &ev else {
            panic!("{ev:?}")
        };
        assert_eq!(h.hangup_cause.as_deref(), Some("normal_clearing"));
        assert_eq!(h.hangup_source.as_deref(), Some("callee"));
        // The fixture's client_state is someone else's ({"decision":"refuse"}): ignored.
        assert_eq!(h.client_state, None);
        assert_eq!(ev.event_type(), "call.hangup");
    }

    #[test]
    fn v1_envelope_is_a_distinct_error_naming_the_fix() {
        let err = parse(fixture!("v1_call_initiated.json")).unwrap_err();
        assert_eq!(
            err,
            ParseError::ApiV1 {
                event_type: "call_initiated".into()
            }
        );
        assert!(err.to_string().contains("webhook API version to 2"));
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn garbage_is_a_parse_error() {
        for body in [
            "",
            "not json",
            "[1,2]",
            "{}",
            r#"{"data": 5}"#,
            r#"{"data": {"event_type": "call.initiated"}}"#,
            r#"{"data": {"event_type": "call.initiated", "id": "x", "payload": {}}}"#,
            r#"{"data": {"event_type": "call.answered", "id": "x", "payload": {"call_control_id": ""}}}"#,
        ] {
            assert!(parse(body).is_err(), "{body:?} parsed");
        }
        assert!(matches!(parse("{"), Err(ParseError::Json(_))));
    }

    #[test]
    fn unknown_events_and_keys_are_tolerated() {
        let body = r#"{"data":{"record_type":"event","event_type":"call.speak.started","id":"e-1",
            "occurred_at":"2024-01-15T10:30:02Z","payload":{"call_control_id":"v3:abc"},"extra":1},
            "meta":{"attempt":2},"something":"else"}"#;
        assert_eq!(
            parse(body).unwrap(),
            TelnyxEvent::Other {
                event_id: "e-1".into(),
                event_type: "call.speak.started".into()
            }
        );
    }
}
