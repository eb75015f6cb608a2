//! # Loom
//!
//! A Rust framework for LLM agents and workflows that ship.
//!
//! - An [`Agent`] hands the loop to the model: instructions, a model, tools.
//! - Tools are plain functions: [`#[tool]`](macro@tool) generates their JSON schema from the
//!   parameter types and their descriptions from doc comments, at compile time.
//! - Every run carries a [`RunContext`] (user, session, run id, metadata) and reports what it
//!   does as one stream of [`RunEvent`]s.
//! - Everything runs offline on the [`EchoModel`] and the [`ScriptedModel`].
//!
//! ```
//! use loomflow::prelude::*;
//! use serde_json::json;
//!
//! /// Add two integers.
//! #[tool]
//! fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let model = ScriptedModel::new([
//!     ScriptedTurn::tool_call("add", json!({"a": 2, "b": 3})),
//!     ScriptedTurn::text("The sum is 5."),
//! ]);
//! let agent = Agent::new("You do sums with the add tool.").model(model).tool(AddTool);
//! let result = agent.run("What is 2 + 3?").user("alice").await?;
//! assert_eq!(result.output, "The sum is 5.");
//! # Ok::<(), loomflow::Error>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Lets the macros' `::loomflow::...` paths resolve inside this crate's own tests and docs.
#[allow(unused_extern_crates)]
extern crate self as loomflow;

#[doc(hidden)]
pub mod __private;
pub mod agent;
pub mod arch;
#[cfg(any(feature = "mcp", feature = "serve"))]
pub mod auth;
mod bounded;
#[cfg(feature = "config")]
pub mod config;
mod context;
pub mod error;
pub mod event;
pub mod governance;
mod id;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod memory;
pub mod model;
pub mod output;
#[cfg(test)]
mod proptests;
#[cfg(feature = "rag")]
pub mod rag;
mod runner;
#[cfg(feature = "serve")]
pub mod serve;
pub mod session;
#[cfg(feature = "skills")]
pub mod skills;
pub mod telemetry;
pub mod tool;
#[cfg(feature = "tools")]
pub mod tools;
pub mod workflow;
#[cfg(feature = "workspace")]
pub mod workspace;

pub use agent::{Agent, Citation, RunResult};
pub use async_trait::async_trait;
pub use context::{ChildSessions, Extensions, FromRunContext, Metadata, RunContext, State};
pub use error::{ConfigError, Error, PartialRun, Result, RunError, StoreError, StoreErrorKind};
pub use event::{EventKind, EventListener, RunEvent};
pub use id::{IdError, MAX_ID_LEN, RESERVED_PREFIX, RunId, SessionId, UserId};
pub use model::{EchoModel, Model, ModelError, ModelErrorKind, ScriptedModel, ScriptedTurn};
pub use output::{OutputError, OutputMode, Validate};
pub use runner::{RunBuilder, RunStream, Runnable};
pub use tool::{Tool, ToolError, ToolSet};

/// Turns a function into a tool the model can call.
///
/// Put it on an `fn` or `async fn`. The function stays as written and callable; next to it the
/// macro generates a unit struct named after it in `PascalCase` with a `Tool` suffix
/// (`fn get_weather` → `GetWeatherTool`) that implements [`Tool`]. Pass that value to
/// [`Agent::tool`].
///
/// - **Name**: the function's name, or `name = "..."`; checked at compile time against the
///   providers' rule `^[a-zA-Z0-9_-]{1,64}$`.
/// - **Description**: the doc comment, or `description = "..."` (one is required: the model
///   chooses tools by their descriptions).
/// - **Arguments**: every parameter whose type implements `Deserialize` and `JsonSchema`; its
///   schema comes from the type, its description from a doc comment on the parameter.
///   `Option<T>` parameters are optional; all others are required.
/// - **Context**: parameters whose type implements [`FromRunContext`] (`&RunContext`,
///   [`UserId`], [`State<T>`], ...) are filled from the run and left out of the schema.
/// - **Return**: any `Serialize` value (strings as they are, other values as JSON), a
///   [`ToolOutput`](tool::ToolOutput), or a `Result` of one whose error implements `Display`;
///   an `Err` becomes an error result the model reads.
/// - **Hints**: `read_only`, `destructive`, `idempotent`, `ends_turn` (a successful call ends
///   the agent's turn; its result is the answer) ([`ToolHints`](tool::ToolHints)).
/// - **`blocking`**: run a synchronous function on tokio's blocking pool (for slow or
///   blocking work); by default a synchronous function runs inline.
/// - **`crate = "path"`**: the path of the `loomflow` crate, if it is renamed.
///
/// ```
/// use loomflow::prelude::*;
///
/// /// Refund a charge. Use only after the customer confirmed the amount.
/// #[tool(destructive, name = "refund_charge")]
/// async fn refund(
///     ctx: &RunContext,
///     /// Charge id, e.g. "ch_42".
///     charge_id: String,
///     /// Amount in cents.
///     amount: u32,
///     /// Why the refund was made.
///     reason: Option<String>,
/// ) -> Result<String, ToolError> {
///     Ok(format!("refunded {amount} on {charge_id} for {}", ctx.user()))
/// }
///
/// let def = RefundTool.definition();
/// assert_eq!(def.name(), "refund_charge");
/// assert!(def.hints().destructive);
/// assert_eq!(def.parameters()["required"], serde_json::json!(["charge_id", "amount"]));
/// assert_eq!(def.parameters()["properties"]["amount"]["description"], "Amount in cents.");
/// ```
///
/// **Tools from a struct's methods.** Tools that share state — a database pool, an HTTP
/// client, a cache — keep it in one struct whose methods do the work. `#[tool]` goes on
/// functions, not methods: the generated tool is a unit struct built once per type, so it has no
/// `self` to call a method on. Give the agent the struct with [`Agent::state`] and write each
/// tool as a thin function taking [`State<T>`] that calls the method; each agent (each tenant,
/// each test) then has its own instance, and the methods stay plain Rust you can test alone.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use loomflow::prelude::*;
///
/// #[derive(Default)]
/// struct Inventory {
///     stock: Mutex<HashMap<String, u32>>,
/// }
///
/// impl Inventory {
///     fn add(&self, item: &str, count: u32) -> u32 {
///         let mut stock = self.stock.lock().unwrap_or_else(|e| e.into_inner());
///         let n = stock.entry(item.to_owned()).or_default();
///         *n += count;
///         *n
///     }
///
///     fn count(&self, item: &str) -> u32 {
///         self.stock.lock().unwrap_or_else(|e| e.into_inner()).get(item).copied().unwrap_or(0)
///     }
/// }
///
/// /// Add items to the stock; returns how many there are now.
/// #[tool(destructive)]
/// fn restock(inventory: State<Inventory>, item: String, count: u32) -> u32 {
///     inventory.add(&item, count)
/// }
///
/// /// How many of an item are in stock.
/// #[tool(read_only)]
/// fn in_stock(inventory: State<Inventory>, item: String) -> u32 {
///     inventory.count(&item)
/// }
///
/// let agent = Agent::new("Keep the stock.")
///     .model("echo")
///     .tool(RestockTool)
///     .tool(InStockTool)
///     .state(Inventory::default());
/// ```
///
/// Written by hand, a tool is a type that implements [`Tool`]: `definition` returns a
/// [`ToolDefinition`](tool::ToolDefinition) built once, and `call` parses the raw JSON
/// arguments (for instance with [`Arguments`](tool::Arguments)) and runs the function.
pub use loomflow_macros::tool;

// The README's examples are compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Declares an agent as a type.
///
/// Put it on a unit struct. The doc comment is the agent's instructions (or give
/// `instructions = "..."`); the attribute sets the rest:
///
/// | key | value | default |
/// |---|---|---|
/// | `model` | a model string (`"echo"`, `"gpt-4.1-mini"`) or any expression giving a model | none: set it with `configure` |
/// | `tools` | `[f, path::g, MyTool]`: functions marked `#[tool]`, or tool types (`Tool + Default`) | none |
/// | `architecture` | the loop style, checked at compile time: `react`, `self_refine`, `reflexion`, `plan_and_execute`, `rewoo`, `tree_of_thoughts`, or a team's: `supervisor`, `router`, `swarm`, `debate`, `blackboard`, `actor_critic` ([`arch`]) | `react` |
/// | `workers`, `routes`, `peers`, `debaters`, `members` | the team of a `supervisor`, `router`, `swarm` (at least 2, answering in text), `debate` (at least 2) or `blackboard`: `[Billing, Tech]`, types declared with `#[agent]`, each named by its agent's name | none |
/// | `judge` | a `debate`'s judge, an `#[agent]` type | a majority vote |
/// | `actor`, `critic` | an `actor_critic`'s two `#[agent]` types (the critic answers in text) | none |
/// | `description` | what the agent is for, shown to a team that has it as a member | none |
/// | `output` | the output type (`Deserialize + JsonSchema`) | `String` |
/// | `output_mode` | `auto`, `native`, `tool` or `prompted` | `auto` |
/// | `output_retries` | how often the model may correct a bad answer | `1` |
/// | `validate` | check the output with its [`Validate`] impl | off |
/// | `max_turns` | the most model calls per run | `25` |
/// | `name` | the agent's name in events and graphs | the struct's name |
/// | `crate` | the path of `loomflow`, if renamed | `::loomflow` |
///
/// Every misuse is a compile error on the offending token: an unknown key (with a
/// suggestion), a key given twice, a tool that is not a tool (or is listed twice), an output
/// type without `JsonSchema`, `output_mode`, `output_retries` or `validate` without `output`,
/// an unknown architecture, a team key of another architecture, a team architecture without
/// its team (or with too few members, or one listed twice), a member that is not an
/// `#[agent]` type (or answers with a typed output where text is needed), missing or empty
/// instructions, a `derive` (the type has the traits `#[agent]` implements: `Clone`,
/// `Debug`, `Default`).
///
/// ```
/// use loomflow::prelude::*;
///
/// /// You answer billing questions.
/// #[agent(model = "echo", description = "invoices and refunds")]
/// struct Billing;
///
/// /// You answer technical questions.
/// #[agent(model = "echo", name = "tech")]
/// struct Tech;
///
/// /// You run customer support: hand each question to the right expert.
/// #[agent(model = "echo", architecture = supervisor, workers = [Billing, Tech])]
/// struct Support;
///
/// assert_eq!(Support::new().architecture_name(), "supervisor");
/// ```
///
/// A `#[tool]` function's name is also a (hidden) name of its tool type, so
/// `tools = [lookup]` lists `LookupTool`; any type that implements [`Tool`] and `Default` can
/// be listed by its own name.
///
/// ```
/// use loomflow::prelude::*;
///
/// #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
/// struct Ticket { team: String, urgent: bool }
///
/// /// Look a customer up by email.
/// #[tool(read_only)]
/// fn lookup(email: String) -> String {
///     format!("{email}: premium plan")
/// }
///
/// /// You triage support tickets: decide the team and whether it is urgent.
/// #[agent(model = "echo", tools = [lookup], output = Ticket, output_retries = 2)]
/// struct Triage;
///
/// let triage = Triage::new();
/// assert_eq!(triage.agent_name(), Some("Triage"));
/// assert_eq!(triage.tool_set_ref().names().collect::<Vec<_>>(), ["lookup"]);
/// ```
///
/// The hand-written equivalent, which is what the macro generates:
///
/// ```
/// # use loomflow::prelude::*;
/// # #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
/// # struct Ticket { team: String, urgent: bool }
/// # /// Look a customer up by email.
/// # #[tool(read_only)]
/// # fn lookup(email: String) -> String { email }
/// /// You triage support tickets: decide the team and whether it is urgent.
/// struct Triage(Agent<Ticket>);
///
/// impl Triage {
///     fn new() -> Self {
///         Self(
///             Agent::new("You triage support tickets: decide the team and whether it is urgent.")
///                 .name("Triage")
///                 .model("echo")
///                 .tool(LookupTool) // `tools = [lookup]`
///                 .output::<Ticket>()
///                 .output_retries(2),
///         )
///     }
/// }
///
/// impl std::ops::Deref for Triage {
///     type Target = Agent<Ticket>;
///     fn deref(&self) -> &Agent<Ticket> {
///         &self.0
///     }
/// }
/// // ... plus `configure`, `into_agent`, `Default`, `Clone`, `Debug` and `From<Triage> for Agent<Ticket>`.
/// ```
pub use loomflow_macros::agent;

/// Builds a workflow graph from the `#[node]` methods of an `impl` block, at compile time.
///
/// Each `#[node]` method is a node; the attribute says where the run goes after it:
///
/// | on the node | meaning |
/// |---|---|
/// | `start` | the run starts here (exactly one node) |
/// | `next = b` | then node `b`, on this node's output |
/// | `route = { E::A => a, E::B => b }` | the node returns the enum `E`; the variant picks the next node, which receives the variant's value (or nothing, for a unit variant) |
/// | `fan_out = [a, b]` | branches `a` and `b` run at once on clones of the output; each leads by `next` edges to a `join` node |
/// | `join` | receives the branches' outputs as a tuple, in branch order |
/// | `max_visits = n` | the node may run at most `n` times in one run (every cycle needs one) |
/// | `idempotent` | the node is safe to run again: a resumed run that finds it interrupted runs it again without asking for a [`NodeDecision`](workflow::NodeDecision) |
/// | (nothing) | the run ends here; the node's output is the workflow's output |
///
/// On the block, `#[workflow(name = "...", max_steps = n, max_visits = n, crate = "...")]`
/// names the workflow (default: the type's name), bounds its runs' steps and the visits of
/// nodes without a bound of their own, and points the generated code at a renamed `loomflow`.
///
/// A node takes `&self`, then optionally `ctx: &RunContext`, then at most one input (the
/// previous node's output), and returns its output or a `Result` of it. Values pass between
/// nodes as their Rust types, in a state machine the macro generates: no boxing, no JSON.
///
/// These are compile errors, each on the token at fault: an edge to a node that does not
/// exist (with a suggestion), an output type that does not fit the next node's input (on the
/// edge, naming both types), a route that does not handle every variant (naming the missing
/// ones), no start or two starts, a node unreachable from the start or with no path to an
/// end, a fan-out without a join or whose output cannot be cloned, a join whose input is not
/// the branches' outputs, end nodes that give different types, a node error type that cannot
/// be a node's error, and a cycle without a visit bound. With any of them, the type still gets
/// a stand-in `Graph` implementation, so its uses add no errors of their own.
///
/// ```
/// use loomflow::prelude::*;
///
/// struct Editor;
///
/// enum Review {
///     Approve(String),
///     Revise(String),
/// }
///
/// #[workflow]
/// impl Editor {
///     #[node(start, next = review)]
///     async fn draft(&self, topic: String) -> String {
///         format!("a draft about {topic}")
///     }
///
///     #[node(route = { Review::Approve => publish, Review::Revise => revise })]
///     async fn review(&self, draft: String) -> Review {
///         if draft.contains("revised") { Review::Approve(draft) } else { Review::Revise(draft) }
///     }
///
///     #[node(next = review, max_visits = 3)]
///     async fn revise(&self, draft: String) -> String {
///         format!("{draft} (revised)")
///     }
///
///     #[node]
///     async fn publish(&self, draft: String) -> String {
///         draft.to_uppercase()
///     }
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// # rt.block_on(async {
/// let editor = Editor.into_workflow();
/// let result = editor.run("looms".to_owned()).await?;
/// assert_eq!(result.output, "A DRAFT ABOUT LOOMS (REVISED)");
/// assert_eq!(result.visited, ["draft", "review", "revise", "review", "publish"]);
/// # Ok::<(), loomflow::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use loomflow_macros::workflow;

/// Marks a method of a [`#[workflow]`](macro@workflow) block as a node.
pub use loomflow_macros::node;

/// The names most programs need: `use loomflow::prelude::*;`.
pub mod prelude {
    pub use crate::agent::{Agent, RunResult};
    pub use crate::arch::Team;
    pub use crate::async_trait;
    pub use crate::context::{FromRunContext, Metadata, RunContext, State};
    pub use crate::error::{ConfigError, Error, RunError};
    pub use crate::event::{EventKind, RunEvent};
    pub use crate::id::{RunId, SessionId, UserId};
    pub use crate::model::{EchoModel, Message, Model, ModelError, ScriptedModel, ScriptedTurn, Usage};
    pub use crate::output::{OutputMode, Validate};
    pub use crate::tool::{Tool, ToolError, ToolSet};
    pub use crate::workflow::{Graph, Workflow, WorkflowResult};
    pub use loomflow_macros::{agent, node, tool, workflow};
}
