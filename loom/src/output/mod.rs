//! What a run returns: text, or a typed value parsed from the model's answer.

use std::fmt;

/// How an agent turns the model's final answer into the run's output.
pub(crate) struct OutputSpec<O> {
    pub(crate) finish: fn(String) -> O,
}

impl<O> Clone for OutputSpec<O> {
    fn clone(&self) -> Self {
        Self { finish: self.finish }
    }
}

impl<O> fmt::Debug for OutputSpec<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text")
    }
}

impl OutputSpec<String> {
    pub(crate) fn text() -> Self {
        Self { finish: |s| s }
    }
}
