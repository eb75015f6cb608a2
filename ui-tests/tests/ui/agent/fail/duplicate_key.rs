use loomflow::prelude::*;

/// Help.
#[agent(model = "echo", max_turns = 3, model = "echo")]
struct Helper;

fn main() {}
