//! The response side: thought signatures, error bodies, whole replies and the event stream.

use super::*;

/// The thought signatures of the function calls a model returned, so that the next request
/// hands each back with its call (Gemini 3 refuses a function-call history without them).
/// Kept per user (a signature carries the model's reasoning: one user's never goes out in
/// another user's request) and bounded: the oldest are dropped first.
#[derive(Default)]
pub(super) struct Signatures(Mutex<SignatureMap>);

#[derive(Default)]
pub(super) struct SignatureMap {
    by_call: HashMap<String, String>,
    pub(super) order: VecDeque<String>,
}

impl Signatures {
    /// A call is known by its user, id, name and arguments: ids Loom made up repeat across
    /// replies and users.
    pub(super) fn key(user: Option<&UserId>, id: &str, name: &str, arguments: &str) -> String {
        let user = user.map_or("", UserId::as_str);
        format!("{user}\u{0}{id}\u{0}{name}\u{0}{arguments}")
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, SignatureMap> {
        // The map stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn record(&self, user: Option<&UserId>, call: &ToolCall, signature: String) {
        let key = Self::key(user, &call.id, &call.name, &call.arguments);
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

    pub(super) fn get(&self, user: Option<&UserId>, call: &ToolCall) -> Option<String> {
        self.lock().by_call.get(&Self::key(user, &call.id, &call.name, &call.arguments)).cloned()
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
pub(super) struct GoogleError {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default, deserialize_with = "nullable")]
    message: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
pub(super) struct ErrorDetail {
    #[serde(default)]
    reason: Option<String>,
}

pub(super) fn google_error(body: &str) -> Option<GoogleError> {
    let v: Value = serde_json::from_str(body).ok()?;
    let v = match v {
        Value::Array(items) => items.into_iter().next()?,
        other => other,
    };
    serde_json::from_value(v.get("error")?.clone()).ok()
}

/// Gemini's error bodies tell a too-long prompt, a bad key and a billing problem from other
/// 400s; the status alone cannot.
pub(super) fn classify(status: u16, body: &str) -> Option<ModelErrorKind> {
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
pub(super) fn rpc_status(name: &str) -> u16 {
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
pub(super) fn stream_error(error: &Value) -> ModelError {
    let body = json!({"error": error}).to_string();
    let parsed: GoogleError = serde_json::from_value(error.clone()).unwrap_or_default();
    let status = parsed
        .code
        .filter(|c| (400..=599).contains(c))
        .unwrap_or_else(|| parsed.status.as_deref().map_or(500, rpc_status));
    status::error_from_status(PROVIDER, status, &reqwest::header::HeaderMap::new(), &body, classify)
}

pub(super) fn finish_reason(reason: Option<&str>, has_calls: bool) -> FinishReason {
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
pub(super) struct UsageMetadata {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) prompt_token_count: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) candidates_token_count: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) cached_content_token_count: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) thoughts_token_count: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    pub(super) fn usage(&self) -> Usage {
        // The prompt count includes the cached tokens; thoughts are billed as output.
        let cached = self.cached_content_token_count;
        let input = self.prompt_token_count.saturating_add(self.tool_use_prompt_token_count).saturating_sub(cached);
        let output = self.candidates_token_count.saturating_add(self.thoughts_token_count);
        Usage::new(input, output).with_cached_input_tokens(cached).with_reasoning_tokens(self.thoughts_token_count)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireResponse {
    #[serde(default, deserialize_with = "nullable")]
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
pub(super) struct Candidate {
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WireContent {
    #[serde(default, deserialize_with = "nullable")]
    parts: Vec<WirePart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    thought: bool,
    #[serde(default)]
    function_call: Option<WireFunctionCall>,
    #[serde(default)]
    thought_signature: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WireFunctionCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

impl WireFunctionCall {
    /// The call, its id Gemini's or else `call_<n>` (`n` counting from 1 within the reply).
    pub(super) fn into_call(self, n: usize) -> ToolCall {
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
pub(super) struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
    #[serde(default)]
    block_reason_message: Option<String>,
}

impl WireResponse {
    /// The error of a prompt Gemini refused to answer at all.
    pub(super) fn blocked(&self) -> Option<ModelError> {
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
pub(super) fn parse_response(
    body: &[u8],
    signatures: &Signatures,
    user: Option<&UserId>,
) -> Result<ModelResponse, ModelError> {
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
                signatures.record(user, &call, signature);
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
pub(super) struct ChunkParser {
    signatures: Arc<Signatures>,
    user: Option<UserId>,
    calls: usize,
    finish: Option<String>,
    usage: Usage,
    response_id: bool,
    finished: bool,
}

impl ChunkParser {
    pub(super) fn new(signatures: Arc<Signatures>, user: Option<UserId>) -> Self {
        Self { signatures, user, calls: 0, finish: None, usage: Usage::default(), response_id: false, finished: false }
    }

    pub(super) fn complete(&mut self, out: &mut Vec<StreamEvent>) {
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
                    self.signatures.record(self.user.as_ref(), &call, signature);
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
        Err(ModelError::cut_stream(PROVIDER))
    }
}
