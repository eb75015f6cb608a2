//! The tamper-evident audit log in a JSONL file: two runs recorded, the chains verified, one
//! line edited and the edit found, then a user forgotten (GDPR) with the log still verifiable.
//! Runs offline, in a temporary directory.
//!
//! The agent's governance keeps the log: every run appends its trail (run started, model
//! calls, tool calls and results, run finished) to its user's chain before it returns.
//!
//! ```sh
//! cargo run --example audit_log
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use loomflow::governance::Governance;
use loomflow::model;
use loomflow::prelude::*;
use loomflow::telemetry::audit::{AuditKey, AuditLog, EditedPart, FileAuditLog, ProblemKind, VerifyReport};
use serde_json::json;

/// Refund part of an order.
#[tool]
fn refund(order: String, amount_eur: u32) -> String {
    format!("refunded €{amount_eur} on order {order}")
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `agent` for `user`: its governance appends the run's trail to the log.
async fn run(agent: &Agent, user: &str, input: &str) -> anyhow::Result<()> {
    let result = agent.run(input).user(UserId::new(user)?).await?;
    println!("{user}: {input} → {}", result.output);
    Ok(())
}

/// The log's entries, one line each.
async fn print_entries(log: &dyn AuditLog) -> anyhow::Result<()> {
    for user in log.users().await? {
        for e in log.entries(&user).await? {
            let payload = e.payload.map_or_else(|| "(erased)".to_owned(), |p| p.to_string());
            let sig = e.sig.get(..8).unwrap_or_default();
            println!(
                "  {:<4} #{} {:<12} by {:<6} sig {sig}…  {payload}",
                e.user.as_str(),
                e.seq,
                e.action.as_str(),
                e.actor
            );
        }
    }
    Ok(())
}

fn print_report(report: &VerifyReport) {
    if report.is_intact() {
        println!("verify: {} entries of {} users, intact", report.entries, report.users);
        return;
    }
    println!("verify: {} entries of {} users, {} problem(s):", report.entries, report.users, report.problems.len());
    for problem in &report.problems {
        let kind = match &problem.kind {
            ProblemKind::Edited { part: EditedPart::Payload } => "edited (payload)".to_owned(),
            ProblemKind::Edited { .. } => "edited (fields)".to_owned(),
            ProblemKind::Deleted { count } => format!("deleted ({count})"),
            ProblemKind::Inserted { .. } => "inserted".to_owned(),
            ProblemKind::Reordered { .. } => "reordered".to_owned(),
            _ => "unreadable".to_owned(),
        };
        let user = problem.user.as_ref().map_or("?", UserId::as_str);
        println!("  {user} #{}: {kind}\n    {problem}", problem.seq.unwrap_or(0));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = TempDir(std::env::temp_dir().join(format!("loom-audit-log-{}", RunId::generate())));
    std::fs::create_dir_all(&dir.0)?;
    let path = dir.0.join("audit.jsonl");
    // Keep the key where the log is not (a secret store, an environment variable): whoever
    // holds it can rewrite the log undetected.
    let key = AuditKey::from_hex("6c6f6f6d2d61756469742d6578616d706c652d6b65792d33322d6279746573")?;
    let log = Arc::new(FileAuditLog::open(&path, key)?);

    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("refund", json!({"order": "A-1", "amount_eur": 40})),
        ScriptedTurn::text("I refunded €40 on order A-1."),
        ScriptedTurn::text("Your parcel left this morning."),
    ]);
    let agent = Agent::new("You are a support agent.")
        .name("support")
        .model(model::from_env_or(model)?)
        .tool(RefundTool)
        .governance(Governance::new().audit(Arc::clone(&log)));
    run(&agent, "ann", "Refund the €40 for order A-1, please.").await?;
    run(&agent, "bob", "Where is my parcel?").await?;

    println!("\naudit.jsonl holds one chain per user, each entry signed over the one before:");
    print_entries(&*log).await?;
    print_report(&log.verify(None).await?);

    // Someone with access to the file, but not the key, raises ann's refund.
    let original = std::fs::read_to_string(&path)?;
    let tampered = original.replacen("refunded €40", "refunded €400", 1);
    anyhow::ensure!(tampered != original, "no refund of €40 in the log to edit: did the model call `refund`?");
    std::fs::write(&path, &tampered)?;
    println!("\nedited one line: ann's refund of €40 now reads €400");
    print_report(&log.verify(None).await?);

    std::fs::write(&path, &original)?;
    println!("\nthe line put back from a backup");
    print_report(&log.verify(None).await?);

    // GDPR erasure: ann's payloads go, the chain (hashes, signatures, who and what) stays.
    let ann = UserId::new("ann")?;
    let erased = log.forget(&ann).await?;
    println!("\nforgot ann: {erased} payloads erased");
    print_entries(&*log).await?;
    print_report(&log.verify(None).await?);
    Ok(())
}
