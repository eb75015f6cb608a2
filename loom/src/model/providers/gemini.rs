//! Google Gemini: the Gemini API's `generateContent` and `streamGenerateContent`.
//!
//! Loom's messages become Gemini `contents` (roles `user` and `model`), its tools become
//! function declarations with their JSON schemas as they are, and a typed output becomes a
//! `responseJsonSchema`. Replies stream as server-sent events, one whole
//! `GenerateContentResponse` per event.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::env;
use super::http::{self, ApiKey, Http, HttpConfig, StreamParser, invalid_body, malformed};
use super::sse::SseEvent;
use crate::error::ConfigError;
use crate::model::{
    Capabilities, Content, Effort, FinishReason, MediaSource, Message, Model, ModelError, ModelErrorKind, ModelRequest,
    ModelResponse, ModelStream, Part, StreamEvent, ToolCall, ToolChoice, Usage,
};

/// The Gemini API's base URL.
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

const PROVIDER: &str = "gemini";

/// The signature Gemini documents for a function call it did not sign itself (a history from
/// another model, or one whose signatures were lost): it skips the signature check.
const UNSIGNED_CALL: &str = "skip_thought_signature_validator";

/// How many function-call signatures a model remembers (the oldest are dropped first).
const MAX_SIGNATURES: usize = 1024;

/// A model served through the Gemini API.
///
/// ```
/// use loomflow::model::providers::{GeminiModel, HttpConfig};
/// let config = HttpConfig::new("http://localhost:8080/v1beta");
/// let model = GeminiModel::new("gemini-2.5-flash", config)?;
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct GeminiModel {
    model: String,
    generate_url: String,
    stream_url: String,
    api_key: Option<ApiKey>,
    headers: Vec<(String, String)>,
    http: Http,
    capabilities: Capabilities,
    signatures: Arc<Signatures>,
}

impl GeminiModel {
    /// `model` (e.g. `gemini-2.5-flash`, or a full resource name such as
    /// `tunedModels/my-model`) on the server `config` describes.
    pub fn new(model: impl Into<String>, config: HttpConfig) -> Result<Self, ConfigError> {
        let model = model.into();
        if model.is_empty() || model.contains(|c: char| c.is_whitespace() || matches!(c, '?' | '#' | ':')) {
            return Err(ConfigError::InvalidSetting {
                setting: "model",
                reason: format!("`{model}` is not a Gemini model name"),
            });
        }
        let http = Http::new(PROVIDER, &config)?;
        // A bare name is a model under `models/`; a name with a slash is already a resource
        // name (`models/...`, `tunedModels/...`).
        let resource = if model.contains('/') { model.clone() } else { format!("models/{model}") };
        let capabilities = Capabilities::default()
            .with_tools(true)
            .with_streaming(true)
            .with_vision(true)
            .with_native_structured_output(true)
            .with_prompt_caching(false);
        Ok(Self {
            generate_url: format!("{}/{resource}:generateContent", config.base_url),
            stream_url: format!("{}/{resource}:streamGenerateContent?alt=sse", config.base_url),
            model,
            api_key: config.api_key,
            headers: config.headers,
            http,
            capabilities,
            signatures: Arc::default(),
        })
    }

    /// `model` on the Gemini API, with the key from `GEMINI_API_KEY` (or else
    /// `GOOGLE_API_KEY`) and the base URL from `GEMINI_BASE_URL` (default
    /// [`GEMINI_BASE_URL`]). The key is required unless a base URL is set (a proxy or a local
    /// server that needs none).
    pub fn from_env(model: impl Into<String>) -> Result<Self, ConfigError> {
        let base = env("GEMINI_BASE_URL");
        let key = env("GEMINI_API_KEY").or_else(|| env("GOOGLE_API_KEY"));
        if key.is_none() && base.is_none() {
            return Err(ConfigError::MissingApiKey { provider: PROVIDER, variable: "GEMINI_API_KEY" });
        }
        let mut config = HttpConfig::new(base.as_deref().unwrap_or(GEMINI_BASE_URL));
        config.api_key = key.map(ApiKey::new);
        Self::new(model, config)
    }

    /// Overrides the capabilities (e.g. to turn native structured output off for a model
    /// that does not support it).
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The model's name without its resource prefix (`models/gemini-2.5-flash` →
    /// `gemini-2.5-flash`).
    fn base_name(&self) -> &str {
        self.model.rsplit('/').next().unwrap_or(&self.model)
    }

    /// Gemini 3 and later reject a function call in the current turn that comes back without
    /// its thought signature.
    fn requires_signatures(&self) -> bool {
        let name = self.base_name();
        name.starts_with("gemini-") && !name.starts_with("gemini-1") && !name.starts_with("gemini-2")
    }

    /// The request body of `request`. It is the same whether the reply is streamed or not
    /// (streaming is chosen by the endpoint).
    pub fn request_body(&self, request: &ModelRequest<'_>, _stream: bool) -> Value {
        let mut body = Map::new();
        let (system, contents) = self.contents(request.messages);
        body.insert("contents".into(), Value::Array(contents));
        if !system.is_empty() {
            body.insert("systemInstruction".into(), json!({"parts": system}));
        }
        if !request.tools.is_empty() {
            let declarations: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({"name": t.name(), "description": t.description(), "parametersJsonSchema": t.parameters()})
                })
                .collect();
            body.insert("tools".into(), json!([{"functionDeclarations": declarations}]));
            let config = match request.tool_choice {
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
                _ => json!({"mode": "AUTO"}),
            };
            body.insert("toolConfig".into(), json!({"functionCallingConfig": config}));
        }
        let generation = self.generation_config(request);
        if !generation.is_empty() {
            body.insert("generationConfig".into(), Value::Object(generation));
        }
        Value::Object(body)
    }

    fn generation_config(&self, request: &ModelRequest<'_>) -> Map<String, Value> {
        let s = request.settings;
        let mut config = Map::new();
        if let Some(t) = s.temperature {
            config.insert("temperature".into(), json!(t));
        }
        if let Some(p) = s.top_p {
            config.insert("topP".into(), json!(p));
        }
        if let Some(m) = s.max_tokens {
            config.insert("maxOutputTokens".into(), m.into());
        }
        if !s.stop.is_empty() {
            config.insert("stopSequences".into(), json!(s.stop));
        }
        if let Some(format) = request.response_format {
            config.insert("responseMimeType".into(), "application/json".into());
            config.insert("responseJsonSchema".into(), format.schema.as_ref().clone());
        }
        if let Some(effort) = s.effort {
            if self.base_name().starts_with("gemini-2.5") {
                let budget: u32 = match effort {
                    Effort::Minimal => 512,
                    Effort::Low => 1024,
                    Effort::Medium => 8192,
                    _ => 24_576,
                };
                config.insert("thinkingConfig".into(), json!({"thinkingBudget": budget}));
            } else {
                tracing::debug!(model = %self.model, "`{effort}` effort ignored: the model takes no thinking budget");
            }
        }
        config
    }

    /// The system instruction's parts and the conversation's contents, consecutive turns of
    /// one role merged into one content.
    fn contents(&self, messages: &[Message]) -> (Vec<Value>, Vec<Value>) {
        let mut system = Vec::new();
        let mut contents = Contents::default();
        // A tool result names its tool; when one does not, the call it answers does.
        let mut call_names: HashMap<&str, &str> = HashMap::new();
        for m in messages {
            match m {
                Message::System { content } => {
                    if !content.is_empty() {
                        system.push(json!({"text": &**content}));
                    }
                }
                Message::User { content } => contents.push("user", user_parts(content)),
                Message::Assistant { content, tool_calls } => {
                    let mut parts = Vec::with_capacity(1 + tool_calls.len());
                    let text = content.text();
                    if !text.is_empty() {
                        parts.push(json!({"text": text}));
                    }
                    let mut signed = false;
                    let mut first_call = None;
                    for call in tool_calls {
                        call_names.insert(&call.id, &call.name);
                        let mut part = Map::new();
                        part.insert("functionCall".into(), function_call(call));
                        if let Some(signature) = self.signatures.get(call) {
                            part.insert("thoughtSignature".into(), signature.into());
                            signed = true;
                        }
                        first_call.get_or_insert(parts.len());
                        parts.push(Value::Object(part));
                    }
                    // The first call of a step carries the step's signature; a step whose
                    // signatures are unknown says so, or Gemini 3 refuses the history.
                    if !signed
                        && self.requires_signatures()
                        && let Some(part) = first_call.and_then(|i| parts.get_mut(i)).and_then(Value::as_object_mut)
                    {
                        part.insert("thoughtSignature".into(), UNSIGNED_CALL.into());
                    }
                    contents.push("model", parts);
                }
                Message::Tool(r) => {
                    let name = if r.name.is_empty() {
                        call_names.get(r.call_id.as_str()).copied().unwrap_or_default()
                    } else {
                        r.name.as_str()
                    };
                    let text = r.content.text();
                    let mut response = Map::new();
                    response.insert("name".into(), name.into());
                    if sends_id(&r.call_id) {
                        response.insert("id".into(), r.call_id.clone().into());
                    }
                    let outcome = if r.is_error { json!({"error": text}) } else { json!({"result": text}) };
                    response.insert("response".into(), outcome);
                    contents.push("user", vec![json!({"functionResponse": response})]);
                }
            }
        }
        (system, contents.into_values())
    }

    fn headers(&self) -> Vec<(&str, String)> {
        let mut h: Vec<(&str, String)> = Vec::with_capacity(1 + self.headers.len());
        if let Some(key) = &self.api_key {
            h.push(("x-goog-api-key", key.expose().to_owned()));
        }
        h.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.clone())));
        h
    }
}

/// Contents under construction: a part list per turn, one turn per run of a role.
#[derive(Default)]
struct Contents(Vec<(&'static str, Vec<Value>)>);

impl Contents {
    fn push(&mut self, role: &'static str, parts: Vec<Value>) {
        if parts.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => self.0.push((role, parts)),
        }
    }

    fn into_values(self) -> Vec<Value> {
        self.0.into_iter().map(|(role, parts)| json!({"role": role, "parts": parts})).collect()
    }
}

/// Whether a call id goes on the wire: ids Loom made up for calls Gemini sent without one
/// (`call_1`, `call_2`, ...) mean nothing to the API and are left out.
fn sends_id(id: &str) -> bool {
    let generated = id.strip_prefix("call_").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    !id.is_empty() && !generated
}

fn function_call(call: &ToolCall) -> Value {
    // Gemini takes the arguments as an object; arguments that are not one (malformed text
    // from another model) are sent as no arguments rather than failing the request.
    let args = match serde_json::from_str::<Value>(&call.arguments) {
        Ok(Value::Object(args)) => Value::Object(args),
        _ => Value::Object(Map::new()),
    };
    let mut v = Map::new();
    if sends_id(&call.id) {
        v.insert("id".into(), call.id.clone().into());
    }
    v.insert("name".into(), call.name.clone().into());
    v.insert("args".into(), args);
    Value::Object(v)
}

fn user_parts(content: &Content) -> Vec<Value> {
    match content {
        Content::Text(t) if t.is_empty() => Vec::new(),
        Content::Text(t) => vec![json!({"text": t})],
        Content::Parts(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } if text.is_empty() => None,
                Part::Text { text } => Some(json!({"text": text})),
                Part::Image { source } | Part::Audio { source } | Part::Document { source, .. } => Some(media(source)),
            })
            .collect(),
    }
}

fn media(source: &MediaSource) -> Value {
    match source {
        MediaSource::Base64 { media_type, data } => json!({"inlineData": {"mimeType": media_type, "data": data}}),
        MediaSource::Url { url } => json!({"fileData": {"mimeType": mime_from_url(url), "fileUri": url}}),
    }
}

/// The MIME type of a URL's file, from its extension.
fn mime_from_url(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = file.rsplit_once('.') else { return "application/octet-stream" };
    match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "xml" => "text/xml",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aiff" => "audio/aiff",
        "mp4" => "video/mp4",
        "mpeg" | "mpg" => "video/mpeg",
        "mov" => "video/mov",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// The thought signatures of the function calls a model returned, so that the next request
/// hands each back with its call (Gemini 3 refuses a function-call history without them).
/// Bounded: the oldest are dropped first.
#[derive(Default)]
struct Signatures(Mutex<SignatureMap>);

#[derive(Default)]
struct SignatureMap {
    by_call: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Signatures {
    /// A call is known by its id, name and arguments: ids Loom made up repeat across replies.
    fn key(id: &str, name: &str, arguments: &str) -> String {
        format!("{id}\u{0}{name}\u{0}{arguments}")
    }

    fn lock(&self) -> MutexGuard<'_, SignatureMap> {
        // The map stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, call: &ToolCall, signature: String) {
        let key = Self::key(&call.id, &call.name, &call.arguments);
        let mut map = self.lock();
        if map.by_call.insert(key.clone(), signature).is_none() {
            map.order.push_back(key);
        }
        while map.order.len() > MAX_SIGNATURES {
            if let Some(oldest) = map.order.pop_front() {
                map.by_call.remove(&oldest);
            }
        }
    }

    fn get(&self, call: &ToolCall) -> Option<String> {
        self.lock().by_call.get(&Self::key(&call.id, &call.name, &call.arguments)).cloned()
    }
}

impl fmt::Debug for Signatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signatures({} calls)", self.lock().by_call.len())
    }
}

/// A Google API error body: `{"error": {"code", "message", "status", "details"}}`, alone or
/// as the first item of an array.
#[derive(Deserialize, Default)]
struct GoogleError {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    reason: Option<String>,
}

fn google_error(body: &str) -> Option<GoogleError> {
    let v: Value = serde_json::from_str(body).ok()?;
    let v = match v {
        Value::Array(items) => items.into_iter().next()?,
        other => other,
    };
    serde_json::from_value(v.get("error")?.clone()).ok()
}

/// Gemini's error bodies tell a too-long prompt, a bad key and a billing problem from other
/// 400s; the status alone cannot.
fn classify(status: u16, body: &str) -> Option<ModelErrorKind> {
    let error = google_error(body)?;
    let message = error.message.to_ascii_lowercase();
    let reason = |r: &str| error.details.iter().any(|d| d.reason.as_deref() == Some(r));
    let rpc = error.status.as_deref().unwrap_or_default();
    match status {
        400 if message.contains("input token count") || message.contains("maximum number of tokens") => {
            Some(ModelErrorKind::ContextLengthExceeded)
        }
        400 if reason("API_KEY_INVALID") || reason("API_KEY_EXPIRED") || message.contains("api key not valid") => {
            Some(ModelErrorKind::Authentication)
        }
        400 if rpc == "FAILED_PRECONDITION" && message.contains("billing") => Some(ModelErrorKind::QuotaExceeded),
        400 if rpc == "FAILED_PRECONDITION" && message.contains("location is not supported") => {
            Some(ModelErrorKind::PermissionDenied)
        }
        403 if message.contains("unregistered callers") => Some(ModelErrorKind::Authentication),
        _ => None,
    }
}

/// The HTTP status an RPC status name stands for, for errors that arrive inside a stream.
fn rpc_status(name: &str) -> u16 {
    match name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "RESOURCE_EXHAUSTED" => 429,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}

/// The typed error of an error object sent inside the event stream.
fn stream_error(error: &Value) -> ModelError {
    let body = json!({"error": error}).to_string();
    let parsed: GoogleError = serde_json::from_value(error.clone()).unwrap_or_default();
    let status = parsed
        .code
        .filter(|c| (400..=599).contains(c))
        .unwrap_or_else(|| parsed.status.as_deref().map_or(500, rpc_status));
    http::error_from_status(PROVIDER, status, &reqwest::header::HeaderMap::new(), &body, classify)
}

fn finish_reason(reason: Option<&str>, has_calls: bool) -> FinishReason {
    match reason {
        Some("STOP") | None if has_calls => FinishReason::ToolCalls,
        Some("STOP") | None => FinishReason::Stop,
        Some("MAX_TOKENS") => FinishReason::Length,
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT",
        ) => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    fn usage(&self) -> Usage {
        // The prompt count includes the cached tokens; thoughts are billed as output.
        let cached = self.cached_content_token_count;
        let input = self.prompt_token_count.saturating_add(self.tool_use_prompt_token_count).saturating_sub(cached);
        let output = self.candidates_token_count.saturating_add(self.thoughts_token_count);
        Usage::new(input, output).with_cached_input_tokens(cached).with_reasoning_tokens(self.thoughts_token_count)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    response_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireContent {
    #[serde(default)]
    parts: Vec<WirePart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    #[serde(default)]
    function_call: Option<WireFunctionCall>,
    #[serde(default)]
    thought_signature: Option<String>,
}

#[derive(Deserialize)]
struct WireFunctionCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

impl WireFunctionCall {
    /// The call, its id Gemini's or else `call_<n>` (`n` counting from 1 within the reply).
    fn into_call(self, n: usize) -> ToolCall {
        let id = self.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_{n}"));
        let arguments = match self.args {
            Some(args @ Value::Object(_)) => args.to_string(),
            _ => "{}".to_owned(),
        };
        ToolCall::new(id, self.name, arguments)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
    #[serde(default)]
    block_reason_message: Option<String>,
}

impl WireResponse {
    /// The error of a prompt Gemini refused to answer at all.
    fn blocked(&self) -> Option<ModelError> {
        if !self.candidates.is_empty() {
            return None;
        }
        let feedback = self.prompt_feedback.as_ref()?;
        let reason = feedback.block_reason.as_deref()?;
        let mut message = format!("the prompt was blocked ({reason})");
        if let Some(detail) = feedback.block_reason_message.as_deref().filter(|m| !m.is_empty()) {
            message.push_str(": ");
            message.push_str(detail);
        }
        Some(ModelError::new(ModelErrorKind::ContentFiltered, PROVIDER, message))
    }
}

/// Parses a non-streamed reply, remembering the thought signatures of its function calls.
fn parse_response(body: &[u8], signatures: &Signatures) -> Result<ModelResponse, ModelError> {
    let mut r: WireResponse = serde_json::from_slice(body).map_err(|e| invalid_body(PROVIDER, e))?;
    if let Some(blocked) = r.blocked() {
        return Err(blocked);
    }
    if r.candidates.is_empty() {
        return Err(ModelError::new(ModelErrorKind::InvalidResponse, PROVIDER, "the response has no candidates"));
    }
    let candidate = r.candidates.swap_remove(0);
    let mut response = ModelResponse::default();
    let mut reasoning: Option<String> = None;
    let mut reply = String::new();
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(call) = part.function_call {
            let call = call.into_call(response.tool_calls.len() + 1);
            if let Some(signature) = part.thought_signature.filter(|s| !s.is_empty()) {
                signatures.record(&call, signature);
            }
            response.tool_calls.push(call);
        } else if let Some(text) = part.text {
            if part.thought {
                reasoning.get_or_insert_with(String::new).push_str(&text);
            } else {
                reply.push_str(&text);
            }
        }
    }
    response.text = reply.into();
    response.reasoning = reasoning;
    response.finish_reason = finish_reason(candidate.finish_reason.as_deref(), !response.tool_calls.is_empty());
    response.usage = r.usage_metadata.map(|u| u.usage()).unwrap_or_default();
    response.model = r.model_version;
    response.request_id = r.response_id;
    Ok(response)
}

/// The `streamGenerateContent?alt=sse` event stream: every event is a whole response chunk.
/// Gemini sends no end marker: the stream is complete when it ends after a finish reason.
struct ChunkParser {
    signatures: Arc<Signatures>,
    calls: usize,
    finish: Option<String>,
    usage: Usage,
    response_id: bool,
    finished: bool,
}

impl ChunkParser {
    fn new(signatures: Arc<Signatures>) -> Self {
        Self { signatures, calls: 0, finish: None, usage: Usage::default(), response_id: false, finished: false }
    }

    fn complete(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.finished {
            self.finished = true;
            out.push(StreamEvent::Usage(self.usage));
            out.push(StreamEvent::Finish(finish_reason(self.finish.as_deref(), self.calls > 0)));
        }
    }
}

impl StreamParser for ChunkParser {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, ModelError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        let value: Value = serde_json::from_str(data).map_err(|e| malformed(PROVIDER, "stream chunk", e))?;
        let value = match value {
            Value::Array(items) => items.into_iter().next().unwrap_or(Value::Null),
            other => other,
        };
        if let Some(error) = value.get("error") {
            return Err(stream_error(error));
        }
        let chunk: WireResponse = serde_json::from_value(value).map_err(|e| malformed(PROVIDER, "stream chunk", e))?;
        if let Some(blocked) = chunk.blocked() {
            return Err(blocked);
        }
        if let Some(u) = &chunk.usage_metadata {
            self.usage = u.usage();
        }
        if !self.response_id
            && let Some(id) = chunk.response_id.filter(|id| !id.is_empty())
        {
            self.response_id = true;
            out.push(StreamEvent::RequestId(id));
        }
        let Some(candidate) = chunk.candidates.into_iter().next() else { return Ok(false) };
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(call) = part.function_call {
                let index = self.calls;
                self.calls += 1;
                let call = call.into_call(self.calls);
                if let Some(signature) = part.thought_signature.filter(|s| !s.is_empty()) {
                    self.signatures.record(&call, signature);
                }
                out.push(StreamEvent::ToolCallStart { index, id: call.id, name: call.name });
                out.push(StreamEvent::ToolCallDelta { index, arguments: call.arguments });
            } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                out.push(if part.thought { StreamEvent::ReasoningDelta(text) } else { StreamEvent::TextDelta(text) });
            }
        }
        if let Some(reason) = candidate.finish_reason {
            self.finish = Some(reason);
        }
        Ok(false)
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ModelError> {
        if self.finished {
            return Ok(());
        }
        if self.finish.is_some() {
            self.complete(out);
            return Ok(());
        }
        Err(ModelError::new(
            ModelErrorKind::Stream,
            PROVIDER,
            "the response stream ended before the reply was complete",
        ))
    }
}

#[async_trait::async_trait]
impl Model for GeminiModel {
    fn name(&self) -> &str {
        &self.model
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        let body = serde_json::to_vec(&self.request_body(request, false)).map_err(|e| invalid_body(PROVIDER, e))?;
        let headers = self.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (bytes, request_id) = self.http.post(&self.generate_url, &headers, body, classify).await?;
        let mut response = parse_response(&bytes, &self.signatures)?;
        if response.request_id.is_none() {
            response.request_id = request_id;
        }
        Ok(response)
    }

    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        let body = self.request_body(request, true);
        Box::pin(
            futures::stream::once(async move {
                let body = serde_json::to_vec(&body).map_err(|e| invalid_body(PROVIDER, e))?;
                let headers = self.headers();
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let parser = ChunkParser::new(Arc::clone(&self.signatures));
                self.http.post_stream(&self.stream_url, &headers, body, classify, parser).await
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
    use crate::model::{ModelSettings, ToolResult};
    use crate::tool::ToolDefinition;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn model(name: &str) -> Result<GeminiModel, ConfigError> {
        let mut config = HttpConfig::new("http://localhost:9/v1beta/");
        config.api_key = Some(ApiKey::new("k"));
        GeminiModel::new(name, config)
    }

    fn body(m: &GeminiModel, messages: &[Message]) -> Value {
        m.request_body(&ModelRequest::new(messages), false)
    }

    #[test]
    fn model_names_become_resource_paths() -> TestResult {
        let m = model("gemini-2.5-flash")?;
        assert_eq!(m.generate_url, "http://localhost:9/v1beta/models/gemini-2.5-flash:generateContent");
        assert_eq!(m.stream_url, "http://localhost:9/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
        let tuned = model("tunedModels/my-model")?;
        assert_eq!(tuned.generate_url, "http://localhost:9/v1beta/tunedModels/my-model:generateContent");
        assert_eq!(model("models/gemini-2.5-pro")?.base_name(), "gemini-2.5-pro");
        for bad in ["", "gemini 2.5", "gemini?x", "gemini:generateContent"] {
            assert!(matches!(model(bad), Err(ConfigError::InvalidSetting { setting: "model", .. })), "{bad}");
        }
        let caps = m.capabilities();
        assert!(caps.tools && caps.streaming && caps.vision && caps.native_structured_output && !caps.prompt_caching);
        // The key never shows in debug output.
        assert!(!format!("{m:?}").contains("\"k\""));
        Ok(())
    }

    #[test]
    fn contents_merge_turns_of_one_role_and_carry_media() -> TestResult {
        let m = model("gemini-2.5-flash")?;
        let messages = [
            Message::system("Be brief."),
            Message::system("Answer in French."),
            Message::user(vec![
                Part::text("What is in these?"),
                Part::image_base64("image/png", "iVBORw0KGgo="),
                Part::image_url("https://example.com/cat.JPG?size=large#top"),
                Part::Audio { source: MediaSource::Base64 { media_type: "audio/wav".into(), data: "UklGRg==".into() } },
                Part::Document { source: MediaSource::Url { url: "gs://bucket/report.pdf".into() }, name: None },
                Part::Document { source: MediaSource::Url { url: "https://example.com/data".into() }, name: None },
            ]),
            Message::user(""),
            Message::user("Also this."),
            Message::assistant("Un chat."),
        ];
        assert_eq!(
            body(&m, &messages),
            json!({
                "contents": [
                    {"role": "user", "parts": [
                        {"text": "What is in these?"},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?size=large#top"}},
                        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/report.pdf"}},
                        {"fileData": {"mimeType": "application/octet-stream", "fileUri": "https://example.com/data"}},
                        {"text": "Also this."}
                    ]},
                    {"role": "model", "parts": [{"text": "Un chat."}]}
                ],
                "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]}
            })
        );
        Ok(())
    }

    #[test]
    fn tool_calls_and_results_round_trip() -> TestResult {
        let m = model("gemini-2.5-flash")?;
        let messages = [
            Message::user("Go."),
            Message::assistant_with_tools(
                "On it.",
                vec![
                    ToolCall::new("call_1", "add", r#"{"a": 1, "b": 2}"#),
                    ToolCall::new("fc_7Yx", "add", "not json"),
                    ToolCall::new("call_3", "add", "[1, 2]"),
                ],
            ),
            Message::tool(ToolResult::ok("call_1", "add", "3")),
            Message::tool(ToolResult {
                call_id: "fc_7Yx".into(),
                name: String::new(),
                content: "?".into(),
                is_error: true,
            }),
            Message::tool(ToolResult::ok("call_3", "add", "")),
        ];
        assert_eq!(
            body(&m, &messages)["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Go."}]},
                {"role": "model", "parts": [
                    {"text": "On it."},
                    {"functionCall": {"name": "add", "args": {"a": 1, "b": 2}}},
                    {"functionCall": {"id": "fc_7Yx", "name": "add", "args": {}}},
                    {"functionCall": {"name": "add", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "add", "response": {"result": "3"}}},
                    {"functionResponse": {"name": "add", "id": "fc_7Yx", "response": {"error": "?"}}},
                    {"functionResponse": {"name": "add", "response": {"result": ""}}}
                ]}
            ])
        );
        assert!(sends_id("call_x1") && sends_id("call_") && !sends_id("call_12") && !sends_id(""));
        Ok(())
    }

    #[test]
    fn thought_signatures_go_back_with_their_calls() -> TestResult {
        let reply = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"id": "a1", "name": "f", "args": {"x": 1}}, "thoughtSignature": "SIG"},
            {"functionCall": {"id": "a2", "name": "f", "args": {"x": 2}}}
        ]}, "finishReason": "STOP"}]});
        for name in ["gemini-2.5-flash", "gemini-3-pro-preview"] {
            let m = model(name)?;
            let response = parse_response(reply.to_string().as_bytes(), &m.signatures)?;
            assert_eq!(response.finish_reason, FinishReason::ToolCalls);
            let messages = [Message::user("q"), response.into_message()];
            assert_eq!(
                body(&m, &messages)["contents"][1]["parts"],
                json!([
                    {"functionCall": {"id": "a1", "name": "f", "args": {"x": 1}}, "thoughtSignature": "SIG"},
                    {"functionCall": {"id": "a2", "name": "f", "args": {"x": 2}}}
                ]),
                "{name}"
            );
        }
        // Calls Gemini 3 did not sign (another model's, or a restored history) say so; older
        // models need nothing.
        let foreign = [
            Message::user("q"),
            Message::assistant_with_tools(
                "",
                vec![ToolCall::new("call_abc", "f", "{}"), ToolCall::new("call_def", "f", "{}")],
            ),
        ];
        let parts = body(&model("gemini-3-flash-preview")?, &foreign)["contents"][1]["parts"].clone();
        assert_eq!(parts[0]["thoughtSignature"], UNSIGNED_CALL);
        assert!(parts[1].get("thoughtSignature").is_none());
        let parts = body(&model("gemini-2.5-pro")?, &foreign)["contents"][1]["parts"].clone();
        assert!(parts[0].get("thoughtSignature").is_none());
        Ok(())
    }

    #[test]
    fn signatures_are_bounded() {
        let signatures = Signatures::default();
        for i in 0..MAX_SIGNATURES + 10 {
            signatures.record(&ToolCall::new(format!("c{i}"), "f", "{}"), format!("s{i}"));
        }
        assert_eq!(signatures.get(&ToolCall::new("c0", "f", "{}")), None);
        let last = MAX_SIGNATURES + 9;
        assert_eq!(signatures.get(&ToolCall::new(format!("c{last}"), "f", "{}")), Some(format!("s{last}")));
        assert_eq!(signatures.lock().order.len(), MAX_SIGNATURES);
        assert_eq!(format!("{signatures:?}"), format!("Signatures({MAX_SIGNATURES} calls)"));
    }

    #[test]
    fn tool_choice_and_settings_map_to_the_wire() -> TestResult {
        let m = model("gemini-2.5-pro")?;
        let tools = [ToolDefinition::new("add", "Add.", json!({"type": "object", "properties": {}}))?];
        let messages = [Message::user("q")];
        let settings = ModelSettings {
            top_p: Some(0.9),
            stop: vec!["END".into()],
            effort: Some(Effort::Low),
            parallel_tool_calls: Some(false),
            ..ModelSettings::default()
        };
        for (choice, config) in [
            (ToolChoice::Auto, json!({"mode": "AUTO"})),
            (ToolChoice::None, json!({"mode": "NONE"})),
            (ToolChoice::Required, json!({"mode": "ANY"})),
            (ToolChoice::Tool("add".into()), json!({"mode": "ANY", "allowedFunctionNames": ["add"]})),
        ] {
            let request =
                ModelRequest::new(&messages).with_tools(&tools).with_tool_choice(&choice).with_settings(&settings);
            let body = m.request_body(&request, true);
            assert_eq!(body["toolConfig"], json!({"functionCallingConfig": config}));
            assert_eq!(
                body["generationConfig"],
                json!({"topP": 0.9, "stopSequences": ["END"], "thinkingConfig": {"thinkingBudget": 1024}})
            );
        }
        Ok(())
    }

    #[test]
    fn classify_reads_gemini_error_bodies() {
        let body = |code: u16, status: &str, message: &str| {
            json!({"error": {"code": code, "message": message, "status": status}}).to_string()
        };
        let tokens = body(
            400,
            "INVALID_ARGUMENT",
            "The input token count (5) exceeds the maximum number of tokens allowed (4).",
        );
        assert_eq!(classify(400, &tokens), Some(ModelErrorKind::ContextLengthExceeded));
        assert_eq!(classify(400, &format!("[{tokens}]")), Some(ModelErrorKind::ContextLengthExceeded));
        let billing = body(400, "FAILED_PRECONDITION", "Please enable billing on your project.");
        assert_eq!(classify(400, &billing), Some(ModelErrorKind::QuotaExceeded));
        let location = body(400, "FAILED_PRECONDITION", "User location is not supported for the API use.");
        assert_eq!(classify(400, &location), Some(ModelErrorKind::PermissionDenied));
        let key = json!({"error": {"code": 400, "message": "Bad key.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_EXPIRED"}]}});
        assert_eq!(classify(400, &key.to_string()), Some(ModelErrorKind::Authentication));
        assert_eq!(classify(400, &body(400, "INVALID_ARGUMENT", "Unknown name \"x\".")), None);
        assert_eq!(classify(429, &body(429, "RESOURCE_EXHAUSTED", "Check your plan and billing details.")), None);
        assert_eq!(classify(500, "<html>oops</html>"), None);
    }

    #[test]
    fn finish_reasons_map() {
        assert_eq!(finish_reason(Some("STOP"), false), FinishReason::Stop);
        assert_eq!(finish_reason(None, true), FinishReason::ToolCalls);
        assert_eq!(finish_reason(Some("STOP"), true), FinishReason::ToolCalls);
        assert_eq!(finish_reason(Some("MAX_TOKENS"), true), FinishReason::Length);
        for r in ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"] {
            assert_eq!(finish_reason(Some(r), false), FinishReason::ContentFilter, "{r}");
        }
        assert_eq!(
            finish_reason(Some("MALFORMED_FUNCTION_CALL"), false),
            FinishReason::Other("MALFORMED_FUNCTION_CALL".into())
        );
    }

    #[test]
    fn replies_without_candidates_or_json_are_typed_errors() {
        let signatures = Signatures::default();
        let empty = parse_response(br#"{"modelVersion": "gemini-2.5-flash"}"#, &signatures).err();
        assert!(empty.is_some_and(|e| e.kind() == ModelErrorKind::InvalidResponse));
        let html = parse_response(b"<html>", &signatures).err();
        assert!(html.is_some_and(|e| e.kind() == ModelErrorKind::InvalidResponse));
        let blocked = json!({"promptFeedback": {"blockReason": "OTHER", "blockReasonMessage": "Not allowed."}});
        let blocked = parse_response(blocked.to_string().as_bytes(), &signatures).err();
        assert!(blocked.is_some_and(|e| e.kind() == ModelErrorKind::ContentFiltered
            && e.message() == "the prompt was blocked (OTHER): Not allowed."));
        // A safety stop with no content is an empty, filtered reply.
        let stopped = json!({"candidates": [{"finishReason": "SAFETY"}], "usageMetadata": {"promptTokenCount": 3}});
        let stopped = parse_response(stopped.to_string().as_bytes(), &signatures);
        assert!(stopped.is_ok_and(|r| r.text.is_empty()
            && r.finish_reason == FinishReason::ContentFilter
            && r.usage == Usage::new(3, 0)));
    }

    #[test]
    fn stream_errors_are_typed_by_code_or_status() {
        let mut parser = ChunkParser::new(Arc::default());
        let mut out = Vec::new();
        let event = |data: &str| SseEvent { event: None, data: data.to_owned() };
        let e = parser.event(event(r#"{"error": {"message": "slow down", "status": "RESOURCE_EXHAUSTED"}}"#), &mut out);
        assert!(e.is_err_and(|e| e.kind() == ModelErrorKind::RateLimited && e.message() == "slow down"));
        let e = parser.event(event(r#"[{"error": {"code": 400, "message": "The input token count (9) exceeds the maximum number of tokens allowed (8)."}}]"#), &mut out);
        assert!(e.is_err_and(|e| e.kind() == ModelErrorKind::ContextLengthExceeded));
        let e = parser.event(event(r#"{"error": {"message": "?"}}"#), &mut out);
        assert!(e.is_err_and(|e| e.kind() == ModelErrorKind::Overloaded));
        assert!(parser.event(event("  "), &mut out).is_ok_and(|done| !done));
        assert!(out.is_empty());
        assert!(parser.end(&mut out).is_err_and(|e| e.kind() == ModelErrorKind::Stream));
    }

    #[test]
    fn usage_subtracts_the_cache_and_adds_thoughts() {
        let u = UsageMetadata {
            prompt_token_count: 100,
            candidates_token_count: 10,
            cached_content_token_count: 60,
            thoughts_token_count: 5,
            tool_use_prompt_token_count: 2,
        };
        assert_eq!(u.usage(), Usage::new(42, 15).with_cached_input_tokens(60).with_reasoning_tokens(5));
        assert_eq!(UsageMetadata { cached_content_token_count: 9, ..UsageMetadata::default() }.usage().input_tokens, 0);
    }

    #[test]
    fn mime_types_come_from_the_extension() {
        assert_eq!(mime_from_url("https://x.test/a/b.webp"), "image/webp");
        assert_eq!(mime_from_url("https://x.test/song.MP3?dl=1"), "audio/mp3");
        assert_eq!(mime_from_url("https://x.test/v1.2/file"), "application/octet-stream");
        assert_eq!(mime_from_url("https://x.test/notes.txt#l3"), "text/plain");
        assert_eq!(mime_from_url(""), "application/octet-stream");
    }
}
