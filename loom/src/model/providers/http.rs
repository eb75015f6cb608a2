//! The HTTP side of the provider adapters: the client, error mapping, and event streams.

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::sse::{SseDecoder, SseEvent};
use crate::model::{ModelError, ModelErrorKind, ModelStream, StreamEvent};

/// The value of an environment variable, trimmed; `None` when unset or empty.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// An API key. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key, for the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Connection settings shared by the provider adapters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The API's base URL (e.g. `https://api.openai.com/v1`).
    pub base_url: String,
    /// The key, if the server needs one.
    pub api_key: Option<ApiKey>,
    /// The longest a whole non-streamed request may take.
    pub timeout: Duration,
    /// The longest to wait for the next bytes of a response (streamed or not).
    pub read_timeout: Duration,
    /// The longest to wait for a connection.
    pub connect_timeout: Duration,
    /// Extra headers sent with every request.
    pub headers: Vec<(String, String)>,
}

impl HttpConfig {
    /// Settings for `base_url` with the default timeouts: 10 minutes per request, 2 minutes
    /// between bytes, 10 seconds to connect.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: None,
            timeout: Duration::from_secs(600),
            read_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            headers: Vec::new(),
        }
    }
}

/// A client for one provider: a connection pool and the provider's name for errors.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    provider: &'static str,
    timeout: Duration,
}

impl Http {
    pub(crate) fn new(provider: &'static str, config: &HttpConfig) -> Result<Self, crate::ConfigError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(concat!("loomflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::ConfigError::InvalidSetting {
                setting: "http client",
                reason: format!("the HTTP client for {provider} could not be built: {e}"),
            })?;
        Ok(Self { client, provider, timeout: config.timeout })
    }

    pub(crate) fn provider(&self) -> &'static str {
        self.provider
    }

    fn request<H: AsRef<str>>(&self, url: &str, headers: &[(&str, H)], body: Vec<u8>) -> reqwest::RequestBuilder {
        let mut req = self.client.post(url).header("content-type", "application/json").body(body);
        for (k, v) in headers {
            req = req.header(*k, v.as_ref());
        }
        req
    }

    fn encode(&self, body: &Value) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(body).map_err(|e| invalid_body(self.provider, e))
    }

    /// Sends a JSON request and returns the successful response's body and request id, or the
    /// typed error.
    pub(crate) async fn post<H: AsRef<str>>(
        &self,
        url: &str,
        headers: &[(&str, H)],
        body: &Value,
        classify: fn(u16, &str) -> Option<ModelErrorKind>,
    ) -> Result<(Bytes, Option<String>), ModelError> {
        let body = self.encode(body)?;
        let response =
            self.request(url, headers, body).timeout(self.timeout).send().await.map_err(|e| self.transport(&e))?;
        let request_id = request_id(response.headers());
        if !response.status().is_success() {
            return Err(self.status_error(response, classify).await);
        }
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        Ok((bytes, request_id))
    }

    /// Sends a JSON request whose answer is an event stream, decoded with `parser`; a request
    /// that fails is the stream's one error.
    pub(crate) fn stream<'a, H, P>(
        &'a self,
        url: &'a str,
        headers: Vec<(&'a str, H)>,
        body: Value,
        classify: fn(u16, &str) -> Option<ModelErrorKind>,
        parser: P,
    ) -> ModelStream<'a>
    where
        H: AsRef<str> + Send + Sync + 'a,
        P: StreamParser + 'a,
    {
        Box::pin(
            futures::stream::once(async move {
                let body = self.encode(&body)?;
                self.post_stream(url, &headers, body, classify, parser).await
            })
            .flat_map(|r| match r {
                Ok(stream) => stream,
                Err(e) => Box::pin(futures::stream::once(async move { Err(e) })),
            }),
        )
    }

    async fn post_stream<'a, H: AsRef<str>, P: StreamParser + 'a>(
        &self,
        url: &str,
        headers: &[(&str, H)],
        body: Vec<u8>,
        classify: fn(u16, &str) -> Option<ModelErrorKind>,
        parser: P,
    ) -> Result<ModelStream<'a>, ModelError> {
        let response = self.request(url, headers, body).send().await.map_err(|e| self.transport(&e))?;
        if !response.status().is_success() {
            return Err(self.status_error(response, classify).await);
        }
        let request_id = request_id(response.headers());
        let this = self.clone();
        let bytes = response.bytes_stream().map(move |r| r.map_err(|e| this.transport(&e)));
        Ok(sse_events(self.provider, bytes, parser, request_id))
    }

    async fn status_error(
        &self,
        response: reqwest::Response,
        classify: fn(u16, &str) -> Option<ModelErrorKind>,
    ) -> ModelError {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        error_from_status(self.provider, status, &headers, &body, classify)
    }

    fn transport(&self, e: &reqwest::Error) -> ModelError {
        let kind = if e.is_timeout() {
            ModelErrorKind::Timeout
        } else if e.is_connect() {
            ModelErrorKind::Connection
        } else if e.is_body() || e.is_decode() {
            ModelErrorKind::Stream
        } else {
            ModelErrorKind::Connection
        };
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        ModelError::new(kind, self.provider, message)
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-goog-request-id", "openai-request-id"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(str::to_owned))
}

/// How long the provider asked to wait: `retry-after-ms`, `retry-after` in seconds, or
/// `retry-after` as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = get("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP dates take.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let day: u64 = day.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == month)? as u64
        + 1;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    // Days since the epoch of a civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe as u64 * 365 + yoe as u64 / 4 - yoe as u64 / 100 + doy;
    let days = era * 146_097 + doe as i64 - 719_468;
    let secs = days.checked_mul(86_400)? + (h * 3600 + m * 60 + sec) as i64;
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
    let kind = classify(status, body).unwrap_or(match status {
        400 | 413 | 422 => ModelErrorKind::BadRequest,
        401 => ModelErrorKind::Authentication,
        402 => ModelErrorKind::QuotaExceeded,
        403 => ModelErrorKind::PermissionDenied,
        404 => ModelErrorKind::NotFound,
        408 => ModelErrorKind::Timeout,
        409 | 425 | 500..=599 => ModelErrorKind::Overloaded,
        429 => ModelErrorKind::RateLimited,
        _ => ModelErrorKind::Other,
    });
    let message = error_message(body).unwrap_or_else(|| {
        let trimmed = body.trim();
        if trimmed.is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            trimmed.chars().take(500).collect()
        }
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

/// The message of a provider's error body: `{"error": {"message": ...}}` (OpenAI, Gemini,
/// Anthropic) or `{"error": "..."}`, `{"message": ...}`.
pub(crate) fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let v = match &v {
        serde_json::Value::Array(items) => items.first()?.clone(),
        _ => v,
    };
    let err = v.get("error").unwrap_or(&v);
    match err {
        serde_json::Value::String(s) => Some(s.clone()),
        _ => err.get("message").and_then(serde_json::Value::as_str).map(str::to_owned),
    }
}

/// Turns the events of one provider's stream into [`StreamEvent`]s.
pub(crate) trait StreamParser: Send {
    /// Handles one event, pushing what it means to `out`; `Ok(true)` when the reply is
    /// complete.
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, ModelError>;

    /// The body ended: pushes what is still due (usage, the end), or fails if the reply was
    /// cut short.
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ModelError>;
}

struct SseState<S, P> {
    bytes: S,
    decoder: SseDecoder,
    parser: P,
    pending: std::collections::VecDeque<Result<StreamEvent, ModelError>>,
    done: bool,
    provider: &'static str,
}

/// The [`StreamEvent`]s of an event-stream body: decoded as the bytes arrive, parsed by the
/// provider's `parser`; a broken connection, malformed data or a cut stream ends it with a
/// transient error.
pub(crate) fn sse_events<'a, S, P>(
    provider: &'static str,
    bytes: S,
    parser: P,
    request_id: Option<String>,
) -> ModelStream<'a>
where
    S: Stream<Item = Result<Bytes, ModelError>> + Send + 'a,
    P: StreamParser + 'a,
{
    let mut pending = std::collections::VecDeque::new();
    if let Some(id) = request_id {
        pending.push_back(Ok(StreamEvent::RequestId(id)));
    }
    let state = SseState { bytes: Box::pin(bytes), decoder: SseDecoder::new(), parser, pending, done: false, provider };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            let mut sse = Vec::new();
            let mut events = Vec::new();
            match st.bytes.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = st.decoder.push(&chunk, &mut sse) {
                        st.done = true;
                        st.pending.push_back(Err(ModelError::new(ModelErrorKind::Stream, st.provider, e)));
                        continue;
                    }
                }
                Some(Err(e)) => {
                    st.done = true;
                    st.pending.push_back(Err(e));
                    continue;
                }
                None => {
                    st.done = true;
                    let ended = st
                        .decoder
                        .finish(&mut sse)
                        .map_err(|e| ModelError::new(ModelErrorKind::Stream, st.provider, e))
                        .and_then(|()| {
                            for event in sse.drain(..) {
                                if st.parser.event(event, &mut events)? {
                                    return Ok(());
                                }
                            }
                            st.parser.end(&mut events)
                        });
                    st.pending.extend(events.into_iter().map(Ok));
                    if let Err(e) = ended {
                        st.pending.push_back(Err(e));
                    }
                    continue;
                }
            }
            for event in sse {
                match st.parser.event(event, &mut events) {
                    Ok(false) => {}
                    Ok(true) => {
                        st.done = true;
                        break;
                    }
                    Err(e) => {
                        st.done = true;
                        st.pending.extend(events.drain(..).map(Ok));
                        st.pending.push_back(Err(e));
                        break;
                    }
                }
            }
            st.pending.extend(events.into_iter().map(Ok));
        }
    }))
}

/// A malformed event: transient, since a retry gets a fresh stream.
pub(crate) fn malformed(provider: &'static str, what: &str, error: impl fmt::Display) -> ModelError {
    ModelError::new(ModelErrorKind::Stream, provider, format!("malformed {what}: {error}"))
}

/// A body that is not the JSON the provider documents.
pub(crate) fn invalid_body(provider: &'static str, error: impl fmt::Display) -> ModelError {
    ModelError::new(ModelErrorKind::InvalidResponse, provider, format!("the response could not be read: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", reqwest::header::HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", reqwest::header::HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn error_messages_come_from_the_provider_body() {
        assert_eq!(error_message(r#"{"error": {"message": "bad key", "type": "x"}}"#).as_deref(), Some("bad key"));
        assert_eq!(error_message(r#"[{"error": {"code": 429, "message": "slow"}}]"#).as_deref(), Some("slow"));
        assert_eq!(error_message("<html>"), None);
    }
}
