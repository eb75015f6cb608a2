use loomflow::prelude::*;

#[agent(model = "echo", name = "", instructions = " ")]
struct Helper;

fn main() {}
