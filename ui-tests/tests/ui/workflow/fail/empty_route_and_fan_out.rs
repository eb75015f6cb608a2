use loomflow::prelude::*;

struct Nothing;

enum Never {}

#[workflow]
impl Nothing {
    #[node(start, route = {})]
    fn pick(&self, s: String) -> Never {
        panic!("{s}")
    }
}

struct Nowhere;

#[workflow]
impl Nowhere {
    #[node(start, fan_out = [])]
    fn split(&self, s: String) -> String {
        s
    }
}

fn main() {}
