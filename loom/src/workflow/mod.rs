//! Workflows: the developer keeps control of the graph.
//!
//! A [`Workflow`] runs a graph of nodes — async functions, agents, other workflows — passing
//! each node's output to the next as its Rust type. Build one with
//! - [`Workflow::chain`]: nodes one after another;
//! - [`Workflow::route`]: a classifier picks one of several handlers;
//! - [`Workflow::parallel`]: branches run at once, a join combines their outputs;
//! - [`Workflow::builder`]: an explicit graph with routes, fan-outs and cycles, checked at
//!   `build()`;
//! - `#[workflow]` on an `impl` block of `#[node]` methods: the same graphs, checked at compile
//!   time, run as a typed state machine.
//!
//! Every run reports the nodes it `visited` and a record per step, emits node events on the
//! run's event stream (with the events of the agents inside), and stops with a clear error
//! when a node exceeds its visit bound (default 25) or the run its step bound (default 100).

mod builder;
mod error;
mod node;
mod run;
mod spec;
mod sugar;
mod summary;
mod tool;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tracing::Instrument as _;

pub use crate::context::ChildSessions;
pub use builder::{GraphBuilder, NodeId, RouteBuilder};
pub use error::{GraphError, NodeError, WorkflowError};
pub use node::{
    BoxNode, ContextNode, Named, Node, SyncNode, TryNode, boxed, named, node_with_context, sync_node, try_node,
};
pub use run::{GraphRun, NodeStart, StepRecord};
pub use spec::{EdgeKind, EdgeSpec, GraphSpec, NodeKind, NodeName, NodeSpec};
pub use sugar::{Chain, IntoChain};
pub use summary::{MAX_SUMMARY_LEN, Summary};
pub use tool::WorkflowTool;

pub(crate) use run::summarize_any;

use crate::context::{Extensions, RunContext};
use crate::error::{ConfigError, Error, RunError};
use crate::event::{Emitter, EventKind, EventListener};
use crate::id::{RunId, SessionId, UserId};
use crate::runner::{RunBuilder, Runnable, Sealed};
use crate::session::{Journal, JournalEntry, RunKey, RunKind, RunStatus, Writer, run_to_resume};

/// The default visit bound of a node.
pub const DEFAULT_MAX_VISITS: u32 = 25;

/// The default step bound of a run.
pub const DEFAULT_MAX_STEPS: u32 = 100;

/// A runnable graph: what the workflow constructors and `#[workflow]` produce.
///
/// Implementations call [`GraphRun::enter`] and [`GraphRun::exit`] around every node, so the
/// bounds, `visited`, the step records and the events are the same for every kind of graph.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a workflow graph",
    note = "put `#[workflow]` on an `impl` block of `#[node]` methods, or build a `Workflow` with its constructors"
)]
pub trait Graph: Send + Sync + 'static {
    /// What a run takes.
    type Input: Send + 'static;
    /// What a run gives.
    type Output: Send + 'static;

    /// The static graph.
    fn spec(&self) -> &GraphSpec;

    /// Runs the graph on `input`.
    fn execute<'a>(
        &'a self,
        run: &'a GraphRun<'_>,
        input: Self::Input,
    ) -> BoxFuture<'a, Result<Self::Output, WorkflowError>>;

    /// Whether a run can resume right after `node`: the node's output type deserialises
    /// (graphs built by `#[workflow]` answer per node; other graphs resume from the start).
    fn resumable_after(&self, node: usize) -> bool {
        let _ = node;
        false
    }

    /// Resumes a run right after `node`, whose output was recorded as `output`: the run goes
    /// on exactly as if the node had just finished.
    fn resume_after<'a>(
        &'a self,
        run: &'a GraphRun<'_>,
        node: usize,
        output: serde_json::Value,
    ) -> BoxFuture<'a, Result<Self::Output, WorkflowError>> {
        let _ = output;
        Box::pin(async move { Err(run.fail(node, NodeError::new("this graph cannot resume after this node"))) })
    }

    /// This graph as a [`Workflow`].
    fn into_workflow(self) -> Workflow<Self::Input, Self::Output>
    where
        Self: Sized,
    {
        Workflow::new(self)
    }
}

/// A workflow: a graph of nodes, run with a [`RunContext`] like an agent.
///
/// ```
/// use loomflow::prelude::*;
/// use loomflow::workflow::Workflow;
///
/// async fn shout(s: String) -> String {
///     s.to_uppercase()
/// }
/// async fn exclaim(s: String) -> String {
///     s + "!"
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// # rt.block_on(async {
/// let wf = Workflow::chain((shout, exclaim));
/// let result = wf.run("hello".to_owned()).user("alice").await?;
/// assert_eq!(result.output, "HELLO!");
/// assert_eq!(result.visited, ["step_0", "step_1"]);
/// # Ok::<(), loomflow::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Workflow<I, O> {
    graph: Arc<dyn Graph<Input = I, Output = O>>,
    max_visits: u32,
    max_steps: u32,
    extensions: Extensions,
    emitter: Emitter,
    journal: Option<(Arc<dyn Journal>, InputCodec<I>)>,
    lease_ttl: Duration,
    child_sessions: ChildSessions,
    governance: Option<Arc<crate::governance::Governance>>,
    /// The first misconfiguration, reported by every run before it starts.
    config_error: Option<ConfigError>,
}

/// How a durable workflow writes its input to the journal and reads it back.
struct InputCodec<I> {
    encode: fn(&I) -> Result<serde_json::Value, serde_json::Error>,
    decode: fn(serde_json::Value) -> Result<I, serde_json::Error>,
}

impl<I> Clone for InputCodec<I> {
    fn clone(&self) -> Self {
        Self { encode: self.encode, decode: self.decode }
    }
}

/// How a workflow run starts: from an input, or by resuming a journaled run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WorkflowInput<I> {
    /// A new run on this input.
    Run(I),
    /// Resume a run.
    Resume {
        /// The run; `None` for the session's latest unfinished workflow run.
        run: Option<RunId>,
        /// Decisions for nodes that would run again, by node name.
        decisions: Vec<(String, NodeDecision)>,
    },
}

impl<I> WorkflowInput<I> {
    /// Resume `run`.
    pub fn resume(run: RunId) -> Self {
        Self::Resume { run: Some(run), decisions: Vec::new() }
    }

    /// Resume the session's latest unfinished workflow run.
    pub fn resume_latest() -> Self {
        Self::Resume { run: None, decisions: Vec::new() }
    }

    /// Decides what to do with node `node`, which the resumed run would run again.
    #[must_use]
    pub fn decide(mut self, node: impl Into<String>, decision: NodeDecision) -> Self {
        if let Self::Resume { decisions, .. } = &mut self {
            decisions.push((node.into(), decision));
        }
        self
    }
}

/// What to do with a node that a resumed run would run again although it had started before
/// the crash (it was interrupted, or its output could not be restored), when the node is not
/// marked idempotent.
///
/// A workflow run resumes right after the last node whose output it can restore; the nodes
/// that had started after that point run again. An idempotent node (`#[node(idempotent)]`,
/// [`GraphBuilder::idempotent`], or an agent or workflow with a journal, whose own journal
/// replays what it finished) simply does; any other stops the resume with
/// [`RunError::NodeNeedsDecision`] until the caller decides, as for an interrupted tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeDecision {
    /// Run the node again (it is safe to repeat).
    Rerun,
    /// Do not run it: the run fails with this message.
    Fail(String),
}

impl<I, O> Clone for Workflow<I, O> {
    fn clone(&self) -> Self {
        Self {
            graph: Arc::clone(&self.graph),
            max_visits: self.max_visits,
            max_steps: self.max_steps,
            extensions: self.extensions.clone(),
            emitter: self.emitter.clone(),
            journal: self.journal.clone(),
            lease_ttl: self.lease_ttl,
            child_sessions: self.child_sessions,
            governance: self.governance.clone(),
            config_error: self.config_error.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> fmt::Debug for Workflow<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workflow")
            .field("name", &self.graph.spec().name())
            .field("nodes", &self.graph.spec().nodes().iter().map(|n| &*n.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<I: Send + 'static, O: Send + 'static> Workflow<I, O> {
    /// A workflow running `graph`, with the bounds the graph declares (`#[workflow(max_steps
    /// = .., max_visits = ..)]`) or the defaults.
    pub fn new(graph: impl Graph<Input = I, Output = O>) -> Self {
        let (max_visits, max_steps) = graph.spec().bounds();
        Self {
            graph: Arc::new(graph),
            max_visits: max_visits.unwrap_or(DEFAULT_MAX_VISITS),
            max_steps: max_steps.unwrap_or(DEFAULT_MAX_STEPS),
            extensions: Extensions::new(),
            emitter: Emitter::default(),
            journal: None,
            lease_ttl: crate::agent::DEFAULT_LEASE,
            child_sessions: ChildSessions::default(),
            governance: None,
            config_error: None,
        }
    }

    /// Runs the workflow on `input`. Set the user, session and metadata on the returned
    /// builder, then `.await` it for the [`WorkflowResult`], or stream its events.
    pub fn run(&self, input: I) -> RunBuilder<'_, Self> {
        RunBuilder::new(self, WorkflowInput::Run(input))
    }

    /// Resumes the journaled run `run` (set its user and session on the builder): it goes on
    /// right after the last node that finished — with that node's output restored as its Rust
    /// type — or from the start for graphs whose outputs do not deserialise. Nodes that had
    /// started after that point run again if they are idempotent; see [`NodeDecision`].
    pub fn resume(&self, run: RunId) -> RunBuilder<'_, Self> {
        RunBuilder::new(self, WorkflowInput::resume(run))
    }

    /// Resumes the session's latest unfinished workflow run.
    pub fn resume_latest(&self) -> RunBuilder<'_, Self> {
        RunBuilder::new(self, WorkflowInput::resume_latest())
    }

    /// Resumes as `input` says (which run, decisions for nodes that would run again).
    pub fn resume_with(&self, input: WorkflowInput<I>) -> RunBuilder<'_, Self> {
        RunBuilder::new(self, input)
    }

    /// How long a journaled run's lease lasts (default [`DEFAULT_LEASE`](crate::agent::DEFAULT_LEASE));
    /// a running run renews it every third of that time. At least a millisecond.
    #[must_use]
    pub fn lease(mut self, ttl: Duration) -> Self {
        if let Err(e) = crate::agent::check_lease(ttl) {
            self.config_error.get_or_insert(e);
        }
        self.lease_ttl = ttl;
        self
    }

    /// Which sessions the agents and workflows in the nodes continue (default
    /// [`ChildSessions::PerNode`]: each node its own, `{session}/{node}`).
    #[must_use]
    pub fn child_sessions(mut self, rule: ChildSessions) -> Self {
        self.child_sessions = rule;
        self
    }

    /// The default visit bound of a node without its own (default [`DEFAULT_MAX_VISITS`]).
    #[must_use]
    pub fn max_visits(mut self, max_visits: u32) -> Self {
        self.max_visits = max_visits.max(1);
        self
    }

    /// The most steps one run may take (default [`DEFAULT_MAX_STEPS`]): every node entered is a
    /// step, except that the branches of a fan-out share the fan-out's one step.
    #[must_use]
    pub fn max_steps(mut self, max_steps: u32) -> Self {
        self.max_steps = max_steps.max(1);
        self
    }

    /// Gives the nodes (and the agents and tools in them) shared state of type `T`.
    #[must_use]
    pub fn state<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// Governs every run of the workflow: the agents of its nodes (and the runs nested in
    /// them) share one budget per run, the same permissions, approvals and guardrails
    /// ([`governance`](crate::governance)). A node's agent with a governance of its own is
    /// governed by its own.
    #[must_use]
    pub fn governance(mut self, governance: impl Into<Arc<crate::governance::Governance>>) -> Self {
        let governance = governance.into();
        if let Err(e) = governance.check() {
            self.config_error.get_or_insert(e);
        }
        self.governance = Some(governance);
        self
    }

    /// Sends the events of every run to `listener`.
    #[must_use]
    pub fn on_event(mut self, listener: impl EventListener) -> Self {
        self.emitter.add(Arc::new(listener));
        self
    }

    /// The static graph.
    pub fn graph(&self) -> &GraphSpec {
        self.graph.spec()
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        self.graph.spec().name()
    }

    /// Whether its runs with a session are journaled.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    pub(crate) fn is_journaled(&self) -> bool {
        self.journal.is_some()
    }

    /// The graph as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        self.graph.spec().to_mermaid()
    }

    /// The graph in Graphviz DOT.
    pub fn to_dot(&self) -> String {
        self.graph.spec().to_dot()
    }

    /// Runs the workflow. Written as `fn -> impl Future` around an `async move` block (an
    /// `async fn` keeps a copy of each argument next to the argument): the run's future, boxed
    /// once per run, stays small.
    #[allow(clippy::manual_async_fn)]
    fn execute(
        &self,
        input: WorkflowInput<I>,
        mut ctx: RunContext,
    ) -> impl Future<Output = Result<WorkflowResult<O>, Error>> + Send + '_ {
        async move {
            if let Some(e) = &self.config_error {
                return Err(e.clone().into());
            }
            let spec = self.graph.spec();
            let started = Instant::now();
            let journaled = self.journal.is_some() && ctx.session().is_some();
            let (start, writer) = match input {
                WorkflowInput::Run(input) if !journaled => (Start::Input(input), None),
                // Boxed, as the writer: the future of a run without a journal stays small.
                input => Box::pin(self.begin(input, &mut ctx)).await?,
            };
            // The GenAI conventions' names and attributes (`telemetry::genai`), evaluated only
            // when a subscriber enables the span.
            let span = tracing::info_span!(
                "loom.workflow",
                otel.name = %crate::telemetry::genai::SpanName("invoke_workflow", Some(spec.name())),
                workflow = spec.name(),
                run_id = %ctx.run_id(),
                gen_ai.operation.name = "invoke_workflow",
                gen_ai.agent.name = spec.name(),
                gen_ai.conversation.id = ctx.session().map(tracing::field::display),
                error.type = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            ctx.emit(|| EventKind::RunStarted {
                name: Some(Arc::clone(spec.name_arc())),
                user: ctx.user().clone(),
                session: ctx.session().cloned(),
                parent: ctx.parent(),
            });
            let run = GraphRun::new(&ctx, spec, self.max_visits, self.max_steps, started)
                .with_writer(writer.as_deref())
                .with_child_sessions(self.child_sessions);
            let graph = async {
                match start {
                    Start::Input(input) => self.graph.execute(&run, input).instrument(span.clone()).await,
                    Start::After { node, output, visited } => {
                        run.restore(&visited);
                        for &n in &visited {
                            ctx.emit(|| EventKind::StepReplayed {
                                step: format!("node {}", spec.node(n).map_or("?", |s| &*s.name)),
                            });
                        }
                        self.graph.resume_after(&run, node, output).instrument(span.clone()).await
                    }
                }
                .map_err(Error::Workflow)
            };
            let outcome = match &writer {
                // A journaled run keeps its lease alive while it runs, and records how it ended:
                // a run whose end could not be recorded has not finished.
                Some(writer) => {
                    let outcome = Box::pin(writer.keep_alive(graph)).await;
                    Box::pin(conclude(writer, outcome)).await
                }
                None => graph.await,
            };
            crate::telemetry::genai::workflow_finished(&span, &outcome);
            let (visited, steps) = run.finish();
            match outcome {
                Ok(output) => {
                    let duration = started.elapsed();
                    ctx.emit(|| EventKind::WorkflowFinished {
                        workflow: Arc::clone(spec.name_arc()),
                        steps: visited.len() as u32,
                        duration,
                    });
                    Ok(WorkflowResult {
                        output,
                        visited,
                        steps,
                        run_id: ctx.run_id(),
                        user: ctx.user().clone(),
                        session: ctx.session().cloned(),
                        duration,
                    })
                }
                Err(e) => {
                    ctx.emit(|| EventKind::Error { message: e.to_string(), transient: e.is_transient() });
                    Err(e)
                }
            }
        }
    }
}

/// Records how a journaled workflow run ended and releases its lease. A run that lost its
/// lease writes nothing more; a run whose last record cannot be written fails with that error
/// (it stays resumable).
async fn conclude<O>(writer: &Writer, outcome: Result<O, Error>) -> Result<O, Error> {
    let lost = |e: &Error| {
        matches!(e, Error::Run(RunError::LeaseLost { .. }))
            || matches!(e, Error::Workflow(WorkflowError::Journal(inner)) if matches!(**inner, Error::Run(RunError::LeaseLost { .. })))
    };
    match &outcome {
        Err(e) if lost(e) => return outcome,
        Ok(_) => {
            if let Err(e) = writer.append(JournalEntry::RunFinished).await {
                writer.finish(RunStatus::Running).await.ok();
                return Err(e);
            }
            writer.finish(RunStatus::Finished).await?;
        }
        Err(e) => {
            let recorded = writer.append(JournalEntry::RunFailed { error: e.to_string() }).await;
            let status = if recorded.is_ok() { RunStatus::Failed } else { RunStatus::Running };
            // The run's own error is what the caller needs.
            writer.finish(status).await.ok();
        }
    }
    outcome
}

/// Where a run starts, and the writer of its journal.
type Beginning<I> = (Start<I>, Option<Box<Writer>>);

enum Start<I> {
    Input(I),
    After { node: usize, output: serde_json::Value, visited: Vec<usize> },
}

impl<I: Send + 'static, O: Send + 'static> Workflow<I, O> {
    /// How the run begins: fresh (journaled when the workflow has a store and the run a
    /// session), or resumed from its journal.
    async fn begin(&self, input: WorkflowInput<I>, ctx: &mut RunContext) -> Result<Beginning<I>, Error> {
        let durable = match (&self.journal, ctx.session()) {
            (Some((journal, codec)), Some(session)) => Some((journal, codec, session.clone())),
            _ => None,
        };
        match (input, durable) {
            (WorkflowInput::Run(input), None) => Ok((Start::Input(input), None)),
            (WorkflowInput::Run(input), Some((journal, codec, session))) => {
                let key = RunKey::new(ctx.user().clone(), session, ctx.run_id());
                let writer = Writer::acquire(Arc::clone(journal), key, self.lease_ttl, 0).await?;
                let started = match (codec.encode)(&input) {
                    Ok(json) => {
                        writer.append(JournalEntry::WorkflowStarted { input: json, name: self.name().to_owned() }).await
                    }
                    Err(e) => Err(workflow_journal(e.to_string())),
                };
                if let Err(e) = started {
                    writer.give_back().await;
                    return Err(e);
                }
                Ok((Start::Input(input), Some(Box::new(writer))))
            }
            (WorkflowInput::Resume { .. }, None) => Err(ConfigError::InvalidSetting {
                setting: "resume",
                reason: "resuming needs a journal (`Workflow::store`) and the run's session (`.session(..)`)"
                    .to_owned(),
            }
            .into()),
            (WorkflowInput::Resume { run, decisions }, Some((journal, codec, session))) => {
                let run = run_to_resume(&**journal, ctx.user(), &session, run, RunKind::Workflow, ctx.run_id()).await?;
                *ctx = ctx.clone().with_run_id(run);
                let key = RunKey::new(ctx.user().clone(), session, run);
                let (writer, entries) = Writer::resume(Arc::clone(journal), key, self.lease_ttl).await?;
                match self.resume_point(run, entries, &decisions, codec) {
                    Ok(start) => Ok((start, Some(Box::new(writer)))),
                    Err(e) => {
                        writer.give_back().await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// Where a resumed run goes on: right after the last node that finished and can be
    /// resumed after, or from the start. Every node that had started after that point runs
    /// again, which needs it to be idempotent or a decision.
    fn resume_point(
        &self,
        run: RunId,
        entries: Vec<(u64, JournalEntry)>,
        decisions: &[(String, NodeDecision)],
        codec: &InputCodec<I>,
    ) -> Result<Start<I>, Error> {
        let mut input = None;
        // The journal's node records in order: (entry position, node, finished output).
        let mut starts: Vec<(usize, usize)> = Vec::new();
        let mut finished: Vec<(usize, usize, serde_json::Value)> = Vec::new();
        for (at, (_, entry)) in entries.into_iter().enumerate() {
            match entry {
                JournalEntry::WorkflowStarted { input: json, .. } => input = Some(json),
                JournalEntry::NodeStarted { index, .. } => starts.push((at, index)),
                JournalEntry::NodeFinished { index, output: Some(output), .. } => finished.push((at, index, output)),
                _ => {}
            }
        }
        let Some(input) = input else {
            return Err(RunError::NotResumable { run_id: run, reason: "its journal has no start".to_owned() }.into());
        };
        let after = finished.into_iter().rev().find(|(_, node, _)| self.graph.resumable_after(*node));
        let resumed_from = after.as_ref().map_or(0, |(at, _, _)| *at);
        // Nodes that started after the resume point run again.
        let spec = self.graph.spec();
        for &(_, node) in starts.iter().filter(|(at, _)| *at > resumed_from) {
            let Some(n) = spec.node(node) else { continue };
            let safe = n.idempotent || (n.replays && self.child_sessions != ChildSessions::None);
            match decisions.iter().find(|(name, _)| **name == *n.name).map(|(_, d)| d) {
                Some(NodeDecision::Rerun) => {}
                Some(NodeDecision::Fail(message)) => {
                    return Err(WorkflowError::Node {
                        node: Arc::clone(&n.name),
                        error: NodeError::new(message.clone()),
                    }
                    .into());
                }
                None if safe => {}
                None => return Err(RunError::NodeNeedsDecision { run_id: run, node: n.name.to_string() }.into()),
            }
        }
        Ok(match after {
            Some((_, node, output)) => {
                let visited =
                    starts.iter().filter(|(at, _)| *at < resumed_from).map(|(_, n)| *n).collect::<Vec<usize>>();
                Start::After { node, output, visited }
            }
            None => Start::Input((codec.decode)(input).map_err(|e| workflow_journal(e.to_string()))?),
        })
    }
}

fn workflow_journal(message: String) -> Error {
    Error::Workflow(WorkflowError::Journal(Box::new(
        crate::StoreError::new(crate::StoreErrorKind::Corrupt, "journal", message).into(),
    )))
}

impl<I, O> Workflow<I, O>
where
    I: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    O: Send + 'static,
{
    /// Journals every run that has a session in `store`: each node's start and finish (with
    /// its output as JSON, where the type serialises), so a run that crashed can be resumed
    /// by another process with [`resume`](Workflow::resume) — right after the last node that
    /// finished, with its typed output restored, for graphs built by `#[workflow]`.
    #[must_use]
    pub fn store<S: Journal>(mut self, store: Arc<S>) -> Self {
        let codec = InputCodec { encode: |i| serde_json::to_value(i), decode: serde_json::from_value };
        self.journal = Some((store, codec));
        self
    }
}

impl<I, O> Sealed for Workflow<I, O> {}

impl<I: Send + 'static, O: Send + 'static> Runnable for Workflow<I, O> {
    type Input = WorkflowInput<I>;
    type Output = WorkflowResult<O>;

    fn __prepare(&self, ctx: RunContext) -> RunContext {
        ctx.with_own(&self.extensions, &self.emitter).with_governance(self.governance.as_ref())
    }

    fn __execute<'a>(
        &'a self,
        input: WorkflowInput<I>,
        ctx: RunContext,
    ) -> impl Future<Output = Result<WorkflowResult<O>, Error>> + Send + 'a {
        self.execute(input, ctx)
    }
}

#[async_trait::async_trait]
impl<I: Send + 'static, O: Send + 'static> Node<I, O> for Workflow<I, O> {
    async fn call(&self, ctx: &RunContext, input: I) -> Result<O, NodeError> {
        Ok(self.run(input).within(ctx).await?.output)
    }

    fn name(&self) -> Option<&str> {
        Some(self.graph.spec().name())
    }

    fn replays(&self) -> bool {
        self.journal.is_some()
    }
}

/// The outcome of a finished workflow run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkflowResult<O> {
    /// The output of the node the run ended on.
    pub output: O,
    /// The nodes entered, in order (a node entered twice appears twice).
    pub visited: Vec<NodeName>,
    /// One record per node that finished in this run, in the order they finished: how long it
    /// ran and a summary of its output. (Nodes replayed from the journal of a resumed run are in
    /// `visited`, not here.)
    pub steps: Vec<StepRecord>,
    /// The run's id.
    pub run_id: RunId,
    /// Who the run was for.
    pub user: UserId,
    /// The session, if any.
    pub session: Option<SessionId>,
    /// How long it took.
    pub duration: Duration,
}
