//! The storage behind a [`Workspace`](super::Workspace): one trait, every backend, and the
//! rules they share (names, slugs, edits, pruning), so every backend decides alike.

use std::collections::HashSet;

use super::error::WorkspaceError;
use super::types::{Attribution, Note, NoteEdit, NoteVersion, PruneReport, PruneRule, RunReads, WorkspaceData};
use crate::id::{RunId, UserId};
use crate::memory::Timestamp;

/// A backend of [`Workspace`](super::Workspace): in memory, on disk, SQLite, PostgreSQL.
///
/// Every call takes the user, and a backend never returns nor changes another user's notes:
/// partitioning is the store's. Each call is atomic — a failed call changed nothing — and
/// calls that change a note are serialised per user, so concurrent writers never lose an
/// update: a change made to a version the note is no longer at is a
/// [`Conflict`](WorkspaceError::Conflict). Implementations are checked by one conformance
/// suite (`tests/workspace.rs`).
#[async_trait::async_trait]
pub trait WorkspaceStore: Send + Sync + 'static {
    /// The backend's name, in errors: `in-memory`, `disk`, `sqlite`, `postgres`.
    fn backend(&self) -> &'static str;

    /// Writes a new note, complete but for its slug: `note.slug` is a base that the store
    /// makes unique among the user's notes ([`unique_slug`]). Returns the note as written.
    async fn create(&self, user: &UserId, note: Note) -> Result<Note, WorkspaceError>;

    /// The user's note `slug`.
    async fn get(&self, user: &UserId, slug: &str) -> Result<Option<Note>, WorkspaceError>;

    /// Every note of the user, archived ones too, in any order.
    async fn list(&self, user: &UserId) -> Result<Vec<Note>, WorkspaceError>;

    /// Changes note `slug` as `author` ([`apply_edit`]), keeping the version before it.
    async fn update(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        edit: &NoteEdit,
        now: Timestamp,
    ) -> Result<Note, WorkspaceError>;

    /// Archives note `slug` at `at` (`None`: restores it), as `author`, who must have written it.
    async fn set_archived(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        at: Option<Timestamp>,
    ) -> Result<Note, WorkspaceError>;

    /// Marks question `slug` answered by `by` at `at`; one already answered keeps its first
    /// answerer.
    async fn mark_answered(&self, user: &UserId, slug: &str, by: &str, at: Timestamp) -> Result<Note, WorkspaceError>;

    /// The earlier versions of note `slug` that are kept, oldest first (not its current one).
    async fn history(&self, user: &UserId, slug: &str) -> Result<Vec<NoteVersion>, WorkspaceError>;

    /// Reads note `slug` for `run` and records the read, in one step: a note returned is one
    /// the run is recorded to have read (so a prune at the same time cannot delete it
    /// unseen). A read by a run that was ended starts it again.
    async fn read(&self, user: &UserId, slug: &str, run: RunId, at: Timestamp) -> Result<Option<Note>, WorkspaceError>;

    /// The runs of the user that read notes, with what they read.
    async fn runs(&self, user: &UserId) -> Result<Vec<RunReads>, WorkspaceError>;

    /// Attributes an outcome: each note named (or read by the run, once each) counts one
    /// citation more, one success more when `success`, and was last cited `now`. A run is
    /// ended by it; a run already ended, or unknown, credits nothing. Returns how many notes
    /// were credited.
    async fn attribute(
        &self,
        user: &UserId,
        target: &Attribution,
        success: bool,
        now: Timestamp,
    ) -> Result<usize, WorkspaceError>;

    /// Ends `run` without an outcome; whether it was live.
    async fn end_run(&self, user: &UserId, run: RunId, now: Timestamp) -> Result<bool, WorkspaceError>;

    /// Deletes the notes `rule` selects ([`prune_plan`]) that no live run read, trims the
    /// versions of those that stay, and drops the records of ended runs — in one step.
    async fn prune(&self, user: &UserId, rule: &PruneRule, now: Timestamp) -> Result<PruneReport, WorkspaceError>;

    /// Everything held for the user.
    async fn export(&self, user: &UserId) -> Result<WorkspaceData, WorkspaceError>;

    /// Removes everything held for the user: notes, versions, runs. Returns how many notes
    /// there were.
    async fn forget(&self, user: &UserId) -> Result<usize, WorkspaceError>;
}

/// The longest slug, in bytes.
pub const MAX_SLUG_LEN: usize = 64;
/// The longest member name, in bytes.
pub const MAX_MEMBER_LEN: usize = 64;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest body, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The most tags a note has.
pub const MAX_TAGS: usize = 32;
/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;

/// Names Windows keeps for devices: no file or directory may be called so there.
const DEVICE_NAMES: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "lpt1", "lpt2",
    "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Checks a member's name: 1 to 64 lowercase ASCII letters, digits, `_` and `-`, beginning
/// with a letter or digit — so that it is a safe directory name on every file system, and
/// the same name on every backend.
///
/// ```
/// use loomflow::workspace::validate_member_name;
/// assert!(validate_member_name("researcher").is_ok());
/// assert!(validate_member_name("../etc").is_err());
/// assert!(validate_member_name("Writer").is_err());
/// ```
pub fn validate_member_name(name: &str) -> Result<(), WorkspaceError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_MEMBER_LEN
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && !DEVICE_NAMES.contains(&name);
    if ok {
        return Ok(());
    }
    let shown = crate::tool::args::shown(name);
    let hint = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        format!(" (did you mean `{}`?)", name.to_ascii_lowercase())
    } else {
        String::new()
    };
    Err(WorkspaceError::invalid(format!(
        "`{shown}` cannot be a member's name{hint}: use 1 to {MAX_MEMBER_LEN} lowercase letters, digits, `_` and `-`, \
         beginning with a letter or digit (and not a device name such as `con`)"
    )))
}

/// Whether `slug` has the form of a slug: lowercase ASCII words of letters and digits joined
/// by single `-`, at most 64 bytes.
pub(crate) fn is_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG_LEN
        && slug.split('-').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && !DEVICE_NAMES.contains(&slug)
}

/// The slug of a title: its ASCII letters and digits, lowercase, words joined by `-`, cut at
/// a word to at most 56 bytes (so a suffix that makes it unique fits); `note` when nothing is
/// left.
///
/// ```
/// use loomflow::workspace::slugify;
/// assert_eq!(slugify("Q3 pricing: what competitors charge!"), "q3-pricing-what-competitors-charge");
/// assert_eq!(slugify("???"), "note");
/// ```
pub fn slugify(title: &str) -> String {
    const BASE: usize = MAX_SLUG_LEN - 8;
    let mut slug = String::new();
    for word in title.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_ascii_lowercase();
        let extra = word.len() + usize::from(!slug.is_empty());
        if slug.len() + extra > BASE {
            if slug.is_empty() {
                slug.push_str(&word[..BASE]);
            }
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&word);
    }
    if slug.is_empty() {
        return "note".to_owned();
    }
    if DEVICE_NAMES.contains(&slug.as_str()) {
        slug.push_str("-note");
    }
    slug
}

/// `base`, or `base-2`, `base-3` ... : the first that `taken` says is free.
pub fn unique_slug(base: &str, taken: impl Fn(&str) -> bool) -> String {
    let base = if is_slug(base) { base.to_owned() } else { slugify(base) };
    if !taken(&base) {
        return base;
    }
    (2u64..).map(|n| format!("{base}-{n}")).find(|candidate| !taken(candidate)).unwrap_or(base)
}

fn clean_title(title: &str) -> Result<String, WorkspaceError> {
    let title: String = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() {
        return Err(WorkspaceError::invalid("a note needs a title: a line that says what it is"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(WorkspaceError::invalid(format!(
            "the title is {} characters long; keep it to {MAX_TITLE_CHARS} and put the rest in the body",
            title.chars().count()
        )));
    }
    Ok(title)
}

fn clean_body(body: String) -> Result<String, WorkspaceError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WorkspaceError::invalid(format!(
            "the body is {} bytes long; the limit is {MAX_BODY_BYTES}: split it into several notes",
            body.len()
        )));
    }
    Ok(body)
}

fn clean_tags(tags: Vec<String>) -> Result<Vec<String>, WorkspaceError> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.trim().trim_start_matches('#').to_lowercase();
        if tag.is_empty() || out.contains(&tag) {
            continue;
        }
        if tag.chars().count() > MAX_TAG_CHARS || tag.chars().any(char::is_control) {
            return Err(WorkspaceError::invalid(format!(
                "the tag `{}` is not usable: a tag is a word or two, at most {MAX_TAG_CHARS} characters",
                crate::tool::args::shown(&tag)
            )));
        }
        out.push(tag);
    }
    if out.len() > MAX_TAGS {
        return Err(WorkspaceError::invalid(format!("a note has at most {MAX_TAGS} tags; {} were given", out.len())));
    }
    Ok(out)
}

/// The note `author` writes at `now` from `new`, checked: a title of a line, a body within
/// the limit, tags of a word or two, a parent that looks like a slug. Its slug is the base
/// made from the title; the store makes it unique.
pub(crate) fn prepare_note(author: &str, new: super::NewNote, now: Timestamp) -> Result<Note, WorkspaceError> {
    validate_member_name(author)?;
    let title = clean_title(&new.title)?;
    let parent = match new.parent.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()) {
        Some(p) if !is_slug(&p) => {
            return Err(WorkspaceError::invalid(format!(
                "`{}` is not a note's slug; give `parent` as the slug of an existing note",
                crate::tool::args::shown(&p)
            )));
        }
        other => other,
    };
    Ok(Note {
        slug: slugify(&title),
        author: author.to_owned(),
        title,
        body: clean_body(new.body)?,
        kind: new.kind,
        tags: clean_tags(new.tags)?,
        parent,
        version: 1,
        created_at: now,
        updated_at: now,
        archived_at: None,
        answered_by: None,
        answered_at: None,
        cited_count: 0,
        success_count: 0,
        last_cited_at: None,
    })
}

/// `note` changed by `edit`, as `author` at `now`: one version more. Refused when `author`
/// did not write it ([`NotAuthor`](WorkspaceError::NotAuthor)) or when it is no longer at the
/// version the edit expects ([`Conflict`](WorkspaceError::Conflict)). The caller keeps
/// `note.as_version()` as the version before.
pub fn apply_edit(note: &Note, author: &str, edit: &NoteEdit, now: Timestamp) -> Result<Note, WorkspaceError> {
    if note.author != author {
        return Err(WorkspaceError::NotAuthor {
            slug: note.slug.clone(),
            author: note.author.clone(),
            member: author.to_owned(),
        });
    }
    if let Some(expected) = edit.expected_version
        && expected != note.version
    {
        return Err(WorkspaceError::Conflict { slug: note.slug.clone(), expected, current: note.version });
    }
    if edit.is_empty() {
        return Err(WorkspaceError::invalid(format!(
            "the update of `{}` changes nothing; give a new `body`, `title`, `tags` or `kind`",
            note.slug
        )));
    }
    let mut next = note.clone();
    if let Some(title) = &edit.title {
        next.title = clean_title(title)?;
    }
    if let Some(body) = &edit.body {
        next.body = clean_body(body.clone())?;
    }
    if let Some(kind) = edit.kind {
        next.kind = kind;
    }
    if let Some(tags) = &edit.tags {
        next.tags = clean_tags(tags.clone())?;
    }
    next.version = note.version.saturating_add(1);
    next.updated_at = now.max(note.updated_at);
    Ok(next)
}

/// Checks that `author` may archive `note`.
pub(crate) fn check_author(note: &Note, author: &str) -> Result<(), WorkspaceError> {
    if note.author == author {
        Ok(())
    } else {
        Err(WorkspaceError::NotAuthor {
            slug: note.slug.clone(),
            author: note.author.clone(),
            member: author.to_owned(),
        })
    }
}

/// `note` answered by `by` at `at` (a question answered before keeps its first answer).
pub(crate) fn answered(mut note: Note, by: &str, at: Timestamp) -> Result<Note, WorkspaceError> {
    if note.kind != super::NoteKind::Question {
        return Err(WorkspaceError::NotAQuestion { slug: note.slug, kind: note.kind });
    }
    if note.answered_by.is_none() {
        note.answered_by = Some(by.to_owned());
        note.answered_at = Some(at);
    }
    Ok(note)
}

/// `note` credited with an outcome at `now`.
pub(crate) fn credited(note: &mut Note, success: bool, now: Timestamp) {
    note.cited_count = note.cited_count.saturating_add(1);
    if success {
        note.success_count = note.success_count.saturating_add(1);
    }
    note.last_cited_at = Some(now);
}

/// What a prune does to one user's notes.
#[derive(Debug, Default)]
pub struct PrunePlan {
    /// The notes to delete, by slug.
    pub delete: Vec<String>,
    /// The notes that stay.
    pub kept: usize,
    /// Of those, the ones only a live run keeps.
    pub kept_for_live_runs: usize,
}

/// Which of `notes` `rule` deletes at `now`, when the live runs read the notes in `live`.
pub fn prune_plan<'n>(
    notes: impl IntoIterator<Item = &'n Note>,
    rule: &PruneRule,
    live: &HashSet<String>,
    now: Timestamp,
) -> PrunePlan {
    let mut plan = PrunePlan::default();
    for note in notes {
        if !rule.selects(note, now) {
            plan.kept += 1;
        } else if live.contains(&note.slug) {
            plan.kept += 1;
            plan.kept_for_live_runs += 1;
        } else {
            plan.delete.push(note.slug.clone());
        }
    }
    plan.delete.sort();
    plan
}

/// The slugs the live runs among `runs` read.
pub(crate) fn live_slugs(runs: &[RunReads]) -> HashSet<String> {
    runs.iter().filter(|r| r.is_live()).flat_map(|r| r.notes.iter().map(|c| c.slug.clone())).collect()
}

/// The earlier versions of a note at `current` to delete so that at most `keep` stay: those
/// before `current - keep` (versions count from 1; the current one is not among them).
pub(crate) fn versions_below(current: u64, keep: Option<u64>) -> Option<u64> {
    keep.map(|k| current.saturating_sub(k))
}

/// The versions there are of a note, for an error: `1 to 4`, or a list when some were pruned.
pub(crate) fn available(versions: &[u64]) -> String {
    match (versions.first(), versions.last()) {
        (Some(first), Some(last)) if versions.len() as u64 == last - first + 1 => {
            if first == last {
                first.to_string()
            } else {
                format!("{first} to {last}")
            }
        }
        (Some(_), Some(_)) => versions.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        _ => "none".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_file_names_and_unique() {
        assert_eq!(slugify("Über Preise — Q3/Q4"), "ber-preise-q3-q4");
        assert_eq!(slugify("CON"), "con-note");
        assert!(slugify(&"word ".repeat(40)).len() <= MAX_SLUG_LEN - 8);
        assert!(is_slug(&slugify(&"x".repeat(300))));
        let taken = ["pricing", "pricing-2"];
        assert_eq!(unique_slug("pricing", |s| taken.contains(&s)), "pricing-3");
        assert!(!is_slug("../etc") && !is_slug("a--b") && !is_slug("A") && !is_slug("nul"));
        assert_eq!(available(&[1, 2, 3]), "1 to 3");
        assert_eq!(available(&[2, 5]), "2, 5");
    }
}
