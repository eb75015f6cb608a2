//! The error a tool returns: told to the model, not raised to the caller.

use std::fmt;

/// What kind of tool failure this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToolErrorKind {
    /// The tool ran and failed.
    Failed,
    /// The model's arguments were malformed or did not fit the schema.
    InvalidArguments,
    /// The model called a tool that does not exist.
    UnknownTool,
    /// The tool panicked.
    Panicked,
}

/// A tool failure. It becomes a tool result marked as an error, which the model reads and can
/// act on (fix its arguments, try something else); the run goes on.
///
/// Any `std::error::Error` converts into a `ToolError` with `?`; so does `ToolError::new` with a
/// message. Write messages for the model: say what was wrong and what would work.
pub struct ToolError {
    kind: ToolErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ToolError {
    /// A failure with a message for the model.
    pub fn new(message: impl Into<String>) -> Self {
        Self { kind: ToolErrorKind::Failed, message: message.into(), source: None }
    }

    /// The model's arguments were wrong.
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self { kind: ToolErrorKind::InvalidArguments, ..Self::new(message) }
    }

    pub(crate) fn with_kind(mut self, kind: ToolErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ToolErrorKind {
        self.kind
    }

    /// The message the model reads.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn into_message(self) -> String {
        self.message
    }

    /// The underlying error, when the failure came from one.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ToolError {
    fn from(e: E) -> Self {
        let any: &dyn std::any::Any = &e;
        let kind =
            if any.is::<super::ArgumentError>() { ToolErrorKind::InvalidArguments } else { ToolErrorKind::Failed };
        Self { kind, message: e.to_string(), source: Some(Box::new(e)) }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}
