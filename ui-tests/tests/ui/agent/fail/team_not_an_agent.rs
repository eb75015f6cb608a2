use loomflow::prelude::*;

/// An agent.
#[agent(model = "echo")]
struct Billing;

/// Not an agent: a plain struct.
#[derive(Default)]
struct Ledger;

/// A worker that is not an agent.
#[agent(model = "echo", architecture = supervisor, workers = [Billing, Ledger])]
struct Manager;

fn main() {}
