use loomflow::prelude::*;
use loomflow::tool::{ToolDefinition, ToolOutput};

/// A tool written by hand, listed by its type.
#[derive(Default)]
struct Clock;

#[loomflow::async_trait]
impl Tool for Clock {
    fn definition(&self) -> &ToolDefinition {
        static DEFINITION: std::sync::OnceLock<ToolDefinition> = std::sync::OnceLock::new();
        DEFINITION.get_or_init(|| {
            ToolDefinition::new("clock", "The time.", serde_json::json!({"type": "object", "properties": {}}))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    }
    async fn call(&self, _ctx: &RunContext, _arguments: &str) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text("noon"))
    }
}

mod tools {
    use loomflow::prelude::*;

    /// Look a customer up.
    #[tool(read_only)]
    pub fn lookup(email: String) -> String {
        email
    }
}

/// You help.
#[agent(model = "echo", tools = [Clock, tools::lookup])]
struct Helper;

fn main() {
    let helper = Helper::new();
    assert_eq!(helper.tool_set_ref().names().collect::<Vec<_>>(), ["clock", "lookup"]);
    // A `#[tool]` function stays a function.
    assert_eq!(tools::lookup("a@b.c".to_owned()), "a@b.c");
}
