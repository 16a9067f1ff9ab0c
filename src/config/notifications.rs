//! `[notifications]` (where the §9 and §13 notifications go) and `[retention]`.

use super::lifecycle::{self, LifecycleConfig};
use crate::fields::{Fields, Required};

#[derive(Clone, Debug)]
pub struct NotificationsConfig {
    pub webhook_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RetentionConfig {
    pub decision_log_days: u32,
    pub termination_days: u32,
}

/// `[notifications]`: the webhook, and the §13 keys (signing, reminders).
pub(super) fn read_notifications(
    t: &mut Fields<'_>,
) -> (Option<NotificationsConfig>, Option<LifecycleConfig>) {
    let webhook_url = t.url("webhook_url", Required, true);
    let lifecycle = lifecycle::read_notifications(t);
    (
        webhook_url.map(|webhook_url| NotificationsConfig { webhook_url }),
        lifecycle,
    )
}

pub(super) fn read_retention(t: &mut Fields<'_>) -> Option<RetentionConfig> {
    let decision_log_days = t.uint("decision_log_days", Required, 1..=36_500);
    let termination_days = t.uint("termination_days", Required, 1..=36_500);
    Some(RetentionConfig {
        decision_log_days: u32::try_from(decision_log_days?).ok()?,
        termination_days: u32::try_from(termination_days?).ok()?,
    })
}
