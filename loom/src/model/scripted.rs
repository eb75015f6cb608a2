//! [`ScriptedModel`]: the test fake that replays a script of turns and records every request.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::echo::word_count;
use super::{
    Capabilities, FinishReason, Message, Model, ModelError, ModelErrorKind, ModelRequest, ModelResponse, ModelSettings,
    ModelStream, ResponseFormat, StreamEvent, ToolCall, ToolChoice, Usage,
};
use crate::tool::ToolDefinition;

/// One scripted reply: text and/or tool calls, or an error.
#[derive(Debug)]
pub struct ScriptedTurn {
    reply: Result<ModelResponse, ModelError>,
    usage_given: bool,
}

impl ScriptedTurn {
    /// A text reply.
    pub fn text(text: impl Into<super::Text>) -> Self {
        Self { reply: Ok(ModelResponse::text(text)), usage_given: false }
    }

    /// A reply that calls `name` with `arguments` (serialised to JSON text).
    ///
    /// The call gets the id `call_<n>`, where `n` counts the calls of this turn from 1.
    pub fn tool_call(name: impl Into<String>, arguments: serde_json::Value) -> Self {
        Self::empty().with_tool_call(name, arguments)
    }

    /// A reply that calls `name` with `arguments` exactly as written, valid JSON or not.
    pub fn raw_tool_call(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self::empty().with_raw_tool_call(name, arguments)
    }

    /// A failed call: the model returns `error`.
    pub fn error(error: ModelError) -> Self {
        Self { reply: Err(error), usage_given: false }
    }

    /// A full response, as given.
    pub fn response(response: ModelResponse) -> Self {
        Self { reply: Ok(response), usage_given: true }
    }

    fn empty() -> Self {
        Self { reply: Ok(ModelResponse::default()), usage_given: false }
    }

    /// Adds a tool call with JSON arguments.
    #[must_use]
    pub fn with_tool_call(self, name: impl Into<String>, arguments: serde_json::Value) -> Self {
        self.with_raw_tool_call(name, arguments.to_string())
    }

    /// Adds a tool call with raw argument text.
    #[must_use]
    pub fn with_raw_tool_call(mut self, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        if let Ok(r) = &mut self.reply {
            let id = format!("call_{}", r.tool_calls.len() + 1);
            r.tool_calls.push(ToolCall::new(id, name, arguments));
            r.finish_reason = FinishReason::ToolCalls;
        }
        self
    }

    /// Adds a tool call as given (id included).
    #[must_use]
    pub fn with_call(mut self, call: ToolCall) -> Self {
        if let Ok(r) = &mut self.reply {
            r.tool_calls.push(call);
            r.finish_reason = FinishReason::ToolCalls;
        }
        self
    }

    /// Sets the text next to the tool calls.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        if let Ok(r) = &mut self.reply {
            r.text = text.into().into();
        }
        self
    }

    /// Sets the usage reported for this turn (by default, words are counted as tokens).
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        if let Ok(r) = &mut self.reply {
            r.usage = usage;
        }
        self.usage_given = true;
        self
    }
}

/// A request as a [`ScriptedModel`] received it (an owned copy).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The conversation sent.
    pub messages: Vec<Message>,
    /// The tools offered.
    pub tools: Vec<ToolDefinition>,
    /// The tool choice.
    pub tool_choice: ToolChoice,
    /// The response format, if one was asked for.
    pub response_format: Option<ResponseFormat>,
    /// The settings.
    pub settings: ModelSettings,
}

impl RecordedRequest {
    fn of(request: &ModelRequest<'_>) -> Self {
        Self {
            messages: request.messages.to_vec(),
            tools: request.tools.to_vec(),
            tool_choice: request.tool_choice.clone(),
            response_format: request.response_format.cloned(),
            settings: request.settings.clone(),
        }
    }

    /// The names of the tools offered.
    pub fn tool_names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// The text of the last message.
    pub fn last_text(&self) -> String {
        self.messages.last().map(|m| m.text().into_owned()).unwrap_or_default()
    }
}

type ScriptFn = dyn Fn(&ModelRequest<'_>) -> ScriptedTurn + Send + Sync;

enum Script {
    Queue(VecDeque<ScriptedTurn>),
    Fn(Arc<ScriptFn>),
}

struct State {
    script: Script,
    requests: Vec<RecordedRequest>,
    served: usize,
}

/// The test fake: replies from a script of [`ScriptedTurn`]s, in order, and records every
/// request it receives so a test can assert on what the framework sent.
///
/// When the script runs out, further calls fail with a [`ModelErrorKind::Script`] error that
/// says how many turns were served. Clones share the script and the recording.
///
/// ```
/// use std::future::IntoFuture as _;
/// use loomflow::prelude::*;
/// use serde_json::json;
///
/// #[tool]
/// /// Add two integers.
/// fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// let model = ScriptedModel::new([
///     ScriptedTurn::tool_call("add", json!({"a": 2, "b": 3})),
///     ScriptedTurn::text("The sum is 5"),
/// ]);
/// let agent = Agent::new("Do sums.").model(model.clone()).tool(AddTool);
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let result = rt.block_on(agent.run("What is 2 + 3?").into_future())?;
/// assert_eq!(result.output, "The sum is 5");
/// // The second request carried the tool result.
/// assert_eq!(model.requests()[1].last_text(), "5");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ScriptedModel {
    name: Arc<str>,
    capabilities: Capabilities,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("ScriptedModel")
            .field("name", &self.name)
            .field("served", &state.served)
            .field("recorded", &state.requests.len())
            .finish_non_exhaustive()
    }
}

impl ScriptedModel {
    /// A model that replies with `turns`, one per call, in order.
    pub fn new(turns: impl IntoIterator<Item = ScriptedTurn>) -> Self {
        Self::with_script(Script::Queue(turns.into_iter().collect()))
    }

    /// A model whose reply is computed from each request by `f` (e.g. to answer differently
    /// when the last message is a tool result).
    pub fn from_fn(f: impl Fn(&ModelRequest<'_>) -> ScriptedTurn + Send + Sync + 'static) -> Self {
        Self::with_script(Script::Fn(Arc::new(f)))
    }

    fn with_script(script: Script) -> Self {
        Self {
            name: Arc::from("scripted"),
            capabilities: Capabilities::default().with_streaming(true),
            state: Arc::new(Mutex::new(State { script, requests: Vec::new(), served: 0 })),
        }
    }

    /// Renames the model (the name appears in events and results).
    #[must_use]
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the capabilities the model reports.
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Appends turns to the script.
    pub fn push(&self, turn: ScriptedTurn) {
        if let Script::Queue(q) = &mut self.lock().script {
            q.push_back(turn);
        }
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// How many calls were made.
    pub fn calls(&self) -> usize {
        self.lock().requests.len()
    }

    /// How many scripted turns are left (`None` for a closure script).
    pub fn remaining(&self) -> Option<usize> {
        match &self.lock().script {
            Script::Queue(q) => Some(q.len()),
            Script::Fn(_) => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters to a test fake; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        let (turn, served) = {
            let mut state = self.lock();
            state.requests.push(RecordedRequest::of(request));
            let turn = match &mut state.script {
                Script::Queue(q) => q.pop_front(),
                Script::Fn(f) => {
                    let f = Arc::clone(f);
                    drop(state);
                    let turn = f(request);
                    state = self.lock();
                    Some(turn)
                }
            };
            if turn.is_some() {
                state.served += 1;
            }
            (turn, state.served)
        };
        let Some(turn) = turn else {
            return Err(ModelError::new(
                ModelErrorKind::Script,
                &*self.name,
                format!("the script is exhausted: all {served} scripted turns were already served"),
            ));
        };
        let mut response = turn.reply?;
        if !turn.usage_given {
            let input: usize = request.messages.iter().map(|m| word_count(&m.text())).sum();
            let output = word_count(&response.text) + response.tool_calls.len();
            response.usage = Usage::new(input as u64, output.max(1) as u64);
        }
        Ok(response)
    }
}

#[async_trait::async_trait]
impl Model for ScriptedModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        self.next(request)
    }

    fn stream<'a>(&'a self, request: &'a ModelRequest<'a>) -> ModelStream<'a> {
        let events: Vec<Result<StreamEvent, ModelError>> = match self.next(request) {
            Err(e) => vec![Err(e)],
            Ok(mut response) => {
                // Stream the text word by word, then the tool calls, then the end.
                let text = std::mem::take(&mut response.text);
                let mut events: Vec<Result<StreamEvent, ModelError>> = Vec::new();
                for word in text.split_inclusive(' ') {
                    events.push(Ok(StreamEvent::TextDelta(word.to_owned())));
                }
                events.extend(StreamEvent::replay(response).into_iter().map(Ok));
                events
            }
        };
        Box::pin(futures::stream::iter(events))
    }
}
