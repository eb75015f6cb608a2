//! Two agents share a workspace of notes: a researcher writes its findings down, a writer
//! searches them, reads the ones that matter and writes a summary that cites them. The notes
//! are Markdown files on disk (in a temporary directory), which the example prints.
//! Offline: both agents run on scripted models.
//!
//! ```sh
//! cargo run -p loomflow-examples --example shared_workspace
//! ```

use loomflow::model::Message;
use loomflow::prelude::*;
use loomflow::workspace::{NoteFilter, Workspace};
use serde_json::json;

/// Prints the tool calls of a run and what each returned, shortened.
fn show_calls(result: &RunResult) {
    for message in &result.messages {
        match message {
            Message::Assistant { tool_calls, .. } => {
                for call in tool_calls {
                    println!("tool call │ {}({})", call.name, call.arguments);
                }
            }
            Message::Tool(r) => {
                let text = r.content.text();
                let shown: String = text.chars().take(150).collect();
                let more = if text.chars().count() > 150 { "…" } else { "" };
                println!("     tool │ {} → {shown}{more}", r.name);
            }
            _ => {}
        }
    }
    println!("   answer │ {}", result.output);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = std::env::temp_dir().join(format!("loom-shared-workspace-{}", std::process::id()));
    let workspace = Workspace::on_disk(&root)?;
    let ann = UserId::new("ann")?;

    println!("== researcher");
    let researcher = Agent::new("You research competitors' pricing and write each finding down.")
        .model(ScriptedModel::new([
            ScriptedTurn::tool_call(
                "note",
                json!({
                    "title": "Acme pricing",
                    "body": "Acme charges $49 per seat and month; annual plans get 15% off.",
                    "tags": ["pricing", "acme"],
                }),
            )
            .with_tool_call(
                "note",
                json!({
                    "title": "Globex pricing",
                    "body": "Globex charges $39 per seat and month, with a minimum of 10 seats.",
                    "tags": ["pricing", "globex"],
                }),
            ),
            ScriptedTurn::text("Two findings are in the workspace."),
        ]))
        .workspace(&workspace.member("researcher").teammates(["writer"]));
    let research = researcher.run("Find out what Acme and Globex charge.").user("ann").await?;
    show_calls(&research);

    println!("\n== writer");
    let writer_model = ScriptedModel::new([
        ScriptedTurn::tool_call("search_notes", json!({"query": "price per seat", "limit": 2})),
        ScriptedTurn::tool_call("read_note", json!({"slug": "acme-pricing"}))
            .with_tool_call("read_note", json!({"slug": "globex-pricing"})),
        ScriptedTurn::tool_call(
            "note",
            json!({
                "title": "Pricing summary",
                "kind": "summary",
                "parent": "acme-pricing",
                "body": "Globex is $10 a seat cheaper than Acme ($39 vs $49), but needs 10 seats; \
                         Acme's annual plan narrows the gap to $41.65.",
            }),
        ),
        ScriptedTurn::text("Globex is cheaper per seat; Acme's annual plan nearly closes the gap."),
    ]);
    let writer = Agent::new("You write short reports from the team's findings.")
        .model(writer_model.clone())
        .workspace(&workspace.member("writer").teammates(["researcher"]));
    let report = writer.run("Summarise competitor pricing.").user("ann").await?;
    show_calls(&report);

    let system = writer_model.requests()[0].messages[0].text().into_owned();
    println!("\n== the writer's prompt section");
    for line in system.lines().skip_while(|l| !l.starts_with("## Shared workspace")) {
        println!("  {line}");
    }

    let cited: Vec<String> = report.citations().into_iter().map(|c| format!("{} {}", c.kind, c.id)).collect();
    println!("\ncited by the writer's run: {}", cited.join(", "));
    let credited = workspace.attribute_outcome(&ann, report.run_id, true).await?;
    println!("the report was accepted: {credited} notes credited");

    println!("\n== the workspace of ann");
    let mut notes = workspace.list(&ann, NoteFilter::new()).await?;
    notes.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.slug.cmp(&b.slug)));
    for note in &notes {
        let parent = note.parent.as_deref().map(|p| format!(" (follows up {p})")).unwrap_or_default();
        println!(
            "{:<8} {:<16} by {:<10} v{}  cited {}×  {}{parent}",
            note.kind.as_str(),
            note.slug,
            note.author,
            note.version,
            note.cited_count,
            note.title
        );
    }

    let dir = root.join("ann");
    println!("\n== files under {}", dir.display());
    let mut files: Vec<String> = Vec::new();
    for sub in ["", "notes/researcher", "notes/writer"] {
        for entry in std::fs::read_dir(dir.join(sub))?.flatten() {
            if entry.path().is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
                files.push(format!("{sub}/{}", entry.file_name().to_string_lossy()).trim_start_matches('/').to_owned());
            }
        }
    }
    files.sort();
    for file in &files {
        println!("  {file}");
    }
    println!("\n== WORKSPACE.md");
    print!("{}", std::fs::read_to_string(dir.join("WORKSPACE.md"))?);
    println!("\n== notes/writer/pricing-summary.md");
    print!("{}", std::fs::read_to_string(dir.join("notes/writer/pricing-summary.md"))?);

    std::fs::remove_dir_all(&root)?;
    Ok(())
}
