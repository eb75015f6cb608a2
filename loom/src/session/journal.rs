//! The run journal: every step of a run, written before the run moves on, so a run that
//! crashed can be finished elsewhere without repeating what it already did.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreErrorKind};
use crate::id::{RunId, SessionId, UserId};
use crate::model::{Content, ModelResponse, ToolResult};

/// The version of the journal record format this Loom writes and reads.
pub const JOURNAL_VERSION: u32 = 1;

/// Which run a journal belongs to: always partitioned by user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunKey {
    /// Who the run is for.
    pub user: UserId,
    /// The conversation.
    pub session: SessionId,
    /// The run.
    pub run: RunId,
}

impl RunKey {
    /// The key of `run` in `session` of `user`.
    pub fn new(user: UserId, session: SessionId, run: RunId) -> Self {
        Self { user, session, run }
    }
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalEntry {
    /// The run began with this input, after `history` messages of session history.
    RunStarted {
        /// The input.
        input: Content,
        /// How many session messages preceded the input.
        history: usize,
        /// The agent's or workflow's name.
        #[serde(default)]
        name: Option<String>,
    },
    /// The model answered turn `turn`.
    ModelResponse {
        /// The turn.
        turn: u32,
        /// How many messages the request carried (to detect a journal that no longer matches).
        messages: usize,
        /// The answer.
        response: ModelResponse,
    },
    /// A tool call started (written before the tool runs).
    ToolStarted {
        /// The turn that asked for it.
        turn: u32,
        /// The call's id.
        call_id: String,
        /// The tool.
        name: String,
    },
    /// A tool call finished with this result.
    ToolFinished {
        /// The turn that asked for it.
        turn: u32,
        /// The result the model read.
        result: ToolResult,
    },
    /// Turn `turn` is complete: a checkpoint.
    TurnFinished {
        /// The turn.
        turn: u32,
    },
    /// A workflow run began with this input (as JSON).
    WorkflowStarted {
        /// The input.
        input: serde_json::Value,
        /// The workflow's name.
        name: String,
    },
    /// A workflow node started.
    NodeStarted {
        /// The node.
        node: String,
        /// Its index in the graph.
        index: usize,
    },
    /// A workflow node finished; `output` is its value as JSON when the type serialises.
    NodeFinished {
        /// The node.
        node: String,
        /// Its index in the graph.
        index: usize,
        /// Its output.
        output: Option<serde_json::Value>,
    },
    /// The run finished.
    RunFinished,
    /// The run failed.
    RunFailed {
        /// Why.
        error: String,
    },
}

/// A record that could not be read: its position and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CorruptRecord {
    /// The record's position in the run's journal.
    pub seq: u64,
    /// What is wrong with it.
    pub error: String,
}

impl fmt::Display for CorruptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}: {}", self.seq, self.error)
    }
}

/// A run's journal as read back: the readable entries, and every record that was not.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JournalRead {
    /// The entries, by position.
    pub entries: Vec<(u64, JournalEntry)>,
    /// Records that could not be read; nothing is dropped silently.
    pub corrupt: Vec<CorruptRecord>,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// Started and not finished: running, or crashed.
    Running,
    /// Finished with an answer.
    Finished,
    /// Failed.
    Failed,
}

impl RunStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "finished" => Self::Finished,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A run of a session, as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunInfo {
    /// The run.
    pub run: RunId,
    /// Where it stands.
    pub status: RunStatus,
    /// When it started (milliseconds since the Unix epoch).
    pub started_ms: u64,
    /// When its journal last changed.
    pub updated_ms: u64,
}

/// A point a run can be resumed or forked from: the end of a turn of an agent, the end of a
/// node of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The run.
    pub run: RunId,
    /// The position of the checkpoint in the run's journal.
    pub seq: u64,
    /// What was complete: `turn 2`, `node review`.
    pub label: String,
}

/// A journal record as stored: a checksum, then the entry as JSON with its format version.
///
/// Every backend stores these bytes unchanged, so a record damaged in storage is caught by
/// its checksum, and one written by a newer Loom by its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The record's position in its run's journal.
    pub seq: u64,
    /// `<16 hex digits of FNV-1a 64> <JSON>`.
    pub bytes: Vec<u8>,
}

#[derive(Serialize)]
struct Versioned<'a> {
    v: u32,
    #[serde(flatten)]
    entry: &'a JournalEntry,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// FNV-1a, 64 bits: a cheap checksum that catches truncation and flipped bytes.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl RawRecord {
    /// Encodes an entry.
    pub fn encode(seq: u64, entry: &JournalEntry) -> Result<Self, StoreError> {
        let json = serde_json::to_vec(&Versioned { v: JOURNAL_VERSION, entry }).map_err(|e| {
            StoreError::new(StoreErrorKind::Other, "journal", format!("a journal entry could not be encoded: {e}"))
        })?;
        let mut bytes = format!("{:016x} ", fnv1a(&json)).into_bytes();
        bytes.extend_from_slice(&json);
        Ok(Self { seq, bytes })
    }

    /// Decodes the entry: a damaged record is `Err(CorruptRecord)`; one from a newer format is
    /// an [`StoreErrorKind::Incompatible`] error (refused, not skipped).
    pub fn decode(&self) -> Result<Result<JournalEntry, CorruptRecord>, StoreError> {
        let corrupt = |error: String| Ok(Err(CorruptRecord { seq: self.seq, error }));
        let Some(space) = self.bytes.iter().position(|&b| b == b' ') else {
            return corrupt("no checksum".to_owned());
        };
        let (sum, json) = (&self.bytes[..space], &self.bytes[space + 1..]);
        let expected = std::str::from_utf8(sum).ok().and_then(|s| u64::from_str_radix(s, 16).ok());
        if expected != Some(fnv1a(json)) {
            return corrupt(format!("checksum mismatch ({} bytes; truncated or damaged)", self.bytes.len()));
        }
        match serde_json::from_slice::<VersionOnly>(json) {
            Ok(VersionOnly { v }) if v > JOURNAL_VERSION => {
                return Err(StoreError::new(
                    StoreErrorKind::Incompatible,
                    "journal",
                    format!(
                        "record {} was written in journal format v{v} by a newer Loom; this Loom reads up to v{JOURNAL_VERSION}",
                        self.seq
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => return corrupt(format!("unreadable: {e}")),
        }
        match serde_json::from_slice::<JournalEntry>(json) {
            Ok(entry) => Ok(Ok(entry)),
            Err(e) => corrupt(format!("unreadable entry: {e}")),
        }
    }
}

/// Decodes records into a [`JournalRead`].
pub fn decode_records(records: impl IntoIterator<Item = RawRecord>) -> Result<JournalRead, StoreError> {
    let mut read = JournalRead::default();
    for record in records {
        match record.decode()? {
            Ok(entry) => read.entries.push((record.seq, entry)),
            Err(corrupt) => read.corrupt.push(corrupt),
        }
    }
    Ok(read)
}

/// The current time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Where run journals live, partitioned by user like every Loom store.
///
/// A run writes each step with [`append`](Journal::append) before it goes on; a worker that
/// resumes the run reads them back with [`read`](Journal::read). Only the holder of a run's
/// lease may write to it: [`acquire`](Journal::acquire) is atomic, so of two workers resuming
/// one run, exactly one gets it.
#[async_trait::async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Records that `key` started (status `running`) and gives its lease to `owner` for `ttl`.
    /// Fails with [`StoreErrorKind::Conflict`] if another owner's lease is still live.
    async fn acquire(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError>;

    /// Appends `record` to the journal of `key` for `owner`, renewing its lease for `ttl`.
    /// Fails with [`StoreErrorKind::Conflict`] if `owner` does not hold the lease or the
    /// position is taken.
    async fn append(&self, key: &RunKey, owner: &str, ttl: Duration, record: RawRecord) -> Result<(), StoreError>;

    /// Sets the run's status and releases `owner`'s lease.
    async fn finish(&self, key: &RunKey, owner: &str, status: RunStatus) -> Result<(), StoreError>;

    /// Every record of the run, by position.
    async fn records(&self, key: &RunKey) -> Result<Vec<RawRecord>, StoreError>;

    /// The runs of a session, oldest first.
    async fn runs(&self, user: &UserId, session: &SessionId) -> Result<Vec<RunInfo>, StoreError>;

    /// Writes records as they are (import, fork, repair). The run must not be held by a live
    /// lease of another owner.
    async fn import(&self, key: &RunKey, status: RunStatus, records: Vec<RawRecord>) -> Result<(), StoreError>;

    /// The readable entries of the run and every unreadable record.
    async fn read(&self, key: &RunKey) -> Result<JournalRead, StoreError> {
        decode_records(self.records(key).await?)
    }

    /// Every checkpoint of the session's runs, oldest first.
    async fn checkpoints(&self, user: &UserId, session: &SessionId) -> Result<Vec<Checkpoint>, StoreError> {
        let mut out = Vec::new();
        for info in self.runs(user, session).await? {
            let read = self.read(&RunKey::new(user.clone(), session.clone(), info.run)).await?;
            for (seq, entry) in read.entries {
                let label = match entry {
                    JournalEntry::TurnFinished { turn } => format!("turn {turn}"),
                    JournalEntry::NodeFinished { node, .. } => format!("node {node}"),
                    _ => continue,
                };
                out.push(Checkpoint { run: info.run, seq, label });
            }
        }
        Ok(out)
    }
}

/// Writes one run's journal: holds its lease, numbers its records.
pub(crate) struct Writer<'a> {
    journal: &'a dyn Journal,
    key: RunKey,
    owner: String,
    ttl: Duration,
    next_seq: std::sync::Mutex<u64>,
    /// The run's status before this writer took it: what [`give_back`](Self::give_back) restores.
    before: RunStatus,
}

impl<'a> Writer<'a> {
    /// Takes the lease of a new run; records will be written from position `next_seq`.
    pub(crate) async fn acquire(
        journal: &'a dyn Journal,
        key: RunKey,
        ttl: Duration,
        next_seq: u64,
    ) -> Result<Self, crate::Error> {
        let owner = format!("{}-{}", std::process::id(), RunId::generate());
        journal.acquire(&key, &owner, ttl).await.map_err(|e| {
            if e.kind() == StoreErrorKind::Conflict {
                crate::RunError::AlreadyRunning { run_id: key.run }.into()
            } else {
                crate::Error::from(e)
            }
        })?;
        // A new run that goes no further than this has failed.
        Ok(Self { journal, key, owner, ttl, next_seq: std::sync::Mutex::new(next_seq), before: RunStatus::Failed })
    }

    /// Takes the lease of a run to resume, then reads its journal (in that order: a worker
    /// that read first could miss records another worker wrote before releasing the run).
    /// A run the session does not have is refused before anything is written; a damaged
    /// journal is refused and the run given back as it was. Records will be written after the
    /// last one read.
    pub(crate) async fn resume(
        journal: &'a dyn Journal,
        key: RunKey,
        ttl: Duration,
    ) -> Result<(Self, Vec<(u64, JournalEntry)>), crate::Error> {
        let runs = journal.runs(&key.user, &key.session).await?;
        let Some(before) = runs.iter().find(|r| r.run == key.run).map(|r| r.status) else {
            return Err(crate::RunError::NotResumable {
                run_id: key.run,
                reason: format!("session `{}` has no run with this id", key.session),
            }
            .into());
        };
        let mut writer = Self::acquire(journal, key, ttl, 0).await?;
        writer.before = before;
        let read = match journal.read(&writer.key).await {
            Ok(read) if read.corrupt.is_empty() => read,
            Ok(read) => {
                writer.give_back().await;
                return Err(crate::RunError::JournalCorrupt { run_id: writer.key.run, records: read.corrupt }.into());
            }
            Err(e) => {
                writer.give_back().await;
                return Err(e.into());
            }
        };
        let next = read.entries.last().map_or(0, |(seq, _)| seq + 1);
        *writer.next_seq.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok((writer, read.entries))
    }

    pub(crate) fn key(&self) -> &RunKey {
        &self.key
    }

    /// Appends an entry; a lost lease is [`RunError::LeaseLost`](crate::RunError::LeaseLost).
    pub(crate) async fn append(&self, entry: JournalEntry) -> Result<(), crate::Error> {
        let seq = {
            let mut next = self.next_seq.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let seq = *next;
            *next += 1;
            seq
        };
        let record = RawRecord::encode(seq, &entry)?;
        self.journal.append(&self.key, &self.owner, self.ttl, record).await.map_err(|e| {
            if e.kind() == StoreErrorKind::Conflict {
                crate::RunError::LeaseLost { run_id: self.key.run }.into()
            } else {
                e.into()
            }
        })
    }

    /// Releases the lease of a run that could not go on, with the status it had before (best
    /// effort: the caller reports why it could not go on).
    pub(crate) async fn give_back(&self) {
        let _ = self.journal.finish(&self.key, &self.owner, self.before).await;
    }

    /// Sets the run's status and releases the lease.
    pub(crate) async fn finish(&self, status: RunStatus) -> Result<(), StoreError> {
        self.journal.finish(&self.key, &self.owner, status).await
    }
}

/// A lease is live while its end is in the future.
pub(crate) fn lease_live(lease_until_ms: Option<u64>, now: u64) -> bool {
    lease_until_ms.is_some_and(|until| until > now)
}

/// The run a resume goes on with: `run` when given, else the session's latest unfinished run.
/// `resuming` is the id of the run asking (for the error).
pub(crate) async fn run_to_resume(
    journal: &dyn Journal,
    user: &UserId,
    session: &SessionId,
    run: Option<RunId>,
    resuming: RunId,
) -> Result<RunId, crate::Error> {
    if let Some(run) = run {
        return Ok(run);
    }
    let runs = journal.runs(user, session).await?;
    let latest = runs.into_iter().rev().find(|r| r.status == RunStatus::Running).map(|r| r.run);
    latest.ok_or_else(|| {
        crate::RunError::NotResumable { run_id: resuming, reason: format!("session `{session}` has no unfinished run") }
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_caught() -> Result<(), StoreError> {
        let entry = JournalEntry::TurnFinished { turn: 3 };
        let record = RawRecord::encode(7, &entry)?;
        assert_eq!(record.decode()?, Ok(entry));

        let mut truncated = record.clone();
        truncated.bytes.truncate(truncated.bytes.len() - 3);
        assert!(matches!(truncated.decode()?, Err(CorruptRecord { seq: 7, .. })));

        let mut flipped = record.clone();
        let last = flipped.bytes.len() - 2;
        flipped.bytes[last] ^= 0x20;
        assert!(flipped.decode()?.is_err());
        Ok(())
    }

    #[test]
    fn a_newer_format_is_refused_not_skipped() {
        let json = br#"{"v":2,"kind":"run_finished"}"#;
        let mut bytes = format!("{:016x} ", fnv1a(json)).into_bytes();
        bytes.extend_from_slice(json);
        let err = RawRecord { seq: 0, bytes }.decode().err();
        assert!(err.is_some_and(|e| e.kind() == StoreErrorKind::Incompatible));
    }
}
