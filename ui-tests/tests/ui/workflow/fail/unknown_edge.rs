use loomflow::prelude::*;

struct Writer;

#[workflow]
impl Writer {
    #[node(start, next = reveiw)]
    async fn draft(&self, topic: String) -> String {
        topic
    }

    #[node]
    async fn review(&self, draft: String) -> String {
        draft
    }
}

fn main() {}
