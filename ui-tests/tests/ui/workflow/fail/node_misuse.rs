use loomflow::prelude::*;

struct Pipeline;

#[workflow]
impl Pipeline {
    #[node(strat, next = b, fan_out = [b])]
    fn a(&self, s: String) -> String {
        s
    }

    #[node]
    fn b(&self, first: String, second: String) -> String {
        first + &second
    }

    #[node(max_visits = 0)]
    fn c(&mut self, s: String) -> String {
        s
    }
}

fn main() {}
