//! The run context: who a run is for, which conversation, which run, and what it carries.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::event::{Emitter, EventKind, EventListener};
use crate::id::{RunId, SessionId, UserId};
use crate::tool::ToolError;

/// Everything a run knows about itself: user, session, run id, metadata, shared state, and
/// where its events go.
///
/// Agents and workflows create one per run; tools and workflow nodes receive it (a tool takes
/// `&RunContext` as a parameter). Cloning is cheap: a few reference-count increments.
#[derive(Clone)]
pub struct RunContext {
    user: UserId,
    session: Option<SessionId>,
    run_id: RunId,
    parent: Option<RunId>,
    metadata: Metadata,
    extensions: Extensions,
    pub(crate) emitter: Emitter,
    /// What a context rarely carries (one pointer, so a run's future stays small): the
    /// workflow node it belongs to, and the run's governance.
    frame: Option<Arc<Frame>>,
    pub(crate) streaming: bool,
    /// The run id was derived from the parent's (see [`RunContext::child`]): the same on every
    /// resume of the parent, so a journaled run with it may already exist.
    pub(crate) derived: bool,
}

/// The rarely set parts of a context.
#[derive(Default)]
struct Frame {
    /// Where the runs nested in this one come from (a workflow node), when that decides their
    /// sessions or their ids.
    scope: Option<NodeScope>,
    /// The governance of the run and the runs nested in it, with what they spent.
    governed: Option<Arc<crate::governance::hook::Governed>>,
}

/// Which sessions the runs nested in a workflow's nodes continue.
///
/// An agent (or a workflow) that is a node of a workflow runs as a child run of the
/// workflow's run. With [`PerNode`](ChildSessions::PerNode), the default, it continues the
/// sub-session `{session}/{node}` of the workflow's session: each node keeps a conversation of
/// its own across runs of the workflow, and a node's agent never sees what another node's
/// agent said. With [`Shared`](ChildSessions::Shared) every node's runs continue the
/// workflow's own session; with [`None`](ChildSessions::None) they have no session (no
/// history, no journal). A workflow run without a session gives its nodes none either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChildSessions {
    /// `{session}/{node}`: one conversation per node.
    #[default]
    PerNode,
    /// The workflow's session: one conversation for every node.
    Shared,
    /// No session for nested runs.
    None,
}

/// The workflow node a context belongs to.
#[derive(Debug)]
pub(crate) struct NodeScope {
    node: Arc<str>,
    visit: u32,
    sessions: ChildSessions,
    /// Counts the runs nested in this visit of the node, when their ids must be the same on
    /// every resume (the workflow is journaled).
    children: Option<Arc<AtomicU32>>,
}

impl NodeScope {
    /// The same node, counting its nested runs with the same counter.
    fn copy(&self) -> Self {
        Self {
            node: Arc::clone(&self.node),
            visit: self.visit,
            sessions: self.sessions,
            children: self.children.clone(),
        }
    }
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("user", &self.user)
            .field("session", &self.session)
            .field("run_id", &self.run_id)
            .field("parent", &self.parent)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl RunContext {
    /// A context for a new run of `user`, with a fresh run id and nothing else.
    pub fn new(user: UserId) -> Self {
        Self {
            user,
            session: None,
            run_id: RunId::generate(),
            parent: None,
            metadata: Metadata::default(),
            extensions: Extensions::default(),
            emitter: Emitter::default(),
            frame: None,
            streaming: false,
            derived: false,
        }
    }

    /// Sets the user.
    #[must_use]
    pub fn with_user(mut self, user: UserId) -> Self {
        self.user = user;
        self
    }

    /// Sets the run id (a resumed run keeps the id it started with).
    pub(crate) fn with_run_id(mut self, run_id: RunId) -> Self {
        self.run_id = run_id;
        self
    }

    /// Sets the session.
    #[must_use]
    pub fn with_session(mut self, session: Option<SessionId>) -> Self {
        self.session = session;
        self
    }

    /// Sets the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the shared state tools can read with [`State`].
    #[must_use]
    pub fn with_extensions(mut self, extensions: Extensions) -> Self {
        self.extensions = extensions;
        self
    }

    /// Adds what an agent or a workflow brings to its runs: its state (which wins over
    /// inherited state, unless it has none) and its listeners.
    pub(crate) fn with_own(mut self, extensions: &Extensions, emitter: &Emitter) -> Self {
        if extensions.0.is_some() {
            self.extensions = extensions.clone();
        }
        self.emitter.extend(emitter);
        self
    }

    /// Governs this run (and those nested in it) by `governance`, unless it already is.
    pub(crate) fn with_governance(mut self, governance: Option<&Arc<crate::governance::Governance>>) -> Self {
        if let Some(gov) = governance
            && self.governed().is_none_or(|g| !Arc::ptr_eq(&g.gov, gov))
        {
            let governed =
                Arc::new(crate::governance::hook::Governed::new(Arc::clone(gov), self.user(), self.session()));
            #[cfg(feature = "audit")]
            if let Some(trail) = &governed.trail {
                self.emitter.add(Arc::new(crate::governance::audit::Listener(Arc::clone(trail))));
            }
            let scope = self.frame.as_deref().and_then(|f| f.scope.as_ref()).map(NodeScope::copy);
            self.frame = Some(Arc::new(Frame { scope, governed: Some(governed) }));
        }
        self
    }

    /// The run's governance, when it is governed.
    #[inline]
    pub(crate) fn governed(&self) -> Option<&Arc<crate::governance::hook::Governed>> {
        self.frame.as_deref()?.governed.as_ref()
    }

    fn scope(&self) -> Option<&NodeScope> {
        self.frame.as_deref()?.scope.as_ref()
    }

    /// Sends this run's events (and those of runs nested in it) to `listener` as well.
    #[must_use]
    pub fn with_listener(mut self, listener: impl EventListener) -> Self {
        self.emitter.add(Arc::new(listener));
        self
    }

    /// The context of visit `visit` of workflow node `node`: the runs nested in it take their
    /// sessions by `sessions` and, when `deterministic`, ids that are the same on every resume.
    pub(crate) fn in_node(&self, node: Arc<str>, visit: u32, sessions: ChildSessions, deterministic: bool) -> Self {
        let children = deterministic.then(|| Arc::new(AtomicU32::new(0)));
        let scope = Some(NodeScope { node, visit, sessions, children });
        Self { frame: Some(Arc::new(Frame { scope, governed: self.governed().cloned() })), ..self.clone() }
    }

    /// A context for a run nested in this one (an agent inside a workflow, a workflow called
    /// as a tool): same user, metadata, state and listeners; a new run id whose parent is
    /// this run; the same session — except in a workflow's node, where the workflow's
    /// [`ChildSessions`] rule decides (by default the node's sub-session `{session}/{node}`).
    ///
    /// In a journaled workflow, the nested runs of a node get ids derived from the workflow
    /// run, the node, its visit and their order, so a resumed workflow finds — and replays —
    /// the journals of its nested runs instead of running them again.
    pub fn child(&self) -> Self {
        // The node stays with this context; the governance goes on to the child.
        let frame = match self.frame.as_deref() {
            Some(Frame { scope: Some(_), governed: Some(g) }) => {
                Some(Arc::new(Frame { scope: None, governed: Some(Arc::clone(g)) }))
            }
            Some(Frame { scope: Some(_), governed: None }) => None,
            _ => self.frame.clone(),
        };
        let mut child =
            Self { run_id: RunId::generate(), parent: Some(self.run_id), frame, derived: false, ..self.clone() };
        if let Some(scope) = self.scope() {
            child.session = match (scope.sessions, &self.session) {
                (ChildSessions::PerNode, Some(session)) => Some(session.sub(&scope.node)),
                (ChildSessions::Shared, session) => session.clone(),
                _ => None,
            };
            if let Some(children) = &scope.children {
                let n = children.fetch_add(1, Ordering::Relaxed);
                child.run_id = RunId::derived(self.run_id, &scope.node, scope.visit, n);
                child.derived = true;
            }
        }
        child
    }

    /// Who the run is for.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The conversation the run continues, if it names one.
    pub fn session(&self) -> Option<&SessionId> {
        self.session.as_ref()
    }

    /// This run's id.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The run this one is nested in, if any.
    pub fn parent(&self) -> Option<RunId> {
        self.parent
    }

    /// The run's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Keeps `value` in this run's own state (replacing one of its type), for the run's
    /// machinery to borrow for as long as the run lasts.
    pub(crate) fn keep<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.extensions.insert_arc(value);
    }

    /// A value kept with [`keep`](Self::keep) (or given as state), borrowed.
    pub(crate) fn kept<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.extensions.get_ref::<T>()
    }

    /// Shared state of type `T`, if the agent or workflow was given one.
    pub fn state<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.extensions.get::<T>()
    }

    /// Whether anyone listens to this run's events. Code that would do work only to build an
    /// event can skip it when this is `false`.
    pub fn is_observed(&self) -> bool {
        self.emitter.is_active()
    }

    /// Emits an event; `kind` is only called when someone listens.
    #[inline]
    pub fn emit(&self, kind: impl FnOnce() -> EventKind) {
        self.emitter.emit(self.run_id, self.parent, kind);
    }

    /// Emits a [`EventKind::Custom`] event.
    pub fn emit_custom(&self, name: &str, payload: impl FnOnce() -> serde_json::Value) {
        self.emit(|| EventKind::Custom { name: name.to_owned(), payload: payload() });
    }
}

/// Key-value metadata attached to a run (request ids, tenant tags, feature flags...).
///
/// Empty metadata costs nothing; a non-empty map is shared between a run and the runs nested
/// in it.
#[derive(Clone, Default, PartialEq)]
pub struct Metadata(Option<Arc<BTreeMap<String, serde_json::Value>>>);

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        Arc::make_mut(self.0.get_or_insert_with(Default::default)).insert(key.into(), value.into());
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.as_ref().and_then(|m| m.get(key))
    }

    /// The value of `key` if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(serde_json::Value::as_str)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }

    /// The entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.0.iter().flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)))
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<serde_json::Value>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let map: BTreeMap<String, serde_json::Value> = iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        if map.is_empty() { Self(None) } else { Self(Some(Arc::new(map))) }
    }
}

impl serde::Serialize for Metadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// Typed shared state (database pools, clients, configuration) that tools read through
/// [`State`]. One value per type.
#[derive(Clone, Default)]
pub struct Extensions(Option<Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>);

impl Extensions {
    /// No state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value`, replacing any earlier value of the same type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        Arc::make_mut(self.0.get_or_insert_with(Default::default)).insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Stores a value already shared, so the caller keeps a handle to it.
    pub fn insert_arc<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        Arc::make_mut(self.0.get_or_insert_with(Default::default)).insert(TypeId::of::<T>(), value);
    }

    /// The value of type `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let any = Arc::clone(self.0.as_ref()?.get(&TypeId::of::<T>())?);
        any.downcast::<T>().ok()
    }

    /// The value of type `T`, borrowed.
    pub(crate) fn get_ref<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.as_ref()?.get(&TypeId::of::<T>())?.downcast_ref::<T>()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extensions({} values)", self.0.as_ref().map_or(0, |m| m.len()))
    }
}

/// Shared state of type `T`, as a tool parameter.
///
/// Give the agent the state with [`Agent::state`](crate::Agent::state); a `#[tool]` that takes
/// `State<T>` receives it, and the parameter is not part of the tool's JSON schema.
///
/// ```
/// use loomflow::prelude::*;
///
/// struct Prices { vat: f64 }
///
/// /// Add VAT to a net price.
/// #[tool]
/// fn gross(prices: State<Prices>, net: f64) -> f64 {
///     net * (1.0 + prices.vat)
/// }
///
/// let agent = Agent::new("Price things.").model("echo").tool(GrossTool).state(Prices { vat: 0.2 });
/// assert!(GrossTool.definition().parameters()["properties"].get("prices").is_none());
/// ```
#[derive(Debug)]
pub struct State<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for State<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> std::ops::Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A value a tool takes from the run context instead of from the model's arguments.
///
/// A `#[tool]` parameter whose type implements this trait is filled from the
/// [`RunContext`] and left out of the tool's JSON schema; every other parameter comes from
/// the model. Implemented for `&RunContext`, [`UserId`], [`RunId`], `Option<SessionId>`,
/// [`SessionId`] (an error result when the run has no session), [`Metadata`] and [`State<T>`].
/// Implement it for your own context types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be taken from the run context",
    note = "context parameters of a #[tool] must implement `loomflow::FromRunContext`"
)]
pub trait FromRunContext<'a>: Sized {
    /// Takes the value from the context; an error becomes the tool call's error result.
    fn from_run_context(ctx: &'a RunContext) -> Result<Self, ToolError>;
}

impl<'a> FromRunContext<'a> for &'a RunContext {
    fn from_run_context(ctx: &'a RunContext) -> Result<Self, ToolError> {
        Ok(ctx)
    }
}

impl FromRunContext<'_> for UserId {
    fn from_run_context(ctx: &RunContext) -> Result<Self, ToolError> {
        Ok(ctx.user.clone())
    }
}

impl FromRunContext<'_> for RunId {
    fn from_run_context(ctx: &RunContext) -> Result<Self, ToolError> {
        Ok(ctx.run_id)
    }
}

impl FromRunContext<'_> for Option<SessionId> {
    fn from_run_context(ctx: &RunContext) -> Result<Self, ToolError> {
        Ok(ctx.session.clone())
    }
}

impl FromRunContext<'_> for SessionId {
    fn from_run_context(ctx: &RunContext) -> Result<Self, ToolError> {
        ctx.session.clone().ok_or_else(|| ToolError::new("this tool needs a session, and the run has none"))
    }
}

impl FromRunContext<'_> for Metadata {
    fn from_run_context(ctx: &RunContext) -> Result<Self, ToolError> {
        Ok(ctx.metadata.clone())
    }
}

impl<T: Any + Send + Sync> FromRunContext<'_> for State<T> {
    fn from_run_context(ctx: &RunContext) -> Result<Self, ToolError> {
        ctx.state::<T>().map(State).ok_or_else(|| {
            ToolError::new(format!(
                "the tool needs state of type `{}`, and none was given (use `.state(..)`)",
                std::any::type_name::<T>()
            ))
        })
    }
}
