//! Model strings: `"echo"`, and (with provider features) `"gpt-4.1-mini"`, `"claude-..."`, ...

use std::sync::Arc;

use super::{EchoModel, Model};
use crate::error::ConfigError;

/// The model-string forms Loom knows, as shown in the error for an unknown string.
pub const KNOWN_MODEL_FORMS: &[&str] = &["echo"];

/// Turns a model string into a model.
///
/// `"echo"` is the zero-key [`EchoModel`]. An unknown string is a
/// [`ConfigError::UnknownModel`] that lists the forms Loom knows.
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
    match spec {
        "echo" => Ok(Arc::new(EchoModel::new())),
        _ => Err(ConfigError::UnknownModel { spec: spec.to_owned(), known: KNOWN_MODEL_FORMS.join(", ") }),
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
