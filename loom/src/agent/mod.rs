//! Agents: instructions, a model, tools, and a loop that lets the model drive.

mod compaction;
mod durable;
mod lifecycle;
mod memory;
mod prepared;
mod run;
mod tool;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use compaction::Compaction;
pub(crate) use durable::Durable;
pub use durable::{AgentInput, ToolDecision};
pub(crate) use lifecycle::run as run_future;
pub use memory::AgentMemory;
pub(crate) use prepared::{DynamicTools, Prepared};
pub use run::{Citation, RunResult};
pub use tool::AgentTool;

use crate::arch::{Architecture, IntoArchitecture};
use crate::context::Extensions;
use crate::error::ConfigError;
use crate::event::{Emitter, EventListener};
use crate::id::{RunId, SessionId, UserId};
use crate::model::{Effort, IntoModel, Model, ModelSettings, RetryPolicy};
use crate::output::{OutputMode, OutputSpec, OutputType, Validate};
use crate::runner::RunBuilder;
use crate::session::{Checkpoint, Journal, JournalEntry, RunKey, RunStatus, SessionStore, Sessions};
use crate::tool::{Tool, ToolSet, ToolSource};

/// The default limit of model calls in one run.
pub const DEFAULT_MAX_TURNS: u32 = 25;

/// How long a journaled run's lease lasts without a new step before another worker may take
/// the run over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Refuses a lease too short to mean anything (the stores count in milliseconds).
pub(crate) fn check_lease(ttl: Duration) -> Result<(), ConfigError> {
    if ttl < Duration::from_millis(1) {
        return Err(ConfigError::InvalidSetting {
            setting: "lease",
            reason: format!("a lease of {ttl:?} would let two workers run one run at once; give at least 1 ms"),
        });
    }
    Ok(())
}

/// An agent: instructions, a model, tools, and a loop in which the model decides what to do.
///
/// Build it once, run it many times (concurrently, too: runs only borrow the agent). Each run
/// calls the model; if the model asks for tools, the calls run concurrently, their results go
/// back to the model, and so on until the model answers without calling a tool or the run
/// reaches [`max_turns`](Agent::max_turns).
///
/// Building never fails: a misconfiguration (an unknown model string, two tools with one name)
/// is kept and returned as a [`ConfigError`] by [`check`](Agent::check) and by every run,
/// before any model call.
///
/// ```
/// use loomflow::prelude::*;
/// use serde_json::json;
///
/// /// Look up the status of an order.
/// #[tool(read_only)]
/// async fn order_status(
///     /// The order number, e.g. "A-1001".
///     order: String,
/// ) -> Result<String, ToolError> {
///     match order.as_str() {
///         "A-1001" => Ok("shipped".into()),
///         other => Err(ToolError::new(format!("no order `{other}`"))),
///     }
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let model = ScriptedModel::new([
///     ScriptedTurn::tool_call("order_status", json!({"order": "A-1001"})),
///     ScriptedTurn::text("Your order has shipped."),
/// ]);
/// let agent = Agent::new("You track orders.").model(model).tool(OrderStatusTool);
/// let result = agent.run("Where is A-1001?").user("alice").session("s1").await?;
/// assert_eq!(result.output, "Your order has shipped.");
/// assert_eq!((result.turns, result.tool_calls), (2, 1));
/// # Ok::<(), loomflow::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Agent<O = String> {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) description: Option<Arc<str>>,
    pub(crate) instructions: Arc<str>,
    pub(crate) model: Option<Arc<dyn Model>>,
    pub(crate) tools: ToolSet,
    pub(crate) settings: ModelSettings,
    pub(crate) max_turns: u32,
    pub(crate) history_limit: Option<usize>,
    pub(crate) compaction: Option<Compaction>,
    pub(crate) sessions: Sessions,
    pub(crate) extensions: Extensions,
    pub(crate) emitter: Emitter,
    pub(crate) config_error: Option<ConfigError>,
    pub(crate) output: OutputSpec<O>,
    pub(crate) retry: RetryPolicy,
    pub(crate) fallbacks: Vec<Arc<dyn Model>>,
    pub(crate) journal: Option<Arc<dyn Journal>>,
    pub(crate) lease_ttl: Duration,
    /// The loop; `None` for ReAct (called directly).
    pub(crate) architecture: Option<Arc<dyn Architecture>>,
    /// What the agent recalls before a run and keeps after it.
    pub(crate) memory: Option<Arc<AgentMemory>>,
    /// How many tools are shown to the model, when it has many.
    #[cfg(feature = "tools")]
    pub(crate) tool_search: Option<Arc<crate::tools::search::ToolSearch>>,
    /// Tools that change while the agent lives (an MCP server's), merged into each run's.
    pub(crate) tool_sources: Vec<Arc<dyn ToolSource>>,
    pub(crate) governance: Option<Arc<crate::governance::Governance>>,
    /// The agent's tools merged with its sources', as of their last change.
    pub(crate) dynamic: Arc<std::sync::Mutex<Option<Arc<DynamicTools>>>>,
    /// What every run of this configuration shares (system prompt, tool list, response
    /// format), computed at the first run; every builder method resets it.
    prepared: OnceLock<Prepared>,
}

impl<O> Clone for Agent<O> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            description: self.description.clone(),
            instructions: Arc::clone(&self.instructions),
            model: self.model.clone(),
            tools: self.tools.clone(),
            settings: self.settings.clone(),
            max_turns: self.max_turns,
            history_limit: self.history_limit,
            compaction: self.compaction.clone(),
            sessions: self.sessions.clone(),
            extensions: self.extensions.clone(),
            emitter: self.emitter.clone(),
            config_error: self.config_error.clone(),
            output: self.output.clone(),
            retry: self.retry,
            fallbacks: self.fallbacks.clone(),
            journal: self.journal.clone(),
            lease_ttl: self.lease_ttl,
            architecture: self.architecture.clone(),
            memory: self.memory.clone(),
            #[cfg(feature = "tools")]
            tool_search: self.tool_search.clone(),
            tool_sources: self.tool_sources.clone(),
            governance: self.governance.clone(),
            dynamic: Arc::clone(&self.dynamic),
            prepared: self.prepared.clone(),
        }
    }
}

impl<O> fmt::Debug for Agent<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("model", &self.model.as_ref().map(|m| m.name()))
            .field("tools", &self.tools)
            .field("max_turns", &self.max_turns)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl Agent<String> {
    /// An agent with these instructions (its system prompt). It answers in text; set a model
    /// with [`model`](Agent::model) before running it.
    pub fn new(instructions: impl Into<Arc<str>>) -> Self {
        Self {
            name: None,
            description: None,
            instructions: instructions.into(),
            model: None,
            tools: ToolSet::new(),
            settings: ModelSettings::default(),
            max_turns: DEFAULT_MAX_TURNS,
            history_limit: None,
            compaction: None,
            sessions: Sessions::in_memory(),
            extensions: Extensions::new(),
            emitter: Emitter::default(),
            config_error: None,
            output: OutputSpec::text(),
            retry: RetryPolicy::default(),
            fallbacks: Vec::new(),
            journal: None,
            lease_ttl: DEFAULT_LEASE,
            architecture: None,
            memory: None,
            #[cfg(feature = "tools")]
            tool_search: None,
            tool_sources: Vec::new(),
            governance: None,
            dynamic: Arc::default(),
            prepared: OnceLock::new(),
        }
    }
}

impl<O> Agent<O> {
    fn fail(&mut self, error: ConfigError) {
        // Keep the first problem: later ones are often consequences of it.
        self.config_error.get_or_insert(error);
    }

    /// Forgets what was prepared for runs, after a change to the configuration.
    pub(crate) fn changed(mut self) -> Self {
        self.prepared = OnceLock::new();
        self.dynamic = Arc::default();
        self
    }

    pub(crate) fn prepared(&self) -> &Prepared {
        self.prepared.get_or_init(|| Prepared::new(self))
    }

    /// The agent's tools merged with its tool sources' current ones, and what runs with them
    /// share; `None` when the agent has no tool sources (its tools never change).
    /// Whether tools come from tool sources as well as the agent's own.
    pub(crate) fn has_tool_sources(&self) -> bool {
        !self.tool_sources.is_empty()
    }

    pub(crate) fn dynamic_tools(&self) -> Option<Arc<DynamicTools>> {
        if self.tool_sources.is_empty() {
            return None;
        }
        let generation = self.tool_sources.iter().map(|s| s.generation()).fold(0, u64::wrapping_add);
        let mut slot = self.dynamic.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = slot.as_ref()
            && d.generation == generation
        {
            return Some(Arc::clone(d));
        }
        let mut tools = self.tools.clone();
        for source in &self.tool_sources {
            for tool in source.tools() {
                // The agent's own tools win a name clash.
                if let Err(e) = tools.insert_arc(tool) {
                    tracing::warn!(agent = ?self.name, "a tool of a tool source is left out: {e}");
                }
            }
        }
        let dynamic = Arc::new(DynamicTools { generation, prepared: Prepared::with_tools(self, &tools), tools });
        *slot = Some(Arc::clone(&dynamic));
        Some(dynamic)
    }

    /// Asks for a typed output: the run's output becomes a `T`, parsed from the model's answer,
    /// validated, and asked for again with feedback when the model gets it wrong.
    ///
    /// ```
    /// use loomflow::prelude::*;
    ///
    /// #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    /// struct Weather { city: String, temp_c: f64 }
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// # rt.block_on(async {
    /// let model = ScriptedModel::new([ScriptedTurn::text(r#"{"city": "Tokyo", "temp_c": 22}"#)]);
    /// let agent = Agent::new("Extract the weather.").model(model).output::<Weather>();
    /// let weather: Weather = agent.run("Tokyo: sunny, 22C").await?.output;
    /// assert_eq!((weather.city.as_str(), weather.temp_c), ("Tokyo", 22.0));
    /// # Ok::<(), loomflow::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn output<T: OutputType>(self) -> Agent<T> {
        let output = OutputSpec::typed(self.output.mode, self.output.retries);
        Agent {
            name: self.name,
            description: self.description,
            instructions: self.instructions,
            model: self.model,
            tools: self.tools,
            settings: self.settings,
            max_turns: self.max_turns,
            history_limit: self.history_limit,
            compaction: self.compaction.clone(),
            sessions: self.sessions,
            extensions: self.extensions,
            emitter: self.emitter,
            config_error: self.config_error,
            output,
            retry: self.retry,
            fallbacks: self.fallbacks,
            journal: self.journal,
            lease_ttl: self.lease_ttl,
            architecture: self.architecture,
            memory: self.memory,
            #[cfg(feature = "tools")]
            tool_search: self.tool_search,
            tool_sources: self.tool_sources,
            governance: self.governance,
            dynamic: Arc::default(),
            prepared: OnceLock::new(),
        }
    }

    /// How the model is asked for a typed output (default [`OutputMode::Auto`]).
    #[must_use]
    pub fn output_mode(mut self, mode: OutputMode) -> Self {
        self.output.mode = mode;
        self.changed()
    }

    /// How many times the model may correct an answer that did not parse or validate
    /// (default [`DEFAULT_OUTPUT_RETRIES`](crate::output::DEFAULT_OUTPUT_RETRIES); `0` fails at the first bad answer).
    #[must_use]
    pub fn output_retries(mut self, retries: u32) -> Self {
        self.output.retries = retries;
        self
    }

    /// Adds a check of the parsed output; an `Err` goes back to the model, which answers
    /// again (within the output retries).
    #[must_use]
    pub fn validator(mut self, check: impl Fn(&O) -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.output.add_validator(Arc::new(check));
        self
    }

    /// Checks every parsed output with its [`Validate`] implementation.
    #[must_use]
    pub fn validated(self) -> Self
    where
        O: Validate + 'static,
    {
        self.validator(O::validate)
    }

    /// Sets the model: a model string (`"echo"`, or a provider model such as `"gpt-4.1-mini"`
    /// with its feature enabled), or any [`Model`] value.
    #[must_use]
    pub fn model(mut self, model: impl IntoModel) -> Self {
        match model.into_model() {
            Ok(m) => self.model = Some(m),
            Err(e) => self.fail(e),
        }
        self.changed()
    }

    /// How failed model calls are retried (default: [`RetryPolicy::default`], 3 attempts with
    /// exponential backoff and jitter, transient errors only).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A model to fail over to when the model (after its retries) fails with a transient
    /// error; several fallbacks are tried in the order they were added. A
    /// [`ModelFallback`](crate::EventKind::ModelFallback) event reports each switch.
    #[must_use]
    pub fn fallback(mut self, model: impl IntoModel) -> Self {
        match model.into_model() {
            Ok(m) => self.fallbacks.push(m),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Sets the loop (default [`ReAct`](crate::arch::ReAct)): a name (`"self-refine"`,
    /// `"reflexion"`, `"plan-and-execute"`, `"rewoo"`, `"tree-of-thoughts"`, `"react"`) or an
    /// architecture value (the multi-agent ones, and any with settings of its own). An unknown
    /// name, or an architecture that is misconfigured, is a [`ConfigError`] before any model
    /// call. See [`arch`](crate::arch).
    #[must_use]
    pub fn architecture(mut self, architecture: impl IntoArchitecture) -> Self {
        match architecture.into_architecture() {
            Ok(a) => self.architecture = Some(a),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Wraps the agent's loop in a goal loop: the loop runs again, told what is missing,
    /// until the goal is met or a bound is reached (see [`RunUntil`](crate::arch::RunUntil));
    /// the run's [`exit`](RunResult::exit) says how it ended.
    ///
    /// ```
    /// use loomflow::arch::{LoopExit, RunUntil};
    /// use loomflow::prelude::*;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let model = ScriptedModel::new([ScriptedTurn::text("draft"), ScriptedTurn::text("DONE: final")]);
    /// let agent = Agent::new("Work until done.")
    ///     .model(model)
    ///     .run_until(RunUntil::when(|answer| answer.starts_with("DONE")).max_iterations(3));
    /// let result = agent.run("Go.").await?;
    /// assert_eq!((result.output.as_str(), result.exit), ("DONE: final", Some(LoopExit::ConditionMet)));
    /// # Ok::<(), loomflow::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn run_until(mut self, until: crate::arch::RunUntil) -> Self {
        let until = match self.architecture.take() {
            Some(base) => until.base_shared(base),
            None => until,
        };
        self.architecture = Some(Arc::new(until));
        self.changed()
    }

    /// The loop's name (`react` by default).
    pub fn architecture_name(&self) -> &str {
        self.architecture.as_deref().map_or("react", Architecture::name)
    }

    /// Names the agent (in events, spans and workflow graphs).
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The agent with other instructions.
    pub(crate) fn replace_instructions(mut self, instructions: impl Into<Arc<str>>) -> Self {
        self.instructions = instructions.into();
        self.changed()
    }

    /// Gives the agent a memory: before each run it recalls the user's working blocks, the
    /// facts that bear on the input and the most relevant episodes into its system prompt;
    /// after each run it keeps the turn. A [`Memory`](crate::memory::Memory) with the defaults,
    /// or an [`AgentMemory`] with settings of its own.
    ///
    /// ```
    /// use loomflow::memory::Memory;
    /// use loomflow::prelude::*;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let memory = Memory::in_memory();
    /// let model = ScriptedModel::new([ScriptedTurn::text("Noted: trains."), ScriptedTurn::text("By train, as you like.")]);
    /// let agent = Agent::new("You plan trips.").model(model.clone()).memory(memory.clone());
    /// agent.run("I always travel by train").user("ann").session("s1").await?;
    /// // Another session: the agent recalls the earlier turn.
    /// agent.run("How should I travel to Bergen? train?").user("ann").session("s2").await?;
    /// assert!(model.requests()[1].messages[0].text().contains("I always travel by train"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn memory(mut self, memory: impl Into<AgentMemory>) -> Self {
        self.memory = Some(Arc::new(memory.into()));
        self.changed()
    }

    /// Seats the agent on a shared workspace as `member`: it gets the member's note tools and,
    /// after its instructions, the section of the prompt that names its teammates (see
    /// [`workspace`](crate::workspace)). An invalid member name is a [`ConfigError`].
    #[cfg(feature = "workspace")]
    #[must_use]
    pub fn workspace(self, member: &crate::workspace::Member) -> Self {
        member.join(self)
    }

    /// Says what the agent is for, in a line: how a supervisor, a router or a swarm's peers
    /// are shown it when it is one of their team.
    #[must_use]
    pub fn description(mut self, description: impl Into<Arc<str>>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a tool: the value a `#[tool]` generates (`AddTool` for `fn add`), or any [`Tool`].
    #[must_use]
    pub fn tool(mut self, tool: impl Tool) -> Self {
        if let Err(e) = self.tools.insert(tool) {
            self.fail(e);
        }
        self.changed()
    }

    /// Adds shared tools.
    #[must_use]
    pub fn tools(mut self, tools: impl IntoIterator<Item = Arc<dyn Tool>>) -> Self {
        for tool in tools {
            if let Err(e) = self.tools.insert_arc(tool) {
                self.fail(e);
            }
        }
        self.changed()
    }

    /// Replaces the tool set.
    #[must_use]
    pub fn tool_set(mut self, tools: ToolSet) -> Self {
        self.tools = tools;
        self.changed()
    }

    /// Adds tools that may change while the agent lives: each run offers the source's tools
    /// as they are when it starts ([`ToolSource`]). An agent's own tool wins a name clash.
    #[must_use]
    pub fn tool_source(mut self, source: impl ToolSource) -> Self {
        self.tool_sources.push(Arc::new(source));
        self.changed()
    }

    /// Gives the agent the tools of MCP servers ([`McpServers`](crate::mcp::McpServers)):
    /// every run offers their tools as they are when it starts, so a server that changes its
    /// tool list is seen by the next run.
    #[cfg(feature = "mcp")]
    #[must_use]
    pub fn mcp(self, servers: &crate::mcp::McpServers) -> Self {
        self.tool_source(servers.clone())
    }

    /// The most model calls one run may make (default [`DEFAULT_MAX_TURNS`]); a run that
    /// reaches it fails with [`RunError::MaxTurnsExceeded`](crate::RunError::MaxTurnsExceeded).
    #[must_use]
    pub fn max_turns(mut self, max_turns: u32) -> Self {
        if max_turns == 0 {
            self.fail(ConfigError::InvalidSetting { setting: "max_turns", reason: "must be at least 1".to_owned() });
        }
        self.max_turns = max_turns;
        self
    }

    /// Sends at most the last `messages` messages of a session's history to the model
    /// (cut at a user message). By default the whole history is sent.
    #[must_use]
    pub fn history_limit(mut self, messages: usize) -> Self {
        self.history_limit = Some(messages);
        self
    }

    /// Keeps what the model is sent within a token budget, however long the session and the
    /// run grow: older tool results cut, then the oldest exchanges dropped (see
    /// [`Compaction`]). The session and the journal keep everything.
    #[must_use]
    pub fn compaction(mut self, compaction: Compaction) -> Self {
        if compaction.max_tokens == 0 {
            self.fail(ConfigError::InvalidSetting {
                setting: "compaction",
                reason: "max_tokens must be at least 1".to_owned(),
            });
        }
        self.compaction = Some(compaction);
        self.changed()
    }

    /// Where sessions are kept (default: a store in memory, private to this agent and its
    /// clones). Share one store between agents to share conversations.
    #[must_use]
    pub fn sessions(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Sessions::dynamic(store);
        self
    }

    /// Keeps sessions and run journals in `store` (SQLite, PostgreSQL, or in memory).
    ///
    /// Every run with a session is then journaled: each model answer and tool result is
    /// written before the run goes on, so a run that crashed can be finished by another
    /// process with [`resume`](Agent::resume) without repeating the finished steps.
    #[must_use]
    pub fn store<S: SessionStore + Journal>(mut self, store: Arc<S>) -> Self {
        self.sessions = Sessions::of(Arc::clone(&store));
        self.journal = Some(store);
        self
    }

    /// [`store`](Agent::store) for a store known only by its traits (a config file's).
    #[cfg(feature = "config")]
    pub(crate) fn store_dyn(mut self, sessions: Arc<dyn SessionStore>, journal: Arc<dyn Journal>) -> Self {
        self.sessions = Sessions::dynamic(sessions);
        self.journal = Some(journal);
        self
    }

    /// How long a journaled run's lease lasts (default [`DEFAULT_LEASE`]). A running run
    /// renews it every third of that time, so a step may take as long as it needs; a worker
    /// that dies stops renewing, and after the lease another worker may resume the run. At
    /// least a millisecond: a zero lease would let two workers run one run at once.
    #[must_use]
    pub fn lease(mut self, ttl: Duration) -> Self {
        if let Err(e) = check_lease(ttl) {
            self.fail(e);
        }
        self.lease_ttl = ttl;
        self
    }

    /// Gives tools shared state of type `T`, read with [`State<T>`](crate::State).
    #[must_use]
    pub fn state<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// Gives tools shared state of type `T` that the caller keeps a handle to (counters,
    /// caches, connections it also uses).
    #[must_use]
    pub fn state_arc<T: std::any::Any + Send + Sync>(mut self, value: Arc<T>) -> Self {
        self.extensions.insert_arc(value);
        self
    }

    /// Sends the events of every run of this agent to `listener`.
    #[must_use]
    pub fn on_event(mut self, listener: impl EventListener) -> Self {
        self.emitter.add(Arc::new(listener));
        self
    }

    /// Sets the sampling temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.settings.temperature = Some(temperature);
        self
    }

    /// Sets the most tokens one reply may have.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.settings.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the reasoning effort for models that reason.
    #[must_use]
    pub fn effort(mut self, effort: Effort) -> Self {
        self.settings.effort = Some(effort);
        self
    }

    /// Marks the stable prefix (instructions, tools) for the provider's prompt cache.
    #[must_use]
    pub fn prompt_caching(mut self, enabled: bool) -> Self {
        self.settings.prompt_caching = enabled;
        self
    }

    /// Replaces all model settings.
    #[must_use]
    pub fn settings(mut self, settings: ModelSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Governs the agent's runs, and the runs nested in them: budgets, rate limits,
    /// permissions, approvals and guardrails ([`governance`](crate::governance)). A nested
    /// agent with a governance of its own is governed by its own.
    pub fn governance(mut self, governance: impl Into<Arc<crate::governance::Governance>>) -> Self {
        self.governance = Some(governance.into());
        self
    }

    /// Checks the configuration: the first misconfiguration found while building, or a
    /// missing model.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(e) = &self.config_error {
            return Err(e.clone());
        }
        if self.model.is_none() {
            return Err(ConfigError::NoModel { agent: self.name.as_deref().map(str::to_owned) });
        }
        if let Some(a) = &self.architecture {
            a.check()?;
        }
        if let Some(g) = &self.governance {
            g.check()?;
        }
        #[cfg(feature = "tools")]
        if let Some(search) = &self.tool_search {
            search.check(&self.tools)?;
        }
        if self.output.is_typed()
            && self.prepared().mode == OutputMode::Tool
            && self.tools.get(crate::output::FINAL_ANSWER_TOOL).is_some()
        {
            return Err(ConfigError::DuplicateTool { name: crate::output::FINAL_ANSWER_TOOL.to_owned() });
        }
        Ok(())
    }

    /// The agent's name, if it has one.
    pub fn agent_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What the agent is for, if it says.
    pub fn agent_description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The instructions.
    pub fn instructions(&self) -> &str {
        &self.instructions
    }

    /// The model, if one is set.
    pub fn model_ref(&self) -> Option<&Arc<dyn Model>> {
        self.model.as_ref()
    }

    /// The tools.
    pub fn tool_set_ref(&self) -> &ToolSet {
        &self.tools
    }

    /// The session store.
    pub fn session_store(&self) -> &Arc<dyn SessionStore> {
        self.sessions.store()
    }

    /// Runs the agent on `input`. Set the user, session and metadata on the returned builder,
    /// then `.await` it for the [`RunResult`], or call
    /// [`stream`](crate::RunBuilder::stream) for the events as they happen.
    pub fn run(&self, input: impl Into<crate::model::Content>) -> RunBuilder<'_, Self>
    where
        O: Send + Sync + 'static,
    {
        RunBuilder::new(self, AgentInput::Message(input.into()))
    }

    /// Resumes the journaled run `run` (set its user and session on the builder): recorded
    /// model answers and tool results are replayed, the run goes on from the first step that
    /// did not finish. A finished run is replayed whole, without a model call.
    pub fn resume(&self, run: RunId) -> RunBuilder<'_, Self>
    where
        O: Send + Sync + 'static,
    {
        RunBuilder::new(self, AgentInput::resume(run))
    }

    /// Resumes the session's latest unfinished run (set its user and session on the builder),
    /// as [`Workflow::resume_latest`](crate::workflow::Workflow::resume_latest) does for a
    /// workflow.
    pub fn resume_latest(&self) -> RunBuilder<'_, Self>
    where
        O: Send + Sync + 'static,
    {
        RunBuilder::new(self, AgentInput::resume_latest())
    }

    /// Resumes as [`AgentInput`] says (the latest unfinished run, decisions for interrupted
    /// tool calls).
    pub fn resume_with(&self, input: AgentInput) -> RunBuilder<'_, Self>
    where
        O: Send + Sync + 'static,
    {
        RunBuilder::new(self, input)
    }

    /// The checkpoints of `session`: the end of every turn of every journaled run.
    pub async fn checkpoints(&self, user: &UserId, session: &SessionId) -> Result<Vec<Checkpoint>, crate::Error> {
        Ok(self.journal()?.checkpoints(user, session).await?)
    }

    /// A new run that starts from `checkpoint`: the run's journal up to the checkpoint is
    /// copied to a new run in session `into`; resume that run to go on from there. With
    /// `into` the checkpoint's own session, this goes back in time; with another session, it
    /// forks the conversation (the history before the run is copied too).
    pub async fn branch(
        &self,
        user: &UserId,
        session: &SessionId,
        checkpoint: &Checkpoint,
        into: &SessionId,
    ) -> Result<RunId, crate::Error> {
        let journal = self.journal()?;
        let from = RunKey::new(user.clone(), session.clone(), checkpoint.run);
        let records: Vec<_> = journal.records(&from).await?.into_iter().filter(|r| r.seq <= checkpoint.seq).collect();
        let read = crate::session::decode_records(records.iter().cloned())?;
        // The session up to where the run's window of history ended.
        let history = match read.entries.first() {
            Some((_, JournalEntry::RunStarted { history, window_start, .. })) => {
                window_start.unwrap_or(0).saturating_add(*history)
            }
            _ => {
                return Err(crate::RunError::NotResumable {
                    run_id: checkpoint.run,
                    reason: "its journal has no start".to_owned(),
                }
                .into());
            }
        };
        if into != session {
            let mut messages = self.sessions.store().load(user, session, None).await?;
            messages.truncate(history);
            self.sessions.store().append(user, into, RunId::generate(), &messages).await?;
        }
        let run = RunId::generate();
        journal.import(&RunKey::new(user.clone(), into.clone(), run), RunStatus::Running, records).await?;
        Ok(run)
    }

    fn journal(&self) -> Result<&Arc<dyn Journal>, ConfigError> {
        self.journal.as_ref().ok_or_else(|| ConfigError::InvalidSetting {
            setting: "store",
            reason: "the agent has no journal; give it one with `.store(..)`".to_owned(),
        })
    }
}
#[cfg(test)]
mod tests {
    /// The run's future is boxed once per run: under a kilobyte, the allocator serves it from
    /// its small bins (a larger one costs a consolidation of its free lists on every run).
    #[test]
    fn an_agent_runs_future_stays_under_a_kilobyte() -> Result<(), crate::id::IdError> {
        let agent = super::Agent::new("x").model("echo");
        let ctx = crate::context::RunContext::new(crate::id::UserId::new("u")?);
        let run = super::run_future(&agent, super::AgentInput::Message("hi".into()), ctx);
        let size = std::mem::size_of_val(&run);
        assert!(size < 1000, "an agent run's future is {size} bytes");
        Ok(())
    }
}
