//! MCP servers the tests run as child processes.
//!
//! - `mcp-fixture stdio` serves the fixture tools on standard input and output;
//! - `mcp-fixture http 127.0.0.1:PORT` serves them at `http://127.0.0.1:PORT/mcp`;
//! - `mcp-fixture dynamic` serves, on stdio, a server whose tool list grows each time its
//!   `grow` tool is called, and which says so with `notifications/tools/list_changed`;
//! - `mcp-fixture raw MODE` speaks JSON-RPC by hand on stdio, the way a careless server
//!   might: its one tool `weird` answers with an unknown content type (`unknown-content`),
//!   a broken line (`malformed`), a line of 4 MiB (`huge`), or never (`silent`). Its replies
//!   carry nulls and extra fields, as real servers' do.
//!
//! The tools: `add` (read-only), `echo`, `remove` (destructive), `slow` (reports progress and
//! logs), `hang` (never answers), `die` (the process exits mid-call), `big` (a result of the
//! given size), `pid` (the server's process id), `marker` (writes a file on start, for restarts).

// Logging is deprecated from 2026-07-28 on; the fixture speaks 2025-11-25 as well.
#![allow(deprecated)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loomflow::mcp::rmcp::model as mcp;
use loomflow::mcp::rmcp::service::{RequestContext, RoleServer};
use loomflow::mcp::rmcp::{ErrorData, ServerHandler, ServiceExt as _};
use loomflow::mcp::{Listen, McpCall, McpService};
use loomflow::prelude::*;

/// Adds two integers.
#[tool(read_only, idempotent)]
fn add(
    /// The first.
    a: i64,
    /// The second.
    b: i64,
) -> i64 {
    a + b
}

/// Says the text back.
#[tool]
fn echo(
    /// What to say.
    text: String,
) -> String {
    text
}

/// Pretends to delete a file.
#[tool(destructive)]
fn remove(
    /// The file.
    path: String,
) -> String {
    format!("removed {path}")
}

/// Works for `steps` steps of `ms` milliseconds each, reporting progress and logging.
#[tool]
async fn slow(ctx: &RunContext, steps: u32, ms: u64) -> String {
    let call = ctx.state::<McpCall>();
    for step in 1..=steps {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        if let Some(call) = &call {
            call.progress(f64::from(step), Some(f64::from(steps)), Some(format!("step {step}"))).await;
            call.log(mcp::LoggingLevel::Info, Some("slow"), serde_json::json!(format!("finished step {step}"))).await;
        }
    }
    format!("done after {steps} steps")
}

/// Never answers.
#[tool]
async fn hang() -> String {
    std::future::pending::<()>().await;
    String::new()
}

/// Exits the server process in the middle of the call.
#[tool]
async fn die() -> String {
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::process::exit(3)
}

/// A text result of `bytes` bytes.
#[tool]
fn big(bytes: usize) -> String {
    "x".repeat(bytes)
}

/// The server's process id.
#[tool(read_only)]
fn pid() -> u32 {
    std::process::id()
}

fn service() -> McpService {
    McpService::new("loom-fixture")
        .instructions("Fixture tools for Loom's MCP tests.")
        .tool(AddTool)
        .tool(EchoTool)
        .tool(RemoveTool)
        .tool(SlowTool)
        .tool(HangTool)
        .tool(DieTool)
        .tool(BigTool)
        .tool(PidTool)
        .resource_text("fixture://readme", "readme", "The fixture server's readme.")
}

/// A server whose tool list grows: `grow` adds `extra_N` and notifies the client.
#[derive(Clone, Default)]
struct Growing {
    extra: Arc<AtomicUsize>,
}

impl Growing {
    fn tools(&self) -> Vec<mcp::Tool> {
        let schema: Arc<mcp::JsonObject> = Arc::new(
            serde_json::from_value(serde_json::json!({"type": "object", "properties": {}})).unwrap_or_default(),
        );
        let mut tools = vec![mcp::Tool::new("grow", "Adds a tool.", Arc::clone(&schema))];
        for n in 1..=self.extra.load(Ordering::SeqCst) {
            tools.push(mcp::Tool::new(format!("extra_{n}"), format!("Extra tool {n}."), Arc::clone(&schema)));
        }
        tools
    }
}

impl ServerHandler for Growing {
    fn get_info(&self) -> mcp::ServerConfig {
        let mut capabilities = mcp::ServerCapabilities::builder().enable_tools().build();
        if let Some(tools) = capabilities.tools.as_mut() {
            tools.list_changed = Some(true);
        }
        mcp::ServerConfig::new(capabilities)
            .with_server_info(mcp::Implementation::new("loom-growing-fixture", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListToolsResult, ErrorData> {
        Ok(mcp::ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: mcp::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::CallToolResponse, ErrorData> {
        if request.name == "grow" {
            let n = self.extra.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = context.peer.notify_tool_list_changed().await;
            return Ok(mcp::CallToolResult::success(vec![mcp::ContentBlock::text(format!("now {n} extra"))]).into());
        }
        if request.name.starts_with("extra_") {
            return Ok(mcp::CallToolResult::success(vec![mcp::ContentBlock::text(request.name.to_string())]).into());
        }
        Err(ErrorData::invalid_params(format!("unknown tool `{}`", request.name), None))
    }
}

/// One hand-written JSON-RPC server on stdio; see the module docs for the modes.
fn raw(mode: &str) -> anyhow::Result<()> {
    use serde_json::{Value, json};
    use std::io::{BufRead as _, Write as _};
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
        let (Some(id), Some(method)) = (message.get("id"), message.get("method").and_then(Value::as_str)) else {
            continue; // a notification or a response
        };
        let reply = match method {
            "initialize" => json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": message.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-11-25")),
                "capabilities": {"tools": {"listChanged": null}, "x-vendor": {}},
                "serverInfo": {"name": "raw-fixture", "version": "0", "title": null},
                "instructions": null,
            }}),
            "tools/list" => json!({"jsonrpc": "2.0", "id": id, "result": {
                "tools": [{
                    "name": "weird",
                    "description": null,
                    "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
                    "annotations": null,
                    "x-extra": [1, 2, 3],
                }],
                "nextCursor": null,
            }}),
            "tools/call" => match mode {
                "unknown-content" => json!({"jsonrpc": "2.0", "id": id, "result": {
                    "content": [
                        {"type": "hologram", "data": "AAAA", "dimensions": 3},
                        {"type": "text", "text": "visible part", "annotations": null},
                    ],
                    "isError": null,
                    "structuredContent": null,
                    "_meta": null,
                }}),
                "malformed" => {
                    writeln!(out, "{{\"jsonrpc\": \"2.0\", \"id\": {id}, \"result\": {{\"content\": [")?;
                    out.flush()?;
                    continue;
                }
                "huge" => {
                    let text = "x".repeat(4 * 1024 * 1024);
                    json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text}]}})
                }
                _ => continue, // silent: never answers
            },
            "ping" => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
            other => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("no method {other}"), "data": null}})
            }
        };
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    match mode.as_str() {
        "dynamic" => {
            let running = Growing::default().serve(loomflow::mcp::rmcp::transport::stdio()).await?;
            running.waiting().await?;
        }
        "http" => {
            let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
            let listener = tokio::net::TcpListener::bind(addr.as_str()).await?;
            eprintln!("listening on http://{}/mcp", listener.local_addr()?);
            service().serve_http(listener).await?;
        }
        "stdio" => loomflow::mcp::serve(service(), Listen::Stdio).await?,
        "raw" => raw(&args.next().unwrap_or_default())?,
        other => anyhow::bail!("usage: mcp-fixture stdio | http ADDR | dynamic | raw MODE (not `{other}`)"),
    }
    Ok(())
}
