use loomflow::prelude::*;

/// Billing.
#[agent(model = "echo")]
struct Billing;

/// Routes with the key of a supervisor.
#[agent(model = "echo", architecture = router, workers = [Billing], routes = [Billing])]
struct Desk;

/// A team without an architecture.
#[agent(model = "echo", peers = [Billing, Billing])]
struct Loose;

/// A judge for a single-agent loop.
#[agent(model = "echo", architecture = reflexion, judge = Billing)]
struct Lone;

fn main() {}
