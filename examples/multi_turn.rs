//! A session over three turns: each run sees the turns before it.
//!
//! ```sh
//! cargo run --example multi_turn
//! ```

use loomflow::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The model answers from what the conversation holds, so the history is visible.
    let model = ScriptedModel::from_fn(|request| {
        let said: Vec<String> = request
            .messages
            .iter()
            .filter(|m| matches!(m, Message::User { .. }))
            .map(|m| m.text().into_owned())
            .collect();
        ScriptedTurn::text(format!("I have heard {} message(s) from you: {}", said.len(), said.join(" | ")))
    });
    let agent = Agent::new("You are a patient listener.").model(loomflow::model::from_env_or(model)?);

    for (turn, input) in
        ["My name is Ada.", "I write programs for engines.", "What do you know about me?"].into_iter().enumerate()
    {
        let result = agent.run(input).user("ada").session("tea-time").await?;
        println!("turn {} │ user: {input}", turn + 1);
        println!("       │ model saw {} messages", result.messages.len());
        println!("       │ assistant: {}", result.output);
    }

    // Another user with the same session id starts from nothing.
    let other = agent.run("Hello?").user("charles").session("tea-time").await?;
    println!("charles │ assistant: {}", other.output);
    Ok(())
}
