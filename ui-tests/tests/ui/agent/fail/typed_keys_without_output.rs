use loomflow::prelude::*;

/// You help.
#[agent(model = "echo", output_retries = 2, validate)]
struct Helper;

fn main() {}
