//! How well retrieval finds the answer: questions over Loom's own README, each with the phrase
//! its answer holds, scored by recall@5 (a top-5 passage holds the phrase) and mean reciprocal
//! rank, for BM25 alone, vectors alone and the hybrid of both.
//!
//! ```sh
//! cargo run -p loomflow-examples --example rag_eval            # hashing embedder, offline
//! cargo run -p loomflow-examples --example rag_eval -- FILE.md  # another document (and its questions won't fit)
//! ```
//!
//! The README is chunked by the Markdown chunker (800 characters, 100 of overlap) and embedded
//! with the hashing embedder (256 dimensions), so the vector line measures shared words and
//! word parts, not synonyms; a real embedding model (`CandleEmbedder`, `OpenAiEmbedder`) goes
//! in with `Corpus::embedder`.

use std::path::PathBuf;

use loomflow::UserId;
use loomflow::rag::{Corpus, Retrieve, load};

/// A question and the phrase (whitespace aside) its answer passage holds.
const QUESTIONS: &[(&str, &str)] = &[
    ("How are tool JSON schemas generated from Rust functions?", "schema comes from the parameter types"),
    ("What happens when the model sends malformed JSON arguments to a tool?", "each becomes an error result"),
    ("Which loop styles can an agent use besides ReAct?", "Twelve architectures behind one"),
    ("How does a supervisor hand work to its workers?", "a manager delegates to worker agents"),
    ("Can a crashed run be resumed in another process?", "replays the finished steps"),
    ("How does Loom stop two workers from executing the same run?", "A lease, renewed while the run is alive"),
    ("How are the shell commands an agent runs sandboxed?", "under bubblewrap"),
    ("How does the filesystem tool refuse paths that leave its root?", "RESOLVE_BENEATH"),
    ("How do I get a typed struct as the output of an agent run?", "makes the run's output a `Weather`"),
    ("What does Loom do when a provider answers 429 with Retry-After?", "`Retry-After` honoured"),
    ("Is prompt caching on for Anthropic?", "Anthropic prompt caching is on by default"),
    ("How are facts kept with a valid time and a record time?", "facts are bi-temporal"),
    ("How do I delete everything Loom stores about a user?", "removes all of it and counts it"),
    ("Which databases can hold an agent's memory?", "Five backends pass one conformance suite"),
    ("How does an agent load a skill's instructions?", "`load_skill` returns a skill's instructions"),
    ("How can an agent keep a plan of its steps while it works?", "gives the model `update_plan`"),
    ("What if an agent has hundreds of tools?", "above the threshold, each request carries"),
    ("Can PDF files be loaded for retrieval?", "PDF pages (`rag-pdf`, pure Rust)"),
    ("Does re-indexing a changed document embed all of it again?", "embeds only its changed chunks"),
    ("How do agents sharing notes avoid overwriting each other's updates?", "concurrent writers never lose one"),
    ("Which graph mistakes are compile errors in a workflow?", "an unjoined fan-out or an unbounded cycle"),
    ("How do I run the tests that need PostgreSQL, Redis and Chroma?", "installs and starts those servers"),
    ("How long does a fan-out of a hundred branches take?", "W4 fanout100"),
    ("Can another worker process continue a user's session?", "sessions continue on any worker"),
];

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"), PathBuf::from);
    let documents = load::load(&path).await?;
    let corpus = Corpus::in_memory();
    let user = UserId::new("eval")?;
    let ingested = corpus.ingest(&user, documents).await?;
    println!("{} chunks of {}, {} questions\n", ingested.added, path.display(), QUESTIONS.len());
    println!("| retrieval | recall@5 | MRR |");
    println!("|---|---|---|");
    for (name, alpha) in [("BM25", 0.0), ("vectors (hashing)", 1.0), ("hybrid (RRF, alpha 0.5)", 0.5)] {
        let (mut found, mut reciprocal) = (0usize, 0.0f64);
        let mut missed = Vec::new();
        for (question, phrase) in QUESTIONS {
            let passages = corpus.retrieve(&user, Retrieve::new(*question).limit(5).alpha(alpha)).await?;
            let phrase = squeeze(phrase);
            match passages.iter().position(|p| squeeze(&p.chunk.text).contains(&phrase)) {
                Some(rank) => {
                    found += 1;
                    reciprocal += 1.0 / (rank + 1) as f64;
                }
                None => missed.push(*question),
            }
        }
        let n = QUESTIONS.len() as f64;
        println!("| {name} | {:.2} | {:.2} |", found as f64 / n, reciprocal / n);
        for question in missed {
            eprintln!("  {name} missed: {question}");
        }
    }
    Ok(())
}
