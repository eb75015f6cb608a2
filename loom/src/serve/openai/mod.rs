//! The OpenAI-compatible face: `POST /v1/chat/completions` (whole or streamed) and
//! `GET /v1/models`.

pub(crate) mod request;
pub(crate) mod response;

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use futures::Stream;
use futures::future::BoxFuture;
use http::{HeaderValue, StatusCode};
use tokio::time::Sleep;

use self::request::{ChatRequest, check_tool_choice, conversation};
use self::response::{Chunks, DONE, error_chunk};
use super::Shared;
use super::body;
use super::error::ApiError;
use super::runs::{RunEntry, Status, now_secs};
use super::target::{Answer, Job, JobInput, Overrides};
use crate::error::{Error, RunError};
use crate::event::{EventKind, RunEvent};
use crate::id::{RunId, SessionId};

/// The header that names the session a request continues.
pub const SESSION_HEADER: &str = "x-loom-session";

/// The header of a chat completion's response that names its run.
pub const RUN_HEADER: &str = "x-loom-run";

/// `GET /v1/models`: the served names, made once.
pub(crate) async fn models(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if let Err(e) = shared.auth.user(request.headers()).await {
        return e.into_response();
    }
    body::json_bytes(StatusCode::OK, shared.models.clone())
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match chat_inner(&shared, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn chat_inner(shared: &Arc<Shared>, request: Request) -> Result<Response, ApiError> {
    if shared.is_draining() {
        return Err(ApiError::shutting_down());
    }
    let (parts, body) = request.into_parts();
    let identity = shared.auth.identify(&parts.headers).await?;
    let bytes = body::read(&parts.headers, body, shared.max_body).await?;
    let req: ChatRequest<'_> =
        serde_json::from_slice(&bytes).map_err(|e| body::invalid_json::<ChatRequest<'_>>(&bytes, &e))?;
    let user = identity.resolve(req.user.as_deref())?;

    let Some(model) = req.model.as_deref() else {
        return Err(ApiError::invalid_param("model", "`model` is required: one of the names in `GET /v1/models`"));
    };
    let Some((name, target)) = shared.target(model) else {
        return Err(ApiError::unknown_model(model, &shared.names));
    };
    if req.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid_param("n", "this server answers one choice per request; send `n` as 1"));
    }
    check_tool_choice(req.tool_choice.as_ref())?;
    let session =
        match parts.headers.get(SESSION_HEADER) {
            None => None,
            Some(value) => {
                Some(value.to_str().ok().and_then(|s| SessionId::new(s).ok()).ok_or_else(|| {
                    ApiError::bad_request(format!("the `{SESSION_HEADER}` header is not a session id"))
                })?)
            }
        };
    let messages = req.messages.as_deref().unwrap_or_default();
    let conversation = conversation(messages, session.is_none())?;
    let overrides = Overrides {
        temperature: req.temperature,
        max_tokens: req.max_completion_tokens.or(req.max_tokens).map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
    };
    let metadata = req.metadata.map(|m| m.into_iter().collect()).unwrap_or_default();
    let run_id = RunId::generate();
    let job = Job {
        input: JobInput::Message { text: conversation.input, history: conversation.history },
        user: user.clone(),
        session: session.clone(),
        metadata,
        overrides,
        run_id,
    };
    let created = now_secs();
    let paused = || Paused {
        shared: Arc::clone(shared),
        target: Arc::clone(name),
        user: user.clone(),
        session: session.clone(),
    };

    if req.stream == Some(true) {
        let include_usage = req.stream_options.and_then(|o| o.include_usage).unwrap_or(false);
        let chunks = Chunks::new(run_id, created, name, include_usage);
        let mut stream = ChatStream::new(Arc::clone(target), job, chunks, shared.timeout, paused());
        // Until the run has started, a failure is answered with its status code.
        if let Err(e) = std::future::poll_fn(|cx| stream.poll_start(cx)).await {
            return Err(paused().note(e));
        }
        let mut response = body::event_stream(Body::from_stream(stream));
        response.headers_mut().insert(RUN_HEADER, run_header(run_id));
        return Ok(response);
    }

    let outcome = tokio::time::timeout(shared.timeout, Arc::clone(target).run(job, None))
        .await
        .map_err(|_| ApiError::timeout(shared.timeout))?;
    let answer = outcome.map_err(|e| paused().note(e))?;
    let json = response::completion(answer.run_id, created, name, &answer.text, &answer.usage);
    let mut response = body::json_bytes(StatusCode::OK, json);
    response.headers_mut().insert(RUN_HEADER, run_header(answer.run_id));
    Ok(response)
}

fn run_header(id: RunId) -> HeaderValue {
    // A run id is ASCII; the string becomes the header's bytes without a copy.
    HeaderValue::from_maybe_shared(Bytes::from(id.to_string())).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// What a chat completion's run is, should it pause for approval: kept in the run registry
/// then, so that it can be listed, decided and resumed through the native API.
struct Paused {
    shared: Arc<Shared>,
    target: Arc<str>,
    user: crate::id::UserId,
    session: Option<SessionId>,
}

impl Paused {
    fn note(self, error: Error) -> ApiError {
        let api = ApiError::from_run(&error);
        if let Error::Run(RunError::ApprovalPending { request }) = error {
            let entry = RunEntry::new(
                request.run_id,
                self.user,
                self.target,
                request.session.clone().or(self.session),
                Status::WaitingApproval(request),
                self.shared.runs.buffer,
            );
            // A registry that is full only loses the listing here: the journal still has the run.
            let _ = self.shared.runs.insert(Arc::new(entry));
        }
        api
    }
}

/// What the run's sink hands the stream: text as it is written, and whether the run started.
#[derive(Default)]
struct Inbox {
    started: bool,
    text: Vec<String>,
}

/// A streamed completion: the run is polled here, on the connection's task (no task of its
/// own); dropping the body (the client went away) cancels it.
struct ChatStream {
    run: Option<BoxFuture<'static, Result<Answer, Error>>>,
    /// Where a run that pauses for approval is noted.
    paused: Option<Paused>,
    inbox: Arc<Mutex<Inbox>>,
    /// The inbox's other list of text.
    spare: Vec<String>,
    chunks: Chunks,
    deadline: Pin<Box<Sleep>>,
    timeout: std::time::Duration,
    /// Lines ready to go.
    out: std::collections::VecDeque<Bytes>,
    outcome: Option<Result<Answer, ApiError>>,
    streamed: bool,
    done: bool,
}

impl ChatStream {
    fn new(
        target: Arc<dyn super::target::Served>,
        job: Job,
        chunks: Chunks,
        timeout: std::time::Duration,
        paused: Paused,
    ) -> Self {
        let run_id = job.run_id;
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let sink_inbox = Arc::clone(&inbox);
        // Only the run's own events: text of nested runs (team members, a workflow's agents)
        // is not the answer.
        let sink = move |event: RunEvent| {
            if event.run_id != run_id {
                return;
            }
            let mut inbox = sink_inbox.lock().unwrap_or_else(PoisonError::into_inner);
            match event.kind {
                EventKind::TextDelta { text, .. } if !text.is_empty() => inbox.text.push(text),
                EventKind::RunStarted { .. } => inbox.started = true,
                _ => {}
            }
        };
        let run = target.run(job, Some(Box::new(sink)));
        Self {
            run: Some(run),
            paused: Some(paused),
            inbox,
            spare: Vec::new(),
            chunks,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            out: std::collections::VecDeque::new(),
            outcome: None,
            streamed: false,
            done: false,
        }
    }

    /// Polls the run, moving what it wrote into `out` (as one chunk); keeps its outcome.
    fn poll_run(&mut self, cx: &mut Context<'_>) {
        let Some(run) = self.run.as_mut() else { return };
        let polled = run.as_mut().poll(cx);
        self.drain_inbox();
        match polled {
            Poll::Ready(outcome) => {
                self.run = None;
                let paused = self.paused.take();
                self.outcome = Some(outcome.map_err(|e| match paused {
                    Some(paused) => paused.note(e),
                    None => ApiError::from_run(&e),
                }));
            }
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    self.run = None;
                    self.outcome = Some(Err(ApiError::timeout(self.timeout)));
                }
            }
        }
    }

    /// Ready once the run has started (the role chunk is then queued), or failed before it
    /// did (with its error, to answer with its status).
    fn poll_start(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some(run) = self.run.as_mut() else { return Poll::Ready(Ok(())) };
        match run.as_mut().poll(cx) {
            Poll::Ready(Err(e)) => {
                self.run = None;
                self.done = true;
                return Poll::Ready(Err(e));
            }
            Poll::Ready(Ok(answer)) => {
                self.run = None;
                self.out.push_back(self.chunks.role());
                self.drain_inbox();
                self.outcome = Some(Ok(answer));
                return Poll::Ready(Ok(()));
            }
            Poll::Pending => {}
        }
        if self.inbox.lock().unwrap_or_else(PoisonError::into_inner).started {
            self.out.push_back(self.chunks.role());
            self.drain_inbox();
            return Poll::Ready(Ok(()));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.run = None;
            self.done = true;
            return Poll::Ready(Err(RunError::Timeout { timeout: self.timeout }.into()));
        }
        Poll::Pending
    }

    /// Moves the text the run wrote into `out`, as one chunk. The inbox's list is swapped with
    /// a spare one, so neither is allocated again.
    fn drain_inbox(&mut self) {
        std::mem::swap(&mut self.inbox.lock().unwrap_or_else(PoisonError::into_inner).text, &mut self.spare);
        if self.spare.is_empty() {
            return;
        }
        self.streamed = true;
        let chunk = match self.spare.as_slice() {
            [one] => self.chunks.text(one),
            many => self.chunks.text(&many.concat()),
        };
        self.out.push_back(chunk);
        self.spare.clear();
    }

    /// The lines after the run: the answer if nothing was streamed, the stop chunk, the
    /// usage chunk, `[DONE]`; or the error, then `[DONE]`.
    fn finish(&mut self, outcome: Result<Answer, ApiError>) {
        match outcome {
            Ok(answer) => {
                if !self.streamed && !answer.text.is_empty() {
                    self.out.push_back(self.chunks.text(&answer.text));
                }
                self.out.push_back(self.chunks.stop());
                self.out.extend(self.chunks.usage(&answer.usage));
            }
            Err(e) => self.out.push_back(error_chunk(&e)),
        }
        self.out.push_back(Bytes::from_static(DONE));
        self.done = true;
    }
}

impl Stream for ChatStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(line) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(line)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(outcome) = this.outcome.take() {
                this.finish(outcome);
                continue;
            }
            this.poll_run(cx);
            if this.out.is_empty() && this.outcome.is_none() {
                return Poll::Pending;
            }
        }
    }
}
