//! The twelve architectures, each on a scripted model: its name, the roles it called in order
//! (`worker:role` for a team member's calls), and its answer. Runs offline.
//!
//! ```sh
//! cargo run --example architectures
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use loomflow::arch::{
    ActorCritic, Blackboard, Debate, PlanAndExecute, ReAct, ReWoo, Reflexion, Router, SelfRefine, Supervisor, Swarm,
    TreeOfThoughts,
};
use loomflow::prelude::*;
use serde_json::json;

/// The weather in a city.
#[tool(read_only)]
fn weather(city: String) -> String {
    format!("sunny, 22°C in {city}")
}

fn say(text: impl Into<String>) -> ScriptedTurn {
    ScriptedTurn::text(text.into())
}

fn scripted(turns: impl IntoIterator<Item = ScriptedTurn>) -> ScriptedModel {
    ScriptedModel::new(turns)
}

/// A team member answering `answer`.
fn member(name: &str, answer: &str) -> Agent {
    let answer = answer.to_owned();
    Agent::new(format!("You are the {name} expert."))
        .name(name)
        .description(format!("{name} questions"))
        .model(ScriptedModel::from_fn(move |_| ScriptedTurn::text(answer.clone())))
}

/// Runs `agent` on `input` and prints its architecture, the roles called and the answer.
async fn show(agent: Agent, input: &str) -> anyhow::Result<()> {
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let names = Arc::new(Mutex::new(HashMap::<RunId, String>::new()));
    let listener = {
        let (calls, names) = (Arc::clone(&calls), Arc::clone(&names));
        move |event: RunEvent| match &event.kind {
            EventKind::RunStarted { name, .. } => {
                if let Ok(mut names) = names.lock() {
                    names.insert(event.run_id, name.as_deref().unwrap_or("agent").to_owned());
                }
            }
            EventKind::ModelRequest { role, .. } => {
                let who = match event.parent {
                    None => role.to_string(),
                    Some(_) => {
                        let name = names.lock().ok().and_then(|n| n.get(&event.run_id).cloned()).unwrap_or_default();
                        format!("{name}:{role}")
                    }
                };
                if let Ok(mut calls) = calls.lock() {
                    calls.push(who);
                }
            }
            _ => {}
        }
    };
    let name = agent.architecture_name().to_owned();
    let result = agent.on_event(listener).run(input).user("demo").await?;
    let calls = calls.lock().map(|c| c.join(" → ")).unwrap_or_default();
    println!("{name:<17}│ {calls}");
    println!("{:<17}│ answer: {}\n", "", result.output);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let react = Agent::new("You report the weather.")
        .model(scripted([ScriptedTurn::tool_call("weather", json!({"city": "Paris"})), say("Sunny in Paris.")]))
        .tool(WeatherTool)
        .architecture(ReAct::new());
    show(react, "Weather in Paris?").await?;

    let self_refine = Agent::new("You explain things.")
        .model(scripted([
            say("Looms weave."),
            say("Say what they weave."),
            say("Looms weave thread into cloth."),
            say("No issues."),
        ]))
        .architecture(SelfRefine::new());
    show(self_refine, "What does a loom do?").await?;

    let reflexion = Agent::new("You do sums.")
        .name("adder")
        .model(scripted([
            say("4"),
            say(json!({"score": 0.1, "reason": "2+3 is not 4"}).to_string()),
            say("Add the numbers again before answering."),
            say("5"),
            say(json!({"score": 1.0, "reason": "correct"}).to_string()),
        ]))
        .architecture(Reflexion::new());
    show(reflexion, "2+3?").await?;

    // Proposes two thoughts, scores them by content, writes from the best.
    let thinker = ScriptedModel::from_fn(|request| {
        let last = request.messages.last().map(|m| m.text().into_owned()).unwrap_or_default();
        if last.contains("Propose") {
            say(json!({"thoughts": ["Try 3 × 4", "Try 2 × 6"]}).to_string())
        } else if request.messages.first().is_some_and(|m| m.text().starts_with("You judge")) {
            let score = if last.contains("3 × 4") { 0.6 } else { 0.9 };
            say(json!({"score": score, "reason": "scripted"}).to_string())
        } else {
            say("12 = 2 × 6")
        }
    });
    let tot = Agent::new("You solve puzzles.").model(thinker).architecture(
        TreeOfThoughts::new()
            .branch_factor(2)
            .max_depth(1)
            .beam_width(1)
            .evaluator_prompt("You judge a line of reasoning: score it from 0 to 1."),
    );
    show(tot, "Write 12 as a product of two numbers, one even.").await?;

    let plan = Agent::new("You research.")
        .model(scripted([
            say(json!({"steps": ["Find the weather in Paris", "Find the weather in Rome"]}).to_string()),
            ScriptedTurn::tool_call("weather", json!({"city": "Paris"})),
            say("Paris: sunny"),
            ScriptedTurn::tool_call("weather", json!({"city": "Rome"})),
            say("Rome: sunny"),
            say("Both cities are sunny."),
        ]))
        .tool(WeatherTool)
        .architecture(PlanAndExecute::new());
    show(plan, "Compare the weather in Paris and Rome.").await?;

    let rewoo = Agent::new("You research.")
        .model(scripted([
            say(json!({"steps": [
                {"id": "E1", "tool": "weather", "args": {"city": "Paris"}},
                {"id": "E2", "tool": "weather", "args": {"city": "Rome"}},
            ]})
            .to_string()),
            say("Both are sunny, 22°C."),
        ]))
        .tool(WeatherTool)
        .architecture(ReWoo::new());
    show(rewoo, "Compare the weather in Paris and Rome.").await?;

    let router = Agent::new("You route support requests.")
        .model(scripted([say(json!({"route": "tech", "confidence": 0.9}).to_string())]))
        .architecture(
            Router::new()
                .route("billing", member("billing", "Your invoice is paid."))
                .route("tech", member("tech", "Restart the router.")),
        );
    show(router, "My wifi is down.").await?;

    let supervisor = Agent::new("You run support.")
        .model(scripted([
            ScriptedTurn::tool_call("delegate", json!({"worker": "billing", "instructions": "Is invoice 7 paid?"}))
                .with_tool_call("delegate", json!({"worker": "tech", "instructions": "Why is the wifi down?"})),
            say("Invoice 7 is paid; restart the router for the wifi."),
        ]))
        .architecture(
            Supervisor::new()
                .worker("billing", member("billing", "Invoice 7 is paid."))
                .worker("tech", member("tech", "Restart the router.")),
        );
    show(supervisor, "Is invoice 7 paid, and why is my wifi down?").await?;

    let writer = Agent::new("You write slogans.")
        .name("writer")
        .model(scripted([say("Looms!"), say("Looms: weave it once, run it anywhere.")]));
    let critic = Agent::new("You review slogans.").name("critic").model(scripted([
        say(json!({"issues": ["says nothing"], "score": 0.3, "summary": "too short"}).to_string()),
        say(json!({"issues": [], "score": 0.95, "summary": "good"}).to_string()),
    ]));
    let actor_critic = Agent::new("").model(scripted([])).architecture(ActorCritic::new(writer, critic));
    show(actor_critic, "A slogan for Loom.").await?;

    let debater = |name: &str, opening: &str, then: &str| {
        Agent::new("You debate.").name(name).model(scripted([say(opening), say(then)]))
    };
    let debate = Agent::new("").model(scripted([])).architecture(
        Debate::new()
            .debater("optimist", debater("optimist", "It will rain.\nFinal answer: rain", "Final answer: rain"))
            .debater(
                "skeptic",
                debater(
                    "skeptic",
                    "Clouds, no rain.\nFinal answer: dry",
                    "The radar convinced me.\nFinal answer: rain",
                ),
            ),
    );
    show(debate, "Will it rain tomorrow?").await?;

    let swarm = Agent::new("").model(scripted([])).architecture(
        Swarm::new()
            .peer(
                "triage",
                Agent::new("You triage.").name("triage").model(scripted([ScriptedTurn::tool_call(
                    "handoff",
                    json!({"target": "billing", "message": "Question about invoice 7"}),
                )])),
            )
            .peer("billing", member("billing", "Invoice 7 is paid.")),
    );
    show(swarm, "Is invoice 7 paid?").await?;

    let blackboard = Agent::new("You coordinate a report.")
        .model(scripted([
            say(json!({"terminate": false, "next_agent": "researcher", "instruction": "Find the facts."}).to_string()),
            say(json!({"terminate": false, "next_agent": "writer", "instruction": "Write one line."}).to_string()),
            say(json!({"terminate": true}).to_string()),
            say("Looms date to 5000 BC: the oldest machine still in use."),
        ]))
        .architecture(
            Blackboard::new()
                .agent("researcher", member("researcher", "Looms date to 5000 BC."))
                .agent("writer", member("writer", "The oldest machine still in use."))
                .coordinated()
                .decided(),
        );
    show(blackboard, "A line about looms.").await?;
    Ok(())
}
