//! Errors as the server answers them: OpenAI's error shape with the right status code, and
//! the errors of starting and running the server itself.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::error::{ConfigError, Error, RunError, StoreErrorKind};
use crate::governance::Stage;
use crate::model::ModelErrorKind;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The server is misconfigured (no authentication chosen, two targets with one name ...).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed (the listener broke).
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// An error answered to a client: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) code: Option<&'static str>,
    pub(crate) param: Option<Cow<'static, str>>,
    pub(crate) message: String,
    pub(crate) retry_after: Option<Duration>,
}

/// The body of an error, as OpenAI writes it.
#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) error: ErrorFields<'a>,
}

/// The fields of an error.
#[derive(Serialize)]
pub(crate) struct ErrorFields<'a> {
    pub(crate) message: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) param: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, code: Option<&'static str>, message: String) -> Self {
        Self { status, kind, code, param: None, message, retry_after: None }
    }

    /// 400: the request is malformed.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", None, message.into())
    }

    /// 400 about one parameter.
    pub(crate) fn invalid_param(param: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::bad_request(message).with_param(param)
    }

    /// 401: no credentials, or credentials this server does not know.
    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            "authentication required: send `Authorization: Bearer <token>` with a token this server knows".to_owned(),
        )
    }

    /// 404: nothing here, or nothing of the caller's.
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", Some("not_found"), what.into())
    }

    /// 404 for a model name the server does not serve.
    pub(crate) fn unknown_model(name: &str, known: &[std::sync::Arc<str>]) -> Self {
        let known = known.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            format!("the model `{name}` does not exist on this server; it serves {known}"),
        )
        .with_param("model")
    }

    /// 409: the run is in a state that does not allow it.
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", Some(code), message.into())
    }

    /// 413: the body is over the limit.
    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
            format!("the request body is larger than this server accepts ({limit} bytes)"),
        )
    }

    /// 503: the server is shutting down.
    pub(crate) fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("shutting_down"),
            "the server is shutting down; try again on another instance".to_owned(),
        )
    }

    /// 504: the request took longer than the server allows.
    pub(crate) fn timeout(timeout: Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            Some("timeout"),
            format!("the run did not finish within the server's request timeout ({timeout:?})"),
        )
    }

    /// 429: too many runs are kept already.
    pub(crate) fn too_many_runs(limit: usize) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            Some("too_many_runs"),
            format!("the server already keeps {limit} runs, all in progress; try again when one has finished"),
        )
    }

    #[must_use]
    pub(crate) fn with_param(mut self, param: impl Into<Cow<'static, str>>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// The error of a run that failed, with the status that says why.
    pub(crate) fn from_run(error: &Error) -> Self {
        use StatusCode as S;
        let message = error.to_string();
        let (status, kind, code) = match error {
            Error::Run(run) => match run {
                RunError::Timeout { .. } => (S::GATEWAY_TIMEOUT, "server_error", "timeout"),
                RunError::BudgetExceeded { .. } => (S::TOO_MANY_REQUESTS, "insufficient_quota", "budget_exceeded"),
                RunError::RateLimited { retry_after, .. } => {
                    let mut e =
                        Self::new(S::TOO_MANY_REQUESTS, "rate_limit_error", Some("rate_limit_exceeded"), message);
                    e.retry_after = Some(*retry_after);
                    return e;
                }
                RunError::Guardrail { stage: Stage::Input, .. } => {
                    (S::BAD_REQUEST, "invalid_request_error", "content_policy_violation")
                }
                RunError::Guardrail { .. } => (S::INTERNAL_SERVER_ERROR, "server_error", "content_policy_violation"),
                RunError::ApprovalPending { .. } => (S::CONFLICT, "invalid_request_error", "approval_pending"),
                RunError::NeedsDecision { .. } | RunError::NodeNeedsDecision { .. } => {
                    (S::CONFLICT, "invalid_request_error", "needs_decision")
                }
                RunError::AlreadyRunning { .. } | RunError::LeaseLost { .. } => {
                    (S::CONFLICT, "invalid_request_error", "run_in_progress")
                }
                RunError::NotResumable { .. } | RunError::JournalMismatch { .. } => {
                    (S::CONFLICT, "invalid_request_error", "not_resumable")
                }
                _ => (S::INTERNAL_SERVER_ERROR, "server_error", "run_failed"),
            },
            Error::Model(model) => match model.kind() {
                ModelErrorKind::RateLimited => (S::TOO_MANY_REQUESTS, "rate_limit_error", "upstream_rate_limited"),
                ModelErrorKind::QuotaExceeded => {
                    (S::TOO_MANY_REQUESTS, "insufficient_quota", "upstream_quota_exceeded")
                }
                ModelErrorKind::Timeout => (S::GATEWAY_TIMEOUT, "server_error", "upstream_timeout"),
                ModelErrorKind::ContextLengthExceeded => {
                    (S::BAD_REQUEST, "invalid_request_error", "context_length_exceeded")
                }
                ModelErrorKind::ContentFiltered => (S::BAD_REQUEST, "invalid_request_error", "content_filter"),
                _ => (S::BAD_GATEWAY, "server_error", "upstream_error"),
            },
            Error::Store(store) if store.kind() == StoreErrorKind::Unavailable => {
                (S::SERVICE_UNAVAILABLE, "server_error", "store_unavailable")
            }
            Error::Store(store) if store.kind() == StoreErrorKind::Conflict => {
                (S::CONFLICT, "invalid_request_error", "run_in_progress")
            }
            Error::Config(_) => (S::INTERNAL_SERVER_ERROR, "server_error", "misconfigured"),
            _ => (S::INTERNAL_SERVER_ERROR, "server_error", "run_failed"),
        };
        Self::new(status, kind, Some(code), message)
    }

    /// The error as JSON, `{"error": {...}}`.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let body = ErrorBody {
            error: ErrorFields {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        };
        // Strings and options only: serialising cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.to_json()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up: a client that waits that long is let through.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
