use loomflow::prelude::*;

struct Pipeline;

#[workflow]
impl Pipeline {
    #[node(next = b)]
    fn a(&self, s: String) -> String {
        s
    }

    #[node]
    fn b(&self, s: String) -> String {
        s
    }
}

fn main() {}
