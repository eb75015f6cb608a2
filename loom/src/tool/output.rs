//! What a tool returns to the model.

use crate::model::{Content, Part};

/// The output of a tool call: text (the common case) or multimodal parts.
///
/// `#[tool]` functions may return any `serde::Serialize` value: strings are sent as they are,
/// everything else as JSON. Return a `ToolOutput` to send images or documents.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToolOutput(pub Content);

impl ToolOutput {
    /// Text output.
    pub fn text(text: impl Into<String>) -> Self {
        Self(Content::Text(text.into().into()))
    }

    /// JSON output: `value` serialised.
    pub fn json(value: &impl serde::Serialize) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(|s| Self(Content::Text(s.into())))
    }

    /// Multimodal output.
    pub fn parts(parts: Vec<Part>) -> Self {
        Self(Content::Parts(parts))
    }

    /// The content.
    pub fn into_content(self) -> Content {
        self.0
    }

    /// The text of the output.
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        self.0.text()
    }
}

impl From<String> for ToolOutput {
    fn from(s: String) -> Self {
        Self::text(s)
    }
}

impl From<&str> for ToolOutput {
    fn from(s: &str) -> Self {
        Self::text(s)
    }
}

impl From<Content> for ToolOutput {
    fn from(c: Content) -> Self {
        Self(c)
    }
}
