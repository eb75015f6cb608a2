//! An agent using the tools of an MCP server: `@modelcontextprotocol/server-everything`, the
//! reference server, started over stdio. The scripted model plays the LLM offline: it calls
//! the server's `echo` and `get-sum` tools at once, then answers from what they returned.
//!
//! ```sh
//! # with the package installed in a node_modules folder (no network):
//! LOOM_TEST_MCP_PACKAGES=/path/to/node_modules cargo run --example mcp_client
//! # or let npx fetch it (opt-in: it reaches the npm registry):
//! LOOM_MCP_NPX=1 cargo run --example mcp_client
//! ```
//!
//! `LOOM_TEST_MCP_PACKAGES` is a `node_modules` folder holding
//! `@modelcontextprotocol/server-everything` (install it with
//! `npm install @modelcontextprotocol/server-everything`); the server runs on `node` from
//! `PATH`, or the one `LOOM_NODE` names. Without Node or the package, the example says so and
//! exits successfully. `LOOM_MODEL` (e.g. `gpt-4.1-mini`, with its API key) swaps the scripted
//! model for a real one, which decides for itself which tools to call.

use std::path::{Path, PathBuf};
use std::process::Command;

use loomflow::mcp::{McpServer, McpServers};
use loomflow::prelude::*;
use serde_json::json;

const PACKAGE: &str = "@modelcontextprotocol/server-everything";
/// The server's tools the agent gets.
const TOOLS: [&str; 2] = ["echo", "get-sum"];
const QUESTION: &str = "Have the server echo \"Hello from Loom\", and ask it what 2 + 3 is.";

/// How to start the server, or why it cannot be started here.
fn server_command() -> Result<(String, Vec<String>), String> {
    if let Some(dir) = std::env::var_os("LOOM_TEST_MCP_PACKAGES").filter(|d| !d.is_empty()) {
        let entry = Path::new(&dir).join(PACKAGE).join("dist").join("index.js");
        if !entry.is_file() {
            return Err(format!(
                "LOOM_TEST_MCP_PACKAGES is {}, but it holds no {PACKAGE} ({} is missing)",
                PathBuf::from(&dir).display(),
                entry.display()
            ));
        }
        let node = std::env::var("LOOM_NODE").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "node".to_owned());
        if !runs(&node, "--version") {
            return Err(format!("Node.js (`{node}`) is not installed; {PACKAGE} needs it"));
        }
        return Ok((node, vec![entry.display().to_string(), "stdio".to_owned()]));
    }
    if std::env::var("LOOM_MCP_NPX").is_ok_and(|v| v == "1") {
        if !runs("npx", "--version") {
            return Err(format!("LOOM_MCP_NPX=1, but `npx` (Node.js) is not installed; {PACKAGE} needs it"));
        }
        return Ok(("npx".to_owned(), vec!["-y".to_owned(), PACKAGE.to_owned(), "stdio".to_owned()]));
    }
    Err(format!(
        "no {PACKAGE} to start: set LOOM_TEST_MCP_PACKAGES to a node_modules folder that holds it, \
         or LOOM_MCP_NPX=1 to fetch it with npx"
    ))
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
}

/// The offline LLM: first both tool calls at once, then an answer made of their results.
fn scripted_model() -> ScriptedModel {
    ScriptedModel::from_fn(|request| {
        let results: Vec<String> = request
            .messages
            .iter()
            .filter_map(|m| match m {
                Message::Tool(r) => Some(r.content.text().into_owned()),
                _ => None,
            })
            .collect();
        if results.is_empty() {
            ScriptedTurn::tool_call("echo", json!({"message": "Hello from Loom"}))
                .with_tool_call("get-sum", json!({"a": 2, "b": 3}))
        } else {
            ScriptedTurn::text(format!("The server said \"{}\" and \"{}\"", results[0], results[1..].join(" ")))
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (program, args) = match server_command() {
        Ok(command) => command,
        Err(why) => {
            println!("skipped: {why}.");
            return Ok(());
        }
    };
    eprintln!("starting {program} {}", args.join(" "));
    let servers = McpServers::connect([McpServer::stdio("everything", program).args(args)]).await?;
    if let Some(client) = servers.client("everything") {
        let info = client.server_info().await?;
        let who = info.server_info.map_or_else(|| "the server".to_owned(), |s| format!("{} {}", s.name, s.version));
        let tools: Vec<String> = client.mcp_tools().iter().map(|t| t.name.to_string()).collect();
        println!(
            "connected to {who} (protocol {}): {} tools ({})",
            info.protocol_version,
            tools.len(),
            tools.join(", ")
        );
    }

    let agent =
        Agent::new("You use the MCP server's tools to answer: `echo` says a message back, `get-sum` adds two numbers.")
            .name("mcp-client")
            .model(loomflow::model::from_env_or(scripted_model())?)
            // The two tools the question needs. `.mcp(&servers)` would give the agent all of them,
            // kept current as the server changes its list; but this server's `get-env` shows the
            // model its environment, which holds the API key of a real model.
            .tools(servers.tools().into_iter().filter(|t| TOOLS.contains(&t.definition().name())));
    let result = agent.run(QUESTION).user("alice").await?;

    for message in &result.messages {
        match message {
            Message::User { content } => println!("user      │ {}", content.text()),
            Message::Assistant { content, tool_calls } => {
                for call in tool_calls {
                    println!("tool call │ {}({})", call.name, call.arguments);
                }
                if !content.is_empty() {
                    println!("assistant │ {}", content.text());
                }
            }
            Message::Tool(r) => println!("tool      │ {} → {}", r.name, r.content.text()),
            _ => {}
        }
    }
    println!("\n{} model calls, {} tool calls over MCP", result.turns, result.tool_calls);
    Ok(())
}
