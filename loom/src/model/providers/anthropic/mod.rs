//! Anthropic Messages (`POST /v1/messages`): Claude models, streamed or not, with tools,
//! images and documents, prompt caching and extended thinking.
//!
//! Loom's conversation maps onto the Messages API like this:
//!
//! - every [`Message::System`] becomes a block of the top-level `system` array;
//! - user turns and tool results both travel as `user` messages, and consecutive ones are
//!   merged into one (the API wants `user` and `assistant` to alternate), with the
//!   `tool_result` blocks first;
//! - an assistant turn is its text block followed by one `tool_use` block per call.
//!
//! With prompt caching on (the default), the last system block and the last tool definition
//! carry `cache_control`, so the stable prefix of every request is read from the cache.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{ApiKey, Auth, Endpoint, Http, HttpConfig, env};
use super::sse::{SseEvent, StreamParser};
use super::status::{invalid_body, malformed};
use super::wire::{decode_base64, nullable};
use crate::error::ConfigError;
use crate::model::{
    Capabilities, Content, Effort, FinishReason, MediaSource, Message, Model, ModelError, ModelErrorKind, ModelRequest,
    ModelResponse, ModelStream, Part, StreamEvent, ToolCall, ToolChoice, ToolResult, Usage,
};

mod request;
mod response;
#[cfg(test)]
mod tests;

use request::*;
use response::*;

/// The official API's base URL.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com/v1";

/// The API version Loom speaks, sent as the `anthropic-version` header.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

const PROVIDER: &str = "anthropic";

/// `max_tokens` when the settings leave it unset (the API requires one).
const DEFAULT_MAX_TOKENS: u32 = 8192;

/// `max_tokens` for the Claude 3 models whose output stops at 4096 tokens.
const CLAUDE_3_MAX_TOKENS: u32 = 4096;

/// Tokens left for the answer when `max_tokens` had to grow past the thinking budget.
const ANSWER_HEADROOM: u32 = 4096;

/// Model families that accept extended thinking (`thinking: {type: "enabled"}`).
const THINKING_MODELS: [&str; 4] = ["claude-3-7", "claude-sonnet-4", "claude-opus-4", "claude-haiku-4"];

/// `ANTHROPIC_BASE_URL` names the API root (`https://api.anthropic.com`), as Anthropic's own
/// tools read it; Loom's base URLs include the version segment.
fn versioned(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") { base.to_owned() } else { format!("{base}/v1") }
}

/// A Claude model served through Anthropic's Messages API.
///
/// ```
/// use loomflow::model::providers::{AnthropicModel, ApiKey, HttpConfig};
/// let mut config = HttpConfig::new("https://api.anthropic.com/v1");
/// config.api_key = Some(ApiKey::new("sk-ant-..."));
/// let model = AnthropicModel::new("claude-sonnet-4-5", config)?.with_prompt_caching(false);
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
///
/// Its `Debug` output never shows the key or the values of extra headers.
#[derive(Debug, Clone)]
pub struct AnthropicModel {
    model: String,
    url: Endpoint,
    http: Http,
    prompt_caching: bool,
}

impl AnthropicModel {
    /// `model` on the server `config` describes (`{base_url}/messages`), with prompt caching
    /// on. The key goes in `x-api-key`; `anthropic-version` is [`ANTHROPIC_VERSION`] unless
    /// the config's headers set another.
    pub fn new(model: impl Into<String>, config: HttpConfig) -> Result<Self, ConfigError> {
        let model = model.into();
        if model.trim().is_empty() {
            return Err(ConfigError::InvalidSetting { setting: "model", reason: "the model name is empty".to_owned() });
        }
        let http =
            Http::new(PROVIDER, &config, Auth::Header("x-api-key"), &[("anthropic-version", ANTHROPIC_VERSION)])?;
        Ok(Self { model, url: Endpoint::new(&config.base_url, "/messages"), http, prompt_caching: true })
    }

    /// `model` with the key from `ANTHROPIC_API_KEY` and the API root from
    /// `ANTHROPIC_BASE_URL` (default [`ANTHROPIC_BASE_URL`]; `/v1` is added when the variable
    /// names the root without it). The key is required unless the base URL is set (a proxy
    /// that adds the key itself).
    pub fn from_env(model: impl Into<String>) -> Result<Self, ConfigError> {
        let base = env("ANTHROPIC_BASE_URL");
        let key = env("ANTHROPIC_API_KEY");
        if key.is_none() && base.is_none() {
            return Err(ConfigError::MissingApiKey { provider: PROVIDER, variable: "ANTHROPIC_API_KEY" });
        }
        let mut config = HttpConfig::new(base.as_deref().map_or_else(|| ANTHROPIC_BASE_URL.to_owned(), versioned));
        config.api_key = key.map(ApiKey::new);
        Self::new(model, config)
    }

    /// Whether to mark the system prompt and the tool definitions for prompt caching (on by
    /// default). When off, a run's [`ModelSettings::prompt_caching`](crate::model::ModelSettings)
    /// still turns it on for that run.
    #[must_use]
    pub fn with_prompt_caching(mut self, enabled: bool) -> Self {
        self.prompt_caching = enabled;
        self
    }

    /// The model's name without a gateway's `vendor/` prefix.
    fn family(&self) -> &str {
        self.model.rsplit('/').next().unwrap_or(&self.model)
    }

    fn supports_thinking(&self) -> bool {
        THINKING_MODELS.iter().any(|p| self.family().starts_with(p))
    }

    fn default_max_tokens(&self) -> u32 {
        let short = ["claude-3-opus", "claude-3-sonnet", "claude-3-haiku"];
        if short.iter().any(|p| self.family().starts_with(p)) { CLAUDE_3_MAX_TOKENS } else { DEFAULT_MAX_TOKENS }
    }

    /// The thinking budget of `request`, when its effort can be honoured.
    fn thinking_budget(&self, request: &ModelRequest<'_>, forced_tool: bool) -> Option<u32> {
        let effort = request.settings.effort?;
        if !self.supports_thinking() {
            tracing::debug!(model = %self.model, "`{effort}` effort ignored: the model has no extended thinking");
            return None;
        }
        if forced_tool {
            tracing::debug!(model = %self.model, "`{effort}` effort ignored: thinking cannot be combined with a forced tool choice");
            return None;
        }
        if continues_assistant_turn(request.messages) {
            // Loom's messages do not keep the signed thinking blocks the API wants back within
            // a turn, so a turn that is under way goes on without thinking.
            tracing::debug!(model = %self.model, "`{effort}` effort ignored: the request continues an assistant turn");
            return None;
        }
        Some(match effort {
            Effort::Minimal => 1024,
            Effort::Low => 2048,
            Effort::Medium => 8192,
            Effort::High => 16384,
        })
    }

    /// The request body of `request`, streamed or not.
    pub fn request_body(&self, request: &ModelRequest<'_>, stream: bool) -> Value {
        let s = request.settings;
        let caching = self.prompt_caching || s.prompt_caching;
        let mut body = Map::new();
        body.insert("model".into(), self.model.clone().into());

        let mut system: Vec<Value> = request
            .messages
            .iter()
            .filter_map(|m| match m {
                Message::System { content } if !content.trim().is_empty() => {
                    Some(json!({"type": "text", "text": &**content}))
                }
                _ => None,
            })
            .collect();
        if caching && let Some(Value::Object(last)) = system.last_mut() {
            last.insert("cache_control".into(), ephemeral());
        }
        if !system.is_empty() {
            body.insert("system".into(), system.into());
        }
        body.insert("messages".into(), messages(request.messages).into());

        let mut forced_tool = false;
        if !request.tools.is_empty() {
            let mut tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| json!({"name": t.name(), "description": t.description(), "input_schema": t.parameters()}))
                .collect();
            if caching && let Some(Value::Object(last)) = tools.last_mut() {
                last.insert("cache_control".into(), ephemeral());
            }
            body.insert("tools".into(), tools.into());
            let mut choice = match request.tool_choice {
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
                _ => json!({"type": "auto"}),
            };
            forced_tool = matches!(request.tool_choice, ToolChoice::Required | ToolChoice::Tool(_));
            if s.parallel_tool_calls == Some(false)
                && !matches!(request.tool_choice, ToolChoice::None)
                && let Value::Object(c) = &mut choice
            {
                c.insert("disable_parallel_tool_use".into(), true.into());
            }
            body.insert("tool_choice".into(), choice);
        }

        let thinking = self.thinking_budget(request, forced_tool);
        let mut max_tokens = s.max_tokens.unwrap_or_else(|| self.default_max_tokens());
        if let Some(budget) = thinking {
            if max_tokens <= budget {
                max_tokens = budget + ANSWER_HEADROOM;
            }
            body.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": budget}));
        }
        body.insert("max_tokens".into(), max_tokens.into());

        if let Some(t) = s.temperature {
            if thinking.is_some() {
                tracing::debug!(model = %self.model, "temperature ignored: extended thinking does not accept one");
            } else {
                body.insert("temperature".into(), json!(t));
            }
        }
        if let Some(p) = s.top_p {
            if thinking.is_some() && p < 0.95 {
                tracing::debug!(model = %self.model, "top_p {p} ignored: extended thinking accepts 0.95 to 1 only");
            } else {
                body.insert("top_p".into(), json!(p));
            }
        }
        if !s.stop.is_empty() {
            body.insert("stop_sequences".into(), json!(s.stop));
        }
        if stream {
            body.insert("stream".into(), true.into());
        }
        Value::Object(body)
    }
}

#[async_trait::async_trait]
impl Model for AnthropicModel {
    fn name(&self) -> &str {
        &self.model
    }

    fn capabilities(&self) -> Capabilities {
        // Structured output goes through prompted or tool mode.
        Capabilities::default()
            .with_tools(true)
            .with_streaming(true)
            .with_vision(true)
            .with_prompt_caching(true)
            .with_native_structured_output(false)
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        let (bytes, request_id) = self.http.post(&self.url, &self.request_body(request, false), classify).await?;
        let mut response = parse_message(&bytes)?;
        response.request_id = request_id;
        Ok(response)
    }

    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        self.http.stream(&self.url, self.request_body(request, true), classify, EventParser::new())
    }
}
