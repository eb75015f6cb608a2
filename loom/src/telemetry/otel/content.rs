//! Message contents on the spans, when the telemetry captures them
//! ([`Telemetry::capture_content`](super::Telemetry::capture_content)), in the JSON shapes of
//! the GenAI conventions; and the finish reasons of model calls, which are not contents but
//! are an array, which a `tracing` field cannot hold.
//!
//! Nothing here is formatted unless the span is exported by Loom's telemetry with capture on.

use opentelemetry::{Array, StringValue, Value};
use serde_json::{Value as Json, json};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::GenAiLayer;
use crate::model::{Content, FinishReason, MediaSource, Message, ModelRequest, ModelResponse, Part, ToolCall};

/// Whether `span` is exported by Loom's telemetry (`Some`), and whether it captures contents.
fn policy(span: &Span) -> Option<bool> {
    if span.is_disabled() {
        return None;
    }
    span.with_subscriber(|(_, dispatch)| dispatch.downcast_ref::<GenAiLayer>().map(|layer| layer.capture_content))
        .flatten()
}

fn capturing(span: &Span) -> bool {
    policy(span) == Some(true)
}

fn set_json(span: &Span, key: &'static str, value: &Json) {
    span.set_attribute(key, value.to_string());
}

/// The input of an agent run.
pub(crate) fn run_input(span: &Span, content: &Content) {
    if capturing(span) {
        set_json(span, "gen_ai.input.messages", &json!([{"role": "user", "parts": parts(content)}]));
    }
}

/// The answer of an agent run: its last assistant message.
pub(crate) fn run_output(span: &Span, messages: &[Message]) {
    if !capturing(span) {
        return;
    }
    if let Some(last @ Message::Assistant { .. }) =
        messages.iter().rev().find(|m| matches!(m, Message::Assistant { .. }))
    {
        set_json(span, "gen_ai.output.messages", &json!([message(last)]));
    }
}

/// The conversation a model call sends: its instructions and its messages.
pub(crate) fn chat_request(span: &Span, request: &ModelRequest<'_>) {
    if !capturing(span) {
        return;
    }
    let instructions: Vec<Json> = request
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::System { content } => Some(json!({"type": "text", "content": &**content})),
            _ => None,
        })
        .collect();
    if !instructions.is_empty() {
        set_json(span, "gen_ai.system_instructions", &Json::Array(instructions));
    }
    let messages: Vec<Json> =
        request.messages.iter().filter(|m| !matches!(m, Message::System { .. })).map(message).collect();
    set_json(span, "gen_ai.input.messages", &Json::Array(messages));
}

/// A model's reply: its finish reason always; its message when contents are captured and
/// `unguarded` (no output guardrail has yet to check it).
pub(crate) fn chat_response(span: &Span, response: &ModelResponse, unguarded: bool) {
    let Some(capture) = policy(span) else { return };
    let reason = finish_reason(&response.finish_reason);
    span.set_attribute(
        "gen_ai.response.finish_reasons",
        Value::Array(Array::String(vec![StringValue::from(reason.to_owned())])),
    );
    if capture && unguarded {
        let mut parts = text_part(&response.text);
        parts.extend(response.tool_calls.iter().map(tool_call));
        set_json(
            span,
            "gen_ai.output.messages",
            &json!([{"role": "assistant", "parts": parts, "finish_reason": reason}]),
        );
    }
}

/// The arguments a tool is called with.
pub(crate) fn tool_arguments(span: &Span, arguments: &str) {
    if capturing(span) {
        span.set_attribute("gen_ai.tool.call.arguments", arguments.to_owned());
    }
}

/// What a tool returned.
pub(crate) fn tool_result(span: &Span, content: &Content) {
    if capturing(span) {
        span.set_attribute("gen_ai.tool.call.result", content.text().into_owned());
    }
}

fn finish_reason(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::ToolCalls => "tool_call",
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Other(other) => other,
    }
}

/// A message as the conventions write it: a role and parts.
fn message(message: &Message) -> Json {
    match message {
        Message::System { content } => json!({"role": "system", "parts": [{"type": "text", "content": &**content}]}),
        Message::User { content } => json!({"role": "user", "parts": parts(content)}),
        Message::Assistant { content, tool_calls } => {
            let mut parts = parts(content);
            parts.extend(tool_calls.iter().map(tool_call));
            json!({"role": "assistant", "parts": parts})
        }
        Message::Tool(result) => json!({
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": result.call_id, "response": result.content.text()}],
        }),
    }
}

fn tool_call(call: &ToolCall) -> Json {
    // The arguments as the model wrote them: JSON when they parse, else the raw text.
    let arguments = serde_json::from_str::<Json>(&call.arguments).unwrap_or_else(|_| Json::from(&*call.arguments));
    json!({"type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments})
}

fn text_part(text: &str) -> Vec<Json> {
    if text.is_empty() { Vec::new() } else { vec![json!({"type": "text", "content": text})] }
}

fn parts(content: &Content) -> Vec<Json> {
    match content {
        Content::Text(text) => text_part(text),
        Content::Parts(parts) => parts.iter().map(part).collect(),
    }
}

fn part(part: &Part) -> Json {
    let media = |modality: &str, source: &MediaSource| match source {
        MediaSource::Url { url } => json!({"type": "uri", "modality": modality, "uri": url}),
        MediaSource::Base64 { media_type, data } => {
            json!({"type": "blob", "modality": modality, "mime_type": media_type, "content": data})
        }
    };
    match part {
        Part::Text { text } => json!({"type": "text", "content": text}),
        Part::Image { source } => media("image", source),
        Part::Audio { source } => media("audio", source),
        Part::Document { source, .. } => media("document", source),
    }
}
