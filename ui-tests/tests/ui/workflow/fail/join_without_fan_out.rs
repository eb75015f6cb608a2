use loomflow::prelude::*;

struct Lonely;

#[workflow]
impl Lonely {
    #[node(start, next = merge)]
    fn first(&self, s: String) -> String {
        s
    }

    #[node(join)]
    fn merge(&self, s: String) -> String {
        s
    }
}

fn main() {}
