//! Provider-neutral conversation messages.
//!
//! A conversation is a `Vec<Message>`: system instructions, user turns, assistant turns (text
//! and tool calls) and tool results. Provider adapters translate these to and from their wire
//! formats; everything else in Loom works on these types only.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Text;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Message {
    /// Instructions for the model. Shared, not copied, between runs of the same agent.
    System {
        /// The instructions.
        content: Arc<str>,
    },
    /// A turn of the user.
    User {
        /// What the user said: text, or text with images, audio or documents.
        content: Content,
    },
    /// A turn of the model: text, tool calls, or both.
    Assistant {
        /// The text of the reply (may be empty when the model only calls tools).
        content: Content,
        /// The tools the model asked to call, in the order it listed them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answering the assistant message that made it.
    Tool(ToolResult),
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<Arc<str>>) -> Self {
        Self::System { content: content.into() }
    }

    /// A user message.
    pub fn user(content: impl Into<Content>) -> Self {
        Self::User { content: content.into() }
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<Content>) -> Self {
        Self::Assistant { content: content.into(), tool_calls: Vec::new() }
    }

    /// An assistant message with text and tool calls.
    pub fn assistant_with_tools(content: impl Into<Content>, tool_calls: Vec<ToolCall>) -> Self {
        Self::Assistant { content: content.into(), tool_calls }
    }

    /// A tool result.
    pub fn tool(result: ToolResult) -> Self {
        Self::Tool(result)
    }

    /// The role of this message.
    pub fn role(&self) -> Role {
        match self {
            Self::System { .. } => Role::System,
            Self::User { .. } => Role::User,
            Self::Assistant { .. } => Role::Assistant,
            Self::Tool(_) => Role::Tool,
        }
    }

    /// The text of the message (the concatenated text parts), borrowed when it is one piece.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Self::System { content } => Cow::Borrowed(content),
            Self::User { content } | Self::Assistant { content, .. } => content.text(),
            Self::Tool(r) => r.content.text(),
        }
    }

    /// The tool calls of an assistant message; empty for every other role.
    pub fn tool_calls(&self) -> &[ToolCall] {
        match self {
            Self::Assistant { tool_calls, .. } => tool_calls,
            _ => &[],
        }
    }
}

/// The role of a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// Instructions.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

/// The content of a message: plain text (the common case, shared when the message is cloned)
/// or a list of parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(Text),
    /// Text mixed with images, audio or documents.
    Parts(Vec<Part>),
}

impl Content {
    /// Empty text.
    pub fn empty() -> Self {
        Self::Text(Text::empty())
    }

    /// The text of the content: the text parts joined, borrowed when there is one piece.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Text(t) => Cow::Borrowed(t),
            Self::Parts(parts) => {
                let mut texts = parts.iter().filter_map(Part::as_text);
                match (texts.next(), texts.next()) {
                    (None, _) => Cow::Borrowed(""),
                    (Some(one), None) => Cow::Borrowed(one),
                    (Some(a), Some(b)) => {
                        let mut s = String::with_capacity(a.len() + b.len());
                        s.push_str(a);
                        s.push_str(b);
                        texts.for_each(|t| s.push_str(t));
                        Cow::Owned(s)
                    }
                }
            }
        }
    }

    /// Whether the content has no text and no other parts.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Text(t) => t.is_empty(),
            Self::Parts(p) => p.is_empty(),
        }
    }

    /// The content as parts (a text content becomes one text part).
    pub fn parts(&self) -> Cow<'_, [Part]> {
        match self {
            Self::Text(t) if t.is_empty() => Cow::Borrowed(&[]),
            Self::Text(t) => Cow::Owned(vec![Part::Text { text: t.to_string() }]),
            Self::Parts(p) => Cow::Borrowed(p),
        }
    }
}

impl Default for Content {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<String> for Content {
    fn from(s: String) -> Self {
        Self::Text(s.into())
    }
}

impl From<&str> for Content {
    fn from(s: &str) -> Self {
        Self::Text(s.into())
    }
}

impl From<&String> for Content {
    fn from(s: &String) -> Self {
        Self::Text(s.into())
    }
}

impl From<Text> for Content {
    fn from(t: Text) -> Self {
        Self::Text(t)
    }
}

impl From<Vec<Part>> for Content {
    fn from(parts: Vec<Part>) -> Self {
        Self::Parts(parts)
    }
}

/// One part of a multimodal message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    Image {
        /// Where the image is.
        source: MediaSource,
    },
    /// An audio clip.
    Audio {
        /// Where the audio is.
        source: MediaSource,
    },
    /// A document (PDF, plain text, ...).
    Document {
        /// Where the document is.
        source: MediaSource,
        /// A file name or title shown to the model, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    /// An image given by URL.
    pub fn image_url(url: impl Into<String>) -> Self {
        Self::Image { source: MediaSource::Url { url: url.into() } }
    }

    /// An image given inline as base64 data.
    pub fn image_base64(media_type: impl Into<String>, data: impl Into<String>) -> Self {
        Self::Image { source: MediaSource::Base64 { media_type: media_type.into(), data: data.into() } }
    }

    /// The text of a text part.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text { text } => Some(text),
            _ => None,
        }
    }
}

/// Where the bytes of an image, audio clip or document are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaSource {
    /// A URL the provider fetches.
    Url {
        /// The URL.
        url: String,
    },
    /// Inline data.
    Base64 {
        /// The MIME type, e.g. `image/png`.
        media_type: String,
        /// The base64-encoded bytes.
        data: String,
    },
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call; the result quotes it.
    pub id: String,
    /// The name of the tool.
    pub name: String,
    /// The arguments exactly as the model wrote them: JSON text, possibly malformed.
    ///
    /// Loom keeps the raw text so that a malformed call can be reported back to the model
    /// word for word; tools parse it into their typed arguments.
    pub arguments: String,
}

impl ToolCall {
    /// A tool call.
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self { id: id.into(), name: name.into(), arguments: arguments.into() }
    }
}

/// The result of a tool call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the [`ToolCall`] this answers.
    pub call_id: String,
    /// The name of the tool that ran (some providers want it next to the result).
    pub name: String,
    /// What the tool returned, or the error the model should see.
    pub content: Content,
    /// Whether the call failed; the model sees the content as an error to correct.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

impl ToolResult {
    /// A successful result.
    pub fn ok(call_id: impl Into<String>, name: impl Into<String>, content: impl Into<Content>) -> Self {
        Self { call_id: call_id.into(), name: name.into(), content: content.into(), is_error: false }
    }

    /// An error result: the model reads `message` and can correct its call.
    pub fn error(call_id: impl Into<String>, name: impl Into<String>, message: impl Into<String>) -> Self {
        Self { call_id: call_id.into(), name: name.into(), content: Content::from(message.into()), is_error: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn messages_serialize_with_their_role() -> TestResult {
        let m = Message::assistant_with_tools("", vec![ToolCall::new("c1", "add", r#"{"a":1}"#)]);
        let json = serde_json::to_value(&m)?;
        assert_eq!(json["role"], "assistant");
        assert_eq!(json["tool_calls"][0]["name"], "add");
        let back: Message = serde_json::from_value(json)?;
        assert_eq!(back, m);
        Ok(())
    }

    #[test]
    fn multimodal_content_exposes_its_text() -> TestResult {
        let c = Content::Parts(vec![
            Part::text("look at "),
            Part::image_url("https://example.com/cat.png"),
            Part::text("this"),
        ]);
        assert_eq!(c.text(), "look at this");
        let m = Message::user(c);
        assert_eq!(m.role(), Role::User);
        let back: Message = serde_json::from_str(&serde_json::to_string(&m)?)?;
        assert_eq!(back, m);
        Ok(())
    }

    #[test]
    fn tool_results_keep_their_error_flag() -> TestResult {
        let r = ToolResult::error("c1", "add", "missing field `a`");
        let json = serde_json::to_value(Message::tool(r.clone()))?;
        assert_eq!(json["is_error"], true);
        assert_eq!(Message::tool(r).text(), "missing field `a`");
        Ok(())
    }
}
