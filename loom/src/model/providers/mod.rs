//! Model providers over HTTP: OpenAI (and compatible servers), Anthropic, Gemini.
//!
//! Each adapter speaks its provider's wire format over `reqwest` (rustls), streams replies as
//! server-sent events, and maps every failure to a typed [`ModelError`](crate::ModelError)
//! that says whether a retry can help. Retries, fallback and cost are handled by the agent
//! loop for every model alike (see [`RetryPolicy`](crate::model::RetryPolicy)).

pub(crate) mod http;
pub(crate) mod sse;
pub(crate) mod status;
pub(crate) mod wire;

#[cfg(feature = "anthropic")]
pub mod anthropic;
#[cfg(feature = "gemini")]
pub mod gemini;
#[cfg(feature = "openai")]
pub mod openai;

pub use http::{ApiKey, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENT_BYTES, HttpConfig};

#[cfg(feature = "anthropic")]
pub use anthropic::AnthropicModel;
#[cfg(feature = "gemini")]
pub use gemini::GeminiModel;
#[cfg(feature = "openai")]
pub use openai::{Compatible, OpenAiModel};
