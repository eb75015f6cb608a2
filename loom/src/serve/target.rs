//! What is served: agents and workflows behind one object-safe face, so that a request picks
//! one by name and runs it without knowing its types.

use std::any::Any;
use std::sync::Arc;

use futures::StreamExt as _;
use futures::future::BoxFuture;

use crate::agent::AgentInput;
use crate::error::Error;
use crate::event::RunEvent;
use crate::governance::{Approval, ApprovalRequest};
use crate::id::{RunId, SessionId, UserId};
use crate::model::{Content, Message, Usage};
use crate::runner::RunBuilder;
use crate::session::{SessionStore, Sessions};
use crate::workflow::{Workflow, WorkflowInput};
use crate::{Agent, RunResult};

/// Receives a run's events as they happen (the run is then a streaming run).
pub(crate) type Sink = Box<dyn FnMut(RunEvent) + Send>;

/// How a request wants a run to begin.
pub(crate) enum JobInput {
    /// A new run on this user message, after this history (used only without a session).
    Message { text: Content, history: Vec<Message> },
    /// Resume a journaled run, with decisions for the calls it waits on.
    Resume { run: RunId, decisions: Vec<(String, Approval)> },
}

/// Per-request model settings a chat request may ask for.
#[derive(Clone, Copy, Default, PartialEq)]
pub(crate) struct Overrides {
    pub(crate) temperature: Option<f64>,
    pub(crate) max_tokens: Option<u32>,
}

impl Overrides {
    fn is_empty(&self) -> bool {
        self.temperature.is_none() && self.max_tokens.is_none()
    }
}

/// One run a request asks for.
pub(crate) struct Job {
    pub(crate) input: JobInput,
    pub(crate) user: UserId,
    pub(crate) session: Option<SessionId>,
    pub(crate) metadata: Vec<(String, serde_json::Value)>,
    pub(crate) overrides: Overrides,
    /// The id the new run gets (the server names a run before it starts); a resumed run
    /// keeps its own.
    pub(crate) run_id: RunId,
}

/// What a finished run answered.
pub(crate) struct Answer {
    pub(crate) run_id: RunId,
    pub(crate) text: String,
    pub(crate) usage: Usage,
}

/// An agent or a workflow, served.
pub(crate) trait Served: Send + Sync + 'static {
    /// `agent` or `workflow`.
    fn kind(&self) -> &'static str;

    /// Runs `job`; with a sink, as a streaming run whose events go to it.
    fn run(self: Arc<Self>, job: Job, sink: Option<Sink>) -> BoxFuture<'static, Result<Answer, Error>>;

    /// The calls of `user`'s runs that wait for approval.
    fn pending<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Result<Vec<ApprovalRequest>, Error>>;

    /// Where its conversations are kept, if it keeps any.
    fn sessions(&self) -> Option<&Arc<dyn SessionStore>>;

    /// Whether its runs with a session are journaled (and so resumable).
    fn journaled(&self) -> bool;
}

/// Adds the job's run id, user, session and metadata to a run.
fn configure<'a, R: crate::Runnable>(
    run: RunBuilder<'a, R>,
    run_id: RunId,
    user: UserId,
    session: Option<SessionId>,
    metadata: Vec<(String, serde_json::Value)>,
) -> RunBuilder<'a, R> {
    let mut run = run.with_run_id(run_id).user(user);
    if let Some(session) = session {
        run = run.session(session);
    }
    for (k, v) in metadata {
        run = run.metadata(k, v);
    }
    run
}

/// Runs `run`: awaited, or streamed into `sink`.
async fn go<'a, R>(run: RunBuilder<'a, R>, sink: Option<Sink>) -> Result<R::Output, Error>
where
    R: crate::Runnable,
    R::Input: 'a,
    R::Output: 'a,
{
    match sink {
        None => run.await,
        Some(mut sink) => {
            let mut stream = run.stream();
            while let Some(event) = stream.next().await {
                sink(event);
            }
            stream.into_result()
        }
    }
}

/// An agent, served.
pub(crate) struct AgentTarget<O>(pub(crate) Agent<O>);

/// The text of an agent's answer: the output itself for a text agent (moved, not copied), the
/// text it was parsed from for a typed one.
fn answer_text<O: 'static>(result: &mut RunResult<O>) -> String {
    if let Some(text) = (&mut result.output as &mut dyn Any).downcast_mut::<String>() {
        return std::mem::take(text);
    }
    result.text().to_owned()
}

impl<O: Send + Sync + 'static> AgentTarget<O> {
    async fn execute(&self, job: Job, sink: Option<Sink>) -> Result<Answer, Error> {
        let Job { input, user, session, metadata, overrides, run_id } = job;
        // Settings a request asks for run on a copy of the agent (its prepared prompt kept).
        let tuned = (!overrides.is_empty()).then(|| {
            let mut agent = self.0.clone();
            if let Some(t) = overrides.temperature {
                agent = agent.temperature(t);
            }
            if let Some(m) = overrides.max_tokens {
                agent = agent.max_tokens(m);
            }
            agent
        });
        let mut result = match input {
            JobInput::Message { text, history } if history.is_empty() || session.is_some() => {
                let agent = tuned.as_ref().unwrap_or(&self.0);
                go(configure(agent.run(text), run_id, user, session, metadata), sink).await?
            }
            JobInput::Message { text, history } => {
                // The request's own history: a copy of the agent whose sessions are a store of
                // this request only, seeded with it, and no journal (nothing to resume).
                let mut agent = tuned.unwrap_or_else(|| self.0.clone());
                agent.sessions = Sessions::in_memory();
                agent.journal = None;
                let scratch = SessionId::generate();
                agent.sessions.append(&user, &scratch, RunId::generate(), &history).await?;
                let mut result = go(configure(agent.run(text), run_id, user, Some(scratch), metadata), sink).await?;
                result.session = None;
                result
            }
            JobInput::Resume { run, decisions } => {
                let mut input = AgentInput::resume(run);
                for (call, approval) in decisions {
                    input = input.approve(call, approval);
                }
                let agent = tuned.as_ref().unwrap_or(&self.0);
                go(configure(agent.resume_with(input), run, user, session, metadata), sink).await?
            }
        };
        let text = answer_text(&mut result);
        Ok(Answer { run_id: result.run_id, text, usage: result.usage })
    }
}

impl<O: Send + Sync + 'static> Served for AgentTarget<O> {
    fn kind(&self) -> &'static str {
        "agent"
    }

    fn run(self: Arc<Self>, job: Job, sink: Option<Sink>) -> BoxFuture<'static, Result<Answer, Error>> {
        Box::pin(async move { self.execute(job, sink).await })
    }

    fn pending<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Result<Vec<ApprovalRequest>, Error>> {
        Box::pin(self.0.pending_approvals(user))
    }

    fn sessions(&self) -> Option<&Arc<dyn SessionStore>> {
        Some(self.0.session_store())
    }

    fn journaled(&self) -> bool {
        self.0.journal.is_some()
    }
}

/// A workflow, served: its input is the text of the latest user message; its output is sent
/// as text when it is a string, as JSON otherwise.
pub(crate) struct WorkflowTarget<I, O>(pub(crate) Workflow<I, O>);

impl<I, O> WorkflowTarget<I, O>
where
    I: From<String> + Send + 'static,
    O: serde::Serialize + Send + 'static,
{
    async fn execute(&self, job: Job, sink: Option<Sink>) -> Result<Answer, Error> {
        let Job { input, user, session, metadata, run_id, .. } = job;
        let (input, id) = match input {
            JobInput::Message { text, .. } => (WorkflowInput::Run(I::from(text.text().into_owned())), run_id),
            // A workflow's nodes decide for themselves; approvals of agents inside it are
            // resumed by resuming the workflow.
            JobInput::Resume { run, .. } => (WorkflowInput::resume(run), run),
        };
        let mut result = go(configure(self.0.resume_with(input), id, user, session, metadata), sink).await?;
        // A text output is moved, not copied; any other is sent as JSON.
        let text = match (&mut result.output as &mut dyn Any).downcast_mut::<String>() {
            Some(text) => std::mem::take(text),
            None => serde_json::to_string(&result.output).map_err(|e| crate::ConfigError::InvalidSetting {
                setting: "workflow output",
                reason: format!("the output of workflow `{}` does not serialise: {e}", self.0.name()),
            })?,
        };
        Ok(Answer { run_id: result.run_id, text, usage: Usage::default() })
    }
}

impl<I, O> Served for WorkflowTarget<I, O>
where
    I: From<String> + Send + 'static,
    O: serde::Serialize + Send + 'static,
{
    fn kind(&self) -> &'static str {
        "workflow"
    }

    fn run(self: Arc<Self>, job: Job, sink: Option<Sink>) -> BoxFuture<'static, Result<Answer, Error>> {
        Box::pin(async move { self.execute(job, sink).await })
    }

    fn pending<'a>(&'a self, _user: &'a UserId) -> BoxFuture<'a, Result<Vec<ApprovalRequest>, Error>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn sessions(&self) -> Option<&Arc<dyn SessionStore>> {
        None
    }

    fn journaled(&self) -> bool {
        self.0.is_journaled()
    }
}
