//! Nodes: what a workflow's steps are made of.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt as _;

use super::error::NodeError;
use crate::agent::Agent;
use crate::context::RunContext;
use crate::model::Content;

/// One step of a workflow: takes an `I`, gives an `O`.
///
/// Agents are nodes (their input is converted to the user message; their output is the run's
/// output), workflows are nodes, and so are async functions and closures
/// (`async fn(I) -> O`). Use [`try_node`] for a fallible one, [`sync_node`] for a synchronous
/// one, [`node_with_context`] for one that reads the [`RunContext`], and [`named`] to give any
/// node a name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a workflow node taking `{I}` and giving `{O}`",
    note = "nodes are agents, workflows, and async functions `async fn(I) -> O`; wrap others with `try_node`, `sync_node` or `node_with_context`"
)]
#[async_trait::async_trait]
pub trait Node<I: Send + 'static, O>: Send + Sync + 'static {
    /// Runs the node.
    async fn call(&self, ctx: &RunContext, input: I) -> Result<O, NodeError>;

    /// The node's own name, if it has one (an agent's name); workflows use it in `visited`.
    fn name(&self) -> Option<&str> {
        None
    }

    /// Whether running the node again replays what it finished from a journal of its own (an
    /// agent or a workflow with a store), so a resumed workflow may run it again safely.
    fn replays(&self) -> bool {
        false
    }
}

/// A node of any type, shared.
pub type BoxNode<I, O> = Arc<dyn Node<I, O>>;

/// The future a node's `call` returns.
type CallFuture<'a, O> = Pin<Box<dyn Future<Output = Result<O, NodeError>> + Send + 'a>>;

// Forwarding impls hand out the inner node's future as it is (no second box).
impl<I: Send + 'static, O: 'static> Node<I, O> for Box<dyn Node<I, O>> {
    fn call<'a, 'b, 'f>(&'a self, ctx: &'b RunContext, input: I) -> CallFuture<'f, O>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        (**self).call(ctx, input)
    }
    fn name(&self) -> Option<&str> {
        (**self).name()
    }
    fn replays(&self) -> bool {
        (**self).replays()
    }
}

/// Boxes a node, so nodes of different types can sit in one list.
pub fn boxed<I: Send + 'static, O: 'static>(node: impl Node<I, O>) -> Box<dyn Node<I, O>> {
    Box::new(node)
}

#[async_trait::async_trait]
impl<I, O, F, Fut> Node<I, O> for F
where
    I: Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = O> + Send,
{
    async fn call(&self, _ctx: &RunContext, input: I) -> Result<O, NodeError> {
        Ok(self(input).await)
    }
}

impl<I, O> Node<I, O> for Agent<O>
where
    I: Into<Content> + Send + 'static,
    O: Send + Sync + 'static,
{
    fn call<'a, 'b, 'f>(&'a self, ctx: &'b RunContext, input: I) -> CallFuture<'f, O>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        // One box: the run's own future, mapped to its output.
        match self.run(input.into()).within(ctx).into_parts() {
            Ok((agent, input, ctx)) => {
                Box::pin(crate::agent::run_future(agent, input, ctx).map(|r| r.map(|r| r.output).map_err(Into::into)))
            }
            Err(e) => Box::pin(std::future::ready(Err(e.into()))),
        }
    }

    fn name(&self) -> Option<&str> {
        self.agent_name()
    }

    fn replays(&self) -> bool {
        self.journal.is_some()
    }
}

/// A node with a name (for `visited`, events and graphs).
pub struct Named<N> {
    name: Arc<str>,
    node: N,
}

/// Names a node.
pub fn named<N>(name: impl Into<Arc<str>>, node: N) -> Named<N> {
    Named { name: name.into(), node }
}

impl<I: Send + 'static, O, N: Node<I, O>> Node<I, O> for Named<N> {
    fn call<'a, 'b, 'f>(&'a self, ctx: &'b RunContext, input: I) -> CallFuture<'f, O>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.node.call(ctx, input)
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn replays(&self) -> bool {
        self.node.replays()
    }
}

/// A node from a fallible async function: `async fn(I) -> Result<O, E>`.
pub struct TryNode<F, E>(F, PhantomData<fn() -> E>);

/// Makes a node of a fallible async function; its `Err` fails the run with the error kept.
pub fn try_node<I, O, E, F, Fut>(f: F) -> TryNode<F, E>
where
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send,
    E: Into<NodeError>,
{
    TryNode(f, PhantomData)
}

#[async_trait::async_trait]
impl<I, O, E, F, Fut> Node<I, O> for TryNode<F, E>
where
    I: Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send,
    E: Into<NodeError> + 'static,
{
    async fn call(&self, _ctx: &RunContext, input: I) -> Result<O, NodeError> {
        (self.0)(input).await.map_err(Into::into)
    }
}

/// A node from a synchronous function: `fn(I) -> O`. It runs inline; keep it quick.
pub struct SyncNode<F>(F);

/// Makes a node of a synchronous function.
pub fn sync_node<I, O, F>(f: F) -> SyncNode<F>
where
    F: Fn(I) -> O + Send + Sync + 'static,
{
    SyncNode(f)
}

#[async_trait::async_trait]
impl<I, O, F> Node<I, O> for SyncNode<F>
where
    I: Send + 'static,
    F: Fn(I) -> O + Send + Sync + 'static,
{
    async fn call(&self, _ctx: &RunContext, input: I) -> Result<O, NodeError> {
        Ok((self.0)(input))
    }
}

/// A node from an async function that reads the run context: `async fn(RunContext, I) -> O`
/// (the context is a cheap clone).
pub struct ContextNode<F>(F);

/// Makes a node of an async function that takes the run context.
pub fn node_with_context<I, O, F, Fut>(f: F) -> ContextNode<F>
where
    F: Fn(RunContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, NodeError>> + Send,
{
    ContextNode(f)
}

#[async_trait::async_trait]
impl<I, O, F, Fut> Node<I, O> for ContextNode<F>
where
    I: Send + 'static,
    F: Fn(RunContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, NodeError>> + Send,
{
    async fn call(&self, ctx: &RunContext, input: I) -> Result<O, NodeError> {
        (self.0)(ctx.clone(), input).await
    }
}
