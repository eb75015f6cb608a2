//! The effort dial: one question asked at low, medium and high effort. `Agent::effort` sets
//! the request's `ModelSettings::effort`; each provider adapter turns it into its own knob —
//! OpenAI's `reasoning_effort`, Anthropic's thinking `budget_tokens`, Gemini 2.5's
//! `thinkingBudget`. Offline, a scripted "reasoning model" records each request (and thinks
//! longer at higher effort); the request it recorded is then rendered as each provider's body.
//!
//! ```sh
//! cargo run -p loomflow-examples --example effort_dial
//! LOOM_MODEL=o4-mini OPENAI_API_KEY=... cargo run -p loomflow-examples --example effort_dial
//! ```

use loomflow::model::providers::{AnthropicModel, GeminiModel, HttpConfig, OpenAiModel};
use loomflow::model::{Effort, ModelRequest, RecordedRequest, from_env_or};
use loomflow::prelude::*;

const QUESTION: &str = "A bat and a ball cost €1.10; the bat costs €1 more than the ball. What does the ball cost?";

/// Offline, the reasoning tokens grow with the effort the request asks for.
fn reasoner() -> ScriptedModel {
    ScriptedModel::from_fn(|request| {
        let thought = match request.settings.effort {
            Some(Effort::Minimal) => 0,
            Some(Effort::Low) => 120,
            Some(Effort::Medium) | None => 900,
            Some(_) => 3_400,
        };
        ScriptedTurn::text("The ball costs €0.05.")
            .with_usage(Usage::new(40, thought + 8).with_reasoning_tokens(thought))
    })
}

/// The recorded request as the three providers' adapters would send it (nothing is sent).
fn render(recorded: &RecordedRequest) -> anyhow::Result<()> {
    let request = ModelRequest::new(&recorded.messages).with_settings(&recorded.settings);
    let config = |url: &str| HttpConfig::new(url);
    let openai = OpenAiModel::new("o4-mini", config("https://api.openai.com/v1"))?.request_body(&request, false);
    let claude =
        AnthropicModel::new("claude-sonnet-4-5", config("https://api.anthropic.com/v1"))?.request_body(&request, false);
    let gemini = GeminiModel::new("gemini-2.5-flash", config("https://generativelanguage.googleapis.com/v1beta"))?
        .request_body(&request, false);
    println!("  openai    │ reasoning_effort: {}", openai["reasoning_effort"]);
    println!(
        "  anthropic │ thinking budget_tokens: {}, max_tokens: {}",
        claude["thinking"]["budget_tokens"], claude["max_tokens"]
    );
    println!("  gemini    │ thinkingBudget: {}", gemini["generationConfig"]["thinkingConfig"]["thinkingBudget"]);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!("question: {QUESTION}\n");
    for effort in [Effort::Low, Effort::Medium, Effort::High] {
        let scripted = reasoner();
        let agent = Agent::new("Answer briefly.").model(from_env_or(scripted.clone())?).effort(effort);
        let result = agent.run(QUESTION).user("ada").await?;
        println!("effort {effort}: {}", result.output);
        println!(
            "  usage     │ {} reasoning tokens of {} output tokens",
            result.usage.reasoning_tokens, result.usage.output_tokens
        );
        // What the agent sent, as the scripted model recorded it (a real model records nothing).
        if let Some(recorded) = scripted.requests().first() {
            let effort = recorded.settings.effort.map(|e| e.to_string()).unwrap_or_else(|| "none".into());
            println!("  request   │ settings.effort = {effort}");
            render(recorded)?;
        }
        println!();
    }
    Ok(())
}
