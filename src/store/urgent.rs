//! The safeguarding route's storage (SPEC §14): a refused call that took the urgent route is
//! relabelled in the decision log (live calls are rewritten through their own queue, see
//! `urgent::route`), and its `call.urgent_route` notification is queued in the notification
//! outbox that terminations use.

use async_trait::async_trait;

use super::terminations::NewNotification;
use super::StoreError;
use crate::domain::{CallId, Provider, TerminationId};

#[async_trait]
pub trait UrgentStore: Send + Sync + 'static {
    /// Mark the call `(provider, call_id)` as put through on the urgent route: outcome `route`,
    /// reason `urgent_route`, in the decision log. Returns whether the call is in the decision
    /// log (only calls under an arrangement are). Idempotent. The call stays uncounted.
    async fn record_urgent_route(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<bool, StoreError>;

    /// Queue a notification that belongs to no termination, under its own id (the outbox's
    /// `termination_id` column; migration 0006). Durable on return; a second call with the
    /// same id and event changes nothing.
    async fn queue_notification(
        &self,
        id: &TerminationId,
        notification: &NewNotification,
    ) -> Result<(), StoreError>;
}
