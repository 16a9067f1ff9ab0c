//! The safeguarding route's storage (SPEC §14): a refused call that took the urgent route is
//! relabelled in the decision log and in live calls. It stays uncounted (`counted` is left as
//! the refusal wrote it: 0), so it never uses up an allowance.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{CallId, Provider};

#[async_trait]
pub trait UrgentStore: Send + Sync + 'static {
    /// Mark the call `(provider, call_id)` as put through on the urgent route: outcome `route`,
    /// reason `urgent_route`, in the decision log and in live calls. Returns whether the call
    /// is in the decision log (only calls under an arrangement are). Idempotent.
    async fn record_urgent_route(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<bool, StoreError>;
}
