//! The living plan: the `update_plan` tool, its lenient input, its event, the plan kept with
//! the session across processes, and the goal loop that waits for the plan to be finished.

mod common;

use std::future::IntoFuture as _;
use std::sync::Arc;
use std::time::Duration;

use common::{Recorder, TempFile};
use loomflow::agent::AgentInput;
use loomflow::arch::LoopExit;
use loomflow::prelude::*;
use loomflow::session::{SessionStore, SqliteStore};
use loomflow::tools::plan::{Plan, PlanTool, StepStatus};
use serde_json::json;
use tokio::sync::Notify;

use StepStatus::{Blocked, Done, InProgress, Pending, Skipped};

fn steps_of(plan: &Plan) -> Vec<(&str, StepStatus)> {
    plan.steps.iter().map(|s| (s.title.as_str(), s.status)).collect()
}

#[test]
fn lenient_inputs_all_give_the_plan_the_model_meant() {
    type Case = (&'static str, &'static str, &'static [(&'static str, StepStatus)], &'static [&'static str]);
    let cases: &[Case] = &[
        (
            "the schema's shape, other title keys, findings",
            r#"{"steps": [{"title": "a", "status": "done"}, {"step": "b", "status": "in_progress"},
                {"content": "c", "status": "todo"}], "findings": ["f1"]}"#,
            &[("a", Done), ("b", InProgress), ("c", Pending)],
            &["f1"],
        ),
        (
            "a list of strings with check boxes",
            r#"["[x] a", "[ ] b", "c"]"#,
            &[("a", Done), ("b", Pending), ("c", Pending)],
            &[],
        ),
        (
            "the plan as a JSON string",
            r#""{\"steps\": [{\"title\": \"a\", \"status\": \"completed\"}]}""#,
            &[("a", Done)],
            &[],
        ),
        ("numbered text inside the object", r#"{"steps": "1. [x] a\n2. [ ] b"}"#, &[("a", Done), ("b", Pending)], &[]),
        (
            "numbered and bulleted text",
            "1. [x] done thing\n2. [ ] todo\n- [~] in progress\n3. thing (blocked)",
            &[("done thing", Done), ("todo", Pending), ("in progress", InProgress), ("thing", Blocked)],
            &[],
        ),
        (
            "status synonyms, any case and separator",
            r#"{"todos": [{"content": "a", "status": "doing"}, {"content": "b", "status": "Completed"},
                {"content": "c", "status": "cancelled"}, {"content": "d", "status": "in-progress"},
                {"content": "e", "status": "stuck"}, {"content": "f", "status": "To Do"}]}"#,
            &[("a", InProgress), ("b", Done), ("c", Skipped), ("d", InProgress), ("e", Blocked), ("f", Pending)],
            &[],
        ),
        (
            "a to-do list with extra keys",
            r#"{"todos": [{"id": 1, "content": "a", "status": "in_progress", "activeForm": "Doing a"}]}"#,
            &[("a", InProgress)],
            &[],
        ),
        (
            "pairs of title and status",
            r#"{"plan": [["a", "done"], ["b", "pending"]]}"#,
            &[("a", Done), ("b", Pending)],
            &[],
        ),
        (
            "a done flag, and no status",
            r#"{"steps": [{"title": "a", "done": true}, {"title": "b"}]}"#,
            &[("a", Done), ("b", Pending)],
            &[],
        ),
        (
            "a numbered step key next to the description",
            r#"{"steps": [{"step": 1, "description": "a", "status": "done"}]}"#,
            &[("a", Done)],
            &[],
        ),
        (
            "symbols, prose around the list, a findings section",
            "Here is my plan:\n1. ✅ a\n2. 🔄 b\n\nFindings:\n- x\n- y",
            &[("a", Done), ("b", InProgress)],
            &["x", "y"],
        ),
        ("statuses in words before the title", "DONE: a\nTODO: b", &[("a", Done), ("b", Pending)], &[]),
        ("struck through and dashed statuses", "- ~~a~~\n- b - in progress", &[("a", Done), ("b", InProgress)], &[]),
        (
            "a step's own finding",
            r#"{"steps": [{"title": "a", "status": "done", "finding": "it works"}]}"#,
            &[("a", Done)],
            &["a: it works"],
        ),
        ("one step alone", r#"{"title": "a", "status": "wip"}"#, &[("a", InProgress)], &[]),
        ("a fenced block", "```json\n[\"[x] a\"]\n```", &[("a", Done)], &[]),
        ("an empty list clears the plan", r#"{"steps": [], "findings": ["nothing to do"]}"#, &[], &["nothing to do"]),
        (
            "the table the tool renders",
            "| # | Status | Step |\n|---|---|---|\n| 1 | done | a |\n| 2 | in progress | b \\| c |\n\nprogress: 1/2 done",
            &[("a", Done), ("b | c", InProgress)],
            &[],
        ),
    ];
    for (what, input, steps, findings) in cases {
        let plan = Plan::parse(input).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(steps_of(&plan), *steps, "{what}");
        assert_eq!(plan.findings, *findings, "{what}");
    }
}

#[test]
fn input_with_nothing_usable_is_refused_with_what_would_work() {
    let cases = [
        ("", "found no steps in the plan; give `steps`, a list of"),
        ("   \n  ", "found no steps in the plan"),
        (r#"{"foo": 1}"#, "found no steps in an object with the keys `foo`; put the steps under `steps`"),
        ("42", "a plan cannot be a number"),
        (r#"{"steps": 5}"#, "a plan cannot be a number"),
        (r#"{"steps": [{"title": "a", "status": "someday"}]}"#, "step 1: unknown status `someday`; use one of pending"),
        (r#"{"steps": [{"title": "a"}, {"status": "done"}]}"#, "step 2 has no title; give it a `title`"),
        (r#"{"steps": [true]}"#, "step 1 is a boolean"),
        (r#"{"steps": [], "findings": 3}"#, "`findings` is a number; give a list of strings"),
    ];
    for (input, expected) in cases {
        let err = Plan::parse(input).err().map(|e| e.to_string()).unwrap_or_else(|| panic!("{input:?} parsed"));
        assert!(err.starts_with(expected), "{input:?}: {err}");
    }
}

#[test]
fn the_plan_renders_as_a_table_with_findings_and_progress() -> anyhow::Result<()> {
    let plan = Plan::new()
        .with_step("Read the issue", Done)
        .with_step("Write the fix", InProgress)
        .with_step("Ask for the logs", Blocked)
        .with_step("Add a test", Pending)
        .with_step("Port to Windows", Skipped)
        .with_finding("The bug is in the tokenizer.");
    assert_eq!(
        plan.render(),
        "| # | Status | Step |\n\
         |---|---|---|\n\
         | 1 | done | Read the issue |\n\
         | 2 | in progress | Write the fix |\n\
         | 3 | blocked | Ask for the logs |\n\
         | 4 | pending | Add a test |\n\
         | 5 | skipped | Port to Windows |\n\
         \n\
         Findings:\n\
         - The bug is in the tokenizer.\n\
         \n\
         progress: 1/5 done, 1 in progress, 1 blocked, 1 skipped"
    );
    let progress = plan.progress();
    assert_eq!((progress.total, progress.done, progress.pending), (5, 1, 1));
    assert_eq!(plan.open_steps().map(|(n, _)| n).collect::<Vec<_>>(), [2, 4]);
    assert!(!plan.is_finished());
    // What the model reads back, it can write again.
    assert_eq!(Plan::parse(&plan.render())?, plan);
    assert_eq!(Plan::new().render(), "The plan has no steps.\n\nprogress: 0/0 done");
    Ok(())
}

#[tokio::test]
async fn the_model_reads_the_plan_back_and_a_bad_call_is_an_error_it_can_correct() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("update_plan", json!({"tasks_list": ["a"]})),
        ScriptedTurn::raw_tool_call("update_plan", "1. [x] Find the bug\n2. [ ] Fix it"),
        ScriptedTurn::text("Found it."),
    ]);
    let agent = Agent::new("Keep a plan.").model(model.clone()).tool(PlanTool::new());
    let result = agent.run("Fix the bug.").await?;
    assert_eq!(result.output, "Found it.");

    let requests = model.requests();
    assert!(requests[0].tool_names().contains(&"update_plan"));
    let refused = requests[1].messages.last().cloned();
    let Some(Message::Tool(refused)) = refused else { anyhow::bail!("no tool result: {refused:?}") };
    assert!(refused.is_error);
    assert!(refused.content.text().contains("found no steps in an object with the keys `tasks_list`"), "{refused:?}");
    assert_eq!(
        requests[2].last_text(),
        "| # | Status | Step |\n|---|---|---|\n| 1 | done | Find the bug |\n| 2 | pending | Fix it |\n\nprogress: 1/2 done"
    );
    // The refused call does not count: the plan is the last call that worked.
    let plan = Plan::latest(&result.messages).ok_or_else(|| anyhow::anyhow!("no plan"))?;
    assert_eq!(steps_of(&plan), [("Find the bug", Done), ("Fix it", Pending)]);
    Ok(())
}

#[test]
fn the_latest_plan_is_the_last_call_that_worked_even_when_call_ids_repeat() {
    use loomflow::model::{ToolCall, ToolResult};
    let call = |args: &str| Message::assistant_with_tools("", vec![ToolCall::new("call_1", "update_plan", args)]);
    let ok = || Message::Tool(ToolResult::ok("call_1", "update_plan", "table"));
    let messages = vec![
        Message::user("go"),
        call("1. [ ] first"),
        ok(),
        // Another turn whose call has the same id.
        call("1. [x] first\n2. [ ] second"),
        ok(),
        call("{\"bad\": true}"),
        Message::Tool(ToolResult::error("call_1", "update_plan", "found no steps")),
    ];
    let plan = Plan::latest(&messages);
    assert_eq!(plan.as_ref().map(steps_of), Some(vec![("first", Done), ("second", Pending)]));
    assert_eq!(Plan::latest(&messages[..2]), None);
}

#[tokio::test]
async fn each_plan_update_is_an_event_on_the_spine() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("update_plan", json!({"steps": [{"title": "a", "status": "in_progress"}]})),
        ScriptedTurn::tool_call("update_plan", json!({"steps": [{"title": "a", "status": "done"}], "findings": ["x"]})),
        ScriptedTurn::text("Done."),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("Keep a plan.").model(model).tool(PlanTool::new());
    agent.run("Do a.").on_event(recorder.listener()).await?;

    let kinds = recorder.kinds();
    let first = kinds.iter().position(|k| *k == "plan_updated");
    assert_eq!(kinds.iter().filter(|k| **k == "plan_updated").count(), 2, "{kinds:?}");
    // Inside its tool call, before the result.
    assert!(first.is_some_and(|i| kinds[i - 1] == "tool_started" && kinds[i + 1] == "tool_finished"), "{kinds:?}");
    let plans: Vec<Plan> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::PlanUpdated { plan } => Some(plan),
            _ => None,
        })
        .collect();
    assert_eq!(plans[1], Plan::new().with_step("a", Done).with_finding("x"));
    let event = recorder.events().into_iter().find(|e| matches!(e.kind, EventKind::PlanUpdated { .. }));
    let serialised = serde_json::to_value(event.map(|e| e.kind))?;
    assert_eq!(
        serialised,
        json!({"type": "plan_updated", "plan": {"steps": [{"title": "a", "status": "in_progress"}], "findings": []}})
    );
    Ok(())
}

fn migration_plan(second: &str) -> serde_json::Value {
    json!({"steps": [
        {"title": "Dump the old table", "status": "done"},
        {"title": "Copy the rows", "status": second},
    ], "findings": ["The old table has 10 rows."]})
}

#[tokio::test]
async fn the_plan_lasts_with_the_session_into_another_process() -> anyhow::Result<()> {
    let file = TempFile::new("plan-session");
    let (user, session) = (UserId::new("u")?, SessionId::new("migration")?);
    {
        // The first process.
        let store = Arc::new(SqliteStore::open(file.path())?);
        let model = ScriptedModel::new([
            ScriptedTurn::tool_call("update_plan", migration_plan("in_progress")),
            ScriptedTurn::text("The dump is done; copying next."),
        ]);
        let agent = Agent::new("You migrate databases.").model(model).tool(PlanTool::new()).store(store);
        agent.run("Migrate the users table.").user("u").session("migration").await?;
    }

    // Another process, another store on the same file.
    let store = Arc::new(SqliteStore::open(file.path())?);
    let expected = Plan::from_value(&migration_plan("in_progress"))?;
    assert_eq!(Plan::latest(&store.load(&user, &session, None).await?), Some(expected));

    let model = ScriptedModel::new([
        ScriptedTurn::text("Copying."),
        ScriptedTurn::tool_call("update_plan", migration_plan("done")),
        ScriptedTurn::text("The migration is done."),
    ]);
    let agent = Agent::new("You migrate databases.")
        .model(model.clone())
        .tool(PlanTool::new())
        .store(Arc::clone(&store))
        .run_until(PlanTool::until_done().max_iterations(3));
    let result = agent.run("Go on.").user("u").session("migration").await?;

    let requests = model.requests();
    // The model is shown the plan the first process wrote, in the session's history.
    let shown = requests[0]
        .messages
        .iter()
        .any(|m| matches!(m, Message::Tool(r) if r.content.text().contains("| 2 | in progress | Copy the rows |")));
    assert!(shown, "{:?}", requests[0].messages);
    // And the plan from the first process keeps the loop going until its last step is done.
    assert!(requests[1].last_text().contains("The plan still has open steps: 2. Copy the rows (in progress)."));
    assert_eq!((result.output.as_str(), result.exit), ("The migration is done.", Some(LoopExit::ConditionMet)));
    let plan = Plan::latest(&store.load(&user, &session, None).await?);
    assert!(plan.is_some_and(|p| p.is_finished()));
    Ok(())
}

struct Gate {
    hold: bool,
    entered: Notify,
}

/// Copy the rows (safe to repeat).
#[tool(idempotent)]
async fn copy_rows(gate: State<Gate>) -> String {
    gate.entered.notify_one();
    if gate.hold {
        // The process dies while the rows are copied.
        std::future::pending::<()>().await;
    }
    "copied 10 rows".to_owned()
}

fn crash_agent(store: &Arc<SqliteStore>, model: ScriptedModel, hold: bool) -> (Agent, Arc<Gate>) {
    let gate = Arc::new(Gate { hold, entered: Notify::new() });
    let agent = Agent::new("You migrate databases.")
        .model(model)
        .tool(PlanTool::new())
        .tool(CopyRowsTool)
        .state_arc(Arc::clone(&gate))
        .store(Arc::clone(store))
        .lease(Duration::from_millis(200));
    (agent, gate)
}

#[tokio::test]
async fn a_run_resumed_in_another_process_keeps_its_plan_without_writing_it_again() -> anyhow::Result<()> {
    let file = TempFile::new("plan-crash");
    {
        let store = Arc::new(SqliteStore::open(file.path())?);
        let model = ScriptedModel::new([
            ScriptedTurn::tool_call("update_plan", migration_plan("in_progress")),
            ScriptedTurn::tool_call("copy_rows", json!({})),
        ]);
        let (agent, gate) = crash_agent(&store, model, true);
        let mut run = Box::pin(agent.run("Migrate the users table.").user("u").session("m").into_future());
        tokio::select! {
            r = &mut run => anyhow::bail!("the first run should hang while copying: {r:?}"),
            () = gate.entered.notified() => {}
        }
        // The process dies here.
    }

    let store = Arc::new(SqliteStore::open(file.path())?);
    let model = ScriptedModel::new([ScriptedTurn::text("Copied; the migration is done.")]);
    let (agent, _gate) = crash_agent(&store, model.clone(), false);
    let recorder = Recorder::new();
    let result = common::when_free(|| {
        agent
            .resume_with(AgentInput::resume_latest())
            .user("u")
            .session("m")
            .on_event(recorder.listener())
            .into_future()
    })
    .await?;
    assert_eq!(result.output, "Copied; the migration is done.");
    // The plan call was replayed from the journal, not made again.
    assert!(!recorder.kinds().contains(&"plan_updated"), "{:?}", recorder.kinds());
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].messages.iter().any(|m| m.text().contains("| 2 | in progress | Copy the rows |")));
    assert_eq!(Plan::latest(&result.messages), Some(Plan::from_value(&migration_plan("in_progress"))?));
    Ok(())
}

#[tokio::test]
async fn until_done_re_prompts_with_the_open_steps_until_the_plan_is_finished() -> anyhow::Result<()> {
    let plan = |b: &str| json!({"steps": [{"title": "a", "status": "done"}, {"title": "b", "status": b}]});
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("update_plan", plan("in_progress")),
        ScriptedTurn::text("Halfway."),
        ScriptedTurn::tool_call("update_plan", plan("done")),
        ScriptedTurn::text("All done."),
    ]);
    let agent = Agent::new("Plan, then work.")
        .model(model.clone())
        .tool(PlanTool::new())
        .run_until(PlanTool::until_done().max_iterations(3));
    let result = agent.run("Do a and b.").await?;
    assert_eq!((result.output.as_str(), result.exit), ("All done.", Some(LoopExit::ConditionMet)));
    assert_eq!(model.calls(), 4);
    assert_eq!(
        model.requests()[2].last_text(),
        "That does not reach the goal yet. The plan still has open steps: 2. b (in progress). Carry them out and \
         update the plan with `update_plan` (mark each step done, blocked or skipped) before you answer. Keep going."
    );

    // No plan, nothing to wait for.
    let model = ScriptedModel::new([ScriptedTurn::text("Hello.")]);
    let agent = Agent::new("x").model(model.clone()).tool(PlanTool::new()).run_until(PlanTool::until_done());
    let result = agent.run("Hi.").await?;
    assert_eq!((result.exit, model.calls()), (Some(LoopExit::ConditionMet), 1));

    // Blocked and skipped steps do not keep the loop going.
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("update_plan", json!(["[x] a", "b (blocked)", "c (skipped)"])),
        ScriptedTurn::text("b needs a password."),
    ]);
    let agent = Agent::new("x").model(model.clone()).tool(PlanTool::new()).run_until(PlanTool::until_done());
    let result = agent.run("Do a, b, c.").await?;
    assert_eq!((result.exit, model.calls()), (Some(LoopExit::ConditionMet), 2));
    Ok(())
}

#[tokio::test]
async fn until_done_stops_at_its_bound() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("update_plan", json!(["[~] a"])),
        ScriptedTurn::text("Working."),
        ScriptedTurn::text("Working."),
        ScriptedTurn::text("Working."),
        ScriptedTurn::text("never asked"),
    ]);
    let agent =
        Agent::new("x").model(model.clone()).tool(PlanTool::new()).run_until(PlanTool::until_done().max_iterations(3));
    let result = agent.run("Do a.").await?;
    assert_eq!((result.output.as_str(), result.exit), ("Working.", Some(LoopExit::MaxIterations)));
    assert_eq!(model.calls(), 4);
    let reprompts = result.messages.iter().filter(|m| m.text().contains("open steps: 1. a (in progress)")).count();
    assert_eq!(reprompts, 2);
    Ok(())
}

#[tokio::test]
async fn a_plan_that_moves_is_progress_even_when_the_answer_does_not() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("update_plan", json!(["[~] a", "[ ] b"])),
        ScriptedTurn::text("Working."),
        ScriptedTurn::tool_call("update_plan", json!(["[x] a", "[~] b"])),
        ScriptedTurn::text("Working."),
        // Neither the answer nor the plan moves: no progress.
        ScriptedTurn::text("Working."),
        ScriptedTurn::text("never asked"),
    ]);
    let agent = Agent::new("x")
        .model(model.clone())
        .tool(PlanTool::new())
        .run_until(PlanTool::until_done().max_iterations(5).max_no_progress(1));
    let result = agent.run("Do a and b.").await?;
    assert_eq!(result.exit, Some(LoopExit::NoProgress));
    assert_eq!(model.calls(), 5);
    Ok(())
}
