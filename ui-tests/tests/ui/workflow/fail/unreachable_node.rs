use loomflow::prelude::*;

struct Pipeline;

#[workflow]
impl Pipeline {
    #[node(start, next = b)]
    fn a(&self, s: String) -> String {
        s
    }

    #[node]
    fn b(&self, s: String) -> String {
        s
    }

    #[node(next = b)]
    fn orphan(&self, s: String) -> String {
        s
    }
}

fn main() {}
