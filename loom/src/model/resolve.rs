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
/// In `openai-compatible:<base_url>/<model>`, the model may contain `/` (as vLLM names its
/// models, `meta-llama/Llama-3.1-8B-Instruct`): the base URL ends at the first version segment
/// of its path (`/v1`, `/v1beta`), and everything after it is the model. For a base URL without
/// one, put `#` between the two: `openai-compatible:http://host:8000/api#org/model`.
///
/// A missing key is a [`ConfigError::MissingApiKey`] naming the variable, before any request;
/// an unknown string is a [`ConfigError::UnknownModel`] listing the forms above, with the
/// closest known model when one is close; a provider whose cargo feature is off is a
/// [`ConfigError::ProviderNotEnabled`].
///
/// ```
/// use loomflow::model::resolve_model;
/// assert_eq!(resolve_model("echo")?.name(), "echo");
/// let err = resolve_model("gtp-4.1-mini").err().map(|e| e.to_string()).unwrap_or_default();
/// assert!(err.contains("unknown model `gtp-4.1-mini` (did you mean `gpt-4.1-mini`?)"), "{err}");
/// let m = resolve_model("openai-compatible:http://localhost:8000/v1/meta-llama/Llama-3.1-8B-Instruct")?;
/// assert_eq!(m.name(), "meta-llama/Llama-3.1-8B-Instruct");
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
pub fn resolve_model(spec: &str) -> Result<Arc<dyn Model>, ConfigError> {
    let spec = spec.trim();
    if spec == "echo" {
        return Ok(Arc::new(EchoModel::new()));
    }
    let unknown = || unknown_model(spec);
    if let Some(rest) = spec.strip_prefix("openai-compatible:") {
        let (base, model) = split_compatible(rest).ok_or_else(unknown)?;
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

/// [`resolve_model`], with the providers' keys and base URLs (`OPENAI_API_KEY`,
/// `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`, ...) read from `secrets` — a vault, a map, or the
/// environment through [`EnvSecrets`](crate::governance::EnvSecrets) — instead of the
/// process environment. The key lives in the model's client only, never in a log or an event.
///
/// ```
/// use loomflow::governance::MapSecrets;
/// use loomflow::model::resolve_model_with;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), loomflow::ConfigError> {
/// let vault = MapSecrets::new().with("OPENAI_API_KEY", "sk-from-the-vault");
/// let model = resolve_model_with("gpt-4.1-mini", &vault).await?;
/// assert_eq!(model.name(), "gpt-4.1-mini");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`resolve_model`]; and when `secrets` cannot be read.
pub async fn resolve_model_with(
    spec: &str,
    secrets: &dyn crate::governance::Secrets,
) -> Result<Arc<dyn Model>, ConfigError> {
    #[cfg(feature = "http")]
    {
        let mut values = std::collections::HashMap::new();
        for &name in super::providers::http::VARIABLES {
            let secret = secrets
                .get(name)
                .await
                .map_err(|e| ConfigError::InvalidSetting { setting: "secrets", reason: e.to_string() })?;
            if let Some(secret) = secret {
                values.insert(name, secret.expose().to_owned());
            }
        }
        super::providers::http::with_variables(values, || resolve_model(spec))
    }
    #[cfg(not(feature = "http"))]
    {
        let _ = secrets;
        resolve_model(spec)
    }
}

/// The providers of the `<provider>:<model>` form.
const PROVIDERS: &[&str] = &[
    "openai",
    "anthropic",
    "gemini",
    "google",
    "deepseek",
    "groq",
    "mistral",
    "openrouter",
    "together",
    "vllm",
    "ollama",
];

/// The error of a model string Loom does not know, with the closest known string.
fn unknown_model(spec: &str) -> ConfigError {
    let suggestion = match spec.split_once(':') {
        Some((provider, model)) if !model.is_empty() && !provider.contains('/') => {
            loomflow_graph::suggest::did_you_mean(provider, PROVIDERS.iter().copied()).map(|p| format!("{p}:{model}"))
        }
        _ => {
            let models = super::pricing::known_models().chain(["echo"]);
            loomflow_graph::suggest::did_you_mean(spec, models).map(str::to_owned)
        }
    };
    ConfigError::UnknownModel { spec: spec.to_owned(), suggestion, known: KNOWN_MODEL_FORMS.join(", ") }
}

/// Splits `<base_url>#<model>`, or `<base_url>/<model>` where the base URL ends at the first
/// version segment of its path (else at the last `/`).
fn split_compatible(rest: &str) -> Option<(&str, &str)> {
    fn nonempty<'s>((b, m): (&'s str, &'s str)) -> Option<(&'s str, &'s str)> {
        (!b.is_empty() && !m.is_empty()).then_some((b, m))
    }
    if let Some(split) = rest.split_once('#') {
        return nonempty(split);
    }
    let path_start = rest.find("://").map_or(0, |i| i + 3);
    let path_start = path_start + rest[path_start..].find('/')?;
    let mut at = path_start;
    for segment in rest[path_start + 1..].split('/') {
        at += 1 + segment.len();
        let version = segment.strip_prefix('v').is_some_and(|v| {
            let digits = v.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && v[digits..].bytes().all(|b| b.is_ascii_lowercase())
        });
        if version && at < rest.len() {
            return nonempty((&rest[..at], &rest[at + 1..]));
        }
    }
    rest.rsplit_once('/').and_then(nonempty)
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
    let preset = super::providers::Compatible::from_name(provider).ok_or_else(|| unknown_model(spec))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_strings_split_at_the_version_segment_or_a_hash() {
        assert_eq!(split_compatible("http://h:8000/v1/llama3"), Some(("http://h:8000/v1", "llama3")));
        assert_eq!(
            split_compatible("http://h:8000/v1/meta-llama/Llama-3.1-8B-Instruct"),
            Some(("http://h:8000/v1", "meta-llama/Llama-3.1-8B-Instruct"))
        );
        assert_eq!(split_compatible("https://x.ai/api/v1beta/org/m"), Some(("https://x.ai/api/v1beta", "org/m")));
        assert_eq!(split_compatible("http://h/api#org/model"), Some(("http://h/api", "org/model")));
        assert_eq!(split_compatible("http://h/api/model"), Some(("http://h/api", "model")));
        assert_eq!(split_compatible("http://h:8000/v1"), Some(("http://h:8000", "v1")));
        assert_eq!(split_compatible("http://h/v1#"), None);
        assert_eq!(split_compatible("nothing"), None);
    }

    #[test]
    fn unknown_strings_get_the_closest_known_one() {
        let suggestion = |spec: &str| match unknown_model(spec) {
            ConfigError::UnknownModel { suggestion, .. } => suggestion,
            _ => None,
        };
        assert_eq!(suggestion("gtp-4.1-mini").as_deref(), Some("gpt-4.1-mini"));
        assert_eq!(suggestion("opneai:gpt-4o").as_deref(), Some("openai:gpt-4o"));
        assert_eq!(suggestion("ehco").as_deref(), Some("echo"));
        assert_eq!(suggestion("something-else-entirely"), None);
    }
}
