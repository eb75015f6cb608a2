//! Replies shaped like those of the servers that speak the providers' formats without being
//! them — vLLM, LiteLLM, Ollama, proxies — with their `null`s, extra fields and odd shapes.

mod common;

use common::http::{MockServer, Reply};
use common::provider::stream_all;
use loomflow::model::providers::{AnthropicModel, ApiKey, GeminiModel, HttpConfig, OpenAiModel};
use loomflow::model::{FinishReason, ModelErrorKind, ModelRequest};
use loomflow::prelude::*;
use serde_json::json;

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/compatible/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn config(server: &MockServer, root: &str) -> HttpConfig {
    let mut config = HttpConfig::new(format!("{}{root}", server.url));
    config.api_key = Some(ApiKey::new("key"));
    config
}

fn openai(server: &MockServer, model: &str) -> OpenAiModel {
    OpenAiModel::new(model, config(server, "/v1")).unwrap_or_else(|e| panic!("{e}"))
}

/// Get the weather for a city.
#[tool(read_only)]
fn get_weather(
    /// The city.
    city: String,
) -> String {
    format!("sunny in {city}")
}

async fn complete(m: &dyn Model) -> Result<loomflow::model::ModelResponse, ModelError> {
    let messages = [Message::user("weather in Paris?")];
    m.complete(&ModelRequest::new(&messages)).await
}

#[tokio::test]
async fn a_vllm_tool_call_with_null_content_and_extra_fields() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(200, &fixture("vllm_tool_calls.json"))]).await;
    let r = complete(&openai(&server, "meta-llama/Llama-3.1-8B-Instruct")).await?;
    assert_eq!(r.text.as_str(), "");
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(r.tool_calls[0].id, "chatcmpl-tool-4c8d2f0a9b1e4e7c");
    assert_eq!(r.tool_calls[0].arguments, r#"{"city": "Paris"}"#);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (210, 20));
    assert_eq!(r.model.as_deref(), Some("meta-llama/Llama-3.1-8B-Instruct"));
    Ok(())
}

#[tokio::test]
async fn a_litellm_reply_with_null_tool_calls_usage_details_and_fingerprint() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(200, &fixture("litellm_text.json"))]).await;
    let r = complete(&openai(&server, "gpt-4o-mini")).await?;
    assert_eq!(r.text.as_str(), "It is sunny in Paris.");
    assert!(r.tool_calls.is_empty());
    assert_eq!((r.usage.input_tokens, r.usage.cached_input_tokens, r.usage.output_tokens), (31, 0, 7));
    Ok(())
}

#[tokio::test]
async fn an_ollama_tool_call_runs_through_an_agent() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("ollama_tool_calls.json")),
        Reply::json(200, &fixture("litellm_text.json")),
    ])
    .await;
    let agent = Agent::new("Weather.").model(openai(&server, "llama3.2")).tool(GetWeatherTool);
    let result = agent.run("Paris?").await?;
    assert_eq!(result.output, "It is sunny in Paris.");
    assert_eq!(result.tool_calls, 1);
    let second = server.requests()[1].json();
    assert_eq!(
        second["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_x7k2m9qp", "content": "sunny in Paris"})
    );
    Ok(())
}

#[tokio::test]
async fn a_proxy_that_sends_null_for_everything_and_content_as_parts() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(200, &fixture("proxy_nulls_everywhere.json"))]).await;
    let r = complete(&openai(&server, "m")).await?;
    assert_eq!(r.text.as_str(), "Paris: sunny.");
    assert_eq!(r.usage, Usage::default());
    assert_eq!(r.finish_reason, FinishReason::Stop);
    Ok(())
}

#[tokio::test]
async fn calls_without_ids_and_arguments_as_objects_are_read() -> anyhow::Result<()> {
    let body = json!({"choices": [{"message": {"content": null, "tool_calls": [
        {"id": null, "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        {"function": {"name": "get_weather", "arguments": null}}
    ]}, "finish_reason": "tool_calls"}]});
    let server = MockServer::start(vec![Reply::json(200, &body.to_string())]).await;
    let r = complete(&openai(&server, "m")).await?;
    assert_eq!(r.tool_calls[0].id, "call_1");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.tool_calls[0].arguments)?, json!({"city": "Oslo"}));
    assert_eq!((r.tool_calls[1].id.as_str(), r.tool_calls[1].arguments.as_str()), ("call_2", ""));
    Ok(())
}

#[tokio::test]
async fn streams_from_vllm_and_litellm_assemble() -> anyhow::Result<()> {
    let messages = [Message::user("weather?")];
    let request = ModelRequest::new(&messages);
    for piece in [3, 17, 4096] {
        let server = MockServer::start(vec![Reply::sse(&fixture("vllm_stream_tool_calls.sse"), piece)]).await;
        let (_, r) = stream_all(&openai(&server, "m"), &request).await?;
        assert_eq!(r.tool_calls.len(), 1, "pieces of {piece}");
        assert_eq!(r.tool_calls[0].id, "chatcmpl-tool-1");
        assert_eq!(r.tool_calls[0].arguments, r#"{"city": "Paris"}"#);
        assert_eq!(r.usage.output_tokens, 20);

        let server = MockServer::start(vec![Reply::sse(&fixture("litellm_stream_text.sse"), piece)]).await;
        let (_, r) = stream_all(&openai(&server, "m"), &request).await?;
        assert_eq!(r.text.as_str(), "It is sunny.");
        assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (31, 3));
    }
    Ok(())
}

#[tokio::test]
async fn a_mid_stream_bad_request_is_permanent_and_not_retried() -> anyhow::Result<()> {
    let body = fixture("stream_error_invalid_request.sse");
    let server = MockServer::start(vec![Reply::sse(&body, 16), Reply::sse(&body, 16)]).await;
    let agent = Agent::new("x").model(openai(&server, "m")).retry(common::provider::fast_retries());
    match agent.run("hi").stream().finish().await {
        Err(Error::Model(e)) => {
            assert_eq!(e.kind(), ModelErrorKind::BadRequest, "{e}");
            assert!(!e.is_transient());
            assert!(e.message().contains("maximum context length"), "{e}");
        }
        other => anyhow::bail!("expected a model error, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "a permanent error is not retried");
    Ok(())
}

#[tokio::test]
async fn anthropic_replies_with_nulls() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("anthropic_nulls.json")),
        Reply::sse(&fixture("anthropic_stream_nulls.sse"), 9),
    ])
    .await;
    let m = AnthropicModel::new("claude-sonnet-4-5", config(&server, "/v1"))?;
    let r = complete(&m).await?;
    assert_eq!(r.text.as_str(), "Let me check.");
    assert_eq!(r.tool_calls[0].name, "get_weather");
    assert_eq!((r.usage.input_tokens, r.usage.cached_input_tokens, r.usage.output_tokens), (420, 0, 55));
    let messages = [Message::user("hi")];
    let (_, r) = stream_all(&m, &ModelRequest::new(&messages)).await?;
    assert_eq!(r.text.as_str(), "Sunny in Paris.");
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (25, 9));
    Ok(())
}

#[tokio::test]
async fn gemini_replies_with_nulls_and_without_parts() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, &fixture("gemini_nulls.json")),
        Reply::json(200, &fixture("gemini_no_parts.json")),
    ])
    .await;
    let m = GeminiModel::new("gemini-2.5-flash", config(&server, "/v1beta"))?;
    let r = complete(&m).await?;
    assert_eq!(r.text.as_str(), "Sunny in Paris.");
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (12, 5));
    let r = complete(&m).await?;
    assert_eq!(r.text.as_str(), "");
    assert_eq!(r.finish_reason, FinishReason::Length);
    Ok(())
}
