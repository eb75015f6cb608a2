//! Reading a plan the way models write one: JSON in several shapes, JSON inside a string,
//! numbered or bulleted text with check boxes, or the plan's own Markdown table.

use serde_json::{Map, Value};

use super::{Plan, PlanError, Step, StepStatus};

/// Keys under which an object may hold its steps.
const STEPS_KEYS: &[&str] = &["steps", "plan", "todos", "todo", "items", "tasks", "checklist"];
/// Keys under which an object may hold its findings.
const FINDINGS_KEYS: &[&str] = &["findings", "notes", "learned", "observations"];
/// Keys that name a step.
const TITLE_KEYS: &[&str] = &["title", "step", "content", "description", "task", "text", "name"];
/// Keys that give a step's status.
const STATUS_KEYS: &[&str] = &["status", "state"];
/// Keys of a step that say it is done, as a boolean.
const DONE_KEYS: &[&str] = &["done", "completed", "checked"];
/// Keys of a step that hold what was found doing it.
const STEP_FINDING_KEYS: &[&str] = &["finding", "findings", "note", "notes", "result"];

/// How deep JSON inside strings is unwrapped (a string holding a string holding a plan).
const MAX_DEPTH: u8 = 3;

/// Parses a plan from text: JSON, or lines.
pub(super) fn parse(input: &str) -> Result<Plan, PlanError> {
    parse_at(input, 0)
}

fn parse_at(input: &str, depth: u8) -> Result<Plan, PlanError> {
    let text = strip_fence(input.trim());
    if text.is_empty() {
        return Err(PlanError::Empty);
    }
    if depth < MAX_DEPTH
        && let Ok(value) = serde_json::from_str::<Value>(text)
    {
        return from_value_at(&value, depth + 1);
    }
    parse_lines(text)
}

/// Parses a plan from a JSON value.
pub(super) fn from_value(value: &Value) -> Result<Plan, PlanError> {
    from_value_at(value, 0)
}

fn from_value_at(value: &Value, depth: u8) -> Result<Plan, PlanError> {
    match value {
        Value::Object(map) => from_object(map, depth),
        Value::Array(items) => {
            let mut plan = Plan::default();
            steps_from_items(items, &mut plan)?;
            Ok(plan)
        }
        Value::String(text) => parse_at(text, depth),
        Value::Null => Err(PlanError::Empty),
        other => Err(PlanError::NotAPlan { found: json_kind(other) }),
    }
}

fn from_object(map: &Map<String, Value>, depth: u8) -> Result<Plan, PlanError> {
    let mut plan = match find(map, STEPS_KEYS) {
        Some(Value::Array(items)) => {
            let mut plan = Plan::default();
            steps_from_items(items, &mut plan)?;
            plan
        }
        Some(Value::Null) => Plan::default(),
        Some(nested @ (Value::String(_) | Value::Object(_))) if depth < MAX_DEPTH => from_value_at(nested, depth + 1)?,
        Some(other) => return Err(PlanError::NotAPlan { found: json_kind(other) }),
        // One step given alone.
        None if find(map, TITLE_KEYS).is_some() => {
            let mut plan = Plan::default();
            let step = step_from_object(map, 1, &mut plan.findings)?;
            plan.steps.extend(step);
            plan
        }
        None if find(map, FINDINGS_KEYS).is_none() => {
            return Err(PlanError::NoSteps { keys: map.keys().cloned().collect() });
        }
        None => Plan::default(),
    };
    if let Some(findings) = find(map, FINDINGS_KEYS) {
        findings_from(findings, &mut plan.findings)?;
    }
    Ok(plan)
}

/// The value of the first of `keys` the object has (compared without case).
fn find<'m>(map: &'m Map<String, Value>, keys: &[&str]) -> Option<&'m Value> {
    keys.iter().find_map(|k| map.get(*k)).or_else(|| {
        map.iter().find_map(|(name, value)| keys.iter().any(|k| name.eq_ignore_ascii_case(k)).then_some(value))
    })
}

fn steps_from_items(items: &[Value], plan: &mut Plan) -> Result<(), PlanError> {
    for item in items {
        let number = plan.steps.len() + 1;
        let step = match item {
            Value::String(line) => step_from_line(line).map(|(_, step)| step),
            Value::Object(map) => step_from_object(map, number, &mut plan.findings)?,
            // `["title", "status"]`.
            Value::Array(pair) => match pair.as_slice() {
                [Value::String(title), Value::String(status)] => Some(Step::new(
                    clean_title(title).ok_or(PlanError::NoTitle { number })?,
                    status_of(status, number)?,
                )),
                [Value::String(title)] => step_from_line(title).map(|(_, step)| step),
                _ => return Err(PlanError::BadStep { number, found: "a list" }),
            },
            Value::Null => None,
            other => return Err(PlanError::BadStep { number, found: json_kind(other) }),
        };
        plan.steps.extend(step);
    }
    Ok(())
}

fn step_from_object(
    map: &Map<String, Value>,
    number: usize,
    findings: &mut Vec<String>,
) -> Result<Option<Step>, PlanError> {
    // The first title key that holds text (`{"step": 2, "description": ".."}`).
    let text = TITLE_KEYS.iter().find_map(|k| map.get(*k).and_then(Value::as_str)).or_else(|| {
        map.iter().find_map(|(name, value)| {
            TITLE_KEYS.iter().any(|k| name.eq_ignore_ascii_case(k)).then(|| value.as_str()).flatten()
        })
    });
    let title = match (text, find(map, TITLE_KEYS)) {
        (Some(title), _) => title,
        (None, Some(Value::Null) | None) => return Err(PlanError::NoTitle { number }),
        (None, Some(other)) => return Err(PlanError::BadStep { number, found: json_kind(other) }),
    };
    let status = match find(map, STATUS_KEYS) {
        Some(Value::String(status)) => Some(status_of(status, number)?),
        Some(Value::Bool(true)) => Some(StepStatus::Done),
        Some(Value::Bool(false) | Value::Null) | None => None,
        Some(other) => {
            return Err(PlanError::BadStatus { number, status: other.to_string() });
        }
    };
    let status = status.or_else(|| match find(map, DONE_KEYS) {
        Some(Value::Bool(true)) => Some(StepStatus::Done),
        _ => None,
    });
    // Without a status of its own, the title may carry one (`[x] done thing`).
    let step = match status {
        Some(status) => clean_title(title).map(|title| Step::new(title, status)),
        None => step_from_line(title).map(|(_, step)| step),
    };
    let Some(step) = step else { return Err(PlanError::NoTitle { number }) };
    if let Some(Value::String(found)) = find(map, STEP_FINDING_KEYS) {
        let found = found.trim();
        if !found.is_empty() {
            findings.push(format!("{}: {found}", step.title));
        }
    }
    Ok(Some(step))
}

fn status_of(word: &str, number: usize) -> Result<StepStatus, PlanError> {
    StepStatus::from_word(word).ok_or_else(|| PlanError::BadStatus { number, status: word.trim().to_owned() })
}

fn findings_from(value: &Value, findings: &mut Vec<String>) -> Result<(), PlanError> {
    match value {
        Value::Null => {}
        Value::String(text) => {
            for line in text.lines() {
                let (_, rest) = strip_bullet(line.trim());
                let rest = rest.trim();
                if !rest.is_empty() {
                    findings.push(rest.to_owned());
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(text) if !text.trim().is_empty() => findings.push(text.trim().to_owned()),
                    Value::String(_) | Value::Null => {}
                    other => findings.push(other.to_string()),
                }
            }
        }
        other => return Err(PlanError::BadFindings { found: json_kind(other) }),
    }
    Ok(())
}

/// What a JSON value is, in words.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The text inside a Markdown code fence, or the text itself.
fn strip_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else { return text };
    let body = rest.split_once('\n').map_or("", |(_, body)| body);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

/// Where a line of text goes.
enum Line<'a> {
    /// A step; `marked` when the line had a list marker or a check box.
    Step { step: Step, marked: bool },
    /// A finding.
    Finding(&'a str),
}

/// Parses numbered or bulleted lines, check boxes, statuses in words, a `Findings:` section,
/// and rows of the plan's own Markdown table. When some lines are list items, the others are
/// taken for prose around the list and left out.
fn parse_lines(text: &str) -> Result<Plan, PlanError> {
    let mut lines = Vec::new();
    let mut in_findings = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('|') {
            if let Some(step) = table_row(line) {
                lines.push(Line::Step { step, marked: true });
            }
            continue;
        }
        let heading = line.starts_with('#');
        let (bulleted, rest) = strip_bullet(line.trim_start_matches('#').trim_start());
        if let Some(after) = section(rest, FINDINGS_KEYS) {
            in_findings = true;
            if !after.is_empty() {
                lines.push(Line::Finding(after));
            }
            continue;
        }
        let title = section(rest, &["plan", "steps", "todo", "todos", "to do", "tasks", "checklist"]);
        if !bulleted && title.is_some_and(str::is_empty) {
            in_findings = false;
            continue;
        }
        if heading || rest.to_ascii_lowercase().starts_with("progress:") {
            continue;
        }
        if in_findings {
            lines.push(Line::Finding(rest));
            continue;
        }
        // A line of prose that introduces a list ("Here is the plan:").
        if !bulleted && rest.ends_with(':') {
            continue;
        }
        if let Some((boxed, step)) = step_from_line(rest) {
            lines.push(Line::Step { step, marked: bulleted || boxed });
        }
    }
    let any_marked = lines.iter().any(|l| matches!(l, Line::Step { marked: true, .. }));
    let mut plan = Plan::default();
    for line in lines {
        match line {
            Line::Step { step, marked } if marked || !any_marked => plan.steps.push(step),
            Line::Step { .. } => {}
            Line::Finding(text) => plan.findings.push(text.to_owned()),
        }
    }
    if plan.steps.is_empty() {
        return Err(PlanError::Empty);
    }
    Ok(plan)
}

/// `Findings:` (any of `names`, any case, as a heading or with a colon): the text after it.
fn section<'a>(line: &'a str, names: &[&str]) -> Option<&'a str> {
    let line = line.trim_matches(|c| c == '*' || c == '_').trim();
    names.iter().find_map(|name| {
        let head = line.get(..name.len())?;
        if !head.eq_ignore_ascii_case(name) {
            return None;
        }
        let rest = line[name.len()..].trim_start_matches(['*', '_']);
        if rest.is_empty() {
            return Some("");
        }
        rest.strip_prefix(':').map(|after| after.trim_start_matches(['*', '_']).trim())
    })
}

/// The line without a list marker (`1.`, `2)`, `Step 3:`, `-`, `*`, `+`, `•`), and whether it
/// had one.
fn strip_bullet(line: &str) -> (bool, &str) {
    for bullet in ["- ", "* ", "+ ", "• ", "– ", "— "] {
        if let Some(rest) = line.strip_prefix(bullet) {
            return (true, rest.trim_start());
        }
    }
    let lower = line.get(..5).map(str::to_ascii_lowercase);
    let numbered = if lower.as_deref() == Some("step ") { line[5..].trim_start() } else { line };
    let digits = numbered.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits <= 4 {
        let rest = &numbered[digits..];
        if let Some(rest) = rest.strip_prefix(['.', ')', ':'])
            && (rest.is_empty() || rest.starts_with(char::is_whitespace))
        {
            return (true, rest.trim_start());
        }
        if numbered.len() != line.len() && rest.trim().is_empty() {
            return (true, "");
        }
    }
    (false, line)
}

/// A step from one line (after its list marker): a check box or status marker in front, a
/// status in brackets or after a dash at the end, a struck-through title. Also whether the
/// line had a check box. `None` when no title is left.
fn step_from_line(line: &str) -> Option<(bool, Step)> {
    let (_, line) = strip_bullet(line.trim());
    let mut status = None;
    let mut boxed = false;
    let mut rest = line;
    if let Some((mark, after)) = leading_box(rest) {
        status = Some(mark);
        boxed = true;
        rest = after;
    } else if let Some((mark, after)) = leading_symbol(rest) {
        status = Some(mark);
        boxed = true;
        rest = after;
    } else if let Some((word, after)) = rest.split_once(':') {
        // `DONE: write the tests`.
        if let Some(mark) = StepStatus::from_word(word).filter(|_| word.len() <= 16) {
            status = Some(mark);
            rest = after;
        }
    }
    if let Some((mark, before)) = trailing_status(rest) {
        status = status.or(Some(mark));
        rest = before;
    }
    let mut title = rest.trim();
    if let Some(inner) = title.strip_prefix("~~").and_then(|t| t.strip_suffix("~~")) {
        status = status.or(Some(StepStatus::Done));
        title = inner;
    }
    let title = clean_title(title)?;
    Some((boxed, Step::new(title, status.unwrap_or(StepStatus::Pending))))
}

/// `[x] rest`, `[ ] rest`, `[~] rest`, `[done] rest`: the status and the rest.
fn leading_box(line: &str) -> Option<(StepStatus, &str)> {
    let inner_and_rest = line.strip_prefix('[')?;
    let (inner, rest) = inner_and_rest.split_once(']')?;
    if inner.chars().count() > 16 {
        return None;
    }
    let status = match inner.trim() {
        "" => StepStatus::Pending,
        "x" | "X" | "*" | "✓" | "✔" | "✅" => StepStatus::Done,
        "~" | "-" | "/" | ">" | "." | "…" | "o" => StepStatus::InProgress,
        "!" => StepStatus::Blocked,
        word => StepStatus::from_word(word)?,
    };
    Some((status, rest.trim_start()))
}

/// A status symbol in front (`✅ rest`, `⬜ rest`): the status and the rest.
fn leading_symbol(line: &str) -> Option<(StepStatus, &str)> {
    const SYMBOLS: &[(&str, StepStatus)] = &[
        ("✅", StepStatus::Done),
        ("☑", StepStatus::Done),
        ("✔", StepStatus::Done),
        ("✓", StepStatus::Done),
        ("⬜", StepStatus::Pending),
        ("☐", StepStatus::Pending),
        ("🔄", StepStatus::InProgress),
        ("⏳", StepStatus::InProgress),
        ("🚧", StepStatus::InProgress),
        ("❌", StepStatus::Blocked),
        ("🚫", StepStatus::Blocked),
        ("⛔", StepStatus::Blocked),
    ];
    SYMBOLS.iter().find_map(|(symbol, status)| {
        let rest = line.strip_prefix(symbol)?;
        // A variation selector may follow the symbol.
        Some((*status, rest.trim_start_matches('\u{fe0f}').trim_start()))
    })
}

/// A status at the end: `(blocked)`, `[done]`, `— in progress`, ` - done`, `✅`: the status and
/// the text before it.
fn trailing_status(line: &str) -> Option<(StepStatus, &str)> {
    let line = line.trim_end();
    for (open, close) in [('(', ')'), ('[', ']')] {
        if let Some(body) = line.strip_suffix(close)
            && let Some(at) = body.rfind(open)
            && let Some(status) = StepStatus::from_word(&body[at + open.len_utf8()..])
        {
            return Some((status, &line[..at]));
        }
    }
    for dash in [" — ", " – ", " - ", " -- "] {
        if let Some(at) = line.rfind(dash)
            && let Some(status) = StepStatus::from_word(&line[at + dash.len()..])
        {
            return Some((status, &line[..at]));
        }
    }
    for (symbol, status) in [("✅", StepStatus::Done), ("✓", StepStatus::Done), ("✔", StepStatus::Done)] {
        if let Some(before) = line.trim_end_matches('\u{fe0f}').strip_suffix(symbol) {
            return Some((status, before));
        }
    }
    None
}

/// One row of a Markdown table (`| 2 | in progress | Write the parser |`): the status from the
/// cell that names one, the title from the first other cell that is not a number. The header
/// and the separator row give `None`.
fn table_row(line: &str) -> Option<Step> {
    // `\|` inside a cell is a bar, not a border.
    let line = line.replace("\\|", "\u{0}");
    let cells: Vec<String> = line.trim().trim_matches('|').split('|').map(|c| c.trim().replace('\u{0}', "|")).collect();
    if cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' '))) {
        return None;
    }
    if cells.iter().any(|c| c.eq_ignore_ascii_case("status")) {
        return None;
    }
    let status_cell = cells
        .iter()
        .position(|c| StepStatus::from_word(c).is_some() || leading_box(c).is_some_and(|(_, rest)| rest.is_empty()));
    let status =
        status_cell.and_then(|i| StepStatus::from_word(&cells[i]).or_else(|| leading_box(&cells[i]).map(|(s, _)| s)));
    let title = cells.iter().enumerate().find_map(|(i, c)| {
        let numeric = c.trim_end_matches('.').chars().all(|ch| ch.is_ascii_digit() || ch == '#');
        (Some(i) != status_cell && !numeric && !c.is_empty()).then_some(c.as_str())
    })?;
    match status {
        Some(status) => clean_title(title).map(|t| Step::new(t, status)),
        None => step_from_line(title).map(|(_, step)| step),
    }
}

/// A title as the plan keeps it: one line, trimmed, without Markdown emphasis around it; `None`
/// when nothing is left.
fn clean_title(title: &str) -> Option<String> {
    let title = title.trim().trim_end_matches([':', ';', ',']).trim();
    let title = match title.strip_prefix("**").and_then(|t| t.strip_suffix("**")) {
        Some(inner) => inner.trim(),
        None => title,
    };
    if title.is_empty() {
        return None;
    }
    Some(title.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(input: &str) -> Vec<(String, StepStatus)> {
        match parse(input) {
            Ok(plan) => plan.steps.into_iter().map(|s| (s.title, s.status)).collect(),
            Err(e) => vec![(format!("error: {e}"), StepStatus::Blocked)],
        }
    }

    #[test]
    fn bullets_and_numbers_are_taken_off() {
        assert_eq!(strip_bullet("1. read"), (true, "read"));
        assert_eq!(strip_bullet("12) read"), (true, "read"));
        assert_eq!(strip_bullet("Step 3: read"), (true, "read"));
        assert_eq!(strip_bullet("- read"), (true, "read"));
        assert_eq!(strip_bullet("1.5 litres"), (false, "1.5 litres"));
        assert_eq!(strip_bullet("2024 plans"), (false, "2024 plans"));
    }

    #[test]
    fn a_line_with_a_status_word_in_its_text_keeps_its_title() {
        assert_eq!(
            steps("- Check what is done already"),
            [("Check what is done already".to_owned(), StepStatus::Pending)]
        );
        assert_eq!(steps("1. Fix the parser - done"), [("Fix the parser".to_owned(), StepStatus::Done)]);
        assert_eq!(steps("1. Note: keep it short"), [("Note: keep it short".to_owned(), StepStatus::Pending)]);
    }

    #[test]
    fn prose_around_a_list_is_left_out() {
        let got = steps("Here is my plan:\n1. [x] read\n2. [ ] write\nI will start now.");
        assert_eq!(got, [("read".to_owned(), StepStatus::Done), ("write".to_owned(), StepStatus::Pending)]);
    }

    #[test]
    fn a_fenced_block_is_unwrapped() {
        let got = steps("```json\n{\"steps\": [{\"title\": \"a\", \"status\": \"done\"}]}\n```");
        assert_eq!(got, [("a".to_owned(), StepStatus::Done)]);
    }
}
