//! Swarm: peers that hand the conversation to each other.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use super::role::refuse;
use super::router::known;
use super::run::{ChildKey, ChildSession, LoopExit};
use super::{AgentRun, Architecture};
use crate::agent::Agent;
use crate::context::RunContext;
use crate::error::{ConfigError, Error};
use crate::id::RunId;
use crate::model::{Content, Message, ToolCall};
use crate::output::{OutputSchema, OutputType};
use crate::tool::{Arguments, Tool, ToolDefinition, ToolError, ToolHints, ToolOutput, validate_tool_name};

const HANDOFF: &str = "handoff";
const TRANSFER: &str = "transfer_to_";

/// Checks a typed handoff's arguments: the error is what is wrong, for the peer to correct.
type InputCheck = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// A peer of the swarm.
#[derive(Clone)]
struct Peer {
    name: Arc<str>,
    agent: Agent,
    /// A typed handoff's input: its schema and check.
    input: Option<(Arc<OutputSchema>, InputCheck)>,
}

/// A peer as it runs: with its handoff tools, and without (its last answer at a cap).
#[derive(Clone)]
struct Ready {
    open: Agent,
    closed: Agent,
}

/// Swarm: peers — full agents — that pass the conversation to each other. Each peer gets a
/// `handoff(target, message)` tool naming the peers it may hand off to, and a
/// `transfer_to_<peer>` tool, whose arguments are that peer's input type, for each peer added
/// with [`typed_peer`](Self::typed_peer). A handoff ends the peer's turn; the target continues
/// the shared thread (the conversation so far, the handoff marked `[Handoff: a → b]`); the
/// first peer to answer without handing off gives the run's answer.
///
/// At `max_handoffs`, or when two peers hand the conversation back and forth three times
/// (`detect_cycles`), the peer that has it answers once more without its handoff tools, and
/// [`RunResult::exit`](crate::RunResult::exit) says why ([`LoopExit::HandoffCap`],
/// [`LoopExit::HandoffCycle`]). With a session, the next message in it goes to the last peer
/// that answered — kept in the session store, so it holds across processes and restarts.
/// Events: `swarm.handoff`, `swarm.stopped`.
///
/// Use it for conversations that move between specialists who each know when to pass them
/// on: triage → billing → refunds, travel booking, multi-step support.
#[derive(Clone)]
pub struct Swarm {
    peers: Vec<Peer>,
    entry: Option<Arc<str>>,
    routes: HashMap<Arc<str>, Vec<Arc<str>>>,
    max_handoffs: u32,
    detect_cycles: bool,
    resume_last: bool,
    full_history: bool,
    ready: OnceLock<Result<Arc<[Ready]>, ConfigError>>,
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("peers", &self.peers.iter().map(|p| &*p.name).collect::<Vec<_>>())
            .field("entry", &self.entry)
            .field("max_handoffs", &self.max_handoffs)
            .finish_non_exhaustive()
    }
}

impl Default for Swarm {
    fn default() -> Self {
        Self::new()
    }
}

impl Swarm {
    /// A swarm without peers yet: add them with [`peer`](Self::peer); the first is the entry.
    pub fn new() -> Self {
        Self {
            peers: Vec::new(),
            entry: None,
            routes: HashMap::new(),
            max_handoffs: 8,
            detect_cycles: true,
            resume_last: true,
            full_history: true,
            ready: OnceLock::new(),
        }
    }

    fn changed(mut self) -> Self {
        self.ready = OnceLock::new();
        self
    }

    /// Adds peer `name`. Other peers hand off to it with `handoff(target: name, message)`.
    #[must_use]
    pub fn peer(mut self, name: impl Into<Arc<str>>, agent: Agent) -> Self {
        self.peers.push(Peer { name: name.into(), agent, input: None });
        self.changed()
    }

    /// Adds peer `name` whose handoffs carry a `T`: other peers hand off to it with
    /// `transfer_to_<name>`, whose arguments are `T`'s fields, checked as a typed output is
    /// (a bad handoff goes back to the peer with what is wrong). The target receives the value
    /// as JSON.
    #[must_use]
    pub fn typed_peer<T: OutputType>(mut self, name: impl Into<Arc<str>>, agent: Agent) -> Self {
        let schema = OutputSchema::of::<T>();
        let wrapped = schema.is_wrapped();
        let check: InputCheck = Arc::new(move |args: &str| crate::output::parse_as::<T>(args, wrapped).map(drop));
        self.peers.push(Peer { name: name.into(), agent, input: Some((schema, check)) });
        self.changed()
    }

    /// The peer a new conversation starts with (the first peer by default).
    #[must_use]
    pub fn entry(mut self, peer: impl Into<Arc<str>>) -> Self {
        self.entry = Some(peer.into());
        self.changed()
    }

    /// Limits who `from` may hand off to (every other peer by default).
    #[must_use]
    pub fn handoffs<N: Into<Arc<str>>>(mut self, from: impl Into<Arc<str>>, to: impl IntoIterator<Item = N>) -> Self {
        self.routes.insert(from.into(), to.into_iter().map(Into::into).collect());
        self.changed()
    }

    /// The most handoffs in a run (8 by default).
    #[must_use]
    pub fn max_handoffs(mut self, max: u32) -> Self {
        self.max_handoffs = max;
        self
    }

    /// Whether a conversation passed back and forth between two peers three times is stopped.
    #[must_use]
    pub fn detect_cycles(mut self, detect: bool) -> Self {
        self.detect_cycles = detect;
        self
    }

    /// Whether the next message of a session goes to the last peer that answered (the
    /// default), or always to the entry peer.
    #[must_use]
    pub fn resume_last_peer(mut self, resume: bool) -> Self {
        self.resume_last = resume;
        self
    }

    /// Whether a peer sees the whole thread (the default) or only the message handed to it.
    #[must_use]
    pub fn full_history(mut self, full: bool) -> Self {
        self.full_history = full;
        self
    }

    /// The peers' names, in order.
    pub fn peer_names(&self) -> impl Iterator<Item = &str> {
        self.peers.iter().map(|p| &*p.name)
    }

    fn entry_name(&self) -> Option<&str> {
        self.entry.as_deref().or_else(|| self.peers.first().map(|p| &*p.name))
    }

    /// Who `from` may hand off to.
    fn targets(&self, from: &str) -> Vec<&Peer> {
        let allowed = self.routes.get(from);
        self.peers.iter().filter(|p| &*p.name != from && allowed.is_none_or(|a| a.contains(&p.name))).collect()
    }

    fn ready(&self) -> Result<&Arc<[Ready]>, ConfigError> {
        self.ready.get_or_init(|| self.prepare()).as_ref().map_err(Clone::clone)
    }

    /// Each peer with its handoff tools.
    fn prepare(&self) -> Result<Arc<[Ready]>, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidSetting { setting: "swarm", reason };
        if self.peers.len() < 2 {
            return Err(invalid(format!("a swarm needs at least 2 peers, and has {}", self.peers.len())));
        }
        let names: Vec<&str> = self.peer_names().collect();
        for (i, p) in self.peers.iter().enumerate() {
            if p.name.trim().is_empty() {
                return Err(invalid(format!("peer #{} has no name", i + 1)));
            }
            if names[..i].contains(&&*p.name) {
                return Err(invalid(format!("two peers are named `{}`", p.name)));
            }
            p.agent.check().map_err(|e| invalid(format!("peer `{}` is misconfigured: {e}", p.name)))?;
        }
        if let Some(entry) = self.entry_name() {
            known("peer", entry, &names).map_err(|e| invalid(format!("the entry peer: {e}")))?;
        }
        for (from, to) in &self.routes {
            known("peer", from, &names).map_err(|e| invalid(format!("a handoff rule: {e}")))?;
            for t in to {
                known("peer", t, &names).map_err(|e| invalid(format!("a handoff rule of `{from}`: {e}")))?;
            }
        }
        let mut ready = Vec::with_capacity(self.peers.len());
        for p in &self.peers {
            let targets = self.targets(&p.name);
            let mut open = p.agent.clone();
            let plain: Vec<Arc<str>> =
                targets.iter().filter(|t| t.input.is_none()).map(|t| Arc::clone(&t.name)).collect();
            if !plain.is_empty() {
                open = open.tool(HandoffTool::plain(&plain, &self.peers));
            }
            for t in targets.iter().filter(|t| t.input.is_some()) {
                open = open.tool(HandoffTool::typed(t)?);
            }
            open.check().map_err(|e| invalid(format!("peer `{}` with its handoff tools: {e}", p.name)))?;
            ready.push(Ready { open, closed: p.agent.clone() });
        }
        Ok(ready.into())
    }
}

/// A peer's handoff tool: `handoff(target, message)`, or a typed `transfer_to_<peer>`.
struct HandoffTool {
    definition: ToolDefinition,
    targets: Vec<Arc<str>>,
    check: Option<InputCheck>,
}

impl HandoffTool {
    fn plain(targets: &[Arc<str>], peers: &[Peer]) -> Self {
        let mut about =
            String::from("Hand the conversation to another peer, who continues it. Ends your turn. Peers:\n");
        for t in targets {
            let peer = peers.iter().find(|p| p.name == *t);
            let what = peer.and_then(|p| p.agent.agent_description()).unwrap_or("");
            let _ = writeln!(about, "- {t}{}{what}", if what.is_empty() { "" } else { ": " });
        }
        let definition = ToolDefinition::new_unchecked(
            HANDOFF.to_owned(),
            about,
            serde_json::json!({
                "type": "object",
                "properties": {
                    "target": {"type": "string", "enum": targets.iter().map(|t| &**t).collect::<Vec<_>>(), "description": "The peer to hand off to."},
                    "message": {"type": "string", "description": "What the peer should know or do."},
                },
                "required": ["target"],
            }),
        )
        .with_hints(ToolHints::NONE.read_only().idempotent().ends_turn());
        Self { definition, targets: targets.to_vec(), check: None }
    }

    fn typed(target: &Peer) -> Result<Self, ConfigError> {
        let name = format!("{TRANSFER}{}", target.name);
        validate_tool_name(&name)
            .map_err(|reason| ConfigError::InvalidToolName { name: name.clone(), reason: reason.to_owned() })?;
        let Some((schema, check)) = &target.input else {
            return Err(ConfigError::InvalidSetting {
                setting: "swarm",
                reason: format!("peer `{}` has no input type", target.name),
            });
        };
        let what = target.agent.agent_description().unwrap_or("another peer");
        let definition = ToolDefinition::new_unchecked(
            name,
            format!("Hand the conversation to `{}` ({what}) with what it needs. Ends your turn.", target.name),
            (**schema.plain()).clone(),
        )
        .with_hints(ToolHints::NONE.read_only().idempotent().ends_turn());
        Ok(Self { definition, targets: vec![Arc::clone(&target.name)], check: Some(Arc::clone(check)) })
    }
}

#[async_trait::async_trait]
impl Tool for HandoffTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, _: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let target = match &self.check {
            Some(check) => {
                check(arguments).map_err(ToolError::new)?;
                Arc::clone(&self.targets[0])
            }
            None => {
                let mut args = Arguments::parse(arguments).map_err(|e| ToolError::new(e.to_string()))?;
                let target: String = args.take("target").map_err(|e| ToolError::new(e.to_string()))?;
                let _: Option<String> = args.take("message").map_err(|e| ToolError::new(e.to_string()))?;
                args.finish(&["target", "message"]).map_err(|e| ToolError::new(e.to_string()))?;
                let names: Vec<&str> = self.targets.iter().map(|t| &**t).collect();
                known("peer you can hand off to", target.trim(), &names).map_err(ToolError::new)?;
                Arc::from(target.trim())
            }
        };
        Ok(ToolOutput::text(format!("Handed off to {target}.")))
    }
}

/// The handoff a peer's run ended with: the target and what it was given.
fn handoff_in(messages: &[Message]) -> Option<(String, String)> {
    let mut succeeded = Vec::new();
    for m in messages {
        if let Message::Tool(result) = m
            && !result.is_error
        {
            succeeded.push(result.call_id.as_str());
        }
    }
    let call: &ToolCall = messages
        .iter()
        .rev()
        .flat_map(|m| m.tool_calls().iter().rev())
        .find(|c| (c.name == HANDOFF || c.name.starts_with(TRANSFER)) && succeeded.contains(&c.id.as_str()))?;
    if let Some(target) = call.name.strip_prefix(TRANSFER) {
        return Some((target.to_owned(), call.arguments.clone()));
    }
    let mut args = Arguments::parse(&call.arguments).ok()?;
    let target: String = args.take("target").ok()?;
    let message: Option<String> = args.take("message").ok()?;
    Some((target.trim().to_owned(), message.unwrap_or_default()))
}

/// A hop as journaled: what the peer said, and its handoff.
fn read_hop(recorded: &str) -> (String, Option<(String, String)>) {
    #[derive(serde::Deserialize)]
    struct Hop {
        text: String,
        handoff: Option<(String, String)>,
    }
    match serde_json::from_str::<Hop>(recorded) {
        Ok(hop) => (hop.text, hop.handoff),
        // A record from elsewhere: the text as the answer.
        Err(_) => (recorded.to_owned(), None),
    }
}

/// Whether the last handoffs went back and forth between two peers three times.
fn cycling(trail: &[usize]) -> bool {
    let n = trail.len();
    if n < 7 {
        return false;
    }
    let (a, b) = (trail[n - 1], trail[n - 2]);
    // Counting back from the last: a, b, a, b, a, b, a.
    a != b && (0..7).all(|back| trail[n - 1 - back] == if back % 2 == 0 { a } else { b })
}

#[async_trait::async_trait]
impl Architecture for Swarm {
    fn name(&self) -> &str {
        "swarm"
    }

    fn check(&self) -> Result<(), ConfigError> {
        refuse(
            self.max_handoffs == 0,
            "max_handoffs",
            || "a swarm that allows no handoff is one agent; allow at least 1",
        )?;
        self.ready().map(drop)
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let ready = Arc::clone(self.ready()?);
        let active_at = run.ctx().session().map(|s| s.sub("swarm:active"));
        let entry = self.entry_name().unwrap_or("");
        let mut current = self.peers.iter().position(|p| &*p.name == entry).unwrap_or(0);
        if self.resume_last
            && let Some(at) = &active_at
        {
            let last = run.session_store().load(run.ctx().user(), at, Some(1)).await?;
            let name = last.last().map(|m| m.text().into_owned()).unwrap_or_default();
            if let Some(i) = self.peers.iter().position(|p| *p.name == *name) {
                current = i;
            }
        }
        // The shared thread: the session's history, the user's message, then each hop.
        let mut thread = String::new();
        for m in run.history() {
            match m {
                Message::User { content } => {
                    let _ = writeln!(thread, "User: {}", content.text());
                }
                Message::Assistant { content, tool_calls } if tool_calls.is_empty() => {
                    let _ = writeln!(thread, "Assistant: {}", content.text());
                }
                _ => {}
            }
        }
        let input = run.input_text().into_owned();
        let _ = writeln!(thread, "User: {input}");
        let mut latest = input;
        let mut trail = vec![current];
        let mut handoffs = 0;
        let mut closed = false;
        let answer = loop {
            let peer = &self.peers[current];
            let agent = if closed { &ready[current].closed } else { &ready[current].open };
            let given = if self.full_history { thread.clone() } else { latest.clone() };
            let hop = trail.len() as u32 - 1;
            let shared = &*run;
            let hop_run = shared.journaled(format!("{}#{hop}", peer.name), move || async move {
                let result = shared
                    .run_child(ChildKey::Order(&peer.name, hop), agent, Content::from(given), ChildSession::None)
                    .await?;
                let handoff = if closed { None } else { handoff_in(result.new_messages()) };
                Ok(serde_json::json!({"text": result.text(), "handoff": handoff}).to_string())
            });
            let (said, handoff) = read_hop(&hop_run.await?);
            let Some((target, message)) = handoff else {
                break said;
            };
            let Some(next) = self.peers.iter().position(|p| *p.name == *target) else {
                break said;
            };
            handoffs += 1;
            run.emit("swarm.handoff", || serde_json::json!({"from": &*peer.name, "to": &target, "message": &message}));
            if !said.is_empty() && !said.starts_with("Handed off to") {
                let _ = writeln!(thread, "{}: {said}", peer.name);
            }
            let _ = writeln!(thread, "[Handoff: {} → {target}] {message}", peer.name);
            latest = if message.is_empty() { latest } else { message };
            current = next;
            trail.push(current);
            let stop = if handoffs >= self.max_handoffs {
                Some(LoopExit::HandoffCap)
            } else if self.detect_cycles && cycling(&trail) {
                Some(LoopExit::HandoffCycle)
            } else {
                None
            };
            if let Some(exit) = stop {
                run.set_exit(exit);
                run.emit("swarm.stopped", || serde_json::json!({"reason": exit.as_str(), "peer": &target}));
                closed = true;
            }
        };
        if let Some(at) = &active_at {
            let name = &*self.peers[current].name;
            let id = RunId::derived(run.ctx().run_id(), "swarm:active", 0, 0);
            // A user message: a window of the session's history starts at one.
            run.session_store().append(run.ctx().user(), at, id, &[Message::user(name)]).await?;
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_is_two_peers_three_times_back_and_forth() {
        assert!(!cycling(&[0, 1, 0, 1, 0, 1]));
        assert!(cycling(&[0, 1, 0, 1, 0, 1, 0]));
        assert!(cycling(&[2, 0, 1, 0, 1, 0, 1, 0]));
        assert!(!cycling(&[0, 1, 2, 0, 1, 2, 0]));
        assert!(!cycling(&[0, 0, 0, 0, 0, 0, 0]));
    }
}
