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

use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{ApiKey, Http, HttpConfig, StreamParser, env, invalid_body, malformed};
use super::sse::SseEvent;
use crate::error::ConfigError;
use crate::model::{
    Capabilities, Content, Effort, FinishReason, MediaSource, Message, Model, ModelError, ModelErrorKind, ModelRequest,
    ModelResponse, ModelStream, Part, StreamEvent, ToolCall, ToolChoice, ToolResult, Usage,
};

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
#[derive(Debug, Clone)]
pub struct AnthropicModel {
    model: String,
    url: String,
    api_key: Option<ApiKey>,
    headers: Vec<(String, String)>,
    http: Http,
    prompt_caching: bool,
}

impl AnthropicModel {
    /// `model` on the server `config` describes (`{base_url}/messages`), with prompt caching
    /// on.
    pub fn new(model: impl Into<String>, config: HttpConfig) -> Result<Self, ConfigError> {
        let http = Http::new(PROVIDER, &config)?;
        Ok(Self {
            model: model.into(),
            url: format!("{}/messages", config.base_url),
            api_key: config.api_key,
            headers: config.headers,
            http,
            prompt_caching: true,
        })
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

    fn headers(&self) -> Vec<(&str, &str)> {
        let mut h: Vec<(&str, &str)> = Vec::with_capacity(2 + self.headers.len());
        if let Some(key) = &self.api_key {
            h.push(("x-api-key", key.expose()));
        }
        if !self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("anthropic-version")) {
            h.push(("anthropic-version", ANTHROPIC_VERSION));
        }
        h.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        h
    }
}

fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

/// Whether the reply asked for continues an assistant turn: the conversation ends with tool
/// results (a tool-use loop) or with the assistant's own words (a prefill).
fn continues_assistant_turn(messages: &[Message]) -> bool {
    let mut saw_user = false;
    for m in messages.iter().rev() {
        match m {
            Message::System { .. } => {}
            Message::Tool(_) => return true,
            Message::User { .. } => saw_user = true,
            Message::Assistant { .. } => return !saw_user,
        }
    }
    false
}

/// One `user` or `assistant` message on the wire, built from one or more Loom messages.
struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

/// The `messages` array: roles alternate, empty turns are left out, tool results lead their
/// user turn.
fn messages(messages: &[Message]) -> Vec<Value> {
    let mut turns: Vec<Turn> = Vec::with_capacity(messages.len());
    for m in messages {
        let (role, blocks) = match m {
            Message::System { .. } => continue,
            Message::User { content } => ("user", content_blocks(content)),
            Message::Assistant { content, tool_calls } => {
                let text = content.text();
                let mut blocks = Vec::with_capacity(1 + tool_calls.len());
                if !text.trim().is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                blocks.extend(tool_calls.iter().map(
                    |c| json!({"type": "tool_use", "id": tool_id(&c.id), "name": c.name, "input": tool_input(c)}),
                ));
                ("assistant", blocks)
            }
            Message::Tool(r) => ("user", vec![tool_result(r)]),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(turn) if turn.role == role => turn.blocks.extend(blocks),
            _ => turns.push(Turn { role, blocks }),
        }
    }
    // A prefilled assistant reply may not end with whitespace.
    if let Some(last) = turns.last_mut()
        && last.role == "assistant"
        && let Some(Value::Object(block)) = last.blocks.last_mut()
        && let Some(Value::String(text)) = block.get_mut("text")
    {
        text.truncate(text.trim_end().len());
    }
    turns
        .into_iter()
        .map(|mut turn| {
            if turn.role == "user" {
                // Stable: tool results keep their order, and so does the rest.
                turn.blocks.sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
            }
            let content = match turn.blocks.as_slice() {
                [Value::Object(b)] if b.len() == 2 && b.get("type").and_then(Value::as_str) == Some("text") => {
                    b.get("text").cloned().unwrap_or_default()
                }
                _ => Value::Array(turn.blocks),
            };
            json!({"role": turn.role, "content": content})
        })
        .collect()
}

/// A tool call's arguments as the JSON object `tool_use.input` must be; arguments that are not
/// one (malformed JSON from an earlier reply) go back as `{}`.
fn tool_input(call: &ToolCall) -> Value {
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            if !call.arguments.trim().is_empty() {
                tracing::debug!(tool = %call.name, call_id = %call.id, "arguments are not a JSON object; sent as {{}}");
            }
            Value::Object(Map::new())
        }
    }
}

/// Tool-use ids must match `^[a-zA-Z0-9_-]+$`; ids minted by other providers (after a
/// fallback) are made to fit, the same way on the call and on its result.
fn tool_id(id: &str) -> std::borrow::Cow<'_, str> {
    if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        std::borrow::Cow::Borrowed(id)
    } else {
        std::borrow::Cow::Owned(
            id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect(),
        )
    }
}

fn tool_result(r: &ToolResult) -> Value {
    let content = match &r.content {
        Content::Text(t) => Value::String(t.to_string()),
        Content::Parts(_) => match content_blocks(&r.content) {
            blocks if blocks.is_empty() => Value::String(String::new()),
            blocks => Value::Array(blocks),
        },
    };
    let mut block = json!({"type": "tool_result", "tool_use_id": tool_id(&r.call_id), "content": content});
    if r.is_error
        && let Value::Object(b) = &mut block
    {
        b.insert("is_error".into(), true.into());
    }
    block
}

/// The blocks of user content; blank text is left out (the API rejects empty text blocks).
fn content_blocks(content: &Content) -> Vec<Value> {
    match content {
        Content::Text(t) if t.trim().is_empty() => Vec::new(),
        Content::Text(t) => vec![json!({"type": "text", "text": t})],
        Content::Parts(parts) => parts.iter().filter_map(part).collect(),
    }
}

fn part(p: &Part) -> Option<Value> {
    Some(match p {
        Part::Text { text } if text.trim().is_empty() => return None,
        Part::Text { text } => json!({"type": "text", "text": text}),
        Part::Image { source } => {
            let source = match source {
                MediaSource::Url { url } => json!({"type": "url", "url": url}),
                MediaSource::Base64 { media_type, data } => {
                    json!({"type": "base64", "media_type": media_type, "data": data})
                }
            };
            json!({"type": "image", "source": source})
        }
        Part::Document { source, name } => {
            let source = match source {
                MediaSource::Url { url } => json!({"type": "url", "url": url}),
                // Plain-text documents travel as text; only PDFs travel as base64.
                MediaSource::Base64 { media_type, data } if media_type.starts_with("text/") => {
                    match decode_base64(data).and_then(|b| String::from_utf8(b).ok()) {
                        Some(text) => json!({"type": "text", "media_type": "text/plain", "data": text}),
                        None => json!({"type": "base64", "media_type": media_type, "data": data}),
                    }
                }
                MediaSource::Base64 { media_type, data } => {
                    json!({"type": "base64", "media_type": media_type, "data": data})
                }
            };
            let mut doc = json!({"type": "document", "source": source});
            if let Some(name) = name
                && let Value::Object(d) = &mut doc
            {
                d.insert("title".into(), name.clone().into());
            }
            doc
        }
        Part::Audio { .. } => {
            tracing::debug!("audio attachment left out: the Messages API does not take audio");
            json!({"type": "text", "text": "[an audio attachment was left out: this model does not accept audio]"})
        }
    })
}

/// Decodes standard or URL-safe base64, padded or not; `None` on anything else.
fn decode_base64(data: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let digits: Vec<u8> = data.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let digits = digits.strip_suffix(b"==").or_else(|| digits.strip_suffix(b"=")).unwrap_or(&digits);
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The Anthropic error body: `{"type": "error", "error": {"type": ..., "message": ...}}`.
#[derive(Deserialize, Default)]
struct WireError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: WireError,
}

fn too_long(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("prompt is too long") || m.contains("exceed context limit") || m.contains("context window")
}

/// The kind of an error the API named: in an error body or an `error` event.
fn error_kind(kind: &str, message: &str) -> ModelErrorKind {
    match kind {
        "invalid_request_error" if too_long(message) => ModelErrorKind::ContextLengthExceeded,
        "invalid_request_error" if message.to_ascii_lowercase().contains("credit balance") => {
            ModelErrorKind::QuotaExceeded
        }
        "invalid_request_error" => ModelErrorKind::BadRequest,
        "authentication_error" => ModelErrorKind::Authentication,
        "permission_error" => ModelErrorKind::PermissionDenied,
        "not_found_error" => ModelErrorKind::NotFound,
        "request_too_large" => ModelErrorKind::ContextLengthExceeded,
        "rate_limit_error" => ModelErrorKind::RateLimited,
        "billing_error" => ModelErrorKind::QuotaExceeded,
        "timeout_error" => ModelErrorKind::Timeout,
        // `api_error`, `overloaded_error`, and whatever the server fails with next.
        _ => ModelErrorKind::Overloaded,
    }
}

/// What the status alone cannot tell: a prompt that is too long (400), a request too large
/// (413), an empty credit balance (400), an overloaded API (529).
fn classify(status: u16, body: &str) -> Option<ModelErrorKind> {
    let error = serde_json::from_str::<ErrorBody>(body).map(|b| b.error).unwrap_or_default();
    match (status, error.kind.as_str()) {
        (413, _) | (_, "request_too_large") => Some(ModelErrorKind::ContextLengthExceeded),
        (529, _) => Some(ModelErrorKind::Overloaded),
        (_, "billing_error") => Some(ModelErrorKind::QuotaExceeded),
        (400, kind) if too_long(&error.message) || kind == "invalid_request_error" => {
            Some(error_kind("invalid_request_error", &error.message))
        }
        _ => None,
    }
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("end_turn" | "stop_sequence") | None => FinishReason::Stop,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("refusal") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

/// Token counts; a streamed reply sends them in parts, so every field is optional.
#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Overwrites the counts this report has. `input_tokens` is already net of cache reads
    /// and writes.
    fn apply(&self, usage: &mut Usage) {
        if let Some(n) = self.input_tokens {
            usage.input_tokens = n;
        }
        if let Some(n) = self.output_tokens {
            usage.output_tokens = n;
        }
        if let Some(n) = self.cache_read_input_tokens {
            usage.cached_input_tokens = n;
        }
        if let Some(n) = self.cache_creation_input_tokens {
            usage.cache_write_tokens = n;
        }
    }
}

/// A non-streamed reply.
#[derive(Deserialize)]
struct WireMessage {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    error: Option<WireError>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    /// `redacted_thinking`, server tool blocks, and types added later.
    #[serde(other)]
    Other,
}

/// The JSON text of a tool call's `input` (`{}` when there is none).
fn arguments(input: &Value) -> String {
    match input {
        Value::Null => "{}".to_owned(),
        v => serde_json::to_string(v).unwrap_or_else(|_| "{}".to_owned()),
    }
}

fn parse_message(body: &[u8]) -> Result<ModelResponse, ModelError> {
    let m: WireMessage = serde_json::from_slice(body).map_err(|e| invalid_body(PROVIDER, e))?;
    if m.kind.as_deref() == Some("error") {
        let error = m.error.unwrap_or_default();
        return Err(ModelError::new(error_kind(&error.kind, &error.message), PROVIDER, error.message));
    }
    let mut response = ModelResponse::default();
    let mut reply = String::new();
    for block in m.content {
        match block {
            Block::Text { text } => reply.push_str(&text),
            Block::ToolUse { id, name, input } => response.tool_calls.push(ToolCall::new(id, name, arguments(&input))),
            Block::Thinking { thinking } => response.reasoning.get_or_insert_with(String::new).push_str(&thinking),
            Block::Other => {}
        }
    }
    response.text = reply.into();
    response.finish_reason = finish_reason(m.stop_reason.as_deref());
    if let Some(u) = m.usage {
        u.apply(&mut response.usage);
    }
    response.model = m.model;
    Ok(response)
}

/// One event of a streamed reply (the `data` of each server-sent event names its type).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        #[serde(default)]
        error: WireError,
    },
    /// `ping`, and event types added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    /// `signature_delta`, and delta types added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// What a content block of the streamed reply is.
enum OpenBlock {
    /// A tool call: its position among the reply's tool calls, and whether any of its
    /// arguments were sent.
    Tool { index: usize, has_arguments: bool },
    /// Text, thinking, or a block Loom does not read.
    Other,
}

/// The Messages event stream: `message_start`, content blocks (start, deltas, stop),
/// `message_delta`, `message_stop`.
struct EventParser {
    blocks: HashMap<usize, OpenBlock>,
    tool_calls: usize,
    usage: Usage,
    finish: Option<FinishReason>,
}

impl EventParser {
    fn new() -> Self {
        Self { blocks: HashMap::new(), tool_calls: 0, usage: Usage::default(), finish: None }
    }
}

impl StreamParser for EventParser {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, ModelError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        let parsed: Event = serde_json::from_str(data).map_err(|e| malformed(PROVIDER, "stream event", e))?;
        match parsed {
            Event::MessageStart { message } => {
                if let Some(u) = message.usage {
                    u.apply(&mut self.usage);
                }
            }
            Event::ContentBlockStart { index, content_block } => {
                let block = match content_block {
                    StartBlock::Text { text } => {
                        if !text.is_empty() {
                            out.push(StreamEvent::TextDelta(text));
                        }
                        OpenBlock::Other
                    }
                    StartBlock::Thinking { thinking } => {
                        if !thinking.is_empty() {
                            out.push(StreamEvent::ReasoningDelta(thinking));
                        }
                        OpenBlock::Other
                    }
                    StartBlock::ToolUse { id, name, input } => {
                        let tool = self.tool_calls;
                        self.tool_calls += 1;
                        out.push(StreamEvent::ToolCallStart { index: tool, id, name });
                        // The input comes as deltas; a block that starts with it whole is
                        // taken as it is.
                        let has_arguments = matches!(&input, Value::Object(o) if !o.is_empty());
                        if has_arguments {
                            out.push(StreamEvent::ToolCallDelta { index: tool, arguments: arguments(&input) });
                        }
                        OpenBlock::Tool { index: tool, has_arguments }
                    }
                    StartBlock::Other => OpenBlock::Other,
                };
                self.blocks.insert(index, block);
            }
            Event::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } if !text.is_empty() => out.push(StreamEvent::TextDelta(text)),
                BlockDelta::ThinkingDelta { thinking } if !thinking.is_empty() => {
                    out.push(StreamEvent::ReasoningDelta(thinking));
                }
                BlockDelta::InputJsonDelta { partial_json } => match self.blocks.get_mut(&index) {
                    Some(OpenBlock::Tool { index: tool, has_arguments }) => {
                        if !partial_json.is_empty() {
                            *has_arguments = true;
                            out.push(StreamEvent::ToolCallDelta { index: *tool, arguments: partial_json });
                        }
                    }
                    _ => {
                        return Err(malformed(
                            PROVIDER,
                            "stream event",
                            format!("tool input for content block {index}, which is not a tool call"),
                        ));
                    }
                },
                _ => {}
            },
            Event::ContentBlockStop { index } => {
                // A call without arguments streams none; its arguments are the empty object.
                if let Some(OpenBlock::Tool { index: tool, has_arguments: false }) = self.blocks.remove(&index) {
                    out.push(StreamEvent::ToolCallDelta { index: tool, arguments: "{}".to_owned() });
                }
            }
            Event::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.finish = Some(finish_reason(Some(&reason)));
                }
                if let Some(u) = usage {
                    u.apply(&mut self.usage);
                }
            }
            Event::MessageStop => {
                out.push(StreamEvent::Usage(self.usage));
                out.push(StreamEvent::Finish(self.finish.take().unwrap_or(FinishReason::Stop)));
                return Ok(true);
            }
            Event::Error { error } => {
                let kind = error_kind(&error.kind, &error.message);
                let message = if error.message.is_empty() { error.kind } else { error.message };
                return Err(ModelError::new(kind, PROVIDER, message));
            }
            Event::Other => {}
        }
        Ok(false)
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), ModelError> {
        // `message_stop` ends every complete reply (and returns before this is called).
        Err(ModelError::new(
            ModelErrorKind::Stream,
            PROVIDER,
            "the response stream ended before the reply was complete",
        ))
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
        let provider = self.http.provider();
        let body = serde_json::to_vec(&self.request_body(request, false)).map_err(|e| invalid_body(provider, e))?;
        let (bytes, request_id) = self.http.post(&self.url, &self.headers(), body, classify).await?;
        let mut response = parse_message(&bytes)?;
        response.request_id = request_id;
        Ok(response)
    }

    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        let provider = self.http.provider();
        let body = self.request_body(request, true);
        Box::pin(
            futures::stream::once(async move {
                let body = serde_json::to_vec(&body).map_err(|e| invalid_body(provider, e))?;
                self.http.post_stream(&self.url, &self.headers(), body, classify, EventParser::new()).await
            })
            .flat_map(|r| match r {
                Ok(stream) => stream,
                Err(e) => Box::pin(futures::stream::once(async move { Err(e) })),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelSettings;
    use crate::tool::ToolDefinition;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn model(name: &str) -> Result<AnthropicModel, ConfigError> {
        AnthropicModel::new(name, HttpConfig::new("http://localhost:1/v1"))
    }

    fn parse(events: &str) -> (Vec<StreamEvent>, Result<bool, ModelError>) {
        let mut parser = EventParser::new();
        let mut out = Vec::new();
        for data in events.lines().filter(|l| !l.trim().is_empty()) {
            match parser.event(SseEvent { event: None, data: data.to_owned() }, &mut out) {
                Ok(false) => {}
                other => return (out, other),
            }
        }
        let end = parser.end(&mut out).map(|()| false);
        (out, end)
    }

    #[test]
    fn tool_results_and_the_next_user_message_share_one_turn_results_first() {
        let conversation = [
            Message::system("Be brief."),
            Message::user("Weather in Paris and Oslo?"),
            Message::assistant_with_tools(
                "Checking.",
                vec![
                    ToolCall::new("toolu_01A", "get_weather", r#"{"city":"Paris"}"#),
                    ToolCall::new("toolu_01B", "get_weather", "not json"),
                ],
            ),
            Message::tool(ToolResult::ok("toolu_01A", "get_weather", "sunny")),
            Message::user("And quickly, please."),
            Message::tool(ToolResult::error("toolu_01B", "get_weather", "missing field `city`")),
        ];
        assert_eq!(
            Value::Array(messages(&conversation)),
            json!([
                {"role": "user", "content": "Weather in Paris and Oslo?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "missing field `city`", "is_error": true},
                    {"type": "text", "text": "And quickly, please."}
                ]}
            ])
        );
    }

    #[test]
    fn empty_turns_are_dropped_and_neighbours_merge() {
        let conversation = [
            Message::user("one"),
            Message::assistant(""),
            Message::user(" "),
            Message::user("two"),
            Message::assistant("Sure, "),
        ];
        assert_eq!(
            Value::Array(messages(&conversation)),
            json!([
                {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
                {"role": "assistant", "content": "Sure,"}
            ])
        );
    }

    #[test]
    fn attachments_become_image_and_document_blocks() {
        let content = Content::Parts(vec![
            Part::text("Compare:"),
            Part::image_url("https://example.com/a.png"),
            Part::image_base64("image/png", "iVBORw0KGgo="),
            Part::Document {
                source: MediaSource::Base64 { media_type: "application/pdf".into(), data: "JVBERi0x".into() },
                name: Some("report.pdf".into()),
            },
            Part::Document {
                source: MediaSource::Base64 { media_type: "text/plain".into(), data: "aMOpbGxv".into() },
                name: None,
            },
        ]);
        assert_eq!(
            Value::Array(content_blocks(&content)),
            json!([
                {"type": "text", "text": "Compare:"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "document", "title": "report.pdf",
                 "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "héllo"}}
            ])
        );
    }

    #[test]
    fn base64_decodes_padded_unpadded_and_rejects_garbage() {
        assert_eq!(decode_base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ=").as_deref(), Some(&b"hello world"[..]));
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("a*cd"), None);
    }

    #[test]
    fn foreign_tool_ids_are_made_to_fit() {
        assert_eq!(tool_id("toolu_01A-b"), "toolu_01A-b");
        assert_eq!(tool_id("call:1/é"), "call_1__");
    }

    #[test]
    fn thinking_is_left_out_where_the_api_would_refuse_it() -> TestResult {
        let m = model("claude-sonnet-4-5")?;
        let mut settings = ModelSettings::new();
        settings.effort = Some(Effort::Low);
        settings.temperature = Some(0.3);
        settings.top_p = Some(0.9);
        settings.max_tokens = Some(1000);
        let fresh = [Message::user("Think.")];
        let body = m.request_body(&ModelRequest::new(&fresh).with_settings(&settings), false);
        assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 2048}));
        assert_eq!(body["max_tokens"], 2048 + 4096);
        assert!(body.get("temperature").is_none() && body.get("top_p").is_none(), "{body}");

        let looping = [
            Message::user("Think."),
            Message::assistant_with_tools("", vec![ToolCall::new("toolu_1", "f", "{}")]),
            Message::tool(ToolResult::ok("toolu_1", "f", "done")),
        ];
        let body = m.request_body(&ModelRequest::new(&looping).with_settings(&settings), false);
        assert!(body.get("thinking").is_none(), "{body}");
        assert_eq!(body["temperature"], 0.3);

        let tools = [ToolDefinition::new("f", "F.", json!({"type": "object", "properties": {}}))?];
        let choice = ToolChoice::Tool("f".into());
        let request = ModelRequest::new(&fresh).with_settings(&settings).with_tools(&tools).with_tool_choice(&choice);
        let body = m.request_body(&request, false);
        assert!(body.get("thinking").is_none(), "{body}");
        assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "f"}));
        Ok(())
    }

    #[test]
    fn tool_choice_forms_and_parallel_calls() -> TestResult {
        let m = model("claude-haiku-4-5")?.with_prompt_caching(false);
        let tools = [ToolDefinition::new("f", "F.", json!({"type": "object", "properties": {}}))?];
        let messages = [Message::user("go")];
        let mut settings = ModelSettings::new();
        settings.parallel_tool_calls = Some(false);
        for (choice, wire) in [
            (ToolChoice::Auto, json!({"type": "auto", "disable_parallel_tool_use": true})),
            (ToolChoice::Required, json!({"type": "any", "disable_parallel_tool_use": true})),
            (ToolChoice::Tool("f".into()), json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})),
            (ToolChoice::None, json!({"type": "none"})),
        ] {
            let request =
                ModelRequest::new(&messages).with_tools(&tools).with_tool_choice(&choice).with_settings(&settings);
            let body = m.request_body(&request, true);
            assert_eq!(body["tool_choice"], wire);
            assert_eq!(
                body["tools"],
                json!([{"name": "f", "description": "F.", "input_schema": {"type": "object", "properties": {}}}])
            );
            assert_eq!(body["stream"], true);
        }
        // Without tools, no tool choice; Claude 3 Haiku gets its own output limit.
        let body = model("claude-3-haiku-20240307")?.request_body(&ModelRequest::new(&messages), false);
        assert!(body.get("tool_choice").is_none() && body.get("tools").is_none() && body.get("system").is_none());
        assert_eq!(body["max_tokens"], 4096);
        Ok(())
    }

    #[test]
    fn errors_are_classified_by_status_type_and_message() {
        let body = |t: &str, m: &str| json!({"type": "error", "error": {"type": t, "message": m}}).to_string();
        let too_long = body("invalid_request_error", "prompt is too long: 208764 tokens > 200000 maximum");
        assert_eq!(classify(400, &too_long), Some(ModelErrorKind::ContextLengthExceeded));
        let broke = body("invalid_request_error", "Your credit balance is too low to access the Anthropic API.");
        assert_eq!(classify(400, &broke), Some(ModelErrorKind::QuotaExceeded));
        assert_eq!(
            classify(400, &body("invalid_request_error", "max_tokens: must be positive")),
            Some(ModelErrorKind::BadRequest)
        );
        assert_eq!(classify(413, "<html>too big</html>"), Some(ModelErrorKind::ContextLengthExceeded));
        assert_eq!(classify(529, &body("overloaded_error", "Overloaded")), Some(ModelErrorKind::Overloaded));
        assert_eq!(classify(429, &body("rate_limit_error", "slow down")), None);
        assert_eq!(classify(500, "not json"), None);
    }

    #[test]
    fn tool_calls_stream_with_their_own_index_and_empty_input_is_an_object() {
        let (events, done) = parse(concat!(
            r#"{"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":9,"output_tokens":1,"cache_read_input_tokens":5}}}"#,
            "\n",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            "\n",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            "\n",
            r#"{"type":"content_block_stop","index":0}"#,
            "\n",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_A","name":"now","input":{}}}"#,
            "\n",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            "\n",
            r#"{"type":"content_block_stop","index":1}"#,
            "\n",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_B","name":"add","input":{}}}"#,
            "\n",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
            "\n",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"1}"}}"#,
            "\n",
            r#"{"type":"content_block_stop","index":2}"#,
            "\n",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}"#,
            "\n",
            r#"{"type":"message_stop"}"#,
        ));
        assert!(matches!(done, Ok(true)), "{done:?}");
        assert_eq!(
            events,
            [
                StreamEvent::TextDelta("Hi".into()),
                StreamEvent::ToolCallStart { index: 0, id: "toolu_A".into(), name: "now".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "{}".into() },
                StreamEvent::ToolCallStart { index: 1, id: "toolu_B".into(), name: "add".into() },
                StreamEvent::ToolCallDelta { index: 1, arguments: "{\"a\":".into() },
                StreamEvent::ToolCallDelta { index: 1, arguments: "1}".into() },
                StreamEvent::Usage(Usage::new(9, 30).with_cached_input_tokens(5)),
                StreamEvent::Finish(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn unknown_events_are_skipped_and_a_missing_message_stop_is_a_cut_stream() {
        let (events, end) = parse(concat!(
            r#"{"type":"ping"}"#,
            "\n",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
            "\n",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}"#,
            "\n",
            r#"{"type":"brand_new_event","x":1}"#,
            "\n",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
        ));
        assert!(events.is_empty(), "{events:?}");
        assert!(end.is_err_and(|e| e.kind() == ModelErrorKind::Stream && e.is_transient()));
    }

    #[test]
    fn stream_errors_are_typed() {
        for (kind, expected) in [
            ("overloaded_error", ModelErrorKind::Overloaded),
            ("api_error", ModelErrorKind::Overloaded),
            ("rate_limit_error", ModelErrorKind::RateLimited),
            ("invalid_request_error", ModelErrorKind::BadRequest),
            ("authentication_error", ModelErrorKind::Authentication),
            ("permission_error", ModelErrorKind::PermissionDenied),
            ("not_found_error", ModelErrorKind::NotFound),
        ] {
            let line = json!({"type": "error", "error": {"type": kind, "message": "Overloaded"}}).to_string();
            let (_, result) = parse(&line);
            let error = result.err();
            assert_eq!(error.as_ref().map(ModelError::kind), Some(expected), "{kind}");
            assert_eq!(error.as_ref().map(ModelError::message), Some("Overloaded"));
        }
        let (_, result) =
            parse(r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#);
        assert!(result.is_err_and(|e| e.kind() == ModelErrorKind::Stream));
    }

    #[test]
    fn a_whole_reply_with_thinking_and_an_error_body() -> TestResult {
        let reply = json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [
                {"type": "thinking", "thinking": "Add them.", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "EmwK"},
                {"type": "text", "text": "It is "},
                {"type": "text", "text": "3."},
                {"type": "tool_use", "id": "toolu_1", "name": "log", "input": {"n": 3}}
            ],
            "stop_reason": "refusal", "stop_sequence": null,
            "usage": {"input_tokens": 4, "output_tokens": 7, "cache_creation_input_tokens": null}
        });
        let r = parse_message(reply.to_string().as_bytes())?;
        assert_eq!((r.text.as_str(), r.reasoning.as_deref()), ("It is 3.", Some("Add them.")));
        assert_eq!(r.tool_calls, [ToolCall::new("toolu_1", "log", r#"{"n":3}"#)]);
        assert_eq!(r.finish_reason, FinishReason::ContentFilter);
        assert_eq!(r.usage, Usage::new(4, 7));
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5-20250929"));

        let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let e = parse_message(error.to_string().as_bytes()).err();
        assert!(e.is_some_and(|e| e.kind() == ModelErrorKind::Overloaded && e.message() == "Overloaded"));
        let e = parse_message(b"{\"content\": 5}").err();
        assert!(e.is_some_and(|e| e.kind() == ModelErrorKind::InvalidResponse));
        Ok(())
    }

    #[test]
    fn the_environment_base_url_gets_its_version_segment() {
        assert_eq!(versioned("https://api.anthropic.com"), "https://api.anthropic.com/v1");
        assert_eq!(versioned("https://api.anthropic.com/v1/"), "https://api.anthropic.com/v1");
        assert_eq!(versioned("http://localhost:8080/proxy"), "http://localhost:8080/proxy/v1");
    }

    #[test]
    fn the_api_key_and_version_headers() -> TestResult {
        let mut config = HttpConfig::new("http://localhost:1/v1");
        config.api_key = Some(ApiKey::new("sk-ant-test"));
        config.headers = vec![("anthropic-beta".into(), "context-1m-2025-08-07".into())];
        let m = AnthropicModel::new("claude-sonnet-4-5", config)?;
        assert_eq!(
            m.headers(),
            [
                ("x-api-key", "sk-ant-test"),
                ("anthropic-version", ANTHROPIC_VERSION),
                ("anthropic-beta", "context-1m-2025-08-07")
            ]
        );
        assert_eq!(m.url, "http://localhost:1/v1/messages");
        assert!(!format!("{m:?}").contains("sk-ant-test"));
        Ok(())
    }
}
