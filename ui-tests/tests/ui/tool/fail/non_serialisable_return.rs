use loomflow::prelude::*;

struct Handle;

/// Open a handle.
#[tool]
fn open() -> Handle {
    Handle
}

fn main() {}
