//! What the network controls cannot hurt a run: keys stay secret, redirects are not followed,
//! sizes and waits are bounded, and every failure is typed.

mod common;

use std::time::Duration;

use common::http::{MockServer, Reply};
use common::provider::stream_all;
use loomflow::model::providers::{AnthropicModel, ApiKey, GeminiModel, HttpConfig, OpenAiModel};
use loomflow::model::{ModelErrorKind, ModelRequest, RetryPolicy};
use loomflow::prelude::*;
use serde_json::json;

const KEY: &str = "sk-secret-key-0123456789";
const HEADER_SECRET: &str = "proxy-secret-9876543210";

fn config(base: &str) -> HttpConfig {
    let mut config = HttpConfig::new(base);
    config.api_key = Some(ApiKey::new(KEY));
    config.headers = vec![("x-proxy-authorization".into(), HEADER_SECRET.into())];
    config.read_timeout = Duration::from_secs(5);
    config
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(KEY) && !text.contains(HEADER_SECRET), "a secret leaked: {text}");
}

fn request() -> ([Message; 1], ()) {
    ([Message::user("hi")], ())
}

#[tokio::test]
async fn no_provider_shows_its_key_or_headers() -> anyhow::Result<()> {
    let base = "http://user:password-in-url@127.0.0.1:9/v1?key=query-secret";
    let openai = OpenAiModel::new("gpt-4.1-mini", config(base))?;
    let anthropic = AnthropicModel::new("claude-sonnet-4-5", config(base))?;
    let gemini = GeminiModel::new("gemini-2.5-flash", config(base))?;
    for shown in [format!("{openai:?}"), format!("{anthropic:?}"), format!("{gemini:?}"), format!("{:?}", config(base))]
    {
        assert_no_secret(&shown);
        assert!(!shown.contains("password-in-url") && !shown.contains("query-secret"), "{shown}");
    }
    // Nor do their errors: port 9 refuses the connection.
    let (messages, ()) = request();
    for model in [&openai as &dyn Model, &anthropic, &gemini] {
        let e = model.complete(&ModelRequest::new(&messages)).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!e.is_empty());
        assert_no_secret(&e);
        assert!(!e.contains("password-in-url") && !e.contains("query-secret"), "{e}");
    }
    Ok(())
}

#[tokio::test]
async fn events_of_a_failed_run_carry_no_secret() -> anyhow::Result<()> {
    let server = MockServer::start(vec![Reply::json(401, r#"{"error": {"message": "Incorrect API key"}}"#)]).await;
    let recorder = common::Recorder::new();
    let agent = Agent::new("x").model(OpenAiModel::new("gpt-4.1-mini", config(&format!("{}/v1", server.url)))?);
    let err = agent.run("hi").on_event(recorder.listener()).await.err().map(|e| format!("{e} {e:?}"));
    assert_no_secret(&err.unwrap_or_default());
    for event in recorder.events() {
        assert_no_secret(&serde_json::to_string(&event)?);
    }
    // The key went where it belongs, marked for the server only.
    assert_eq!(server.requests()[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    Ok(())
}

#[tokio::test]
async fn redirects_are_not_followed_so_keys_never_travel() -> anyhow::Result<()> {
    for model in ["openai", "anthropic", "gemini"] {
        let elsewhere = MockServer::start(vec![Reply::json(200, "{}")]).await;
        let redirect = Reply::json(307, "").with_header("location", &format!("{}/v1/steal?token=abc", elsewhere.url));
        let server = MockServer::start(vec![redirect]).await;
        let base = format!("{}/v1", server.url);
        let m: Box<dyn Model> = match model {
            "openai" => Box::new(OpenAiModel::new("gpt-4.1-mini", config(&base))?),
            "anthropic" => Box::new(AnthropicModel::new("claude-sonnet-4-5", config(&base))?),
            _ => Box::new(GeminiModel::new("gemini-2.5-flash", config(&base))?),
        };
        let (messages, ()) = request();
        let e = m.complete(&ModelRequest::new(&messages)).await.err();
        let e = e.ok_or_else(|| anyhow::anyhow!("{model}: a redirect was taken as a reply"))?;
        assert!(!e.is_transient(), "{model}: {e}");
        assert_eq!(e.status(), Some(307));
        assert!(e.message().contains("does not follow redirects"), "{e}");
        assert!(!e.message().contains("token=abc"), "{e}");
        assert!(elsewhere.requests().is_empty(), "{model}: the redirect was followed");
    }
    Ok(())
}

#[test]
fn headers_and_urls_that_cannot_be_sent_are_config_errors() {
    let mut bad_value = config("http://localhost:1/v1");
    bad_value.headers = vec![("x-token".into(), "line\nbreak".into())];
    let mut bad_name = config("http://localhost:1/v1");
    bad_name.headers = vec![("not a name".into(), "v".into())];
    let mut bad_key = config("http://localhost:1/v1");
    bad_key.api_key = Some(ApiKey::new("sk-\r\nx"));
    for (config, what) in [(bad_value, "header `x-token`"), (bad_name, "header `not a name`"), (bad_key, "API key")] {
        let e = OpenAiModel::new("m", config).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(what), "{e}");
        assert!(!e.contains("line\nbreak") && !e.contains("sk-"), "{e}");
    }
    for url in ["localhost:8000/v1", "ftp://example.com", "not a url", ""] {
        let e = GeminiModel::new("gemini-2.5-flash", HttpConfig::new(url)).err();
        assert!(matches!(e, Some(ConfigError::InvalidSetting { setting: "base_url", .. })), "{url}: {e:?}");
    }
}

#[tokio::test]
async fn a_body_past_its_limit_is_refused_not_read() -> anyhow::Result<()> {
    let big = format!(r#"{{"choices": [{{"message": {{"content": "{}"}}}}]}}"#, "x".repeat(4096));
    let server = MockServer::start(vec![Reply::json(200, &big), Reply::json(200, &big)]).await;
    let mut c = config(&format!("{}/v1", server.url));
    c.max_body_bytes = 1024;
    let m = OpenAiModel::new("m", c)?;
    let (messages, ()) = request();
    let e = m.complete(&ModelRequest::new(&messages)).await.err();
    assert!(
        e.as_ref().is_some_and(|e| e.kind() == ModelErrorKind::InvalidResponse && e.message().contains("1024 bytes")),
        "{e:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_stream_line_past_its_limit_ends_the_stream() -> anyhow::Result<()> {
    let line = format!("data: {{\"choices\": [{{\"delta\": {{\"content\": \"{}\"}}}}]}}\n\n", "y".repeat(8192));
    let server = MockServer::start(vec![Reply::sse(&line, 100)]).await;
    let mut c = config(&format!("{}/v1", server.url));
    c.max_event_bytes = 2048;
    let m = OpenAiModel::new("m", c)?;
    let (messages, ()) = request();
    let e = stream_all(&m, &ModelRequest::new(&messages)).await.err();
    assert!(e.as_ref().is_some_and(|e| e.kind() == ModelErrorKind::Stream && e.message().contains("2048")), "{e:?}");
    Ok(())
}

#[tokio::test]
async fn a_stream_that_trickles_forever_hits_its_total_deadline() -> anyhow::Result<()> {
    // A byte every 50 ms never trips the between-bytes timeout; the total deadline ends it.
    let pieces = (0..200).map(|_| b": keep-alive\n".to_vec()).collect();
    let trickle = Reply::Chunks {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        pieces,
        delay: Duration::from_millis(50),
        complete: true,
    };
    let server = MockServer::start(vec![trickle]).await;
    let mut c = config(&format!("{}/v1", server.url));
    c.read_timeout = Duration::from_secs(5);
    c.stream_timeout = Duration::from_millis(400);
    let m = OpenAiModel::new("m", c)?;
    let (messages, ()) = request();
    let started = std::time::Instant::now();
    let e = stream_all(&m, &ModelRequest::new(&messages)).await.err();
    assert!(e.as_ref().is_some_and(|e| e.kind() == ModelErrorKind::Timeout && e.is_transient()), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    Ok(())
}

#[tokio::test]
async fn a_wait_past_max_delay_is_reported_with_the_wait() -> anyhow::Result<()> {
    for wait in ["3600", "1e20", "Fri, 31 Dec 9999 23:59:59 GMT"] {
        let limited = Reply::json(429, r#"{"error": {"message": "slow down", "type": "requests"}}"#)
            .with_header("retry-after", wait);
        let server = MockServer::start(vec![limited]).await;
        let m = OpenAiModel::new("m", config(&format!("{}/v1", server.url)))?;
        let policy = RetryPolicy::attempts(3).with_delays(Duration::from_millis(1), Duration::from_secs(30));
        let agent = Agent::new("x").model(m).retry(policy);
        match agent.run("hi").await {
            Err(Error::Model(e)) => {
                assert_eq!(e.kind(), ModelErrorKind::RateLimited, "{e}");
                assert!(e.is_transient());
                assert!(e.retry_after().is_some_and(|d| d > Duration::from_secs(30)), "{wait}: {e:?}");
                assert!(e.message().contains("max_delay"), "{e}");
            }
            other => anyhow::bail!("expected a rate limit error, got {other:?}"),
        }
        assert_eq!(server.requests().len(), 1, "{wait}: not retried");
    }
    Ok(())
}

#[tokio::test]
async fn absurd_stream_indices_and_tool_names_from_the_network() -> anyhow::Result<()> {
    let huge_name = "t".repeat(10 << 20);
    let body = format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        json!({"choices": [{"delta": {"tool_calls": [{"index": usize::MAX, "id": "c1", "function": {"name": huge_name, "arguments": "{}"}}]}}]}),
        json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
    );
    let ok =
        "data: {\"choices\": [{\"delta\": {\"content\": \"ok\"}, \"finish_reason\": \"stop\"}]}\n\ndata: [DONE]\n\n";
    let server = MockServer::start(vec![Reply::sse(&body, 1 << 16), Reply::sse(ok, 64)]).await;
    let agent = Agent::new("x")
        .model(OpenAiModel::new("m", config(&format!("{}/v1", server.url)))?)
        .tool(NopTool)
        .retry(RetryPolicy::disabled());
    let result = agent.run("hi").stream().finish().await?;
    assert_eq!(result.output, "ok");
    let unknown = result.messages.iter().find_map(|m| match m {
        Message::Tool(r) => Some(r.content.text().into_owned()),
        _ => None,
    });
    let unknown = unknown.unwrap_or_default();
    assert!(unknown.starts_with("unknown tool `ttt"), "{}", &unknown[..100.min(unknown.len())]);
    assert!(unknown.len() < 1000, "the 10 MB name is not repeated to the model ({} bytes)", unknown.len());
    Ok(())
}

/// Does nothing.
#[tool]
fn nop() -> String {
    String::new()
}

#[tokio::test]
async fn a_custom_base_url_speaks_the_compatible_dialect_unless_asked() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, r#"{"choices": [{"message": {"content": "a"}}]}"#),
        Reply::json(200, r#"{"choices": [{"message": {"content": "b"}}]}"#),
    ])
    .await;
    let base = format!("{}/v1", server.url);
    let compatible = OpenAiModel::new("gpt-4.1-mini", config(&base))?;
    assert!(!compatible.capabilities().native_structured_output);
    Agent::new("x").model(compatible).max_tokens(10).run("hi").await?;
    let official = OpenAiModel::new("gpt-4.1-mini", config(&base))?.with_openai_dialect(true);
    assert!(official.capabilities().native_structured_output);
    Agent::new("x").model(official).max_tokens(10).run("hi").await?;
    let bodies: Vec<_> = server.requests().iter().map(common::http::Recorded::json).collect();
    assert_eq!((bodies[0].get("max_tokens"), bodies[0].get("max_completion_tokens")), (Some(&json!(10)), None));
    assert_eq!((bodies[1].get("max_tokens"), bodies[1].get("max_completion_tokens")), (None, Some(&json!(10))));
    Ok(())
}

#[tokio::test]
async fn a_compatible_model_id_with_slashes_is_expressible() -> anyhow::Result<()> {
    let server = MockServer::start(vec![
        Reply::json(200, r#"{"choices": [{"message": {"content": "a"}}]}"#),
        Reply::json(200, r#"{"choices": [{"message": {"content": "b"}}]}"#),
    ])
    .await;
    for spec in [
        format!("openai-compatible:{}/v1/meta-llama/Llama-3.1-8B-Instruct", server.url),
        format!("openai-compatible:{}/v1#meta-llama/Llama-3.1-8B-Instruct", server.url),
    ] {
        Agent::new("x").model(spec.as_str()).run("hi").await?;
    }
    for r in server.requests() {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.json()["model"], "meta-llama/Llama-3.1-8B-Instruct");
    }
    Ok(())
}

#[test]
fn a_mistyped_model_string_gets_a_suggestion() {
    let e = Agent::new("x").model("gtp-4.1-mini").check().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.starts_with("unknown model `gtp-4.1-mini` (did you mean `gpt-4.1-mini`?)"), "{e}");
}
