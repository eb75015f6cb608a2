//! What a workspace holds: notes and their versions, the notes each run read, and what
//! pruning and exports report.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::WorkspaceError;
use crate::id::{RunId, UserId};
use crate::memory::Timestamp;

/// What a note is: the kinds a team writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoteKind {
    /// Something found out: a fact, a measurement, a source read.
    #[default]
    Finding,
    /// Something a member needs to know from another ([`Workspace::ask`](super::Workspace::ask)).
    Question,
    /// Something decided, and why.
    Decision,
    /// A digest of other notes.
    Summary,
    /// A piece of the work's output: a draft, a table, code.
    Artifact,
    /// How the work will go.
    Plan,
    /// Anything else.
    Note,
}

impl NoteKind {
    /// Every kind.
    pub const ALL: [Self; 7] =
        [Self::Finding, Self::Question, Self::Decision, Self::Summary, Self::Artifact, Self::Plan, Self::Note];

    /// The kind as stored and as the tools' schemas write it: `finding`, `question` ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finding => "finding",
            Self::Question => "question",
            Self::Decision => "decision",
            Self::Summary => "summary",
            Self::Artifact => "artifact",
            Self::Plan => "plan",
            Self::Note => "note",
        }
    }

    /// The kind a word means, leniently: any case, a plural, and a few synonyms models use
    /// (`fact`, `result`, `todo`, `draft` ...).
    ///
    /// ```
    /// use loomflow::workspace::NoteKind;
    /// assert_eq!(NoteKind::from_word("Findings"), Some(NoteKind::Finding));
    /// assert_eq!(NoteKind::from_word("draft"), Some(NoteKind::Artifact));
    /// assert_eq!(NoteKind::from_word("poem"), None);
    /// ```
    pub fn from_word(word: &str) -> Option<Self> {
        let word = word.trim().to_lowercase();
        let word = word.strip_suffix('s').filter(|w| w.len() > 2).unwrap_or(&word);
        Some(match word {
            "finding" | "fact" | "result" | "observation" | "source" | "research" => Self::Finding,
            "question" | "ask" | "query" | "open question" => Self::Question,
            "decision" | "decided" | "choice" | "resolution" => Self::Decision,
            "summary" | "summarie" | "digest" | "overview" | "report" => Self::Summary,
            "artifact" | "artefact" | "draft" | "output" | "code" | "table" | "deliverable" => Self::Artifact,
            "plan" | "todo" | "step" | "roadmap" => Self::Plan,
            "note" | "memo" | "other" | "misc" | "general" => Self::Note,
            _ => return None,
        })
    }
}

impl fmt::Display for NoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for NoteKind {
    type Err = WorkspaceError;

    /// [`NoteKind::from_word`], with an error that lists the kinds.
    fn from_str(s: &str) -> Result<Self, WorkspaceError> {
        Self::from_word(s).ok_or_else(|| {
            WorkspaceError::invalid(format!(
                "unknown kind `{}`; use one of {}",
                crate::tool::args::shown(s.trim()),
                Self::ALL.map(Self::as_str).join(", ")
            ))
        })
    }
}

/// A note: what one member of a team wrote down for the others.
///
/// Its content (title, body, kind, tags) is versioned: every change keeps the version before
/// it ([`Workspace::versions`](super::Workspace::versions)). Archiving, answering and being
/// cited change its metadata, not its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Note {
    /// Its name in the workspace, unique per user: lowercase words joined by `-`, made from
    /// the title.
    pub slug: String,
    /// The member who wrote it; only they may change it.
    pub author: String,
    /// A line that says what it is.
    pub title: String,
    /// The note itself (Markdown).
    pub body: String,
    /// What it is.
    pub kind: NoteKind,
    /// Words to find it by.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The note it follows up or answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Its version: 1 when written, one more at every change of its content.
    pub version: u64,
    /// When it was written.
    pub created_at: Timestamp,
    /// When its content last changed.
    pub updated_at: Timestamp,
    /// When it was archived (hidden from lists and searches, still readable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<Timestamp>,
    /// For a question: the member who answered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    /// For a question: when it was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    /// How many finished runs that read it had an outcome attributed
    /// ([`Workspace::attribute_outcome`](super::Workspace::attribute_outcome)).
    #[serde(default)]
    pub cited_count: u64,
    /// How many of those outcomes were successes.
    #[serde(default)]
    pub success_count: u64,
    /// When an outcome was last attributed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cited_at: Option<Timestamp>,
}

impl Note {
    /// Whether it is archived.
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }

    /// Whether it is a question that was answered.
    pub fn is_answered(&self) -> bool {
        self.answered_by.is_some()
    }

    /// Its content as of now, as a version.
    pub fn as_version(&self) -> NoteVersion {
        NoteVersion {
            slug: self.slug.clone(),
            version: self.version,
            author: self.author.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            kind: self.kind,
            tags: self.tags.clone(),
            parent: self.parent.clone(),
            written_at: self.updated_at,
        }
    }

    /// The text searches rank: the title, the tags and the body.
    pub(crate) fn search_text(&self) -> String {
        format!("{}\n{}\n{}", self.title, self.tags.join(" "), self.body)
    }
}

/// One version of a note's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NoteVersion {
    /// The note.
    pub slug: String,
    /// Which version, from 1.
    pub version: u64,
    /// The note's author.
    pub author: String,
    /// The title then.
    pub title: String,
    /// The body then.
    pub body: String,
    /// The kind then.
    pub kind: NoteKind,
    /// The tags then.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The parent then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// When this version was written.
    pub written_at: Timestamp,
}

/// A note to write ([`Workspace::write`](super::Workspace::write)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NewNote {
    /// Its title (its slug is made from it).
    pub title: String,
    /// Its body.
    pub body: String,
    /// Its kind ([`NoteKind::Finding`] unless set).
    pub kind: NoteKind,
    /// Its tags.
    pub tags: Vec<String>,
    /// The note it follows up, by slug.
    pub parent: Option<String>,
}

impl NewNote {
    /// A finding with this title and body.
    pub fn new(title: impl Into<String>, body: impl Into<String>) -> Self {
        Self { title: title.into(), body: body.into(), ..Self::default() }
    }

    /// Of this kind.
    #[must_use]
    pub fn kind(mut self, kind: NoteKind) -> Self {
        self.kind = kind;
        self
    }

    /// With these tags.
    #[must_use]
    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Following up the note `slug`.
    #[must_use]
    pub fn parent(mut self, slug: impl Into<String>) -> Self {
        self.parent = Some(slug.into());
        self
    }
}

/// A change to a note's content ([`Workspace::update`](super::Workspace::update)); what is
/// not set stays as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NoteEdit {
    /// The version the change was made to: when the note is at another, the update is a
    /// [`Conflict`](WorkspaceError::Conflict) and changes nothing. `None`: whatever version
    /// the note is at.
    pub expected_version: Option<u64>,
    /// A new title (the slug stays).
    pub title: Option<String>,
    /// A new body.
    pub body: Option<String>,
    /// A new kind.
    pub kind: Option<NoteKind>,
    /// New tags (all of them).
    pub tags: Option<Vec<String>>,
}

impl NoteEdit {
    /// A change that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Made to version `version`: the update happens only if the note is still at it.
    #[must_use]
    pub fn expect_version(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// With this title.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// With this body.
    #[must_use]
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Of this kind.
    #[must_use]
    pub fn kind(mut self, kind: NoteKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// With these tags.
    #[must_use]
    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.body.is_none() && self.kind.is_none() && self.tags.is_none()
    }
}

/// Which notes a listing shows ([`Workspace::list`](super::Workspace::list)); by default every
/// note that is not archived, most recently changed first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NoteFilter {
    /// Only the notes of this author.
    pub author: Option<String>,
    /// Only the notes of this kind.
    pub kind: Option<NoteKind>,
    /// Only the notes with this tag (any case).
    pub tag: Option<String>,
    /// Only the notes that follow up this one.
    pub parent: Option<String>,
    /// Archived notes too.
    pub include_archived: bool,
    /// Only questions nobody answered yet.
    pub unanswered: bool,
    /// At most this many (`None`: all).
    pub limit: Option<usize>,
}

impl NoteFilter {
    /// Every note that is not archived.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only `author`'s.
    #[must_use]
    pub fn author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }

    /// Only of `kind`.
    #[must_use]
    pub fn kind(mut self, kind: NoteKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Only with `tag`.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Only the follow-ups of `slug`.
    #[must_use]
    pub fn parent(mut self, slug: impl Into<String>) -> Self {
        self.parent = Some(slug.into());
        self
    }

    /// Archived notes too.
    #[must_use]
    pub fn include_archived(mut self) -> Self {
        self.include_archived = true;
        self
    }

    /// Only unanswered questions.
    #[must_use]
    pub fn unanswered(mut self) -> Self {
        self.unanswered = true;
        self
    }

    /// At most `n`.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Whether `note` passes.
    pub fn matches(&self, note: &Note) -> bool {
        (self.include_archived || !note.is_archived())
            && self.author.as_ref().is_none_or(|a| *a == note.author)
            && self.kind.is_none_or(|k| k == note.kind)
            && self.tag.as_ref().is_none_or(|t| note.tags.iter().any(|n| n.eq_ignore_ascii_case(t.trim())))
            && self.parent.as_ref().is_none_or(|p| note.parent.as_ref() == Some(p))
            && (!self.unanswered || (note.kind == NoteKind::Question && !note.is_answered()))
    }
}

/// How a search ranks notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SearchMode {
    /// By words: BM25 over each user's own notes.
    Bm25,
    /// By meaning: cosine similarity of the workspace's embedder's vectors.
    Semantic,
    /// Both, fused by reciprocal rank (by words alone when the workspace has no embedder).
    #[default]
    Hybrid,
}

impl SearchMode {
    /// The mode as the tool's schema writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bm25 => "bm25",
            Self::Semantic => "semantic",
            Self::Hybrid => "hybrid",
        }
    }

    /// The mode a word means (any case; `words`, `keyword`, `meaning`, `vector`, `both` too).
    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word.trim().to_lowercase().as_str() {
            "bm25" | "words" | "word" | "keyword" | "keywords" | "lexical" | "text" => Self::Bm25,
            "semantic" | "meaning" | "vector" | "vectors" | "embedding" | "dense" => Self::Semantic,
            "hybrid" | "both" | "auto" | "rrf" | "" => Self::Hybrid,
            _ => return None,
        })
    }
}

/// A search of a user's notes ([`Workspace::search`](super::Workspace::search)).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct SearchQuery {
    /// What to look for.
    pub text: String,
    /// How to rank.
    pub mode: SearchMode,
    /// Which notes to consider.
    pub filter: NoteFilter,
    /// At most this many results (10 unless set).
    pub limit: usize,
}

impl SearchQuery {
    /// A hybrid search for `text`, of the notes that are not archived, ten results at most.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), mode: SearchMode::Hybrid, filter: NoteFilter::new(), limit: 10 }
    }

    /// Ranked by `mode`.
    #[must_use]
    pub fn mode(mut self, mode: SearchMode) -> Self {
        self.mode = mode;
        self
    }

    /// Of the notes `filter` passes (its `limit` is left aside: the query's own counts).
    #[must_use]
    pub fn filter(mut self, filter: NoteFilter) -> Self {
        self.filter = filter;
        self
    }

    /// At most `n` results.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }
}

impl From<&str> for SearchQuery {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for SearchQuery {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

/// A note a search found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Found {
    /// The note.
    pub note: Note,
    /// Its score: BM25 for a search by words, cosine similarity by meaning, the fused
    /// reciprocal-rank score for a hybrid one. Higher is better.
    pub score: f64,
    /// Its place in the ranking by words, from 1, if it has one.
    pub word_rank: Option<usize>,
    /// Its place in the ranking by meaning, from 1, if it has one.
    pub meaning_rank: Option<usize>,
}

/// A note a run read, and how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NoteRead {
    /// The note.
    pub slug: String,
    /// How many times the run read it.
    pub reads: u64,
    /// When the run first read it.
    pub first_read_at: Timestamp,
    /// When the run last read it.
    pub last_read_at: Timestamp,
}

/// The notes one run read, and whether the run is still live.
///
/// A run is live from its first `read_note` until
/// [`attribute_outcome`](super::Workspace::attribute_outcome) or
/// [`end_run`](super::Workspace::end_run) ends it; while it is live,
/// [`prune`](super::Workspace::prune) deletes none of the notes it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunReads {
    /// The run.
    pub run: RunId,
    /// When it first read a note.
    pub started_at: Timestamp,
    /// When it was ended; `None` while it is live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The notes it read, by slug.
    pub notes: Vec<NoteRead>,
}

impl RunReads {
    /// Whether the run is live (not ended).
    pub fn is_live(&self) -> bool {
        self.ended_at.is_none()
    }
}

/// Which notes an outcome is attributed to
/// ([`Workspace::attribute_outcome`](super::Workspace::attribute_outcome)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribution {
    /// The notes a run read; the run ends, so its outcome counts once.
    Run(RunId),
    /// These notes, by slug.
    Notes(Vec<String>),
}

impl From<RunId> for Attribution {
    fn from(run: RunId) -> Self {
        Self::Run(run)
    }
}

impl From<Vec<String>> for Attribution {
    fn from(slugs: Vec<String>) -> Self {
        Self::Notes(slugs)
    }
}

impl From<&[&str]> for Attribution {
    fn from(slugs: &[&str]) -> Self {
        Self::Notes(slugs.iter().map(|s| (*s).to_owned()).collect())
    }
}

impl<const N: usize> From<[&str; N]> for Attribution {
    fn from(slugs: [&str; N]) -> Self {
        Self::Notes(slugs.iter().map(|s| (*s).to_owned()).collect())
    }
}

/// Which notes [`prune`](super::Workspace::prune) deletes.
///
/// A note is deleted only when all of these hold:
/// - its kind is not one of [`keep_kinds`](Self::keep_kinds);
/// - it was cited fewer than [`min_cited`](Self::min_cited) times;
/// - with [`older_than`](Self::older_than), it was not cited nor changed for at least that long;
/// - no live run read it (see [`RunReads`]).
///
/// With [`keep_last_versions`](Self::keep_last_versions), the notes that stay keep only that
/// many earlier versions.
///
/// ```
/// use std::time::Duration;
/// use loomflow::workspace::{NoteKind, PruneRule};
///
/// let rule = PruneRule::new()
///     .keep_kinds([NoteKind::Decision, NoteKind::Summary])
///     .min_cited(1)
///     .older_than(Duration::from_secs(30 * 24 * 3_600))
///     .keep_last_versions(5);
/// assert_eq!(rule.min_cited, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneRule {
    /// Notes of these kinds are never deleted.
    pub keep_kinds: Vec<NoteKind>,
    /// Notes cited at least this often are kept (1 by default: any note an outcome was
    /// attributed to stays).
    pub min_cited: u64,
    /// Only notes neither cited nor changed for this long are deleted (`None`: any age).
    pub older_than: Option<Duration>,
    /// The notes that stay keep at most this many earlier versions (`None`: all).
    pub keep_last_versions: Option<u64>,
}

impl Default for PruneRule {
    fn default() -> Self {
        Self { keep_kinds: Vec::new(), min_cited: 1, older_than: None, keep_last_versions: None }
    }
}

impl PruneRule {
    /// Deletes every note never cited that no live run read (then narrow it down).
    pub fn new() -> Self {
        Self::default()
    }

    /// Never deletes notes of these kinds.
    #[must_use]
    pub fn keep_kinds(mut self, kinds: impl IntoIterator<Item = NoteKind>) -> Self {
        self.keep_kinds = kinds.into_iter().collect();
        self
    }

    /// Keeps notes cited at least `n` times.
    #[must_use]
    pub fn min_cited(mut self, n: u64) -> Self {
        self.min_cited = n;
        self
    }

    /// Deletes only notes neither cited nor changed for `age`.
    #[must_use]
    pub fn older_than(mut self, age: Duration) -> Self {
        self.older_than = Some(age);
        self
    }

    /// Keeps at most `n` earlier versions of each note that stays.
    #[must_use]
    pub fn keep_last_versions(mut self, n: u64) -> Self {
        self.keep_last_versions = Some(n);
        self
    }

    /// Whether the rule deletes `note` at `now`, leaving aside the live runs.
    pub fn selects(&self, note: &Note, now: Timestamp) -> bool {
        if self.keep_kinds.contains(&note.kind) || note.cited_count >= self.min_cited {
            return false;
        }
        match self.older_than {
            None => true,
            Some(age) => {
                let since = note.last_cited_at.unwrap_or(note.updated_at).max(note.updated_at);
                let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
                now.as_millis().saturating_sub(since.as_millis()) >= age
            }
        }
    }
}

/// What a [`prune`](super::Workspace::prune) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// Notes deleted (with all their versions).
    pub notes_deleted: usize,
    /// Earlier versions deleted: those of the deleted notes, and those past
    /// [`keep_last_versions`](PruneRule::keep_last_versions).
    pub versions_deleted: usize,
    /// Notes that stay.
    pub notes_kept: usize,
    /// Of those, notes the rule would have deleted but a live run read.
    pub kept_for_live_runs: usize,
    /// Records of ended runs dropped: they protect nothing, and their outcomes are counted in
    /// the notes.
    pub runs_cleared: usize,
}

/// Everything a store holds for one user.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkspaceData {
    /// The notes, by slug.
    pub notes: Vec<Note>,
    /// The earlier versions of the notes, by slug then version.
    pub versions: Vec<NoteVersion>,
    /// The runs that read notes, with what they read.
    pub runs: Vec<RunReads>,
}

/// Everything the workspace holds for one user: what
/// [`Workspace::export`](super::Workspace::export) returns (GDPR access and portability).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkspaceExport {
    /// The user.
    pub user: UserId,
    /// When it was made.
    pub exported_at: Timestamp,
    /// Notes, versions, runs.
    #[serde(flatten)]
    pub data: WorkspaceData,
}
