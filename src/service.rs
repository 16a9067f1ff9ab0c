//! The provider-neutral decision service: caller → cached lookup → race-free counting in the
//! store → the pure engine → what the platform should do and say. Providers call
//! [`App::decide_call`]; the API and the CLI call [`App::evaluate`] (no side effects).

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cache::Lookup;
use crate::config::{LookupFailurePolicy, RefuseBlockedWith};
use crate::domain::{Arrangement, ArrangementId, CallerId, LanguageSetting, PhoneNumber, StaffId};
use crate::engine::{self, Decision, Outcome, Reason};
use crate::messages::{self, MessageContext, MessageKey, SpokenMessage};
use crate::providers::{CallAction, CallEvent};
use crate::state::App;
use crate::store::{DecisionSource, NewCall, StoreError};

/// The decision for one call and what the platform is to do.
#[derive(Clone, Debug)]
pub struct CallDecision {
    pub decision: Decision,
    pub action: CallAction,
    pub source: DecisionSource,
    /// The language setting refusals for this caller are spoken in.
    pub language: LanguageSetting,
    /// The safeguarding offer to speak after the refusal, then listen for the digit
    /// (SPEC §14, src/urgent); `None` when nothing is offered.
    pub urgent_offer: Option<Vec<SpokenMessage>>,
}

/// `POST /api/v1/evaluate` and `fairline evaluate` (SPEC §6).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    #[schema(value_type = String, example = "refuse")]
    pub outcome: Outcome,
    #[schema(value_type = String, example = "outside_window")]
    pub reason: Reason,
    #[schema(value_type = Option<String>)]
    pub arrangement_id: Option<ArrangementId>,
    #[schema(value_type = Option<String>)]
    pub route_to: Option<StaffId>,
    pub next_permitted_at: Option<DateTime<Utc>>,
    pub calls_counted: u32,
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<SpokenMessage>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl App {
    /// Decide for an incoming call and record it when it is under an arrangement. Never fails:
    /// a store failure falls back to a stale cache entry or `decision.on_lookup_failure`.
    pub async fn decide_call(&self, event: &CallEvent) -> CallDecision {
        let started = Instant::now();
        let now = self.clock.now();
        let result = self.decide_inner(event, now, started).await;
        // For the console's Live calls: queued, never awaited (src/console/live.rs).
        self.live_calls.decided(
            event.provider,
            &event.call_id,
            &event.caller,
            &result.decision,
            now,
        );
        crate::telemetry::call_metrics().decided(
            event.provider,
            &result.decision,
            started.elapsed(),
        );
        tracing::info!(
            provider = event.provider.as_str(),
            call_id = %event.call_id,
            outcome = result.decision.outcome.as_str(),
            reason = result.decision.reason.as_str(),
            source = result.source.as_str(),
            arrangement_id = result.decision.arrangement_id.as_ref().map(|a| a.as_str()),
            "call decided"
        );
        result
    }

    /// `started`: when the decision began (the cache judges its entry's freshness by it).
    async fn decide_inner(
        &self,
        event: &CallEvent,
        now: DateTime<Utc>,
        started: Instant,
    ) -> CallDecision {
        let number = match &event.caller {
            CallerId::Number(n) => n.clone(),
            other => {
                let decision = engine::decide(other, None, 0, now, &self.calendar);
                return self.finish(decision, None, DecisionSource::Store, now);
            }
        };
        let (arrangements, source) = match self.cache.lookup_at(&number, started).await {
            Lookup::Found {
                arrangements,
                source,
            } => (arrangements, source),
            Lookup::Failed => return self.lookup_failed(&number, now),
        };
        let Some(arrangement) = arrangements.iter().find(|a| a.in_force_at(now)).cloned() else {
            let decision = engine::decide(&event.caller, None, 0, now, &self.calendar);
            return self.finish(decision, None, source, now);
        };

        if source == DecisionSource::StaleCache {
            // The store is failing: decide from the cached arrangement without counting.
            metrics::counter!("fairline_lookup_failures_total", "fallback" => "stale_cache")
                .increment(1);
            let decision =
                engine::decide(&event.caller, Some(&arrangement), 0, now, &self.calendar);
            return self.finish(decision, Some(&arrangement), source, now);
        }

        self.decide_counted(event, number, arrangement, source, now)
            .await
    }

    /// Nothing cached and the store failing: `decision.on_lookup_failure` decides.
    fn lookup_failed(&self, number: &PhoneNumber, now: DateTime<Utc>) -> CallDecision {
        metrics::counter!("fairline_lookup_failures_total", "fallback" => "failure_default")
            .increment(1);
        tracing::warn!(
            caller = %number.masked(),
            "arrangement lookup failed with nothing cached: applying on_lookup_failure"
        );
        let outcome = match self.config.decision.on_lookup_failure {
            LookupFailurePolicy::Continue => Outcome::Continue,
            LookupFailurePolicy::Refuse => Outcome::Refuse,
        };
        let decision = Decision::plain(outcome, Reason::LookupFailed);
        self.finish(decision, None, DecisionSource::FailureDefault, now)
    }

    /// A caller under an arrangement in force: count the call in the period and record it
    /// in one store transaction; a failed write decides without counting.
    async fn decide_counted(
        &self,
        event: &CallEvent,
        number: PhoneNumber,
        arrangement: Arrangement,
        source: DecisionSource,
        now: DateTime<Utc>,
    ) -> CallDecision {
        let period = arrangement
            .allowance
            .map(|a| engine::period_bounds(a.per, now, self.calendar.tz));
        let call = NewCall {
            provider: event.provider,
            call_id: event.call_id.clone(),
            number: number.clone(),
            arrangement: arrangement.clone(),
            at: now,
            source,
            period,
        };
        let caller = event.caller.clone();
        let for_engine = arrangement.clone();
        let calendar = self.calendar.clone();
        let decide = Box::new(move |counted: u32| {
            engine::decide(&caller, Some(&for_engine), counted, now, &calendar)
        });
        let write_budget = self.config.decision.lookup_timeout * 4;
        match tokio::time::timeout(write_budget, self.store.decide_and_record(call, decide)).await {
            Ok(Ok(recorded)) => self.finish(recorded.decision, Some(&arrangement), source, now),
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_string(),
                };
                metrics::counter!("fairline_lookup_failures_total", "fallback" => "uncounted")
                    .increment(1);
                tracing::error!(
                    call_id = %event.call_id,
                    error = %why,
                    "could not record the call: deciding without counting"
                );
                let decision =
                    engine::decide(&event.caller, Some(&arrangement), 0, now, &self.calendar);
                self.finish(
                    decision,
                    Some(&arrangement),
                    DecisionSource::StaleCache,
                    now,
                )
            }
        }
    }

    fn finish(
        &self,
        decision: Decision,
        arrangement: Option<&Arrangement>,
        source: DecisionSource,
        _now: DateTime<Utc>,
    ) -> CallDecision {
        let language = arrangement
            .map(|a| a.language)
            .unwrap_or(self.config.organisation.language);
        let action = self.action_for(&decision, arrangement, language);
        let urgent_offer = self.urgent_offer(&action, arrangement, language);
        CallDecision {
            decision,
            action,
            source,
            language,
            urgent_offer,
        }
    }

    fn action_for(
        &self,
        decision: &Decision,
        arrangement: Option<&Arrangement>,
        language: LanguageSetting,
    ) -> CallAction {
        match decision.outcome {
            Outcome::Continue => CallAction::Continue,
            Outcome::Route => {
                let staff = decision
                    .route_to
                    .as_ref()
                    .and_then(|id| self.config.staff_member(id));
                match staff {
                    Some(staff) => CallAction::Route {
                        staff: staff.clone(),
                        max_call_minutes: arrangement.and_then(|a| a.max_call_minutes),
                    },
                    None => {
                        tracing::error!(
                            "designated staff member is not in [[staff]]: continuing into the normal flow"
                        );
                        CallAction::Continue
                    }
                }
            }
            Outcome::Refuse => {
                if decision.reason == Reason::Blocked
                    && self.config.twilio.refuse_blocked_with == RefuseBlockedWith::Reject
                {
                    return CallAction::Reject;
                }
                CallAction::Refuse {
                    messages: self.spoken(decision, arrangement, language),
                }
            }
        }
    }

    /// The texts a refusal speaks.
    pub fn spoken(
        &self,
        decision: &Decision,
        arrangement: Option<&Arrangement>,
        language: LanguageSetting,
    ) -> Vec<SpokenMessage> {
        if decision.outcome != Outcome::Refuse {
            return Vec::new();
        }
        let Some(key) = messages::message_key(decision) else {
            return Vec::new();
        };
        self.render(key, arrangement, language, decision.next_permitted_at)
    }

    pub fn render(
        &self,
        key: MessageKey,
        arrangement: Option<&Arrangement>,
        language: LanguageSetting,
        next_permitted_at: Option<DateTime<Utc>>,
    ) -> Vec<SpokenMessage> {
        let ctx = MessageContext {
            organisation: &self.config.organisation.name,
            tz: self.calendar.tz,
            windows: arrangement.map(|a| a.windows.as_slice()).unwrap_or(&[]),
            allowance: arrangement.and_then(|a| a.allowance),
            next_permitted_at,
        };
        self.messages.render(key, language, &ctx)
    }

    /// What a caller hears when the designated member of staff did not answer.
    pub async fn staff_unavailable(&self, caller: &CallerId) -> Vec<SpokenMessage> {
        let now = self.clock.now();
        let arrangement = match caller {
            CallerId::Number(n) => match self.cache.lookup(n).await {
                Lookup::Found { arrangements, .. } => {
                    arrangements.iter().find(|a| a.in_force_at(now)).cloned()
                }
                Lookup::Failed => None,
            },
            _ => None,
        };
        let language = arrangement
            .as_ref()
            .map(|a| a.language)
            .unwrap_or(self.config.organisation.language);
        self.render(
            MessageKey::StaffUnavailable,
            arrangement.as_ref(),
            language,
            None,
        )
    }

    /// The decision for a caller at an instant, from the store, without side effects.
    pub async fn evaluate(
        &self,
        caller: &CallerId,
        at: DateTime<Utc>,
    ) -> Result<Evaluation, EvaluateError> {
        let arrangement = match caller {
            CallerId::Number(n) => self
                .store
                .arrangements_for_number(n)
                .await?
                .into_iter()
                .find(|a| a.in_force_at(at)),
            _ => None,
        };
        let calls_counted = match &arrangement {
            Some(a) => {
                let per = a
                    .allowance
                    .map(|al| al.per)
                    .unwrap_or(crate::domain::AllowancePeriod::Day);
                let (from, to) = engine::period_bounds(per, at, self.calendar.tz);
                self.store.count_calls(&a.id, from, to).await?
            }
            None => 0,
        };
        let decision = engine::decide(
            caller,
            arrangement.as_ref(),
            calls_counted,
            at,
            &self.calendar,
        );
        let language = arrangement
            .as_ref()
            .map(|a| a.language)
            .unwrap_or(self.config.organisation.language);
        let mut spoken = self.spoken(&decision, arrangement.as_ref(), language);
        let action = self.action_for(&decision, arrangement.as_ref(), language);
        if let Some(offer) = self.urgent_offer(&action, arrangement.as_ref(), language) {
            spoken.extend(offer);
        }
        Ok(Evaluation {
            outcome: decision.outcome,
            reason: decision.reason,
            arrangement_id: decision.arrangement_id.clone(),
            route_to: decision.route_to.clone(),
            next_permitted_at: match decision.outcome {
                Outcome::Refuse => decision.next_permitted_at,
                _ => None,
            },
            calls_counted,
            messages: spoken,
        })
    }
}
