//! Loom's MCP client against the reference servers `@modelcontextprotocol/server-everything`
//! (stdio and streamable HTTP) and `@modelcontextprotocol/server-filesystem` (stdio; it has
//! no HTTP transport), run on Node.
//!
//! They need Node and the npm packages: `.ci/run` installs both and sets
//! `LOOM_TEST_MCP_PACKAGES` (a `node_modules` folder holding the servers) and `LOOM_TEST_NODE`
//! (the `node` binary; `node` on `PATH` otherwise). The tests are `#[ignore]`d, so a plain
//! `cargo test` lists them as ignored; run without the variable, they fail: they never pass
//! by skipping.

#![allow(deprecated)] // MCP logging and sampling: deprecated from 2026-07-28, part of 2025-11-25.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Recorder, tool_results};
use loomflow::mcp::rmcp::model as mcp;
use loomflow::mcp::{McpClient, McpServer, McpServers, Protocol};
use loomflow::model::{Content, Part};
use loomflow::prelude::*;
use serde_json::json;

const NEEDS: &str = "needs Node and the MCP reference servers: set LOOM_TEST_MCP_PACKAGES (run by .ci/run)";

fn packages() -> anyhow::Result<PathBuf> {
    let dir =
        std::env::var_os("LOOM_TEST_MCP_PACKAGES").map(PathBuf::from).ok_or_else(|| anyhow::anyhow!("{NEEDS}"))?;
    anyhow::ensure!(
        dir.join("@modelcontextprotocol").is_dir(),
        "{} holds no @modelcontextprotocol packages",
        dir.display()
    );
    Ok(dir)
}

fn node() -> String {
    std::env::var("LOOM_TEST_NODE").unwrap_or_else(|_| "node".to_owned())
}

fn server_script(package: &str) -> anyhow::Result<String> {
    let script = packages()?.join("@modelcontextprotocol").join(package).join("dist/index.js");
    anyhow::ensure!(script.is_file(), "{} is missing", script.display());
    Ok(script.display().to_string())
}

fn everything_stdio(name: &str) -> anyhow::Result<McpServer> {
    Ok(McpServer::stdio(name, node()).args([server_script("server-everything")?, "stdio".to_owned()]))
}

fn text_of(result: &mcp::CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("")
}

/// Polls `check` for up to five seconds.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
#[ignore = "needs Node and the MCP reference servers (LOOM_TEST_MCP_PACKAGES)"]
async fn everything_over_stdio_tools_resources_and_prompts() -> anyhow::Result<()> {
    let client = McpClient::connect(everything_stdio("everything")?).await?;
    let names: Vec<String> = client.tools().iter().map(|t| t.definition().name().to_owned()).collect();
    for expected in ["echo", "get-sum", "get-tiny-image", "trigger-long-running-operation"] {
        assert!(names.iter().any(|n| n == expected), "no {expected} in {names:?}");
    }
    // Its schemas come through as the model will see them.
    let sum = client.tools().into_iter().find(|t| t.definition().name() == "get-sum");
    let sum = sum.ok_or_else(|| anyhow::anyhow!("no get-sum"))?;
    assert_eq!(sum.definition().parameters()["properties"]["a"]["type"], "number");

    assert_eq!(text_of(&client.call_tool("echo", json!({"message": "hi"})).await?), "Echo: hi");
    let sum = text_of(&client.call_tool("get-sum", json!({"a": 2, "b": 3})).await?);
    assert!(sum.contains('5'), "{sum}");
    // A bad argument is the server's tool error (or its protocol error), and the connection lives on.
    let bad = client.call_tool("get-sum", json!({"a": "two"})).await;
    assert!(bad.as_ref().map(|r| r.is_error == Some(true)).unwrap_or(true), "{bad:?}");
    assert_eq!(text_of(&client.call_tool("echo", json!({"message": "again"})).await?), "Echo: again");

    let resources = client.list_resources().await?;
    assert!(!resources.is_empty());
    let contents = client.read_resource(&resources[0].uri).await?;
    assert!(!contents.is_empty());
    let templates = client.list_resource_templates().await?;
    assert!(templates.iter().any(|t| t.uri_template.contains("dynamic/text")), "{templates:?}");
    let dynamic = client.read_resource("demo://resource/dynamic/text/1").await?;
    assert!(matches!(&dynamic[0], mcp::ResourceContents::TextResourceContents { .. }), "{dynamic:?}");

    let prompts = client.list_prompts().await?;
    assert!(prompts.iter().any(|p| p.name == "simple-prompt"), "{prompts:?}");
    let messages = client.prompt_messages("args-prompt", [("city".to_owned(), "Paris".to_owned())]).await?;
    assert!(messages.iter().any(|m| m.text().contains("Paris")), "{messages:?}");
    assert!(client.get_prompt("args-prompt", []).await.is_err(), "a required argument was not enforced");
    Ok(())
}

#[tokio::test]
#[ignore = "needs Node and the MCP reference servers (LOOM_TEST_MCP_PACKAGES)"]
async fn an_agent_uses_everything_tools_images_and_progress() -> anyhow::Result<()> {
    let servers = McpServers::connect([everything_stdio("everything")?]).await?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("get-sum", json!({"a": 20, "b": 22})),
        ScriptedTurn::tool_call("get-tiny-image", json!({})),
        ScriptedTurn::tool_call("trigger-long-running-operation", json!({"duration": 0.3, "steps": 3})),
        ScriptedTurn::text("done"),
    ]);
    let recorder = Recorder::new();
    let result =
        Agent::new("Use the tools.").model(model).mcp(&servers).run("go").on_event(recorder.listener()).await?;
    assert_eq!(result.text(), "done");
    let results = tool_results(&result);
    assert!(results.iter().all(|r| !r.is_error), "{results:?}");
    assert!(results[0].content.text().contains("42"), "{:?}", results[0]);
    // The image reaches the conversation as an image, not as text.
    match &results[1].content {
        Content::Parts(parts) => assert!(parts.iter().any(|p| matches!(p, Part::Image { .. })), "{parts:?}"),
        other => anyhow::bail!("no image in {other:?}"),
    }
    let progress = recorder
        .events()
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::Mcp { name, payload } if name == "mcp.progress" && payload["tool"] == "trigger-long-running-operation"))
        .count();
    assert_eq!(progress, 3, "one progress event a step");
    Ok(())
}

#[tokio::test]
#[ignore = "needs Node and the MCP reference servers (LOOM_TEST_MCP_PACKAGES)"]
async fn everything_asks_for_sampling_and_the_configured_model_answers() -> anyhow::Result<()> {
    let model = ScriptedModel::from_fn(|request| {
        let asked = request.last_user_text().unwrap_or_default();
        ScriptedTurn::text(format!("sampled: {asked}"))
    });
    let client = McpClient::connect(everything_stdio("everything")?.sampling(model)).await?;
    // The server adds its sampling tool once it knows the client can sample, and says so.
    let listed = eventually(|| client.mcp_tools().iter().any(|t| t.name == "trigger-sampling-request")).await;
    assert!(
        listed,
        "the sampling tool never appeared: {:?}",
        client.mcp_tools().iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    let result = client.call_tool("trigger-sampling-request", json!({"prompt": "a haiku", "maxTokens": 50})).await?;
    let text = text_of(&result);
    assert!(text.contains("sampled:") && text.contains("a haiku"), "{text}");

    // Without a model, the tool is never offered.
    let plain = McpClient::connect(everything_stdio("plain")?).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!plain.mcp_tools().iter().any(|t| t.name == "trigger-sampling-request"));
    Ok(())
}

#[tokio::test]
#[ignore = "needs Node and the MCP reference servers (LOOM_TEST_MCP_PACKAGES)"]
async fn everything_over_streamable_http() -> anyhow::Result<()> {
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
        socket.local_addr()?.port()
    };
    let loopback = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/mcp/loopback.cjs");
    let mut child = tokio::process::Command::new(node())
        .arg("--require")
        .arg(&loopback)
        .arg(server_script("server-everything")?)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut up = false;
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::ensure!(up, "server-everything did not listen on {url}");

    for protocol in [Protocol::Auto, Protocol::Initialize] {
        let client = McpClient::connect(McpServer::http("everything", url.clone()).protocol(protocol)).await?;
        assert_eq!(text_of(&client.call_tool("echo", json!({"message": "over http"})).await?), "Echo: over http");
        let servers = McpServers::from_clients([client]);
        let model = ScriptedModel::new([
            ScriptedTurn::tool_call("trigger-long-running-operation", json!({"duration": 0.2, "steps": 2})),
            ScriptedTurn::text("ok"),
        ]);
        let recorder = Recorder::new();
        let result = Agent::new("x").model(model).mcp(&servers).run("go").on_event(recorder.listener()).await?;
        assert!(!tool_results(&result)[0].is_error, "{protocol:?}: {:?}", tool_results(&result)[0]);
        let progress = recorder
            .events()
            .into_iter()
            .filter(|e| matches!(&e.kind, EventKind::Mcp { name, .. } if name == "mcp.progress"))
            .count();
        assert_eq!(progress, 2, "{protocol:?}");
    }
    child.kill().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs Node and the MCP reference servers (LOOM_TEST_MCP_PACKAGES)"]
async fn filesystem_over_stdio_reads_writes_and_refuses_paths_outside() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("loom-mcp-fs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    std::fs::write(dir.join("notes.txt"), "Loom speaks MCP.\n")?;
    let server =
        McpServer::stdio("files", node()).args([server_script("server-filesystem")?, dir.display().to_string()]);
    let servers = McpServers::connect([server]).await?;

    // Its annotations become Loom's hints: reads are read-only, writes destructive.
    let tools = servers.tools();
    let hints = |name: &str| tools.iter().find(|t| t.definition().name() == name).map(|t| t.definition().hints());
    let read = hints("read_text_file").ok_or_else(|| anyhow::anyhow!("no read_text_file"))?;
    assert!(read.read_only && !read.destructive);
    let write = hints("write_file").ok_or_else(|| anyhow::anyhow!("no write_file"))?;
    assert!(write.destructive && !write.read_only);

    let notes = dir.join("notes.txt").display().to_string();
    let written = dir.join("answer.txt").display().to_string();
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("read_text_file", json!({"path": notes})),
        ScriptedTurn::tool_call("write_file", json!({"path": written, "content": "42"})),
        ScriptedTurn::tool_call("read_text_file", json!({"path": "/etc/passwd"})),
        ScriptedTurn::text("done"),
    ]);
    let result = Agent::new("x").model(model).mcp(&servers).run("go").await?;
    let results = tool_results(&result);
    assert_eq!(results[0].content.text().trim(), "Loom speaks MCP.");
    assert!(!results[1].is_error, "{:?}", results[1]);
    assert_eq!(std::fs::read_to_string(dir.join("answer.txt"))?, "42");
    // Outside the allowed folder: the server refuses, the model is told, the run goes on.
    assert!(results[2].is_error, "{:?}", results[2]);
    assert_eq!(result.text(), "done");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs Node and the MCP reference servers (LOOM_TEST_MCP_PACKAGES)"]
async fn two_reference_servers_at_once() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().canonicalize()?;
    let servers = McpServers::connect([
        everything_stdio("everything")?,
        McpServer::stdio("files", node()).args([server_script("server-filesystem")?, dir.display().to_string()]),
    ])
    .await?;
    let names: Vec<String> = servers.tools().iter().map(|t| t.definition().name().to_owned()).collect();
    assert!(names.iter().any(|n| n == "echo") && names.iter().any(|n| n == "list_allowed_directories"), "{names:?}");
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("list_allowed_directories", json!({})),
        ScriptedTurn::tool_call("echo", json!({"message": "both"})),
        ScriptedTurn::text("ok"),
    ]);
    let result = Agent::new("x").model(model).mcp(&servers).run("go").await?;
    let results = tool_results(&result);
    assert!(results[0].content.text().contains(&dir.display().to_string()), "{:?}", results[0]);
    assert_eq!(results[1].content.text(), "Echo: both");
    Ok(())
}
