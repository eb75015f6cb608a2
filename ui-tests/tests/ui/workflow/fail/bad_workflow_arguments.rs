use loomflow::prelude::*;

struct Steps;

#[workflow(name = "", max_steps = 0, max_visit = 3, crate = "a b")]
impl Steps {
    #[node = start]
    fn first(&self, s: String) -> String {
        s
    }

    #[node(start)]
    fn generic<T>(&self, s: String) -> String {
        s
    }
}

fn main() {}
