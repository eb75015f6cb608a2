use loomflow::prelude::*;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Ticket {
    team: String,
}

/// Triage.
#[agent(model = "echo", output = Ticket, output_mode = natve)]
struct Triage;

fn main() {}
