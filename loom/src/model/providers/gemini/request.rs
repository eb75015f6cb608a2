//! The request side: Loom's conversation, content and tools as Gemini's `contents` JSON.

use super::*;

/// Contents under construction: a part list per turn, one turn per run of a role.
#[derive(Default)]
pub(super) struct Contents(Vec<(&'static str, Vec<Value>)>);

impl Contents {
    pub(super) fn push(&mut self, role: &'static str, parts: Vec<Value>) {
        if parts.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => self.0.push((role, parts)),
        }
    }

    pub(super) fn into_values(self) -> Vec<Value> {
        self.0.into_iter().map(|(role, parts)| json!({"role": role, "parts": parts})).collect()
    }
}

/// Whether a call id goes on the wire: ids Loom made up for calls Gemini sent without one
/// (`call_1`, `call_2`, ...) mean nothing to the API and are left out.
pub(super) fn sends_id(id: &str) -> bool {
    let generated = id.strip_prefix("call_").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    !id.is_empty() && !generated
}

pub(super) fn function_call(call: &ToolCall) -> Value {
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

pub(super) fn user_parts(content: &Content) -> Vec<Value> {
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

pub(super) fn media(source: &MediaSource) -> Value {
    match source {
        MediaSource::Base64 { media_type, data } => json!({"inlineData": {"mimeType": media_type, "data": data}}),
        MediaSource::Url { url } => json!({"fileData": {"mimeType": mime_from_url(url), "fileUri": url}}),
    }
}

/// The MIME type of a URL's file, from its extension.
pub(super) fn mime_from_url(url: &str) -> &'static str {
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
