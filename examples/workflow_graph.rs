//! A graph declared with `#[workflow]`: draft → review → revise, a cycle bounded by
//! `max_visits`, then a fan-out whose branches are joined as a typed tuple.
//!
//! ```sh
//! cargo run --example workflow_graph
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use loomflow::prelude::*;

/// What the reviewer decides.
enum Review {
    Approve(String),
    Revise(String),
}

struct Newsroom {
    reviews: AtomicU32,
}

#[workflow(name = "newsroom")]
impl Newsroom {
    #[node(start, next = review)]
    async fn draft(&self, topic: String) -> String {
        format!("Looms and {topic}")
    }

    /// Approves on the third reading.
    #[node(route = { Review::Approve => publish, Review::Revise => revise })]
    async fn review(&self, draft: String) -> Review {
        if self.reviews.fetch_add(1, Ordering::SeqCst) >= 2 { Review::Approve(draft) } else { Review::Revise(draft) }
    }

    #[node(next = review, max_visits = 3)]
    async fn revise(&self, draft: String) -> String {
        format!("{draft}, revised")
    }

    #[node(fan_out = [headline, teaser])]
    async fn publish(&self, article: String) -> String {
        article
    }

    #[node(next = layout)]
    async fn headline(&self, article: String) -> String {
        article.to_uppercase()
    }

    #[node(next = layout)]
    async fn teaser(&self, article: String) -> usize {
        article.split_whitespace().count()
    }

    #[node(join)]
    async fn layout(&self, parts: (String, usize)) -> String {
        let (headline, words) = parts;
        format!("{headline} ({words} words)")
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let newsroom = Newsroom { reviews: AtomicU32::new(0) }.into_workflow();
    let result = newsroom.run("rust".to_owned()).await?;
    println!("{}", result.output);
    println!("visited: {:?}", result.visited);
    println!("\n{}", newsroom.to_mermaid());
    Ok(())
}
