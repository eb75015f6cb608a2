use loomflow::prelude::*;

struct Split;

#[workflow]
impl Split {
    #[node(start, fan_out = [left, right])]
    fn split(&self, s: String) -> String {
        s
    }

    #[node(next = merge)]
    fn left(&self, s: String) -> String {
        s
    }

    #[node(next = merge)]
    fn right(&self, s: String) -> String {
        s
    }

    #[node]
    fn merge(&self, parts: (String, String)) -> String {
        parts.0 + &parts.1
    }
}

fn main() {}
