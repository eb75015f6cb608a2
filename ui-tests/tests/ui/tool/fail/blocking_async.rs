use loomflow::prelude::*;

/// Fetch a page.
#[tool(blocking)]
async fn fetch(url: String) -> String {
    url
}

fn main() {}
