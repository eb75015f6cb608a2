//! Conversations that continue across runs, partitioned by user.

use std::sync::Arc;

use loomflow::prelude::*;
use loomflow::session::{InMemoryStore, SessionStore};

fn user_texts(messages: &[Message]) -> Vec<String> {
    messages.iter().filter(|m| matches!(m, Message::User { .. })).map(|m| m.text().into_owned()).collect()
}

#[tokio::test]
async fn turn_two_sees_turn_one() -> anyhow::Result<()> {
    let model = ScriptedModel::new([ScriptedTurn::text("Hi Ada"), ScriptedTurn::text("You are Ada")]);
    let agent = Agent::new("Remember names.").model(model.clone());
    agent.run("My name is Ada").user("alice").session("s1").await?;
    let second = agent.run("What is my name?").user("alice").session("s1").await?;
    assert_eq!(second.output, "You are Ada");

    let seen = &model.requests()[1].messages;
    assert_eq!(
        seen.iter().map(|m| (m.role(), m.text().into_owned())).collect::<Vec<_>>(),
        [
            (loomflow::model::Role::System, "Remember names.".to_owned()),
            (loomflow::model::Role::User, "My name is Ada".to_owned()),
            (loomflow::model::Role::Assistant, "Hi Ada".to_owned()),
            (loomflow::model::Role::User, "What is my name?".to_owned()),
        ]
    );
    assert_eq!(second.new_messages().len(), 2);
    Ok(())
}

#[tokio::test]
async fn two_users_with_the_same_session_id_are_isolated() -> anyhow::Result<()> {
    let agent = Agent::new("x").model("echo");
    agent.run("alice secret").user("alice").session("shared").await?;
    agent.run("bob secret").user("bob").session("shared").await?;
    let alice = agent.run("alice again").user("alice").session("shared").await?;
    let bob = agent.run("bob again").user("bob").session("shared").await?;
    assert_eq!(user_texts(&alice.messages), ["alice secret", "alice again"]);
    assert_eq!(user_texts(&bob.messages), ["bob secret", "bob again"]);

    let store = agent.session_store();
    let alice_id = UserId::new("alice")?;
    let carol_id = UserId::new("carol")?;
    let shared = SessionId::new("shared")?;
    assert_eq!(store.load(&alice_id, &shared, None).await?.len(), 4);
    assert!(store.load(&carol_id, &shared, None).await?.is_empty());
    assert_eq!(store.sessions(&alice_id).await?, [shared]);
    Ok(())
}

#[tokio::test]
async fn runs_without_a_session_start_fresh() -> anyhow::Result<()> {
    let agent = Agent::new("x").model("echo");
    agent.run("one").user("alice").await?;
    let second = agent.run("two").user("alice").await?;
    assert_eq!(user_texts(&second.messages), ["two"]);
    Ok(())
}

#[tokio::test]
async fn a_shared_store_carries_a_conversation_between_agents() -> anyhow::Result<()> {
    let store: Arc<dyn SessionStore> = Arc::new(InMemoryStore::new());
    let first = Agent::new("a").model("echo").sessions(Arc::clone(&store));
    let second = Agent::new("b").model("echo").sessions(store);
    first.run("hello").user("u").session("s").await?;
    let r = second.run("again").user("u").session("s").await?;
    assert_eq!(user_texts(&r.messages), ["hello", "again"]);
    Ok(())
}

#[tokio::test]
async fn history_limit_cuts_at_a_user_message() -> anyhow::Result<()> {
    let agent = Agent::new("x").model("echo").history_limit(3);
    for i in 0..4 {
        agent.run(format!("m{i}")).user("u").session("s").await?;
    }
    let r = agent.run("last").user("u").session("s").await?;
    // The last 3 stored messages are [a2, u3, a3]; the window starts at the user message.
    assert_eq!(user_texts(&r.messages), ["m3", "last"]);
    Ok(())
}

#[tokio::test]
async fn clearing_a_session_forgets_it() -> anyhow::Result<()> {
    let agent = Agent::new("x").model("echo");
    agent.run("remember me").user("u").session("s").await?;
    let (u, s) = (UserId::new("u")?, SessionId::new("s")?);
    assert!(agent.session_store().clear(&u, &s).await?);
    assert!(!agent.session_store().clear(&u, &s).await?);
    let r = agent.run("who?").user("u").session("s").await?;
    assert_eq!(user_texts(&r.messages), ["who?"]);
    Ok(())
}
