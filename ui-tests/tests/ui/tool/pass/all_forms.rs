use loomflow::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
struct Query {
    text: String,
}

#[derive(Serialize)]
struct Hit {
    title: String,
}

struct Db;

/// A sync tool returning a plain value.
#[tool]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// An async tool returning a `Result` with a `ToolError`.
#[tool(read_only, idempotent, name = "search-docs")]
async fn search(
    ctx: &RunContext,
    user: UserId,
    run: RunId,
    session: Option<SessionId>,
    db: State<Db>,
    /// The query.
    query: Query,
    /// How many hits.
    limit: Option<u32>,
) -> Result<Vec<Hit>, ToolError> {
    let _ = (ctx, user, run, session, db, limit);
    Ok(vec![Hit { title: query.text }])
}

/// Returns a `Result` with any displayable error.
#[tool(destructive, description = "Delete a record.")]
async fn delete(id: u64) -> Result<(), std::io::Error> {
    let _ = id;
    Ok(())
}

/// Returns nothing.
#[tool(blocking)]
fn touch(
    /// The path.
    r#type: String,
) {
    let _ = r#type;
}

/// Takes lifetimes.
#[tool]
fn whoami<'a>(ctx: &'a RunContext) -> String {
    ctx.user().to_string()
}

/// Returns rich content.
#[tool]
fn picture() -> loomflow::tool::ToolOutput {
    loomflow::tool::ToolOutput::parts(vec![loomflow::model::Part::image_url("https://example.com/a.png")])
}

/// Uses a renamed crate path.
#[tool(crate = "::loomflow")]
fn renamed() -> &'static str {
    "ok"
}

fn main() {
    // The functions stay callable as written.
    assert_eq!(add(1, 2), 3);
    let _ = Agent::new("x")
        .model("echo")
        .tool(AddTool)
        .tool(SearchTool)
        .tool(DeleteTool)
        .tool(TouchTool)
        .tool(WhoamiTool)
        .tool(PictureTool)
        .tool(RenamedTool)
        .state(Db);
    assert_eq!(SearchTool.definition().name(), "search-docs");
    fn main_inner() {
        /// Tools can live inside functions.
        #[tool]
        fn local(x: u8) -> u8 {
            x
        }
        let _ = LocalTool;
    }
    main_inner();
}
