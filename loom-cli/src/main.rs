//! `loom`: run, chat with, draw, serve and inspect Loom agents and workflows from TOML files.
//!
//! ```sh
//! loom run agent.toml "What is the capital of France?"   # streamed answer
//! loom run agent.toml --json "..."                       # every event as a JSON line
//! loom chat agent.toml                                   # a conversation; Ctrl-C cancels a turn
//! loom graph workflow.toml --format dot                  # Mermaid (default) or DOT
//! loom sessions list agent.toml --user ada               # sessions list|show|fork|forget
//! loom runs list agent.toml --user ada --session s1      # runs list|resume
//! loom audit verify audit.jsonl --key "$AUDIT_KEY"       # the audit log's hash chains
//! loom serve agent.toml --port 8080                      # the HTTP API on 127.0.0.1
//! loom ingest docs/ --into corpus.db                    # a RAG corpus, with a progress bar
//! loom search corpus.db "how do I resume a run?"          # its best passages
//! loom eval agent.toml cases.jsonl                       # the share of answers that hold what was expected
//! ```
//!
//! Exit codes: 0 success; 1 the run failed, or what was checked is not intact; 2 the command
//! line or the config file is wrong. Errors are one message on stderr, never a backtrace.

mod commands;
mod eval;
mod output;
mod rag;
mod script;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run, chat with, draw, serve and inspect Loom agents and workflows from TOML files.
#[derive(Debug, Parser)]
#[command(name = "loom", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Exit codes: 0 success, 1 the run failed or a check found problems, 2 bad arguments or config.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an agent or a workflow once on an input and print its answer as it streams.
    Run(RunArgs),
    /// Talk to an agent: each line is a turn of one session (`/help` lists the commands).
    Chat(ChatArgs),
    /// Draw a workflow file's graph as Mermaid or DOT.
    Graph(GraphArgs),
    /// List, show, fork and forget an agent's sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// List and resume an agent's journaled runs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Check a tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Serve an agent or a workflow over HTTP: an OpenAI-compatible API and Loom's own.
    Serve(ServeArgs),
    /// Load files or folders into a RAG corpus in SQLite (chunked and embedded offline).
    Ingest(IngestArgs),
    /// Retrieve the passages of a corpus that best answer a query.
    Search(SearchArgs),
    /// Run an agent or a workflow over test cases and report how many answers hold what was
    /// expected.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
struct EvalArgs {
    #[command(flatten)]
    target: Target,
    /// The cases: JSON lines, each `{"input": "..", "expect": ".."}` (the answer must contain
    /// `expect`, ignoring case).
    cases: PathBuf,
    /// The user the runs belong to.
    #[arg(long, env = "LOOM_USER", default_value = "local")]
    user: String,
    /// How many cases run at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The share of cases that must pass (0 to 1); every one by default.
    #[arg(long, value_name = "SHARE")]
    min: Option<f64>,
    /// Print each case's outcome as a JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Files or folders (folders are walked; text, Markdown, HTML, JSON, CSV and PDF files load).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The SQLite file the corpus lives in (created if missing).
    #[arg(long, value_name = "FILE")]
    into: PathBuf,
    /// The corpus's name within the file.
    #[arg(long, default_value = "default")]
    collection: String,
    /// Only files matching these globs, in folders (`**/*.md`).
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// The user whose corpus it is.
    #[arg(long, env = "LOOM_USER", default_value = "local")]
    user: String,
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// The corpus's SQLite file.
    corpus: PathBuf,
    /// The query.
    #[arg(required = true)]
    query: Vec<String>,
    /// The corpus's name within the file.
    #[arg(long, default_value = "default")]
    collection: String,
    /// How many passages.
    #[arg(long, default_value_t = 5)]
    limit: usize,
    /// The user whose corpus it is.
    #[arg(long, env = "LOOM_USER", default_value = "local")]
    user: String,
    /// Print the passages as JSON lines.
    #[arg(long)]
    json: bool,
}

/// Which file, and how to build it.
#[derive(Debug, Args)]
struct Target {
    /// The agent or workflow file (a workflow file has a `[workflow]` table).
    file: PathBuf,
    /// Use this model instead of the file's (every agent's, for a workflow): `echo`,
    /// `gpt-4.1-mini`, `ollama/llama3.2`, ...
    #[arg(long, value_name = "SPEC")]
    model: Option<String>,
    /// Replay a scripted model instead of the file's: a JSON list of turns, each
    /// `{"text": ".."}` or `{"tool": "name", "arguments": {..}}`, with an optional
    /// `"delay_ms"` (offline demos and tests).
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    script: Option<PathBuf>,
    /// The folder the built-in file tools (`read_file`, `grep`, ...) work in.
    #[arg(long, value_name = "DIR", default_value = ".")]
    root: PathBuf,
}

/// Who runs, and in which session.
#[derive(Debug, Args)]
struct Who {
    /// The user the run belongs to (its sessions, budgets and audit entries).
    #[arg(long, env = "LOOM_USER", default_value = "local")]
    user: String,
    /// The session: the conversation the run continues.
    #[arg(long, env = "LOOM_SESSION")]
    session: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    who: Who,
    /// Print every event as a JSON line (then the result as the last line).
    #[arg(long)]
    json: bool,
    /// The input; read from stdin when left out.
    input: Vec<String>,
}

#[derive(Debug, Args)]
struct ChatArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    who: Who,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Debug, Args)]
struct GraphArgs {
    /// The workflow file.
    file: PathBuf,
    /// The drawing's language.
    #[arg(long, value_enum, default_value = "mermaid")]
    format: GraphFormat,
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// The user's sessions.
    List {
        #[command(flatten)]
        target: Target,
        /// The user.
        #[arg(long, env = "LOOM_USER", default_value = "local")]
        user: String,
    },
    /// A session's messages.
    Show {
        #[command(flatten)]
        target: Target,
        /// The session.
        session: String,
        /// The user.
        #[arg(long, env = "LOOM_USER", default_value = "local")]
        user: String,
        /// Print the messages as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a session's messages into a new session, to go on from there another way.
    Fork {
        #[command(flatten)]
        target: Target,
        /// The session to copy.
        session: String,
        /// The new session (must be empty).
        into: String,
        /// The user.
        #[arg(long, env = "LOOM_USER", default_value = "local")]
        user: String,
    },
    /// Delete a session's messages.
    Forget {
        #[command(flatten)]
        target: Target,
        /// The session.
        session: String,
        /// The user.
        #[arg(long, env = "LOOM_USER", default_value = "local")]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// The user's journaled runs (of one session, or of all).
    List {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        who: Who,
    },
    /// Resume a journaled run: recorded steps are replayed, the run goes on from the first
    /// that did not finish.
    Resume {
        #[command(flatten)]
        target: Target,
        /// The run (`latest` for the session's latest unfinished run).
        run: String,
        #[command(flatten)]
        who: Who,
        /// Approve a tool call the run waits on (its call id).
        #[arg(long, value_name = "CALL_ID")]
        approve: Vec<String>,
        /// Deny a tool call the run waits on (its call id).
        #[arg(long, value_name = "CALL_ID")]
        deny: Vec<String>,
        /// Print every event as a JSON line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify every user's hash chain in a JSONL audit log: says which entry was edited,
    /// deleted, inserted or moved.
    Verify {
        /// The log.
        file: PathBuf,
        /// The log's signing key (its bytes, at least 32).
        #[arg(long, env = "LOOM_AUDIT_KEY", hide_env_values = true)]
        key: String,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    target: Target,
    /// The address to listen on; only this machine by default.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port (0 picks a free one, printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Bearer tokens that may call the server, each `TOKEN=USER` (else the server is open and
    /// takes the user from the request).
    #[arg(
        long = "token",
        value_name = "TOKEN=USER",
        env = "LOOM_SERVE_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    tokens: Vec<String>,
}

/// A failure, with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// The command line or the config file is wrong (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self { code: 2, message: message.into() }
    }

    /// The work failed (exit 1).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self { code: 1, message: message.into() }
    }
}

impl From<loomflow::Error> for Failure {
    fn from(e: loomflow::Error) -> Self {
        match e {
            loomflow::Error::ConfigFile(_) | loomflow::Error::Config(_) => Self::usage(e.to_string()),
            other => Self::failed(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::failed(e.to_string())
    }
}

pub(crate) type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    // A bug in Loom is reported as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error in loom: {what} (please report it)");
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async {
        let outcome = commands::dispatch(cli.command).await;
        // The exporter's last flush may block on its own tasks: not on a runtime thread.
        let _ = tokio::task::spawn_blocking(target::shutdown_telemetry).await;
        outcome
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
