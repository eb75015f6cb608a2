//! The Anthropic adapter against a local server that answers as the Messages API reference
//! documents.

mod common;

use std::time::Duration;

use common::http::{MockServer, Reply};
use common::provider::{Provider, fast_retries, stream_all};
use futures::StreamExt as _;
use loomflow::model::providers::AnthropicModel;
use loomflow::model::{
    Effort, FinishReason, ModelErrorKind, ModelRequest, ModelSettings, Part, StreamEvent, ToolCall, ToolResult,
};
use loomflow::prelude::*;
use serde_json::json;

const ANTHROPIC: Provider<AnthropicModel> = Provider {
    fixtures: "anthropic",
    root: "/v1",
    key: "sk-ant-test",
    make: |config| AnthropicModel::new("claude-sonnet-4-5", config).unwrap_or_else(|e| panic!("{e}")),
    text_reply: "message_text.json",
    text: "Hello! How can I help you today?",
};

fn fixture(name: &str) -> String {
    ANTHROPIC.fixture(name)
}

fn model_named(server: &MockServer, name: &str) -> AnthropicModel {
    AnthropicModel::new(name, ANTHROPIC.config(server)).unwrap_or_else(|e| panic!("{e}"))
}

fn model(server: &MockServer) -> AnthropicModel {
    ANTHROPIC.model(server)
}

/// Get the weather for a city.
#[tool(read_only)]
fn get_weather(
    /// The city.
    city: String,
) -> String {
    format!("sunny in {city}")
}

/// Divide a by b.
#[tool]
fn divide(a: f64, b: f64) -> Result<f64, String> {
    if b == 0.0 { Err("cannot divide by zero; pick a non-zero b".to_owned()) } else { Ok(a / b) }
}

fn weather_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city."}},
        "required": ["city"],
        "additionalProperties": false
    })
}

#[tokio::test]
async fn a_plain_reply_and_the_exact_request() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("message_text.json")).with_header("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy"),
    ])
    .await;
    let agent = Agent::new("Be helpful.").model(model(&server)).tool(GetWeatherTool).temperature(0.2).max_tokens(300);
    let result = agent.run("Hello!").await?;
    assert_eq!(result.output, "Hello! How can I help you today?");
    assert_eq!(result.usage.input_tokens, 25);
    assert_eq!(result.usage.cached_input_tokens, 1800);
    assert_eq!(result.usage.cache_write_tokens, 100);
    assert_eq!(result.usage.output_tokens, 12);
    // claude-sonnet-4-5: $3 input, $0.30 cache reads, $3.75 cache writes, $15 output per million.
    let cost = result.cost_usd.unwrap_or_default();
    let expected = (25.0 * 3.00 + 1800.0 * 0.30 + 100.0 * 3.75 + 12.0 * 15.00) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} != {expected}");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(r.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(
        r.json(),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 300,
            "system": [{"type": "text", "text": "Be helpful.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "Hello!"}],
            "tools": [{
                "name": "get_weather",
                "description": "Get the weather for a city.",
                "input_schema": weather_schema(),
                "cache_control": {"type": "ephemeral"}
            }],
            "tool_choice": {"type": "auto"},
            "temperature": 0.2
        })
    );
    Ok(())
}

#[tokio::test]
async fn a_reply_reports_its_model_usage_and_request_id() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("message_text.json")).with_header("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy"),
    ])
    .await;
    let m = model(&server).with_prompt_caching(false);
    let messages = [Message::system("One."), Message::system("Two."), Message::user("Hi")];
    let response = m.complete(&ModelRequest::new(&messages)).await?;
    assert_eq!(response.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!(response.request_id.as_deref(), Some("req_011CSHoEeqs5C35K2UUqR7Fy"));
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(
        (response.usage.input_tokens, response.usage.cached_input_tokens, response.usage.cache_write_tokens),
        (25, 1800, 100)
    );
    assert_eq!(response.usage.total_input_tokens(), 1925);
    // Caching off: no cache_control. Every system message is its own block, and max_tokens,
    // which the API requires, has its default.
    let body = server.requests()[0].json();
    assert_eq!(body["system"], json!([{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]));
    assert_eq!(body["max_tokens"], 8192);
    assert!(body.get("stream").is_none());
    assert_eq!(
        (m.capabilities().native_structured_output, m.capabilities().streaming, m.capabilities().vision),
        (false, true, true)
    );
    Ok(())
}

#[tokio::test]
async fn a_tool_call_runs_and_its_result_goes_back() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("message_tool_use.json")),
        Reply::json(200, &fixture("message_text.json")),
    ])
    .await;
    let agent = Agent::new("Weather.").model(model(&server)).tool(GetWeatherTool);
    let result = agent.run("What's the weather in Paris?").await?;
    assert_eq!(result.tool_calls, 1);
    assert_eq!(result.output, "Hello! How can I help you today?");
    // Both turns' usage is summed.
    assert_eq!((result.usage.input_tokens, result.usage.output_tokens), (412 + 25, 58 + 12));

    let second = server.requests()[1].json();
    assert_eq!(
        second["messages"],
        json!([
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "I'll check the current weather in Paris for you."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "sunny in Paris"}
            ]}
        ])
    );
    Ok(())
}

#[tokio::test]
async fn parallel_tool_calls_answer_in_one_user_message_with_the_failure_flagged() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("message_parallel_tool_use.json")),
        Reply::json(200, &fixture("message_text.json")),
    ])
    .await;
    let agent = Agent::new("Tools.").model(model(&server)).tool(GetWeatherTool).tool(DivideTool);
    let result = agent.run("Weather in Paris, and 1/0?").await?;
    assert_eq!(result.tool_calls, 2);

    let second = server.requests()[1].json();
    let messages = second["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 3, "{second}");
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_01CsxBdrW3mAJKrsUr8vAxDd", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_01Hx4N6hGm4qPBMkFLr3DQzt", "name": "divide", "input": {"a": 1, "b": 0}}
        ]})
    );
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01CsxBdrW3mAJKrsUr8vAxDd", "content": "sunny in Paris"},
            {"type": "tool_result", "tool_use_id": "toolu_01Hx4N6hGm4qPBMkFLr3DQzt",
             "content": "cannot divide by zero; pick a non-zero b", "is_error": true}
        ]})
    );
    // The tools' cache breakpoint sits on the last definition only.
    assert!(second["tools"][0].get("cache_control").is_none());
    assert_eq!(second["tools"][1]["cache_control"], json!({"type": "ephemeral"}));
    Ok(())
}

#[tokio::test]
async fn tool_results_and_a_following_user_message_merge_into_one_turn() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(200, &fixture("message_text.json"))]).await;
    let m = model(&server);
    let messages = [
        Message::system("Weather."),
        Message::user("Paris and Oslo?"),
        Message::assistant_with_tools(
            "",
            vec![
                ToolCall::new("toolu_01", "get_weather", r#"{"city": "Paris"}"#),
                // Arguments that are not an object still make a valid request.
                ToolCall::new("toolu_02", "get_weather", r#"["Oslo"]"#),
            ],
        ),
        Message::tool(ToolResult::ok("toolu_01", "get_weather", "sunny in Paris")),
        Message::tool(ToolResult::error("toolu_02", "get_weather", "invalid arguments: expected an object")),
        Message::user("Thanks. Which is warmer?"),
    ];
    m.complete(&ModelRequest::new(&messages)).await?;
    let body = server.requests()[0].json();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "Paris and Oslo?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny in Paris"},
                {"type": "tool_result", "tool_use_id": "toolu_02",
                 "content": "invalid arguments: expected an object", "is_error": true},
                {"type": "text", "text": "Thanks. Which is warmer?"}
            ]}
        ])
    );
    Ok(())
}

#[tokio::test]
async fn streamed_text_split_anywhere_assembles_with_usage() -> anyhow::Result<()> {
    for piece in [1, 3, 7, 64] {
        let server = MockServer::start(vec![
            Reply::sse(&fixture("stream_text.sse"), piece).with_header("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy"),
        ])
        .await;
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
        assert_eq!(
            (
                result.usage.input_tokens,
                result.usage.cached_input_tokens,
                result.usage.cache_write_tokens,
                result.usage.output_tokens
            ),
            (25, 1800, 100, 12),
            "pieces of {piece}"
        );
        let cost = result.cost_usd.unwrap_or_default();
        let expected = (25.0 * 3.00 + 1800.0 * 0.30 + 100.0 * 3.75 + 12.0 * 15.00) / 1e6;
        assert!((cost - expected).abs() < 1e-12, "{cost} != {expected}");
        let body = server.requests()[0].json();
        assert_eq!(body["stream"], true);
        assert_eq!(server.requests()[0].header("anthropic-version"), Some("2023-06-01"));
    }
    Ok(())
}

#[tokio::test]
async fn streamed_tool_calls_are_numbered_among_tool_calls_only() -> anyhow::Result<()> {
    for piece in [1, 3, 7] {
        let server = MockServer::start(vec![
            Reply::sse(&fixture("stream_tool_use.sse"), piece)
                .with_header("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy"),
        ])
        .await;
        let m = model(&server);
        let messages = [Message::user("weather in Paris and Oslo?")];
        let (events, response) = stream_all(&m, &ModelRequest::new(&messages)).await?;
        // The calls are content blocks 1 and 2, but tool calls 0 and 1.
        let starts: Vec<(usize, &str)> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallStart { index, id, .. } => Some((*index, id.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(starts, [(0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6"), (1, "toolu_01PmXSM9FzZT6ai8SE8Jpj3w")]);
        assert_eq!(response.text, "Checking both cities — one moment.", "pieces of {piece}");
        assert_eq!(
            response.tool_calls,
            [
                ToolCall::new("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", r#"{"city": "Paris"}"#),
                ToolCall::new("toolu_01PmXSM9FzZT6ai8SE8Jpj3w", "get_weather", r#"{"city": "Oslo"}"#),
            ]
        );
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!((response.usage.input_tokens, response.usage.output_tokens), (472, 89));
        assert_eq!(response.request_id.as_deref(), Some("req_011CSHoEeqs5C35K2UUqR7Fy"));
    }
    Ok(())
}

#[tokio::test]
async fn a_streamed_tool_call_runs_through_the_agent() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::sse(&fixture("stream_tool_use.sse"), 5),
        Reply::sse(&fixture("stream_text.sse"), 5),
    ])
    .await;
    let agent = Agent::new("Weather.").model(model(&server)).tool(GetWeatherTool);
    let result = agent.run("Paris and Oslo?").stream().finish().await?;
    assert_eq!(result.tool_calls, 2);
    assert_eq!(result.output, "Héllo wörld 🌍");
    let second = server.requests()[1].json();
    assert_eq!(
        second["messages"][2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "content": "sunny in Paris"},
            {"type": "tool_result", "tool_use_id": "toolu_01PmXSM9FzZT6ai8SE8Jpj3w", "content": "sunny in Oslo"}
        ]})
    );
    Ok(())
}

#[tokio::test]
async fn thinking_streams_and_returns_as_reasoning() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::sse(&fixture("stream_thinking.sse"), 3),
        Reply::json(200, &fixture("message_thinking.json")),
    ])
    .await;
    let m = model(&server);
    let messages = [Message::user("17 * 23?")];
    let (events, streamed) = stream_all(&m, &ModelRequest::new(&messages)).await?;
    assert!(events.iter().any(|e| matches!(e, StreamEvent::ReasoningDelta(_))));
    assert_eq!(streamed.reasoning.as_deref(), Some("17 × 20 = 340, 17 × 3 = 51, so 391."));
    assert_eq!(streamed.text, "17 × 23 = 391.");

    let whole = m.complete(&ModelRequest::new(&messages)).await?;
    assert_eq!(whole.reasoning.as_deref(), Some("The user wants 17 * 23. 17 * 20 = 340 and 17 * 3 = 51, so 391."));
    assert_eq!(whole.text, "17 × 23 = 391.");
    Ok(())
}

#[tokio::test]
async fn every_error_status_maps_to_a_typed_error() {
    let cases = [
        (400, "error_400_invalid.json", ModelErrorKind::BadRequest, false),
        (400, "error_400_prompt_too_long.json", ModelErrorKind::ContextLengthExceeded, false),
        (401, "error_401.json", ModelErrorKind::Authentication, false),
        (403, "error_403.json", ModelErrorKind::PermissionDenied, false),
        (404, "error_404.json", ModelErrorKind::NotFound, false),
        (413, "error_413.json", ModelErrorKind::ContextLengthExceeded, false),
        (429, "error_429.json", ModelErrorKind::RateLimited, true),
        (500, "error_500.json", ModelErrorKind::Overloaded, true),
        (529, "error_529.json", ModelErrorKind::Overloaded, true),
    ];
    for (status, file, kind, transient) in cases {
        let body = fixture(file);
        let mut reply = Reply::json(status, &body).with_header("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy");
        if status == 429 {
            reply = reply.with_header("retry-after", "12");
        }
        let e = ANTHROPIC.error_of(reply).await;
        assert_eq!((e.kind(), e.is_transient(), e.status()), (kind, transient, Some(status)), "{file}");
        assert_eq!(e.provider(), "anthropic");
        let expected: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(Some(e.message()), expected["error"]["message"].as_str(), "{file}");
        assert_eq!(e.request_id(), Some("req_011CSHoEeqs5C35K2UUqR7Fy"), "{file}");
        let retry_after = if status == 429 { Some(Duration::from_secs(12)) } else { None };
        assert_eq!(e.retry_after(), retry_after, "{file}");
    }
}

#[tokio::test]
async fn an_error_status_on_a_streamed_request_is_typed_too() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(529, &fixture("error_529.json"))]).await;
    let m = model(&server);
    let messages = [Message::user("hi")];
    let err = stream_all(&m, &ModelRequest::new(&messages)).await.err();
    assert!(err.as_ref().is_some_and(|e| e.kind() == ModelErrorKind::Overloaded && e.status() == Some(529)), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn an_overloaded_error_event_mid_stream_is_transient() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::sse(&fixture("stream_overloaded.sse"), 7)]).await;
    let m = model(&server);
    let messages = [Message::user("hi")];
    let events: Vec<_> = m.stream(&ModelRequest::new(&messages)).collect().await;
    // The text before the error still arrives, then the error ends the stream.
    assert!(matches!(events.first(), Some(Ok(StreamEvent::TextDelta(t))) if t == "Héllo"), "{events:?}");
    match events.last() {
        Some(Err(e)) => {
            assert_eq!((e.kind(), e.is_transient(), e.message()), (ModelErrorKind::Overloaded, true, "Overloaded"));
        }
        other => anyhow::bail!("expected an error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn an_error_event_before_any_output_is_retried() -> anyhow::Result<()> {
    let overloaded = "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    let server = MockServer::start(vec![Reply::sse(overloaded, 16), Reply::sse(&fixture("stream_text.sse"), 16)]).await;
    let agent = Agent::new("x").model(model(&server)).retry(fast_retries());
    let result = agent.run("hi").stream().finish().await?;
    assert_eq!(result.output, "Héllo wörld 🌍");
    assert_eq!(server.requests().len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_stream_that_ends_before_message_stop_is_cut_off() {
    let body = fixture("stream_text.sse");
    let end = body.find("event: message_stop").unwrap_or(body.len());
    let server = MockServer::start(vec![Reply::sse(&body[..end], 9)]).await;
    let m = model(&server);
    let messages = [Message::user("hi")];
    let err = stream_all(&m, &ModelRequest::new(&messages)).await.err();
    assert!(err.is_some_and(|e| e.kind() == ModelErrorKind::Stream && e.is_transient()));
}

#[tokio::test]
async fn effort_becomes_a_thinking_budget_on_models_that_think() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("message_thinking.json")),
        Reply::json(200, &fixture("message_text.json")),
        Reply::json(200, &fixture("message_text.json")),
    ])
    .await;
    let messages = [Message::user("17 * 23?")];
    let mut settings = ModelSettings::default();
    settings.effort = Some(Effort::High);
    let request = ModelRequest::new(&messages).with_settings(&settings);

    model_named(&server, "claude-sonnet-4-5").complete(&request).await?;
    let body = server.requests()[0].json();
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 16384}));
    // The default 8192 is below the budget: max_tokens grows to leave room for the answer.
    assert_eq!(body["max_tokens"], 16384 + 4096);

    settings.effort = Some(Effort::Minimal);
    let request = ModelRequest::new(&messages).with_settings(&settings);
    model_named(&server, "claude-opus-4-1").complete(&request).await?;
    let body = server.requests()[1].json();
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 1024}));
    assert_eq!(body["max_tokens"], 8192);

    model_named(&server, "claude-3-5-haiku").complete(&request).await?;
    let body = server.requests()[2].json();
    assert!(body.get("thinking").is_none(), "{body}");
    assert_eq!(body["max_tokens"], 8192);
    Ok(())
}

#[tokio::test]
async fn sampling_settings_and_attachments_on_the_wire() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(200, &fixture("message_text.json"))]).await;
    let m = model(&server);
    let messages = [Message::user(vec![
        Part::text("What is in this picture?"),
        Part::image_base64("image/png", "iVBORw0KGgoAAAANSUhEUg=="),
        Part::image_url("https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"),
    ])];
    let mut settings = ModelSettings::default();
    settings.top_p = Some(0.9);
    settings.stop = vec!["END".into()];
    settings.max_tokens = Some(1024);
    m.complete(&ModelRequest::new(&messages).with_settings(&settings)).await?;
    let body = server.requests()[0].json();
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgoAAAANSUhEUg=="}},
                {"type": "image", "source": {"type": "url",
                    "url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"}}
            ]}]
        })
    );
    Ok(())
}

#[test]
fn a_missing_key_names_the_variable() {
    // Only meaningful where neither variable is set (as on CI); the variables cannot be
    // cleared from a test without `unsafe`.
    let set = |v: &str| std::env::var(v).is_ok_and(|v| !v.trim().is_empty());
    if set("ANTHROPIC_API_KEY") || set("ANTHROPIC_BASE_URL") {
        return;
    }
    let err = AnthropicModel::from_env("claude-sonnet-4-5").err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "no API key for anthropic: set the ANTHROPIC_API_KEY environment variable (or pass the key in the model's config)"
        )
    );
    let err = loomflow::model::resolve_model("claude-sonnet-4-5").err().map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.contains("ANTHROPIC_API_KEY")), "{err:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_then_succeeds() -> anyhow::Result<()> {
    let limited = Reply::json(429, &fixture("error_429.json")).with_header("retry-after", "0.04");
    ANTHROPIC.a_rate_limit_is_waited_out_then_retried(limited).await
}

#[tokio::test]
async fn a_500_then_success_and_permanent_errors_are_not_retried() -> anyhow::Result<()> {
    ANTHROPIC.a_500_is_retried_and_a_permanent_error_is_not(Reply::json(401, &fixture("error_401.json"))).await
}

#[tokio::test]
async fn a_connection_dropped_mid_stream_is_a_transient_error_and_not_silently_restarted() -> anyhow::Result<()> {
    ANTHROPIC.a_dropped_stream_is_transient_and_not_restarted().await
}

#[tokio::test]
async fn malformed_stream_data_is_a_transient_stream_error() {
    let body = "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"usage\": tru\n\n";
    ANTHROPIC.malformed_stream_data_is_a_transient_error(body).await;
}

#[tokio::test]
async fn a_slow_server_hits_the_timeout() {
    ANTHROPIC.a_slow_server_hits_the_timeout().await;
}
