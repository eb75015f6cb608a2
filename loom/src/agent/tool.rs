//! An agent as a tool another agent, a workflow or an MCP client can call.

use serde::Serialize;

use super::Agent;
use crate::context::RunContext;
use crate::error::ConfigError;
use crate::tool::{Arguments, Tool, ToolDefinition, ToolError, ToolOutput};

/// An agent called as a tool (see [`Agent::as_tool`]).
pub struct AgentTool<O = String> {
    agent: Agent<O>,
    definition: ToolDefinition,
}

impl<O> std::fmt::Debug for AgentTool<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTool").field("name", &self.definition.name()).finish_non_exhaustive()
    }
}

impl<O: Serialize + Send + Sync + 'static> Agent<O> {
    /// This agent as a tool: the caller gives `{"input": "..."}`, the agent runs nested in the
    /// caller's run (same user, session and event stream, a run id of its own), and its
    /// answer is the result (text as it is, a typed output as JSON). A failed run is an
    /// error result the caller reads.
    ///
    /// ```
    /// use loomflow::prelude::*;
    ///
    /// let translator = Agent::new("Translate into French.").model("echo");
    /// let tool = translator.as_tool("translate", "Translate a text into French.")?;
    /// let writer = Agent::new("Write, then translate.").model("echo").tool(tool);
    /// # Ok::<(), loomflow::ConfigError>(())
    /// ```
    pub fn as_tool(&self, name: &str, description: &str) -> Result<AgentTool<O>, ConfigError> {
        let parameters = serde_json::json!({
            "type": "object",
            "properties": {"input": {"type": "string", "description": "What to ask the agent."}},
            "required": ["input"],
            "additionalProperties": false
        });
        Ok(AgentTool { agent: self.clone(), definition: ToolDefinition::new(name, description, parameters)? })
    }
}

impl<O> AgentTool<O> {
    /// The agent.
    pub fn agent(&self) -> &Agent<O> {
        &self.agent
    }
}

#[async_trait::async_trait]
impl<O: Serialize + Send + Sync + 'static> Tool for AgentTool<O> {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let mut args = Arguments::parse(arguments)?;
        let input: String = args.take("input")?;
        args.finish(&["input"])?;
        let result = self.agent.run(input).within(ctx).await.map_err(|e| ToolError::new(e.to_string()))?;
        crate::__private::into_output(result.output)
    }
}
