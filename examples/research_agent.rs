//! Recipe: a research agent. Plan-and-Execute plans the research, carries out each step with a
//! search tool over a small library kept in this file, and writes an answer that cites its
//! sources as `[id]`. The search tool's results carry `citations`; every id the answer cites is
//! checked against the passages the run read.
//!
//! ```sh
//! cargo run -p loomflow-examples --example research_agent
//! LOOM_MODEL=gpt-4.1-mini OPENAI_API_KEY=... cargo run -p loomflow-examples --example research_agent
//! ```

use std::sync::{Arc, Mutex};

use loomflow::Citation;
use loomflow::arch::PlanAndExecute;
use loomflow::model::from_env_or;
use loomflow::prelude::*;
use serde_json::{Value, json};

/// The library: (id, title, text).
const LIBRARY: &[(&str, &str, &str)] = &[
    (
        "kay-1733",
        "The flying shuttle",
        "John Kay's flying shuttle of 1733 let one weaver throw the weft across a wide loom.",
    ),
    (
        "jacquard-1804",
        "The Jacquard loom",
        "In 1804 Joseph Marie Jacquard built a loom driven by chains of punched cards: the holes of each card chose the warp threads lifted for one row of the pattern.",
    ),
    (
        "babbage-1837",
        "The Analytical Engine",
        "Charles Babbage's Analytical Engine (1837) was to read its program and its data from punched cards, an idea he took from the Jacquard loom.",
    ),
    (
        "lovelace-1843",
        "Ada Lovelace's notes",
        "In 1843 Ada Lovelace wrote that the Analytical Engine weaves algebraic patterns just as the Jacquard loom weaves flowers and leaves.",
    ),
    (
        "hollerith-1890",
        "The Hollerith tabulator",
        "Herman Hollerith's machines counted the 1890 US census from punched cards; his company later became IBM.",
    ),
];

/// Search the library on the history of computing. Returns the two best passages with their ids; cite them as [id].
#[tool(read_only)]
fn search(
    /// Keywords, e.g. "Jacquard punched cards".
    query: String,
) -> Value {
    let words: Vec<String> = query.to_lowercase().split_whitespace().map(str::to_owned).collect();
    let mut hits: Vec<(usize, &(&str, &str, &str))> = LIBRARY
        .iter()
        .map(|doc| (words.iter().filter(|w| doc.2.to_lowercase().contains(w.as_str())).count(), doc))
        .filter(|(score, _)| *score > 0)
        .collect();
    hits.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    hits.truncate(2);
    let passages: Vec<Value> =
        hits.iter().map(|(_, (id, title, text))| json!({"id": id, "title": title, "text": text})).collect();
    let citations: Vec<Value> = hits
        .iter()
        .map(|(_, (id, title, _))| json!({"kind": "passage", "id": id, "title": title, "source": "library"}))
        .collect();
    json!({"passages": passages, "citations": citations})
}

/// Offline, each role of Plan-and-Execute in turn: the planner, two executor steps (a search,
/// then what it found), the synthesizer.
fn script() -> ScriptedModel {
    let say = |text: &str| ScriptedTurn::text(text.to_owned());
    ScriptedModel::new([
        say(r#"{"steps": ["Find how the Jacquard loom was programmed", "Find who took the idea into computing"]}"#),
        ScriptedTurn::tool_call("search", json!({"query": "Jacquard loom punched cards"})),
        say("The Jacquard loom (1804) read its pattern from punched cards [jacquard-1804]."),
        ScriptedTurn::tool_call("search", json!({"query": "Analytical Engine census"})),
        say("Babbage's Analytical Engine took its punched cards from the loom [babbage-1837]."),
        say("The Jacquard loom of 1804 was programmed with punched cards [jacquard-1804]; Charles Babbage took the \
             idea for the programs and data of his Analytical Engine [babbage-1837]."),
    ])
}

/// Prints the plan and the searches, and keeps the citations of every search result. (Each
/// step's executor runs a loop of its own, whose tool results are not in the run's messages,
/// so `RunResult::citations` does not see them; the events do.)
fn listener(read: Arc<Mutex<Vec<Citation>>>) -> impl Fn(RunEvent) + Send + Sync + 'static {
    move |event: RunEvent| match event.kind {
        EventKind::Architecture { name, payload } if name == "plan.made" => println!("plan: {}", payload["steps"]),
        EventKind::ToolCallStarted { name, arguments, .. } => println!("  {name}({arguments})"),
        EventKind::ToolCallFinished { name, output, is_error: false, .. } if name == "search" => {
            let found: Vec<Citation> = serde_json::from_str::<Value>(&output)
                .ok()
                .and_then(|v| serde_json::from_value(v["citations"].clone()).ok())
                .unwrap_or_default();
            let Ok(mut read) = read.lock() else { return };
            for citation in found {
                if !read.contains(&citation) {
                    read.push(citation);
                }
            }
        }
        _ => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let read = Arc::new(Mutex::new(Vec::<Citation>::new()));
    let researcher = Agent::new("You research questions in the library and cite every claim as [id].")
        .name("researcher")
        .model(from_env_or(script())?)
        .tool(SearchTool)
        .architecture(PlanAndExecute::new().max_steps(4))
        .on_event(listener(Arc::clone(&read)));

    let question = "How did the Jacquard loom influence computing?";
    println!("question: {question}");
    let result = researcher.run(question).user("ada").await?;
    println!("\nanswer: {}\n", result.output);

    let read = read.lock().map(|r| r.clone()).unwrap_or_default();
    let cited: Vec<&str> =
        result.output.split('[').skip(1).filter_map(|s| s.split_once(']').map(|(id, _)| id)).collect();
    println!("sources read:");
    for c in &read {
        let mark = if cited.contains(&c.id.as_str()) { "cited" } else { "     " };
        println!("  {mark} [{}] {}", c.id, c.title.as_deref().unwrap_or(""));
    }
    let unknown: Vec<&&str> = cited.iter().filter(|id| !read.iter().any(|c| c.id == **id)).collect();
    match unknown.is_empty() {
        true => println!("all {} citations in the answer point at passages the run read", cited.len()),
        false => println!("the answer cites passages the run never read: {unknown:?}"),
    }
    println!("{} model calls, {} searches", result.turns, result.tool_calls);
    Ok(())
}
