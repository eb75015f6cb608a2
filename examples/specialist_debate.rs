//! Three specialists debate a design question; a judge reads the transcript and decides.
//! Prints each round's final answers and the verdict. Offline by default; `LOOM_MODEL` runs
//! them on a real model.
//!
//! ```sh
//! cargo run --example specialist_debate
//! ```

use std::sync::{Arc, Mutex};

use loomflow::arch::Debate;
use loomflow::model::from_env_or;
use loomflow::prelude::*;

fn specialist(name: &str, focus: &str, answers: [&str; 2]) -> anyhow::Result<Agent> {
    let turns = answers.map(|a| ScriptedTurn::text(a.to_owned()));
    Ok(Agent::new(format!("You are a {focus} specialist. Argue from {focus} concerns, briefly."))
        .name(name)
        .model(from_env_or(ScriptedModel::new(turns))?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let security = specialist(
        "security",
        "security",
        [
            "Sessions hold personal data; Redis without TLS widens the attack surface.\nFinal answer: no",
            "With TLS and per-tenant keys the risk is acceptable.\nFinal answer: yes, with TLS",
        ],
    )?;
    let performance = specialist(
        "performance",
        "performance",
        [
            "Redis cuts session reads from 4 ms to 0.2 ms.\nFinal answer: yes",
            "Still yes; TLS costs little.\nFinal answer: yes, with TLS",
        ],
    )?;
    let cost = specialist(
        "cost",
        "cost",
        ["A small Redis costs less than the database load it saves.\nFinal answer: yes", "Final answer: yes, with TLS"],
    )?;
    let judge = Agent::new("You are the architect. Read the debate and give the decision with its condition.")
        .name("judge")
        .model(from_env_or(ScriptedModel::new([ScriptedTurn::text(
            "Decision: cache sessions in Redis, with TLS and per-tenant keys.",
        )]))?);

    let rounds = Arc::new(Mutex::new(Vec::<String>::new()));
    let listener = {
        let rounds = Arc::clone(&rounds);
        move |event: RunEvent| {
            if let EventKind::Architecture { name, payload } = &event.kind
                && name == "debate.round"
            {
                let finals: Vec<String> = payload["answers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| x.as_str().and_then(|t| t.lines().last()).unwrap_or("(no answer)").to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                if let Ok(mut rounds) = rounds.lock() {
                    rounds.push(format!("round {}: {}", payload["round"], finals.join(" | ")));
                }
            }
        }
    };
    let panel = Agent::new("")
        .model(from_env_or(ScriptedModel::new([]))?)
        .architecture(
            Debate::new()
                .debater("security", security)
                .debater("performance", performance)
                .debater("cost", cost)
                .judge(judge)
                .rounds(2),
        )
        .on_event(listener);

    let result = panel.run("Should we cache user sessions in Redis?").await?;
    for line in rounds.lock().map(|r| r.clone()).unwrap_or_default() {
        println!("{line}");
    }
    println!("\n{}", result.output);
    Ok(())
}
