//! What can go wrong in a workspace: told to the model when a tool call fails, returned to
//! the caller of the API.

use crate::error::{StoreError, StoreErrorKind};

/// A workspace operation that did not happen. The messages are written for the model that
/// reads them as a tool's error: each says what was wrong and what would work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// No note has the slug (or the title) given.
    #[error("no note `{slug}`{}; `list_notes` or `search_notes` shows the notes there are", did_you_mean(.suggestion))]
    NotFound {
        /// The slug (or title) asked for.
        slug: String,
        /// A slug close to it, if one is.
        suggestion: Option<String>,
    },
    /// The note changed since the version the writer read: its update would overwrite a
    /// change it has not seen.
    #[error(
        "note `{slug}` changed since you read it: it is at version {current}, and your change was made to version \
         {expected}. Read it again with `read_note`, apply your change to the current text, and update it with \
         version {current}"
    )]
    Conflict {
        /// The note.
        slug: String,
        /// The version the writer expected.
        expected: u64,
        /// The note's version now.
        current: u64,
    },
    /// A member tried to change a note another member wrote.
    #[error(
        "note `{slug}` belongs to `{author}`; you (`{member}`) can change only your own notes. Write a note of \
         your own with `parent` set to `{slug}` to add to it, or ask `{author}` a question"
    )]
    NotAuthor {
        /// The note.
        slug: String,
        /// Its author.
        author: String,
        /// The member who tried.
        member: String,
    },
    /// A version of a note that is not kept (never written, or pruned).
    #[error("note `{slug}` has no version {version}; its versions are {available}")]
    NoVersion {
        /// The note.
        slug: String,
        /// The version asked for.
        version: u64,
        /// The versions there are, as a range or list.
        available: String,
    },
    /// An argument that cannot be used: an empty title, an unknown kind, a malformed name.
    #[error("{0}")]
    Invalid(String),
    /// The note is not a question, so it cannot be answered.
    #[error("note `{slug}` is a {kind}, not a question; only questions (from `ask_question`) can be answered")]
    NotAQuestion {
        /// The note.
        slug: String,
        /// Its kind.
        kind: super::NoteKind,
    },
    /// Search by meaning was asked of a workspace without an embedder.
    #[error("search by meaning needs an embedder, and this workspace has none; search with mode `bm25` instead")]
    NoEmbedder,
    /// The user's workspace holds as many notes as it may.
    #[error("the workspace is full ({limit} notes); archive and prune notes, or raise the limit")]
    Full {
        /// The limit.
        limit: usize,
    },
    /// The backing store failed (unreachable, corrupt, a newer schema).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

impl WorkspaceError {
    /// An [`Invalid`](Self::Invalid) error with this message.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// Whether trying again later may succeed without a change (the store was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(e) if e.kind() == StoreErrorKind::Unavailable)
    }

    /// Whether this is a version conflict: re-read the note and apply the change again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

impl From<WorkspaceError> for crate::Error {
    /// A store error: the store's own, or one of kind `NotFound`, `Conflict` or `Other` with
    /// the workspace error as its source.
    fn from(e: WorkspaceError) -> Self {
        let kind = match &e {
            WorkspaceError::Store(_) => None,
            WorkspaceError::NotFound { .. } | WorkspaceError::NoVersion { .. } => Some(StoreErrorKind::NotFound),
            WorkspaceError::Conflict { .. } => Some(StoreErrorKind::Conflict),
            _ => Some(StoreErrorKind::Other),
        };
        match (kind, e) {
            (None, WorkspaceError::Store(s)) => Self::Store(s),
            (kind, e) => Self::Store(
                StoreError::new(kind.unwrap_or(StoreErrorKind::Other), "workspace", e.to_string()).with_source(e),
            ),
        }
    }
}
