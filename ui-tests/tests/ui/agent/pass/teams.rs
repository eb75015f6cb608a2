use loomflow::prelude::*;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct Verdict {
    pub approved: bool,
}

/// You answer billing questions.
#[agent(model = "echo", description = "invoices and refunds")]
pub struct Billing;

/// You answer technical questions.
#[agent(model = "echo", name = "tech")]
pub struct Tech;

/// You judge.
#[agent(model = "echo", output = Verdict)]
pub struct Judge;

/// You run support.
#[agent(model = "echo", architecture = supervisor, workers = [Billing, Tech])]
pub struct Support;

/// You route requests.
#[agent(model = "echo", architecture = router, routes = [Billing, Tech])]
pub struct Desk;

/// Peers.
#[agent(model = "echo", architecture = swarm, peers = [Billing, Tech])]
pub struct Hive;

/// A debate.
#[agent(model = "echo", architecture = debate, debaters = [Billing, Tech], judge = Judge)]
pub struct Panel;

/// A board.
#[agent(model = "echo", architecture = blackboard, members = [Billing, Tech])]
pub struct Board;

/// A pair.
#[agent(model = "echo", architecture = actor_critic, actor = Judge, critic = Tech)]
pub struct Pair;

/// Refined.
#[agent(model = "echo", architecture = self_refine)]
pub struct Careful;

/// Planned.
#[agent(model = "echo", architecture = plan_and_execute)]
pub struct Planner;

fn main() {
    assert_eq!(Support::new().architecture_name(), "supervisor");
    assert_eq!(Desk::new().architecture_name(), "router");
    assert_eq!(Hive::new().architecture_name(), "swarm");
    assert_eq!(Panel::new().architecture_name(), "debate");
    assert_eq!(Board::new().architecture_name(), "blackboard");
    assert_eq!(Pair::new().architecture_name(), "actor-critic");
    assert_eq!(Careful::new().architecture_name(), "self-refine");
    assert_eq!(Planner::new().architecture_name(), "plan-and-execute");
    assert_eq!(Billing::new().agent_description(), Some("invoices and refunds"));
    for agent in [Support::new().into_agent(), Desk::new().into_agent(), Hive::new().into_agent(), Panel::new().into_agent(), Board::new().into_agent(), Pair::new().into_agent()] {
        if let Err(e) = agent.check() {
            panic!("{e}");
        }
    }
}
