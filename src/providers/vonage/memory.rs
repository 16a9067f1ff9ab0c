//! The callers of recent Vonage calls, by conversation.
//!
//! The event Vonage sends for a `connect` leg (the member of staff being rung) does not carry
//! the caller's number: its `from` is our own number. To speak `staff_unavailable` in the
//! caller's arrangement language, the answer webhook remembers the caller of each
//! conversation here, in memory, for a few hours. When another instance answered the call (or
//! after a restart) the caller is unknown and the organisation's language is used.

use std::time::Duration;

use moka::future::Cache;

use crate::domain::CallerId;

/// How long a conversation's caller is remembered: longer than the longest `limit` (2 h).
pub const CALLER_TTL: Duration = Duration::from_secs(3 * 60 * 60);
/// At most this many conversations are remembered.
pub const CALLER_CAPACITY: u64 = 100_000;

/// Conversation uuid → caller.
#[derive(Clone)]
pub struct RecentCallers {
    callers: Cache<String, CallerId>,
}

impl std::fmt::Debug for RecentCallers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentCallers")
            .field("entries", &self.callers.entry_count())
            .finish()
    }
}

impl Default for RecentCallers {
    fn default() -> Self {
        RecentCallers {
            callers: Cache::builder()
                .max_capacity(CALLER_CAPACITY)
                .time_to_live(CALLER_TTL)
                .build(),
        }
    }
}

impl RecentCallers {
    pub async fn remember(&self, conversation_uuid: &str, caller: CallerId) {
        self.callers
            .insert(conversation_uuid.to_owned(), caller)
            .await;
    }

    pub async fn caller(&self, conversation_uuid: &str) -> Option<CallerId> {
        self.callers.get(conversation_uuid).await
    }
}
