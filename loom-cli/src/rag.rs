//! `loom ingest` and `loom search`: a RAG corpus in one SQLite file.

use std::io::IsTerminal as _;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use loomflow::rag::load::DirectoryLoader;
use loomflow::rag::{Corpus, Retrieve};
use loomflow::session::SqliteStore;

use crate::commands::user;
use crate::{Failure, IngestArgs, Outcome, SearchArgs};

fn corpus(path: &std::path::Path, collection: &str) -> Result<Corpus, Failure> {
    let store = SqliteStore::open(path).map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    Ok(Corpus::shared(Arc::new(store)).collection(collection))
}

/// A bar on a terminal's stderr; nothing elsewhere.
fn bar(len: u64, message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

pub(crate) async fn ingest(args: IngestArgs) -> Outcome {
    let user = user(&args.user)?;
    let loading = bar(args.paths.len() as u64, "loading");
    let mut documents = Vec::new();
    let mut failed = 0usize;
    for path in &args.paths {
        if path.is_dir() {
            let mut loader = DirectoryLoader::new(path);
            for glob in &args.include {
                loader = loader.include(glob.as_str());
            }
            let report = loader.load().await.map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
            for (file, error) in &report.failed {
                loading.suspend(|| eprintln!("warning: {}: {error}", file.display()));
            }
            failed += report.failed.len();
            documents.extend(report.documents);
        } else {
            let loaded = loomflow::rag::load::load(path)
                .await
                .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
            documents.extend(loaded);
        }
        loading.inc(1);
    }
    loading.finish_and_clear();
    if documents.is_empty() {
        return Err(Failure::failed("nothing to ingest: no file loaded"));
    }
    let corpus = corpus(&args.into, &args.collection)?;
    let total = documents.len();
    let progress = bar(total as u64, "ingesting");
    let done = corpus
        .ingest_with(&user, documents, |p| progress.set_position(p.documents as u64))
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    progress.finish_and_clear();
    println!(
        "ingested {total} document(s) into {}: {} chunk(s) added, {} kept, {} removed{}",
        args.into.display(),
        done.added,
        done.kept,
        done.removed,
        if failed > 0 { format!("; {failed} file(s) failed") } else { String::new() }
    );
    Ok(())
}

pub(crate) async fn search(args: SearchArgs) -> Outcome {
    let user = user(&args.user)?;
    if !args.corpus.exists() {
        return Err(Failure::usage(format!("no corpus at `{}`; make one with `loom ingest`", args.corpus.display())));
    }
    let corpus = corpus(&args.corpus, &args.collection)?;
    let query = args.query.join(" ");
    let passages = corpus
        .retrieve(&user, Retrieve::new(query).limit(args.limit))
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    for passage in &passages {
        if args.json {
            let line = serde_json::json!({
                "score": passage.score,
                "document": passage.chunk.document,
                "index": passage.chunk.index,
                "text": passage.chunk.text,
            });
            println!("{line}");
        } else {
            let text: String = passage.chunk.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = text.chars().take(160).collect();
            println!("{:.3}  {}#{}  {short}", passage.score, passage.chunk.document, passage.chunk.index);
        }
    }
    Ok(())
}
