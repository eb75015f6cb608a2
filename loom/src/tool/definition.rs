//! What the model sees of a tool.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Hints about what a tool does. They decide approval and map to MCP tool annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ToolHints {
    /// The tool only reads; it changes nothing.
    pub read_only: bool,
    /// The tool may destroy or irreversibly change something (delete, pay, send).
    pub destructive: bool,
    /// Calling the tool twice with the same arguments has the same effect as calling it once,
    /// so an interrupted call can safely be repeated.
    pub idempotent: bool,
    /// A successful call ends the agent's turn: the ReAct loop stops, and the call's result is
    /// the run's answer (a handoff, a forwarded answer, a "done" signal).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ends_turn: bool,
}

impl ToolHints {
    /// No hints.
    pub const NONE: Self = Self { read_only: false, destructive: false, idempotent: false, ends_turn: false };

    /// Marks the tool read-only.
    #[must_use]
    pub const fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Marks the tool destructive.
    #[must_use]
    pub const fn destructive(mut self) -> Self {
        self.destructive = true;
        self
    }

    /// Marks the tool idempotent.
    #[must_use]
    pub const fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Marks the tool as ending the agent's turn when a call succeeds.
    #[must_use]
    pub const fn ends_turn(mut self) -> Self {
        self.ends_turn = true;
        self
    }
}

/// A tool as the model sees it: name, description, JSON schema of its arguments, and hints.
///
/// The schema is shared (`Arc`): a definition is built once per tool and cloning it is cheap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    name: String,
    description: String,
    parameters: Arc<serde_json::Value>,
    #[serde(default)]
    hints: ToolHints,
}

impl ToolDefinition {
    /// A definition; the name must follow the providers' rules ([`validate_tool_name`]) and
    /// `parameters` must be a JSON schema of type `object`.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        validate_tool_name(&name)
            .map_err(|reason| ConfigError::InvalidToolName { name: name.clone(), reason: reason.to_owned() })?;
        if parameters.get("type").and_then(serde_json::Value::as_str) != Some("object") {
            return Err(ConfigError::InvalidToolName {
                name,
                reason: "its parameters schema must have `\"type\": \"object\"`".to_owned(),
            });
        }
        Ok(Self::new_unchecked(name, description.into(), parameters))
    }

    pub(crate) fn new_unchecked(name: String, description: String, parameters: serde_json::Value) -> Self {
        Self { name, description, parameters: Arc::new(parameters), hints: ToolHints::NONE }
    }

    /// Sets the hints.
    #[must_use]
    pub fn with_hints(mut self, hints: ToolHints) -> Self {
        self.hints = hints;
        self
    }

    /// The name the model calls the tool by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the tool does, for the model.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The JSON schema of the arguments (`{"type": "object", ...}`).
    pub fn parameters(&self) -> &serde_json::Value {
        &self.parameters
    }

    /// The schema, shared.
    pub fn parameters_arc(&self) -> &Arc<serde_json::Value> {
        &self.parameters
    }

    /// The hints.
    pub fn hints(&self) -> ToolHints {
        self.hints
    }
}

/// Checks a tool name against the rules every major provider enforces:
/// `^[a-zA-Z0-9_-]{1,64}$`. Returns what is wrong.
///
/// ```
/// use loomflow::tool::validate_tool_name;
/// assert!(validate_tool_name("get_weather").is_ok());
/// assert!(validate_tool_name("get weather").is_err());
/// ```
pub fn validate_tool_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("a tool name must not be empty");
    }
    if name.len() > 64 {
        return Err("a tool name must be at most 64 characters long");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err("a tool name may only contain ASCII letters, digits, `_` and `-`");
    }
    Ok(())
}
