//! Index a PDF and answer a question with citations, offline.
//!
//! The travel handbook (`examples/data/travel-handbook.pdf`, two pages) is loaded page by
//! page, chunked, embedded with the hashing embedder and stored in a SQLite file; the question
//! is answered from the retrieved passages, and every `[n]` the answer cites is checked to be
//! one of them. A second ingestion embeds nothing: the chunks are stored already.
//!
//! ```sh
//! cargo run -p loomflow-examples --example rag_pdf
//! cargo run -p loomflow-examples --example rag_pdf -- path/to/other.pdf "your question"
//! LOOM_MODEL=gpt-4.1-mini OPENAI_API_KEY=... cargo run -p loomflow-examples --example rag_pdf
//! ```
//!
//! Offline, a scripted model gives the answer (first citing a passage that does not exist, to
//! show the check sending it back); set `LOOM_MODEL` to ask a real one.

use std::path::PathBuf;

use loomflow::model::{self, ScriptedModel, ScriptedTurn};
use loomflow::prelude::*;
use loomflow::rag::{Corpus, Retrieve, load};
use loomflow::session::SqliteStore;

fn script() -> ScriptedModel {
    ScriptedModel::new([
        ScriptedTurn::text(r#"{"answer": "Night trains to Vienna run twice a week [9]."}"#),
        ScriptedTurn::text(
            r#"{"answer": "Night trains run from Paris to Vienna on Tuesdays and Fridays [1]; book the sleeper at least three days ahead [1]."}"#,
        ),
    ])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let pdf = args
        .next()
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/travel-handbook.pdf"), PathBuf::from);
    let question = args.next().unwrap_or_else(|| "When do night trains run to Vienna, and when must I book?".into());

    let pages = load::load(&pdf).await?;
    println!("loaded {} pages from {}", pages.len(), pdf.display());

    let db = std::env::temp_dir().join(format!("loom-rag-pdf-{}.db", std::process::id()));
    let store = SqliteStore::open(&db)?;
    let corpus = Corpus::new(store).collection("handbook").batch_size(2);
    let user = UserId::new("ann")?;
    let total = pages.len();
    let report = corpus
        .ingest_with(&user, pages.clone(), |p| {
            // A progress bar over the documents, one line a batch.
            let width = 20;
            let filled = (p.documents * width).checked_div(total).unwrap_or(width).min(width);
            println!(
                "  [{}{}] {}/{total} documents, {} chunks stored, {} kept",
                "#".repeat(filled),
                ".".repeat(width - filled),
                p.documents,
                p.added,
                p.kept
            );
        })
        .await?;
    let again = corpus.ingest(&user, pages).await?;
    println!("indexed {} chunks; ingesting again stored {} and kept {}", report.added, again.added, again.kept);

    let agent = Agent::new("You answer questions about Loom's travel rules.").model(model::from_env_or(script())?);
    let answer = corpus.answer(&agent, &user, Retrieve::new(question.as_str()).limit(3)).await?;
    println!("\nQ: {question}\nA: {}", answer.text());
    println!("sources:");
    for (i, p) in answer.passages.iter().enumerate() {
        let cited = if answer.sources.iter().any(|s| s.chunk.id == p.chunk.id) { "cited" } else { "     " };
        let source = p.citation.source.as_deref().map_or("?", |s| s.rsplit('/').next().unwrap_or(s));
        let page = p.citation.locator.as_deref().unwrap_or("");
        println!("  [{}] {cited} {source}, {page}: {}", i + 1, p.chunk.text.lines().next().unwrap_or(""));
    }
    if answer.run.turns > 1 {
        println!("(the first answer cited a passage that does not exist and was sent back)");
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(())
}
