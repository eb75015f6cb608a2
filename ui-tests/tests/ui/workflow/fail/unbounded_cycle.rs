use loomflow::prelude::*;

struct Writer;

enum Review {
    Approve(String),
    Revise(String),
}

#[workflow]
impl Writer {
    #[node(start, next = review)]
    fn draft(&self, s: String) -> String {
        s
    }

    #[node(route = { Review::Approve => publish, Review::Revise => revise })]
    fn review(&self, s: String) -> Review {
        if s.len() > 10 { Review::Approve(s) } else { Review::Revise(s) }
    }

    #[node(next = review)]
    fn revise(&self, s: String) -> String {
        s + "!"
    }

    #[node]
    fn publish(&self, s: String) -> String {
        s
    }
}

fn main() {}
