//! A Chat Completions request as clients send it, read leniently: unknown fields and nulls
//! are accepted, strings are borrowed from the body where they have no escapes.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::model::{Content, Message, Part};
use crate::serve::error::ApiError;

/// A string of the body: borrowed when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `POST /v1/chat/completions`. Fields Loom does not use (`tools`, `response_format`,
/// `top_p`, `stop`, `seed`, `logprobs`, `parallel_tool_calls` ...) are accepted and ignored.
#[derive(Deserialize)]
pub(crate) struct ChatRequest<'a> {
    #[serde(borrow, default)]
    pub(crate) model: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub(crate) messages: Option<Vec<ChatMessage<'a>>>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    #[serde(borrow, default)]
    pub(crate) user: Option<Str<'a>>,
    #[serde(default)]
    pub(crate) temperature: Option<f64>,
    #[serde(default)]
    pub(crate) max_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) n: Option<u64>,
    #[serde(default)]
    pub(crate) tool_choice: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `stream_options`.
#[derive(Deserialize, Default)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: Option<bool>,
}

/// One message of the request.
#[derive(Deserialize)]
pub(crate) struct ChatMessage<'a> {
    #[serde(borrow)]
    pub(crate) role: Str<'a>,
    #[serde(borrow, default)]
    pub(crate) content: Option<ChatContent<'a>>,
}

/// A message's content: a string, or a list of parts.
pub(crate) enum ChatContent<'a> {
    Text(Str<'a>),
    Parts(Vec<ChatPart<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for ChatContent<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChatContent<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of content parts")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ChatContent::Text(Str(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ChatContent::Text(Str(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ChatContent::Text(Str(Cow::Owned(v))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(64));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(ChatContent::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

/// One part of a message's content.
#[derive(Deserialize)]
pub(crate) struct ChatPart<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Str<'a>,
    #[serde(borrow, default)]
    pub(crate) text: Option<Str<'a>>,
    #[serde(default)]
    pub(crate) image_url: Option<ImageUrl>,
}

/// An `image_url` part's image: `{"url": ...}`, or the URL alone.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum ImageUrl {
    Url(String),
    Object { url: String },
}

/// A role Loom reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `system` or `developer`: accepted, not sent to the model.
    System,
    User,
    Assistant,
}

impl ChatMessage<'_> {
    /// The message's role, or 400 for one that cannot be served (`tool`: the agent runs
    /// its own tools).
    pub(crate) fn role(&self, index: usize) -> Result<Role, ApiError> {
        match &*self.role {
            "system" | "developer" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "tool" | "function" => Err(ApiError::invalid_param(
                format!("messages[{index}].role"),
                "tool results are not accepted: the served agent runs its own tools, and never asks the client to",
            )),
            other => Err(ApiError::invalid_param(
                format!("messages[{index}].role"),
                format!("unknown role `{other}`; expected system, developer, user or assistant"),
            )),
        }
    }

    /// The message's content as Loom's (null is empty).
    pub(crate) fn content(&self, index: usize) -> Result<Content, ApiError> {
        to_content(self.content.as_ref(), &|| format!("messages[{index}].content"))
    }
}

/// `content` as Loom's (none is empty); `at` names it in errors.
pub(crate) fn to_content(content: Option<&ChatContent<'_>>, at: &dyn Fn() -> String) -> Result<Content, ApiError> {
    match content {
        None => Ok(Content::empty()),
        Some(ChatContent::Text(text)) => Ok(Content::from(&*text.0)),
        Some(ChatContent::Parts(parts)) => parts_content(parts, at),
    }
}

fn parts_content(parts: &[ChatPart<'_>], at: &dyn Fn() -> String) -> Result<Content, ApiError> {
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let param = || format!("{}[{j}]", at());
        match &*part.kind {
            "text" | "input_text" | "output_text" => {
                let text = part
                    .text
                    .as_deref()
                    .ok_or_else(|| ApiError::invalid_param(param(), "a `text` part needs its `text`".to_owned()))?;
                out.push(Part::text(text));
            }
            "image_url" => {
                let url = match &part.image_url {
                    Some(ImageUrl::Url(url) | ImageUrl::Object { url }) => url,
                    None => {
                        return Err(ApiError::invalid_param(param(), "an `image_url` part needs its `image_url`"));
                    }
                };
                out.push(image(url));
            }
            // A refusal the model wrote earlier is text of the conversation.
            "refusal" => out.extend(part.text.as_deref().map(Part::text)),
            other => {
                return Err(ApiError::invalid_param(
                    param(),
                    format!("content parts of type `{other}` are not supported; send `text` or `image_url` parts"),
                ));
            }
        }
    }
    // One text part is plain text.
    if let [Part::Text { .. }] = out.as_slice()
        && let Some(Part::Text { text }) = out.pop()
    {
        return Ok(Content::from(text));
    }
    Ok(Content::Parts(out))
}

/// An image part: inline data from a `data:` URL, a URL the provider fetches otherwise.
fn image(url: &str) -> Part {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((meta, data)) = rest.split_once(',')
        && let Some(media_type) = meta.strip_suffix(";base64")
    {
        return Part::image_base64(media_type, data);
    }
    Part::image_url(url)
}

/// What a request asks the served target for.
pub(crate) struct Conversation {
    /// The new user message.
    pub(crate) input: Content,
    /// The user and assistant messages before it (system and developer messages left out).
    pub(crate) history: Vec<Message>,
}

/// The last message as the input, the earlier ones as history (built only when `history` is
/// wanted: a request with a session has its history in the session).
pub(crate) fn conversation(messages: &[ChatMessage<'_>], history: bool) -> Result<Conversation, ApiError> {
    let Some((last, earlier)) = messages.split_last() else {
        return Err(ApiError::invalid_param("messages", "`messages` must hold at least one message"));
    };
    let index = earlier.len();
    if last.role(index)? != Role::User {
        return Err(ApiError::invalid_param(
            format!("messages[{index}].role"),
            "the last message must be the user's: it is what the agent answers",
        ));
    }
    let input = last.content(index)?;
    let mut out = Vec::new();
    for (i, m) in earlier.iter().enumerate() {
        let role = m.role(i)?;
        if !history {
            continue;
        }
        match role {
            Role::System => {}
            Role::User => out.push(Message::user(m.content(i)?)),
            Role::Assistant => out.push(Message::assistant(m.content(i)?)),
        }
    }
    Ok(Conversation { input, history: out })
}

/// Whether `tool_choice` can be honoured: the client's tools are ignored, so only `auto`
/// and `none` (or nothing) can.
pub(crate) fn check_tool_choice(choice: Option<&serde_json::Value>) -> Result<(), ApiError> {
    match choice {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::String(s)) if s == "auto" || s == "none" => Ok(()),
        Some(_) => Err(ApiError::invalid_param(
            "tool_choice",
            "this server runs the agent's own tools and ignores the client's `tools`, so it cannot force a tool \
             call; send `tool_choice` as `auto` or `none`, or leave it out",
        )),
    }
}
