use loomflow::prelude::*;

/// Say something.
#[tool]
fn say(text: impl Into<String>) -> impl std::fmt::Display {
    text.into()
}

fn main() {}
