//! Parsing verified Twilio webhook forms into provider-neutral values.
//!
//! Unknown fields are ignored (Twilio adds fields over time); they still took part in the
//! signature check. A [`ParseError`] means the request is malformed: answer 400.

use crate::domain::{CallId, CallerId, Provider};
use crate::providers::CallEvent;

use super::signature::VerifiedForm;

/// A required field is missing or unusable. Answer 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the field {0} is missing")]
    MissingField(&'static str),
    #[error("the field {field} is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

impl ParseError {
    /// Always 400.
    pub fn http_status(&self) -> u16 {
        400
    }
}

fn call_id(form: &VerifiedForm) -> Result<CallId, ParseError> {
    let raw = form
        .get("CallSid")
        .ok_or(ParseError::MissingField("CallSid"))?;
    CallId::parse(raw).map_err(|e| ParseError::InvalidField {
        field: "CallSid",
        reason: e.to_string(),
    })
}

/// Classify Twilio's `From`: missing or empty is withheld, the keypad and word forms of a
/// withheld caller id are withheld, `client:…`/`sip:…` and other non-numbers are unrecognised.
pub fn classify_from(from: Option<&str>) -> CallerId {
    CallerId::classify(from.unwrap_or(""))
}

/// The incoming-call webhook (`POST /webhooks/twilio/voice`): `CallSid` (required) and `From`.
pub fn incoming_call(form: &VerifiedForm) -> Result<CallEvent, ParseError> {
    Ok(CallEvent {
        provider: Provider::Twilio,
        call_id: call_id(form)?,
        caller: classify_from(form.get("From")),
    })
}

/// The `<Dial action>` callback (`POST /webhooks/twilio/dial-status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialStatus {
    /// The caller's (parent) call.
    pub call_id: CallId,
    /// `completed`, `answered`, `busy`, `no-answer`, `failed`, `canceled`; absent when Twilio
    /// did not send it (e.g. the caller hung up before the dial started).
    pub dial_call_status: Option<String>,
    /// The dialled (child) leg, when there was one.
    pub dial_call_sid: Option<String>,
    /// Seconds the dialled leg lasted, when reported.
    pub dial_call_duration_seconds: Option<i64>,
    /// The caller's leg status (`in-progress`, `completed` when the caller hung up, …).
    pub call_status: Option<String>,
}

impl DialStatus {
    /// The member of staff answered (`completed` or `answered`): nothing more to say.
    pub fn connected(&self) -> bool {
        dial_connected(self.dial_call_status.as_deref())
    }
}

/// `completed` and `answered` mean the dialled party picked up.
pub fn dial_connected(dial_call_status: Option<&str>) -> bool {
    matches!(dial_call_status, Some("completed") | Some("answered"))
}

fn non_empty(form: &VerifiedForm, name: &str) -> Option<String> {
    form.get(name).filter(|v| !v.is_empty()).map(str::to_owned)
}

fn optional_seconds(form: &VerifiedForm, field: &'static str) -> Result<Option<i64>, ParseError> {
    match form.get(field).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| ParseError::InvalidField {
                field,
                reason: "not a whole number of seconds".into(),
            }),
    }
}

/// Parse the `<Dial action>` callback.
pub fn dial_status(form: &VerifiedForm) -> Result<DialStatus, ParseError> {
    Ok(DialStatus {
        call_id: call_id(form)?,
        dial_call_status: non_empty(form, "DialCallStatus"),
        dial_call_sid: non_empty(form, "DialCallSid"),
        dial_call_duration_seconds: optional_seconds(form, "DialCallDuration")?,
        call_status: non_empty(form, "CallStatus"),
    })
}

/// A call status callback (`POST /webhooks/twilio/status`). Duplicates carry the same values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCallback {
    pub call_id: CallId,
    /// `queued`, `ringing`, `in-progress`, `completed`, `busy`, `failed`, `no-answer`, `canceled`.
    pub call_status: String,
    /// `CallDuration`, sent on completed calls.
    pub duration_seconds: Option<i64>,
    /// `SequenceNumber`, when sent (orders several callbacks for one call).
    pub sequence_number: Option<u32>,
}

impl StatusCallback {
    /// `completed`, `busy`, `failed`, `no-answer` or `canceled`: the call is over.
    pub fn is_final(&self) -> bool {
        matches!(
            self.call_status.as_str(),
            "completed" | "busy" | "failed" | "no-answer" | "canceled"
        )
    }
}

/// Parse a status callback: `CallSid` and `CallStatus` required.
pub fn status_callback(form: &VerifiedForm) -> Result<StatusCallback, ParseError> {
    let call_id = call_id(form)?;
    let call_status =
        non_empty(form, "CallStatus").ok_or(ParseError::MissingField("CallStatus"))?;
    let sequence_number = match form.get("SequenceNumber").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| ParseError::InvalidField {
            field: "SequenceNumber",
            reason: "not a whole number".into(),
        })?),
    };
    Ok(StatusCallback {
        call_id,
        call_status,
        duration_seconds: optional_seconds(form, "CallDuration")?,
        sequence_number,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::providers::twilio::signature::{compute_signature, UnverifiedRequest};
    use bytes::Bytes;

    const INCOMING: &str = include_str!("../../../fixtures/twilio/incoming-call.txt");
    const WITHHELD: &str = include_str!("../../../fixtures/twilio/incoming-call-withheld.txt");
    const NO_ANSWER: &str = include_str!("../../../fixtures/twilio/dial-status-no-answer.txt");
    const COMPLETED: &str = include_str!("../../../fixtures/twilio/dial-status-completed.txt");
    const STATUS: &str = include_str!("../../../fixtures/twilio/status-completed.txt");

    fn form(body: &str) -> VerifiedForm {
        UnverifiedRequest::new("/", None, Bytes::from(body.to_owned()))
            .skip_verification()
            .unwrap()
    }

    #[test]
    fn fixtures_have_no_trailing_newline() {
        for f in [INCOMING, WITHHELD, NO_ANSWER, COMPLETED, STATUS] {
            assert!(!f.ends_with('\n') && !f.ends_with('\r'));
        }
    }

    #[test]
    fn incoming_call_fixture_parses() {
        let ev = incoming_call(&form(INCOMING)).unwrap();
        assert_eq!(ev.provider, Provider::Twilio);
        assert_eq!(ev.call_id.as_str(), "CA5f8b3c1e2d4a6b7c8d9e0f1a2b3c4d5e");
        match ev.caller {
            CallerId::Number(n) => assert_eq!(n.as_str(), "+442920123456"),
            other => panic!("expected a number, got {other:?}"),
        }
    }

    #[test]
    fn signed_fixture_verifies_then_parses() {
        let token = Secret::new("test-token");
        let fields: Vec<(String, String)> = form_urlencoded::parse(INCOMING.as_bytes())
            .into_owned()
            .collect();
        let sig = compute_signature(
            "https://calls.example.org/webhooks/twilio/voice",
            &fields,
            &token,
        );
        let verified =
            UnverifiedRequest::new("/webhooks/twilio/voice", Some(sig), Bytes::from(INCOMING))
                .verify("https://calls.example.org", &token)
                .unwrap();
        assert_eq!(
            verified.get("CallSid"),
            Some("CA5f8b3c1e2d4a6b7c8d9e0f1a2b3c4d5e")
        );
        assert!(incoming_call(&verified).is_ok());
    }

    #[test]
    fn withheld_fixture_is_withheld() {
        let ev = incoming_call(&form(WITHHELD)).unwrap();
        assert_eq!(ev.caller, CallerId::Withheld);
    }

    #[test]
    fn from_variants() {
        let ev = incoming_call(&form("CallSid=CA1")).unwrap();
        assert_eq!(ev.caller, CallerId::Withheld, "missing From");
        let ev = incoming_call(&form("CallSid=CA1&From=")).unwrap();
        assert_eq!(ev.caller, CallerId::Withheld, "empty From");
        let ev = incoming_call(&form("CallSid=CA1&From=client%3Aalice")).unwrap();
        assert_eq!(ev.caller, CallerId::Unrecognised);
        let ev = incoming_call(&form("CallSid=CA1&From=%2B266696687")).unwrap();
        assert_eq!(ev.caller, CallerId::Withheld);
        // A literal '+' is a space on the wire; classification still finds the number.
        let ev = incoming_call(&form("CallSid=CA1&From=+442920123456")).unwrap();
        assert!(matches!(ev.caller, CallerId::Number(_)));
    }

    #[test]
    fn call_sid_required_and_valid() {
        assert_eq!(
            incoming_call(&form("From=%2B442920123456")).unwrap_err(),
            ParseError::MissingField("CallSid")
        );
        let err = incoming_call(&form("CallSid=&From=%2B442920123456")).unwrap_err();
        assert!(matches!(
            err,
            ParseError::InvalidField {
                field: "CallSid",
                ..
            }
        ));
        let err = incoming_call(&form("CallSid=CA%201")).unwrap_err();
        assert!(matches!(
            err,
            ParseError::InvalidField {
                field: "CallSid",
                ..
            }
        ));
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn dial_status_fixtures() {
        let no = dial_status(&form(NO_ANSWER)).unwrap();
        assert_eq!(no.dial_call_status.as_deref(), Some("no-answer"));
        assert!(!no.connected());
        assert_eq!(no.call_id.as_str(), "CA5f8b3c1e2d4a6b7c8d9e0f1a2b3c4d5e");
        let done = dial_status(&form(COMPLETED)).unwrap();
        assert_eq!(done.dial_call_status.as_deref(), Some("completed"));
        assert!(done.connected());
        assert_eq!(done.dial_call_duration_seconds, Some(187));
        assert_eq!(
            done.dial_call_sid.as_deref(),
            Some("CA0a1b2c3d4e5f60718293a4b5c6d7e8f9")
        );
        let bare = dial_status(&form("CallSid=CA1")).unwrap();
        assert_eq!(bare.dial_call_status, None);
        assert!(!bare.connected());
        assert!(dial_connected(Some("answered")));
        assert!(!dial_connected(Some("busy")));
    }

    #[test]
    fn status_callback_fixture() {
        let s = status_callback(&form(STATUS)).unwrap();
        assert_eq!(s.call_status, "completed");
        assert_eq!(s.duration_seconds, Some(214));
        assert_eq!(s.sequence_number, Some(0));
        assert!(s.is_final());
        assert_eq!(
            status_callback(&form("CallSid=CA1")).unwrap_err(),
            ParseError::MissingField("CallStatus")
        );
        let ringing = status_callback(&form("CallSid=CA1&CallStatus=ringing")).unwrap();
        assert_eq!(ringing.duration_seconds, None);
        assert!(!ringing.is_final());
        assert!(
            status_callback(&form("CallSid=CA1&CallStatus=completed&CallDuration=abc")).is_err()
        );
        assert!(
            status_callback(&form("CallSid=CA1&CallStatus=completed&CallDuration=-1")).is_err()
        );
    }
}
