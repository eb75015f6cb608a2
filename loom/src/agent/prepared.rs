//! What every run of one agent configuration shares, computed once.

use std::sync::Arc;

use super::Agent;
use crate::model::{Capabilities, Message, ResponseFormat, ToolChoice};
use crate::output::{self, FINAL_ANSWER_TOOL, OutputMode};
use crate::tool::{ToolDefinition, ToolSet};

/// The system message, the tools offered, and how the answer is constrained, for the two
/// kinds of turn: normal turns (the agent may use its tools) and retry turns (the model
/// corrects an answer that did not parse).
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) mode: OutputMode,
    pub(crate) system: Option<Message>,
    pub(crate) tools: Vec<ToolDefinition>,
    pub(crate) tool_choice: ToolChoice,
    pub(crate) format: Option<ResponseFormat>,
    /// Send the response format on normal turns too (only when the agent has no tools of
    /// its own, so the format never keeps the model from calling them).
    pub(crate) format_on_normal_turns: bool,
    pub(crate) retry_tools: Vec<ToolDefinition>,
    pub(crate) retry_choice: ToolChoice,
    /// For an architecture's answer call: the instruction to answer in the output type's
    /// JSON, when the provider does not constrain the answer itself.
    pub(crate) answer_directive: Option<Arc<str>>,
    /// One of the agent's tools ends the turn when called ([`ToolHints::ends_turn`](crate::tool::ToolHints)).
    pub(crate) ends_turn: bool,
    /// The agent's tools, one per line, for a planner's prompt (made at the first use).
    pub(crate) tool_list: std::sync::OnceLock<String>,
    /// Tool search, when it is on: which of `tools` each request offers.
    #[cfg(feature = "tools")]
    pub(crate) search: Option<crate::tools::search::Searcher>,
    /// How the conversation sent to the model is kept within its budget.
    pub(crate) compaction: Option<super::Compaction>,
}

/// The tools of an agent with tool sources, merged as of one generation of the sources, and
/// what runs with them share.
#[derive(Debug)]
pub(crate) struct DynamicTools {
    pub(crate) generation: u64,
    pub(crate) tools: ToolSet,
    pub(crate) prepared: Prepared,
}

impl Prepared {
    pub(crate) fn new<O>(agent: &Agent<O>) -> Self {
        Self::with_tools(agent, &agent.tools)
    }

    /// What runs of `agent` share when they offer `tools`.
    pub(crate) fn with_tools<O>(agent: &Agent<O>, tools: &ToolSet) -> Self {
        let capabilities = agent.model.as_ref().map_or_else(Capabilities::default, |m| m.capabilities());
        #[cfg(feature = "tools")]
        let search = agent.tool_search.as_deref().and_then(|s| s.prepare(tools));
        #[cfg(feature = "tools")]
        let own_tools = search.as_ref().map_or(tools, |s| s.tools()).definitions();
        #[cfg(not(feature = "tools"))]
        let own_tools = tools.definitions();
        let ends_turn = own_tools.iter().any(|t| t.hints().ends_turn);
        let text_system =
            || (!agent.instructions.is_empty()).then(|| Message::System { content: Arc::clone(&agent.instructions) });
        let Some(schema) = agent.output.schema.as_deref() else {
            return Self {
                mode: OutputMode::Auto,
                system: text_system(),
                tools: own_tools.to_vec(),
                tool_choice: ToolChoice::Auto,
                format: None,
                format_on_normal_turns: false,
                retry_tools: Vec::new(),
                retry_choice: ToolChoice::Auto,
                answer_directive: None,
                ends_turn,
                tool_list: Default::default(),
                compaction: agent.compaction.clone(),
                #[cfg(feature = "tools")]
                search: search.clone(),
            };
        };
        let mode = agent.output.mode.resolve(capabilities);
        match mode {
            OutputMode::Tool => {
                let final_tool = output::final_answer_tool(schema);
                let mut tools = own_tools.to_vec();
                tools.push(final_tool.clone());
                let forced = ToolChoice::Tool(FINAL_ANSWER_TOOL.to_owned());
                Self {
                    mode,
                    system: text_system(),
                    tool_choice: if own_tools.is_empty() { forced.clone() } else { ToolChoice::Auto },
                    tools,
                    format: None,
                    format_on_normal_turns: false,
                    retry_tools: vec![final_tool],
                    retry_choice: forced,
                    answer_directive: Some(Arc::from(output::directive(schema))),
                    ends_turn,
                    tool_list: Default::default(),
                    compaction: agent.compaction.clone(),
                    #[cfg(feature = "tools")]
                    search: search.clone(),
                }
            }
            OutputMode::Native => Self {
                mode,
                system: text_system(),
                tools: own_tools.to_vec(),
                tool_choice: ToolChoice::Auto,
                format: Some(output::response_format(schema)),
                format_on_normal_turns: own_tools.is_empty(),
                retry_tools: Vec::new(),
                retry_choice: ToolChoice::Auto,
                answer_directive: None,
                ends_turn,
                tool_list: Default::default(),
                compaction: agent.compaction.clone(),
                #[cfg(feature = "tools")]
                search: search.clone(),
            },
            _ => {
                let directive = output::directive(schema);
                let system = if agent.instructions.is_empty() {
                    directive.clone()
                } else {
                    format!("{}\n\n{directive}", agent.instructions)
                };
                Self {
                    mode: OutputMode::Prompted,
                    system: Some(Message::system(system)),
                    tools: own_tools.to_vec(),
                    tool_choice: ToolChoice::Auto,
                    format: None,
                    format_on_normal_turns: false,
                    retry_tools: Vec::new(),
                    retry_choice: ToolChoice::Auto,
                    answer_directive: Some(Arc::from(directive)),
                    ends_turn,
                    tool_list: Default::default(),
                    compaction: agent.compaction.clone(),
                    #[cfg(feature = "tools")]
                    search: search.clone(),
                }
            }
        }
    }

    /// The tools a run calls: the agent's, and `search_tools` when tool search is on.
    pub(crate) fn tool_set<'a>(&'a self, own: &'a ToolSet) -> &'a ToolSet {
        #[cfg(feature = "tools")]
        if let Some(search) = &self.search {
            return search.tools();
        }
        own
    }
}
