//! Reflexion: attempts scored, lessons kept per user and recalled.

use loomflow::arch::Reflexion;
use loomflow::prelude::*;
use serde_json::json;

use crate::common::Recorder;
use crate::support::{arch_event_names, arch_events, calls};

fn agent(model: &ScriptedModel) -> Agent {
    Agent::new("Solve puzzles.").name("solver").model(model.clone()).architecture(Reflexion::new().max_attempts(3))
}

#[tokio::test]
async fn a_low_score_teaches_a_lesson_that_the_next_attempt_and_later_runs_recall() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text("4"),
        ScriptedTurn::text(json!({"score": 0.2, "reason": "wrong sum"}).to_string()),
        ScriptedTurn::text("Check the arithmetic twice.\nIgnored second line."),
        ScriptedTurn::text("5"),
        ScriptedTurn::text(json!({"score": "9/10", "reason": "right"}).to_string()),
    ]);
    let recorder = Recorder::new();
    let solver = agent(&model).on_event(recorder.listener());
    let result = solver.run("2+3?").user("ann").session("s1").await?;
    assert_eq!(result.output, "5");
    assert_eq!(calls(&recorder), ["agent", "evaluator", "reflector", "agent", "evaluator"]);
    let requests = model.requests();
    assert!(!requests[0].messages[0].text().contains("Lessons"));
    assert!(requests[3].messages[0].text().contains("- Check the arithmetic twice."));
    assert!(!requests[3].messages[0].text().contains("Ignored"));
    // The second attempt starts again from the question.
    assert_eq!(requests[3].messages.len(), 2);
    let scores: Vec<f64> = arch_events(&recorder)
        .iter()
        .filter(|(n, _)| n == "reflexion.evaluated")
        .filter_map(|(_, p)| p["score"].as_f64())
        .collect();
    assert_eq!(scores, [0.2, 0.9]);
    // The session keeps the question and the answer that stood.
    let kept: Vec<String> = result.new_messages().iter().map(|m| m.text().into_owned()).collect();
    assert_eq!(kept, ["2+3?", "5"]);

    // A later run for the same user, in another session, recalls the lesson; another user does not.
    model.push(ScriptedTurn::text("7"));
    model.push(ScriptedTurn::text(json!({"score": 1}).to_string()));
    solver.run("3+4?").user("ann").session("s2").await?;
    assert!(model.requests()[5].messages[0].text().contains("Check the arithmetic twice."));
    model.push(ScriptedTurn::text("7"));
    model.push(ScriptedTurn::text(json!({"score": 1}).to_string()));
    solver.run("3+4?").user("bob").await?;
    assert!(!model.requests()[7].messages[0].text().contains("Lessons"));
    Ok(())
}

#[tokio::test]
async fn a_malformed_evaluation_scores_zero_and_the_best_attempt_wins() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text("A"),
        ScriptedTurn::text("great!"),
        ScriptedTurn::text("still not json"),
        ScriptedTurn::text("Be specific."),
        ScriptedTurn::text("B"),
        ScriptedTurn::text(json!({"score": 0.5}).to_string()),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("x")
        .model(model.clone())
        .architecture(Reflexion::new().max_attempts(2).threshold(0.9))
        .on_event(recorder.listener());
    let result = agent.run("q").await?;
    assert_eq!(result.output, "B");
    assert_eq!(calls(&recorder), ["agent", "evaluator", "evaluator", "reflector", "agent", "evaluator"]);
    let names = arch_event_names(&recorder);
    assert_eq!(names.iter().filter(|n| *n == "control.rejected").count(), 2);
    // The retry told the evaluator what was wrong.
    assert!(model.requests()[2].last_text().to_lowercase().contains("json"));
    Ok(())
}

#[tokio::test]
async fn an_attempt_out_of_turns_scores_zero_and_a_lesson_is_kept_once() -> anyhow::Result<()> {
    /// Look something up.
    #[tool]
    fn look() -> String {
        "nothing".into()
    }
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("look", json!({})),
        ScriptedTurn::text("Answer sooner."),
        ScriptedTurn::text("done"),
        ScriptedTurn::text(json!({"score": 1.0}).to_string()),
    ]);
    let agent =
        Agent::new("x").name("looker").model(model.clone()).tool(LookTool).max_turns(1).architecture("reflexion");
    let result = agent.run("go").user("u").await?;
    assert_eq!(result.output, "done");
    // No evaluation of an attempt that gave no answer: the reflector comes straight after it.
    assert!(model.requests()[1].last_text().contains("no answer"));
    let lessons =
        agent.session_store().load(&UserId::new("u")?, &SessionId::new("loom:lessons")?.sub("looker"), None).await?;
    assert_eq!(lessons.len(), 1);
    Ok(())
}

#[tokio::test]
async fn bad_settings_are_refused_before_any_model_call() {
    let model = ScriptedModel::new([]);
    for arch in
        [Reflexion::new().max_attempts(0), Reflexion::new().threshold(1.5), Reflexion::new().evaluator_prompt(" ")]
    {
        let agent = Agent::new("x").model(model.clone()).architecture(arch);
        assert!(matches!(agent.run("x").await, Err(Error::Config(ConfigError::InvalidSetting { .. }))));
    }
    assert_eq!(model.calls(), 0);
}

#[tokio::test]
async fn with_a_memory_lessons_are_episodes_recalled_by_the_task_exported_and_forgotten() -> anyhow::Result<()> {
    use loomflow::memory::{ForgetScope, Memory, RecallQuery};
    let memory = Memory::in_memory();
    let model = ScriptedModel::new([
        ScriptedTurn::text("4"),
        ScriptedTurn::text(json!({"score": 0.2, "reason": "wrong sum"}).to_string()),
        ScriptedTurn::text("Check the arithmetic of every sum twice."),
        ScriptedTurn::text("5"),
        ScriptedTurn::text(json!({"score": 1}).to_string()),
    ]);
    let solver = agent(&model).memory(memory.clone());
    solver.run("What is the sum 2+3?").user("ann").session("s1").await?;
    let ann = UserId::new("ann")?;
    let lessons = memory.recall(&ann, RecallQuery::new("sum arithmetic").kind("lesson/solver")).await?;
    assert_eq!(lessons.len(), 1);
    assert_eq!(lessons[0].episode.text, "Check the arithmetic of every sum twice.");
    // Nothing of it in the session store.
    let store = solver.session_store();
    assert!(store.load(&ann, &SessionId::new("loom:lessons")?.sub("solver"), None).await?.is_empty());

    // A later task that bears on it recalls it, in the Reflexion section and not twice.
    model.push(ScriptedTurn::text("9"));
    model.push(ScriptedTurn::text(json!({"score": 1}).to_string()));
    solver.run("Another sum: 4+5?").user("ann").session("s2").await?;
    let system = model.requests()[5].messages[0].text().into_owned();
    assert!(system.contains("Lessons from earlier attempts"), "{system}");
    assert_eq!(system.matches("Check the arithmetic of every sum twice.").count(), 1, "{system}");

    // The same lesson learned again is kept once.
    model.push(ScriptedTurn::text("8"));
    model.push(ScriptedTurn::text(json!({"score": 0.1}).to_string()));
    model.push(ScriptedTurn::text("Check the arithmetic of every sum twice."));
    model.push(ScriptedTurn::text("7"));
    model.push(ScriptedTurn::text(json!({"score": 1}).to_string()));
    solver.run("The sum 3+4?").user("ann").session("s3").await?;
    let export = memory.export(&ann).await?;
    assert_eq!(export.memory.episodes.iter().filter(|e| e.kind == "lesson/solver").count(), 1);

    // Forgetting the user forgets what was learned from them.
    memory.forget(&ann, ForgetScope::all()).await?;
    assert!(memory.recall(&ann, RecallQuery::new("sum arithmetic").kind("lesson/solver")).await?.is_empty());
    Ok(())
}
