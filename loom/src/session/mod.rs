//! Sessions: conversations that continue across runs.
//!
//! Runs with the same `(UserId, SessionId)` continue one conversation: a run loads the
//! session's history before its first model call and appends its own messages when it
//! finishes. Every [`SessionStore`] method takes the user, so one user can never read or
//! change another user's history, even with the same session id.
//!
//! A session may have sub-sessions, named `{session}/{name}`: the runs nested in a workflow
//! run keep their conversations there (see
//! [`ChildSessions`](crate::workflow::ChildSessions)). Clearing a session clears its
//! sub-sessions too.

mod journal;
mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod usage;
mod writer;

pub use journal::{
    Checkpoint, CorruptRecord, JOURNAL_VERSION, Journal, JournalEntry, JournalRead, RawRecord, Repair, RunInfo, RunKey,
    RunStatus, decode_records,
};
pub use memory::InMemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{POSTGRES_SCHEMA_VERSION, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SQLITE_SCHEMA_VERSION, SqliteStore};
pub(crate) use writer::{RunKind, Writer, run_to_resume};

use std::any::Any;
use std::sync::Arc;

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

    /// The session's history like [`load`](SessionStore::load), with where it starts in the
    /// session (`0` without a limit): a run records the position so that, resumed, it sees
    /// the same window. The default loads the whole history; stores override it to load only
    /// the window.
    async fn load_window(
        &self,
        user: &UserId,
        session: &SessionId,
        limit: Option<usize>,
    ) -> Result<Window, StoreError> {
        let mut messages = self.load(user, session, None).await?;
        let start = window_start(&messages, limit);
        messages.drain(..start);
        Ok(Window { messages, start })
    }

    /// Erases the session and its sub-sessions (`{session}/...`) everywhere the store keeps
    /// them — history, runs, journal records and so checkpoints — at once (one transaction in
    /// the databases); returns whether there was anything.
    async fn clear(&self, user: &UserId, session: &SessionId) -> Result<bool, StoreError>;

    /// The user's sessions — those with messages and those with runs only (a run that crashed
    /// before its first answer) — each once, in no particular order.
    async fn sessions(&self, user: &UserId) -> Result<Vec<SessionId>, StoreError>;
}

/// An agent's session store. The built-in in-memory store is also kept by its type, so runs
/// call it directly instead of through a boxed future.
#[derive(Clone)]
pub(crate) struct Sessions {
    store: Arc<dyn SessionStore>,
    memory: Option<Arc<InMemoryStore>>,
}

impl Sessions {
    /// A store in memory of its own.
    pub(crate) fn in_memory() -> Self {
        let memory = Arc::new(InMemoryStore::new());
        Self { store: Arc::clone(&memory) as Arc<dyn SessionStore>, memory: Some(memory) }
    }

    /// `store`, recognised when it is the in-memory store.
    pub(crate) fn of<S: SessionStore>(store: Arc<S>) -> Self {
        let any: Arc<dyn Any + Send + Sync> = Arc::clone(&store) as _;
        Self { store, memory: any.downcast::<InMemoryStore>().ok() }
    }

    /// A store known only by its trait.
    pub(crate) fn dynamic(store: Arc<dyn SessionStore>) -> Self {
        Self { store, memory: None }
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The conversation a run starts from: `system`, then the session's history (at most
    /// `limit` messages of it), with room for `extra` more messages; and where in the session
    /// that history starts.
    pub(crate) async fn conversation(
        &self,
        user: &UserId,
        session: Option<&SessionId>,
        limit: Option<usize>,
        system: Option<&Message>,
        extra: usize,
    ) -> Result<(Vec<Message>, usize), StoreError> {
        // The system prompt, with room for `history` messages and the `extra` ones.
        let start = |history: usize| {
            let mut messages = Vec::with_capacity(usize::from(system.is_some()) + history + extra);
            messages.extend(system.cloned());
            messages
        };
        Ok(match (session, &self.memory) {
            (None, _) => (start(0), 0),
            (Some(session), Some(memory)) => memory.with_history(user, session, limit, |history, from| {
                let mut messages = start(history.len());
                messages.extend_from_slice(history);
                (messages, from)
            }),
            (Some(session), None) => {
                let window = self.store.load_window(user, session, limit).await?;
                let mut messages = start(window.messages.len());
                messages.extend(window.messages);
                (messages, window.start)
            }
        })
    }

    /// [`SessionStore::append`].
    pub(crate) async fn append(
        &self,
        user: &UserId,
        session: &SessionId,
        run: RunId,
        messages: &[Message],
    ) -> Result<(), StoreError> {
        match &self.memory {
            Some(memory) => {
                memory.append_now(user, session, run, messages);
                Ok(())
            }
            None => self.store.append(user, session, run, messages).await,
        }
    }
}

/// A window of a session's history: its messages and the position of the first one.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Window {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// The position of the first message in the session's history.
    pub start: usize,
}

/// Whether `candidate` is `session` or one of its sub-sessions (`{session}/...`).
pub(crate) fn in_session(session: &SessionId, candidate: &SessionId) -> bool {
    let (s, c) = (session.as_str(), candidate.as_str());
    c.strip_prefix(s).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
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
