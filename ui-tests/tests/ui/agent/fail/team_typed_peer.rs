use loomflow::prelude::*;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Ticket {
    id: u32,
}

/// Triage, answering with a ticket.
#[agent(model = "echo", output = Ticket)]
struct Triage;

/// Billing.
#[agent(model = "echo")]
struct Billing;

/// A swarm peer must answer in text.
#[agent(model = "echo", architecture = swarm, peers = [Triage, Billing])]
struct Desk;

fn main() {}
