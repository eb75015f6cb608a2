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
pub use run::{GraphRun, StepRecord};
pub use spec::{EdgeKind, EdgeSpec, GraphSpec, NodeKind, NodeName, NodeSpec};
pub use sugar::{Chain, IntoChain};
pub use tool::WorkflowTool;

pub(crate) use run::summarize_any;

use crate::context::{Extensions, RunContext};
use crate::error::Error;
use crate::event::{Emitter, EventKind, EventListener};
use crate::id::{RunId, SessionId, UserId};
use crate::runner::{RunBuilder, Runnable, Sealed};

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
}

impl<I, O> Clone for Workflow<I, O> {
    fn clone(&self) -> Self {
        Self {
            graph: Arc::clone(&self.graph),
            max_visits: self.max_visits,
            max_steps: self.max_steps,
            extensions: self.extensions.clone(),
            emitter: self.emitter.clone(),
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
        }
    }

    /// Runs the workflow on `input`. Set the user, session and metadata on the returned
    /// builder, then `.await` it for the [`WorkflowResult`], or stream its events.
    pub fn run(&self, input: I) -> RunBuilder<'_, Self> {
        RunBuilder::new(self, input)
    }

    /// The default visit bound of a node without its own (default [`DEFAULT_MAX_VISITS`]).
    #[must_use]
    pub fn max_visits(mut self, max_visits: u32) -> Self {
        self.max_visits = max_visits.max(1);
        self
    }

    /// The most nodes one run may enter (default [`DEFAULT_MAX_STEPS`]).
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

    async fn execute(&self, input: I, ctx: RunContext) -> Result<WorkflowResult<O>, Error> {
        let spec = self.graph.spec();
        let span = tracing::info_span!("loom.workflow", workflow = spec.name(), run_id = %ctx.run_id());
        let started = Instant::now();
        ctx.emit(|| EventKind::RunStarted {
            name: Some(Arc::clone(spec.name_arc())),
            user: ctx.user().clone(),
            session: ctx.session().cloned(),
            parent: ctx.parent(),
        });
        let run = GraphRun::new(&ctx, spec, self.max_visits, self.max_steps);
        let outcome = self.graph.execute(&run, input).instrument(span).await;
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

impl<I, O> Sealed for Workflow<I, O> {}

impl<I: Send + 'static, O: Send + 'static> Runnable for Workflow<I, O> {
    type Input = I;
    type Output = WorkflowResult<O>;

    fn __prepare(&self, ctx: RunContext) -> RunContext {
        let mut ctx = ctx.with_agent_extensions(&self.extensions);
        ctx.emitter.extend(&self.emitter);
        ctx
    }

    fn __execute<'a>(&'a self, input: I, ctx: RunContext) -> BoxFuture<'a, Result<WorkflowResult<O>, Error>> {
        Box::pin(self.execute(input, ctx))
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
    /// One record per finished node, in the order they finished.
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
