//! Typed outputs: ask an agent for a Rust type, get a validated value back.
//!
//! `Agent::new(..).output::<T>()` makes the run's output a `T` (any
//! `Deserialize + JsonSchema` type). The schema is built once per type. How the model is
//! asked depends on the [`OutputMode`]:
//!
//! - [`OutputMode::Native`]: the provider's structured-output feature constrains the reply.
//! - [`OutputMode::Tool`]: the model answers by calling a `final_answer` tool whose arguments
//!   are the value.
//! - [`OutputMode::Prompted`]: the schema goes into the instructions and the model writes JSON.
//!
//! [`OutputMode::Auto`] (the default) picks native when the model supports it and prompted
//! otherwise. While the agent is still calling its tools, nothing forces the output format on
//! the model; only the final answer is constrained.
//!
//! The answer is parsed leniently where models are sloppy (code fences, prose around the JSON)
//! and strictly where it matters (a trailing comma is an error). A parse or validation failure
//! goes back to the model as a short message naming the field and the problem, and the model
//! answers again, up to [`output_retries`](crate::Agent::output_retries) times; then the run
//! fails with an [`OutputError`] that keeps every attempt.

mod parse;
mod partial;
mod schema;

use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

pub(crate) use partial::PartialJson;
pub use schema::{OutputSchema, WRAP_KEY, to_openai_strict};

use crate::model::{Capabilities, ResponseFormat};
use crate::tool::ToolDefinition;

/// The name of the tool a model calls to give its final answer in [`OutputMode::Tool`].
pub const FINAL_ANSWER_TOOL: &str = "final_answer";

/// The default number of times the model may correct an answer that did not parse or validate.
pub const DEFAULT_OUTPUT_RETRIES: u32 = 1;

/// How the model is asked for a typed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OutputMode {
    /// Native when the model supports structured output, prompted otherwise.
    #[default]
    Auto,
    /// The provider's structured-output (JSON schema) response format.
    Native,
    /// A `final_answer` tool whose arguments are the output.
    Tool,
    /// The schema in the instructions; JSON in the text.
    Prompted,
}

impl OutputMode {
    /// The mode to use with a model of these capabilities.
    pub fn resolve(self, capabilities: Capabilities) -> OutputMode {
        match self {
            Self::Auto if capabilities.native_structured_output => Self::Native,
            Self::Auto => Self::Prompted,
            Self::Native if !capabilities.native_structured_output => Self::Prompted,
            Self::Tool if !capabilities.tools => Self::Prompted,
            other => other,
        }
    }
}

/// A type an agent can return: deserialisable, with a JSON schema.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an agent's output type",
    label = "needs `Deserialize` and `JsonSchema`",
    note = "derive `serde::Deserialize` and `schemars::JsonSchema` for it"
)]
pub trait OutputType: DeserializeOwned + JsonSchema + Send + Sync + 'static {}

impl<T: DeserializeOwned + JsonSchema + Send + Sync + 'static> OutputType for T {}

/// Checks of a parsed output beyond its type ("temp_c must be between -90 and 60").
///
/// A failed check goes back to the model like a parse error, so it can correct its answer.
/// Use it with [`Agent::validated`](crate::Agent::validated), or add closures with
/// [`Agent::validator`](crate::Agent::validator).
///
/// ```
/// use loomflow::output::Validate;
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Weather { city: String, temp_c: f64 }
///
/// impl Validate for Weather {
///     fn validate(&self) -> Result<(), String> {
///         if (-90.0..=60.0).contains(&self.temp_c) {
///             Ok(())
///         } else {
///             Err(format!("temp_c must be between -90 and 60, not {}", self.temp_c))
///         }
///     }
/// }
/// ```
pub trait Validate {
    /// `Ok` if the value is acceptable; otherwise what is wrong, for the model to fix.
    fn validate(&self) -> Result<(), String>;
}

type Validator<O> = Arc<dyn Fn(&O) -> Result<(), String> + Send + Sync>;

/// How an agent turns the model's final answer into the run's output.
pub(crate) struct OutputSpec<O> {
    pub(crate) parse: fn(&str, bool) -> Result<O, String>,
    pub(crate) schema: Option<Arc<OutputSchema>>,
    pub(crate) mode: OutputMode,
    pub(crate) retries: u32,
    pub(crate) validators: Vec<Validator<O>>,
}

impl<O> Clone for OutputSpec<O> {
    fn clone(&self) -> Self {
        Self {
            parse: self.parse,
            schema: self.schema.clone(),
            mode: self.mode,
            retries: self.retries,
            validators: self.validators.clone(),
        }
    }
}

impl<O> fmt::Debug for OutputSpec<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            None => f.write_str("text"),
            Some(s) => f
                .debug_struct("Typed")
                .field("schema", &s.name())
                .field("mode", &self.mode)
                .field("retries", &self.retries)
                .field("validators", &self.validators.len())
                .finish(),
        }
    }
}

impl OutputSpec<String> {
    pub(crate) fn text() -> Self {
        Self {
            parse: |text, _| Ok(text.to_owned()),
            schema: None,
            mode: OutputMode::Auto,
            retries: DEFAULT_OUTPUT_RETRIES,
            validators: Vec::new(),
        }
    }
}

impl<O: OutputType> OutputSpec<O> {
    pub(crate) fn typed(mode: OutputMode, retries: u32) -> Self {
        Self { parse: parse_typed::<O>, schema: Some(OutputSchema::of::<O>()), mode, retries, validators: Vec::new() }
    }
}

/// Parses `text` (JSON, perhaps in prose or a fence) as an `O`; the error is the message for
/// the model.
pub(crate) fn parse_as<O: DeserializeOwned>(text: &str, wrapped: bool) -> Result<O, String> {
    parse_typed(text, wrapped)
}

fn parse_typed<O: DeserializeOwned>(text: &str, wrapped: bool) -> Result<O, String> {
    let json = parse::extract_json(text)?;
    parse::parse_value(json, wrapped)
}

impl<O> OutputSpec<O> {
    /// Parses and validates an answer; the error is the message for the model.
    pub(crate) fn accept(&self, text: &str) -> Result<O, String> {
        let wrapped = self.schema.as_ref().is_some_and(|s| s.is_wrapped());
        let value = (self.parse)(text, wrapped)?;
        for validator in &self.validators {
            validator(&value)?;
        }
        Ok(value)
    }

    /// Whether the output is typed (not plain text).
    pub(crate) fn is_typed(&self) -> bool {
        self.schema.is_some()
    }

    pub(crate) fn add_validator(&mut self, v: Validator<O>) {
        self.validators.push(v);
    }
}

/// Where a run puts its typed output, whatever the type: an architecture hands it the final
/// answer's text, and the run's generic side takes the value out.
pub(crate) trait OutputSlot: Send + Sync {
    /// Whether the output is typed (not plain text).
    fn is_typed(&self) -> bool;
    /// Parses and validates an answer, keeping the value; the error is the message for the
    /// model.
    fn accept(&mut self, text: &str) -> Result<(), String>;
    /// How many times the model may correct an answer.
    fn retries(&self) -> u32;
    /// The output type's name, for errors.
    fn type_name(&self) -> &str;
}

/// The [`OutputSlot`] of a run with output type `O`.
pub(crate) struct Slot<'a, O> {
    spec: &'a OutputSpec<O>,
    pub(crate) value: Option<O>,
}

impl<'a, O> Slot<'a, O> {
    pub(crate) fn new(spec: &'a OutputSpec<O>) -> Self {
        Self { spec, value: None }
    }
}

impl<O: Send + Sync> OutputSlot for Slot<'_, O> {
    fn is_typed(&self) -> bool {
        self.spec.is_typed()
    }

    fn accept(&mut self, text: &str) -> Result<(), String> {
        self.value = Some(self.spec.accept(text)?);
        Ok(())
    }

    fn retries(&self) -> u32 {
        self.spec.retries
    }

    fn type_name(&self) -> &str {
        self.spec.schema.as_ref().map_or("output", |s| s.name())
    }
}

/// Loom's instruction asking for JSON of a schema (prompted mode).
pub(crate) fn directive(schema: &OutputSchema) -> String {
    let pretty = serde_json::to_string_pretty(schema.plain().as_ref()).unwrap_or_else(|_| schema.compact().to_owned());
    format!(
        "Output format: when you give your final answer, write exactly one JSON value that is valid \
         against the JSON Schema below — no other text, no code fences.\n{pretty}"
    )
}

/// The tool the model calls with its final answer (tool mode).
pub(crate) fn final_answer_tool(schema: &OutputSchema) -> ToolDefinition {
    ToolDefinition::new_unchecked(
        FINAL_ANSWER_TOOL.to_owned(),
        "Give your final answer. Call this once you have everything you need: its arguments are the answer, \
         and calling it ends your turn."
            .to_owned(),
        schema.plain().as_ref().clone(),
    )
}

/// The response format for native mode.
pub(crate) fn response_format(schema: &OutputSchema) -> ResponseFormat {
    ResponseFormat::new(schema.name(), Arc::clone(schema.plain())).with_strict(schema.openai_strict().cloned())
}

/// The message that sends a failed answer back to the model.
pub(crate) fn feedback(problem: &str, mode: OutputMode) -> String {
    match mode {
        OutputMode::Tool => format!(
            "That answer could not be used: {problem}. Call `{FINAL_ANSWER_TOOL}` again with arguments that match its schema."
        ),
        _ => format!("That answer could not be used: {problem}. Reply again with only the corrected JSON."),
    }
}

/// One answer that did not parse or validate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputAttempt {
    /// The answer as the model wrote it.
    pub raw: String,
    /// What was wrong with it.
    pub error: String,
}

impl OutputAttempt {
    pub(crate) fn new(raw: String, error: String) -> Self {
        Self { raw, error }
    }
}

/// The model did not produce a valid output within its retries. Every attempt is kept.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the model's answer did not match `{type_name}` after {} attempt(s): {}",
    attempts.len(),
    attempts.last().map_or("", |a| a.error.as_str())
)]
#[non_exhaustive]
pub struct OutputError {
    /// The output type's schema name.
    pub type_name: String,
    /// Every failed answer, oldest first.
    pub attempts: Vec<OutputAttempt>,
}

impl OutputError {
    pub(crate) fn new(type_name: &str, attempts: Vec<OutputAttempt>) -> Self {
        Self { type_name: type_name.to_owned(), attempts }
    }

    /// The last answer's raw text.
    pub fn raw(&self) -> &str {
        self.attempts.last().map_or("", |a| a.raw.as_str())
    }

    /// What was wrong with the last answer.
    pub fn error(&self) -> &str {
        self.attempts.last().map_or("", |a| a.error.as_str())
    }
}
