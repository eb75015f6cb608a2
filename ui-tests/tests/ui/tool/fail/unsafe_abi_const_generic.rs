use loomflow::prelude::*;

/// Peek at memory.
#[tool]
unsafe fn peek(address: u64) -> u64 {
    address
}

/// Call into C.
#[tool]
extern "C" fn from_c(x: u32) -> u32 {
    x
}

/// Repeat N times.
#[tool]
fn repeat<const N: usize>(text: String) -> String {
    text.repeat(N)
}

fn main() {}
