use loomflow::prelude::*;

struct Connection;

/// Run a query.
#[tool]
fn query(conn: Connection, sql: String) -> String {
    let _ = conn;
    sql
}

fn main() {}
