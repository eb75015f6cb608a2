//! The request side: Loom's conversation, content and tools as the Messages API's JSON.

use super::*;

pub(super) fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

/// Whether the reply asked for continues an assistant turn: the conversation ends with tool
/// results (a tool-use loop) or with the assistant's own words (a prefill).
pub(super) fn continues_assistant_turn(messages: &[Message]) -> bool {
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
pub(super) struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

/// The `messages` array: roles alternate, empty turns are left out, tool results lead their
/// user turn.
pub(super) fn messages(messages: &[Message]) -> Vec<Value> {
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
pub(super) fn tool_input(call: &ToolCall) -> Value {
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
pub(super) fn tool_id(id: &str) -> std::borrow::Cow<'_, str> {
    if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        std::borrow::Cow::Borrowed(id)
    } else {
        std::borrow::Cow::Owned(
            id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect(),
        )
    }
}

pub(super) fn tool_result(r: &ToolResult) -> Value {
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
pub(super) fn content_blocks(content: &Content) -> Vec<Value> {
    match content {
        Content::Text(t) if t.trim().is_empty() => Vec::new(),
        Content::Text(t) => vec![json!({"type": "text", "text": t})],
        Content::Parts(parts) => parts.iter().filter_map(part).collect(),
    }
}

pub(super) fn part(p: &Part) -> Option<Value> {
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
