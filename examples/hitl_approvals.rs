//! A human in the loop, across processes: a destructive call pauses the run, the pending
//! call is listed from another process, and a reviewer's decision resumes the run exactly
//! there — the tool runs once, with the approved (or edited) arguments.
//!
//! ```sh
//! cargo run --example hitl_approvals -- ask                     # the run pauses
//! cargo run --example hitl_approvals -- list                    # what waits, for user ana
//! cargo run --example hitl_approvals -- decide RUN CALL allow   # or: deny "why" | edit '{"path":"..."}'
//! ```
//! Without arguments it plays all three steps, each in its own process. The database is
//! `loom-hitl-example.db` in the system's temporary directory (or `--db PATH`). Offline on a
//! scripted model; set `LOOM_MODEL` to run it on a real one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::Context as _;
use loomflow::agent::AgentInput;
use loomflow::governance::{Approval, ApprovalRequest, Governance};
use loomflow::model;
use loomflow::prelude::*;
use loomflow::session::SqliteStore;
use serde_json::json;

/// Delete a file from the shared drive.
#[tool(destructive)]
fn delete_file(path: String) -> String {
    println!("  tool ran: delete_file {path}");
    format!("deleted {path}")
}

/// Deletes one file, then reports what the tool said.
fn cleanup_model() -> ScriptedModel {
    ScriptedModel::from_fn(|request| {
        if request.last_is_tool_result() {
            ScriptedTurn::text(format!(
                "Clean-up finished: {}.",
                request.messages.last().map(|m| m.text()).unwrap_or_default()
            ))
        } else {
            ScriptedTurn::tool_call("delete_file", json!({"path": "reports/2025-draft.docx"}))
        }
    })
}

fn agent(db: &Path) -> anyhow::Result<Agent> {
    Ok(Agent::new("Clean up the shared drive. Ask before deleting anything.")
        .name("janitor")
        .model(model::from_env_or(cleanup_model())?)
        .tool(DeleteFileTool)
        .store(Arc::new(SqliteStore::open(db)?))
        // Destructive calls ask; asking pauses the run until someone decides.
        .governance(Governance::new().durable_approvals()))
}

fn user() -> anyhow::Result<UserId> {
    Ok(UserId::new("ana")?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let db = match args.iter().position(|a| a == "--db") {
        Some(i) if i + 1 < args.len() => {
            let path = PathBuf::from(args.remove(i + 1));
            args.remove(i);
            path
        }
        _ => std::env::temp_dir().join("loom-hitl-example.db"),
    };
    match args.first().map(String::as_str) {
        Some("ask") => ask(&db).await,
        Some("list") => list(&db).await,
        Some("decide") => {
            let [run, call, decision, rest @ ..] = &args[1..] else {
                anyhow::bail!("usage: hitl_approvals decide RUN CALL allow|deny REASON|edit JSON");
            };
            let approval = match (decision.as_str(), rest.first()) {
                ("allow", _) => Approval::Allow,
                ("deny", reason) => Approval::deny(reason.cloned().unwrap_or_else(|| "denied by the reviewer".into())),
                ("edit", Some(arguments)) => Approval::edit(arguments.clone()),
                _ => anyhow::bail!("the decision is allow, deny REASON or edit JSON"),
            };
            decide(&db, run.parse()?, call, approval).await
        }
        Some(other) => anyhow::bail!("unknown command `{other}`: ask, list or decide"),
        None => play(&db),
    }
}

/// Process 1: the run pauses at the deletion.
async fn ask(db: &Path) -> anyhow::Result<()> {
    match agent(db)?.run("Tidy up last year's drafts.").user(user()?).session("drive").await {
        Err(Error::Run(RunError::ApprovalPending { request })) => {
            let ApprovalRequest { run_id, call_id, tool, arguments, .. } = *request;
            println!("paused: run {run_id} waits for approval of {tool} {arguments} ({call_id})");
            Ok(())
        }
        Ok(result) => anyhow::bail!("the run finished without asking: {}", result.output),
        Err(e) => Err(e.into()),
    }
}

/// Process 2: a reviewer lists what waits.
async fn list(db: &Path) -> anyhow::Result<()> {
    let pending = agent(db)?.pending_approvals(&user()?).await?;
    println!("{} call(s) wait for approval", pending.len());
    for p in &pending {
        println!("  run {} call {}: {} {} ({})", p.run_id, p.call_id, p.tool, p.arguments, p.reason);
    }
    Ok(())
}

/// Process 3: the decision resumes the run where it paused.
async fn decide(db: &Path, run: RunId, call: &str, approval: Approval) -> anyhow::Result<()> {
    println!("decision: {}", approval.as_str());
    let result =
        agent(db)?.resume_with(AgentInput::resume(run).approve(call, approval)).user(user()?).session("drive").await?;
    println!("answer: {}", result.output);
    Ok(())
}

/// All three steps, each in a process of its own, on a fresh database.
fn play(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let me = std::env::current_exe()?;
    let db_arg = db.to_string_lossy().into_owned();
    let step = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(&me).args(args).args(["--db", &db_arg]).output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{text}");
        anyhow::ensure!(out.status.success(), "`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        Ok(text)
    };
    println!("-- process 1: the agent runs");
    step(&["ask"])?;
    println!("-- process 2: the reviewer looks");
    let listed = step(&["list"])?;
    let line = listed.lines().find(|l| l.trim_start().starts_with("run ")).context("nothing was pending")?;
    let mut words = line.split_whitespace().skip(1);
    let (run, call) = (words.next().context("no run id")?, words.nth(1).context("no call id")?.trim_end_matches(':'));
    println!("-- process 3: the reviewer keeps a backup instead");
    step(&["decide", run, call, "edit", r#"{"path": "reports/2025-draft.docx.bak"}"#])?;
    println!("-- process 4: nothing waits any more");
    step(&["list"])?;
    Ok(())
}
