//! MCP, Loom against Loom, offline: a Loom server over streamable HTTP on 127.0.0.1 (in this
//! process) and over stdio (the `mcp-fixture` binary), a Loom client and agents using it.

#![allow(deprecated)] // MCP logging and sampling: deprecated from 2026-07-28, part of 2025-11-25.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Recorder, tool_results};
use loomflow::mcp::rmcp::model as mcp;
use loomflow::mcp::{McpCall, McpClient, McpError, McpServer, McpServers, McpService, Protocol};
use loomflow::prelude::*;
use loomflow::tool::ToolSource as _;
use loomflow::workflow::{named, sync_node};
use serde_json::json;

const FIXTURE: &str = env!("CARGO_BIN_EXE_mcp-fixture");

/// Adds two integers.
#[tool(read_only, idempotent)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Deletes a record.
#[tool(destructive)]
fn delete_record(id: u32) -> String {
    format!("deleted {id}")
}

/// Says the text back.
#[tool]
fn echo(text: String) -> String {
    text
}

/// Who the run belongs to.
#[tool(read_only)]
fn whoami(ctx: &RunContext) -> String {
    format!("{}@{}", ctx.user(), ctx.session().map(|s| s.to_string()).unwrap_or_default())
}

/// Set when the call running `wait_forever` is dropped (cancelled).
#[derive(Default, Clone)]
struct Cancelled(Arc<AtomicBool>);

impl Cancelled {
    fn seen(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

struct SetOnDrop(Cancelled);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.0.store(true, Ordering::SeqCst);
    }
}

/// Waits until cancelled.
#[tool]
async fn wait_forever(flag: State<Cancelled>) -> String {
    let _guard = SetOnDrop(Cancelled::clone(&flag));
    std::future::pending::<()>().await;
    String::new()
}

/// Asks the client's model to complete `prompt`.
#[tool]
async fn ask_client(ctx: &RunContext, prompt: String) -> Result<String, ToolError> {
    let call = ctx.state::<McpCall>().ok_or_else(|| ToolError::new("not served over MCP"))?;
    call.sample(&prompt, 100).await.map_err(|e| ToolError::new(e.to_string()))
}

fn service() -> McpService {
    McpService::new("loom-test")
        .tool(AddTool)
        .tool(DeleteRecordTool)
        .tool(EchoTool)
        .tool(WhoamiTool)
        .tool(WaitForeverTool)
        .tool(AskClientTool)
        .state(Cancelled::default())
}

/// Serves `service` over HTTP on a free port of 127.0.0.1; the URL of its endpoint.
async fn serve(service: McpService) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(service.serve_http(listener));
    Ok(url)
}

fn fixture(name: &str, mode: &[&str]) -> McpServer {
    McpServer::stdio(name, FIXTURE).args(mode.iter().copied())
}

fn text_of(result: &mcp::CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("")
}

#[tokio::test]
async fn http_lists_and_calls_served_tools_with_their_hints() -> anyhow::Result<()> {
    let url = serve(service()).await?;
    let client = McpClient::connect(McpServer::http("loom", url)).await?;
    let info = client.server_info().await?;
    assert_eq!(info.server_info.map(|i| i.name).as_deref(), Some("loom-test"));

    let names: Vec<String> = client.tools().iter().map(|t| t.definition().name().to_owned()).collect();
    assert_eq!(names, ["add", "delete_record", "echo", "whoami", "wait_forever", "ask_client"]);

    // Loom's hints went out as MCP annotations and came back as the same hints.
    let remote = client.mcp_tools();
    let add = remote.iter().find(|t| t.name == "add").ok_or_else(|| anyhow::anyhow!("no add"))?;
    let annotations = add.annotations.as_ref().ok_or_else(|| anyhow::anyhow!("add has no annotations"))?;
    assert_eq!(annotations.read_only_hint, Some(true));
    assert_eq!(annotations.idempotent_hint, Some(true));
    let hints =
        |name: &str| client.tools().iter().find(|t| t.definition().name() == name).map(|t| t.definition().hints());
    let add_hints = hints("add").ok_or_else(|| anyhow::anyhow!("no add"))?;
    assert!(add_hints.read_only && add_hints.idempotent && !add_hints.destructive);
    let delete_hints = hints("delete_record").ok_or_else(|| anyhow::anyhow!("no delete_record"))?;
    assert!(delete_hints.destructive && !delete_hints.read_only);
    // The schema is the #[tool]'s.
    assert_eq!(add.input_schema.get("required"), Some(&json!(["a", "b"])));

    let result = client.call_tool("add", json!({"a": 2, "b": 40})).await?;
    assert_eq!(result.is_error, Some(false));
    assert_eq!(text_of(&result), "42");

    // A bad argument is the tool's error, told to the caller, not a broken connection.
    let result = client.call_tool("add", json!({"a": "two"})).await?;
    assert_eq!(result.is_error, Some(true));
    assert!(text_of(&result).contains('a'), "{}", text_of(&result));

    // An unknown tool is a protocol error naming it.
    match client.call_tool("nope", json!({})).await {
        Err(McpError::Server { message, .. }) => assert!(message.contains("nope"), "{message}"),
        other => anyhow::bail!("expected a server error, got {other:?}"),
    }
    let result = client.call_tool("echo", json!({"text": "still here"})).await?;
    assert_eq!(text_of(&result), "still here");
    Ok(())
}

#[tokio::test]
async fn the_stateless_protocol_and_the_handshake_both_work() -> anyhow::Result<()> {
    let url = serve(service()).await?;
    for protocol in [Protocol::Stateless, Protocol::Initialize, Protocol::Auto] {
        let client = McpClient::connect(McpServer::http("loom", url.clone()).protocol(protocol)).await?;
        let result = client.call_tool("add", json!({"a": 1, "b": 1})).await?;
        assert_eq!(text_of(&result), "2", "{protocol:?}");
    }
    Ok(())
}

#[tokio::test]
async fn an_agent_calls_mcp_tools_through_the_spine() -> anyhow::Result<()> {
    let url = serve(service()).await?;
    let servers = McpServers::connect([McpServer::http("calc", url)]).await?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("add", json!({"a": 20, "b": 22})),
        ScriptedTurn::text("The answer is 42."),
    ]);
    let recorder = Recorder::new();
    let agent = Agent::new("Use the tools.").model(model).mcp(&servers);
    let result = agent.run("20 + 22?").user("alice").on_event(recorder.listener()).await?;
    assert_eq!(result.text(), "The answer is 42.");
    let results = tool_results(&result);
    assert_eq!(results.len(), 1);
    assert_eq!(
        (results[0].name.as_str(), results[0].content.text().as_ref(), results[0].is_error),
        ("add", "42", false)
    );
    assert!(recorder.kinds().contains(&"tool_finished"));
    Ok(())
}

#[tokio::test]
async fn tools_of_several_servers_are_named_apart_only_when_they_collide() -> anyhow::Result<()> {
    let a = serve(McpService::new("a").tool(EchoTool).tool(AddTool)).await?;
    let b = serve(McpService::new("b").tool(EchoTool).tool(WhoamiTool)).await?;
    let servers = McpServers::connect([McpServer::http("alpha", a), McpServer::http("beta", b)]).await?;
    let mut names: Vec<String> = servers.tools().iter().map(|t| t.definition().name().to_owned()).collect();
    names.sort();
    assert_eq!(names, ["add", "alpha__echo", "beta__echo", "whoami"]);

    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("beta__echo", json!({"text": "from beta"})),
        ScriptedTurn::text("done"),
    ]);
    let result = Agent::new("x").model(model).mcp(&servers).run("go").await?;
    assert_eq!(tool_results(&result)[0].content.text(), "from beta");

    // Two servers of one name are refused before anything starts.
    let err = McpServers::connect([
        McpServer::http("same", "http://127.0.0.1:1/mcp"),
        McpServer::http("same", "http://127.0.0.1:2/mcp"),
    ])
    .await
    .err()
    .ok_or_else(|| anyhow::anyhow!("duplicate names were accepted"))?;
    assert!(matches!(err, McpError::DuplicateServer { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn an_agent_own_tool_wins_a_name_clash_with_an_mcp_tool() -> anyhow::Result<()> {
    /// A local echo that shouts.
    #[tool(name = "echo")]
    fn loud_echo(text: String) -> String {
        text.to_uppercase()
    }
    let url = serve(McpService::new("remote").tool(EchoTool)).await?;
    let servers = McpServers::connect([McpServer::http("remote", url)]).await?;
    let model = ScriptedModel::new([ScriptedTurn::tool_call("echo", json!({"text": "hi"})), ScriptedTurn::text("ok")]);
    let result = Agent::new("x").model(model).tool(LoudEchoTool).mcp(&servers).run("go").await?;
    assert_eq!(tool_results(&result)[0].content.text(), "HI");
    Ok(())
}

#[tokio::test]
async fn bearer_tokens_decide_the_user_and_a_session_cannot_change_hands() -> anyhow::Result<()> {
    let url = serve(service().bearer_tokens([("tok-alice", "alice"), ("tok-bob", "bob")])).await?;

    // No token, or an unknown one: refused at connection.
    for server in [
        McpServer::http("anon", url.clone()),
        McpServer::http("bad", url.clone()).header("Authorization", "Bearer nope"),
    ] {
        let err = McpClient::connect(server.connect_timeout(Duration::from_secs(5)))
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("an unauthenticated client connected"))?;
        assert!(!err.to_string().is_empty());
    }

    let alice =
        McpClient::connect(McpServer::http("a", url.clone()).header("Authorization", "Bearer tok-alice")).await?;
    let bob = McpClient::connect(McpServer::http("b", url.clone()).header("Authorization", "Bearer tok-bob")).await?;
    let alice_says = text_of(&alice.call_tool("whoami", json!({})).await?);
    let bob_says = text_of(&bob.call_tool("whoami", json!({})).await?);
    assert!(alice_says.starts_with("alice@"), "{alice_says}");
    assert!(bob_says.starts_with("bob@"), "{bob_says}");
    // Each MCP session is its own Loom session.
    assert_ne!(alice_says.trim_start_matches("alice@"), bob_says.trim_start_matches("bob@"));

    // Bob, holding Alice's session id, cannot use her session.
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    let response = http
        .post(&url)
        .bearer_auth("tok-alice")
        .header("Accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await?;
    assert!(response.status().is_success(), "{}", response.status());
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("no session id"))?
        .to_owned();
    drop(response.text().await?);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    http.post(&url)
        .bearer_auth("tok-alice")
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Session-Id", &session)
        .header("Mcp-Protocol-Version", "2025-11-25")
        .json(&initialized)
        .send()
        .await?;
    let call =
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
    let body = http
        .post(&url)
        .bearer_auth("tok-bob")
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Session-Id", &session)
        .header("Mcp-Protocol-Version", "2025-11-25")
        .json(&call)
        .send()
        .await?
        .text()
        .await?;
    assert!(body.contains("another user"), "{body}");
    assert!(!body.contains("alice@"), "{body}");
    Ok(())
}

#[tokio::test]
async fn a_call_that_times_out_is_cancelled_on_the_server() -> anyhow::Result<()> {
    let cancelled = Cancelled::default();
    let service = McpService::new("slow").tool(WaitForeverTool).state(cancelled.clone());
    let url = serve(service).await?;
    let client = McpClient::connect(McpServer::http("slow", url).call_timeout(Duration::from_millis(300))).await?;
    let started = Instant::now();
    match client.call_tool("wait_forever", json!({})).await {
        Err(McpError::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(300)),
        other => anyhow::bail!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The client told the server, and the server dropped the run.
    for _ in 0..100 {
        if cancelled.seen() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the server never saw the cancellation")
}

#[tokio::test]
async fn a_hung_tool_gives_the_model_an_error_and_the_run_goes_on() -> anyhow::Result<()> {
    let url = serve(service()).await?;
    let servers = McpServers::connect([McpServer::http("s", url).call_timeout(Duration::from_millis(200))]).await?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("wait_forever", json!({})),
        ScriptedTurn::tool_call("add", json!({"a": 1, "b": 2})),
        ScriptedTurn::text("recovered"),
    ]);
    let result = Agent::new("x").model(model).mcp(&servers).run("go").await?;
    let results = tool_results(&result);
    assert!(results[0].is_error);
    assert!(
        results[0].content.text().contains("did not answer") || results[0].content.text().contains("timed out"),
        "{}",
        results[0].content.text()
    );
    assert_eq!((results[1].content.text().as_ref(), results[1].is_error), ("3", false));
    assert_eq!(result.text(), "recovered");
    Ok(())
}

#[tokio::test]
async fn progress_and_log_messages_are_events_of_the_run() -> anyhow::Result<()> {
    let servers = McpServers::connect([fixture("fx", &["stdio"])]).await?;
    let model =
        ScriptedModel::new([ScriptedTurn::tool_call("slow", json!({"steps": 3, "ms": 5})), ScriptedTurn::text("ok")]);
    let recorder = Recorder::new();
    let result = Agent::new("x").model(model).mcp(&servers).run("go").on_event(recorder.listener()).await?;
    assert_eq!(tool_results(&result)[0].content.text(), "done after 3 steps");
    let mcp_events: Vec<(String, serde_json::Value)> = recorder
        .events()
        .into_iter()
        .filter(|e| e.run_id == result.run_id)
        .filter_map(|e| match e.kind {
            EventKind::Mcp { name, payload } => Some((name, payload)),
            _ => None,
        })
        .collect();
    let progress: Vec<f64> = mcp_events
        .iter()
        .filter(|(n, _)| n == "mcp.progress")
        .filter_map(|(_, p)| p.get("progress").and_then(serde_json::Value::as_f64))
        .collect();
    assert_eq!(progress, [1.0, 2.0, 3.0], "{mcp_events:?}");
    let progress_event =
        &mcp_events.iter().find(|(n, _)| n == "mcp.progress").ok_or_else(|| anyhow::anyhow!("none"))?.1;
    assert_eq!(progress_event["server"], "fx");
    assert_eq!(progress_event["tool"], "slow");
    assert_eq!(progress_event["total"], 3.0);
    let logs = mcp_events.iter().filter(|(n, _)| n == "mcp.log").count();
    assert_eq!(logs, 3, "{mcp_events:?}");
    Ok(())
}

#[tokio::test]
async fn a_served_agent_reports_progress_to_its_client() -> anyhow::Result<()> {
    let inner = Agent::new("Answer.")
        .model(ScriptedModel::new([
            ScriptedTurn::tool_call("add", json!({"a": 2, "b": 3})),
            ScriptedTurn::text("five"),
        ]))
        .tool(AddTool);
    let url = serve(McpService::new("agents").agent("helper", "Answers questions.", &inner)).await?;
    let servers = McpServers::connect([McpServer::http("agents", url)]).await?;
    let tool = servers.tools();
    assert_eq!(tool.len(), 1);
    assert_eq!(tool[0].definition().parameters()["properties"]["input"]["type"], "string");
    let model =
        ScriptedModel::new([ScriptedTurn::tool_call("helper", json!({"input": "2+3?"})), ScriptedTurn::text("ok")]);
    let recorder = Recorder::new();
    let result = Agent::new("x").model(model).mcp(&servers).run("go").on_event(recorder.listener()).await?;
    assert_eq!(tool_results(&result)[0].content.text(), "five");
    let messages: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Mcp { name, payload } if name == "mcp.progress" => {
                payload["message"].as_str().map(str::to_owned)
            }
            _ => None,
        })
        .collect();
    assert!(messages.iter().any(|m| m.contains("add")), "{messages:?}");
    Ok(())
}

#[tokio::test]
async fn a_served_workflow_is_a_tool_taking_its_input() -> anyhow::Result<()> {
    let workflow = Workflow::chain((named("shout", sync_node(|s: String| s.to_uppercase())),));
    let url = serve(McpService::new("flows").workflow("shout", "Shouts.", &workflow)).await?;
    let client = McpClient::connect(McpServer::http("flows", url)).await?;
    let result = client.call_tool("shout", json!({"input": "hello"})).await?;
    assert_eq!(text_of(&result), "HELLO");
    Ok(())
}

#[tokio::test]
async fn sampling_is_answered_by_the_configured_model_when_the_policy_allows() -> anyhow::Result<()> {
    let url = serve(service()).await?;

    // No model configured: the server's request is refused, the tool reports it.
    let client = McpClient::connect(McpServer::http("s", url.clone())).await?;
    let refusal = failure(client.call_tool("ask_client", json!({"prompt": "hi"})).await)?;
    assert!(refusal.contains("capability") || refusal.contains("sampling"), "{refusal}");

    let answered = McpClient::connect(
        McpServer::http("s", url.clone()).sampling(ScriptedModel::new([ScriptedTurn::text("sampled answer")])),
    )
    .await?;
    let result = answered.call_tool("ask_client", json!({"prompt": "hi"})).await?;
    assert_eq!((text_of(&result).as_str(), result.is_error), ("sampled answer", Some(false)));

    let denied = McpClient::connect(
        McpServer::http("s", url.clone())
            .sampling_with(ScriptedModel::new([ScriptedTurn::text("never")]), |r| r.messages.len() > 5),
    )
    .await?;
    let refusal = failure(denied.call_tool("ask_client", json!({"prompt": "hi"})).await)?;
    assert!(refusal.contains("refused"), "{refusal}");

    // A policy that panics denies.
    let panicking = McpClient::connect(
        McpServer::http("s", url)
            .sampling_with(ScriptedModel::new([ScriptedTurn::text("never")]), |_| panic!("policy bug")),
    )
    .await?;
    let refusal = failure(panicking.call_tool("ask_client", json!({"prompt": "hi"})).await)?;
    assert!(refusal.contains("refused"), "{refusal}");
    Ok(())
}

/// What a call that should have failed said: the tool's error result, or the refused
/// request (a sampling refusal may end the call either way, depending on the protocol
/// revision: over 2026-07-28 the client answers the server's question within the call).
fn failure(outcome: Result<mcp::CallToolResult, McpError>) -> anyhow::Result<String> {
    match outcome {
        Ok(result) if result.is_error == Some(true) => Ok(text_of(&result)),
        Ok(result) => anyhow::bail!("the call succeeded: {result:?}"),
        Err(McpError::Server { message, .. }) => Ok(message),
        Err(other) => anyhow::bail!("the call failed on the way: {other}"),
    }
}

#[tokio::test]
async fn resources_templates_and_prompts_are_served_and_read() -> anyhow::Result<()> {
    let service = McpService::new("docs")
        .resource_text("docs://readme", "readme", "Read me first.")
        .resource_template(
            mcp::ResourceTemplate::new("docs://pages/{page}", "page"),
            |uri: &str, vars: &std::collections::HashMap<String, String>| -> Result<_, String> {
                let page = vars.get("page").cloned().unwrap_or_default();
                Ok(vec![mcp::ResourceContents::text(format!("page {page}"), uri.to_owned())])
            },
        )
        .prompt(
            mcp::Prompt::new(
                "greet",
                Some("Greets someone."),
                Some(vec![mcp::PromptArgument::new("name").with_required(true)]),
            ),
            |args: &std::collections::HashMap<String, String>| -> Result<_, String> {
                let name = args.get("name").cloned().unwrap_or_default();
                Ok(vec![mcp::PromptMessage::new_text(mcp::Role::User, format!("Say hello to {name}."))])
            },
        );
    let url = serve(service).await?;
    let client = McpClient::connect(McpServer::http("docs", url)).await?;

    let resources = client.list_resources().await?;
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].uri, "docs://readme");
    let contents = client.read_resource("docs://readme").await?;
    assert!(
        matches!(&contents[0], mcp::ResourceContents::TextResourceContents { text, .. } if text == "Read me first.")
    );
    let templates = client.list_resource_templates().await?;
    assert_eq!(templates[0].uri_template, "docs://pages/{page}");
    let contents = client.read_resource("docs://pages/7").await?;
    assert!(matches!(&contents[0], mcp::ResourceContents::TextResourceContents { text, .. } if text == "page 7"));
    assert!(matches!(client.read_resource("docs://missing").await, Err(McpError::Server { .. })));

    let prompts = client.list_prompts().await?;
    assert_eq!(prompts[0].name, "greet");
    let messages = client.prompt_messages("greet", [("name".to_owned(), "Ada".to_owned())]).await?;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text(), "Say hello to Ada.");
    // A required argument left out is the server's error, not an empty prompt.
    assert!(matches!(client.get_prompt("greet", []).await, Err(McpError::Server { .. })));
    Ok(())
}

#[tokio::test]
async fn a_stdio_server_runs_in_its_own_process_group_and_dies_with_the_client() -> anyhow::Result<()> {
    let client = McpClient::connect(fixture("fx", &["stdio"])).await?;
    let pid: i32 = text_of(&client.call_tool("pid", json!({})).await?).parse()?;
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let result = client.call_tool("add", json!({"a": 1, "b": 2})).await?;
    assert_eq!(text_of(&result), "3");
    drop(client);
    for _ in 0..100 {
        if !alive(pid) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the stdio server {pid} outlived its client")
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_server_that_dies_mid_call_is_a_tool_error_and_the_next_call_reconnects() -> anyhow::Result<()> {
    let servers = McpServers::connect([fixture("fx", &["stdio"]).reconnect(3, Duration::from_millis(50))]).await?;
    let first_pid: i32 = text_of(&servers.clients()[0].call_tool("pid", json!({})).await?).parse()?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("die", json!({})),
        ScriptedTurn::tool_call("pid", json!({})),
        ScriptedTurn::text("survived"),
    ]);
    let result = Agent::new("x").model(model).mcp(&servers).run("go").await?;
    assert_eq!(result.text(), "survived");
    let results = tool_results(&result);
    assert!(results[0].is_error, "{:?}", results[0]);
    assert!(!results[1].is_error, "{:?}", results[1]);
    let second_pid: i32 = results[1].content.text().parse()?;
    assert_ne!(first_pid, second_pid, "the server was started again");
    Ok(())
}

#[tokio::test]
async fn a_changed_tool_list_reaches_the_next_run() -> anyhow::Result<()> {
    let servers = McpServers::connect([fixture("grow", &["dynamic"])]).await?;
    let before = servers.generation();
    let names = |s: &McpServers| s.tools().iter().map(|t| t.definition().name().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(&servers), ["grow"]);

    let agent = Agent::new("x")
        .model(ScriptedModel::new([
            ScriptedTurn::tool_call("grow", json!({})),
            ScriptedTurn::text("grown"),
            ScriptedTurn::tool_call("extra_1", json!({})),
            ScriptedTurn::text("used it"),
        ]))
        .mcp(&servers);
    agent.run("grow").await?;
    for _ in 0..100 {
        if servers.generation() != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_ne!(servers.generation(), before, "the list_changed notification was not seen");
    assert_eq!(names(&servers), ["grow", "extra_1"]);
    let result = agent.run("use it").await?;
    let results = tool_results(&result);
    assert_eq!((results[0].content.text().as_ref(), results[0].is_error), ("extra_1", false));
    Ok(())
}

#[tokio::test]
async fn a_tool_result_of_an_unknown_content_type_is_survivable() -> anyhow::Result<()> {
    let client =
        McpClient::connect(fixture("raw", &["raw", "unknown-content"]).call_timeout(Duration::from_secs(5))).await?;
    assert_eq!(client.tools().len(), 1);
    let started = Instant::now();
    let outcome = client.call_tool("weird", json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(6));
    // The part Loom knows is kept, the one it does not is named, and `null`s are no error.
    let result = outcome?;
    assert_eq!(result.is_error, Some(false));
    let text = text_of(&result);
    assert!(text.contains("visible part") && text.contains("`hologram`"), "{text}");
    // Through an agent, the model reads the same.
    let servers = McpServers::from_clients([client]);
    let model = ScriptedModel::new([ScriptedTurn::tool_call("weird", json!({})), ScriptedTurn::text("ok")]);
    let run = Agent::new("x").model(model).mcp(&servers).run("go").await?;
    let seen = tool_results(&run)[0].content.text().to_string();
    assert!(seen.contains("visible part") && seen.contains("hologram"), "{seen}");
    Ok(())
}

#[tokio::test]
async fn malformed_oversized_and_silent_servers_get_typed_errors_in_bounded_time() -> anyhow::Result<()> {
    for mode in ["malformed", "huge", "silent"] {
        let server = fixture(mode, &["raw", mode])
            .call_timeout(Duration::from_millis(500))
            .max_message_bytes(1024 * 1024)
            .reconnect(1, Duration::from_millis(10));
        let client = McpClient::connect(server).await?;
        let started = Instant::now();
        let err = client
            .call_tool("weird", json!({}))
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("`{mode}` gave a result"))?;
        assert!(started.elapsed() < Duration::from_secs(5), "{mode}: {:?}", started.elapsed());
        assert!(
            matches!(err, McpError::Timeout { .. } | McpError::Closed { .. } | McpError::Protocol { .. }),
            "{mode}: {err}"
        );
        assert_eq!(err.server(), Some(mode));
    }
    Ok(())
}

#[tokio::test]
async fn servers_that_cannot_start_or_never_answer_fail_to_connect_with_a_clear_error() -> anyhow::Result<()> {
    let err = McpClient::connect(McpServer::stdio("missing", "/nonexistent/mcp-server"))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("connected to nothing"))?;
    assert!(matches!(err, McpError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/mcp-server"), "{err}");

    let started = Instant::now();
    let err =
        McpClient::connect(McpServer::stdio("mute", "sleep").args(["30"]).connect_timeout(Duration::from_millis(300)))
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("connected to a mute process"))?;
    assert!(matches!(err, McpError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let err = McpClient::connect(McpServer::stdio("quits", "sh").args(["-c", "echo 'broken on startup' >&2; exit 7"]))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("connected to a dead process"))?;
    assert!(err.to_string().contains("broken on startup"), "{err}");

    let err =
        McpClient::connect(McpServer::http("down", "http://127.0.0.1:9/mcp").connect_timeout(Duration::from_secs(5)))
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("connected to a closed port"))?;
    assert_eq!(err.server(), Some("down"));
    Ok(())
}

#[tokio::test]
async fn a_client_cancelling_a_run_stops_it() -> anyhow::Result<()> {
    let cancelled = Cancelled::default();
    let url = serve(McpService::new("c").tool(WaitForeverTool).state(cancelled.clone())).await?;
    let servers = McpServers::connect([McpServer::http("c", url)]).await?;
    let agent = Agent::new("x")
        .model(ScriptedModel::new([ScriptedTurn::tool_call("wait_forever", json!({})), ScriptedTurn::text("never")]))
        .mcp(&servers);
    // Dropping the run (a timeout here) cancels the MCP request, and the server's run with it.
    let outcome = tokio::time::timeout(Duration::from_millis(300), agent.run("go")).await;
    assert!(outcome.is_err());
    for _ in 0..100 {
        if cancelled.seen() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the server's run was not cancelled")
}
