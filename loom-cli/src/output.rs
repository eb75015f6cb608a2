//! How a run is shown: the answer on stdout as it streams, what the run does on stderr, or
//! every event as a JSON line.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use loomflow::{EventKind, RunEvent};

/// Prints one run's events.
pub(crate) struct Printer {
    json: bool,
    /// Whether the answer's text was printed as it streamed.
    streamed: bool,
    /// Whether the last character printed to stdout ended a line.
    line_ended: bool,
    /// Shown on a terminal until the first token arrives.
    spinner: Option<ProgressBar>,
    /// Printed before the answer (`loom> ` in a chat).
    prefix: &'static str,
}

impl Printer {
    /// A printer; `json` prints every event as a JSON line.
    pub(crate) fn new(json: bool) -> Self {
        let spinner = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.set_message("thinking");
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { json, streamed: false, line_ended: true, spinner, prefix: "" }
    }

    /// Prints `prefix` before the answer.
    pub(crate) fn prefix(mut self, prefix: &'static str) -> Self {
        self.prefix = prefix;
        self
    }

    fn quiet_spinner(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }

    /// Shows one event.
    pub(crate) fn event(&mut self, event: &RunEvent) {
        if self.json {
            match serde_json::to_string(event) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("warning: an event could not be written as JSON: {e}"),
            }
            return;
        }
        let line = match &event.kind {
            // The answer: only the top run's text (a workflow's nodes and a team's members
            // run as child runs).
            EventKind::TextDelta { text, .. } if event.parent.is_none() => {
                self.quiet_spinner();
                if !self.streamed {
                    print!("{}", self.prefix);
                }
                print!("{text}");
                let _ = std::io::stdout().flush();
                self.streamed = true;
                self.line_ended = text.ends_with('\n');
                return;
            }
            EventKind::ToolCallStarted { name, arguments, .. } => format!("  → {name}({arguments})"),
            EventKind::ToolCallFinished { name, is_error: true, output, .. } => format!("  ✗ {name}: {output}"),
            EventKind::NodeStarted { node, .. } => format!("  ▸ {node}"),
            EventKind::PermissionDecision { tool, decision, reason, .. } if decision == "deny" => {
                format!("  ✗ {tool} denied{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())
            }
            EventKind::ApprovalRequested { call_id, tool, reason } => {
                format!("  ? {tool} waits for approval (call {call_id}): {reason}")
            }
            EventKind::BudgetWarning { scope, limit, used, max } => {
                format!("  ! budget: {used} of the {scope}'s {max} {limit}")
            }
            _ => return,
        };
        if let Some(spinner) = &self.spinner {
            spinner.suspend(|| eprintln!("{line}"));
        } else {
            if !self.line_ended {
                println!();
                self.line_ended = true;
            }
            eprintln!("{line}");
        }
    }

    /// Ends the run: the answer, unless it was streamed, or the result as the last JSON line.
    pub(crate) fn finish(&mut self, output: &str, result: serde_json::Value) {
        self.quiet_spinner();
        if self.json {
            println!("{}", serde_json::json!({ "result": result }));
        } else if !self.streamed {
            println!("{}{output}", self.prefix);
        } else if !self.line_ended {
            println!();
        }
        self.streamed = false;
        self.line_ended = true;
    }

    /// Ends the run without an answer.
    pub(crate) fn abandon(&mut self) {
        self.quiet_spinner();
        if !self.line_ended {
            println!();
            self.line_ended = true;
        }
        self.streamed = false;
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.quiet_spinner();
    }
}
