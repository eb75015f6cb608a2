//! Tool search: an agent with 500 tools sends the model a few definitions and `search_tools`,
//! and the model finds and calls the others.

mod common;

use std::sync::{Arc, Mutex};

use common::{Recorder, TempFile};
use loomflow::model::ToolResult;
use loomflow::prelude::*;
use loomflow::session::SqliteStore;
use loomflow::tool::{ToolDefinition, ToolOutput};
use loomflow::tools::search::ToolSearch;
use serde_json::json;

const VERBS: [(&str, &str); 10] = [
    ("get", "Fetch one {} by its id."),
    ("create", "Create a new {}."),
    ("update", "Change the fields of an existing {}."),
    ("delete", "Delete a {} for good."),
    ("list", "List the {} records that match a filter."),
    ("archive", "Move a {} to the archive."),
    ("export", "Export a {} as a CSV file."),
    ("import", "Import a {} from a CSV file."),
    ("merge", "Merge two duplicate {} records into one."),
    ("audit", "Show the change history of a {}."),
];

/// Fifty record kinds, one word each.
const NOUNS: &str = "invoice customer order shipment refund ticket user product coupon subscription payment \
    warehouse supplier contract employee project task meeting report budget lead campaign article comment review \
    asset device license domain certificate backup server database queue webhook alert incident deployment release \
    branch calendar document folder playlist recipe vehicle parcel flight hotel reservation";

fn nouns() -> impl Iterator<Item = &'static str> {
    NOUNS.split_whitespace()
}

/// A generated back-office tool: `{verb}_{noun}`, taking a record id.
struct Generated {
    definition: ToolDefinition,
    log: Arc<Mutex<Vec<String>>>,
}

#[loomflow::async_trait]
impl Tool for Generated {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, _ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        #[derive(serde::Deserialize)]
        struct Args {
            id: String,
        }
        let args: Args = serde_json::from_str(arguments).map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
        let name = self.definition.name();
        self.log.lock().map(|mut log| log.push(format!("{name} {}", args.id))).unwrap_or(());
        Ok(ToolOutput::text(format!("{name}: done for {}", args.id)))
    }
}

fn generated(log: &Arc<Mutex<Vec<String>>>) -> anyhow::Result<Vec<Arc<dyn Tool>>> {
    let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
    for noun in nouns() {
        for (verb, description) in VERBS {
            let definition = ToolDefinition::new(
                format!("{verb}_{noun}"),
                description.replace("{}", noun),
                json!({
                    "type": "object",
                    "properties": {"id": {"type": "string", "description": "The record's id."}},
                    "required": ["id"]
                }),
            )?;
            tools.push(Arc::new(Generated { definition, log: Arc::clone(log) }));
        }
    }
    assert_eq!(tools.len(), 500);
    Ok(tools)
}

fn back_office(model: &ScriptedModel, log: &Arc<Mutex<Vec<String>>>) -> anyhow::Result<Agent> {
    Ok(Agent::new("You run the back office.")
        .model(model.clone())
        .tools(generated(log)?)
        .tool_search(ToolSearch::new().always(["get_customer"]).top_k(8)))
}

fn results_of<'a>(messages: &'a [Message], name: &str) -> Vec<&'a ToolResult> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Tool(r) if r.name == name => Some(r),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn with_500_tools_the_model_gets_a_few_searches_and_calls_the_one_it_found() -> anyhow::Result<()> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("search_tools", json!({"query": "export a customer to CSV"})),
        ScriptedTurn::tool_call("export_customer", json!({"id": "c-42"})),
        ScriptedTurn::text("Exported c-42."),
    ]);
    let agent = back_office(&model, &log)?;
    let recorder = Recorder::new();
    let result = agent.run("Please handle case c-42 for me.").on_event(recorder.listener()).await?;
    assert_eq!(result.output, "Exported c-42.");

    let requests = model.requests();
    // The first request: the always-on tool, `search_tools` and at most 8 others.
    let first = requests[0].tool_names();
    assert!(first.len() <= 10, "{} definitions: {first:?}", first.len());
    assert!(first.contains(&"search_tools") && first.contains(&"get_customer"), "{first:?}");
    assert!(!first.contains(&"export_customer"), "{first:?}");

    // The search found the right tool first, with what the model needs to call it.
    let found = results_of(&result.messages, "search_tools");
    assert!(!found[0].is_error, "{:?}", found[0]);
    let found: serde_json::Value = serde_json::from_str(&found[0].content.text())?;
    assert_eq!(found["tools"][0]["name"], "export_customer");
    assert_eq!(found["tools"][0]["description"], "Export a customer as a CSV file.");
    assert_eq!(found["tools"][0]["parameters"]["required"], json!(["id"]));
    assert!(found["tools"].as_array().is_some_and(|t| t.len() <= 5), "{found}");

    // From the next turn on, it is offered, and the call runs.
    let second = requests[1].tool_names();
    assert!(second.contains(&"export_customer") && second.len() <= 15, "{second:?}");
    let exported = results_of(&result.messages, "export_customer");
    assert_eq!((exported[0].content.text().as_ref(), exported[0].is_error), ("export_customer: done for c-42", false));
    assert_eq!(*log.lock().map_err(|e| anyhow::anyhow!("{e}"))?, ["export_customer c-42"]);

    // The events count what was sent, not the 500.
    let offered: Vec<usize> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::ModelRequest { tools, .. } => Some(tools),
            _ => None,
        })
        .collect();
    assert_eq!(offered.len(), 3);
    assert!(offered.iter().all(|&n| n <= 15), "{offered:?}");
    Ok(())
}

#[tokio::test]
async fn the_definitions_most_relevant_to_the_question_go_with_the_first_request() -> anyhow::Result<()> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("archive_invoice", json!({"id": "inv-7"})),
        ScriptedTurn::text("Archived."),
    ]);
    let agent = back_office(&model, &log)?;
    agent.run("Archive the old invoice inv-7.").await?;
    let requests = model.requests();
    let first = requests[0].tool_names();
    assert!(first.contains(&"archive_invoice"), "{first:?}");
    assert!(first.len() <= 10, "{first:?}");
    // The definitions keep the agent's order (a stable prefix for prompt caches).
    let position = |name: &str| nouns().position(|n| name.ends_with(n));
    let order: Vec<Option<usize>> = first.iter().filter(|n| **n != "search_tools").map(|n| position(n)).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{first:?}");
    Ok(())
}

#[tokio::test]
async fn a_tool_that_was_not_offered_still_runs() -> anyhow::Result<()> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("merge_vehicle", json!({"id": "v-1"})),
        ScriptedTurn::text("Merged."),
    ]);
    let agent = back_office(&model, &log)?;
    let result = agent.run("Hello.").await?;
    assert!(!model.requests()[0].tool_names().contains(&"merge_vehicle"));
    let merged = results_of(&result.messages, "merge_vehicle");
    assert_eq!((merged[0].content.text().as_ref(), merged[0].is_error), ("merge_vehicle: done for v-1", false));
    Ok(())
}

#[tokio::test]
async fn a_misspelt_tool_gets_a_suggestion_not_a_list_of_500_names() -> anyhow::Result<()> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("export_custmer", json!({"id": "c-1"})),
        ScriptedTurn::text("Sorry."),
    ]);
    let result = back_office(&model, &log)?.run("Export c-1.").await?;
    let error = results_of(&result.messages, "export_custmer");
    let text = error[0].content.text();
    assert!(error[0].is_error);
    assert!(text.starts_with("unknown tool `export_custmer` (did you mean `export_customer`?); available tools: "));
    assert!(text.ends_with(", and 481 more"), "{text}");
    Ok(())
}

#[tokio::test]
async fn tools_found_in_one_process_are_offered_in_the_next() -> anyhow::Result<()> {
    let file = TempFile::new("tool-search");
    let log = Arc::new(Mutex::new(Vec::new()));
    {
        let model = ScriptedModel::new([
            ScriptedTurn::tool_call("search_tools", json!({"query": "refund", "limit": 2})),
            ScriptedTurn::text("I can refund or look refunds up; which one?"),
        ]);
        let agent = back_office(&model, &log)?.store(Arc::new(SqliteStore::open(file.path())?));
        agent.run("Help with a payment.").user("u").session("s").await?;
    }

    // Another process: the tools found are read back from the session's history.
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("get_refund", json!({"id": "r-9"})),
        ScriptedTurn::text("Refund r-9 is on its way."),
    ]);
    let agent = back_office(&model, &log)?.store(Arc::new(SqliteStore::open(file.path())?));
    let result = agent.run("Look up r-9, please.").user("u").session("s").await?;
    assert_eq!(result.output, "Refund r-9 is on its way.");
    let first = model.requests()[0].tool_names().into_iter().map(str::to_owned).collect::<Vec<_>>();
    let found = results_of(&result.messages, "search_tools");
    let found: serde_json::Value = serde_json::from_str(&found[0].content.text())?;
    let names: Vec<&str> = found["tools"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names.len(), 2);
    for name in names {
        assert!(first.iter().any(|n| n == name), "{name} not in {first:?}");
    }
    Ok(())
}

#[tokio::test]
async fn below_the_threshold_every_tool_is_sent_and_there_is_no_search() -> anyhow::Result<()> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let model = ScriptedModel::new([ScriptedTurn::text("Hi.")]);
    let agent = Agent::new("x")
        .model(model.clone())
        .tools(generated(&log)?.into_iter().take(3))
        .tool_search(ToolSearch::new().threshold(3));
    agent.run("Hello.").await?;
    assert_eq!(model.requests()[0].tool_names(), ["get_invoice", "create_invoice", "update_invoice"]);
    Ok(())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Receipt {
    id: String,
}

#[tokio::test]
async fn the_typed_outputs_final_answer_is_always_offered() -> anyhow::Result<()> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let model = ScriptedModel::new([ScriptedTurn::tool_call("final_answer", json!({"id": "r-1"}))]);
    let agent = back_office(&model, &log)?.output::<Receipt>().output_mode(OutputMode::Tool);
    let result = agent.run("Make a receipt.").await?;
    assert_eq!(result.output.id, "r-1");
    let first = model.requests()[0].tool_names().into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert!(first.iter().any(|n| n == "final_answer") && first.len() <= 11, "{first:?}");
    Ok(())
}

#[tokio::test]
async fn a_bad_search_is_an_error_the_model_can_correct() -> anyhow::Result<()> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("search_tools", json!({"query": "zebra"})),
        ScriptedTurn::tool_call("search_tools", json!({"words": "refund"})),
        ScriptedTurn::text("Nothing."),
    ]);
    let result = back_office(&model, &log)?.run("Hello.").await?;
    let errors = results_of(&result.messages, "search_tools");
    assert!(errors.iter().all(|r| r.is_error));
    assert!(errors[0].content.text().starts_with("no tool matches `zebra`; search again with other words"));
    assert!(errors[1].content.text().contains("missing field `query`"), "{:?}", errors[1]);
    Ok(())
}

#[test]
fn a_misconfigured_search_is_refused_before_any_run() -> anyhow::Result<()> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let agent = Agent::new("x").model("echo").tools(generated(&log)?).tool_search(ToolSearch::new().always(["nope"]));
    let err = agent.check().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("the always-on tool `nope` is not one of the agent's tools"), "{err}");

    /// A tool of the user's own named like the search tool.
    #[tool]
    fn search_tools(query: String) -> String {
        query
    }
    let agent =
        Agent::new("x").model("echo").tools(generated(&log)?).tool(SearchToolsTool).tool_search(ToolSearch::new());
    assert!(matches!(agent.check(), Err(ConfigError::DuplicateTool { name }) if name == "search_tools"));
    Ok(())
}
