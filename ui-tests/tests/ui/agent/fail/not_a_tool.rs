use loomflow::prelude::*;

/// A plain function, not a tool.
fn lookup(email: String) -> String {
    email
}

/// Help.
#[agent(model = "echo", tools = [lookup])]
struct Helper;

fn main() {}
