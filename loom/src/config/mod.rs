//! Agents and workflows from TOML files (feature `config`, on by default).
//!
//! The smallest agent file is two lines:
//!
//! ```toml
//! instructions = "You are a helpful assistant."
//! model = "echo"
//! ```
//!
//! and [`Agent::from_toml`] turns it into an [`Agent`]. Everything else an agent can be given
//! has a key: `model` and `fallback`, `effort`, `temperature`, `max_tokens`, `max_turns`,
//! `history_limit`, `prompt_caching`, `architecture` (a name, or a table with its parameters),
//! `tools` (names the program registers in a [`Registry`]), `sessions` and `memory` (a
//! backend), `skills`, `mcp` servers, `budget`, `rate_limit`, `permissions`, `audit_log` and
//! `telemetry`. [`AgentConfig`] documents each key; the JSON Schema of the file
//! ([`agent_schema`], shipped as `schema/agent.schema.json` in the crate) gives an editor
//! completion and checks.
//!
//! A file with a `[workflow]` table is a [`WorkflowFile`]: named agents under `[agents.NAME]`
//! and the graph between them (`chain`, or `start` with `edges`, `routes` and `fan_out`), built
//! by [`Workflow::from_toml`](crate::workflow::Workflow::from_toml).
//!
//! # Errors that point at the line
//!
//! A file is parsed into typed structs; anything off is a [`ConfigFileError`] whose `Display`
//! is what a person fixing the file needs:
//!
//! ```text
//! agent.toml:3:1: unknown key `max_turn` at the top level (did you mean `max_turns`?)
//!   |
//! 3 | max_turn = 3
//!   | ^^^^^^^^
//!   = expected one of: name, description, instructions, model, ...
//! ```
//!
//! A wrong type names the key and what it wanted (`wrong type for `max_turns`: expected u32,
//! found a string`); a tool, model or agent that does not exist names the key and offers the
//! closest that does.
//!
//! # Secrets
//!
//! `${NAME}` in a secret-aware string (model strings, URLs, paths, keys, headers) is read
//! through the registry's [`Secrets`](crate::governance::Secrets) — the environment unless the
//! program gives another — when the agent is built. The config keeps the reference, never the
//! value, and every value read this way is redacted from the agent's events, journal and audit
//! log.
//!
//! ```
//! use loomflow::Agent;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let agent = Agent::from_toml_str(
//!     r#"
//!     instructions = "You are a helpful assistant."
//!     model = "echo"
//!     max_turns = 4
//!     "#,
//! )
//! .await?;
//! assert_eq!(agent.run("Hello").await?.output, "Echo: Hello");
//! # Ok::<(), loomflow::Error>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod de;
mod error;
mod types;

use std::path::Path;

pub use build::Registry;
pub use error::{ConfigFileError, Location, TomlProblem};
pub use types::{
    AgentConfig, ArchitectureConfig, AuditBackendName, AuditLogConfig, BucketConfig, BudgetConfig, EdgeConfig,
    FanOutConfig, LimitsConfig, PermissionsConfig, RateLimitConfig, RateModeName, RedactionName, RouteConfig,
    SkillLayerName, SkillsConfig, StoreConfig, TelemetryConfig, WorkflowConfig, WorkflowFile,
};

use crate::agent::Agent;
use crate::error::Error;
use crate::workflow::Workflow;

/// A config file's text parsed as `T`, with errors located in `text`.
fn parse<T: serde::de::DeserializeOwned>(text: &str, file: Option<&Path>) -> Result<T, Error> {
    let problem = |error: &toml::de::Error, path: Option<&serde_path_to_error::Path>| {
        Error::ConfigFile(Box::new(ConfigFileError::Toml(Box::new(TomlProblem::new(file, text, error, path)))))
    };
    let deserializer = toml::de::Deserializer::parse(text).map_err(|e| problem(&e, None))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| problem(e.inner(), Some(e.path())))
}

/// The text of `path`.
fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|source| Error::ConfigFile(Box::new(ConfigFileError::Read { path: path.to_path_buf(), source })))
}

/// Whether a config file's text is a workflow file (it has a `[workflow]` table).
///
/// The check is on the parsed document, so a `[workflow]` in a string or a comment does not
/// count; text that is not TOML is not a workflow file.
pub fn is_workflow_file(text: &str) -> bool {
    text.parse::<toml::Table>().is_ok_and(|table| table.get("workflow").is_some_and(toml::Value::is_table))
}

impl AgentConfig {
    /// Parses an agent file's text.
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        parse(text, None)
    }

    /// Reads and parses an agent file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        parse(&read(path)?, Some(path))
    }

    /// The agent as a TOML file (what [`from_toml_str`](Self::from_toml_str) reads back).
    pub fn to_toml_string(&self) -> Result<String, Error> {
        toml_string(self)
    }

    /// The OpenTelemetry exporter the file's `[telemetry]` asks for, its `${NAME}` references
    /// resolved through the registry's secrets; `None` without a `[telemetry]` table.
    /// Telemetry is process-wide: the program installs it once
    /// ([`Telemetry::init`](crate::telemetry::otel::Telemetry::init)).
    #[cfg(feature = "otel")]
    pub async fn telemetry(&self, registry: &Registry) -> Result<Option<crate::telemetry::otel::Telemetry>, Error> {
        match &self.telemetry {
            Some(config) => build::Build::new(registry, None).telemetry(config).await.map(Some),
            None => Ok(None),
        }
    }
}

impl WorkflowFile {
    /// Parses a workflow file's text.
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        parse(text, None)
    }

    /// Reads and parses a workflow file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        parse(&read(path)?, Some(path))
    }

    /// The workflow as a TOML file (what [`from_toml_str`](Self::from_toml_str) reads back).
    pub fn to_toml_string(&self) -> Result<String, Error> {
        toml_string(self)
    }
}

fn toml_string<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    toml::to_string(value).map_err(|e| {
        Error::ConfigFile(Box::new(ConfigFileError::Invalid {
            file: None,
            key: String::new(),
            message: e.to_string(),
            location: None,
        }))
    })
}

/// The JSON Schema (draft 2020-12) of an agent file, for editor completion and checks.
///
/// The crate ships it as `schema/agent.schema.json`; point an editor's TOML schema setting
/// at it (`#:schema ./agent.schema.json` on the first line of the file for Taplo).
pub fn agent_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(AgentConfig)).unwrap_or_default()
}

/// The JSON Schema (draft 2020-12) of a workflow file; shipped as `schema/workflow.schema.json`.
pub fn workflow_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(WorkflowFile)).unwrap_or_default()
}

impl Agent {
    /// The agent an agent file describes, with no tools of the program's own and secrets
    /// from the environment. Use [`from_toml_with`](Self::from_toml_with) to give it tools,
    /// named models or other secrets.
    ///
    /// Relative paths in the file (a SQLite store, skills, the audit log) are relative to
    /// the file's folder. Every error names the file, and where it can, the line and key.
    pub async fn from_toml(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_toml_with(path, &Registry::default()).await
    }

    /// The agent an agent file's text describes (see [`from_toml`](Self::from_toml)); relative
    /// paths are relative to the current folder.
    pub async fn from_toml_str(text: &str) -> Result<Self, Error> {
        Self::from_toml_str_with(text, &Registry::default()).await
    }

    /// The agent an agent file describes, its `tools` and named models taken from `registry`.
    pub async fn from_toml_with(path: impl AsRef<Path>, registry: &Registry) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = read(path)?;
        let config: AgentConfig = parse(&text, Some(path))?;
        build::Build::new(registry, Some(path)).source(&text).agent(&config, "").await
    }

    /// The agent an agent file's text describes, its `tools` and named models taken from
    /// `registry`.
    pub async fn from_toml_str_with(text: &str, registry: &Registry) -> Result<Self, Error> {
        let config: AgentConfig = parse(text, None)?;
        build::Build::new(registry, None).source(text).agent(&config, "").await
    }

    /// The agent `config` describes.
    pub async fn from_config(config: &AgentConfig, registry: &Registry) -> Result<Self, Error> {
        build::Build::new(registry, None).agent(config, "").await
    }
}

impl Workflow<String, String> {
    /// The workflow a workflow file describes: its agents, built as
    /// [`Agent::from_toml_with`] builds one, wired as its `[workflow]` says. The workflow is
    /// named by `workflow.name`, else the file's stem.
    ///
    /// ```
    /// use loomflow::config::Registry;
    /// use loomflow::workflow::Workflow;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let dir = std::env::temp_dir().join(format!("loom-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("shout.toml");
    /// std::fs::write(
    ///     &path,
    ///     r#"
    ///     [agents.first]
    ///     instructions = "Repeat."
    ///     model = "echo"
    ///
    ///     [agents.second]
    ///     instructions = "Repeat again."
    ///     model = "echo"
    ///
    ///     [workflow]
    ///     chain = ["first", "second"]
    ///     "#,
    /// )?;
    /// let workflow = Workflow::from_toml(&path, &Registry::new()).await?;
    /// assert_eq!(workflow.name(), "shout");
    /// assert_eq!(workflow.run("hi".to_owned()).await?.output, "Echo: Echo: hi");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn from_toml(path: impl AsRef<Path>, registry: &Registry) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = read(path)?;
        let file: WorkflowFile = parse(&text, Some(path))?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "workflow".to_owned());
        build::Build::new(registry, Some(path)).source(&text).workflow(&file, &stem).await
    }

    /// The workflow a workflow file's text describes (named `workflow` unless the file names
    /// it).
    pub async fn from_toml_str(text: &str, registry: &Registry) -> Result<Self, Error> {
        let file: WorkflowFile = parse(text, None)?;
        build::Build::new(registry, None).source(text).workflow(&file, "workflow").await
    }

    /// The workflow `file` describes.
    pub async fn from_config(file: &WorkflowFile, registry: &Registry) -> Result<Self, Error> {
        build::Build::new(registry, None).workflow(file, "workflow").await
    }
}
