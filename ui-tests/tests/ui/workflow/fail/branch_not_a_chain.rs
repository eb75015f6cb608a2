use loomflow::prelude::*;

struct Split;

enum Side {
    Left(String),
    Right(String),
}

#[workflow]
impl Split {
    #[node(start, fan_out = [left, right])]
    fn split(&self, s: String) -> String {
        s
    }

    #[node(route = { Side::Left => merge, Side::Right => merge })]
    fn left(&self, s: String) -> Side {
        Side::Left(s)
    }

    #[node(next = merge)]
    fn right(&self, s: String) -> String {
        s
    }

    #[node(join)]
    fn merge(&self, parts: (String, String)) -> String {
        parts.0 + &parts.1
    }
}

fn main() {
    let _ = Side::Right(String::new());
}
