//! ReWOO: plan every tool call up front, run them by level, then solve from the evidence.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::control::{WorkPlan, WorkStep};
use super::role::{Role, refuse, role_methods};
use super::{AgentRun, Architecture, react};
use crate::error::{ConfigError, Error};
use crate::model::ToolCall;

const PLANNER: &str = "You plan the tool calls that gather what a task needs, all at once, before any runs. \
Give each step an id (E1, E2, ...), the tool, and its arguments. A step can use the result of an earlier step \
by writing its id in braces in an argument, e.g. \"{{E1}}\". Steps that do not depend on each other run at \
the same time.";
const SOLVER: &str = "Answer the task using the evidence gathered by the plan's steps. Reply with the answer.";

/// ReWOO (reasoning without observation): a planner writes every tool call up front (a typed
/// [`WorkPlan`]), arguments referring to earlier results as `{{E1}}` (or `#E1`, `{E1}`); the
/// steps run by topological level — each level's steps at once — with the results put in
/// place of the references; a step whose dependency failed is skipped; a solver writes the
/// answer from the evidence. Two model calls, however many tool calls.
///
/// The plan is checked before anything runs: known tools, unique ids, references to other
/// steps only, no cycles, at most `max_steps`; a plan that fails the check goes back to the
/// planner with what is wrong. A plan still malformed after that retry is reported (event
/// `rewoo.fallback`) and the agent answers by ReAct instead. The tool calls are journaled like
/// any others: a resumed run does not repeat the steps that finished.
///
/// Use it when the tool calls a task needs can be foreseen: lookups, fan-out searches,
/// calculations over fetched data. It spends far fewer tokens than ReAct, which sends the
/// whole conversation again after each tool result.
#[derive(Clone, Debug)]
pub struct ReWoo {
    max_steps: usize,
    parallel_levels: bool,
    planner: Role,
    solver: Role,
}

impl Default for ReWoo {
    fn default() -> Self {
        Self::new()
    }
}

impl ReWoo {
    /// At most 8 steps, each level's steps at once.
    pub fn new() -> Self {
        Self { max_steps: 8, parallel_levels: true, planner: Role::new(PLANNER), solver: Role::new(SOLVER) }
    }

    /// The most steps a plan may have.
    #[must_use]
    pub fn max_steps(mut self, steps: usize) -> Self {
        self.max_steps = steps;
        self
    }

    /// Whether each level's steps run at once (the default) or one after another.
    #[must_use]
    pub fn parallel_levels(mut self, parallel: bool) -> Self {
        self.parallel_levels = parallel;
        self
    }
}

role_methods!(ReWoo {
    planner(planner_prompt, planner_model): "the planner",
    solver(solver_prompt, solver_model): "the solver",
});

/// The indices of the steps (by `ids`) that `value` refers to.
fn references(value: &Value, ids: &[&str], out: &mut Vec<usize>) {
    match value {
        Value::String(s) => {
            for_each_reference(s, |candidate| {
                let found = ids.iter().position(|id| *id == candidate);
                if let Some(i) = found.filter(|i| !out.contains(i)) {
                    out.push(i);
                }
                found.is_some()
            });
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, ids, out)),
        Value::Object(map) => map.values().for_each(|v| references(v, ids, out)),
        _ => {}
    }
}

/// The indices of the steps that a step's arguments refer to.
fn step_references(args: &serde_json::Map<String, Value>, ids: &[&str]) -> Vec<usize> {
    let mut out = Vec::new();
    args.values().for_each(|v| references(v, ids, &mut out));
    out
}

/// Calls `f` with the id of each reference in `text` — `{{id}}`, `{id}`, or `#id` (letters,
/// digits and `_`) — in one pass; `f` says whether the id is a step's.
fn for_each_reference(text: &str, mut f: impl FnMut(&str) -> bool) {
    scan_references(text, |_, id| f(id));
}

/// The one scan of `text` for references: `f(span, id)` for each candidate, `span` being the
/// bytes the reference covers; it returns whether `id` names a step.
fn scan_references(text: &str, mut f: impl FnMut(std::ops::Range<usize>, &str) -> bool) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let (open, close) = match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => (i + 2, "}}"),
            b'{' => (i + 1, "}"),
            b'#' => (i + 1, ""),
            _ => {
                i += 1;
                continue;
            }
        };
        let rest = &text[open..];
        let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let id = &rest[..len];
        let after = &rest[len..];
        if !id.is_empty() && after.starts_with(close) {
            let end = open + len + close.len();
            if f(i..end, id) {
                i = end;
                continue;
            }
        }
        i += 1;
    }
}

/// `value` with every reference to the steps in `evidence` (id, result) replaced by the
/// result. A string that is only a reference becomes the result itself — as JSON when the
/// result is a JSON number, boolean, array or object (a tool taking an integer gets one), as
/// text otherwise.
fn substitute(value: &Value, evidence: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) if s.contains(['{', '#']) => {
            if let Some(result) = whole_reference(s, evidence) {
                return as_json(result).unwrap_or_else(|| Value::String(result.to_owned()));
            }
            Value::String(fill(s, evidence))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, evidence)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), substitute(v, evidence))).collect()),
        other => other.clone(),
    }
}

/// The result `text` stands for when it is nothing but one reference.
fn whole_reference<'e>(text: &str, evidence: &[(&str, &'e str)]) -> Option<&'e str> {
    let t = text.trim();
    let id = t
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .or_else(|| t.strip_prefix('{').and_then(|r| r.strip_suffix('}')))
        .or_else(|| t.strip_prefix('#'))?;
    evidence.iter().find(|(e, _)| *e == id).map(|(_, r)| *r)
}

/// A result that is a JSON number, boolean, array or object, as that value.
fn as_json(result: &str) -> Option<Value> {
    let first = result.trim_start().chars().next()?;
    if !(first.is_ascii_digit() || matches!(first, '-' | '[' | '{' | 't' | 'f')) {
        return None;
    }
    serde_json::from_str::<Value>(result).ok().filter(|v| !v.is_string() && !v.is_null())
}

/// `text` with its references (`{{E1}}`, `{E1}`, `#E1`) to the steps of `evidence` replaced, in
/// one pass.
fn fill(text: &str, evidence: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    scan_references(text, |span, id| {
        let Some((_, result)) = evidence.iter().find(|(e, _)| *e == id) else { return false };
        out.push_str(&text[copied..span.start]);
        out.push_str(result);
        copied = span.end;
        true
    });
    out.push_str(&text[copied..]);
    out
}

/// The order a plan runs in: its steps by level (a step's level is one more than its deepest
/// dependency's), and each step's dependencies.
#[derive(Debug, Clone, PartialEq)]
struct Order {
    levels: Vec<Vec<usize>>,
    deps: Vec<Vec<usize>>,
}

/// The order of the plan's steps. The error is what is wrong with the plan, for the planner.
fn levels(plan: &WorkPlan, tools: &[&str], max_steps: usize) -> Result<Order, String> {
    let steps = &plan.steps;
    if steps.is_empty() {
        return Err("`steps` is empty; give at least one step".to_owned());
    }
    if steps.len() > max_steps {
        return Err(format!("the plan has {} steps; give at most {max_steps}", steps.len()));
    }
    let ids: Vec<&str> = steps.iter().map(|s| s.id.trim()).collect();
    for (i, step) in steps.iter().enumerate() {
        let id = ids[i];
        if id.is_empty() {
            return Err(format!("step {} has no `id`; name the steps E1, E2, ...", i + 1));
        }
        if ids[..i].contains(&id) {
            return Err(format!("two steps have the id `{id}`; give each step its own"));
        }
        if !tools.contains(&step.tool.as_str()) {
            let hint = loomflow_graph::suggest::did_you_mean(&step.tool, tools.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "step `{id}` calls `{}`, which is not a tool here{hint}; the tools are: {}",
                step.tool,
                tools.join(", ")
            ));
        }
    }
    let deps: Vec<Vec<usize>> = steps.iter().map(|s| step_references(&s.args, &ids)).collect();
    for (i, d) in deps.iter().enumerate() {
        if d.contains(&i) {
            return Err(format!("step `{}` refers to its own result", ids[i]));
        }
    }
    let mut level: Vec<Option<usize>> = vec![None; steps.len()];
    // Each pass places the steps whose dependencies are all placed; a pass that places none
    // has found a cycle.
    for _ in 0..steps.len() {
        let mut placed = false;
        for i in 0..steps.len() {
            if level[i].is_some() {
                continue;
            }
            let known: Option<Vec<usize>> = deps[i].iter().map(|&d| level[d]).collect();
            if let Some(known) = known {
                level[i] = Some(known.into_iter().max().map_or(0, |m| m + 1));
                placed = true;
            }
        }
        if !placed {
            break;
        }
    }
    if let Some(i) = level.iter().position(Option::is_none) {
        return Err(format!("step `{}` is part of a cycle of references; a step can only use earlier results", ids[i]));
    }
    let depth = level.iter().flatten().max().map_or(0, |m| m + 1);
    let mut out = vec![Vec::new(); depth];
    for (i, l) in level.iter().enumerate() {
        if let Some(l) = l {
            out[*l].push(i);
        }
    }
    Ok(Order { levels: out, deps })
}

/// The plan and its evidence, for the solver.
fn evidence_text(steps: &[WorkStep], outcome: &HashMap<String, Result<String, String>>) -> String {
    let mut out = String::new();
    for step in steps {
        let args = serde_json::to_string(&step.args).unwrap_or_default();
        let _ = write!(out, "{} = {}({args}): ", step.id.trim(), step.tool);
        match outcome.get(step.id.trim()) {
            Some(Ok(result)) => out.push_str(result),
            Some(Err(why)) => {
                let _ = write!(out, "FAILED: {why}");
            }
            None => out.push_str("not run"),
        }
        out.push('\n');
    }
    out
}

#[async_trait::async_trait]
impl Architecture for ReWoo {
    fn name(&self) -> &str {
        "rewoo"
    }

    fn check(&self) -> Result<(), ConfigError> {
        refuse(self.max_steps == 0, "max_steps", || "a ReWOO plan needs room for at least one step")?;
        self.planner.check("planner")?;
        self.solver.check("solver")
    }

    async fn run(&self, run: &mut AgentRun<'_>) -> Result<String, Error> {
        let task = run.input_text().into_owned();
        let tools: Vec<&str> = run.tools().definitions().iter().map(|t| t.name()).collect();
        let question = self.planner.messages(format!(
            "Task:\n{task}\n\nTools available:\n{}\nPlan at most {} steps.",
            run.tool_list(),
            self.max_steps
        ));
        let max_steps = self.max_steps;
        // The order the check finds is the one the plan runs in.
        let checked = std::sync::Mutex::new(None);
        let check = |plan: &WorkPlan| {
            let order = levels(plan, &tools, max_steps)?;
            *checked.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(order);
            Ok(())
        };
        let plan = match run.ask_checked::<WorkPlan>("planner", self.planner.model(), question, check).await? {
            Ok(plan) => plan,
            Err(e) => {
                run.emit("rewoo.fallback", || serde_json::json!({"error": e.to_string()}));
                return react(run, None).await;
            }
        };
        drop(tools);
        let order = checked.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(Order { levels: order, deps }) = order else {
            return Err(crate::error::RunError::Architecture {
                architecture: "rewoo".to_owned(),
                reason: "the plan passed its check without an order".to_owned(),
            }
            .into());
        };
        // The plan's tool calls are keyed in the journal by this number and the step ids.
        let turn = run.reserve(1);
        let mut done: HashMap<String, String> = HashMap::new();
        let mut outcome: HashMap<String, Result<String, String>> = HashMap::new();
        for (depth, level) in order.iter().enumerate() {
            let mut calls = Vec::new();
            let mut skipped = Vec::new();
            for &i in level {
                let step = &plan.steps[i];
                let id = step.id.trim().to_owned();
                let failed = deps[i].iter().map(|&d| plan.steps[d].id.trim()).find(|d| !done.contains_key(*d));
                if let Some(failed) = failed {
                    outcome.insert(id.clone(), Err(format!("skipped: step {failed} did not succeed")));
                    skipped.push(id);
                    continue;
                }
                let args = if deps[i].is_empty() {
                    serde_json::to_string(&step.args).unwrap_or_default()
                } else {
                    let evidence: Vec<(&str, &str)> = deps[i]
                        .iter()
                        .filter_map(|&d| {
                            let id = plan.steps[d].id.trim();
                            done.get(id).map(|r| (id, r.as_str()))
                        })
                        .collect();
                    let filled: serde_json::Map<String, Value> =
                        step.args.iter().map(|(k, v)| (k.clone(), substitute(v, &evidence))).collect();
                    serde_json::to_string(&filled).unwrap_or_default()
                };
                calls.push(ToolCall::new(id, step.tool.clone(), args));
            }
            let results = if self.parallel_levels {
                run.call_tools(turn, &calls).await?
            } else {
                let mut results = Vec::with_capacity(calls.len());
                for call in &calls {
                    results.extend(run.call_tools(turn, std::slice::from_ref(call)).await?);
                }
                results
            };
            for (call, result) in calls.iter().zip(results) {
                let text = result.content.text().into_owned();
                if result.is_error {
                    outcome.insert(call.id.clone(), Err(text));
                } else {
                    done.insert(call.id.clone(), text.clone());
                    outcome.insert(call.id.clone(), Ok(text));
                }
            }
            let ran: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
            run.emit("rewoo.level", || serde_json::json!({"level": depth + 1, "ran": ran, "skipped": skipped}));
        }
        run.checkpoint(turn).await?;
        let question =
            self.solver.messages(format!("Task:\n{task}\n\nEvidence:\n{}", evidence_text(&plan.steps, &outcome)));
        run.answer("solver", self.solver.model(), question).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(steps: Value) -> WorkPlan {
        serde_json::from_value(serde_json::json!({ "steps": steps })).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn references_in_every_form_are_found_and_replaced() {
        let ids = ["E1", "E10"];
        for text in ["{{E1}}", "{E1}", "see #E1.", "#E1"] {
            let mut found = Vec::new();
            references(&Value::String(text.to_owned()), &ids, &mut found);
            assert_eq!(found, [0], "{text}");
        }
        let mut found = Vec::new();
        references(&Value::String("#E10 and #E1x {E1 }".to_owned()), &ids, &mut found);
        assert_eq!(found, [1]);
        let evidence = [("E1", "Paris"), ("E10", "ten"), ("E2", "42"), ("E3", r#"{"a": 1}"#)];
        let args = serde_json::json!({"q": "weather in {{E1}}", "n": ["#E10", "{E1}!", "#E1x"], "k": 3, "x": "{{E2}}", "y": "#E3", "z": "E2 is {E2}"});
        assert_eq!(
            substitute(&args, &evidence),
            serde_json::json!({"q": "weather in Paris", "n": ["ten", "Paris!", "#E1x"], "k": 3, "x": 42, "y": {"a": 1}, "z": "E2 is 42"})
        );
    }

    #[test]
    fn levels_follow_the_references_and_bad_plans_say_why() {
        let tools = ["search", "calc"];
        let p = plan(serde_json::json!([
            {"id": "E1", "tool": "search", "args": {"q": "a"}},
            {"id": "E2", "tool": "search", "args": {"q": "b"}},
            {"id": "E3", "tool": "calc", "args": {"x": "{{E1}} + {{E2}}"}},
        ]));
        assert_eq!(levels(&p, &tools, 8).map(|o| o.levels), Ok(vec![vec![0, 1], vec![2]]));
        let cases = [
            (serde_json::json!([]), "empty"),
            (serde_json::json!([{"id": "E1", "tool": "serch", "args": {}}]), "did you mean `search`"),
            (serde_json::json!([{"id": "E1", "tool": "calc"}, {"id": "E1", "tool": "calc"}]), "two steps"),
            (serde_json::json!([{"id": "E1", "tool": "calc", "args": {"x": "{{E1}}"}}]), "its own"),
            (
                serde_json::json!([{"id": "E1", "tool": "calc", "args": {"x": "{{E2}}"}}, {"id": "E2", "tool": "calc", "args": {"x": "{{E1}}"}}]),
                "cycle",
            ),
        ];
        for (steps, want) in cases {
            let got = levels(&plan(steps), &tools, 8).err().unwrap_or_default();
            assert!(got.contains(want), "{got}");
        }
        let long = plan(serde_json::json!([{"id": "E1", "tool": "calc"}, {"id": "E2", "tool": "calc"}]));
        assert!(levels(&long, &tools, 1).is_err_and(|e| e.contains("at most 1")));
    }
}
