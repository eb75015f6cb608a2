//! From a parsed config to a running agent or workflow: models resolved, secrets looked up,
//! stores opened, tools found in the registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::error::ConfigFileError;
use super::types::{
    AgentConfig, ArchitectureConfig, BudgetConfig, LimitsConfig, PermissionsConfig, RateLimitConfig, RateModeName,
    StoreConfig, WorkflowFile,
};
use crate::RunContext;
use crate::agent::Agent;
use crate::arch::{Architecture, PlanAndExecute, ReAct, ReWoo, Reflexion, SelfRefine, TreeOfThoughts};
use crate::error::Error;
use crate::governance::{
    Budget, EnvSecrets, Governance, Limits, RateLimit, RateMode, Redactor, Secret, Secrets, SecretsError,
    StandardPermissions,
};
use crate::model::Model;
use crate::session::{InMemoryStore, Journal, SessionStore};
use crate::tool::Tool;
use crate::workflow::{Node, NodeError, Workflow};

/// What a config file can name but not hold: the program's tools, models by name, and where
/// `${NAME}` references and provider keys are read from (the environment unless set).
///
/// ```
/// use loomflow::config::Registry;
/// use loomflow::prelude::*;
///
/// /// The weather in a city.
/// #[tool]
/// fn weather(city: String) -> String {
///     format!("Sunny in {city}.")
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let registry = Registry::new()
///     .tool(WeatherTool)
///     .model("scripted", ScriptedModel::new([ScriptedTurn::text("Sunny.")]));
/// let agent = Agent::from_toml_str_with(
///     r#"
///     instructions = "Answer weather questions."
///     model = "scripted"
///     tools = ["weather"]
///     "#,
///     &registry,
/// )
/// .await?;
/// assert_eq!(agent.run("Paris?").await?.output, "Sunny.");
/// # Ok::<(), loomflow::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    models: BTreeMap<String, Arc<dyn Model>>,
    secrets: Arc<dyn Secrets>,
    base_dir: Option<PathBuf>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .field("models", &self.models.keys().collect::<Vec<_>>())
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// No tools, no named models; secrets from the environment.
    pub fn new() -> Self {
        Self { tools: BTreeMap::new(), models: BTreeMap::new(), secrets: Arc::new(EnvSecrets::new()), base_dir: None }
    }

    /// Adds a tool a config can name in `tools = [...]`, under its own name.
    #[must_use]
    pub fn tool(mut self, tool: impl Tool) -> Self {
        let tool: Arc<dyn Tool> = Arc::new(tool);
        self.tools.insert(tool.definition().name().to_owned(), tool);
        self
    }

    /// Adds shared tools (the built-in ones, a tool set's).
    #[must_use]
    pub fn tools(mut self, tools: impl IntoIterator<Item = Arc<dyn Tool>>) -> Self {
        for tool in tools {
            self.tools.insert(tool.definition().name().to_owned(), tool);
        }
        self
    }

    /// A model a config names by `name` (`model = "name"`), before the model strings are
    /// tried: a scripted model for tests, a model you configured in code.
    #[must_use]
    pub fn model(mut self, name: impl Into<String>, model: impl Model) -> Self {
        self.models.insert(name.into(), Arc::new(model));
        self
    }

    /// Where `${NAME}` references and provider keys are read.
    #[must_use]
    pub fn secrets(mut self, secrets: impl Secrets) -> Self {
        self.secrets = Arc::new(secrets);
        self
    }

    /// The folder relative paths are resolved from when the config did not come from a file
    /// (a file's own folder otherwise).
    #[must_use]
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// The tools' names.
    pub fn tool_names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }
}

/// Secrets that remember what they gave, so every resolved value is redacted.
struct Recording {
    inner: Arc<dyn Secrets>,
    seen: Mutex<Vec<Secret>>,
}

#[async_trait::async_trait]
impl Secrets for Recording {
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        let found = self.inner.get(name).await?;
        if let Some(secret) = &found {
            self.seen.lock().unwrap_or_else(|e| e.into_inner()).push(secret.clone());
        }
        Ok(found)
    }
}

/// The state of one build: the file for messages, the folder for paths, the stores opened so
/// far (a SQLite file named twice is opened once).
pub(super) struct Build<'r> {
    registry: &'r Registry,
    file: Option<PathBuf>,
    /// The file's text, to point errors at the line.
    source: Option<&'r str>,
    base: PathBuf,
    secrets: Arc<Recording>,
    #[cfg(feature = "sqlite")]
    sqlite: BTreeMap<PathBuf, Arc<crate::session::SqliteStore>>,
    #[cfg(feature = "postgres")]
    postgres: BTreeMap<String, Arc<crate::session::PostgresStore>>,
}

/// A store the sessions of an agent live in, and what else it can hold.
struct Sessions {
    sessions: Arc<dyn SessionStore>,
    journal: Option<Arc<dyn Journal>>,
    usage: Option<Arc<dyn crate::governance::UsageStore>>,
    rate: Option<Arc<dyn crate::governance::RateStore>>,
}

impl Sessions {
    /// A store that keeps sessions, journals, usage and rate buckets alike (SQLite, PostgreSQL).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn shared<S>(store: Arc<S>) -> Self
    where
        S: SessionStore + Journal + crate::governance::UsageStore + crate::governance::RateStore,
    {
        Self {
            sessions: Arc::clone(&store) as Arc<dyn SessionStore>,
            journal: Some(Arc::clone(&store) as Arc<dyn Journal>),
            usage: Some(Arc::clone(&store) as Arc<dyn crate::governance::UsageStore>),
            rate: Some(store),
        }
    }
}

impl<'r> Build<'r> {
    pub(super) fn new(registry: &'r Registry, file: Option<&Path>) -> Self {
        let base = file
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .or_else(|| registry.base_dir.clone())
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            registry,
            file: file.map(Path::to_path_buf),
            source: None,
            base,
            secrets: Arc::new(Recording { inner: Arc::clone(&registry.secrets), seen: Mutex::new(Vec::new()) }),
            #[cfg(feature = "sqlite")]
            sqlite: BTreeMap::new(),
            #[cfg(feature = "postgres")]
            postgres: BTreeMap::new(),
        }
    }

    /// `key` asks for what the cargo feature `feature` of loomflow builds, and it is off.
    #[allow(dead_code, reason = "called only where a feature is off")]
    fn needs(&self, key: impl Into<String>, feature: &str) -> Error {
        self.invalid(key, format!("this needs the `{feature}` feature of loomflow (enable it in Cargo.toml)"))
    }

    /// Errors of this build point into `text`, the file's text.
    pub(super) fn source(mut self, text: &'r str) -> Self {
        self.source = Some(text);
        self
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> Error {
        let key = key.into();
        let location = self.source.and_then(|text| super::error::Location::of(text, &key));
        Error::ConfigFile(Box::new(ConfigFileError::Invalid {
            file: self.file.clone(),
            key,
            message: message.into(),
            location,
        }))
    }

    /// `text` with its `${NAME}` references resolved.
    async fn resolve(&self, key: &str, text: &str) -> Result<String, Error> {
        if !text.contains('$') {
            return Ok(text.to_owned());
        }
        crate::governance::resolve_references(text, &*self.secrets).await.map_err(|source| {
            Error::ConfigFile(Box::new(ConfigFileError::Secret {
                file: self.file.clone(),
                key: key.to_owned(),
                source,
            }))
        })
    }

    /// A path, resolved and relative to the config's folder.
    async fn path(&self, key: &str, text: &str) -> Result<PathBuf, Error> {
        let resolved = PathBuf::from(self.resolve(key, text).await?);
        Ok(if resolved.is_absolute() { resolved } else { self.base.join(resolved) })
    }

    async fn model(&self, key: &str, spec: &str) -> Result<Arc<dyn Model>, Error> {
        if let Some(model) = self.registry.models.get(spec) {
            return Ok(Arc::clone(model));
        }
        let spec = self.resolve(key, spec).await?;
        crate::model::resolve_model_with(&spec, &*self.secrets).await.map_err(|e| self.invalid(key, e.to_string()))
    }

    /// The agent `config` describes; `prefix` is its key in a workflow file (`agents.draft.`).
    pub(super) async fn agent(&mut self, config: &AgentConfig, prefix: &str) -> Result<Agent, Error> {
        let key = |k: &str| format!("{prefix}{k}");
        let mut agent = Agent::new(config.instructions.as_str());
        if let Some(name) = &config.name {
            agent = agent.name(name.as_str());
        }
        if let Some(description) = &config.description {
            agent = agent.description(description.as_str());
        }
        if let Some(spec) = &config.model {
            agent = agent.model(self.model(&key("model"), spec).await?);
        }
        for (i, spec) in config.fallback.iter().enumerate() {
            agent = agent.fallback(self.model(&key(&format!("fallback[{i}]")), spec).await?);
        }
        if let Some(effort) = config.effort {
            agent = agent.effort(effort);
        }
        if let Some(t) = config.temperature {
            agent = agent.temperature(t);
        }
        if let Some(n) = config.max_tokens {
            agent = agent.max_tokens(n);
        }
        if let Some(n) = config.max_turns {
            agent = agent.max_turns(n);
        }
        if let Some(n) = config.history_limit {
            agent = agent.history_limit(n);
        }
        if let Some(on) = config.prompt_caching {
            agent = agent.prompt_caching(on);
        }
        if let Some(arch) = &config.architecture {
            agent = agent.architecture(architecture(arch));
        }
        for (i, name) in config.tools.iter().enumerate() {
            let Some(tool) = self.registry.tools.get(name) else {
                let names = self.registry.tools.keys().map(String::as_str);
                let hint = did_you_mean(name, names.clone());
                let known: Vec<&str> = names.collect();
                let known = if known.is_empty() {
                    "the program registered none (`Registry::tool`)".to_owned()
                } else {
                    format!("registered: {}", known.join(", "))
                };
                return Err(self.invalid(key(&format!("tools[{i}]")), format!("no tool `{name}`{hint}; {known}")));
            };
            agent = agent.tools([Arc::clone(tool)]);
        }
        let sessions = match &config.sessions {
            Some(store) => Some(self.sessions(&key("sessions"), store).await?),
            None => None,
        };
        if let Some(s) = &sessions {
            agent = match &s.journal {
                Some(journal) => agent.store_dyn(Arc::clone(&s.sessions), Arc::clone(journal)),
                None => agent.sessions(Arc::clone(&s.sessions)),
            };
        }
        if let Some(store) = &config.memory {
            let mut memory = self.memory(&key("memory"), store).await?;
            if let Some(s) = &sessions {
                memory = memory.sessions(Arc::clone(&s.sessions));
                if let Some(journal) = &s.journal {
                    memory = memory.journal(Arc::clone(journal));
                }
            }
            agent = agent.memory(memory);
        }
        agent = self.skills(agent, config, prefix)?;
        agent = self.mcp(agent, config, prefix).await?;
        if let Some(governance) = self.governance(config, prefix, sessions.as_ref()).await? {
            agent = agent.governance(governance);
        }
        // What the agent itself checks (a zero rate, a negative limit, an architecture's
        // parameters) is reported now, with the file, not at the first run. A missing model
        // is not: the program may still give one.
        match agent.check() {
            Ok(()) | Err(crate::error::ConfigError::NoModel { .. }) => Ok(agent),
            Err(e) => {
                let key = prefix.trim_end_matches('.');
                Err(self.invalid(if key.is_empty() { "agent" } else { key }, e.to_string()))
            }
        }
    }

    #[cfg(feature = "skills")]
    fn skills(&self, mut agent: Agent, config: &AgentConfig, prefix: &str) -> Result<Agent, Error> {
        use crate::skills::{SkillLayer, SkillSet};

        use super::types::SkillLayerName;
        if config.skills.is_empty() {
            return Ok(agent);
        }
        let mut builder = SkillSet::builder();
        for entry in &config.skills {
            let layer = match entry.layer.unwrap_or(SkillLayerName::Project) {
                SkillLayerName::Builtin => SkillLayer::Builtin,
                SkillLayerName::User => SkillLayer::User,
                SkillLayerName::Project => SkillLayer::Project,
            };
            builder = builder.source(layer, self.base.join(&entry.path));
        }
        let set = builder.load_strict().map_err(|e| self.invalid(format!("{prefix}skills"), e.to_string()))?;
        agent = agent.skills(set);
        Ok(agent)
    }

    #[cfg(not(feature = "skills"))]
    fn skills(&self, agent: Agent, config: &AgentConfig, prefix: &str) -> Result<Agent, Error> {
        if config.skills.is_empty() { Ok(agent) } else { Err(self.needs(format!("{prefix}skills"), "skills")) }
    }

    #[cfg(feature = "mcp")]
    async fn mcp(&self, agent: Agent, config: &AgentConfig, prefix: &str) -> Result<Agent, Error> {
        if config.mcp.is_empty() {
            return Ok(agent);
        }
        let mut servers = Vec::with_capacity(config.mcp.len());
        for (i, entry) in config.mcp.iter().enumerate() {
            let key = format!("{prefix}mcp[{i}]");
            let mut entry = entry.clone();
            if let Some(url) = &entry.url {
                entry.url = Some(self.resolve(&format!("{key}.url"), url).await?);
            }
            for (name, value) in &mut entry.headers {
                *value = self.resolve(&format!("{key}.headers.{name}"), value).await?;
            }
            for (name, value) in &mut entry.env {
                *value = self.resolve(&format!("{key}.env.{name}"), value).await?;
            }
            for (j, arg) in entry.args.iter_mut().enumerate() {
                *arg = self.resolve(&format!("{key}.args[{j}]"), arg).await?;
            }
            servers.push(entry.into_server().map_err(|e| self.invalid(&key, e.to_string()))?);
        }
        let servers = crate::mcp::McpServers::connect(servers).await?;
        Ok(agent.mcp(&servers))
    }

    #[cfg(not(feature = "mcp"))]
    async fn mcp(&self, agent: Agent, _config: &AgentConfig, _prefix: &str) -> Result<Agent, Error> {
        Ok(agent)
    }

    async fn sessions(&mut self, key: &str, store: &StoreConfig) -> Result<Sessions, Error> {
        match store {
            StoreConfig::InMemory { max_users, idle_ttl_secs } => {
                if max_users.is_some() || idle_ttl_secs.is_some() {
                    let which = if max_users.is_some() { "max_users" } else { "idle_ttl_secs" };
                    return Err(self.invalid(
                        format!("{key}.{which}"),
                        "in-memory sessions are not bounded by these keys (they bound `[memory]`); remove it, \
                         or keep sessions in sqlite",
                    ));
                }
                let store = Arc::new(InMemoryStore::new());
                Ok(Sessions {
                    sessions: Arc::clone(&store) as Arc<dyn SessionStore>,
                    journal: Some(store),
                    usage: None,
                    rate: None,
                })
            }
            StoreConfig::Sqlite { path } => {
                #[cfg(feature = "sqlite")]
                {
                    let store = self.sqlite(&format!("{key}.path"), path).await?;
                    Ok(Sessions::shared(store))
                }
                #[cfg(not(feature = "sqlite"))]
                {
                    let _ = path;
                    Err(self.needs(key, "sqlite"))
                }
            }
            StoreConfig::Postgres { url } => {
                #[cfg(feature = "postgres")]
                {
                    let store = self.postgres(&format!("{key}.url"), url).await?;
                    Ok(Sessions::shared(store))
                }
                #[cfg(not(feature = "postgres"))]
                {
                    let _ = url;
                    Err(self.needs(key, "postgres"))
                }
            }
            StoreConfig::Redis { .. } | StoreConfig::Chroma { .. } => Err(self.invalid(
                format!("{key}.backend"),
                "redis and chroma hold memory, not sessions; sessions live in `in_memory`, `sqlite` or `postgres`",
            )),
        }
    }

    async fn memory(&mut self, key: &str, store: &StoreConfig) -> Result<crate::memory::Memory, Error> {
        use crate::memory::{InMemoryMemory, Memory, MemoryLimits};
        match store {
            StoreConfig::InMemory { max_users, idle_ttl_secs } => {
                let mut limits = MemoryLimits::default();
                if let Some(n) = max_users {
                    limits = limits.max_users(*n);
                }
                if let Some(secs) = idle_ttl_secs {
                    limits = limits.idle_ttl(Duration::from_secs(*secs));
                }
                Ok(Memory::new(InMemoryMemory::with_limits(limits)))
            }
            StoreConfig::Sqlite { path } => {
                #[cfg(feature = "sqlite")]
                {
                    let store = self.sqlite(&format!("{key}.path"), path).await?;
                    Ok(Memory::shared(store))
                }
                #[cfg(not(feature = "sqlite"))]
                {
                    let _ = path;
                    Err(self.needs(key, "sqlite"))
                }
            }
            StoreConfig::Postgres { url } => {
                #[cfg(feature = "postgres")]
                {
                    let store = self.postgres(&format!("{key}.url"), url).await?;
                    Ok(Memory::shared(store))
                }
                #[cfg(not(feature = "postgres"))]
                {
                    let _ = url;
                    Err(self.needs(key, "postgres"))
                }
            }
            StoreConfig::Redis { url } => {
                #[cfg(feature = "redis")]
                {
                    let url = self.resolve(&format!("{key}.url"), url).await?;
                    Ok(Memory::new(crate::memory::RedisMemory::connect(&url).await?))
                }
                #[cfg(not(feature = "redis"))]
                {
                    let _ = url;
                    Err(self.needs(key, "redis"))
                }
            }
            StoreConfig::Chroma { url } => {
                #[cfg(feature = "chroma")]
                {
                    let url = self.resolve(&format!("{key}.url"), url).await?;
                    Ok(Memory::new(crate::memory::ChromaMemory::connect(url).await?))
                }
                #[cfg(not(feature = "chroma"))]
                {
                    let _ = url;
                    Err(self.needs(key, "chroma"))
                }
            }
        }
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite(&mut self, key: &str, path: &str) -> Result<Arc<crate::session::SqliteStore>, Error> {
        let path = self.path(key, path).await?;
        if let Some(store) = self.sqlite.get(&path) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(crate::session::SqliteStore::open(&path)?);
        self.sqlite.insert(path, Arc::clone(&store));
        Ok(store)
    }

    #[cfg(feature = "postgres")]
    async fn postgres(&mut self, key: &str, url: &str) -> Result<Arc<crate::session::PostgresStore>, Error> {
        let url = self.resolve(key, url).await?;
        if let Some(store) = self.postgres.get(&url) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(crate::session::PostgresStore::connect(&url).await?);
        self.postgres.insert(url, Arc::clone(&store));
        Ok(store)
    }

    /// The governance the config asks for, with every secret it resolved redacted; `None`
    /// when it asks for none (a run then pays nothing for governance).
    async fn governance(
        &self,
        config: &AgentConfig,
        prefix: &str,
        sessions: Option<&Sessions>,
    ) -> Result<Option<Governance>, Error> {
        let mut governance = Governance::new();
        let mut any = false;
        if let Some(budget) = &config.budget {
            let mut budget = self.budget(budget, &format!("{prefix}budget"))?;
            if let Some(usage) = sessions.and_then(|s| s.usage.clone()) {
                budget = budget.store(usage);
            }
            governance = governance.budget(budget);
            any = true;
        }
        if let Some(rate_config) = &config.rate_limit {
            let mut rate = rate_limit(rate_config);
            if let Some(secs) = rate_config.max_wait_secs {
                rate = rate.max_wait(self.seconds(&format!("{prefix}rate_limit.max_wait_secs"), secs)?);
            }
            if let Some(store) = sessions.and_then(|s| s.rate.clone()) {
                rate = rate.store(store);
            }
            governance = governance.rate_limit(rate);
            any = true;
        }
        if let Some(permissions) = &config.permissions {
            governance = self.permissions(governance, permissions, prefix, sessions.is_some())?;
            any = true;
        }
        #[cfg(feature = "audit")]
        if let Some(audit) = &config.audit_log {
            governance = self.audit(governance, audit, &format!("{prefix}audit_log")).await?;
            any = true;
        }
        #[cfg(not(feature = "audit"))]
        if config.audit_log.is_some() {
            return Err(self.needs(format!("{prefix}audit_log"), "audit"));
        }
        let seen = std::mem::take(&mut *self.secrets.seen.lock().unwrap_or_else(|e| e.into_inner()));
        if !seen.is_empty() {
            governance = governance.redact_secrets(Redactor::from_secrets(&seen));
            any = true;
        }
        Ok(any.then_some(governance))
    }

    fn budget(&self, config: &BudgetConfig, key: &str) -> Result<Budget, Error> {
        let mut budget = Budget::new();
        if let Some(l) = &config.per_run {
            budget = budget.per_run(limits(l));
        }
        if let Some(l) = &config.per_user {
            budget = budget.per_user(limits(l));
        }
        if let Some(l) = &config.global {
            budget = budget.global(limits(l));
        }
        if let Some(secs) = config.wall_time_secs {
            budget = budget.wall_time(self.seconds(&format!("{key}.wall_time_secs"), secs)?);
        }
        if let Some(share) = config.warn_at {
            budget = budget.warn_at(share);
        }
        if let Some(secs) = config.period_secs {
            budget = budget.period(Duration::from_secs(secs));
        }
        Ok(budget)
    }

    fn seconds(&self, key: &str, secs: f64) -> Result<Duration, Error> {
        Duration::try_from_secs_f64(secs)
            .map_err(|_| self.invalid(key, format!("{secs} is not a number of seconds (0 or more)")))
    }

    fn permissions(
        &self,
        governance: Governance,
        config: &PermissionsConfig,
        prefix: &str,
        has_sessions: bool,
    ) -> Result<Governance, Error> {
        let mut policy = StandardPermissions::new(config.mode.unwrap_or_default());
        if !config.allow.is_empty() {
            policy = policy.allow(config.allow.iter().cloned());
        }
        if !config.deny.is_empty() {
            policy = policy.deny(config.deny.iter().cloned());
        }
        if !config.edit_tools.is_empty() {
            policy = policy.edit_tools(config.edit_tools.iter().cloned());
        }
        let mut governance = governance.permissions(policy);
        if config.durable_approvals == Some(true) {
            if !has_sessions {
                return Err(self.invalid(
                    format!("{prefix}permissions.durable_approvals"),
                    "durable approvals journal the paused run: give the agent `[sessions]` (sqlite or postgres for a decision made in another process)",
                ));
            }
            governance = governance.durable_approvals();
        }
        if let Some(secs) = config.approval_timeout_secs {
            governance =
                governance.approval_timeout(self.seconds(&format!("{prefix}permissions.approval_timeout_secs"), secs)?);
        }
        Ok(governance)
    }

    #[cfg(feature = "audit")]
    async fn audit(
        &self,
        governance: Governance,
        config: &super::types::AuditLogConfig,
        key: &str,
    ) -> Result<Governance, Error> {
        use super::types::{AuditBackendName, RedactionName};
        use crate::telemetry::audit::{AuditKey, AuditPolicy};
        let secret = self.resolve(&format!("{key}.key"), &config.key).await?;
        let audit_key =
            AuditKey::from_bytes(secret.as_bytes()).map_err(|e| self.invalid(format!("{key}.key"), e.to_string()))?;
        let policy = match config.redaction.unwrap_or(RedactionName::Truncate) {
            RedactionName::Truncate => {
                AuditPolicy::truncate(config.max_chars.unwrap_or(crate::telemetry::audit::DEFAULT_TRUNCATE))
            }
            RedactionName::Hash => AuditPolicy::hash(),
            RedactionName::Full => AuditPolicy::full(),
        };
        let path = |what: &str| match &config.path {
            Some(p) => Ok(p.as_str()),
            None => Err(self.invalid(format!("{key}.path"), format!("the {what} audit log needs a `path`"))),
        };
        Ok(match config.backend {
            AuditBackendName::File => {
                let path = self.path(&format!("{key}.path"), path("file")?).await?;
                let log = crate::telemetry::audit::FileAuditLog::open(path, audit_key)?.policy(policy);
                governance.audit(Arc::new(log))
            }
            AuditBackendName::Sqlite => {
                #[cfg(feature = "sqlite")]
                {
                    let path = self.path(&format!("{key}.path"), path("sqlite")?).await?;
                    let log = crate::telemetry::audit::SqliteAuditLog::open(path, audit_key)?.policy(policy);
                    governance.audit(Arc::new(log))
                }
                #[cfg(not(feature = "sqlite"))]
                return Err(self.needs(key, "sqlite"));
            }
            AuditBackendName::Postgres => {
                #[cfg(feature = "postgres")]
                {
                    let Some(url) = &config.url else {
                        return Err(self.invalid(format!("{key}.url"), "the postgres audit log needs a `url`"));
                    };
                    let url = self.resolve(&format!("{key}.url"), url).await?;
                    let log = crate::telemetry::audit::PostgresAuditLog::connect(&url, audit_key).await?.policy(policy);
                    governance.audit(Arc::new(log))
                }
                #[cfg(not(feature = "postgres"))]
                return Err(self.needs(key, "postgres"));
            }
        })
    }

    /// The exporter a `[telemetry]` table asks for.
    #[cfg(feature = "otel")]
    pub(super) async fn telemetry(
        &self,
        config: &super::types::TelemetryConfig,
    ) -> Result<crate::telemetry::otel::Telemetry, Error> {
        use crate::telemetry::otel::Telemetry;
        let mut telemetry = match &config.endpoint {
            Some(endpoint) => Telemetry::otlp(self.resolve("telemetry.endpoint", endpoint).await?),
            None => Telemetry::otlp_from_env(),
        };
        if let Some(name) = &config.service_name {
            telemetry = telemetry.service_name(name.as_str());
        }
        if let Some(on) = config.capture_content {
            telemetry = telemetry.capture_content(on);
        }
        if let Some(on) = config.metrics {
            telemetry = telemetry.metrics(on);
        }
        for (name, value) in &config.headers {
            telemetry =
                telemetry.header(name.as_str(), self.resolve(&format!("telemetry.headers.{name}"), value).await?);
        }
        Ok(telemetry)
    }

    /// The workflow a workflow file describes.
    pub(super) async fn workflow(
        &mut self,
        file: &WorkflowFile,
        default_name: &str,
    ) -> Result<Workflow<String, String>, Error> {
        let config = &file.workflow;
        let mut agents = BTreeMap::new();
        for (name, agent) in &file.agents {
            let mut built = self.agent(agent, &format!("agents.{name}.")).await?;
            if agent.name.is_none() {
                built = built.name(name.as_str());
            }
            agents.insert(name.as_str(), built);
        }
        let name = config.name.clone().unwrap_or_else(|| default_name.to_owned());
        let mut graph = Workflow::builder(name);
        let joins: Vec<&str> = config.fan_out.iter().map(|f| f.join.as_str()).collect();
        let mut text = BTreeMap::new();
        let mut joined = BTreeMap::new();
        for (name, agent) in &agents {
            if joins.contains(name) {
                let branches = config.fan_out.iter().find(|f| f.join == *name).map(|f| f.branches.clone());
                let node = JoinNode { agent: agent.clone(), branches: branches.unwrap_or_default() };
                joined.insert(*name, graph.node(*name, node));
            } else {
                text.insert(*name, graph.node::<String, String>(*name, agent.clone()));
            }
        }
        let agent_names = || agents.keys().copied().collect::<Vec<_>>();
        let unknown = |key: String, name: &str| {
            let hint = did_you_mean(name, agent_names());
            self.invalid(key, format!("no agent `{name}`{hint}; the file defines: {}", agent_names().join(", ")))
        };
        let text_node =
            |key: String, name: &str| match text.get(name) {
                Some(id) => Ok(*id),
                None if joined.contains_key(name) => Err(self
                    .invalid(key, format!("`{name}` joins a fan-out: it takes the branches' answers, not one node's"))),
                None => Err(unknown(key, name)),
            };
        if !config.chain.is_empty() {
            if config.start.is_some()
                || !config.edges.is_empty()
                || !config.routes.is_empty()
                || !config.fan_out.is_empty()
            {
                return Err(self.invalid(
                    "workflow.chain",
                    "a chain is the whole graph: give either `chain` or `start` with `edges`, `routes` and `fan_out`",
                ));
            }
            let mut previous = None;
            for (i, name) in config.chain.iter().enumerate() {
                let id = text_node(format!("workflow.chain[{i}]"), name)?;
                match previous {
                    None => graph.start(id),
                    Some(p) => graph.edge(p, id),
                }
                previous = Some(id);
            }
        } else {
            let Some(start) = &config.start else {
                return Err(self.invalid("workflow", "a workflow needs `chain = [...]`, or `start` and its edges"));
            };
            graph.start(text_node("workflow.start".into(), start)?);
            for (i, edge) in config.edges.iter().enumerate() {
                let to = text_node(format!("workflow.edges[{i}].to"), &edge.to)?;
                match (text.get(edge.from.as_str()), joined.get(edge.from.as_str())) {
                    (Some(from), _) => graph.edge(*from, to),
                    (None, Some(from)) => graph.edge(*from, to),
                    (None, None) => return Err(unknown(format!("workflow.edges[{i}].from"), &edge.from)),
                }
            }
            let mut end = None;
            for (i, route) in config.routes.iter().enumerate() {
                let mut targets = Vec::with_capacity(route.to.len());
                for (label, to) in &route.to {
                    let key = format!("workflow.routes[{i}].to.{label}");
                    let id = if to == "end" && !text.contains_key("end") {
                        *end.get_or_insert_with(|| {
                            graph.node::<String, String>("end", |answer: String| async move { answer })
                        })
                    } else {
                        text_node(key, to)?
                    };
                    targets.push((normalise(label), id));
                }
                let default = match &route.default {
                    Some(d) => Some(text_node(format!("workflow.routes[{i}].default"), d)?),
                    None => None,
                };
                let key_of = |answer: &String| normalise(answer);
                let mut builder = match (text.get(route.from.as_str()), joined.get(route.from.as_str())) {
                    (Some(from), _) => graph.route(*from, key_of),
                    (None, Some(from)) => graph.route(*from, key_of),
                    (None, None) => return Err(unknown(format!("workflow.routes[{i}].from"), &route.from)),
                };
                for (label, id) in targets {
                    builder = builder.to(label, id);
                }
                if let Some(d) = default {
                    builder.default(d);
                }
            }
            for (i, fan) in config.fan_out.iter().enumerate() {
                let from = text_node(format!("workflow.fan_out[{i}].from"), &fan.from)?;
                let mut branches = Vec::with_capacity(fan.branches.len());
                for (j, b) in fan.branches.iter().enumerate() {
                    branches.push(text_node(format!("workflow.fan_out[{i}].branches[{j}]"), b)?);
                }
                let Some(join) = joined.get(fan.join.as_str()) else {
                    return Err(unknown(format!("workflow.fan_out[{i}].join"), &fan.join));
                };
                graph.fan_out(from, branches, *join);
            }
        }
        if let Some(n) = config.max_visits {
            text.values().for_each(|id| graph.max_visits(*id, n));
            joined.values().for_each(|id| graph.max_visits(*id, n));
        }
        let mut workflow = graph.build::<String, String>().map_err(|e| {
            let mut message = e.to_string().replace('\n', "; ");
            if message.contains("no visit bound") {
                message.push_str(" (in a file: set `max_visits` in `[workflow]`)");
            }
            self.invalid("workflow", message)
        })?;
        if let Some(n) = config.max_visits {
            workflow = workflow.max_visits(n);
        }
        if let Some(n) = config.max_steps {
            workflow = workflow.max_steps(n);
        }
        Ok(workflow)
    }
}

/// ` (did you mean `x`?)` for the known name closest to `name`, or nothing.
fn did_you_mean<'n>(name: &str, known: impl IntoIterator<Item = &'n str>) -> String {
    loomflow_graph::suggest::did_you_mean(name, known).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

/// A route label or an answer, compared: trimmed, lower-case, without trailing `.`, `!`.
fn normalise(text: &str) -> String {
    text.trim().trim_end_matches(['.', '!']).trim().to_lowercase()
}

/// The node joining a fan-out: the branches' answers, each under its branch's name, are the
/// agent's input.
struct JoinNode {
    agent: Agent,
    branches: Vec<String>,
}

impl Node<Vec<String>, String> for JoinNode {
    fn call<'a, 'b, 'f>(
        &'a self,
        ctx: &'b RunContext,
        input: Vec<String>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, NodeError>> + Send + 'f>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        let mut text = String::new();
        for (i, answer) in input.iter().enumerate() {
            let name = self.branches.get(i).map_or("branch", String::as_str);
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str("## ");
            text.push_str(name);
            text.push_str("\n\n");
            text.push_str(answer);
        }
        Node::<String, String>::call(&self.agent, ctx, text)
    }

    fn name(&self) -> Option<&str> {
        self.agent.agent_name()
    }
}

fn limits(config: &LimitsConfig) -> Limits {
    let mut limits = Limits::new();
    if let Some(n) = config.input_tokens {
        limits = limits.input_tokens(n);
    }
    if let Some(n) = config.output_tokens {
        limits = limits.output_tokens(n);
    }
    if let Some(n) = config.total_tokens {
        limits = limits.total_tokens(n);
    }
    if let Some(usd) = config.cost_usd {
        limits = limits.cost_usd(usd);
    }
    if let Some(n) = config.model_calls {
        limits = limits.model_calls(n);
    }
    if let Some(n) = config.tool_calls {
        limits = limits.tool_calls(n);
    }
    limits
}

fn rate_limit(config: &RateLimitConfig) -> RateLimit {
    let mut rate = RateLimit::new();
    if let Some(b) = config.per_user {
        rate = rate.per_user(b.rate, b.burst);
    }
    if let Some(b) = config.per_model {
        rate = rate.per_model(b.rate, b.burst);
    }
    if let Some(mode) = config.mode {
        rate = rate.mode(match mode {
            RateModeName::Throttle => RateMode::Throttle,
            RateModeName::Reject => RateMode::Reject,
        });
    }
    rate
}

fn architecture(config: &ArchitectureConfig) -> Arc<dyn Architecture> {
    match config {
        ArchitectureConfig::React { max_turns } => {
            let mut a = ReAct::new();
            if let Some(n) = max_turns {
                a = a.max_turns(*n);
            }
            Arc::new(a)
        }
        ArchitectureConfig::SelfRefine { max_rounds, stop_phrase } => {
            let mut a = SelfRefine::new();
            if let Some(n) = max_rounds {
                a = a.max_rounds(*n);
            }
            if let Some(p) = stop_phrase {
                a = a.stop_phrase(p.as_str());
            }
            Arc::new(a)
        }
        ArchitectureConfig::Reflexion { max_attempts, threshold, top_k_lessons } => {
            let mut a = Reflexion::new();
            if let Some(n) = max_attempts {
                a = a.max_attempts(*n);
            }
            if let Some(t) = threshold {
                a = a.threshold(*t);
            }
            if let Some(k) = top_k_lessons {
                a = a.top_k_lessons(*k);
            }
            Arc::new(a)
        }
        ArchitectureConfig::PlanAndExecute { max_steps, max_replans, executor_turns } => {
            let mut a = PlanAndExecute::new();
            if let Some(n) = max_steps {
                a = a.max_steps(*n);
            }
            if let Some(n) = max_replans {
                a = a.max_replans(*n);
            }
            if let Some(n) = executor_turns {
                a = a.executor_turns(*n);
            }
            Arc::new(a)
        }
        ArchitectureConfig::Rewoo { max_steps, parallel_levels } => {
            let mut a = ReWoo::new();
            if let Some(n) = max_steps {
                a = a.max_steps(*n);
            }
            if let Some(p) = parallel_levels {
                a = a.parallel_levels(*p);
            }
            Arc::new(a)
        }
        ArchitectureConfig::TreeOfThoughts { branch_factor, max_depth, beam_width, solved_threshold } => {
            let mut a = TreeOfThoughts::new();
            if let Some(n) = branch_factor {
                a = a.branch_factor(*n);
            }
            if let Some(n) = max_depth {
                a = a.max_depth(*n);
            }
            if let Some(n) = beam_width {
                a = a.beam_width(*n);
            }
            if let Some(s) = solved_threshold {
                a = a.solved_threshold(*s);
            }
            Arc::new(a)
        }
    }
}
