//! The typed error of a model call.

use std::fmt;
use std::time::Duration;

/// What went wrong in a model call.
///
/// The kind decides whether retrying can help: see [`ModelErrorKind::is_transient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModelErrorKind {
    /// The provider rate-limited the request (HTTP 429). Transient.
    RateLimited,
    /// The provider is overloaded or failed internally (HTTP 5xx, `overloaded_error`). Transient.
    Overloaded,
    /// The request timed out. Transient.
    Timeout,
    /// The connection failed or dropped. Transient.
    Connection,
    /// The response stream was cut off or contained malformed data. Transient.
    Stream,
    /// The API key is missing, wrong or revoked (HTTP 401). Permanent.
    Authentication,
    /// The key may not use this model or feature (HTTP 403). Permanent.
    PermissionDenied,
    /// The provider rejected the request as malformed (HTTP 400/422). Permanent.
    BadRequest,
    /// The model or endpoint does not exist (HTTP 404). Permanent.
    NotFound,
    /// The conversation is longer than the model's context window. Permanent.
    ContextLengthExceeded,
    /// The provider's content filter refused the request or the reply. Permanent.
    ContentFiltered,
    /// The account has no quota or credit left. Permanent.
    QuotaExceeded,
    /// The provider answered, but with a body Loom could not understand. Permanent.
    InvalidResponse,
    /// A scripted model ran out of turns, or a test fake was misused. Permanent.
    Script,
    /// Anything else. Permanent.
    Other,
}

impl ModelErrorKind {
    /// Whether a retry of the same request can succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::RateLimited | Self::Overloaded | Self::Timeout | Self::Connection | Self::Stream)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::RateLimited => "rate limited",
            Self::Overloaded => "provider overloaded or failing",
            Self::Timeout => "timed out",
            Self::Connection => "connection failed",
            Self::Stream => "response stream broken",
            Self::Authentication => "authentication failed",
            Self::PermissionDenied => "permission denied",
            Self::BadRequest => "bad request",
            Self::NotFound => "not found",
            Self::ContextLengthExceeded => "context length exceeded",
            Self::ContentFiltered => "content filtered",
            Self::QuotaExceeded => "quota exceeded",
            Self::InvalidResponse => "invalid response",
            Self::Script => "scripted model",
            Self::Other => "model error",
        }
    }
}

/// A failed model call: its kind, the provider's own message and what identifies the request.
#[derive(Debug, thiserror::Error)]
pub struct ModelError {
    kind: ModelErrorKind,
    provider: String,
    message: String,
    status: Option<u16>,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ModelError {
    /// A response stream that ended before the reply was complete (transient: a retry gets a
    /// fresh stream).
    pub(crate) fn cut_stream(provider: impl Into<String>) -> Self {
        Self::new(ModelErrorKind::Stream, provider, "the response stream ended before the reply was complete")
    }

    /// An error of `kind` raised by `provider` (`"openai"`, `"anthropic"`, `"scripted"`...).
    pub fn new(kind: ModelErrorKind, provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            provider: provider.into(),
            message: message.into(),
            status: None,
            request_id: None,
            retry_after: None,
            source: None,
        }
    }

    /// Sets the HTTP status the provider answered with.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the provider's request id.
    #[must_use]
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets how long the provider asked to wait before retrying.
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Adds a sentence to the message (what Loom did about the error).
    #[must_use]
    pub(crate) fn with_note(mut self, note: impl fmt::Display) -> Self {
        use fmt::Write as _;
        let _ = write!(self.message, "; {note}");
        self
    }

    /// Sets the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ModelErrorKind {
        self.kind
    }

    /// Whether retrying the same request can succeed (rate limit, 5xx, timeout, network).
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// The provider that raised the error.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The provider's own message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The provider's request id, when it sent one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// How long the provider asked to wait before retrying (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.kind.describe(), self.provider)?;
        if let Some(status) = self.status {
            write!(f, ", HTTP {status}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, ", request {id}")?;
        }
        write!(f, "): {}", self.message)?;
        if self.kind.is_transient() {
            f.write_str(" [transient]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_provider_status_and_request() {
        let e = ModelError::new(ModelErrorKind::RateLimited, "openai", "slow down")
            .with_status(429)
            .with_request_id("req_1")
            .with_retry_after(Duration::from_secs(2));
        assert_eq!(e.to_string(), "rate limited (openai, HTTP 429, request req_1): slow down [transient]");
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn permanent_kinds_are_not_transient() {
        for k in [
            ModelErrorKind::Authentication,
            ModelErrorKind::BadRequest,
            ModelErrorKind::ContentFiltered,
            ModelErrorKind::ContextLengthExceeded,
            ModelErrorKind::Script,
        ] {
            assert!(!k.is_transient(), "{k:?}");
        }
    }
}
