//! Sessions: conversations that continue across runs.
//!
//! Runs with the same `(UserId, SessionId)` continue one conversation: a run loads the
//! session's history before its first model call and appends its own messages when it
//! finishes. Every [`SessionStore`] method takes the user, so one user can never read or
//! change another user's history, even with the same session id.

mod memory;

pub use memory::InMemorySessionStore;

use crate::error::StoreError;
use crate::id::{SessionId, UserId};
use crate::model::{Message, Role};

/// Where conversation histories live.
///
/// [`InMemorySessionStore`] is the default; durable stores keep histories across processes.
/// Implementations must keep users apart: `load(alice, s)` never returns what
/// `append(bob, s, ..)` stored.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The session's history, oldest first; empty for a session never seen.
    ///
    /// With `limit`, at most the last `limit` messages, cut so that the history starts at a
    /// user message (a tool result is never separated from the call it answers).
    async fn load(&self, user: &UserId, session: &SessionId, limit: Option<usize>) -> Result<Vec<Message>, StoreError>;

    /// Appends messages to the session's history.
    async fn append(&self, user: &UserId, session: &SessionId, messages: &[Message]) -> Result<(), StoreError>;

    /// Deletes the session's history; returns whether there was one.
    async fn clear(&self, user: &UserId, session: &SessionId) -> Result<bool, StoreError>;

    /// The user's sessions, in no particular order.
    async fn sessions(&self, user: &UserId) -> Result<Vec<SessionId>, StoreError>;
}

/// The start index of the last `limit` messages of `history`, moved forward to the first user
/// message so a window never begins with a tool result or an orphaned assistant turn.
pub fn window_start(history: &[Message], limit: Option<usize>) -> usize {
    let Some(limit) = limit else { return 0 };
    let mut start = history.len().saturating_sub(limit);
    while start < history.len() && history[start].role() != Role::User {
        start += 1;
    }
    start
}
