//! The spans as the SDK sees them, through an exporter that keeps them in memory.
//! (`tests/otel.rs` checks the OTLP path, end to end, against a receiver.)

use std::future::IntoFuture as _;
use std::sync::{Arc, Mutex};

use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

use super::Telemetry;
use crate::Agent;

#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut spans = self.0.lock().map_err(|_| OTelSdkError::InternalFailure("poisoned".to_owned()))?;
        spans.extend(batch);
        Ok(())
    }
}

impl Collect {
    fn spans(&self) -> Vec<SpanData> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> Option<String> {
    attribute(span, key).map(Value::as_str).map(|s| s.into_owned())
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    match spans.iter().find(|s| s.name == name) {
        Some(span) => span,
        None => panic!("no span {name:?} in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()),
    }
}

/// Runs an echo agent under telemetry exporting to `exporter`.
async fn run_echo(telemetry: Telemetry) -> Result<(), Box<dyn std::error::Error>> {
    let guard = telemetry.build()?;
    let agent = Agent::new("Answer briefly.").name("helper").model("echo");
    {
        let _scope = guard.set_default();
        agent.run("where is my parcel").user("alice").session("s1").into_future().await?;
    }
    guard.shutdown()?;
    Ok(())
}

fn provider(exporter: &Collect) -> SdkTracerProvider {
    SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build()
}

#[tokio::test]
async fn runs_and_model_calls_are_spans_of_the_genai_conventions() -> Result<(), Box<dyn std::error::Error>> {
    let exporter = Collect::default();
    run_echo(Telemetry::from_providers(provider(&exporter), None)).await?;
    let spans = exporter.spans();
    let run = named(&spans, "invoke_agent helper");
    let chat = named(&spans, "chat echo");
    assert_eq!(chat.parent_span_id, run.span_context.span_id());
    assert_eq!(chat.span_context.trace_id(), run.span_context.trace_id());
    assert_eq!(chat.span_kind, SpanKind::Client);
    assert_eq!(run.span_kind, SpanKind::Internal);

    assert_eq!(text(run, "gen_ai.operation.name").as_deref(), Some("invoke_agent"));
    assert_eq!(text(run, "gen_ai.agent.name").as_deref(), Some("helper"));
    assert_eq!(text(run, "gen_ai.conversation.id").as_deref(), Some("s1"));
    assert_eq!(text(chat, "gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(text(chat, "gen_ai.provider.name").as_deref(), Some("loom"));
    assert_eq!(text(chat, "gen_ai.request.model").as_deref(), Some("echo"));
    // The echo model counts words as tokens: integers, not text.
    assert!(matches!(attribute(chat, "gen_ai.usage.input_tokens"), Some(Value::I64(n)) if *n > 0));
    assert!(matches!(attribute(chat, "gen_ai.usage.output_tokens"), Some(Value::I64(n)) if *n > 0));
    assert!(matches!(attribute(run, "gen_ai.usage.output_tokens"), Some(Value::I64(n)) if *n > 0));
    assert!(attribute(chat, "gen_ai.response.finish_reasons").is_some());
    assert_eq!(chat.status, Status::Unset);

    // No contents by default.
    for span in [run, chat] {
        for key in ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"] {
            assert!(attribute(span, key).is_none(), "{key} on {}", span.name);
        }
    }
    Ok(())
}

#[tokio::test]
async fn contents_are_recorded_only_when_asked_for() -> Result<(), Box<dyn std::error::Error>> {
    let exporter = Collect::default();
    run_echo(Telemetry::from_providers(provider(&exporter), None).capture_content(true)).await?;
    let spans = exporter.spans();
    let chat = named(&spans, "chat echo");
    let input: serde_json::Value = serde_json::from_str(&text(chat, "gen_ai.input.messages").unwrap_or_default())?;
    assert_eq!(
        input,
        serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": "where is my parcel"}]}])
    );
    let system: serde_json::Value =
        serde_json::from_str(&text(chat, "gen_ai.system_instructions").unwrap_or_default())?;
    assert_eq!(system, serde_json::json!([{"type": "text", "content": "Answer briefly."}]));
    let output: serde_json::Value = serde_json::from_str(&text(chat, "gen_ai.output.messages").unwrap_or_default())?;
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(output[0]["finish_reason"], "stop");
    assert_eq!(output[0]["parts"][0]["content"], "Echo: where is my parcel");

    let run = named(&spans, "invoke_agent helper");
    assert!(text(run, "gen_ai.input.messages").is_some_and(|m| m.contains("where is my parcel")));
    assert!(text(run, "gen_ai.output.messages").is_some_and(|m| m.contains("Echo: where is my parcel")));
    Ok(())
}

#[tokio::test]
async fn a_failed_call_has_an_error_type_and_status() -> Result<(), Box<dyn std::error::Error>> {
    let exporter = Collect::default();
    let guard = Telemetry::from_providers(provider(&exporter), None).build()?;
    // A scripted model with no turns left fails permanently.
    let agent = Agent::new("x").name("broken").model(crate::model::ScriptedModel::new([]));
    {
        let _scope = guard.set_default();
        assert!(agent.run("hi").into_future().await.is_err());
    }
    guard.shutdown()?;
    let spans = exporter.spans();
    let chat = named(&spans, "chat scripted");
    assert_eq!(text(chat, "error.type").as_deref(), Some("script"));
    assert!(matches!(chat.status, Status::Error { .. }));
    let run = named(&spans, "invoke_agent broken");
    assert_eq!(text(run, "error.type").as_deref(), Some("script"));
    assert!(matches!(run.status, Status::Error { .. }));
    Ok(())
}
