//! `POST /webhooks/telnyx` (SPEC §8): verify, parse, deduplicate, answer 200 at once, then
//! drive the call with Call Control commands in a background task.
//!
//! * Inbound `call.initiated` → [`App::decide_call`](crate::state::App) →
//!   [`plan_call_initiated`] → commands.
//! * `call.answered` / `call.speak.ended` carrying our `client_state` → [`plan_event`] →
//!   commands.
//! * `call.hangup` → the final status is recorded for logged calls.
//! * Outgoing legs and every other event → nothing.
//!
//! Deduplication: on `data.id` (a bounded, ten-minute memory), and once per step of a call
//! (`call.initiated` once per call, `call.answered`/`call.speak.ended` once per call and
//! `client_state`), so neither a redelivery nor a stray repeat acts twice. Decisions themselves
//! are idempotent per `call_control_id` in the store. Command ids are derived from the event id,
//! so the same event delivered to a second instance (failover URL) sends the same `command_id`s
//! and Telnyx drops the repeats.
//!
//! A call is never left in silence because a command failed: after the client's retries, a
//! fallback is sent (see [`fallbacks`]), and the failure is logged and counted in
//! `fairline_webhook_failures_total{provider="telnyx"}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::commands::{hangup_command, plan_call_initiated, plan_event, Command};
use super::events::{CallInitiated, GatherEnded, Hangup, TelnyxEvent};
use super::runtime::{KnownCall, TelnyxCalls};
use super::signature::UnverifiedEvent;
use super::state::ClientState;
use crate::config::LookupFailurePolicy;
use crate::domain::{CallId, Provider};
use crate::providers::{CallAction, ProviderError};
use crate::state::AppState;

/// Telnyx's error code for "Call not answered yet".
const ERROR_NOT_ANSWERED: &str = "90034";

/// The Telnyx webhook route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/telnyx", post(telnyx_webhook))
}

/// `POST /webhooks/telnyx`.
pub async fn telnyx_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cfg = &state.config.telnyx;
    let unverified = UnverifiedEvent::from_headers(&headers, body);
    let verified = if cfg.verify_signatures {
        let Some(key) = cfg.public_key.as_ref() else {
            tracing::error!("telnyx.verify_signatures is on but no public key is configured");
            return (StatusCode::FORBIDDEN, "signature cannot be checked").into_response();
        };
        match unverified.verify(key, state.clock.now()) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "telnyx webhook refused: signature check failed");
                return (e.status(), "invalid signature").into_response();
            }
        }
    } else {
        unverified.skip_verification()
    };
    let event = match verified.parse() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "telnyx webhook refused: not a usable v2 event");
            return (e.status(), e.to_string()).into_response();
        }
    };
    if !state
        .telnyx_calls
        .first_time(&format!("event:{}", event.event_id()))
        .await
    {
        tracing::debug!(
            event_id = event.event_id(),
            event_type = event.event_type(),
            "duplicate telnyx event ignored"
        );
        return StatusCode::OK.into_response();
    }
    dispatch(&state, event).await;
    StatusCode::OK.into_response()
}

/// Start whatever the event needs in the background; returns at once.
async fn dispatch(state: &AppState, event: TelnyxEvent) {
    match &event {
        TelnyxEvent::CallInitiated(init) => call_initiated(state, init).await,
        TelnyxEvent::CallAnswered(_) | TelnyxEvent::SpeakEnded(_) => next_step(state, &event).await,
        TelnyxEvent::Hangup(h) => hung_up(state, h),
        TelnyxEvent::GatherEnded(g) => gather_ended(state, g).await,
        TelnyxEvent::Other { event_type, .. } => {
            tracing::debug!(event_type = %event_type, "telnyx event ignored");
        }
    }
}

/// A new incoming call: decide it (once per call) and run the first commands.
async fn call_initiated(state: &AppState, init: &CallInitiated) {
    let calls = state.telnyx_calls.clone();
    let Some(call) = init.to_call_event() else {
        tracing::debug!(call_id = %init.call_control_id, "outgoing leg: not decided");
        return;
    };
    if !calls
        .first_time(&format!("initiated:{}", call.call_id))
        .await
    {
        tracing::info!(call_id = %call.call_id, "repeated call.initiated ignored");
        return;
    }
    calls
        .remember_call(
            &call.call_id,
            KnownCall {
                caller: call.caller.clone(),
                started_at: init.occurred_at,
            },
        )
        .await;
    let state = state.clone();
    let event_id = init.event_id.clone();
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let decided = state.decide_call(&call).await;
        let plan = super::urgent::plan_decision(&decided).unwrap_or_else(|| {
            plan_call_initiated(&decided.action, &state.config.telnyx.continue_to)
        });
        let refused = matches!(
            decided.action,
            CallAction::Refuse { .. } | CallAction::Reject
        );
        let stage = Stage::Unanswered { refused };
        run_plan(&state, &calls, &call.call_id, &event_id, plan, stage).await;
    });
}

/// `call.answered` or `call.speak.ended`: the next step of the plan its client state carries
/// (once per call, event type and client state).
async fn next_step(state: &AppState, event: &TelnyxEvent) {
    let calls = state.telnyx_calls.clone();
    let plan = super::urgent::plan_event(event, state.config.decision.urgent.digit)
        .unwrap_or_else(|| plan_event(event));
    let (call_id, client_state) = match event {
        TelnyxEvent::CallAnswered(a) => (&a.call_control_id, &a.client_state),
        TelnyxEvent::SpeakEnded(s) => (&s.call_control_id, &s.client_state),
        _ => return,
    };
    if plan.is_empty() {
        tracing::debug!(
            call_id = %call_id,
            event_type = event.event_type(),
            "nothing to do for this event"
        );
        return;
    }
    let step = format!(
        "step:{call_id}:{}:{}",
        event.event_type(),
        client_state
            .as_ref()
            .map(ClientState::encode)
            .unwrap_or_default()
    );
    if !calls.first_time(&step).await {
        tracing::info!(
            call_id = %call_id,
            event_type = event.event_type(),
            "step already handled for this call: ignored"
        );
        return;
    }
    let state = state.clone();
    let call_id = call_id.clone();
    let event_id = event.event_id().to_owned();
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        run_plan(&state, &calls, &call_id, &event_id, plan, Stage::Answered).await;
    });
}

/// `call.hangup`: the live-call row goes; the final status and duration are recorded.
fn hung_up(state: &AppState, h: &Hangup) {
    crate::console::live::call_ended(state, Provider::Telnyx, &h.call_control_id);
    let calls = state.telnyx_calls.clone();
    let state = state.clone();
    let h = h.clone();
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let known = calls.known_call(&h.call_control_id).await;
        let duration = match (known.and_then(|k| k.started_at), h.occurred_at) {
            (Some(start), Some(end)) if end >= start => Some((end - start).num_seconds()),
            _ => None,
        };
        let status = h.hangup_cause.as_deref().unwrap_or("completed");
        match state
            .store
            .record_call_status(Provider::Telnyx, &h.call_control_id, status, duration)
            .await
        {
            Ok(logged) => tracing::debug!(call_id = %h.call_control_id, logged,
                status, "telnyx call ended"),
            Err(e) => tracing::warn!(call_id = %h.call_control_id, error = %e,
                "could not record the final status of a telnyx call"),
        }
    });
}

/// `call.gather.ended`: the key pressed after the safeguarding offer (once per call).
async fn gather_ended(state: &AppState, g: &GatherEnded) {
    let calls = state.telnyx_calls.clone();
    if !calls
        .first_time(&format!("gather:{}", g.call_control_id))
        .await
    {
        return;
    }
    let state = state.clone();
    let g = g.clone();
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let plan = super::urgent::gather_ended(&state, &calls, &g).await;
        run_plan(
            &state,
            &calls,
            &g.call_control_id,
            &g.event_id,
            plan,
            Stage::Answered,
        )
        .await;
    });
}

/// Where the call is when a command fails: decides the fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Still parked (the first command of a call). `refused`: the decision was to refuse.
    Unanswered { refused: bool },
    /// Answered by Fairline (speaking, hanging up).
    Answered,
}

/// What to try, in order, after `failed` could not be sent: the first that succeeds ends the
/// call's silence.
///
/// | failed | stage | fallbacks |
/// |---|---|---|
/// | `speak` | answered | `hangup` |
/// | `hangup` | answered | nothing more can be done |
/// | `answer` | refused | `reject`, then `hangup` (refused without the message) |
/// | `reject` | refused | `hangup` |
/// | `transfer` | not refused, `on_lookup_failure = continue` | `transfer` to `continue_to` (unless that was the failed one), then `reject`, `hangup` |
/// | `transfer` | not refused, `on_lookup_failure = refuse` | `reject`, then `hangup` |
///
/// A refused caller is never let through because a command failed.
pub fn fallbacks(
    failed: &Command,
    stage: Stage,
    policy: LookupFailurePolicy,
    continue_to: &str,
) -> Vec<Command> {
    let reject = || {
        Command::new(
            "reject",
            json!({"cause": "CALL_REJECTED"}),
            Some(&ClientState::Reject),
        )
    };
    match (stage, failed.action) {
        (_, "hangup") => vec![],
        (Stage::Answered, _) => vec![hangup_command()],
        (Stage::Unanswered { .. }, "reject") => vec![hangup_command()],
        (Stage::Unanswered { refused: true }, _) => vec![reject(), hangup_command()],
        (Stage::Unanswered { refused: false }, _) => {
            let mut out = Vec::new();
            let was_continue = failed.body.get("to").and_then(Value::as_str) == Some(continue_to);
            if policy == LookupFailurePolicy::Continue && !was_continue {
                out.push(Command::new(
                    "transfer",
                    json!({"to": continue_to}),
                    Some(&ClientState::Continue),
                ));
            }
            out.push(reject());
            out.push(hangup_command());
            out
        }
    }
}

/// A `command_id` derived from the event id and the command's place in the handling of that
/// event: the same event handled twice (e.g. on a failover instance) sends the same ids.
pub fn derived_command_id(event_id: &str, slot: &str) -> String {
    let digest = Sha256::digest(format!("fairline-telnyx|{event_id}|{slot}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn with_command_id(mut command: Command, id: String) -> Command {
    if let Some(body) = command.body.as_object_mut() {
        body.insert("command_id".into(), Value::String(id));
    }
    command
}

/// Whether an error says the call is over (nothing left to do).
fn call_ended(e: &ProviderError) -> bool {
    has_code(e, super::client::ERROR_CALL_ENDED)
}

fn has_code(e: &ProviderError, code: &str) -> bool {
    match e {
        ProviderError::Rejected {
            status: 422,
            detail,
        } => detail
            .split(';')
            .any(|part| part.split_whitespace().next() == Some(code)),
        _ => false,
    }
}

fn count_failure(action: &'static str) {
    metrics::counter!(
        "fairline_webhook_failures_total",
        "provider" => Provider::Telnyx.as_str(),
        "action" => action,
    )
    .increment(1);
}

/// Send a plan in order; on a failure, fall back so the caller is not left in silence.
async fn run_plan(
    state: &AppState,
    calls: &Arc<TelnyxCalls>,
    call_id: &CallId,
    event_id: &str,
    plan: Vec<Command>,
    stage: Stage,
) {
    let client = calls.client();
    for (i, command) in plan.into_iter().enumerate() {
        let command = with_command_id(command, derived_command_id(event_id, &format!("plan{i}")));
        let mut result = client.send_command(call_id, &command).await;

        // Telnyx documents `answer` as required before other commands on an incoming call; if a
        // transfer of the parked call is refused for that reason, answer and transfer again.
        if command.action == "transfer"
            && matches!(&result, Err(e) if has_code(e, ERROR_NOT_ANSWERED))
        {
            tracing::info!(call_id = %call_id, "transfer needs the call answered first: answering");
            let answer = with_command_id(
                Command::new("answer", json!({}), command.client_state().as_ref()),
                derived_command_id(event_id, &format!("plan{i}-answer")),
            );
            result = match client.send_command(call_id, &answer).await {
                Ok(()) => {
                    let again = with_command_id(
                        command.clone(),
                        derived_command_id(event_id, &format!("plan{i}-again")),
                    );
                    client.send_command(call_id, &again).await
                }
                Err(e) => Err(e),
            };
        }

        match result {
            Ok(()) => {}
            Err(e) if call_ended(&e) => {
                tracing::info!(call_id = %call_id, action = command.action,
                    "telnyx call already ended: nothing more to send");
                return;
            }
            Err(e) => {
                count_failure(command.action);
                tracing::error!(call_id = %call_id, action = command.action, error = %e,
                    "telnyx command failed after retries: falling back");
                fall_back(state, calls, call_id, event_id, &command, stage).await;
                return;
            }
        }
    }
}

async fn fall_back(
    state: &AppState,
    calls: &Arc<TelnyxCalls>,
    call_id: &CallId,
    event_id: &str,
    failed: &Command,
    stage: Stage,
) {
    let cfg = &state.config;
    let options = fallbacks(
        failed,
        stage,
        cfg.decision.on_lookup_failure,
        &cfg.telnyx.continue_to,
    );
    if options.is_empty() {
        tracing::error!(call_id = %call_id, action = failed.action,
            "no fallback left for the telnyx call (the application's first-command timeout applies)");
        return;
    }
    for (i, command) in options.into_iter().enumerate() {
        let command = with_command_id(
            command,
            derived_command_id(event_id, &format!("fallback{i}")),
        );
        match calls.client().send_command(call_id, &command).await {
            Ok(()) => {
                tracing::warn!(call_id = %call_id, failed = failed.action,
                    fallback = command.action, "telnyx fallback command sent");
                return;
            }
            Err(e) if call_ended(&e) => {
                tracing::info!(call_id = %call_id, "telnyx call already ended");
                return;
            }
            Err(e) => {
                count_failure(command.action);
                tracing::error!(call_id = %call_id, fallback = command.action, error = %e,
                    "telnyx fallback command failed");
            }
        }
    }
    tracing::error!(call_id = %call_id,
        "every fallback failed: the telnyx call may be left parked until the first-command timeout");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const CONTINUE_TO: &str = "sip:main@pbx.example.org";

    fn actions(cs: &[Command]) -> Vec<&str> {
        cs.iter().map(|c| c.action).collect()
    }

    fn transfer(to: &str) -> Command {
        Command::new("transfer", json!({"to": to}), None)
    }

    #[test]
    fn fallbacks_never_let_a_refused_caller_through() {
        let answer = Command::new("answer", json!({}), None);
        for policy in [LookupFailurePolicy::Continue, LookupFailurePolicy::Refuse] {
            let f = fallbacks(
                &answer,
                Stage::Unanswered { refused: true },
                policy,
                CONTINUE_TO,
            );
            assert_eq!(actions(&f), ["reject", "hangup"]);
            assert_eq!(f[0].body["cause"], "CALL_REJECTED");
        }
    }

    #[test]
    fn failed_staff_transfer_continues_or_rejects_per_policy() {
        let staff = transfer("sip:alice@pbx.example.org");
        let stage = Stage::Unanswered { refused: false };
        let f = fallbacks(&staff, stage, LookupFailurePolicy::Continue, CONTINUE_TO);
        assert_eq!(actions(&f), ["transfer", "reject", "hangup"]);
        assert_eq!(f[0].body["to"], CONTINUE_TO);
        let f = fallbacks(&staff, stage, LookupFailurePolicy::Refuse, CONTINUE_TO);
        assert_eq!(actions(&f), ["reject", "hangup"]);
        // The continue transfer itself failed: trying it again is pointless.
        let f = fallbacks(
            &transfer(CONTINUE_TO),
            stage,
            LookupFailurePolicy::Continue,
            CONTINUE_TO,
        );
        assert_eq!(actions(&f), ["reject", "hangup"]);
    }

    #[test]
    fn answered_calls_are_hung_up_and_a_failed_hangup_has_no_fallback() {
        let speak = Command::new("speak", json!({}), None);
        let f = fallbacks(
            &speak,
            Stage::Answered,
            LookupFailurePolicy::Continue,
            CONTINUE_TO,
        );
        assert_eq!(actions(&f), ["hangup"]);
        assert!(fallbacks(
            &hangup_command(),
            Stage::Answered,
            LookupFailurePolicy::Continue,
            CONTINUE_TO
        )
        .is_empty());
        let reject = Command::new("reject", json!({}), None);
        let f = fallbacks(
            &reject,
            Stage::Unanswered { refused: true },
            LookupFailurePolicy::Continue,
            CONTINUE_TO,
        );
        assert_eq!(actions(&f), ["hangup"]);
    }

    #[test]
    fn derived_command_ids_are_stable_uuids_and_differ_by_slot() {
        let a = derived_command_id("evt-1", "plan0");
        assert_eq!(a, derived_command_id("evt-1", "plan0"));
        assert_ne!(a, derived_command_id("evt-1", "fallback0"));
        assert_ne!(a, derived_command_id("evt-2", "plan0"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn call_ended_is_recognised_from_the_error_detail() {
        let ended = ProviderError::Rejected {
            status: 422,
            detail: "90018 This call is no longer active and can't receive commands.".into(),
        };
        assert!(call_ended(&ended));
        let other = ProviderError::Rejected {
            status: 422,
            detail: "90034 Call not answered yet".into(),
        };
        assert!(!call_ended(&other));
        assert!(has_code(&other, ERROR_NOT_ANSWERED));
        assert!(!call_ended(&ProviderError::Unreachable("x 90018".into())));
    }
}
