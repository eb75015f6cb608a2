//! Recipe: a support bot. Two tools (an order lookup, and a refund that needs approval), a
//! session that carries the conversation from turn to turn, and a guardrail that keeps the
//! customer's e-mail address away from the model. Three scripted turns: a lookup, a refund of
//! "it" (the order from the first turn) that the approver allows, and one it refuses.
//!
//! ```sh
//! cargo run -p loomflow-examples --example support_bot
//! LOOM_MODEL=gpt-4.1-mini OPENAI_API_KEY=... cargo run -p loomflow-examples --example support_bot
//! ```

use loomflow::governance::{Approval, ApprovalRequest, Governance, PiiGuard, approve_with};
use loomflow::model::from_env_or;
use loomflow::prelude::*;
use serde_json::json;

/// Look up an order: what it is, what it cost, where it is.
#[tool(read_only)]
fn lookup_order(
    /// The order number, e.g. "A-1".
    order: String,
) -> Result<String, ToolError> {
    match order.as_str() {
        "A-1" => Ok("order A-1: a kettle, €35, delivered on 2 May".into()),
        "B-7" => Ok("order B-7: a sofa, €900, delivered on 9 May".into()),
        other => Err(ToolError::new(format!("no order {other}"))),
    }
}

/// Refund an order. Needs approval.
#[tool(destructive)]
fn refund(order: String, amount_eur: u32) -> String {
    format!("refunded €{amount_eur} on order {order}")
}

/// The approver: refunds up to €100 go through; larger ones need a manager.
async fn approve(request: ApprovalRequest) -> Approval {
    let args: serde_json::Value = serde_json::from_str(&request.arguments).unwrap_or_default();
    let decision = match args["amount_eur"].as_u64() {
        Some(amount) if amount <= 100 => Approval::Allow,
        _ => Approval::deny("refunds over €100 need a manager"),
    };
    println!("  approver   │ {}({}) → {}", request.tool, request.arguments, decision.as_str());
    decision
}

/// The newest order number (`A-1`) the customer named, in the conversation's user messages.
fn named_order(messages: &[Message]) -> Option<String> {
    let user = messages.iter().rev().filter(|m| matches!(m, Message::User { .. }));
    let mut words = user.flat_map(|m| {
        let text = m.text().into_owned();
        text.split(|c: char| !c.is_alphanumeric() && c != '-').map(str::to_owned).collect::<Vec<_>>()
    });
    words.find(|w| w.len() == 3 && w.as_bytes()[1] == b'-')
}

/// Offline, the bot reads the whole conversation the session gives it: the order "it" means,
/// and its price from an earlier lookup.
fn script() -> ScriptedModel {
    ScriptedModel::from_fn(|request| {
        let wants_refund = request.last_user_text().is_some_and(|t| t.contains("refund"));
        let Some(order) = named_order(request.messages) else {
            return ScriptedTurn::text("Which order is it about?");
        };
        let price = request.messages.iter().find_map(|m| match m {
            Message::Tool(r)
                if r.name == "lookup_order" && r.content.text().starts_with(&format!("order {order}:")) =>
            {
                let text = r.content.text();
                text.split('€').nth(1)?.split(',').next()?.parse::<u32>().ok()
            }
            _ => None,
        });
        match (request.messages.last(), wants_refund, price) {
            (Some(Message::Tool(r)), _, _) if r.is_error || r.name == "refund" || !wants_refund => {
                let prefix = if r.is_error { "I could not do that: " } else { "" };
                ScriptedTurn::text(format!("{prefix}{}.", r.content.text()))
            }
            (_, true, Some(price)) => ScriptedTurn::tool_call("refund", json!({"order": order, "amount_eur": price})),
            _ => ScriptedTurn::tool_call("lookup_order", json!({"order": order})),
        }
    })
}

fn print_event(event: RunEvent) {
    match event.kind {
        EventKind::Guardrail { guard, note, .. } => println!("  guardrail  │ {guard}: {note}"),
        EventKind::ToolCallFinished { name, output, .. } => println!("  tool       │ {name} → {output}"),
        _ => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let governance = Governance::new().guardrail(PiiGuard::new()).approvals(approve_with(approve));
    let bot = Agent::new("You are Loom Outfitters' support bot. Look orders up before acting; refunds need approval.")
        .name("support")
        .model(from_env_or(script())?)
        .tool(LookupOrderTool)
        .tool(RefundTool)
        .governance(governance)
        .on_event(print_event);

    let turns = [
        "Hi, this is ann@example.com. Where is my order A-1?",
        "It arrived broken, please refund it.",
        "Then refund order B-7 as well.",
    ];
    for (i, said) in turns.into_iter().enumerate() {
        println!("ann        │ {said}");
        let result = bot.run(said).user("ann").session("ticket-42").await?;
        // What the guardrail let through is what the session keeps and the model read.
        if let Some(Message::User { content }) = result.new_messages().first()
            && content.text() != said
        {
            println!("  model read │ {}", content.text());
        }
        println!("  bot        │ {}", result.output);
        println!("  session    │ turn {}: the model saw {} messages\n", i + 1, result.messages.len());
    }
    Ok(())
}
