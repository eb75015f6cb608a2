//! RAG benchmarks: what ingestion and one retrieval cost as a user's corpus grows.
//!
//! | line | what is timed |
//! |---|---|
//! | `rag_ingest_10k`, `rag_ingest_100k` | `Corpus::ingest` of generated Markdown documents until the corpus holds 10,000 / 100,000 chunks: chunking, hashing embeddings, storing |
//! | `rag_query_10k`, `rag_query_100k` | one `Corpus::retrieve` of a 5-to-9-word query, 5 passages, over that corpus: the query's embedding, BM25 and vectors fused |
//!
//! Each line's `variant` is the backend, `in_memory` or `sqlite`:
//!
//! ```sh
//! cargo bench -p loomflow --bench rag                   # readable table
//! cargo bench -p loomflow --bench rag -- --json         # one JSON line per measurement
//! cargo bench -p loomflow --bench rag -- --quick        # 2,000 chunks, a few seconds
//! cargo bench -p loomflow --bench rag -- --backend sqlite
//! ```
//!
//! **Data.** Documents are Markdown pages of 3 to 6 sections, each a heading and 2 to 4
//! paragraphs of 30 to 70 words drawn from a Zipf-distributed vocabulary (the one of the
//! memory benchmark), chunked by the default Markdown chunker (800 characters, 100 of
//! overlap). A fixed seed: every run sees the same corpus.
//!
//! **Checks.** Planted documents with a unique word must come back first for a query naming
//! it, and every timed retrieval must return 5 passages; a failed check prints
//! `"verified": false` and the process exits non-zero. SQLite's file is on `/dev/shm` when
//! there is one (or `LOOM_BENCH_DIR`) and is removed at the end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use loomflow::UserId;
use loomflow::rag::{Corpus, Document, InMemoryVectorStore, Retrieve, VectorStore};
use loomflow::session::SqliteStore;
use serde_json::{Value, json};

#[path = "common/text.rs"]
mod text;

use text::{Rng, Vocabulary, human_us, percentile, round, thousands, us};

const SEED: u64 = 0x5eed_1007_0000_0015;
const NEEDLES: usize = 4;
const QUERIES: usize = 64;
const WARMUP: usize = 5;

const USAGE: &str = "\
usage: cargo bench -p loomflow --bench rag -- [--json] [--quick] [--backend in_memory|sqlite]...";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    InMemory,
    Sqlite,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::InMemory => "in_memory",
            Self::Sqlite => "sqlite",
        }
    }
}

struct Options {
    json: bool,
    quick: bool,
    backends: Vec<Backend>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options { json: false, quick: false, backends: Vec::new() };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--quick" => options.quick = true,
            "--bench" => {}
            "--backend" => {
                let name = args.next().ok_or_else(|| anyhow!("--backend needs a name\n{USAGE}"))?;
                options.backends.push(match name.as_str() {
                    "in_memory" => Backend::InMemory,
                    "sqlite" => Backend::Sqlite,
                    other => bail!("unknown backend `{other}`\n{USAGE}"),
                });
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if options.backends.is_empty() {
        options.backends = vec![Backend::InMemory, Backend::Sqlite];
    }
    Ok(options)
}

fn main() -> ExitCode {
    match run_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rag: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_main() -> anyhow::Result<bool> {
    let options = parse_args()?;
    let sizes: &[usize] = if options.quick { &[2_000] } else { &[10_000, 100_000] };
    let budget = if options.quick { Duration::from_secs(1) } else { Duration::from_secs(5) };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot build the tokio runtime")?;
    let vocabulary = Vocabulary::new(SEED);
    let mut ok = true;
    let mut header = false;
    runtime.block_on(async {
        for &backend in &options.backends {
            let lines = match lines(backend, &vocabulary, sizes, budget).await {
                Ok(lines) => lines,
                Err(e) => vec![
                    json!({"workload": "rag", "variant": backend.name(), "verified": false, "error": format!("{e:#}")}),
                ],
            };
            for line in lines {
                ok &= line["verified"] == true;
                if options.json {
                    println!("{line}");
                } else {
                    print_line(&line, &mut header);
                }
            }
        }
    });
    if !options.json && header {
        println!(
            "\ningest: chunk + embed (hashing, 256 dims) + store, batches of 64; query: Corpus::retrieve, 5 passages, \
             embedding included"
        );
    }
    Ok(ok)
}

/// The store of one run, and the file it keeps (removed on drop).
struct Bed {
    store: Arc<dyn VectorStore>,
    file: Option<PathBuf>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
    }
}

fn bed(backend: Backend) -> anyhow::Result<Bed> {
    Ok(match backend {
        Backend::InMemory => Bed { store: Arc::new(InMemoryVectorStore::new()), file: None },
        Backend::Sqlite => {
            let dir = std::env::var_os("LOOM_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| {
                let shm = PathBuf::from("/dev/shm");
                if shm.is_dir() { shm } else { std::env::temp_dir() }
            });
            let file = dir.join(format!("loom-bench-rag-{}.db", std::process::id()));
            let store = SqliteStore::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
            Bed { store: Arc::new(store), file: Some(file) }
        }
    })
}

/// The unique word of planted document `i` (never made by the vocabulary: it has digits).
fn needle_word(i: usize) -> String {
    format!("zephyr{i}")
}

/// A generated Markdown page.
fn page(vocabulary: &Vocabulary, rng: &mut Rng, i: usize) -> Document {
    let mut text = format!("# Page {i}\n\n");
    for s in 0..3 + rng.below(4) {
        text.push_str(&format!("## Section {s}: {}\n\n", vocabulary.sentence(rng, 2, 4)));
        for _ in 0..2 + rng.below(3) {
            text.push_str(&vocabulary.sentence(rng, 30, 70));
            text.push_str(".\n\n");
        }
    }
    Document::new(format!("page-{i}.md"), text)
}

async fn lines(
    backend: Backend,
    vocabulary: &Vocabulary,
    sizes: &[usize],
    budget: Duration,
) -> anyhow::Result<Vec<Value>> {
    let bed = bed(backend)?;
    let corpus = Corpus::shared(bed.store.clone());
    let user = UserId::new("bench-user")?;
    let mut rng = Rng(SEED);
    let needles: Vec<Document> = (0..NEEDLES)
        .map(|i| {
            Document::new(format!("needle-{i}.md"), format!("# Needle {i}\n\nThe {} is kept here.", needle_word(i)))
        })
        .collect();
    corpus.ingest(&user, needles).await?;
    let mut chunks = corpus.count(&user).await?;
    let mut next = 0usize;
    let mut out = Vec::new();
    for &size in sizes {
        // Ingest pages, a batch of documents at a time, until the corpus is this large.
        let before = chunks;
        let started = Instant::now();
        while chunks < size {
            let docs: Vec<Document> = (next..next + 50).map(|i| page(vocabulary, &mut rng, i)).collect();
            next += 50;
            chunks += corpus.ingest(&user, docs).await?.added;
        }
        let took = started.elapsed();
        let added = chunks - before;
        out.push(json!({
            "workload": format!("rag_ingest_{}", short(size)),
            "variant": backend.name(),
            "verified": true,
            "chunks": chunks,
            "added": added,
            "ingest_s": round(took.as_secs_f64(), 3),
            "chunks_per_s": round(added as f64 / took.as_secs_f64().max(1e-9), 0),
        }));
        // Checks: a planted document comes first for its word.
        for i in 0..NEEDLES {
            let hits =
                corpus.retrieve(&user, Retrieve::new(format!("where is the {}", needle_word(i))).limit(5)).await?;
            ensure!(
                hits.first().map(|h| h.chunk.document.as_str()) == Some(&*format!("needle-{i}.md")),
                "needle {i} was not first at {chunks} chunks"
            );
        }
        let queries: Vec<String> = (0..QUERIES).map(|_| format!("{}?", vocabulary.sentence(&mut rng, 5, 9))).collect();
        let mut runs = Vec::new();
        let started = Instant::now();
        let mut i = 0usize;
        while (started.elapsed() < budget || runs.len() < 2 * QUERIES) && runs.len() < 20 * QUERIES {
            let q = &queries[i % queries.len()];
            let t = Instant::now();
            let hits = corpus.retrieve(&user, Retrieve::new(q.as_str()).limit(5)).await?;
            let took = t.elapsed();
            ensure!(hits.len() == 5, "query {q:?} returned {} passages", hits.len());
            if i >= WARMUP {
                runs.push(took);
            }
            i += 1;
        }
        runs.sort_unstable();
        out.push(json!({
            "workload": format!("rag_query_{}", short(size)),
            "variant": backend.name(),
            "verified": true,
            "chunks": chunks,
            "n": runs.len(),
            "p50_us": us(percentile(&runs, 50.0)),
            "p99_us": us(percentile(&runs, 99.0)),
            "max_us": us(runs.last().copied().unwrap_or_default()),
        }));
    }
    drop(bed);
    Ok(out)
}

fn short(n: usize) -> String {
    if n >= 1_000 && n.is_multiple_of(1_000) { format!("{}k", n / 1_000) } else { n.to_string() }
}

fn print_line(line: &Value, header: &mut bool) {
    if !*header {
        *header = true;
        println!(
            "{:<18} {:<9} {:>8} {:>10} {:>12} {:>10} {:>10} {:>6}",
            "line", "backend", "chunks", "ingest", "chunks/s", "p50", "p99", "n"
        );
    }
    let text = |key: &str| match line.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    if line["verified"] != true {
        println!("{:<18} {:<9} FAILED: {}", text("workload"), text("variant"), text("error"));
        return;
    }
    let duration = |key: &str| line.get(key).and_then(Value::as_f64).map_or("-".to_owned(), human_us);
    println!(
        "{:<18} {:<9} {:>8} {:>10} {:>12} {:>10} {:>10} {:>6}",
        text("workload"),
        text("variant"),
        thousands(line["chunks"].as_u64().unwrap_or(0)),
        line.get("ingest_s").and_then(Value::as_f64).map_or("-".to_owned(), |s| format!("{s:.1} s")),
        line.get("chunks_per_s").and_then(Value::as_f64).map_or("-".to_owned(), |c| thousands(c as u64)),
        duration("p50_us"),
        duration("p99_us"),
        line.get("n").and_then(Value::as_u64).map_or("-".to_owned(), |n| n.to_string()),
    );
}
