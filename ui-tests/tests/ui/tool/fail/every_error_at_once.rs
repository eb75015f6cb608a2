use loomflow::prelude::*;

struct Connection;

struct Runner;

impl Runner {
    #[tool(nmae = "x", blocking)]
    async fn run<T>(&self, _conn: Connection, _value: T) {}
}

fn main() {}
