//! OpenTelemetry export over OTLP/HTTP, end to end: a real OTLP receiver (an in-process HTTP
//! server that decodes the protobuf bodies, as a collector does) gets the spans and metrics of
//! an agent that calls a workflow as a tool, whose node is an agent that calls a sub-agent as
//! a tool — and the test reads the trace back: names, parentage, GenAI attributes, metrics,
//! and whether message contents are in it.

use std::collections::HashMap;
use std::future::IntoFuture as _;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use loomflow::prelude::*;
use loomflow::telemetry::otel::Telemetry;
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric;
use opentelemetry_proto::tonic::trace::v1::{Span, span};
use prost::Message as _;
use serde_json::json;

/// What the receiver got.
#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
}

/// An OTLP/HTTP receiver on 127.0.0.1, on a thread and a runtime of its own (the exporter
/// sends from its own threads while the test's runtime waits for the flush).
struct Receiver {
    endpoint: String,
    received: Arc<Mutex<Received>>,
}

impl Receiver {
    fn start() -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Received::default()));
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .route("/v1/metrics", post(metrics))
            .with_state(Arc::clone(&received));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => axum::serve(listener, app).await.ok(),
                    Err(e) => panic!("the receiver cannot listen: {e}"),
                }
            })
        });
        Ok(Self { endpoint, received })
    }

    /// Every span received.
    fn spans(&self) -> Vec<Span> {
        let received = self.received.lock().map(|r| r.traces.clone()).unwrap_or_default();
        received.into_iter().flat_map(|r| r.resource_spans).flat_map(|r| r.scope_spans).flat_map(|s| s.spans).collect()
    }

    /// The `service.name` of every resource that sent spans.
    fn services(&self) -> Vec<String> {
        let received = self.received.lock().map(|r| r.traces.clone()).unwrap_or_default();
        received
            .iter()
            .flat_map(|r| &r.resource_spans)
            .filter_map(|r| r.resource.as_ref())
            .filter_map(|r| string(&r.attributes, "service.name"))
            .collect()
    }

    /// The data points of the histogram `name`: attributes, count and sum.
    fn histogram(&self, name: &str) -> Vec<(Vec<KeyValue>, u64, f64)> {
        let received = self.received.lock().map(|r| r.metrics.clone()).unwrap_or_default();
        // Cumulative: the last export has every point.
        let Some(last) = received.last() else { return Vec::new() };
        last.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .filter(|m| m.name == name)
            .filter_map(|m| match &m.data {
                Some(metric::Data::Histogram(h)) => Some(&h.data_points),
                _ => None,
            })
            .flatten()
            .map(|p| (p.attributes.clone(), p.count, p.sum.unwrap_or_default()))
            .collect()
    }
}

fn protobuf(body: Vec<u8>) -> impl IntoResponse {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")], body)
}

async fn traces(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> axum::response::Response {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            if let Ok(mut r) = received.lock() {
                r.traces.push(request);
            }
            protobuf(ExportTraceServiceResponse::default().encode_to_vec()).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn metrics(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> axum::response::Response {
    match ExportMetricsServiceRequest::decode(body) {
        Ok(request) => {
            if let Ok(mut r) = received.lock() {
                r.metrics.push(request);
            }
            protobuf(ExportMetricsServiceResponse::default().encode_to_vec()).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    match value(attributes, key) {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match value(attributes, key) {
        Some(any_value::Value::IntValue(n)) => Some(*n),
        _ => None,
    }
}

/// The spans by name; a name must be unique to be looked up.
struct Trace {
    spans: Vec<Span>,
}

impl Trace {
    fn all(&self, name: &str) -> Vec<&Span> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, name: &str) -> anyhow::Result<&Span> {
        match self.all(name).as_slice() {
            [span] => Ok(span),
            found => anyhow::bail!("{} spans named {name:?} in {:?}", found.len(), self.names()),
        }
    }

    fn names(&self) -> Vec<&str> {
        self.spans.iter().map(|s| s.name.as_str()).collect()
    }

    fn parent(&self, span: &Span) -> Option<&Span> {
        self.spans.iter().find(|p| !span.parent_span_id.is_empty() && p.span_id == span.parent_span_id)
    }

    /// `child`'s parent is `parent`.
    fn assert_parent(&self, child: &Span, parent: &Span) {
        assert_eq!(
            self.parent(child).map(|p| p.name.as_str()),
            Some(parent.name.as_str()),
            "the parent of {:?}",
            child.name
        );
        assert_eq!(child.parent_span_id, parent.span_id, "the parent of {:?}", child.name);
    }

    /// The names of `span`'s children, in the order they started.
    fn children(&self, span: &Span) -> Vec<&str> {
        let mut children: Vec<&Span> = self.spans.iter().filter(|c| c.parent_span_id == span.span_id).collect();
        children.sort_by_key(|c| c.start_time_unix_nano);
        children.iter().map(|c| c.name.as_str()).collect()
    }
}

/// What the user asked, and what the agents said: the contents that must stay out of the
/// telemetry unless it captures them.
const QUESTION: &str = "Is the sky over Lisbon blue today?";
const CLAIM: &str = "the Lisbon sky is blue";
const VERDICT: &str = "Confirmed by the almanac.";
const ANSWER: &str = "Yes: blue skies over Lisbon.";

/// The concierge (an agent) calls the `pipeline` workflow as a tool; the workflow's node is
/// the researcher (an agent), which calls the fact checker (an agent) as a tool.
fn concierge() -> anyhow::Result<Agent> {
    let fact_checker = Agent::new("Check the claim against the almanac.").name("fact_checker").model(
        ScriptedModel::new([ScriptedTurn::text(VERDICT).with_usage(Usage::new(7, 2))]).named("claude-haiku-4-5"),
    );
    let researcher = Agent::new("Research the question; check claims before you state them.")
        .name("researcher")
        .model(
            ScriptedModel::new([
                ScriptedTurn::tool_call("check_fact", json!({"input": CLAIM})).with_usage(Usage::new(11, 3)),
                ScriptedTurn::text("The sky is blue (checked).").with_usage(Usage::new(13, 5)),
            ])
            .named("gpt-4.1-mini"),
        )
        .tool(fact_checker.as_tool("check_fact", "Check one claim.")?);
    let mut g = Workflow::builder("pipeline");
    let research = g.node::<String, String>("research", researcher);
    g.start(research);
    let pipeline: Workflow<String, String> = g.build()?;
    Ok(Agent::new("Help the customer; research with the pipeline.")
        .name("concierge")
        .model(
            ScriptedModel::new([
                ScriptedTurn::tool_call("pipeline", json!({"input": QUESTION})).with_usage(Usage::new(17, 4)),
                ScriptedTurn::text(ANSWER).with_usage(Usage::new(19, 6)),
            ])
            .named("gpt-4.1"),
        )
        .tool(pipeline.as_tool("pipeline", "Research a question.")?))
}

/// Runs the concierge under `telemetry`, exporting to a fresh receiver, and returns what the
/// receiver got once the telemetry is shut down.
async fn export(telemetry: impl FnOnce(&str) -> Telemetry) -> anyhow::Result<(Receiver, Trace)> {
    let receiver = Receiver::start()?;
    let guard = telemetry(&receiver.endpoint).service_name("loom-tests").build()?;
    let agent = concierge()?;
    let result = {
        // Scoped to this thread (the test's runtime runs on it): other tests keep theirs.
        let _scope = guard.set_default();
        agent.run(QUESTION).user("alice").session("conv_7").into_future().await?
    };
    assert_eq!(result.output, ANSWER);
    // Waits until the exporter has sent everything.
    guard.shutdown()?;
    let trace = Trace { spans: receiver.spans() };
    Ok((receiver, trace))
}

#[tokio::test]
async fn runs_are_exported_as_genai_spans_with_their_parentage() -> anyhow::Result<()> {
    let (receiver, trace) = export(|endpoint| Telemetry::otlp(endpoint)).await?;
    assert!(receiver.services().iter().all(|s| s == "loom-tests"), "{:?}", receiver.services());

    // The span tree: agent → tool → workflow → agent → tool → sub-agent, each with its calls.
    let concierge = trace.one("invoke_agent concierge")?;
    let pipeline_tool = trace.one("execute_tool pipeline")?;
    let workflow = trace.one("invoke_workflow pipeline")?;
    let researcher = trace.one("invoke_agent researcher")?;
    let check_tool = trace.one("execute_tool check_fact")?;
    let fact_checker = trace.one("invoke_agent fact_checker")?;
    let checker_chat = trace.one("chat claude-haiku-4-5")?;
    assert!(concierge.parent_span_id.is_empty(), "the outer run is the root");
    assert_eq!(trace.children(concierge), ["chat gpt-4.1", "execute_tool pipeline", "chat gpt-4.1"]);
    trace.assert_parent(pipeline_tool, concierge);
    trace.assert_parent(workflow, pipeline_tool);
    trace.assert_parent(researcher, workflow);
    assert_eq!(trace.children(researcher), ["chat gpt-4.1-mini", "execute_tool check_fact", "chat gpt-4.1-mini"]);
    trace.assert_parent(check_tool, researcher);
    trace.assert_parent(fact_checker, check_tool);
    trace.assert_parent(checker_chat, fact_checker);
    assert_eq!(trace.spans.len(), 11, "{:?}", trace.names());
    assert!(trace.spans.iter().all(|s| s.trace_id == concierge.trace_id), "one trace");

    // The GenAI attributes.
    let a = |span: &Span, key: &str| string(&span.attributes, key);
    assert_eq!(a(concierge, "gen_ai.operation.name").as_deref(), Some("invoke_agent"));
    assert_eq!(a(concierge, "gen_ai.agent.name").as_deref(), Some("concierge"));
    assert_eq!(a(concierge, "gen_ai.conversation.id").as_deref(), Some("conv_7"));
    assert_eq!(a(concierge, "gen_ai.request.model").as_deref(), Some("gpt-4.1"));
    assert_eq!(a(concierge, "gen_ai.provider.name").as_deref(), Some("openai"));
    assert_eq!(a(workflow, "gen_ai.operation.name").as_deref(), Some("invoke_workflow"));
    assert_eq!(a(workflow, "gen_ai.agent.name").as_deref(), Some("pipeline"));
    assert_eq!(a(check_tool, "gen_ai.operation.name").as_deref(), Some("execute_tool"));
    assert_eq!(a(check_tool, "gen_ai.tool.name").as_deref(), Some("check_fact"));
    assert_eq!(a(check_tool, "gen_ai.tool.call.id").as_deref(), Some("call_1"));
    assert_eq!(a(check_tool, "gen_ai.tool.type").as_deref(), Some("function"));
    assert_eq!(a(checker_chat, "gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(a(checker_chat, "gen_ai.provider.name").as_deref(), Some("anthropic"));
    assert_eq!(a(checker_chat, "gen_ai.request.model").as_deref(), Some("claude-haiku-4-5"));
    assert_eq!(int(&checker_chat.attributes, "gen_ai.usage.input_tokens"), Some(7));
    assert_eq!(int(&checker_chat.attributes, "gen_ai.usage.output_tokens"), Some(2));
    assert_eq!(checker_chat.kind, span::SpanKind::Client as i32);
    assert_eq!(concierge.kind, span::SpanKind::Internal as i32);
    let researcher_chats = trace.all("chat gpt-4.1-mini");
    let tokens: Vec<_> = researcher_chats
        .iter()
        .map(|s| (int(&s.attributes, "gen_ai.usage.input_tokens"), int(&s.attributes, "gen_ai.usage.output_tokens")))
        .collect();
    assert!(tokens.contains(&(Some(11), Some(3))) && tokens.contains(&(Some(13), Some(5))), "{tokens:?}");
    // A run's usage is its own model calls' (11+13 in, 3+5 out).
    assert_eq!(int(&researcher.attributes, "gen_ai.usage.input_tokens"), Some(24));
    assert_eq!(int(&researcher.attributes, "gen_ai.usage.output_tokens"), Some(8));
    let finish = |s: &Span| match value(&s.attributes, "gen_ai.response.finish_reasons") {
        Some(any_value::Value::ArrayValue(a)) => {
            a.values.iter().filter_map(|v| v.value.as_ref()).cloned().collect::<Vec<_>>()
        }
        _ => Vec::new(),
    };
    assert_eq!(finish(checker_chat), [any_value::Value::StringValue("stop".into())]);

    // No message contents, anywhere: not as attributes, not in events.
    for span in &trace.spans {
        for key in [
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
        ] {
            assert!(value(&span.attributes, key).is_none(), "{key} on {:?}", span.name);
        }
        let texts = span
            .attributes
            .iter()
            .chain(span.events.iter().flat_map(|e| &e.attributes))
            .filter_map(|kv| string(std::slice::from_ref(kv), &kv.key));
        for text in texts {
            for secret in [QUESTION, CLAIM, VERDICT, ANSWER, "Check the claim against the almanac."] {
                assert!(!text.contains(secret), "{secret:?} in {:?} of {:?}", text, span.name);
            }
        }
    }

    // The metrics: tokens per model call, by type, and durations per operation.
    let tokens = receiver.histogram("gen_ai.client.token.usage");
    let sum = |model: &str, kind: &str| -> f64 {
        tokens
            .iter()
            .filter(|(attrs, ..)| {
                string(attrs, "gen_ai.request.model").as_deref() == Some(model)
                    && string(attrs, "gen_ai.token.type").as_deref() == Some(kind)
            })
            .map(|(_, _, sum)| sum)
            .sum()
    };
    assert_eq!(sum("gpt-4.1-mini", "input"), 24.0);
    assert_eq!(sum("gpt-4.1-mini", "output"), 8.0);
    assert_eq!(sum("claude-haiku-4-5", "input"), 7.0);
    assert_eq!(sum("gpt-4.1", "output"), 10.0);
    let checker_points: Vec<_> = tokens
        .iter()
        .filter(|(attrs, ..)| string(attrs, "gen_ai.request.model").as_deref() == Some("claude-haiku-4-5"))
        .collect();
    assert!(
        checker_points.iter().all(|(attrs, ..)| string(attrs, "gen_ai.provider.name").as_deref() == Some("anthropic")
            && string(attrs, "gen_ai.operation.name").as_deref() == Some("chat")),
        "{checker_points:?}"
    );
    let durations = receiver.histogram("gen_ai.client.operation.duration");
    let mut counts: HashMap<String, u64> = HashMap::new();
    for (attrs, count, sum) in &durations {
        assert!(*sum >= 0.0);
        *counts.entry(string(attrs, "gen_ai.operation.name").unwrap_or_default()).or_default() += count;
    }
    let expected: HashMap<String, u64> =
        [("chat", 5), ("execute_tool", 2), ("invoke_agent", 3), ("invoke_workflow", 1)]
            .into_iter()
            .map(|(op, n)| (op.to_owned(), n))
            .collect();
    assert_eq!(counts, expected);
    Ok(())
}

#[tokio::test]
async fn message_contents_are_exported_only_when_captured() -> anyhow::Result<()> {
    let (_receiver, trace) = export(|endpoint| Telemetry::otlp(endpoint).capture_content(true)).await?;
    let check_tool = trace.one("execute_tool check_fact")?;
    let arguments = string(&check_tool.attributes, "gen_ai.tool.call.arguments").context("the tool's arguments")?;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&arguments)?, json!({"input": CLAIM}));
    assert_eq!(string(&check_tool.attributes, "gen_ai.tool.call.result").as_deref(), Some(VERDICT));

    let checker_chat = trace.one("chat claude-haiku-4-5")?;
    let input = string(&checker_chat.attributes, "gen_ai.input.messages").context("the chat's input")?;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&input)?,
        json!([{"role": "user", "parts": [{"type": "text", "content": CLAIM}]}])
    );
    let system = string(&checker_chat.attributes, "gen_ai.system_instructions").context("the instructions")?;
    assert!(system.contains("Check the claim against the almanac."), "{system}");
    let output = string(&checker_chat.attributes, "gen_ai.output.messages").context("the chat's output")?;
    let output: serde_json::Value = serde_json::from_str(&output)?;
    assert_eq!(output[0]["parts"][0], json!({"type": "text", "content": VERDICT}));
    assert_eq!(output[0]["finish_reason"], "stop");

    // The researcher's first answer is a tool call; its second request has the tool's result.
    let chats = trace.all("chat gpt-4.1-mini");
    let outputs: Vec<serde_json::Value> = chats
        .iter()
        .filter_map(|s| string(&s.attributes, "gen_ai.output.messages"))
        .map(|o| serde_json::from_str(&o))
        .collect::<Result<_, _>>()?;
    assert!(
        outputs.iter().any(|o| o[0]["parts"][0]
            == json!({"type": "tool_call", "id": "call_1", "name": "check_fact", "arguments": {"input": CLAIM}})),
        "{outputs:?}"
    );
    let inputs: Vec<String> = chats.iter().filter_map(|s| string(&s.attributes, "gen_ai.input.messages")).collect();
    assert!(inputs.iter().any(|i| i.contains(r#""type":"tool_call_response""#) && i.contains(VERDICT)), "{inputs:?}");

    let concierge = trace.one("invoke_agent concierge")?;
    assert!(string(&concierge.attributes, "gen_ai.input.messages").is_some_and(|m| m.contains(QUESTION)));
    assert!(string(&concierge.attributes, "gen_ai.output.messages").is_some_and(|m| m.contains(ANSWER)));
    Ok(())
}

#[tokio::test]
async fn captured_contents_are_what_the_guardrails_left() -> anyhow::Result<()> {
    use loomflow::governance::{Governance, Redactor, Secret};

    const PASSWORD: &str = "hunter2-prod-7731";
    let receiver = Receiver::start()?;
    let guard = Telemetry::otlp(&receiver.endpoint).capture_content(true).metrics(false).build()?;
    // The secret is in the user's message, in a sub-agent's answer (a tool result), and in
    // the final answer: the secrets guardrail replaces it everywhere before anyone sees it.
    let vault = Agent::new("Read the vault.")
        .name("vault")
        .model(ScriptedModel::new([ScriptedTurn::text(format!("The password is {PASSWORD}."))]));
    let agent = Agent::new("Help the operator.")
        .name("operator")
        .model(ScriptedModel::new([
            ScriptedTurn::tool_call("read_vault", json!({"input": "the database password"})),
            ScriptedTurn::text(format!("It is {PASSWORD}.")),
        ]))
        .tool(vault.as_tool("read_vault", "Read a value from the vault.")?)
        .governance(Governance::new().redact_secrets(Redactor::new().with(&Secret::new(PASSWORD))));
    let result = {
        let _scope = guard.set_default();
        agent.run(format!("Is the password still {PASSWORD}?")).user("alice").into_future().await?
    };
    assert_eq!(result.output, "It is [secret].");
    guard.shutdown()?;

    let trace = Trace { spans: receiver.spans() };
    assert_eq!(trace.all("chat scripted").len(), 3, "{:?}", trace.names());
    for span in &trace.spans {
        for kv in &span.attributes {
            let text = string(std::slice::from_ref(kv), &kv.key).unwrap_or_default();
            assert!(!text.contains(PASSWORD), "the secret in {} of {:?}: {text}", kv.key, span.name);
        }
    }
    // What the guardrails left is there: the redacted input, the redacted tool result in the
    // next model call's input, and the redacted answer.
    let inputs: Vec<String> =
        trace.all("chat scripted").iter().filter_map(|s| string(&s.attributes, "gen_ai.input.messages")).collect();
    assert!(inputs.iter().any(|i| i.contains("Is the password still [secret]?")), "{inputs:?}");
    assert!(inputs.iter().any(|i| i.contains("The password is [secret].")), "{inputs:?}");
    let operator = trace.one("invoke_agent operator")?;
    assert!(
        string(&operator.attributes, "gen_ai.output.messages").is_some_and(|m| m.contains("It is [secret].")),
        "{:?}",
        operator.attributes
    );
    Ok(())
}
