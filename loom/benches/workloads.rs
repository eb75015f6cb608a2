//! Loom's framework-overhead benchmarks.
//!
//! Six workloads measure what Loom itself costs per run when the model is a free, in-process
//! fake: graph scheduling, messages, output validation, tool dispatch, bookkeeping. They are
//! defined in `WORKLOADS.md` (with the rules, the output format and the Python frameworks'
//! figures for the same workloads):
//!
//! | line | what runs |
//! |---|---|
//! | `W1_chain3` | a workflow `n1 → n2 → n3` of async functions on a `String` (`#[workflow]`, builder, chain) |
//! | `W2_route` | `Workflow::route`: a classifier agent picks the billing or the tech agent |
//! | `W3_tool_loop` | an agent calls the `#[tool]` `add`, reads its result and answers |
//! | `W4_fanout100` | `Workflow::parallel`: 100 agents on one input, a join concatenates them |
//! | `W5_concurrent` | 10,000 sessions of 3 turns at once on one agent whose model sleeps 10 ms |
//! | `W6_structured` | a typed output whose first answer is malformed JSON and is asked again |
//! | `W7_supervisor` | a supervisor delegates to 3 workers at once (each calls `add` and answers), then answers |
//! | `W8_rewoo` | a ReWOO plan of 6 `add` steps in 3 levels, each level at once, then the solver |
//! | `cold_start` | a fresh process that builds an agent with one tool and runs one turn |
//! | `journal_step_sqlite`, `journal_step_postgres` | the W3 run journaled in SQLite / PostgreSQL |
//!
//! ```sh
//! cargo bench -p loomflow --bench workloads -- --json          # everything, one JSON line each
//! cargo bench -p loomflow --bench workloads -- --workload W3   # one workload, readable
//! python3 scripts/perf_table.py results.jsonl                  # the README's table
//!
//! # The PostgreSQL journal line needs the `postgres` feature and a server:
//! LOOM_TEST_POSTGRES_URL=postgres://loom:loom@127.0.0.1/loom_test \
//!     cargo bench -p loomflow --features postgres --bench workloads -- --workload journal_postgres --json
//! ```
//!
//! The other lines are measured without that feature: its `sqlx` turns on `tracing`'s `log`
//! feature, which makes every span Loom opens a little dearer.
//!
//! Every model is a fake implementing the public [`Model`] trait: it looks at the conversation
//! it is given, does no I/O and no sleeping (except W5's), and returns a prebuilt or trivially
//! built reply. Everything else on the path is Loom, used through its public API. Graphs,
//! agents, tools and fakes are built once, before timing. Every run's output is checked, and
//! counters check that models and tools ran as often as they should; a failed check prints
//! `"verified": false` without timings and the process exits non-zero.
//!
//! Each workload runs in a fresh process (the binary re-executes itself with `--workload`), so
//! `peak_rss_mb` (the process's high-water mark, `VmHWM`) belongs to that workload alone.

use std::cell::Cell;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail, ensure};
use loomflow::governance::Governance;
use loomflow::model::{ModelRequest, ModelResponse, Role, ToolCall};
use loomflow::prelude::*;
use loomflow::session::{Journal, JournalEntry, RunKey, SessionStore, SqliteStore, decode_records};
use loomflow::tool::ToolDefinition;
use loomflow::workflow::Workflow;
use loomflow::{ModelErrorKind, SessionId};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Inputs and expected outputs.

/// W2's input.
const W2_INPUT: &str = "My invoice is wrong and the app crashes";
/// W2's billing agent's reply.
const W2_BILLING: &str = "BILLING: refund issued";
/// W2's tech agent's reply.
const W2_TECH: &str = "TECH: please reboot";
/// W3's (and the journal lines') input.
const W3_INPUT: &str = "What is 2 + 3?";
/// W3's expected output.
const W3_OUTPUT: &str = "The sum is 5";
/// W4's input, the same for every branch.
const W4_INPUT: &str = "question";
/// W4's number of branches.
const W4_BRANCHES: usize = 100;
/// W5's number of sessions.
const W5_SESSIONS: usize = 10_000;
/// W5's turns per session.
const W5_TURNS: usize = 3;
/// W5's model latency.
const W5_LATENCY: Duration = Duration::from_millis(10);
/// W6's input.
const W6_INPUT: &str = "What is the temperature in Paris?";
/// W6's first, malformed answer (the closing brace is missing).
const W6_MALFORMED: &str = r#"{"city": "Paris", "temp_c": 21.5"#;
/// W6's second, valid answer.
const W6_VALID: &str = r#"{"city": "Paris", "temp_c": 21.5}"#;
/// How Loom's feedback on an answer that did not parse begins.
const FEEDBACK_PREFIX: &str = "That answer could not be used:";
/// How many fresh processes the cold start is timed over.
const COLD_STARTS: usize = 20;

/// Run counts.
const N_W1: usize = 20_000;
const N_W2: usize = 5_000;
const N_W3: usize = 5_000;
/// W3 with its audit trail appended (and synced) in SQLite: six entries a run.
const N_W3_AUDITED: usize = 500;
const N_W4: usize = 200;
const N_W6: usize = 2_000;
const N_W7: usize = 2_000;
const N_W8: usize = 2_000;
/// The plain ReAct runs timed next to W7 and W8, for their `react_us`: the same work without
/// the architecture.
const N_REACT_BASELINE: usize = 5_000;
const N_JOURNAL_SQLITE: usize = 2_000;
#[cfg(feature = "postgres")]
const N_JOURNAL_POSTGRES: usize = 500;

/// The warm-up before `n` timed runs: max(5, min(200, n/20)).
fn warmup_runs(n: usize) -> usize {
    (n / 20).clamp(5, 200)
}

// ---------------------------------------------------------------------------------------------
// Command line.

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    W1,
    W2,
    W3,
    W4,
    W5,
    W6,
    W7,
    W8,
    ColdStart,
    JournalSqlite,
    JournalPostgres,
}

impl Workload {
    /// The name given with `--workload` (W3, or its full name W3_tool_loop).
    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "w1" | "w1_chain3" => Self::W1,
            "w2" | "w2_route" => Self::W2,
            "w3" | "w3_tool_loop" => Self::W3,
            "w4" | "w4_fanout100" => Self::W4,
            "w5" | "w5_concurrent" => Self::W5,
            "w6" | "w6_structured" => Self::W6,
            "w7" | "w7_supervisor" => Self::W7,
            "w8" | "w8_rewoo" => Self::W8,
            "cold_start" => Self::ColdStart,
            "journal_sqlite" | "journal_step_sqlite" => Self::JournalSqlite,
            "journal_postgres" | "journal_step_postgres" => Self::JournalPostgres,
            _ => return None,
        })
    }

    /// The name on the output line.
    fn line_name(self) -> &'static str {
        match self {
            Self::W1 => "W1_chain3",
            Self::W2 => "W2_route",
            Self::W3 => "W3_tool_loop",
            Self::W4 => "W4_fanout100",
            Self::W5 => "W5_concurrent",
            Self::W6 => "W6_structured",
            Self::W7 => "W7_supervisor",
            Self::W8 => "W8_rewoo",
            Self::ColdStart => "cold_start",
            Self::JournalSqlite => "journal_step_sqlite",
            Self::JournalPostgres => "journal_step_postgres",
        }
    }
}

/// The processes of a full run: each workload (and each W1 and W5 variant) in its own.
const PLAN: &[(&str, Option<&str>)] = &[
    ("W1", Some("macro")),
    ("W1", Some("builder")),
    ("W1", Some("chain")),
    ("W2", None),
    ("W3", None),
    ("W3", Some("governed")),
    ("W3", Some("audited")),
    ("W4", None),
    ("W5", Some("spawn")),
    ("W5", Some("join_all")),
    ("W6", None),
    ("W7", None),
    ("W8", None),
    ("cold_start", None),
    ("journal_sqlite", None),
    ("journal_postgres", None),
];

const USAGE: &str = "\
usage: workloads [--json] [--workload NAME [--variant VARIANT]]

  --json                one JSON line per workload (the format of WORKLOADS.md)
  --workload NAME       run one workload in this process: W1..W8, cold_start,
                        journal_sqlite, journal_postgres (default: all, each in its own process)
  --variant VARIANT     W1: macro, builder or chain; W3: plain, governed or audited;
                        W5: spawn or join_all (default: all)
  --cold-start-child    (internal) the process the cold start times";

/// The parsed command line.
#[derive(Debug, Default)]
struct Options {
    json: bool,
    workload: Option<Workload>,
    variant: Option<String>,
    cold_start_child: bool,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            // `cargo bench` passes `--bench` to every benchmark binary.
            "--bench" => {}
            "--cold-start-child" => options.cold_start_child = true,
            "--workload" => {
                let name = args.next().ok_or_else(|| anyhow!("--workload needs a name\n{USAGE}"))?;
                options.workload =
                    Some(Workload::parse(&name).ok_or_else(|| anyhow!("unknown workload `{name}`\n{USAGE}"))?);
            }
            "--variant" => {
                options.variant = Some(args.next().ok_or_else(|| anyhow!("--variant needs a name\n{USAGE}"))?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    match run_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("workloads: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs what the command line asks for; `false` when a check failed.
fn run_main() -> anyhow::Result<bool> {
    let options = parse_args()?;
    if options.cold_start_child {
        cold_start_child()?;
        return Ok(true);
    }
    let Some(workload) = options.workload else { return run_all(options.json) };
    let records = run_workload(workload, options.variant.as_deref())?;
    let mut ok = true;
    for record in &records {
        print_record(record, options.json);
        ok &= record.passed();
    }
    Ok(ok)
}

/// Runs every workload, each in a fresh process, and forwards their lines.
fn run_all(json: bool) -> anyhow::Result<bool> {
    let exe = std::env::current_exe().context("cannot find this benchmark's executable")?;
    let mut ok = true;
    for &(workload, variant) in PLAN {
        let mut command = Command::new(&exe);
        command.args(["--workload", workload, "--json"]);
        if let Some(variant) = variant {
            command.args(["--variant", variant]);
        }
        let output = command
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot start {} for {workload}", exe.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut lines = 0;
        for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
            lines += 1;
            if json {
                println!("{line}");
            } else {
                println!("{}", human_line(line));
            }
        }
        if !output.status.success() {
            ok = false;
            if lines == 0 {
                let name = Workload::parse(workload).map_or(workload, Workload::line_name);
                let record = Record::failed(name, variant, 0, &format!("the process failed ({})", output.status));
                print_record(&record, json);
            }
        }
        std::io::stdout().flush().ok();
    }
    Ok(ok)
}

/// Runs one workload in this process.
fn run_workload(workload: Workload, variant: Option<&str>) -> anyhow::Result<Vec<Record>> {
    if workload == Workload::ColdStart {
        return Ok(vec![cold_start()]);
    }
    let runtime = runtime()?;
    Ok(match workload {
        Workload::W1 => {
            let variants: Vec<&str> = match variant {
                Some(v) => vec![v],
                None => vec!["macro", "builder", "chain"],
            };
            let mut records = Vec::new();
            for v in variants {
                records.push(runtime.block_on(w1_chain3(v)));
            }
            records
        }
        Workload::W2 => vec![runtime.block_on(w2_route())],
        Workload::W3 => {
            let variants: Vec<Option<&str>> = match variant {
                Some(v) => vec![Some(v)],
                None => vec![None, Some("governed"), Some("audited")],
            };
            let mut records = Vec::new();
            for v in variants {
                records.push(runtime.block_on(w3_tool_loop(v)));
            }
            records
        }
        Workload::W4 => vec![runtime.block_on(w4_fanout())],
        Workload::W5 => {
            let variants: Vec<&str> = match variant {
                Some(v) => vec![v],
                None => vec!["spawn", "join_all"],
            };
            let mut records = Vec::new();
            for v in variants {
                records.push(runtime.block_on(w5_concurrent(v)));
            }
            records
        }
        Workload::W6 => vec![runtime.block_on(w6_structured())],
        Workload::W7 => vec![runtime.block_on(w7_supervisor())],
        Workload::W8 => vec![runtime.block_on(w8_rewoo())],
        Workload::JournalSqlite => vec![runtime.block_on(journal_sqlite())],
        Workload::JournalPostgres => vec![runtime.block_on(journal_postgres())],
        Workload::ColdStart => Vec::new(),
    })
}

/// The runtime every workload runs on: tokio's multi-thread runtime with its default worker
/// count, as `#[tokio::main]` builds it. The runs are driven from `block_on`, like a
/// `#[tokio::main]` function's body.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot build the tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// Output lines.

/// One output line: ordered JSON fields.
#[derive(Debug, Clone)]
struct Record {
    fields: Vec<(&'static str, Value)>,
}

impl Record {
    fn new(workload: &str, variant: Option<&str>) -> Self {
        Self {
            fields: vec![
                ("framework", Value::from("loom")),
                ("workload", Value::from(workload)),
                ("variant", variant.map_or(Value::Null, Value::from)),
            ],
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((key, value.into()));
        self
    }

    /// The line of a workload whose checks failed: no timings.
    fn failed(workload: &str, variant: Option<&str>, n: usize, error: &str) -> Self {
        Self::new(workload, variant).with("n", n).with("verified", false).with("error", error)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Verified, or skipped for a reason given on the line.
    fn passed(&self) -> bool {
        self.get("verified").and_then(Value::as_bool).unwrap_or(false) || self.get("skipped").is_some()
    }

    fn json(&self) -> String {
        let fields: Vec<String> = self.fields.iter().map(|(k, v)| format!("{}:{v}", Value::from(*k))).collect();
        format!("{{{}}}", fields.join(","))
    }
}

fn print_record(record: &Record, json: bool) {
    if json {
        println!("{}", record.json());
    } else {
        println!("{}", human_line(&record.json()));
    }
}

/// The fields of a line in the order they are written (a parsed line's map is sorted by key).
const FIELD_ORDER: &[&str] = &[
    "n",
    "per_run_us",
    "per_run_cpu_us",
    "p50_us",
    "p99_us",
    "first10pct_mean_us",
    "last10pct_mean_us",
    "wall_s",
    "cpu_s",
    "wall_per_turn_us",
    "median_ms",
    "min_ms",
    "max_ms",
    "model_calls_per_run",
    "react_us",
    "vs_react",
    "appends_per_run",
    "per_step_us",
    "peak_rss_mb",
    "verified",
    "skipped",
    "error",
];

/// A JSON line as `workload [variant]  key=value ...`.
fn human_line(line: &str) -> String {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line) else { return line.to_owned() };
    let mut out = map.get("workload").and_then(Value::as_str).unwrap_or("?").to_owned();
    if let Some(variant) = map.get("variant").and_then(Value::as_str) {
        out.push_str(&format!(" [{variant}]"));
    }
    let rank = |key: &str| FIELD_ORDER.iter().position(|k| *k == key).unwrap_or(FIELD_ORDER.len());
    let mut fields: Vec<(&String, &Value)> =
        map.iter().filter(|(k, _)| !matches!(k.as_str(), "framework" | "workload" | "variant")).collect();
    fields.sort_by_key(|(k, _)| rank(k));
    for (key, value) in fields {
        out.push_str(&format!("  {key}={value}"));
    }
    out
}

/// Microseconds, rounded to nanoseconds.
fn us(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1e6, 3)
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// The process's peak resident set (`VmHWM`, what `getrusage` reports as `ru_maxrss`), in MB.
fn peak_rss_mb() -> Option<f64> {
    peak_rss_kb().map(|kb| round(kb as f64 / 1024.0, 1))
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time the process has used so far: the sum of its live threads' run time
/// (`/proc/self/task/*/schedstat`, nanoseconds; the runtime's threads live as long as the
/// workload), or `utime + stime` of `/proc/self/stat` (clock ticks) where schedstat is missing.
fn process_cpu() -> Option<Duration> {
    let from_schedstat = || -> Option<Duration> {
        let mut total: u64 = 0;
        for task in std::fs::read_dir("/proc/self/task").ok()? {
            let path = task.ok()?.path().join("schedstat");
            let text = std::fs::read_to_string(path).ok()?;
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(Duration::from_nanos(total))
    };
    let from_stat = || -> Option<Duration> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command name, which is in parentheses and may contain spaces.
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // USER_HZ is 100 on every Linux configuration.
        Some(Duration::from_millis(ticks * 10))
    };
    from_schedstat().or_else(from_stat)
}

// ---------------------------------------------------------------------------------------------
// Timing.

/// `n` runs, timed one by one.
struct Timings {
    wall: Duration,
    cpu: Option<Duration>,
    runs: Vec<Duration>,
}

impl Timings {
    fn n(&self) -> usize {
        self.runs.len()
    }

    fn mean(runs: &[Duration]) -> Duration {
        if runs.is_empty() {
            return Duration::ZERO;
        }
        runs.iter().sum::<Duration>() / runs.len() as u32
    }

    /// The `p`-th percentile (nearest rank).
    fn percentile(sorted: &[Duration], p: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// The per-run fields of a line.
    fn record(&self, workload: &str, variant: Option<&str>) -> Record {
        let n = self.n();
        let mut sorted = self.runs.clone();
        sorted.sort_unstable();
        let tenth = (n / 10).max(1);
        let per_run = |d: Duration| us(d) / n as f64;
        Record::new(workload, variant)
            .with("n", n)
            .with("per_run_us", round(per_run(self.wall), 3))
            .with("per_run_cpu_us", self.cpu.map_or(Value::Null, |c| Value::from(round(per_run(c), 3))))
            .with("p50_us", us(Self::percentile(&sorted, 50.0)))
            .with("p99_us", us(Self::percentile(&sorted, 99.0)))
            .with("first10pct_mean_us", us(Self::mean(&self.runs[..tenth])))
            .with("last10pct_mean_us", us(Self::mean(&self.runs[n - tenth..])))
    }
}

/// Warms up with `warmup` runs, then times `n` runs one after another. `run(i)` runs and checks
/// run `i` (warm-up runs first, numbered from 0). Stops at the first failed check.
async fn time_runs<F, Fut>(warmup: usize, n: usize, mut run: F) -> anyhow::Result<Timings>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for i in 0..warmup {
        run(i).await.with_context(|| format!("warm-up run {i}"))?;
    }
    let mut runs = Vec::with_capacity(n);
    let cpu_before = process_cpu();
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        run(warmup + i).await.with_context(|| format!("run {i}"))?;
        runs.push(t.elapsed());
    }
    let wall = started.elapsed();
    let cpu = process_cpu().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    Ok(Timings { wall, cpu, runs })
}

/// The line of a per-run workload: its timings and memory, or what failed.
fn finish(workload: &str, variant: Option<&str>, n: usize, outcome: anyhow::Result<Timings>) -> Record {
    match outcome {
        Ok(timings) => timings
            .record(workload, variant)
            .with("peak_rss_mb", peak_rss_mb().map_or(Value::Null, Value::from))
            .with("verified", true),
        Err(e) => Record::failed(workload, variant, n, &format!("{e:#}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Fakes.

/// The error a fake returns when the conversation is not what the workload sends: it fails the
/// run, and with it the workload's check. (Not transient, so it is never retried.)
fn unexpected(message: impl Into<String>) -> ModelError {
    ModelError::new(ModelErrorKind::Script, "fake", message)
}

/// Checks that the last message is the user message `expected`.
fn expect_last_user(request: &ModelRequest<'_>, expected: &str) -> Result<(), ModelError> {
    match request.messages.last() {
        Some(m) if m.role() == Role::User && m.text() == expected => Ok(()),
        other => Err(unexpected(format!("expected the user message {expected:?} last, got {other:?}"))),
    }
}

/// A fake that checks the last message is its expected input and replies with a prebuilt
/// answer. Fakes sharing `calls` count together.
struct Canned {
    reply: ModelResponse,
    expect: &'static str,
    calls: Arc<AtomicUsize>,
}

impl Canned {
    fn new(reply: impl Into<String>, expect: &'static str, calls: &Arc<AtomicUsize>) -> Self {
        Self { reply: ModelResponse::text(reply.into()), expect, calls: Arc::clone(calls) }
    }
}

#[async_trait]
impl Model for Canned {
    fn name(&self) -> &str {
        "canned"
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        expect_last_user(request, self.expect)?;
        Ok(self.reply.clone())
    }
}

/// W2's classifier: `billing` on odd calls, `tech` on even calls, counting warm-up calls too.
struct Classifier {
    calls: Arc<AtomicUsize>,
    billing: ModelResponse,
    tech: ModelResponse,
}

#[async_trait]
impl Model for Classifier {
    fn name(&self) -> &str {
        "classifier"
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        expect_last_user(request, W2_INPUT)?;
        Ok(if call % 2 == 1 { self.billing.clone() } else { self.tech.clone() })
    }
}

/// How often `add` ran.
static ADD_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Add two integers.
#[tool]
fn add(a: i64, b: i64) -> i64 {
    ADD_CALLS.fetch_add(1, Ordering::Relaxed);
    a + b
}

/// Checks the schema `#[tool]` derived for `add`: integers `a` and `b`, both required.
fn check_add_schema(schema: &Value) -> Result<(), String> {
    for param in ["a", "b"] {
        let ty = &schema["properties"][param]["type"];
        if ty != "integer" {
            return Err(format!("parameter `{param}` has type {ty}, not integer, in {schema}"));
        }
    }
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if !(required.contains(&"a") && required.contains(&"b")) {
        return Err(format!("`a` and `b` are not both required in {schema}"));
    }
    Ok(())
}

/// W3's model: one call of `add {"a": 2, "b": 3}`, then `The sum is {result}` once the tool
/// result is the last message. It checks the tool schema it is offered (once per schema: the
/// agent shares one schema between its runs, and the fake remembers which one it checked).
struct AddFake {
    call: ModelResponse,
    calls: Arc<AtomicUsize>,
    checked_schema: AtomicUsize,
}

impl AddFake {
    fn new(calls: &Arc<AtomicUsize>) -> Self {
        Self {
            call: ModelResponse::tool_calls(vec![ToolCall::new("call_1", "add", r#"{"a": 2, "b": 3}"#)]),
            calls: Arc::clone(calls),
            checked_schema: AtomicUsize::new(0),
        }
    }

    fn check_tools(&self, tools: &[ToolDefinition]) -> Result<(), ModelError> {
        let [tool] = tools else { return Err(unexpected(format!("expected one tool, got {}", tools.len()))) };
        if tool.name() != "add" || tool.description() != "Add two integers." {
            return Err(unexpected(format!("unexpected tool {tool:?}")));
        }
        let schema = Arc::as_ptr(tool.parameters_arc()) as usize;
        if self.checked_schema.load(Ordering::Relaxed) != schema {
            check_add_schema(tool.parameters()).map_err(unexpected)?;
            self.checked_schema.store(schema, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[async_trait]
impl Model for AddFake {
    fn name(&self) -> &str {
        "add-fake"
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.check_tools(request.tools)?;
        if request.last_is_tool_result() {
            let Some(Message::Tool(result)) = request.messages.last() else {
                return Err(unexpected("the last message is not a tool result"));
            };
            if result.is_error || result.call_id != "call_1" {
                return Err(unexpected(format!("unexpected tool result {result:?}")));
            }
            return Ok(ModelResponse::text(format!("The sum is {}", result.content.text())));
        }
        expect_last_user(request, W3_INPUT)?;
        Ok(self.call.clone())
    }
}

/// W5's model: waits 10 ms, then replies `ok`; counts its calls by the number of user messages
/// in the conversation (1, 2 or 3: the session's history grows by one turn each time).
struct Sleeper {
    reply: ModelResponse,
    counts: Arc<SleeperCounts>,
}

/// What W5's model saw.
#[derive(Default)]
struct SleeperCounts {
    /// Calls by the number of user messages in the conversation, minus one.
    by_user_messages: [AtomicUsize; W5_TURNS],
    /// Calls on a conversation that is not what the session should have.
    unexpected: AtomicUsize,
}

#[async_trait]
impl Model for Sleeper {
    fn name(&self) -> &str {
        "sleeper"
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        let users = request.messages.iter().filter(|m| m.role() == Role::User).count();
        // The last user message is `s{s} t{t}` with t = users - 1.
        let last_turn = request.messages.last().map(|m| m.text().bytes().last());
        match self.counts.by_user_messages.get(users.wrapping_sub(1)) {
            Some(counter) if last_turn == Some(Some(b'0' + (users - 1) as u8)) => {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.counts.unexpected.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(W5_LATENCY).await;
        Ok(self.reply.clone())
    }
}

/// W6's output type.
#[derive(Debug, PartialEq, serde::Deserialize, schemars::JsonSchema)]
struct CityTemp {
    city: String,
    temp_c: f64,
}

/// W6's model: the malformed answer first; the valid one when the last message is Loom's
/// feedback on the malformed one. It checks that it is asked in prompted mode: no response
/// format, no tools, and the schema in the system message (checked once per system message:
/// the agent shares one between its runs).
struct CityFake {
    malformed: ModelResponse,
    valid: ModelResponse,
    calls: Arc<AtomicUsize>,
    checked_system: AtomicUsize,
}

impl CityFake {
    fn check_prompted(&self, request: &ModelRequest<'_>) -> Result<(), ModelError> {
        if request.response_format.is_some() || !request.tools.is_empty() {
            return Err(unexpected("expected prompted mode: no response format, no tools"));
        }
        let Some(Message::System { content }) = request.messages.first() else {
            return Err(unexpected("expected the instructions first"));
        };
        let system = Arc::as_ptr(content).cast::<u8>() as usize;
        if self.checked_system.load(Ordering::Relaxed) != system {
            if !(content.contains("\"city\"") && content.contains("\"temp_c\"")) {
                return Err(unexpected(format!("the schema is not in the instructions: {content}")));
            }
            self.checked_system.store(system, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[async_trait]
impl Model for CityFake {
    fn name(&self) -> &str {
        "city-fake"
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.check_prompted(request)?;
        let Some(last) = request.messages.last().filter(|m| m.role() == Role::User) else {
            return Err(unexpected("expected a user message last"));
        };
        let text = last.text();
        if text.starts_with(FEEDBACK_PREFIX) {
            Ok(self.valid.clone())
        } else if text == W6_INPUT {
            Ok(self.malformed.clone())
        } else {
            Err(unexpected(format!("unexpected user message {text:?}")))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// W1: chain3.

/// W1 as a `#[workflow]` graph.
struct Chain3;

#[workflow(name = "chain3")]
impl Chain3 {
    #[node(start, next = n2)]
    async fn n1(&self, s: String) -> String {
        s + "a"
    }

    #[node(next = n3)]
    async fn n2(&self, s: String) -> String {
        s + "b"
    }

    #[node]
    async fn n3(&self, s: String) -> String {
        s + "c"
    }
}

/// W1's first step, as a plain async function.
async fn n1(s: String) -> String {
    s + "a"
}

/// W1's second step.
async fn n2(s: String) -> String {
    s + "b"
}

/// W1's third step.
async fn n3(s: String) -> String {
    s + "c"
}

/// W1: `n1 → n2 → n3` on `""` gives `"abc"`; `variant` is `macro` (`#[workflow]`), `builder`
/// (`Workflow::builder`) or `chain` (`Workflow::chain`).
async fn w1_chain3(variant: &str) -> Record {
    let workload = Workload::W1.line_name();
    let built: anyhow::Result<(Workflow<String, String>, [&str; 3])> = match variant {
        "macro" => Ok((Chain3.into_workflow(), ["n1", "n2", "n3"])),
        "builder" => {
            let mut g = Workflow::builder("chain3");
            let a = g.node("n1", n1);
            let b = g.node("n2", n2);
            let c = g.node("n3", n3);
            g.start(a);
            g.edge(a, b);
            g.edge(b, c);
            g.build().map(|wf| (wf, ["n1", "n2", "n3"])).map_err(anyhow::Error::from)
        }
        "chain" => Ok((Workflow::chain((n1, n2, n3)), ["step_0", "step_1", "step_2"])),
        other => Err(anyhow!("unknown W1 variant `{other}` (macro, builder or chain)")),
    };
    let (wf, visited) = match built {
        Ok(built) => built,
        Err(e) => return Record::failed(workload, Some(variant), N_W1, &format!("{e:#}")),
    };
    let outcome = time_runs(warmup_runs(N_W1), N_W1, |_| {
        let wf = &wf;
        async move {
            let result = wf.run(String::new()).await?;
            ensure!(result.output == "abc", "output {:?}", result.output);
            ensure!(result.visited == visited, "visited {:?}", result.visited);
            Ok(())
        }
    })
    .await;
    finish(workload, Some(variant), N_W1, outcome)
}

// ---------------------------------------------------------------------------------------------
// W2: route.

/// W2: a classifier agent routes each run to the billing or the tech agent, alternately.
async fn w2_route() -> Record {
    let workload = Workload::W2.line_name();
    let classifier_calls = Arc::new(AtomicUsize::new(0));
    let specialist_calls = Arc::new(AtomicUsize::new(0));
    let classifier = Classifier {
        calls: Arc::clone(&classifier_calls),
        billing: ModelResponse::text("billing"),
        tech: ModelResponse::text("tech"),
    };
    let classify = Agent::new("Classify the ticket: reply `billing` or `tech`.").model(classifier);
    let billing = Agent::new("You handle billing tickets.").model(Canned::new(W2_BILLING, W2_INPUT, &specialist_calls));
    let tech = Agent::new("You handle technical tickets.").model(Canned::new(W2_TECH, W2_INPUT, &specialist_calls));
    let wf: Workflow<String, String> = Workflow::route(classify, [("billing", billing), ("tech", tech)]);

    let warmup = warmup_runs(N_W2);
    let (to_billing, to_tech) = (Cell::new(0usize), Cell::new(0usize));
    let outcome = time_runs(warmup, N_W2, |i| {
        let (wf, to_billing, to_tech) = (&wf, &to_billing, &to_tech);
        async move {
            let result = wf.run(W2_INPUT.to_owned()).await?;
            let billing = match result.output.as_str() {
                W2_BILLING => true,
                W2_TECH => false,
                other => bail!("output {other:?}"),
            };
            let route = if billing { "route_billing" } else { "route_tech" };
            ensure!(result.visited == ["classify", route], "visited {:?} for {:?}", result.visited, result.output);
            if i >= warmup {
                let count = if billing { to_billing } else { to_tech };
                count.set(count.get() + 1);
            }
            Ok(())
        }
    })
    .await
    .and_then(|timings| {
        let runs = warmup + N_W2;
        let classified = classifier_calls.load(Ordering::Relaxed);
        let handled = specialist_calls.load(Ordering::Relaxed);
        ensure!(
            classified == runs && handled == runs,
            "{classified} classifier and {handled} specialist calls in {runs} runs"
        );
        let (to_billing, to_tech) = (to_billing.get(), to_tech.get());
        ensure!(to_billing.abs_diff(to_tech) <= 1, "{to_billing} runs went to billing, {to_tech} to tech");
        Ok(timings)
    });
    finish(workload, None, N_W2, outcome)
}

// ---------------------------------------------------------------------------------------------
// W3: tool loop.

/// W3's governance: a budget per run and per user (in memory), a rate limit per user and per
/// model that never binds, and the standard permissions; with `audited`, an audit log in SQLite
/// too (its file removed afterwards).
fn w3_governance(audited: Option<&std::path::Path>) -> anyhow::Result<Governance> {
    use loomflow::governance::{Budget, Limits, Mode, RateLimit, StandardPermissions};
    let budget = Budget::new()
        .per_run(Limits::new().total_tokens(1_000_000).tool_calls(100))
        .per_user(Limits::new().total_tokens(u64::MAX / 2));
    let mut governance = Governance::new()
        .budget(budget)
        .rate_limit(RateLimit::new().per_user(1e9, 1_000_000).per_model(1e9, 1_000_000))
        .permissions(StandardPermissions::new(Mode::Default));
    if let Some(path) = audited {
        let key = loomflow::telemetry::audit::AuditKey::from_hex(
            "6c6f6f6d2d62656e63682d61756469742d6b65792d33322d62797465732121",
        )?;
        governance = governance.audit(Arc::new(loomflow::telemetry::audit::SqliteAuditLog::open(path, key)?));
    }
    Ok(governance)
}

/// W3: the agent calls `add`, reads `5`, answers `The sum is 5` — plain, governed (budgets,
/// rate limits, permissions), or governed and audited in SQLite (fewer runs: each appends its
/// trail durably).
async fn w3_tool_loop(variant: Option<&str>) -> Record {
    let workload = Workload::W3.line_name();
    let model_calls = Arc::new(AtomicUsize::new(0));
    let audit_path = std::env::temp_dir().join(format!("loom-bench-audit-{}.sqlite", std::process::id()));
    let mut agent = Agent::new("You do sums with the add tool.").model(AddFake::new(&model_calls)).tool(AddTool);
    let n = match variant {
        None | Some("plain") => N_W3,
        Some("governed") => match w3_governance(None) {
            Ok(g) => {
                agent = agent.governance(g);
                N_W3
            }
            Err(e) => return Record::failed(workload, variant, N_W3, &format!("{e:#}")),
        },
        Some("audited") => match w3_governance(Some(&audit_path)) {
            Ok(g) => {
                agent = agent.governance(g);
                N_W3_AUDITED
            }
            Err(e) => return Record::failed(workload, variant, N_W3_AUDITED, &format!("{e:#}")),
        },
        Some(other) => return Record::failed(workload, variant, N_W3, &format!("unknown W3 variant `{other}`")),
    };
    let record = w3_runs(workload, variant.filter(|v| *v != "plain"), &agent, &model_calls, n).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", audit_path.display()));
    }
    record
}

/// `n` timed W3 runs of `agent`, checked.
async fn w3_runs(
    workload: &'static str,
    variant: Option<&str>,
    agent: &Agent,
    model_calls: &AtomicUsize,
    n: usize,
) -> Record {
    let warmup = warmup_runs(n);
    let adds_before = ADD_CALLS.load(Ordering::Relaxed);
    let calls_before = model_calls.load(Ordering::Relaxed);
    let outcome = time_runs(warmup, n, |_| {
        let agent = &agent;
        async move {
            let result = agent.run(W3_INPUT).await?;
            ensure!(result.output == W3_OUTPUT, "output {:?}", result.output);
            ensure!(
                (result.turns, result.tool_calls) == (2, 1),
                "{} turns, {} tool calls",
                result.turns,
                result.tool_calls
            );
            Ok(())
        }
    })
    .await
    .and_then(|timings| {
        let runs = warmup + n;
        let adds = ADD_CALLS.load(Ordering::Relaxed) - adds_before;
        let calls = model_calls.load(Ordering::Relaxed) - calls_before;
        ensure!(adds == runs && calls == 2 * runs, "{adds} tool runs and {calls} model calls in {runs} runs");
        Ok(timings)
    });
    finish(workload, variant, n, outcome)
}

// ---------------------------------------------------------------------------------------------
// W4: fan-out of 100.

/// W4's join: the branches' answers, sorted and concatenated.
async fn join_sorted(mut answers: Vec<String>) -> String {
    answers.sort_unstable();
    answers.concat()
}

/// W4: 100 agents answer `question` at once; the join gives `a000;a001;…;a099;`.
async fn w4_fanout() -> Record {
    let workload = Workload::W4.line_name();
    let calls = Arc::new(AtomicUsize::new(0));
    let branches: Vec<Agent> = (0..W4_BRANCHES)
        .map(|i| Agent::new("Answer the question.").model(Canned::new(format!("a{i:03};"), W4_INPUT, &calls)))
        .collect();
    let wf: Workflow<String, String> = Workflow::parallel(branches, join_sorted);
    let expected: String = (0..W4_BRANCHES).map(|i| format!("a{i:03};")).collect();
    let warmup = 3;
    let outcome = time_runs(warmup, N_W4, |_| {
        let (wf, expected) = (&wf, &expected);
        async move {
            let result = wf.run(W4_INPUT.to_owned()).await?;
            ensure!(result.output == *expected, "output {:?}", result.output);
            ensure!(result.visited.len() == W4_BRANCHES + 2, "{} nodes visited", result.visited.len());
            Ok(())
        }
    })
    .await
    .and_then(|timings| {
        let runs = warmup + N_W4;
        let calls = calls.load(Ordering::Relaxed);
        ensure!(calls == W4_BRANCHES * runs, "{calls} model calls in {runs} runs");
        Ok(timings)
    });
    finish(workload, None, N_W4, outcome)
}

// ---------------------------------------------------------------------------------------------
// W5: 10,000 concurrent sessions.

/// One W5 session: 3 turns in sequence, `s{s} t{t}`, history carried by the session store.
async fn w5_session(agent: &Agent, user: &UserId, prefix: &str, s: usize) -> anyhow::Result<()> {
    // The ids are values the caller holds (a server has them from the request), made once.
    let session = SessionId::new(format!("{prefix}{s}"))?;
    for t in 0..W5_TURNS {
        let result = agent.run(format!("s{s} t{t}")).user(user.clone()).session(session.clone()).await?;
        ensure!(result.output == "ok", "session {session} turn {t}: output {:?}", result.output);
    }
    Ok(())
}

/// Starts `sessions` sessions at once (spawned as tasks, or joined on this task) and waits for
/// all of them.
async fn w5_wave(agent: &Arc<Agent>, variant: &str, prefix: &'static str, sessions: usize) -> anyhow::Result<()> {
    let user = UserId::new("bench")?;
    match variant {
        "spawn" => {
            let handles: Vec<_> = (0..sessions)
                .map(|s| {
                    let (agent, user) = (Arc::clone(agent), user.clone());
                    tokio::spawn(async move { w5_session(&agent, &user, prefix, s).await })
                })
                .collect();
            for handle in handles {
                handle.await.context("a session task failed")??;
            }
        }
        "join_all" => {
            let results = futures::future::join_all((0..sessions).map(|s| w5_session(agent, &user, prefix, s))).await;
            results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        }
        other => bail!("unknown W5 variant `{other}` (spawn or join_all)"),
    }
    Ok(())
}

/// W5: 10,000 sessions of 3 turns start at once on one shared agent whose model takes 10 ms.
/// `variant` is `spawn` (a task per session, as a server runs its requests) or `join_all`
/// (every session a future on the caller's task).
async fn w5_concurrent(variant: &str) -> Record {
    let workload = Workload::W5.line_name();
    let counts = Arc::new(SleeperCounts::default());
    let fake = Sleeper { reply: ModelResponse::text("ok"), counts: Arc::clone(&counts) };
    // The agent's session store is the default, in memory.
    let agent = Arc::new(Agent::new("Reply ok.").model(fake));

    let outcome = async {
        // Warm-up: a smaller wave on sessions of their own.
        w5_wave(&agent, variant, "warm", warmup_runs(W5_SESSIONS)).await.context("warm-up")?;
        for counter in &counts.by_user_messages {
            counter.store(0, Ordering::Relaxed);
        }
        let cpu_before = process_cpu();
        let started = Instant::now();
        w5_wave(&agent, variant, "s", W5_SESSIONS).await?;
        let wall = started.elapsed();
        let cpu = process_cpu().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
        let odd = counts.unexpected.load(Ordering::Relaxed);
        let counts: Vec<usize> = counts.by_user_messages.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        ensure!(
            counts.iter().all(|&c| c == W5_SESSIONS) && odd == 0,
            "model calls with 1, 2, 3 user messages: {counts:?}; with an unexpected conversation: {odd}"
        );
        Ok((wall, cpu))
    }
    .await;
    match outcome {
        Ok((wall, cpu)) => Record::new(workload, Some(variant))
            .with("n", W5_SESSIONS)
            .with("wall_s", round(wall.as_secs_f64(), 4))
            .with("cpu_s", cpu.map_or(Value::Null, |c| Value::from(round(c.as_secs_f64(), 4))))
            .with("wall_per_turn_us", round(us(wall) / (W5_SESSIONS * W5_TURNS) as f64, 3))
            .with("peak_rss_mb", peak_rss_mb().map_or(Value::Null, Value::from))
            .with("verified", true),
        Err(e) => Record::failed(workload, Some(variant), W5_SESSIONS, &format!("{e:#}")),
    }
}

// ---------------------------------------------------------------------------------------------
// W6: structured output with one retry.

/// W6: the first answer is malformed, Loom sends the parse error back, the second is valid.
async fn w6_structured() -> Record {
    let workload = Workload::W6.line_name();
    let model_calls = Arc::new(AtomicUsize::new(0));
    let fake = CityFake {
        malformed: ModelResponse::text(W6_MALFORMED),
        valid: ModelResponse::text(W6_VALID),
        calls: Arc::clone(&model_calls),
        checked_system: AtomicUsize::new(0),
    };
    // `OutputMode::Auto` (the default) resolves to prompted: the fake has no native structured
    // output.
    let agent = Agent::new("Extract the city and its temperature.").model(fake).output::<CityTemp>();
    let expected = CityTemp { city: "Paris".to_owned(), temp_c: 21.5 };
    let warmup = warmup_runs(N_W6);
    let outcome = time_runs(warmup, N_W6, |_| {
        let (agent, expected) = (&agent, &expected);
        async move {
            let result = agent.run(W6_INPUT).await?;
            ensure!(result.output == *expected, "output {:?}", result.output);
            ensure!(result.turns == 2, "{} model calls", result.turns);
            Ok(())
        }
    })
    .await
    .and_then(|timings| {
        let runs = warmup + N_W6;
        let calls = model_calls.load(Ordering::Relaxed);
        ensure!(calls == 2 * runs, "{calls} model calls in {runs} runs");
        Ok(timings)
    });
    finish(workload, None, N_W6, outcome)
}

// ---------------------------------------------------------------------------------------------
// Cold start.

/// The process the cold start times: builds an agent with one tool on the echo model, runs one
/// turn, prints `ok <peak RSS in kB>`.
fn cold_start_child() -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let agent = Agent::new("You do sums with the add tool.").model("echo").tool(AddTool);
        let result = agent.run("hello").await?;
        ensure!(result.output == "Echo: hello", "output {:?}", result.output);
        println!("ok {}", peak_rss_kb().unwrap_or(0));
        Ok(())
    })
}

/// Cold start: the median wall time, from spawn to exit, of fresh processes that build an
/// agent and run one turn (after one untimed process, which loads the binary into the page
/// cache).
fn cold_start() -> Record {
    let workload = Workload::ColdStart.line_name();
    let outcome = (|| -> anyhow::Result<(Vec<Duration>, u64)> {
        let exe = std::env::current_exe().context("cannot find this benchmark's executable")?;
        let mut times = Vec::with_capacity(COLD_STARTS);
        let mut peak_kb = 0;
        for i in 0..=COLD_STARTS {
            let started = Instant::now();
            let output = Command::new(&exe)
                .arg("--cold-start-child")
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .context("cannot start the cold-start process")?;
            let elapsed = started.elapsed();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let kb = stdout.trim().strip_prefix("ok ").and_then(|kb| kb.parse::<u64>().ok());
            let Some(kb) = kb.filter(|_| output.status.success()) else {
                bail!("the cold-start process failed ({}): {stdout}", output.status);
            };
            if i > 0 {
                times.push(elapsed);
                peak_kb = peak_kb.max(kb);
            }
        }
        Ok((times, peak_kb))
    })();
    match outcome {
        Ok((mut times, peak_kb)) => {
            times.sort_unstable();
            let ms = |d: Duration| round(d.as_secs_f64() * 1e3, 3);
            Record::new(workload, None)
                .with("n", COLD_STARTS)
                .with("median_ms", ms(Timings::percentile(&times, 50.0)))
                .with("min_ms", ms(times[0]))
                .with("max_ms", ms(times[times.len() - 1]))
                .with("peak_rss_mb", round(peak_kb as f64 / 1024.0, 1))
                .with("verified", true)
        }
        Err(e) => Record::failed(workload, None, COLD_STARTS, &format!("{e:#}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Journaled steps.

/// The W3 run on an agent whose store journals every step: `per_run_us` for the run, and
/// `per_step_us` for one journal append (the run's time over the records it appended).
async fn journal_step<S: SessionStore + Journal>(workload: &str, store: Arc<S>, n: usize) -> Record {
    let model_calls = Arc::new(AtomicUsize::new(0));
    let agent = Agent::new("You do sums with the add tool.")
        .model(AddFake::new(&model_calls))
        .tool(AddTool)
        .store(Arc::clone(&store));
    // A user of this process alone, so runs of earlier benchmarks in the same database do
    // not add history; a session per run, so each run's history is empty.
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let user = format!("bench-{}-{stamp}", std::process::id());
    let warmup = warmup_runs(n);
    let adds_before = ADD_CALLS.load(Ordering::Relaxed);
    let outcome = async {
        let timings = time_runs(warmup, n, |i| {
            let (agent, user) = (&agent, user.as_str());
            async move {
                let result = agent.run(W3_INPUT).user(user).session(format!("j{i}")).await?;
                ensure!(result.output == W3_OUTPUT, "output {:?}", result.output);
                ensure!(
                    (result.turns, result.tool_calls) == (2, 1),
                    "{} turns, {} tool calls",
                    result.turns,
                    result.tool_calls
                );
                Ok(())
            }
        })
        .await?;
        // One more run, to count what a run appends to the journal.
        let session = SessionId::new("count")?;
        let result = agent.run(W3_INPUT).user(user.as_str()).session(session.clone()).await?;
        let records = store.records(&RunKey::new(result.user.clone(), session, result.run_id)).await?;
        let appends = records.len();
        let read = decode_records(records)?;
        ensure!(read.corrupt.is_empty(), "unreadable journal records: {:?}", read.corrupt);
        let first = read.entries.first().map(|(_, e)| e);
        let last = read.entries.last().map(|(_, e)| e);
        ensure!(
            matches!(first, Some(JournalEntry::RunStarted { .. })) && matches!(last, Some(JournalEntry::RunFinished)),
            "the journal does not run from start to finish: {:?}",
            read.entries
        );
        let runs = warmup + n + 1;
        let adds = ADD_CALLS.load(Ordering::Relaxed) - adds_before;
        let calls = model_calls.load(Ordering::Relaxed);
        ensure!(adds == runs && calls == 2 * runs, "{adds} tool runs and {calls} model calls in {runs} runs");
        Ok::<_, anyhow::Error>((timings, appends))
    }
    .await;
    match outcome {
        Ok((timings, appends)) => {
            let per_run = timings.wall.as_secs_f64() * 1e6 / timings.n() as f64;
            timings
                .record(workload, None)
                .with("appends_per_run", appends)
                .with("per_step_us", round(per_run / appends.max(1) as f64, 3))
                .with("peak_rss_mb", peak_rss_mb().map_or(Value::Null, Value::from))
                .with("verified", true)
        }
        Err(e) => Record::failed(workload, None, n, &format!("{e:#}")),
    }
}

/// The journaled W3 run on SQLite, in a file in the temporary directory.
async fn journal_sqlite() -> Record {
    let workload = Workload::JournalSqlite.line_name();
    let path = std::env::temp_dir().join(format!("loom-bench-journal-{}.sqlite", std::process::id()));
    let record = match SqliteStore::open(&path) {
        Ok(store) => journal_step(workload, Arc::new(store), N_JOURNAL_SQLITE).await,
        Err(e) => Record::failed(workload, None, N_JOURNAL_SQLITE, &format!("cannot open {}: {e}", path.display())),
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(file));
    }
    record
}

/// The journaled W3 run on PostgreSQL at `LOOM_TEST_POSTGRES_URL`.
#[cfg(feature = "postgres")]
async fn journal_postgres() -> Record {
    let workload = Workload::JournalPostgres.line_name();
    let Ok(url) = std::env::var("LOOM_TEST_POSTGRES_URL") else {
        return Record::new(workload, None).with("skipped", "LOOM_TEST_POSTGRES_URL is not set");
    };
    match loomflow::session::PostgresStore::connect(&url).await {
        Ok(store) => journal_step(workload, Arc::new(store), N_JOURNAL_POSTGRES).await,
        Err(e) => Record::failed(workload, None, N_JOURNAL_POSTGRES, &format!("{e}")),
    }
}

/// Without the `postgres` feature there is no PostgreSQL store to measure. (It is not on for
/// the other lines: its `sqlx` turns on `tracing`'s `log` feature, which every span then pays.)
#[cfg(not(feature = "postgres"))]
async fn journal_postgres() -> Record {
    Record::new(Workload::JournalPostgres.line_name(), None)
        .with("skipped", "built without the `postgres` feature (add `--features postgres`)")
}

// ---------------------------------------------------------------------------------------------
// W7 and W8: architectures, against the same number of plain ReAct turns.

/// The cost of `turns` plain ReAct model calls (W3's agent, two calls a run), timed now in
/// this process: what W7 is held against.
async fn react_turns_us(turns: usize) -> anyhow::Result<f64> {
    let calls = Arc::new(AtomicUsize::new(0));
    let agent = Agent::new("You do sums with the add tool.").model(AddFake::new(&calls)).tool(AddTool);
    let timings = time_runs(warmup_runs(N_REACT_BASELINE), N_REACT_BASELINE, |_| {
        let agent = &agent;
        async move {
            let result = agent.run(W3_INPUT).await?;
            ensure!(result.output == W3_OUTPUT, "output {:?}", result.output);
            Ok(())
        }
    })
    .await?;
    let per_turn = us(timings.wall) / (2 * timings.n()) as f64;
    Ok(round(per_turn * turns as f64, 3))
}

/// A line with what the same work costs as plain ReAct (`react_us`, timed in this process)
/// and the ratio to it.
fn against_react(record: Record, turns: usize, baseline: anyhow::Result<f64>) -> Record {
    let Some(per_run) = record.get("per_run_us").and_then(Value::as_f64) else { return record };
    match baseline {
        Ok(react) => record
            .with("model_calls_per_run", turns)
            .with("react_us", react)
            .with("vs_react", round(per_run / react, 2)),
        Err(e) => Record::failed(
            record.get("workload").and_then(Value::as_str).unwrap_or("?"),
            None,
            0,
            &format!("the ReAct baseline failed: {e:#}"),
        ),
    }
}

/// W7's workers.
const W7_WORKERS: [&str; 3] = ["w1", "w2", "w3"];
/// W7's answer.
const W7_OUTPUT: &str = "All three: The sum is 5";

/// W7's manager: three delegations at once, then, with the three results read, the answer.
struct ManagerFake {
    delegate: ModelResponse,
    answer: ModelResponse,
    calls: Arc<AtomicUsize>,
}

impl ManagerFake {
    fn new(calls: &Arc<AtomicUsize>) -> Self {
        let args = serde_json::json!({"worker": "w1", "instructions": W3_INPUT});
        let delegate = ModelResponse::tool_calls(
            W7_WORKERS
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let mut args = args.clone();
                    args["worker"] = Value::from(*w);
                    ToolCall::new(format!("d{i}"), "delegate", args.to_string())
                })
                .collect(),
        );
        Self { delegate, answer: ModelResponse::text(W7_OUTPUT), calls: Arc::clone(calls) }
    }
}

#[async_trait]
impl Model for ManagerFake {
    fn name(&self) -> &str {
        "manager-fake"
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if request.last_is_tool_result() {
            let results: Vec<&Message> = request.messages.iter().filter(|m| m.role() == Role::Tool).collect();
            if results.len() != W7_WORKERS.len() || results.iter().any(|r| r.text() != W3_OUTPUT) {
                return Err(unexpected(format!("unexpected delegation results {results:?}")));
            }
            return Ok(self.answer.clone());
        }
        expect_last_user(request, W7_INPUT)?;
        Ok(self.delegate.clone())
    }
}

/// W7's input.
const W7_INPUT: &str = "Ask the three workers what 2 + 3 is.";

/// W7: a supervisor delegates to three workers at once; each is W3's agent (it calls `add`,
/// reads `5`, answers); the manager answers from the three. Eight model calls a run.
async fn w7_supervisor() -> Record {
    let workload = Workload::W7.line_name();
    let manager_calls = Arc::new(AtomicUsize::new(0));
    let worker_calls = Arc::new(AtomicUsize::new(0));
    let team = W7_WORKERS.iter().fold(loomflow::arch::Supervisor::new(), |team, name| {
        let worker =
            Agent::new("You do sums with the add tool.").name(*name).model(AddFake::new(&worker_calls)).tool(AddTool);
        team.worker(*name, worker)
    });
    let agent = Agent::new("You ask your workers.").model(ManagerFake::new(&manager_calls)).architecture(team);
    let warmup = warmup_runs(N_W7);
    let adds_before = ADD_CALLS.load(Ordering::Relaxed);
    let outcome = time_runs(warmup, N_W7, |_| {
        let agent = &agent;
        async move {
            let result = agent.run(W7_INPUT).await?;
            ensure!(result.output == W7_OUTPUT, "output {:?}", result.output);
            ensure!(
                (result.turns, result.tool_calls) == (2, 3),
                "{} turns, {} tool calls",
                result.turns,
                result.tool_calls
            );
            Ok(())
        }
    })
    .await
    .and_then(|timings| {
        let runs = warmup + N_W7;
        let adds = ADD_CALLS.load(Ordering::Relaxed) - adds_before;
        let (managers, workers) = (manager_calls.load(Ordering::Relaxed), worker_calls.load(Ordering::Relaxed));
        ensure!(
            adds == 3 * runs && managers == 2 * runs && workers == 6 * runs,
            "{adds} tool runs, {managers} manager and {workers} worker calls in {runs} runs"
        );
        Ok(timings)
    });
    let record = finish(workload, None, N_W7, outcome);
    let baseline = react_turns_us(8).await;
    against_react(record, 8, baseline)
}

/// W8's input.
const W8_INPUT: &str = "Work out the sums.";
/// W8's answer.
const W8_OUTPUT: &str = "12";

/// W8's planner and solver: the plan of six `add` steps when asked by the planner; `12` when
/// the solver's evidence has E6's result.
struct RewooFake {
    plan: ModelResponse,
    answer: ModelResponse,
    calls: Arc<AtomicUsize>,
}

impl RewooFake {
    fn new(calls: &Arc<AtomicUsize>) -> Self {
        let plan = serde_json::json!({"steps": [
            {"id": "E1", "tool": "add", "args": {"a": 1, "b": 2}},
            {"id": "E2", "tool": "add", "args": {"a": 3, "b": 4}},
            {"id": "E3", "tool": "add", "args": {"a": "{{E1}}", "b": 1}},
            {"id": "E4", "tool": "add", "args": {"a": "{{E2}}", "b": 1}},
            {"id": "E5", "tool": "add", "args": {"a": "{{E1}}", "b": "{{E2}}"}},
            {"id": "E6", "tool": "add", "args": {"a": "{{E3}}", "b": "{{E4}}"}},
        ]});
        Self {
            plan: ModelResponse::text(plan.to_string()),
            answer: ModelResponse::text(W8_OUTPUT),
            calls: Arc::clone(calls),
        }
    }
}

#[async_trait]
impl Model for RewooFake {
    fn name(&self) -> &str {
        "rewoo-fake"
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let Some(Message::User { content }) = request.messages.last() else {
            return Err(unexpected("expected a user message last"));
        };
        let text = content.text();
        if text.starts_with("Task:") && text.contains("Tools available") {
            return Ok(self.plan.clone());
        }
        if text.contains("E6 = add") && text.contains("): 12") && text.contains("E5 = add") && text.contains("): 10") {
            return Ok(self.answer.clone());
        }
        Err(unexpected(format!("unexpected request {text:?}")))
    }
}

/// W8: ReWOO: one planner call, six `add` calls in three levels (2, 3, 1), each level at once,
/// one solver call.
async fn w8_rewoo() -> Record {
    let workload = Workload::W8.line_name();
    let calls = Arc::new(AtomicUsize::new(0));
    let agent = Agent::new("You do sums with the add tool.")
        .model(RewooFake::new(&calls))
        .tool(AddTool)
        .architecture(loomflow::arch::ReWoo::new());
    let warmup = warmup_runs(N_W8);
    let adds_before = ADD_CALLS.load(Ordering::Relaxed);
    let outcome = time_runs(warmup, N_W8, |_| {
        let agent = &agent;
        async move {
            let result = agent.run(W8_INPUT).await?;
            ensure!(result.output == W8_OUTPUT, "output {:?}", result.output);
            ensure!(
                (result.turns, result.tool_calls) == (2, 6),
                "{} turns, {} tool calls",
                result.turns,
                result.tool_calls
            );
            Ok(())
        }
    })
    .await
    .and_then(|timings| {
        let runs = warmup + N_W8;
        let adds = ADD_CALLS.load(Ordering::Relaxed) - adds_before;
        let calls = calls.load(Ordering::Relaxed);
        ensure!(adds == 6 * runs && calls == 2 * runs, "{adds} tool runs and {calls} model calls in {runs} runs");
        Ok(timings)
    });
    let record = finish(workload, None, N_W8, outcome);
    let baseline = w8_as_react().await;
    against_react(record, 2, baseline)
}

/// W8's work done by ReAct: the model asks for each level's `add` calls in a turn of its own
/// (2, then 3, then 1), then answers: four model calls, six tool calls.
struct LevelsFake {
    levels: [ModelResponse; 3],
    answer: ModelResponse,
}

impl LevelsFake {
    fn new() -> Self {
        let call = |id: &str, a: i64, b: i64| ToolCall::new(id, "add", serde_json::json!({"a": a, "b": b}).to_string());
        Self {
            levels: [
                ModelResponse::tool_calls(vec![call("E1", 1, 2), call("E2", 3, 4)]),
                ModelResponse::tool_calls(vec![call("E3", 3, 1), call("E4", 7, 1), call("E5", 3, 7)]),
                ModelResponse::tool_calls(vec![call("E6", 4, 8)]),
            ],
            answer: ModelResponse::text(W8_OUTPUT),
        }
    }
}

#[async_trait]
impl Model for LevelsFake {
    fn name(&self) -> &str {
        "levels-fake"
    }

    async fn complete(&self, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
        let results = request.messages.iter().filter(|m| m.role() == Role::Tool).count();
        match results {
            0 => Ok(self.levels[0].clone()),
            2 => Ok(self.levels[1].clone()),
            5 => Ok(self.levels[2].clone()),
            6 if request.messages.last().is_some_and(|m| m.text() == "12") => Ok(self.answer.clone()),
            n => Err(unexpected(format!("unexpected conversation with {n} tool results"))),
        }
    }
}

/// The per-run cost of W8's work done by a plain ReAct agent, timed now in this process.
async fn w8_as_react() -> anyhow::Result<f64> {
    let agent = Agent::new("You do sums with the add tool.").model(LevelsFake::new()).tool(AddTool);
    let timings = time_runs(warmup_runs(N_REACT_BASELINE), N_REACT_BASELINE, |_| {
        let agent = &agent;
        async move {
            let result = agent.run(W8_INPUT).await?;
            ensure!(result.output == W8_OUTPUT && result.tool_calls == 6, "output {:?}", result.output);
            Ok(())
        }
    })
    .await?;
    Ok(round(us(timings.wall) / timings.n() as f64, 3))
}
