//! Blackboard: agents take turns adding to a shared board; a decider answers from it.

use std::fmt::Write as _;
use std::sync::Arc;

use super::control::Pick;
use super::role::{Named, Role, check_members, refuse, roster};
use super::router::known;
use super::run::ChildSession;
use super::{AgentRun, Architecture};
use crate::agent::Agent;
use crate::error::{ConfigError, Error, RunError};
use crate::model::{Content, IntoModel};

const COORDINATOR: &str = "You coordinate a team working on a shared board. Given the task and the board so \
far, choose who works next and what they should do, or stop when the board holds what the task needs.";
const DECIDER: &str = "Write the answer to the task from the team's board. Reply with the answer.";

/// Blackboard: a team of agents shares a board. Each round a coordinator — asked for a typed
/// [`Pick`] — chooses who works next and on what, or stops; that agent reads the task and the
/// board and adds its entry. Without a coordinator the agents take turns in order. After
/// `max_rounds` rounds (or the stop), a decider writes the answer from the board; without one,
/// the last entry is the answer.
///
/// A pick still malformed after its retry (or naming an agent the team does not have) skips
/// the round (event `blackboard.skipped`). Events: `blackboard.entry`, `blackboard.stopped`.
///
/// Use it when work builds up from several kinds of expertise in an order nobody can fix in
/// advance: analysis, design reviews, incident investigations.
#[derive(Clone, Debug)]
pub struct Blackboard {
    agents: Vec<Named>,
    coordinator: Option<Role>,
    decider: Option<Role>,
    max_rounds: u32,
}

impl Default for Blackboard {
    fn default() -> Self {
        Self::new()
    }
}

impl Blackboard {
    /// A board without agents yet: add them with [`agent`](Self::agent). Agents take turns
    /// until a coordinator is set; the last entry is the answer until a decider is.
    pub fn new() -> Self {
        Self { agents: Vec::new(), coordinator: None, decider: None, max_rounds: 10 }
    }

    /// Adds agent `name` to the team.
    #[must_use]
    pub fn agent<O: Send + Sync + 'static>(mut self, name: impl Into<Arc<str>>, agent: Agent<O>) -> Self {
        self.agents.push(Named::new(name, agent));
        self
    }

    /// A coordinator picks who works next, with the agent's model and the default prompt.
    #[must_use]
    pub fn coordinated(mut self) -> Self {
        self.coordinator.get_or_insert_with(|| Role::new(COORDINATOR));
        self
    }

    /// A coordinator with this prompt.
    #[must_use]
    pub fn coordinator_prompt(mut self, prompt: impl Into<Arc<str>>) -> Self {
        self.coordinator.get_or_insert_with(|| Role::new(COORDINATOR)).set_prompt(prompt);
        self
    }

    /// A coordinator with this model.
    #[must_use]
    pub fn coordinator_model(mut self, model: impl IntoModel) -> Self {
        self.coordinator.get_or_insert_with(|| Role::new(COORDINATOR)).set_model(model);
        self
    }

    /// A decider writes the answer from the board, with the agent's model and the default prompt.
    #[must_use]
    pub fn decided(mut self) -> Self {
        self.decider.get_or_insert_with(|| Role::new(DECIDER));
        self
    }

    /// A decider with this prompt.
    #[must_use]
    pub fn decider_prompt(mut self, prompt: impl Into<Arc<str>>) -> Self {
        self.decider.get_or_insert_with(|| Role::new(DECIDER)).set_prompt(prompt);
        self
    }

    /// A decider with this model.
    #[must_use]
    pub fn decider_model(mut self, model: impl IntoModel) -> Self {
        self.decider.get_or_insert_with(|| Role::new(DECIDER)).set_model(model);
        self
    }

    /// The most rounds (entries, when the agents take turns).
    #[must_use]
    pub fn max_rounds(mut self, rounds: u32) -> Self {
        self.max_rounds = rounds;
        self
    }
}

/// The board, for a prompt.
fn show(board: &[(Arc<str>, String)]) -> String {
    if board.is_empty() {
        return "(empty)\n".to_owned();
    }
    let mut out = String::new();
    for (i, (who, entry)) in board.iter().enumerate() {
        let _ = writeln!(out, "#{} [{who}]\n{entry}\n", i + 1);
    }
    out
}

#[async_trait::async_trait]
impl Architecture for Blackboard {
    fn name(&self) -> &str {
        "blackboard"
    }

    fn check(&self) -> Result<(), ConfigError> {
        check_members("blackboard", "agents", &self.agents, 1)?;
        refuse(self.max_rounds == 0, "max_rounds", || "a blackboard needs at least one round")?;
        if let Some(c) = &self.coordinator {
            c.check("coordinator")?;
        }
        if let Some(d) = &self.decider {
            d.check("decider")?;
        }
        Ok(())
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let task = run.input_text().into_owned();
        let names: Vec<&str> = self.agents.iter().map(|a| &*a.name).collect();
        let mut board: Vec<(Arc<str>, String)> = Vec::new();
        for round in 0..self.max_rounds {
            let (who, instruction) = match &self.coordinator {
                None => (round as usize % self.agents.len(), None),
                Some(coordinator) => {
                    let question = coordinator.messages(format!(
                        "Task:\n{task}\n\nTeam:\n{}\nBoard:\n{}",
                        roster(&self.agents),
                        show(&board)
                    ));
                    let check = |p: &Pick| match (&p.next_agent, p.terminate) {
                        (_, true) => Ok(()),
                        (Some(next), false) => known("agent", next.trim(), &names),
                        (None, false) => Err("name the `next_agent`, or set `terminate`".to_owned()),
                    };
                    match run.ask_checked::<Pick>("coordinator", coordinator.model(), question, check).await? {
                        Ok(p) if p.terminate => {
                            run.emit("blackboard.stopped", || serde_json::json!({"round": round + 1}));
                            break;
                        }
                        Ok(p) => {
                            let next = p.next_agent.as_deref().map(str::trim).unwrap_or("");
                            (names.iter().position(|n| *n == next).unwrap_or(0), p.instruction)
                        }
                        Err(e) => {
                            run.emit(
                                "blackboard.skipped",
                                || serde_json::json!({"round": round + 1, "error": e.to_string()}),
                            );
                            continue;
                        }
                    }
                }
            };
            let member = &self.agents[who];
            let mut prompt = format!("Task:\n{task}\n\nBoard:\n{}", show(&board));
            match &instruction {
                Some(i) if !i.trim().is_empty() => {
                    let _ = write!(prompt, "\nYour part: {i}\n");
                }
                _ => prompt.push_str("\nAdd what you can to the board. Reply with your entry only.\n"),
            }
            let entry =
                run.member(&member.name, round, &*member.agent, Content::from(prompt), ChildSession::None).await?;
            run.emit("blackboard.entry", || serde_json::json!({"round": round + 1, "agent": &*member.name}));
            board.push((Arc::clone(&member.name), entry));
        }
        match &self.decider {
            Some(decider) => {
                let question = decider.messages(format!("Task:\n{task}\n\nBoard:\n{}", show(&board)));
                run.answer("decider", decider.model(), question).await
            }
            None => board.pop().map(|(_, entry)| entry).ok_or_else(|| {
                RunError::Architecture {
                    architecture: "blackboard".to_owned(),
                    reason: "the board is empty: the coordinator stopped or skipped every round; add a decider or \
                             check the coordinator's prompt"
                        .to_owned(),
                }
                .into()
            }),
        }
    }
}
