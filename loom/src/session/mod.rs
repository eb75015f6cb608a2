//! Sessions: conversations that continue across runs.
//!
//! Runs with the same `(UserId, SessionId)` continue one conversation: a run loads the
//! session's history before its first model call and appends its own messages when it
//! finishes. Every [`SessionStore`] method takes the user, so one user can never read or
//! change another user's history, even with the same session id.

mod journal;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub(crate) use journal::Writer;
pub use journal::{
    Checkpoint, CorruptRecord, JOURNAL_VERSION, Journal, JournalEntry, JournalRead, RawRecord, RunInfo, RunKey,
    RunStatus, decode_records,
};
pub use memory::InMemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{POSTGRES_SCHEMA_VERSION, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SQLITE_SCHEMA_VERSION, SqliteStore};

use crate::error::StoreError;
use crate::id::{RunId, SessionId, UserId};
use crate::model::{Message, Role};

/// Where conversation histories live.
///
/// [`InMemoryStore`] is the default; durable stores keep histories across processes.
/// Implementations must keep users apart: `load(alice, s)` never returns what
/// `append(bob, s, ..)` stored.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The session's history, oldest first; empty for a session never seen.
    ///
    /// With `limit`, at most the last `limit` messages, cut so that the history starts at a
    /// user message (a tool result is never separated from the call it answers).
    async fn load(&self, user: &UserId, session: &SessionId, limit: Option<usize>) -> Result<Vec<Message>, StoreError>;

    /// Appends the messages of `run` to the session's history. Appending the same run twice
    /// (a resumed run finishing again) adds nothing the second time.
    async fn append(
        &self,
        user: &UserId,
        session: &SessionId,
        run: RunId,
        messages: &[Message],
    ) -> Result<(), StoreError>;

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
