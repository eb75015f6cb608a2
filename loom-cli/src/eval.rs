//! `loom eval`: an agent or a workflow over test cases, with a progress bar.

use std::io::IsTerminal as _;

use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;

use crate::commands::user;
use crate::target::{self, Built};
use crate::{EvalArgs, Failure, Outcome};

/// One case of a cases file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the agent is asked.
    input: String,
    /// What its answer must contain (ignoring case).
    expect: String,
}

/// What one case gave.
struct Verdict {
    line: usize,
    passed: bool,
    answer: Result<String, String>,
}

fn cases(path: &std::path::Path) -> Result<Vec<(usize, Case)>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read the cases `{}`: {e}", path.display())))?;
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: Case = serde_json::from_str(line).map_err(|e| {
            Failure::usage(format!(
                "{}:{}: {e} (each line is {{\"input\": \"..\", \"expect\": \"..\"}})",
                path.display(),
                i + 1
            ))
        })?;
        cases.push((i + 1, case));
    }
    if cases.is_empty() {
        return Err(Failure::usage(format!("{} holds no case", path.display())));
    }
    Ok(cases)
}

pub(crate) async fn eval(args: EvalArgs) -> Outcome {
    if let Some(min) = args.min.filter(|m| !(0.0..=1.0).contains(m)) {
        return Err(Failure::usage(format!("--min {min} is not a share between 0 and 1")));
    }
    let cases = cases(&args.cases)?;
    let user = user(&args.user)?;
    let built = target::build(&args.target).await?;
    let bar = if !args.json && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(cases.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("evaluating [{bar:30}] {pos}/{len} {elapsed}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let built = &built;
    let user = &user;
    let verdicts: Vec<Verdict> = futures::stream::iter(cases)
        .map(|(line, case)| async move {
            let answer = match built {
                Built::Agent(agent) => agent.run(case.input).user(user.clone()).await.map(|r| r.output),
                Built::Workflow(workflow) => workflow.run(case.input).user(user.clone()).await.map(|r| r.output),
            }
            .map_err(|e| e.to_string());
            let passed = answer.as_ref().is_ok_and(|a| a.to_lowercase().contains(&case.expect.to_lowercase()));
            Verdict { line, passed, answer }
        })
        .buffered(args.concurrency.max(1))
        .inspect(|_| bar.inc(1))
        .collect()
        .await;
    bar.finish_and_clear();
    let passed = verdicts.iter().filter(|v| v.passed).count();
    for verdict in &verdicts {
        if args.json {
            let line = match &verdict.answer {
                Ok(answer) => serde_json::json!({ "line": verdict.line, "passed": verdict.passed, "answer": answer }),
                Err(error) => serde_json::json!({ "line": verdict.line, "passed": false, "error": error }),
            };
            println!("{line}");
        } else if !verdict.passed {
            match &verdict.answer {
                Ok(answer) => println!("✗ line {}: the answer lacks what was expected: {answer}", verdict.line),
                Err(error) => println!("✗ line {}: {error}", verdict.line),
            }
        }
    }
    let share = passed as f64 / verdicts.len() as f64;
    let summary = format!("{passed}/{} passed ({:.1} %)", verdicts.len(), share * 100.0);
    let needed = args.min.unwrap_or(1.0);
    if share + f64::EPSILON < needed {
        return Err(Failure::failed(format!("{summary}; {:.1} % needed", needed * 100.0)));
    }
    if args.json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok(())
}
