//! The tamper-evident audit log: what runs did, per user, signed and chained.
//!
//! A caller appends an [`AuditRecord`] (who, what, an optional session and run, a JSON
//! payload); the log stores it as an [`AuditEntry`] with the user's next sequence number, a
//! timestamp, the SHA-256 of the payload, the signature of the user's previous entry and its
//! own signature, an HMAC-SHA256 under the log's [`AuditKey`].
//!
//! # What the chain shows
//!
//! Each user has one chain: entries numbered from 1, each signing, besides its own fields, the
//! signature of the entry before it. [`AuditLog::verify`] (or [`verify_file`] for a file no
//! process has open) checks every chain and names each entry that is wrong
//! ([`ChainProblem`]):
//!
//! - an **edited** payload (it no longer matches `payload_hash`) or field (the signature no
//!   longer matches), or an entry forged without the key: [`ProblemKind::Edited`];
//! - a **deleted** entry (a gap in the numbers): [`ProblemKind::Deleted`], with the missing
//!   numbers;
//! - an **inserted** entry (a second entry with a number already taken, or one that does not
//!   follow the entry before it): [`ProblemKind::Inserted`];
//! - **reordered** entries (stored out of their order): [`ProblemKind::Reordered`];
//! - an unreadable line or row: [`ProblemKind::Corrupt`].
//!
//! What a chain cannot show: the loss of a user's *latest* entries (the chain is shorter but
//! whole), or an attacker who holds the key. Keep the key out of the log's storage (a secret
//! store, an environment variable of the writing processes), and copy the heads
//! ([`AuditLog::entries`]' last entry per user) somewhere else from time to time if truncation
//! matters.
//!
//! # Payloads and their policy
//!
//! Payloads are redacted *before* they are hashed, signed and written, by the log's
//! [`AuditPolicy`]: the texts of fields named `prompt`, `input`, `output`, `text`, `arguments`
//! and `result` (at any depth) are cut to 500 characters by default, or replaced by their
//! SHA-256, or kept in full. What the policy removed was never stored.
//!
//! # Forgetting a user (GDPR erasure)
//!
//! [`AuditLog::forget`] erases the payloads of every entry of a user (`payload` becomes `None`;
//! `payload_hash` stays) and appends one [`AuditAction::Forgotten`] entry saying how many were
//! erased. Signatures cover the payload's hash, not the payload, so the chain stays verifiable:
//! after erasure the log still proves that entries existed, when, who acted and what kind of
//! action it was, without holding what they said. Identifying data belongs in payloads, not in
//! `actor` or custom action names, which are kept.
//!
//! # Backends
//!
//! - [`InMemoryAuditLog`]: for tests.
//! - [`FileAuditLog`]: one JSONL file for all users; several processes may append to it (an
//!   exclusive file lock around each append).
//! - `SqliteAuditLog` (feature `sqlite`): table `loom_audit`, appends in `BEGIN IMMEDIATE`
//!   transactions, so several processes on one database keep one chain per user.
//! - `PostgresAuditLog` (feature `postgres`): table `loom_audit`, appends serialised per user by
//!   a transaction-scoped advisory lock, for any number of workers.
//!
//! ```
//! use loomflow::UserId;
//! use loomflow::telemetry::audit::{AuditAction, AuditKey, AuditLog, AuditRecord, InMemoryAuditLog};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = AuditKey::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")?;
//! let log = InMemoryAuditLog::new(key);
//! let alice = UserId::new("alice")?;
//! log.append(AuditRecord::new(alice.clone(), AuditAction::ToolCall, json!({"tool": "refund"})).actor("agent"))
//!     .await?;
//! let entry = log.append(AuditRecord::new(alice.clone(), AuditAction::RunFinished, json!({}))).await?;
//! assert_eq!(entry.seq, 2);
//! assert!(log.verify(None).await?.is_intact());
//!
//! assert_eq!(log.forget(&alice).await?, 2);
//! assert!(log.entries(&alice).await?.iter().all(|e| e.payload.is_none() || e.action == AuditAction::Forgotten));
//! assert!(log.verify(Some(&alice)).await?.is_intact());
//! # Ok(())
//! # }
//! ```

mod canonical;
mod chain;
mod file;
mod key;
mod memory;
mod policy;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
#[cfg(feature = "sqlite")]
mod sqlite;
mod verify;

use std::path::PathBuf;

pub use canonical::canonical_json;
pub use file::{FileAuditLog, verify_file};
pub use key::{AuditKey, MIN_KEY_LEN};
pub use memory::InMemoryAuditLog;
pub use policy::{AuditPolicy, DEFAULT_TRUNCATE, REDACTED_FIELDS, Redaction};
#[cfg(feature = "postgres")]
pub use postgres::{POSTGRES_AUDIT_SCHEMA_VERSION, PostgresAuditLog};
pub use record::{AuditAction, AuditEntry, AuditRecord};
#[cfg(feature = "sqlite")]
pub use sqlite::{SQLITE_AUDIT_SCHEMA_VERSION, SqliteAuditLog};
pub use verify::{ChainProblem, EditedPart, Insertion, ProblemKind, VerifyReport, verify_entries};

use crate::error::StoreError;
use crate::id::UserId;

/// A tamper-evident log of what runs did, one signed chain per user.
///
/// Implementations apply their [`AuditPolicy`] to a record's payload before anything is
/// hashed or written, number each user's entries from 1 without gaps, and keep one chain per
/// user even when several writers (tasks, processes) append at once.
///
/// **Erasure (GDPR).** [`forget`](Self::forget) erases the payloads of a user's entries and
/// keeps everything else, so the chain stays verifiable: see the [module docs](self).
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends `record` as the next entry of its user's chain, and returns the stored entry
    /// (its payload as the policy left it).
    async fn append(&self, record: AuditRecord) -> Result<AuditEntry, AuditError>;

    /// The entries of `user`, in `seq` order. Entries that cannot be read (a damaged line or
    /// row) are left out; [`verify`](Self::verify) reports them.
    async fn entries(&self, user: &UserId) -> Result<Vec<AuditEntry>, AuditError>;

    /// Every user with entries, sorted. An admin call: it crosses the users' partitions, so
    /// do not expose it to a user's own requests.
    async fn users(&self) -> Result<Vec<UserId>, AuditError>;

    /// Checks the chain of `user`, or of every user when `None`, and names each entry that was
    /// edited, deleted, inserted or reordered ([`VerifyReport::problems`]). A damaged log is a
    /// report with problems, not an error; errors are failures to read the log at all.
    async fn verify(&self, user: Option<&UserId>) -> Result<VerifyReport, AuditError>;

    /// Erases the payloads of every entry of `user` (they become `None`; `payload_hash`, the
    /// signatures and every other field are kept), then appends one
    /// [`AuditAction::Forgotten`] entry whose payload says how many were erased
    /// (`{"erased": n}`). Returns that number: the entries that still had a payload. The
    /// chain stays verifiable.
    async fn forget(&self, user: &UserId) -> Result<u64, AuditError>;
}

/// A failure of the audit log: it could not be read or written, or it was set up wrong.
///
/// A log whose entries were tampered with is not an error: [`AuditLog::verify`] reports it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log's file could not be opened, read, locked, written or synced.
    #[error(
        "audit log `{}`: {source}; check that the file's directory exists and this process may read and write it",
        path.display()
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The log's database failed.
    #[error("audit log: {0}; check that the database is reachable and its `loom_audit` table is Loom's")]
    Store(#[from] StoreError),
    /// The key was refused.
    #[error("audit key: {reason}")]
    Key {
        /// What is wrong with it, and what to do.
        reason: String,
    },
    /// An entry could not be encoded as JSON.
    #[error("an audit entry could not be encoded: {0}; this is a bug in Loom, please report it")]
    Serialize(#[source] serde_json::Error),
    /// A user's chain is longer than a database column can count.
    #[error("the audit chain of user `{user}` is full (seq {seq}); start a new log")]
    ChainFull {
        /// The user.
        user: UserId,
        /// The last sequence number.
        seq: u64,
    },
    /// The background task that did the log's blocking work did not finish (it panicked, or
    /// the runtime is shutting down).
    #[error("the audit log's background task did not finish: {reason}; retry, or check the logs for a panic")]
    Task {
        /// Why.
        reason: String,
    },
}

impl AuditError {
    fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_owned(), source }
    }

    fn task(e: tokio::task::JoinError) -> Self {
        Self::Task { reason: e.to_string() }
    }
}
