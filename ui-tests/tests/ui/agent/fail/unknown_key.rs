use loomflow::prelude::*;

/// Help.
#[agent(modle = "echo")]
struct Helper;

fn main() {
    let _ = Helper::new();
}
