//! Making entries (redact, hash, number, sign), and reading them back from storage: the parts
//! every backend shares.

use serde_json::{Value, json};

use super::AuditError;
use super::canonical::canonical_json;
use super::key::{AuditKey, sha256_hex};
use super::policy::AuditPolicy;
use super::record::{AuditAction, AuditEntry, AuditRecord, now_rfc3339};
use crate::id::{RunId, SessionId, UserId};

/// A record redacted and hashed, waiting for its place in the chain.
pub(crate) struct Prepared {
    pub(crate) user: UserId,
    session: Option<SessionId>,
    run_id: Option<RunId>,
    actor: String,
    action: AuditAction,
    payload: Value,
    payload_hash: String,
}

impl Prepared {
    /// `record` with its payload redacted by `policy` and hashed.
    pub(crate) fn new(record: AuditRecord, policy: &AuditPolicy) -> Self {
        let payload = policy.apply(record.payload);
        let payload_hash = payload_hash(&payload);
        Self {
            user: record.user,
            session: record.session,
            run_id: record.run_id,
            actor: record.actor,
            action: record.action,
            payload,
            payload_hash,
        }
    }

    /// The [`AuditAction::Forgotten`] entry closing an erasure of `erased` payloads.
    pub(crate) fn forgotten(user: UserId, erased: u64, policy: &AuditPolicy) -> Self {
        Self::new(AuditRecord::new(user, AuditAction::Forgotten, json!({ "erased": erased })), policy)
    }

    /// The entry at `seq` after the entry signed `prev` ("" for the first), dated now and
    /// signed with `key`.
    pub(crate) fn seal(self, key: &AuditKey, seq: u64, prev: String) -> AuditEntry {
        let mut entry = AuditEntry {
            seq,
            at: now_rfc3339(),
            user: self.user,
            session: self.session,
            run_id: self.run_id,
            actor: self.actor,
            action: self.action,
            // A payload of JSON `null` is stored as none, as it reads back.
            payload: Some(self.payload).filter(|p| !p.is_null()),
            payload_hash: self.payload_hash,
            prev,
            sig: String::new(),
        };
        entry.sig = key.sign(signed_content(&entry).as_bytes());
        entry
    }
}

/// The place after `head` (the `seq` and `sig` of the user's last entry, if any): its `seq`
/// and `prev`.
pub(crate) fn next_after(user: &UserId, head: Option<(u64, &str)>) -> Result<(u64, String), AuditError> {
    match head {
        None => Ok((1, String::new())),
        Some((seq, sig)) => match seq.checked_add(1) {
            Some(next) => Ok((next, sig.to_owned())),
            None => Err(AuditError::ChainFull { user: user.clone(), seq }),
        },
    }
}

/// The hex SHA-256 of a payload's canonical JSON.
pub(crate) fn payload_hash(payload: &Value) -> String {
    sha256_hex(canonical_json(payload).as_bytes())
}

/// What an entry's signature covers: the canonical JSON of every field but `sig` and
/// `payload` (the payload through `payload_hash`).
pub(crate) fn signed_content(e: &AuditEntry) -> String {
    canonical_json(&json!({
        "seq": e.seq,
        "at": e.at,
        "user": e.user.as_str(),
        "session": e.session.as_ref().map(SessionId::as_str),
        "run_id": e.run_id.map(|r| r.to_string()),
        "actor": e.actor,
        "action": e.action.as_str(),
        "payload_hash": e.payload_hash,
        "prev": e.prev,
    }))
}

/// One line of a file or row of a table, read back: an entry, or what could be made of it.
#[derive(Debug)]
pub(crate) enum Stored {
    /// A readable entry.
    Entry(AuditEntry),
    /// An unreadable one, at `line` (a file's line, or a row's position, from 1).
    Corrupt { line: u64, user: Option<UserId>, seq: Option<u64>, error: String },
}

/// The columns of a `loom_audit` row, as text.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct Row {
    pub(crate) user: String,
    pub(crate) seq: i64,
    pub(crate) at: String,
    pub(crate) session: Option<String>,
    pub(crate) run_id: Option<String>,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) payload: Option<String>,
    pub(crate) payload_hash: String,
    pub(crate) prev: String,
    pub(crate) sig: String,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Row {
    /// The row of `entry` (its payload as canonical JSON); `None` when `seq` does not fit a
    /// database integer.
    pub(crate) fn of(entry: &AuditEntry) -> Option<Self> {
        Some(Self {
            user: entry.user.to_string(),
            seq: i64::try_from(entry.seq).ok()?,
            at: entry.at.clone(),
            session: entry.session.as_ref().map(ToString::to_string),
            run_id: entry.run_id.map(|r| r.to_string()),
            actor: entry.actor.clone(),
            action: entry.action.as_str().to_owned(),
            payload: entry.payload.as_ref().map(canonical_json),
            payload_hash: entry.payload_hash.clone(),
            prev: entry.prev.clone(),
            sig: entry.sig.clone(),
        })
    }

    /// The entry of the row at position `line`, or why it cannot be read.
    pub(crate) fn decode(self, line: u64) -> Stored {
        let user = UserId::new(&self.user).ok();
        let seq = u64::try_from(self.seq).ok();
        let corrupt = |error: String| Stored::Corrupt { line, user: user.clone(), seq, error };
        let Some(entry_user) = user.clone() else {
            return corrupt(format!("`{}` is not a user id", self.user));
        };
        let Some(entry_seq) = seq else {
            return corrupt(format!("seq {} is negative", self.seq));
        };
        let session = match self.session.map(SessionId::new).transpose() {
            Ok(session) => session,
            Err(e) => return corrupt(format!("the session is not a session id: {e}")),
        };
        let run_id = match self.run_id.map(|r| r.parse::<RunId>()).transpose() {
            Ok(run_id) => run_id,
            Err(e) => return corrupt(format!("the run is not a run id: {e}")),
        };
        let payload = match self.payload.map(|p| serde_json::from_str::<Value>(&p)).transpose() {
            Ok(payload) => payload.filter(|p| !p.is_null()),
            Err(e) => return corrupt(format!("the payload is not JSON: {e}")),
        };
        Stored::Entry(AuditEntry {
            seq: entry_seq,
            at: self.at,
            user: entry_user,
            session,
            run_id,
            actor: self.actor,
            action: AuditAction::from_name(&self.action),
            payload,
            payload_hash: self.payload_hash,
            prev: self.prev,
            sig: self.sig,
        })
    }
}
