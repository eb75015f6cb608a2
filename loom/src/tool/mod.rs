//! Tools: functions a model can call.
//!
//! Write a tool with the [`#[tool]`](macro@crate::tool) attribute on an `fn` or `async fn`, or
//! implement [`Tool`] by hand. An agent holds its tools in a [`ToolSet`], which runs the calls
//! a model asks for: a call with bad arguments, to an unknown tool, or one whose tool fails
//! or panics, becomes an error result the model reads and can correct — never a crashed run.

pub(crate) mod args;
mod definition;
mod error;
mod output;
mod set;

pub use args::{ArgumentError, Arguments};
pub use definition::{ToolDefinition, ToolHints, validate_tool_name};
pub use error::{ToolError, ToolErrorKind};
pub use output::ToolOutput;
pub use set::ToolSet;

pub(crate) use set::{dispatch, dispatch_asking, finished};

use crate::context::RunContext;

/// A function the model can call.
///
/// [`#[tool]`](macro@crate::tool) generates implementations; write one by hand when the tool's
/// shape is only known at run time (a tool from an MCP server, a workflow as a tool).
///
/// `call` receives the arguments as the model wrote them (JSON text, possibly malformed) and
/// returns the output the model will read, or a [`ToolError`] the model will read as an error.
///
/// ```
/// use std::sync::Arc;
/// use loomflow::prelude::*;
/// use loomflow::tool::{ToolDefinition, ToolOutput};
///
/// /// Looks words up in a fixed glossary.
/// struct Glossary {
///     definition: ToolDefinition,
/// }
///
/// #[loomflow::async_trait]
/// impl Tool for Glossary {
///     fn definition(&self) -> &ToolDefinition {
///         &self.definition
///     }
///     async fn call(&self, _ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
///         #[derive(serde::Deserialize)]
///         struct Args { word: String }
///         let args: Args = serde_json::from_str(arguments)
///             .map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
///         match args.word.as_str() {
///             "loom" => Ok(ToolOutput::text("a machine for weaving")),
///             other => Err(ToolError::new(format!("`{other}` is not in the glossary"))),
///         }
///     }
/// }
///
/// let glossary = Glossary {
///     definition: ToolDefinition::new(
///         "glossary",
///         "Look a word up.",
///         serde_json::json!({
///             "type": "object",
///             "properties": {"word": {"type": "string"}},
///             "required": ["word"]
///         }),
///     )?,
/// };
/// let agent = Agent::new("Define words.").model("echo").tool(glossary);
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Loom tool",
    label = "not a tool",
    note = "annotate a function with `#[tool]` and pass the generated `<Name>Tool` value, or implement `loomflow::Tool`"
)]
#[async_trait::async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The name, description, argument schema and hints shown to the model.
    fn definition(&self) -> &ToolDefinition;

    /// Runs one call with the model's raw JSON arguments.
    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError>;
}

/// Tools that may change while an agent lives: an MCP server's, which says when its tool
/// list changed, or an application's own registry.
///
/// Give one to an agent with [`Agent::tool_source`](crate::Agent::tool_source). Each run
/// offers [`tools`](ToolSource::tools) as they are when it starts; Loom asks for them again
/// only when [`generation`](ToolSource::generation) has changed, so `generation` must
/// change whenever the tools do.
pub trait ToolSource: Send + Sync + 'static {
    /// A number that changes whenever the tools change (a counter that only grows).
    fn generation(&self) -> u64;

    /// The tools as they are now.
    fn tools(&self) -> Vec<std::sync::Arc<dyn Tool>>;
}

#[async_trait::async_trait]
impl<T: Tool + ?Sized> Tool for std::sync::Arc<T> {
    fn definition(&self) -> &ToolDefinition {
        (**self).definition()
    }
    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        (**self).call(ctx, arguments).await
    }
}

#[async_trait::async_trait]
impl<T: Tool + ?Sized> Tool for Box<T> {
    fn definition(&self) -> &ToolDefinition {
        (**self).definition()
    }
    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        (**self).call(ctx, arguments).await
    }
}
