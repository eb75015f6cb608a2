//! RAG end to end through the public API: ingestion (batched, resumable, replacing only
//! changed chunks), retrieval (fusion, filters, diversity, reranking), the retriever tool with
//! citations in a run, and answers whose citations are checked.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loomflow::memory::{Embedder, HashingEmbedder};
use loomflow::model::{ModelError, ModelErrorKind, ScriptedModel, ScriptedTurn};
use loomflow::rag::{Corpus, Document, Filter, Hit, InMemoryVectorStore, Reranker, Retrieve, VectorStore};
use loomflow::{Agent, UserId};
use serde_json::json;

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A handbook long enough for several chunks: one section per topic.
fn handbook(vacation: &str) -> Document {
    let mut text = String::from("# Handbook\n\n");
    for (topic, body) in [
        ("Vacation", vacation),
        ("Expenses", "Expenses are filed within thirty days with the receipts attached to the claim."),
        ("Laptops", "Laptops are replaced every three years; a broken one is swapped the same day."),
        ("Travel", "Trains are booked in second class; flights only when the train takes over six hours."),
    ] {
        text.push_str(&format!("## {topic}\n\n{body} {}\n\n", "More words about the policy follow here. ".repeat(18)));
    }
    Document::new("handbook.md", text)
}

const VACATION: &str = "Every employee has twenty-five days of paid vacation a year.";

/// An embedder that counts the texts it embeds and fails after `fail_after` calls.
struct Counting {
    inner: HashingEmbedder,
    texts: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
    fail_after: usize,
}

impl Counting {
    fn new(fail_after: usize) -> (Self, Arc<AtomicUsize>) {
        let texts = Arc::new(AtomicUsize::new(0));
        let e = Self { inner: HashingEmbedder::default(), texts: texts.clone(), calls: Arc::default(), fail_after };
        (e, texts)
    }
}

#[loomflow::async_trait]
impl Embedder for Counting {
    fn name(&self) -> &str {
        "hashing"
    }
    fn dims(&self) -> usize {
        self.inner.dims()
    }
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.fail_after {
            return Err(ModelError::new(ModelErrorKind::Connection, "counting", "the embedding server went away"));
        }
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

#[tokio::test]
async fn re_ingesting_a_changed_document_embeds_only_its_changed_chunks() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryVectorStore::new());
    let (embedder, texts) = Counting::new(usize::MAX);
    let corpus = Corpus::shared(store.clone()).embedder(embedder);
    let ann = user("ann");
    let first = corpus.ingest(&ann, [handbook(VACATION)]).await?;
    assert!(first.added >= 4, "one chunk a section at least: {first:?}");
    assert_eq!((first.kept, first.removed), (0, 0));
    assert_eq!(texts.load(Ordering::SeqCst), first.added);
    let before = store.chunk_ids(&ann, "default", "handbook.md").await?;

    // The same document: nothing embedded, nothing changed.
    let again = corpus.ingest(&ann, [handbook(VACATION)]).await?;
    assert_eq!((again.added, again.kept, again.removed), (0, first.added, 0));
    assert_eq!(texts.load(Ordering::SeqCst), first.added);

    // One section changed: only the chunks that cover it are new, the old ones go.
    let changed = corpus.ingest(&ann, [handbook("Every employee has thirty days of paid vacation a year.")]).await?;
    assert!(changed.added >= 1 && changed.added < first.added, "{changed:?}");
    assert_eq!(changed.removed, changed.added, "each changed chunk replaces one");
    assert_eq!(changed.kept + changed.added, first.added);
    let after = store.chunk_ids(&ann, "default", "handbook.md").await?;
    assert_eq!(after.len(), before.len());
    assert_eq!(after.iter().filter(|id| !before.contains(id)).count(), changed.added);
    let hits = corpus.retrieve(&ann, "how many days of paid vacation").await?;
    assert!(hits[0].chunk.text.contains("thirty days"), "{:?}", hits[0].chunk.text);
    assert!(hits.iter().all(|p| !p.chunk.text.contains("twenty-five")), "the old version is gone");
    Ok(())
}

#[tokio::test]
async fn ingestion_reports_each_batch_and_resumes_after_a_failure() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryVectorStore::new());
    let ann = user("ann");
    let docs: Vec<Document> = (0..10)
        .map(|i| Document::new(format!("doc-{i}.md"), format!("# Doc {i}\n\nThe code word of document {i} is w{i}.")))
        .collect();
    // The embedder fails on its third batch: two batches are stored.
    let (failing, _) = Counting::new(2);
    let corpus = Corpus::shared(store.clone()).embedder(failing).batch_size(3);
    let err = corpus.ingest(&ann, docs.clone()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("went away"), "{err}");
    assert_eq!(store.count(&ann, "default").await?, 6);

    // Again with a working embedder: what was stored is kept, the rest is embedded.
    let (working, texts) = Counting::new(usize::MAX);
    let corpus = Corpus::shared(store.clone()).embedder(working).batch_size(3);
    let mut reports = Vec::new();
    let done = corpus.ingest_with(&ann, docs, |p| reports.push(*p)).await?;
    assert_eq!((done.documents, done.kept, done.added), (10, 6, 4));
    assert_eq!(texts.load(Ordering::SeqCst), 4);
    assert_eq!(done.batches, 2);
    assert_eq!(reports.len(), 2, "one report a batch, the last with the totals: {reports:?}");
    assert_eq!(reports.last(), Some(&done));
    assert!(reports.windows(2).all(|w| w[0].added <= w[1].added && w[0].documents <= w[1].documents));
    assert_eq!(store.count(&ann, "default").await?, 10);
    Ok(())
}

fn travel_docs() -> Vec<Document> {
    vec![
        Document::new("trains.md", "# Trains\n\nNight trains run from Paris to Vienna twice a week.")
            .with("lang", "en"),
        Document::new("trains-copy.md", "# Trains\n\nNight trains run from Paris to Vienna twice a week, both ways.")
            .with("lang", "en"),
        Document::new("planes.md", "# Planes\n\nFlights from Paris to Vienna leave every hour.").with("lang", "en"),
        Document::new("boats.md", "# Boote\n\nFerries to Vienna cross the Danube in summer.").with("lang", "de"),
    ]
}

#[tokio::test]
async fn retrieval_filters_diversifies_and_reranks() -> anyhow::Result<()> {
    let ann = user("ann");
    let corpus = Corpus::in_memory();
    corpus.ingest(&ann, travel_docs()).await?;
    let sources = |ps: &[loomflow::rag::Passage]| {
        ps.iter().map(|p| p.citation.source.clone().unwrap_or_default()).collect::<Vec<_>>()
    };
    let plain = corpus.retrieve(&ann, Retrieve::new("night trains Paris Vienna").limit(2)).await?;
    assert_eq!(sources(&plain), ["trains.md", "trains-copy.md"]);
    // Diversity passes over the near-duplicate.
    let diverse = corpus.retrieve(&ann, Retrieve::new("night trains Paris Vienna").limit(2).diversity(0.3)).await?;
    assert_eq!(sources(&diverse)[0], "trains.md");
    assert_ne!(sources(&diverse)[1], "trains-copy.md");
    // Filters.
    let german = corpus.retrieve(&ann, Retrieve::new("Vienna").limit(4).filter(Filter::eq("lang", "de"))).await?;
    assert_eq!(sources(&german), ["boats.md"]);
    assert_eq!(german[0].citation.locator.as_deref(), Some("Boote"));

    // A reranker sees the candidates and has the last word.
    struct Reverse;
    #[loomflow::async_trait]
    impl Reranker for Reverse {
        async fn rerank(&self, query: &str, mut hits: Vec<Hit>) -> Result<Vec<Hit>, loomflow::Error> {
            assert_eq!(query, "Paris Vienna");
            hits.reverse();
            Ok(hits)
        }
    }
    let reranked = Corpus::in_memory().reranker(Reverse);
    reranked.ingest(&ann, travel_docs()).await?;
    let all = reranked.retrieve(&ann, Retrieve::new("Paris Vienna").limit(4)).await?;
    let mut expected = sources(&corpus.retrieve(&ann, Retrieve::new("Paris Vienna").limit(4)).await?);
    expected.reverse();
    assert_eq!(sources(&all), expected);
    Ok(())
}

#[tokio::test]
async fn the_retriever_tool_searches_the_runs_user_and_the_run_lists_its_sources() -> anyhow::Result<()> {
    let (ann, bob) = (user("ann"), user("bob"));
    let corpus = Corpus::in_memory();
    corpus.ingest(&ann, travel_docs()).await?;
    corpus.ingest(&bob, [Document::new("bob.md", "# Bob\n\nBob's trains leave from Lyon.")]).await?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("retrieve", json!({"query": "night trains to Vienna", "limit": 1})),
        ScriptedTurn::text("Night trains run twice a week [1]."),
    ]);
    let agent = Agent::new("Answer from the documents.").model(model.clone()).tool(corpus.tool());
    let result = agent.run("When do night trains run?").user(ann.clone()).await?;
    let cited = result.citations();
    assert_eq!(cited.len(), 1);
    assert_eq!((cited[0].kind.as_str(), cited[0].source.as_deref()), ("passage", Some("trains.md")));
    assert_eq!(cited[0].locator.as_deref(), Some("Trains"));
    let sent = model.requests()[1].last_text();
    let body: serde_json::Value = serde_json::from_str(&sent)?;
    assert_eq!(body["passages"][0]["n"], 1);
    assert_eq!(body["passages"][0]["source"], "trains.md");
    assert_eq!(body["passages"][0]["chunk_id"], cited[0].id.as_str());
    assert!(body["passages"][0]["text"].as_str().is_some_and(|t| t.contains("twice a week")));

    // Bob's run finds Bob's document only.
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("retrieve", json!({"query": "trains Vienna Lyon"})),
        ScriptedTurn::text("ok"),
    ]);
    let agent = Agent::new("Answer.").model(model.clone()).tool(corpus.tool());
    let result = agent.run("trains?").user(bob).await?;
    let sources: Vec<_> = result.citations().into_iter().filter_map(|c| c.source).collect();
    assert_eq!(sources, ["bob.md"]);

    // Bad arguments are the model's to correct.
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("retrieve", json!({"question": "trains"})),
        ScriptedTurn::text("ok"),
    ]);
    let agent = Agent::new("Answer.").model(model.clone()).tool(corpus.tool());
    let result = agent.run("trains?").user(ann).await?;
    assert!(result.citations().is_empty());
    let error = model.requests()[1].last_text();
    assert!(error.contains("query"), "{error}");
    Ok(())
}

#[tokio::test]
async fn an_answer_citing_a_passage_that_does_not_exist_is_sent_back() -> anyhow::Result<()> {
    let ann = user("ann");
    let corpus = Corpus::in_memory();
    corpus.ingest(&ann, travel_docs()).await?;
    let model = ScriptedModel::new([
        ScriptedTurn::text(r#"{"answer": "Twice a week [7]."}"#),
        ScriptedTurn::text(r#"{"answer": "Night trains run twice a week [1], flights hourly [2]."}"#),
    ]);
    let agent = Agent::new("You answer travel questions.").model(model.clone());
    let answer = corpus.answer(&agent, &ann, Retrieve::new("night trains flights Vienna").limit(3)).await?;
    assert_eq!(answer.text(), "Night trains run twice a week [1], flights hourly [2].");
    assert_eq!(answer.passages.len(), 3);
    let cited: Vec<_> = answer.sources.iter().map(|p| p.chunk.id.clone()).collect();
    assert_eq!(cited, [answer.passages[0].chunk.id.clone(), answer.passages[1].chunk.id.clone()]);
    let requests = model.requests();
    let first = requests[0].last_text();
    assert!(first.contains("[1] (trains.md, Trains)") && first.contains("Question: night trains"), "{first}");
    let feedback = requests[1].last_text();
    assert!(feedback.contains("[7]") && feedback.contains("[1] to [3]"), "{feedback}");
    Ok(())
}

#[tokio::test]
async fn a_corpus_without_an_embedder_ranks_by_words() -> anyhow::Result<()> {
    let ann = user("ann");
    let corpus = Corpus::in_memory().without_embedder().collection("words");
    corpus.ingest(&ann, travel_docs()).await?;
    let hits = corpus.retrieve(&ann, "ferries Danube").await?;
    assert_eq!(hits[0].citation.source.as_deref(), Some("boats.md"));
    assert_eq!(corpus.count(&ann).await?, 4);
    assert_eq!(corpus.remove_document(&ann, "boats.md").await?, 1);
    assert!(corpus.retrieve(&ann, "ferries Danube").await?.is_empty());
    assert_eq!(corpus.export(&ann).await?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn memory_export_and_forget_cover_the_documents_a_user_ingested() -> anyhow::Result<()> {
    let file = common::TempFile::new("rag-memory.db");
    let store = Arc::new(loomflow::session::SqliteStore::open(file.path())?);
    let corpus = Corpus::shared(store.clone());
    let memory = loomflow::memory::Memory::shared(store.clone()).cover(corpus.documents());
    let (ann, bob) = (user("ann"), user("bob"));
    corpus.ingest(&ann, travel_docs()).await?;
    corpus.clone().collection("private").ingest(&ann, [Document::new("diary.md", "Dear diary, Vienna.")]).await?;
    corpus.ingest(&bob, [Document::new("bob.md", "Bob's page about Vienna.")]).await?;
    memory.remember(&ann, "note", "Ann asked about Vienna").await?;

    let export = serde_json::to_value(memory.export(&ann).await?)?;
    let documents = export["covered"]["documents"].as_array().cloned().unwrap_or_default();
    assert_eq!(documents.len(), 5);
    assert!(documents.iter().any(|d| d["collection"] == "private" && d["document"] == "diary.md"));
    assert!(documents.iter().all(|d| d["document"] != "bob.md"));

    let report = memory.forget(&ann, Default::default()).await?;
    assert_eq!((report.episodes, report.covered.get("documents").copied()), (1, Some(5)));
    assert!(corpus.retrieve(&ann, "Vienna").await?.is_empty());
    let conn = rusqlite::Connection::open(file.path())?;
    let left: i64 = conn.query_row("SELECT count(*) FROM loom_chunks WHERE user = 'ann'", [], |r| r.get(0))?;
    assert_eq!(left, 0);
    assert_eq!(corpus.count(&bob).await?, 1, "another user is untouched");
    Ok(())
}

#[tokio::test]
async fn a_document_that_cannot_be_loaded_is_a_loom_error() {
    async fn ingest(path: &str) -> Result<usize, loomflow::Error> {
        let docs = loomflow::rag::load::load(path).await?;
        Ok(Corpus::in_memory().ingest(&user("ann"), docs).await?.added)
    }
    let err = ingest("/nonexistent/handbook.md").await.err();
    assert!(matches!(err, Some(loomflow::Error::Load(_))), "{err:?}");
    assert!(err.is_some_and(|e| e.to_string().contains("handbook.md")));
}
