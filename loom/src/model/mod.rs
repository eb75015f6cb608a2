//! Models: the [`Model`] trait, requests and responses, and the built-in offline models.
//!
//! A model takes a provider-neutral [`ModelRequest`] (messages, tool definitions, settings)
//! and returns a [`ModelResponse`] (text, tool calls, usage), either at once
//! ([`Model::complete`]) or as a stream of [`StreamEvent`]s ([`Model::stream`]).
//!
//! [`EchoModel`] and [`ScriptedModel`] need no key and no network; [`resolve_model`] turns a
//! model string such as `"echo"` into a model.

mod echo;
mod error;
mod message;
pub mod pricing;
#[cfg(feature = "http")]
pub mod providers;
mod resolve;
mod retry;
mod scripted;
mod stream;
mod text;

use std::fmt;
use std::ops::{Add, AddAssign};
use std::sync::Arc;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

pub use echo::EchoModel;
pub use error::{ModelError, ModelErrorKind};
pub use message::{Content, MediaSource, Message, Part, Role, ToolCall, ToolResult};
pub use resolve::{IntoModel, KNOWN_MODEL_FORMS, from_env_or, resolve_model, resolve_model_with};
pub use retry::{RetryDecision, RetryPolicy};
pub use scripted::{RecordedRequest, ScriptedModel, ScriptedTurn};
pub use stream::{MAX_STREAMED_TOOL_CALLS, ResponseAccumulator, StreamEvent};
pub use text::Text;

use crate::id::UserId;
use crate::tool::ToolDefinition;

/// A stream of model output events, as returned by [`Model::stream`].
pub type ModelStream<'a> = BoxStream<'a, Result<StreamEvent, ModelError>>;

/// A language model: anything that turns a conversation into a reply.
///
/// Implement [`complete`](Model::complete); [`stream`](Model::stream) has a default that
/// emits the completed response as events, so a model that cannot stream still works with
/// streaming runs. Implementations must not panic on any input: a malformed provider reply is
/// a [`ModelError`] of kind [`ModelErrorKind::InvalidResponse`].
///
/// ```
/// use std::future::IntoFuture as _;
/// use loomflow::prelude::*;
/// use loomflow::model::{ModelRequest, ModelResponse};
///
/// /// Answers every question with its length.
/// struct Counter;
///
/// #[loomflow::async_trait]
/// impl Model for Counter {
///     fn name(&self) -> &str {
///         "counter"
///     }
///     async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
///         let last = request.messages.last().map(|m| m.text().len()).unwrap_or(0);
///         Ok(ModelResponse::text(format!("{last} characters")))
///     }
/// }
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let agent = Agent::new("Count.").model(Counter);
/// let result = rt.block_on(agent.run("hello").into_future())?;
/// assert_eq!(result.output, "5 characters");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Loom model",
    note = "implement `loomflow::Model` for it, or pass a model string such as \"echo\""
)]
#[async_trait::async_trait]
pub trait Model: Send + Sync + 'static {
    /// The model's name as reported in events, spans and results (e.g. `gpt-4.1-mini`).
    fn name(&self) -> &str;

    /// What the model can do; Loom picks output modes and features from it.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Runs the request and returns the whole reply.
    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError>;

    /// Runs the request and streams the reply as it is produced.
    ///
    /// The default calls [`complete`](Model::complete) and replays the reply as events.
    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        Box::pin(futures::stream::once(self.complete(request)).flat_map(|res| {
            let events: Vec<Result<StreamEvent, ModelError>> = match res {
                Ok(response) => StreamEvent::replay(response).into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(events)
        }))
    }
}

use futures::StreamExt as _;

#[async_trait::async_trait]
impl<M: Model + ?Sized> Model for Arc<M> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        (**self).complete(request).await
    }
    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        (**self).stream(request)
    }
}

#[async_trait::async_trait]
impl<M: Model + ?Sized> Model for Box<M> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        (**self).complete(request).await
    }
    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        (**self).stream(request)
    }
}

/// What a model supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The model can call tools.
    pub tools: bool,
    /// The provider can constrain the reply to a JSON schema (native structured output).
    pub native_structured_output: bool,
    /// The provider streams replies token by token.
    pub streaming: bool,
    /// The model accepts images.
    pub vision: bool,
    /// The provider supports prompt caching.
    pub prompt_caching: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self { tools: true, native_structured_output: false, streaming: false, vision: false, prompt_caching: false }
    }
}

impl Capabilities {
    /// Sets [`Capabilities::native_structured_output`].
    #[must_use]
    pub fn with_native_structured_output(mut self, yes: bool) -> Self {
        self.native_structured_output = yes;
        self
    }

    /// Sets [`Capabilities::streaming`].
    #[must_use]
    pub fn with_streaming(mut self, yes: bool) -> Self {
        self.streaming = yes;
        self
    }

    /// Sets [`Capabilities::tools`].
    #[must_use]
    pub fn with_tools(mut self, yes: bool) -> Self {
        self.tools = yes;
        self
    }

    /// Sets [`Capabilities::vision`].
    #[must_use]
    pub fn with_vision(mut self, yes: bool) -> Self {
        self.vision = yes;
        self
    }

    /// Sets [`Capabilities::prompt_caching`].
    #[must_use]
    pub fn with_prompt_caching(mut self, yes: bool) -> Self {
        self.prompt_caching = yes;
        self
    }
}

/// One request to a model. It borrows the conversation: building a request copies nothing.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ModelRequest<'a> {
    /// The conversation so far.
    pub messages: &'a [Message],
    /// The tools the model may call.
    pub tools: &'a [ToolDefinition],
    /// Whether (and which) tool the model must call.
    pub tool_choice: &'a ToolChoice,
    /// A schema the reply must follow, for providers with native structured output.
    pub response_format: Option<&'a ResponseFormat>,
    /// Sampling and provider settings.
    pub settings: &'a ModelSettings,
    /// Who the run is for, so that a provider's per-conversation state (Gemini's thought
    /// signatures) is kept apart per user. `None` outside a run.
    pub user: Option<&'a UserId>,
}

static DEFAULT_SETTINGS: ModelSettings = ModelSettings::new();
static AUTO: ToolChoice = ToolChoice::Auto;

impl<'a> ModelRequest<'a> {
    /// A request with these messages, no tools and default settings.
    pub fn new(messages: &'a [Message]) -> Self {
        Self {
            messages,
            tools: &[],
            tool_choice: &AUTO,
            response_format: None,
            settings: &DEFAULT_SETTINGS,
            user: None,
        }
    }

    /// Sets the user the request is for.
    #[must_use]
    pub fn with_user(mut self, user: &'a UserId) -> Self {
        self.user = Some(user);
        self
    }

    /// Sets the tools.
    #[must_use]
    pub fn with_tools(mut self, tools: &'a [ToolDefinition]) -> Self {
        self.tools = tools;
        self
    }

    /// Sets the tool choice.
    #[must_use]
    pub fn with_tool_choice(mut self, choice: &'a ToolChoice) -> Self {
        self.tool_choice = choice;
        self
    }

    /// Sets the response format.
    #[must_use]
    pub fn with_response_format(mut self, format: Option<&'a ResponseFormat>) -> Self {
        self.response_format = format;
        self
    }

    /// Sets the settings.
    #[must_use]
    pub fn with_settings(mut self, settings: &'a ModelSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The text of the last user message, if there is one.
    pub fn last_user_text(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.messages.iter().rev().find(|m| m.role() == Role::User).map(Message::text)
    }

    /// Whether the last message is a tool result (the model is reading tool output).
    pub fn last_is_tool_result(&self) -> bool {
        matches!(self.messages.last(), Some(Message::Tool(_)))
    }
}

/// Whether the model may, must or must not call tools.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Tool(String),
}

/// A JSON schema the model's reply must follow (native structured output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResponseFormat {
    /// A name for the schema (providers require one), e.g. the Rust type name.
    pub name: String,
    /// The schema, as plain JSON Schema (2020-12), for providers that take it as it is.
    pub schema: Arc<serde_json::Value>,
    /// The schema in OpenAI's strict subset, when the type can be expressed in it.
    pub strict: Option<Arc<serde_json::Value>>,
}

impl ResponseFormat {
    /// A response format named `name` with `schema`.
    pub fn new(name: impl Into<String>, schema: Arc<serde_json::Value>) -> Self {
        Self { name: name.into(), schema, strict: None }
    }

    /// Sets the strict form of the schema.
    #[must_use]
    pub fn with_strict(mut self, strict: Option<Arc<serde_json::Value>>) -> Self {
        self.strict = strict;
        self
    }
}

/// How hard a reasoning model should think.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Effort {
    /// As little reasoning as the model allows.
    Minimal,
    /// Light reasoning.
    Low,
    /// The provider's usual amount.
    Medium,
    /// Deep reasoning.
    High,
}

impl fmt::Display for Effort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        })
    }
}

/// Sampling and provider settings of an agent's model calls.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelSettings {
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// The most tokens the reply may have.
    pub max_tokens: Option<u32>,
    /// Sequences that end the reply.
    pub stop: Vec<String>,
    /// Whether the model may ask for several tool calls in one turn (provider default when unset).
    pub parallel_tool_calls: Option<bool>,
    /// Reasoning effort for models that reason; `None` leaves the provider's default.
    pub effort: Option<Effort>,
    /// Whether to mark the stable prefix (instructions, tools) for provider prompt caching.
    pub prompt_caching: bool,
}

impl ModelSettings {
    /// The provider defaults.
    pub const fn new() -> Self {
        Self {
            temperature: None,
            top_p: None,
            max_tokens: None,
            stop: Vec::new(),
            parallel_tool_calls: None,
            effort: None,
            prompt_caching: false,
        }
    }
}

/// A model's whole reply to one request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelResponse {
    /// The text of the reply (empty when the model only calls tools).
    pub text: Text,
    /// The tools the model asks to call.
    pub tool_calls: Vec<ToolCall>,
    /// Reasoning the provider returned, if any (not sent back to the model by default).
    pub reasoning: Option<String>,
    /// Tokens used.
    pub usage: Usage,
    /// Why the reply ended.
    pub finish_reason: FinishReason,
    /// The model that answered, as the provider named it.
    pub model: Option<String>,
    /// The provider's id of the request.
    pub request_id: Option<String>,
}

impl ModelResponse {
    /// A text reply.
    pub fn text(text: impl Into<Text>) -> Self {
        Self { text: text.into(), finish_reason: FinishReason::Stop, ..Self::default() }
    }

    /// A reply that calls tools.
    pub fn tool_calls(calls: Vec<ToolCall>) -> Self {
        Self { tool_calls: calls, finish_reason: FinishReason::ToolCalls, ..Self::default() }
    }

    /// Sets the usage.
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// The assistant message this reply adds to the conversation.
    pub fn into_message(self) -> Message {
        Message::Assistant { content: Content::Text(self.text), tool_calls: self.tool_calls }
    }
}

/// Why a reply ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// The model finished its answer.
    #[default]
    Stop,
    /// The model stopped to call tools.
    ToolCalls,
    /// The reply hit the token limit.
    Length,
    /// The provider's content filter stopped the reply.
    ContentFilter,
    /// Something the provider named otherwise.
    Other(String),
}

/// Tokens used by one model call, or summed over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Input tokens billed at the full rate (cache misses).
    pub input_tokens: u64,
    /// Output tokens (including reasoning tokens).
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning, when the provider reports them.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Usage with these input and output token counts.
    pub const fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self { input_tokens, output_tokens, cached_input_tokens: 0, cache_write_tokens: 0, reasoning_tokens: 0 }
    }

    /// Sets the cached input tokens.
    #[must_use]
    pub const fn with_cached_input_tokens(mut self, n: u64) -> Self {
        self.cached_input_tokens = n;
        self
    }

    /// Sets the cache write tokens.
    #[must_use]
    pub const fn with_cache_write_tokens(mut self, n: u64) -> Self {
        self.cache_write_tokens = n;
        self
    }

    /// Sets the reasoning tokens.
    #[must_use]
    pub const fn with_reasoning_tokens(mut self, n: u64) -> Self {
        self.reasoning_tokens = n;
        self
    }

    /// All input tokens: full rate, cached and cache writes.
    pub const fn total_input_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.cached_input_tokens).saturating_add(self.cache_write_tokens)
    }

    /// All tokens, input and output.
    pub const fn total_tokens(&self) -> u64 {
        self.total_input_tokens().saturating_add(self.output_tokens)
    }
}

impl Add for Usage {
    type Output = Self;
    fn add(mut self, rhs: Self) -> Self {
        self += rhs;
        self
    }
}

/// Sums saturate: counts come from providers, and a server that reports absurd ones must not
/// make a run panic or wrap around to small numbers.
impl AddAssign for Usage {
    fn add_assign(&mut self, rhs: Self) {
        self.input_tokens = self.input_tokens.saturating_add(rhs.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(rhs.output_tokens);
        self.cached_input_tokens = self.cached_input_tokens.saturating_add(rhs.cached_input_tokens);
        self.cache_write_tokens = self.cache_write_tokens.saturating_add(rhs.cache_write_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(rhs.reasoning_tokens);
    }
}

impl std::iter::Sum for Usage {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::Usage;

    #[test]
    fn usage_sums_saturate_instead_of_wrapping() {
        let absurd = Usage::new(u64::MAX - 1, u64::MAX).with_cached_input_tokens(u64::MAX);
        let mut total = Usage::new(5, 5);
        total += absurd;
        assert_eq!(
            (total.input_tokens, total.output_tokens, total.cached_input_tokens),
            (u64::MAX, u64::MAX, u64::MAX)
        );
        assert_eq!(total.total_tokens(), u64::MAX);
        let summed: Usage = [absurd, absurd, Usage::new(1, 1)].into_iter().sum();
        assert_eq!(summed.output_tokens, u64::MAX);
    }
}
