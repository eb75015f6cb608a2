//! The OpenAI adapter against a local server that answers as the API reference documents.

mod common;

use common::http::{MockServer, Reply};
use common::provider::Provider;
use futures::StreamExt as _;
use loomflow::model::providers::{ApiKey, Compatible, HttpConfig, OpenAiModel};
use loomflow::model::{ModelErrorKind, ModelRequest, ResponseFormat, ToolChoice};
use loomflow::prelude::*;
use serde_json::json;

const OPENAI: Provider<OpenAiModel> = Provider {
    fixtures: "openai",
    root: "/v1",
    key: "sk-test",
    make: |config| OpenAiModel::new("gpt-4.1-mini", config).unwrap_or_else(|e| panic!("{e}")),
    text_reply: "chat_text.json",
    text: "Hello! How can I assist you today?",
};

fn fixture(name: &str) -> String {
    OPENAI.fixture(name)
}

fn model(server: &MockServer) -> OpenAiModel {
    OPENAI.model(server)
}

/// Get the weather for a city.
#[tool(read_only)]
fn get_weather(
    /// The city.
    city: String,
) -> String {
    format!("sunny in {city}")
}

#[tokio::test]
async fn a_plain_reply_and_the_exact_request() -> anyhow::Result<()> {
    let server =
        MockServer::start(vec![Reply::json(200, &fixture("chat_text.json")).with_header("x-request-id", "req_123")])
            .await;
    let agent = Agent::new("Be helpful.").model(model(&server)).tool(GetWeatherTool).temperature(0.2).max_tokens(300);
    let result = agent.run("Hello!").await?;
    assert_eq!(result.output, "Hello! How can I assist you today?");
    assert_eq!(result.usage.input_tokens, 19);
    assert_eq!(result.usage.cached_input_tokens, 1000);
    assert_eq!(result.usage.output_tokens, 10);
    // 19 full-rate + 1000 cached input tokens, 10 output tokens of gpt-4.1-mini.
    let cost = result.cost_usd.unwrap_or_default();
    assert!((cost - (19.0 * 0.40 + 1000.0 * 0.10 + 10.0 * 1.60) / 1e6).abs() < 1e-12, "{cost}");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(r.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "system", "content": "Be helpful."},
                {"role": "user", "content": "Hello!"}
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "Get the weather for a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "description": "The city."}},
                    "required": ["city"],
                    "additionalProperties": false
                }
            }}],
            "tool_choice": "auto",
            "temperature": 0.2,
            "max_tokens": 300
        })
    );
    Ok(())
}

#[tokio::test]
async fn parallel_tool_calls_run_and_their_results_go_back() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("chat_tool_calls.json")),
        Reply::json(200, &fixture("chat_text.json")),
    ])
    .await;
    let agent = Agent::new("Weather.").model(model(&server)).tool(GetWeatherTool);
    let result = agent.run("Paris and Oslo?").await?;
    assert_eq!(result.tool_calls, 2);
    let second = server.requests()[1].json();
    let messages = second["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_abc123", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_def456", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}
        ]})
    );
    assert_eq!(messages[3], json!({"role": "tool", "tool_call_id": "call_abc123", "content": "sunny in Paris"}));
    assert_eq!(messages[4], json!({"role": "tool", "tool_call_id": "call_def456", "content": "sunny in Oslo"}));
    Ok(())
}

#[tokio::test]
async fn streamed_text_split_anywhere_assembles_with_usage() -> anyhow::Result<()> {
    for piece in [1, 3, 7, 64] {
        let server = MockServer::start(vec![Reply::sse(&fixture("stream_text.sse"), piece)]).await;
        let agent = Agent::new("x").model(model(&server));
        let mut stream = agent.run("hi").stream();
        let mut deltas = Vec::new();
        while let Some(e) = stream.next().await {
            if let EventKind::TextDelta { text, .. } = e.kind {
                deltas.push(text);
            }
        }
        let result = stream.into_result()?;
        assert_eq!(deltas, ["Héllo", " wörld 🌍"], "pieces of {piece}");
        assert_eq!(result.output, "Héllo wörld 🌍");
        assert_eq!((result.usage.input_tokens, result.usage.output_tokens), (12, 4));
        let body = server.requests()[0].json();
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }
    Ok(())
}

#[tokio::test]
async fn streamed_tool_calls_assemble_per_index() -> anyhow::Result<()> {
    for piece in [2, 5, 11] {
        let server = MockServer::start(vec![Reply::sse(&fixture("stream_tool_calls.sse"), piece)]).await;
        let m = model(&server);
        let messages = [Message::user("weather?")];
        let request = ModelRequest::new(&messages);
        let mut acc = loomflow::model::ResponseAccumulator::new();
        let mut stream = m.stream(&request);
        while let Some(e) = stream.next().await {
            acc.push(&e?);
        }
        let response = acc.finish("openai")?;
        assert_eq!(response.tool_calls.len(), 2);
        assert_eq!(response.tool_calls[0].id, "call_A");
        assert_eq!(response.tool_calls[0].arguments, "{\"city\": \"Paris\"}");
        assert_eq!(response.tool_calls[1].arguments, "{\"city\": \"Oslo\"}");
        assert_eq!(response.usage.output_tokens, 30);
    }
    Ok(())
}

#[tokio::test]
async fn every_error_status_maps_to_a_typed_error() {
    let cases = [
        (400, "error_400_invalid.json", ModelErrorKind::BadRequest, false),
        (400, "error_400_context.json", ModelErrorKind::ContextLengthExceeded, false),
        (401, "error_401.json", ModelErrorKind::Authentication, false),
        (403, "error_403.json", ModelErrorKind::PermissionDenied, false),
        (404, "error_404.json", ModelErrorKind::NotFound, false),
        (429, "error_429_rate.json", ModelErrorKind::RateLimited, true),
        (429, "error_429_quota.json", ModelErrorKind::QuotaExceeded, false),
        (500, "error_500.json", ModelErrorKind::Overloaded, true),
        (503, "error_503.json", ModelErrorKind::Overloaded, true),
    ];
    for (status, file, kind, transient) in cases {
        let body = fixture(file);
        let e = OPENAI.error_of(Reply::json(status, &body).with_header("x-request-id", "req_9")).await;
        assert_eq!((e.kind(), e.is_transient(), e.status()), (kind, transient, Some(status)), "{file}");
        let expected: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(Some(e.message()), expected["error"]["message"].as_str(), "{file}");
        assert_eq!(e.request_id(), Some("req_9"));
    }
}

#[tokio::test]
async fn native_structured_output_and_effort_on_the_wire() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("chat_text.json")),
        Reply::json(200, &fixture("chat_text.json")),
    ])
    .await;
    let mut config = HttpConfig::new(format!("{}/v1", server.url));
    config.api_key = Some(ApiKey::new("k"));
    // The local server stands in for OpenAI's own API.
    let m = OpenAiModel::new("o4-mini", config.clone())?.with_openai_dialect(true);
    let messages = [Message::user("hi")];
    let schema =
        std::sync::Arc::new(json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}));
    let format = ResponseFormat::new("A", schema.clone()).with_strict(Some(schema));
    let mut settings = loomflow::model::ModelSettings::default();
    settings.effort = Some(loomflow::model::Effort::High);
    let choice = ToolChoice::Required;
    let request = ModelRequest::new(&messages)
        .with_response_format(Some(&format))
        .with_settings(&settings)
        .with_tool_choice(&choice);
    m.complete(&request).await?;
    let body = server.requests()[0].json();
    assert_eq!(body["reasoning_effort"], "high");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(body["response_format"]["json_schema"]["name"], "A");
    // No tools: no tool_choice is sent.
    assert!(body.get("tool_choice").is_none());

    // A compatible server gets the plain schema, not OpenAI's strict one.
    OpenAiModel::new("o4-mini", config)?.complete(&request).await?;
    let body = server.requests()[1].json();
    assert_eq!(body["response_format"]["json_schema"]["strict"], false);
    Ok(())
}

#[test]
fn a_preset_without_its_key_names_the_variable() {
    // The CI machine has no Groq key.
    let err = OpenAiModel::compatible(Compatible::Groq, "llama-3.3-70b").err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("no API key for groq: set the GROQ_API_KEY environment variable (or pass the key in the model's config)")
    );
    // Ollama needs none.
    assert!(OpenAiModel::compatible(Compatible::Ollama, "llama3.2").is_ok());
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_then_succeeds() -> anyhow::Result<()> {
    let limited = Reply::json(429, &fixture("error_429_rate.json")).with_header("retry-after-ms", "40");
    OPENAI.a_rate_limit_is_waited_out_then_retried(limited).await
}

#[tokio::test]
async fn a_500_then_success_and_permanent_errors_are_not_retried() -> anyhow::Result<()> {
    OPENAI.a_500_is_retried_and_a_permanent_error_is_not(Reply::json(401, &fixture("error_401.json"))).await
}

#[tokio::test]
async fn a_connection_dropped_mid_stream_is_a_transient_error_and_not_silently_restarted() -> anyhow::Result<()> {
    OPENAI.a_dropped_stream_is_transient_and_not_restarted().await
}

#[tokio::test]
async fn malformed_stream_data_is_a_transient_stream_error() {
    OPENAI.malformed_stream_data_is_a_transient_error("data: {\"choices\": [tru\n\n").await;
}

#[tokio::test]
async fn a_slow_server_hits_the_timeout() {
    OPENAI.a_slow_server_hits_the_timeout().await;
}
