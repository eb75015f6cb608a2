//! The life of notes in a workspace, in SQLite: versions kept on every change, two writers
//! racing on one note (one conflict, retried, nothing lost), a change to another member's
//! note refused, the notes a run read recorded and credited with its outcome, and pruning
//! that spares what a live run read. Then export and forget. Offline.
//!
//! ```sh
//! cargo run -p loomflow-examples --example workspace_lifecycle
//! ```

use std::sync::Arc;

use loomflow::RunId;
use loomflow::UserId;
use loomflow::session::SqliteStore;
use loomflow::workspace::{NewNote, NoteEdit, NoteFilter, NoteKind, PruneRule, Workspace};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The workspace in the SQLite file of the sessions and memory (here a private one in memory).
    let workspace = Workspace::shared(Arc::new(SqliteStore::in_memory()?));
    let ann = UserId::new("ann")?;

    println!("== versions");
    workspace.write(&ann, "planner", NewNote::new("Launch date", "We launch on 3 June.").kind(NoteKind::Plan)).await?;
    workspace.update(&ann, "planner", "launch-date", NoteEdit::new().body("We launch on 10 June.")).await?;
    workspace
        .update(&ann, "planner", "launch-date", NoteEdit::new().body("We launch on 10 June, in Europe first."))
        .await?;
    for v in workspace.versions(&ann, "launch-date").await? {
        println!("v{} │ {}", v.version, v.body);
    }

    println!("\n== two writers, one note");
    let first = workspace.get(&ann, "launch-date").await?;
    let second = workspace.get(&ann, "launch-date").await?;
    let a = NoteEdit::new().body(format!("{} Press embargo until 9am.", first.body)).expect_version(first.version);
    let b = NoteEdit::new().body(format!("{} Pricing page goes live too.", second.body)).expect_version(second.version);
    let won = workspace.update(&ann, "planner", "launch-date", a).await?;
    println!("writer A: saved version {}", won.version);
    match workspace.update(&ann, "planner", "launch-date", b).await {
        Ok(note) => println!("writer B: saved version {}", note.version),
        Err(e) if e.is_conflict() => {
            println!("writer B: {e}");
            let current = workspace.get(&ann, "launch-date").await?;
            let retry = NoteEdit::new()
                .body(format!("{} Pricing page goes live too.", current.body))
                .expect_version(current.version);
            let note = workspace.update(&ann, "planner", "launch-date", retry).await?;
            println!("writer B, again: saved version {}", note.version);
        }
        Err(e) => return Err(e.into()),
    }
    println!("now │ {}", workspace.get(&ann, "launch-date").await?.body);

    println!("\n== own notes only");
    let refused = workspace.update(&ann, "marketer", "launch-date", NoteEdit::new().body("We launch tomorrow!")).await;
    if let Err(e) = refused {
        println!("marketer: {e}");
    }

    println!("\n== citations");
    workspace.write(&ann, "analyst", NewNote::new("Budget", "Launch budget: $20k.")).await?;
    workspace.write(&ann, "analyst", NewNote::new("Old rumour", "A competitor launches in May.")).await?;
    workspace.write(&ann, "analyst", NewNote::new("Venue idea", "A rooftop in Lisbon.")).await?;
    let run = RunId::generate();
    workspace.read(&ann, "launch-date", run).await?;
    workspace.read(&ann, "budget", run).await?;
    workspace.read(&ann, "budget", run).await?;
    for c in workspace.cited(&ann, run).await? {
        println!("the run read {} ({}×)", c.slug, c.reads);
    }

    println!("\n== prune while the run is live");
    let rule = PruneRule::new().keep_kinds([NoteKind::Decision]).keep_last_versions(2);
    let report = workspace.prune(&ann, rule.clone()).await?;
    println!(
        "deleted {} notes and {} old versions; kept {} ({} only because a live run read them)",
        report.notes_deleted, report.versions_deleted, report.notes_kept, report.kept_for_live_runs
    );

    println!("\n== the outcome");
    let credited = workspace.attribute_outcome(&ann, run, true).await?;
    println!("the launch went well: {credited} notes credited");
    for note in workspace.list(&ann, NoteFilter::new()).await? {
        println!(
            "{:<12} v{}  cited {}×, in successes {}×",
            note.slug, note.version, note.cited_count, note.success_count
        );
    }
    let report = workspace.prune(&ann, rule).await?;
    println!(
        "prune again: deleted {}, kept {}, cleared {} ended run(s)",
        report.notes_deleted, report.notes_kept, report.runs_cleared
    );

    println!("\n== export and forget");
    let export = workspace.export(&ann).await?;
    let json = serde_json::to_string(&export)?;
    println!(
        "export: {} notes, {} earlier versions, {} runs ({} bytes of JSON)",
        export.data.notes.len(),
        export.data.versions.len(),
        export.data.runs.len(),
        json.len()
    );
    println!("forgot {} notes", workspace.forget(&ann).await?);
    println!("afterwards: {} notes", workspace.list(&ann, NoteFilter::new().include_archived()).await?.len());
    Ok(())
}
