//! What a provider's answer means when it is not a reply: HTTP statuses, error bodies, error
//! objects inside a stream, and how long the provider asked to wait.
//!
//! Everything here reads what the network sent, so nothing here may panic or allocate by a
//! size the server chose: dates are range-checked, waits saturate, and messages are cut.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::model::{ModelError, ModelErrorKind};

/// The longest wait a `Retry-After` may ask for; a longer one (or one too large to represent)
/// reads as this. A day is past any retry policy: the wait is reported, not slept.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest provider message, in characters, an error keeps.
const MAX_MESSAGE: usize = 500;

/// `s` cut to [`MAX_MESSAGE`] characters.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// The kind an HTTP status stands for, before the body refines it.
pub(crate) fn kind_of_status(status: u16) -> ModelErrorKind {
    match status {
        400 | 413 | 422 => ModelErrorKind::BadRequest,
        401 => ModelErrorKind::Authentication,
        402 => ModelErrorKind::QuotaExceeded,
        403 => ModelErrorKind::PermissionDenied,
        404 => ModelErrorKind::NotFound,
        408 => ModelErrorKind::Timeout,
        409 | 425 | 500..=599 => ModelErrorKind::Overloaded,
        429 => ModelErrorKind::RateLimited,
        _ => ModelErrorKind::Other,
    }
}

/// The kind an error object names by its `type` or `code`: OpenAI's names, and those of the
/// servers that copy its error shape (vLLM, LiteLLM, OpenRouter, Groq, Mistral, DeepSeek).
/// `None` for a name Loom does not know.
pub(crate) fn kind_of_error_name(name: &str) -> Option<ModelErrorKind> {
    Some(match name {
        "context_length_exceeded" | "string_above_max_length" | "request_too_large" => {
            ModelErrorKind::ContextLengthExceeded
        }
        "insufficient_quota" | "billing_error" | "billing_not_active" => ModelErrorKind::QuotaExceeded,
        "content_filter" | "content_policy_violation" => ModelErrorKind::ContentFiltered,
        "invalid_request_error"
        | "invalid_request"
        | "bad_request"
        | "BadRequestError"
        | "invalid_value"
        | "unsupported_parameter"
        | "unsupported_value" => ModelErrorKind::BadRequest,
        "authentication_error" | "invalid_api_key" | "invalid_authentication" | "AuthenticationError" => {
            ModelErrorKind::Authentication
        }
        "permission_error" | "permission_denied" | "PermissionDeniedError" => ModelErrorKind::PermissionDenied,
        "not_found_error" | "model_not_found" | "not_found" | "NotFoundError" => ModelErrorKind::NotFound,
        "rate_limit_exceeded" | "rate_limit_error" | "rate_limit" | "RateLimitError" | "tokens" | "requests" => {
            ModelErrorKind::RateLimited
        }
        "server_error"
        | "api_error"
        | "overloaded_error"
        | "internal_error"
        | "InternalServerError"
        | "service_unavailable"
        | "ServiceUnavailableError" => ModelErrorKind::Overloaded,
        "timeout" | "timeout_error" | "Timeout" => ModelErrorKind::Timeout,
        _ => return None,
    })
}

/// The kind of an error object (`{"type": ..., "code": ..., "message": ...}`) that arrived
/// with no HTTP status of its own, inside an event stream: a numeric `code` is read as a
/// status, a named `code` or `type` by [`kind_of_error_name`]. An error Loom cannot classify
/// is a server-side failure (overloaded: transient), as the provider did not say otherwise.
pub(crate) fn kind_of_error_object(error: &Value) -> ModelErrorKind {
    let code = error.get("code");
    if let Some(status) = code.and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok())
        && (400..=599).contains(&status)
    {
        let named = [code.and_then(Value::as_str), error.get("type").and_then(Value::as_str)];
        return named.into_iter().flatten().find_map(kind_of_error_name).unwrap_or_else(|| kind_of_status(status));
    }
    [code.and_then(Value::as_str), error.get("type").and_then(Value::as_str)]
        .into_iter()
        .flatten()
        .find_map(kind_of_error_name)
        .unwrap_or(ModelErrorKind::Overloaded)
}

/// The request id the provider sent back.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-goog-request-id", "openai-request-id"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(clip))
}

/// `secs` as a wait: negative, NaN and absurd values are refused or capped.
fn wait(secs: f64) -> Option<Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_RETRY_AFTER, |d| d.min(MAX_RETRY_AFTER)))
}

/// How long the provider asked to wait: `retry-after-ms`, `retry-after` in seconds, or
/// `retry-after` as an HTTP date; at most [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && let Some(d) = wait(ms / 1000.0)
    {
        return Some(d);
    }
    let value = get("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return wait(secs);
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP dates take. Every
/// field is range-checked first, so the arithmetic below cannot overflow.
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    let mut parts = s.split_whitespace();
    let (_, day, month, year, time, zone) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if zone != "GMT" || parts.next().is_some() {
        return None;
    }
    let day: u64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month)? as u64
        + 1;
    let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days since the epoch of a civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let yoe = (y - era * 400) as u64;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe as i64 - 719_468;
    let secs = days.checked_mul(86_400)?.checked_add((h * 3600 + m * 60 + sec) as i64)?;
    u64::try_from(secs).ok().map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

/// The typed error of an HTTP status: the kind from the status (refined by the provider's
/// `classify`, which reads the body for context-length and content-filter errors), the
/// provider's own message, the request id, and `Retry-After`.
pub(crate) fn error_from_status(
    provider: &'static str,
    status: u16,
    headers: &HeaderMap,
    body: &str,
    classify: fn(u16, &str) -> Option<ModelErrorKind>,
) -> ModelError {
    if (300..400).contains(&status) {
        return redirected(provider, status, headers);
    }
    let kind = classify(status, body).unwrap_or_else(|| kind_of_status(status));
    let message = error_message(body).unwrap_or_else(|| {
        let trimmed = body.trim();
        if trimmed.is_empty() { format!("HTTP {status} with an empty body") } else { clip(trimmed) }
    });
    let mut error = ModelError::new(kind, provider, message).with_status(status);
    if let Some(id) = request_id(headers) {
        error = error.with_request_id(id);
    }
    if let Some(after) = retry_after(headers) {
        error = error.with_retry_after(after);
    }
    error
}

/// A redirect: provider calls never follow one (the key would travel to wherever it points).
fn redirected(provider: &'static str, status: u16, headers: &HeaderMap) -> ModelError {
    let location = headers.get("location").and_then(|v| v.to_str().ok()).map(|l| clip(&redact_url(l)));
    let to = location.map(|l| format!(" to {l}")).unwrap_or_default();
    ModelError::new(
        ModelErrorKind::Other,
        provider,
        format!(
            "the server redirected the request{to}; Loom does not follow redirects on provider calls, so that \
             credentials never go to another address: set the base URL to where the API really is"
        ),
    )
    .with_status(status)
}

/// The message of a provider's error body: `{"error": {"message": ...}}` (OpenAI, Gemini,
/// Anthropic) or `{"error": "..."}`, `{"message": ...}`, cut to a readable length.
pub(crate) fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let v = match &v {
        Value::Array(items) => items.first()?.clone(),
        _ => v,
    };
    let err = v.get("error").unwrap_or(&v);
    match err {
        Value::String(s) => Some(clip(s)),
        _ => err.get("message").and_then(Value::as_str).map(clip),
    }
}

/// A URL as it may appear in a message: no user name or password, no query (either may hold
/// a key).
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// A malformed event: transient, since a retry gets a fresh stream.
pub(crate) fn malformed(provider: &'static str, what: &str, error: impl fmt::Display) -> ModelError {
    ModelError::new(ModelErrorKind::Stream, provider, format!("malformed {what}: {}", clip(&error.to_string())))
}

/// A body that is not the JSON the provider documents.
pub(crate) fn invalid_body(provider: &'static str, error: impl fmt::Display) -> ModelError {
    ModelError::new(
        ModelErrorKind::InvalidResponse,
        provider,
        format!("the response could not be read: {}", clip(&error.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn after(name: &'static str, value: &'static str) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        retry_after(&h)
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        assert_eq!(after("retry-after", "7"), Some(Duration::from_secs(7)));
        assert_eq!(after("retry-after-ms", "250"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_http_date("yesterday"), None);
        // A date in the past is no wait at all.
        assert_eq!(after("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
    }

    #[test]
    fn absurd_waits_saturate_and_malformed_dates_are_ignored() {
        assert_eq!(after("retry-after", "1e20"), Some(MAX_RETRY_AFTER));
        assert_eq!(after("retry-after-ms", "1e300"), Some(MAX_RETRY_AFTER));
        assert_eq!(after("retry-after", "inf"), Some(MAX_RETRY_AFTER));
        assert_eq!(after("retry-after", "-5"), None);
        assert_eq!(after("retry-after", "NaN"), None);
        for date in [
            "Sun, 18446744073709551615 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 99999999999999999999 08:49:37 GMT",
            "Sun, 06 Nov 1994 99999999999:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37:12 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
        ] {
            assert_eq!(parse_http_date(date), None, "{date}");
        }
        assert!(after("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT").is_some_and(|d| d <= MAX_RETRY_AFTER));
    }

    #[test]
    fn error_messages_come_from_the_provider_body_and_are_cut() {
        assert_eq!(error_message(r#"{"error": {"message": "bad key", "type": "x"}}"#).as_deref(), Some("bad key"));
        assert_eq!(error_message(r#"[{"error": {"code": 429, "message": "slow"}}]"#).as_deref(), Some("slow"));
        assert_eq!(error_message("<html>"), None);
        let long = format!(r#"{{"error": "{}"}}"#, "x".repeat(10_000));
        assert!(error_message(&long).is_some_and(|m| m.chars().count() <= MAX_MESSAGE + 1));
    }

    #[test]
    fn stream_error_objects_are_classified_by_their_names() {
        use serde_json::json;
        let kind = |v: Value| kind_of_error_object(&v);
        assert_eq!(kind(json!({"type": "invalid_request_error", "message": "no"})), ModelErrorKind::BadRequest);
        assert_eq!(kind(json!({"code": "context_length_exceeded"})), ModelErrorKind::ContextLengthExceeded);
        assert_eq!(kind(json!({"type": "BadRequestError", "code": 400})), ModelErrorKind::BadRequest);
        assert_eq!(kind(json!({"code": 503, "message": "busy"})), ModelErrorKind::Overloaded);
        assert_eq!(kind(json!({"code": 401})), ModelErrorKind::Authentication);
        assert_eq!(kind(json!({"type": "rate_limit_exceeded"})), ModelErrorKind::RateLimited);
        assert_eq!(kind(json!({"type": "server_error"})), ModelErrorKind::Overloaded);
        assert_eq!(kind(json!({"message": "something"})), ModelErrorKind::Overloaded);
        assert!(!kind(json!({"type": "invalid_request_error"})).is_transient());
    }

    #[test]
    fn urls_in_messages_lose_their_credentials() {
        assert_eq!(redact_url("https://user:pw@api.example.com/v1?key=sk-1#x"), "https://api.example.com/v1");
        assert_eq!(redact_url("not a url"), "(an unreadable URL)");
    }
}
