use loomflow::prelude::*;

/// Help.
#[agent(model = "echo", max_turns = -1, output_mode = tool, tools = lookup)]
struct Helper;

fn main() {}
