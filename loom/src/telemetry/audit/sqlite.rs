//! The audit log in SQLite.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::chain::{Prepared, Row, Stored, next_after};
use super::key::AuditKey;
use super::policy::AuditPolicy;
use super::record::{AuditEntry, AuditRecord};
use super::verify::{VerifyReport, report};
use super::{AuditError, AuditLog};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::UserId;
use crate::session::sqlite::{db, error};

/// The schema version of the audit table this Loom writes (in `loom_audit_schema`).
pub const SQLITE_AUDIT_SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &["
    CREATE TABLE loom_audit (
        user TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, session TEXT, run_id TEXT,
        actor TEXT NOT NULL, action TEXT NOT NULL, payload TEXT, payload_hash TEXT NOT NULL,
        prev TEXT NOT NULL, sig TEXT NOT NULL,
        PRIMARY KEY (user, seq)
    );
"];

const COLUMNS: &str = "user, seq, at, session, run_id, actor, action, payload, payload_hash, prev, sig";

/// An audit log in a SQLite database: table `loom_audit`, one row per entry, keyed by
/// `(user, seq)`.
///
/// The database may be the one a [`SqliteStore`](crate::session::SqliteStore) uses (the
/// table has a schema version of its own). Each append is a `BEGIN IMMEDIATE` transaction that
/// reads the user's last entry and inserts the next, so several processes on one file keep one
/// chain per user; WAL mode, a five-second busy timeout, and `synchronous = FULL` (an
/// acknowledged entry survives a power loss). Verification reads rows in the order they were
/// inserted (`rowid`). Calls run on tokio's blocking pool.
///
/// ```
/// use loomflow::UserId;
/// use loomflow::telemetry::audit::{AuditAction, AuditKey, AuditLog, AuditRecord, SqliteAuditLog};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let log = SqliteAuditLog::in_memory(AuditKey::from_bytes([7u8; 32])?)?;
/// let entry = log.append(AuditRecord::new(UserId::new("alice")?, AuditAction::RunStarted, serde_json::json!({}))).await?;
/// assert_eq!(entry.seq, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteAuditLog {
    conn: Arc<Mutex<Connection>>,
    key: AuditKey,
    policy: AuditPolicy,
}

impl std::fmt::Debug for SqliteAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAuditLog").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl SqliteAuditLog {
    /// Opens (or creates) the database at `path`, creates or updates its audit table, signs
    /// with `key` and redacts by [`AuditPolicy::default`].
    pub fn open(path: impl AsRef<Path>, key: AuditKey) -> Result<Self, AuditError> {
        let path = path.as_ref();
        let conn = Connection::open(path)
            .map_err(|e| error(StoreErrorKind::Unavailable, format!("cannot open {}: {e}", path.display())))?;
        Self::setup(conn, key)
    }

    /// A private database in memory (for tests).
    pub fn in_memory(key: AuditKey) -> Result<Self, AuditError> {
        Self::setup(Connection::open_in_memory().map_err(db)?, key)
    }

    /// Redacts payloads by `policy` instead.
    #[must_use]
    pub fn policy(mut self, policy: AuditPolicy) -> Self {
        self.policy = policy;
        self
    }

    fn setup(mut conn: Connection, key: AuditKey) -> Result<Self, AuditError> {
        conn.busy_timeout(Duration::from_secs(5)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss.
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        migrate(&mut conn)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), key, policy: AuditPolicy::default() })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &AuditKey) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, AuditError> {
        let (conn, key) = (Arc::clone(&self.conn), self.key.clone());
        tokio::task::spawn_blocking(move || {
            // A panic inside a statement cannot leave SQLite half-written (it is transactional).
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn, &key)
        })
        .await
        .map_err(AuditError::task)?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS loom_audit_schema (version INTEGER NOT NULL)").map_err(db)?;
    let version: i64 =
        tx.query_row("SELECT version FROM loom_audit_schema", [], |r| r.get(0)).optional().map_err(db)?.unwrap_or(0);
    if version > SQLITE_AUDIT_SCHEMA_VERSION {
        return Err(error(
            StoreErrorKind::Incompatible,
            format!(
                "the database's audit table has schema v{version}, written by a newer Loom; this Loom reads up to \
                 v{SQLITE_AUDIT_SCHEMA_VERSION}"
            ),
        ));
    }
    for sql in MIGRATIONS.iter().skip(usize::try_from(version).unwrap_or(0)) {
        tx.execute_batch(sql).map_err(db)?;
    }
    if version < SQLITE_AUDIT_SCHEMA_VERSION {
        tx.execute("DELETE FROM loom_audit_schema", []).map_err(db)?;
        tx.execute("INSERT INTO loom_audit_schema (version) VALUES (?1)", params![SQLITE_AUDIT_SCHEMA_VERSION])
            .map_err(db)?;
    }
    tx.commit().map_err(db)
}

/// Inside a transaction: the user's next entry, inserted.
fn insert_next(tx: &rusqlite::Transaction<'_>, key: &AuditKey, prepared: Prepared) -> Result<AuditEntry, AuditError> {
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, sig FROM loom_audit WHERE user = ?1 ORDER BY seq DESC LIMIT 1",
            [prepared.user.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db)?;
    let head = head.map(|(seq, sig)| (u64::try_from(seq).unwrap_or(0), sig));
    let (seq, prev) = next_after(&prepared.user, head.as_ref().map(|(seq, sig)| (*seq, sig.as_str())))?;
    let entry = prepared.seal(key, seq, prev);
    let row = Row::of(&entry).ok_or_else(|| AuditError::ChainFull { user: entry.user.clone(), seq: entry.seq })?;
    tx.prepare_cached(&format!(
        "INSERT INTO loom_audit ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))
    .map_err(db)?
    .execute(params![
        row.user,
        row.seq,
        row.at,
        row.session,
        row.run_id,
        row.actor,
        row.action,
        row.payload,
        row.payload_hash,
        row.prev,
        row.sig
    ])
    .map_err(db)?;
    Ok(entry)
}

/// The rows `sql` selects (its columns [`COLUMNS`]), decoded; rows that do not decode are
/// [`Stored::Corrupt`] at their position.
fn read_rows(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Stored>, AuditError> {
    let mut stmt = conn.prepare(sql).map_err(db)?;
    let mut rows = stmt.query(args).map_err(db)?;
    let mut stored = Vec::new();
    while let Some(r) = rows.next().map_err(db)? {
        let line = stored.len() as u64 + 1;
        let row = (|| {
            Ok::<_, rusqlite::Error>(Row {
                user: r.get(0)?,
                seq: r.get(1)?,
                at: r.get(2)?,
                session: r.get(3)?,
                run_id: r.get(4)?,
                actor: r.get(5)?,
                action: r.get(6)?,
                payload: r.get(7)?,
                payload_hash: r.get(8)?,
                prev: r.get(9)?,
                sig: r.get(10)?,
            })
        })();
        stored.push(match row {
            Ok(row) => row.decode(line),
            Err(e) => Stored::Corrupt {
                line,
                user: r.get::<_, String>(0).ok().and_then(|u| UserId::new(u).ok()),
                seq: r.get::<_, i64>(1).ok().and_then(|s| u64::try_from(s).ok()),
                error: e.to_string(),
            },
        });
    }
    Ok(stored)
}

fn entries_of(stored: Vec<Stored>) -> Vec<AuditEntry> {
    stored
        .into_iter()
        .filter_map(|s| match s {
            Stored::Entry(e) => Some(e),
            Stored::Corrupt { .. } => None,
        })
        .collect()
}

#[async_trait::async_trait]
impl AuditLog for SqliteAuditLog {
    async fn append(&self, record: AuditRecord) -> Result<AuditEntry, AuditError> {
        let prepared = Prepared::new(record, &self.policy);
        self.with(move |conn, key| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let entry = insert_next(&tx, key, prepared)?;
            tx.commit().map_err(db)?;
            Ok(entry)
        })
        .await
    }

    async fn entries(&self, user: &UserId) -> Result<Vec<AuditEntry>, AuditError> {
        let user = user.to_string();
        self.with(move |conn, _| {
            let sql = format!("SELECT {COLUMNS} FROM loom_audit WHERE user = ?1 ORDER BY seq");
            Ok(entries_of(read_rows(conn, &sql, [user])?))
        })
        .await
    }

    async fn users(&self) -> Result<Vec<UserId>, AuditError> {
        self.with(|conn, _| {
            let mut stmt = conn.prepare("SELECT DISTINCT user FROM loom_audit ORDER BY user").map_err(db)?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
            let mut users = Vec::new();
            for name in names {
                // A row whose user is not a user id is damaged; verify reports it.
                if let Ok(user) = UserId::new(name.map_err(db)?) {
                    users.push(user);
                }
            }
            Ok(users)
        })
        .await
    }

    async fn verify(&self, user: Option<&UserId>) -> Result<VerifyReport, AuditError> {
        let user = user.map(ToString::to_string);
        self.with(move |conn, key| {
            // Storage order: the order rows were inserted in.
            let stored = match user {
                Some(user) => read_rows(
                    conn,
                    &format!("SELECT {COLUMNS} FROM loom_audit WHERE user = ?1 ORDER BY rowid"),
                    [user],
                )?,
                None => read_rows(conn, &format!("SELECT {COLUMNS} FROM loom_audit ORDER BY rowid"), [])?,
            };
            Ok(report(key, stored))
        })
        .await
    }

    async fn forget(&self, user: &UserId) -> Result<u64, AuditError> {
        let user = user.clone();
        let policy = self.policy.clone();
        self.with(move |conn, key| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let erased = tx
                .execute(
                    "UPDATE loom_audit SET payload = NULL WHERE user = ?1 AND payload IS NOT NULL",
                    [user.as_str()],
                )
                .map_err(db)? as u64;
            insert_next(&tx, key, Prepared::forgotten(user, erased, &policy))?;
            tx.commit().map_err(db)?;
            Ok(erased)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::record::AuditAction;
    use super::super::verify::{EditedPart, ProblemKind};
    use super::*;

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn appends_forget_and_tampering_in_sqlite() -> Result {
        let log = SqliteAuditLog::in_memory(AuditKey::from_bytes([3u8; 32])?)?;
        let (alice, bob) = (UserId::new("alice")?, UserId::new("bob")?);
        for n in 1..=3 {
            log.append(AuditRecord::new(alice.clone(), AuditAction::ModelCall, json!({ "n": n }))).await?;
        }
        log.append(AuditRecord::new(bob.clone(), AuditAction::RunStarted, json!({}))).await?;
        assert_eq!(log.users().await?, [alice.clone(), bob.clone()]);
        assert_eq!(log.entries(&alice).await?.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(log.verify(None).await?.is_intact());

        assert_eq!(log.forget(&alice).await?, 3);
        let entries = log.entries(&alice).await?;
        assert_eq!(entries.len(), 4);
        assert!(entries[..3].iter().all(|e| e.payload.is_none()));
        assert_eq!(entries[3].action, AuditAction::Forgotten);
        assert!(log.verify(Some(&alice)).await?.is_intact());

        log.with(|conn, _| {
            conn.execute("UPDATE loom_audit SET payload = '{\"n\":9}' WHERE user = 'bob' AND seq = 1", [])
                .map_err(db)?;
            conn.execute("UPDATE loom_audit SET payload = 'not json' WHERE user = 'alice' AND seq = 2", [])
                .map_err(db)?;
            Ok(())
        })
        .await?;
        let report = log.verify(None).await?;
        let found: Vec<_> = report.problems.iter().map(|p| (p.user.clone(), p.seq, p.kind.clone())).collect();
        assert_eq!(found.len(), 2, "{report}");
        assert!(
            matches!(&found[0], (Some(u), Some(2), ProblemKind::Corrupt { line: 2, .. }) if *u == alice),
            "{report}"
        );
        assert_eq!(found[1], (Some(bob), Some(1), ProblemKind::Edited { part: EditedPart::Payload }));
        Ok(())
    }
}
