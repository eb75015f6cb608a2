use loomflow::prelude::*;

/// Look a customer up.
#[tool(read_only)]
fn lookup(email: String) -> String {
    email
}

/// You help.
#[agent(model = "echo", tools = [lookup, crate::lookup, lookup])]
struct Helper;

fn main() {}
