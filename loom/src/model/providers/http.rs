//! The HTTP side of the provider adapters: connection settings, the client, bounded bodies,
//! and transport errors.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::sse::{StreamParser, sse_events};
use super::status::{self, error_from_status, invalid_body, redact_url, request_id};
use crate::error::ConfigError;
use crate::model::{ModelError, ModelErrorKind, ModelStream};

/// The variables the provider adapters read: their keys and base URLs.
pub(crate) const VARIABLES: &[&str] = &[
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_BASE_URL",
    "DEEPSEEK_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "VLLM_API_KEY",
    "VLLM_BASE_URL",
    "OLLAMA_BASE_URL",
];

thread_local! {
    /// While set ([`with_variables`]), the values the adapters read instead of the environment.
    static VARIABLES_IN_USE: std::cell::RefCell<Option<std::collections::HashMap<&'static str, String>>> =
        const { std::cell::RefCell::new(None) };
}

/// The value of a provider variable, trimmed; `None` when unset or empty. Read from the
/// environment, or from the values [`with_variables`] set for this thread.
pub(crate) fn env(name: &str) -> Option<String> {
    let set = VARIABLES_IN_USE.with(|v| v.borrow().as_ref().map(|m| m.get(name).cloned()));
    let value = match set {
        Some(value) => value,
        None => std::env::var(name).ok(),
    };
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Runs `f` (synchronous: the adapters read their settings when built) with the provider
/// variables taken from `values` instead of the environment.
pub(crate) fn with_variables<T>(values: std::collections::HashMap<&'static str, String>, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<std::collections::HashMap<&'static str, String>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let before = self.0.take();
            VARIABLES_IN_USE.with(|v| *v.borrow_mut() = before);
        }
    }
    let before = VARIABLES_IN_USE.with(|v| v.borrow_mut().replace(values));
    let _reset = Reset(before);
    f()
}

/// An API key. Its `Debug` output never shows the key, and the request header it travels in
/// is marked sensitive.
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

/// The most bytes a whole (non-streamed) response body may have, by default: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// The most bytes one line or one event of a streamed response may have, by default: 16 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 << 20;

/// The most bytes of an error body Loom reads (the rest is not needed to say what failed).
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// Connection settings shared by the provider adapters.
///
/// Its `Debug` output shows the names of the extra headers, never their values (they often
/// carry credentials).
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The API's base URL (e.g. `https://api.openai.com/v1`).
    pub base_url: String,
    /// The key, if the server needs one.
    pub api_key: Option<ApiKey>,
    /// The longest a whole non-streamed request may take.
    pub timeout: Duration,
    /// The longest a whole streamed response may take, from the request to its last byte.
    pub stream_timeout: Duration,
    /// The longest to wait for the next bytes of a response (streamed or not).
    pub read_timeout: Duration,
    /// The longest to wait for a connection.
    pub connect_timeout: Duration,
    /// Extra headers sent with every request (their values are treated as secrets).
    pub headers: Vec<(String, String)>,
    /// The most bytes a non-streamed response body may have (default
    /// [`DEFAULT_MAX_BODY_BYTES`]); a larger one is an error, not an allocation.
    pub max_body_bytes: usize,
    /// The most bytes one line or one event of a streamed response may have (default
    /// [`DEFAULT_MAX_EVENT_BYTES`]).
    pub max_event_bytes: usize,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &redact_url(&self.base_url))
            .field("api_key", &self.api_key)
            .field("timeout", &self.timeout)
            .field("stream_timeout", &self.stream_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("headers", &self.headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_event_bytes", &self.max_event_bytes)
            .finish()
    }
}

impl HttpConfig {
    /// Settings for `base_url` with the default timeouts (10 minutes per request, 30 minutes
    /// per streamed response, 2 minutes between bytes, 10 seconds to connect) and size limits.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: None,
            timeout: Duration::from_secs(600),
            stream_timeout: Duration::from_secs(1800),
            read_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            headers: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// An endpoint's URL. Its `Debug` output leaves out a user name, a password and the query
/// (any of them may hold a credential).
#[derive(Clone)]
pub(crate) struct Endpoint(String);

impl Endpoint {
    /// `base` followed by `path`.
    pub(crate) fn new(base: &str, path: &str) -> Self {
        Self(format!("{base}{path}"))
    }
}

impl std::ops::Deref for Endpoint {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// How a provider sends its key: the header and the value's form.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth {
    /// `authorization: Bearer <key>`.
    Bearer,
    /// The key as it is, in this header (`x-api-key`, `x-goog-api-key`).
    Header(&'static str),
}

fn header_error(name: &str, problem: &str) -> ConfigError {
    ConfigError::InvalidSetting { setting: "headers", reason: format!("header `{}`: {problem}", status::clip(name)) }
}

/// The headers every request of a model carries: its key, the provider's fixed headers, and
/// the user's extra headers (which override the fixed ones). Built and checked once; the key
/// and the extra headers are marked sensitive.
fn default_headers(
    config: &HttpConfig,
    auth: Auth,
    fixed: &[(&'static str, &'static str)],
) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::with_capacity(2 + fixed.len() + config.headers.len());
    headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(key) = &config.api_key {
        let (name, value) = match auth {
            Auth::Bearer => (reqwest::header::AUTHORIZATION, format!("Bearer {}", key.expose())),
            Auth::Header(name) => (HeaderName::from_static(name), key.expose().to_owned()),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| ConfigError::InvalidSetting {
            setting: "api_key",
            reason: "the API key contains characters a header cannot carry (a line break or a control character?)"
                .to_owned(),
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    for (name, value) in fixed {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    for (name, value) in &config.headers {
        let name =
            HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| header_error(name, "not a valid name"))?;
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| header_error(name.as_str(), "its value contains characters a header cannot carry"))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// A client for one model: a connection pool with the model's headers, its limits, and the
/// provider's name for errors. Never follows redirects.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    provider: &'static str,
    timeout: Duration,
    stream_timeout: Duration,
    max_body_bytes: usize,
    max_event_bytes: usize,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http").field("provider", &self.provider).finish_non_exhaustive()
    }
}

impl Http {
    /// A client for `config`; a base URL that is not `http(s)://...` or a header that cannot
    /// be sent is a [`ConfigError`] now, not a failed request later.
    pub(crate) fn new(
        provider: &'static str,
        config: &HttpConfig,
        auth: Auth,
        fixed: &[(&'static str, &'static str)],
    ) -> Result<Self, ConfigError> {
        match reqwest::Url::parse(&config.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => {
                return Err(ConfigError::InvalidSetting {
                    setting: "base_url",
                    reason: format!(
                        "`{}` is not an http(s) URL, e.g. https://api.openai.com/v1",
                        status::clip(&redact_url(&config.base_url))
                    ),
                });
            }
        }
        if config.max_body_bytes == 0 || config.max_event_bytes == 0 {
            return Err(ConfigError::InvalidSetting {
                setting: "max_body_bytes",
                reason: "the body and event limits must be at least one byte".to_owned(),
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .default_headers(default_headers(config, auth, fixed)?)
            // A redirect would carry the key to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("loomflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::InvalidSetting {
                setting: "http client",
                reason: format!("the HTTP client for {provider} could not be built: {e}"),
            })?;
        Ok(Self {
            client,
            provider,
            timeout: config.timeout,
            stream_timeout: config.stream_timeout,
            max_body_bytes: config.max_body_bytes,
            max_event_bytes: config.max_event_bytes,
        })
    }

    pub(crate) fn provider(&self) -> &'static str {
        self.provider
    }

    fn encode(&self, body: &Value) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(body).map_err(|e| invalid_body(self.provider, e))
    }

    /// Sends a JSON request and returns the successful response's body and request id, or the
    /// typed error.
    pub(crate) async fn post(
        &self,
        url: &str,
        body: &Value,
        classify: fn(u16, &str) -> Option<ModelErrorKind>,
    ) -> Result<(Bytes, Option<String>), ModelError> {
        let body = self.encode(body)?;
        let response =
            self.client.post(url).body(body).timeout(self.timeout).send().await.map_err(|e| self.transport(&e))?;
        let request_id = request_id(response.headers());
        if !response.status().is_success() {
            return Err(self.status_error(response, classify).await);
        }
        let bytes = self.read_body(response).await?;
        Ok((bytes, request_id))
    }

    /// The body, refused past `max_body_bytes` (before it is read, when the length is declared).
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, ModelError> {
        let limit = self.max_body_bytes;
        let too_large = || {
            ModelError::new(
                ModelErrorKind::InvalidResponse,
                self.provider,
                format!("the response body is larger than {limit} bytes (the limit is `HttpConfig::max_body_bytes`)"),
            )
        };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = BytesMut::with_capacity(response.content_length().map_or(8192, |n| n as usize));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// Sends a JSON request whose answer is an event stream, decoded with `parser`; a request
    /// that fails is the stream's one error. The whole response must arrive within
    /// `stream_timeout`.
    pub(crate) fn stream<'a, P>(
        &'a self,
        url: &'a str,
        body: Value,
        classify: fn(u16, &str) -> Option<ModelErrorKind>,
        parser: P,
    ) -> ModelStream<'a>
    where
        P: StreamParser + 'a,
    {
        Box::pin(
            futures::stream::once(async move {
                let body = self.encode(&body)?;
                self.post_stream(url, body, classify, parser).await
            })
            .flat_map(|r| match r {
                Ok(stream) => stream,
                Err(e) => Box::pin(futures::stream::once(async move { Err(e) })),
            }),
        )
    }

    async fn post_stream<'a, P: StreamParser + 'a>(
        &self,
        url: &str,
        body: Vec<u8>,
        classify: fn(u16, &str) -> Option<ModelErrorKind>,
        parser: P,
    ) -> Result<ModelStream<'a>, ModelError> {
        // reqwest's request timeout covers the body too: it is the stream's total deadline.
        let response = self
            .client
            .post(url)
            .body(body)
            .timeout(self.stream_timeout)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if !response.status().is_success() {
            return Err(self.status_error(response, classify).await);
        }
        let request_id = request_id(response.headers());
        let this = self.clone();
        let bytes = response.bytes_stream().map(move |r| r.map_err(|e| this.transport(&e)));
        Ok(sse_events(self.provider, bytes, parser, request_id, self.max_event_bytes))
    }

    /// The typed error of a failed status, from at most the first 64 KiB of its body.
    async fn status_error(
        &self,
        mut response: reqwest::Response,
        classify: fn(u16, &str) -> Option<ModelErrorKind>,
    ) -> ModelError {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_ERROR_BODY_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        error_from_status(self.provider, status, &headers, &String::from_utf8_lossy(&body), classify)
    }

    /// The typed error of a request that got no answer. The message names the URL without its
    /// credentials or query.
    fn transport(&self, e: &reqwest::Error) -> ModelError {
        let kind = if e.is_timeout() {
            ModelErrorKind::Timeout
        } else if e.is_builder() || e.is_redirect() {
            // A request that could not be built fails the same way every time.
            ModelErrorKind::Other
        } else if e.is_body() || e.is_decode() {
            ModelErrorKind::Stream
        } else {
            ModelErrorKind::Connection
        };
        let mut message = e.to_string();
        if let Some(url) = e.url() {
            message = message.replace(url.as_str(), &redact_url(url.as_str()));
        }
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        ModelError::new(kind, self.provider, status::clip(&message))
    }
}
