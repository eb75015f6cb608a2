use loomflow::prelude::*;

#[agent(model = "echo")]
struct Helper;

fn main() {
    // The type still exists: its uses add no errors of their own.
    let _ = Helper::new();
}
