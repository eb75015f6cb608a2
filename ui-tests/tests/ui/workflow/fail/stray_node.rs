use loomflow::prelude::*;

struct Pipeline;

impl Pipeline {
    #[node(start)]
    fn a(&self, s: String) -> String {
        s
    }
}

fn main() {}
