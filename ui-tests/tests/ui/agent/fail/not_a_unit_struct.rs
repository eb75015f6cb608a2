use loomflow::prelude::*;

/// Help.
#[agent(model = "echo")]
struct Helper {
    calls: u32,
}

fn main() {}
