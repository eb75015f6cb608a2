//! The typed shape of a config file: what each key means, its type and its default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::Effort;

/// One agent, as a config file declares it. Only `instructions` is required; the smallest file
/// is two lines:
///
/// ```toml
/// instructions = "You are a helpful assistant."
/// model = "echo"
/// ```
///
/// Strings marked *secret-aware* may hold `${NAME}` references, resolved through the
/// [`Secrets`](crate::governance::Secrets) of the [`Registry`](super::Registry) when the agent
/// is built (`$${` is a literal `${`); the config itself keeps the reference, never the value,
/// and every value resolved this way is redacted from the agent's events, journal and audit
/// log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The agent's name (in events, spans, the audit log and as a workflow node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the agent is for, as a tool or a team member describes it to a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The system prompt.
    pub instructions: String,
    /// A model string: `"echo"` (offline), `"gpt-4.1-mini"`, `"claude-sonnet-4-5"`,
    /// `"ollama/llama3.2"`, `"openai-compatible:<base_url>/<model>"`, ... Provider keys are
    /// read through the registry's secrets. Without one the agent has no model: give it one
    /// (`Agent::model`) before it runs, or the run fails with `ConfigError::NoModel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Models tried in order when the model fails with a transient error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<String>,
    /// How hard a reasoning model thinks: `minimal`, `low`, `medium`, `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<Effort>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The most tokens one model reply may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The most model turns a run may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// The most earlier messages of a session sent with each turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_limit: Option<usize>,
    /// Cache the stable prefix of every request (instructions, tools) where the provider can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_caching: Option<bool>,
    /// The loop: a name (`"react"`, `"reflexion"`, ...) or a table with `name` and the
    /// architecture's parameters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::de::architecture")]
    #[schemars(schema_with = "super::de::architecture_schema")]
    pub architecture: Option<ArchitectureConfig>,
    /// Tools by name, from the registry the program provides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Where sessions and run journals live (conversation continuity, durable runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<StoreConfig>,
    /// Long-term memory: episodes recalled into the prompt, facts, working blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<StoreConfig>,
    /// Skill folders (`SKILL.md` packages), relative to the config file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<SkillsConfig>,
    /// MCP servers whose tools the agent gets.
    #[cfg(feature = "mcp")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp: Vec<crate::mcp::McpServerConfig>,
    /// Token, cost, call and time limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetConfig>,
    /// Model calls a second, per user and per model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    /// Which tools run, which ask, which are denied: a mode name or a table.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::de::permissions")]
    #[schemars(schema_with = "super::de::permissions_schema")]
    pub permissions: Option<PermissionsConfig>,
    /// The tamper-evident audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<AuditLogConfig>,
    /// OpenTelemetry export. Read by the program (`loom` installs it); building the agent
    /// installs nothing global.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryConfig>,
}

/// An architecture: its name and parameters. In a file, `architecture = "reflexion"` or
/// `[architecture]` with `name = "reflexion"` and the parameters below; a parameter left out
/// keeps the architecture's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ArchitectureConfig {
    /// Reason and act: model turns with tool calls until an answer.
    #[serde(alias = "re-act")]
    React {
        /// The most model turns.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_turns: Option<u32>,
    },
    /// Draft, critique, revise.
    SelfRefine {
        /// The most critique-and-revise rounds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_rounds: Option<u32>,
        /// The critic's phrase for "good enough".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_phrase: Option<String>,
    },
    /// Attempt, evaluate, reflect, retry with the lessons learnt.
    Reflexion {
        /// The most attempts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_attempts: Option<u32>,
        /// The evaluation score (0 to 1) that ends the run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
        /// How many earlier lessons are recalled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        top_k_lessons: Option<usize>,
    },
    /// Plan the steps, execute each, replan when a step fails.
    PlanAndExecute {
        /// The most steps in a plan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_steps: Option<usize>,
        /// The most replans.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_replans: Option<u32>,
        /// The most model turns per step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        executor_turns: Option<u32>,
    },
    /// Plan every tool call up front, run them, then answer.
    Rewoo {
        /// The most planned steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_steps: Option<usize>,
        /// Run the independent steps of a level at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parallel_levels: Option<bool>,
    },
    /// Branch, score and search over partial solutions.
    TreeOfThoughts {
        /// Thoughts proposed per node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch_factor: Option<usize>,
        /// The deepest level searched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_depth: Option<u32>,
        /// Thoughts kept per level.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beam_width: Option<usize>,
        /// The score (0 to 1) at which a thought counts as a solution.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        solved_threshold: Option<f64>,
    },
}

/// Where a store lives: `backend` and what that backend needs. `url` and `path` are
/// secret-aware; `path` is relative to the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum StoreConfig {
    /// In this process, bounded (gone when it ends).
    #[serde(alias = "memory")]
    InMemory {
        /// The most users kept (least recently used first out).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_users: Option<usize>,
        /// Seconds a user's data stays after their last use.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idle_ttl_secs: Option<u64>,
    },
    /// One SQLite file (the embedded default).
    Sqlite {
        /// The database file.
        path: String,
    },
    /// PostgreSQL (feature `postgres`), for many worker processes.
    Postgres {
        /// `postgres://user:password@host/db`.
        url: String,
    },
    /// Redis (feature `redis`; memory only).
    Redis {
        /// `redis://host:port`.
        url: String,
    },
    /// A Chroma server (feature `chroma`; memory only).
    Chroma {
        /// `http://host:port`.
        url: String,
    },
}

/// A folder of skills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SkillsConfig {
    /// The folder, relative to the config file.
    pub path: PathBuf,
    /// `builtin`, `user` or `project` (the default): a later layer overrides a skill of the
    /// same name in an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<SkillLayerName>,
}

/// A skill layer's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkillLayerName {
    /// Skills that ship with the application.
    Builtin,
    /// The user's own skills.
    User,
    /// The project's skills.
    Project,
}

/// Limits of one scope: a run, a user or everyone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Input and output tokens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// Cost in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Model calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_calls: Option<u64>,
    /// Tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<u64>,
}

/// Budgets: limits per run, per user and for everyone, checked before each model and tool
/// call and enforced after.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BudgetConfig {
    /// The limits of one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_run: Option<LimitsConfig>,
    /// The limits of each user, over the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<LimitsConfig>,
    /// The limits of everyone together, over the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<LimitsConfig>,
    /// Seconds one run may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_time_secs: Option<f64>,
    /// The share of a limit (0 to 1) at which a warning event is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_at: Option<f64>,
    /// Seconds after which per-user and global usage starts again from zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_secs: Option<u64>,
}

/// A token bucket: `rate` calls a second on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BucketConfig {
    /// Calls a second.
    pub rate: f64,
    /// The most calls at once.
    pub burst: u32,
}

/// Rate limits on model calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Each user's bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<BucketConfig>,
    /// Each model's bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_model: Option<BucketConfig>,
    /// `throttle` (wait for room, the default) or `reject` (end the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RateModeName>,
    /// Seconds a throttled call may wait before it is rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_secs: Option<f64>,
}

/// What a rate limit does with a call that comes too soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RateModeName {
    /// Wait for room.
    Throttle,
    /// End the run.
    Reject,
}

/// Permissions: a mode name (`permissions = "accept_edits"`) or a table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PermissionsConfig {
    /// `default` (destructive tools ask), `accept_edits` (edit tools run too) or `bypass`
    /// (everything not denied runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::governance::Mode>,
    /// When given, only these tools may run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// These tools never run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// The tools `accept_edits` lets run (`write`, `edit` unless set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edit_tools: Vec<String>,
    /// A call that asks pauses the run, journaled, until a decision arrives (from `loom
    /// serve`'s approvals API, or `AgentInput::approve`); needs `[sessions]` (sqlite or
    /// postgres for a decision made in another process). Without it, a call
    /// that asks is denied unless the program gives an approval handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_approvals: Option<bool>,
    /// Seconds an in-process approval handler may take before the call is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_secs: Option<f64>,
}

/// The audit log: where it is written, with which key, and how payloads are redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditLogConfig {
    /// `file` (JSONL, one entry a line), `sqlite` or `postgres` (feature `postgres`).
    pub backend: AuditBackendName,
    /// The file, for `file` and `sqlite`, relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `postgres://user:password@host/db` (secret-aware), for `postgres`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The HMAC key (secret-aware, and meant to be a reference: `"${LOOM_AUDIT_KEY}"`), at
    /// least 32 bytes.
    pub key: String,
    /// `truncate` (the default), `hash` or `full`: what is kept of prompts and answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionName>,
    /// Characters kept by `truncate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
}

/// The audit log's backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditBackendName {
    /// A JSONL file.
    File,
    /// A SQLite database.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// What the audit log keeps of prompts and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RedactionName {
    /// The first characters.
    Truncate,
    /// A SHA-256 of the text.
    Hash,
    /// Everything.
    Full,
}

/// OpenTelemetry export over OTLP/HTTP (feature `otel`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// The collector, `http://127.0.0.1:4318` (secret-aware); the `OTEL_EXPORTER_OTLP_*`
    /// variables when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `service.name` of the spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Put message contents in the spans (off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_content: Option<bool>,
    /// Export metrics too (on by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<bool>,
    /// Headers sent to the collector (secret-aware values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// A workflow file: named agents and the graph between them.
///
/// ```toml
/// [agents.draft]
/// instructions = "Write a first draft."
/// model = "echo"
///
/// [agents.review]
/// instructions = "Answer `approved` or `revise`."
/// model = "echo"
///
/// [workflow]
/// start = "draft"
/// edges = [{ from = "draft", to = "review" }]
/// routes = [{ from = "review", to = { revise = "draft" }, default = "publish" }]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WorkflowFile {
    /// The agents, by name; each is a node of the workflow.
    pub agents: BTreeMap<String, AgentConfig>,
    /// How the agents are wired.
    pub workflow: WorkflowConfig,
}

/// The graph of a workflow file: a `chain`, or a `start` with `edges`, `routes` and
/// `fan_out`s. Every node is an agent of the file, by name; each takes the previous node's
/// answer as its input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WorkflowConfig {
    /// The workflow's name (the file's stem when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Agents run one after another, each on the previous answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// The first node of an explicit graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// `to` runs after `from`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<EdgeConfig>,
    /// After `from`, its answer picks the next node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    /// After `from`, branches run at once and `join` gets their answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fan_out: Vec<FanOutConfig>,
    /// How often one node may run in a run: the bound a graph with a cycle needs (without
    /// a cycle, 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_visits: Option<u32>,
    /// The most node runs in a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
}

/// An edge of a workflow graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EdgeConfig {
    /// The node before.
    pub from: String,
    /// The node after.
    pub to: String,
}

/// A route: the answer of `from`, trimmed, lower-cased and without a trailing `.` or `!`, names the
/// label whose node runs next; `default` runs for any other answer, and without it, an
/// unknown answer ends the workflow with an error. A label may name `end` to finish with the
/// answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteConfig {
    /// The node whose answer routes.
    pub from: String,
    /// Label → node.
    pub to: BTreeMap<String, String>,
    /// The node for any other answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A fan-out: after `from`, every branch runs on its answer at once; `join` gets the branches'
/// answers, each under a heading naming its branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FanOutConfig {
    /// The node before.
    pub from: String,
    /// The branches.
    pub branches: Vec<String>,
    /// The node that gets every branch's answer.
    pub join: String,
}
