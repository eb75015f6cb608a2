use loomflow::prelude::*;

/// Help.
#[agent(model = "echo", architecture = reactt)]
struct Helper;

fn main() {}
