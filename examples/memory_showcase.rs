//! A tour of memory, offline, on SQLite: episodes recalled by text, working blocks,
//! bi-temporal facts (superseded, queried at a valid time and as of a record time, rectified),
//! multi-hop traversal, an agent that recalls an earlier session, then export and forget.
//!
//! ```sh
//! cargo run --example memory_showcase
//! ```
//!
//! The database is a fresh file in the system's temporary directory, removed at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use loomflow::memory::{Episode, FactQuery, ForgetScope, Memory, NewFact, RecallQuery, Timestamp};
use loomflow::prelude::*;
use loomflow::session::{SessionStore, SqliteStore};

/// The database file, removed (with its WAL files) when dropped.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

fn day(y: i32, m: u32, d: u32) -> Timestamp {
    Timestamp::from_ymd(y, m, d)
}

/// The date part of a time.
fn date(t: Timestamp) -> String {
    t.to_string().chars().take(10).collect()
}

fn heading(text: &str) {
    println!("\n== {text} ==");
}

/// A record time strictly between what was recorded before and what is recorded after.
async fn checkpoint() -> Timestamp {
    tokio::time::sleep(Duration::from_millis(3)).await;
    let t = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(3)).await;
    t
}

/// Answers from what memory put in its system prompt.
fn travel_model() -> ScriptedModel {
    ScriptedModel::from_fn(|request| {
        let system = request.messages.first().map(|m| m.text().into_owned()).unwrap_or_default();
        let question = request.last_user_text().unwrap_or_default();
        if question.contains("When do I visit") {
            if system.contains("every winter") {
                ScriptedTurn::text("You visit Maja in Tromsø every winter; the night train suits you.")
            } else {
                ScriptedTurn::text("I do not know yet.")
            }
        } else {
            ScriptedTurn::text("Noted.")
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let db = TempDb(std::env::temp_dir().join(format!("loom-memory-showcase-{}-{nanos}.db", std::process::id())));
    // One SQLite file holds the sessions, the run journals and the memory.
    let store = Arc::new(SqliteStore::open(&db.0)?);
    let memory = Memory::shared(store.clone()).sessions(store.clone()).journal(store.clone());
    let ann = UserId::new("ann")?;
    println!("memory: {memory:?}");

    heading("1. Episodes, recalled by text");
    let episodes = [
        (day(2026, 1, 12), "trip", "Ann took the night train from Oslo to Bergen and loved the sleeper cabin"),
        (day(2026, 2, 3), "trip", "Ann flew to Paris for a conference and found the flight exhausting"),
        (day(2026, 3, 20), "note", "Ann prefers window seats and quiet carriages on trains"),
        (day(2026, 4, 8), "note", "Ann's sister Maja lives in Tromsø"),
        (day(2026, 5, 1), "trip", "Ann drove to the mountains with friends for a long weekend"),
    ];
    for (at, kind, text) in episodes {
        memory.remember_episode(&Episode::new(ann.clone(), kind, text).at(at)).await?;
    }
    println!("kept {} episodes for ann", episodes.len());
    let question = "how does Ann like to travel by train";
    println!("recall {question:?} (RRF: (1-α)/(60+word rank) + α/(60+meaning rank), α = 0.5):");
    for (i, r) in memory.recall(&ann, RecallQuery::new(question).limit(3)).await?.iter().enumerate() {
        let rank = |r: Option<usize>| r.map_or("-".to_owned(), |r| format!("#{r}"));
        println!(
            "  {}. score {:.4}  words {:<3} meaning {:<3} {} {}",
            i + 1,
            r.score,
            rank(r.word_rank),
            rank(r.meaning_rank),
            date(r.episode.at),
            r.episode.text
        );
    }
    println!("  (words find `train`; meaning, by shared word parts, finds `trains` too)");
    let trips = memory.recall(&ann, RecallQuery::new("Ann travel").kind("trip").limit(5)).await?;
    println!("only kind `trip`: {} of {} episodes", trips.len(), episodes.len());

    heading("2. Working blocks");
    memory.set_block(&ann, "persona", "You are Ann's travel planner.").await?;
    memory.set_block(&ann, "preferences", "Trains over planes.").await?;
    memory.append_block(&ann, "preferences", "Window seats, quiet carriages.").await?;
    for block in memory.blocks(&ann).await? {
        println!("[{}] {}", block.name, block.text.replace('\n', " / "));
    }

    heading("3. Facts: a job change, told out of order");
    // Loom hears of the new job first, and only later of the one before it.
    let globex = memory
        .add_fact(&ann, NewFact::new("Ann", "works at", "Globex").valid_from(day(2026, 3, 1)).source("onboarding form"))
        .await?;
    println!("recorded: {} {} {} from {}", globex.subject, globex.predicate, globex.object, date(globex.valid_from));
    let before_acme = checkpoint().await;
    let acme = memory
        .add_fact(&ann, NewFact::new("ann", "worksAt", "Acme").valid_from(day(2025, 1, 1)).source("old CV"))
        .await?;
    println!(
        "recorded later, about an earlier time: {} {} {} from {} — valid until {} (where Globex begins)",
        acme.subject,
        acme.predicate,
        acme.object,
        date(acme.valid_from),
        acme.valid_until.map_or("-".to_owned(), date)
    );
    let employer = |at: Timestamp, as_of: Option<Timestamp>| {
        let memory = memory.clone();
        let ann = ann.clone();
        async move {
            let mut query = FactQuery::new().subject("ann").predicate("works_at").valid_at(at);
            if let Some(t) = as_of {
                query = query.as_of(t);
            }
            let found = memory.facts(&ann, query).await?;
            let names: Vec<String> = found.iter().map(|f| f.object.clone()).collect();
            anyhow::Ok(if names.is_empty() { "(nothing)".to_owned() } else { names.join(", ") })
        }
    };
    println!("employer on 2025-06-01: {}", employer(day(2025, 6, 1), None).await?);
    println!("employer on 2026-06-01: {}", employer(day(2026, 6, 1), None).await?);
    println!(
        "employer on 2025-06-01, as Loom believed before it heard of Acme: {}",
        employer(day(2025, 6, 1), Some(before_acme)).await?
    );

    heading("4. Rectify, with provenance");
    let city = memory
        .add_fact(
            &ann,
            NewFact::new("Globex", "located in", "Olso").valid_from(day(2026, 3, 1)).source("onboarding form"),
        )
        .await?;
    let before_fix = checkpoint().await;
    let fixed = memory.rectify(&ann, &city.id, "Oslo", "Ann corrected the spelling").await?;
    println!("Globex located in: {} → {}", city.object, fixed.object);
    println!("provenance: {}", fixed.sources.join(" | ").replace(&*city.id, "<old fact>"));
    let located = |as_of: Option<Timestamp>| {
        let mut query = FactQuery::new().subject("globex").predicate("located in");
        if let Some(t) = as_of {
            query = query.as_of(t);
        }
        query
    };
    let then = memory.facts(&ann, located(Some(before_fix))).await?;
    let now = memory.facts(&ann, located(None)).await?;
    println!("as of before the fix: {}; now: {}", then[0].object, now[0].object);

    heading("5. Related facts, multi-hop");
    memory.add_fact(&ann, NewFact::new("Oslo", "is in", "Norway").valid_from(day(2020, 1, 1))).await?;
    memory.add_fact(&ann, NewFact::new("Norway", "uses currency", "NOK").valid_from(day(2020, 1, 1))).await?;
    for hops in [1, 4] {
        let chain = memory.related(&ann, "ann", hops, Some(day(2026, 6, 1))).await?;
        let path: Vec<String> =
            chain.iter().map(|f| format!("{} {} {}", f.subject, f.predicate.replace('_', " "), f.object)).collect();
        println!("{hops} hop(s) from ann: {}", path.join(" → "));
    }

    heading("6. An agent with memory, across sessions");
    let model = travel_model();
    let agent = Agent::new("You plan trips.").model(model.clone()).store(store.clone()).memory(memory.clone());
    let first =
        agent.run("My sister Maja lives in Tromsø and I visit her every winter.").user("ann").session("s1").await?;
    println!("session s1 │ user: My sister Maja lives in Tromsø and I visit her every winter.");
    println!("           │ assistant: {}", first.output);
    let second = agent.run("When do I visit Tromsø, usually?").user("ann").session("s2").await?;
    println!("session s2 │ user: When do I visit Tromsø, usually?");
    let requests = model.requests();
    let system = requests.last().and_then(|r| r.messages.first()).map(|m| m.text().into_owned()).unwrap_or_default();
    println!("           │ the system prompt memory wrote:");
    for line in system.lines() {
        println!("           │   {line}");
    }
    println!("           │ assistant: {}", second.output);

    heading("7. Export");
    let export = memory.export(&ann).await?;
    let json = serde_json::to_string_pretty(&export)?;
    let messages: usize = export.sessions.iter().map(|s| s.messages.len()).sum();
    let runs: usize = export.sessions.iter().map(|s| s.runs.len()).sum();
    println!("export of ann: {} bytes of JSON", json.len());
    println!(
        "  {} blocks, {} episodes, {} facts (retracted and closed ones too), {} sessions with {} messages and {} runs",
        export.memory.blocks.len(),
        export.memory.episodes.len(),
        export.memory.facts.len(),
        export.sessions.len(),
        messages,
        runs
    );

    heading("8. Forget");
    let gone = memory.forget(&ann, ForgetScope::all()).await?;
    println!(
        "forgot ann: {} episodes, {} facts, {} blocks, {} sessions ({} in all)",
        gone.episodes,
        gone.facts,
        gone.blocks,
        gone.sessions,
        gone.total()
    );
    let left = memory.export(&ann).await?;
    println!(
        "afterwards: recall {} · blocks {} · facts {} · sessions {} · export holds {} episodes, {} facts",
        memory.recall(&ann, question).await?.len(),
        memory.blocks(&ann).await?.len(),
        memory.facts(&ann, FactQuery::new()).await?.len(),
        store.sessions(&ann).await?.len(),
        left.memory.episodes.len(),
        left.memory.facts.len()
    );
    let fresh = agent.run("When do I visit Tromsø, usually?").user("ann").session("s3").await?;
    println!("the agent, asked again: {}", fresh.output);
    Ok(())
}
