use loomflow::prelude::*;

/// You help.
#[agent(model = "echo")]
struct Helper<T>;

fn main() {}
