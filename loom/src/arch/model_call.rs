//! One model call of a run, the way every architecture makes it: events before and after, a
//! span, streaming to the run's listeners, retries by the policy and the fallbacks in order.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt as _;
use tracing::Instrument as _;

use crate::context::RunContext;
use crate::event::EventKind;
use crate::model::{
    Model, ModelError, ModelRequest, ModelResponse, ResponseAccumulator, RetryDecision, RetryPolicy, StreamEvent,
    pricing,
};
use crate::output::{self, FINAL_ANSWER_TOOL};
use crate::telemetry::genai;

/// A response and what it cost.
pub(crate) fn priced(model: &dyn Model, response: ModelResponse) -> (ModelResponse, Option<f64>) {
    let cost = pricing::cost(response.model.as_deref().unwrap_or(model.name()), &response.usage);
    (response, cost)
}

/// What a streamed reply shows as it arrives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Partial {
    /// Nothing: a role's call, not the run's answer.
    None,
    /// Its text, as text deltas (a text answer).
    Visible,
    /// Its text, and the typed value in it as it fills in.
    Text,
    /// Its text, and the typed value in the arguments of the `final_answer` call.
    FinalAnswerTool,
}

/// One model call's place in the run.
#[derive(Clone, Copy)]
pub(crate) struct Step<'a> {
    pub(crate) ctx: &'a RunContext,
    pub(crate) turn: u32,
    pub(crate) role: &'a str,
    pub(crate) partial: Partial,
}

/// The models of a run: the primary, its fallbacks, and the retry policy.
pub(crate) struct Models<'a> {
    pub(crate) primary: &'a dyn Model,
    pub(crate) fallbacks: &'a [Arc<dyn Model>],
    pub(crate) retry: &'a RetryPolicy,
}

/// One model call: events, a span, streaming when the run is streamed, retries and fallbacks.
pub(crate) async fn call_model(
    models: &Models<'_>,
    request: &ModelRequest<'_>,
    step: Step<'_>,
) -> Result<(ModelResponse, Option<f64>), ModelError> {
    let failure = match call_once(models.primary, request, step).await {
        Ok(response) => return Ok(priced(models.primary, response)),
        Err(failure) => failure,
    };
    // Retries and fallbacks, boxed: the future of a call that succeeds stays small.
    Box::pin(recover(models, request, step, failure)).await
}

/// After a failed first attempt: retries by the policy, then the fallbacks in order.
async fn recover(
    models: &Models<'_>,
    request: &ModelRequest<'_>,
    step: Step<'_>,
    first: (ModelError, bool),
) -> Result<(ModelResponse, Option<f64>), ModelError> {
    let (ctx, turn) = (step.ctx, step.turn);
    let mut fallbacks = models.fallbacks.iter();
    let mut model = models.primary;
    let mut failure = Some(first);
    loop {
        let mut attempt = 1;
        let error = loop {
            let outcome = match failure.take() {
                Some(failure) => Err(failure),
                None => call_once(model, request, step).await,
            };
            match outcome {
                Ok(response) => return Ok(priced(model, response)),
                Err((error, emitted)) => {
                    // A stream that already showed text is not restarted behind the
                    // listener's back.
                    let decision = if emitted { RetryDecision::Stop } else { models.retry.decide(attempt, &error) };
                    let delay = match decision {
                        RetryDecision::Retry(delay) => delay,
                        RetryDecision::WaitTooLong(wait) => {
                            break (models.retry.wait_too_long(error, wait), emitted);
                        }
                        _ => break (error, emitted),
                    };
                    tracing::debug!(model = model.name(), attempt, ?delay, "retrying: {error}");
                    ctx.emit(|| EventKind::ModelRetry { turn, attempt, delay, error: error.to_string() });
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        };
        let (error, emitted) = error;
        match fallbacks.next() {
            Some(next) if error.is_transient() && !emitted => {
                tracing::warn!(from = model.name(), to = next.name(), "falling back: {error}");
                ctx.emit(|| EventKind::ModelFallback {
                    turn,
                    from: model.name().to_owned(),
                    to: next.name().to_owned(),
                    error: error.to_string(),
                });
                model = &**next;
            }
            _ => return Err(error),
        }
    }
}

/// One attempt; on failure, also whether the stream had already emitted text.
async fn call_once(
    model: &dyn Model,
    request: &ModelRequest<'_>,
    step: Step<'_>,
) -> Result<ModelResponse, (ModelError, bool)> {
    let (ctx, turn) = (step.ctx, step.turn);
    ctx.emit(|| EventKind::ModelRequest {
        turn,
        model: model.name().to_owned(),
        messages: request.messages.len(),
        tools: request.tools.len(),
        role: Arc::from(step.role),
    });
    // The GenAI conventions' names and attributes (`telemetry::genai`), evaluated only when a
    // subscriber enables the span.
    let settings = request.settings;
    let span = tracing::info_span!(
        "loom.model",
        otel.name = %genai::SpanName("chat", Some(model.name())),
        otel.kind = "client",
        model = model.name(),
        turn,
        role = step.role,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = genai::provider_name(model.name()),
        gen_ai.request.model = model.name(),
        gen_ai.request.temperature = settings.temperature,
        gen_ai.request.top_p = settings.top_p,
        gen_ai.request.max_tokens = settings.max_tokens.map(i64::from),
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.response.id = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        gen_ai.usage.cache_read.input_tokens = tracing::field::Empty,
        gen_ai.usage.cache_creation.input_tokens = tracing::field::Empty,
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    genai::chat_started(&span, request);
    let started = ctx.is_observed().then(Instant::now);
    let outcome = if ctx.streaming {
        Box::pin(stream_model(model, request, step)).instrument(span.clone()).await
    } else {
        model.complete(request).instrument(span.clone()).await.map_err(|e| (e, false))
    };
    genai::chat_finished(&span, ctx, outcome.as_ref().map_err(|(e, _)| e));
    let response = outcome?;
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
    step: Step<'_>,
) -> Result<ModelResponse, (ModelError, bool)> {
    let (ctx, turn, partial) = (step.ctx, step.turn, step.partial);
    let mut stream = model.stream(request);
    let mut emitted = false;
    let mut acc = ResponseAccumulator::new();
    let mut final_index = None;
    let mut final_arguments = String::new();
    let mut partial_json = output::PartialJson::default();
    while let Some(event) = stream.next().await {
        let event = event.map_err(|e| (e, emitted))?;
        let grown = match &event {
            StreamEvent::TextDelta(text) if partial != Partial::None => {
                emitted = true;
                ctx.emit(|| EventKind::TextDelta { turn, text: text.clone() });
                partial == Partial::Text
            }
            StreamEvent::ToolCallStart { index, name, .. } if name == FINAL_ANSWER_TOOL => {
                final_index = Some(*index);
                false
            }
            StreamEvent::ToolCallDelta { index, arguments } if Some(*index) == final_index => {
                final_arguments.push_str(arguments);
                partial == Partial::FinalAnswerTool
            }
            _ => false,
        };
        acc.push(&event);
        if grown {
            let so_far = if partial == Partial::Text { acc.text() } else { final_arguments.as_str() };
            if let Some(value) = partial_json.update(so_far) {
                // A partial value shown is output shown, as text is: the stream is not restarted.
                emitted = true;
                ctx.emit(|| EventKind::PartialOutput { turn, value });
            }
        }
    }
    acc.finish(model.name()).map_err(|e| (e, emitted))
}
