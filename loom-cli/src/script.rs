//! `--script FILE`: a scripted model read from JSON, for offline demos and tests.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loomflow::model::{ModelRequest, ModelResponse};
use loomflow::{Model, ModelError, ScriptedModel, ScriptedTurn};
use serde::Deserialize;

use crate::Failure;

/// One turn of a script file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    /// The answer's text.
    #[serde(default)]
    text: Option<String>,
    /// A tool the answer calls.
    #[serde(default)]
    tool: Option<String>,
    /// The call's arguments.
    #[serde(default)]
    arguments: Option<serde_json::Value>,
    /// How long the model takes to answer.
    #[serde(default)]
    delay_ms: u64,
}

/// A scripted model whose turns may take a while.
pub(crate) struct ScriptModel {
    inner: ScriptedModel,
    delays: Vec<Duration>,
    next: AtomicUsize,
}

/// The model a script file describes.
pub(crate) fn load(path: &Path) -> Result<Arc<dyn Model>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read the script `{}`: {e}", path.display())))?;
    let turns: Vec<Turn> = serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "{}: {e} (a script is a JSON list of turns: {{\"text\": \"..\"}} or {{\"tool\": \"name\", \"arguments\": {{..}}}})",
            path.display()
        ))
    })?;
    let mut scripted = Vec::with_capacity(turns.len());
    let mut delays = Vec::with_capacity(turns.len());
    for (i, turn) in turns.into_iter().enumerate() {
        let mut step = match (turn.tool, turn.text) {
            (Some(tool), text) => {
                let call = ScriptedTurn::tool_call(tool, turn.arguments.unwrap_or_else(|| serde_json::json!({})));
                match text {
                    Some(text) => call.with_text(text),
                    None => call,
                }
            }
            (None, Some(text)) => ScriptedTurn::text(text),
            (None, None) => {
                return Err(Failure::usage(format!("{}: turn {i} has neither `text` nor `tool`", path.display())));
            }
        };
        step = step.with_usage(loomflow::model::Usage::new(10, 5));
        scripted.push(step);
        delays.push(Duration::from_millis(turn.delay_ms));
    }
    Ok(Arc::new(ScriptModel { inner: ScriptedModel::new(scripted), delays, next: AtomicUsize::new(0) }))
}

#[async_trait::async_trait]
impl Model for ScriptModel {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        // The turn is taken before the wait: a call cancelled while it waits uses it up.
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let answer = self.inner.complete(request).await;
        if let Some(delay) = self.delays.get(turn).filter(|d| !d.is_zero()) {
            tokio::time::sleep(*delay).await;
        }
        answer
    }
}
