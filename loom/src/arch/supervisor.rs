//! Supervisor: a manager delegates to workers through tools, and answers from what they did.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;

use super::react::{Loop, LoopTools, react_with};
use super::role::{Member, Named, check_members, refuse, roster};
use super::router::known;
use super::run::{ChildKey, ChildSession, with_system};
use super::{AgentRun, Architecture};
use crate::agent::Agent;
use crate::error::{ConfigError, Error};
use crate::model::{Content, Model, ToolCall, ToolResult};
use crate::tool::{Arguments, ToolDefinition, ToolHints, ToolSet};

const DELEGATE: &str = "delegate";
const FORWARD: &str = "forward_message";
const SPAWN: &str = "spawn_worker";

/// Supervisor: the agent is a manager that runs a ReAct loop with its own tools and three of
/// the architecture's: `delegate(worker, instructions)` runs a worker — a full [`Agent`] with
/// its own tools, model, output type and architecture — as a child run and returns its answer;
/// `forward_message(worker)` ends the manager's turn with that worker's last answer, word for
/// word; and, when allowed, `spawn_worker(name, instructions)` adds a worker of the manager's
/// model and tools, up to `max_spawned`.
///
/// Several delegations in one turn run at once. Each worker continues its sub-session
/// `{session}/{worker}`, so it remembers what it was asked before in the session. A
/// delegation is journaled like a tool call: a resumed run does not run a finished worker
/// again (and a worker with a journal of its own resumes where it was). An unknown worker or
/// a malformed call is an error result the manager reads and corrects (with the closest name).
///
/// Use it when a task splits into parts for specialists, and someone must decide which parts
/// and put the answers together: research teams, support escalation, nested teams (a worker
/// can itself be a supervisor).
#[derive(Clone, Debug)]
pub struct Supervisor {
    workers: Vec<Named>,
    max_turns: Option<u32>,
    allow_spawn: bool,
    max_spawned: usize,
    definitions: Arc<[ToolDefinition]>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// A supervisor without workers yet: add them with [`worker`](Self::worker).
    pub fn new() -> Self {
        let mut s = Self {
            workers: Vec::new(),
            max_turns: None,
            allow_spawn: false,
            max_spawned: 5,
            definitions: Arc::new([]),
        };
        s.definitions = s.tool_definitions();
        s
    }

    /// Adds worker `name`. The manager is shown the agent's
    /// [`description`](Agent::description) (or the first line of its instructions).
    #[must_use]
    pub fn worker<O: Send + Sync + 'static>(mut self, name: impl Into<Arc<str>>, agent: Agent<O>) -> Self {
        self.workers.push(Named::new(name, agent));
        self.definitions = self.tool_definitions();
        self
    }

    /// The most model calls of the manager's loop (the agent's `max_turns` by default).
    #[must_use]
    pub fn max_turns(mut self, turns: u32) -> Self {
        self.max_turns = Some(turns);
        self
    }

    /// Lets the manager add workers of its own making, up to `max` of them in a run.
    #[must_use]
    pub fn allow_spawn(mut self, max: usize) -> Self {
        self.allow_spawn = max > 0;
        self.max_spawned = max;
        self.definitions = self.tool_definitions();
        self
    }

    /// The workers' names, in order.
    pub fn worker_names(&self) -> impl Iterator<Item = &str> {
        self.workers.iter().map(|w| &*w.name)
    }

    fn tool_definitions(&self) -> Arc<[ToolDefinition]> {
        let names: Vec<&str> = self.worker_names().collect();
        let worker = |what: &str| {
            let mut schema = serde_json::json!({"type": "string", "description": what});
            // Spawned workers are not known yet: the names are only listed when fixed.
            if !self.allow_spawn && !names.is_empty() {
                schema["enum"] = serde_json::json!(names);
            }
            schema
        };
        let mut tools = vec![
            ToolDefinition::new_unchecked(
                DELEGATE.to_owned(),
                "Give a worker a task. Returns the worker's answer. Several delegations in one turn run at once."
                    .to_owned(),
                serde_json::json!({
                    "type": "object",
                    "properties": {
                        "worker": worker("The worker's name."),
                        "instructions": {"type": "string", "description": "The task, with everything the worker needs to know."},
                    },
                    "required": ["worker", "instructions"],
                }),
            ),
            ToolDefinition::new_unchecked(
                FORWARD.to_owned(),
                "Answer the user with a worker's last answer, as it is. Ends your turn.".to_owned(),
                serde_json::json!({
                    "type": "object",
                    "properties": {"worker": worker("The worker whose last answer to forward.")},
                    "required": ["worker"],
                }),
            )
            .with_hints(ToolHints::NONE.read_only().idempotent().ends_turn()),
        ];
        if self.allow_spawn {
            tools.push(ToolDefinition::new_unchecked(
                SPAWN.to_owned(),
                format!("Add a worker for a kind of task no worker covers (at most {}).", self.max_spawned),
                serde_json::json!({
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "A short name for the worker, e.g. `translator`."},
                        "instructions": {"type": "string", "description": "The worker's instructions (its system prompt)."},
                    },
                    "required": ["name", "instructions"],
                }),
            ));
        }
        tools.into()
    }
}

#[async_trait::async_trait]
impl Architecture for Supervisor {
    fn name(&self) -> &str {
        "supervisor"
    }

    fn check(&self) -> Result<(), ConfigError> {
        refuse(self.max_turns == Some(0), "max_turns", || "the manager needs at least one turn")?;
        let min = if self.allow_spawn { 0 } else { 1 };
        check_members("supervisor", "workers", &self.workers, min)
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let tools = Team {
            supervisor: self,
            spawned: Mutex::new(Vec::new()),
            last: Mutex::new(HashMap::new()),
            model: run.parts.shared_model.cloned(),
            tool_set: run.tools().clone(),
        };
        let mut team = format!(
            "You lead a team. Give work to a worker with `{DELEGATE}`; to answer with a worker's answer as it is, \
             call `{FORWARD}`. Your workers:\n{}",
            roster(&self.workers)
        );
        if self.allow_spawn {
            team.push_str(&format!("You may add up to {} workers with `{SPAWN}`.\n", self.max_spawned));
        }
        let system = run.messages().first().cloned();
        let messages = std::mem::take(run.messages_mut());
        *run.messages_mut() = with_system(messages, &team);
        let added_system = !matches!(system, Some(crate::model::Message::System { .. }));
        if added_system {
            run.input_index += 1;
        }
        let max_turns = self.max_turns.unwrap_or(run.max_turns());
        let outcome = react_with(
            run,
            Loop { role: "manager", max_turns, extra: Some(&tools), model: None, base: None, keep_answer: true },
        )
        .await;
        // The team's roster is not part of the conversation the session keeps.
        match system {
            Some(system @ crate::model::Message::System { .. }) => {
                if let Some(first) = run.messages_mut().first_mut() {
                    *first = system;
                }
            }
            _ => {
                run.messages_mut().remove(0);
                run.input_index -= 1;
            }
        }
        outcome
    }
}

/// The manager's tools for one run: the workers it may delegate to, those it spawned, and
/// each worker's last answer.
struct Team<'s> {
    supervisor: &'s Supervisor,
    spawned: Mutex<Vec<Named>>,
    last: Mutex<HashMap<String, String>>,
    model: Option<Arc<dyn Model>>,
    tool_set: ToolSet,
}

/// The `worker` (and, for a delegation, `instructions`) of a call.
fn read_call(call: &ToolCall, with_instructions: bool) -> Result<(String, String), String> {
    let mut args = Arguments::parse(&call.arguments).map_err(|e| e.to_string())?;
    let worker: String = args.take("worker").map_err(|e| e.to_string())?;
    let instructions: String =
        if with_instructions { args.take("instructions").map_err(|e| e.to_string())? } else { String::new() };
    let expected: &[&str] = if with_instructions { &["worker", "instructions"] } else { &["worker"] };
    args.finish(expected).map_err(|e| e.to_string())?;
    Ok((worker.trim().to_owned(), instructions))
}

impl Team<'_> {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker named `name`: one of the supervisor's, or one spawned in this run.
    fn find(&self, name: &str) -> Result<Arc<dyn Member>, String> {
        if let Some(w) = self.supervisor.workers.iter().find(|w| &*w.name == name) {
            return Ok(Arc::clone(&w.agent));
        }
        let spawned = Self::lock(&self.spawned);
        if let Some(w) = spawned.iter().find(|w| &*w.name == name) {
            return Ok(Arc::clone(&w.agent));
        }
        let names: Vec<&str> = self.supervisor.worker_names().chain(spawned.iter().map(|w| &*w.name)).collect();
        Err(known("worker", name, &names).err().unwrap_or_else(|| format!("there is no worker `{name}`")))
    }

    async fn delegate(&self, run: &AgentRun<'_>, turn: u32, call: &ToolCall) -> Result<String, String> {
        let (name, instructions) = read_call(call, true)?;
        let worker = self.find(&name)?;
        let key = ChildKey::Call { role: &name, turn, call: &call.id };
        run.emit("supervisor.delegated", || serde_json::json!({"worker": &name, "call_id": &call.id}));
        worker
            .answer(run, key, Content::from(instructions), ChildSession::Sub(&name))
            .await
            .map_err(|e| format!("worker `{name}` failed: {e}"))
    }

    fn forward(&self, call: &ToolCall) -> Result<String, String> {
        let (name, _) = read_call(call, false)?;
        self.find(&name)?;
        Self::lock(&self.last)
            .get(&name)
            .cloned()
            .ok_or_else(|| format!("worker `{name}` has not answered yet in this run; delegate to it first"))
    }

    fn spawn(&self, call: &ToolCall) -> Result<String, String> {
        let mut args = Arguments::parse(&call.arguments).map_err(|e| e.to_string())?;
        let name: String = args.take("name").map_err(|e| e.to_string())?;
        let instructions: String = args.take("instructions").map_err(|e| e.to_string())?;
        args.finish(&["name", "instructions"]).map_err(|e| e.to_string())?;
        let name = name.trim();
        if name.is_empty() || instructions.trim().is_empty() {
            return Err("give the worker a name and instructions".to_owned());
        }
        if self.find(name).is_ok() {
            return Err(format!("there is a worker `{name}` already; delegate to it"));
        }
        let count = Self::lock(&self.spawned).len();
        if count >= self.supervisor.max_spawned {
            return Err(format!("no more workers can be added (the limit is {})", self.supervisor.max_spawned));
        }
        if self.model.is_none() {
            return Err("workers cannot be added: the manager has no model to give them".to_owned());
        }
        Ok(format!("Worker `{name}` added."))
    }
}

impl LoopTools for Team<'_> {
    fn definitions(&self) -> &[ToolDefinition] {
        &self.supervisor.definitions
    }

    fn handles(&self, name: &str) -> bool {
        name == DELEGATE || name == FORWARD || (name == SPAWN && self.supervisor.allow_spawn)
    }

    fn idempotent(&self, _: &ToolCall) -> bool {
        // A delegation interrupted by a crash runs the worker again: a worker with a journal
        // resumes its own run (its id is derived from the call), one without starts over.
        true
    }

    fn call<'a>(&'a self, run: &'a AgentRun<'_>, turn: u32, call: &'a ToolCall) -> BoxFuture<'a, ToolResult> {
        Box::pin(async move {
            let outcome = match call.name.as_str() {
                DELEGATE => self.delegate(run, turn, call).await,
                FORWARD => self.forward(call),
                _ => self.spawn(call),
            };
            match outcome {
                Ok(text) => ToolResult::ok(call.id.clone(), call.name.clone(), text),
                Err(e) => ToolResult::error(call.id.clone(), call.name.clone(), e),
            }
        })
    }

    fn ends_loop(&self, call: &ToolCall, result: &ToolResult) -> Option<String> {
        (call.name == FORWARD && !result.is_error).then(|| result.content.text().into_owned())
    }

    fn observe(&self, call: &ToolCall, result: &ToolResult) {
        if result.is_error {
            return;
        }
        match call.name.as_str() {
            DELEGATE => {
                if let Ok((name, _)) = read_call(call, true) {
                    Self::lock(&self.last).insert(name, result.content.text().into_owned());
                }
            }
            SPAWN => {
                let Ok(mut args) = Arguments::parse(&call.arguments) else { return };
                let (Ok(name), Ok(instructions)) = (args.take::<String>("name"), args.take::<String>("instructions"))
                else {
                    return;
                };
                let Some(model) = self.model.clone() else { return };
                let agent = Agent::new(instructions).name(name.trim()).model(model).tool_set(self.tool_set.clone());
                Self::lock(&self.spawned).push(Named::new(name.trim(), agent));
            }
            _ => {}
        }
    }
}
