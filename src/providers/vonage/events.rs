//! Parsing verified Vonage webhooks into provider-neutral values.
//!
//! * The answer webhook ([`answer`]): `from`, `to`, `uuid`, `conversation_uuid` (GET query or
//!   POST JSON). Numbers arrive as E.164 digits **without** `+` (`447700900123`); they are
//!   classified with [`CallerId::classify`] like every platform's caller, so withheld forms
//!   (`anonymous`, `unknown`, empty…) are [`CallerId::Withheld`], and a Client SDK caller
//!   (`from_user` instead of `from`) or anything else that is not a number is
//!   [`CallerId::Unrecognised`].
//! * The event webhook ([`call_event`]): `status`, `uuid`, `direction`, `duration`.

use serde_json::{Map, Value};

use crate::domain::{CallId, CallerId, Provider};
use crate::providers::CallEvent;

/// A required field is missing or unusable: answered 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the webhook body is not a JSON object")]
    NotAnObject,
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("field {0} is not valid")]
    Invalid(&'static str),
}

impl ParseError {
    pub fn http_status(&self) -> u16 {
        400
    }
}

/// A field as text: strings as they are, numbers written out (Vonage sends `duration` as a
/// string, but a number is accepted too).
pub fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    match fields.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An incoming call from the answer webhook.
#[derive(Clone, Debug)]
pub struct AnswerRequest {
    pub event: CallEvent,
    /// The number that was called (our virtual number), digits as Vonage sent them: the
    /// `from` of a `connect`.
    pub to: Option<String>,
    pub conversation_uuid: Option<String>,
}

/// Parse the answer webhook.
pub fn answer(fields: &Map<String, Value>) -> Result<AnswerRequest, ParseError> {
    let uuid = text(fields, "uuid").ok_or(ParseError::Missing("uuid"))?;
    let call_id = CallId::parse(&uuid).map_err(|_| ParseError::Invalid("uuid"))?;
    let caller = match text(fields, "from") {
        Some(from) => CallerId::classify(&from),
        None if fields.contains_key("from_user") => CallerId::Unrecognised,
        None => CallerId::Withheld,
    };
    let to = text(fields, "to").filter(|t| {
        !t.is_empty()
            && t.len() <= 64
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-_.@:".contains(c))
    });
    Ok(AnswerRequest {
        event: CallEvent {
            provider: Provider::Vonage,
            call_id,
            caller,
        },
        to,
        conversation_uuid: text(fields, "conversation_uuid").filter(|c| !c.is_empty()),
    })
}

/// A call event (`event_url`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallStatusEvent {
    pub call_id: CallId,
    pub conversation_uuid: Option<String>,
    pub status: String,
    /// `inbound` (the caller's leg) or `outbound` (a leg we connected, e.g. to staff).
    pub direction: Option<String>,
    pub duration_seconds: Option<i64>,
}

/// Statuses after which a leg is over.
pub const FINAL_STATUSES: [&str; 7] = [
    "completed",
    "busy",
    "cancelled",
    "failed",
    "rejected",
    "timeout",
    "unanswered",
];

/// Statuses of a `connect` leg that never reached the member of staff: the caller hears
/// `staff_unavailable`.
pub const NOT_CONNECTED_STATUSES: [&str; 5] =
    ["unanswered", "busy", "failed", "timeout", "rejected"];

impl CallStatusEvent {
    pub fn is_final(&self) -> bool {
        FINAL_STATUSES.contains(&self.status.as_str())
    }

    /// The rung leg was not answered (busy, failed, timed out, rejected, unanswered).
    pub fn staff_not_reached(&self) -> bool {
        NOT_CONNECTED_STATUSES.contains(&self.status.as_str())
    }
}

/// Parse the event webhook. `Ok(None)` for events without a call `status` (Vonage sends other
/// kinds of events to the same URL, e.g. for `input` or `record` actions): nothing to do.
pub fn call_event(fields: &Map<String, Value>) -> Result<Option<CallStatusEvent>, ParseError> {
    let Some(status) = text(fields, "status") else {
        return Ok(None);
    };
    let status = status.trim().to_ascii_lowercase();
    if status.is_empty() || status.len() > 32 {
        return Err(ParseError::Invalid("status"));
    }
    let uuid = text(fields, "uuid").ok_or(ParseError::Missing("uuid"))?;
    let call_id = CallId::parse(&uuid).map_err(|_| ParseError::Invalid("uuid"))?;
    let duration_seconds = match text(fields, "duration") {
        None => None,
        Some(d) if d.is_empty() => None,
        Some(d) => Some(
            d.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or(ParseError::Invalid("duration"))?,
        ),
    };
    Ok(Some(CallStatusEvent {
        call_id,
        conversation_uuid: text(fields, "conversation_uuid").filter(|c| !c.is_empty()),
        status,
        direction: text(fields, "direction"),
        duration_seconds,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn numbers_without_plus_become_e164_and_withheld_forms_are_classified() {
        let a = answer(&obj(json!({
            "from": "447700900123", "to": "442079460000",
            "uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "conversation_uuid": "CON-1"
        })))
        .unwrap();
        assert_eq!(a.event.provider, Provider::Vonage);
        match &a.event.caller {
            CallerId::Number(n) => assert_eq!(n.as_str(), "+447700900123"),
            other => panic!("{other:?}"),
        }
        assert_eq!(a.to.as_deref(), Some("442079460000"));
        assert_eq!(a.conversation_uuid.as_deref(), Some("CON-1"));

        for withheld in ["", "anonymous", "Unknown", "private"] {
            let a = answer(&obj(json!({"from": withheld, "to": "4420", "uuid": "u"}))).unwrap();
            assert_eq!(a.event.caller, CallerId::Withheld, "{withheld:?}");
        }
        let app_user = answer(&obj(json!({"from_user": "alice", "uuid": "u"}))).unwrap();
        assert_eq!(app_user.event.caller, CallerId::Unrecognised);
        let no_from = answer(&obj(json!({"uuid": "u"}))).unwrap();
        assert_eq!(no_from.event.caller, CallerId::Withheld);
        assert_eq!(
            answer(&obj(json!({"from": "447700900123"}))).unwrap_err(),
            ParseError::Missing("uuid")
        );
    }

    #[test]
    fn events_carry_status_direction_and_duration() {
        let e = call_event(&obj(json!({
            "uuid": "u-1", "status": "completed", "direction": "inbound", "duration": "42"
        })))
        .unwrap()
        .unwrap();
        assert!(e.is_final());
        assert!(!e.staff_not_reached());
        assert_eq!(e.duration_seconds, Some(42));
        let t = call_event(&obj(
            json!({"uuid": "u-2", "status": "timeout", "direction": "outbound"}),
        ))
        .unwrap()
        .unwrap();
        assert!(t.staff_not_reached());
        assert!(call_event(&obj(json!({"uuid": "u-3", "type": "transfer"})))
            .unwrap()
            .is_none());
        assert_eq!(
            call_event(&obj(
                json!({"uuid": "u", "status": "completed", "duration": "x"})
            ))
            .unwrap_err(),
            ParseError::Invalid("duration")
        );
    }
}
