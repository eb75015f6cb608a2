//! MCP benchmarks: what one tool call costs when it crosses the Model Context Protocol.
//!
//! | line | what is timed |
//! |---|---|
//! | `mcp_roundtrip` / `pipe_echo`, `tcp_echo` | the transport's floor here: a request-sized line to a child process and back, over its pipes / a loopback TCP connection, no MCP |
//! | `mcp_roundtrip` / `direct` | the floor: `Tool::call` of the `#[tool]` `add` in the process, `{"a": 2, "b": 3}` |
//! | `mcp_roundtrip` / `stdio` | the same call through Loom's MCP client to Loom's MCP server in a child process, over stdio |
//! | `mcp_roundtrip` / `http` | the same over streamable HTTP on 127.0.0.1 (the server in a child process) |
//! | `mcp_roundtrip` / `stdio_current_thread`, `http_current_thread` | the same two with both sides on tokio's current-thread runtime |
//! | `python-mcp` lines | the same three with the official Python SDK (`mcp` 2.3.0): `loom/benches/python/mcp_roundtrip.py` |
//! | `mcp_vs_python` | Python's p50 and p99 over Loom's, per transport, and the same for the overhead over each floor |
//!
//! ```sh
//! cargo bench -p loomflow --bench mcp                  # readable table
//! cargo bench -p loomflow --bench mcp -- --json        # one JSON line per measurement
//! cargo bench -p loomflow --bench mcp -- --quick       # fewer calls, a few seconds
//! cargo bench -p loomflow --bench mcp -- --no-python   # Loom's lines only
//! ```
//!
//! **What a call is.** The MCP lines call the tool the way an agent does: through the Loom
//! tool that `McpClient::tools` returns (arguments parsed, the call registered for progress,
//! the request sent with its timeout, the result converted), the server running the tool
//! through its `ToolSet`. Calls go one after another on one connection, each timed alone;
//! `calls_per_s` is the number of calls over the wall time of all of them. Every result is
//! checked to be `5`; a failed check prints `"verified": false` and the process exits non-zero.
//!
//! **The servers** are this binary run again with `LOOM_BENCH_MCP_SERVE=stdio|http`: over
//! stdio Loom's client owns the child (killed with its process group when the client closes);
//! the HTTP child prints its URL, serves until its standard input closes, and is killed and
//! reaped when its line is done. Both sides use tokio's multi-thread runtime with its default
//! number of workers (`#[tokio::main]`), then both its current-thread runtime (one thread, as
//! an MCP server serving one client may well be; the Python SDK's asyncio is single-threaded
//! too). On a 2-core VM each cross-thread wake-up costs tens of µs, and an MCP round trip has
//! several: the `*_echo` lines show what one wake-up each way costs.
//!
//! **Python.** When `python3` (or `LOOM_BENCH_PYTHON`) imports `mcp`'s v2 API
//! (`pip install mcp==2.3.0`), the script runs the same three lines; otherwise its lines say
//! `skipped`. The target is a round trip at least 10× cheaper than Python's.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use loomflow::mcp::{McpClient, McpServer, McpService};
use loomflow::prelude::*;
use loomflow::{RunContext, UserId};
use serde_json::{Value, json};

#[path = "common/text.rs"]
mod text;

use text::{human_us, percentile, round, thousands, us};

/// Set in a child process to make it the server: `stdio` or `http`.
const SERVE_ENV: &str = "LOOM_BENCH_MCP_SERVE";
/// The tokio runtime of a child server: `multi_thread` (the default) or `current_thread`.
const RUNTIME_ENV: &str = "LOOM_BENCH_MCP_RUNTIME";
const ARGUMENTS: &str = r#"{"a":2,"b":3}"#;
const EXPECTED: &str = "5";
/// The Loom/Python ratio the round trip should reach.
const TARGET_RATIO: f64 = 10.0;

const USAGE: &str = "usage: cargo bench -p loomflow --bench mcp -- [--json] [--quick] [--no-python]";

/// Add two integers.
#[tool(read_only, idempotent)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

struct Options {
    json: bool,
    quick: bool,
    python: bool,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options { json: false, quick: false, python: true };
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => options.json = true,
            "--quick" => options.quick = true,
            "--no-python" => options.python = false,
            "--bench" => {}
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
    let outcome = match std::env::var(SERVE_ENV) {
        Ok(mode) => serve(&mode).map(|()| true),
        Err(_) => run_main(),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("mcp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Which tokio runtime a side runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// `#[tokio::main]`'s: a worker a core.
    MultiThread,
    /// One thread (`#[tokio::main(flavor = "current_thread")]`).
    CurrentThread,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Self::MultiThread => "multi_thread",
            Self::CurrentThread => "current_thread",
        }
    }

    /// The line's variant: the transport, with the runtime when it is not the default.
    fn variant(self, transport: &str) -> String {
        match self {
            Self::MultiThread => transport.to_owned(),
            Self::CurrentThread => format!("{transport}_current_thread"),
        }
    }

    fn runtime(self) -> anyhow::Result<tokio::runtime::Runtime> {
        let mut builder = match self {
            Self::MultiThread => tokio::runtime::Builder::new_multi_thread(),
            Self::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        };
        builder.enable_all().build().context("cannot build the tokio runtime")
    }
}

fn service() -> McpService {
    McpService::new("loom-bench").tool(AddTool)
}

/// The child process: Loom's MCP server of `add`, or an echo for the transport floors.
fn serve(mode: &str) -> anyhow::Result<()> {
    match mode {
        "echo-stdio" => return echo_stdio(),
        "echo-tcp" => return echo_tcp(),
        _ => {}
    }
    let flavor = match std::env::var(RUNTIME_ENV).as_deref() {
        Ok("current_thread") => Flavor::CurrentThread,
        _ => Flavor::MultiThread,
    };
    flavor.runtime()?.block_on(async {
        match mode {
            "stdio" => service().serve_stdio().await?,
            "http" => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                println!("http://{}/mcp", listener.local_addr()?);
                // The parent holds our standard input: when it goes, so do we.
                std::thread::spawn(|| {
                    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
                    std::process::exit(0);
                });
                service().serve_http(listener).await?;
            }
            other => bail!("{SERVE_ENV} must be `stdio`, `http`, `echo-stdio` or `echo-tcp`, not `{other}`"),
        }
        Ok(())
    })
}

fn run_main() -> anyhow::Result<bool> {
    let options = parse_args()?;
    let (floor_n, loom_n, python_n) = if options.quick { (2_000, 500, 200) } else { (50_000, 5_000, 2_000) };
    let mut lines = Vec::new();
    lines.push(record("pipe_echo", None, loom_n, pipe_echo(loom_n)));
    lines.push(record("tcp_echo", None, loom_n, tcp_echo(loom_n)));
    for flavor in [Flavor::MultiThread, Flavor::CurrentThread] {
        // Both sides on the same kind of runtime: the client here, the server in its child.
        flavor.runtime()?.block_on(async {
            if flavor == Flavor::MultiThread {
                lines.push(record("direct", Some(flavor), floor_n, floor(floor_n).await));
            }
            lines.push(record(&flavor.variant("stdio"), Some(flavor), loom_n, over_stdio(flavor, loom_n).await));
            lines.push(record(&flavor.variant("http"), Some(flavor), loom_n, over_http(flavor, loom_n).await));
        });
    }
    let ok = lines.iter().all(|l| l["verified"] == true);
    let python = if options.python { python_lines(python_n) } else { vec![skipped("--no-python")] };
    // Python's own failures are reported, not held against Loom.
    lines.extend(python.iter().cloned());
    lines.extend(comparisons(&lines));
    if options.json {
        for line in &lines {
            println!("{line}");
        }
    } else {
        print_table(&lines);
    }
    Ok(ok)
}

/// Individually timed calls, and the wall time of all of them.
struct Timings {
    runs: Vec<Duration>,
    wall: Duration,
}

async fn time_calls<F, Fut>(n: usize, mut call: F) -> anyhow::Result<Timings>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<String>>,
{
    let warmup = (n / 20).clamp(5, 200);
    for _ in 0..warmup {
        let got = call().await?;
        ensure!(got == EXPECTED, "add(2, 3) returned {got:?}");
    }
    let mut runs = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let got = call().await;
        runs.push(t.elapsed());
        let got = got?;
        ensure!(got == EXPECTED, "add(2, 3) returned {got:?}");
    }
    Ok(Timings { runs, wall: start.elapsed() })
}

async fn call_tool(tool: &dyn Tool, ctx: &RunContext) -> anyhow::Result<String> {
    let output = tool.call(ctx, ARGUMENTS).await.map_err(|e| anyhow!("the call failed: {e}"))?;
    Ok(output.as_text().into_owned())
}

async fn floor(n: usize) -> anyhow::Result<Timings> {
    let ctx = RunContext::new(UserId::anonymous());
    let tool = AddTool;
    time_calls(n, || call_tool(&tool, &ctx)).await
}

/// Times `add` through a connected client's Loom tool.
async fn through(client: &McpClient, n: usize) -> anyhow::Result<Timings> {
    let tool: Arc<dyn Tool> = client
        .tools()
        .into_iter()
        .find(|t| t.definition().name() == "add")
        .ok_or_else(|| anyhow!("the server lists no `add`"))?;
    let ctx = RunContext::new(UserId::anonymous());
    time_calls(n, || call_tool(&*tool, &ctx)).await
}

fn this_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the benchmark's own binary")
}

async fn over_stdio(flavor: Flavor, n: usize) -> anyhow::Result<Timings> {
    let exe = this_binary()?;
    let server = McpServer::stdio("loom-bench", exe.display().to_string())
        .env(SERVE_ENV, "stdio")
        .env(RUNTIME_ENV, flavor.name());
    let client = McpClient::connect(server).await?;
    let timings = through(&client, n).await;
    client.close().await;
    timings
}

/// A server's process, killed and reaped when dropped.
struct ChildProcess {
    child: Child,
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn over_http(flavor: Flavor, n: usize) -> anyhow::Result<Timings> {
    let mut child = Command::new(this_binary()?)
        .env(SERVE_ENV, "http")
        .env(RUNTIME_ENV, flavor.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the HTTP server")?;
    let stdout = child.stdout.take();
    let server = ChildProcess { child };
    let mut url = String::new();
    if let Some(stdout) = stdout {
        BufReader::new(stdout).read_line(&mut url).context("cannot read the server's URL")?;
    }
    let url = url.trim();
    ensure!(url.starts_with("http://127.0.0.1:"), "the HTTP server said no URL (it wrote {url:?})");
    let client = McpClient::connect(McpServer::http("loom-bench", url)).await?;
    let timings = through(&client, n).await;
    client.close().await;
    drop(server);
    timings
}

/// A `tools/call` request as Loom's client writes it, the size of what the echo floors send.
const REQUEST_LINE: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3},"_meta":{"progressToken":7}}}"#;

/// The echo child: each line of standard input back on standard output, flushed.
fn echo_stdio() -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    let mut line = String::new();
    while input.read_line(&mut line)? > 0 {
        output.write_all(line.as_bytes())?;
        output.flush()?;
        line.clear();
    }
    Ok(())
}

/// The echo child over TCP: prints its port, then echoes the lines of one connection.
fn echo_tcp() -> anyhow::Result<()> {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let (stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        writer.write_all(line.as_bytes())?;
        line.clear();
    }
    Ok(())
}

/// Times `n` blocking round trips of [`REQUEST_LINE`] through an echo.
fn time_echo(n: usize, mut write: impl std::io::Write, mut read: impl std::io::BufRead) -> anyhow::Result<Timings> {
    let sent = format!("{REQUEST_LINE}\n");
    let mut line = String::new();
    let mut round_trip = || -> anyhow::Result<()> {
        line.clear();
        write.write_all(sent.as_bytes())?;
        write.flush()?;
        read.read_line(&mut line)?;
        ensure!(line == sent, "the echo sent back {line:?}");
        Ok(())
    };
    for _ in 0..(n / 20).clamp(5, 200) {
        round_trip()?;
    }
    let mut runs = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        round_trip()?;
        runs.push(t.elapsed());
    }
    Ok(Timings { runs, wall: start.elapsed() })
}

/// The floor of any stdio round trip here: a line to a child process and back, no MCP.
fn pipe_echo(n: usize) -> anyhow::Result<Timings> {
    let mut child = Command::new(this_binary()?)
        .env(SERVE_ENV, "echo-stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the echo child")?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        bail!("no pipes to the echo child");
    };
    let server = ChildProcess { child };
    let timings = time_echo(n, stdin, BufReader::new(stdout));
    drop(server);
    timings
}

/// The floor of an HTTP round trip here: a line over a loopback TCP connection and back.
fn tcp_echo(n: usize) -> anyhow::Result<Timings> {
    let mut child = Command::new(this_binary()?)
        .env(SERVE_ENV, "echo-tcp")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the echo child")?;
    let stdout = child.stdout.take();
    let server = ChildProcess { child };
    let mut port = String::new();
    if let Some(stdout) = stdout {
        BufReader::new(stdout).read_line(&mut port)?;
    }
    let port: u16 = port.trim().parse().with_context(|| format!("the echo child said no port ({port:?})"))?;
    let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let timings = time_echo(n, stream.try_clone()?, BufReader::new(stream));
    drop(server);
    timings
}

fn record(variant: &str, flavor: Option<Flavor>, n: usize, outcome: anyhow::Result<Timings>) -> Value {
    let runtime = flavor.map(Flavor::name);
    let base =
        json!({"framework": "loom", "workload": "mcp_roundtrip", "variant": variant, "runtime": runtime, "n": n});
    let mut line = base.as_object().cloned().unwrap_or_default();
    match outcome {
        Ok(Timings { mut runs, wall }) => {
            let mean = runs.iter().sum::<Duration>() / runs.len().max(1) as u32;
            runs.sort_unstable();
            line.insert("p50_us".into(), json!(us(percentile(&runs, 50.0))));
            line.insert("p99_us".into(), json!(us(percentile(&runs, 99.0))));
            line.insert("mean_us".into(), json!(us(mean)));
            line.insert("calls_per_s".into(), json!(round(runs.len() as f64 / wall.as_secs_f64(), 1)));
            line.insert("verified".into(), json!(true));
        }
        Err(e) => {
            line.insert("verified".into(), json!(false));
            line.insert("error".into(), json!(format!("{e:#}")));
        }
    }
    Value::Object(line)
}

fn skipped(why: &str) -> Value {
    json!({"framework": "python-mcp", "workload": "mcp_roundtrip", "variant": null, "skipped": why})
}

/// The Python SDK's lines, from the script, or one line saying why there are none.
fn python_lines(n: usize) -> Vec<Value> {
    let python = std::env::var("LOOM_BENCH_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/python/mcp_roundtrip.py");
    let probe = Command::new(&python)
        .args(["-c", "from mcp.server.mcpserver import MCPServer; from mcp import Client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return vec![skipped(&format!("`{python}` cannot import the mcp v2 API (pip install mcp==2.3.0)"))];
    }
    let output = Command::new(&python)
        .arg(&script)
        .args(["--json", "--n", &n.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => return vec![skipped(&format!("cannot run {}: {e}", script.display()))],
    };
    let lines: Vec<Value> =
        String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if lines.is_empty() {
        return vec![skipped(&format!("{} printed no result ({})", script.display(), output.status))];
    }
    lines
}

fn find<'a>(lines: &'a [Value], python: bool, variant: &str) -> Option<&'a Value> {
    lines.iter().find(|l| {
        l["workload"] == "mcp_roundtrip"
            && l["variant"] == variant
            && l["verified"] == true
            && l["framework"].as_str().is_some_and(|f| f.starts_with("python") == python)
    })
}

/// Python over Loom, per transport and Loom runtime: the round trip, and its overhead over each
/// one's floor.
fn comparisons(lines: &[Value]) -> Vec<Value> {
    let f = |l: &Value, key: &str| l[key].as_f64().unwrap_or(f64::NAN);
    let (Some(loom_floor), Some(python_floor)) = (find(lines, false, "direct"), find(lines, true, "direct")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (variant, transport) in
        [("stdio", "stdio"), ("http", "http"), ("stdio_current_thread", "stdio"), ("http_current_thread", "http")]
    {
        let (Some(loom), Some(python)) = (find(lines, false, variant), find(lines, true, transport)) else { continue };
        let p50 = f(python, "p50_us") / f(loom, "p50_us");
        let p99 = f(python, "p99_us") / f(loom, "p99_us");
        let overhead_loom = f(loom, "p50_us") - f(loom_floor, "p50_us");
        let overhead_python = f(python, "p50_us") - f(python_floor, "p50_us");
        out.push(json!({
            "workload": "mcp_vs_python",
            "variant": variant,
            "loom_p50_us": f(loom, "p50_us"),
            "loom_p99_us": f(loom, "p99_us"),
            "python_p50_us": f(python, "p50_us"),
            "python_p99_us": f(python, "p99_us"),
            "p50_ratio": round(p50, 1),
            "p99_ratio": round(p99, 1),
            "loom_overhead_p50_us": round(overhead_loom, 3),
            "python_overhead_p50_us": round(overhead_python, 3),
            "overhead_ratio": round(overhead_python / overhead_loom, 1),
            "target_ratio": TARGET_RATIO,
            "target_met": p50 >= TARGET_RATIO && p99 >= TARGET_RATIO,
        }));
    }
    out
}

fn print_table(lines: &[Value]) {
    let f = |l: &Value, key: &str| l[key].as_f64().unwrap_or(f64::NAN);
    println!("| framework | line | p50 | p99 | calls/s | n |");
    println!("|---|---|---|---|---|---|");
    for line in lines.iter().filter(|l| l["workload"] == "mcp_roundtrip") {
        let framework = line["framework"].as_str().unwrap_or("?");
        let variant = line["variant"].as_str().unwrap_or("-");
        if let Some(why) = line["skipped"].as_str() {
            println!("| {framework} | skipped: {why} | | | | |");
        } else if line["verified"] != true {
            println!("| {framework} | {variant} | FAILED: {} | | | |", line["error"].as_str().unwrap_or("unverified"));
        } else {
            println!(
                "| {framework} | {variant} | {} | {} | {} | {} |",
                human_us(f(line, "p50_us")),
                human_us(f(line, "p99_us")),
                thousands(f(line, "calls_per_s").round() as u64),
                thousands(line["n"].as_u64().unwrap_or(0)),
            );
        }
    }
    for c in lines.iter().filter(|l| l["workload"] == "mcp_vs_python") {
        println!(
            "\n{}: Python / Loom = {}× at p50, {}× at p99; overhead over the floor {}× ({} vs {}){}",
            c["variant"].as_str().unwrap_or("?"),
            c["p50_ratio"],
            c["p99_ratio"],
            c["overhead_ratio"],
            human_us(f(c, "loom_overhead_p50_us")),
            human_us(f(c, "python_overhead_p50_us")),
            if c["target_met"] == true { "" } else { " — below the 10× target" },
        );
    }
    println!(
        "\na call: the Loom tool McpClient::tools returns → MCP → the server's ToolSet, add(2, 3), one at a time; \
         the floor: Tool::call in the process"
    );
}
