//! One conformance suite for every vector store: partitioning by user and collection, upsert
//! and delete, hybrid search and its fusion weight, metadata filters, export and forget.

mod common;

use std::sync::Arc;

use loomflow::UserId;
use loomflow::memory::HashingEmbedder;
use loomflow::rag::{Chunk, Filter, InMemoryVectorStore, Metadata, SearchQuery, StoredChunk, VectorStore, chunk_id};
use serde_json::json;

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
}

/// What keeps a test's backend alive and cleans it up when the test ends.
type Guard = Box<dyn std::any::Any + Send>;

/// A chunk of document `doc` with `text` and metadata `meta`, with its hashing vector.
fn stored(doc: &str, index: u32, text: &str, meta: serde_json::Value) -> StoredChunk {
    let mut metadata: Metadata = match meta {
        serde_json::Value::Object(m) => m,
        _ => Metadata::new(),
    };
    metadata.insert("source".into(), doc.into());
    let chunk = Chunk {
        id: chunk_id(doc, text, 0),
        document: doc.into(),
        index,
        text: text.into(),
        start: 0,
        end: text.len(),
        metadata,
    };
    StoredChunk { chunk, vector: Some(HashingEmbedder::default().vector(text)) }
}

fn corpus() -> Vec<StoredChunk> {
    vec![
        stored("trains.md", 0, "Night trains run from Paris to Vienna twice a week.", json!({"page": 1, "lang": "en"})),
        stored("trains.md", 1, "The sleeper cars have beds and a small washbasin.", json!({"page": 2, "lang": "en"})),
        stored("planes.md", 0, "Flights from Paris to Vienna leave every hour.", json!({"page": 1, "lang": "en"})),
        stored(
            "boats.md",
            0,
            "Ferries cross the lake in summer only.",
            json!({"page": 3, "lang": "de", "tags": ["water", "summer"]}),
        ),
    ]
}

fn ids(hits: &[loomflow::rag::Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.chunk.document.as_str()).collect()
}

macro_rules! suite {
    ($($(#[$attr:meta])* $backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            async fn store() -> (Arc<dyn VectorStore>, Guard) {
                $make
            }

            #[tokio::test]
            $(#[$attr])*
            async fn users_and_collections_never_see_each_other() -> anyhow::Result<()> {
                let (it, _guard) = store().await;
                super::partitions(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn upsert_replaces_by_id_and_delete_removes() -> anyhow::Result<()> {
                let (it, _guard) = store().await;
                super::upsert_and_delete(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn search_fuses_words_and_meaning_by_alpha() -> anyhow::Result<()> {
                let (it, _guard) = store().await;
                super::hybrid(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn metadata_filters_admit_only_matching_chunks() -> anyhow::Result<()> {
                let (it, _guard) = store().await;
                super::filters(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn export_and_forget_cover_every_collection() -> anyhow::Result<()> {
                let (it, _guard) = store().await;
                super::export_forget(it).await
            }
        }
    )*};
}

suite! {
    in_memory => (Arc::new(InMemoryVectorStore::new()), Box::new(()));
    sqlite => {
        let file = common::TempFile::new("rag.db");
        let store = loomflow::session::SqliteStore::open(file.path()).unwrap_or_else(|e| panic!("{e}"));
        (Arc::new(store), Box::new(file))
    };
    #[ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)"]
    postgres => {
        let schema = common::PgSchema::new().await;
        (Arc::new(schema.store().await), Box::new(schema))
    };
    #[ignore = "needs PostgreSQL with pgvector: LOOM_TEST_PGVECTOR_URL (.ci/run starts one)"]
    pgvector => {
        let schema = common::PgSchema::on(common::pgvector_url()).await;
        let store = schema.store().await;
        assert!(store.uses_pgvector(), "the server at LOOM_TEST_PGVECTOR_URL has no usable pgvector");
        (Arc::new(store), Box::new(schema))
    };
    #[ignore = "needs Chroma: LOOM_TEST_CHROMA_URL (.ci/run starts one)"]
    chroma => {
        let prefix = common::ChromaPrefix::new();
        (Arc::new(prefix.memory().await), Box::new(prefix))
    };
}

async fn partitions(store: Arc<dyn VectorStore>) -> anyhow::Result<()> {
    let (ann, bob) = (user("ann"), user("bob"));
    store.upsert(&ann, "docs", &corpus()).await?;
    let q = SearchQuery::new("night trains Vienna").limit(10);
    assert!(store.search(&bob, "docs", &q, None).await?.is_empty());
    assert!(store.search(&ann, "other", &q, None).await?.is_empty());
    assert_eq!(store.count(&bob, "docs").await?, 0);
    assert_eq!(store.count(&ann, "other").await?, 0);
    assert_eq!(store.count(&ann, "docs").await?, 4);
    assert!(store.chunk_ids(&bob, "docs", "trains.md").await?.is_empty());
    let first = corpus().remove(0).chunk.id;
    assert!(store.get(&bob, "docs", std::slice::from_ref(&first)).await?.is_empty());
    assert_eq!(store.delete(&bob, "docs", std::slice::from_ref(&first)).await?, 0);
    assert!(store.export(&bob).await?.is_empty());
    assert_eq!(store.forget(&bob).await?, 0);
    assert_eq!(store.count(&ann, "docs").await?, 4, "another user's calls changed nothing");
    // Bob's own chunks, in the same collection name, are his alone.
    store.upsert(&bob, "docs", &[stored("bob.md", 0, "Bob takes the night bus.", json!({}))]).await?;
    let hits = store.search(&ann, "docs", &SearchQuery::new("night bus").limit(10), None).await?;
    assert!(hits.iter().all(|h| h.chunk.document != "bob.md"));
    Ok(())
}

async fn upsert_and_delete(store: Arc<dyn VectorStore>) -> anyhow::Result<()> {
    let ann = user("ann");
    let chunks = corpus();
    store.upsert(&ann, "docs", &chunks).await?;
    // The same chunks again: nothing doubles.
    store.upsert(&ann, "docs", &chunks).await?;
    assert_eq!(store.count(&ann, "docs").await?, 4);
    let mut ids = store.chunk_ids(&ann, "docs", "trains.md").await?;
    ids.sort();
    let mut expected = vec![chunks[0].chunk.id.clone(), chunks[1].chunk.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    // Replacing a chunk by id changes what it holds.
    let mut changed = chunks[3].clone();
    changed.chunk.metadata.insert("lang".into(), "fr".into());
    store.upsert(&ann, "docs", &[changed]).await?;
    let got = store.get(&ann, "docs", std::slice::from_ref(&chunks[3].chunk.id)).await?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].metadata.get("lang"), Some(&json!("fr")));
    assert_eq!(got[0].text, chunks[3].chunk.text);
    // `get` keeps the order asked and leaves out what is missing.
    let asked = vec![chunks[2].chunk.id.clone(), "nope".to_owned(), chunks[0].chunk.id.clone()];
    let got: Vec<String> = store.get(&ann, "docs", &asked).await?.into_iter().map(|c| c.id).collect();
    assert_eq!(got, [chunks[2].chunk.id.clone(), chunks[0].chunk.id.clone()]);
    // Delete counts what was there.
    let gone = vec![chunks[0].chunk.id.clone(), "nope".to_owned()];
    assert_eq!(store.delete(&ann, "docs", &gone).await?, 1);
    assert_eq!(store.count(&ann, "docs").await?, 3);
    let hits = store.search(&ann, "docs", &SearchQuery::new("night trains twice a week").limit(10), None).await?;
    assert!(hits.iter().all(|h| h.chunk.id != chunks[0].chunk.id), "a deleted chunk is never found");
    Ok(())
}

async fn hybrid(store: Arc<dyn VectorStore>) -> anyhow::Result<()> {
    let ann = user("ann");
    store.upsert(&ann, "docs", &corpus()).await?;
    let embed = HashingEmbedder::default();
    let text = "sleeper beds washbasin";
    let q = embed.vector(text);
    let words = store.search(&ann, "docs", &SearchQuery::new(text).limit(2).alpha(0.0), Some(&q)).await?;
    assert_eq!(words[0].chunk.text, "The sleeper cars have beds and a small washbasin.");
    assert!(words.iter().all(|h| h.meaning_rank.is_none() && h.word_rank.is_some()));
    let meaning = store.search(&ann, "docs", &SearchQuery::new(text).limit(2).alpha(1.0), Some(&q)).await?;
    assert_eq!(meaning[0].chunk.text, words[0].chunk.text);
    assert!(meaning.iter().all(|h| h.word_rank.is_none() && h.meaning_rank.is_some()));
    let both = store.search(&ann, "docs", &SearchQuery::new(text).limit(4), Some(&q)).await?;
    assert_eq!(both[0].chunk.text, words[0].chunk.text);
    assert_eq!((both[0].word_rank, both[0].meaning_rank), (Some(1), Some(1)));
    assert!(both.windows(2).all(|w| w[0].score >= w[1].score), "best first");
    assert!(both.len() <= 4);
    // Vectors come back only when asked for.
    assert!(both.iter().all(|h| h.vector.is_none()));
    let with = store.search(&ann, "docs", &SearchQuery::new(text).limit(1).with_vectors(), Some(&q)).await?;
    assert_eq!(with[0].vector.as_deref(), Some(embed.vector(&with[0].chunk.text).as_slice()));
    // Words only, without a query vector.
    let plain = store.search(&ann, "docs", &SearchQuery::new("ferries lake").limit(3), None).await?;
    assert_eq!(ids(&plain), ["boats.md"]);
    Ok(())
}

async fn filters(store: Arc<dyn VectorStore>) -> anyhow::Result<()> {
    let ann = user("ann");
    store.upsert(&ann, "docs", &corpus()).await?;
    let q = |f: Filter| SearchQuery::new("Paris Vienna trains flights ferries sleeper").limit(10).filter(f);
    let docs = |f: Filter| {
        let store = store.clone();
        let ann = ann.clone();
        async move {
            let mut d: Vec<String> =
                store.search(&ann, "docs", &q(f), None).await?.into_iter().map(|h| h.chunk.text).collect();
            d.sort();
            anyhow::Ok(d)
        }
    };
    let texts = corpus().into_iter().map(|c| c.chunk.text).collect::<Vec<_>>();
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    assert_eq!(docs(Filter::eq("source", "trains.md")).await?, sorted(vec![&texts[0], &texts[1]]));
    assert_eq!(
        docs(Filter::from_json(&json!({"page": {"$gte": 2}})).map_err(anyhow::Error::msg)?).await?,
        sorted(vec![&texts[1], &texts[3]])
    );
    assert_eq!(
        docs(Filter::from_json(&json!({"lang": {"$ne": "en"}})).map_err(anyhow::Error::msg)?).await?,
        sorted(vec![&texts[3]])
    );
    assert_eq!(docs(Filter::eq("tags", "summer")).await?, sorted(vec![&texts[3]]));
    let either =
        Filter::from_json(&json!({"$or": [{"source": "planes.md"}, {"page": 3}]})).map_err(anyhow::Error::msg)?;
    assert_eq!(docs(either).await?, sorted(vec![&texts[2], &texts[3]]));
    assert_eq!(
        docs(Filter::any_of("source", ["planes.md", "boats.md"]).and(Filter::eq("page", 1))).await?,
        sorted(vec![&texts[2]])
    );
    assert!(docs(Filter::eq("source", "nothing.md")).await?.is_empty());
    // Filters apply to meaning too.
    let v = HashingEmbedder::default().vector("Paris Vienna");
    let hits = store.search(&ann, "docs", &q(Filter::eq("source", "planes.md")).alpha(1.0), Some(&v)).await?;
    assert_eq!(ids(&hits), ["planes.md"]);
    Ok(())
}

async fn export_forget(store: Arc<dyn VectorStore>) -> anyhow::Result<()> {
    let (ann, bob) = (user("ann"), user("bob"));
    store.upsert(&ann, "docs", &corpus()).await?;
    store.upsert(&ann, "notes", &[stored("n.md", 0, "A private note.", json!({}))]).await?;
    store.upsert(&bob, "docs", &[stored("b.md", 0, "Bob's own page.", json!({}))]).await?;
    let exported = store.export(&ann).await?;
    assert_eq!(exported.len(), 5);
    assert_eq!(exported.iter().filter(|(c, _)| c == "notes").count(), 1);
    assert!(exported.iter().all(|(_, c)| c.document != "b.md"));
    assert_eq!(store.forget(&ann).await?, 5);
    assert!(store.export(&ann).await?.is_empty());
    assert_eq!(store.count(&ann, "docs").await?, 0);
    assert!(store.search(&ann, "docs", &SearchQuery::new("Paris").limit(10), None).await?.is_empty());
    assert_eq!(store.count(&bob, "docs").await?, 1, "another user is untouched");
    // A forgotten user can start again.
    store.upsert(&ann, "docs", &corpus()[..1]).await?;
    assert_eq!(store.count(&ann, "docs").await?, 1);
    Ok(())
}

/// GDPR on SQLite: after `forget`, no row of the file holds the user's chunks.
#[tokio::test]
async fn forget_leaves_no_chunk_of_the_user_in_the_sqlite_file() -> anyhow::Result<()> {
    let file = common::TempFile::new("rag-gdpr.db");
    let store = loomflow::session::SqliteStore::open(file.path())?;
    let (ann, bob) = (user("ann"), user("bob"));
    store.upsert(&ann, "docs", &corpus()).await?;
    store.upsert(&bob, "docs", &[stored("b.md", 0, "Bob's own page.", json!({}))]).await?;
    store.search(&ann, "docs", &SearchQuery::new("Paris"), None).await?;
    VectorStore::forget(&store, &ann).await?;
    let conn = rusqlite::Connection::open(file.path())?;
    let left: i64 = conn.query_row("SELECT count(*) FROM loom_chunks WHERE user = 'ann'", [], |r| r.get(0))?;
    let texts: i64 = conn.query_row("SELECT count(*) FROM loom_chunks WHERE text LIKE '%Vienna%'", [], |r| r.get(0))?;
    let bobs: i64 = conn.query_row("SELECT count(*) FROM loom_chunks WHERE user = 'bob'", [], |r| r.get(0))?;
    assert_eq!((left, texts, bobs), (0, 0, 1));
    Ok(())
}

/// Another process (another store on the same file) sees what this one stored and removed.
#[tokio::test]
async fn sqlite_search_sees_what_another_store_on_the_file_wrote() -> anyhow::Result<()> {
    let file = common::TempFile::new("rag-shared.db");
    let (a, b) =
        (loomflow::session::SqliteStore::open(file.path())?, loomflow::session::SqliteStore::open(file.path())?);
    let ann = user("ann");
    let chunks = corpus();
    a.upsert(&ann, "docs", &chunks[..2]).await?;
    let q = SearchQuery::new("flights Paris Vienna every hour").limit(10);
    assert!(b.search(&ann, "docs", &q, None).await?.iter().all(|h| h.chunk.document != "planes.md"));
    a.upsert(&ann, "docs", &chunks[2..]).await?;
    assert_eq!(ids(&b.search(&ann, "docs", &q, None).await?)[0], "planes.md");
    a.delete(&ann, "docs", std::slice::from_ref(&chunks[2].chunk.id)).await?;
    assert!(b.search(&ann, "docs", &q, None).await?.iter().all(|h| h.chunk.document != "planes.md"));
    Ok(())
}

/// GDPR on PostgreSQL: after `forget`, no row of `loom_chunks` holds the user's chunks or their
/// words, and another user's stay.
#[tokio::test]
#[ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)"]
async fn forget_leaves_no_chunk_of_the_user_in_postgres() -> anyhow::Result<()> {
    let schema = common::PgSchema::new().await;
    let store = schema.store().await;
    let (ann, bob) = (user("ann"), user("bob"));
    store.upsert(&ann, "docs", &corpus()).await?;
    store.upsert(&ann, "notes", &[stored("n.md", 0, "A private note about Vienna.", json!({}))]).await?;
    store.upsert(&bob, "docs", &[stored("b.md", 0, "Bob's own page.", json!({}))]).await?;
    store.search(&ann, "docs", &SearchQuery::new("Paris").filter(Filter::eq("lang", "en")), None).await?;
    assert_eq!(VectorStore::forget(&store, &ann).await?, 5);
    let pool = schema.pool().await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { anyhow::Ok(sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await?) }
    };
    assert_eq!(count("SELECT count(*) FROM loom_chunks WHERE user_id = 'ann'").await?, 0);
    assert_eq!(count("SELECT count(*) FROM loom_chunks WHERE text LIKE '%Vienna%'").await?, 0);
    assert_eq!(count("SELECT count(*) FROM loom_chunks WHERE 'vienna' = ANY(terms)").await?, 0);
    assert_eq!(count("SELECT count(*) FROM loom_chunks WHERE user_id = 'bob'").await?, 1);
    Ok(())
}

/// With pgvector, the chunks' vectors are in a `vector` column and meaning is ranked from it:
/// with the `REAL[]` copies gone, a search still finds by meaning.
#[tokio::test]
#[ignore = "needs PostgreSQL with pgvector: LOOM_TEST_PGVECTOR_URL (.ci/run starts one)"]
async fn pgvector_holds_and_ranks_the_chunks_vectors() -> anyhow::Result<()> {
    let schema = common::PgSchema::on(common::pgvector_url()).await;
    let store = schema.store().await;
    assert!(store.uses_pgvector());
    let ann = user("ann");
    store.upsert(&ann, "docs", &corpus()).await?;
    let pool = schema.pool().await;
    let kind: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = 'loom_chunks'::regclass AND attname = 'embedding' AND NOT attisdropped",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(kind, "vector");
    sqlx::query("UPDATE loom_chunks SET vector = NULL").execute(&pool).await?;
    let text = "sleeper beds washbasin";
    let q = HashingEmbedder::default().vector(text);
    let hits = store.search(&ann, "docs", &SearchQuery::new(text).limit(2).alpha(1.0), Some(&q)).await?;
    assert_eq!(hits.first().map(|h| h.chunk.text.as_str()), Some("The sleeper cars have beds and a small washbasin."));
    assert!(hits.iter().all(|h| h.meaning_rank.is_some() && h.word_rank.is_none()));
    Ok(())
}

/// The PostgreSQL of `postgres` has no pgvector: its suite runs the plain-SQL ranking, and
/// `loom_chunks` has no `embedding` column.
#[tokio::test]
#[ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)"]
async fn postgres_without_pgvector_ranks_chunks_in_plain_sql() -> anyhow::Result<()> {
    let schema = common::PgSchema::new().await;
    let store = schema.store().await;
    assert!(!store.uses_pgvector(), "LOOM_TEST_POSTGRES_URL has pgvector: the plain path goes untested");
    let columns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'loom_chunks' AND column_name = 'embedding'",
    )
    .fetch_one(&schema.pool().await)
    .await?;
    assert_eq!(columns, 0);
    Ok(())
}

/// Asks the Chroma server directly for the ids of the records of collection `name` matching
/// `filter` (a `where`, or a `where_document` with `document`).
async fn chroma_ids(name: &str, filter: serde_json::Value, document: bool) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let url = common::ChromaPrefix::collection_url(&common::chroma_url(), name);
    let info: serde_json::Value =
        serde_json::from_slice(&client.get(&url).send().await?.error_for_status()?.bytes().await?)?;
    let id = info["id"].as_str().ok_or_else(|| anyhow::anyhow!("collection {name} has no id: {info}"))?;
    let url = url.replace(&format!("/collections/{name}"), &format!("/collections/{id}/get"));
    let body = if document { json!({ "where_document": filter }) } else { json!({ "where": filter }) };
    let answer = client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let answer: serde_json::Value = serde_json::from_slice(&answer)?;
    Ok(answer["ids"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

/// GDPR on Chroma: after `forget`, the chunks' collection holds no record of the user, and no
/// document with the user's words, in any of the user's collections; another user's stay.
#[tokio::test]
#[ignore = "needs Chroma: LOOM_TEST_CHROMA_URL (.ci/run starts one)"]
async fn chroma_forget_leaves_no_chunk_of_the_user_on_the_server() -> anyhow::Result<()> {
    let prefix = common::ChromaPrefix::new();
    let store = prefix.memory().await;
    let (ann, bob) = (user("ann"), user("bob"));
    store.upsert(&ann, "docs", &corpus()).await?;
    // Words only: a placeholder vector.
    let mut note = stored("n.md", 0, "A private note about Vienna.", json!({}));
    note.vector = None;
    store.upsert(&ann, "notes", &[note]).await?;
    store.upsert(&bob, "docs", &[stored("b.md", 0, "Bob's own page.", json!({}))]).await?;
    let name = format!("{}_chunks", prefix.name());
    assert_eq!(chroma_ids(&name, json!({ "user": "ann" }), false).await?.len(), 5);
    assert_eq!(VectorStore::forget(&store, &ann).await?, 5);
    let anns = chroma_ids(&name, json!({ "user": "ann" }), false).await?;
    assert!(anns.is_empty(), "{name} still holds ann's records: {anns:?}");
    let traces = chroma_ids(&name, json!({ "$contains": "Vienna" }), true).await?;
    assert!(traces.is_empty(), "{name} still holds a document with ann's words: {traces:?}");
    assert_eq!(chroma_ids(&name, json!({ "user": "bob" }), false).await?.len(), 1);
    assert_eq!(store.count(&bob, "docs").await?, 1);
    Ok(())
}

/// Filters Chroma's `where` cannot say (existence, negation, comparisons of text, list
/// elements, numbers written as integers and as floats) still admit exactly the chunks they
/// match, by words and by meaning.
#[tokio::test]
#[ignore = "needs Chroma: LOOM_TEST_CHROMA_URL (.ci/run starts one)"]
async fn chroma_filters_beyond_its_where_are_exact() -> anyhow::Result<()> {
    let prefix = common::ChromaPrefix::new();
    let store = prefix.memory().await;
    let ann = user("ann");
    store.upsert(&ann, "docs", &corpus()).await?;
    let everything = "Paris Vienna trains flights ferries sleeper";
    let v = HashingEmbedder::default().vector(everything);
    let docs = |f: serde_json::Value| {
        let (store, ann, v) = (&store, ann.clone(), v.clone());
        async move {
            let f = Filter::from_json(&f).map_err(anyhow::Error::msg)?;
            let mut out = Vec::new();
            for alpha in [0.0, 1.0] {
                let q = SearchQuery::new(everything).limit(10).alpha(alpha).filter(f.clone());
                let mut d: Vec<String> =
                    store.search(&ann, "docs", &q, Some(&v)).await?.into_iter().map(|h| h.chunk.document).collect();
                d.sort();
                out.push(d);
            }
            anyhow::ensure!(out[0] == out[1], "words and meaning disagree: {out:?}");
            anyhow::Ok(out.remove(0))
        }
    };
    assert_eq!(docs(json!({ "tags": { "$exists": true } })).await?, ["boats.md"]);
    assert_eq!(docs(json!({ "$not": { "lang": "en" } })).await?, ["boats.md"]);
    assert_eq!(docs(json!({ "lang": { "$gt": "df" } })).await?, ["planes.md", "trains.md", "trains.md"]);
    assert_eq!(docs(json!({ "tags": { "$in": ["summer", "winter"] } })).await?, ["boats.md"]);
    assert_eq!(docs(json!({ "tags": { "$ne": "water" } })).await?, ["planes.md", "trains.md", "trains.md"]);
    assert_eq!(docs(json!({ "page": 1.0 })).await?, ["planes.md", "trains.md"]);
    assert_eq!(docs(json!({ "page": { "$nin": [1, "3"] } })).await?, ["boats.md", "trains.md"]);
    Ok(())
}
