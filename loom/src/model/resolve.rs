//! Model strings: `"echo"`, `"gpt-4.1-mini"`, `"claude-sonnet-4-5"`, `"ollama/llama3.2"`, ...

use std::sync::Arc;

use super::{EchoModel, Model};
use crate::error::ConfigError;

/// The model-string forms Loom knows, as shown in the error for an unknown string.
pub const KNOWN_MODEL_FORMS: &[&str] = &[
    "echo",
    "gpt-*",
    "o1* / o3* / o4*",
    "claude-*",
    "gemini-*",
    "deepseek-*",
    "ollama/<model>",
    "openai-compatible:<base_url>/<model>",
    "<provider>:<model> (openai, anthropic, gemini, deepseek, groq, mistral, openrouter, together, vllm, ollama)",
];

/// Turns a model string into a model.
///
/// | string | model |
/// |---|---|
/// | `echo` | [`EchoModel`], no key |
/// | `gpt-*`, `o1*`, `o3*`, `o4*`, `chatgpt-*` | OpenAI (`OPENAI_API_KEY`, `OPENAI_BASE_URL`) |
/// | `claude-*` | Anthropic (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`) |
/// | `gemini-*` | Gemini (`GEMINI_API_KEY` or `GOOGLE_API_KEY`) |
/// | `deepseek-*` | DeepSeek (`DEEPSEEK_API_KEY`) |
/// | `ollama/<model>` | Ollama (`OLLAMA_BASE_URL`, no key) |
/// | `openai-compatible:<base_url>/<model>` | any OpenAI-compatible server |
/// | `<provider>:<model>` | `openai`, `anthropic`, `gemini`, `deepseek`, `groq`, `mistral`, `openrouter`, `together`, `vllm`, `ollama` |
///
/// A missing key is a [`ConfigError::MissingApiKey`] naming the variable, before any request;
/// an unknown string is a [`ConfigError::UnknownModel`] listing the forms above; a provider
/// whose cargo feature is off is a [`ConfigError::ProviderNotEnabled`].
///
/// ```
/// use loomflow::model::resolve_model;
/// assert_eq!(resolve_model("echo")?.name(), "echo");
/// let err = resolve_model("gtp-4").err().map(|e| e.to_string()).unwrap_or_default();
/// assert!(err.contains("unknown model `gtp-4`"), "{err}");
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
pub fn resolve_model(spec: &str) -> Result<Arc<dyn Model>, ConfigError> {
    let spec = spec.trim();
    if spec == "echo" {
        return Ok(Arc::new(EchoModel::new()));
    }
    let unknown = || ConfigError::UnknownModel { spec: spec.to_owned(), known: KNOWN_MODEL_FORMS.join(", ") };
    if let Some(rest) = spec.strip_prefix("openai-compatible:") {
        let (base, model) =
            rest.rsplit_once('/').filter(|(b, m)| !b.is_empty() && !m.is_empty()).ok_or_else(unknown)?;
        return openai_at(spec, base, model);
    }
    if let Some(model) = spec.strip_prefix("ollama/") {
        return compatible(spec, "ollama", model);
    }
    if let Some((provider, model)) = spec.split_once(':')
        && !model.is_empty()
    {
        return match provider {
            "openai" => openai(spec, model),
            "anthropic" => anthropic(spec, model),
            "gemini" | "google" => gemini(spec, model),
            "deepseek" | "groq" | "mistral" | "openrouter" | "together" | "vllm" | "ollama" => {
                compatible(spec, provider, model)
            }
            _ => Err(unknown()),
        };
    }
    let openai_prefixes = ["gpt-", "chatgpt-", "o1", "o3", "o4"];
    if openai_prefixes.iter().any(|p| spec.starts_with(p)) {
        openai(spec, spec)
    } else if spec.starts_with("claude-") {
        anthropic(spec, spec)
    } else if spec.starts_with("gemini-") {
        gemini(spec, spec)
    } else if spec.starts_with("deepseek-") {
        compatible(spec, "deepseek", spec)
    } else {
        Err(unknown())
    }
}

#[allow(dead_code)]
fn not_enabled(spec: &str, feature: &'static str) -> ConfigError {
    ConfigError::ProviderNotEnabled { spec: spec.to_owned(), feature }
}

#[cfg(feature = "openai")]
fn openai(_spec: &str, model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    Ok(Arc::new(super::providers::OpenAiModel::from_env(model)?))
}

#[cfg(not(feature = "openai"))]
fn openai(spec: &str, _model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    Err(not_enabled(spec, "openai"))
}

#[cfg(feature = "openai")]
fn openai_at(_spec: &str, base: &str, model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    Ok(Arc::new(super::providers::OpenAiModel::at(base, model)?))
}

#[cfg(not(feature = "openai"))]
fn openai_at(spec: &str, _base: &str, _model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    Err(not_enabled(spec, "openai"))
}

#[cfg(feature = "openai")]
fn compatible(spec: &str, provider: &str, model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    let preset = super::providers::Compatible::from_name(provider)
        .ok_or_else(|| ConfigError::UnknownModel { spec: spec.to_owned(), known: KNOWN_MODEL_FORMS.join(", ") })?;
    Ok(Arc::new(super::providers::OpenAiModel::compatible(preset, model)?))
}

#[cfg(not(feature = "openai"))]
fn compatible(spec: &str, _provider: &str, _model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    Err(not_enabled(spec, "openai"))
}

#[cfg(feature = "anthropic")]
fn anthropic(_spec: &str, model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    Ok(Arc::new(super::providers::AnthropicModel::from_env(model)?))
}

#[cfg(not(feature = "anthropic"))]
fn anthropic(spec: &str, _model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    Err(not_enabled(spec, "anthropic"))
}

#[cfg(feature = "gemini")]
fn gemini(_spec: &str, model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    Ok(Arc::new(super::providers::GeminiModel::from_env(model)?))
}

#[cfg(not(feature = "gemini"))]
fn gemini(spec: &str, _model: &str) -> Result<Arc<dyn Model>, ConfigError> {
    Err(not_enabled(spec, "gemini"))
}

/// The model named by the `LOOM_MODEL` environment variable, or `default` when it is not set.
///
/// Examples and tools use it so one variable swaps the model: `LOOM_MODEL=gpt-4.1-mini`.
pub fn from_env_or(default: impl IntoModel) -> Result<Arc<dyn Model>, ConfigError> {
    match std::env::var("LOOM_MODEL").ok().filter(|v| !v.trim().is_empty()) {
        Some(spec) => resolve_model(&spec),
        None => default.into_model(),
    }
}

/// Anything [`Agent::model`](crate::Agent::model) accepts: a model string, or a model value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a model",
    note = "pass a model string such as \"echo\", or a value that implements `loomflow::Model`"
)]
pub trait IntoModel {
    /// Resolves to a shared model.
    fn into_model(self) -> Result<Arc<dyn Model>, ConfigError>;
}

impl<M: Model> IntoModel for M {
    fn into_model(self) -> Result<Arc<dyn Model>, ConfigError> {
        Ok(Arc::new(self))
    }
}

impl IntoModel for &str {
    fn into_model(self) -> Result<Arc<dyn Model>, ConfigError> {
        resolve_model(self)
    }
}

impl IntoModel for String {
    fn into_model(self) -> Result<Arc<dyn Model>, ConfigError> {
        resolve_model(&self)
    }
}

impl IntoModel for &String {
    fn into_model(self) -> Result<Arc<dyn Model>, ConfigError> {
        resolve_model(self)
    }
}
