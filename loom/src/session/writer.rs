//! Writing one run's journal: the lease that makes the writer the run's only worker, kept
//! alive while the run is, given back when it ends or is dropped; the records' numbering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::{Either, select};

use super::journal::{Journal, JournalEntry, RawRecord, RunKey, RunStatus};
use crate::error::{Error, RunError, StoreError, StoreErrorKind};
use crate::id::{RunId, SessionId, UserId};

/// What a run is: the first record of its journal tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunKind {
    /// An agent's run (`RunStarted`).
    Agent,
    /// A workflow's run (`WorkflowStarted`).
    Workflow,
}

impl RunKind {
    fn of(entry: &JournalEntry) -> Option<Self> {
        match entry {
            JournalEntry::RunStarted { .. } => Some(Self::Agent),
            JournalEntry::WorkflowStarted { .. } => Some(Self::Workflow),
            _ => None,
        }
    }
}

/// Writes one run's journal: holds its lease, numbers its records, renews the lease while the
/// run is alive ([`keep_alive`](Writer::keep_alive)) and gives it back when the run ends — or,
/// if the run's future is dropped first, as soon as the runtime can.
pub(crate) struct Writer {
    journal: Arc<dyn Journal>,
    key: RunKey,
    owner: String,
    ttl: Duration,
    next_seq: AtomicU64,
    /// The run's status before this writer took it: what [`give_back`](Self::give_back) restores.
    before: RunStatus,
    /// The lease was given back (or the run finished): nothing to do on drop.
    released: AtomicBool,
}

impl Writer {
    /// Takes the lease of a new run; records will be written from position `next_seq`.
    pub(crate) async fn acquire(
        journal: Arc<dyn Journal>,
        key: RunKey,
        ttl: Duration,
        next_seq: u64,
    ) -> Result<Self, Error> {
        let owner = format!("{}-{}", std::process::id(), RunId::generate());
        journal.acquire(&key, &owner, ttl).await.map_err(|e| {
            if e.kind() == StoreErrorKind::Conflict {
                RunError::AlreadyRunning { run_id: key.run }.into()
            } else {
                Error::from(e)
            }
        })?;
        // A new run that goes no further than this has failed.
        Ok(Self {
            journal,
            key,
            owner,
            ttl,
            next_seq: AtomicU64::new(next_seq),
            before: RunStatus::Failed,
            released: AtomicBool::new(false),
        })
    }

    /// Takes the lease of a run to resume, then reads its journal (in that order: a worker
    /// that read first could miss records another worker wrote before releasing the run).
    /// A run the session does not have is refused before anything is written; a damaged
    /// journal is refused and the run given back as it was. Records will be written after the
    /// last one read.
    pub(crate) async fn resume(
        journal: Arc<dyn Journal>,
        key: RunKey,
        ttl: Duration,
    ) -> Result<(Self, Vec<(u64, JournalEntry)>), Error> {
        let runs = journal.runs(&key.user, &key.session).await?;
        let Some(before) = runs.iter().find(|r| r.run == key.run).map(|r| r.status) else {
            return Err(RunError::NotResumable {
                run_id: key.run,
                reason: format!("session `{}` has no run with this id", key.session),
            }
            .into());
        };
        let mut writer = Self::acquire(journal, key, ttl, 0).await?;
        writer.before = before;
        let read = match writer.journal.read(&writer.key).await {
            Ok(read) if read.corrupt.is_empty() => read,
            Ok(read) => {
                writer.give_back().await;
                return Err(RunError::JournalCorrupt { run_id: writer.key.run, records: read.corrupt }.into());
            }
            Err(e) => {
                writer.give_back().await;
                return Err(e.into());
            }
        };
        let next = read.entries.last().map_or(0, |(seq, _)| seq + 1);
        writer.next_seq.store(next, Ordering::Relaxed);
        Ok((writer, read.entries))
    }

    pub(crate) fn key(&self) -> &RunKey {
        &self.key
    }

    /// Appends an entry; a lost lease is [`RunError::LeaseLost`].
    pub(crate) async fn append(&self, entry: JournalEntry) -> Result<(), Error> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let record = RawRecord::encode(seq, &entry)?;
        self.journal.append(&self.key, &self.owner, self.ttl, record).await.map_err(|e| self.lost(e))
    }

    fn lost(&self, e: StoreError) -> Error {
        if e.kind() == StoreErrorKind::Conflict {
            RunError::LeaseLost { run_id: self.key.run }.into()
        } else {
            e.into()
        }
    }

    /// Runs `run` while renewing the lease every third of its time to live, so a step that
    /// takes longer than the lease (a slow tool, a long model call) does not lose the run to
    /// another worker. If another worker took the lease all the same (this one stalled past
    /// it), `run` is stopped and the outcome is [`RunError::LeaseLost`]: the run is not
    /// executed twice. The heartbeat is polled with the run, on its task: no task is spawned.
    pub(crate) async fn keep_alive<T>(&self, run: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let run = std::pin::pin!(run);
        let beat = std::pin::pin!(self.heartbeat());
        match select(run, beat).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right((lost, _)) => Err(lost),
        }
    }

    /// Renews the lease until it is lost; returns why.
    async fn heartbeat(&self) -> Error {
        let every = (self.ttl / 3).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(every).await;
            match self.journal.renew(&self.key, &self.owner, self.ttl).await {
                Ok(()) => {}
                Err(e) if e.kind() == StoreErrorKind::Conflict => return self.lost(e),
                // The store is unreachable for now: try again at the next beat (if it stays
                // away past the lease, the next write finds the lease lost).
                Err(e) => tracing::warn!(run_id = %self.key.run, "could not renew the run's lease: {e}"),
            }
        }
    }

    /// Releases the lease of a run that could not go on, with the status it had before (best
    /// effort: the caller reports why it could not go on).
    pub(crate) async fn give_back(&self) {
        self.released.store(true, Ordering::Relaxed);
        let _ = self.journal.finish(&self.key, &self.owner, self.before).await;
    }

    /// Sets the run's status and releases the lease.
    pub(crate) async fn finish(&self, status: RunStatus) -> Result<(), StoreError> {
        self.released.store(true, Ordering::Relaxed);
        self.journal.finish(&self.key, &self.owner, status).await
    }
}

impl Drop for Writer {
    /// A run dropped before it ended (cancelled, or its caller gave up) leaves the run
    /// resumable and gives its lease back at once, so another worker need not wait for it to
    /// expire. Without a runtime to do it on, the lease simply expires.
    fn drop(&mut self) {
        if self.released.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (journal, key, owner) = (Arc::clone(&self.journal), self.key.clone(), std::mem::take(&mut self.owner));
        runtime.spawn(async move {
            let _ = journal.finish(&key, &owner, RunStatus::Running).await;
        });
    }
}

/// The run a resume goes on with: `run` when given, else the session's latest unfinished run
/// of `kind` (an agent resumes agent runs, a workflow workflow runs). `resuming` is the id of
/// the run asking (for the error).
pub(crate) async fn run_to_resume(
    journal: &dyn Journal,
    user: &UserId,
    session: &SessionId,
    run: Option<RunId>,
    kind: RunKind,
    resuming: RunId,
) -> Result<RunId, Error> {
    if let Some(run) = run {
        return Ok(run);
    }
    let runs = journal.runs(user, session).await?;
    for info in runs.into_iter().rev().filter(|r| r.status == RunStatus::Running) {
        let key = RunKey::new(user.clone(), session.clone(), info.run);
        let first = journal.records(&key).await?.into_iter().next();
        match first.map(|r| r.decode()).transpose()? {
            Some(Ok(entry)) if RunKind::of(&entry) == Some(kind) => return Ok(info.run),
            // A run of the other kind, or one with nothing readable yet: not this one.
            _ => {}
        }
    }
    let what = match kind {
        RunKind::Agent => "agent run",
        RunKind::Workflow => "workflow run",
    };
    Err(RunError::NotResumable { run_id: resuming, reason: format!("session `{session}` has no unfinished {what}") }
        .into())
}
