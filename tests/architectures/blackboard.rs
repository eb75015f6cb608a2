//! Blackboard: a coordinator picks who adds to the board; a decider answers from it.

use loomflow::arch::{Blackboard, Team};
use loomflow::prelude::*;
use serde_json::json;

use crate::common::Recorder;
use crate::support::{arch_event_names, calls};

fn member(name: &str, entry: &str) -> (Agent, ScriptedModel) {
    let entry = entry.to_owned();
    let model = ScriptedModel::from_fn(move |_| ScriptedTurn::text(entry.clone()));
    (Agent::new(format!("You are the {name}.")).name(name).model(model.clone()), model)
}

fn pick(next: Option<&str>, instruction: &str, terminate: bool) -> ScriptedTurn {
    ScriptedTurn::text(json!({"terminate": terminate, "next_agent": next, "instruction": instruction}).to_string())
}

#[tokio::test]
async fn the_coordinator_picks_who_works_and_the_decider_answers_from_the_board() -> anyhow::Result<()> {
    let (researcher, researcher_model) = member("researcher", "Looms date to 5000 BC.");
    let (writer, writer_model) = member("writer", "Looms are ancient.");
    let model = ScriptedModel::new([
        pick(Some("researcher"), "Find the history.", false),
        pick(Some("writer"), "Write it up.", false),
        pick(None, "", true),
        ScriptedTurn::text("Looms are ancient: they date to 5000 BC."),
    ]);
    let recorder = Recorder::new();
    let agent = Team::blackboard("You coordinate writers.", [("researcher", researcher), ("writer", writer)])
        .model(model.clone())
        .on_event(recorder.listener());
    let result = agent.run("Write about looms.").await?;
    assert_eq!(result.output, "Looms are ancient: they date to 5000 BC.");
    assert_eq!(
        calls(&recorder),
        ["coordinator", "researcher:agent", "coordinator", "writer:agent", "coordinator", "decider"]
    );
    assert!(researcher_model.requests()[0].last_text().contains("Your part: Find the history."));
    // The writer sees what the researcher put on the board.
    assert!(writer_model.requests()[0].last_text().contains("[researcher]\nLooms date to 5000 BC."));
    assert!(model.requests()[3].last_text().contains("#2 [writer]"));
    assert_eq!(arch_event_names(&recorder), ["blackboard.entry", "blackboard.entry", "blackboard.stopped"]);
    Ok(())
}

#[tokio::test]
async fn without_a_coordinator_the_agents_take_turns_and_the_last_entry_answers() -> anyhow::Result<()> {
    let (a, a_model) = member("a", "from a");
    let (b, b_model) = member("b", "from b");
    let agent = Agent::new("")
        .model(ScriptedModel::new([]))
        .architecture(Blackboard::new().agent("a", a).agent("b", b).max_rounds(3));
    let result = agent.run("go").await?;
    assert_eq!(result.output, "from a");
    assert_eq!((a_model.calls(), b_model.calls()), (2, 1));
    Ok(())
}

#[tokio::test]
async fn a_malformed_or_unknown_pick_skips_the_round() -> anyhow::Result<()> {
    let (a, a_model) = member("a", "entry");
    let model = ScriptedModel::new([
        pick(Some("z"), "", false),
        pick(Some("zz"), "", false),
        pick(Some("a"), "", false),
        pick(None, "", true),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("")
        .model(model.clone())
        .architecture(Blackboard::new().agent("a", a).coordinated().max_rounds(3))
        .on_event(recorder.listener());
    assert_eq!(agent.run("go").await?.output, "entry");
    assert_eq!(a_model.calls(), 1);
    assert!(model.requests()[1].last_text().contains("no agent `z`"));
    let names = arch_event_names(&recorder);
    assert!(names.contains(&"blackboard.skipped".to_owned()));
    Ok(())
}

#[tokio::test]
async fn an_empty_board_without_a_decider_is_an_error_and_bad_settings_are_refused() -> anyhow::Result<()> {
    let (a, _) = member("a", "entry");
    let model = ScriptedModel::new([pick(None, "", true)]);
    let agent = Agent::new("").model(model).architecture(Blackboard::new().agent("a", a.clone()).coordinated());
    assert!(matches!(agent.run("go").await, Err(Error::Run(RunError::Architecture { .. }))));
    let none = ScriptedModel::new([]);
    for arch in [Blackboard::new(), Blackboard::new().agent("a", a).max_rounds(0)] {
        let agent = Agent::new("x").model(none.clone()).architecture(arch);
        assert!(matches!(agent.run("x").await, Err(Error::Config(ConfigError::InvalidSetting { .. }))));
    }
    assert_eq!(none.calls(), 0);
    Ok(())
}
