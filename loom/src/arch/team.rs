//! `Team`: the multi-agent architectures as plain agents.

use std::sync::Arc;

use super::{ActorCritic, Blackboard, Debate, Router, Supervisor, Swarm};
use crate::agent::Agent;

/// Builders of multi-agent teams. Each returns a plain [`Agent`] whose architecture is the
/// team's — set its model, store, listeners and the rest with the agent's builder methods, and
/// run it like any agent. Members of different output types go into the architecture's own
/// builder ([`Supervisor::worker`] and friends) and `Agent::architecture`; the two forms are
/// the same agent.
///
/// ```
/// use loomflow::prelude::*;
/// use loomflow::arch::Team;
/// use serde_json::json;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let billing = Agent::new("You answer billing questions.")
///     .description("invoices, refunds, payments")
///     .model(ScriptedModel::new([ScriptedTurn::text("Your refund was sent on Monday.")]));
/// let manager = ScriptedModel::new([
///     ScriptedTurn::tool_call("delegate", json!({"worker": "billing", "instructions": "Where is the refund of order 7?"})),
///     ScriptedTurn::tool_call("forward_message", json!({"worker": "billing"})),
/// ]);
/// let team = Team::supervisor("You run customer support.", [("billing", billing)]).model(manager);
/// let result = team.run("Where is my refund?").await?;
/// assert_eq!(result.output, "Your refund was sent on Monday.");
/// # Ok::<(), loomflow::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Team;

impl Team {
    /// A manager with these instructions that delegates to `workers` ([`Supervisor`]).
    pub fn supervisor<N, O>(
        instructions: impl Into<Arc<str>>,
        workers: impl IntoIterator<Item = (N, Agent<O>)>,
    ) -> Agent
    where
        N: Into<Arc<str>>,
        O: Send + Sync + 'static,
    {
        let s = workers.into_iter().fold(Supervisor::new(), |s, (name, agent)| s.worker(name, agent));
        Agent::new(instructions).architecture(s)
    }

    /// A classifier with these instructions that sends each request to one of `routes`
    /// ([`Router`]).
    pub fn router<N, O>(instructions: impl Into<Arc<str>>, routes: impl IntoIterator<Item = (N, Agent<O>)>) -> Agent
    where
        N: Into<Arc<str>>,
        O: Send + Sync + 'static,
    {
        let r = routes.into_iter().fold(Router::new(), |r, (name, agent)| r.route(name, agent));
        Agent::new(instructions).architecture(r)
    }

    /// Peers that hand the conversation to each other, starting with the first ([`Swarm`]).
    /// The agent gets the first peer's model (for the answer's repair, when typed).
    pub fn swarm<N: Into<Arc<str>>>(peers: impl IntoIterator<Item = (N, Agent)>) -> Agent {
        let peers: Vec<(N, Agent)> = peers.into_iter().collect();
        let model = peers.first().and_then(|(_, a)| a.model_ref().cloned());
        let s = peers.into_iter().fold(Swarm::new(), |s, (name, agent)| s.peer(name, agent));
        with_model(Agent::new("").architecture(s), model)
    }

    /// An actor and a critic ([`ActorCritic`]); the agent gets the actor's model.
    pub fn actor_critic<O: Send + Sync + 'static>(actor: Agent<O>, critic: Agent) -> Agent {
        let model = actor.model_ref().cloned();
        with_model(Agent::new("").architecture(ActorCritic::new(actor, critic)), model)
    }

    /// Debaters, and a judge or (with `None`) a majority vote ([`Debate`]); the agent gets the
    /// first debater's model.
    pub fn debate<N, O>(debaters: impl IntoIterator<Item = (N, Agent<O>)>, judge: Option<Agent>) -> Agent
    where
        N: Into<Arc<str>>,
        O: Send + Sync + 'static,
    {
        let debaters: Vec<(N, Agent<O>)> = debaters.into_iter().collect();
        let model = debaters.first().and_then(|(_, a)| a.model_ref().cloned());
        let mut d = debaters.into_iter().fold(Debate::new(), |d, (name, agent)| d.debater(name, agent));
        if let Some(judge) = judge {
            d = d.judge(judge);
        }
        with_model(Agent::new("").architecture(d), model)
    }

    /// Agents sharing a board, picked by a coordinator with these instructions, the answer
    /// written by a decider ([`Blackboard`], coordinated and decided with the agent's model).
    pub fn blackboard<N, O>(instructions: impl Into<Arc<str>>, agents: impl IntoIterator<Item = (N, Agent<O>)>) -> Agent
    where
        N: Into<Arc<str>>,
        O: Send + Sync + 'static,
    {
        let b = agents.into_iter().fold(Blackboard::new(), |b, (name, agent)| b.agent(name, agent));
        Agent::new(instructions).architecture(b.coordinated().decided())
    }
}

fn with_model(agent: Agent, model: Option<Arc<dyn crate::model::Model>>) -> Agent {
    match model {
        Some(model) => agent.model(model),
        None => agent,
    }
}
