//! Prompt caching: `Agent::prompt_caching(true)` marks the stable prefix of every request (the
//! instructions and the tools) for the provider's cache. Three turns of one session reuse a
//! long policy prompt: the first call writes it to the cache, the next ones read it at a tenth
//! of the price. Offline, a scripted model named after Claude Sonnet reports that usage; Loom
//! prices it (`RunResult::cost_usd`) and the example compares it with the uncached price.
//!
//! ```sh
//! cargo run -p loomflow-examples --example prompt_caching
//! LOOM_MODEL=claude-sonnet-4-5 ANTHROPIC_API_KEY=... cargo run -p loomflow-examples --example prompt_caching
//! ```

use loomflow::model::providers::{AnthropicModel, HttpConfig};
use loomflow::model::{ModelRequest, from_env_or, pricing};
use loomflow::prelude::*;

/// Look up an order's status.
#[tool(read_only)]
fn order_status(order: String) -> String {
    format!("order {order}: shipped")
}

/// The long, stable part of every request: what a provider can cache.
fn policy() -> String {
    let rule = "Refunds within 30 days need the order number; exchanges need the receipt. ";
    format!("You are the support agent of Loom Outfitters. The policy:\n{}", rule.repeat(150))
}

/// Usage as Anthropic reports it: the first call writes the prefix to the cache, later ones read it.
fn script() -> ScriptedModel {
    let turn = |text: &str, usage: Usage| ScriptedTurn::text(text.to_owned()).with_usage(usage);
    ScriptedModel::new([
        turn("Refunds need the order number.", Usage::new(120, 40).with_cache_write_tokens(2_048)),
        turn("Exchanges need the receipt.", Usage::new(90, 35).with_cached_input_tokens(2_048)),
        turn("Yes, within 30 days.", Usage::new(80, 30).with_cached_input_tokens(2_048)),
    ])
    .named("claude-sonnet-4-5")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scripted = script();
    let model = from_env_or(scripted.clone())?;
    let name = model.name().to_owned();
    let agent = Agent::new(policy()).model(model).tool(OrderStatusTool).prompt_caching(true);

    let (mut paid, mut uncached) = (0.0, 0.0);
    let questions = ["What do I need for a refund?", "And for an exchange?", "Is 20 days too late?"];
    for (i, question) in questions.into_iter().enumerate() {
        let result = agent.run(question).user("ann").session("ticket-7").await?;
        let u = result.usage;
        println!("turn {} │ {question} → {}", i + 1, result.output);
        println!(
            "       │ {} input tokens: {} full price, {} written to the cache, {} read from it; {} out",
            u.total_input_tokens(),
            u.input_tokens,
            u.cache_write_tokens,
            u.cached_input_tokens,
            u.output_tokens
        );
        // The same tokens, all billed at the full input rate.
        let plain = pricing::cost(&name, &Usage::new(u.total_input_tokens(), u.output_tokens));
        if let (Some(cost), Some(plain)) = (result.cost_usd, plain) {
            println!("       │ cost ${cost:.6} (without caching ${plain:.6})");
            (paid, uncached) = (paid + cost, uncached + plain);
        }
    }
    if uncached > 0.0 {
        let saved = uncached - paid;
        println!(
            "\n3 turns cost ${paid:.6} instead of ${uncached:.6}: caching saved ${saved:.6} ({:.0}%)",
            saved / uncached * 100.0
        );
    }

    // What the agent asked for, and where an Anthropic request puts the cache marks.
    if let Some(recorded) = scripted.requests().first() {
        println!("\nrequest settings: prompt_caching = {}", recorded.settings.prompt_caching);
        let request =
            ModelRequest::new(&recorded.messages).with_tools(&recorded.tools).with_settings(&recorded.settings);
        let claude = AnthropicModel::new("claude-sonnet-4-5", HttpConfig::new("https://api.anthropic.com/v1"))?
            .with_prompt_caching(false); // only the agent's setting turns it on
        let body = claude.request_body(&request, false);
        println!("anthropic system prompt: cache_control = {}", body["system"][0]["cache_control"]);
        println!(
            "anthropic last tool ({}): cache_control = {}",
            body["tools"][0]["name"], body["tools"][0]["cache_control"]
        );
    }
    Ok(())
}
