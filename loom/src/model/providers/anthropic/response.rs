//! The response side: error bodies, whole replies and the event stream.

use super::*;

/// The Anthropic error body: `{"type": "error", "error": {"type": ..., "message": ...}}`.
#[derive(Deserialize, Default)]
pub(super) struct WireError {
    #[serde(default, rename = "type", deserialize_with = "nullable")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    message: String,
}

#[derive(Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default, deserialize_with = "nullable")]
    error: WireError,
}

pub(super) fn too_long(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("prompt is too long") || m.contains("exceed context limit") || m.contains("context window")
}

/// The kind of an error the API named: in an error body or an `error` event.
pub(super) fn error_kind(kind: &str, message: &str) -> ModelErrorKind {
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
pub(super) fn classify(status: u16, body: &str) -> Option<ModelErrorKind> {
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

pub(super) fn finish_reason(reason: Option<&str>) -> FinishReason {
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
pub(super) struct WireUsage {
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
pub(super) struct WireMessage {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    error: Option<WireError>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block {
    Text {
        #[serde(default, deserialize_with = "nullable")]
        text: String,
    },
    ToolUse {
        #[serde(default, deserialize_with = "nullable")]
        id: String,
        #[serde(default, deserialize_with = "nullable")]
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default, deserialize_with = "nullable")]
        thinking: String,
    },
    /// `redacted_thinking`, server tool blocks, and types added later.
    #[serde(other)]
    Other,
}

/// The JSON text of a tool call's `input` (`{}` when there is none).
pub(super) fn arguments(input: &Value) -> String {
    match input {
        Value::Null => "{}".to_owned(),
        v => serde_json::to_string(v).unwrap_or_else(|_| "{}".to_owned()),
    }
}

pub(super) fn parse_message(body: &[u8]) -> Result<ModelResponse, ModelError> {
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
pub(super) enum Event {
    MessageStart {
        #[serde(default, deserialize_with = "nullable")]
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
        #[serde(default, deserialize_with = "nullable")]
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        #[serde(default, deserialize_with = "nullable")]
        error: WireError,
    },
    /// `ping`, and event types added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
pub(super) struct StartMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum StartBlock {
    Text {
        #[serde(default, deserialize_with = "nullable")]
        text: String,
    },
    ToolUse {
        #[serde(default, deserialize_with = "nullable")]
        id: String,
        #[serde(default, deserialize_with = "nullable")]
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default, deserialize_with = "nullable")]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum BlockDelta {
    TextDelta {
        #[serde(default, deserialize_with = "nullable")]
        text: String,
    },
    InputJsonDelta {
        #[serde(default, deserialize_with = "nullable")]
        partial_json: String,
    },
    ThinkingDelta {
        #[serde(default, deserialize_with = "nullable")]
        thinking: String,
    },
    /// `signature_delta`, and delta types added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
pub(super) struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// What a content block of the streamed reply is.
pub(super) enum OpenBlock {
    /// A tool call: its position among the reply's tool calls, and whether any of its
    /// arguments were sent.
    Tool { index: usize, has_arguments: bool },
    /// Text, thinking, or a block Loom does not read.
    Other,
}

/// The Messages event stream: `message_start`, content blocks (start, deltas, stop),
/// `message_delta`, `message_stop`.
pub(super) struct EventParser {
    blocks: HashMap<usize, OpenBlock>,
    tool_calls: usize,
    usage: Usage,
    finish: Option<FinishReason>,
}

impl EventParser {
    pub(super) fn new() -> Self {
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
        Err(ModelError::cut_stream(PROVIDER))
    }
}
