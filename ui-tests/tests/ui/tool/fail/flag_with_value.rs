use loomflow::prelude::*;

/// Delete a file.
#[tool(destructive = true, name = 42)]
fn delete(path: String) -> String {
    path
}

fn main() {}
