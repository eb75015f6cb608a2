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
use crate::session::{Journal, JournalEntry, RunKey, RunStatus, Writer, run_to_resume};

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
    /// Resume a run; `None` for the session's latest unfinished run.
    Resume(Option<RunId>),
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
    /// A workflow running `graph`.
    pub fn new(graph: impl Graph<Input = I, Output = O>) -> Self {
        Self {
            graph: Arc::new(graph),
            max_visits: DEFAULT_MAX_VISITS,
            max_steps: DEFAULT_MAX_STEPS,
            extensions: Extensions::new(),
            emitter: Emitter::default(),
            journal: None,
            lease_ttl: crate::agent::DEFAULT_LEASE,
        }
    }

    /// Runs the workflow on `input`. Set the user, session and metadata on the returned
    /// builder, then `.await` it for the [`WorkflowResult`], or stream its events.
    pub fn run(&self, input: I) -> RunBuilder<'_, Self> {
        RunBuilder::new(self, WorkflowInput::Run(input))
    }

    /// Resumes the journaled run `run` (set its user and session on the builder): it goes on
    /// right after the last node that finished — with that node's output restored as its Rust
    /// type — or from the start for graphs whose outputs do not deserialise.
    pub fn resume(&self, run: RunId) -> RunBuilder<'_, Self> {
        RunBuilder::new(self, WorkflowInput::Resume(Some(run)))
    }

    /// Resumes the session's latest unfinished run.
    pub fn resume_latest(&self) -> RunBuilder<'_, Self> {
        RunBuilder::new(self, WorkflowInput::Resume(None))
    }

    /// How long a journaled run's lease lasts without a new step.
    #[must_use]
    pub fn lease(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
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
            let spec = self.graph.spec();
            let started = Instant::now();
            let journaled = self.journal.is_some() && ctx.session().is_some();
            let (start, writer) = match input {
                WorkflowInput::Run(input) if !journaled => (Start::Input(input), None),
                // Boxed, as the writer: the future of a run without a journal stays small.
                input => Box::pin(self.begin(input, &mut ctx)).await?,
            };
            let span = tracing::info_span!("loom.workflow", workflow = spec.name(), run_id = %ctx.run_id());
            ctx.emit(|| EventKind::RunStarted {
                name: Some(Arc::clone(spec.name_arc())),
                user: ctx.user().clone(),
                session: ctx.session().cloned(),
                parent: ctx.parent(),
            });
            let run =
                GraphRun::new(&ctx, spec, self.max_visits, self.max_steps, started).with_writer(writer.as_deref());
            let outcome = match start {
                Start::Input(input) => self.graph.execute(&run, input).instrument(span).await,
                Start::After { node, output, visited } => {
                    run.restore(&visited);
                    for &n in &visited {
                        ctx.emit(|| EventKind::StepReplayed {
                            step: format!("node {}", spec.node(n).map_or("?", |s| &*s.name)),
                        });
                    }
                    self.graph.resume_after(&run, node, output).instrument(span).await
                }
            };
            if let Some(writer) = &writer {
                let failure = outcome.as_ref().err().map(ToString::to_string);
                Box::pin(async {
                    let status = match failure {
                        None => writer.append(JournalEntry::RunFinished).await.map(|()| RunStatus::Finished),
                        Some(error) => {
                            writer.append(JournalEntry::RunFailed { error }).await.map(|()| RunStatus::Failed)
                        }
                    };
                    writer.finish(status.unwrap_or(RunStatus::Failed)).await
                })
                .await?;
            }
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
                    let e = Error::Workflow(e);
                    ctx.emit(|| EventKind::Error { message: e.to_string(), transient: e.is_transient() });
                    Err(e)
                }
            }
        }
    }
}

/// Where a run starts, and the writer of its journal.
type Beginning<'a, I> = (Start<I>, Option<Box<Writer<'a>>>);

enum Start<I> {
    Input(I),
    After { node: usize, output: serde_json::Value, visited: Vec<usize> },
}

impl<I: Send + 'static, O: Send + 'static> Workflow<I, O> {
    /// How the run begins: fresh (journaled when the workflow has a store and the run a
    /// session), or resumed from its journal.
    async fn begin(&self, input: WorkflowInput<I>, ctx: &mut RunContext) -> Result<Beginning<'_, I>, Error> {
        let durable = match (&self.journal, ctx.session()) {
            (Some((journal, codec)), Some(session)) => Some((&**journal, codec, session.clone())),
            _ => None,
        };
        match (input, durable) {
            (WorkflowInput::Run(input), None) => Ok((Start::Input(input), None)),
            (WorkflowInput::Run(input), Some((journal, codec, session))) => {
                let key = RunKey::new(ctx.user().clone(), session, ctx.run_id());
                let writer = Writer::acquire(journal, key, self.lease_ttl, 0).await?;
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
            (WorkflowInput::Resume(_), None) => Err(ConfigError::InvalidSetting {
                setting: "resume",
                reason: "resuming needs a journal (`Workflow::store`) and the run's session (`.session(..)`)"
                    .to_owned(),
            }
            .into()),
            (WorkflowInput::Resume(run), Some((journal, codec, session))) => {
                let run = run_to_resume(journal, ctx.user(), &session, run, ctx.run_id()).await?;
                *ctx = ctx.clone().with_run_id(run);
                let key = RunKey::new(ctx.user().clone(), session, run);
                let (writer, entries) = Writer::resume(journal, key, self.lease_ttl).await?;
                let mut input = None;
                let mut visited = Vec::new();
                let mut finished = Vec::new();
                for (_, entry) in entries {
                    match entry {
                        JournalEntry::WorkflowStarted { input: json, .. } => input = Some(json),
                        JournalEntry::NodeStarted { index, .. } => visited.push(index),
                        JournalEntry::NodeFinished { index, output: Some(output), .. } => {
                            finished.push((index, output))
                        }
                        _ => {}
                    }
                }
                let Some(input) = input else {
                    writer.give_back().await;
                    return Err(
                        RunError::NotResumable { run_id: run, reason: "its journal has no start".to_owned() }.into()
                    );
                };
                // Right after the last node that finished and can be resumed after; nodes
                // started later run again.
                let after = finished.into_iter().rev().find(|(node, _)| self.graph.resumable_after(*node));
                let start = match after {
                    Some((node, output)) => {
                        let last = visited.iter().rposition(|&n| n == node).map_or(visited.len(), |i| i + 1);
                        visited.truncate(last);
                        Start::After { node, output, visited }
                    }
                    None => match (codec.decode)(input) {
                        Ok(input) => Start::Input(input),
                        Err(e) => {
                            writer.give_back().await;
                            return Err(workflow_journal(e.to_string()));
                        }
                    },
                };
                Ok((start, Some(Box::new(writer))))
            }
        }
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
        ctx.with_own(&self.extensions, &self.emitter)
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
