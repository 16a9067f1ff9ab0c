//! `[decision]` and `[cache]`.

use std::time::Duration;

use crate::fields::{Fields, Required};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupFailurePolicy {
    Continue,
    Refuse,
}

impl LookupFailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            LookupFailurePolicy::Continue => "continue",
            LookupFailurePolicy::Refuse => "refuse",
        }
    }
}

#[derive(Clone, Debug)]
pub struct DecisionConfig {
    pub lookup_timeout: Duration,
    pub on_lookup_failure: LookupFailurePolicy,
    /// `[decision.urgent]`: the safeguarding route (src/urgent/config.rs).
    pub urgent: crate::urgent::UrgentConfig,
}

#[derive(Clone, Debug)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub max_entries: u64,
}

/// `[decision]` without `urgent`, which is read once the platforms are known.
pub(super) fn read_decision(t: &mut Fields<'_>) -> Option<(Duration, LookupFailurePolicy)> {
    let lookup_timeout_ms = t.uint("lookup_timeout_ms", Required, 1..=60_000);
    let on_lookup_failure = t.choice(
        "on_lookup_failure",
        Required,
        &[
            ("continue", LookupFailurePolicy::Continue),
            ("refuse", LookupFailurePolicy::Refuse),
        ],
        "must be \"continue\" or \"refuse\"",
    );
    Some((
        Duration::from_millis(lookup_timeout_ms?),
        on_lookup_failure?,
    ))
}

pub(super) fn read_cache(t: &mut Fields<'_>) -> Option<CacheConfig> {
    let ttl_seconds = t.uint("ttl_seconds", Required, 0..=86_400);
    let max_entries = t.uint("max_entries", Required, 1..=100_000_000);
    Some(CacheConfig {
        ttl: Duration::from_secs(ttl_seconds?),
        max_entries: max_entries?,
    })
}
