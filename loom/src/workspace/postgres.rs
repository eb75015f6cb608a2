//! The workspace in PostgreSQL: the database of the sessions, journals and memory
//! ([`PostgresStore`]), for many workers. The changes of one user's workspace are serialised
//! by a transaction-scoped advisory lock of that user.

use std::collections::HashSet;

use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row as _, Transaction};

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
use crate::session::PostgresStore;
use crate::session::postgres::{db, error};

/// The schema version of the workspace's tables this Loom writes (`workspace_schema_version`
/// in `loom_meta`).
pub const WORKSPACE_POSTGRES_SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &["
    CREATE TABLE loom_workspace_notes (
        user_id TEXT NOT NULL, slug TEXT NOT NULL, author TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
        kind TEXT NOT NULL, tags TEXT NOT NULL, parent TEXT, version BIGINT NOT NULL,
        created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, archived_ms BIGINT,
        answered_by TEXT, answered_ms BIGINT,
        cited_count BIGINT NOT NULL, success_count BIGINT NOT NULL, last_cited_ms BIGINT,
        PRIMARY KEY (user_id, slug)
    );
    CREATE TABLE loom_workspace_versions (
        user_id TEXT NOT NULL, slug TEXT NOT NULL, version BIGINT NOT NULL, author TEXT NOT NULL,
        title TEXT NOT NULL, body TEXT NOT NULL, kind TEXT NOT NULL, tags TEXT NOT NULL, parent TEXT,
        written_ms BIGINT NOT NULL,
        PRIMARY KEY (user_id, slug, version)
    );
    CREATE TABLE loom_workspace_runs (
        user_id TEXT NOT NULL, run TEXT NOT NULL, started_ms BIGINT NOT NULL, ended_ms BIGINT,
        PRIMARY KEY (user_id, run)
    );
    CREATE TABLE loom_workspace_reads (
        user_id TEXT NOT NULL, run TEXT NOT NULL, slug TEXT NOT NULL, ord BIGINT NOT NULL, reads BIGINT NOT NULL,
        first_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL,
        PRIMARY KEY (user_id, run, slug)
    );
"];

/// Brings the workspace's tables up to date, within the store's migration (under its lock).
pub(crate) async fn migrate(tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
    let version: i64 = sqlx::query("SELECT value FROM loom_meta WHERE key = 'workspace_schema_version'")
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?
        .map(|row| row.try_get::<String, _>(0))
        .transpose()
        .map_err(db)?
        .map_or(Ok(0), |v| v.parse::<i64>())
        .map_err(|e| {
            error(StoreErrorKind::Corrupt, format!("loom_meta.workspace_schema_version is not a number: {e}"))
        })?;
    if version > WORKSPACE_POSTGRES_SCHEMA_VERSION {
        return Err(error(
            StoreErrorKind::Incompatible,
            format!(
                "the database's workspace tables have schema v{version}, migrated by a newer Loom; this Loom reads up \
                 to v{WORKSPACE_POSTGRES_SCHEMA_VERSION}"
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        sqlx::raw_sql(*sql).execute(&mut **tx).await.map_err(db)?;
        sqlx::query(
            "INSERT INTO loom_meta (key, value) VALUES ('workspace_schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind((i as i64 + 1).to_string())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

fn corrupt(what: &str, key: &str, e: impl std::fmt::Display) -> WorkspaceError {
    WorkspaceError::Store(error(StoreErrorKind::Corrupt, format!("{what} `{key}` is unreadable: {e}")))
}

fn encode_tags(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".to_owned())
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn ms(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_millis)
}

/// The columns of a note, in the order [`note`] reads them.
macro_rules! note_columns {
    () => {
        "slug, author, title, body, kind, tags, parent, version, created_ms, updated_ms, archived_ms, answered_by, \
         answered_ms, cited_count, success_count, last_cited_ms"
    };
}

fn note(row: &PgRow) -> Result<Note, WorkspaceError> {
    let slug: String = row.try_get(0).map_err(db)?;
    let kind: String = row.try_get(4).map_err(db)?;
    let tags: String = row.try_get(5).map_err(db)?;
    let kind = NoteKind::from_word(&kind).ok_or_else(|| corrupt("note", &slug, format!("unknown kind `{kind}`")))?;
    let tags: Vec<String> = serde_json::from_str(&tags).map_err(|e| corrupt("note", &slug, e))?;
    Ok(Note {
        author: row.try_get(1).map_err(db)?,
        title: row.try_get(2).map_err(db)?,
        body: row.try_get(3).map_err(db)?,
        kind,
        tags,
        parent: row.try_get(6).map_err(db)?,
        version: count(row.try_get(7).map_err(db)?),
        created_at: Timestamp::from_millis(row.try_get(8).map_err(db)?),
        updated_at: Timestamp::from_millis(row.try_get(9).map_err(db)?),
        archived_at: ms(row.try_get(10).map_err(db)?),
        answered_by: row.try_get(11).map_err(db)?,
        answered_at: ms(row.try_get(12).map_err(db)?),
        cited_count: count(row.try_get(13).map_err(db)?),
        success_count: count(row.try_get(14).map_err(db)?),
        last_cited_at: ms(row.try_get(15).map_err(db)?),
        slug,
    })
}

fn version(row: &PgRow) -> Result<NoteVersion, WorkspaceError> {
    let slug: String = row.try_get(0).map_err(db)?;
    let kind: String = row.try_get(5).map_err(db)?;
    let tags: String = row.try_get(6).map_err(db)?;
    let kind = NoteKind::from_word(&kind)
        .ok_or_else(|| corrupt("version of note", &slug, format!("unknown kind `{kind}`")))?;
    let tags: Vec<String> = serde_json::from_str(&tags).map_err(|e| corrupt("version of note", &slug, e))?;
    Ok(NoteVersion {
        version: count(row.try_get(1).map_err(db)?),
        author: row.try_get(2).map_err(db)?,
        title: row.try_get(3).map_err(db)?,
        body: row.try_get(4).map_err(db)?,
        kind,
        tags,
        parent: row.try_get(7).map_err(db)?,
        written_at: Timestamp::from_millis(row.try_get(8).map_err(db)?),
        slug,
    })
}

type Tx = Transaction<'static, Postgres>;

/// A transaction holding the user's lock: the changes of one user's workspace happen one at
/// a time, across every worker.
async fn begin(store: &PostgresStore, user: &str) -> Result<Tx, WorkspaceError> {
    let mut tx = store.pool().begin().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('loom_workspace' || chr(31) || $1, 0))")
        .bind(user)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(tx)
}

async fn get(tx: &mut Tx, user: &str, slug: &str) -> Result<Option<Note>, WorkspaceError> {
    let row =
        sqlx::query(concat!("SELECT ", note_columns!(), " FROM loom_workspace_notes WHERE user_id = $1 AND slug = $2"))
            .bind(user)
            .bind(slug)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db)?;
    row.as_ref().map(note).transpose()
}

async fn found(tx: &mut Tx, user: &str, slug: &str) -> Result<Note, WorkspaceError> {
    get(tx, user, slug).await?.ok_or_else(|| WorkspaceError::NotFound { slug: slug.to_owned(), suggestion: None })
}

async fn list(tx: &mut Tx, user: &str) -> Result<Vec<Note>, WorkspaceError> {
    let rows =
        sqlx::query(concat!("SELECT ", note_columns!(), " FROM loom_workspace_notes WHERE user_id = $1 ORDER BY slug"))
            .bind(user)
            .fetch_all(&mut **tx)
            .await
            .map_err(db)?;
    rows.iter().map(note).collect()
}

async fn save(tx: &mut Tx, user: &str, n: &Note) -> Result<(), WorkspaceError> {
    sqlx::query(concat!(
        "INSERT INTO loom_workspace_notes (user_id, ",
        note_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (user_id, slug) DO UPDATE SET author = EXCLUDED.author, title = EXCLUDED.title,
           body = EXCLUDED.body, kind = EXCLUDED.kind, tags = EXCLUDED.tags, parent = EXCLUDED.parent,
           version = EXCLUDED.version, created_ms = EXCLUDED.created_ms, updated_ms = EXCLUDED.updated_ms,
           archived_ms = EXCLUDED.archived_ms, answered_by = EXCLUDED.answered_by,
           answered_ms = EXCLUDED.answered_ms, cited_count = EXCLUDED.cited_count,
           success_count = EXCLUDED.success_count, last_cited_ms = EXCLUDED.last_cited_ms"
    ))
    .bind(user)
    .bind(&n.slug)
    .bind(&n.author)
    .bind(&n.title)
    .bind(&n.body)
    .bind(n.kind.as_str())
    .bind(encode_tags(&n.tags))
    .bind(&n.parent)
    .bind(i64_of(n.version))
    .bind(n.created_at.as_millis())
    .bind(n.updated_at.as_millis())
    .bind(n.archived_at.map(Timestamp::as_millis))
    .bind(&n.answered_by)
    .bind(n.answered_at.map(Timestamp::as_millis))
    .bind(i64_of(n.cited_count))
    .bind(i64_of(n.success_count))
    .bind(n.last_cited_at.map(Timestamp::as_millis))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

async fn history(tx: &mut Tx, user: &str, slug: Option<&str>) -> Result<Vec<NoteVersion>, WorkspaceError> {
    let rows = sqlx::query(
        "SELECT slug, version, author, title, body, kind, tags, parent, written_ms FROM loom_workspace_versions
         WHERE user_id = $1 AND ($2::text IS NULL OR slug = $2) ORDER BY slug, version",
    )
    .bind(user)
    .bind(slug)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    rows.iter().map(version).collect()
}

async fn runs(tx: &mut Tx, user: &str) -> Result<Vec<RunReads>, WorkspaceError> {
    let rows = sqlx::query(
        "SELECT r.run, r.started_ms, r.ended_ms, d.slug, d.reads, d.first_ms, d.last_ms
         FROM loom_workspace_runs r LEFT JOIN loom_workspace_reads d ON d.user_id = r.user_id AND d.run = r.run
         WHERE r.user_id = $1 ORDER BY r.run, d.ord",
    )
    .bind(user)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    let mut out: Vec<RunReads> = Vec::new();
    for row in &rows {
        let run: String = row.try_get(0).map_err(db)?;
        let started: i64 = row.try_get(1).map_err(db)?;
        let id: RunId = run.parse().map_err(|e| corrupt("run", &run, e))?;
        if out.last().is_none_or(|r| r.run != id) {
            out.push(RunReads {
                run: id,
                started_at: Timestamp::from_millis(started),
                ended_at: ms(row.try_get(2).map_err(db)?),
                notes: Vec::new(),
            });
        }
        let slug: Option<String> = row.try_get(3).map_err(db)?;
        if let (Some(slug), Some(record)) = (slug, out.last_mut()) {
            let reads: Option<i64> = row.try_get(4).map_err(db)?;
            let first: Option<i64> = row.try_get(5).map_err(db)?;
            let last: Option<i64> = row.try_get(6).map_err(db)?;
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

async fn commit(tx: Tx) -> Result<(), WorkspaceError> {
    Ok(tx.commit().await.map_err(db)?)
}

#[async_trait::async_trait]
impl WorkspaceStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create(&self, user: &UserId, mut note: Note) -> Result<Note, WorkspaceError> {
        if !is_slug(&note.slug) {
            note.slug = slugify(&note.slug);
        }
        let mut tx = begin(self, user.as_str()).await?;
        let taken: HashSet<String> = sqlx::query_scalar(
            "SELECT slug FROM loom_workspace_notes WHERE user_id = $1 AND (slug = $2 OR slug LIKE $2 || '-%')",
        )
        .bind(user.as_str())
        .bind(&note.slug)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
        note.slug = unique_slug(&note.slug, |s| taken.contains(s));
        sqlx::query("DELETE FROM loom_workspace_versions WHERE user_id = $1 AND slug = $2")
            .bind(user.as_str())
            .bind(&note.slug)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        save(&mut tx, user.as_str(), &note).await?;
        commit(tx).await?;
        Ok(note)
    }

    async fn get(&self, user: &UserId, slug: &str) -> Result<Option<Note>, WorkspaceError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            note_columns!(),
            " FROM loom_workspace_notes WHERE user_id = $1 AND slug = $2"
        ))
        .bind(user.as_str())
        .bind(slug)
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        row.as_ref().map(note).transpose()
    }

    async fn list(&self, user: &UserId) -> Result<Vec<Note>, WorkspaceError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            note_columns!(),
            " FROM loom_workspace_notes WHERE user_id = $1 ORDER BY slug"
        ))
        .bind(user.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        rows.iter().map(note).collect()
    }

    async fn update(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        edit: &NoteEdit,
        now: Timestamp,
    ) -> Result<Note, WorkspaceError> {
        let mut tx = begin(self, user.as_str()).await?;
        let current = found(&mut tx, user.as_str(), slug).await?;
        let next = apply_edit(&current, author, edit, now)?;
        let before = current.as_version();
        sqlx::query(
            "INSERT INTO loom_workspace_versions (user_id, slug, version, author, title, body, kind, tags, parent, written_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (user_id, slug, version) DO NOTHING",
        )
        .bind(user.as_str())
        .bind(&before.slug)
        .bind(i64_of(before.version))
        .bind(&before.author)
        .bind(&before.title)
        .bind(&before.body)
        .bind(before.kind.as_str())
        .bind(encode_tags(&before.tags))
        .bind(&before.parent)
        .bind(before.written_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        save(&mut tx, user.as_str(), &next).await?;
        commit(tx).await?;
        Ok(next)
    }

    async fn set_archived(
        &self,
        user: &UserId,
        slug: &str,
        author: &str,
        at: Option<Timestamp>,
    ) -> Result<Note, WorkspaceError> {
        let mut tx = begin(self, user.as_str()).await?;
        let mut note = found(&mut tx, user.as_str(), slug).await?;
        check_author(&note, author)?;
        note.archived_at = at;
        save(&mut tx, user.as_str(), &note).await?;
        commit(tx).await?;
        Ok(note)
    }

    async fn mark_answered(&self, user: &UserId, slug: &str, by: &str, at: Timestamp) -> Result<Note, WorkspaceError> {
        let mut tx = begin(self, user.as_str()).await?;
        let note = answered(found(&mut tx, user.as_str(), slug).await?, by, at)?;
        save(&mut tx, user.as_str(), &note).await?;
        commit(tx).await?;
        Ok(note)
    }

    async fn history(&self, user: &UserId, slug: &str) -> Result<Vec<NoteVersion>, WorkspaceError> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        let out = history(&mut tx, user.as_str(), Some(slug)).await?;
        commit(tx).await?;
        Ok(out)
    }

    async fn read(&self, user: &UserId, slug: &str, run: RunId, at: Timestamp) -> Result<Option<Note>, WorkspaceError> {
        let mut tx = begin(self, user.as_str()).await?;
        let Some(note) = get(&mut tx, user.as_str(), slug).await? else { return Ok(None) };
        sqlx::query(
            "INSERT INTO loom_workspace_runs (user_id, run, started_ms, ended_ms) VALUES ($1, $2, $3, NULL)
             ON CONFLICT (user_id, run) DO UPDATE SET ended_ms = NULL",
        )
        .bind(user.as_str())
        .bind(run.to_string())
        .bind(at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO loom_workspace_reads (user_id, run, slug, ord, reads, first_ms, last_ms)
             VALUES ($1, $2, $3, (SELECT count(*) FROM loom_workspace_reads WHERE user_id = $1 AND run = $2), 1, $4, $4)
             ON CONFLICT (user_id, run, slug) DO UPDATE
             SET reads = loom_workspace_reads.reads + 1, last_ms = EXCLUDED.last_ms",
        )
        .bind(user.as_str())
        .bind(run.to_string())
        .bind(slug)
        .bind(at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        commit(tx).await?;
        Ok(Some(note))
    }

    async fn runs(&self, user: &UserId) -> Result<Vec<RunReads>, WorkspaceError> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        let out = runs(&mut tx, user.as_str()).await?;
        commit(tx).await?;
        Ok(out)
    }

    async fn attribute(
        &self,
        user: &UserId,
        target: &Attribution,
        success: bool,
        now: Timestamp,
    ) -> Result<usize, WorkspaceError> {
        let mut tx = begin(self, user.as_str()).await?;
        let slugs: Vec<String> = match target {
            Attribution::Run(run) => {
                let ended = sqlx::query(
                    "UPDATE loom_workspace_runs SET ended_ms = $3 WHERE user_id = $1 AND run = $2 AND ended_ms IS NULL",
                )
                .bind(user.as_str())
                .bind(run.to_string())
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
                if ended == 0 {
                    Vec::new()
                } else {
                    sqlx::query_scalar("SELECT slug FROM loom_workspace_reads WHERE user_id = $1 AND run = $2")
                        .bind(user.as_str())
                        .bind(run.to_string())
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db)?
                }
            }
            Attribution::Notes(slugs) => dedup(slugs),
        };
        let mut n = 0;
        for slug in slugs {
            if let Some(mut note) = get(&mut tx, user.as_str(), &slug).await? {
                credited(&mut note, success, now);
                save(&mut tx, user.as_str(), &note).await?;
                n += 1;
            }
        }
        commit(tx).await?;
        Ok(n)
    }

    async fn end_run(&self, user: &UserId, run: RunId, now: Timestamp) -> Result<bool, WorkspaceError> {
        let ended = sqlx::query(
            "UPDATE loom_workspace_runs SET ended_ms = $3 WHERE user_id = $1 AND run = $2 AND ended_ms IS NULL",
        )
        .bind(user.as_str())
        .bind(run.to_string())
        .bind(now.as_millis())
        .execute(self.pool())
        .await
        .map_err(db)?
        .rows_affected();
        Ok(ended > 0)
    }

    async fn prune(&self, user: &UserId, rule: &PruneRule, now: Timestamp) -> Result<PruneReport, WorkspaceError> {
        let u = user.as_str();
        let mut tx = begin(self, u).await?;
        let notes = list(&mut tx, u).await?;
        let plan = prune_plan(&notes, rule, &live_slugs(&runs(&mut tx, u).await?), now);
        let mut report = PruneReport {
            notes_kept: plan.kept,
            kept_for_live_runs: plan.kept_for_live_runs,
            ..PruneReport::default()
        };
        for note in &notes {
            if plan.delete.contains(&note.slug) {
                sqlx::query("DELETE FROM loom_workspace_notes WHERE user_id = $1 AND slug = $2")
                    .bind(u)
                    .bind(&note.slug)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                report.notes_deleted += 1;
                let gone = sqlx::query("DELETE FROM loom_workspace_versions WHERE user_id = $1 AND slug = $2")
                    .bind(u)
                    .bind(&note.slug)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                report.versions_deleted += usize::try_from(gone).unwrap_or(0);
            } else if let Some(below) = versions_below(note.version, rule.keep_last_versions) {
                let gone = sqlx::query(
                    "DELETE FROM loom_workspace_versions WHERE user_id = $1 AND slug = $2 AND version < $3",
                )
                .bind(u)
                .bind(&note.slug)
                .bind(i64_of(below))
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
                report.versions_deleted += usize::try_from(gone).unwrap_or(0);
            }
        }
        sqlx::query(
            "DELETE FROM loom_workspace_reads WHERE user_id = $1 AND run IN
             (SELECT run FROM loom_workspace_runs WHERE user_id = $1 AND ended_ms IS NOT NULL)",
        )
        .bind(u)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let cleared = sqlx::query("DELETE FROM loom_workspace_runs WHERE user_id = $1 AND ended_ms IS NOT NULL")
            .bind(u)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        report.runs_cleared = usize::try_from(cleared).unwrap_or(0);
        commit(tx).await?;
        Ok(report)
    }

    async fn export(&self, user: &UserId) -> Result<WorkspaceData, WorkspaceError> {
        let u = user.as_str();
        let mut tx = self.pool().begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await.map_err(db)?;
        let data = WorkspaceData {
            notes: list(&mut tx, u).await?,
            versions: history(&mut tx, u, None).await?,
            runs: runs(&mut tx, u).await?,
        };
        commit(tx).await?;
        Ok(data)
    }

    async fn forget(&self, user: &UserId) -> Result<usize, WorkspaceError> {
        let u = user.as_str();
        let mut tx = begin(self, u).await?;
        let notes = sqlx::query("DELETE FROM loom_workspace_notes WHERE user_id = $1")
            .bind(u)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        for sql in [
            "DELETE FROM loom_workspace_versions WHERE user_id = $1",
            "DELETE FROM loom_workspace_reads WHERE user_id = $1",
            "DELETE FROM loom_workspace_runs WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(u).execute(&mut *tx).await.map_err(db)?;
        }
        commit(tx).await?;
        Ok(usize::try_from(notes).unwrap_or(0))
    }
}
