use loomflow::prelude::*;

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct Ticket {
    team: String,
}

impl Validate for Ticket {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Look up a customer.
#[tool]
fn lookup(email: String) -> String {
    email
}

mod more {
    use loomflow::prelude::*;

    /// Escalate.
    #[tool(destructive)]
    pub fn escalate(reason: String) -> String {
        reason
    }
}

/// Triage tickets.
#[agent(
    model = ScriptedModel::new([]),
    tools = [lookup, more::escalate],
    architecture = react,
    output = Ticket,
    output_mode = prompted,
    output_retries = 3,
    max_turns = 7,
    name = "triage",
    validate,
    crate = "::loomflow"
)]
pub struct Triage;

/// Chat.
#[agent(model = "echo")]
struct Chat {}

fn main() {
    let t: Agent<Ticket> = Triage::new().into();
    let _ = t;
    let _ = Chat::new().run("hi");
}
