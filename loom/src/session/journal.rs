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
        /// How many session messages the run saw before its input.
        history: usize,
        /// Where in the session's history those messages start (with a history limit, the run
        /// sees a window of the latest ones), so a resumed or branched run sees the same
        /// window. Absent in journals written before it was recorded: the window started at
        /// the beginning.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_start: Option<usize>,
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
    /// A tool call (recorded as started) waits for an approval; the run paused here.
    ApprovalRequested {
        /// The turn that asked for it.
        turn: u32,
        /// The call's id.
        call_id: String,
        /// The tool.
        tool: String,
        /// The arguments the model wrote (JSON text).
        arguments: String,
        /// Why it needs approval.
        reason: String,
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

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// Until when a worker holds it (milliseconds since the Unix epoch, by the store's clock);
    /// `None` when no worker does. A lease that has passed can be taken over.
    pub lease_until_ms: Option<u64>,
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
        // Exactly as written: 16 lowercase hex digits (a changed letter case is damage too).
        let well_formed = sum.len() == 16 && sum.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let expected =
            std::str::from_utf8(sum).ok().filter(|_| well_formed).and_then(|s| u64::from_str_radix(s, 16).ok());
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

/// Decodes records (in position order) into a [`JournalRead`]. A position with no record —
/// a gap in the sequence — is reported as a [`CorruptRecord`] too: records are never written
/// out of order, so a gap means one was lost.
pub fn decode_records(records: impl IntoIterator<Item = RawRecord>) -> Result<JournalRead, StoreError> {
    let mut read = JournalRead::default();
    let mut expected = 0u64;
    for record in records {
        if record.seq > expected {
            let error = match expected {
                0 => format!("missing: the journal starts at record {}", record.seq),
                _ => format!("missing: the journal jumps from record {} to record {}", expected - 1, record.seq),
            };
            read.corrupt.push(CorruptRecord { seq: expected, error });
        }
        expected = record.seq.saturating_add(1);
        match record.decode()? {
            Ok(entry) => read.entries.push((record.seq, entry)),
            Err(corrupt) => read.corrupt.push(corrupt),
        }
    }
    Ok(read)
}

/// What [`Journal::repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Repair {
    /// How many records were kept.
    pub kept: usize,
    /// The damaged or missing records at the end of the journal that were dropped.
    pub dropped: Vec<CorruptRecord>,
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

    /// Extends `owner`'s lease of `key` to `ttl` from now (a running step's heartbeat). Fails
    /// with [`StoreErrorKind::Conflict`] if `owner` does not hold it any more.
    async fn renew(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError>;

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

    /// Repairs a journal whose end is damaged — the last record torn by a crash or a power
    /// loss, or missing — by dropping the damaged tail, so the run can be resumed from the
    /// last good step (which it then runs again). A journal damaged before its end is refused
    /// with [`StoreErrorKind::Corrupt`]: dropping good records after the damage would lose
    /// finished steps. A run a worker holds is refused with [`StoreErrorKind::Conflict`].
    async fn repair(&self, key: &RunKey) -> Result<Repair, StoreError> {
        let records = self.records(key).await?;
        let read = decode_records(records.iter().cloned())?;
        let Some(first) = read.corrupt.first().map(|c| c.seq) else {
            return Ok(Repair { kept: records.len(), dropped: Vec::new() });
        };
        if let Some((seq, _)) = read.entries.iter().find(|(seq, _)| *seq > first) {
            return Err(StoreError::new(
                StoreErrorKind::Corrupt,
                "journal",
                format!(
                    "record {first} of run {} is damaged and record {seq} after it is readable: only a damaged \
                     end can be repaired",
                    key.run
                ),
            ));
        }
        let status = self.runs(&key.user, &key.session).await?.into_iter().find(|r| r.run == key.run).map(|r| r.status);
        let kept: Vec<RawRecord> = records.into_iter().filter(|r| r.seq < first).collect();
        let repair = Repair { kept: kept.len(), dropped: read.corrupt };
        self.import(key, status.unwrap_or(RunStatus::Running), kept).await?;
        Ok(repair)
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

/// A lease is live while its end is in the future.
pub(crate) fn lease_live(lease_until_ms: Option<u64>, now: u64) -> bool {
    lease_until_ms.is_some_and(|until| until > now)
}

/// `now + ttl` in milliseconds, saturating.
pub(crate) fn lease_end(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
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
