//! `client_state`: what the next step of a call needs, carried by Telnyx between webhooks.
//!
//! Telnyx keeps one `client_state` per call: every command that sets it replaces it, and every
//! later webhook for the call echoes it. Fairline therefore sets it on each command and never
//! queues two commands with different states (the refusal speaks one message at a time).
//!
//! Encoding: standard base64 of compact JSON, with a version field, e.g.
//! `{"v":1,"step":"refuse","messages":[{"language":"en","text":"…"}]}`.
//!
//! **Design choice (full text, not a message key):** a refusal's state carries the rendered
//! texts, because a [`CallAction::Refuse`](crate::providers::CallAction) holds only the rendered
//! messages, and re-rendering on `call.answered` would need the arrangement, the calendar and the
//! message overrides again. The built-in texts (a sentence or two per language) keep even a
//! bilingual state well under 1 KB. Telnyx publishes no limit we could confirm, so a state longer
//! than [`MAX_CLIENT_STATE_LEN`] is not sent: the command planner refuses such a call with
//! `reject` instead (see [`plan_call_initiated`](super::plan_call_initiated)).
//!
//! Decoding never panics: anything that is not our base64 JSON of a known version is `None`.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::domain::StaffId;
use crate::messages::SpokenMessage;

/// The current `v` of the encoding.
pub const CLIENT_STATE_VERSION: u8 = 1;
/// The longest encoded state Fairline sends (characters of base64).
pub const MAX_CLIENT_STATE_LEN: usize = 4096;
/// Encoded states longer than this are not even decoded.
const MAX_DECODE_LEN: usize = 16 * 1024;

/// Where a call is in Fairline's flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ClientState {
    /// Transferred into the normal call flow.
    Continue,
    /// Transferred to a designated member of staff.
    Route { staff: StaffId },
    /// Being answered so that these messages can be spoken, in order, then hung up.
    Refuse { messages: Vec<SpokenMessage> },
    /// Speaking message `index` (0-based); `remaining` are still to be spoken after it.
    Speaking {
        index: u32,
        remaining: Vec<SpokenMessage>,
    },
    /// Hanging up after the last message.
    HangingUp,
    /// Rejected without answering.
    Reject,
    /// SPEC §14 (src/providers/telnyx/urgent.rs): being answered to speak these texts — the
    /// refusal, then the safeguarding offer — the last one with `gather_using_speak`.
    OfferRefuse { messages: Vec<SpokenMessage> },
    /// Speaking a text of an offered refusal; `remaining` follow, the last one gathered.
    OfferSpeaking { remaining: Vec<SpokenMessage> },
    /// Listening for the safeguarding digit (`gather_using_speak`).
    Offering,
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u8,
    #[serde(flatten)]
    state: &'a ClientState,
}

#[derive(Deserialize)]
struct WireIn {
    v: u8,
    #[serde(flatten)]
    state: ClientState,
}

impl ClientState {
    /// Base64 JSON, as put into a command's `client_state`.
    pub fn encode(&self) -> String {
        let wire = WireOut {
            v: CLIENT_STATE_VERSION,
            state: self,
        };
        // Serialising plain structs of strings and integers cannot fail; an empty object would
        // decode to `None`, which the planner treats as "not ours".
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    /// Decode a webhook's `client_state`; `None` for anything that is not ours.
    pub fn decode(raw: &str) -> Option<ClientState> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_DECODE_LEN {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
        let wire: WireIn = serde_json::from_slice(&bytes).ok()?;
        (wire.v == CLIENT_STATE_VERSION).then_some(wire.state)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::domain::Language;

    fn msg(language: Language, text: &str) -> SpokenMessage {
        SpokenMessage {
            language,
            text: text.to_owned(),
        }
    }

    #[test]
    fn every_state_round_trips() {
        let states = vec![
            ClientState::Continue,
            ClientState::Route {
                staff: StaffId::parse("alice").unwrap(),
            },
            ClientState::Refuse {
                messages: vec![msg(Language::En, "Hello"), msg(Language::Cy, "Helo")],
            },
            ClientState::Speaking {
                index: 1,
                remaining: vec![msg(Language::Cy, "Hwyl fawr")],
            },
            ClientState::HangingUp,
            ClientState::Reject,
        ];
        for s in states {
            let encoded = s.encode();
            assert_eq!(ClientState::decode(&encoded), Some(s.clone()), "{encoded}");
        }
    }

    #[test]
    fn encoding_is_versioned_base64_json() {
        let encoded = ClientState::Reject.encode();
        let json: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json, serde_json::json!({"v": 1, "step": "reject"}));
    }

    #[test]
    fn garbage_decodes_to_none() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        for raw in [
            String::new(),
            "!!!not base64".to_owned(),
            "eyJkZWNpc2lvbiI6InJlZnVzZSJ9".to_owned(), // {"decision":"refuse"}
            b64("not json"),
            b64("[1,2,3]"),
            b64(r#"{"v":2,"step":"reject"}"#),
            b64(r#"{"step":"reject"}"#),
            b64(r#"{"v":1,"step":"explode"}"#),
            b64(r#"{"v":1,"step":"route","staff":"Not Valid!"}"#),
            b64(r#"{"v":1,"step":"speaking","index":-1,"remaining":[]}"#),
            "A".repeat(MAX_DECODE_LEN + 4),
        ] {
            assert_eq!(ClientState::decode(&raw), None, "{raw:.60}");
        }
    }

    #[test]
    fn a_bilingual_refusal_stays_under_one_kilobyte() {
        let en = "Calls from this number are only accepted on Tuesdays and Thursdays between \
                  10:00 and 12:00. You can next call on Tuesday 14 January at 10:00. Goodbye.";
        let cy = "Dim ond ar ddydd Mawrth a dydd Iau rhwng 10:00 a 12:00 y derbynnir galwadau o'r \
                  rhif hwn. Gallwch ffonio nesaf ddydd Mawrth 14 Ionawr am 10:00. Hwyl fawr.";
        let s = ClientState::Refuse {
            messages: vec![msg(Language::En, en), msg(Language::Cy, cy)],
        };
        assert!(s.encode().len() < 1024, "{}", s.encode().len());
    }
}
