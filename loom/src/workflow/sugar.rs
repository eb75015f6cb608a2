//! The sugar constructors: chain, route, parallel.

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::error::WorkflowError;
use super::node::Node;
use super::run::GraphRun;
use super::spec::{EdgeKind, GraphSpec, NodeKind};
use super::{Graph, Summary, Workflow, summarize_any};

/// Node names for a list of nodes: each node's own name or `step_<i>`, made unique with
/// `_1`, `_2`, ... suffixes.
fn unique_names(names: Vec<Option<String>>, fallback: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let base = name.unwrap_or_else(|| format!("{fallback}_{i}"));
        let mut candidate = base.clone();
        let mut n = 1;
        while out.contains(&candidate) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        out.push(candidate);
    }
    out
}

/// The end of a chain.
#[doc(hidden)]
pub struct Nil;

/// A node and the rest of its chain.
#[doc(hidden)]
pub struct Cons<A, R>(A, R);

/// The steps of a chain, typed from end to end.
#[doc(hidden)]
pub trait Steps<I, O, M>: Send + Sync + 'static {
    /// Each step's own name, if it has one, and whether it replays (see [`Node::replays`]).
    fn names(&self, out: &mut Vec<(Option<String>, bool)>);
    fn run<'a>(
        &'a self,
        run: &'a GraphRun<'_>,
        index: usize,
        input: I,
    ) -> impl Future<Output = Result<O, WorkflowError>> + Send + 'a;
}

async fn step<I: Send + 'static, O: 'static>(
    node: &impl Node<I, O>,
    run: &GraphRun<'_>,
    index: usize,
    input: I,
) -> Result<O, WorkflowError> {
    let started = run.enter(index).await?;
    let out = node.call(started.ctx(run), input).await.map_err(|e| run.fail(index, e))?;
    run.exit(index, started, || summarize_any(&out), || None).await?;
    Ok(out)
}

impl<I, O, A> Steps<I, O, ()> for Cons<A, Nil>
where
    I: Send + 'static,
    O: Send + 'static,
    A: Node<I, O>,
{
    fn names(&self, out: &mut Vec<(Option<String>, bool)>) {
        out.push((self.0.name().map(str::to_owned), self.0.replays()));
    }
    fn run<'a>(
        &'a self,
        run: &'a GraphRun<'_>,
        index: usize,
        input: I,
    ) -> impl Future<Output = Result<O, WorkflowError>> + Send + 'a {
        step(&self.0, run, index, input)
    }
}

impl<I, X, O, A, R, RM> Steps<I, O, (X, RM)> for Cons<A, R>
where
    I: Send + 'static,
    X: Send + 'static,
    O: Send + 'static,
    A: Node<I, X>,
    R: Steps<X, O, RM>,
{
    fn names(&self, out: &mut Vec<(Option<String>, bool)>) {
        out.push((self.0.name().map(str::to_owned), self.0.replays()));
        self.1.names(out);
    }
    // Written out (not `async fn`) to match the trait's `Send + 'a` future exactly.
    #[allow(clippy::manual_async_fn)]
    fn run<'a>(
        &'a self,
        run: &'a GraphRun<'_>,
        index: usize,
        input: I,
    ) -> impl Future<Output = Result<O, WorkflowError>> + Send + 'a {
        async move {
            let x = step(&self.0, run, index, input).await?;
            self.1.run(run, index + 1, x).await
        }
    }
}

/// Nodes that can form a chain: a tuple of nodes whose types line up (`(A, B, C)` with
/// `A: Node<I, X>`, `B: Node<X, Y>`, `C: Node<Y, O>`), or a `Vec` of boxed nodes of one type.
#[diagnostic::on_unimplemented(
    message = "these nodes do not form a chain from `{I}` to `{O}`",
    note = "each node's output type must be the next node's input type"
)]
pub trait IntoChain<I, O, M> {
    /// The chain's steps.
    #[doc(hidden)]
    type Steps: Steps<I, O, M>;
    /// The steps, typed.
    #[doc(hidden)]
    fn into_steps(self) -> Self::Steps;
}

macro_rules! cons {
    ($head:expr) => { Cons($head, Nil) };
    ($head:expr, $($rest:expr),+) => { Cons($head, cons!($($rest),+)) };
}

macro_rules! cons_type {
    ($head:ident) => { Cons<$head, Nil> };
    ($head:ident, $($rest:ident),+) => { Cons<$head, cons_type!($($rest),+)> };
}

macro_rules! into_chain_tuples {
    ($($n:ident),+) => {
        #[allow(non_snake_case)]
        impl<I, O, M, $($n),+> IntoChain<I, O, M> for ($($n,)+)
        where
            cons_type!($($n),+): Steps<I, O, M>,
        {
            type Steps = cons_type!($($n),+);
            fn into_steps(self) -> Self::Steps {
                let ($($n,)+) = self;
                cons!($($n),+)
            }
        }
    };
}

into_chain_tuples!(A);
into_chain_tuples!(A, B);
into_chain_tuples!(A, B, C);
into_chain_tuples!(A, B, C, D);
into_chain_tuples!(A, B, C, D, E);
into_chain_tuples!(A, B, C, D, E, F);
into_chain_tuples!(A, B, C, D, E, F, G);
into_chain_tuples!(A, B, C, D, E, F, G, H);
into_chain_tuples!(A, B, C, D, E, F, G, H, J);
into_chain_tuples!(A, B, C, D, E, F, G, H, J, K);
into_chain_tuples!(A, B, C, D, E, F, G, H, J, K, L);
into_chain_tuples!(A, B, C, D, E, F, G, H, J, K, L, N);

/// A list of nodes of one type `T -> T`.
#[doc(hidden)]
pub struct Homogeneous<T>(Vec<Box<dyn Node<T, T>>>);

impl<T: Send + 'static> Steps<T, T, Vec<()>> for Homogeneous<T> {
    fn names(&self, out: &mut Vec<(Option<String>, bool)>) {
        out.extend(self.0.iter().map(|n| (n.name().map(str::to_owned), n.replays())));
    }
    #[allow(clippy::manual_async_fn)]
    fn run<'a>(
        &'a self,
        run: &'a GraphRun<'_>,
        index: usize,
        input: T,
    ) -> impl Future<Output = Result<T, WorkflowError>> + Send + 'a {
        async move {
            let mut value = input;
            for (i, node) in self.0.iter().enumerate() {
                value = step(node, run, index + i, value).await?;
            }
            Ok(value)
        }
    }
}

impl<T: Send + 'static> IntoChain<T, T, Vec<()>> for Vec<Box<dyn Node<T, T>>> {
    type Steps = Homogeneous<T>;
    fn into_steps(self) -> Homogeneous<T> {
        Homogeneous(self)
    }
}

/// A chain of nodes (see [`Workflow::chain`]).
pub struct Chain<S, I, O, M> {
    steps: S,
    spec: GraphSpec,
    _types: PhantomData<fn(I, M) -> O>,
}

impl<S, I, O, M> Graph for Chain<S, I, O, M>
where
    S: Steps<I, O, M>,
    I: Send + 'static,
    O: Send + 'static,
    M: 'static,
{
    type Input = I;
    type Output = O;

    fn spec(&self) -> &GraphSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, run: &'a GraphRun<'_>, input: I) -> BoxFuture<'a, Result<O, WorkflowError>> {
        Box::pin(self.steps.run(run, 0, input))
    }
}

/// The classifier-then-handler graph of [`Workflow::route`].
struct Route<I, K, O> {
    classifier: Box<dyn Node<I, K>>,
    routes: Vec<(String, Box<dyn Node<I, O>>)>,
    default: Option<Box<dyn Node<I, O>>>,
    spec: GraphSpec,
}

impl<I, K, O> Graph for Route<I, K, O>
where
    I: Clone + Send + Sync + 'static,
    K: Display + Send + 'static,
    O: Send + 'static,
{
    type Input = I;
    type Output = O;

    fn spec(&self) -> &GraphSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, run: &'a GraphRun<'_>, input: I) -> BoxFuture<'a, Result<O, WorkflowError>> {
        Box::pin(async move {
            let started = run.enter(0).await?;
            let key = self.classifier.call(started.ctx(run), input.clone()).await.map_err(|e| run.fail(0, e))?;
            let key = key.to_string();
            let key = key.trim();
            run.exit(0, started, || Summary::of(key), || None).await?;
            let (index, handler) = match self.routes.iter().position(|(k, _)| k == key) {
                Some(i) => (i + 1, &self.routes[i].1),
                None => match &self.default {
                    Some(d) => (self.routes.len() + 1, d),
                    None => {
                        return Err(WorkflowError::NoRoute {
                            node: Arc::clone(&self.spec.nodes()[0].name),
                            key: key.to_owned(),
                        });
                    }
                },
            };
            step(handler, run, index, input).await
        })
    }
}

/// The fan-out-and-join graph of [`Workflow::parallel`].
struct Parallel<I, T, O> {
    branches: Vec<Box<dyn Node<I, T>>>,
    join: Box<dyn Node<Vec<T>, O>>,
    spec: GraphSpec,
}

impl<I, T, O> Graph for Parallel<I, T, O>
where
    I: Clone + Send + Sync + 'static,
    T: Send + 'static,
    O: Send + 'static,
{
    type Input = I;
    type Output = O;

    fn spec(&self) -> &GraphSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, run: &'a GraphRun<'_>, input: I) -> BoxFuture<'a, Result<O, WorkflowError>> {
        Box::pin(async move {
            let started = run.enter(0).await?;
            run.exit(0, started, || Summary::format(format_args!("{} branches", self.branches.len())), || None).await?;
            // The branches run at once, on this task; the first failure cancels the others.
            let outputs = futures::future::try_join_all(
                self.branches.iter().enumerate().map(|(i, branch)| step(branch, run, i + 1, input.clone())),
            )
            .await?;
            step(&self.join, run, self.branches.len() + 1, outputs).await
        })
    }
}

impl<I: Send + 'static, O: Send + 'static> Workflow<I, O> {
    /// Nodes one after another: each node's output is the next node's input.
    ///
    /// Give a tuple of nodes whose types line up — async functions, agents, workflows — or a
    /// `Vec` of boxed nodes of one type. Nodes are named by their own names (an agent's name)
    /// or `step_<i>`.
    pub fn chain<M: 'static>(nodes: impl IntoChain<I, O, M>) -> Self {
        let steps = nodes.into_steps();
        let mut named = Vec::new();
        steps.names(&mut named);
        let mut spec = GraphSpec::new("chain");
        let replays: Vec<bool> = named.iter().map(|(_, r)| *r).collect();
        let names = unique_names(named.into_iter().map(|(n, _)| n).collect(), "step");
        for (i, name) in names.into_iter().enumerate() {
            spec.add_node(name, NodeKind::Step, None);
            spec.set_replays(i, replays[i]);
            if i > 0 {
                spec.add_edge(i - 1, i, EdgeKind::Next);
            }
        }
        Workflow::new(Chain { steps, spec, _types: PhantomData })
    }

    /// A classifier picks the handler: its output (as text, trimmed) is matched against the
    /// route keys, and the matching handler runs on the workflow's *original* input. The
    /// nodes are named `classify` and `route_<key>`. A key that matches no route fails the
    /// run with [`WorkflowError::NoRoute`]; see [`route_with_default`](Workflow::route_with_default).
    ///
    /// ```
    /// use loomflow::prelude::*;
    /// use loomflow::workflow::Workflow;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// # rt.block_on(async {
    /// let classify = Agent::new("Reply `billing` or `tech`.")
    ///     .model(ScriptedModel::new([ScriptedTurn::text("billing\n")]));
    /// let billing = Agent::new("Handle billing.").model(ScriptedModel::new([ScriptedTurn::text("Refunded.")]));
    /// let tech = Agent::new("Handle tech.").model(ScriptedModel::new([ScriptedTurn::text("Rebooted.")]));
    ///
    /// let support = Workflow::route(classify, [("billing", billing), ("tech", tech)]);
    /// let result = support.run("My card was charged twice.".to_owned()).user("alice").await?;
    /// assert_eq!(result.output, "Refunded.");
    /// assert_eq!(result.visited, ["classify", "route_billing"]);
    /// # Ok::<(), loomflow::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn route<K, R, N>(classifier: impl Node<I, K>, routes: impl IntoIterator<Item = (R, N)>) -> Self
    where
        I: Clone + Sync,
        K: Display + Send + 'static,
        R: Display,
        N: Node<I, O>,
    {
        Self::routed(Box::new(classifier), routes, None)
    }

    /// [`route`](Workflow::route), with a handler for keys no route matches (`route_default`).
    pub fn route_with_default<K, R, N>(
        classifier: impl Node<I, K>,
        routes: impl IntoIterator<Item = (R, N)>,
        default: impl Node<I, O>,
    ) -> Self
    where
        I: Clone + Sync,
        K: Display + Send + 'static,
        R: Display,
        N: Node<I, O>,
    {
        Self::routed(Box::new(classifier), routes, Some(Box::new(default)))
    }

    fn routed<K, R, N>(
        classifier: Box<dyn Node<I, K>>,
        routes: impl IntoIterator<Item = (R, N)>,
        default: Option<Box<dyn Node<I, O>>>,
    ) -> Self
    where
        I: Clone + Sync,
        K: Display + Send + 'static,
        R: Display,
        N: Node<I, O>,
    {
        let routes: Vec<(String, Box<dyn Node<I, O>>)> = routes
            .into_iter()
            .map(|(k, n)| (k.to_string().trim().to_owned(), Box::new(n) as Box<dyn Node<I, O>>))
            .collect();
        let mut spec = GraphSpec::new("route");
        let classify = spec.add_node("classify", NodeKind::Router, None);
        spec.set_replays(classify, classifier.replays());
        for (key, node) in &routes {
            let n = spec.add_node(format!("route_{key}"), NodeKind::Step, None);
            spec.set_replays(n, node.replays());
            spec.add_edge(classify, n, EdgeKind::Route(Arc::from(key.as_str())));
        }
        if let Some(d) = &default {
            let n = spec.add_node("route_default", NodeKind::Step, None);
            spec.set_replays(n, d.replays());
            spec.add_edge(classify, n, EdgeKind::Default);
        }
        Workflow::new(Route { classifier, routes, default, spec })
    }

    /// Branches that run at once on the same input; `join` receives their outputs in branch
    /// order. The nodes are named `fan_out`, the branches' own names (or `branch_<i>`), and
    /// `join`. The first branch to fail cancels the others and fails the run.
    pub fn parallel<T, N>(branches: impl IntoIterator<Item = N>, join: impl Node<Vec<T>, O>) -> Self
    where
        I: Clone + Sync,
        T: Send + 'static,
        N: Node<I, T>,
    {
        let branches: Vec<Box<dyn Node<I, T>>> =
            branches.into_iter().map(|b| Box::new(b) as Box<dyn Node<I, T>>).collect();
        let mut spec = GraphSpec::new("parallel");
        let fan_out = spec.add_node("fan_out", NodeKind::FanOut, None);
        let names = unique_names(branches.iter().map(|b| b.name().map(str::to_owned)).collect(), "branch");
        let first = fan_out + 1;
        for (name, branch) in names.into_iter().zip(&branches) {
            let b = spec.add_node(name, NodeKind::Step, None);
            spec.set_replays(b, branch.replays());
            spec.add_edge(fan_out, b, EdgeKind::Branch);
        }
        let join_index = spec.add_node("join", NodeKind::Join, None);
        spec.set_replays(join_index, join.replays());
        for b in first..join_index {
            spec.add_edge(b, join_index, EdgeKind::Next);
        }
        Workflow::new(Parallel { branches, join: Box::new(join), spec })
    }
}
