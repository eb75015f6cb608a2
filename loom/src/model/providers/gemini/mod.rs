//! Google Gemini: the Gemini API's `generateContent` and `streamGenerateContent`.
//!
//! Loom's messages become Gemini `contents` (roles `user` and `model`), its tools become
//! function declarations with their JSON schemas as they are, and a typed output becomes a
//! `responseJsonSchema`. Replies stream as server-sent events, one whole
//! `GenerateContentResponse` per event.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{ApiKey, Auth, Endpoint, Http, HttpConfig, env};
use super::sse::{SseEvent, StreamParser};
use super::status::{self, invalid_body, malformed};
use super::wire::nullable;
use crate::error::ConfigError;
use crate::id::UserId;
use crate::model::{
    Capabilities, Content, Effort, FinishReason, MediaSource, Message, Model, ModelError, ModelErrorKind, ModelRequest,
    ModelResponse, ModelStream, Part, StreamEvent, ToolCall, ToolChoice, Usage,
};

mod request;
mod response;
#[cfg(test)]
mod tests;

use request::*;
use response::*;

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
    generate_url: Endpoint,
    stream_url: Endpoint,
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
        let http = Http::new(PROVIDER, &config, Auth::Header("x-goog-api-key"), &[])?;
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
            generate_url: Endpoint::new(&config.base_url, &format!("/{resource}:generateContent")),
            stream_url: Endpoint::new(&config.base_url, &format!("/{resource}:streamGenerateContent?alt=sse")),
            model,
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
        let (system, contents) = self.contents(request.messages, request.user);
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
    fn contents(&self, messages: &[Message], user: Option<&UserId>) -> (Vec<Value>, Vec<Value>) {
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
                        if let Some(signature) = self.signatures.get(user, call) {
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
        let body = self.request_body(request, false);
        let (bytes, request_id) = self.http.post(&self.generate_url, &body, classify).await?;
        let mut response = parse_response(&bytes, &self.signatures, request.user)?;
        if response.request_id.is_none() {
            response.request_id = request_id;
        }
        Ok(response)
    }

    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        let parser = ChunkParser::new(Arc::clone(&self.signatures), request.user.cloned());
        self.http.stream(&self.stream_url, self.request_body(request, true), classify, parser)
    }
}
