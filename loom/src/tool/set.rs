//! A set of uniquely named tools, and the dispatch of one tool call.

use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt as _;
use tracing::Instrument as _;

use super::args::{closest, shown};
use super::{Tool, ToolDefinition, ToolError, ToolErrorKind, ToolOutput, validate_tool_name};
use crate::context::RunContext;
use crate::error::ConfigError;
use crate::event::EventKind;
use crate::governance::hook::Asking;
use crate::model::{Content, ToolCall, ToolResult};

/// Uniquely named tools: what an agent offers the model, and what runs the model's calls.
///
/// ```
/// use loomflow::prelude::*;
///
/// /// Add two integers.
/// #[tool]
/// fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// let mut tools = ToolSet::new();
/// tools.insert(AddTool)?;
/// let err = tools.insert(AddTool).err().map(|e| e.to_string()).unwrap_or_default();
/// assert!(err.contains("two tools are named `add`"));
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct ToolSet {
    tools: Vec<Arc<dyn Tool>>,
    definitions: Vec<ToolDefinition>,
    index: HashMap<String, usize>,
}

impl fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.definitions.iter().map(ToolDefinition::name)).finish()
    }
}

impl ToolSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool; a name already in the set, or one that breaks the providers' naming rules,
    /// is a [`ConfigError`].
    pub fn insert(&mut self, tool: impl Tool) -> Result<(), ConfigError> {
        self.insert_arc(Arc::new(tool))
    }

    /// Adds a shared tool.
    pub fn insert_arc(&mut self, tool: Arc<dyn Tool>) -> Result<(), ConfigError> {
        let definition = tool.definition().clone();
        let name = definition.name().to_owned();
        validate_tool_name(&name)
            .map_err(|reason| ConfigError::InvalidToolName { name: name.clone(), reason: reason.to_owned() })?;
        if self.index.contains_key(&name) {
            return Err(ConfigError::DuplicateTool { name });
        }
        self.index.insert(name, self.tools.len());
        self.tools.push(tool);
        self.definitions.push(definition);
        Ok(())
    }

    /// Removes the tool named `name`.
    pub fn remove(&mut self, name: &str) -> Option<Arc<dyn Tool>> {
        let i = self.index.remove(name)?;
        self.definitions.remove(i);
        let tool = self.tools.remove(i);
        for slot in self.index.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        Some(tool)
    }

    /// The tool named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.index.get(name).map(|&i| &self.tools[i])
    }

    /// The definitions of every tool, in insertion order (what the model is shown).
    pub fn definitions(&self) -> &[ToolDefinition] {
        &self.definitions
    }

    /// The tool names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.definitions.iter().map(ToolDefinition::name)
    }

    /// How many tools there are.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Runs one call and returns the result the model will read. Never fails: an unknown
    /// tool, bad arguments, a tool error or a panic all become an error result.
    ///
    /// In a governed run the call is governed as the run's own are; a stop (a budget passed,
    /// a guardrail that blocks) becomes an error result here.
    pub async fn call(&self, ctx: &RunContext, call: &ToolCall) -> ToolResult {
        match dispatch(self, ctx, call).await {
            Ok(result) => result,
            Err(stop) => ToolResult::error(call.id.clone(), call.name.clone(), stop.to_string()),
        }
    }

    fn unknown(&self, name: &str) -> ToolError {
        let hint = match closest(name, self.names()) {
            Some(c) => format!(" (did you mean `{c}`?)"),
            None => String::new(),
        };
        let available = if self.is_empty() {
            "there are no tools".to_owned()
        } else {
            // A long list would cost more than it helps: the first names, and how many more.
            let mut names: Vec<String> = self.names().take(UNKNOWN_LISTS).map(|n| format!("`{n}`")).collect();
            if self.len() > UNKNOWN_LISTS {
                names.push(format!("and {} more", self.len() - UNKNOWN_LISTS));
            }
            format!("available tools: {}", names.join(", "))
        };
        let name = shown(name);
        ToolError::new(format!("unknown tool `{name}`{hint}; {available}")).with_kind(ToolErrorKind::UnknownTool)
    }
}

/// How many tool names the error for an unknown tool lists.
const UNKNOWN_LISTS: usize = 20;

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs one tool call, governed when the run is ([`Governed::tool`]): a governance stop is
/// the error, with the run's partial to be filled in by the loop that holds it.
///
/// [`Governed::tool`]: crate::governance::hook::Governed::tool
pub(crate) async fn dispatch(tools: &ToolSet, ctx: &RunContext, call: &ToolCall) -> Result<ToolResult, crate::Error> {
    dispatch_asking(tools, ctx, call, Asking::InProcess).await
}

/// [`dispatch`], where `asking` says what an approval may do (pause a journaled run, or apply
/// the decision a resumed run brought).
pub(crate) async fn dispatch_asking(
    tools: &ToolSet,
    ctx: &RunContext,
    call: &ToolCall,
    asking: Asking<'_>,
) -> Result<ToolResult, crate::Error> {
    match ctx.governed() {
        None => Ok(run_call(tools, ctx, call).await),
        // Boxed: an ungoverned call's future stays as it was.
        Some(governed) => {
            Box::pin(governed.tool(tools, ctx, call, asking, |call| async move { execute(tools, ctx, &call).await }))
                .await
                .map_err(|stop| stop.into_error(crate::governance::hook::partial_of(ctx, Default::default(), 0, 0)))
        }
    }
}

/// Runs one tool call: events, a span, panic capture, and conversion to a [`ToolResult`].
async fn run_call(tools: &ToolSet, ctx: &RunContext, call: &ToolCall) -> ToolResult {
    let started = ctx.is_observed().then(Instant::now);
    let result = execute(tools, ctx, call).await;
    finished(ctx, &result, started);
    result
}

/// Runs one tool call, up to its result: the start event, a span, panic capture, and
/// conversion to a [`ToolResult`]. [`finished`] reports the result — for a governed call,
/// after its guardrails, so what they remove is never in an event or a log.
pub(crate) async fn execute(tools: &ToolSet, ctx: &RunContext, call: &ToolCall) -> ToolResult {
    ctx.emit(|| EventKind::ToolCallStarted {
        call_id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
    });
    // The GenAI conventions' names and attributes (`telemetry::genai`), evaluated only when a
    // subscriber enables the span.
    let span = tracing::info_span!(
        "loom.tool",
        otel.name = %crate::telemetry::genai::SpanName("execute_tool", Some(&call.name)),
        tool = %call.name,
        call_id = %call.id,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = call.name.as_str(),
        gen_ai.tool.call.id = call.id.as_str(),
        gen_ai.tool.type = "function",
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    crate::telemetry::genai::tool_started(&span, call);
    let outcome: Result<ToolOutput, ToolError> = match tools.get(&call.name) {
        None => Err(tools.unknown(&call.name)),
        Some(tool) => AssertUnwindSafe(tool.call(ctx, &call.arguments))
            .catch_unwind()
            .instrument(span.clone())
            .await
            .unwrap_or_else(|payload| {
                Err(ToolError::new(format!("the tool panicked: {}", panic_message(&*payload)))
                    .with_kind(ToolErrorKind::Panicked))
            }),
    };
    crate::telemetry::genai::tool_finished(&span, ctx, &outcome);
    match outcome {
        Ok(output) => {
            ToolResult { call_id: call.id.clone(), name: call.name.clone(), content: output.0, is_error: false }
        }
        Err(error) => {
            tracing::debug!(tool = %call.name, kind = ?error.kind(), "tool call failed");
            ToolResult {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content: Content::Text(error.into_message().into()),
                is_error: true,
            }
        }
    }
}

/// Reports a tool call's result (`started`: when the call began, when someone listens).
pub(crate) fn finished(ctx: &RunContext, result: &ToolResult, started: Option<Instant>) {
    if let Some(started) = started {
        ctx.emit(|| EventKind::ToolCallFinished {
            call_id: result.call_id.clone(),
            name: result.name.clone(),
            is_error: result.is_error,
            output: result.content.text().into_owned(),
            duration: started.elapsed(),
        });
    }
}
