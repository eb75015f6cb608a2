//! Running an agent: the run builder, its result, and its event stream.

use std::fmt;
use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::Agent;
use crate::context::{Metadata, RunContext};
use crate::error::{ConfigError, Error};
use crate::event::{EventListener, RunEvent};
use crate::id::{IdError, RunId, SessionId, UserId};
use crate::model::{Content, Message, Usage};

/// The outcome of a finished run.
#[derive(Clone)]
#[non_exhaustive]
pub struct RunResult<O = String> {
    /// The answer: the final text, or the typed value for an agent with a typed output.
    pub output: O,
    /// The whole conversation of the run: instructions, history, input, every model turn and
    /// tool result.
    pub messages: Vec<Message>,
    /// Tokens used, summed over every model call.
    pub usage: Usage,
    /// Model calls made.
    pub turns: u32,
    /// Tool calls made.
    pub tool_calls: u32,
    /// The run's id.
    pub run_id: RunId,
    /// Who the run was for.
    pub user: UserId,
    /// The session it continued, if any.
    pub session: Option<SessionId>,
    /// How long it took.
    pub duration: Duration,
    /// Index in `messages` of the run's input message.
    pub(crate) input_index: usize,
}

impl<O> RunResult<O> {
    /// The text of the model's final answer (for a typed output, the text it was parsed from).
    pub fn text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::Assistant { content: Content::Text(t), .. } => Some(t.as_str()),
                _ => None,
            })
            .unwrap_or("")
    }

    /// The messages this run added to the conversation (its input and everything after).
    pub fn new_messages(&self) -> &[Message] {
        self.messages.get(self.input_index..).unwrap_or(&[])
    }

    /// The result with its output mapped.
    pub fn map<P>(self, f: impl FnOnce(O) -> P) -> RunResult<P> {
        RunResult {
            output: f(self.output),
            messages: self.messages,
            usage: self.usage,
            turns: self.turns,
            tool_calls: self.tool_calls,
            run_id: self.run_id,
            user: self.user,
            session: self.session,
            duration: self.duration,
            input_index: self.input_index,
        }
    }
}

impl<O: fmt::Debug> fmt::Debug for RunResult<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunResult")
            .field("output", &self.output)
            .field("messages", &self.messages.len())
            .field("usage", &self.usage)
            .field("turns", &self.turns)
            .field("tool_calls", &self.tool_calls)
            .field("run_id", &self.run_id)
            .field("user", &self.user)
            .field("session", &self.session)
            .field("duration", &self.duration)
            .finish()
    }
}

/// One run of an agent, being set up. `.await` it to run it; call
/// [`stream`](RunBuilder::stream) to watch its events instead.
#[must_use = "a run does nothing until it is awaited or streamed"]
pub struct RunBuilder<'a, O> {
    agent: &'a Agent<O>,
    input: Content,
    user: Option<Result<UserId, IdError>>,
    session: Option<Result<SessionId, IdError>>,
    metadata: Metadata,
    parent: Option<&'a RunContext>,
    listeners: Vec<Arc<dyn EventListener>>,
}

impl<'a, O> RunBuilder<'a, O> {
    pub(super) fn new(agent: &'a Agent<O>, input: Content) -> Self {
        Self {
            agent,
            input,
            user: None,
            session: None,
            metadata: Metadata::default(),
            parent: None,
            listeners: Vec::new(),
        }
    }

    /// Runs for this user: the partition of sessions and every store.
    pub fn user<U>(mut self, user: U) -> Self
    where
        U: TryInto<UserId>,
        U::Error: Into<IdError>,
    {
        self.user = Some(user.try_into().map_err(Into::into));
        self
    }

    /// Continues this conversation: the run sees the session's history and adds to it.
    pub fn session<S>(mut self, session: S) -> Self
    where
        S: TryInto<SessionId>,
        S::Error: Into<IdError>,
    {
        self.session = Some(session.try_into().map_err(Into::into));
        self
    }

    /// Attaches a metadata entry to the run.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key, value);
        self
    }

    /// Sends this run's events to `listener` as well.
    pub fn on_event(mut self, listener: impl EventListener) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Runs nested in `parent` (a workflow node, a tool): the run takes the parent's user,
    /// session, metadata, state and listeners unless set here, gets a run id of its own, and
    /// its events carry the parent's run id as their parent.
    pub fn within(mut self, parent: &'a RunContext) -> Self {
        self.parent = Some(parent);
        self
    }

    pub(crate) fn into_context(self) -> Result<(&'a Agent<O>, Content, RunContext), Error> {
        let base = match self.parent {
            Some(parent) => parent.child(),
            None => RunContext::new(UserId::anonymous()),
        };
        let mut ctx = base;
        if let Some(user) = self.user {
            ctx = ctx.with_user(user.map_err(ConfigError::from)?);
        }
        if let Some(session) = self.session {
            ctx = ctx.with_session(Some(session.map_err(ConfigError::from)?));
        }
        if !self.metadata.is_empty() {
            let mut merged = ctx.metadata().clone();
            for (k, v) in self.metadata.iter() {
                merged.insert(k, v.clone());
            }
            ctx = ctx.with_metadata(merged);
        }
        ctx = ctx.with_agent_extensions(&self.agent.extensions);
        ctx.emitter.extend(&self.agent.emitter);
        for l in self.listeners {
            ctx.emitter.add(l);
        }
        Ok((self.agent, self.input, ctx))
    }
}

impl<'a, O: Send + 'a> RunBuilder<'a, O> {
    /// Runs and streams the run's events as they happen, text deltas included.
    ///
    /// The stream ends after the run's last event; then [`RunStream::result`] holds the
    /// outcome. Dropping the stream cancels the run.
    pub fn stream(self) -> RunStream<'a, O> {
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = move |event: RunEvent| {
            // The receiver is gone only when the stream was dropped, which cancels the run.
            let _ = tx.send(event);
        };
        let run = self.on_event(listener);
        let future = Box::pin(async move {
            let (agent, input, mut ctx) = run.into_context()?;
            ctx.streaming = true;
            super::react::run(agent, input, ctx).await
        });
        RunStream { events: rx, run: Some(future), result: None }
    }
}

impl<'a, O: Send + 'a> IntoFuture for RunBuilder<'a, O> {
    type Output = Result<RunResult<O>, Error>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (agent, input, ctx) = self.into_context()?;
            super::react::run(agent, input, ctx).await
        })
    }
}

/// The events of a run as it happens. It ends after the run's last event, after which
/// [`result`](RunStream::result) holds the outcome. Dropping it cancels the run.
///
/// ```
/// use futures::StreamExt;
/// use loomflow::prelude::*;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let agent = Agent::new("Be brief.").model("echo");
/// let mut stream = agent.run("hello world").stream();
/// let mut text = String::new();
/// while let Some(event) = stream.next().await {
///     if let EventKind::TextDelta { text: delta, .. } = event.kind {
///         text.push_str(&delta);
///     }
/// }
/// assert_eq!(text, "Echo: hello world");
/// assert_eq!(stream.into_result()?.output, "Echo: hello world");
/// # Ok::<(), loomflow::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RunStream<'a, O> {
    events: mpsc::UnboundedReceiver<RunEvent>,
    run: Option<BoxFuture<'a, Result<RunResult<O>, Error>>>,
    result: Option<Result<RunResult<O>, Error>>,
}

impl<O> fmt::Debug for RunStream<'_, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunStream").field("running", &self.run.is_some()).finish_non_exhaustive()
    }
}

impl<O> RunStream<'_, O> {
    /// The outcome, once the stream has ended.
    pub fn result(&self) -> Option<&Result<RunResult<O>, Error>> {
        self.result.as_ref()
    }

    /// The outcome; call after the stream has ended. Before that, it is a
    /// [`RunError`](crate::RunError)-free [`ConfigError`] saying the run has not finished.
    pub fn into_result(self) -> Result<RunResult<O>, Error> {
        self.result.unwrap_or_else(|| {
            Err(Error::Config(ConfigError::InvalidSetting {
                setting: "stream",
                reason: "the run has not finished; read the stream to its end first".to_owned(),
            }))
        })
    }

    /// Reads the rest of the stream and returns the outcome.
    pub async fn finish(mut self) -> Result<RunResult<O>, Error> {
        use futures::StreamExt as _;
        while self.next().await.is_some() {}
        self.into_result()
    }
}

// The result is never pinned: only the boxed run future is polled, and it is pinned on the
// heap.
impl<O> Unpin for RunStream<'_, O> {}

impl<O> Stream for RunStream<'_, O> {
    type Item = RunEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RunEvent>> {
        let this = &mut *self;
        loop {
            if let Poll::Ready(Some(event)) = this.events.poll_recv(cx) {
                return Poll::Ready(Some(event));
            }
            match this.run.as_mut() {
                Some(run) => match run.as_mut().poll(cx) {
                    Poll::Ready(result) => {
                        this.result = Some(result);
                        this.run = None;
                        // Drain what the run emitted before it finished.
                    }
                    Poll::Pending => return Poll::Pending,
                },
                // The run is over: hand out what it emitted, then end, even if a tool kept a
                // clone of the context (and with it the sender) alive.
                None => return Poll::Ready(this.events.try_recv().ok()),
            }
        }
    }
}
