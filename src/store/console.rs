//! Storage for the staff console (SPEC §12): signed-in sessions and the calls in progress.
//! Both live in the shared store so that any instance serves any request and every instance's
//! calls show on every instance's Live calls page.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::config::Role;
use crate::domain::{ArrangementId, CallId, PhoneNumber, Provider, StaffId};
use crate::engine::{Outcome, Reason};

/// A signed-in console session. The browser holds a random id; the store holds its SHA-256
/// (`id_hash`, lowercase hex), so a copy of the table does not let anyone sign in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id_hash: String,
    /// Put in every form of this session and checked on every POST.
    pub csrf_token: String,
    /// What records say the person is called (the token's name, or the ID token's name).
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A call in progress that an instance decided (not a log: deleted at the final status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveCall {
    pub provider: Provider,
    pub call_id: CallId,
    pub started_at: DateTime<Utc>,
    /// The caller's number; `None` when withheld or not a number.
    pub caller: Option<PhoneNumber>,
    pub outcome: Outcome,
    pub reason: Reason,
    pub route_to: Option<StaffId>,
    pub arrangement_id: Option<ArrangementId>,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync + 'static {
    async fn create_session(&self, session: &ConsoleSession) -> Result<(), StoreError>;

    async fn get_session(&self, id_hash: &str) -> Result<Option<ConsoleSession>, StoreError>;

    /// Record activity on a session (restarts its idle timeout).
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;

    /// Delete sessions idle since before `idle_before` or created before `created_before`.
    async fn purge_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Insert calls in one statement; a call already there (a retried webhook) is kept as is.
    async fn insert_live_calls(&self, calls: &[LiveCall]) -> Result<(), StoreError>;

    /// `true` when the call was there.
    async fn delete_live_call(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<bool, StoreError>;

    async fn get_live_call(
        &self,
        provider: Provider,
        call_id: &CallId,
    ) -> Result<Option<LiveCall>, StoreError>;

    /// Calls that started at or after `since`, newest first (at most 1000).
    async fn list_live_calls(&self, since: DateTime<Utc>) -> Result<Vec<LiveCall>, StoreError>;

    /// Delete calls that started before `before`; returns how many.
    async fn purge_live_calls(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Remember an OpenID Connect sign-in under way.
    async fn create_login(&self, login: &PendingLogin) -> Result<(), StoreError>;

    /// Take (read and delete) the sign-in under way with this state hash, if there is one.
    async fn take_login(&self, state_hash: &str) -> Result<Option<PendingLogin>, StoreError>;
}

/// An OpenID Connect sign-in under way (between the redirect to the identity provider and
/// its redirect back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogin {
    /// SHA-256 (hex) of the `state` sent to the identity provider.
    pub state_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: DateTime<Utc>,
}
