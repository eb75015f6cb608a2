//! The bookkeeping of one workflow run: visits, caps, steps, events.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::error::{NodeError, WorkflowError};
use super::spec::{GraphSpec, NodeName};
use super::summary::Summary;
use crate::context::{ChildSessions, RunContext};
use crate::event::EventKind;
use crate::session::{JournalEntry, Writer};

/// One step of a finished node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepRecord {
    /// The node.
    pub node: NodeName,
    /// How long it ran.
    pub duration: Duration,
    /// A short description of its output.
    pub summary: Summary,
}

/// A node that [`GraphRun::enter`] let in: when it started, and the context it runs with.
///
/// A node starts when the step before it ended (or the run began), so what happens between two
/// nodes (routing on a key, cloning a fan-out's input) counts toward the next one, and the clock
/// is read once per node, when it finishes (and after the journal write, in a journaled run).
/// Branches of a fan-out all start at the fan-out.
#[derive(Debug)]
pub struct NodeStart {
    at: Instant,
    /// The node's own context, when the runs nested in it need one (their sessions follow the
    /// workflow's [`ChildSessions`], their ids are derived in a journaled run); otherwise the
    /// run's context serves.
    ctx: Option<RunContext>,
}

impl NodeStart {
    /// The context the node runs with (and the agents and workflows in it): pass it to the
    /// node.
    pub fn ctx<'r>(&'r self, run: &'r GraphRun<'_>) -> &'r RunContext {
        self.ctx.as_ref().unwrap_or(run.ctx)
    }
}

struct State {
    visits: Visits,
    visited: Vec<NodeName>,
    records: Vec<StepRecord>,
    /// Steps taken: nodes entered, but the branches of a fan-out count as its one step.
    steps: u32,
    /// When the last node finished (or the run began).
    last: Instant,
}

/// The state of one run of a workflow graph, shared by the nodes that run (concurrently, in a
/// fan-out). Graph implementations call [`enter`](GraphRun::enter) before a node and
/// [`exit`](GraphRun::exit) after it: that enforces the visit and step bounds, records
/// `visited` and a [`StepRecord`] per finished node, journals the node, and emits the node
/// events.
pub struct GraphRun<'a> {
    ctx: &'a RunContext,
    spec: &'a GraphSpec,
    max_visits: u32,
    max_steps: u32,
    child_sessions: ChildSessions,
    state: Mutex<State>,
    writer: Option<&'a Writer>,
}

impl<'a> GraphRun<'a> {
    pub(crate) fn new(
        ctx: &'a RunContext,
        spec: &'a GraphSpec,
        max_visits: u32,
        max_steps: u32,
        started: Instant,
    ) -> Self {
        let state = State {
            visits: Visits::new(spec.nodes().len()),
            visited: Vec::with_capacity(8),
            records: Vec::with_capacity(8),
            steps: 0,
            last: started,
        };
        Self {
            ctx,
            spec,
            max_visits,
            max_steps,
            child_sessions: ChildSessions::default(),
            state: Mutex::new(state),
            writer: None,
        }
    }

    /// Writes the run's node steps to a journal.
    pub(crate) fn with_writer(mut self, writer: Option<&'a Writer>) -> Self {
        self.writer = writer;
        self
    }

    /// The sessions of the runs nested in the nodes.
    pub(crate) fn with_child_sessions(mut self, rule: ChildSessions) -> Self {
        self.child_sessions = rule;
        self
    }

    /// Counts these nodes as already entered (a resumed run keeps its visit and step bounds).
    pub(crate) fn restore(&self, visited: &[usize]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for &node in visited {
            if let Some(v) = state.visits.get_mut(node) {
                *v += 1;
            }
            state.visited.push(NodeName(self.name(node)));
            if !self.spec.node(node).is_some_and(|n| n.branch) {
                state.steps += 1;
            }
        }
    }

    /// Whether the run is journaled (node outputs are then recorded as JSON when their
    /// type serialises, so a resumed run can start after the last finished node).
    pub fn is_journaled(&self) -> bool {
        self.writer.is_some()
    }

    async fn record(&self, entry: JournalEntry) -> Result<(), WorkflowError> {
        match self.writer {
            Some(w) => w.append(entry).await.map_err(|e| WorkflowError::Journal(Box::new(e))),
            None => Ok(()),
        }
    }

    /// The run's context: nodes and the agents in them run with it.
    pub fn ctx(&self) -> &'a RunContext {
        self.ctx
    }

    fn name(&self, node: usize) -> Arc<str> {
        self.spec.node(node).map_or_else(|| Arc::from("?"), |n| Arc::clone(&n.name))
    }

    /// Enters `node`: fails when its visit bound or the run's step bound is reached. Run the
    /// node with the context of the [`NodeStart`] it returns.
    pub async fn enter(&self, node: usize) -> Result<NodeStart, WorkflowError> {
        let spec = self.spec.node(node);
        let limit = spec.and_then(|n| n.max_visits).unwrap_or(self.max_visits);
        let start = {
            // Never held across an await: nodes of a fan-out run concurrently on this task.
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !spec.is_some_and(|n| n.branch) {
                if state.steps >= self.max_steps {
                    return Err(WorkflowError::StepLimit { limit: self.max_steps, node: self.name(node) });
                }
                state.steps += 1;
            }
            let Some(visits) = state.visits.get_mut(node) else {
                return Err(WorkflowError::Node { node: self.name(node), error: NodeError::new("no such node") });
            };
            if *visits >= limit {
                return Err(WorkflowError::VisitLimit { node: self.name(node), limit });
            }
            *visits += 1;
            let visit = *visits;
            state.visited.push(NodeName(self.name(node)));
            (state.last, visit)
        };
        let (start, visit) = start;
        self.ctx.emit(|| EventKind::NodeStarted { workflow: Arc::clone(self.spec.name_arc()), node: self.name(node) });
        // A context of the node's own only when nested runs need it: a run without a session
        // or a journal hands its nodes its own.
        let journaled = self.writer.is_some();
        let scoped = journaled || (self.ctx.session().is_some() && self.child_sessions != ChildSessions::Shared);
        let ctx = scoped.then(|| self.ctx.in_node(self.name(node), visit, self.child_sessions, journaled));
        if journaled {
            Box::pin(self.record(JournalEntry::NodeStarted { node: self.name(node).to_string(), index: node })).await?;
            // The journal write is not the node's time.
            return Ok(NodeStart { at: Instant::now(), ctx });
        }
        Ok(NodeStart { at: start, ctx })
    }

    /// Leaves `node`, which started at `started`: records its step, with `summary` describing
    /// its output; in a journaled run, `output` gives the output as JSON for the journal.
    ///
    /// Both closures run before this returns: the future holds neither (nor what they borrow).
    pub fn exit(
        &self,
        node: usize,
        started: NodeStart,
        summary: impl FnOnce() -> Summary,
        output: impl FnOnce() -> Option<serde_json::Value>,
    ) -> impl Future<Output = Result<(), WorkflowError>> + Send + '_ {
        let now = Instant::now();
        let duration = now.saturating_duration_since(started.at);
        drop(started);
        let record = StepRecord { node: NodeName(self.name(node)), duration, summary: summary() };
        self.ctx.emit(|| EventKind::NodeFinished {
            workflow: Arc::clone(self.spec.name_arc()),
            node: self.name(node),
            duration,
            summary: record.summary.to_string(),
        });
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.last = state.last.max(now);
            state.records.push(record);
        }
        let entry = self.writer.is_some().then(|| JournalEntry::NodeFinished {
            node: self.name(node).to_string(),
            index: node,
            output: output(),
        });
        async move {
            match entry {
                Some(entry) => Box::pin(self.record(entry)).await,
                None => Ok(()),
            }
        }
    }

    /// `node` failed with `error`: the error of the run.
    pub fn fail(&self, node: usize, error: NodeError) -> WorkflowError {
        let node = self.name(node);
        self.ctx.emit(|| EventKind::NodeFailed {
            workflow: Arc::clone(self.spec.name_arc()),
            node: Arc::clone(&node),
            error: error.to_string(),
        });
        WorkflowError::Node { node, error }
    }

    /// The names of the nodes entered, in order, and the steps of the nodes that finished.
    pub(crate) fn finish(self) -> (Vec<NodeName>, Vec<StepRecord>) {
        let state = self.state.into_inner().unwrap_or_else(PoisonError::into_inner);
        (state.visited, state.records)
    }
}

/// How many times each node was entered: inline for small graphs (no allocation per run).
enum Visits {
    Few { counts: [u32; 16], nodes: usize },
    Many(Vec<u32>),
}

impl Visits {
    fn new(nodes: usize) -> Self {
        if nodes <= 16 { Self::Few { counts: [0; 16], nodes } } else { Self::Many(vec![0; nodes]) }
    }

    /// The count of `node`; `None` for a node the graph does not have.
    fn get_mut(&mut self, node: usize) -> Option<&mut u32> {
        match self {
            Self::Few { counts, nodes } => counts[..*nodes].get_mut(node),
            Self::Many(counts) => counts.get_mut(node),
        }
    }
}

/// A short description of any value: its text when it is a string or a number, its type
/// otherwise.
pub(crate) fn summarize_any<T: std::any::Any>(value: &T) -> Summary {
    let any = value as &dyn std::any::Any;
    if let Some(s) = any.downcast_ref::<String>() {
        return Summary::of(s);
    }
    if let Some(s) = any.downcast_ref::<&str>() {
        return Summary::of(s);
    }
    macro_rules! numbers {
        ($($t:ty),*) => {$(
            if let Some(n) = any.downcast_ref::<$t>() {
                return Summary::format(format_args!("{n}"));
            }
        )*};
    }
    numbers!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize, f32, f64, bool);
    if let Some(v) = any.downcast_ref::<Vec<String>>() {
        return Summary::format(format_args!("{v:?}"));
    }
    Summary::format(format_args!("<{}>", std::any::type_name::<T>()))
}
