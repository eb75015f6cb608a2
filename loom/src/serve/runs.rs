//! Runs in the background: the registry of the native API's runs, each with its bounded
//! buffer of events (rendered once, as SSE lines with ids), its status, and its task.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::error::{ApiError, ErrorFields};
use super::openai::response::UsageJson;
use super::target::{Answer, Job, Served};
use crate::error::{Error, RunError};
use crate::event::RunEvent;
use crate::governance::ApprovalRequest;
use crate::id::{RunId, SessionId, UserId};
use crate::model::Usage;

/// How often an idle event stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Where a run stands.
pub(crate) enum Status {
    Running,
    Finished {
        text: String,
        usage: Usage,
    },
    Failed(ApiError),
    /// Paused: a call waits for a decision (the first one the run stopped at).
    WaitingApproval(Box<ApprovalRequest>),
    /// Stopped before it ended (the server shut down): resumable when journaled.
    Interrupted,
}

impl Status {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished { .. } => "finished",
            Self::Failed(_) => "failed",
            Self::WaitingApproval(_) => "waiting_approval",
            Self::Interrupted => "interrupted",
        }
    }

    /// How a run's outcome is kept.
    pub(crate) fn of(outcome: Result<Answer, Error>) -> Self {
        match outcome {
            Ok(answer) => Self::Finished { text: answer.text, usage: answer.usage },
            Err(Error::Run(RunError::ApprovalPending { request })) => Self::WaitingApproval(request),
            Err(e) => Self::Failed(ApiError::from_run(&e)),
        }
    }
}

struct EntryState {
    status: Status,
    /// The latest events, `(id, SSE lines)`, ids consecutive from 1.
    events: VecDeque<(u64, Bytes)>,
    next_seq: u64,
    task: Option<AbortHandle>,
    finished_at: Option<u64>,
}

/// One run of the native API (or a chat completion's run that paused for approval).
pub(crate) struct RunEntry {
    pub(crate) id: RunId,
    pub(crate) user: UserId,
    pub(crate) target: Arc<str>,
    pub(crate) session: Option<SessionId>,
    created: u64,
    buffer: usize,
    state: Mutex<EntryState>,
    /// Bumped on every event and change of status.
    changed: watch::Sender<u64>,
}

/// `GET /runs/{id}`, and the last line of an event stream.
#[derive(Serialize)]
struct RunView<'a> {
    id: RunId,
    object: &'static str,
    model: &'a str,
    status: &'static str,
    session: Option<&'a SessionId>,
    created_at: u64,
    finished_at: Option<u64>,
    output: Option<&'a str>,
    usage: Option<UsageJson>,
    error: Option<ErrorFields<'a>>,
    pending_approval: Option<&'a ApprovalRequest>,
    /// The id of the latest event: an event stream opened with it as `Last-Event-ID` sends
    /// only what comes after.
    last_event_id: u64,
}

impl RunEntry {
    pub(crate) fn new(
        id: RunId,
        user: UserId,
        target: Arc<str>,
        session: Option<SessionId>,
        status: Status,
        buffer: usize,
    ) -> Self {
        let finished_at = (!matches!(status, Status::Running)).then(now_secs);
        Self {
            id,
            user,
            target,
            session,
            created: now_secs(),
            buffer: buffer.max(1),
            state: Mutex::new(EntryState { status, events: VecDeque::new(), next_seq: 1, task: None, finished_at }),
            changed: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, EntryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether the run is going.
    pub(crate) fn is_running(&self) -> bool {
        matches!(self.lock().status, Status::Running)
    }

    /// Marks a paused, failed or interrupted run as running again (for a resume), or 409 if it
    /// is running or finished (a finished run keeps its answer).
    pub(crate) fn begin(&self) -> Result<(), ApiError> {
        {
            let mut state = self.lock();
            match state.status {
                Status::Running => {
                    return Err(ApiError::conflict("run_in_progress", format!("run {} is running", self.id)));
                }
                Status::Finished { .. } => {
                    return Err(ApiError::conflict(
                        "run_finished",
                        format!("run {} has finished: there is nothing to resume", self.id),
                    ));
                }
                Status::Failed(_) | Status::WaitingApproval(_) | Status::Interrupted => {}
            }
            state.status = Status::Running;
            state.finished_at = None;
        }
        self.bump();
        Ok(())
    }

    fn set_status(&self, status: Status) {
        {
            let mut state = self.lock();
            state.status = status;
            state.finished_at = Some(now_secs());
            state.task = None;
        }
        self.bump();
    }

    /// Keeps `event`, rendered once as SSE lines with the next id; the oldest goes when the
    /// buffer is full.
    fn push(&self, event: &RunEvent) {
        {
            let mut state = self.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            let mut frame = Vec::with_capacity(256);
            let _ = write!(frame, "id: {seq}\ndata: ");
            if serde_json::to_writer(&mut frame, event).is_err() {
                return;
            }
            frame.extend_from_slice(b"\n\n");
            if state.events.len() >= self.buffer {
                state.events.pop_front();
            }
            state.events.push_back((seq, Bytes::from(frame)));
        }
        self.bump();
    }

    /// The run as JSON (`GET /runs/{id}`).
    pub(crate) fn view(&self) -> Vec<u8> {
        let state = self.lock();
        self.render(&state)
    }

    fn render(&self, state: &EntryState) -> Vec<u8> {
        let (output, usage, error, pending) = match &state.status {
            Status::Finished { text, usage } => (Some(text.as_str()), Some(UsageJson::from(usage)), None, None),
            Status::Failed(e) => (
                None,
                None,
                Some(ErrorFields { message: &e.message, kind: e.kind, param: e.param.as_deref(), code: e.code }),
                None,
            ),
            Status::WaitingApproval(request) => (None, None, None, Some(&**request)),
            Status::Running | Status::Interrupted => (None, None, None, None),
        };
        let view = RunView {
            id: self.id,
            object: "run",
            model: &self.target,
            status: state.status.as_str(),
            session: self.session.as_ref(),
            created_at: self.created,
            finished_at: state.finished_at,
            output,
            usage,
            error,
            pending_approval: pending,
            last_event_id: state.next_seq - 1,
        };
        serde_json::to_vec(&view).unwrap_or_default()
    }

    /// The events after `after` (joined), or, once there are none and the run is not going,
    /// the `end` event with the run's status.
    fn since(&self, after: u64) -> Next {
        let state = self.lock();
        let first = state.events.front().map_or(state.next_seq, |(seq, _)| *seq);
        let skip = usize::try_from(after.saturating_add(1).saturating_sub(first)).unwrap_or(usize::MAX);
        let mut frames = state.events.iter().skip(skip);
        match (frames.next(), frames.len()) {
            (Some((seq, one)), 0) => Next::Events(*seq, one.clone()),
            (Some((_, one)), _) => {
                let mut joined = one.to_vec();
                let mut last = 0;
                for (seq, frame) in frames {
                    joined.extend_from_slice(frame);
                    last = *seq;
                }
                Next::Events(last, Bytes::from(joined))
            }
            (None, _) if matches!(state.status, Status::Running) => Next::Wait,
            (None, _) => {
                let mut end = b"event: end\ndata: ".to_vec();
                end.extend_from_slice(&self.render(&state));
                end.extend_from_slice(b"\n\n");
                Next::End(Bytes::from(end))
            }
        }
    }
}

enum Next {
    Events(u64, Bytes),
    End(Bytes),
    Wait,
}

/// The run's events after `after` as an SSE body: every event with its `id:`, live ones as
/// they happen, then an `end` event with the run's status (a paused run's stream ends too;
/// open it again after the run is resumed).
pub(crate) fn events(entry: Arc<RunEntry>, after: u64) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let changed = entry.changed.subscribe();
    futures::stream::unfold((entry, changed, after, false), |(entry, mut changed, mut after, ended)| async move {
        if ended {
            return None;
        }
        loop {
            changed.borrow_and_update();
            match entry.since(after) {
                Next::Events(last, bytes) => {
                    after = last;
                    return Some((Ok(bytes), (entry, changed, after, false)));
                }
                Next::End(bytes) => return Some((Ok(bytes), (entry, changed, after, true))),
                Next::Wait => match tokio::time::timeout(KEEP_ALIVE, changed.changed()).await {
                    Ok(_) => {}
                    Err(_) => {
                        let ping = Bytes::from_static(b": keep-alive\n\n");
                        return Some((Ok(ping), (entry, changed, after, false)));
                    }
                },
            }
        }
    })
}

/// Runs are kept by user and id: one user's run can never be found under another user's.
type Key = (UserId, RunId);

struct Registry {
    map: HashMap<Key, Arc<RunEntry>, foldhash::fast::RandomState>,
    /// Oldest first: the order in which runs are forgotten.
    order: VecDeque<Key>,
}

/// Every run the native API knows, bounded; and the runs going in the background.
pub(crate) struct Runs {
    registry: Mutex<Registry>,
    /// How many runs are going.
    running: watch::Sender<usize>,
    max_runs: usize,
    pub(crate) buffer: usize,
}

/// Ends a background run's bookkeeping however its task ends: finished, or aborted (the
/// run is then interrupted).
struct Conclude {
    runs: Arc<Runs>,
    entry: Arc<RunEntry>,
    status: Option<Status>,
}

impl Conclude {
    /// The run ended with `status`.
    fn with(mut self, status: Status) {
        self.status = Some(status);
    }
}

impl Drop for Conclude {
    fn drop(&mut self) {
        self.entry.set_status(self.status.take().unwrap_or(Status::Interrupted));
        self.runs.running.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Runs {
    pub(crate) fn new(max_runs: usize, buffer: usize) -> Self {
        Self {
            registry: Mutex::new(Registry { map: HashMap::default(), order: VecDeque::new() }),
            running: watch::Sender::new(0),
            max_runs: max_runs.max(1),
            buffer,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The run `id` of `user`; another user's run is not found.
    pub(crate) fn get(&self, user: &UserId, id: RunId) -> Option<Arc<RunEntry>> {
        self.lock().map.get(&(user.clone(), id)).cloned()
    }

    /// The runs of `user`, oldest first.
    pub(crate) fn of_user(&self, user: &UserId) -> Vec<Arc<RunEntry>> {
        let registry = self.lock();
        registry.order.iter().filter(|(u, _)| u == user).filter_map(|key| registry.map.get(key).cloned()).collect()
    }

    /// Forgets the runs of `user` in `session` (their answers and events go with them) and
    /// says how many there were; `Err` with how many are still going, and nothing forgotten,
    /// when some are.
    pub(crate) fn forget_session(&self, user: &UserId, session: &SessionId) -> Result<usize, usize> {
        let mut registry = self.lock();
        let Registry { map, order } = &mut *registry;
        let of_session =
            |key: &(UserId, RunId)| &key.0 == user && map.get(key).is_some_and(|e| e.session.as_ref() == Some(session));
        let going = order.iter().filter(|k| of_session(k) && map.get(*k).is_some_and(|e| e.is_running())).count();
        if going > 0 {
            return Err(going);
        }
        let forgotten: Vec<_> = order.iter().filter(|k| of_session(k)).cloned().collect();
        order.retain(|k| !forgotten.contains(k));
        for key in &forgotten {
            map.remove(key);
        }
        Ok(forgotten.len())
    }

    /// Keeps `entry`, forgetting the oldest runs that are not going when there are too many;
    /// 429 when every kept run is going.
    pub(crate) fn insert(&self, entry: Arc<RunEntry>) -> Result<(), ApiError> {
        let mut registry = self.lock();
        let Registry { map, order } = &mut *registry;
        let key = (entry.user.clone(), entry.id);
        if map.contains_key(&key) {
            return Err(ApiError::conflict("run_exists", format!("run {} exists already", entry.id)));
        }
        if map.len() >= self.max_runs {
            let Some(at) = order.iter().position(|k| map.get(k).is_none_or(|e| !e.is_running())) else {
                return Err(ApiError::too_many_runs(self.max_runs));
            };
            if let Some(old) = order.remove(at) {
                map.remove(&old);
            }
        }
        order.push_back(key.clone());
        map.insert(key, entry);
        Ok(())
    }

    /// Runs `job` on `target` in the background, its events into `entry` (which must be
    /// marked running).
    pub(crate) fn launch(self: &Arc<Self>, entry: Arc<RunEntry>, target: Arc<dyn Served>, job: Job) {
        let sink_entry = Arc::clone(&entry);
        let run = target.run(job, Some(Box::new(move |event: RunEvent| sink_entry.push(&event))));
        self.running.send_modify(|n| *n += 1);
        let conclude = Conclude { runs: Arc::clone(self), entry: Arc::clone(&entry), status: None };
        let task = tokio::spawn(async move {
            let outcome = run.await;
            conclude.with(Status::of(outcome));
        });
        let mut state = entry.lock();
        // A run that ended already has no task to abort.
        if matches!(state.status, Status::Running) && !task.is_finished() {
            state.task = Some(task.abort_handle());
        }
    }

    /// How many runs are going.
    pub(crate) fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Waits until no run is going.
    pub(crate) async fn idle(&self) {
        let mut running = self.running.subscribe();
        let _ = running.wait_for(|n| *n == 0).await;
    }

    /// Stops every run still going (each is then `interrupted`; a journaled one stays
    /// resumable), and waits until their tasks have ended; returns how many there were.
    pub(crate) async fn interrupt(&self) -> usize {
        let tasks: Vec<AbortHandle> = {
            let registry = self.lock();
            registry.map.values().filter_map(|e| e.lock().task.take()).collect()
        };
        for task in &tasks {
            task.abort();
        }
        // Bounded: a run cannot outlive its abort for long (its future is dropped at once).
        let _ = tokio::time::timeout(Duration::from_secs(5), self.idle()).await;
        tasks.len()
    }
}
