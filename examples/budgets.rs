//! Budgets, a rate limit, permissions and approvals on a support agent, offline on the
//! scripted model: a refund edited by its approver, an e-mail allowed, the shell denied, a
//! warning as the user's token budget nears its end, and the run that passes it stopped.
//!
//! ```sh
//! cargo run --example budgets
//! ```

use std::time::Duration;

use loomflow::governance::{
    Approval, ApprovalRequest, Budget, Governance, Limits, Mode, RateLimit, StandardPermissions, approve_with,
};
use loomflow::model;
use loomflow::prelude::*;
use serde_json::json;

/// Refund part of an order.
#[tool(destructive)]
fn refund(order: String, amount_eur: u32) -> String {
    format!("refunded €{amount_eur} on order {order}")
}

/// Send the customer an e-mail.
#[tool(destructive)]
fn send_email(to: String, subject: String) -> String {
    format!("sent \"{subject}\" to {to}")
}

/// Run a shell command.
#[tool(destructive)]
fn shell(command: String) -> String {
    format!("ran {command}")
}

/// Every model call uses 200 tokens (150 in, 50 out), the last one 300.
fn script() -> ScriptedModel {
    let call = |turn: ScriptedTurn| turn.with_usage(Usage::new(150, 50));
    ScriptedModel::new([
        // Ann's first run: four calls, 800 tokens, 80 % of her budget.
        call(ScriptedTurn::tool_call("refund", json!({"order": "A-1", "amount_eur": 250}))),
        call(ScriptedTurn::tool_call("send_email", json!({"to": "ann@example.com", "subject": "Your refund"}))),
        call(ScriptedTurn::tool_call("shell", json!({"command": "rm -rf /var/cache/orders"}))),
        call(ScriptedTurn::text("Refunded €100 on A-1 and told Ann; I may not clear the cache.")),
        // Her second run: this call takes her past 1,000 tokens.
        ScriptedTurn::tool_call("refund", json!({"order": "A-2", "amount_eur": 40})).with_usage(Usage::new(250, 50)),
        // Bob's run, on a budget of his own.
        call(ScriptedTurn::text("Your parcel left the warehouse this morning.")),
    ])
}

/// Refunds over €100 go through at €100; e-mails are allowed; anything else is refused.
async fn approve(request: ApprovalRequest) -> Approval {
    let decision = match request.tool.as_str() {
        "send_email" => Approval::Allow,
        "refund" => {
            let mut arguments: serde_json::Value = serde_json::from_str(&request.arguments).unwrap_or_default();
            match arguments.get_mut("amount_eur") {
                Some(amount) if amount.as_u64().is_some_and(|a| a > 100) => {
                    *amount = json!(100);
                    Approval::edit(arguments.to_string())
                }
                _ => Approval::Allow,
            }
        }
        _ => Approval::deny("no one approves this tool"),
    };
    println!("  approver   │ {}({}) → {}", request.tool, request.arguments, decision.as_str());
    decision
}

fn print_event(event: RunEvent) {
    match event.kind {
        EventKind::PermissionDecision { tool, decision, reason: Some(reason), .. } if decision == "deny" => {
            println!("  permission │ {tool} denied: {reason}");
        }
        EventKind::ToolCallStarted { name, arguments, .. } => println!("  tool call  │ {name}({arguments})"),
        EventKind::ToolCallFinished { name, output, .. } => println!("  tool       │ {name} → {output}"),
        EventKind::RateLimited { bucket, wait } if wait >= Duration::from_millis(1) => {
            println!("  rate limit │ a model call waited {} ms ({bucket})", wait.as_millis());
        }
        EventKind::BudgetWarning { scope, limit, used, max } => {
            println!("  budget     │ warning: {used} of the {scope}'s {max} {limit}");
        }
        _ => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Each user may spend 1,000 tokens; a warning at 80 %. The budget is a handle: this clone
    // and the governance's share what users have spent.
    let budget = Budget::new().per_user(Limits::new().total_tokens(1_000)).warn_at(0.8);
    let governance = Governance::new()
        .budget(budget.clone())
        // Each user: 50 model calls a second, bursts of 2; a faster call waits its turn.
        .rate_limit(RateLimit::new().per_user(50.0, 2))
        // Destructive tools ask the approver; the shell never runs.
        .permissions(StandardPermissions::new(Mode::Default).deny(["shell"]))
        .approvals(approve_with(approve));
    let agent = Agent::new("You are a support agent with refunds, e-mail and a shell.")
        .model(model::from_env_or(script())?)
        .tool(RefundTool)
        .tool(SendEmailTool)
        .tool(ShellTool)
        .governance(governance)
        .on_event(print_event);

    let question = "Order A-1 arrived broken: refund the €250, tell me, and clear the order cache.";
    println!("ann: {question}");
    let result = agent.run(question).user("ann").await?;
    println!("  answer     │ {} ({} model calls)\n", result.output, result.turns);

    println!("ann: Refund order A-2 as well.");
    match agent.run("Refund order A-2 as well.").user("ann").await {
        Err(Error::Run(RunError::BudgetExceeded { scope, limit, max, used, partial })) => {
            println!("  stopped    │ the {scope} budget: {limit} at {used} of at most {max}");
            println!(
                "  partial    │ {} model call(s), {} tool call(s), {} tokens; the refund it asked for never ran",
                partial.turns,
                partial.tool_calls,
                partial.usage.total_tokens()
            );
        }
        Ok(result) => println!("  answer     │ {}", result.output),
        Err(e) => return Err(e.into()),
    }

    println!("\nbob: Where is my parcel?");
    let result = agent.run("Where is my parcel?").user("bob").await?;
    println!("  answer     │ {}\n", result.output);

    for user in ["ann", "bob"] {
        let spent = budget.spent_by(&UserId::new(user)?).await?;
        println!(
            "{user} has spent {} tokens ({} in, {} out) in {} model call(s) and {} tool call(s)",
            spent.total_tokens(),
            spent.input_tokens,
            spent.output_tokens,
            spent.model_calls,
            spent.tool_calls
        );
    }
    Ok(())
}
