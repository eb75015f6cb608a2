use loomflow::prelude::*;

/// Billing.
#[agent(model = "echo")]
struct Billing;

/// A manager without workers.
#[agent(model = "echo", architecture = supervisor)]
struct Manager;

/// A pair without its critic.
#[agent(model = "echo", architecture = actor_critic, actor = Billing)]
struct Pair;

fn main() {}
