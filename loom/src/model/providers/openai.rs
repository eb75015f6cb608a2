//! OpenAI Chat Completions, and every server that speaks it (DeepSeek, Groq, Mistral,
//! OpenRouter, Together, vLLM, Ollama, or any base URL).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{ApiKey, Auth, Endpoint, Http, HttpConfig, env};
use super::sse::{SseEvent, StreamParser};
use super::status::{self, invalid_body, malformed};
use super::wire::nullable;
use crate::error::ConfigError;
use crate::model::{
    Capabilities, Content, Effort, FinishReason, MediaSource, Message, Model, ModelError, ModelErrorKind, ModelRequest,
    ModelResponse, ModelStream, Part, StreamEvent, ToolCall, ToolChoice, Usage,
};

/// The official API's base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// A server that speaks OpenAI's Chat Completions: its base URL and the variable that holds
/// its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compatible {
    /// DeepSeek: `https://api.deepseek.com/v1`, `DEEPSEEK_API_KEY`.
    DeepSeek,
    /// Groq: `https://api.groq.com/openai/v1`, `GROQ_API_KEY`.
    Groq,
    /// Mistral: `https://api.mistral.ai/v1`, `MISTRAL_API_KEY`.
    Mistral,
    /// OpenRouter: `https://openrouter.ai/api/v1`, `OPENROUTER_API_KEY`.
    OpenRouter,
    /// Together: `https://api.together.xyz/v1`, `TOGETHER_API_KEY`.
    Together,
    /// vLLM: `$VLLM_BASE_URL` or `http://localhost:8000/v1`; `VLLM_API_KEY` if set.
    Vllm,
    /// Ollama: `$OLLAMA_BASE_URL` or `http://localhost:11434/v1`; no key.
    Ollama,
}

impl Compatible {
    /// The preset named `name` (`deepseek`, `groq`, `mistral`, `openrouter`, `together`,
    /// `vllm`, `ollama`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "deepseek" => Self::DeepSeek,
            "groq" => Self::Groq,
            "mistral" => Self::Mistral,
            "openrouter" => Self::OpenRouter,
            "together" => Self::Together,
            "vllm" => Self::Vllm,
            "ollama" => Self::Ollama,
            _ => return None,
        })
    }

    /// The provider's name in errors.
    pub(crate) fn provider(self) -> &'static str {
        match self {
            Self::DeepSeek => "deepseek",
            Self::Groq => "groq",
            Self::Mistral => "mistral",
            Self::OpenRouter => "openrouter",
            Self::Together => "together",
            Self::Vllm => "vllm",
            Self::Ollama => "ollama",
        }
    }

    /// The default base URL, the variable that overrides it, the key variable, and whether
    /// the key is required.
    fn endpoint(self) -> (&'static str, Option<&'static str>, Option<&'static str>, bool) {
        match self {
            Self::DeepSeek => ("https://api.deepseek.com/v1", None, Some("DEEPSEEK_API_KEY"), true),
            Self::Groq => ("https://api.groq.com/openai/v1", None, Some("GROQ_API_KEY"), true),
            Self::Mistral => ("https://api.mistral.ai/v1", None, Some("MISTRAL_API_KEY"), true),
            Self::OpenRouter => ("https://openrouter.ai/api/v1", None, Some("OPENROUTER_API_KEY"), true),
            Self::Together => ("https://api.together.xyz/v1", None, Some("TOGETHER_API_KEY"), true),
            Self::Vllm => ("http://localhost:8000/v1", Some("VLLM_BASE_URL"), Some("VLLM_API_KEY"), false),
            Self::Ollama => ("http://localhost:11434/v1", Some("OLLAMA_BASE_URL"), None, false),
        }
    }

    /// The server's settings from its environment variables; a required key that is not set
    /// is a [`ConfigError::MissingApiKey`].
    pub(crate) fn config(self) -> Result<HttpConfig, ConfigError> {
        let (default_url, url_var, key_var, key_required) = self.endpoint();
        let base = url_var.and_then(env).unwrap_or_else(|| default_url.to_owned());
        let key = key_var.and_then(env);
        if key.is_none()
            && key_required
            && let Some(variable) = key_var
        {
            return Err(ConfigError::MissingApiKey { provider: self.provider(), variable });
        }
        let mut config = HttpConfig::new(base);
        config.api_key = key.map(ApiKey::new);
        Ok(config)
    }
}

/// OpenAI's settings from `OPENAI_API_KEY` and `OPENAI_BASE_URL` (default [`OPENAI_BASE_URL`]);
/// the key is required unless the base URL points elsewhere (a local compatible server).
pub(crate) fn env_config() -> Result<HttpConfig, ConfigError> {
    let base = env("OPENAI_BASE_URL");
    let key = env("OPENAI_API_KEY");
    if key.is_none() && base.is_none() {
        return Err(ConfigError::MissingApiKey { provider: "openai", variable: "OPENAI_API_KEY" });
    }
    let mut config = HttpConfig::new(base.as_deref().unwrap_or(OPENAI_BASE_URL));
    config.api_key = key.map(ApiKey::new);
    Ok(config)
}

/// The settings of the compatible server at `base_url`, with the key in `OPENAI_API_KEY` if it
/// is set.
pub(crate) fn config_at(base_url: &str) -> HttpConfig {
    let mut config = HttpConfig::new(base_url);
    config.api_key = env("OPENAI_API_KEY").map(ApiKey::new);
    config
}

/// A model served through OpenAI's Chat Completions API.
///
/// ```
/// use loomflow::model::providers::{HttpConfig, OpenAiModel};
/// let config = HttpConfig::new("http://localhost:8000/v1");
/// let model = OpenAiModel::new("my-model", config)?;
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
///
/// Its `Debug` output never shows the key or the values of extra headers.
#[derive(Debug, Clone)]
pub struct OpenAiModel {
    model: String,
    url: Endpoint,
    http: Http,
    official: bool,
    capabilities: Capabilities,
}

/// The capabilities of OpenAI's own API, or the conservative ones of a compatible server.
fn capabilities(official: bool) -> Capabilities {
    Capabilities::default()
        .with_streaming(true)
        .with_native_structured_output(official)
        .with_vision(official)
        .with_prompt_caching(official)
}

impl OpenAiModel {
    /// `model` on the server `config` describes. OpenAI's own API
    /// ([`OPENAI_BASE_URL`]) is spoken to in its own dialect; any other server gets the
    /// conservative request of a compatible server (`max_tokens`, no strict schemas, no native
    /// structured output) until [`with_openai_dialect`](Self::with_openai_dialect) says
    /// otherwise.
    pub fn new(model: impl Into<String>, config: HttpConfig) -> Result<Self, ConfigError> {
        Self::build(model.into(), config, "openai")
    }

    fn build(model: String, config: HttpConfig, provider: &'static str) -> Result<Self, ConfigError> {
        if model.trim().is_empty() {
            return Err(ConfigError::InvalidSetting { setting: "model", reason: "the model name is empty".to_owned() });
        }
        let official = is_official(&config.base_url);
        let http = Http::new(provider, &config, Auth::Bearer, &[])?;
        Ok(Self {
            url: Endpoint::new(&config.base_url, "/chat/completions"),
            model,
            http,
            official,
            capabilities: capabilities(official),
        })
    }

    /// `model` on OpenAI, with the key from `OPENAI_API_KEY` and the base URL from
    /// `OPENAI_BASE_URL` (default [`OPENAI_BASE_URL`]). The key is required unless the base
    /// URL points elsewhere (a local OpenAI-compatible server). A base URL other than OpenAI's
    /// gets the request of a compatible server (see [`new`](Self::new)).
    pub fn from_env(model: impl Into<String>) -> Result<Self, ConfigError> {
        Self::build(model.into(), env_config()?, "openai")
    }

    /// `model` on a compatible server, configured from its environment variables.
    pub fn compatible(preset: Compatible, model: impl Into<String>) -> Result<Self, ConfigError> {
        Self::build(model.into(), preset.config()?, preset.provider())
    }

    /// `model` on the OpenAI-compatible server at `base_url`, with the key in
    /// `OPENAI_API_KEY` if it is set.
    pub fn at(base_url: &str, model: impl Into<String>) -> Result<Self, ConfigError> {
        Self::build(model.into(), config_at(base_url), "openai-compatible")
    }

    /// Overrides the capabilities (e.g. to use native structured output on a compatible
    /// server that supports it).
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Whether to speak OpenAI's own dialect: `max_completion_tokens`, strict JSON schemas,
    /// native structured output, images and prompt caching. On for OpenAI's base URL and off
    /// for any other; turn it on for a proxy in front of OpenAI's API.
    #[must_use]
    pub fn with_openai_dialect(mut self, yes: bool) -> Self {
        self.official = yes;
        self.capabilities = capabilities(yes);
        self
    }

    fn is_reasoning(&self) -> bool {
        let m = self.model.rsplit('/').next().unwrap_or(&self.model);
        ["o1", "o3", "o4", "gpt-5"].iter().any(|p| m.starts_with(p))
    }

    /// The request body of `request`, streamed or not.
    pub fn request_body(&self, request: &ModelRequest<'_>, stream: bool) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), self.model.clone().into());
        body.insert("messages".into(), Value::Array(request.messages.iter().map(message).collect()));
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name(), "description": t.description(), "parameters": t.parameters()
                    }})
                })
                .collect();
            body.insert("tools".into(), tools.into());
            let choice = match request.tool_choice {
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
                _ => json!("auto"),
            };
            body.insert("tool_choice".into(), choice);
            if let Some(p) = request.settings.parallel_tool_calls {
                body.insert("parallel_tool_calls".into(), p.into());
            }
        }
        let s = request.settings;
        if let Some(t) = s.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(p) = s.top_p {
            body.insert("top_p".into(), json!(p));
        }
        if let Some(m) = s.max_tokens {
            let key = if self.official { "max_completion_tokens" } else { "max_tokens" };
            body.insert(key.into(), m.into());
        }
        if !s.stop.is_empty() {
            body.insert("stop".into(), json!(s.stop));
        }
        if let Some(effort) = s.effort {
            if self.is_reasoning() {
                let level = match effort {
                    Effort::Minimal if self.model.contains("gpt-5") => "minimal",
                    Effort::Minimal | Effort::Low => "low",
                    Effort::Medium => "medium",
                    _ => "high",
                };
                body.insert("reasoning_effort".into(), level.into());
            } else {
                tracing::debug!(model = %self.model, "`{effort}` effort ignored: the model does not reason");
            }
        }
        if let Some(format) = request.response_format {
            // Strict schemas are OpenAI's; a compatible server gets the plain schema.
            let (schema, strict) = match &format.strict {
                Some(strict) if self.official => (strict.as_ref().clone(), true),
                _ => (format.schema.as_ref().clone(), false),
            };
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": format.name, "schema": schema, "strict": strict}}),
            );
        }
        if stream {
            body.insert("stream".into(), true.into());
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Value::Object(body)
    }
}

/// Whether `base_url` is OpenAI's own API.
fn is_official(base_url: &str) -> bool {
    base_url.strip_prefix(OPENAI_BASE_URL).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

fn content_parts(content: &Content) -> Value {
    match content {
        Content::Text(t) => Value::String(t.to_string()),
        Content::Parts(parts) => Value::Array(
            parts
                .iter()
                .map(|p| match p {
                    Part::Text { text } => json!({"type": "text", "text": text}),
                    Part::Image { source } => {
                        let url = match source {
                            MediaSource::Url { url } => url.clone(),
                            MediaSource::Base64 { media_type, data } => data_url(media_type, data),
                        };
                        json!({"type": "image_url", "image_url": {"url": url}})
                    }
                    Part::Audio { source: MediaSource::Base64 { media_type, data } } => {
                        let format = media_type.rsplit('/').next().unwrap_or("wav").replace("mpeg", "mp3");
                        json!({"type": "input_audio", "input_audio": {"data": data, "format": format}})
                    }
                    Part::Document { source: MediaSource::Base64 { media_type, data }, name } => {
                        json!({"type": "file", "file": {
                            "filename": name.clone().unwrap_or_else(|| "document".to_owned()),
                            "file_data": data_url(media_type, data)
                        }})
                    }
                    // Chat Completions takes audio and documents inline only; a URL is named,
                    // never fetched or pasted into the prompt.
                    Part::Audio { source: MediaSource::Url { url } }
                    | Part::Document { source: MediaSource::Url { url }, .. } => {
                        json!({"type": "text", "text": format!("[attachment not sent: {url}]")})
                    }
                })
                .collect(),
        ),
    }
}

/// One message in the wire format (a tool result is its own message).
fn message(m: &Message) -> Value {
    match m {
        Message::System { content } => json!({"role": "system", "content": &**content}),
        Message::User { content } => json!({"role": "user", "content": content_parts(content)}),
        Message::Assistant { content, tool_calls } => {
            let mut v = Map::new();
            v.insert("role".into(), "assistant".into());
            let text = content.text();
            v.insert(
                "content".into(),
                if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { text.into() },
            );
            if !tool_calls.is_empty() {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                v.insert("tool_calls".into(), calls.into());
            }
            Value::Object(v)
        }
        Message::Tool(r) => {
            let text = r.content.text();
            let content = if r.is_error { format!("Error: {text}") } else { text.into_owned() };
            json!({"role": "tool", "tool_call_id": r.call_id, "content": content})
        }
    }
}

/// OpenAI's error bodies name quota, context-length and content-filter problems; the status
/// alone cannot. (The embeddings endpoint answers errors in the same shape.)
pub(crate) fn classify(status: u16, body: &str) -> Option<ModelErrorKind> {
    let error = serde_json::from_str::<Value>(body).ok()?;
    let error = error.get("error")?;
    let names = [error.get("code").and_then(Value::as_str), error.get("type").and_then(Value::as_str)];
    let named = names.into_iter().flatten().find_map(status::kind_of_error_name)?;
    // A name refines the status where the status cannot tell; it does not turn a server
    // failure into a client one.
    match (status, named) {
        (429 | 400 | 403, ModelErrorKind::QuotaExceeded)
        | (400 | 413, ModelErrorKind::ContextLengthExceeded)
        | (400 | 403, ModelErrorKind::ContentFiltered) => Some(named),
        _ => None,
    }
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("stop") | None => FinishReason::Stop,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default, deserialize_with = "nullable")]
    prompt_tokens: u64,
    #[serde(default, deserialize_with = "nullable")]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    fn usage(&self) -> Usage {
        let cached = self.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0);
        let reasoning = self.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0);
        Usage::new(self.prompt_tokens.saturating_sub(cached), self.completion_tokens)
            .with_cached_input_tokens(cached)
            .with_reasoning_tokens(reasoning)
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default, deserialize_with = "nullable")]
    message: WireMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireMessage {
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    refusal: Option<String>,
    /// DeepSeek and vLLM call it `reasoning_content`; OpenRouter and others `reasoning`.
    #[serde(default, alias = "reasoning")]
    reasoning_content: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    tool_calls: Vec<WireToolCall>,
}

/// Message content: a string, or (from some compatible servers) a list of parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<WireContentPart>),
}

#[derive(Deserialize)]
struct WireContentPart {
    #[serde(default)]
    text: Option<String>,
}

impl WireContent {
    fn into_text(self) -> String {
        match self {
            Self::Text(t) => t,
            Self::Parts(parts) => parts.into_iter().filter_map(|p| p.text).collect(),
        }
    }
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default)]
    arguments: WireArguments,
}

/// A call's arguments: the JSON text the API documents, or (from some compatible servers) the
/// object itself; `null` or nothing is no arguments.
#[derive(Default)]
struct WireArguments(String);

impl<'de> Deserialize<'de> for WireArguments {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        }))
    }
}

/// A call id: the server's, or `call_<n>` (from 1 within the reply) when it sent none.
fn call_id(id: String, n: usize) -> String {
    if id.is_empty() { format!("call_{n}") } else { id }
}

/// Parses a non-streamed reply.
pub(crate) fn parse_completion(provider: &'static str, body: &[u8]) -> Result<ModelResponse, ModelError> {
    let c: Completion = serde_json::from_slice(body).map_err(|e| invalid_body(provider, e))?;
    let Some(choice) = c.choices.into_iter().next() else {
        return Err(ModelError::new(ModelErrorKind::InvalidResponse, provider, "the response has no choices"));
    };
    let content = choice.message.content.map(WireContent::into_text);
    if let Some(refusal) = choice.message.refusal.filter(|r| !r.is_empty())
        && content.as_deref().is_none_or(str::is_empty)
        && choice.message.tool_calls.is_empty()
    {
        return Err(ModelError::new(
            ModelErrorKind::ContentFiltered,
            provider,
            format!("the model refused: {refusal}"),
        ));
    }
    let response = ModelResponse {
        text: content.unwrap_or_default().into(),
        tool_calls: choice
            .message
            .tool_calls
            .into_iter()
            .enumerate()
            .map(|(i, t)| ToolCall::new(call_id(t.id, i + 1), t.function.name, t.function.arguments.0))
            .collect(),
        reasoning: choice.message.reasoning_content.filter(|r| !r.is_empty()),
        usage: c.usage.map(|u| u.usage()).unwrap_or_default(),
        finish_reason: finish_reason(choice.finish_reason.as_deref()),
        model: c.model,
        request_id: None,
    };
    Ok(response)
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default, deserialize_with = "nullable")]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default, deserialize_with = "nullable")]
    delta: Delta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default, alias = "reasoning")]
    reasoning_content: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    tool_calls: Vec<DeltaToolCall>,
}

#[derive(Deserialize)]
struct DeltaToolCall {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<DeltaFunction>,
}

#[derive(Deserialize)]
struct DeltaFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<WireArguments>,
}

/// The Chat Completions event stream: `data:` chunks, then usage, then `[DONE]`.
pub(crate) struct ChunkParser {
    provider: &'static str,
    finish: Option<FinishReason>,
    usage: Usage,
    finished: bool,
}

impl ChunkParser {
    pub(crate) fn new(provider: &'static str) -> Self {
        Self { provider, finish: None, usage: Usage::default(), finished: false }
    }

    fn complete(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.finished {
            self.finished = true;
            out.push(StreamEvent::Usage(self.usage));
            out.push(StreamEvent::Finish(self.finish.take().unwrap_or(FinishReason::Stop)));
        }
    }
}

impl StreamParser for ChunkParser {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, ModelError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.complete(out);
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| malformed(self.provider, "stream chunk", e))?;
        if let Some(error) = chunk.error {
            // Classified by what it names: a bad request mid-stream is not "overloaded".
            let kind = status::kind_of_error_object(&error);
            let message = status::error_message(&json!({"error": &error}).to_string())
                .unwrap_or_else(|| status::clip(&error.to_string()));
            return Err(ModelError::new(kind, self.provider, message));
        }
        if let Some(u) = chunk.usage {
            self.usage = u.usage();
        }
        for choice in chunk.choices {
            if let Some(r) = choice.delta.reasoning_content.filter(|r| !r.is_empty()) {
                out.push(StreamEvent::ReasoningDelta(r));
            }
            if let Some(t) = choice.delta.content.map(WireContent::into_text).filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta(t));
            }
            for (position, call) in choice.delta.tool_calls.into_iter().enumerate() {
                let index = call.index.unwrap_or(position);
                let (name, arguments) = match call.function {
                    Some(f) => (f.name, f.arguments),
                    None => (None, None),
                };
                let id = call.id.filter(|id| !id.is_empty());
                let name = name.filter(|n| !n.is_empty());
                if id.is_some() || name.is_some() {
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: id.unwrap_or_default(),
                        name: name.unwrap_or_default(),
                    });
                }
                if let Some(arguments) = arguments.map(|a| a.0).filter(|a| !a.is_empty()) {
                    out.push(StreamEvent::ToolCallDelta { index, arguments });
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(Some(&reason)));
            }
        }
        Ok(false)
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ModelError> {
        // Some compatible servers end without `[DONE]`: a reply that gave its finish reason
        // is complete; one that did not was cut off.
        if self.finished {
            return Ok(());
        }
        if self.finish.is_some() {
            self.complete(out);
            return Ok(());
        }
        Err(ModelError::cut_stream(self.provider))
    }
}

#[async_trait::async_trait]
impl Model for OpenAiModel {
    fn name(&self) -> &str {
        &self.model
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        let (bytes, request_id) = self.http.post(&self.url, &self.request_body(request, false), classify).await?;
        let mut response = parse_completion(self.http.provider(), &bytes)?;
        response.request_id = request_id;
        Ok(response)
    }

    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        let parser = ChunkParser::new(self.http.provider());
        self.http.stream(&self.url, self.request_body(request, true), classify, parser)
    }
}
