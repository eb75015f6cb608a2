//! Debate: opening answers at once, rounds reading each other, convergence, a judge or a vote.

use std::future::IntoFuture as _;
use std::sync::Arc;

use loomflow::arch::{Debate, Team};
use loomflow::model::ModelErrorKind;
use loomflow::prelude::*;

use crate::common::Recorder;
use crate::support::{Gate, arch_event_names, arch_events, at_once, calls};

fn debater(name: &str, turns: Vec<ScriptedTurn>) -> (Agent, ScriptedModel) {
    let model = ScriptedModel::new(turns);
    (Agent::new("You debate.").name(name).model(model.clone()), model)
}

fn say(text: &str) -> ScriptedTurn {
    ScriptedTurn::text(text.to_owned())
}

#[tokio::test]
async fn debaters_answer_at_once_read_each_other_and_stop_when_they_agree() -> anyhow::Result<()> {
    let gate = Arc::new(tokio::sync::Barrier::new(2));
    // The opening answers can only come once both debaters are asking.
    let gated = |turns: Vec<ScriptedTurn>| Gate {
        inner: ScriptedModel::new(turns),
        barrier: Arc::clone(&gate),
        gated: |r| !crate::support::last_user(r).contains("Your last answer"),
    };
    let a = Agent::new("You debate.")
        .name("a")
        .model(gated(vec![say("I think 4.\nFinal answer: 4"), say("Still.\nFinal answer: **4**")]));
    let b = Agent::new("You debate.")
        .name("b")
        .model(gated(vec![say("Maybe 5.\nFinal answer: 5"), say("A convinced me.\nFinal answer: 4.")]));
    let recorder = Recorder::new();
    let agent = Agent::new("")
        .model(ScriptedModel::new([]))
        .architecture(Debate::new().debater("a", a).debater("b", b).rounds(3))
        .on_event(recorder.listener());
    let result = at_once(agent.run("What is 2+2?").into_future()).await?;
    assert_eq!(result.output, "4");
    let mut order = calls(&recorder);
    order[..2].sort();
    order[2..4].sort();
    assert_eq!(order, ["a:agent", "b:agent", "a:agent", "b:agent"]);
    let names = arch_event_names(&recorder);
    assert_eq!(names, ["debate.round", "debate.round", "debate.converged", "debate.decided"]);
    Ok(())
}

#[tokio::test]
async fn each_round_shows_a_debater_the_others_answers() -> anyhow::Result<()> {
    let (a, a_model) = debater("a", vec![say("Final answer: red"), say("Final answer: red")]);
    let (b, b_model) = debater("b", vec![say("Final answer: blue"), say("Final answer: blue")]);
    let judge_model = ScriptedModel::new([say("Both are colours; red it is.")]);
    let judge = Agent::new("You judge.").model(judge_model.clone());
    let agent = Team::debate([("a", a), ("b", b)], Some(judge));
    let result = agent.run("Best colour?").await?;
    assert_eq!(result.output, "Both are colours; red it is.");
    let a_round = a_model.requests()[1].last_text();
    assert!(
        a_round.contains("[b]\nFinal answer: blue")
            && !a_round.contains("[a]")
            && a_round.contains("Your last answer:\nFinal answer: red")
    );
    assert!(b_model.requests()[1].last_text().contains("[a]\nFinal answer: red"));
    let judged = judge_model.requests()[0].last_text();
    assert!(judged.contains("[a]") && judged.contains("[b]"));
    Ok(())
}

#[tokio::test]
async fn without_a_judge_the_majority_wins_and_a_tie_goes_to_the_earliest() -> anyhow::Result<()> {
    let (a, _) = debater("a", vec![say("Final answer: x"), say("Final answer: x")]);
    let (b, _) = debater("b", vec![say("Final answer: y"), say("Final answer: y")]);
    let (c, _) = debater("c", vec![say("Final answer: z"), say("Final answer: Y")]);
    let recorder = Recorder::new();
    let agent = Agent::new("")
        .model(ScriptedModel::new([]))
        .architecture(Debate::new().debater("a", a).debater("b", b).debater("c", c).rounds(1))
        .on_event(recorder.listener());
    assert_eq!(agent.run("?").await?.output, "y");
    let decided = arch_events(&recorder).into_iter().find(|(n, _)| n == "debate.decided").map(|(_, p)| p);
    assert_eq!(decided.map(|p| (p["debater"].clone(), p["votes"].clone())), Some(("b".into(), 2.into())));
    let (a, _) = debater("a", vec![say("Final answer: x"), say("Final answer: x")]);
    let (b, _) = debater("b", vec![say("Final answer: y"), say("Final answer: y")]);
    let tie = Agent::new("")
        .model(ScriptedModel::new([]))
        .architecture(Debate::new().debater("a", a).debater("b", b).rounds(1));
    assert_eq!(tie.run("?").await?.output, "x");
    Ok(())
}

#[tokio::test]
async fn a_failing_debater_sits_the_round_out() -> anyhow::Result<()> {
    let (a, _) = debater("a", vec![say("Final answer: 1"), say("Final answer: 1"), say("Final answer: 1")]);
    let (b, _) = debater(
        "b",
        vec![
            ScriptedTurn::error(ModelError::new(ModelErrorKind::BadRequest, "scripted", "bad request")),
            say("Final answer: 1"),
        ],
    );
    let recorder = Recorder::new();
    let agent = Agent::new("")
        .model(ScriptedModel::new([]))
        .architecture(Debate::new().debater("a", a).debater("b", b).rounds(2).convergence(false))
        .on_event(recorder.listener());
    assert_eq!(agent.run("?").await?.output, "1");
    assert!(
        arch_events(&recorder).iter().any(|(n, p)| n == "debate.sat_out" && p["debater"] == "b" && p["round"] == 0)
    );
    Ok(())
}

#[tokio::test]
async fn a_debate_needs_two_debaters_and_a_round() {
    let model = ScriptedModel::new([]);
    let one = || Agent::new("d").model(model.clone());
    let cases = [
        Debate::new().debater("a", one()),
        Debate::new().debater("a", one()).debater("b", one()).rounds(0),
        Debate::new().debater("a", one()).debater("b", one()).convergence_similarity(1.5),
        Debate::new().debater("a", one()).debater("b", one()).judge(Agent::new("no model")),
    ];
    for arch in cases {
        let agent = Agent::new("x").model(model.clone()).architecture(arch);
        let err = agent.run("x").await.err();
        assert!(matches!(err, Some(Error::Config(ConfigError::InvalidSetting { .. }))), "{err:?}");
    }
    assert_eq!(model.calls(), 0);
}
