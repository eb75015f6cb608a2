//! Agents with memory: recalled into the prompt, kept after each turn, partitioned by user,
//! and a failing memory that does not take the run down unless told to.

mod common;

use loomflow::memory::{
    AgentMemory, Episode, Fact, FactQuery, ForgetReport, ForgetScope, Memory, MemoryData, MemoryStore, NewFact,
    RecallQuery, Recalled, Timestamp, WorkingBlock,
};
use loomflow::prelude::*;
use loomflow::{StoreError, StoreErrorKind};

use common::Recorder;

fn echo_model() -> ScriptedModel {
    ScriptedModel::from_fn(|r| ScriptedTurn::text(format!("heard: {}", r.last_user_text().unwrap_or_default())))
}

#[tokio::test]
async fn an_agent_recalls_blocks_facts_and_earlier_turns_of_the_same_user_only() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let ann = UserId::new("ann")?;
    memory.set_block(&ann, "preferences", "Ann wants short answers").await?;
    memory.add_fact(&ann, NewFact::new("Bergen", "is in", "Norway")).await?;
    let model = echo_model();
    let recorder = Recorder::new();
    let agent = Agent::new("You plan trips.").model(model.clone()).memory(memory.clone()).on_event(recorder.listener());
    agent.run("I love the night train to Bergen").user("ann").session("s1").await?;
    agent.run("Book me something to Bergen").user("ann").session("s2").await?;
    agent.run("Book me something to Bergen").user("bob").session("s1").await?;
    let system = |i: usize| model.requests()[i].messages[0].text().into_owned();
    // The first run: the block and the fact, no earlier turn yet.
    assert!(system(0).starts_with("You plan trips.") && system(0).contains("[preferences]\nAnn wants short answers"));
    assert!(system(0).contains("- Bergen is in Norway") && !system(0).contains("Earlier:"));
    // The second: the earlier turn, from another session.
    assert!(system(1).contains("User: I love the night train to Bergen"), "{}", system(1));
    // Bob sees nothing of Ann's.
    assert_eq!(system(2), "You plan trips.");
    // Each turn was kept, with its session; the sessions' history is unchanged by memory.
    let kept = memory.export(&ann).await?.memory.episodes;
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].session.as_ref().map(|s| s.as_str()), Some("s1"));
    assert!(kept[1].text.ends_with("Assistant: heard: Book me something to Bergen"));
    assert!(
        agent
            .session_store()
            .load(&ann, &SessionId::new("s2")?, None)
            .await?
            .iter()
            .all(|m| m.role() != loomflow::model::Role::System)
    );
    let names: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Memory { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(names.iter().filter(|n| *n == "memory.recalled").count(), 3);
    assert_eq!(names.iter().filter(|n| *n == "memory.remembered").count(), 3);
    Ok(())
}

#[tokio::test]
async fn recalled_memory_stays_within_its_budget() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let ann = UserId::new("ann")?;
    for i in 0..20 {
        memory.remember(&ann, "note", &format!("note {i} about trains {}", "x".repeat(200))).await?;
    }
    let model = echo_model();
    let agent = Agent::new("Plan.")
        .model(model.clone())
        .memory(AgentMemory::new(memory).episodes(20).budget_chars(600).remember_turns(false));
    agent.run("trains").user("ann").await?;
    let system = model.requests()[0].messages[0].text().into_owned();
    let section = system.trim_start_matches("Plan.");
    assert!(section.len() <= 600 + 2, "{}", section.len());
    assert!(section.contains("note"));
    Ok(())
}

/// A memory whose server is down.
struct Down;

fn down() -> StoreError {
    StoreError::new(StoreErrorKind::Unavailable, "test", "connection refused")
}

#[loomflow::async_trait]
impl MemoryStore for Down {
    fn backend(&self) -> &'static str {
        "test"
    }
    async fn blocks(&self, _: &UserId) -> Result<Vec<WorkingBlock>, StoreError> {
        Err(down())
    }
    async fn write_block(&self, _: &UserId, _: &str, _: &str, _: bool) -> Result<WorkingBlock, StoreError> {
        Err(down())
    }
    async fn remember(&self, _: &Episode, _: Option<&[f32]>) -> Result<(), StoreError> {
        Err(down())
    }
    async fn recall(&self, _: &UserId, _: &RecallQuery, _: Option<&[f32]>) -> Result<Vec<Recalled>, StoreError> {
        Err(down())
    }
    async fn add_fact(&self, _: &UserId, _: NewFact, _: Timestamp) -> Result<Fact, StoreError> {
        Err(down())
    }
    async fn facts(&self, _: &UserId, _: &FactQuery) -> Result<Vec<Fact>, StoreError> {
        Err(down())
    }
    async fn rectify(&self, _: &UserId, _: &str, _: &str, _: &str, _: Timestamp) -> Result<Fact, StoreError> {
        Err(down())
    }
    async fn export(&self, _: &UserId) -> Result<MemoryData, StoreError> {
        Err(down())
    }
    async fn forget(&self, _: &UserId, _: &ForgetScope) -> Result<ForgetReport, StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn a_dead_memory_is_reported_and_the_run_goes_on_unless_told_otherwise() -> anyhow::Result<()> {
    let recorder = Recorder::new();
    let agent = Agent::new("Help.").model(echo_model()).memory(Memory::new(Down)).on_event(recorder.listener());
    let result = agent.run("hello").user("ann").await?;
    assert_eq!(result.output, "heard: hello");
    let failures = recorder
        .events()
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::Memory { name, .. } if name == "memory.failed"))
        .count();
    assert_eq!(failures, 2, "the recall and the keeping");

    let strict =
        Agent::new("Help.").model(echo_model()).memory(AgentMemory::new(Memory::new(Down)).fail_on_error(true));
    let err = strict.run("hello").user("ann").await.err();
    let Some(Error::Store(e)) = err else { anyhow::bail!("expected a store error, got {err:?}") };
    assert_eq!((e.kind(), e.backend()), (StoreErrorKind::Unavailable, "test"));
    Ok(())
}

#[tokio::test]
async fn keeping_the_same_episode_twice_keeps_it_once() -> anyhow::Result<()> {
    let memory = Memory::in_memory();
    let ann = UserId::new("ann")?;
    let e = Episode::new(ann.clone(), "turn", "once");
    memory.remember_episode(&e).await?;
    memory.remember_episode(&e).await?;
    assert_eq!(memory.export(&ann).await?.memory.episodes.len(), 1);
    Ok(())
}
