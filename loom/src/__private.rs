//! Support for the code Loom's macros generate. Not a public API: it changes without notice.
//!
//! The `#[tool]` macro cannot see whether a parameter type is a context type or an argument
//! from the model, nor whether a return type is a `Result`. It asks the type system instead:
//! each parameter goes through `(&&&Param::<T>::NEW).method(..)`, which resolves (by auto-ref
//! specialisation: method lookup tries `&&Param<T>`, then `&Param<T>`, then `Param<T>`) to
//! [`ContextParam`] when the type implements [`FromRunContext`], else to [`DataParam`] when it
//! implements `Deserialize + JsonSchema`, else to [`UnsupportedParam`], which fails to compile
//! with a message spanned on the parameter type. Return types go through [`Ret`] the same way.

#![allow(missing_docs, unreachable_pub)]

use std::any::Any;
use std::fmt::Display;
use std::marker::PhantomData;

pub use async_trait::async_trait;
pub use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

pub use crate::context::{FromRunContext, RunContext};
pub use crate::tool::{Arguments, Tool, ToolDefinition, ToolError, ToolHints, ToolOutput};
pub use crate::workflow::{EdgeKind, Graph, GraphRun, GraphSpec, NodeError, NodeKind, WorkflowError};
pub use futures;
pub use futures::future::BoxFuture;
pub use serde_json::Value as JsonValue;

use crate::model::Content;
use crate::tool::ToolErrorKind;

/// What `#[agent(tools = [..])]` accepts: a tool type it can make a value of. A `#[tool]`
/// function's name is also the name of its tool type, so `tools = [lookup]` lists
/// `LookupTool`; a hand-written tool type is listed by its own name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tool an `#[agent]` can list",
    label = "not a tool",
    note = "list functions marked `#[tool]`, or types that implement `loomflow::Tool` and `Default`"
)]
pub trait ListedTool: Tool + Sized {
    fn instance() -> Self;
}

#[diagnostic::do_not_recommend]
impl<T: Tool + Default> ListedTool for T {
    fn instance() -> Self {
        T::default()
    }
}

/// The tool of type `T`, for `#[agent(tools = [..])]` (shared: a type that is not a tool is
/// reported once, here, not again where the agent takes it).
pub fn listed_tool<T: ListedTool>() -> std::sync::Arc<dyn Tool> {
    std::sync::Arc::new(T::instance())
}

/// A type declared with `#[agent]`: what a team attribute (`workers = [..]`, `peers = [..]`
/// ...) lists.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an agent type",
    label = "not an #[agent] type",
    note = "team members are types declared with `#[agent]`; an `Agent` value joins a team through the \
            architecture's builder, e.g. `Supervisor::new().worker(\"name\", agent)`"
)]
pub trait AgentType: Sized {
    /// The agent's output type.
    type Output: Send + Sync + 'static;
    /// The agent's name: its name in the team.
    const NAME: &'static str;
    /// Builds the agent.
    fn build() -> crate::Agent<Self::Output>;
}

/// An `#[agent]` type whose output is text: a swarm's peer, an actor-critic's critic.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must answer in text here",
    label = "an agent with a typed output",
    note = "swarm peers and critics answer in text; declare this agent without `output = ..`"
)]
pub trait TextAgentType: AgentType<Output = String> {}

#[diagnostic::do_not_recommend]
impl<A: AgentType<Output = String>> TextAgentType for A {}

/// Adds the `#[agent]` type `A` to a team of `#[agent(workers = [..])]` and friends (the
/// bound is checked here, where a type that is not an agent is reported once, at its name).
pub trait AddMember<A> {
    /// The team with `A` in it.
    fn add(self) -> Self;
}

impl<A: AgentType> AddMember<A> for crate::arch::Supervisor {
    fn add(self) -> Self {
        self.worker(A::NAME, A::build())
    }
}

impl<A: AgentType> AddMember<A> for crate::arch::Router {
    fn add(self) -> Self {
        self.route(A::NAME, A::build())
    }
}

impl<A: AgentType> AddMember<A> for crate::arch::Blackboard {
    fn add(self) -> Self {
        self.agent(A::NAME, A::build())
    }
}

impl<A: AgentType> AddMember<A> for crate::arch::Debate {
    fn add(self) -> Self {
        self.debater(A::NAME, A::build())
    }
}

/// Adds `A` to `team`.
pub fn add_member<A: AgentType, T: AddMember<A>>(team: T) -> T {
    team.add()
}

/// Adds the text-answering `A` to a swarm.
pub fn add_peer<A: TextAgentType>(team: crate::arch::Swarm) -> crate::arch::Swarm {
    team.peer(A::NAME, A::build())
}

/// Sets a debate's judge.
pub fn set_judge<A: AgentType>(team: crate::arch::Debate) -> crate::arch::Debate {
    team.judge(A::build())
}

/// An actor-critic of two `#[agent]` types.
pub fn actor_critic<A: AgentType, C: TextAgentType>() -> crate::arch::ActorCritic {
    crate::arch::ActorCritic::new(A::build(), C::build())
}

/// What the `#[tool]` macro computes once per tool: the definition and the argument names.
#[derive(Debug)]
pub struct ToolMeta {
    pub definition: ToolDefinition,
    pub arguments: Vec<&'static str>,
}

/// Builds a tool's argument schema, one parameter at a time.
pub struct ParamsSchema {
    generator: schemars::SchemaGenerator,
    properties: serde_json::Map<String, serde_json::Value>,
    required: Vec<serde_json::Value>,
    arguments: Vec<&'static str>,
}

impl Default for ParamsSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl ParamsSchema {
    pub fn new() -> Self {
        let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
            s.meta_schema = None;
            s.inline_subschemas = true;
        });
        Self {
            generator: settings.into_generator(),
            properties: serde_json::Map::new(),
            required: Vec::new(),
            arguments: Vec::new(),
        }
    }

    pub fn add<T: JsonSchema + DeserializeOwned>(&mut self, name: &'static str, doc: Option<&'static str>) {
        let mut schema = self.generator.subschema_for::<T>();
        if let Some(doc) = doc {
            schema.insert("description".to_owned(), doc.into());
        }
        self.properties.insert(name.to_owned(), schema.to_value());
        if !crate::tool::args::may_be_absent::<T>() {
            self.required.push(name.into());
        }
        self.arguments.push(name);
    }

    pub fn finish(mut self, name: &'static str, description: &'static str, hints: ToolHints) -> ToolMeta {
        let mut schema = serde_json::Map::new();
        schema.insert("type".into(), "object".into());
        schema.insert("properties".into(), self.properties.into());
        if !self.required.is_empty() {
            schema.insert("required".into(), self.required.into());
        }
        schema.insert("additionalProperties".into(), false.into());
        let defs = self.generator.take_definitions(true);
        if !defs.is_empty() {
            schema.insert("$defs".into(), defs.into());
        }
        ToolMeta {
            definition: ToolDefinition::new_unchecked(name.to_owned(), description.to_owned(), schema.into())
                .with_hints(hints),
            arguments: self.arguments,
        }
    }
}

/// A parameter type, for method dispatch on what the type can do.
pub struct Param<T>(PhantomData<fn() -> T>);

impl<T> Param<T> {
    pub const NEW: Self = Self(PhantomData);
}

/// First choice: the parameter comes from the run context.
pub trait ContextParam<'a> {
    type Out;
    fn __loom_extract(&self, ctx: &'a RunContext, args: &mut Arguments<'_>, name: &str)
    -> Result<Self::Out, ToolError>;
    fn __loom_schema(&self, _schema: &mut ParamsSchema, _name: &'static str, _doc: Option<&'static str>) {}
}

impl<'a, T: FromRunContext<'a>> ContextParam<'a> for &&Param<T> {
    type Out = T;
    #[inline]
    fn __loom_extract(&self, ctx: &'a RunContext, _args: &mut Arguments<'_>, _name: &str) -> Result<T, ToolError> {
        T::from_run_context(ctx)
    }
}

/// Second choice: the parameter is an argument from the model.
pub trait DataParam {
    type Out;
    fn __loom_extract(&self, ctx: &RunContext, args: &mut Arguments<'_>, name: &str) -> Result<Self::Out, ToolError>;
    fn __loom_schema(&self, schema: &mut ParamsSchema, name: &'static str, doc: Option<&'static str>);
}

impl<T: DeserializeOwned + JsonSchema> DataParam for &Param<T> {
    type Out = T;
    #[inline]
    fn __loom_extract(&self, _ctx: &RunContext, args: &mut Arguments<'_>, name: &str) -> Result<T, ToolError> {
        args.take(name).map_err(ToolError::from)
    }
    fn __loom_schema(&self, schema: &mut ParamsSchema, name: &'static str, doc: Option<&'static str>) {
        schema.add::<T>(name, doc);
    }
}

/// Why a type cannot be a tool parameter; implemented by no type, so that using one that is
/// neither an argument nor a context value reports this message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a `#[tool]` parameter",
    label = "not an argument type and not a context type",
    note = "an argument from the model must implement `serde::Deserialize` and `schemars::JsonSchema` (derive both)",
    note = "a value from the run context must implement `loomflow::FromRunContext` (e.g. `&RunContext`, `UserId`, `State<T>`)"
)]
pub trait ToolParameter {}

/// Last choice: neither; reports [`ToolParameter`]'s message.
pub trait UnsupportedParam<T> {
    fn __loom_extract(&self, _ctx: &RunContext, _args: &mut Arguments<'_>, _name: &str) -> Result<T, ToolError>
    where
        T: ToolParameter,
    {
        Err(ToolError::new("unsupported parameter"))
    }
    // No bound here: the extraction reports the error, once.
    fn __loom_schema(&self, _schema: &mut ParamsSchema, _name: &'static str, _doc: Option<&'static str>) {}
}

impl<T> UnsupportedParam<T> for Param<T> {}

/// A parameter whose type is a reference: a context value (`&RunContext`) or an error, never
/// an argument (arguments from the model must own their data).
pub struct RefParam<T>(PhantomData<fn() -> T>);

impl<T> RefParam<T> {
    pub const NEW: Self = Self(PhantomData);
}

impl<'a, T: FromRunContext<'a>> ContextParam<'a> for &&RefParam<T> {
    type Out = T;
    #[inline]
    fn __loom_extract(&self, ctx: &'a RunContext, _args: &mut Arguments<'_>, _name: &str) -> Result<T, ToolError> {
        T::from_run_context(ctx)
    }
}

#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a `#[tool]` parameter: arguments from the model must own their data",
    label = "borrowed",
    note = "use an owned type (`String` for `&str`, `Vec<T>` for `&[T]`), or a context type that implements `loomflow::FromRunContext` (such as `&RunContext`)"
)]
pub trait OwnedToolParameter {}

/// Last choice for a reference type: reports [`OwnedToolParameter`]'s message.
pub trait UnsupportedRefParam<T> {
    fn __loom_extract(&self, _ctx: &RunContext, _args: &mut Arguments<'_>, _name: &str) -> Result<T, ToolError>
    where
        T: OwnedToolParameter,
    {
        Err(ToolError::new("unsupported parameter"))
    }
    fn __loom_schema(&self, _schema: &mut ParamsSchema, _name: &'static str, _doc: Option<&'static str>) {}
}

impl<T> UnsupportedRefParam<T> for RefParam<T> {}

/// A return type, for method dispatch on what the type is.
pub struct Ret<T>(PhantomData<fn() -> T>);

impl<T> Ret<T> {
    pub const NEW: Self = Self(PhantomData);
}

/// First choice: a `Result` whose `Ok` is sent to the model and whose `Err` becomes an error
/// result.
pub trait ResultReturn<R> {
    fn __loom_output(&self, value: R) -> Result<ToolOutput, ToolError>;
}

impl<T: Serialize + 'static, E: Display + 'static> ResultReturn<Result<T, E>> for &&Ret<Result<T, E>> {
    #[inline]
    fn __loom_output(&self, value: Result<T, E>) -> Result<ToolOutput, ToolError> {
        match value {
            Ok(v) => into_output(v),
            Err(e) => Err(into_tool_error(e)),
        }
    }
}

/// Second choice: any serialisable value.
pub trait PlainReturn<R> {
    fn __loom_output(&self, value: R) -> Result<ToolOutput, ToolError>;
}

impl<T: Serialize + 'static> PlainReturn<T> for &Ret<T> {
    #[inline]
    fn __loom_output(&self, value: T) -> Result<ToolOutput, ToolError> {
        into_output(value)
    }
}

#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a `#[tool]`",
    label = "the model cannot read this",
    note = "return a value that implements `serde::Serialize` (strings are sent as they are, other values as JSON), a `ToolOutput`, or a `Result` of one whose error implements `Display`"
)]
pub trait ToolReturn {}

/// Last choice: reports [`ToolReturn`]'s message.
pub trait UnsupportedReturn<R> {
    fn __loom_output(&self, _value: R) -> Result<ToolOutput, ToolError>
    where
        R: ToolReturn,
    {
        Err(ToolError::new("unsupported return type"))
    }
}

impl<T> UnsupportedReturn<T> for Ret<T> {}

fn take<T: 'static, U: 'static>(slot: &mut Option<T>) -> Option<U> {
    (slot as &mut dyn Any).downcast_mut::<Option<U>>().and_then(Option::take)
}

/// Turns a tool's return value into what the model reads: strings as they are, Loom content
/// as it is, `()` as `ok`, anything else as JSON.
pub fn into_output<T: Serialize + 'static>(value: T) -> Result<ToolOutput, ToolError> {
    let mut slot = Some(value);
    if let Some(o) = take::<T, ToolOutput>(&mut slot) {
        return Ok(o);
    }
    if let Some(s) = take::<T, String>(&mut slot) {
        return Ok(ToolOutput(Content::Text(s.into())));
    }
    if let Some(c) = take::<T, Content>(&mut slot) {
        return Ok(ToolOutput(c));
    }
    if take::<T, ()>(&mut slot).is_some() {
        return Ok(ToolOutput::text("ok"));
    }
    let Some(value) = slot else {
        return Ok(ToolOutput::text(""));
    };
    if let Ok(s) = value.serialize(StrCatcher) {
        return Ok(ToolOutput(Content::Text(s.into())));
    }
    serde_json::to_string(&value)
        .map(|s| ToolOutput(Content::Text(s.into())))
        .map_err(|e| ToolError::new(format!("the tool's result could not be serialised: {e}")))
}

/// Turns a tool's error into the error the model reads.
pub fn into_tool_error<E: Display + 'static>(error: E) -> ToolError {
    let mut slot = Some(error);
    if let Some(e) = take::<E, ToolError>(&mut slot) {
        return e;
    }
    match slot {
        Some(e) => ToolError::new(e.to_string()),
        None => ToolError::new("the tool failed"),
    }
}

/// A panic inside a blocking tool, as the error the model reads.
pub fn blocking_failed(error: &tokio::task::JoinError) -> ToolError {
    ToolError::new(format!("the tool panicked: {error}")).with_kind(ToolErrorKind::Panicked)
}

pub use tokio::task::spawn_blocking;

/// A serializer that accepts exactly one string, so string-like values (`&str`, `Cow<str>`,
/// `Arc<str>`, `char`) reach the model as text rather than as a quoted JSON string.
struct StrCatcher;

#[derive(Debug)]
struct NotAString;

impl Display for NotAString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a string")
    }
}

impl std::error::Error for NotAString {}

impl serde::ser::Error for NotAString {
    fn custom<M: Display>(_: M) -> Self {
        NotAString
    }
}

macro_rules! not_a_string {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {$(
        fn $method(self, $(_: $arg),*) -> Result<String, NotAString> {
            Err(NotAString)
        }
    )*};
}

impl Serializer for StrCatcher {
    type Ok = String;
    type Error = NotAString;
    type SerializeSeq = serde::ser::Impossible<String, NotAString>;
    type SerializeTuple = serde::ser::Impossible<String, NotAString>;
    type SerializeTupleStruct = serde::ser::Impossible<String, NotAString>;
    type SerializeTupleVariant = serde::ser::Impossible<String, NotAString>;
    type SerializeMap = serde::ser::Impossible<String, NotAString>;
    type SerializeStruct = serde::ser::Impossible<String, NotAString>;
    type SerializeStructVariant = serde::ser::Impossible<String, NotAString>;

    fn serialize_str(self, v: &str) -> Result<String, NotAString> {
        Ok(v.to_owned())
    }

    fn serialize_char(self, v: char) -> Result<String, NotAString> {
        Ok(v.to_string())
    }

    not_a_string! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_u64(u64), serialize_f32(f32), serialize_f64(f64), serialize_bytes(&[u8]),
        serialize_none(), serialize_unit(), serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<String, NotAString> {
        Err(NotAString)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<String, NotAString> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, NotAString> {
        Err(NotAString)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAString> {
        Err(NotAString)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAString> {
        Err(NotAString)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, NotAString> {
        Err(NotAString)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAString> {
        Err(NotAString)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAString> {
        Err(NotAString)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotAString> {
        Err(NotAString)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAString> {
        Err(NotAString)
    }
}

/// A node output, for a short description of it in step records and events.
pub struct Summarize<'a, T>(pub &'a T);

/// First choice: a `Debug` value (a string shows as its text).
pub trait DebugSummary {
    fn __loom_summary(&self) -> crate::workflow::Summary;
}

impl<T: std::fmt::Debug + 'static> DebugSummary for &Summarize<'_, T> {
    fn __loom_summary(&self) -> crate::workflow::Summary {
        let any: &dyn Any = self.0;
        if let Some(s) = any.downcast_ref::<String>() {
            return crate::workflow::summarize_any(s);
        }
        // Formatting stops once the summary is full: a large output costs no more than a small one.
        crate::workflow::Summary::format(format_args!("{:?}", self.0))
    }
}

/// Last choice: the type's name.
pub trait PlainSummary {
    fn __loom_summary(&self) -> crate::workflow::Summary;
}

impl<T> PlainSummary for Summarize<'_, T> {
    fn __loom_summary(&self) -> crate::workflow::Summary {
        crate::workflow::Summary::format(format_args!("<{}>", std::any::type_name::<T>()))
    }
}

/// A node's error, for conversion to a [`NodeError`] by what the type can do.
pub struct ErrWrap<E>(std::cell::Cell<Option<E>>);

impl<E> ErrWrap<E> {
    pub fn new(error: E) -> Self {
        Self(std::cell::Cell::new(Some(error)))
    }
}

/// First choice: an error that converts (any `std::error::Error`, a Loom error, a `NodeError`).
pub trait IntoNodeError {
    fn __loom_node_error(&self) -> NodeError;
}

impl<E: Into<NodeError>> IntoNodeError for &&ErrWrap<E> {
    fn __loom_node_error(&self) -> NodeError {
        match self.0.take() {
            Some(e) => e.into(),
            None => NodeError::new("the node failed"),
        }
    }
}

/// Second choice: anything displayable (`String`, `anyhow::Error`).
pub trait DisplayNodeError {
    fn __loom_node_error(&self) -> NodeError;
}

impl<E: Display> DisplayNodeError for &ErrWrap<E> {
    fn __loom_node_error(&self) -> NodeError {
        match self.0.take() {
            Some(e) => NodeError::from_display(e),
            None => NodeError::new("the node failed"),
        }
    }
}

/// Why a node's error type cannot be a node's error; implemented by no type, so that using
/// one reports this message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of a `#[node]`",
    label = "the node returns `Result<_, {Self}>`",
    note = "the error of a node must implement `Display` (or `std::error::Error`), or convert into `loomflow::workflow::NodeError`"
)]
pub trait NodeErrorType {}

/// Last choice: neither; reports [`NodeErrorType`]'s message.
pub trait UnsupportedNodeError<E> {
    fn __loom_node_error(&self) -> NodeError
    where
        E: NodeErrorType,
    {
        NodeError::new("the node failed")
    }
}

impl<E> UnsupportedNodeError<E> for ErrWrap<E> {}

/// An edge of a `#[workflow]` graph: a node's output becomes the next node's input. Only a
/// value of the very type fits, and a mismatch reads as Loom's message on the edge.
#[diagnostic::on_unimplemented(
    message = "this edge hands `{Self}` to a node that takes `{Input}`",
    label = "the node before gives `{Self}`; the node here takes `{Input}`",
    note = "a node's output is the next node's input: change one of the two types, or put a node between them that converts"
)]
pub trait Feeds<Input> {
    fn feed(self) -> Input;
}

impl<T> Feeds<T> for T {
    #[inline(always)]
    fn feed(self) -> T {
        self
    }
}

/// The branches of a fan-out hand their outputs, as a tuple in branch order, to the join.
#[diagnostic::on_unimplemented(
    message = "the branches of this fan-out give `{Self}`, but the join takes `{Input}`",
    label = "the branches give `{Self}`",
    note = "a join takes the outputs of the branches as a tuple, in the order of `fan_out = [..]`"
)]
pub trait JoinsInto<Input> {
    fn join(self) -> Input;
}

impl<T> JoinsInto<T> for T {
    #[inline(always)]
    fn join(self) -> T {
        self
    }
}

/// The output of a `#[workflow]` graph's end node is the workflow's output.
#[diagnostic::on_unimplemented(
    message = "this end node gives `{Self}`, but the workflow's output is `{Output}`",
    label = "gives `{Self}`",
    note = "every node that ends the run gives the workflow's output: the end nodes must give the same type"
)]
pub trait Ends<Output> {
    fn end(self) -> Output;
}

impl<T> Ends<T> for T {
    #[inline(always)]
    fn end(self) -> T {
        self
    }
}

/// A fan-out hands a copy of its output to each branch.
#[diagnostic::on_unimplemented(
    message = "a fan-out hands a copy of its output to each branch: `{Self}` must implement `Clone`",
    label = "the output of this fan-out is `{Self}`",
    note = "derive `Clone` for it, or hand the branches something that can be copied (an `Arc<{Self}>`)"
)]
pub trait FansOut: Sized {
    fn copy(&self) -> Self;
}

#[diagnostic::do_not_recommend]
impl<T: Clone> FansOut for T {
    #[inline(always)]
    fn copy(&self) -> T {
        self.clone()
    }
}

/// A node's input slot was empty; the graph was checked at compile time, so this cannot
/// happen unless the generated code is wrong.
pub fn missing_input(run: &GraphRun<'_>, node: usize) -> WorkflowError {
    run.fail(node, NodeError::new("the node ran without its input; this is a bug in Loom's #[workflow] expansion"))
}

/// Where a generated workflow state machine starts: from its input, or right after a node
/// whose output was recorded (a resumed run).
pub enum Entry<I> {
    Input(I),
    After(usize, serde_json::Value),
}

/// A node's output, for the journal: JSON when its type serialises.
pub struct ToJson<'a, T>(pub &'a T);

pub trait JsonRecord {
    fn __loom_json(&self) -> Option<serde_json::Value>;
}

impl<T: Serialize> JsonRecord for &ToJson<'_, T> {
    fn __loom_json(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.0).ok()
    }
}

pub trait NoJsonRecord {
    fn __loom_json(&self) -> Option<serde_json::Value>;
}

impl<T> NoJsonRecord for ToJson<'_, T> {
    fn __loom_json(&self) -> Option<serde_json::Value> {
        None
    }
}

/// A node's output type, for restoring a recorded output.
pub struct FromJson<T>(PhantomData<fn() -> T>);

impl<T> FromJson<T> {
    pub const NEW: Self = Self(PhantomData);
}

pub trait JsonRestore<T> {
    fn __loom_can_restore(&self) -> bool;
    fn __loom_restore(&self, value: serde_json::Value) -> Option<Result<T, String>>;
}

impl<T: DeserializeOwned> JsonRestore<T> for &&FromJson<T> {
    fn __loom_can_restore(&self) -> bool {
        true
    }
    fn __loom_restore(&self, value: serde_json::Value) -> Option<Result<T, String>> {
        Some(serde_json::from_value(value).map_err(|e| e.to_string()))
    }
}

pub trait NoJsonRestore<T> {
    fn __loom_can_restore(&self) -> bool;
    fn __loom_restore(&self, value: serde_json::Value) -> Option<Result<T, String>>;
}

impl<T> NoJsonRestore<T> for &FromJson<T> {
    fn __loom_can_restore(&self) -> bool {
        false
    }
    fn __loom_restore(&self, _value: serde_json::Value) -> Option<Result<T, String>> {
        None
    }
}

/// A recorded output that could not be restored.
pub fn restore_failed(run: &GraphRun<'_>, node: usize, why: &str) -> WorkflowError {
    run.fail(node, NodeError::new(format!("the recorded output of the node could not be restored: {why}")))
}
