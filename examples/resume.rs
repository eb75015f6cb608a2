//! Sessions and runs that outlive the process, in SQLite.
//!
//! A conversation across processes:
//! ```sh
//! cargo run --example resume -- turn "My name is Ada" --session s1
//! cargo run --example resume -- turn "What is my name?" --session s1
//! ```
//! A run that crashes in the middle of a tool call, finished by another process without
//! repeating what was done:
//! ```sh
//! cargo run --example resume -- crash --session job1
//! cargo run --example resume -- resume --session job1
//! ```
//! The database is `loom-resume-example.db` in the system's temporary directory (or `--db PATH`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use loomflow::agent::AgentInput;
use loomflow::model;
use loomflow::prelude::*;
use loomflow::session::SqliteStore;
use serde_json::json;

/// Whether this process should die during step 2 (crash mode).
struct CrashPlan {
    die_at_step_2: AtomicBool,
}

/// Carry out one step of the nightly job (safe to repeat: each step overwrites its output).
#[tool(idempotent)]
fn run_step(plan: State<CrashPlan>, step: u32) -> String {
    if step == 2 && plan.die_at_step_2.load(Ordering::SeqCst) {
        println!("  !! the process dies in the middle of step 2");
        std::process::exit(137);
    }
    format!("step {step} written")
}

/// Answers from what the conversation holds, so the history it received shows.
fn chat_model() -> ScriptedModel {
    ScriptedModel::from_fn(|request| {
        let name = request.messages.iter().find_map(|m| {
            let text = m.text();
            text.strip_prefix("My name is ").map(|n| n.trim_end_matches('.').to_owned())
        });
        let question = request.last_user_text().unwrap_or_default();
        ScriptedTurn::text(match (name, question.contains("my name")) {
            (Some(name), true) => format!("Your name is {name}."),
            (None, true) => "I do not know your name yet.".to_owned(),
            _ => "Nice to meet you.".to_owned(),
        })
    })
}

/// Runs steps 1 to 3, then reports.
fn job_model() -> ScriptedModel {
    ScriptedModel::from_fn(|request| {
        let done = request.messages.iter().filter(|m| matches!(m, Message::Tool(_))).count() as u32;
        if done < 3 {
            ScriptedTurn::tool_call("run_step", json!({"step": done + 1}))
        } else {
            ScriptedTurn::text("The nightly job is complete: 3 steps written.")
        }
    })
}

fn print_steps(event: RunEvent) {
    match event.kind {
        EventKind::StepReplayed { step } => println!("  replayed  {step}"),
        EventKind::ModelRequest { turn, .. } => println!("  executed  model turn {turn}"),
        EventKind::ToolCallStarted { name, arguments, .. } => println!("  executed  tool {name} {arguments}"),
        _ => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let session = flag("--session").unwrap_or_else(|| "s1".to_owned());
    let db = flag("--db").map_or_else(|| std::env::temp_dir().join("loom-resume-example.db"), PathBuf::from);
    let store = Arc::new(SqliteStore::open(&db)?);
    let user = "ada";

    match args.first().map(String::as_str) {
        Some("turn") => {
            let text = args.get(1).cloned().unwrap_or_else(|| "Hello".to_owned());
            let scripted = chat_model();
            let agent = Agent::new("You remember what the user tells you.")
                .model(model::from_env_or(scripted.clone())?)
                .store(store);
            let result = agent.run(text).user(user).session(session.as_str()).await?;
            println!("the model received:");
            let received = scripted.requests().pop().map(|r| r.messages).unwrap_or(result.messages.clone());
            for m in received.iter().filter(|m| !matches!(m, Message::System { .. })) {
                println!("  {:<9} {}", format!("{:?}", m.role()).to_lowercase(), m.text());
            }
            println!("answer: {}", result.output);
        }
        Some(mode @ ("crash" | "resume")) => {
            let crash = mode == "crash";
            let agent = Agent::new("Run the nightly job, one step at a time.")
                .model(model::from_env_or(job_model())?)
                .tool(RunStepTool)
                .state(CrashPlan { die_at_step_2: AtomicBool::new(crash) })
                .store(store)
                // A crashed run can be taken over once its lease ends.
                .lease(Duration::from_millis(200));
            let run = if crash {
                println!("running the job in session `{session}`:");
                agent.run("Run tonight's job.")
            } else {
                println!("resuming the unfinished run of session `{session}`:");
                tokio::time::sleep(Duration::from_millis(250)).await;
                agent.resume_with(AgentInput::resume_latest())
            };
            let result = run.user(user).session(session.as_str()).on_event(print_steps).await?;
            println!("answer: {} ({} tool calls in the run)", result.output, result.tool_calls);
        }
        _ => {
            eprintln!(
                "usage: resume turn \"TEXT\" --session ID | crash --session ID | resume --session ID [--db PATH]"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
