//! Chat Completions responses: the `chat.completion` object, and the `chat.completion.chunk`
//! lines of a stream, written without a JSON tree in between.

use std::fmt;
use std::io::Write as _;

use bytes::Bytes;
use serde::Serialize;

use crate::id::RunId;
use crate::model::Usage;
use crate::serve::error::ApiError;

/// `chatcmpl-<run id>`: the completion's id names its run.
#[derive(Clone, Copy)]
pub(crate) struct CompletionId(pub(crate) RunId);

impl fmt::Display for CompletionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chatcmpl-{}", self.0)
    }
}

impl Serialize for CompletionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `usage`, as OpenAI counts it: prompt tokens include those read from or written to the
/// cache.
#[derive(Serialize)]
pub(crate) struct UsageJson {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

impl From<&Usage> for UsageJson {
    fn from(u: &Usage) -> Self {
        let prompt = u.input_tokens.saturating_add(u.cached_input_tokens).saturating_add(u.cache_write_tokens);
        Self {
            prompt_tokens: prompt,
            completion_tokens: u.output_tokens,
            total_tokens: prompt.saturating_add(u.output_tokens),
            prompt_tokens_details: PromptDetails { cached_tokens: u.cached_input_tokens },
            completion_tokens_details: CompletionDetails { reasoning_tokens: u.reasoning_tokens },
        }
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: CompletionId,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: UsageJson,
    system_fingerprint: Option<&'static str>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
}

/// A whole `chat.completion` object.
pub(crate) fn completion(id: RunId, created: u64, model: &str, text: &str, usage: &Usage) -> Vec<u8> {
    let body = Completion {
        id: CompletionId(id),
        object: "chat.completion",
        created,
        model,
        choices: [Choice {
            index: 0,
            message: AssistantMessage { role: "assistant", content: text, refusal: None },
            logprobs: None,
            finish_reason: "stop",
        }],
        usage: UsageJson::from(usage),
        system_fingerprint: None,
    };
    // Strings and numbers only: serialising cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The end of a stream.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

/// Writes the chunks of one streamed completion: the part every chunk shares is written once.
pub(crate) struct Chunks {
    /// `data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..,"choices":`
    head: Vec<u8>,
    /// `,"usage":null` when the client asked for a usage chunk: every other chunk says so.
    usage_null: bool,
}

impl Chunks {
    pub(crate) fn new(id: RunId, created: u64, model: &str, include_usage: bool) -> Self {
        let mut head = Vec::with_capacity(128 + model.len());
        let _ = write!(
            head,
            r#"data: {{"id":"{}","object":"chat.completion.chunk","created":{created},"model":"#,
            CompletionId(id)
        );
        // A string serialises.
        let _ = serde_json::to_writer(&mut head, model);
        head.extend_from_slice(br#","choices":"#);
        Self { head, usage_null: include_usage }
    }

    fn choice(&self, delta: &[u8], text: Option<&str>, finish: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(self.head.len() + 96 + text.map_or(0, |t| t.len() + t.len() / 8));
        out.extend_from_slice(&self.head);
        out.extend_from_slice(br#"[{"index":0,"delta":"#);
        out.extend_from_slice(delta);
        if let Some(text) = text {
            let _ = serde_json::to_writer(&mut out, text);
            out.push(b'}');
        }
        out.extend_from_slice(br#","logprobs":null,"finish_reason":"#);
        out.extend_from_slice(finish);
        out.extend_from_slice(b"}]");
        if self.usage_null {
            out.extend_from_slice(br#","usage":null"#);
        }
        out.extend_from_slice(b"}\n\n");
        Bytes::from(out)
    }

    /// The first chunk: the assistant's role.
    pub(crate) fn role(&self) -> Bytes {
        self.choice(br#"{"role":"assistant","content":""}"#, None, b"null")
    }

    /// A chunk of text.
    pub(crate) fn text(&self, text: &str) -> Bytes {
        self.choice(br#"{"content":"#, Some(text), b"null")
    }

    /// The last chunk of the choice.
    pub(crate) fn stop(&self) -> Bytes {
        self.choice(b"{}", None, br#""stop""#)
    }

    /// The usage chunk (no choices), when the client asked for it.
    pub(crate) fn usage(&self, usage: &Usage) -> Option<Bytes> {
        if !self.usage_null {
            return None;
        }
        let mut out = Vec::with_capacity(self.head.len() + 200);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(br#"[],"usage":"#);
        let _ = serde_json::to_writer(&mut out, &UsageJson::from(usage));
        out.extend_from_slice(b"}\n\n");
        Some(Bytes::from(out))
    }
}

/// An error in the middle of a stream, as OpenAI sends it: `data: {"error": {...}}`.
pub(crate) fn error_chunk(error: &ApiError) -> Bytes {
    let json = error.to_json();
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}
