//! The Gemini adapter against a local server that answers as the Gemini API reference documents.

mod common;

use std::time::Duration;

use common::http::{MockServer, Reply};
use common::provider::{Provider, stream_all};
use futures::StreamExt as _;
use loomflow::model::providers::GeminiModel;
use loomflow::model::{
    Effort, FinishReason, ModelErrorKind, ModelRequest, ModelResponse, ResponseAccumulator, StreamEvent,
};
use loomflow::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

const GENERATE: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";

const GEMINI: Provider<GeminiModel> = Provider {
    fixtures: "gemini",
    root: "/v1beta",
    key: "AIza-test",
    make: |config| GeminiModel::new("gemini-2.5-flash", config).unwrap_or_else(|e| panic!("{e}")),
    text_reply: "generate_text.json",
    text: "Hello! How can I help you today?",
};

fn fixture(name: &str) -> String {
    GEMINI.fixture(name)
}

fn named(server: &MockServer, name: &str) -> GeminiModel {
    GeminiModel::new(name, GEMINI.config(server)).unwrap_or_else(|e| panic!("{e}"))
}

fn model(server: &MockServer) -> GeminiModel {
    GEMINI.model(server)
}

/// Get the weather for a city.
#[tool(read_only)]
fn get_weather(
    /// The city.
    city: String,
) -> String {
    format!("sunny in {city}")
}

/// Get the forecast for a city.
#[tool(read_only)]
fn get_forecast(
    /// The city.
    city: String,
) -> Result<String, ToolError> {
    Err(ToolError::new(format!("no forecast for {city}")))
}

/// The contents of the `index`th request the server received.
fn contents(server: &MockServer, index: usize) -> Vec<serde_json::Value> {
    server.requests()[index].json()["contents"].as_array().cloned().unwrap_or_default()
}

/// Runs `request` on `m` as a stream, assembled.
async fn streamed(m: &GeminiModel, request: &ModelRequest<'_>) -> Result<ModelResponse, ModelError> {
    stream_all(m, request).await.map(|(_, response)| response)
}

#[tokio::test]
async fn a_plain_reply_and_the_exact_request() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(200, &fixture("generate_text.json"))]).await;
    let agent = Agent::new("Be helpful.").model(model(&server)).tool(GetWeatherTool).temperature(0.2).max_tokens(300);
    let result = agent.run("Hello!").await?;
    assert_eq!(result.output, "Hello! How can I help you today?");
    assert_eq!((result.usage.input_tokens, result.usage.output_tokens), (12, 9 + 24));
    assert_eq!(result.usage.reasoning_tokens, 24);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", GENERATE));
    assert_eq!(r.header("x-goog-api-key"), Some("AIza-test"));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hello!"}]}],
            "systemInstruction": {"parts": [{"text": "Be helpful."}]},
            "tools": [{"functionDeclarations": [{
                "name": "get_weather",
                "description": "Get the weather for a city.",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "description": "The city."}},
                    "required": ["city"],
                    "additionalProperties": false
                }
            }]}],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 300}
        })
    );
    Ok(())
}

#[tokio::test]
async fn the_response_id_model_version_and_thoughts_are_reported() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(200, &fixture("generate_thoughts.json"))]).await;
    let m = model(&server);
    let messages = [Message::user("2 + 2?")];
    let response = m.complete(&ModelRequest::new(&messages)).await?;
    assert_eq!(response.text, "4");
    assert_eq!(response.reasoning.as_deref(), Some("**Adding the numbers**\n\nTwo plus two is four."));
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.model.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(response.request_id.as_deref(), Some("jXbAaM2cJ7aWz7IPp_vL4QU"));
    assert_eq!((response.usage.output_tokens, response.usage.reasoning_tokens), (1 + 54, 54));
    // No tools, no settings: no tool or generation config on the wire.
    assert_eq!(server.requests()[0].json(), json!({"contents": [{"role": "user", "parts": [{"text": "2 + 2?"}]}]}));
    Ok(())
}

#[tokio::test]
async fn a_tool_call_runs_and_its_result_goes_back_with_the_thought_signature() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("generate_tool_call.json")),
        Reply::json(200, &fixture("generate_text.json")),
    ])
    .await;
    let agent = Agent::new("Weather.").model(model(&server)).tool(GetWeatherTool);
    let result = agent.run("Paris?").await?;
    assert_eq!((result.tool_calls, result.turns), (1, 2));
    assert_eq!(result.output, "Hello! How can I help you today?");
    // Gemini sent no id: Loom numbers the call itself.
    assert_eq!(result.messages[2].tool_calls()[0].id, "call_1");

    let second = contents(&server, 1);
    assert_eq!(
        second,
        vec![
            json!({"role": "user", "parts": [{"text": "Paris?"}]}),
            // The made-up id stays off the wire; the signature goes back with its call.
            json!({"role": "model", "parts": [{
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "CiQB0e2Kb6G4nq0tK8pQ0aV2mH7dZlR1yXo3wS9fB6cE2uJ4aTYKYwHR7Ypm"
            }]}),
            json!({"role": "user", "parts": [{
                "functionResponse": {"name": "get_weather", "response": {"result": "sunny in Paris"}}
            }]}),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn parallel_tool_calls_answer_in_one_turn_with_their_ids_and_errors() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("generate_parallel_calls.json")),
        Reply::json(200, &fixture("generate_text.json")),
    ])
    .await;
    let agent = Agent::new("Weather.").model(model(&server)).tool(GetWeatherTool).tool(GetForecastTool);
    let result = agent.run("Paris and Oslo?").await?;
    assert_eq!(result.tool_calls, 2);
    let ids: Vec<&str> = result.messages[2].tool_calls().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["9m2k1xq7", "p4v8s0ta"]);

    let second = contents(&server, 1);
    assert_eq!(second.len(), 3);
    assert_eq!(
        second[1],
        json!({"role": "model", "parts": [
            {
                "functionCall": {"id": "9m2k1xq7", "name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "EqQDCqEDAdHtim9PqkYa3Zr1hn5Cq1eX0vT8mL2bK6sJ4dW"
            },
            {"functionCall": {"id": "p4v8s0ta", "name": "get_forecast", "args": {"city": "Oslo"}}}
        ]})
    );
    // Both results in one user turn, in call order; the failed one as an error.
    assert_eq!(
        second[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "id": "9m2k1xq7", "response": {"result": "sunny in Paris"}}},
            {"functionResponse": {"name": "get_forecast", "id": "p4v8s0ta", "response": {"error": "no forecast for Oslo"}}}
        ]})
    );
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
        assert_eq!((result.usage.input_tokens, result.usage.output_tokens), (7, 4 + 18));
        let r = &server.requests()[0];
        assert_eq!(r.path, STREAM);
        assert_eq!(r.header("x-goog-api-key"), Some("AIza-test"));
        assert_eq!(
            r.json(),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "systemInstruction": {"parts": [{"text": "x"}]}})
        );
    }
    Ok(())
}

#[tokio::test]
async fn streamed_thoughts_are_reasoning_and_the_response_id_is_the_request_id() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::sse(&fixture("stream_text.sse"), 5)]).await;
    let m = model(&server);
    let messages = [Message::user("hi")];
    let request = ModelRequest::new(&messages);
    let mut events = Vec::new();
    let mut stream = m.stream(&request);
    while let Some(e) = stream.next().await {
        events.push(e?);
    }
    assert_eq!(events[0], StreamEvent::RequestId("Z4HAaN2mNcqJz7IP6pKVmQs".into()));
    assert_eq!(events[1], StreamEvent::ReasoningDelta("Greeting the user.".into()));
    assert_eq!(events.last(), Some(&StreamEvent::Finish(FinishReason::Stop)));
    let mut acc = ResponseAccumulator::new();
    events.iter().for_each(|e| acc.push(e));
    let response = acc.finish("gemini")?;
    assert_eq!(response.reasoning.as_deref(), Some("Greeting the user."));
    assert_eq!(response.request_id.as_deref(), Some("Z4HAaN2mNcqJz7IP6pKVmQs"));
    Ok(())
}

#[tokio::test]
async fn streamed_function_calls_split_anywhere_assemble_in_order() -> anyhow::Result<()> {
    for piece in [1, 3, 7] {
        let server = MockServer::start(vec![Reply::sse(&fixture("stream_tool_calls.sse"), piece)]).await;
        let m = model(&server);
        let messages = [Message::user("weather?")];
        let response = streamed(&m, &ModelRequest::new(&messages)).await?;
        assert_eq!(response.text, "Let me check both cities. ", "pieces of {piece}");
        assert_eq!(response.tool_calls.len(), 2);
        assert_eq!(
            (response.tool_calls[0].id.as_str(), response.tool_calls[0].name.as_str()),
            ("call_1", "get_weather")
        );
        assert_eq!(response.tool_calls[0].arguments, r#"{"city":"Paris"}"#);
        assert_eq!(response.tool_calls[1].id, "call_2");
        assert_eq!(response.tool_calls[1].arguments, r#"{"city":"Oslo"}"#);
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!((response.usage.input_tokens, response.usage.output_tokens), (80, 30 + 40));
        assert_eq!(server.requests()[0].path, STREAM);
    }
    Ok(())
}

#[tokio::test]
async fn a_streamed_tool_run_sends_the_signature_back() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::sse(&fixture("stream_tool_calls.sse"), 9),
        Reply::sse(&fixture("stream_text.sse"), 9),
    ])
    .await;
    let agent = Agent::new("Weather.").model(model(&server)).tool(GetWeatherTool);
    let result = agent.run("Paris and Oslo?").stream().finish().await?;
    assert_eq!(result.output, "Héllo wörld 🌍");
    let second = contents(&server, 1);
    assert_eq!(
        second[1],
        json!({"role": "model", "parts": [
            {"text": "Let me check both cities. "},
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "CiQB0e2Kb9kT3mJ8qW5vR1xZ7pL0nC4hY6sD2fG8aK1uE3iO9bNQ"
            },
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}
        ]})
    );
    assert_eq!(
        second[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": "sunny in Paris"}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": "sunny in Oslo"}}}
        ]})
    );
    Ok(())
}

#[tokio::test]
async fn usage_counts_cached_and_thought_tokens_and_the_cost() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(200, &fixture("generate_cached.json"))]).await;
    let agent = Agent::new("Answer from the contract.").model(model(&server));
    let result = agent.run("When does it renew?").await?;
    assert_eq!(result.output, "The contract renews on 1 March; either party may cancel with 30 days' notice.");
    let u = result.usage;
    assert_eq!((u.input_tokens, u.cached_input_tokens, u.cache_write_tokens), (4120 - 4096, 4096, 0));
    assert_eq!((u.output_tokens, u.reasoning_tokens), (35 + 120, 120));
    assert_eq!(u.total_tokens(), 4275);
    // gemini-2.5-flash: $0.30 per million input, $0.075 cached, $2.50 output (thoughts included).
    let cost = result.cost_usd.unwrap_or_default();
    let expected = (24.0 * 0.30 + 4096.0 * 0.075 + 155.0 * 2.50) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} != {expected}");
    Ok(())
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct CityTemp {
    city: String,
    temp_c: f64,
}

#[tokio::test]
async fn a_typed_output_uses_the_response_json_schema() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(200, &fixture("generate_structured.json"))]).await;
    let agent = Agent::new("Extract the weather.").model(model(&server)).output::<CityTemp>();
    let result = agent.run("Paris is at 21.5 degrees").await?;
    assert_eq!(result.output, CityTemp { city: "Paris".into(), temp_c: 21.5 });
    let body = server.requests()[0].json();
    let config = &body["generationConfig"];
    assert_eq!(config["responseMimeType"], "application/json");
    let schema = &config["responseJsonSchema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["city", "temp_c"]));
    assert_eq!(schema["properties"]["temp_c"]["type"], "number");
    // The schema constrains the reply: the instructions stay as they were.
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "Extract the weather."}]}));
    assert!(body.get("tools").is_none());
    Ok(())
}

#[tokio::test]
async fn every_error_status_maps_to_a_typed_error() {
    let cases = [
        (400, "error_400_invalid.json", ModelErrorKind::BadRequest, false),
        (400, "error_400_token_limit.json", ModelErrorKind::ContextLengthExceeded, false),
        (400, "error_400_api_key.json", ModelErrorKind::Authentication, false),
        (400, "error_400_billing.json", ModelErrorKind::QuotaExceeded, false),
        (403, "error_403.json", ModelErrorKind::PermissionDenied, false),
        (403, "error_403_no_key.json", ModelErrorKind::Authentication, false),
        (404, "error_404.json", ModelErrorKind::NotFound, false),
        (429, "error_429.json", ModelErrorKind::RateLimited, true),
        (500, "error_500.json", ModelErrorKind::Overloaded, true),
        (503, "error_503.json", ModelErrorKind::Overloaded, true),
    ];
    for (status, file, kind, transient) in cases {
        let body = fixture(file);
        let e = GEMINI.error_of(Reply::json(status, &body)).await;
        assert_eq!((e.kind(), e.is_transient(), e.status()), (kind, transient, Some(status)), "{file}");
        assert_eq!(e.provider(), "gemini");
        let expected: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(Some(e.message()), expected["error"]["message"].as_str(), "{file}");
    }
}

#[tokio::test]
async fn a_429_says_how_long_to_wait_and_an_error_array_is_read() {
    let e = GEMINI.error_of(Reply::json(429, &fixture("error_429.json")).with_header("retry-after", "43")).await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(43)));
    assert!(e.message().starts_with("You exceeded your current quota"), "{e}");

    // The streaming endpoint can answer with the error object inside an array.
    let array = format!("[{}]", fixture("error_400_token_limit.json"));
    let e = GEMINI.error_of(Reply::json(400, &array)).await;
    assert_eq!(e.kind(), ModelErrorKind::ContextLengthExceeded);
    assert_eq!(e.message(), "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).");
}

#[tokio::test]
async fn a_blocked_prompt_is_content_filtered() {
    let e = GEMINI.error_of(Reply::json(200, &fixture("blocked_prompt.json"))).await;
    assert_eq!((e.kind(), e.is_transient()), (ModelErrorKind::ContentFiltered, false));
    assert!(e.message().contains("PROHIBITED_CONTENT"), "{e}");

    let server = MockServer::start(vec![Reply::sse(&fixture("stream_blocked.sse"), 16)]).await;
    let m = model(&server);
    let messages = [Message::user("hi")];
    let err = streamed(&m, &ModelRequest::new(&messages)).await.err();
    assert!(err.is_some_and(|e| e.kind() == ModelErrorKind::ContentFiltered && e.message().contains("SAFETY")));
}

#[tokio::test]
async fn a_429_is_retried_then_succeeds() -> anyhow::Result<()> {
    let limited = Reply::json(429, &fixture("error_429.json")).with_header("retry-after-ms", "40");
    GEMINI.a_rate_limit_is_waited_out_then_retried(limited).await
}

#[tokio::test]
async fn a_stream_that_ends_without_a_finish_reason_is_a_transient_stream_error() {
    let server = MockServer::start(vec![Reply::sse(&fixture("stream_no_finish.sse"), 7)]).await;
    let m = model(&server);
    let messages = [Message::user("hi")];
    let request = ModelRequest::new(&messages);
    let events: Vec<_> = m.stream(&request).collect().await;
    assert!(events.iter().any(|e| matches!(e, Ok(StreamEvent::TextDelta(t)) if t == "Héllo")));
    let err = events.into_iter().find_map(Result::err);
    assert!(err.as_ref().is_some_and(|e| e.kind() == ModelErrorKind::Stream && e.is_transient()), "{err:?}");
}

#[tokio::test]
async fn an_error_inside_the_stream_is_typed() {
    let server = MockServer::start(vec![Reply::sse(&fixture("stream_error.sse"), 11)]).await;
    let m = model(&server);
    let messages = [Message::user("hi")];
    let err = streamed(&m, &ModelRequest::new(&messages)).await.err();
    assert!(
        err.as_ref().is_some_and(|e| e.kind() == ModelErrorKind::Overloaded
            && e.is_transient()
            && e.message() == "The model is overloaded. Please try again later."),
        "{err:?}"
    );
}

#[tokio::test]
async fn effort_becomes_a_thinking_budget_on_gemini_2_5_only() -> anyhow::Result<()> {
    for (effort, budget) in [(Effort::Minimal, 512), (Effort::Low, 1024), (Effort::Medium, 8192), (Effort::High, 24576)]
    {
        let server = MockServer::start(vec![Reply::json(200, &fixture("generate_text.json"))]).await;
        let agent = Agent::new("x").model(model(&server)).effort(effort);
        agent.run("hi").await?;
        let body = server.requests()[0].json();
        assert_eq!(body["generationConfig"], json!({"thinkingConfig": {"thinkingBudget": budget}}), "{effort}");
    }
    // gemini-2.0-flash does not think: the setting is dropped, and nothing else is sent.
    let server = MockServer::start(vec![Reply::json(200, &fixture("generate_text.json"))]).await;
    let agent = Agent::new("x").model(named(&server, "gemini-2.0-flash")).effort(Effort::High);
    agent.run("hi").await?;
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert!(r.json().get("generationConfig").is_none());
    Ok(())
}

#[test]
fn without_a_key_the_error_names_the_variable() {
    // Only meaningful where no Gemini variable is set (the CI machine has none).
    if ["GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL"].iter().any(|v| std::env::var_os(v).is_some()) {
        return;
    }
    let err = GeminiModel::from_env("gemini-2.5-flash").err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "no API key for gemini: set the GEMINI_API_KEY environment variable (or pass the key in the model's config)"
        )
    );
    let err = loomflow::model::resolve_model("gemini-2.5-flash").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("GEMINI_API_KEY"), "{err}");
}

#[tokio::test]
async fn a_500_then_success_and_permanent_errors_are_not_retried() -> anyhow::Result<()> {
    GEMINI.a_500_is_retried_and_a_permanent_error_is_not(Reply::json(400, &fixture("error_400_api_key.json"))).await
}

#[tokio::test]
async fn a_connection_dropped_mid_stream_is_a_transient_error_and_not_silently_restarted() -> anyhow::Result<()> {
    GEMINI.a_dropped_stream_is_transient_and_not_restarted().await
}

#[tokio::test]
async fn malformed_stream_data_is_a_transient_stream_error() {
    GEMINI.malformed_stream_data_is_a_transient_error("data: {\"candidates\": [tru\r\n\r\n").await;
}

#[tokio::test]
async fn a_slow_server_hits_the_timeout() {
    GEMINI.a_slow_server_hits_the_timeout().await;
}
