//! A workspace in Markdown files: human-readable, diffable, git-friendly.
//!
//! ```text
//! <root>/<user>/WORKSPACE.md                  the index, regenerated on every change
//! <root>/<user>/notes/<author>/<slug>.md      each note: frontmatter, then the body
//! <root>/<user>/.history/<slug>/<version>.md  its earlier versions
//! <root>/<user>/.runs/<run>.json              the notes each run read
//! <root>/<user>/.lock                         the user's lock
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::WorkspaceError;
use super::frontmatter;
use super::in_memory::dedup;
use super::store::{
    WorkspaceStore, answered, apply_edit, check_author, credited, is_slug, live_slugs, prune_plan, unique_slug,
    validate_member_name, versions_below,
};
use super::types::{
    Attribution, Note, NoteEdit, NoteRead, NoteVersion, PruneReport, PruneRule, RunReads, WorkspaceData,
};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::{RunId, UserId};
use crate::memory::Timestamp;

const BACKEND: &str = "disk";

/// A workspace in Markdown files under a root directory, one directory per user.
///
/// Each note is a file `notes/<author>/<slug>.md` with a YAML frontmatter (title, kind, tags,
/// version, times, citation counts) and the body as written; earlier versions are in
/// `.history/<slug>/<version>.md`; `WORKSPACE.md` indexes the notes, regenerated on every
/// change. People can read the notes, edit them, and keep the directory in git.
///
/// Every write goes to a temporary file that is synced and renamed over the old one, so a
/// crash leaves the old file or the new one, never half of one. The calls for a user are
/// serialised by a lock on `<user>/.lock` (an OS file lock: it holds across processes too).
/// Names from outside never make a path on their own: member names and slugs are checked
/// ([`validate_member_name`]); a user id is written with every byte but lowercase ASCII
/// letters, digits, `_`, `-` and a `.` not in front as `%XX`, so it is one path component, and
/// two users never share a directory, even on file systems that ignore case.
#[derive(Debug, Clone)]
pub struct DiskWorkspace {
    root: PathBuf,
}

fn io_error(what: impl std::fmt::Display, e: io::Error) -> WorkspaceError {
    let kind = match e.kind() {
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => StoreErrorKind::Unavailable,
        _ => StoreErrorKind::Other,
    };
    WorkspaceError::Store(StoreError::new(kind, BACKEND, format!("{what}: {e}")).with_source(e))
}

fn corrupt(path: &Path, problem: impl std::fmt::Display) -> WorkspaceError {
    WorkspaceError::Store(StoreError::new(
        StoreErrorKind::Corrupt,
        BACKEND,
        format!("`{}` is unreadable: {problem}; fix the file or move it out of the workspace", path.display()),
    ))
}

/// The longest encoded user directory name, in bytes (file systems allow 255).
const MAX_USER_COMPONENT: usize = 240;

/// The directory name of a user: one path component, the same for one user only.
pub(crate) fn user_component(user: &UserId) -> Result<String, WorkspaceError> {
    let mut out = String::with_capacity(user.as_str().len());
    for (i, b) in user.as_str().bytes().enumerate() {
        let plain = b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.len() > MAX_USER_COMPONENT {
        return Err(WorkspaceError::invalid(format!(
            "the user id is too long for a directory name on disk ({} bytes once encoded; at most \
             {MAX_USER_COMPONENT}): use a shorter id, or another backend",
            out.len()
        )));
    }
    Ok(out)
}

/// One user's directory, while the user's lock is held.
struct UserDir {
    dir: PathBuf,
}

static TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` through a synced temporary file renamed over it.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), WorkspaceError> {
    let parent = path.parent().ok_or_else(|| corrupt(path, "it has no directory"))?;
    fs::create_dir_all(parent).map_err(|e| io_error(format_args!("cannot create `{}`", parent.display()), e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{name}.{}.{}.tmp", std::process::id(), TMP.fetch_add(1, Ordering::Relaxed)));
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(format_args!("cannot write `{}`", path.display()), e));
    }
    Ok(())
}

/// The file's text, or `None` when there is no such file.
fn read_text(path: &Path) -> Result<Option<String>, WorkspaceError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| corrupt(path, "it is not UTF-8 text")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(format_args!("cannot read `{}`", path.display()), e)),
    }
}

/// The entries of a directory (none when it does not exist), by name.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, WorkspaceError> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(format_args!("cannot list `{}`", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| io_error(format_args!("cannot list `{}`", dir.display()), e))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if let Some(name) = entry.file_name().to_str() {
            out.push((name.to_owned(), entry.path(), is_dir));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn remove_file(path: &Path) -> Result<bool, WorkspaceError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(format_args!("cannot remove `{}`", path.display()), e)),
    }
}

fn remove_dir(path: &Path) -> Result<(), WorkspaceError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(format_args!("cannot remove `{}`", path.display()), e)),
    }
}

impl UserDir {
    fn notes_dir(&self) -> PathBuf {
        self.dir.join("notes")
    }

    fn note_path(&self, author: &str, slug: &str) -> PathBuf {
        self.notes_dir().join(author).join(format!("{slug}.md"))
    }

    fn history_dir(&self, slug: &str) -> PathBuf {
        self.dir.join(".history").join(slug)
    }

    fn runs_dir(&self) -> PathBuf {
        self.dir.join(".runs")
    }

    fn run_path(&self, run: RunId) -> PathBuf {
        self.runs_dir().join(format!("{run}.json"))
    }

    /// The authors' directories.
    fn authors(&self) -> Result<Vec<String>, WorkspaceError> {
        Ok(entries(&self.notes_dir())?
            .into_iter()
            .filter(|(name, _, is_dir)| *is_dir && validate_member_name(name).is_ok())
            .map(|(name, ..)| name)
            .collect())
    }

    /// Note `slug`, wherever its author's directory is.
    fn find(&self, slug: &str) -> Result<Option<Note>, WorkspaceError> {
        if !is_slug(slug) {
            return Ok(None);
        }
        for author in self.authors()? {
            let path = self.note_path(&author, slug);
            if let Some(text) = read_text(&path)? {
                return frontmatter::read_note(&text, slug, &author).map(Some).map_err(|e| corrupt(&path, e));
            }
        }
        Ok(None)
    }

    fn found(&self, slug: &str) -> Result<Note, WorkspaceError> {
        self.find(slug)?.ok_or_else(|| WorkspaceError::NotFound { slug: slug.to_owned(), suggestion: None })
    }

    fn notes(&self) -> Result<Vec<Note>, WorkspaceError> {
        let mut out = Vec::new();
        for author in self.authors()? {
            for (name, path, is_dir) in entries(&self.notes_dir().join(&author))? {
                let Some(slug) = name.strip_suffix(".md").filter(|s| !is_dir && is_slug(s)) else { continue };
                if let Some(text) = read_text(&path)? {
                    out.push(frontmatter::read_note(&text, slug, &author).map_err(|e| corrupt(&path, e))?);
                }
            }
        }
        Ok(out)
    }

    fn save(&self, note: &Note) -> Result<(), WorkspaceError> {
        validate_member_name(&note.author)?;
        if !is_slug(&note.slug) {
            return Err(WorkspaceError::invalid(format!("`{}` is not a slug", note.slug)));
        }
        write_atomic(&self.note_path(&note.author, &note.slug), frontmatter::write_note(note).as_bytes())
    }

    fn history(&self, slug: &str) -> Result<Vec<NoteVersion>, WorkspaceError> {
        if !is_slug(slug) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (name, path, _) in entries(&self.history_dir(slug))? {
            if name.strip_suffix(".md").is_none_or(|n| n.parse::<u64>().is_err()) {
                continue;
            }
            if let Some(text) = read_text(&path)? {
                out.push(frontmatter::read_version(&text, slug).map_err(|e| corrupt(&path, e))?);
            }
        }
        out.sort_by_key(|v| v.version);
        Ok(out)
    }

    fn keep_version(&self, v: &NoteVersion) -> Result<(), WorkspaceError> {
        write_atomic(
            &self.history_dir(&v.slug).join(format!("{}.md", v.version)),
            frontmatter::write_version(v).as_bytes(),
        )
    }

    fn runs(&self) -> Result<Vec<RunReads>, WorkspaceError> {
        let mut out = Vec::new();
        for (name, path, _) in entries(&self.runs_dir())? {
            if !name.starts_with("run_") || !name.ends_with(".json") {
                continue;
            }
            if let Some(text) = read_text(&path)? {
                out.push(serde_json::from_str::<RunReads>(&text).map_err(|e| corrupt(&path, e))?);
            }
        }
        out.sort_by_key(|r| r.run);
        Ok(out)
    }

    fn run(&self, run: RunId) -> Result<Option<RunReads>, WorkspaceError> {
        let path = self.run_path(run);
        read_text(&path)?.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(&path, e))).transpose()
    }

    fn save_run(&self, record: &RunReads) -> Result<(), WorkspaceError> {
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| WorkspaceError::Store(StoreError::new(StoreErrorKind::Other, BACKEND, e.to_string())))?;
        write_atomic(&self.run_path(record.run), &json)
    }

    /// Writes `WORKSPACE.md` anew from the notes.
    fn index(&self, user: &UserId) -> Result<(), WorkspaceError> {
        let mut notes = self.notes()?;
        notes.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.slug.cmp(&b.slug)));
        let cell = |s: &str| s.replace('|', "\\|").replace(['[', ']'], "").replace(['\n', '\r'], " ");
        let mut out = format!(
            "# Workspace of {}\n\nLoom writes this index anew on every change: edit the notes, not this file.\n",
            cell(user.as_str())
        );
        let (live, archived): (Vec<&Note>, Vec<&Note>) = notes.iter().partition(|n| !n.is_archived());
        for (heading, group) in [("Notes", live), ("Archived", archived)] {
            if group.is_empty() && heading == "Archived" {
                continue;
            }
            let _ = write!(out, "\n## {heading} ({})\n\n", group.len());
            if group.is_empty() {
                continue;
            }
            out.push_str("| Note | Kind | Author | Version | Updated | Cited |\n|---|---|---|---|---|---|\n");
            for n in group {
                let _ = writeln!(
                    out,
                    "| [{}](notes/{}/{}.md) | {} | {} | {} | {} | {} |",
                    cell(&n.title),
                    n.author,
                    n.slug,
                    n.kind,
                    n.author,
                    n.version,
                    n.updated_at,
                    n.cited_count
                );
            }
        }
        write_atomic(&self.dir.join("WORKSPACE.md"), out.as_bytes())
    }
}

/// What a call does with a user's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reads it, under a shared lock.
    Read,
    /// Changes it if it exists, under the exclusive lock.
    Change,
    /// Changes it, making it if need be, under the exclusive lock.
    Create,
}

impl DiskWorkspace {
    /// A workspace under `root`, which is made if it does not exist.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, WorkspaceError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io_error(format_args!("cannot create `{}`", root.display()), e))?;
        Ok(Self { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `user`'s workspace.
    pub fn user_dir(&self, user: &UserId) -> Result<PathBuf, WorkspaceError> {
        Ok(self.root.join(user_component(user)?))
    }

    /// Runs `f` on the user's directory under the user's lock, on the blocking pool. Unless
    /// `access` is [`Access::Create`], a user with no directory gets `None` and nothing is made.
    async fn locked<T: Send + 'static>(
        &self,
        user: &UserId,
        access: Access,
        f: impl FnOnce(&UserDir) -> Result<T, WorkspaceError> + Send + 'static,
    ) -> Result<Option<T>, WorkspaceError> {
        let dir = self.user_dir(user)?;
        tokio::task::spawn_blocking(move || {
            if access != Access::Create && !dir.is_dir() {
                return Ok(None);
            }
            fs::create_dir_all(&dir).map_err(|e| io_error(format_args!("cannot create `{}`", dir.display()), e))?;
            let lock_path = dir.join(".lock");
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| io_error(format_args!("cannot open `{}`", lock_path.display()), e))?;
            if access == Access::Read { lock.lock_shared() } else { lock.lock() }
                .map_err(|e| io_error(format_args!("cannot lock `{}`", lock_path.display()), e))?;
            let out = f(&UserDir { dir });
            drop(lock);
            out.map(Some)
        })
        .await
        .map_err(|e| {
            WorkspaceError::Store(StoreError::new(StoreErrorKind::Other, BACKEND, format!("the file task failed: {e}")))
        })?
    }

    fn not_found(slug: &str) -> WorkspaceError {
        WorkspaceError::NotFound { slug: slug.to_owned(), suggestion: None }
    }
}

#[async_trait::async_trait]
impl WorkspaceStore for DiskWorkspace {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, user: &UserId, mut note: Note) -> Result<Note, WorkspaceError> {
        let user_id = user.clone();
        self.locked(user, Access::Create, move |d| {
            let taken: HashSet<String> = d.notes()?.into_iter().map(|n| n.slug).collect();
            note.slug = unique_slug(&note.slug, |s| taken.contains(s));
            // Versions of an earlier note of that name (deleted by hand) are not this note's.
            remove_dir(&d.history_dir(&note.slug))?;
            d.save(&note)?;
            d.index(&user_id)?;
            Ok(note)
        })
        .await?
        .ok_or_else(|| Self::not_found("(new note)"))
    }

    async fn get(&self, user: &UserId, slug: &str) -> Result<Option<Note>, WorkspaceError> {
        let slug = slug.to_owned();
        Ok(self.locked(user, Access::Read, move |d| d.find(&slug)).await?.flatten())
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Note>, WorkspaceError> {
        Ok(self.locked(user, Access::Read, |d| d.notes()).await?.unwrap_or_default())
    }

    async fn update(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        edit: &NoteEdit,
        now: Timestamp,
    ) -> Result<Note, WorkspaceError> {
        let (slug, author, edit, user_id) = (slug.to_owned(), author.to_owned(), edit.clone(), user.clone());
        let missing = Self::not_found(&slug);
        self.locked(user, Access::Change, move |d| {
            let note = d.found(&slug)?;
            let next = apply_edit(&note, &author, &edit, now)?;
            d.keep_version(&note.as_version())?;
            d.save(&next)?;
            d.index(&user_id)?;
            Ok(next)
        })
        .await?
        .ok_or(missing)
    }

    async fn set_archived(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        at: Option<Timestamp>,
    ) -> Result<Note, WorkspaceError> {
        let (slug, author, user_id) = (slug.to_owned(), author.to_owned(), user.clone());
        let missing = Self::not_found(&slug);
        self.locked(user, Access::Change, move |d| {
            let mut note = d.found(&slug)?;
            check_author(&note, &author)?;
            note.archived_at = at;
            d.save(&note)?;
            d.index(&user_id)?;
            Ok(note)
        })
        .await?
        .ok_or(missing)
    }

    async fn mark_answered(&self, user: &UserId, slug: &str, by: &str, at: Timestamp) -> Result<Note, WorkspaceError> {
        let (slug, by, user_id) = (slug.to_owned(), by.to_owned(), user.clone());
        let missing = Self::not_found(&slug);
        self.locked(user, Access::Change, move |d| {
            let note = answered(d.found(&slug)?, &by, at)?;
            d.save(&note)?;
            d.index(&user_id)?;
            Ok(note)
        })
        .await?
        .ok_or(missing)
    }

    async fn history(&self, user: &UserId, slug: &str) -> Result<Vec<NoteVersion>, WorkspaceError> {
        let slug = slug.to_owned();
        Ok(self.locked(user, Access::Read, move |d| d.history(&slug)).await?.unwrap_or_default())
    }

    async fn read(&self, user: &UserId, slug: &str, run: RunId, at: Timestamp) -> Result<Option<Note>, WorkspaceError> {
        let slug = slug.to_owned();
        // The exclusive lock: the read is recorded with the note it read.
        Ok(self
            .locked(user, Access::Change, move |d| {
                let Some(note) = d.find(&slug)? else { return Ok(None) };
                let mut record =
                    d.run(run)?.unwrap_or(RunReads { run, started_at: at, ended_at: None, notes: Vec::new() });
                record.ended_at = None;
                match record.notes.iter_mut().find(|c| c.slug == slug) {
                    Some(c) => {
                        c.reads = c.reads.saturating_add(1);
                        c.last_read_at = at;
                    }
                    None => record.notes.push(NoteRead { slug, reads: 1, first_read_at: at, last_read_at: at }),
                }
                d.save_run(&record)?;
                Ok(Some(note))
            })
            .await?
            .flatten())
    }

    async fn runs(&self, user: &UserId) -> Result<Vec<RunReads>, WorkspaceError> {
        Ok(self.locked(user, Access::Read, |d| d.runs()).await?.unwrap_or_default())
    }

    async fn attribute(
        &self,
        user: &UserId,
        target: &Attribution,
        success: bool,
        now: Timestamp,
    ) -> Result<usize, WorkspaceError> {
        let (target, user_id) = (target.clone(), user.clone());
        Ok(self
            .locked(user, Access::Change, move |d| {
                let slugs = match &target {
                    Attribution::Run(run) => match d.run(*run)? {
                        Some(mut record) if record.is_live() => {
                            record.ended_at = Some(now);
                            d.save_run(&record)?;
                            record.notes.into_iter().map(|c| c.slug).collect()
                        }
                        _ => Vec::new(),
                    },
                    Attribution::Notes(slugs) => dedup(slugs),
                };
                let mut n = 0;
                for slug in slugs {
                    if let Some(mut note) = d.find(&slug)? {
                        credited(&mut note, success, now);
                        d.save(&note)?;
                        n += 1;
                    }
                }
                if n > 0 {
                    d.index(&user_id)?;
                }
                Ok(n)
            })
            .await?
            .unwrap_or(0))
    }

    async fn end_run(&self, user: &UserId, run: RunId, now: Timestamp) -> Result<bool, WorkspaceError> {
        Ok(self
            .locked(user, Access::Change, move |d| match d.run(run)? {
                Some(mut record) if record.is_live() => {
                    record.ended_at = Some(now);
                    d.save_run(&record)?;
                    Ok(true)
                }
                _ => Ok(false),
            })
            .await?
            .unwrap_or(false))
    }

    async fn prune(&self, user: &UserId, rule: &PruneRule, now: Timestamp) -> Result<PruneReport, WorkspaceError> {
        let (rule, user_id) = (rule.clone(), user.clone());
        Ok(self
            .locked(user, Access::Change, move |d| {
                let notes = d.notes()?;
                let runs = d.runs()?;
                let plan = prune_plan(&notes, &rule, &live_slugs(&runs), now);
                let mut report = PruneReport {
                    notes_kept: plan.kept,
                    kept_for_live_runs: plan.kept_for_live_runs,
                    ..PruneReport::default()
                };
                for note in &notes {
                    if plan.delete.contains(&note.slug) {
                        report.versions_deleted += d.history(&note.slug)?.len();
                        remove_file(&d.note_path(&note.author, &note.slug))?;
                        remove_dir(&d.history_dir(&note.slug))?;
                        report.notes_deleted += 1;
                    } else if let Some(below) = versions_below(note.version, rule.keep_last_versions) {
                        for v in d.history(&note.slug)? {
                            if v.version < below
                                && remove_file(&d.history_dir(&note.slug).join(format!("{}.md", v.version)))?
                            {
                                report.versions_deleted += 1;
                            }
                        }
                    }
                }
                for record in runs.iter().filter(|r| !r.is_live()) {
                    if remove_file(&d.run_path(record.run))? {
                        report.runs_cleared += 1;
                    }
                }
                if report.notes_deleted > 0 {
                    d.index(&user_id)?;
                }
                Ok(report)
            })
            .await?
            .unwrap_or_default())
    }

    async fn export(&self, user: &UserId) -> Result<WorkspaceData, WorkspaceError> {
        Ok(self
            .locked(user, Access::Read, |d| {
                let mut notes = d.notes()?;
                notes.sort_by(|a, b| a.slug.cmp(&b.slug));
                // Every version kept, of the notes there are and of any other (a note removed by hand).
                let mut versions = Vec::new();
                for (slug, _, is_dir) in entries(&d.dir.join(".history"))? {
                    if is_dir && is_slug(&slug) {
                        versions.extend(d.history(&slug)?);
                    }
                }
                Ok(WorkspaceData { notes, versions, runs: d.runs()? })
            })
            .await?
            .unwrap_or_default())
    }

    async fn forget(&self, user: &UserId) -> Result<usize, WorkspaceError> {
        let dir = self.user_dir(user)?;
        let removed = self
            .locked(user, Access::Change, |d| {
                let n = d.notes()?.len();
                for (name, path, is_dir) in entries(&d.dir)? {
                    if name == ".lock" {
                        continue;
                    }
                    if is_dir { remove_dir(&path)? } else { remove_file(&path).map(|_| ())? }
                }
                Ok(n)
            })
            .await?;
        // The lock is given back: the lock file and the directory go too.
        let _ = fs::remove_file(dir.join(".lock"));
        let _ = fs::remove_dir(&dir);
        Ok(removed.unwrap_or(0))
    }
}
