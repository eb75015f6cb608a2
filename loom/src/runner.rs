//! Running anything runnable (an agent, a workflow): the run builder and the event stream.

use std::fmt;
use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::context::{Metadata, RunContext};
use crate::error::{ConfigError, Error};
use crate::event::{EventListener, RunEvent};
use crate::id::{IdError, RunId, SessionId, UserId};

mod sealed {
    pub trait Sealed {}
}

pub(crate) use sealed::Sealed;

/// Something that runs with a [`RunContext`]: an [`Agent`](crate::Agent) or a
/// [`Workflow`](crate::workflow::Workflow). Its runs are set up with a [`RunBuilder`].
pub trait Runnable: Send + Sync + Sealed {
    /// What a run takes.
    type Input: Send;
    /// What a finished run returns.
    type Output: Send;

    #[doc(hidden)]
    /// Adds the runnable's own state and listeners to a new run's context.
    fn __prepare(&self, ctx: RunContext) -> RunContext;

    #[doc(hidden)]
    /// Runs.
    fn __execute<'a>(
        &'a self,
        input: Self::Input,
        ctx: RunContext,
    ) -> impl Future<Output = Result<Self::Output, Error>> + Send + 'a;
}

/// One run, being set up: set the user, the session, metadata and listeners, then `.await`
/// it, or call [`stream`](RunBuilder::stream) to watch its events as it goes.
#[must_use = "a run does nothing until it is awaited or streamed"]
pub struct RunBuilder<'a, R: Runnable> {
    target: &'a R,
    input: R::Input,
    user: Option<Result<UserId, IdError>>,
    session: Option<Result<SessionId, IdError>>,
    metadata: Metadata,
    parent: Option<&'a RunContext>,
    listeners: Vec<Arc<dyn EventListener>>,
    run_id: Option<RunId>,
}

impl<R: Runnable> fmt::Debug for RunBuilder<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunBuilder")
            .field("user", &self.user)
            .field("session", &self.session)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl<'a, R: Runnable> RunBuilder<'a, R> {
    pub(crate) fn new(target: &'a R, input: R::Input) -> Self {
        Self {
            target,
            input,
            user: None,
            session: None,
            metadata: Metadata::default(),
            parent: None,
            listeners: Vec::new(),
            run_id: None,
        }
    }

    /// Gives a new run this id instead of a generated one (the HTTP server names a run before
    /// it starts); a resumed run keeps the id it resumes.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    pub(crate) fn with_run_id(mut self, run_id: RunId) -> Self {
        self.run_id = Some(run_id);
        self
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
    /// its `RunStarted` event names the parent.
    pub fn within(mut self, parent: &'a RunContext) -> Self {
        self.parent = Some(parent);
        self
    }

    /// The context the run will have, and its input.
    pub(crate) fn into_parts(self) -> Result<(&'a R, R::Input, RunContext), Error> {
        let mut ctx = match self.parent {
            Some(parent) => parent.child(),
            None => RunContext::new(UserId::anonymous()),
        };
        if let Some(run_id) = self.run_id {
            ctx = ctx.with_run_id(run_id);
        }
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
        let mut ctx = self.target.__prepare(ctx);
        for l in self.listeners {
            ctx.emitter.add(l);
        }
        Ok((self.target, self.input, ctx))
    }
}

impl<'a, R: Runnable> RunBuilder<'a, R>
where
    R::Input: 'a,
    R::Output: 'a,
{
    /// Runs and streams the run's events as they happen, text deltas included.
    ///
    /// The stream ends after the run's last event; then [`RunStream::result`] holds the
    /// outcome. Dropping the stream cancels the run.
    pub fn stream(self) -> RunStream<'a, R::Output> {
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = move |event: RunEvent| {
            // The receiver is gone only when the stream was dropped, which cancels the run.
            let _ = tx.send(event);
        };
        let run = self.on_event(listener);
        let future = Box::pin(async move {
            let (target, input, mut ctx) = run.into_parts()?;
            ctx.streaming = true;
            let governed = ctx.governed().cloned();
            let outcome = target.__execute(input, ctx).await;
            match governed {
                Some(g) => audited(g, outcome).await,
                None => outcome,
            }
        });
        RunStream { events: rx, run: Some(future), result: None }
    }
}

impl<'a, R: Runnable> IntoFuture for RunBuilder<'a, R>
where
    R::Input: 'a,
    R::Output: 'a,
{
    type Output = Result<R::Output, Error>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        // The run's own future goes in the box as it is: no wrapper around it to move.
        match self.into_parts() {
            // A governed run ends once its audit trail is written.
            #[cfg(feature = "audit")]
            Ok((target, input, ctx)) if ctx.governed().is_some_and(|g| g.trail.is_some()) => {
                let governed = ctx.governed().cloned();
                Box::pin(async move {
                    let outcome = target.__execute(input, ctx).await;
                    match governed {
                        Some(g) => audited(g, outcome).await,
                        None => outcome,
                    }
                })
            }
            Ok((target, input, ctx)) => Box::pin(target.__execute(input, ctx)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// `outcome`, once the run's audit trail is written (an error when it cannot be).
async fn audited<T>(governed: Arc<crate::governance::hook::Governed>, outcome: Result<T, Error>) -> Result<T, Error> {
    let flushed = governed.end_audit().await;
    match (outcome, flushed) {
        (Ok(_), Err(e)) => Err(e),
        (outcome, _) => outcome,
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
pub struct RunStream<'a, T> {
    events: mpsc::UnboundedReceiver<RunEvent>,
    run: Option<BoxFuture<'a, Result<T, Error>>>,
    result: Option<Result<T, Error>>,
}

impl<T> fmt::Debug for RunStream<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunStream").field("running", &self.run.is_some()).finish_non_exhaustive()
    }
}

impl<T> RunStream<'_, T> {
    /// The outcome, once the stream has ended.
    pub fn result(&self) -> Option<&Result<T, Error>> {
        self.result.as_ref()
    }

    /// The outcome; call it after the stream has ended. Before that, it is a
    /// [`ConfigError`] saying the run has not finished.
    pub fn into_result(self) -> Result<T, Error> {
        self.result.unwrap_or_else(|| {
            Err(Error::Config(ConfigError::InvalidSetting {
                setting: "stream",
                reason: "the run has not finished; read the stream to its end first".to_owned(),
            }))
        })
    }

    /// Reads the rest of the stream and returns the outcome.
    pub async fn finish(mut self) -> Result<T, Error> {
        use futures::StreamExt as _;
        while self.next().await.is_some() {}
        self.into_result()
    }
}

// The result is never pinned: only the boxed run future is polled, and it is pinned on the
// heap.
impl<T> Unpin for RunStream<'_, T> {}

impl<T> Stream for RunStream<'_, T> {
    type Item = RunEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RunEvent>> {
        let this = self.get_mut();
        loop {
            if let Poll::Ready(Some(event)) = this.events.poll_recv(cx) {
                return Poll::Ready(Some(event));
            }
            match this.run.as_mut() {
                Some(run) => match run.as_mut().poll(cx) {
                    Poll::Ready(result) => {
                        this.result = Some(result);
                        this.run = None;
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
