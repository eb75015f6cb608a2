//! The audit log in PostgreSQL.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row as _, Transaction};

use super::chain::{Prepared, Row, Stored, next_after};
use super::key::AuditKey;
use super::policy::AuditPolicy;
use super::record::{AuditEntry, AuditRecord};
use super::verify::{VerifyReport, report};
use super::{AuditError, AuditLog};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::UserId;
use crate::session::postgres::{db, error};

/// The schema version of the audit table this Loom writes (`audit_schema_version` in
/// `loom_meta`).
pub const POSTGRES_AUDIT_SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &["
    CREATE TABLE loom_audit (
        id BIGINT GENERATED ALWAYS AS IDENTITY,
        user_id TEXT NOT NULL, seq BIGINT NOT NULL, at TEXT NOT NULL, session TEXT, run_id TEXT,
        actor TEXT NOT NULL, action TEXT NOT NULL, payload TEXT, payload_hash TEXT NOT NULL,
        prev TEXT NOT NULL, sig TEXT NOT NULL,
        PRIMARY KEY (user_id, seq)
    );
"];

/// The columns of an entry, in [`Row`]'s order.
macro_rules! columns {
    () => {
        "user_id, seq, at, session, run_id, actor, action, payload, payload_hash, prev, sig"
    };
}

/// The first key of the audit log's advisory locks (the second is a hash of the user): the
/// two-key lock space, apart from the one-key locks Loom's migrations take.
const LOCK_CLASS: i32 = 0x4c41_5544; // "LAUD"

/// An audit log in PostgreSQL, for any number of workers: table `loom_audit`, one row per
/// entry, keyed by `(user_id, seq)` (`user` is a reserved word in PostgreSQL).
///
/// Each append is a transaction that first takes a transaction-scoped advisory lock on the
/// user (`pg_advisory_xact_lock`), then reads the user's last entry and inserts the next: two
/// workers appending for one user wait for each other and keep one chain, workers appending
/// for different users do not. The payload is stored as text (canonical JSON), not `jsonb`,
/// so it reads back exactly as it was hashed. An identity column `id` keeps the order rows
/// were inserted in, the storage order verification checks. The table has a schema version
/// of its own, migrated under the same lock as Loom's other tables.
#[derive(Clone)]
pub struct PostgresAuditLog {
    pool: PgPool,
    key: AuditKey,
    policy: AuditPolicy,
}

impl std::fmt::Debug for PostgresAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresAuditLog").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl PostgresAuditLog {
    /// Connects to `url` (`postgres://user:password@host/db`) with a pool of up to 8
    /// connections, creates or updates the audit table, signs with `key` and redacts by
    /// [`AuditPolicy::default`].
    pub async fn connect(url: &str, key: AuditKey) -> Result<Self, AuditError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| error(StoreErrorKind::Unavailable, format!("cannot connect to PostgreSQL: {e}")))?;
        Self::from_pool(pool, key).await
    }

    /// Uses an existing pool (a [`PostgresStore`](crate::session::PostgresStore)'s, say) and
    /// creates or updates the audit table.
    pub async fn from_pool(pool: PgPool, key: AuditKey) -> Result<Self, AuditError> {
        migrate(&pool).await?;
        Ok(Self { pool, key, policy: AuditPolicy::default() })
    }

    /// Redacts payloads by `policy` instead.
    #[must_use]
    pub fn policy(mut self, policy: AuditPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn read(&self, sql: &'static str, user: Option<&UserId>) -> Result<Vec<Stored>, AuditError> {
        let query = sqlx::query(sql);
        let query = match user {
            Some(user) => query.bind(user.as_str()),
            None => query,
        };
        let rows = query.fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows.iter().enumerate().map(|(i, row)| decode(row, i as u64 + 1)).collect())
    }
}

async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(db)?;
    // The lock Loom's migrations take: workers starting at once migrate one at a time.
    sqlx::query("SELECT pg_advisory_xact_lock(7405513051127931021)").execute(&mut *tx).await.map_err(db)?;
    sqlx::query("CREATE TABLE IF NOT EXISTS loom_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let version: i64 = sqlx::query("SELECT value FROM loom_meta WHERE key = 'audit_schema_version'")
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .map(|row| row.try_get::<String, _>(0))
        .transpose()
        .map_err(db)?
        .map_or(Ok(0), |v| v.parse::<i64>())
        .map_err(|e| error(StoreErrorKind::Corrupt, format!("loom_meta.audit_schema_version is not a number: {e}")))?;
    if version > POSTGRES_AUDIT_SCHEMA_VERSION {
        return Err(error(
            StoreErrorKind::Incompatible,
            format!(
                "the database's audit table has schema v{version}, migrated by a newer Loom; this Loom reads up to \
                 v{POSTGRES_AUDIT_SCHEMA_VERSION}"
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(db)?;
        sqlx::query(
            "INSERT INTO loom_meta (key, value) VALUES ('audit_schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind((i as i64 + 1).to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

/// FNV-1a of the user id, folded to 32 bits: the second key of the user's advisory lock (two
/// users sharing one only wait for each other).
fn lock_key(user: &UserId) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in user.as_str().as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((h >> 32) ^ h) as u32 as i32
}

/// Begins a transaction holding the user's advisory lock until it ends.
async fn begin_for(pool: &PgPool, user: &UserId) -> Result<Transaction<'static, Postgres>, AuditError> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(lock_key(user))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(tx)
}

/// Inside a transaction holding the user's lock: the user's next entry, inserted.
async fn insert_next(
    tx: &mut Transaction<'static, Postgres>,
    key: &AuditKey,
    prepared: Prepared,
) -> Result<AuditEntry, AuditError> {
    let head = sqlx::query("SELECT seq, sig FROM loom_audit WHERE user_id = $1 ORDER BY seq DESC LIMIT 1")
        .bind(prepared.user.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?
        .map(|row| Ok::<_, sqlx::Error>((row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?)))
        .transpose()
        .map_err(db)?
        .map(|(seq, sig)| (u64::try_from(seq).unwrap_or(0), sig));
    let (seq, prev) = next_after(&prepared.user, head.as_ref().map(|(seq, sig)| (*seq, sig.as_str())))?;
    let entry = prepared.seal(key, seq, prev);
    let row = Row::of(&entry).ok_or_else(|| AuditError::ChainFull { user: entry.user.clone(), seq: entry.seq })?;
    sqlx::query(concat!(
        "INSERT INTO loom_audit (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(row.user)
    .bind(row.seq)
    .bind(row.at)
    .bind(row.session)
    .bind(row.run_id)
    .bind(row.actor)
    .bind(row.action)
    .bind(row.payload)
    .bind(row.payload_hash)
    .bind(row.prev)
    .bind(row.sig)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(entry)
}

fn decode(r: &PgRow, line: u64) -> Stored {
    let row = (|| {
        Ok::<_, sqlx::Error>(Row {
            user: r.try_get(0)?,
            seq: r.try_get(1)?,
            at: r.try_get(2)?,
            session: r.try_get(3)?,
            run_id: r.try_get(4)?,
            actor: r.try_get(5)?,
            action: r.try_get(6)?,
            payload: r.try_get(7)?,
            payload_hash: r.try_get(8)?,
            prev: r.try_get(9)?,
            sig: r.try_get(10)?,
        })
    })();
    match row {
        Ok(row) => row.decode(line),
        Err(e) => Stored::Corrupt {
            line,
            user: r.try_get::<String, _>(0).ok().and_then(|u| UserId::new(u).ok()),
            seq: r.try_get::<i64, _>(1).ok().and_then(|s| u64::try_from(s).ok()),
            error: e.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl AuditLog for PostgresAuditLog {
    async fn append(&self, record: AuditRecord) -> Result<AuditEntry, AuditError> {
        let prepared = Prepared::new(record, &self.policy);
        let mut tx = begin_for(&self.pool, &prepared.user).await?;
        let entry = insert_next(&mut tx, &self.key, prepared).await?;
        tx.commit().await.map_err(db)?;
        Ok(entry)
    }

    async fn entries(&self, user: &UserId) -> Result<Vec<AuditEntry>, AuditError> {
        let sql = concat!("SELECT ", columns!(), " FROM loom_audit WHERE user_id = $1 ORDER BY seq");
        Ok(self
            .read(sql, Some(user))
            .await?
            .into_iter()
            .filter_map(|s| match s {
                Stored::Entry(e) => Some(e),
                Stored::Corrupt { .. } => None,
            })
            .collect())
    }

    async fn users(&self) -> Result<Vec<UserId>, AuditError> {
        let rows = sqlx::query("SELECT DISTINCT user_id FROM loom_audit ORDER BY user_id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            // A row whose user is not a user id is damaged; verify reports it.
            if let Ok(user) = UserId::new(row.try_get::<String, _>(0).map_err(db)?) {
                users.push(user);
            }
        }
        Ok(users)
    }

    async fn verify(&self, user: Option<&UserId>) -> Result<VerifyReport, AuditError> {
        // Storage order: the order rows were inserted in.
        let sql = match user {
            Some(_) => concat!("SELECT ", columns!(), " FROM loom_audit WHERE user_id = $1 ORDER BY id"),
            None => concat!("SELECT ", columns!(), " FROM loom_audit ORDER BY id"),
        };
        let stored = self.read(sql, user).await?;
        Ok(report(&self.key, stored))
    }

    async fn forget(&self, user: &UserId) -> Result<u64, AuditError> {
        let mut tx = begin_for(&self.pool, user).await?;
        let erased = sqlx::query("UPDATE loom_audit SET payload = NULL WHERE user_id = $1 AND payload IS NOT NULL")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        insert_next(&mut tx, &self.key, Prepared::forgotten(user.clone(), erased, &self.policy)).await?;
        tx.commit().await.map_err(db)?;
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_spread() -> Result<(), crate::IdError> {
        let (alice, bob) = (UserId::new("alice")?, UserId::new("bob")?);
        assert_eq!(lock_key(&alice), lock_key(&UserId::new("alice")?));
        assert_ne!(lock_key(&alice), lock_key(&bob));
        Ok(())
    }
}
