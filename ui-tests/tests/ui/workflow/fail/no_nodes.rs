use loomflow::prelude::*;

struct Empty;

#[workflow]
impl Empty {
    fn helper(&self) -> String {
        String::new()
    }
}

fn main() {}
