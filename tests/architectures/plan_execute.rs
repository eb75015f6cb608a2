//! Plan-and-Execute: the planner's steps, each carried out with tools, then the answer.

use loomflow::arch::PlanAndExecute;
use loomflow::prelude::*;
use serde_json::json;

use crate::common::Recorder;
use crate::support::{arch_event_names, arch_events, calls};

/// Look up a city's population, in millions.
#[tool(read_only)]
fn population(city: String) -> Result<f64, ToolError> {
    match city.as_str() {
        "Paris" => Ok(2.1),
        "Rome" => Ok(2.8),
        other => Err(ToolError::new(format!("no data for {other}"))),
    }
}

fn arch() -> PlanAndExecute {
    PlanAndExecute::new().planner_prompt("PLAN").executor_prompt("EXECUTE").synthesizer_prompt("SYNTH")
}

#[tokio::test]
async fn each_step_runs_with_the_tools_and_sees_what_came_before() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text(format!(
            "Here is my plan:\n{}",
            json!({"steps": ["Find the population of Paris", "Find Rome's", " "]})
        )),
        ScriptedTurn::tool_call("population", json!({"city": "Paris"})),
        ScriptedTurn::text("Paris: 2.1 million"),
        ScriptedTurn::tool_call("population", json!({"city": "Rome"})),
        ScriptedTurn::text("Rome: 2.8 million"),
        ScriptedTurn::text("Rome is larger."),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("You compare cities.")
        .model(model.clone())
        .tool(PopulationTool)
        .architecture(arch())
        .on_event(recorder.listener());
    let result = agent.run("Which is larger, Paris or Rome?").await?;
    assert_eq!(result.output, "Rome is larger.");
    assert_eq!(calls(&recorder), ["planner", "executor", "executor", "executor", "executor", "synthesizer"]);
    assert_eq!(result.tool_calls, 2);
    let requests = model.requests();
    // The planner is shown the tools; the executor has them and the agent's instructions.
    assert!(requests[0].last_text().contains("population"));
    assert_eq!(requests[1].tool_names(), ["population", "step_failed"]);
    assert!(
        requests[1].messages[0].text().contains("EXECUTE")
            && requests[1].messages[0].text().contains("You compare cities.")
    );
    // Step two sees step one's result; the blank step was dropped.
    assert!(requests[3].last_text().contains("Paris: 2.1 million") && requests[3].last_text().contains("step 2"));
    assert!(requests[5].last_text().contains("Rome: 2.8 million"));
    assert_eq!(
        arch_events(&recorder).iter().find(|(n, _)| n == "plan.made").map(|(_, p)| p["steps"].clone()),
        Some(json!(["Find the population of Paris", "Find Rome's"]))
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_step_is_replanned_when_allowed() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text(json!({"steps": ["Find Atlantis's population", "Compare"]}).to_string()),
        ScriptedTurn::tool_call("step_failed", json!({"reason": "Atlantis is not a real city"})),
        ScriptedTurn::text(json!({"steps": ["Say that Atlantis has no population data"]}).to_string()),
        ScriptedTurn::text("Atlantis has no data."),
        ScriptedTurn::text("Atlantis is a myth."),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("x")
        .model(model.clone())
        .tool(PopulationTool)
        .architecture(arch().max_replans(1))
        .on_event(recorder.listener());
    let result = agent.run("How many live in Atlantis?").await?;
    assert_eq!(result.output, "Atlantis is a myth.");
    assert_eq!(calls(&recorder), ["planner", "executor", "planner", "executor", "synthesizer"]);
    let requests = model.requests();
    assert!(requests[2].last_text().contains("Atlantis is not a real city"));
    assert!(requests[4].last_text().contains("(FAILED)") && requests[4].last_text().contains("Atlantis has no data."));
    let names = arch_event_names(&recorder);
    assert!(names.contains(&"plan.replanned".to_owned()));
    Ok(())
}

#[tokio::test]
async fn without_replanning_a_failure_is_recorded_and_the_plan_goes_on() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text(json!({"steps": ["a", "b"]}).to_string()),
        ScriptedTurn::tool_call("population", json!({"city": "Oz"})),
        ScriptedTurn::text("b done"),
        ScriptedTurn::text("partly done"),
    ]);
    let agent = Agent::new("x").model(model.clone()).tool(PopulationTool).architecture(arch().executor_turns(1));
    let result = agent.run("go").await?;
    assert_eq!(result.output, "partly done");
    let synth = model.requests()[3].last_text();
    assert!(synth.contains("Step 1 (FAILED): a") && synth.contains("not finished within 1 turns"), "{synth}");
    Ok(())
}

#[tokio::test]
async fn a_plan_still_malformed_after_the_retry_becomes_the_task_itself() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text("First I will look, then compare."),
        ScriptedTurn::text(json!({"steps": []}).to_string()),
        ScriptedTurn::text("looked"),
        ScriptedTurn::text("answer"),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("x").model(model.clone()).architecture(arch()).on_event(recorder.listener());
    let result = agent.run("Compare things.").await?;
    assert_eq!(result.output, "answer");
    assert!(model.requests()[2].last_text().contains("Now carry out step 1: Compare things."));
    let names = arch_event_names(&recorder);
    assert_eq!(names.iter().filter(|n| *n == "control.rejected").count(), 2);
    assert!(names.contains(&"plan.fallback".to_owned()));
    Ok(())
}

#[tokio::test]
async fn a_long_plan_is_cut_and_bad_settings_are_refused() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::text(json!({"steps": ["1", "2", "3"]}).to_string()),
        ScriptedTurn::text("one"),
        ScriptedTurn::text("two"),
        ScriptedTurn::text("done"),
    ]);
    let agent = Agent::new("x").model(model.clone()).architecture(arch().max_steps(2));
    assert_eq!(agent.run("go").await?.output, "done");
    assert_eq!(model.calls(), 4);
    for bad in [arch().max_steps(0), arch().executor_turns(0)] {
        let agent = Agent::new("x").model(model.clone()).architecture(bad);
        assert!(matches!(agent.run("x").await, Err(Error::Config(ConfigError::InvalidSetting { .. }))));
    }
    assert_eq!(model.calls(), 4);
    Ok(())
}
