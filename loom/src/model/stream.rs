//! Streaming model output and its assembly into a [`ModelResponse`].

use super::{FinishReason, ModelError, ModelErrorKind, ModelResponse, ToolCall, Usage};

/// One piece of a streamed model reply.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// More text of the reply.
    TextDelta(String),
    /// More reasoning text.
    ReasoningDelta(String),
    /// A tool call begins. `index` is its position in the reply.
    ToolCallStart {
        /// Position of the call among this reply's tool calls.
        index: usize,
        /// The provider's id for the call.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// More of a tool call's JSON arguments.
    ToolCallDelta {
        /// Position of the call among this reply's tool calls.
        index: usize,
        /// The next piece of the arguments text.
        arguments: String,
    },
    /// Token usage (providers send it once, at the end or the start).
    Usage(Usage),
    /// The provider's id of the request.
    RequestId(String),
    /// The reply is complete.
    Finish(FinishReason),
}

impl StreamEvent {
    /// The events that stream `response`: its text, its tool calls, its usage, its end.
    pub fn replay(response: ModelResponse) -> Vec<StreamEvent> {
        let mut events = Vec::with_capacity(4 + 2 * response.tool_calls.len());
        if let Some(id) = response.request_id {
            events.push(Self::RequestId(id));
        }
        if let Some(r) = response.reasoning {
            events.push(Self::ReasoningDelta(r));
        }
        if !response.text.is_empty() {
            events.push(Self::TextDelta(response.text.into()));
        }
        for (index, call) in response.tool_calls.into_iter().enumerate() {
            events.push(Self::ToolCallStart { index, id: call.id, name: call.name });
            events.push(Self::ToolCallDelta { index, arguments: call.arguments });
        }
        events.push(Self::Usage(response.usage));
        events.push(Self::Finish(response.finish_reason));
        events
    }
}

/// The most tool calls one streamed reply may make; a stream that names more is refused (the
/// indices come from the network, so they size nothing).
pub const MAX_STREAMED_TOOL_CALLS: usize = 256;

/// Folds [`StreamEvent`]s into a [`ModelResponse`].
///
/// Tool-call argument deltas are assembled per call index, whatever order they arrive in; the
/// calls come out in index order, and a call the provider gave no id is `call_<n>`.
/// [`finish`](ResponseAccumulator::finish) fails with a transient
/// [`ModelErrorKind::Stream`] error when the stream ended without a [`StreamEvent::Finish`]
/// (a cut stream is never mistaken for a complete reply), or named more than
/// [`MAX_STREAMED_TOOL_CALLS`] calls.
#[derive(Debug, Default)]
pub struct ResponseAccumulator {
    text: String,
    reasoning: Option<String>,
    /// By the index the provider gave, in the order they first appeared.
    calls: Vec<(usize, PartialCall)>,
    too_many_calls: bool,
    usage: Usage,
    finish: Option<FinishReason>,
    request_id: Option<String>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl ResponseAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one event.
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::TextDelta(t) => self.text.push_str(t),
            StreamEvent::ReasoningDelta(t) => self.reasoning.get_or_insert_with(String::new).push_str(t),
            StreamEvent::ToolCallStart { index, id, name } => {
                if let Some(call) = self.call(*index) {
                    if !id.is_empty() {
                        call.id.clone_from(id);
                    }
                    if !name.is_empty() {
                        call.name.clone_from(name);
                    }
                }
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some(call) = self.call(*index) {
                    call.arguments.push_str(arguments);
                }
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::RequestId(id) => self.request_id = Some(id.clone()),
            StreamEvent::Finish(reason) => self.finish = Some(reason.clone()),
        }
    }

    /// The call at `index`, added when new; `None` past [`MAX_STREAMED_TOOL_CALLS`].
    fn call(&mut self, index: usize) -> Option<&mut PartialCall> {
        // Calls arrive in order, so the one sought is almost always the last.
        match self.calls.iter().rposition(|(i, _)| *i == index) {
            Some(at) => Some(&mut self.calls[at].1),
            None if self.calls.len() >= MAX_STREAMED_TOOL_CALLS => {
                self.too_many_calls = true;
                None
            }
            None => {
                self.calls.push((index, PartialCall::default()));
                self.calls.last_mut().map(|(_, c)| c)
            }
        }
    }

    /// The text received so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether a [`StreamEvent::Finish`] arrived.
    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// The assembled response; an error when the stream never finished or a tool call has no
    /// name.
    pub fn finish(self, provider: &str) -> Result<ModelResponse, ModelError> {
        let Some(finish_reason) = self.finish else {
            return Err(ModelError::cut_stream(provider));
        };
        if self.too_many_calls {
            return Err(ModelError::new(
                ModelErrorKind::Stream,
                provider,
                format!("the streamed reply names more than {MAX_STREAMED_TOOL_CALLS} tool calls"),
            ));
        }
        let mut calls = self.calls;
        calls.sort_by_key(|(index, _)| *index);
        let mut tool_calls = Vec::with_capacity(calls.len());
        for (i, (_, c)) in calls.into_iter().enumerate() {
            if c.name.is_empty() {
                return Err(ModelError::new(
                    ModelErrorKind::Stream,
                    provider,
                    format!("streamed tool call #{i} has no name"),
                ));
            }
            let id = if c.id.is_empty() { format!("call_{}", i + 1) } else { c.id };
            tool_calls.push(ToolCall { id, name: c.name, arguments: c.arguments });
        }
        Ok(ModelResponse {
            text: self.text.into(),
            tool_calls,
            reasoning: self.reasoning,
            usage: self.usage,
            finish_reason,
            model: None,
            request_id: self.request_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_and_accumulate_round_trip() -> Result<(), ModelError> {
        let response = ModelResponse {
            text: "hi".into(),
            tool_calls: vec![ToolCall::new("a", "add", r#"{"a":1}"#), ToolCall::new("b", "mul", "{}")],
            usage: Usage::new(3, 4),
            finish_reason: FinishReason::ToolCalls,
            ..ModelResponse::default()
        };
        let mut acc = ResponseAccumulator::new();
        for e in StreamEvent::replay(response.clone()) {
            acc.push(&e);
        }
        assert_eq!(acc.finish("test")?, response);
        Ok(())
    }

    #[test]
    fn argument_deltas_assemble_per_index_in_any_order() -> Result<(), ModelError> {
        let mut acc = ResponseAccumulator::new();
        for e in [
            StreamEvent::ToolCallStart { index: 1, id: "b".into(), name: "g".into() },
            StreamEvent::ToolCallStart { index: 0, id: "a".into(), name: "f".into() },
            StreamEvent::ToolCallDelta { index: 1, arguments: "{\"y\":".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "{}".into() },
            StreamEvent::ToolCallDelta { index: 1, arguments: "2}".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
        ] {
            acc.push(&e);
        }
        let r = acc.finish("test")?;
        assert_eq!(r.tool_calls[0], ToolCall::new("a", "f", "{}"));
        assert_eq!(r.tool_calls[1], ToolCall::new("b", "g", "{\"y\":2}"));
        Ok(())
    }

    #[test]
    fn indices_from_the_network_size_nothing() -> Result<(), ModelError> {
        let mut acc = ResponseAccumulator::new();
        for e in [
            StreamEvent::ToolCallStart { index: usize::MAX, id: String::new(), name: "late".into() },
            StreamEvent::ToolCallStart { index: 7, id: "x".into(), name: "early".into() },
            StreamEvent::ToolCallDelta { index: usize::MAX, arguments: "{}".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
        ] {
            acc.push(&e);
        }
        let r = acc.finish("test")?;
        assert_eq!(r.tool_calls, [ToolCall::new("x", "early", ""), ToolCall::new("call_2", "late", "{}")]);

        let mut acc = ResponseAccumulator::new();
        for index in 0..=MAX_STREAMED_TOOL_CALLS {
            acc.push(&StreamEvent::ToolCallStart { index, id: "i".into(), name: "t".into() });
        }
        acc.push(&StreamEvent::Finish(FinishReason::ToolCalls));
        assert!(acc.finish("test").is_err_and(|e| e.kind() == ModelErrorKind::Stream));
        Ok(())
    }

    #[test]
    fn a_cut_stream_is_a_transient_error() {
        let mut acc = ResponseAccumulator::new();
        acc.push(&StreamEvent::TextDelta("partial".into()));
        let err = acc.finish("test").err();
        assert!(err.is_some_and(|e| e.is_transient() && e.kind() == ModelErrorKind::Stream));
    }
}
