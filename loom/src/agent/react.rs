//! The ReAct loop: call the model, run the tools it asks for, repeat until it answers.

use std::time::Instant;

use futures::StreamExt as _;
use tracing::Instrument as _;

use super::{Agent, RunResult};
use crate::context::RunContext;
use crate::error::{ConfigError, Error, PartialRun, RunError};
use crate::event::EventKind;
use crate::model::{
    Content, Message, Model, ModelError, ModelRequest, ModelResponse, ResponseAccumulator, StreamEvent, ToolCall,
    ToolChoice, ToolResult, Usage,
};
use crate::tool::{ToolSet, dispatch};

/// Runs `agent` on `input` within `ctx`.
pub(crate) async fn run<O>(agent: &Agent<O>, input: Content, ctx: RunContext) -> Result<RunResult<O>, Error> {
    let span = tracing::info_span!(
        "loom.run",
        run_id = %ctx.run_id(),
        agent = agent.name.as_deref().unwrap_or(""),
        user = %ctx.user(),
    );
    let started = Instant::now();
    let outcome = run_inner(agent, input, &ctx, started).instrument(span).await;
    if let Err(e) = &outcome {
        ctx.emit(|| EventKind::Error { message: e.to_string(), transient: e.is_transient() });
    }
    outcome
}

async fn run_inner<O>(
    agent: &Agent<O>,
    input: Content,
    ctx: &RunContext,
    started: Instant,
) -> Result<RunResult<O>, Error> {
    agent.check()?;
    let Some(model) = agent.model.as_deref() else {
        return Err(ConfigError::NoModel { agent: None }.into());
    };
    ctx.emit(|| EventKind::RunStarted {
        name: agent.name.clone(),
        user: ctx.user().clone(),
        session: ctx.session().cloned(),
        parent: ctx.parent(),
    });

    let history = match ctx.session() {
        Some(session) => agent.sessions.load(ctx.user(), session, agent.history_limit).await?,
        None => Vec::new(),
    };
    let mut messages = Vec::with_capacity(history.len() + 4);
    if !agent.instructions.is_empty() {
        messages.push(Message::System { content: agent.instructions.clone() });
    }
    messages.extend(history);
    let input_index = messages.len();
    messages.push(Message::User { content: input });

    let mut usage = Usage::default();
    let mut turns: u32 = 0;
    let mut tool_calls: u32 = 0;
    let tool_choice = ToolChoice::Auto;

    let text = loop {
        if turns == agent.max_turns {
            return Err(RunError::MaxTurnsExceeded {
                max_turns: agent.max_turns,
                partial: Box::new(PartialRun { run_id: ctx.run_id(), messages, usage, turns, tool_calls }),
            }
            .into());
        }
        turns += 1;
        let request = ModelRequest::new(&messages)
            .with_tools(agent.tools.definitions())
            .with_tool_choice(&tool_choice)
            .with_settings(&agent.settings);
        let response = call_model(model, &request, ctx, turns).await?;
        usage += response.usage;

        if response.tool_calls.is_empty() {
            let text = response.text.clone();
            messages.push(response.into_message());
            break text;
        }
        tool_calls += response.tool_calls.len() as u32;
        messages.push(response.into_message());
        let calls = messages.last().map(Message::tool_calls).unwrap_or(&[]);
        let results = run_tools(&agent.tools, ctx, calls).await;
        messages.extend(results.into_iter().map(Message::Tool));
    };

    if let Some(session) = ctx.session() {
        agent.sessions.append(ctx.user(), session, &messages[input_index..]).await?;
    }
    let duration = started.elapsed();
    ctx.emit(|| EventKind::RunFinished { turns, tool_calls, usage, duration });
    Ok(RunResult {
        output: (agent.output.finish)(text),
        messages,
        usage,
        turns,
        tool_calls,
        run_id: ctx.run_id(),
        user: ctx.user().clone(),
        session: ctx.session().cloned(),
        duration,
        input_index,
    })
}

/// One model call: events, a span, and streaming when the run is streamed.
pub(crate) async fn call_model(
    model: &dyn Model,
    request: &ModelRequest<'_>,
    ctx: &RunContext,
    turn: u32,
) -> Result<ModelResponse, ModelError> {
    ctx.emit(|| EventKind::ModelRequest {
        turn,
        model: model.name().to_owned(),
        messages: request.messages.len(),
        tools: request.tools.len(),
    });
    let span = tracing::info_span!("loom.model", model = model.name(), turn);
    let started = ctx.is_observed().then(Instant::now);
    let response = if ctx.streaming {
        stream_model(model, request, ctx, turn).instrument(span).await?
    } else {
        model.complete(request).instrument(span).await?
    };
    if let Some(started) = started {
        ctx.emit(|| EventKind::ModelResponse {
            turn,
            usage: response.usage,
            finish_reason: response.finish_reason.clone(),
            tool_calls: response.tool_calls.len(),
            duration: started.elapsed(),
        });
    }
    Ok(response)
}

async fn stream_model(
    model: &dyn Model,
    request: &ModelRequest<'_>,
    ctx: &RunContext,
    turn: u32,
) -> Result<ModelResponse, ModelError> {
    let mut stream = model.stream(request);
    let mut acc = ResponseAccumulator::new();
    while let Some(event) = stream.next().await {
        let event = event?;
        if let StreamEvent::TextDelta(text) = &event {
            ctx.emit(|| EventKind::TextDelta { turn, text: text.clone() });
        }
        acc.push(&event);
    }
    acc.finish(model.name())
}

/// Runs the calls of one turn concurrently on this task; results come back in call order.
pub(crate) async fn run_tools(tools: &ToolSet, ctx: &RunContext, calls: &[ToolCall]) -> Vec<ToolResult> {
    match calls {
        [] => Vec::new(),
        [one] => vec![dispatch(tools, ctx, one).await],
        many => futures::future::join_all(many.iter().map(|call| dispatch(tools, ctx, call))).await,
    }
}
