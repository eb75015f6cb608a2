use loomflow::prelude::*;

/// You help.
#[agent(model = "echo")]
#[derive(Clone, Debug, PartialEq)]
struct Helper;

fn main() {}
