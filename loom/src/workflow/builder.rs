//! Explicit graphs: nodes joined by typed handles, checked at `build()`.

use std::any::{Any, TypeId};
use std::fmt::Display;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::error::{GraphError, NodeError, WorkflowError};
use super::node::Node;
use super::run::GraphRun;
use super::spec::{EdgeKind, GraphSpec, NodeKind};
use super::{Graph, Summary, Workflow, summarize_any};
use crate::context::RunContext;

type Value = Box<dyn Any + Send>;

/// A node of a [`GraphBuilder`], typed by what it takes and gives, so that an edge between
/// nodes whose types do not line up does not compile.
pub struct NodeId<I, O> {
    index: usize,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Clone for NodeId<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for NodeId<I, O> {}

impl<I, O> std::fmt::Debug for NodeId<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeId({})", self.index)
    }
}

impl<I, O> NodeId<I, O> {
    /// The node's index in the graph.
    pub fn index(self) -> usize {
        self.index
    }
}

trait ErasedNode: Send + Sync {
    fn call<'a>(&'a self, ctx: &'a RunContext, input: Value) -> BoxFuture<'a, Result<Value, NodeError>>;
    fn summarize(&self, output: &Value) -> Summary;
    fn input_type(&self) -> (TypeId, &'static str);
    fn output_type(&self) -> (TypeId, &'static str);
}

struct Typed<N, I, O> {
    node: N,
    _types: PhantomData<fn(I) -> O>,
}

impl<N, I, O> ErasedNode for Typed<N, I, O>
where
    N: Node<I, O>,
    I: Send + 'static,
    O: Send + 'static,
{
    fn call<'a>(&'a self, ctx: &'a RunContext, input: Value) -> BoxFuture<'a, Result<Value, NodeError>> {
        Box::pin(async move {
            let input = input.downcast::<I>().map_err(|_| wrong_type::<I>())?;
            let output = self.node.call(ctx, *input).await?;
            Ok(Box::new(output) as Value)
        })
    }

    fn summarize(&self, output: &Value) -> Summary {
        match output.downcast_ref::<O>() {
            Some(o) => summarize_any(o),
            None => Summary::format(format_args!("<{}>", std::any::type_name::<O>())),
        }
    }

    fn input_type(&self) -> (TypeId, &'static str) {
        (TypeId::of::<I>(), std::any::type_name::<I>())
    }

    fn output_type(&self) -> (TypeId, &'static str) {
        (TypeId::of::<O>(), std::any::type_name::<O>())
    }
}

fn wrong_type<T>() -> NodeError {
    NodeError::new(format!(
        "a value that is not a `{}` reached the node; the graph's types were checked when it was built, so this is a bug in Loom",
        std::any::type_name::<T>()
    ))
}

type KeyFn = Box<dyn Fn(&Value) -> Option<String> + Send + Sync>;
type CloneFn = fn(&Value) -> Option<Value>;
type CollectFn = fn(Vec<Value>) -> Option<Value>;

enum Next {
    End,
    One(usize),
    Route { key: KeyFn, routes: Vec<(String, usize)>, default: Option<usize> },
    FanOut { branches: Vec<usize>, join: usize, clone: CloneFn, collect: CollectFn },
}

/// An explicit workflow graph, built node by node.
///
/// Nodes are added with [`node`](GraphBuilder::node), which returns a [`NodeId`] typed by the
/// node's input and output; edges, routes and fan-outs take those handles, so mismatched types
/// do not compile. [`build`](GraphBuilder::build) runs the same structural checks as
/// `#[workflow]` does at compile time and returns every problem at once.
///
/// ```
/// use loomflow::workflow::{Workflow, sync_node};
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// # rt.block_on(async {
/// let mut g = Workflow::builder("count_up");
/// let start = g.node("start", sync_node(|n: u32| n));
/// let step = g.node("step", sync_node(|n: u32| n + 1));
/// let done = g.node("done", sync_node(|n: u32| format!("reached {n}")));
/// g.start(start);
/// g.edge(start, step);
/// g.route(step, |n: &u32| if *n < 3 { "again" } else { "done" }).to("again", step).to("done", done);
/// g.max_visits(step, 10);
/// let wf: Workflow<u32, String> = g.build()?;
///
/// let result = wf.run(0).await?;
/// assert_eq!(result.output, "reached 3");
/// assert_eq!(result.visited, ["start", "step", "step", "step", "done"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct GraphBuilder {
    spec: GraphSpec,
    nodes: Vec<Box<dyn ErasedNode>>,
    next: Vec<Next>,
    start: Option<usize>,
    fan_outs: Vec<loomflow_graph::FanOut>,
    problems: Vec<String>,
}

impl std::fmt::Debug for GraphBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphBuilder").field("spec", &self.spec).finish_non_exhaustive()
    }
}

impl GraphBuilder {
    pub(crate) fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            spec: GraphSpec::new(name),
            nodes: Vec::new(),
            next: Vec::new(),
            start: None,
            fan_outs: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Adds a node named `name`.
    pub fn node<I, O>(&mut self, name: impl Into<Arc<str>>, node: impl Node<I, O>) -> NodeId<I, O>
    where
        I: Send + 'static,
        O: Send + 'static,
    {
        let name = name.into();
        if self.spec.nodes().iter().any(|n| n.name == name) {
            self.problems.push(format!("two nodes are named `{name}`"));
        }
        let index = self.spec.add_node(name, NodeKind::Step, None);
        self.spec.set_replays(index, node.replays());
        self.nodes.push(Box::new(Typed { node, _types: PhantomData }));
        self.next.push(Next::End);
        NodeId { index, _types: PhantomData }
    }

    /// Makes `node` the start.
    pub fn start<I, O>(&mut self, node: NodeId<I, O>) {
        if let Some(previous) = self.start.replace(node.index) {
            self.problems.push(format!(
                "the start is set twice (`{}`, then `{}`)",
                self.spec.nodes()[previous].name,
                self.spec.nodes()[node.index].name
            ));
        }
    }

    /// Marks `node` as safe to run again: a resumed run that finds it started but not
    /// finished runs it again without asking for a [`NodeDecision`](super::NodeDecision).
    pub fn idempotent<I, O>(&mut self, node: NodeId<I, O>) {
        self.spec.set_idempotent(node.index);
    }

    /// Gives `node` a visit bound of its own (the workflow's default is 25).
    pub fn max_visits<I, O>(&mut self, node: NodeId<I, O>, max_visits: u32) {
        self.spec.set_max_visits(node.index, max_visits.max(1));
    }

    fn set_next(&mut self, from: usize, next: Next) {
        if !matches!(self.next[from], Next::End) {
            self.problems.push(format!(
                "node `{}` has two ways out; a node has one edge, one route or one fan-out",
                self.spec.nodes()[from].name
            ));
        }
        self.next[from] = next;
    }

    /// `to` runs after `from`, on its output.
    pub fn edge<I, T, O>(&mut self, from: NodeId<I, T>, to: NodeId<T, O>) {
        self.spec.add_edge(from.index, to.index, EdgeKind::Next);
        self.set_next(from.index, Next::One(to.index));
    }

    /// After `from`, `key` picks the next node from its output: add the routes with
    /// [`to`](RouteBuilder::to) — the route whose label equals the key's text (trimmed) is
    /// taken — and a fallback with [`default`](RouteBuilder::default). A key no route has,
    /// without a default, fails the run with [`WorkflowError::NoRoute`].
    pub fn route<I, T, K>(
        &mut self,
        from: NodeId<I, T>,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> RouteBuilder<'_, T>
    where
        T: 'static,
        K: Display,
    {
        self.spec.set_kind(from.index, NodeKind::Router);
        let key: KeyFn = Box::new(move |v: &Value| v.downcast_ref::<T>().map(|t| key(t).to_string().trim().to_owned()));
        self.set_next(from.index, Next::Route { key, routes: Vec::new(), default: None });
        RouteBuilder { builder: self, from: from.index, _types: PhantomData }
    }

    /// After `from`, every branch runs at once on a clone of its output; `join` receives the
    /// branches' outputs in branch order. A branch is one node (use a workflow as the node for
    /// a branch of several steps).
    pub fn fan_out<I, T, U, O>(
        &mut self,
        from: NodeId<I, T>,
        branches: impl IntoIterator<Item = NodeId<T, U>>,
        join: NodeId<Vec<U>, O>,
    ) where
        T: Clone + Send + 'static,
        U: Send + 'static,
    {
        let branches: Vec<usize> = branches.into_iter().map(|b| b.index).collect();
        for &b in &branches {
            self.spec.add_edge(from.index, b, EdgeKind::Branch);
            self.spec.add_edge(b, join.index, EdgeKind::Next);
            self.set_next(b, Next::One(join.index));
        }
        self.spec.set_kind(from.index, NodeKind::FanOut);
        self.spec.set_kind(join.index, NodeKind::Join);
        self.fan_outs.push(loomflow_graph::FanOut { node: from.index, branches: branches.clone() });
        let clone: CloneFn = |v| v.downcast_ref::<T>().map(|t| Box::new(t.clone()) as Value);
        let collect: CollectFn = |values| {
            let mut out: Vec<U> = Vec::with_capacity(values.len());
            for v in values {
                out.push(*v.downcast::<U>().ok()?);
            }
            Some(Box::new(out) as Value)
        };
        self.set_next(from.index, Next::FanOut { branches, join: join.index, clone, collect });
    }

    /// Checks the graph and returns the workflow, or every problem found: no start or two,
    /// a node unreachable from the start or with no path to an end, a fan-out without a join,
    /// a cycle without a visit bound, and an input or output type that is not the
    /// workflow's.
    pub fn build<I: Send + 'static, O: Send + 'static>(mut self) -> Result<Workflow<I, O>, GraphError> {
        let mut problems = std::mem::take(&mut self.problems);
        if let Some(start) = self.start {
            self.spec.set_start(start);
        }
        let graph = self.spec.check_graph(self.fan_outs.clone());
        let mut checked = graph.clone();
        if self.start.is_none() {
            for n in &mut checked.nodes {
                n.start = false;
            }
        }
        problems.extend(checked.check().iter().map(|p| p.describe(&graph)));
        if let Some(start) = self.start {
            let (id, name) = self.nodes[start].input_type();
            if id != TypeId::of::<I>() {
                problems.push(format!(
                    "the start node `{}` takes `{name}`, but the workflow's input is `{}`",
                    self.spec.nodes()[start].name,
                    std::any::type_name::<I>()
                ));
            }
        }
        for end in self.spec.ends() {
            let (id, name) = self.nodes[end].output_type();
            if id != TypeId::of::<O>() {
                problems.push(format!(
                    "the end node `{}` gives `{name}`, but the workflow's output is `{}`",
                    self.spec.nodes()[end].name,
                    std::any::type_name::<O>()
                ));
            }
        }
        if !problems.is_empty() {
            return Err(GraphError { workflow: self.spec.name().to_owned(), problems });
        }
        Ok(Workflow::new(Erased { spec: self.spec, nodes: self.nodes, next: self.next, _types: PhantomData }))
    }
}

struct Erased<I, O> {
    spec: GraphSpec,
    nodes: Vec<Box<dyn ErasedNode>>,
    next: Vec<Next>,
    _types: PhantomData<fn(I) -> O>,
}

impl<I: Send + 'static, O: Send + 'static> Erased<I, O> {
    async fn step(&self, run: &GraphRun<'_>, index: usize, input: Value) -> Result<Value, WorkflowError> {
        let started = run.enter(index).await?;
        let output = self.nodes[index].call(started.ctx(run), input).await.map_err(|e| run.fail(index, e))?;
        run.exit(index, started, || self.nodes[index].summarize(&output), || None).await?;
        Ok(output)
    }

    fn internal(&self, run: &GraphRun<'_>, index: usize, what: &str) -> WorkflowError {
        run.fail(
            index,
            NodeError::new(format!("{what}; the graph was checked when it was built, so this is a bug in Loom")),
        )
    }
}

impl<I: Send + 'static, O: Send + 'static> Graph for Erased<I, O> {
    type Input = I;
    type Output = O;

    fn spec(&self) -> &GraphSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, run: &'a GraphRun<'_>, input: I) -> BoxFuture<'a, Result<O, WorkflowError>> {
        Box::pin(async move {
            let mut at = self.spec.start();
            let mut value: Value = Box::new(input);
            loop {
                let output = self.step(run, at, value).await?;
                match &self.next[at] {
                    Next::End => {
                        return output.downcast::<O>().map(|o| *o).map_err(|_| {
                            self.internal(run, at, "the end node's output is not the workflow's output type")
                        });
                    }
                    Next::One(to) => {
                        value = output;
                        at = *to;
                    }
                    Next::Route { key, routes, default } => {
                        let Some(key) = key(&output) else {
                            return Err(self.internal(run, at, "the route key could not be computed"));
                        };
                        let to = routes.iter().find(|(label, _)| *label == key).map(|(_, to)| *to).or(*default);
                        let Some(to) = to else {
                            return Err(WorkflowError::NoRoute { node: Arc::clone(&self.spec.nodes()[at].name), key });
                        };
                        value = output;
                        at = to;
                    }
                    Next::FanOut { branches, join, clone, collect } => {
                        let mut inputs = Vec::with_capacity(branches.len());
                        for _ in branches {
                            inputs.push(
                                clone(&output)
                                    .ok_or_else(|| self.internal(run, at, "the fan-out value could not be cloned"))?,
                            );
                        }
                        let outputs = futures::future::try_join_all(
                            branches.iter().zip(inputs).map(|(&b, input)| self.step(run, b, input)),
                        )
                        .await?;
                        value = collect(outputs)
                            .ok_or_else(|| self.internal(run, at, "the branch outputs could not be collected"))?;
                        at = *join;
                    }
                }
            }
        })
    }
}

/// The routes of a router node (see [`GraphBuilder::route`]).
pub struct RouteBuilder<'g, T> {
    builder: &'g mut GraphBuilder,
    from: usize,
    _types: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for RouteBuilder<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteBuilder").field("from", &self.from).finish_non_exhaustive()
    }
}

impl<T> RouteBuilder<'_, T> {
    /// When the key is `label`, go to `to` (which receives the router's output).
    pub fn to<O>(self, label: impl Display, to: NodeId<T, O>) -> Self {
        let label = label.to_string().trim().to_owned();
        self.builder.spec.add_edge(self.from, to.index, EdgeKind::Route(Arc::from(label.as_str())));
        if let Next::Route { routes, .. } = &mut self.builder.next[self.from] {
            routes.push((label, to.index));
        }
        self
    }

    /// When no label matches, go to `to`.
    pub fn default<O>(self, to: NodeId<T, O>) -> Self {
        self.builder.spec.add_edge(self.from, to.index, EdgeKind::Default);
        if let Next::Route { default, .. } = &mut self.builder.next[self.from] {
            *default = Some(to.index);
        }
        self
    }
}

impl Workflow<(), ()> {
    /// An explicit graph, built node by node (see [`GraphBuilder`]); its input and output
    /// types are given to [`build`](GraphBuilder::build).
    pub fn builder(name: impl Into<Arc<str>>) -> GraphBuilder {
        GraphBuilder::new(name)
    }
}
