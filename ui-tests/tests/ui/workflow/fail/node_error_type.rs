use loomflow::prelude::*;

struct Parse;

/// An error that is neither displayable nor a `NodeError`.
struct Opaque;

#[workflow]
impl Parse {
    #[node(start)]
    fn parse(&self, s: String) -> Result<u32, Opaque> {
        s.parse().map_err(|_| Opaque)
    }
}

fn main() {}
