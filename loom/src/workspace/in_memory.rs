//! A workspace in the process: bounded per user and in users, for tests, demos and single
//! processes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::error::WorkspaceError;
use super::store::{
    WorkspaceStore, answered, apply_edit, check_author, credited, live_slugs, prune_plan, unique_slug, versions_below,
};
use super::types::{
    Attribution, Note, NoteEdit, NoteRead, NoteVersion, PruneReport, PruneRule, RunReads, WorkspaceData,
};
use crate::id::{RunId, UserId};
use crate::memory::Timestamp;

/// How much an [`InMemoryWorkspace`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkspaceLimits {
    /// Users kept; past it the least recently used user's workspace is dropped.
    pub max_users: usize,
    /// A user unused for this long is dropped.
    pub idle_ttl: Duration,
    /// Notes per user; writing one more is a [`Full`](WorkspaceError::Full) error (notes are
    /// never dropped to make room).
    pub max_notes_per_user: usize,
    /// Earlier versions kept per note; past it the oldest is dropped.
    pub max_versions_per_note: usize,
    /// Runs whose reads are kept per user; past it the oldest ended run is dropped (the oldest
    /// run when none has ended).
    pub max_runs_per_user: usize,
}

impl Default for WorkspaceLimits {
    fn default() -> Self {
        Self {
            max_users: 100_000,
            idle_ttl: Duration::from_secs(24 * 3_600),
            max_notes_per_user: 10_000,
            max_versions_per_note: 100,
            max_runs_per_user: 10_000,
        }
    }
}

impl WorkspaceLimits {
    /// At most `n` users.
    #[must_use]
    pub fn max_users(mut self, n: usize) -> Self {
        self.max_users = n;
        self
    }

    /// Users idle longer than `ttl` are dropped.
    #[must_use]
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }

    /// At most `n` notes per user.
    #[must_use]
    pub fn max_notes_per_user(mut self, n: usize) -> Self {
        self.max_notes_per_user = n;
        self
    }

    /// At most `n` earlier versions per note.
    #[must_use]
    pub fn max_versions_per_note(mut self, n: usize) -> Self {
        self.max_versions_per_note = n;
        self
    }

    /// At most `n` runs' reads per user.
    #[must_use]
    pub fn max_runs_per_user(mut self, n: usize) -> Self {
        self.max_runs_per_user = n;
        self
    }
}

/// One user's workspace.
#[derive(Default)]
struct Book {
    notes: BTreeMap<String, Note>,
    /// The earlier versions of each note, by version.
    history: HashMap<String, BTreeMap<u64, NoteVersion>>,
    runs: BTreeMap<RunId, RunReads>,
}

impl Book {
    fn note_mut(&mut self, slug: &str) -> Result<&mut Note, WorkspaceError> {
        self.notes.get_mut(slug).ok_or_else(|| WorkspaceError::NotFound { slug: slug.to_owned(), suggestion: None })
    }
}

type Users = crate::bounded::PerUser<Book>;

/// A workspace kept in the process, bounded by [`WorkspaceLimits`]: at most `max_users`
/// users (the least recently used dropped first), users idle past `idle_ttl` dropped, per
/// user at most `max_notes_per_user` notes (one more is refused), `max_versions_per_note`
/// earlier versions per note and `max_runs_per_user` runs' reads (the oldest dropped).
pub struct InMemoryWorkspace {
    users: Mutex<Users>,
    limits: WorkspaceLimits,
}

impl std::fmt::Debug for InMemoryWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryWorkspace").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Default for InMemoryWorkspace {
    fn default() -> Self {
        Self::new()
    }
}

const BACKEND: &str = "in-memory";

impl InMemoryWorkspace {
    /// With the default limits.
    pub fn new() -> Self {
        Self::with_limits(WorkspaceLimits::default())
    }

    /// With these limits.
    pub fn with_limits(limits: WorkspaceLimits) -> Self {
        Self { users: Mutex::new(Users::default()), limits }
    }

    /// How many users it holds now.
    pub fn users(&self) -> usize {
        self.users.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Runs `f` on `user`'s workspace, creating it when `create`, after dropping idle and
    /// excess users; `None` when the user has none and `create` is off.
    fn with_user<T>(&self, user: &UserId, create: bool, f: impl FnOnce(&mut Book) -> T) -> Option<T> {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.with(user, create, self.limits.max_users, self.limits.idle_ttl, f)
    }

    fn not_found(slug: &str) -> WorkspaceError {
        WorkspaceError::NotFound { slug: slug.to_owned(), suggestion: None }
    }
}

#[async_trait::async_trait]
impl WorkspaceStore for InMemoryWorkspace {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, user: &UserId, mut note: Note) -> Result<Note, WorkspaceError> {
        let limit = self.limits.max_notes_per_user.max(1);
        self.with_user(user, true, |book| {
            if book.notes.len() >= limit {
                return Err(WorkspaceError::Full { limit });
            }
            note.slug = unique_slug(&note.slug, |s| book.notes.contains_key(s));
            book.history.remove(&note.slug);
            book.notes.insert(note.slug.clone(), note.clone());
            Ok(note)
        })
        .unwrap_or(Err(WorkspaceError::Full { limit }))
    }

    async fn get(&self, user: &UserId, slug: &str) -> Result<Option<Note>, WorkspaceError> {
        Ok(self.with_user(user, false, |book| book.notes.get(slug).cloned()).flatten())
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Note>, WorkspaceError> {
        Ok(self.with_user(user, false, |book| book.notes.values().cloned().collect()).unwrap_or_default())
    }

    async fn update(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        edit: &NoteEdit,
        now: Timestamp,
    ) -> Result<Note, WorkspaceError> {
        let max = self.limits.max_versions_per_note;
        self.with_user(user, false, |book| {
            let note = book.note_mut(slug)?;
            let next = apply_edit(note, author, edit, now)?;
            let before = std::mem::replace(note, next.clone()).as_version();
            let history = book.history.entry(slug.to_owned()).or_default();
            history.insert(before.version, before);
            while history.len() > max {
                history.pop_first();
            }
            Ok(next)
        })
        .unwrap_or_else(|| Err(Self::not_found(slug)))
    }

    async fn set_archived(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        at: Option<Timestamp>,
    ) -> Result<Note, WorkspaceError> {
        self.with_user(user, false, |book| {
            let note = book.note_mut(slug)?;
            check_author(note, author)?;
            note.archived_at = at;
            Ok(note.clone())
        })
        .unwrap_or_else(|| Err(Self::not_found(slug)))
    }

    async fn mark_answered(&self, user: &UserId, slug: &str, by: &str, at: Timestamp) -> Result<Note, WorkspaceError> {
        self.with_user(user, false, |book| {
            let note = book.note_mut(slug)?;
            *note = answered(note.clone(), by, at)?;
            Ok(note.clone())
        })
        .unwrap_or_else(|| Err(Self::not_found(slug)))
    }

    async fn history(&self, user: &UserId, slug: &str) -> Result<Vec<NoteVersion>, WorkspaceError> {
        Ok(self
            .with_user(user, false, |book| {
                book.history.get(slug).map(|h| h.values().cloned().collect()).unwrap_or_default()
            })
            .unwrap_or_default())
    }

    async fn read(&self, user: &UserId, slug: &str, run: RunId, at: Timestamp) -> Result<Option<Note>, WorkspaceError> {
        let max_runs = self.limits.max_runs_per_user.max(1);
        Ok(self
            .with_user(user, false, |book| {
                let note = book.notes.get(slug)?.clone();
                let record = book.runs.entry(run).or_insert_with(|| RunReads {
                    run,
                    started_at: at,
                    ended_at: None,
                    notes: Vec::new(),
                });
                record.ended_at = None;
                match record.notes.iter_mut().find(|c| c.slug == slug) {
                    Some(c) => {
                        c.reads = c.reads.saturating_add(1);
                        c.last_read_at = at;
                    }
                    None => record.notes.push(NoteRead {
                        slug: slug.to_owned(),
                        reads: 1,
                        first_read_at: at,
                        last_read_at: at,
                    }),
                }
                while book.runs.len() > max_runs {
                    let oldest = book.runs.iter().find(|(_, r)| !r.is_live()).map(|(id, _)| *id);
                    match oldest.or_else(|| book.runs.keys().next().copied()) {
                        Some(id) => book.runs.remove(&id),
                        None => break,
                    };
                }
                Some(note)
            })
            .flatten())
    }

    async fn runs(&self, user: &UserId) -> Result<Vec<RunReads>, WorkspaceError> {
        Ok(self.with_user(user, false, |book| book.runs.values().cloned().collect()).unwrap_or_default())
    }

    async fn attribute(
        &self,
        user: &UserId,
        target: &Attribution,
        success: bool,
        now: Timestamp,
    ) -> Result<usize, WorkspaceError> {
        Ok(self
            .with_user(user, false, |book| {
                let slugs: Vec<String> = match target {
                    Attribution::Run(run) => match book.runs.get_mut(run) {
                        Some(record) if record.is_live() => {
                            record.ended_at = Some(now);
                            record.notes.iter().map(|c| c.slug.clone()).collect()
                        }
                        _ => Vec::new(),
                    },
                    Attribution::Notes(slugs) => dedup(slugs),
                };
                let mut n = 0;
                for slug in slugs {
                    if let Some(note) = book.notes.get_mut(&slug) {
                        credited(note, success, now);
                        n += 1;
                    }
                }
                n
            })
            .unwrap_or(0))
    }

    async fn end_run(&self, user: &UserId, run: RunId, now: Timestamp) -> Result<bool, WorkspaceError> {
        Ok(self
            .with_user(user, false, |book| match book.runs.get_mut(&run) {
                Some(record) if record.is_live() => {
                    record.ended_at = Some(now);
                    true
                }
                _ => false,
            })
            .unwrap_or(false))
    }

    async fn prune(&self, user: &UserId, rule: &PruneRule, now: Timestamp) -> Result<PruneReport, WorkspaceError> {
        Ok(self
            .with_user(user, false, |book| {
                let runs: Vec<RunReads> = book.runs.values().cloned().collect();
                let plan = prune_plan(book.notes.values(), rule, &live_slugs(&runs), now);
                let mut report = PruneReport {
                    notes_kept: plan.kept,
                    kept_for_live_runs: plan.kept_for_live_runs,
                    ..PruneReport::default()
                };
                for slug in &plan.delete {
                    book.notes.remove(slug);
                    report.notes_deleted += 1;
                    report.versions_deleted += book.history.remove(slug).map_or(0, |h| h.len());
                }
                for (slug, note) in &book.notes {
                    if let (Some(below), Some(history)) =
                        (versions_below(note.version, rule.keep_last_versions), book.history.get_mut(slug))
                    {
                        let before = history.len();
                        history.retain(|v, _| *v >= below);
                        report.versions_deleted += before - history.len();
                    }
                }
                let before = book.runs.len();
                book.runs.retain(|_, r| r.is_live());
                report.runs_cleared = before - book.runs.len();
                report
            })
            .unwrap_or_default())
    }

    async fn export(&self, user: &UserId) -> Result<WorkspaceData, WorkspaceError> {
        Ok(self
            .with_user(user, false, |book| {
                let mut versions: Vec<NoteVersion> = Vec::new();
                for slug in book.notes.keys() {
                    if let Some(h) = book.history.get(slug) {
                        versions.extend(h.values().cloned());
                    }
                }
                WorkspaceData {
                    notes: book.notes.values().cloned().collect(),
                    versions,
                    runs: book.runs.values().cloned().collect(),
                }
            })
            .unwrap_or_default())
    }

    async fn forget(&self, user: &UserId) -> Result<usize, WorkspaceError> {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(book) = users.remove(user) else { return Ok(0) };
        Ok(book.notes.len())
    }
}

/// `slugs` without repeats, in order.
pub(crate) fn dedup(slugs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(slugs.len());
    for s in slugs {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}
