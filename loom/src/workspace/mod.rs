//! Workspace: a shared notebook for a team of agents — notes, not transcripts.
//!
//! The members of a team (a researcher, a writer, a reviewer) keep what the others need as
//! **notes**: findings, questions, decisions, summaries, artifacts, plans. Each note has a
//! slug, an author, a title, a body, a kind, tags and a parent; only its author may change
//! it. Every call takes the [`UserId`]: each user has a workspace of their own, and no call
//! reads or writes across users.
//!
//! - **Tools.** [`Workspace::member`] seats an agent on the workspace under a name:
//!   [`Agent::workspace`](crate::Agent::workspace) gives it `note`, `read_note`, `list_notes`,
//!   `search_notes`, `update_note`, `archive_note` (and, opted in, `ask_question`,
//!   `answer_question`, `list_open_questions`) and a section of its prompt naming its
//!   teammates.
//! - **Versions.** Every change keeps the version before it ([`Workspace::versions`]). A
//!   change is made to a version: when the note has moved on, it is a
//!   [`Conflict`](WorkspaceError::Conflict) that changes nothing and tells the model to read
//!   the note again, so concurrent writers never lose an update.
//! - **Search.** By words (BM25 over each user's own notes), by meaning (the workspace's
//!   [`Embedder`]; the offline [`HashingEmbedder`] by default), or both fused by reciprocal
//!   rank ([`SearchMode`]).
//! - **Citation-aware retention.** `read_note` records which notes each run read
//!   ([`Workspace::cited`]); [`Workspace::attribute_outcome`] credits them with the run's
//!   outcome; [`Workspace::prune`] deletes the notes nobody cites — never one a live run read.
//!   A run is live from its first read until [`attribute_outcome`](Workspace::attribute_outcome)
//!   or [`end_run`](Workspace::end_run) ends it. The reads of an agent that runs inside
//!   another run (a team's member, an agent in a workflow's node) count for that enclosing run,
//!   whose id the caller has. Each `read_note` result also carries a top-level
//!   `"citations": [{"kind": "note", "id": slug, "title": ...}]`, which
//!   [`RunResult::citations`](crate::RunResult::citations) collects.
//! - **Backends** behind [`WorkspaceStore`]: [`InMemoryWorkspace`] (bounded), [`DiskWorkspace`]
//!   (Markdown files with frontmatter, human-readable and git-friendly), SQLite
//!   (`SqliteStore`, the file of the sessions and memory) and PostgreSQL (`PostgresStore`).
//! - **GDPR.** [`Workspace::export`] returns everything held for a user; [`Workspace::forget`]
//!   removes it.
//!
//! ```
//! use loomflow::prelude::*;
//! use loomflow::workspace::{NewNote, NoteEdit, Workspace};
//! use serde_json::json;
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let workspace = Workspace::in_memory();
//! let ann = UserId::new("ann")?;
//!
//! // A researcher agent writes a finding...
//! let model = ScriptedModel::new([
//!     ScriptedTurn::tool_call("note", json!({
//!         "title": "Competitor pricing",
//!         "body": "Acme charges $49 a seat; Globex $39.",
//!         "tags": ["pricing"],
//!     })),
//!     ScriptedTurn::text("Noted."),
//! ]);
//! let researcher = Agent::new("You research pricing.")
//!     .model(model)
//!     .workspace(&workspace.member("researcher").teammates(["writer"]));
//! assert!(researcher.instructions().contains("with `writer`"));
//! researcher.run("What do competitors charge?").user("ann").await?;
//!
//! // ...that anyone can search and read, and only its author can change.
//! let found = workspace.search(&ann, "how much do competitors charge per seat").await?;
//! assert_eq!(found[0].note.slug, "competitor-pricing");
//! let edit = NoteEdit::new().body("Acme charges $59 a seat since June.").expect_version(1);
//! assert!(workspace.update(&ann, "writer", "competitor-pricing", edit.clone()).await.is_err());
//! let note = workspace.update(&ann, "researcher", "competitor-pricing", edit.clone()).await?;
//! assert_eq!(note.version, 2);
//! // The same change again was made to version 1: a conflict.
//! let conflict = workspace.update(&ann, "researcher", "competitor-pricing", edit).await;
//! assert!(conflict.is_err_and(|e| e.is_conflict()));
//! assert_eq!(workspace.version(&ann, "competitor-pricing", 1).await?.body, "Acme charges $49 a seat; Globex $39.");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod disk;
mod error;
mod frontmatter;
mod in_memory;
pub(crate) mod member;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod search;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
mod store;
mod tools;
mod types;

use std::path::PathBuf;
use std::sync::Arc;

use tracing::Instrument as _;

pub use disk::DiskWorkspace;
pub use error::WorkspaceError;
pub use in_memory::{InMemoryWorkspace, WorkspaceLimits};
pub use member::Member;
#[cfg(feature = "postgres")]
pub use postgres::WORKSPACE_POSTGRES_SCHEMA_VERSION;
#[cfg(feature = "sqlite")]
pub use sqlite::WORKSPACE_SQLITE_SCHEMA_VERSION;
pub use store::{
    MAX_BODY_BYTES, MAX_MEMBER_LEN, MAX_SLUG_LEN, MAX_TAG_CHARS, MAX_TAGS, MAX_TITLE_CHARS, PrunePlan, WorkspaceStore,
    apply_edit, prune_plan, slugify, unique_slug, validate_member_name,
};
pub use types::{
    Attribution, Found, NewNote, Note, NoteEdit, NoteFilter, NoteKind, NoteRead, NoteVersion, PruneReport, PruneRule,
    RunReads, SearchMode, SearchQuery, WorkspaceData, WorkspaceExport,
};

use crate::error::{StoreError, StoreErrorKind};
use crate::id::{RunId, UserId};
use crate::memory::{Embedder, HashingEmbedder, Timestamp};

/// A user-partitioned workspace of notes over a [`WorkspaceStore`], with an [`Embedder`] for
/// search by meaning. Cheap to clone (shared).
#[derive(Clone)]
pub struct Workspace {
    store: Arc<dyn WorkspaceStore>,
    embedder: Option<Arc<dyn Embedder>>,
    vectors: Arc<search::VectorCache>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("store", &self.store.backend())
            .field("embedder", &self.embedder.as_ref().map(|e| e.name().to_owned()))
            .finish()
    }
}

impl Workspace {
    /// A workspace over `store`, with the hashing embedder.
    pub fn new(store: impl WorkspaceStore) -> Self {
        Self::shared(Arc::new(store))
    }

    /// A workspace over a shared store, with the hashing embedder.
    pub fn shared(store: Arc<dyn WorkspaceStore>) -> Self {
        Self { store, embedder: Some(Arc::new(HashingEmbedder::default())), vectors: Arc::default() }
    }

    /// A bounded workspace in the process ([`InMemoryWorkspace`] with its default limits).
    pub fn in_memory() -> Self {
        Self::new(InMemoryWorkspace::new())
    }

    /// A workspace in Markdown files under `root` ([`DiskWorkspace`]).
    pub fn on_disk(root: impl Into<PathBuf>) -> Result<Self, WorkspaceError> {
        Ok(Self::new(DiskWorkspace::open(root)?))
    }

    /// Searches by meaning with `embedder` instead of the hashing one.
    #[must_use]
    pub fn embedder(mut self, embedder: impl Embedder) -> Self {
        self.embedder = Some(Arc::new(embedder));
        self.vectors = Arc::default();
        self
    }

    /// Searches by words only.
    #[must_use]
    pub fn without_embedder(mut self) -> Self {
        self.embedder = None;
        self.vectors = Arc::default();
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn WorkspaceStore> {
        &self.store
    }

    /// A seat on the workspace for the member `name`: give it to an agent with
    /// [`Agent::workspace`](crate::Agent::workspace). The name must be a valid member name
    /// ([`validate_member_name`]); [`Member::check`] (and every run of an agent given it) says
    /// when it is not.
    pub fn member(&self, name: &str) -> Member {
        Member::new(self.clone(), name)
    }

    /// The span of one workspace operation: `loom.workspace`, with the operation, the backend
    /// and the user.
    fn span(&self, op: &'static str, user: &UserId) -> tracing::Span {
        tracing::info_span!("loom.workspace", op, backend = self.store.backend(), user = %user)
    }

    /// Writes a note as `author`; its slug is made from the title, unique among the user's
    /// notes.
    pub async fn write(&self, user: &UserId, author: &str, note: NewNote) -> Result<Note, WorkspaceError> {
        if let Some(parent) = note.parent.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            let parent = self.resolve(user, parent).await?;
            return self.write_checked(user, author, NewNote { parent: Some(parent), ..note }).await;
        }
        self.write_checked(user, author, note).await
    }

    async fn write_checked(&self, user: &UserId, author: &str, note: NewNote) -> Result<Note, WorkspaceError> {
        let note = store::prepare_note(author, note, Timestamp::now())?;
        self.store.create(user, note).instrument(self.span("write", user)).await
    }

    /// The slug of the user's note named `slug_or_title`: a slug, or a note's title (any
    /// case), or text whose slug is a note's. [`NotFound`](WorkspaceError::NotFound), with
    /// the closest slug, when none is.
    pub async fn resolve(&self, user: &UserId, slug_or_title: &str) -> Result<String, WorkspaceError> {
        let wanted = slug_or_title.trim().trim_matches(['`', '"', '\'']).trim();
        if store::is_slug(wanted) && self.store.get(user, wanted).await?.is_some() {
            return Ok(wanted.to_owned());
        }
        let mut notes = self.store.list(user).await?;
        notes.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.slug.cmp(&b.slug)));
        if let Some(note) = notes.iter().find(|n| n.title.eq_ignore_ascii_case(wanted)) {
            return Ok(note.slug.clone());
        }
        let slug = slugify(wanted);
        if let Some(note) = notes.iter().find(|n| n.slug == slug) {
            return Ok(note.slug.clone());
        }
        let suggestion = loomflow_graph::suggest::did_you_mean(wanted, notes.iter().map(|n| n.slug.as_str()))
            .or_else(|| loomflow_graph::suggest::did_you_mean(&slug, notes.iter().map(|n| n.slug.as_str())))
            .map(str::to_owned);
        Err(WorkspaceError::NotFound { slug: crate::tool::args::shown(wanted).into_owned(), suggestion })
    }

    /// The user's note `slug_or_title` ([`resolve`](Self::resolve)), without recording a read.
    pub async fn get(&self, user: &UserId, slug_or_title: &str) -> Result<Note, WorkspaceError> {
        let slug = self.resolve(user, slug_or_title).await?;
        self.store
            .get(user, &slug)
            .instrument(self.span("get", user))
            .await?
            .ok_or(WorkspaceError::NotFound { slug, suggestion: None })
    }

    /// The user's note `slug_or_title`, read for `run`: the read is recorded, and the note is
    /// safe from [`prune`](Self::prune) while the run is live.
    pub async fn read(&self, user: &UserId, slug_or_title: &str, run: RunId) -> Result<Note, WorkspaceError> {
        let slug = self.resolve(user, slug_or_title).await?;
        self.store
            .read(user, &slug, run, Timestamp::now())
            .instrument(self.span("read", user))
            .await?
            .ok_or(WorkspaceError::NotFound { slug, suggestion: None })
    }

    /// The user's notes that `filter` passes, most recently changed first.
    pub async fn list(&self, user: &UserId, filter: NoteFilter) -> Result<Vec<Note>, WorkspaceError> {
        let mut notes: Vec<Note> = self
            .store
            .list(user)
            .instrument(self.span("list", user))
            .await?
            .into_iter()
            .filter(|n| filter.matches(n))
            .collect();
        notes.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.slug.cmp(&b.slug)));
        if let Some(limit) = filter.limit {
            notes.truncate(limit);
        }
        Ok(notes)
    }

    /// The user's notes that match `query` (a text, or a [`SearchQuery`] with a mode and a
    /// filter), best first. Ranked in the process over the user's own notes, the same on every
    /// backend; each note is embedded once per version.
    pub async fn search(&self, user: &UserId, query: impl Into<SearchQuery>) -> Result<Vec<Found>, WorkspaceError> {
        Ok(self.search_with_mode(user, &query.into()).await?.1)
    }

    /// [`search`](Self::search), with the mode it ranked by (a hybrid search without an
    /// embedder ranks by words).
    pub(crate) async fn search_with_mode(
        &self,
        user: &UserId,
        query: &SearchQuery,
    ) -> Result<(SearchMode, Vec<Found>), WorkspaceError> {
        async {
            let notes = self.store.list(user).await?;
            search::search(user, notes, query, self.embedder.as_deref(), &self.vectors).await
        }
        .instrument(self.span("search", user))
        .await
    }

    /// Changes the user's note `slug` as `author`, who must have written it; the version
    /// before is kept. With [`NoteEdit::expect_version`], a note that has moved on is a
    /// [`Conflict`](WorkspaceError::Conflict) and nothing changes.
    pub async fn update(
        &self,
        user: &UserId,
        author: &str,
        slug: &str,
        edit: NoteEdit,
    ) -> Result<Note, WorkspaceError> {
        validate_member_name(author)?;
        self.store.update(user, slug, author, &edit, Timestamp::now()).instrument(self.span("update", user)).await
    }

    /// Archives the user's note `slug` as `author`, who must have written it: it leaves lists
    /// and searches, and can still be read.
    pub async fn archive(&self, user: &UserId, author: &str, slug: &str) -> Result<Note, WorkspaceError> {
        self.store.set_archived(user, slug, author, Some(Timestamp::now())).instrument(self.span("archive", user)).await
    }

    /// Brings an archived note back, as `author`, who must have written it.
    pub async fn restore(&self, user: &UserId, author: &str, slug: &str) -> Result<Note, WorkspaceError> {
        self.store.set_archived(user, slug, author, None).instrument(self.span("restore", user)).await
    }

    /// Asks the team a question, as `author`: a note of kind [`NoteKind::Question`].
    pub async fn ask(&self, user: &UserId, author: &str, question: NewNote) -> Result<Note, WorkspaceError> {
        self.write(user, author, question.kind(NoteKind::Question)).await
    }

    /// Answers the user's question `slug` as `author`: the answer is a note that follows the
    /// question up, and the question is marked answered (by its first answerer). Returns the
    /// question and the answer.
    pub async fn answer(
        &self,
        user: &UserId,
        author: &str,
        slug: &str,
        answer: impl Into<String>,
    ) -> Result<(Note, Note), WorkspaceError> {
        let question = self.get(user, slug).await?;
        if question.kind != NoteKind::Question {
            return Err(WorkspaceError::NotAQuestion { slug: question.slug, kind: question.kind });
        }
        let title: String = format!("Answer: {}", question.title).chars().take(MAX_TITLE_CHARS).collect();
        let new =
            NewNote::new(title, answer).kind(NoteKind::Finding).tags(question.tags.clone()).parent(&question.slug);
        let note = self.write_checked(user, author, new).await?;
        let question = self
            .store
            .mark_answered(user, &question.slug, author, note.created_at)
            .instrument(self.span("answer", user))
            .await?;
        Ok((question, note))
    }

    /// The user's questions nobody answered yet, most recent first.
    pub async fn open_questions(&self, user: &UserId) -> Result<Vec<Note>, WorkspaceError> {
        self.list(user, NoteFilter::new().kind(NoteKind::Question).unanswered()).await
    }

    /// Every kept version of the user's note `slug`, oldest first, the current one last.
    pub async fn versions(&self, user: &UserId, slug: &str) -> Result<Vec<NoteVersion>, WorkspaceError> {
        let note = self.store.get(user, slug).await?.ok_or_else(|| WorkspaceError::NotFound {
            slug: crate::tool::args::shown(slug).into_owned(),
            suggestion: None,
        })?;
        let mut versions = self.store.history(user, slug).instrument(self.span("versions", user)).await?;
        versions.retain(|v| v.version < note.version);
        versions.push(note.as_version());
        Ok(versions)
    }

    /// Version `version` of the user's note `slug`.
    pub async fn version(&self, user: &UserId, slug: &str, version: u64) -> Result<NoteVersion, WorkspaceError> {
        let versions = self.versions(user, slug).await?;
        let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
        versions.into_iter().find(|v| v.version == version).ok_or_else(|| WorkspaceError::NoVersion {
            slug: slug.to_owned(),
            version,
            available: store::available(&numbers),
        })
    }

    /// The notes `run` read (its reads are recorded by `read_note` and [`read`](Self::read)),
    /// in the order it first read them; empty for a run that read none.
    pub async fn cited(&self, user: &UserId, run: RunId) -> Result<Vec<NoteRead>, WorkspaceError> {
        let runs = self.store.runs(user).instrument(self.span("cited", user)).await?;
        Ok(runs.into_iter().find(|r| r.run == run).map(|r| r.notes).unwrap_or_default())
    }

    /// The user's runs that read notes, with what they read and whether they are live.
    pub async fn runs(&self, user: &UserId) -> Result<Vec<RunReads>, WorkspaceError> {
        self.store.runs(user).instrument(self.span("runs", user)).await
    }

    /// Attributes an outcome to notes: those a run read (a [`RunId`]; the run ends, so its
    /// outcome counts once), or those named (slugs). Each counts one citation more, one
    /// success more when `success`, and was last cited now. Returns how many notes were
    /// credited.
    pub async fn attribute_outcome(
        &self,
        user: &UserId,
        notes: impl Into<Attribution>,
        success: bool,
    ) -> Result<usize, WorkspaceError> {
        self.store
            .attribute(user, &notes.into(), success, Timestamp::now())
            .instrument(self.span("attribute_outcome", user))
            .await
    }

    /// Ends `run` without an outcome: the notes it read are no longer kept for it. Whether it
    /// was live.
    pub async fn end_run(&self, user: &UserId, run: RunId) -> Result<bool, WorkspaceError> {
        self.store.end_run(user, run, Timestamp::now()).instrument(self.span("end_run", user)).await
    }

    /// Deletes the user's notes that `rule` selects and no live run read, trims the versions
    /// of those that stay, and drops the records of ended runs, in one step.
    pub async fn prune(&self, user: &UserId, rule: PruneRule) -> Result<PruneReport, WorkspaceError> {
        self.store.prune(user, &rule, Timestamp::now()).instrument(self.span("prune", user)).await
    }

    /// Everything the workspace holds for the user: notes, their earlier versions, and the
    /// runs that read them.
    pub async fn export(&self, user: &UserId) -> Result<WorkspaceExport, WorkspaceError> {
        let data = self.store.export(user).instrument(self.span("export", user)).await?;
        Ok(WorkspaceExport { user: user.clone(), exported_at: Timestamp::now(), data })
    }

    /// Removes everything the workspace holds for the user — notes, versions, runs, and the
    /// vectors kept for search. Returns how many notes there were. Other users are untouched.
    pub async fn forget(&self, user: &UserId) -> Result<usize, WorkspaceError> {
        self.vectors.forget(user);
        self.store.forget(user).instrument(self.span("forget", user)).await
    }
}

/// The workspace's notes as a user's personal data: what
/// [`Memory::cover`](crate::memory::Memory::cover) takes so that a GDPR export lists a user's
/// notes (with their versions and reads) and a forget of everything removes them.
#[async_trait::async_trait]
impl crate::memory::PersonalData for Workspace {
    fn name(&self) -> &str {
        "workspace"
    }

    async fn export(&self, user: &UserId) -> Result<serde_json::Value, StoreError> {
        let export = Workspace::export(self, user).await.map_err(store_error)?;
        serde_json::to_value(export).map_err(|e| StoreError::new(StoreErrorKind::Other, "workspace", e.to_string()))
    }

    async fn forget(&self, user: &UserId) -> Result<usize, StoreError> {
        Workspace::forget(self, user).await.map_err(store_error)
    }
}

fn store_error(e: WorkspaceError) -> StoreError {
    match e {
        WorkspaceError::Store(e) => e,
        other => StoreError::new(StoreErrorKind::Other, "workspace", other.to_string()),
    }
}
