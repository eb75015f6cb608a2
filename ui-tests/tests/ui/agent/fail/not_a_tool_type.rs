use loomflow::prelude::*;

/// Not a tool: a plain type.
#[derive(Default)]
struct Notebook;

/// A tool without a way to make one from nothing.
struct Needs {
    definition: loomflow::tool::ToolDefinition,
}

#[loomflow::async_trait]
impl Tool for Needs {
    fn definition(&self) -> &loomflow::tool::ToolDefinition {
        &self.definition
    }
    async fn call(&self, _ctx: &RunContext, _arguments: &str) -> Result<loomflow::tool::ToolOutput, ToolError> {
        Ok(loomflow::tool::ToolOutput::text("x"))
    }
}

/// You help.
#[agent(model = "echo", tools = [Notebook, Needs])]
struct Helper;

fn main() {}
