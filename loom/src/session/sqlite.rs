//! SQLite: the embedded store for sessions and run journals (bundled SQLite, WAL).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::journal::{Journal, RawRecord, RunInfo, RunKey, RunStatus, lease_end, lease_live, now_ms};
use super::{SessionStore, Window, window_start};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::{RunId, SessionId, UserId};
use crate::model::Message;

/// The schema version this Loom writes (SQLite's `user_version`).
pub const SQLITE_SCHEMA_VERSION: i64 = 5;

const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE loom_messages (
        user TEXT NOT NULL, session TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL,
        PRIMARY KEY (user, session, seq)
    ) WITHOUT ROWID;
    CREATE TABLE loom_runs (
        user TEXT NOT NULL, session TEXT NOT NULL, run TEXT NOT NULL, status TEXT NOT NULL,
        owner TEXT, lease_until INTEGER, started_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
        PRIMARY KEY (user, session, run)
    ) WITHOUT ROWID;
    CREATE TABLE loom_session_runs (
        user TEXT NOT NULL, session TEXT NOT NULL, run TEXT NOT NULL,
        PRIMARY KEY (user, session, run)
    ) WITHOUT ROWID;
    CREATE TABLE loom_journal (
        user TEXT NOT NULL, session TEXT NOT NULL, run TEXT NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL,
        PRIMARY KEY (user, session, run, seq)
    ) WITHOUT ROWID;
",
    "
    CREATE TABLE loom_blocks (
        user TEXT NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL, updated_ms INTEGER NOT NULL,
        PRIMARY KEY (user, name)
    ) WITHOUT ROWID;
    CREATE TABLE loom_episodes (
        rowid INTEGER PRIMARY KEY, user TEXT NOT NULL, id TEXT NOT NULL UNIQUE, session TEXT,
        kind TEXT NOT NULL, text TEXT NOT NULL, at_ms INTEGER NOT NULL, metadata TEXT NOT NULL,
        embedder TEXT, vector BLOB
    );
    CREATE INDEX loom_episodes_by_user ON loom_episodes (user, at_ms);
    CREATE VIRTUAL TABLE loom_episodes_text USING fts5(
        text, content = 'loom_episodes', content_rowid = 'rowid', tokenize = 'unicode61'
    );
    CREATE TRIGGER loom_episodes_indexed AFTER INSERT ON loom_episodes BEGIN
        INSERT INTO loom_episodes_text (rowid, text) VALUES (new.rowid, new.text);
    END;
    CREATE TRIGGER loom_episodes_unindexed AFTER DELETE ON loom_episodes BEGIN
        INSERT INTO loom_episodes_text (loom_episodes_text, rowid, text) VALUES ('delete', old.rowid, old.text);
    END;
    CREATE TABLE loom_facts (
        user TEXT NOT NULL, id TEXT NOT NULL, subject TEXT NOT NULL, subject_key TEXT NOT NULL,
        predicate TEXT NOT NULL, object TEXT NOT NULL, confidence REAL NOT NULL,
        valid_from INTEGER NOT NULL, valid_until INTEGER, recorded_at INTEGER NOT NULL,
        closed_at INTEGER, retracted_at INTEGER, sources TEXT NOT NULL,
        PRIMARY KEY (user, id)
    ) WITHOUT ROWID;
    CREATE INDEX loom_facts_by_subject ON loom_facts (user, subject_key, predicate);
",
    // Recall ranks in the process, over each user's own episodes (BM25 with the user's own
    // statistics, vectors with a sign pass), so FTS5's index over every user's text goes. A
    // user's revision says when the episodes a process read into its index have changed: a
    // tick of one clock per change, so a value is never seen twice.
    "
    DROP TRIGGER loom_episodes_indexed;
    DROP TRIGGER loom_episodes_unindexed;
    DROP TABLE loom_episodes_text;
    DROP INDEX loom_episodes_by_user;
    CREATE INDEX loom_episodes_by_user ON loom_episodes (user);
    CREATE TABLE loom_memory_clock (tick INTEGER NOT NULL);
    INSERT INTO loom_memory_clock (tick) VALUES (0);
    CREATE TABLE loom_memory_revisions (
        user TEXT NOT NULL PRIMARY KEY, added INTEGER NOT NULL, removed INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO loom_memory_revisions (user, added, removed) SELECT DISTINCT user, 0, 0 FROM loom_episodes;
    CREATE TRIGGER loom_episodes_added AFTER INSERT ON loom_episodes BEGIN
        UPDATE loom_memory_clock SET tick = tick + 1;
        INSERT INTO loom_memory_revisions (user, added, removed)
            VALUES (new.user, (SELECT tick FROM loom_memory_clock), 0)
            ON CONFLICT (user) DO UPDATE SET added = excluded.added;
    END;
    CREATE TRIGGER loom_episodes_removed AFTER DELETE ON loom_episodes BEGIN
        UPDATE loom_memory_clock SET tick = tick + 1;
        INSERT INTO loom_memory_revisions (user, added, removed)
            VALUES (old.user, 0, (SELECT tick FROM loom_memory_clock))
            ON CONFLICT (user) DO UPDATE SET removed = excluded.removed;
    END;
    CREATE TRIGGER loom_episodes_changed AFTER UPDATE ON loom_episodes BEGIN
        UPDATE loom_memory_clock SET tick = tick + 1;
        INSERT INTO loom_memory_revisions (user, added, removed)
            VALUES (new.user, 0, (SELECT tick FROM loom_memory_clock))
            ON CONFLICT (user) DO UPDATE SET removed = excluded.removed;
    END;
",
    // The chunks of the users' RAG collections, ranked in the process like episodes, with a
    // revision per user on the same clock.
    "
    CREATE TABLE loom_chunks (
        rowid INTEGER PRIMARY KEY, user TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
        document TEXT NOT NULL, idx INTEGER NOT NULL, text TEXT NOT NULL, start_byte INTEGER NOT NULL,
        end_byte INTEGER NOT NULL, metadata TEXT NOT NULL, vector BLOB,
        UNIQUE (user, collection, id)
    );
    CREATE INDEX loom_chunks_by_document ON loom_chunks (user, collection, document);
    CREATE TABLE loom_chunk_revisions (
        user TEXT NOT NULL PRIMARY KEY, added INTEGER NOT NULL, removed INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TRIGGER loom_chunks_added AFTER INSERT ON loom_chunks BEGIN
        UPDATE loom_memory_clock SET tick = tick + 1;
        INSERT INTO loom_chunk_revisions (user, added, removed)
            VALUES (new.user, (SELECT tick FROM loom_memory_clock), 0)
            ON CONFLICT (user) DO UPDATE SET added = excluded.added;
    END;
    CREATE TRIGGER loom_chunks_removed AFTER DELETE ON loom_chunks BEGIN
        UPDATE loom_memory_clock SET tick = tick + 1;
        INSERT INTO loom_chunk_revisions (user, added, removed)
            VALUES (old.user, 0, (SELECT tick FROM loom_memory_clock))
            ON CONFLICT (user) DO UPDATE SET removed = excluded.removed;
    END;
    CREATE TRIGGER loom_chunks_changed AFTER UPDATE ON loom_chunks BEGIN
        UPDATE loom_memory_clock SET tick = tick + 1;
        INSERT INTO loom_chunk_revisions (user, added, removed)
            VALUES (new.user, 0, (SELECT tick FROM loom_memory_clock))
            ON CONFLICT (user) DO UPDATE SET removed = excluded.removed;
    END;
",
    // What users spent, per budget period (governance; the row of user '' is everyone's), and
    // the token buckets of shared rate limits.
    "
    CREATE TABLE loom_usage (
        user TEXT NOT NULL, period INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, model_calls INTEGER NOT NULL,
        tool_calls INTEGER NOT NULL, PRIMARY KEY (user, period)
    ) WITHOUT ROWID;
    CREATE TABLE loom_rate (bucket TEXT NOT NULL PRIMARY KEY, tokens REAL NOT NULL, at_ms INTEGER NOT NULL) WITHOUT ROWID;
",
];

pub(crate) fn error(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
    StoreError::new(kind, "sqlite", message)
}

pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => StoreErrorKind::Unavailable,
            rusqlite::ErrorCode::ConstraintViolation => StoreErrorKind::Conflict,
            rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase => StoreErrorKind::Corrupt,
            _ => StoreErrorKind::Other,
        },
        _ => StoreErrorKind::Other,
    };
    error(kind, e.to_string()).with_source(e)
}

/// Sessions and run journals in one SQLite file.
///
/// SQLite is bundled (no server); the database runs in WAL mode so readers never wait for
/// the writer, and each call runs on tokio's blocking pool, never on the async threads.
/// Writes are durable: `synchronous = FULL` syncs the write-ahead log at every commit, so a
/// journaled step that was acknowledged survives a power loss, not only a crash.
/// Several processes may open the same file: a run started by one can be resumed by another.
/// The schema is versioned (`user_version`); a database written by a newer Loom is refused.
///
/// ```
/// use std::sync::Arc;
/// use loomflow::prelude::*;
/// use loomflow::session::SqliteStore;
///
/// let store = Arc::new(SqliteStore::in_memory()?);
/// let agent = Agent::new("Remember.").model("echo").store(store);
/// # Ok::<(), loomflow::StoreError>(())
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The users' recall indexes this process has read.
    pub(crate) recall: Arc<Mutex<crate::memory::RecallCache>>,
    /// The users' chunk indexes this process has read (RAG collections).
    #[cfg(feature = "rag")]
    pub(crate) chunks: Arc<Mutex<crate::memory::RecallCache>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let conn = Connection::open(path)
            .map_err(|e| error(StoreErrorKind::Unavailable, format!("cannot open {}: {e}", path.display())))?;
        Self::setup(conn)
    }

    /// A private database in memory (for tests and throwaway runs).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory().map_err(db)?)
    }

    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(5)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss.
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        migrate(&mut conn)?;
        // The workspace's tables, with a schema version of their own.
        #[cfg(feature = "workspace")]
        crate::workspace::sqlite::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            recall: Arc::default(),
            #[cfg(feature = "rag")]
            chunks: Arc::new(Mutex::new(crate::memory::RecallCache::new(&crate::memory::CHUNKS))),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic inside a statement cannot leave SQLite half-written (it is transactional).
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| error(StoreErrorKind::Other, format!("the database task failed: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db)?;
    if version > SQLITE_SCHEMA_VERSION {
        return Err(error(
            StoreErrorKind::Incompatible,
            format!(
                "the database has schema v{version}, written by a newer Loom; this Loom reads up to v{SQLITE_SCHEMA_VERSION}"
            ),
        ));
    }
    let tx = conn.transaction().map_err(db)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(db)?;
        tx.pragma_update(None, "user_version", i as i64 + 1).map_err(db)?;
    }
    tx.commit().map_err(db)
}

fn conflict(message: String) -> StoreError {
    error(StoreErrorKind::Conflict, message)
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn load(&self, user: &UserId, session: &SessionId, limit: Option<usize>) -> Result<Vec<Message>, StoreError> {
        Ok(self.load_window(user, session, limit).await?.messages)
    }

    async fn load_window(
        &self,
        user: &UserId,
        session: &SessionId,
        limit: Option<usize>,
    ) -> Result<Window, StoreError> {
        let (user, session) = (user.to_string(), session.to_string());
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, message FROM loom_messages WHERE user = ?1 AND session = ?2 ORDER BY seq DESC LIMIT ?3",
                )
                .map_err(db)?;
            let sql_limit = limit.map_or(-1, |l| l as i64);
            let rows = stmt
                .query_map(params![user, session, sql_limit], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(db)?;
            let mut history = Vec::new();
            let mut first = 0;
            for row in rows {
                let (seq, json) = row.map_err(db)?;
                let message = serde_json::from_str::<Message>(&json).map_err(|e| {
                    error(StoreErrorKind::Corrupt, format!("message {seq} of session `{session}` is unreadable: {e}"))
                })?;
                history.push(message);
                first = seq;
            }
            history.reverse();
            let start = window_start(&history, limit);
            // Positions are the messages' sequence numbers, which count from 0 without gaps.
            Ok(Window { messages: history.split_off(start), start: first as usize + start })
        })
        .await
    }

    async fn append(
        &self,
        user: &UserId,
        session: &SessionId,
        run: RunId,
        messages: &[Message],
    ) -> Result<(), StoreError> {
        let (user, session, run) = (user.to_string(), session.to_string(), run.to_string());
        let rows: Vec<String> = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|e| error(StoreErrorKind::Other, format!("a message could not be encoded: {e}")))?;
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let first_time = tx
                .execute(
                    "INSERT OR IGNORE INTO loom_session_runs (user, session, run) VALUES (?1, ?2, ?3)",
                    params![user, session, run],
                )
                .map_err(db)?;
            if first_time == 0 {
                return Ok(());
            }
            let next: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(seq) + 1, 0) FROM loom_messages WHERE user = ?1 AND session = ?2",
                    params![user, session],
                    |r| r.get(0),
                )
                .map_err(db)?;
            {
                let mut insert = tx
                    .prepare_cached("INSERT INTO loom_messages (user, session, seq, message) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(db)?;
                for (i, json) in rows.iter().enumerate() {
                    insert.execute(params![user, session, next + i as i64, json]).map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn clear(&self, user: &UserId, session: &SessionId) -> Result<bool, StoreError> {
        let (user, session) = (user.to_string(), session.to_string());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let mut n = 0;
            for table in ["loom_messages", "loom_session_runs", "loom_journal", "loom_runs"] {
                // The session, and its sub-sessions: ids from `{session}/` up to `{session}0`
                // (`0` follows `/`), in SQLite's byte order.
                let sql = format!(
                    "DELETE FROM {table} WHERE user = ?1 AND (session = ?2 OR (session >= ?2 || '/' AND session < ?2 || '0'))"
                );
                n += tx.execute(&sql, params![user, session]).map_err(db)?;
            }
            tx.commit().map_err(db)?;
            Ok(n > 0)
        })
        .await
    }

    async fn sessions(&self, user: &UserId) -> Result<Vec<SessionId>, StoreError> {
        let user = user.to_string();
        self.with(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT session FROM loom_messages WHERE user = ?1 UNION SELECT session FROM loom_runs WHERE user = ?1").map_err(db)?;
            let rows = stmt.query_map(params![user], |r| r.get::<_, String>(0)).map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let s = row.map_err(db)?;
                out.push(
                    SessionId::new(&s).map_err(|e| error(StoreErrorKind::Corrupt, format!("session id `{s}`: {e}")))?,
                );
            }
            Ok(out)
        })
        .await
    }
}

fn key_strings(key: &RunKey) -> (String, String, String) {
    (key.user.to_string(), key.session.to_string(), key.run.to_string())
}

#[async_trait::async_trait]
impl Journal for SqliteStore {
    async fn acquire(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        let (user, session, run) = key_strings(key);
        let owner = owner.to_owned();
        self.with(move |conn| {
            let now = now_ms() as i64;
            let until = lease_end(now as u64, ttl).min(i64::MAX as u64) as i64;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let current: Option<(Option<String>, Option<i64>)> = tx
                .query_row(
                    "SELECT owner, lease_until FROM loom_runs WHERE user = ?1 AND session = ?2 AND run = ?3",
                    params![user, session, run],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            match current {
                None => {
                    tx.execute(
                        "INSERT INTO loom_runs (user, session, run, status, owner, lease_until, started_ms, updated_ms)
                         VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?6)",
                        params![user, session, run, owner, until, now],
                    )
                    .map_err(db)?;
                }
                Some((held_by, lease_until)) => {
                    if held_by.as_deref().is_some_and(|o| o != owner)
                        && lease_live(lease_until.map(|l| l as u64), now as u64)
                    {
                        return Err(conflict(format!("run {run} is held by another worker")));
                    }
                    tx.execute(
                        "UPDATE loom_runs SET status = 'running', owner = ?4, lease_until = ?5, updated_ms = ?6
                         WHERE user = ?1 AND session = ?2 AND run = ?3",
                        params![user, session, run, owner, until, now],
                    )
                    .map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn append(&self, key: &RunKey, owner: &str, ttl: Duration, record: RawRecord) -> Result<(), StoreError> {
        let (user, session, run) = key_strings(key);
        let owner = owner.to_owned();
        self.with(move |conn| {
            let now = now_ms() as i64;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let renewed = tx
                .execute(
                    "UPDATE loom_runs SET lease_until = ?5, updated_ms = ?6
                     WHERE user = ?1 AND session = ?2 AND run = ?3 AND owner = ?4",
                    params![user, session, run, owner, lease_end(now as u64, ttl).min(i64::MAX as u64) as i64, now],
                )
                .map_err(db)?;
            if renewed == 0 {
                return Err(conflict(format!("run {run} is not held by this worker")));
            }
            tx.execute(
                "INSERT INTO loom_journal (user, session, run, seq, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user, session, run, record.seq as i64, record.bytes],
            )
            .map_err(|e| match db(e) {
                err if err.kind() == StoreErrorKind::Conflict => {
                    conflict(format!("record {} of run {run} is already written", record.seq))
                }
                err => err,
            })?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn renew(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        let (user, session, run) = key_strings(key);
        let owner = owner.to_owned();
        self.with(move |conn| {
            let until = lease_end(now_ms(), ttl).min(i64::MAX as u64) as i64;
            let renewed = conn
                .execute(
                    "UPDATE loom_runs SET lease_until = ?5 WHERE user = ?1 AND session = ?2 AND run = ?3 AND owner = ?4",
                    params![user, session, run, owner, until],
                )
                .map_err(db)?;
            if renewed == 0 {
                return Err(conflict(format!("run {run} is not held by this worker")));
            }
            Ok(())
        })
        .await
    }

    async fn finish(&self, key: &RunKey, owner: &str, status: RunStatus) -> Result<(), StoreError> {
        let (user, session, run) = key_strings(key);
        let owner = owner.to_owned();
        self.with(move |conn| {
            conn.execute(
                "UPDATE loom_runs SET status = ?5, owner = NULL, lease_until = NULL, updated_ms = ?6
                 WHERE user = ?1 AND session = ?2 AND run = ?3 AND owner = ?4",
                params![user, session, run, owner, status.as_str(), now_ms() as i64],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn records(&self, key: &RunKey) -> Result<Vec<RawRecord>, StoreError> {
        let (user, session, run) = key_strings(key);
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, record FROM loom_journal WHERE user = ?1 AND session = ?2 AND run = ?3 ORDER BY seq",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![user, session, run], |r| {
                    Ok(RawRecord { seq: r.get::<_, i64>(0)? as u64, bytes: r.get(1)? })
                })
                .map_err(db)?;
            rows.map(|r| r.map_err(db)).collect()
        })
        .await
    }

    async fn runs(&self, user: &UserId, session: &SessionId) -> Result<Vec<RunInfo>, StoreError> {
        let (user, session) = (user.to_string(), session.to_string());
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT run, status, started_ms, updated_ms, CASE WHEN owner IS NULL THEN NULL ELSE lease_until END
                     FROM loom_runs WHERE user = ?1 AND session = ?2 ORDER BY started_ms, run",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![user, session], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (run, status, started, updated, lease) = row.map_err(db)?;
                let run: RunId =
                    run.parse().map_err(|e| error(StoreErrorKind::Corrupt, format!("run id `{run}`: {e}")))?;
                let status = RunStatus::parse(&status).ok_or_else(|| {
                    error(StoreErrorKind::Corrupt, format!("run {run} has the unknown status `{status}`"))
                })?;
                out.push(RunInfo {
                    run,
                    status,
                    started_ms: started as u64,
                    updated_ms: updated as u64,
                    lease_until_ms: lease.map(|l| l as u64),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn import(&self, key: &RunKey, status: RunStatus, records: Vec<RawRecord>) -> Result<(), StoreError> {
        let (user, session, run) = key_strings(key);
        self.with(move |conn| {
            let now = now_ms() as i64;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let live: Option<(Option<String>, Option<i64>)> = tx
                .query_row(
                    "SELECT owner, lease_until FROM loom_runs WHERE user = ?1 AND session = ?2 AND run = ?3",
                    params![user, session, run],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            if let Some((Some(_), lease)) = live
                && lease_live(lease.map(|l| l as u64), now as u64)
            {
                return Err(conflict(format!("run {run} is held by a worker")));
            }
            tx.execute(
                "INSERT INTO loom_runs (user, session, run, status, owner, lease_until, started_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, NULL, NULL, ?5, ?5)
                 ON CONFLICT (user, session, run) DO UPDATE SET status = ?4, owner = NULL, lease_until = NULL, updated_ms = ?5",
                params![user, session, run, status.as_str(), now],
            )
            .map_err(db)?;
            tx.execute("DELETE FROM loom_journal WHERE user = ?1 AND session = ?2 AND run = ?3", params![user, session, run])
                .map_err(db)?;
            {
                let mut insert = tx
                    .prepare_cached("INSERT INTO loom_journal (user, session, run, seq, record) VALUES (?1, ?2, ?3, ?4, ?5)")
                    .map_err(db)?;
                for r in &records {
                    insert.execute(params![user, session, run, r.seq as i64, r.bytes]).map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commits_are_synced_to_disk() -> Result<(), StoreError> {
        let path = std::env::temp_dir().join(format!("loom-sync-{}.db", RunId::generate()));
        let store = SqliteStore::open(&path)?;
        let (mode, sync) = store
            .with(|conn| {
                let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).map_err(db)?;
                let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).map_err(db)?;
                Ok((mode, sync))
            })
            .await?;
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        // WAL with synchronous = FULL (2): every commit is on disk before it returns.
        assert_eq!((mode.as_str(), sync), ("wal", 2));
        Ok(())
    }
}
