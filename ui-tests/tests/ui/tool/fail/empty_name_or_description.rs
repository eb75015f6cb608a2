use loomflow::prelude::*;

/// Add two numbers.
#[tool(name = "")]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[tool(description = "   ")]
fn sub(a: i64, b: i64) -> i64 {
    a - b
}

fn main() {}
