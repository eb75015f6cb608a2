use loomflow::prelude::*;

struct Counter;

#[workflow]
impl Counter {
    #[node(start, next = describe)]
    async fn count(&self, text: String) -> usize {
        text.len()
    }

    #[node]
    async fn describe(&self, text: String) -> String {
        text
    }
}

fn main() {}
