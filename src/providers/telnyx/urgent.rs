//! The safeguarding route on Telnyx (SPEC §14).
//!
//! | decision / event | commands |
//! |---|---|
//! | refuse with an offer (on `call.initiated`) | `answer` with [`ClientState::OfferRefuse`] carrying every text (refusal, then offer) |
//! | `call.answered` / `call.speak.ended` with an offer state, more than one text left | `speak` the next, [`ClientState::OfferSpeaking`] |
//! | … the last text left | `gather_using_speak` it (`valid_digits` = the digit, one digit, 5 s), [`ClientState::Offering`] |
//! | `call.gather.ended` with [`ClientState::Offering`], the digit | `transfer` to `[decision.urgent] telnyx` |
//! | … another key, `timeout`, anything else | `hangup` |
//!
//! Texts are spoken one at a time, as in a plain refusal (Telnyx keeps one `client_state` per
//! call). The listening starts with the last text — the offer in the last spoken language — and
//! lasts 5 s after it. A caller who already hung up (`call_hangup`) gets nothing more.

use std::sync::Arc;

use serde_json::json;

use super::commands::{hangup_command, Command, MAX_SPEAK_CHARS, VOICE_CY, VOICE_EN};
use super::events::{GatherEnded, TelnyxEvent};
use super::runtime::TelnyxCalls;
use super::state::{ClientState, MAX_CLIENT_STATE_LEN};
use crate::domain::{CallerId, Language, Provider};
use crate::messages::SpokenMessage;
use crate::providers::CallAction;
use crate::service::CallDecision;
use crate::state::AppState;
use crate::urgent::{self, Pressed, LISTEN_SECONDS};

fn voice(language: Language) -> (&'static str, &'static str) {
    match language {
        Language::En => (VOICE_EN, "en-GB"),
        Language::Cy => (VOICE_CY, "cy-GB"),
    }
}

fn payload(message: &SpokenMessage) -> String {
    message.text.chars().take(MAX_SPEAK_CHARS).collect()
}

/// The plan on `call.initiated` for a refusal with an offer; `None` otherwise (or when the
/// texts are too long to carry, when the plain refusal is used instead).
pub fn plan_decision(decision: &CallDecision) -> Option<Vec<Command>> {
    let (CallAction::Refuse { messages }, Some(offer)) = (&decision.action, &decision.urgent_offer)
    else {
        return None;
    };
    let all: Vec<SpokenMessage> = messages.iter().chain(offer).cloned().collect();
    let state = ClientState::OfferRefuse { messages: all };
    if state.encode().len() > MAX_CLIENT_STATE_LEN {
        tracing::warn!("refusal and safeguarding offer too long for client_state: no offer");
        return None;
    }
    Some(vec![Command::new("answer", json!({}), Some(&state))])
}

/// The next command for a list of texts still to say.
fn say_next(texts: &[SpokenMessage], digit: char) -> Vec<Command> {
    match texts {
        [] => vec![hangup_command()],
        [last] => {
            let (voice, language) = voice(last.language);
            vec![Command::new(
                "gather_using_speak",
                json!({
                    "payload": payload(last),
                    "payload_type": "text",
                    "voice": voice,
                    "language": language,
                    "valid_digits": digit.to_string(),
                    "minimum_digits": 1,
                    "maximum_digits": 1,
                    "timeout_millis": LISTEN_SECONDS * 1000,
                }),
                Some(&ClientState::Offering),
            )]
        }
        [next, rest @ ..] => {
            let (voice, language) = voice(next.language);
            vec![Command::new(
                "speak",
                json!({
                    "payload": payload(next),
                    "payload_type": "text",
                    "voice": voice,
                    "language": language,
                }),
                Some(&ClientState::OfferSpeaking {
                    remaining: rest.to_vec(),
                }),
            )]
        }
    }
}

/// The plan for `call.answered` / `call.speak.ended` carrying an offer state; `None` for any
/// other state (the plain flow in `commands` handles it). `digit` is `[decision.urgent] digit`.
pub fn plan_event(event: &TelnyxEvent, digit: char) -> Option<Vec<Command>> {
    match event {
        TelnyxEvent::CallAnswered(a) => match &a.client_state {
            Some(ClientState::OfferRefuse { messages }) => Some(say_next(messages, digit)),
            _ => None,
        },
        TelnyxEvent::SpeakEnded(s) => match &s.client_state {
            Some(ClientState::OfferSpeaking { remaining }) => {
                if s.status.as_deref() == Some("call_hangup") {
                    Some(vec![])
                } else {
                    Some(say_next(remaining, digit))
                }
            }
            _ => None,
        },
        _ => None,
    }
}

/// The commands for `call.gather.ended`: `transfer` for the urgent digit, else `hangup`.
pub async fn gather_ended(
    state: &AppState,
    calls: &Arc<TelnyxCalls>,
    g: &GatherEnded,
) -> Vec<Command> {
    if g.client_state != Some(ClientState::Offering) {
        return vec![];
    }
    if matches!(
        g.status.as_deref(),
        Some("call_hangup" | "cancelled" | "cancelled_amd")
    ) {
        return vec![];
    }
    let cfg = &state.config.decision.urgent;
    match (urgent::pressed(state, g.digits.as_deref()), &cfg.telnyx) {
        (Pressed::Urgent, Some(target)) if cfg.enabled => {
            let caller = calls
                .known_call(&g.call_control_id)
                .await
                .map(|k| k.caller)
                .unwrap_or(CallerId::Unrecognised);
            urgent::route(
                state,
                Provider::Telnyx,
                &g.call_control_id,
                &caller,
                target.as_str(),
            )
            .await;
            vec![Command::new(
                "transfer",
                json!({"to": target.as_str()}),
                Some(&ClientState::Continue),
            )]
        }
        _ => {
            urgent::declined(Provider::Telnyx, &g.call_control_id);
            vec![hangup_command()]
        }
    }
}
