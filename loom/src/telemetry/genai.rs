//! The OpenTelemetry GenAI semantic conventions on Loom's `tracing` spans.
//!
//! Every agent run, model call, tool call and workflow run is a `tracing` span; besides Loom's
//! own fields (`run_id`, `model`, `tool`, ...) each carries the names and attributes of the
//! [GenAI semantic conventions](https://opentelemetry.io/docs/specs/semconv/gen-ai/):
//!
//! | span | OpenTelemetry name | `gen_ai.operation.name` | attributes |
//! |---|---|---|---|
//! | `loom.run` | `invoke_agent {agent}` | `invoke_agent` | `gen_ai.agent.name`, `gen_ai.conversation.id`, `gen_ai.request.model`, `gen_ai.provider.name`, `gen_ai.usage.*` |
//! | `loom.workflow` | `invoke_workflow {workflow}` | `invoke_workflow` | `gen_ai.agent.name`, `gen_ai.conversation.id` |
//! | `loom.model` | `chat {model}` | `chat` | `gen_ai.request.*`, `gen_ai.response.model`, `gen_ai.response.id`, `gen_ai.usage.*` |
//! | `loom.tool` | `execute_tool {tool}` | `execute_tool` | `gen_ai.tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.type` |
//!
//! A failed operation gets `error.type` and an error status. The names travel in the
//! `otel.name` and `otel.kind` fields that `tracing-opentelemetry` reads.
//!
//! This module is always compiled and costs a run without a subscriber nothing: the fields are
//! static strings, borrowed names and empty fields, the values of a span's fields are only
//! evaluated when a subscriber enabled it, and every function here returns at once for a
//! disabled span. Message contents are never recorded here: only the `otel` feature's
//! exporter records them, and only when asked to
//! ([`Telemetry::capture_content`](super::otel::Telemetry::capture_content)).

use std::fmt;

use tracing::Span;

use crate::agent::{AgentInput, RunResult};
use crate::context::RunContext;
use crate::error::Error;
#[cfg(feature = "otel")]
use crate::governance::Stage;
use crate::model::{ModelError, ModelRequest, ModelResponse, ToolCall};
use crate::tool::{ToolError, ToolOutput};

/// The name of a span by the conventions: the operation, then the name of what it runs, when
/// it has one (`chat gpt-4.1-mini`, `invoke_agent researcher`, `invoke_agent`).
pub(crate) struct SpanName<'a>(pub(crate) &'static str, pub(crate) Option<&'a str>);

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        match self.1 {
            Some(name) if !name.is_empty() => write!(f, " {name}"),
            _ => Ok(()),
        }
    }
}

/// The `gen_ai.provider.name` of a model, by the model-name families Loom resolves (see
/// [`resolve_model`](crate::model::resolve_model)); `None` when the name does not tell.
pub(crate) fn provider_name(model: &str) -> Option<&'static str> {
    const FAMILIES: &[(&str, &str)] = &[
        ("gpt-", "openai"),
        ("chatgpt-", "openai"),
        ("o1", "openai"),
        ("o3", "openai"),
        ("o4", "openai"),
        ("claude-", "anthropic"),
        ("gemini-", "gcp.gemini"),
        ("deepseek-", "deepseek"),
    ];
    match model {
        "echo" | "scripted" => Some("loom"),
        _ => FAMILIES.iter().find(|(prefix, _)| model.starts_with(prefix)).map(|&(_, provider)| provider),
    }
}

/// A token count as an integer attribute (`tracing-opentelemetry` keeps a `u64` as text).
fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A unit variant's `Debug` name in snake case (`RateLimited` → `rate_limited`), written
/// without allocating: a low-cardinality `error.type`.
struct SnakeCase<T>(T);

impl<T: fmt::Debug> fmt::Display for SnakeCase<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Lower<'a, 'b> {
            f: &'a mut fmt::Formatter<'b>,
            first: bool,
        }
        impl fmt::Write for Lower<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                for c in s.chars() {
                    if c.is_ascii_uppercase() {
                        if !self.first {
                            self.f.write_char('_')?;
                        }
                        self.f.write_char(c.to_ascii_lowercase())?;
                    } else {
                        self.f.write_char(c)?;
                    }
                    self.first = false;
                }
                Ok(())
            }
        }
        fmt::write(&mut Lower { f, first: true }, format_args!("{:?}", self.0))
    }
}

/// The `error.type` of a failed run: the kind of a model error, else the area that failed.
struct ErrorType<'a>(&'a Error);

impl fmt::Display for ErrorType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[allow(unreachable_patterns)] // the areas behind features
        let area = match self.0 {
            Error::Model(e) => return SnakeCase(e.kind()).fmt(f),
            Error::Config(_) => "config",
            Error::Run(_) => "run",
            Error::Store(_) => "store",
            Error::Workflow(_) => "workflow",
            Error::Output(_) => "output",
            _ => "error",
        };
        f.write_str(area)
    }
}

/// Marks `span` failed with `error_type`.
fn failed(span: &Span, error_type: &dyn fmt::Display) {
    span.record("error.type", tracing::field::display(error_type));
    span.record("otel.status_code", "error");
}

/// An agent run of `ctx` began on `input` (its contents go to the exporter only when it
/// captures them, and no input guardrail has yet to check them).
pub(crate) fn run_started(span: &Span, ctx: &RunContext, input: &AgentInput) {
    if span.is_disabled() {
        return;
    }
    #[cfg(feature = "otel")]
    if let (AgentInput::Message(content), false) = (input, guarded(ctx, Stage::Input)) {
        super::otel::content::run_input(span, content);
    }
    #[cfg(not(feature = "otel"))]
    let _ = (ctx, input);
}

/// An agent run ended: its usage, or its error, on the run's span — the current span, as this
/// is called from inside the instrumented run (so the run's future keeps no second handle).
pub(crate) fn run_finished<O>(outcome: &Result<RunResult<O>, Error>) {
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    match outcome {
        Ok(result) => {
            record_usage(&span, &result.usage);
            #[cfg(feature = "otel")]
            super::otel::content::run_output(&span, &result.messages);
        }
        Err(e) => failed(&span, &ErrorType(e)),
    }
}

/// A model call is about to be made.
pub(crate) fn chat_started(span: &Span, request: &ModelRequest<'_>) {
    if span.is_disabled() {
        return;
    }
    #[cfg(feature = "otel")]
    super::otel::content::chat_request(span, request);
    #[cfg(not(feature = "otel"))]
    let _ = request;
}

/// Whether the run's guardrails check what `stage` produces: then the contents of that stage
/// are left to the spans that see them after the guardrails (the next model call's input, the
/// run's output), so nothing a guardrail removes is exported.
#[cfg(feature = "otel")]
fn guarded(ctx: &RunContext, stage: Stage) -> bool {
    ctx.governed().is_some_and(|g| g.gov.has_guards(stage))
}

/// A model call of the run of `ctx` answered, or failed.
pub(crate) fn chat_finished(span: &Span, ctx: &RunContext, outcome: Result<&ModelResponse, &ModelError>) {
    if span.is_disabled() {
        return;
    }
    match outcome {
        Ok(response) => {
            record_usage(span, &response.usage);
            span.record("gen_ai.response.model", response.model.as_deref());
            span.record("gen_ai.response.id", response.request_id.as_deref());
            #[cfg(feature = "otel")]
            super::otel::content::chat_response(span, response, !guarded(ctx, Stage::Output));
            #[cfg(not(feature = "otel"))]
            let _ = ctx;
        }
        Err(e) => failed(span, &SnakeCase(e.kind())),
    }
}

fn record_usage(span: &Span, usage: &crate::model::Usage) {
    span.record("gen_ai.usage.input_tokens", tokens(usage.total_input_tokens()));
    span.record("gen_ai.usage.output_tokens", tokens(usage.output_tokens));
    if usage.cached_input_tokens > 0 {
        span.record("gen_ai.usage.cache_read.input_tokens", tokens(usage.cached_input_tokens));
    }
    if usage.cache_write_tokens > 0 {
        span.record("gen_ai.usage.cache_creation.input_tokens", tokens(usage.cache_write_tokens));
    }
}

/// A tool call is about to run.
pub(crate) fn tool_started(span: &Span, call: &ToolCall) {
    if span.is_disabled() {
        return;
    }
    #[cfg(feature = "otel")]
    super::otel::content::tool_arguments(span, &call.arguments);
    #[cfg(not(feature = "otel"))]
    let _ = call;
}

/// A tool call of the run of `ctx` returned.
pub(crate) fn tool_finished(span: &Span, ctx: &RunContext, outcome: &Result<ToolOutput, ToolError>) {
    if span.is_disabled() {
        return;
    }
    match outcome {
        Ok(_output) => {
            #[cfg(feature = "otel")]
            if !guarded(ctx, Stage::ToolResult) {
                super::otel::content::tool_result(span, &_output.0);
            }
            #[cfg(not(feature = "otel"))]
            let _ = ctx;
        }
        Err(e) => failed(span, &SnakeCase(e.kind())),
    }
}

/// A workflow run ended.
pub(crate) fn workflow_finished<T>(span: &Span, outcome: &Result<T, Error>) {
    if let (false, Err(e)) = (span.is_disabled(), outcome) {
        failed(span, &ErrorType(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_names_follow_the_conventions() {
        assert_eq!(SpanName("chat", Some("gpt-4.1-mini")).to_string(), "chat gpt-4.1-mini");
        assert_eq!(SpanName("invoke_agent", None).to_string(), "invoke_agent");
        assert_eq!(SpanName("invoke_agent", Some("")).to_string(), "invoke_agent");
    }

    #[test]
    fn providers_come_from_the_model_families() {
        assert_eq!(provider_name("gpt-4.1-mini"), Some("openai"));
        assert_eq!(provider_name("o3-mini"), Some("openai"));
        assert_eq!(provider_name("claude-sonnet-4-5"), Some("anthropic"));
        assert_eq!(provider_name("gemini-2.5-flash"), Some("gcp.gemini"));
        assert_eq!(provider_name("deepseek-chat"), Some("deepseek"));
        assert_eq!(provider_name("echo"), Some("loom"));
        assert_eq!(provider_name("llama3.2"), None);
    }

    #[test]
    fn error_types_are_snake_case() {
        assert_eq!(SnakeCase(crate::model::ModelErrorKind::RateLimited).to_string(), "rate_limited");
        assert_eq!(SnakeCase(crate::tool::ToolErrorKind::UnknownTool).to_string(), "unknown_tool");
        let e = Error::Model(ModelError::new(crate::model::ModelErrorKind::Timeout, "test", "slow"));
        assert_eq!(ErrorType(&e).to_string(), "timeout");
    }
}
