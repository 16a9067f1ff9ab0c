//! Pure command planning: which Call Control commands to send for a decision or an event.
//!
//! The flow (SPEC §8):
//!
//! | decision / event | commands |
//! |---|---|
//! | continue (on `call.initiated`) | `transfer {"to": continue_to}` |
//! | route | `transfer {"to": staff.telnyx, "time_limit_secs": max_call_minutes×60}` |
//! | route, staff member without a `telnyx` target | as continue (logged as a warning) |
//! | refuse | `answer` with [`ClientState::Refuse`] carrying the messages |
//! | reject (a block with `refuse_blocked_with = "reject"`) | `reject {"cause":"CALL_REJECTED"}` |
//! | `call.answered` with our refuse state | `speak` the first message |
//! | `call.speak.ended` with more messages left | `speak` the next one |
//! | `call.speak.ended` after the last message | `hangup` |
//!
//! Messages are spoken one at a time (never queued) because Telnyx keeps a single
//! `client_state` per call: two queued speaks with different states would make the first
//! `call.speak.ended` echo the second's state. Each command carries a fresh uuid v4
//! `command_id`; the REST client reuses it across retries so Telnyx drops duplicates.
//!
//! Route transfers the parked call without `answer`, so the caller hears ringback until the
//! member of staff answers (common practice; SPEC §8 names only `transfer`). `time_limit_secs`
//! is clamped to Telnyx's accepted range 30–14400.

use serde_json::{json, Map, Value};

use super::events::TelnyxEvent;
use super::state::{ClientState, MAX_CLIENT_STATE_LEN};
use crate::domain::Language;
use crate::messages::SpokenMessage;
use crate::providers::CallAction;

/// English text-to-speech voice.
pub const VOICE_EN: &str = "AWS.Polly.Amy";
/// Welsh text-to-speech voice (Polly ignores `language`, but it is sent for clarity).
pub const VOICE_CY: &str = "AWS.Polly.Gwyneth";
/// Longest `speak` payload Telnyx accepts, in characters.
pub const MAX_SPEAK_CHARS: usize = 3000;
const MIN_TIME_LIMIT_SECS: u64 = 30;
const MAX_TIME_LIMIT_SECS: u64 = 14_400;

/// One Call Control command: `POST /v2/calls/{id}/actions/{action}` with `body`.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// `transfer`, `answer`, `reject`, `speak` or `hangup`.
    pub action: &'static str,
    /// The JSON body, always an object with a `command_id`.
    pub body: Value,
}

impl Command {
    /// A command with a fresh `command_id` and, when given, an encoded `client_state`.
    pub fn new(action: &'static str, fields: Value, state: Option<&ClientState>) -> Command {
        let mut body = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        body.insert("command_id".into(), Value::String(new_command_id()));
        if let Some(s) = state {
            body.insert("client_state".into(), Value::String(s.encode()));
        }
        Command {
            action,
            body: Value::Object(body),
        }
    }

    /// The body's `command_id`.
    pub fn command_id(&self) -> Option<&str> {
        self.body.get("command_id").and_then(Value::as_str)
    }

    /// The state the command sets, decoded.
    pub fn client_state(&self) -> Option<ClientState> {
        self.body
            .get("client_state")
            .and_then(Value::as_str)
            .and_then(ClientState::decode)
    }
}

/// A fresh uuid v4.
pub fn new_command_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `hangup`, as sent after the last message and for agent terminations.
pub fn hangup_command() -> Command {
    Command::new("hangup", json!({}), Some(&ClientState::HangingUp))
}

fn reject_command() -> Command {
    Command::new(
        "reject",
        json!({"cause": "CALL_REJECTED"}),
        Some(&ClientState::Reject),
    )
}

fn transfer_to_continue(continue_to: &str) -> Command {
    Command::new(
        "transfer",
        json!({"to": continue_to}),
        Some(&ClientState::Continue),
    )
}

/// The commands to send on an inbound `call.initiated`, given the decision.
/// `continue_to` is `telnyx.continue_to`.
pub fn plan_call_initiated(action: &CallAction, continue_to: &str) -> Vec<Command> {
    match action {
        CallAction::Continue => vec![transfer_to_continue(continue_to)],
        CallAction::Route {
            staff,
            max_call_minutes,
        } => match &staff.telnyx {
            Some(target) => {
                let mut fields = json!({"to": target.as_str()});
                if let Some(minutes) = max_call_minutes {
                    let secs =
                        (u64::from(*minutes) * 60).clamp(MIN_TIME_LIMIT_SECS, MAX_TIME_LIMIT_SECS);
                    fields["time_limit_secs"] = json!(secs);
                }
                vec![Command::new(
                    "transfer",
                    fields,
                    Some(&ClientState::Route {
                        staff: staff.id.clone(),
                    }),
                )]
            }
            None => {
                tracing::warn!(
                    staff = %staff.id,
                    "staff member has no telnyx target; transferring to continue_to instead"
                );
                vec![transfer_to_continue(continue_to)]
            }
        },
        CallAction::Refuse { messages } => {
            let state = ClientState::Refuse {
                messages: messages.clone(),
            };
            if state.encode().len() > MAX_CLIENT_STATE_LEN {
                tracing::warn!(
                    "refusal messages too long to carry in client_state; rejecting without a message \
                     (shorten the [messages] overrides)"
                );
                return vec![reject_command()];
            }
            vec![Command::new("answer", json!({}), Some(&state))]
        }
        CallAction::Reject => vec![reject_command()],
    }
}

fn speak_command(index: u32, message: &SpokenMessage, remaining: &[SpokenMessage]) -> Command {
    let (voice, language) = match message.language {
        Language::En => (VOICE_EN, "en-GB"),
        Language::Cy => (VOICE_CY, "cy-GB"),
    };
    let payload: String = message.text.chars().take(MAX_SPEAK_CHARS).collect();
    Command::new(
        "speak",
        json!({
            "payload": payload,
            "payload_type": "text",
            "voice": voice,
            "language": language,
        }),
        Some(&ClientState::Speaking {
            index,
            remaining: remaining.to_vec(),
        }),
    )
}

/// The commands to send on `call.answered`, given its (decoded) `client_state`: the first
/// message of a refusal, or `hangup` if there is nothing to say. Nothing for other states
/// (for example the staff leg of a transfer answering).
pub fn plan_call_answered(state: Option<&ClientState>) -> Vec<Command> {
    match state {
        Some(ClientState::Refuse { messages }) => match messages.split_first() {
            Some((first, rest)) => vec![speak_command(0, first, rest)],
            None => vec![hangup_command()],
        },
        _ => vec![],
    }
}

/// The commands to send on `call.speak.ended`: the next message, or `hangup` after the last.
/// Nothing when the caller already hung up (`status = "call_hangup"`) or the state is not ours.
pub fn plan_speak_ended(state: Option<&ClientState>, status: Option<&str>) -> Vec<Command> {
    if status == Some("call_hangup") {
        return vec![];
    }
    match state {
        Some(ClientState::Speaking { index, remaining }) => match remaining.split_first() {
            Some((next, rest)) => vec![speak_command(index.saturating_add(1), next, rest)],
            None => vec![hangup_command()],
        },
        _ => vec![],
    }
}

/// The follow-up commands for any event that does not need a decision (`call.answered`,
/// `call.speak.ended`); nothing for the others. `call.initiated` needs a decision: use
/// [`plan_call_initiated`].
pub fn plan_event(event: &TelnyxEvent) -> Vec<Command> {
    match event {
        TelnyxEvent::CallAnswered(a) => plan_call_answered(a.client_state.as_ref()),
        TelnyxEvent::SpeakEnded(s) => {
            plan_speak_ended(s.client_state.as_ref(), s.status.as_deref())
        }
        _ => vec![],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::{StaffMember, TelnyxTarget};
    use crate::domain::{PhoneNumber, StaffId};
    use std::collections::HashSet;

    const CONTINUE_TO: &str = "sip:main-queue@pbx.example.org";

    fn msg(language: Language, text: &str) -> SpokenMessage {
        SpokenMessage {
            language,
            text: text.to_owned(),
        }
    }

    fn staff(telnyx: Option<TelnyxTarget>) -> StaffMember {
        StaffMember {
            id: StaffId::parse("alice").unwrap(),
            name: "Alice Jones".into(),
            twilio: None,
            telnyx,
        }
    }

    fn body_without_ids(c: &Command) -> Value {
        let mut b = c.body.clone();
        let o = b.as_object_mut().unwrap();
        assert!(uuid::Uuid::parse_str(o.remove("command_id").unwrap().as_str().unwrap()).is_ok());
        o.remove("client_state");
        b
    }

    #[test]
    fn continue_transfers_to_continue_to() {
        let plan = plan_call_initiated(&CallAction::Continue, CONTINUE_TO);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].action, "transfer");
        assert_eq!(body_without_ids(&plan[0]), json!({"to": CONTINUE_TO}));
        assert_eq!(plan[0].client_state(), Some(ClientState::Continue));
    }

    #[test]
    fn route_transfers_to_the_staff_target_with_a_time_limit() {
        let action = CallAction::Route {
            staff: staff(Some(TelnyxTarget::Sip("sip:alice@pbx.example.org".into()))),
            max_call_minutes: Some(20),
        };
        let plan = plan_call_initiated(&action, CONTINUE_TO);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].action, "transfer");
        assert_eq!(
            body_without_ids(&plan[0]),
            json!({"to": "sip:alice@pbx.example.org", "time_limit_secs": 1200})
        );
        assert_eq!(
            plan[0].client_state(),
            Some(ClientState::Route {
                staff: StaffId::parse("alice").unwrap()
            })
        );
    }

    #[test]
    fn route_without_a_limit_to_a_number() {
        let action = CallAction::Route {
            staff: staff(Some(TelnyxTarget::Number(
                PhoneNumber::parse("+442079460001").unwrap(),
            ))),
            max_call_minutes: None,
        };
        let plan = plan_call_initiated(&action, CONTINUE_TO);
        assert_eq!(body_without_ids(&plan[0]), json!({"to": "+442079460001"}));
    }

    #[test]
    fn route_time_limit_is_clamped_to_the_telnyx_range() {
        for (minutes, secs) in [(0, 30), (1, 60), (240, 14_400), (1000, 14_400)] {
            let action = CallAction::Route {
                staff: staff(Some(TelnyxTarget::Sip("sip:a@b".into()))),
                max_call_minutes: Some(minutes),
            };
            let plan = plan_call_initiated(&action, CONTINUE_TO);
            assert_eq!(
                plan[0].body["time_limit_secs"],
                json!(secs),
                "{minutes} min"
            );
        }
    }

    #[test]
    fn route_to_staff_without_a_telnyx_target_continues() {
        let action = CallAction::Route {
            staff: staff(None),
            max_call_minutes: Some(10),
        };
        let plan = plan_call_initiated(&action, CONTINUE_TO);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].action, "transfer");
        assert_eq!(body_without_ids(&plan[0]), json!({"to": CONTINUE_TO}));
    }

    #[test]
    fn reject_rejects_with_call_rejected() {
        let plan = plan_call_initiated(&CallAction::Reject, CONTINUE_TO);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].action, "reject");
        assert_eq!(
            body_without_ids(&plan[0]),
            json!({"cause": "CALL_REJECTED"})
        );
    }

    #[test]
    fn refuse_answers_carrying_the_messages() {
        let messages = vec![msg(Language::En, "Sorry. Goodbye.")];
        let plan = plan_call_initiated(
            &CallAction::Refuse {
                messages: messages.clone(),
            },
            CONTINUE_TO,
        );
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].action, "answer");
        assert_eq!(body_without_ids(&plan[0]), json!({}));
        assert_eq!(
            plan[0].client_state(),
            Some(ClientState::Refuse { messages })
        );
    }

    #[test]
    fn refuse_with_oversized_messages_rejects_instead() {
        let messages = vec![msg(Language::En, &"x".repeat(MAX_CLIENT_STATE_LEN))];
        let plan = plan_call_initiated(&CallAction::Refuse { messages }, CONTINUE_TO);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].action, "reject");
    }

    /// Walks answer → speak(en) → speak(cy) → hangup by feeding each command's state back as
    /// Telnyx would echo it.
    #[test]
    fn bilingual_refusal_speaks_both_in_order_then_hangs_up() {
        let messages = vec![
            msg(Language::Cy, "Ni allwn dderbyn eich galwad."),
            msg(Language::En, "We cannot take your call."),
        ];
        let answer = &plan_call_initiated(&CallAction::Refuse { messages }, CONTINUE_TO)[0];
        let state = answer.client_state();

        let first = plan_call_answered(state.as_ref());
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].action, "speak");
        assert_eq!(
            body_without_ids(&first[0]),
            json!({"payload": "Ni allwn dderbyn eich galwad.", "payload_type": "text",
                   "voice": "AWS.Polly.Gwyneth", "language": "cy-GB"})
        );

        let second = plan_speak_ended(first[0].client_state().as_ref(), Some("completed"));
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].action, "speak");
        assert_eq!(
            body_without_ids(&second[0]),
            json!({"payload": "We cannot take your call.", "payload_type": "text",
                   "voice": "AWS.Polly.Amy", "language": "en-GB"})
        );
        assert_eq!(
            second[0].client_state(),
            Some(ClientState::Speaking {
                index: 1,
                remaining: vec![]
            })
        );

        let last = plan_speak_ended(second[0].client_state().as_ref(), Some("completed"));
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].action, "hangup");
        assert_eq!(body_without_ids(&last[0]), json!({}));

        // The hangup's state, echoed on any later speak.ended, asks for nothing more.
        assert!(plan_speak_ended(last[0].client_state().as_ref(), Some("completed")).is_empty());
    }

    #[test]
    fn nothing_to_say_hangs_up_on_answer() {
        let plan = plan_call_answered(Some(&ClientState::Refuse { messages: vec![] }));
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].action, "hangup");
    }

    #[test]
    fn caller_hanging_up_mid_speech_stops_the_sequence() {
        let state = ClientState::Speaking {
            index: 0,
            remaining: vec![msg(Language::En, "more")],
        };
        assert!(plan_speak_ended(Some(&state), Some("call_hangup")).is_empty());
        let done = ClientState::Speaking {
            index: 0,
            remaining: vec![],
        };
        assert!(plan_speak_ended(Some(&done), Some("call_hangup")).is_empty());
        // Any other ending status still moves on.
        assert_eq!(
            plan_speak_ended(Some(&done), Some("cancelled_amd"))[0].action,
            "hangup"
        );
    }

    #[test]
    fn foreign_or_missing_state_plans_nothing() {
        assert!(plan_call_answered(None).is_empty());
        assert!(plan_call_answered(Some(&ClientState::Continue)).is_empty());
        assert!(plan_speak_ended(None, Some("completed")).is_empty());
        assert!(plan_speak_ended(
            Some(&ClientState::Route {
                staff: StaffId::parse("alice").unwrap()
            }),
            Some("completed")
        )
        .is_empty());
    }

    #[test]
    fn long_text_is_cut_to_the_speak_limit() {
        let plan = plan_call_answered(Some(&ClientState::Refuse {
            messages: vec![msg(Language::En, &"é".repeat(MAX_SPEAK_CHARS + 10))],
        }));
        let payload = plan[0].body["payload"].as_str().unwrap();
        assert_eq!(payload.chars().count(), MAX_SPEAK_CHARS);
    }

    #[test]
    fn command_ids_are_unique() {
        let mut seen = HashSet::new();
        for _ in 0..200 {
            for action in [CallAction::Continue, CallAction::Reject] {
                for c in plan_call_initiated(&action, CONTINUE_TO) {
                    assert!(seen.insert(c.command_id().unwrap().to_owned()));
                }
            }
            assert!(seen.insert(hangup_command().command_id().unwrap().to_owned()));
        }
    }
}
