//! Embeddings from OpenAI's `/embeddings` endpoint, and from every server that copies it
//! (vLLM, Ollama's `/v1`, LiteLLM, Together, Mistral, ...).
//!
//! The request and the errors are the chat adapter's: the same client, headers, body limits,
//! status mapping and error bodies ([`Http::post`]). What is read of the reply follows the
//! public API reference and what compatible servers send: vectors ordered by `index` (or by
//! position when a server leaves it out), `null`s and unknown fields ignored, and vectors as
//! base64 little-endian `f32`s as well as JSON numbers.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::Embedder;
use crate::error::ConfigError;
use crate::model::providers::Compatible;
use crate::model::providers::http::{Auth, Endpoint, Http, HttpConfig};
use crate::model::providers::openai as chat;
use crate::model::providers::status::{self, invalid_body};
use crate::model::providers::wire::{decode_base64, nullable};
use crate::model::{ModelError, ModelErrorKind, RetryDecision, RetryPolicy};

/// Embeddings from an OpenAI-compatible `/embeddings` endpoint, for a
/// [`Memory`](crate::memory::Memory)'s recall by meaning.
///
/// ```no_run
/// use loomflow::memory::{Memory, OpenAiEmbedder};
/// use loomflow::UserId;
///
/// # async fn run() -> Result<(), loomflow::Error> {
/// // OpenAI, with the key in `OPENAI_API_KEY`:
/// let memory = Memory::in_memory().embedder(OpenAiEmbedder::from_env("text-embedding-3-small")?);
/// let ann = UserId::new("ann")?;
/// memory.remember(&ann, "note", "Ann prefers trains to planes").await?;
/// let recalled = memory.recall(&ann, "how does Ann travel?").await?;
///
/// // A local server (vLLM, Ollama's `/v1`, LiteLLM ...), with a model Loom does not know:
/// let local = OpenAiEmbedder::at("http://localhost:11434/v1", "nomic-embed-text")?.with_dims(768);
/// # let _ = (recalled, local);
/// # Ok(())
/// # }
/// ```
///
/// - **Batches**: the texts of one call go in requests of at most
///   [`max_batch`](Self::max_batch) inputs ([`DEFAULT_MAX_BATCH`](Self::DEFAULT_MAX_BATCH) by
///   default), one after the other.
/// - **Dimensions**: OpenAI's models are known (`text-embedding-3-small` 1536,
///   `text-embedding-3-large` 3072, `text-embedding-ada-002` 1536);
///   [`dimensions`](Self::dimensions) asks a `text-embedding-3` model for shorter vectors. For
///   another model, give the length with [`with_dims`](Self::with_dims), or it is learned from
///   the first reply ([`dims`](Embedder::dims) is 0 until then). Every later vector must have
///   that length: vectors of two lengths cannot be compared, so a reply that differs is an
///   error, not a silent mix.
/// - **Blank texts** (OpenAI refuses an empty input) get a vector of zeros, without a request,
///   once the length is known.
/// - **Errors** are the chat adapter's [`ModelError`]s: 429, 5xx, timeouts and dropped
///   connections are transient and retried by the [`retry`](Self::retry) policy
///   ([`RetryPolicy::default`]: 3 attempts, honouring `Retry-After`); 401, 403, 404 and 400 are
///   not; a reply with the wrong number of vectors or the wrong lengths is
///   [`ModelErrorKind::InvalidResponse`], whose message says what to change.
///
/// Its `Debug` output never shows the key or the values of extra headers.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedder {
    model: String,
    name: String,
    url: Endpoint,
    http: Http,
    /// The `dimensions` sent with every request, if any.
    dimensions: Option<usize>,
    /// The length of the vectors: known, set, or learned from the first reply (shared by clones).
    dims: Arc<OnceLock<usize>>,
    max_batch: usize,
    retry: RetryPolicy,
}

/// The vector length of OpenAI's own embedding models, by name (a `provider/` prefix, as
/// LiteLLM and OpenRouter write it, is ignored).
fn known_dims(model: &str) -> Option<usize> {
    match model.rsplit('/').next().unwrap_or(model) {
        "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
        "text-embedding-3-large" => Some(3072),
        _ => None,
    }
}

impl OpenAiEmbedder {
    /// The most inputs one request carries, by default. OpenAI takes up to 2048 (and 300,000
    /// tokens) per request; compatible servers often take fewer.
    pub const DEFAULT_MAX_BATCH: usize = 96;

    /// `model` on the server `config` describes (its base URL, key, timeouts and limits).
    pub fn new(model: impl Into<String>, config: HttpConfig) -> Result<Self, ConfigError> {
        Self::build(model.into(), &config, "openai")
    }

    /// `model` on OpenAI, with the key from `OPENAI_API_KEY` and the base URL from
    /// `OPENAI_BASE_URL` (default
    /// [`OPENAI_BASE_URL`](crate::model::providers::openai::OPENAI_BASE_URL)). The key is required unless the base URL
    /// points elsewhere (a local OpenAI-compatible server).
    pub fn from_env(model: impl Into<String>) -> Result<Self, ConfigError> {
        Self::build(model.into(), &chat::env_config()?, "openai")
    }

    /// `model` on a compatible server, configured from its environment variables (see
    /// [`Compatible`]).
    pub fn compatible(preset: Compatible, model: impl Into<String>) -> Result<Self, ConfigError> {
        Self::build(model.into(), &preset.config()?, preset.provider())
    }

    /// `model` on the OpenAI-compatible server at `base_url` (e.g. `http://localhost:8000/v1`),
    /// with the key in `OPENAI_API_KEY` if it is set.
    pub fn at(base_url: &str, model: impl Into<String>) -> Result<Self, ConfigError> {
        Self::build(model.into(), &chat::config_at(base_url), "openai-compatible")
    }

    fn build(model: String, config: &HttpConfig, provider: &'static str) -> Result<Self, ConfigError> {
        if model.trim().is_empty() {
            return Err(ConfigError::InvalidSetting { setting: "model", reason: "the model name is empty".to_owned() });
        }
        let http = Http::new(provider, config, Auth::Bearer, &[])?;
        let dims = Arc::new(OnceLock::new());
        if let Some(n) = known_dims(&model) {
            let _ = dims.set(n);
        }
        Ok(Self {
            name: format!("{provider}:{model}"),
            url: Endpoint::new(&config.base_url, "/embeddings"),
            model,
            http,
            dimensions: None,
            dims,
            max_batch: Self::DEFAULT_MAX_BATCH,
            retry: RetryPolicy::default(),
        })
    }

    /// Asks for vectors of `dims` dimensions (the `dimensions` parameter, which OpenAI's
    /// `text-embedding-3` models and some compatible servers support), and expects them.
    #[must_use]
    pub fn dimensions(mut self, dims: usize) -> Self {
        let dims = dims.max(1);
        self.dimensions = Some(dims);
        self.name = format!("{}@{dims}", self.name.split('@').next().unwrap_or(&self.name));
        self.with_dims(dims)
    }

    /// Expects vectors of `dims` dimensions without asking for them: the length of the model's
    /// vectors, for a model Loom does not know.
    #[must_use]
    pub fn with_dims(mut self, dims: usize) -> Self {
        self.dims = Arc::new(OnceLock::from(dims.max(1)));
        self
    }

    /// Sends at most `n` inputs per request (at least 1; 1 sends one text per request, for a
    /// server that does not take a list).
    #[must_use]
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Retries transient failures (429, 5xx, timeouts, dropped connections) by `policy`;
    /// [`RetryPolicy::disabled`] returns the first error as it is.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The model's name, as sent.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The request body for `texts`.
    fn body(&self, texts: &[&str]) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), self.model.clone().into());
        body.insert("input".into(), texts.iter().map(|t| Value::from(*t)).collect());
        body.insert("encoding_format".into(), "float".into());
        if let Some(dims) = self.dimensions {
            body.insert("dimensions".into(), dims.into());
        }
        Value::Object(body)
    }

    /// The vectors of one batch; blank texts get zeros without a request once the length is
    /// known.
    async fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let known = self.dims.get().copied();
        let sent: Vec<usize> = (0..texts.len()).filter(|&i| known.is_none() || !texts[i].trim().is_empty()).collect();
        let mut vectors = if sent.is_empty() {
            Vec::new()
        } else {
            let inputs: Vec<&str> = sent.iter().map(|&i| texts[i]).collect();
            self.request(&inputs).await?
        };
        if sent.len() == texts.len() {
            return Ok(vectors);
        }
        // Only reached with a known length (otherwise every text was sent).
        let dims = self.dims.get().copied().unwrap_or_default();
        let mut out = vec![Vec::new(); texts.len()];
        for (slot, vector) in sent.iter().zip(vectors.drain(..)) {
            out[*slot] = vector;
        }
        for v in out.iter_mut().filter(|v| v.is_empty()) {
            *v = vec![0.0; dims];
        }
        Ok(out)
    }

    /// One request for `texts` (none blank, unless the length is not known yet), retried by the
    /// policy.
    async fn request(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let body = self.body(texts);
        let mut attempt = 1;
        loop {
            let error = match self.http.post(&self.url, &body, chat::classify).await {
                Ok((bytes, request_id)) => match self.read(&bytes, texts.len()) {
                    Ok(vectors) => return Ok(vectors),
                    Err(e) => match request_id {
                        Some(id) => e.with_request_id(id),
                        None => e,
                    },
                },
                Err(e) => e,
            };
            match self.retry.decide(attempt, &error) {
                RetryDecision::Retry(delay) => {
                    tracing::debug!(embedder = %self.name, attempt, ?delay, "retrying: {error}");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                RetryDecision::WaitTooLong(wait) => return Err(self.retry.wait_too_long(error, wait)),
                _ => return Err(error),
            }
        }
    }

    /// The vectors of a successful reply to `n` inputs, in input order, checked for count and
    /// length.
    fn read(&self, body: &[u8], n: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        let provider = self.http.provider();
        let invalid = |message: String| ModelError::new(ModelErrorKind::InvalidResponse, provider, message);
        let reply: WireReply = serde_json::from_slice(body).map_err(|e| invalid_body(provider, e))?;
        if let Some(error) = reply.error.filter(|e| !e.is_null())
            && reply.data.is_empty()
        {
            // A proxy that answers an error with a 200.
            let message = status::error_message(&serde_json::json!({ "error": &error }).to_string())
                .unwrap_or_else(|| status::clip(&error.to_string()));
            return Err(ModelError::new(status::kind_of_error_object(&error), provider, message));
        }
        if reply.data.len() != n {
            return Err(invalid(format!(
                "the server sent {} embeddings for {n} inputs; if it does not take a list of inputs, send one \
                 text per request with `OpenAiEmbedder::max_batch(1)`",
                reply.data.len()
            )));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; n];
        for (position, item) in reply.data.into_iter().enumerate() {
            let index = item.index.unwrap_or(position);
            let Some(slot) = slots.get_mut(index) else {
                return Err(invalid(format!("the server sent an embedding for input {index} of {n}")));
            };
            if slot.is_some() {
                return Err(invalid(format!("the server sent two embeddings for input {index}")));
            }
            let Some(WireVector(vector)) = item.embedding else {
                return Err(invalid(format!("the server sent no vector for input {index}")));
            };
            *slot = Some(vector);
        }
        let vectors: Vec<Vec<f32>> = slots.into_iter().flatten().collect();
        self.check_dims(&vectors).map_err(invalid)?;
        Ok(vectors)
    }

    /// Every vector has the embedder's length (learned from this reply when it is not known
    /// yet).
    fn check_dims(&self, vectors: &[Vec<f32>]) -> Result<(), String> {
        let Some(first) = vectors.first().map(Vec::len) else { return Ok(()) };
        if first == 0 {
            return Err("the server sent an empty vector".to_owned());
        }
        if let Some(other) = vectors.iter().map(Vec::len).find(|&l| l != first) {
            return Err(format!("the server sent vectors of {first} and of {other} dimensions in one reply"));
        }
        let expected = *self.dims.get_or_init(|| first);
        if first == expected {
            return Ok(());
        }
        let fix = match self.dimensions {
            Some(_) => {
                "the model ignores `dimensions`: leave `OpenAiEmbedder::dimensions` out, or pick a model that \
                        supports it"
            }
            None => {
                "set the model's length with `OpenAiEmbedder::with_dims`, and keep one embedder per memory: \
                     vectors of different lengths cannot be compared"
            }
        };
        Err(format!("the server sent vectors of {first} dimensions where {expected} were expected; {fix}"))
    }
}

#[async_trait::async_trait]
impl Embedder for OpenAiEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dims(&self) -> usize {
        self.dims.get().copied().unwrap_or(0)
    }

    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.max_batch) {
            out.extend(self.embed_batch(batch).await?);
        }
        Ok(out)
    }
}

/// The reply: `{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding":
/// [...]}], "model": ..., "usage": ...}`; only `data` (and an `error` a proxy may send) is read.
#[derive(Deserialize)]
struct WireReply {
    #[serde(default, deserialize_with = "nullable")]
    data: Vec<WireEmbedding>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireEmbedding {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    embedding: Option<WireVector>,
}

/// A vector: a list of numbers, or (when a server ignores `encoding_format`) base64 of
/// little-endian `f32`s.
struct WireVector(Vec<f32>);

impl<'de> Deserialize<'de> for WireVector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Floats;

        impl<'de> Visitor<'de> for Floats {
            type Value = WireVector;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of numbers or a base64 string of little-endian f32s")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireVector, A::Error> {
                // Not the server's size hint: it does not choose an allocation.
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(x) = seq.next_element::<f32>()? {
                    v.push(x);
                }
                Ok(WireVector(v))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<WireVector, E> {
                let bytes = decode_base64(s).ok_or_else(|| E::custom("the embedding is a string but not base64"))?;
                if bytes.len() % 4 != 0 {
                    return Err(E::custom(format!(
                        "the base64 embedding has {} bytes, not a whole number of 4-byte floats",
                        bytes.len()
                    )));
                }
                let floats = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                Ok(WireVector(floats))
            }
        }

        d.deserialize_any(Floats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedder() -> Result<OpenAiEmbedder, ConfigError> {
        OpenAiEmbedder::new("text-embedding-3-small", HttpConfig::new("http://localhost:1/v1"))
    }

    #[test]
    fn the_request_names_the_model_the_inputs_and_floats() -> Result<(), ConfigError> {
        let e = embedder()?;
        assert_eq!(
            e.body(&["a", "b"]),
            serde_json::json!({"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float"})
        );
        let e = e.dimensions(256);
        assert_eq!(e.body(&["a"])["dimensions"], 256);
        assert_eq!((e.name(), e.dims()), ("openai:text-embedding-3-small@256", 256));
        Ok(())
    }

    #[test]
    fn known_models_have_their_lengths_and_others_learn_them() -> Result<(), ConfigError> {
        assert_eq!(embedder()?.dims(), 1536);
        assert_eq!(OpenAiEmbedder::new("openai/text-embedding-3-large", HttpConfig::new("http://x/v1"))?.dims(), 3072);
        let local = OpenAiEmbedder::new("nomic-embed-text", HttpConfig::new("http://x/v1"))?;
        assert_eq!(local.dims(), 0);
        assert!(local.read(br#"{"data": [{"embedding": [1, 2, 3]}]}"#, 1).is_ok());
        assert_eq!(local.clone().dims(), 3);
        assert!(local.read(br#"{"data": [{"embedding": [1, 2]}]}"#, 1).is_err());
        assert!(OpenAiEmbedder::new(" ", HttpConfig::new("http://x/v1")).is_err());
        Ok(())
    }

    #[test]
    fn base64_vectors_are_little_endian_f32s() -> Result<(), serde_json::Error> {
        // 1.0, -2.5 as little-endian f32s: 00 00 80 3f, 00 00 20 c0.
        let v: WireVector = serde_json::from_str(r#""AACAPwAAIMA=""#)?;
        assert_eq!(v.0, [1.0, -2.5]);
        assert!(serde_json::from_str::<WireVector>(r#""AACA""#).is_err());
        assert!(serde_json::from_str::<WireVector>(r#""not base64!""#).is_err());
        assert!(serde_json::from_str::<WireVector>("{}").is_err());
        Ok(())
    }
}
