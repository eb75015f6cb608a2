use loomflow::prelude::*;

/// Not a function.
#[tool]
struct Add;

fn main() {}
