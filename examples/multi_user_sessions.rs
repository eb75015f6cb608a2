//! One agent and one memory shared by many users, offline, on SQLite.
//!
//! Three users talk to the same agent at once, each over several sessions: a session they come
//! back to continues where it was, a new session recalls the user's earlier turns — and never
//! another user's. Then one user is forgotten and the others keep everything.
//!
//! ```sh
//! cargo run --example multi_user_sessions
//! ```
//!
//! The database is a fresh file in the system's temporary directory, removed at the end.

use std::path::PathBuf;
use std::sync::Arc;

use loomflow::memory::{ForgetScope, Memory};
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

/// The users, their favourite colour and what they do at weekends.
const USERS: [(&str, &str, &str); 3] =
    [("ann", "teal", "pottery"), ("bob", "amber", "climbing"), ("chen", "violet", "chess")];

/// Each user's turns, in order: (session, message).
fn script(colour: &str, hobby: &str) -> Vec<(&'static str, String)> {
    vec![
        ("s1", format!("My favourite colour is {colour} and I spend my weekends on {hobby}.")),
        ("s2", "What is my favourite colour?".to_owned()),
        ("s1", "And what do I do at weekends?".to_owned()),
        ("s3", "What do I do at weekends?".to_owned()),
    ]
}

/// The word after `marker` in `text`.
fn word_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let word: String = text[start..].chars().take_while(|c| c.is_alphabetic()).collect();
    (!word.is_empty()).then_some(word)
}

/// Answers from the session's history, or else from what memory put in the system prompt, and
/// says which.
fn model() -> ScriptedModel {
    ScriptedModel::from_fn(|request| {
        let system = request.messages.first().map(|m| m.text().into_owned()).unwrap_or_default();
        let question = request.last_user_text().unwrap_or_default();
        // The session's own earlier messages (not the system prompt, not the question).
        let history: Vec<String> = request
            .messages
            .iter()
            .skip(1)
            .take(request.messages.len().saturating_sub(2))
            .map(|m| m.text().into_owned())
            .collect();
        let answer = if question.contains("favourite colour?") {
            match word_after(&system, "favourite colour is ") {
                Some(colour) => format!("Your favourite colour is {colour} (from memory)."),
                None => "I do not know your favourite colour.".to_owned(),
            }
        } else if question.contains("weekends?") {
            match history.iter().find_map(|m| word_after(m, "weekends on ")) {
                Some(hobby) => format!("You spend them on {hobby} (from this session's {} messages).", history.len()),
                None => match word_after(&system, "weekends on ") {
                    Some(hobby) => format!("You spend them on {hobby} (from memory)."),
                    None => "I do not know what you do at weekends.".to_owned(),
                },
            }
        } else {
            "Noted.".to_owned()
        };
        ScriptedTurn::text(answer)
    })
}

/// What one turn printed.
struct Turn {
    session: &'static str,
    input: String,
    recalled: Vec<String>,
    output: String,
    /// Whether memory showed this user anything of another user's.
    crossed: bool,
}

/// The earlier turns memory recalled into the system prompt, without their dates.
fn recalled(system: &str) -> Vec<String> {
    let Some((_, earlier)) = system.split_once("Earlier:\n") else { return Vec::new() };
    let mut out: Vec<String> = Vec::new();
    for line in earlier.lines() {
        match line.strip_prefix("- (") {
            Some(rest) => out.push(rest.split_once(") ").map_or(rest, |(_, text)| text).to_owned()),
            None => {
                if let Some(last) = out.last_mut() {
                    last.push_str(" / ");
                    last.push_str(line);
                }
            }
        }
    }
    out
}

/// Runs one user's turns in order.
async fn converse(
    agent: Agent,
    user: &'static str,
    colour: &'static str,
    hobby: &'static str,
) -> anyhow::Result<Vec<Turn>> {
    let mut turns = Vec::new();
    for (session, input) in script(colour, hobby) {
        let result = agent.run(input.as_str()).user(user).session(session).await?;
        let system = result.messages.first().map(|m| m.text().into_owned()).unwrap_or_default();
        let crossed =
            USERS.iter().filter(|(other, ..)| *other != user).any(|(_, c, h)| system.contains(c) || system.contains(h));
        turns.push(Turn { session, input, recalled: recalled(&system), output: result.output, crossed });
    }
    Ok(turns)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let db = TempDb(std::env::temp_dir().join(format!("loom-multi-user-{}-{nanos}.db", std::process::id())));
    let store = Arc::new(SqliteStore::open(&db.0)?);
    // One memory and one agent for everyone: every call is partitioned by the run's user.
    let memory = Memory::shared(store.clone()).sessions(store.clone());
    let agent = Agent::new("You are a helpful assistant.").model(model()).store(store.clone()).memory(memory.clone());

    // The users talk at once; each user's own turns go in order.
    let handles: Vec<_> =
        USERS.iter().map(|&(user, colour, hobby)| tokio::spawn(converse(agent.clone(), user, colour, hobby))).collect();
    let mut crossings = 0;
    for (handle, (user, ..)) in handles.into_iter().zip(USERS) {
        println!("{user}");
        for turn in handle.await?? {
            crossings += usize::from(turn.crossed);
            println!("  {} │ user: {}", turn.session, turn.input);
            if turn.recalled.is_empty() {
                println!("     │ recalled: nothing");
            }
            for text in &turn.recalled {
                println!("     │ recalled: {text}");
            }
            println!("     │ assistant: {}", turn.output);
        }
    }
    println!("\ncross-user recalls: {crossings}");

    let counts = |user: &'static str| {
        let (memory, store) = (memory.clone(), store.clone());
        async move {
            let id = UserId::new(user)?;
            let episodes = memory.profile(&id).await?.episodes;
            let sessions = store.sessions(&id).await?.len();
            anyhow::Ok(format!("{user}: {episodes} episodes, {sessions} sessions"))
        }
    };
    let mut before = Vec::new();
    for (user, ..) in USERS {
        before.push(counts(user).await?);
    }
    println!("before forgetting bob: {}", before.join("; "));

    let bob = UserId::new("bob")?;
    let gone = memory.forget(&bob, ForgetScope::all()).await?;
    println!("forgot bob: {} episodes, {} sessions", gone.episodes, gone.sessions);
    let mut after = Vec::new();
    for (user, ..) in USERS {
        after.push(counts(user).await?);
    }
    println!("after forgetting bob:  {}", after.join("; "));
    for (user, ..) in USERS {
        let asked = agent.run("What is my favourite colour?").user(user).session("s4").await?;
        println!("{user} asks again │ {}", asked.output);
    }
    Ok(())
}
