//! The workspace in SQLite: the file of the sessions, journals and memory
//! ([`SqliteStore`]), in tables of its own with a schema version of their own.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension as _, Row, Transaction, TransactionBehavior, params};

use super::error::WorkspaceError;
use super::in_memory::dedup;
use super::store::{
    WorkspaceStore, answered, apply_edit, check_author, credited, is_slug, live_slugs, prune_plan, slugify,
    unique_slug, versions_below,
};
use super::types::{
    Attribution, Note, NoteEdit, NoteKind, NoteRead, NoteVersion, PruneReport, PruneRule, RunReads, WorkspaceData,
};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::{RunId, UserId};
use crate::memory::Timestamp;
use crate::session::SqliteStore;
use crate::session::sqlite::{db, error};

/// The schema version of the workspace's tables this Loom writes (in `loom_workspace_schema`).
pub const WORKSPACE_SQLITE_SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &["
    CREATE TABLE loom_workspace_notes (
        user TEXT NOT NULL, slug TEXT NOT NULL, author TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
        kind TEXT NOT NULL, tags TEXT NOT NULL, parent TEXT, version INTEGER NOT NULL,
        created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, archived_ms INTEGER,
        answered_by TEXT, answered_ms INTEGER,
        cited_count INTEGER NOT NULL, success_count INTEGER NOT NULL, last_cited_ms INTEGER,
        PRIMARY KEY (user, slug)
    ) WITHOUT ROWID;
    CREATE TABLE loom_workspace_versions (
        user TEXT NOT NULL, slug TEXT NOT NULL, version INTEGER NOT NULL, author TEXT NOT NULL,
        title TEXT NOT NULL, body TEXT NOT NULL, kind TEXT NOT NULL, tags TEXT NOT NULL, parent TEXT,
        written_ms INTEGER NOT NULL,
        PRIMARY KEY (user, slug, version)
    ) WITHOUT ROWID;
    CREATE TABLE loom_workspace_runs (
        user TEXT NOT NULL, run TEXT NOT NULL, started_ms INTEGER NOT NULL, ended_ms INTEGER,
        PRIMARY KEY (user, run)
    ) WITHOUT ROWID;
    CREATE TABLE loom_workspace_reads (
        user TEXT NOT NULL, run TEXT NOT NULL, slug TEXT NOT NULL, ord INTEGER NOT NULL, reads INTEGER NOT NULL,
        first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
        PRIMARY KEY (user, run, slug)
    ) WITHOUT ROWID;
"];

/// Brings the workspace's tables up to date (called when a [`SqliteStore`] opens its file).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS loom_workspace_schema (version INTEGER NOT NULL)").map_err(db)?;
    let version: i64 = tx
        .query_row("SELECT version FROM loom_workspace_schema", [], |r| r.get(0))
        .optional()
        .map_err(db)?
        .unwrap_or(0);
    if version > WORKSPACE_SQLITE_SCHEMA_VERSION {
        return Err(error(
            StoreErrorKind::Incompatible,
            format!(
                "the database's workspace tables have schema v{version}, written by a newer Loom; this Loom reads up \
                 to v{WORKSPACE_SQLITE_SCHEMA_VERSION}"
            ),
        ));
    }
    for sql in MIGRATIONS.iter().skip(usize::try_from(version).unwrap_or(0)) {
        tx.execute_batch(sql).map_err(db)?;
    }
    if version < WORKSPACE_SQLITE_SCHEMA_VERSION {
        tx.execute("DELETE FROM loom_workspace_schema", []).map_err(db)?;
        tx.execute("INSERT INTO loom_workspace_schema (version) VALUES (?1)", params![WORKSPACE_SQLITE_SCHEMA_VERSION])
            .map_err(db)?;
    }
    tx.commit().map_err(db)
}

fn corrupt(what: &str, key: &str, e: impl std::fmt::Display) -> WorkspaceError {
    WorkspaceError::Store(error(StoreErrorKind::Corrupt, format!("{what} `{key}` is unreadable: {e}")))
}

fn encode_tags(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".to_owned())
}

/// The columns of a note, in the order [`note`] reads them.
const NOTE_COLUMNS: &str = "slug, author, title, body, kind, tags, parent, version, created_ms, updated_ms, \
                            archived_ms, answered_by, answered_ms, cited_count, success_count, last_cited_ms";

fn ms(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_millis)
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn note(row: &Row<'_>) -> rusqlite::Result<Result<Note, WorkspaceError>> {
    let slug: String = row.get(0)?;
    let kind: String = row.get(4)?;
    let tags: String = row.get(5)?;
    let Some(kind) = NoteKind::from_word(&kind) else {
        return Ok(Err(corrupt("note", &slug, format!("unknown kind `{kind}`"))));
    };
    let tags: Vec<String> = match serde_json::from_str(&tags) {
        Ok(t) => t,
        Err(e) => return Ok(Err(corrupt("note", &slug, e))),
    };
    Ok(Ok(Note {
        author: row.get(1)?,
        title: row.get(2)?,
        body: row.get(3)?,
        kind,
        tags,
        parent: row.get(6)?,
        version: count(row.get(7)?),
        created_at: Timestamp::from_millis(row.get(8)?),
        updated_at: Timestamp::from_millis(row.get(9)?),
        archived_at: ms(row.get(10)?),
        answered_by: row.get(11)?,
        answered_at: ms(row.get(12)?),
        cited_count: count(row.get(13)?),
        success_count: count(row.get(14)?),
        last_cited_at: ms(row.get(15)?),
        slug,
    }))
}

fn version(row: &Row<'_>) -> rusqlite::Result<Result<NoteVersion, WorkspaceError>> {
    let slug: String = row.get(0)?;
    let kind: String = row.get(5)?;
    let tags: String = row.get(6)?;
    let Some(kind) = NoteKind::from_word(&kind) else {
        return Ok(Err(corrupt("version of note", &slug, format!("unknown kind `{kind}`"))));
    };
    let tags: Vec<String> = match serde_json::from_str(&tags) {
        Ok(t) => t,
        Err(e) => return Ok(Err(corrupt("version of note", &slug, e))),
    };
    Ok(Ok(NoteVersion {
        version: count(row.get(1)?),
        author: row.get(2)?,
        title: row.get(3)?,
        body: row.get(4)?,
        kind,
        tags,
        parent: row.get(7)?,
        written_at: Timestamp::from_millis(row.get(8)?),
        slug,
    }))
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn get(conn: &Connection, user: &str, slug: &str) -> Result<Option<Note>, WorkspaceError> {
    let sql = format!("SELECT {NOTE_COLUMNS} FROM loom_workspace_notes WHERE user = ?1 AND slug = ?2");
    conn.query_row(&sql, params![user, slug], note).optional().map_err(db)?.transpose()
}

fn found(conn: &Connection, user: &str, slug: &str) -> Result<Note, WorkspaceError> {
    get(conn, user, slug)?.ok_or_else(|| WorkspaceError::NotFound { slug: slug.to_owned(), suggestion: None })
}

fn list(conn: &Connection, user: &str) -> Result<Vec<Note>, WorkspaceError> {
    let sql = format!("SELECT {NOTE_COLUMNS} FROM loom_workspace_notes WHERE user = ?1 ORDER BY slug");
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt.query_map(params![user], note).map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(db)??);
    }
    Ok(out)
}

/// Writes `note` whole (insert or replace).
fn save(tx: &Transaction<'_>, user: &str, n: &Note) -> Result<(), WorkspaceError> {
    tx.execute(
        &format!(
            "INSERT OR REPLACE INTO loom_workspace_notes (user, {NOTE_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        ),
        params![
            user,
            n.slug,
            n.author,
            n.title,
            n.body,
            n.kind.as_str(),
            encode_tags(&n.tags),
            n.parent,
            i64_of(n.version),
            n.created_at.as_millis(),
            n.updated_at.as_millis(),
            n.archived_at.map(Timestamp::as_millis),
            n.answered_by,
            n.answered_at.map(Timestamp::as_millis),
            i64_of(n.cited_count),
            i64_of(n.success_count),
            n.last_cited_at.map(Timestamp::as_millis),
        ],
    )
    .map_err(db)?;
    Ok(())
}

fn keep_version(tx: &Transaction<'_>, user: &str, v: &NoteVersion) -> Result<(), WorkspaceError> {
    tx.execute(
        "INSERT OR REPLACE INTO loom_workspace_versions
         (user, slug, version, author, title, body, kind, tags, parent, written_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            user,
            v.slug,
            i64_of(v.version),
            v.author,
            v.title,
            v.body,
            v.kind.as_str(),
            encode_tags(&v.tags),
            v.parent,
            v.written_at.as_millis()
        ],
    )
    .map_err(db)?;
    Ok(())
}

fn history(conn: &Connection, user: &str, slug: Option<&str>) -> Result<Vec<NoteVersion>, WorkspaceError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT slug, version, author, title, body, kind, tags, parent, written_ms FROM loom_workspace_versions
             WHERE user = ?1 AND (?2 IS NULL OR slug = ?2) ORDER BY slug, version",
        )
        .map_err(db)?;
    let rows = stmt.query_map(params![user, slug], version).map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(db)??);
    }
    Ok(out)
}

fn runs(conn: &Connection, user: &str) -> Result<Vec<RunReads>, WorkspaceError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.run, r.started_ms, r.ended_ms, d.slug, d.reads, d.first_ms, d.last_ms
             FROM loom_workspace_runs r LEFT JOIN loom_workspace_reads d ON d.user = r.user AND d.run = r.run
             WHERE r.user = ?1 ORDER BY r.run, d.ord",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![user], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<i64>>(6)?,
            ))
        })
        .map_err(db)?;
    let mut out: Vec<RunReads> = Vec::new();
    for row in rows {
        let (run, started, ended, slug, reads, first, last) = row.map_err(db)?;
        let id: RunId = run.parse().map_err(|e| corrupt("run", &run, e))?;
        if out.last().is_none_or(|r| r.run != id) {
            out.push(RunReads {
                run: id,
                started_at: Timestamp::from_millis(started),
                ended_at: ms(ended),
                notes: Vec::new(),
            });
        }
        if let (Some(slug), Some(record)) = (slug, out.last_mut()) {
            record.notes.push(NoteRead {
                slug,
                reads: count(reads.unwrap_or(1)),
                first_read_at: Timestamp::from_millis(first.unwrap_or(started)),
                last_read_at: Timestamp::from_millis(last.unwrap_or(started)),
            });
        }
    }
    Ok(out)
}

fn begin(conn: &mut Connection) -> Result<Transaction<'_>, WorkspaceError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?)
}

impl SqliteStore {
    /// Runs `f` with the connection on the blocking pool, for the workspace.
    async fn ws<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, WorkspaceError> + Send + 'static,
    ) -> Result<T, WorkspaceError> {
        self.with(move |conn| Ok(f(conn))).await?
    }
}

#[async_trait::async_trait]
impl WorkspaceStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create(&self, user: &UserId, mut note: Note) -> Result<Note, WorkspaceError> {
        let user = user.to_string();
        self.ws(move |conn| {
            if !is_slug(&note.slug) {
                note.slug = slugify(&note.slug);
            }
            let tx = begin(conn)?;
            let taken: HashSet<String> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT slug FROM loom_workspace_notes WHERE user = ?1 AND (slug = ?2 OR slug LIKE ?2 || '-%')",
                    )
                    .map_err(db)?;
                let rows = stmt.query_map(params![user, note.slug], |r| r.get::<_, String>(0)).map_err(db)?;
                rows.collect::<Result<_, _>>().map_err(db)?
            };
            note.slug = unique_slug(&note.slug, |s| taken.contains(s));
            tx.execute("DELETE FROM loom_workspace_versions WHERE user = ?1 AND slug = ?2", params![user, note.slug])
                .map_err(db)?;
            save(&tx, &user, &note)?;
            tx.commit().map_err(db)?;
            Ok(note)
        })
        .await
    }

    async fn get(&self, user: &UserId, slug: &str) -> Result<Option<Note>, WorkspaceError> {
        let (user, slug) = (user.to_string(), slug.to_owned());
        self.ws(move |conn| get(conn, &user, &slug)).await
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Note>, WorkspaceError> {
        let user = user.to_string();
        self.ws(move |conn| list(conn, &user)).await
    }

    async fn update(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        edit: &NoteEdit,
        now: Timestamp,
    ) -> Result<Note, WorkspaceError> {
        let (user, slug, author, edit) = (user.to_string(), slug.to_owned(), author.to_owned(), edit.clone());
        self.ws(move |conn| {
            let tx = begin(conn)?;
            let current = found(&tx, &user, &slug)?;
            let next = apply_edit(&current, &author, &edit, now)?;
            keep_version(&tx, &user, &current.as_version())?;
            save(&tx, &user, &next)?;
            tx.commit().map_err(db)?;
            Ok(next)
        })
        .await
    }

    async fn set_archived(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        at: Option<Timestamp>,
    ) -> Result<Note, WorkspaceError> {
        let (user, slug, author) = (user.to_string(), slug.to_owned(), author.to_owned());
        self.ws(move |conn| {
            let tx = begin(conn)?;
            let mut note = found(&tx, &user, &slug)?;
            check_author(&note, &author)?;
            note.archived_at = at;
            save(&tx, &user, &note)?;
            tx.commit().map_err(db)?;
            Ok(note)
        })
        .await
    }

    async fn mark_answered(&self, user: &UserId, slug: &str, by: &str, at: Timestamp) -> Result<Note, WorkspaceError> {
        let (user, slug, by) = (user.to_string(), slug.to_owned(), by.to_owned());
        self.ws(move |conn| {
            let tx = begin(conn)?;
            let note = answered(found(&tx, &user, &slug)?, &by, at)?;
            save(&tx, &user, &note)?;
            tx.commit().map_err(db)?;
            Ok(note)
        })
        .await
    }

    async fn history(&self, user: &UserId, slug: &str) -> Result<Vec<NoteVersion>, WorkspaceError> {
        let (user, slug) = (user.to_string(), slug.to_owned());
        self.ws(move |conn| history(conn, &user, Some(&slug))).await
    }

    async fn read(&self, user: &UserId, slug: &str, run: RunId, at: Timestamp) -> Result<Option<Note>, WorkspaceError> {
        let (user, slug, run) = (user.to_string(), slug.to_owned(), run.to_string());
        self.ws(move |conn| {
            let tx = begin(conn)?;
            let Some(note) = get(&tx, &user, &slug)? else { return Ok(None) };
            tx.execute(
                "INSERT INTO loom_workspace_runs (user, run, started_ms, ended_ms) VALUES (?1, ?2, ?3, NULL)
                 ON CONFLICT (user, run) DO UPDATE SET ended_ms = NULL",
                params![user, run, at.as_millis()],
            )
            .map_err(db)?;
            tx.execute(
                "INSERT INTO loom_workspace_reads (user, run, slug, ord, reads, first_ms, last_ms)
                 VALUES (?1, ?2, ?3, (SELECT count(*) FROM loom_workspace_reads WHERE user = ?1 AND run = ?2), 1, ?4, ?4)
                 ON CONFLICT (user, run, slug) DO UPDATE SET reads = reads + 1, last_ms = ?4",
                params![user, run, slug, at.as_millis()],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(Some(note))
        })
        .await
    }

    async fn runs(&self, user: &UserId) -> Result<Vec<RunReads>, WorkspaceError> {
        let user = user.to_string();
        self.ws(move |conn| runs(conn, &user)).await
    }

    async fn attribute(
        &self,
        user: &UserId,
        target: &Attribution,
        success: bool,
        now: Timestamp,
    ) -> Result<usize, WorkspaceError> {
        let (user, target) = (user.to_string(), target.clone());
        self.ws(move |conn| {
            let tx = begin(conn)?;
            let slugs: Vec<String> = match &target {
                Attribution::Run(run) => {
                    let run = run.to_string();
                    let ended = tx
                        .execute(
                            "UPDATE loom_workspace_runs SET ended_ms = ?3 WHERE user = ?1 AND run = ?2 AND ended_ms IS NULL",
                            params![user, run, now.as_millis()],
                        )
                        .map_err(db)?;
                    if ended == 0 {
                        Vec::new()
                    } else {
                        let mut stmt = tx
                            .prepare_cached("SELECT slug FROM loom_workspace_reads WHERE user = ?1 AND run = ?2")
                            .map_err(db)?;
                        let rows = stmt.query_map(params![user, run], |r| r.get::<_, String>(0)).map_err(db)?;
                        rows.collect::<Result<_, _>>().map_err(db)?
                    }
                }
                Attribution::Notes(slugs) => dedup(slugs),
            };
            let mut n = 0;
            for slug in slugs {
                if let Some(mut note) = get(&tx, &user, &slug)? {
                    credited(&mut note, success, now);
                    save(&tx, &user, &note)?;
                    n += 1;
                }
            }
            tx.commit().map_err(db)?;
            Ok(n)
        })
        .await
    }

    async fn end_run(&self, user: &UserId, run: RunId, now: Timestamp) -> Result<bool, WorkspaceError> {
        let (user, run) = (user.to_string(), run.to_string());
        self.ws(move |conn| {
            let ended = conn
                .execute(
                    "UPDATE loom_workspace_runs SET ended_ms = ?3 WHERE user = ?1 AND run = ?2 AND ended_ms IS NULL",
                    params![user, run, now.as_millis()],
                )
                .map_err(db)?;
            Ok(ended > 0)
        })
        .await
    }

    async fn prune(&self, user: &UserId, rule: &PruneRule, now: Timestamp) -> Result<PruneReport, WorkspaceError> {
        let (user, rule) = (user.to_string(), rule.clone());
        self.ws(move |conn| {
            let tx = begin(conn)?;
            let notes = list(&tx, &user)?;
            let plan = prune_plan(&notes, &rule, &live_slugs(&runs(&tx, &user)?), now);
            let mut report = PruneReport {
                notes_kept: plan.kept,
                kept_for_live_runs: plan.kept_for_live_runs,
                ..PruneReport::default()
            };
            for note in &notes {
                if plan.delete.contains(&note.slug) {
                    tx.execute(
                        "DELETE FROM loom_workspace_notes WHERE user = ?1 AND slug = ?2",
                        params![user, note.slug],
                    )
                    .map_err(db)?;
                    report.notes_deleted += 1;
                    report.versions_deleted += tx
                        .execute(
                            "DELETE FROM loom_workspace_versions WHERE user = ?1 AND slug = ?2",
                            params![user, note.slug],
                        )
                        .map_err(db)?;
                } else if let Some(below) = versions_below(note.version, rule.keep_last_versions) {
                    report.versions_deleted += tx
                        .execute(
                            "DELETE FROM loom_workspace_versions WHERE user = ?1 AND slug = ?2 AND version < ?3",
                            params![user, note.slug, i64_of(below)],
                        )
                        .map_err(db)?;
                }
            }
            tx.execute(
                "DELETE FROM loom_workspace_reads WHERE user = ?1 AND run IN
                 (SELECT run FROM loom_workspace_runs WHERE user = ?1 AND ended_ms IS NOT NULL)",
                params![user],
            )
            .map_err(db)?;
            report.runs_cleared = tx
                .execute("DELETE FROM loom_workspace_runs WHERE user = ?1 AND ended_ms IS NOT NULL", params![user])
                .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(report)
        })
        .await
    }

    async fn export(&self, user: &UserId) -> Result<WorkspaceData, WorkspaceError> {
        let user = user.to_string();
        self.ws(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            let data = WorkspaceData {
                notes: list(&tx, &user)?,
                versions: history(&tx, &user, None)?,
                runs: runs(&tx, &user)?,
            };
            tx.commit().map_err(db)?;
            Ok(data)
        })
        .await
    }

    async fn forget(&self, user: &UserId) -> Result<usize, WorkspaceError> {
        let user = user.to_string();
        self.ws(move |conn| {
            let tx = begin(conn)?;
            let notes = tx.execute("DELETE FROM loom_workspace_notes WHERE user = ?1", params![user]).map_err(db)?;
            for table in ["loom_workspace_versions", "loom_workspace_reads", "loom_workspace_runs"] {
                tx.execute(&format!("DELETE FROM {table} WHERE user = ?1"), params![user]).map_err(db)?;
            }
            tx.commit().map_err(db)?;
            Ok(notes)
        })
        .await
    }
}
