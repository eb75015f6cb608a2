//! Loom's side of the official MCP conformance suite (`@modelcontextprotocol/conformance`).
//!
//! - `mcp-conformance server 127.0.0.1:PORT`: a Loom [`McpService`] at `http://ADDR/mcp` with
//!   the tools, resources and prompts the suite's server scenarios call, for protocol
//!   2025-11-25 (the `initialize` handshake) and 2026-07-28 (stateless) at once.
//! - `mcp-conformance client URL`: Loom's [`McpClient`] doing what the client scenario named by
//!   `MCP_CONFORMANCE_SCENARIO` expects, at the protocol `MCP_CONFORMANCE_PROTOCOL_VERSION`
//!   (the suite appends the URL of its scenario server as the last argument).
//!
//! `.ci/mcp-conformance.sh` runs both against the suite.

// Logging, sampling and roots are deprecated from 2026-07-28 on; 2025-11-25 has them.
#![allow(deprecated)]

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use loomflow::mcp::rmcp::model as mcp;
use loomflow::mcp::{McpCall, McpService, PromptHandler};
use loomflow::model::{MediaSource, Part};
use loomflow::prelude::*;
use loomflow::tool::{ToolDefinition, ToolHints, ToolOutput};
use serde_json::{Value, json};

/// A 1×1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg==";
/// A WAV file of no samples.
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEARKwAAIhYAQACABAAZGF0YQAAAAA=";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => {
            let addr = args.get(1).context("usage: mcp-conformance server 127.0.0.1:PORT")?;
            server(addr).await
        }
        Some("client") => {
            let url = args.last().filter(|_| args.len() > 1).context("usage: mcp-conformance client URL")?;
            client::run(url).await
        }
        _ => bail!("usage: mcp-conformance server 127.0.0.1:PORT | mcp-conformance client URL"),
    }
}

// ---------------------------------------------------------------------------------------------
// The server: the fixtures of the server scenarios.
// ---------------------------------------------------------------------------------------------

/// Returns simple text content.
#[tool(read_only)]
fn test_simple_text() -> &'static str {
    "This is a simple text response for testing."
}

/// Returns image content.
#[tool(read_only)]
fn test_image_content() -> ToolOutput {
    ToolOutput::parts(vec![Part::image_base64("image/png", PNG)])
}

/// Returns audio content.
#[tool(read_only)]
fn test_audio_content() -> ToolOutput {
    ToolOutput::parts(vec![Part::Audio {
        source: MediaSource::Base64 { media_type: "audio/wav".into(), data: WAV.into() },
    }])
}

/// A document part: an embedded resource of the MCP result.
fn document(uri: &str, media_type: &str, base64: &str) -> Part {
    Part::Document {
        source: MediaSource::Base64 { media_type: media_type.into(), data: base64.into() },
        name: Some(uri.into()),
    }
}

/// Returns embedded resource content.
#[tool(read_only)]
fn test_embedded_resource() -> ToolOutput {
    // "This is an embedded resource content."
    ToolOutput::parts(vec![document(
        "test://embedded-resource",
        "text/plain",
        "VGhpcyBpcyBhbiBlbWJlZGRlZCByZXNvdXJjZSBjb250ZW50Lg==",
    )])
}

/// Returns text, an image and an embedded resource.
#[tool(read_only)]
fn test_multiple_content_types() -> ToolOutput {
    ToolOutput::parts(vec![
        Part::text("Multiple content types test:"),
        Part::image_base64("image/png", PNG),
        // {"test":"data","value":123}
        document("test://mixed-content-resource", "application/json", "eyJ0ZXN0IjoiZGF0YSIsInZhbHVlIjoxMjN9"),
    ])
}

/// Sends three log messages while it runs.
#[tool(read_only)]
async fn test_tool_with_logging(call: State<McpCall>) -> &'static str {
    for (i, message) in
        ["Tool execution started", "Tool processing data", "Tool execution completed"].iter().enumerate()
    {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        call.log(mcp::LoggingLevel::Info, Some("conformance-server"), json!(message)).await;
    }
    "Logging test completed"
}

/// Reports progress: 0, 50 and 100 of 100.
#[tool(read_only)]
async fn test_tool_with_progress(call: State<McpCall>) -> &'static str {
    for (i, (progress, message)) in [(0.0, "Starting"), (50.0, "Halfway"), (100.0, "Complete")].into_iter().enumerate()
    {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        call.progress(progress, Some(100.0), Some(message.to_owned())).await;
    }
    "Progress test completed"
}

/// Always fails.
#[tool(read_only)]
fn test_error_handling() -> Result<String, ToolError> {
    Err(ToolError::new("This tool intentionally returns an error for testing"))
}

/// Asks the client's model to answer a prompt (sampling).
#[tool(read_only)]
async fn test_sampling(
    call: State<McpCall>,
    /// The prompt to send.
    prompt: String,
) -> Result<String, ToolError> {
    let answer = call.sample(&prompt, 100).await.map_err(|e| ToolError::new(e.to_string()))?;
    Ok(format!("LLM response: {answer}"))
}

/// An elicitation schema written as JSON.
fn schema(value: Value) -> Result<mcp::ElicitationSchema, ToolError> {
    serde_json::from_value(value).map_err(|e| ToolError::new(format!("bad elicitation schema: {e}")))
}

/// Asks the client's user to fill in a form; over 2026-07-28 the input request `key`.
async fn elicit(call: &McpCall, key: &str, message: &str, form: Value) -> Result<mcp::ElicitResult, ToolError> {
    call.elicit(key, message, schema(form)?).await.map_err(|e| ToolError::new(e.to_string()))
}

fn action(result: &mcp::ElicitResult) -> &'static str {
    match result.action {
        mcp::ElicitationAction::Accept => "accept",
        mcp::ElicitationAction::Decline => "decline",
        _ => "cancel",
    }
}

/// Asks the user for a name and an email address (elicitation).
#[tool(read_only)]
async fn test_elicitation(
    call: State<McpCall>,
    /// The message to show.
    message: String,
) -> Result<String, ToolError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"}
        },
        "required": ["username", "email"]
    });
    let result = elicit(&call, "user", &message, schema).await?;
    Ok(format!("User response: action={}, content={}", action(&result), result.content.unwrap_or(Value::Null)))
}

/// Asks for values that all have defaults (SEP-1034).
#[tool(read_only)]
async fn test_elicitation_sep1034_defaults(call: State<McpCall>) -> Result<String, ToolError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User's name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User's age", "default": 30},
            "score": {"type": "number", "description": "User's score", "default": 95.5},
            "status": {"type": "string", "description": "User's status", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "description": "Whether user is verified", "default": true}
        }
    });
    let result = elicit(&call, "defaults", "Please provide values (all have defaults)", schema).await?;
    Ok(format!("Elicitation completed: action={}, content={}", action(&result), result.content.unwrap_or(Value::Null)))
}

/// Asks for a choice of each kind of enum (SEP-1330).
#[tool(read_only)]
async fn test_elicitation_sep1330_enums(call: State<McpCall>) -> Result<String, ToolError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"}
            ]},
            "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "items": {"anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"}
            ]}}
        }
    });
    let result = elicit(&call, "enums", "Test enum schema improvements", schema).await?;
    Ok(format!("Elicitation completed: action={}, content={}", action(&result), result.content.unwrap_or(Value::Null)))
}

// The stateless (2026-07-28) fixtures: input from the client through `InputRequiredResult`s.

fn failed(e: loomflow::mcp::McpError) -> ToolError {
    ToolError::new(e.to_string())
}

fn name_form() -> Value {
    json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})
}

fn field(result: &mcp::ElicitResult, name: &str) -> String {
    match result.content.as_ref().and_then(|c| c.get(name)) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Asks the user's name, then greets them.
#[tool(read_only)]
async fn test_input_required_result_elicitation(call: State<McpCall>) -> Result<String, ToolError> {
    let answer = elicit(&call, "user_name", "What is your name?", name_form()).await?;
    Ok(format!("Hello, {}!", field(&answer, "name")))
}

/// Asks the client's model for the capital of France.
#[tool(read_only)]
async fn test_input_required_result_sampling(call: State<McpCall>) -> Result<String, ToolError> {
    let message = mcp::SamplingMessage::new(
        mcp::Role::User,
        mcp::SamplingMessageContentBlock::text("What is the capital of France?"),
    );
    let params = mcp::CreateMessageRequestParams::new(vec![message], 100);
    let answer = call.create_message("capital_question", params).await.map_err(failed)?;
    let text = answer.message.content.into_vec().into_iter().find_map(|b| match b {
        mcp::SamplingMessageContentBlock::Text(t) => Some(t.text),
        _ => None,
    });
    Ok(format!("The model said: {}", text.unwrap_or_default()))
}

/// Asks for the client's roots, and lists them.
#[tool(read_only)]
async fn test_input_required_result_list_roots(call: State<McpCall>) -> Result<String, ToolError> {
    let roots = call.list_roots("client_roots").await.map_err(failed)?;
    let uris: Vec<String> = roots.into_iter().map(|r| r.uri).collect();
    Ok(format!("Roots: {}", uris.join(", ")))
}

/// Asks for a confirmation; the answer comes back with the sealed request state.
#[tool(read_only)]
async fn test_input_required_result_request_state(call: State<McpCall>) -> Result<String, ToolError> {
    let form = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
    let answer = elicit(&call, "confirm", "Please confirm", form).await?;
    Ok(format!("state-ok: confirmed={}", field(&answer, "ok")))
}

/// Asks for a name, a greeting and the roots at once.
#[tool(read_only)]
async fn test_input_required_result_multiple_inputs(call: State<McpCall>) -> Result<String, ToolError> {
    let name = elicit(&call, "user_name", "What is your name?", name_form()).await;
    let message =
        mcp::SamplingMessage::new(mcp::Role::User, mcp::SamplingMessageContentBlock::text("Generate a greeting"));
    let greeting = call.create_message("greeting", mcp::CreateMessageRequestParams::new(vec![message], 50)).await;
    let roots = call.list_roots("client_roots").await;
    let (name, _greeting, roots) = (name?, greeting.map_err(failed)?, roots.map_err(failed)?);
    Ok(format!("Hello, {}: {} roots", field(&name, "name"), roots.len()))
}

/// Asks for a name, then (a second round) a favourite colour.
#[tool(read_only)]
async fn test_input_required_result_multi_round(call: State<McpCall>) -> Result<String, ToolError> {
    let name = elicit(&call, "step1", "Step 1: What is your name?", name_form()).await?;
    let form = json!({"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]});
    let color = elicit(&call, "step2", "Step 2: What is your favorite color?", form).await?;
    Ok(format!("{} likes {}", field(&name, "name"), field(&color, "color")))
}

/// Asks for a confirmation; an altered request state is refused.
#[tool(read_only)]
async fn test_input_required_result_tampered_state(call: State<McpCall>) -> Result<String, ToolError> {
    let form = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
    let answer = elicit(&call, "confirm", "Please confirm", form).await?;
    Ok(format!("confirmed={}", field(&answer, "ok")))
}

/// Asks the client's model, and its user when the client offers elicitation.
#[tool(read_only)]
async fn test_input_required_result_capabilities(call: State<McpCall>) -> Result<String, ToolError> {
    let answer = call.sample("Say hello", 50).await;
    let user = match elicit(&call, "user_name", "What is your name?", name_form()).await {
        Ok(result) => field(&result, "name"),
        Err(_) if call.client_capabilities().is_none_or(|c| c.elicitation.is_none()) => "someone".to_owned(),
        Err(e) => return Err(e),
    };
    Ok(format!("{user}: {}", answer.map_err(failed)?))
}

/// Needs sampling: a client that does not offer it is refused.
#[tool(read_only)]
async fn test_missing_capability(call: State<McpCall>) -> Result<String, ToolError> {
    call.sample("Say hello", 50).await.map_err(failed)
}

/// Asks the user while the call's response streams.
#[tool(read_only)]
async fn test_streaming_elicitation(call: State<McpCall>) -> Result<String, ToolError> {
    let answer = elicit(&call, "user_name", "What is your name?", name_form()).await?;
    Ok(format!("Hello, {}!", field(&answer, "name")))
}

/// Sends a log message (none reaches a request that set no log level).
#[tool(read_only)]
async fn test_logging_tool(call: State<McpCall>) -> &'static str {
    call.log(mcp::LoggingLevel::Info, Some("conformance-server"), json!("a log message")).await;
    "Logged"
}

/// A prompt that asks its client for the context to use (input on a request other than a
/// tool call).
struct ContextPrompt;

#[loomflow::async_trait]
impl PromptHandler for ContextPrompt {
    async fn get(&self, _arguments: &HashMap<String, String>) -> Result<Vec<mcp::PromptMessage>, String> {
        Err("this prompt asks its client for input".to_owned())
    }

    async fn get_with(
        &self,
        _arguments: &HashMap<String, String>,
        call: &McpCall,
    ) -> Result<Vec<mcp::PromptMessage>, String> {
        let form = json!({"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]});
        let answer = elicit(call, "user_context", "What context should the prompt use?", form)
            .await
            .map_err(|e| e.message().to_owned())?;
        let text = format!("Answer within this context: {}", field(&answer, "context"));
        Ok(vec![mcp::PromptMessage::new_text(mcp::Role::User, text)])
    }
}

/// A tool with an input schema written by hand: the suite checks schema keywords `#[tool]`
/// does not write.
struct SchemaTool {
    definition: ToolDefinition,
    answer: fn(&Value) -> String,
}

#[loomflow::async_trait]
impl Tool for SchemaTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, _ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let arguments: Value =
            serde_json::from_str(arguments).map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
        Ok(ToolOutput::text((self.answer)(&arguments)))
    }
}

fn schema_tool(
    name: &str,
    description: &str,
    schema: Value,
    answer: fn(&Value) -> String,
) -> Result<SchemaTool, ConfigError> {
    let definition =
        ToolDefinition::new(name, description, schema)?.with_hints(ToolHints::NONE.read_only().idempotent());
    Ok(SchemaTool { definition, answer })
}

/// Its input schema uses JSON Schema 2020-12: `$defs` with an `$anchor`, `allOf`/`anyOf`, `if`.
fn json_schema_tool() -> Result<SchemaTool, ConfigError> {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    });
    schema_tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features.", schema, |args| {
        format!("Hello, {}!", args.get("name").and_then(Value::as_str).unwrap_or("world"))
    })
}

/// Its `region` parameter is mirrored into the `Mcp-Param-Region` header (SEP-2243).
fn custom_header_tool() -> Result<SchemaTool, ConfigError> {
    let schema = json!({
        "type": "object",
        "properties": {"region": {"type": "string", "description": "Where to run", "x-mcp-header": "Region"}},
        "required": ["region"]
    });
    schema_tool("test_custom_header", "Echoes a parameter mirrored into a header.", schema, |args| {
        format!("region={}", args.get("region").and_then(Value::as_str).unwrap_or_default())
    })
}

/// Takes a while, so a client can reconnect to its stream.
#[tool(read_only)]
async fn test_reconnection() -> &'static str {
    tokio::time::sleep(Duration::from_millis(100)).await;
    "Reconnection test completed"
}

fn static_resources(service: McpService) -> McpService {
    let text = mcp::Resource::new("test://static-text", "Static Text Resource")
        .with_description("A static text resource for testing")
        .with_mime_type("text/plain");
    let binary = mcp::Resource::new("test://static-binary", "Static Binary Resource")
        .with_description("A static binary resource for testing")
        .with_mime_type("image/png");
    let watched = mcp::Resource::new("test://watched-resource", "Watched Resource")
        .with_description("A resource clients subscribe to")
        .with_mime_type("text/plain");
    let template = mcp::ResourceTemplate::new("test://template/{id}/data", "Dynamic Resource")
        .with_description("A dynamic resource with parameter substitution")
        .with_mime_type("application/json");
    service
        .resource(
            text,
            vec![mcp::ResourceContents::text("This is the content of the static text resource.", "test://static-text")],
        )
        .resource(binary, vec![mcp::ResourceContents::blob(PNG, "test://static-binary").with_mime_type("image/png")])
        .resource(watched, vec![mcp::ResourceContents::text("Watched resource content.", "test://watched-resource")])
        .resource_template(template, |uri: &str, vars: &HashMap<String, String>| {
            let id = vars.get("id").cloned().unwrap_or_default();
            let text = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string();
            Ok(vec![mcp::ResourceContents::text(text, uri).with_mime_type("application/json")])
        })
}

fn prompts(service: McpService) -> McpService {
    let simple = mcp::Prompt::new("test_simple_prompt", Some("A simple test prompt with no arguments"), None);
    let with_args = mcp::Prompt::new(
        "test_prompt_with_arguments",
        Some("A test prompt that accepts arguments"),
        Some(vec![
            mcp::PromptArgument::new("arg1").with_description("First test argument").with_required(true),
            mcp::PromptArgument::new("arg2").with_description("Second test argument").with_required(true),
        ]),
    );
    let embedded = mcp::Prompt::new(
        "test_prompt_with_embedded_resource",
        Some("A test prompt that includes an embedded resource"),
        Some(vec![
            mcp::PromptArgument::new("resourceUri")
                .with_description("URI of the resource to embed")
                .with_required(true),
        ]),
    );
    let image = mcp::Prompt::new("test_prompt_with_image", Some("A test prompt that includes an image"), None);
    let asks = mcp::Prompt::new(
        "test_input_required_result_prompt",
        Some("A prompt that asks its client for the context to use"),
        None,
    );
    service
        .prompt(asks, ContextPrompt)
        .prompt(simple, |_: &HashMap<String, String>| {
            Ok(vec![mcp::PromptMessage::new_text(mcp::Role::User, "This is a simple prompt for testing.")])
        })
        .prompt(with_args, |args: &HashMap<String, String>| {
            let arg = |k: &str| args.get(k).cloned().unwrap_or_default();
            let text = format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2"));
            Ok(vec![mcp::PromptMessage::new_text(mcp::Role::User, text)])
        })
        .prompt(embedded, |args: &HashMap<String, String>| {
            let uri = args.get("resourceUri").cloned().unwrap_or_default();
            let resource = mcp::ResourceContents::text("Embedded resource content for testing.", uri);
            Ok(vec![
                mcp::PromptMessage::new(mcp::Role::User, mcp::ContentBlock::resource(resource)),
                mcp::PromptMessage::new_text(mcp::Role::User, "Please process the embedded resource above."),
            ])
        })
        .prompt(image, |_: &HashMap<String, String>| {
            Ok(vec![
                mcp::PromptMessage::new(mcp::Role::User, mcp::ContentBlock::image(PNG, "image/png")),
                mcp::PromptMessage::new_text(mcp::Role::User, "Please analyze the image above."),
            ])
        })
}

fn service() -> anyhow::Result<McpService> {
    let service = McpService::new("loom-conformance-server")
        .instructions("Loom's MCP conformance fixture server.")
        .tool(TestSimpleTextTool)
        .tool(TestImageContentTool)
        .tool(TestAudioContentTool)
        .tool(TestEmbeddedResourceTool)
        .tool(TestMultipleContentTypesTool)
        .tool(TestToolWithLoggingTool)
        .tool(TestToolWithProgressTool)
        .tool(TestErrorHandlingTool)
        .tool(TestSamplingTool)
        .tool(TestElicitationTool)
        .tool(TestElicitationSep1034DefaultsTool)
        .tool(TestElicitationSep1330EnumsTool)
        .tool(TestReconnectionTool)
        .tool(TestInputRequiredResultElicitationTool)
        .tool(TestInputRequiredResultSamplingTool)
        .tool(TestInputRequiredResultListRootsTool)
        .tool(TestInputRequiredResultRequestStateTool)
        .tool(TestInputRequiredResultMultipleInputsTool)
        .tool(TestInputRequiredResultMultiRoundTool)
        .tool(TestInputRequiredResultTamperedStateTool)
        .tool(TestInputRequiredResultCapabilitiesTool)
        .tool(TestMissingCapabilityTool)
        .tool(TestStreamingElicitationTool)
        .tool(TestLoggingToolTool)
        .tool(json_schema_tool()?)
        .tool(custom_header_tool()?)
        .completion(complete);
    Ok(prompts(static_resources(service)))
}

/// Completions of the arguments of `test_prompt_with_arguments` and of the template's `id`.
fn complete(
    reference: &mcp::Reference,
    argument: &str,
    value: &str,
    _filled: &HashMap<String, String>,
) -> Result<Vec<String>, String> {
    let values: &[&str] = match (reference, argument) {
        (mcp::Reference::Prompt(p), "arg1" | "arg2") if p.name == "test_prompt_with_arguments" => {
            &["paris", "park", "party", "test", "testing"]
        }
        (mcp::Reference::Resource(r), "id") if r.uri == "test://template/{id}/data" => &["1", "2", "3", "123"],
        _ => &[],
    };
    Ok(values.iter().filter(|v| v.starts_with(value)).map(|v| (*v).to_owned()).collect())
}

async fn server(addr: &str) -> anyhow::Result<()> {
    let service = service()?;
    service.check()?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    eprintln!("mcp-conformance: serving at http://{}/mcp", listener.local_addr()?);
    service.serve_http(listener).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The client: what each client scenario expects of Loom's McpClient.
// ---------------------------------------------------------------------------------------------

mod client {
    use anyhow::Context as _;
    use loomflow::mcp::rmcp::model as mcp;
    use loomflow::mcp::{ElicitationRequest, McpClient, McpServer, Protocol};
    use serde_json::{Map, Value, json};

    /// Connects at the protocol the suite asks for, and does what the scenario expects: a
    /// scenario that names the tools to call gets those calls; every other one sees the
    /// client use all the server offers (each tool called with arguments made from its
    /// schema, each resource read, each prompt got).
    pub(crate) async fn run(url: &str) -> anyhow::Result<()> {
        let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
        let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").unwrap_or_default();
        let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
            .ok()
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or(Value::Null);
        // Dated revisions through 2025-11-25 have the `initialize` handshake; 2026-07-28 is
        // stateless.
        let protocol = if version.as_str() >= "2026-07-28" { Protocol::Stateless } else { Protocol::Initialize };
        // Forms are accepted as they come: Loom fills in each property's default.
        let server = McpServer::http("conformance", url)
            .protocol(protocol)
            .elicitation(|_: &ElicitationRequest<'_>| mcp::ElicitResult::new(mcp::ElicitationAction::Accept));
        let client = McpClient::connect(server).await.with_context(|| format!("connecting to {url}"))?;
        let outcome = match scenario.as_str() {
            "http-custom-headers" => call_listed(&client, &context).await,
            "json-schema-2020-12-preservation" => echo_schema(&client).await,
            _ => exercise(&client).await,
        };
        client.close().await;
        outcome
    }

    /// Calls the tools of `context.toolCalls` with their arguments.
    async fn call_listed(client: &McpClient, context: &Value) -> anyhow::Result<()> {
        for call in context.get("toolCalls").and_then(Value::as_array).into_iter().flatten() {
            let name = call.get("name").and_then(Value::as_str).context("a tool call without a name")?;
            let arguments = call.get("arguments").cloned().unwrap_or_else(|| json!({}));
            let result = client.call_tool(name, arguments).await?;
            eprintln!("{name}: {result:?}");
        }
        Ok(())
    }

    /// Sends the input schema of `json_schema_2020_12_tool` back through `json_schema_echo`, as
    /// the client received it.
    async fn echo_schema(client: &McpClient) -> anyhow::Result<()> {
        let tools = client.mcp_tools();
        let focal =
            tools.iter().find(|t| t.name == "json_schema_2020_12_tool").context("no json_schema_2020_12_tool")?;
        let schema = Value::Object((*focal.input_schema).clone());
        let result = client.call_tool("json_schema_echo", json!({ "schema": schema })).await?;
        eprintln!("json_schema_echo: {result:?}");
        Ok(())
    }

    /// Uses everything the server offers: every tool, resource and prompt.
    async fn exercise(client: &McpClient) -> anyhow::Result<()> {
        let capabilities = client.server_info().await.map(|i| i.capabilities.clone()).ok();
        for tool in client.mcp_tools().iter() {
            let arguments = arguments_for(&tool.input_schema);
            match client.call_tool(&tool.name, arguments).await {
                Ok(result) => eprintln!("{}: {result:?}", tool.name),
                Err(e) => eprintln!("{}: {e}", tool.name),
            }
        }
        if capabilities.as_ref().is_none_or(|c| c.resources.is_some()) {
            for resource in client.list_resources().await.unwrap_or_default() {
                match client.read_resource(&resource.uri).await {
                    Ok(contents) => eprintln!("{}: {} contents", resource.uri, contents.len()),
                    Err(e) => eprintln!("{}: {e}", resource.uri),
                }
            }
        }
        if capabilities.as_ref().is_none_or(|c| c.prompts.is_some()) {
            for prompt in client.list_prompts().await.unwrap_or_default() {
                let arguments: Vec<(String, String)> = prompt
                    .arguments
                    .iter()
                    .flatten()
                    .filter(|a| a.required == Some(true))
                    .map(|a| (a.name.clone(), "test".to_owned()))
                    .collect();
                match client.get_prompt(&prompt.name, arguments).await {
                    Ok(result) => eprintln!("{}: {} messages", prompt.name, result.messages.len()),
                    Err(e) => eprintln!("{}: {e}", prompt.name),
                }
            }
        }
        Ok(())
    }

    /// Arguments a tool's schema accepts: a plain value for each required property.
    fn arguments_for(schema: &mcp::JsonObject) -> Value {
        let properties = schema.get("properties").and_then(Value::as_object);
        let mut arguments = Map::new();
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            let kind = properties.and_then(|p| p.get(name)).and_then(|p| p.get("type")).and_then(Value::as_str);
            let value = match kind {
                Some("number" | "integer") => json!(1),
                Some("boolean") => json!(true),
                Some("object") => json!({}),
                Some("array") => json!([]),
                Some("null") => Value::Null,
                _ => json!("test"),
            };
            arguments.insert(name.to_owned(), value);
        }
        Value::Object(arguments)
    }
}
