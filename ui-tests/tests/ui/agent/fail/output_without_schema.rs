use loomflow::prelude::*;

#[derive(serde::Deserialize)]
struct Ticket {
    team: String,
}

/// Triage.
#[agent(model = "echo", output = Ticket)]
struct Triage;

fn main() {}
