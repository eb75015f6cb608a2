//! [`EchoModel`]: a zero-key model that repeats the user.

use std::time::Duration;

use futures::StreamExt as _;

use super::{
    Capabilities, FinishReason, Message, Model, ModelError, ModelRequest, ModelResponse, ModelStream, StreamEvent,
    Usage,
};

/// A model that needs no key and no network: it replies `Echo: ` followed by the last user
/// message, and never calls tools.
///
/// Usage counts words as tokens: input tokens are the words of every message sent (system
/// included), output tokens the words of the reply (at least 1). Use it to run agents and
/// workflows end to end offline; [`ScriptedModel`](super::ScriptedModel) is the fake for tests
/// that need tool calls.
///
/// ```
/// use std::future::IntoFuture as _;
/// use loomflow::prelude::*;
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let agent = Agent::new("Be brief.").model("echo");
/// let result = rt.block_on(agent.run("hello there").into_future())?;
/// assert_eq!(result.output, "Echo: hello there");
/// assert_eq!(result.usage.output_tokens, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EchoModel {
    prefix: String,
    chunk_delay: Duration,
}

impl Default for EchoModel {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoModel {
    /// An echo model with the `Echo: ` prefix.
    pub fn new() -> Self {
        Self { prefix: "Echo: ".to_owned(), chunk_delay: Duration::ZERO }
    }

    /// Replaces the `Echo: ` prefix.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Waits this long before each streamed word (streaming runs only), to simulate a slow
    /// provider.
    #[must_use]
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    fn reply(&self, request: &ModelRequest<'_>) -> (String, Usage) {
        let last = request.last_user_text().unwrap_or_default();
        let mut text = String::with_capacity(self.prefix.len() + last.len());
        text.push_str(&self.prefix);
        text.push_str(&last);
        let input: usize = request.messages.iter().map(|m: &Message| word_count(&m.text())).sum();
        let output = word_count(&text).max(1);
        (text, Usage::new(input as u64, output as u64))
    }
}

pub(crate) fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

#[async_trait::async_trait]
impl Model for EchoModel {
    fn name(&self) -> &str {
        "echo"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default().with_streaming(true).with_tools(false)
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        let (text, usage) = self.reply(request);
        Ok(ModelResponse::text(text).with_usage(usage))
    }

    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        let (text, usage) = self.reply(request);
        let mut pieces: Vec<String> = Vec::new();
        for (i, word) in text.split(' ').enumerate() {
            pieces.push(if i == 0 { word.to_owned() } else { format!(" {word}") });
        }
        let delay = self.chunk_delay;
        let deltas = futures::stream::iter(pieces).then(move |p| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(StreamEvent::TextDelta(p))
        });
        let tail = futures::stream::iter([Ok(StreamEvent::Usage(usage)), Ok(StreamEvent::Finish(FinishReason::Stop))]);
        Box::pin(deltas.chain(tail))
    }
}
