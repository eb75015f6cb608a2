use loomflow::prelude::*;

/// Add two integers.
#[tool(read_only, name = "add", read_only)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
