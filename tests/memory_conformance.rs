//! One conformance suite for every memory backend: partitioning, supersession, as-of queries,
//! recall ranking, export and forget completeness, concurrent writers.

mod common;

use std::sync::Arc;

use loomflow::UserId;
use loomflow::memory::{
    Episode, FactQuery, ForgetScope, InMemoryMemory, Memory, MemoryLimits, MemoryStore, NewFact, RecallQuery, Timestamp,
};
use loomflow::prelude::SessionId;

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
}

fn day(y: i32, m: u32, d: u32) -> Timestamp {
    Timestamp::from_ymd(y, m, d)
}

/// What keeps a test's backend alive and cleans it up when the test ends (a file, a schema).
type Guard = Box<dyn std::any::Any + Send>;

macro_rules! suite {
    ($($(#[$attr:meta])* $backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            async fn store() -> (Arc<dyn MemoryStore>, Guard) {
                $make
            }

            async fn memory() -> (Memory, Guard) {
                let (store, guard) = store().await;
                (Memory::shared(store), guard)
            }

            #[tokio::test]
            $(#[$attr])*
            async fn users_never_see_each_other() -> anyhow::Result<()> {
                let (it, _guard) = memory().await;
                super::users_never_see_each_other(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn a_new_fact_ends_the_one_it_supersedes_in_valid_time_order() -> anyhow::Result<()> {
                let (it, _guard) = store().await;
                super::supersession(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn as_of_queries_see_what_was_believed_then() -> anyhow::Result<()> {
                let (it, _guard) = store().await;
                super::as_of(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn recall_ranks_by_words_and_meaning_and_filters() -> anyhow::Result<()> {
                let (it, _guard) = memory().await;
                super::recall(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn export_has_everything_and_forget_removes_it() -> anyhow::Result<()> {
                let (it, _guard) = memory().await;
                super::export_and_forget(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn concurrent_writers_lose_nothing() -> anyhow::Result<()> {
                let (it, _guard) = memory().await;
                super::concurrent_writers(it).await
            }

            #[tokio::test]
            $(#[$attr])*
            async fn a_thousand_users_stay_apart() -> anyhow::Result<()> {
                let (it, _guard) = memory().await;
                super::thousand_users(it).await
            }
        }
    )*};
}

suite! {
    in_memory => (Arc::new(InMemoryMemory::new()), Box::new(()));
    sqlite => {
        let file = common::TempFile::new("memory.db");
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
    #[ignore = "needs Redis: LOOM_TEST_REDIS_URL (.ci/run starts one)"]
    redis => {
        let prefix = common::RedisPrefix::new();
        (Arc::new(prefix.memory().await), Box::new(prefix))
    };
    #[ignore = "needs Chroma: LOOM_TEST_CHROMA_URL (.ci/run starts one)"]
    chroma => {
        let prefix = common::ChromaPrefix::new();
        (Arc::new(prefix.memory().await), Box::new(prefix))
    };
}

async fn users_never_see_each_other(memory: Memory) -> anyhow::Result<()> {
    let (ann, bob) = (user("ann"), user("bob"));
    memory.remember(&ann, "note", "Ann's locker code is 4412").await?;
    memory.set_block(&ann, "persona", "Ann likes short answers").await?;
    memory.add_fact(&ann, NewFact::new("ann", "lives in", "Oslo")).await?;
    assert!(memory.recall(&bob, "locker code").await?.is_empty());
    assert!(memory.blocks(&bob).await?.is_empty());
    assert!(memory.facts(&bob, FactQuery::new()).await?.is_empty());
    let exported = memory.export(&bob).await?;
    assert!(
        exported.memory.episodes.is_empty() && exported.memory.facts.is_empty() && exported.memory.blocks.is_empty()
    );
    assert_eq!(memory.recall(&ann, "locker code").await?.len(), 1);
    // Forgetting bob leaves ann alone.
    assert_eq!(memory.forget(&bob, ForgetScope::all()).await?.total(), 0);
    assert_eq!(memory.profile(&ann).await?.episodes, 1);
    Ok(())
}

async fn supersession(store: Arc<dyn MemoryStore>) -> anyhow::Result<()> {
    let ann = user("ann");
    let now = day(2026, 6, 1);
    let acme = store.add_fact(&ann, NewFact::new("Ann", "Works-At", "Acme").valid_from(day(2025, 1, 1)), now).await?;
    let globex =
        store.add_fact(&ann, NewFact::new("ann", "worksAt", "Globex").valid_from(day(2026, 3, 1)), now).await?;
    assert_eq!(globex.predicate, "works_at");
    let at = |t| FactQuery::new().subject("ANN").predicate("works at").valid_at(t);
    let then = store.facts(&ann, &at(day(2025, 6, 1))).await?;
    assert_eq!(then.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Acme"]);
    assert_eq!(then[0].valid_until, Some(day(2026, 3, 1)));
    let later = store.facts(&ann, &at(day(2026, 4, 1))).await?;
    assert_eq!(later.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Globex"]);
    // Without a valid time: both, by valid time.
    let all = store.facts(&ann, &FactQuery::new().subject("ann")).await?;
    assert_eq!(all.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Acme", "Globex"]);

    // A fact about an earlier time arriving late ends where the later one begins.
    let initech =
        store.add_fact(&ann, NewFact::new("ann", "works at", "Initech").valid_from(day(2024, 1, 1)), now).await?;
    assert_eq!(initech.valid_until, Some(day(2025, 1, 1)));
    let acme_now = store.facts(&ann, &FactQuery::new().object("acme")).await?;
    assert_eq!(acme_now[0].valid_until, Some(day(2026, 3, 1)), "the late fact does not touch a later one");
    assert_eq!(acme_now[0].id, acme.id);

    // The same claim again is one fact, its sources merged.
    let again = store
        .add_fact(&ann, NewFact::new("ann", "works_at", "globex").valid_from(day(2026, 5, 1)).source("ep_1"), now)
        .await?;
    assert_eq!(again.id, globex.id);
    assert_eq!(again.sources, ["ep_1"]);
    assert_eq!(store.facts(&ann, &FactQuery::new()).await?.len(), 3);
    Ok(())
}

async fn as_of(store: Arc<dyn MemoryStore>) -> anyhow::Result<()> {
    let ann = user("ann");
    let (t1, t2, t3) = (day(2025, 1, 10), day(2025, 2, 10), day(2025, 3, 10));
    store.add_fact(&ann, NewFact::new("ann", "lives in", "Oslo").valid_from(day(2024, 1, 1)), t1).await?;
    store.add_fact(&ann, NewFact::new("ann", "lives in", "Bergen").valid_from(day(2025, 2, 1)), t2).await?;
    let where_ = |valid, as_of| FactQuery::new().subject("ann").valid_at(valid).as_of(as_of);
    // On Feb 5th Ann lived in Bergen; but on Jan 20th Loom did not know that yet.
    let known_then = store.facts(&ann, &where_(day(2025, 2, 5), day(2025, 1, 20))).await?;
    assert_eq!(known_then.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Oslo"]);
    let known_now = store.facts(&ann, &FactQuery::new().subject("ann").valid_at(day(2025, 2, 5))).await?;
    assert_eq!(known_now.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Bergen"]);
    // Before anything was recorded, nothing was known.
    assert!(store.facts(&ann, &FactQuery::new().as_of(day(2025, 1, 1))).await?.is_empty());

    // A correction replaces the fact from now; what was believed before stays visible as-of.
    let bergen = known_now[0].clone();
    let fixed = store.rectify(&ann, &bergen.id, "Trondheim", "the user corrected it", t3).await?;
    assert_eq!((fixed.object.as_str(), fixed.valid_from), ("Trondheim", bergen.valid_from));
    assert!(fixed.sources.iter().any(|s| s.contains("the user corrected it")));
    let now = store.facts(&ann, &FactQuery::new().subject("ann").valid_at(day(2025, 6, 1))).await?;
    assert_eq!(now.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Trondheim"]);
    let before = store.facts(&ann, &where_(day(2025, 6, 1), day(2025, 3, 1))).await?;
    assert_eq!(before.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Bergen"]);
    assert!(
        store
            .rectify(&ann, &bergen.id, "x", "twice", t3)
            .await
            .is_err_and(|e| e.kind() == loomflow::StoreErrorKind::NotFound)
    );
    assert!(store.rectify(&user("bob"), &fixed.id, "x", "not his", t3).await.is_err());
    Ok(())
}

async fn recall(memory: Memory) -> anyhow::Result<()> {
    let ann = user("ann");
    let session = SessionId::new("trip")?;
    let texts = [
        ("note", "The invoice for March was paid by card", day(2025, 3, 5)),
        ("turn", "Ann asked about trains from Oslo to Bergen", day(2025, 4, 1)),
        ("turn", "The weather in Bergen was rainy all week", day(2025, 4, 2)),
        ("note", "Ann's favourite train seat is by the window", day(2025, 4, 3)),
    ];
    for (kind, text, at) in texts {
        memory.remember_episode(&Episode::new(ann.clone(), kind, text).at(at).in_session(session.clone())).await?;
    }
    let hits = memory.recall(&ann, "trains to Bergen").await?;
    assert_eq!(hits[0].episode.text, "Ann asked about trains from Oslo to Bergen");
    assert_eq!(hits[0].word_rank, Some(1));
    assert!(hits.iter().all(|h| h.score > 0.0) && hits.windows(2).all(|w| w[0].score >= w[1].score));
    // Filters: kind, time range, limit.
    let notes = memory.recall(&ann, RecallQuery::new("train").kind("note")).await?;
    assert!(notes.iter().all(|h| h.episode.kind == "note") && !notes.is_empty());
    let april = memory
        .recall(&ann, RecallQuery::new("Bergen").alpha(0.0).between(Some(day(2025, 4, 2)), Some(day(2025, 5, 1))))
        .await?;
    assert_eq!(
        april.iter().map(|h| h.episode.text.as_str()).collect::<Vec<_>>(),
        ["The weather in Bergen was rainy all week"]
    );
    assert_eq!(memory.recall(&ann, RecallQuery::new("Bergen").limit(1)).await?.len(), 1);
    // Words only: nothing without a shared word; meaning only: a near spelling is found.
    assert!(memory.recall(&ann, RecallQuery::new("invoices").alpha(0.0)).await?.is_empty());
    let by_meaning = memory.recall(&ann, RecallQuery::new("invoices").alpha(1.0)).await?;
    assert_eq!(by_meaning.first().map(|h| h.episode.text.as_str()), Some("The invoice for March was paid by card"));
    assert!(by_meaning[0].word_rank.is_none() && by_meaning[0].meaning_rank == Some(1));
    Ok(())
}

async fn export_and_forget(memory: Memory) -> anyhow::Result<()> {
    let (ann, bob) = (user("ann"), user("bob"));
    let (s1, s2) = (SessionId::new("s1")?, SessionId::new("s2")?);
    let old = Episode::new(ann.clone(), "turn", "old secret").at(day(2020, 1, 1)).in_session(s1.clone());
    memory.remember_episode(&old).await?;
    memory.remember_episode(&Episode::new(ann.clone(), "turn", "recent secret").in_session(s2.clone())).await?;
    let e = Episode::new(ann.clone(), "turn", "session one secret").in_session(s1.clone());
    memory.remember_episode(&e).await?;
    memory.add_fact(&ann, NewFact::new("ann", "pet", "cat").source(e.id.to_string())).await?;
    memory.add_fact(&ann, NewFact::new("ann", "city", "Oslo")).await?;
    memory.set_block(&ann, "prefs", "tea").await?;
    memory.append_block(&ann, "prefs", "no sugar").await?;
    memory.remember(&bob, "turn", "bob's secret").await?;

    let export = memory.export(&ann).await?;
    assert_eq!((export.memory.episodes.len(), export.memory.facts.len(), export.memory.blocks.len()), (3, 2, 1));
    assert_eq!(export.memory.blocks[0].text, "tea\nno sugar");
    assert_eq!(export.memory.episodes[0].text, "old secret", "oldest first");
    let json = serde_json::to_string(&export)?;
    assert!(json.contains("recent secret") && !json.contains("bob's secret"));

    // One session: its episodes, and the facts drawn only from them.
    let report = memory.forget(&ann, ForgetScope::session(s1.clone())).await?;
    assert_eq!((report.episodes, report.facts), (2, 1));
    // Older than a date.
    memory.remember_episode(&Episode::new(ann.clone(), "turn", "ancient").at(day(2019, 1, 1))).await?;
    assert_eq!(memory.forget(&ann, ForgetScope::before(day(2021, 1, 1))).await?.episodes, 1);
    // Everything.
    let report = memory.forget(&ann, ForgetScope::all()).await?;
    assert_eq!((report.episodes, report.facts, report.blocks), (1, 1, 1));
    assert!(memory.recall(&ann, "secret").await?.is_empty());
    assert!(memory.facts(&ann, FactQuery::new()).await?.is_empty());
    assert!(memory.blocks(&ann).await?.is_empty());
    let after = memory.export(&ann).await?;
    assert!(after.memory.episodes.is_empty() && after.memory.facts.is_empty() && after.memory.blocks.is_empty());
    assert_eq!(memory.recall(&bob, "secret").await?.len(), 1);
    Ok(())
}

async fn concurrent_writers(memory: Memory) -> anyhow::Result<()> {
    let ann = user("ann");
    let writers = (0..32).map(|i| {
        let (memory, ann) = (memory.clone(), ann.clone());
        tokio::spawn(async move {
            memory.remember(&ann, "turn", &format!("message number {i}")).await?;
            memory.append_block(&ann, "log", &format!("{i}")).await?;
            memory.add_fact(&ann, NewFact::new(format!("item {i}"), "state", "done")).await?;
            Ok::<_, loomflow::Error>(())
        })
    });
    for w in futures::future::join_all(writers).await {
        w??;
    }
    let export = memory.export(&ann).await?;
    assert_eq!((export.memory.episodes.len(), export.memory.facts.len()), (32, 32));
    assert_eq!(export.memory.blocks[0].text.lines().count(), 32);
    Ok(())
}

async fn thousand_users(memory: Memory) -> anyhow::Result<()> {
    for i in 0..1_000 {
        memory.remember(&user(&format!("u{i}")), "note", &format!("the secret of u{i} is {i}")).await?;
    }
    for i in (0..1_000).step_by(97) {
        let hits = memory.recall(&user(&format!("u{i}")), "secret").await?;
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].episode.text, format!("the secret of u{i} is {i}"));
    }
    Ok(())
}

#[tokio::test]
async fn in_memory_limits_drop_the_least_recently_used() -> anyhow::Result<()> {
    let limits = MemoryLimits::default().max_users(2).max_episodes_per_user(2);
    let store = Arc::new(InMemoryMemory::with_limits(limits));
    let memory = Memory::shared(store.clone());
    for i in 0..3 {
        memory.remember(&user("ann"), "turn", &format!("ann {i}")).await?;
    }
    assert_eq!(
        memory.export(&user("ann")).await?.memory.episodes.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
        ["ann 1", "ann 2"]
    );
    memory.remember(&user("bob"), "turn", "bob").await?;
    memory.recall(&user("ann"), "ann").await?; // ann is used again: bob is now the oldest
    memory.remember(&user("cid"), "turn", "cid").await?;
    assert_eq!(store.users(), 2);
    assert!(memory.export(&user("bob")).await?.memory.episodes.is_empty());
    assert_eq!(memory.export(&user("ann")).await?.memory.episodes.len(), 2);
    Ok(())
}

#[tokio::test]
async fn related_facts_are_found_hop_by_hop_at_a_point_in_time() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let ann = user("ann");
    memory.add_fact(&ann, NewFact::new("ann", "works at", "Acme").valid_from(day(2025, 1, 1))).await?;
    memory.add_fact(&ann, NewFact::new("Acme", "located in", "Oslo").valid_from(day(2020, 1, 1))).await?;
    memory.add_fact(&ann, NewFact::new("oslo", "capital of", "Norway").valid_from(day(1900, 1, 1))).await?;
    memory.add_fact(&ann, NewFact::new("ann", "works at", "Globex").valid_from(day(2026, 1, 1))).await?;
    let then = memory.related(&ann, "ann", 3, Some(day(2025, 6, 1))).await?;
    let hops: Vec<(&str, &str)> = then.iter().map(|f| (f.subject.as_str(), f.object.as_str())).collect();
    assert_eq!(hops, [("ann", "Acme"), ("Acme", "Oslo"), ("oslo", "Norway")]);
    assert_eq!(memory.related(&ann, "ann", 1, Some(day(2025, 6, 1))).await?.len(), 1);
    let now = memory.related(&ann, "ann", 3, Some(day(2026, 6, 1))).await?;
    assert_eq!(now.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(), ["Globex"]);
    Ok(())
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let ann = user("ann");
    assert!(memory.add_fact(&ann, NewFact::new(" ", "is", "x")).await.is_err());
    assert!(memory.add_fact(&ann, NewFact::new("a", "--", "x")).await.is_err());
    assert!(memory.set_block(&ann, "", "x").await.is_err());
    assert!(memory.set_block(&ann, "bad\nname", "x").await.is_err());
    let f = memory.add_fact(&ann, NewFact::new("a", "b", "c").confidence(7.0)).await?;
    assert_eq!(f.confidence, 1.0);
    assert_eq!(memory.export(&ann).await?.memory.facts.len(), 1);
    Ok(())
}

/// GDPR on SQLite, end to end: an agent's sessions and journals, and memory, in one file;
/// after `forget`, no API and no query of the database returns the user's data.
#[tokio::test]
async fn forget_leaves_nothing_of_the_user_in_the_database() -> anyhow::Result<()> {
    use loomflow::prelude::*;
    let file = common::TempFile::new("gdpr.db");
    let store = Arc::new(loomflow::session::SqliteStore::open(file.path())?);
    let agent =
        Agent::new("Help.").model(ScriptedModel::from_fn(|_| ScriptedTurn::text("noted"))).store(Arc::clone(&store));
    for (who, session) in [("ann", "s1"), ("ann", "s2"), ("bob", "s1")] {
        agent.run(format!("{who} says zebracode")).user(who).session(session).await?;
    }
    let memory = Memory::shared(store.clone()).sessions(store.clone()).journal(store.clone());
    let ann = user("ann");
    memory.remember(&ann, "turn", "ann said zebracode").await?;
    memory.add_fact(&ann, NewFact::new("ann", "code", "zebracode")).await?;
    memory.set_block(&ann, "notes", "zebracode").await?;

    assert_eq!(memory.messages(&ann, &SessionId::new("s1")?, None).await?.len(), 2);
    let export = memory.export(&ann).await?;
    assert_eq!(export.sessions.iter().map(|s| s.session.as_str()).collect::<Vec<_>>(), ["s1", "s2"]);
    assert_eq!(export.sessions[0].messages.len(), 2);
    assert!(export.sessions[0].runs[0].journal.iter().any(|e| e["kind"] == "run_started"));
    let json = serde_json::to_string(&export)?;
    assert!(json.contains("ann says zebracode") && !json.contains("bob says"));

    let report = memory.forget(&ann, ForgetScope::all()).await?;
    assert_eq!((report.episodes, report.facts, report.blocks, report.sessions), (1, 1, 1, 2));
    let after = memory.export(&ann).await?;
    assert!(after.sessions.is_empty() && after.memory.episodes.is_empty());
    let s1 = SessionId::new("s1")?;
    assert!(memory.messages(&ann, &s1, None).await?.is_empty());
    assert_eq!(memory.messages(&user("bob"), &s1, Some(2)).await?.len(), 2);

    // Straight to the database: no table holds a row of ann's, and the text index has no trace.
    let conn = rusqlite::Connection::open(file.path())?;
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'loom_%' AND sql LIKE '%user TEXT%'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    assert!(tables.len() >= 7, "{tables:?}");
    for table in &tables {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table} WHERE user = 'ann'"), [], |r| r.get(0))?;
        assert_eq!(n, 0, "{table} still holds ann's rows");
    }
    let texts: i64 =
        conn.query_row("SELECT count(*) FROM loom_episodes WHERE text LIKE '%zebracode%'", [], |r| r.get(0))?;
    assert_eq!(texts, 0);
    let bobs: i64 = conn.query_row("SELECT count(*) FROM loom_messages WHERE user = 'bob'", [], |r| r.get(0))?;
    assert_eq!(bobs, 2);
    Ok(())
}

/// Two processes on one SQLite file: each recalls what the other remembered, and nothing of what
/// the other forgot, though each keeps the user's recall index in between.
#[tokio::test]
async fn sqlite_recall_sees_what_another_process_wrote_and_forgot() -> anyhow::Result<()> {
    let file = common::TempFile::new("two-processes.db");
    let first = Memory::shared(Arc::new(loomflow::session::SqliteStore::open(file.path())?));
    let second = Memory::shared(Arc::new(loomflow::session::SqliteStore::open(file.path())?));
    let ann = user("ann");
    let texts = |found: Vec<loomflow::memory::Recalled>| found.into_iter().map(|r| r.episode.text).collect::<Vec<_>>();
    first.remember(&ann, "turn", "ann takes the night train").await?;
    assert_eq!(texts(second.recall(&ann, "night train").await?), ["ann takes the night train"]);
    first.remember(&ann, "turn", "the night bus is slower").await?;
    let both = texts(second.recall(&ann, RecallQuery::new("night").limit(5)).await?);
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&"the night bus is slower".to_owned()));
    // A forget in one process: the other reads the index again.
    first.forget(&ann, ForgetScope::all()).await?;
    assert!(texts(second.recall(&ann, "night").await?).is_empty());
    first.remember(&ann, "turn", "ann moved to Oslo").await?;
    assert_eq!(texts(second.recall(&ann, "oslo night").await?), ["ann moved to Oslo"]);
    Ok(())
}

/// Every key and value, as text, of `key` (a hash or a string) on the Redis server.
fn redis_dump(con: &mut ::redis::Connection, key: &str, out: &mut String) -> ::redis::RedisResult<()> {
    let kind: String = ::redis::cmd("TYPE").arg(key).query(con)?;
    match kind.as_str() {
        "hash" => {
            let fields: Vec<(Vec<u8>, Vec<u8>)> = ::redis::cmd("HGETALL").arg(key).query(con)?;
            for (field, value) in fields {
                let (field, value) = (String::from_utf8_lossy(&field), String::from_utf8_lossy(&value));
                out.push_str(&format!("{key} {field} {value}\n"));
            }
        }
        "string" => {
            let value: Vec<u8> = ::redis::cmd("GET").arg(key).query(con)?;
            out.push_str(&format!("{key} {}\n", String::from_utf8_lossy(&value)));
        }
        other => out.push_str(&format!("{key} is a {other}\n")),
    }
    Ok(())
}

/// GDPR on Redis: after `forget`, no key under the memory's prefix is the user's and no value
/// holds anything the user said, while another user's memory stays whole.
#[tokio::test]
#[ignore = "needs Redis: LOOM_TEST_REDIS_URL (.ci/run starts one)"]
async fn forget_leaves_nothing_of_the_user_in_redis() -> anyhow::Result<()> {
    let prefix = common::RedisPrefix::new();
    let memory = Memory::new(prefix.memory().await);
    let (ann, bob) = (user("ann"), user("bob"));
    memory.remember(&ann, "turn", "ann said zebracode").await?;
    let in_s1 = Episode::new(ann.clone(), "turn", "in s1 ann said zebracode").in_session(SessionId::new("s1")?);
    memory.remember_episode(&in_s1).await?;
    let fact = memory.add_fact(&ann, NewFact::new("ann", "code", "zebracode").source(in_s1.id.to_string())).await?;
    memory.rectify(&ann, &fact.id, "zebracode too", "ann corrected it").await?;
    memory.set_block(&ann, "notes", "zebracode").await?;
    memory.remember(&bob, "turn", "bob said quaggacode").await?;
    memory.add_fact(&bob, NewFact::new("bob", "code", "quaggacode")).await?;
    memory.set_block(&bob, "notes", "quaggacode").await?;

    let mut con = common::RedisPrefix::connection();
    let before = prefix.keys(&mut con)?;
    assert_eq!(before.iter().filter(|k| k.contains(":mem:{ann}:")).count(), 6, "{before:?}");

    let report = memory.forget(&ann, ForgetScope::all()).await?;
    assert_eq!((report.episodes, report.facts, report.blocks), (2, 2, 1));

    // Straight to the server: no key of ann's, no value with her words; bob's all there.
    let keys = prefix.keys(&mut con)?;
    assert!(keys.iter().all(|k| !k.contains("{ann}")), "ann's keys remain: {keys:?}");
    let mut stored = String::new();
    for key in &keys {
        redis_dump(&mut con, key, &mut stored)?;
    }
    assert!(!stored.contains("zebracode") && !stored.contains("\"ann\""), "{stored}");
    assert!(stored.contains("bob said quaggacode") && stored.contains("\"object\":\"quaggacode\""), "{stored}");
    assert_eq!(keys.iter().filter(|k| k.contains(":mem:{bob}:")).count(), 6, "{keys:?}");
    assert_eq!(memory.recall(&bob, "quaggacode").await?.len(), 1);
    Ok(())
}

/// A value in Redis that is not what Loom wrote is an error naming its key and field, and
/// forgetting the user still works.
#[tokio::test]
#[ignore = "needs Redis: LOOM_TEST_REDIS_URL (.ci/run starts one)"]
async fn a_corrupt_value_in_redis_is_an_error_naming_its_key() -> anyhow::Result<()> {
    let prefix = common::RedisPrefix::new();
    let memory = Memory::new(prefix.memory().await);
    let ann = user("ann");
    memory.remember(&ann, "note", "a good episode").await?;
    let key = format!("{}:mem:{{ann}}:ep", prefix.name());
    let mut con = common::RedisPrefix::connection();
    let _: i64 = ::redis::cmd("HSET").arg(&key).arg("ep_bad").arg("{not json").query(&mut con)?;
    let corrupt = |e: &loomflow::StoreError| {
        e.kind() == loomflow::StoreErrorKind::Corrupt
            && e.backend() == "redis"
            && e.message().contains(&key)
            && e.message().contains("ep_bad")
    };
    match memory.recall(&ann, "good").await {
        Err(loomflow::Error::Store(e)) => assert!(corrupt(&e), "{e}"),
        other => panic!("recall over a corrupt episode: {other:?}"),
    }
    match memory.store().export(&ann).await {
        Err(e) => assert!(corrupt(&e), "{e}"),
        Ok(data) => panic!("export over a corrupt episode: {data:?}"),
    }
    assert_eq!(memory.forget(&ann, ForgetScope::all()).await?.episodes, 2);
    assert!(prefix.keys(&mut con)?.is_empty());
    Ok(())
}

/// A Redis server that cannot be reached is a transient store error naming Redis, within
/// seconds.
#[tokio::test]
async fn an_unreachable_redis_server_is_a_transient_error() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let connecting = loomflow::memory::RedisMemory::connect("redis://127.0.0.1:1/");
    let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(20), connecting).await? else {
        panic!("something answers on port 1")
    };
    assert_eq!((e.kind(), e.backend()), (loomflow::StoreErrorKind::Unavailable, "redis"), "{e}");
    assert!(loomflow::Error::from(e).is_transient());
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
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
    let body =
        if document { serde_json::json!({ "where_document": filter }) } else { serde_json::json!({ "where": filter }) };
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

/// GDPR on Chroma: after `forget`, no collection of the server holds a record of the user, or
/// a document with the user's words; another user's records stay.
#[tokio::test]
#[ignore = "needs Chroma: LOOM_TEST_CHROMA_URL (.ci/run starts one)"]
async fn chroma_forget_leaves_nothing_of_the_user_on_the_server() -> anyhow::Result<()> {
    let prefix = common::ChromaPrefix::new();
    let store = Arc::new(prefix.memory().await);
    let memory = Memory::shared(store.clone());
    let (ann, bob) = (user("ann"), user("bob"));
    for who in [&ann, &bob] {
        let session = SessionId::new("s1")?;
        // Words only first: the placeholder vector of a collection without a dimension yet.
        memory.clone().without_embedder().remember(who, "note", &format!("{who} keeps a zebracode note")).await?;
        memory
            .remember_episode(&Episode::new(who.clone(), "turn", format!("{who} said zebracode")).in_session(session))
            .await?;
        memory.add_fact(who, NewFact::new(who.as_str(), "code", "zebracode")).await?;
        memory.set_block(who, "notes", "zebracode").await?;
    }
    let report = memory.forget(&ann, ForgetScope::all()).await?;
    assert_eq!((report.episodes, report.facts, report.blocks), (2, 1, 1));
    for name in store.collections() {
        let anns = chroma_ids(name, serde_json::json!({ "user": "ann" }), false).await?;
        assert!(anns.is_empty(), "{name} still holds ann's records: {anns:?}");
        let bobs = chroma_ids(name, serde_json::json!({ "user": "bob" }), false).await?;
        assert!(!bobs.is_empty(), "{name} lost bob's records");
        let traces = chroma_ids(name, serde_json::json!({ "$contains": "ann" }), true).await?;
        assert!(traces.is_empty(), "{name} still holds a document naming ann: {traces:?}");
    }
    assert_eq!(memory.export(&bob).await?.memory.episodes.len(), 2);
    // The words-only episode is found by words, never by meaning.
    let hits = memory.recall(&bob, "zebracode note").await?;
    let note = hits.iter().find(|h| h.episode.kind == "note").ok_or_else(|| anyhow::anyhow!("{hits:?}"))?;
    assert!(note.word_rank.is_some() && note.meaning_rank.is_none(), "{note:?}");
    Ok(())
}

/// A record the store cannot read is an error naming it, not a panic or a silent gap.
#[tokio::test]
#[ignore = "needs Chroma: LOOM_TEST_CHROMA_URL (.ci/run starts one)"]
async fn chroma_a_corrupt_record_is_reported_with_its_id() -> anyhow::Result<()> {
    let prefix = common::ChromaPrefix::new();
    let store = prefix.memory().await;
    let ann = user("ann");
    store.write_block(&ann, "persona", "short answers", false).await?;
    let name = store.collections()[2];
    let url = common::ChromaPrefix::collection_url(&common::chroma_url(), name);
    let client = reqwest::Client::new();
    let info: serde_json::Value =
        serde_json::from_slice(&client.get(&url).send().await?.error_for_status()?.bytes().await?)?;
    let id = info["id"].as_str().unwrap_or_default();
    let upsert = url.replace(&format!("/collections/{name}"), &format!("/collections/{id}/upsert"));
    let body = serde_json::json!({
        "ids": ["ann\u{1f}broken"],
        "embeddings": [[1.0]],
        "documents": ["not a block"],
        "metadatas": [{ "user": "ann", "name": "broken" }],
    });
    client
        .post(upsert)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?)
        .send()
        .await?
        .error_for_status()?;
    let e = store.blocks(&ann).await.err().ok_or_else(|| anyhow::anyhow!("a corrupt block was read"))?;
    assert_eq!((e.kind(), e.backend()), (loomflow::StoreErrorKind::Corrupt, "chroma"));
    assert!(e.to_string().contains("broken"), "{e}");
    Ok(())
}

/// A Chroma server that does not answer is a transient error of the `chroma` store, at once.
#[tokio::test]
async fn a_dead_chroma_server_is_a_transient_error_naming_chroma() {
    let started = std::time::Instant::now();
    let e = loomflow::memory::ChromaMemory::connect("http://127.0.0.1:1").await.err();
    let e = e.unwrap_or_else(|| panic!("connected to a dead server"));
    assert_eq!((e.kind(), e.backend()), (loomflow::StoreErrorKind::Unavailable, "chroma"), "{e}");
    assert!(loomflow::Error::from(e).is_transient());
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    let bad = loomflow::memory::ChromaMemory::builder("http://127.0.0.1:1").prefix("no spaces allowed").connect().await;
    assert!(bad.is_err_and(|e| e.kind() == loomflow::StoreErrorKind::Other));
}

/// Writers on several connections at once (as several worker processes would be): every fact on
/// one subject and predicate arrives in any order, and validity still ends up one chain in
/// valid-time order; no block line and no episode is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Redis: LOOM_TEST_REDIS_URL (.ci/run starts one)"]
async fn redis_writers_on_many_connections_keep_one_chain_of_facts() -> anyhow::Result<()> {
    let prefix = common::RedisPrefix::new();
    let mut memories = Vec::new();
    for _ in 0..4 {
        memories.push(Memory::new(prefix.memory().await));
    }
    let ann = user("ann");
    let writers = (0..64u32).map(|i| {
        let (memory, ann) = (memories[i as usize % 4].clone(), ann.clone());
        tokio::spawn(async move {
            let fact = NewFact::new("ann", "lives in", format!("city {i}")).valid_from(day(2000, 1, i + 1));
            memory.add_fact(&ann, fact).await?;
            memory.append_block(&ann, "log", &format!("{i}")).await?;
            memory.remember(&ann, "turn", &format!("moved to city {i}")).await?;
            Ok::<_, loomflow::Error>(())
        })
    });
    for w in futures::future::join_all(writers).await {
        w??;
    }
    let facts = memories[0].facts(&ann, FactQuery::new().predicate("lives in")).await?;
    assert_eq!(facts.len(), 64);
    for pair in facts.windows(2) {
        assert_eq!(pair[0].valid_until, Some(pair[1].valid_from), "{} then {}", pair[0].object, pair[1].object);
    }
    assert_eq!(facts.last().map(|f| f.valid_until), Some(None));
    let export = memories[1].export(&ann).await?;
    assert_eq!((export.memory.episodes.len(), export.memory.blocks[0].text.lines().count()), (64, 64));
    Ok(())
}

/// GDPR on PostgreSQL, end to end: an agent's sessions and journals, and memory, in one
/// database; after `forget`, no table holds a row of the user's.
#[tokio::test]
#[ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)"]
async fn forget_leaves_nothing_of_the_user_in_postgres() -> anyhow::Result<()> {
    use loomflow::prelude::*;
    use sqlx::Row as _;
    let schema = common::PgSchema::new().await;
    let store = Arc::new(schema.store().await);
    let agent =
        Agent::new("Help.").model(ScriptedModel::from_fn(|_| ScriptedTurn::text("noted"))).store(Arc::clone(&store));
    for (who, session) in [("ann", "s1"), ("ann", "s2"), ("bob", "s1")] {
        agent.run(format!("{who} says zebracode")).user(who).session(session).await?;
    }
    let memory = Memory::shared(store.clone()).sessions(store.clone()).journal(store.clone());
    let ann = user("ann");
    memory.remember(&ann, "turn", "ann said zebracode").await?;
    memory.add_fact(&ann, NewFact::new("ann", "code", "zebracode")).await?;
    memory.set_block(&ann, "notes", "zebracode").await?;
    let export = memory.export(&ann).await?;
    assert_eq!(export.sessions.len(), 2);
    assert_eq!(export.memory.episodes.len(), 1);

    let report = memory.forget(&ann, ForgetScope::all()).await?;
    assert_eq!((report.episodes, report.facts, report.blocks, report.sessions), (1, 1, 1, 2));

    let pool = schema.pool().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND column_name = 'user_id' AND table_name LIKE 'loom_%'",
    )
    .fetch_all(&pool)
    .await?;
    assert!(tables.len() >= 7, "{tables:?}");
    for table in &tables {
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table} WHERE user_id = 'ann'")))
            .fetch_one(&pool)
            .await?
            .try_get(0)?;
        assert_eq!(n, 0, "{table} still holds ann's rows");
    }
    let bobs: i64 =
        sqlx::query("SELECT count(*) FROM loom_messages WHERE user_id = 'bob'").fetch_one(&pool).await?.try_get(0)?;
    assert_eq!(bobs, 2);
    Ok(())
}

/// The PostgreSQL 15 of `postgres` has no pgvector: its suite runs the plain-SQL ranking.
#[tokio::test]
#[ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)"]
async fn postgres_without_pgvector_ranks_in_plain_sql() -> anyhow::Result<()> {
    let schema = common::PgSchema::new().await;
    let store = schema.store().await;
    assert!(!store.uses_pgvector(), "LOOM_TEST_POSTGRES_URL has pgvector: the plain path goes untested");
    let columns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'loom_episodes' AND column_name = 'embedding'",
    )
    .fetch_one(&schema.pool().await)
    .await?;
    assert_eq!(columns, 0);
    Ok(())
}

/// With pgvector, vectors live in a `vector` column and meaning is ranked from it: with the
/// `REAL[]` copies gone, recall still ranks by meaning. Vectors of another dimension and zero
/// vectors are left out, and episodes written before pgvector are filled in when a store
/// connects with it.
#[tokio::test]
#[ignore = "needs PostgreSQL with pgvector: LOOM_TEST_PGVECTOR_URL (.ci/run starts one)"]
async fn pgvector_holds_and_ranks_the_vectors() -> anyhow::Result<()> {
    use std::str::FromStr as _;
    let schema = common::PgSchema::on(common::pgvector_url()).await;
    let ann = user("ann");
    // First without pgvector in sight (`public` off the search_path): the plain path.
    let options =
        sqlx::postgres::PgConnectOptions::from_str(&common::pgvector_url())?.options([("search_path", schema.name())]);
    let plain = loomflow::session::PostgresStore::with_pool(sqlx::PgPool::connect_with(options).await?).await?;
    assert!(!plain.uses_pgvector());
    plain
        .remember(&Episode::new(ann.clone(), "note", "older, plain").at(day(2024, 1, 1)), Some(&[0.0, 1.0, 0.0]))
        .await?;
    plain.pool().close().await;

    let store = schema.store().await;
    assert!(store.uses_pgvector());
    let near = Episode::new(ann.clone(), "note", "near").at(day(2025, 1, 1));
    store.remember(&near, Some(&[0.6, 0.8, 0.0])).await?;
    store.remember(&Episode::new(ann.clone(), "note", "other dimension"), Some(&[1.0, 0.0])).await?;
    store.remember(&Episode::new(ann.clone(), "note", "zero"), Some(&[0.0, 0.0, 0.0])).await?;
    store.remember(&Episode::new(ann.clone(), "note", "opposite"), Some(&[-1.0, 0.0, 0.0])).await?;
    store.remember(&Episode::new(user("bob"), "note", "bob's"), Some(&[1.0, 0.0, 0.0])).await?;

    let pool = schema.pool().await;
    let kind: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = 'loom_episodes'::regclass AND attname = 'embedding' AND NOT attisdropped",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(kind, "vector");
    let held: Vec<f32> =
        sqlx::query_scalar("SELECT embedding::real[] FROM loom_episodes WHERE user_id = 'ann' AND id = $1")
            .bind(&*near.id)
            .fetch_one(&pool)
            .await?;
    assert_eq!(held, vec![0.6, 0.8, 0.0]);
    let filled: Vec<f32> = sqlx::query_scalar(
        "SELECT embedding::real[] FROM loom_episodes WHERE user_id = 'ann' AND text = 'older, plain'",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(filled, vec![0.0, 1.0, 0.0]);

    // Only the `vector` column left to rank by.
    sqlx::query("UPDATE loom_episodes SET vector = NULL").execute(&pool).await?;
    let hits = store.recall(&ann, &RecallQuery::new("").alpha(1.0), Some(&[1.0, 0.0, 0.0])).await?;
    let texts: Vec<&str> = hits.iter().map(|h| h.episode.text.as_str()).collect();
    assert_eq!(texts, ["near"]);
    let hits = store.recall(&ann, &RecallQuery::new("").alpha(1.0), Some(&[0.1, 1.0, 0.0])).await?;
    let texts: Vec<&str> = hits.iter().map(|h| h.episode.text.as_str()).collect();
    assert_eq!(texts, ["older, plain", "near"]);
    Ok(())
}
