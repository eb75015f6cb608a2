//! Loom as an MCP server: the quickstart's `weather` tool and an agent (`ask`, on the echo
//! model) served to any MCP client — Claude Desktop, an IDE, the MCP Inspector, another Loom.
//!
//! ```sh
//! # MCP on standard input and output (the client starts the process):
//! cargo run --example mcp_server -- stdio
//! # streamable HTTP at http://127.0.0.1:8080/mcp (port 0 picks a free one):
//! cargo run --example mcp_server -- http 127.0.0.1:8080
//! ```
//!
//! Over stdio, standard output carries MCP messages and nothing else: everything this example
//! has to say goes to standard error. Over HTTP it writes `listening on http://ADDR/mcp` there
//! once the port is bound. No setup is needed: a client lists `weather` and `ask` and calls
//! them. `LOOM_MODEL` gives the `ask` agent a real model instead of the echo model.
//!
//! A client configuration for the stdio server, with the example built
//! (`cargo build --example mcp_server`):
//!
//! ```json
//! {"mcpServers": {"loom": {"command": "target/debug/examples/mcp_server", "args": ["stdio"]}}}
//! ```

use loomflow::mcp::{self, Listen, McpService};
use loomflow::prelude::*;

/// Look up the current weather in a city.
#[tool(read_only)]
async fn weather(
    /// The city, e.g. "Paris".
    city: String,
) -> Result<String, ToolError> {
    match city.as_str() {
        "Paris" => Ok("sunny, 22°C".to_owned()),
        "Oslo" => Ok("snow, -3°C".to_owned()),
        other => Err(ToolError::new(format!("no weather station in {other}; try Paris or Oslo"))),
    }
}

const USAGE: &str = "usage: mcp_server stdio | mcp_server http HOST:PORT (e.g. http 127.0.0.1:8080)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let listen: Listen = match args.join(" ").parse() {
        Ok(listen) => listen,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };

    let mut tools = ToolSet::new();
    tools.insert(WeatherTool)?;
    let helper =
        Agent::new("You answer questions briefly.").name("helper").model(loomflow::model::from_env_or("echo")?);
    let service = McpService::new("loom-example")
        .instructions("Weather for Paris and Oslo (`weather`), and a helper agent to ask (`ask`).")
        .tools(&tools)
        .agent("ask", "Ask the helper agent a question; it answers in a sentence.", &helper);
    service.check()?;

    match listen {
        Listen::Http(addr) => {
            // Bound here rather than in `mcp::serve`, to say where once it is listening.
            let listener = tokio::net::TcpListener::bind(addr).await?;
            eprintln!(
                "listening on http://{}/mcp (tools: {})",
                listener.local_addr()?,
                service.tool_names().join(", ")
            );
            service.serve_http(listener).await?;
        }
        listen => {
            eprintln!("serving MCP on stdio (tools: {})", service.tool_names().join(", "));
            mcp::serve(service, listen).await?;
        }
    }
    Ok(())
}
