use loomflow::prelude::*;

/// You help.
#[agent(model = "echo", crate = "::not a path")]
struct Helper;

fn main() {}
