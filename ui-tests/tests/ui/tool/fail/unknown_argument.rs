use loomflow::prelude::*;

/// Add two integers.
#[tool(nmae = "add")]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {
    // The stand-in type keeps uses of the tool from adding errors of their own.
    let _ = Agent::new("x").tool(AddTool);
}
