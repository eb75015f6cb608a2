//! A workflow as a tool an agent can call.

use std::sync::Arc;

use serde::Serialize;

use super::Workflow;
use crate::context::RunContext;
use crate::error::ConfigError;
use crate::tool::{Arguments, Tool, ToolDefinition, ToolError, ToolOutput};

/// A workflow an agent calls as a tool (see [`Workflow::as_tool`]).
pub struct WorkflowTool<I, O> {
    workflow: Workflow<I, O>,
    definition: ToolDefinition,
}

impl<I, O> std::fmt::Debug for WorkflowTool<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowTool").field("name", &self.definition.name()).finish_non_exhaustive()
    }
}

impl<I, O> Workflow<I, O>
where
    I: From<String> + Send + 'static,
    O: Serialize + Send + 'static,
{
    /// This workflow as a tool: the model calls it with `{"input": "..."}`, the workflow runs
    /// nested in the agent's run (same user, session and event stream), and its output goes
    /// back to the model (text as it is, anything else as JSON). A failed run becomes an error
    /// result the model reads.
    pub fn as_tool(&self, name: &str, description: &str) -> Result<WorkflowTool<I, O>, ConfigError> {
        let parameters = serde_json::json!({
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The input of the workflow."}},
            "required": ["input"],
            "additionalProperties": false
        });
        Ok(WorkflowTool { workflow: self.clone(), definition: ToolDefinition::new(name, description, parameters)? })
    }
}

#[async_trait::async_trait]
impl<I, O> Tool for WorkflowTool<I, O>
where
    I: From<String> + Send + 'static,
    O: Serialize + Send + 'static,
{
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let mut args = Arguments::parse(arguments)?;
        let input: String = args.take("input")?;
        args.finish(&["input"])?;
        let result = self.workflow.run(I::from(input)).within(ctx).await.map_err(|e| ToolError::new(e.to_string()))?;
        crate::__private::into_output(result.output)
    }
}

impl<I, O> WorkflowTool<I, O> {
    /// The workflow.
    pub fn workflow(&self) -> &Workflow<I, O> {
        &self.workflow
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<WorkflowTool<String, String>>();
    let _ = Arc::new(());
}
