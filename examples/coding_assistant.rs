//! A coding assistant: an agent with the filesystem tools and the sandboxed shell on a project
//! folder. It looks around, reads, edits, runs the project's test — and a path that leads out
//! of the project is refused with an error the model reads.
//!
//! ```sh
//! cargo run --example coding_assistant
//! ```
//! Offline on a scripted model; set `LOOM_MODEL` (e.g. `gpt-4.1-mini`) to watch a real one. The
//! shell runs under bubblewrap (`apt-get install bubblewrap`); without it, the shell tool refuses
//! and says so to the model, and everything else works the same.

use std::path::{Path, PathBuf};

use loomflow::model;
use loomflow::prelude::*;
use loomflow::tools::fs::Filesystem;
use loomflow::tools::shell::Shell;
use serde_json::json;

const INSTRUCTIONS: &str = "You maintain the project in your working folder. Find the problem, fix it with \
                            the smallest edit, run `sh test.sh`, and say what you changed.";

/// Prints each tool call and the first line of what the model reads back (all of it for the
/// shell).
fn show(event: RunEvent) {
    if let EventKind::ToolCallFinished { name, is_error, output, .. } = event.kind {
        let mut lines = output.lines();
        let mark = if is_error { "refused" } else { "ok" };
        println!("[{name}] {mark}: {}", lines.next().unwrap_or(""));
        if name == "shell" {
            lines.for_each(|line| println!("    {line}"));
        }
    }
}

/// A small project: a greeting script with a typo, and its test.
fn project() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("loom-coding-assistant-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("docs"))?;
    std::fs::write(dir.join("greet.sh"), "#!/bin/sh\necho \"Helo, $1!\"\n")?;
    std::fs::write(
        dir.join("test.sh"),
        "#!/bin/sh\nout=$(sh greet.sh Ada)\n[ \"$out\" = \"Hello, Ada!\" ] && echo 'test passed' || { echo \"test failed: $out\"; exit 1; }\n",
    )?;
    std::fs::write(dir.join("docs/README.md"), "# greet\n\n`sh greet.sh NAME` greets NAME.\n")?;
    Ok(dir)
}

fn script() -> ScriptedModel {
    ScriptedModel::new([
        // Two calls at once: what is there, and where the word is.
        ScriptedTurn::tool_call("list_dir", json!({})).with_tool_call("grep", json!({"pattern": "Helo", "path": "."})),
        ScriptedTurn::tool_call("read_file", json!({"path": "greet.sh"})),
        ScriptedTurn::tool_call(
            "edit_file",
            json!({"path": "greet.sh", "old_string": "Helo,", "new_string": "Hello,"}),
        ),
        ScriptedTurn::tool_call("shell", json!({"command": "sh test.sh"})),
        // A look outside the project: refused, whatever the path says.
        ScriptedTurn::tool_call("read_file", json!({"path": "../../etc/passwd"})),
        ScriptedTurn::text("Fixed the typo in greet.sh (`Helo` → `Hello`); `sh test.sh` checks it."),
    ])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = project()?;
    let result = run(&dir).await;
    std::fs::remove_dir_all(&dir).ok();
    result
}

async fn run(dir: &Path) -> anyhow::Result<()> {
    let files = Filesystem::new(dir)?;
    let shell = Shell::new(dir)?;
    let agent =
        Agent::new(INSTRUCTIONS).model(model::from_env_or(script())?).tools(files.tools()).tool(shell).on_event(show);
    let result = agent.run("The greeting is wrong. Please fix it.").await?;
    println!("answer: {}", result.text());
    println!("greet.sh now: {}", std::fs::read_to_string(dir.join("greet.sh"))?.lines().nth(1).unwrap_or(""));
    Ok(())
}
