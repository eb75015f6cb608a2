use loomflow::prelude::*;

struct Split;

struct Ticket(String);

#[workflow]
impl Split {
    #[node(start, fan_out = [left, right])]
    fn split(&self, s: String) -> Ticket {
        Ticket(s)
    }

    #[node(next = merge)]
    fn left(&self, t: Ticket) -> String {
        t.0
    }

    #[node(next = merge)]
    fn right(&self, t: Ticket) -> String {
        t.0
    }

    #[node(join)]
    fn merge(&self, parts: (String, String)) -> String {
        parts.0 + &parts.1
    }
}

fn main() {}
