//! PostgreSQL: sessions and run journals shared by many worker processes.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row as _, Transaction};

use super::journal::{Journal, RawRecord, RunInfo, RunKey, RunStatus};
use super::{SessionStore, Window, window_start};
use crate::error::{StoreError, StoreErrorKind};
use crate::id::{RunId, SessionId, UserId};
use crate::model::Message;

/// The schema version this Loom writes (in `loom_meta`).
pub const POSTGRES_SCHEMA_VERSION: i64 = 4;

const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE loom_messages (
        user_id TEXT NOT NULL, session TEXT NOT NULL, seq BIGINT NOT NULL, message TEXT NOT NULL,
        PRIMARY KEY (user_id, session, seq)
    );
    CREATE TABLE loom_session_runs (
        user_id TEXT NOT NULL, session TEXT NOT NULL, run TEXT NOT NULL,
        PRIMARY KEY (user_id, session, run)
    );
    CREATE TABLE loom_runs (
        user_id TEXT NOT NULL, session TEXT NOT NULL, run TEXT NOT NULL, status TEXT NOT NULL,
        owner TEXT, lease_until BIGINT, started_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,
        PRIMARY KEY (user_id, session, run)
    );
    CREATE TABLE loom_journal (
        user_id TEXT NOT NULL, session TEXT NOT NULL, run TEXT NOT NULL, seq BIGINT NOT NULL, record BYTEA NOT NULL,
        PRIMARY KEY (user_id, session, run, seq)
    );
",
    "
    CREATE TABLE loom_blocks (
        user_id TEXT NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL, updated_ms BIGINT NOT NULL,
        PRIMARY KEY (user_id, name)
    );
    CREATE TABLE loom_episodes (
        user_id TEXT NOT NULL, id TEXT NOT NULL, session TEXT, kind TEXT NOT NULL, text TEXT NOT NULL,
        at_ms BIGINT NOT NULL, metadata TEXT NOT NULL, vector REAL[],
        words TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
        PRIMARY KEY (user_id, id)
    );
    CREATE INDEX loom_episodes_by_time ON loom_episodes (user_id, at_ms);
    CREATE INDEX loom_episodes_by_words ON loom_episodes USING GIN (words);
    CREATE TABLE loom_facts (
        user_id TEXT NOT NULL, id TEXT NOT NULL, subject TEXT NOT NULL, subject_key TEXT NOT NULL,
        predicate TEXT NOT NULL, object TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL,
        valid_from BIGINT NOT NULL, valid_until BIGINT, recorded_at BIGINT NOT NULL, closed_at BIGINT,
        retracted_at BIGINT, sources TEXT NOT NULL,
        PRIMARY KEY (user_id, id)
    );
    CREATE INDEX loom_facts_by_claim ON loom_facts (user_id, subject_key, predicate);
",
    // The chunks of corpora: `terms` and `freqs` are the distinct words of `text` as Loom splits
    // them and how often each occurs, `word_count` all of them (for BM25).
    "
    CREATE TABLE loom_chunks (
        user_id TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        document TEXT NOT NULL, idx BIGINT NOT NULL, text TEXT NOT NULL,
        start_byte BIGINT NOT NULL, end_byte BIGINT NOT NULL, metadata JSONB NOT NULL, vector REAL[],
        terms TEXT[] NOT NULL, freqs INTEGER[] NOT NULL, word_count INTEGER NOT NULL,
        PRIMARY KEY (user_id, collection, id)
    );
    CREATE INDEX loom_chunks_by_document ON loom_chunks (user_id, collection, document);
    CREATE INDEX loom_chunks_by_terms ON loom_chunks USING GIN (terms);
",
    // What users spent, per budget period (governance; the row of user '' is everyone's), and
    // the token buckets of shared rate limits.
    "
    CREATE TABLE loom_usage (
        user_id TEXT NOT NULL, period BIGINT NOT NULL, input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL, model_calls BIGINT NOT NULL,
        tool_calls BIGINT NOT NULL, PRIMARY KEY (user_id, period)
    );
    CREATE TABLE loom_rate (bucket TEXT NOT NULL PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, at_ms BIGINT NOT NULL);
",
];

pub(crate) fn error(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
    StoreError::new(kind, "postgres", message)
}

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    let kind = match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => StoreErrorKind::Conflict,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreErrorKind::Unavailable
        }
        _ => StoreErrorKind::Other,
    };
    error(kind, e.to_string()).with_source(e)
}

/// The database's clock in milliseconds since the Unix epoch. Leases are compared with it,
/// never with a worker's own clock: workers whose clocks disagree still agree on who holds a
/// run.
macro_rules! db_now_ms {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

/// A lease's time to live in milliseconds, as bound to a query.
fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

/// `sql` with the run's key bound to `$1`, `$2` and `$3`.
fn keyed<'q>(sql: &'static str, key: &'q RunKey) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql).bind(key.user.as_str()).bind(key.session.as_str()).bind(key.run.to_string())
}

fn conflict(message: String) -> StoreError {
    error(StoreErrorKind::Conflict, message)
}

/// Sessions and run journals in PostgreSQL, for any number of stateless worker processes.
///
/// A conversation started on one worker continues on another, and a run that crashed is
/// resumed elsewhere: the lease on a run is taken with one atomic statement, so of two workers
/// resuming the same run, exactly one executes it; leases are timed by the database's clock.
/// The schema is versioned and migrated under
/// an advisory lock, so workers starting together migrate once; a database migrated by a
/// newer Loom is refused.
///
/// Memory and corpora (table `loom_chunks`, feature `rag`) rank meaning with
/// [pgvector](https://github.com/pgvector/pgvector) when the server has it (see
/// [`uses_pgvector`](Self::uses_pgvector)), and with cosine similarity computed in plain SQL
/// otherwise.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    pgvector: bool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host/db`) with a pool of up to 16
    /// connections and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| error(StoreErrorKind::Unavailable, format!("cannot connect to PostgreSQL: {e}")))?;
        Self::with_pool(pool).await
    }

    /// Uses an existing pool and brings the schema up to date.
    pub async fn with_pool(pool: PgPool) -> Result<Self, StoreError> {
        let pgvector = migrate(&pool).await?;
        Ok(Self { pool, pgvector })
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether memory ranks meaning with pgvector: decided once, when the store connects, by
    /// whether the `vector` extension is installed (Loom tries `CREATE EXTENSION IF NOT EXISTS
    /// vector` and goes on without it when that fails) and its type is on the connection's
    /// `search_path`.
    pub fn uses_pgvector(&self) -> bool {
        self.pgvector
    }
}

/// Brings the schema up to date; whether pgvector is used.
async fn migrate(pool: &PgPool) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await.map_err(db)?;
    // Workers starting at once migrate one at a time.
    sqlx::query("SELECT pg_advisory_xact_lock(7405513051127931021)").execute(&mut *tx).await.map_err(db)?;
    sqlx::query("CREATE TABLE IF NOT EXISTS loom_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let version: i64 = sqlx::query("SELECT value FROM loom_meta WHERE key = 'schema_version'")
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .map(|row| row.try_get::<String, _>(0))
        .transpose()
        .map_err(db)?
        .map_or(Ok(0), |v| v.parse::<i64>())
        .map_err(|e| error(StoreErrorKind::Corrupt, format!("loom_meta.schema_version is not a number: {e}")))?;
    if version > POSTGRES_SCHEMA_VERSION {
        return Err(error(
            StoreErrorKind::Incompatible,
            format!(
                "the database has schema v{version}, migrated by a newer Loom; this Loom reads up to v{POSTGRES_SCHEMA_VERSION}"
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(db)?;
        sqlx::query(
            "INSERT INTO loom_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind((i as i64 + 1).to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    // The workspace's tables, with a schema version of their own.
    #[cfg(feature = "workspace")]
    crate::workspace::postgres::migrate(&mut tx).await?;
    let pgvector = with_pgvector(&mut tx).await?;
    tx.commit().await.map_err(db)?;
    Ok(pgvector)
}

/// Within the migration (under its lock): when the server has pgvector, the `embedding` column
/// of `loom_episodes` and of `loom_chunks`, a `vector` of any dimension, filled from `vector`
/// when it is added.
/// Not a numbered migration: a database used with and without pgvector keeps one schema
/// version, and a server without pgvector never needs the column.
async fn with_pgvector(tx: &mut Transaction<'_, Postgres>) -> Result<bool, StoreError> {
    // Its own savepoint: without the extension's files or the right to create it, the
    // statement fails and the migration goes on.
    let mut attempt = sqlx::Acquire::begin(&mut *tx).await.map_err(db)?;
    match sqlx::query("CREATE EXTENSION IF NOT EXISTS vector").execute(&mut *attempt).await {
        Ok(_) => attempt.commit().await.map_err(db)?,
        Err(_) => attempt.rollback().await.map_err(db)?,
    }
    let usable: bool = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') AND to_regtype('vector') IS NOT NULL",
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?
    .try_get(0)
    .map_err(db)?;
    if !usable {
        return Ok(false);
    }
    macro_rules! embedding {
        ($table:literal) => {
            (
                $table,
                concat!("ALTER TABLE ", $table, " ADD COLUMN embedding vector"),
                // Rows written before: the vectors pgvector accepts (1 to 16,000 finite values).
                concat!(
                    "UPDATE ",
                    $table,
                    " SET embedding = vector::vector
                     WHERE vector IS NOT NULL AND cardinality(vector) BETWEEN 1 AND 16000
                       AND NOT ('NaN'::real = ANY(vector) OR 'Infinity'::real = ANY(vector)
                                OR '-Infinity'::real = ANY(vector))"
                ),
            )
        };
    }
    for (table, add, fill) in [embedding!("loom_episodes"), embedding!("loom_chunks")] {
        let present: bool = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute
                            WHERE attrelid = $1::regclass AND attname = 'embedding' AND NOT attisdropped)",
        )
        .bind(table)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        if !present {
            sqlx::query(add).execute(&mut **tx).await.map_err(db)?;
            sqlx::query(fill).execute(&mut **tx).await.map_err(db)?;
        }
    }
    Ok(true)
}

/// Serialises writers of one session within a transaction.
async fn lock_session(tx: &mut Transaction<'_, Postgres>, user: &str, session: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))")
        .bind(user)
        .bind(session)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    async fn load(&self, user: &UserId, session: &SessionId, limit: Option<usize>) -> Result<Vec<Message>, StoreError> {
        Ok(self.load_window(user, session, limit).await?.messages)
    }

    async fn load_window(
        &self,
        user: &UserId,
        session: &SessionId,
        limit: Option<usize>,
    ) -> Result<Window, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, message FROM loom_messages WHERE user_id = $1 AND session = $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(user.as_str())
        .bind(session.as_str())
        .bind(limit.map(|l| l as i64))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut history = Vec::with_capacity(rows.len());
        let mut first = None;
        for row in rows.iter().rev() {
            let seq: i64 = row.try_get(0).map_err(db)?;
            let json: String = row.try_get(1).map_err(db)?;
            let message = serde_json::from_str::<Message>(&json).map_err(|e| {
                error(StoreErrorKind::Corrupt, format!("message {seq} of session `{session}` is unreadable: {e}"))
            })?;
            first.get_or_insert(seq);
            history.push(message);
        }
        let start = window_start(&history, limit);
        // Positions are the messages' sequence numbers, which count from 0 without gaps.
        let first = first.map_or(0, |f| usize::try_from(f).unwrap_or(0));
        Ok(Window { messages: history.split_off(start), start: first + start })
    }

    async fn append(
        &self,
        user: &UserId,
        session: &SessionId,
        run: RunId,
        messages: &[Message],
    ) -> Result<(), StoreError> {
        let rows: Vec<String> = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|e| error(StoreErrorKind::Other, format!("a message could not be encoded: {e}")))?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_session(&mut tx, user.as_str(), session.as_str()).await?;
        let first_time = sqlx::query(
            "INSERT INTO loom_session_runs (user_id, session, run) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(user.as_str())
        .bind(session.as_str())
        .bind(run.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if first_time == 0 {
            return Ok(());
        }
        let next: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq) + 1, 0) FROM loom_messages WHERE user_id = $1 AND session = $2")
                .bind(user.as_str())
                .bind(session.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
        for (i, json) in rows.iter().enumerate() {
            sqlx::query("INSERT INTO loom_messages (user_id, session, seq, message) VALUES ($1, $2, $3, $4)")
                .bind(user.as_str())
                .bind(session.as_str())
                .bind(next + i as i64)
                .bind(json)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn clear(&self, user: &UserId, session: &SessionId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_session(&mut tx, user.as_str(), session.as_str()).await?;
        let mut n = 0;
        for sql in [
            "DELETE FROM loom_messages WHERE user_id = $1 AND (session = $2 OR starts_with(session, $2 || '/'))",
            "DELETE FROM loom_session_runs WHERE user_id = $1 AND (session = $2 OR starts_with(session, $2 || '/'))",
            "DELETE FROM loom_journal WHERE user_id = $1 AND (session = $2 OR starts_with(session, $2 || '/'))",
            "DELETE FROM loom_runs WHERE user_id = $1 AND (session = $2 OR starts_with(session, $2 || '/'))",
        ] {
            n += sqlx::query(sql)
                .bind(user.as_str())
                .bind(session.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(n > 0)
    }

    async fn sessions(&self, user: &UserId) -> Result<Vec<SessionId>, StoreError> {
        let rows = sqlx::query("SELECT session FROM loom_messages WHERE user_id = $1 UNION SELECT session FROM loom_runs WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                let s: String = row.try_get(0).map_err(db)?;
                SessionId::new(&s).map_err(|e| error(StoreErrorKind::Corrupt, format!("session id `{s}`: {e}")))
            })
            .collect()
    }
}

/// Why a lease is renewed: a record is written (the journal changed), or a heartbeat.
#[derive(Clone, Copy)]
enum Renewal {
    WithRecord,
    Heartbeat,
}

/// Extends `owner`'s lease of `key` to `ttl` from the database's now; a conflict if `owner`
/// does not hold it.
async fn renew_lease<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    key: &RunKey,
    owner: &str,
    ttl: Duration,
    why: Renewal,
) -> Result<(), StoreError> {
    let sql = match why {
        Renewal::WithRecord => concat!(
            "UPDATE loom_runs SET lease_until = clock.ms + $5, updated_ms = clock.ms FROM (SELECT ",
            db_now_ms!(),
            " AS ms) clock WHERE user_id = $1 AND session = $2 AND run = $3 AND owner = $4"
        ),
        Renewal::Heartbeat => concat!(
            "UPDATE loom_runs SET lease_until = ",
            db_now_ms!(),
            " + $5 WHERE user_id = $1 AND session = $2 AND run = $3 AND owner = $4"
        ),
    };
    let renewed = keyed(sql, key).bind(owner).bind(ttl_ms(ttl)).execute(executor).await.map_err(db)?.rows_affected();
    if renewed == 0 {
        return Err(conflict(format!("run {} is not held by this worker", key.run)));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Journal for PostgresStore {
    async fn acquire(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        // One statement: a run nobody holds, whose lease ran out, or that this owner holds
        // is taken; any other is left alone (0 rows).
        let taken = keyed(
            concat!(
                "INSERT INTO loom_runs (user_id, session, run, status, owner, lease_until, started_ms, updated_ms)
                 SELECT $1, $2, $3, 'running', $4, clock.ms + $5, clock.ms, clock.ms FROM (SELECT ",
                db_now_ms!(),
                " AS ms) clock
                 ON CONFLICT (user_id, session, run) DO UPDATE
                     SET status = 'running', owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until,
                         updated_ms = EXCLUDED.updated_ms
                     WHERE loom_runs.owner IS NULL OR loom_runs.owner = EXCLUDED.owner
                        OR loom_runs.lease_until IS NULL OR loom_runs.lease_until <= EXCLUDED.updated_ms"
            ),
            key,
        )
        .bind(owner)
        .bind(ttl_ms(ttl))
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        if taken == 0 {
            return Err(conflict(format!("run {} is held by another worker", key.run)));
        }
        Ok(())
    }

    async fn append(&self, key: &RunKey, owner: &str, ttl: Duration, record: RawRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        renew_lease(&mut *tx, key, owner, ttl, Renewal::WithRecord).await?;
        keyed("INSERT INTO loom_journal (user_id, session, run, seq, record) VALUES ($1, $2, $3, $4, $5)", key)
            .bind(record.seq as i64)
            .bind(&record.bytes)
            .execute(&mut *tx)
            .await
            .map_err(|e| match db(e) {
                err if err.kind() == StoreErrorKind::Conflict => {
                    conflict(format!("record {} of run {} is already written", record.seq, key.run))
                }
                err => err,
            })?;
        tx.commit().await.map_err(db)
    }

    async fn renew(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        renew_lease(&self.pool, key, owner, ttl, Renewal::Heartbeat).await
    }

    async fn finish(&self, key: &RunKey, owner: &str, status: RunStatus) -> Result<(), StoreError> {
        keyed(
            concat!(
                "UPDATE loom_runs SET status = $5, owner = NULL, lease_until = NULL, updated_ms = ",
                db_now_ms!(),
                " WHERE user_id = $1 AND session = $2 AND run = $3 AND owner = $4"
            ),
            key,
        )
        .bind(owner)
        .bind(status.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn records(&self, key: &RunKey) -> Result<Vec<RawRecord>, StoreError> {
        let rows = keyed(
            "SELECT seq, record FROM loom_journal WHERE user_id = $1 AND session = $2 AND run = $3 ORDER BY seq",
            key,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(db)?;
                Ok(RawRecord { seq: seq as u64, bytes: row.try_get(1).map_err(db)? })
            })
            .collect()
    }

    async fn runs(&self, user: &UserId, session: &SessionId) -> Result<Vec<RunInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT run, status, started_ms, updated_ms, CASE WHEN owner IS NULL THEN NULL ELSE lease_until END
             FROM loom_runs WHERE user_id = $1 AND session = $2 ORDER BY started_ms, run",
        )
        .bind(user.as_str())
        .bind(session.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let run: String = row.try_get(0).map_err(db)?;
                let status: String = row.try_get(1).map_err(db)?;
                let started: i64 = row.try_get(2).map_err(db)?;
                let updated: i64 = row.try_get(3).map_err(db)?;
                let lease: Option<i64> = row.try_get(4).map_err(db)?;
                let run: RunId =
                    run.parse().map_err(|e| error(StoreErrorKind::Corrupt, format!("run id `{run}`: {e}")))?;
                let status = RunStatus::parse(&status).ok_or_else(|| {
                    error(StoreErrorKind::Corrupt, format!("run {run} has the unknown status `{status}`"))
                })?;
                Ok(RunInfo {
                    run,
                    status,
                    started_ms: started as u64,
                    updated_ms: updated as u64,
                    lease_until_ms: lease.map(|l| l as u64),
                })
            })
            .collect()
    }

    async fn import(&self, key: &RunKey, status: RunStatus, records: Vec<RawRecord>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let taken = keyed(
            concat!(
                "INSERT INTO loom_runs (user_id, session, run, status, owner, lease_until, started_ms, updated_ms)
                 SELECT $1, $2, $3, $4, NULL, NULL, clock.ms, clock.ms FROM (SELECT ",
                db_now_ms!(),
                " AS ms) clock
                 ON CONFLICT (user_id, session, run) DO UPDATE
                     SET status = EXCLUDED.status, owner = NULL, lease_until = NULL, updated_ms = EXCLUDED.updated_ms
                     WHERE loom_runs.owner IS NULL OR loom_runs.lease_until IS NULL
                        OR loom_runs.lease_until <= EXCLUDED.updated_ms"
            ),
            key,
        )
        .bind(status.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if taken == 0 {
            return Err(conflict(format!("run {} is held by a worker", key.run)));
        }
        keyed("DELETE FROM loom_journal WHERE user_id = $1 AND session = $2 AND run = $3", key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for r in &records {
            keyed("INSERT INTO loom_journal (user_id, session, run, seq, record) VALUES ($1, $2, $3, $4, $5)", key)
                .bind(r.seq as i64)
                .bind(&r.bytes)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }
}
