//! OpenTelemetry: an agent calls a workflow as a tool, the workflow's agent calls a sub-agent
//! as a tool, and the whole run goes out over OTLP — spans named and attributed by the GenAI
//! semantic conventions, token usage and durations as metrics, message contents left out.
//!
//! ```sh
//! cargo run -p loomflow-examples --example telemetry
//! ```
//!
//! Offline, a stand-in collector in this process receives the export and prints the trace. To
//! see it in Jaeger, Grafana or any OpenTelemetry collector, give `Telemetry::otlp` its
//! address instead (`http://localhost:4318`), or use `Telemetry::otlp_from_env()` and set
//! `OTEL_EXPORTER_OTLP_ENDPOINT`.

use loomflow::prelude::*;
use loomflow::telemetry::otel::Telemetry;
use loomflow::workflow::sync_node;
use serde_json::json;

const QUESTION: &str = "Is the sky over Lisbon blue today?";

/// The concierge calls the `pipeline` workflow; its `research` node is the researcher, which
/// calls the fact checker. Scripted models, named after real ones, answer offline.
fn concierge() -> anyhow::Result<Agent> {
    let fact_checker = Agent::new("Check the claim against the almanac.").name("fact_checker").model(
        ScriptedModel::new([ScriptedTurn::text("Confirmed by the almanac.").with_usage(Usage::new(7, 2))])
            .named("claude-haiku-4-5"),
    );
    let researcher = Agent::new("Research the question; check claims before you state them.")
        .name("researcher")
        .model(
            ScriptedModel::new([
                ScriptedTurn::tool_call("check_fact", json!({"input": "the Lisbon sky is blue"}))
                    .with_usage(Usage::new(11, 3)),
                ScriptedTurn::text("The sky is blue (checked).").with_usage(Usage::new(13, 5)),
            ])
            .named("gpt-4.1-mini"),
        )
        .tool(fact_checker.as_tool("check_fact", "Check one claim.")?);

    let mut g = Workflow::builder("pipeline");
    let tidy = g.node("tidy", sync_node(|question: String| question.trim().to_owned()));
    let research = g.node::<String, String>("research", researcher);
    g.start(tidy);
    g.edge(tidy, research);
    let pipeline: Workflow<String, String> = g.build()?;

    Ok(Agent::new("Help the customer; research with the pipeline.")
        .name("concierge")
        .model(
            ScriptedModel::new([
                ScriptedTurn::tool_call("pipeline", json!({"input": QUESTION})).with_usage(Usage::new(17, 4)),
                ScriptedTurn::text("Yes: blue skies over Lisbon.").with_usage(Usage::new(19, 6)),
            ])
            .named("gpt-4.1"),
        )
        .tool(pipeline.as_tool("pipeline", "Research a question.")?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let collector = collector::Collector::start()?;

    // Spans and metrics over OTLP/HTTP. Message contents stay out unless
    // `.capture_content(true)` asks for them.
    let telemetry = Telemetry::otlp(collector.endpoint()).service_name("telemetry-example").build()?;
    let agent = concierge()?;
    let result = {
        // Loom's subscriber for this thread, which drives the run; `init()` would install it
        // for the whole process instead.
        let _scope = telemetry.set_default();
        agent.run(QUESTION).user("alice").session("conv_1").await?
    };
    println!("answer: {}\n", result.output);
    // Sends what is left and waits for it.
    telemetry.shutdown()?;

    collector.print(&[QUESTION, "the Lisbon sky is blue", &result.output]);
    Ok(())
}

/// A stand-in for an OpenTelemetry collector: an OTLP/HTTP endpoint that decodes the protobuf
/// bodies and keeps them, then prints the trace and the metrics.
mod collector {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
    use opentelemetry_proto::tonic::trace::v1::Span;
    use prost::Message as _;

    #[derive(Default)]
    struct Received {
        traces: Vec<ExportTraceServiceRequest>,
        metrics: Vec<ExportMetricsServiceRequest>,
    }

    type Shared = Arc<Mutex<Received>>;

    pub(crate) struct Collector {
        endpoint: String,
        received: Shared,
    }

    impl Collector {
        /// Listens on a free port of 127.0.0.1, on a thread of its own.
        pub(crate) fn start() -> anyhow::Result<Self> {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.set_nonblocking(true)?;
            let endpoint = format!("http://{}", listener.local_addr()?);
            let received = Shared::default();
            let app = Router::new()
                .route("/v1/traces", post(traces))
                .route("/v1/metrics", post(metrics))
                .with_state(Arc::clone(&received));
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let listener = {
                let _in = runtime.enter();
                tokio::net::TcpListener::from_std(listener)?
            };
            std::thread::spawn(move || runtime.block_on(async { axum::serve(listener, app).await.ok() }));
            Ok(Self { endpoint, received })
        }

        pub(crate) fn endpoint(&self) -> &str {
            &self.endpoint
        }

        /// Prints the trace as a tree, the metrics, and whether any of `contents` was exported.
        pub(crate) fn print(&self, contents: &[&str]) {
            let Ok(received) = self.received.lock() else { return };
            let spans: Vec<&Span> = received
                .traces
                .iter()
                .flat_map(|r| &r.resource_spans)
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .collect();
            let services: Vec<String> = received
                .traces
                .iter()
                .flat_map(|r| &r.resource_spans)
                .filter_map(|r| r.resource.as_ref().and_then(|r| text(&r.attributes, "service.name")))
                .collect();
            let mut traces: Vec<&[u8]> = spans.iter().map(|s| s.trace_id.as_slice()).collect();
            traces.sort();
            traces.dedup();
            println!(
                "the collector received {} spans in {} trace(s) from {}:",
                spans.len(),
                traces.len(),
                services.first().map_or("?", String::as_str)
            );
            for root in spans.iter().filter(|s| s.parent_span_id.is_empty()) {
                print_tree(&spans, root, "", "");
            }

            // Cumulative metrics: the last export has them all.
            let metrics: Vec<&Metric> = received
                .metrics
                .last()
                .into_iter()
                .flat_map(|r| &r.resource_metrics)
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .collect();
            println!();
            for m in metrics {
                let Some(metric::Data::Histogram(h)) = &m.data else { continue };
                let mut by: BTreeMap<String, (u64, f64)> = BTreeMap::new();
                let key =
                    if m.name == "gen_ai.client.token.usage" { "gen_ai.token.type" } else { "gen_ai.operation.name" };
                for p in &h.data_points {
                    let entry = by.entry(text(&p.attributes, key).unwrap_or_default()).or_default();
                    entry.0 += p.count;
                    entry.1 += p.sum.unwrap_or_default();
                }
                let parts: Vec<String> = by
                    .iter()
                    .map(|(k, (count, sum))| match m.unit.as_str() {
                        "s" => format!("{k} ×{count}"),
                        _ => format!("{k} {sum} over {count} calls"),
                    })
                    .collect();
                println!("{} ({}): {}", m.name, m.unit, parts.join(", "));
            }

            let leaked = spans.iter().flat_map(|s| &s.attributes).any(|kv| {
                matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()),
                    Some(any_value::Value::StringValue(s)) if contents.iter().any(|c| s.contains(c)))
            });
            println!("message contents in the export: {}", if leaked { "yes" } else { "none" });
        }
    }

    fn print_tree(spans: &[&Span], span: &Span, first: &str, rest: &str) {
        println!("{first}{}{}", span.name, details(span));
        let mut children: Vec<&&Span> = spans.iter().filter(|c| c.parent_span_id == span.span_id).collect();
        children.sort_by_key(|c| c.start_time_unix_nano);
        for (i, child) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            let (branch, next) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
            print_tree(spans, child, &format!("{rest}{branch}"), &format!("{rest}{next}"));
        }
    }

    /// The attributes worth a glance.
    fn details(span: &Span) -> String {
        let a = &span.attributes;
        let mut parts = Vec::new();
        if let Some(provider) = text(a, "gen_ai.provider.name").filter(|_| span.name.starts_with("chat")) {
            parts.push(provider);
        }
        if let (Some(input), Some(output)) = (int(a, "gen_ai.usage.input_tokens"), int(a, "gen_ai.usage.output_tokens"))
        {
            parts.push(format!("{input} in / {output} out tokens"));
        }
        if let Some(call) = text(a, "gen_ai.tool.call.id") {
            parts.push(call);
        }
        if parts.is_empty() { String::new() } else { format!("  [{}]", parts.join(", ")) }
    }

    fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
    }

    fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
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

    async fn traces(State(received): State<Shared>, body: Bytes) -> StatusCode {
        match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                received.lock().map(|mut r| r.traces.push(request)).ok();
                StatusCode::OK
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }

    async fn metrics(State(received): State<Shared>, body: Bytes) -> StatusCode {
        match ExportMetricsServiceRequest::decode(body) {
            Ok(request) => {
                received.lock().map(|mut r| r.metrics.push(request)).ok();
                StatusCode::OK
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }
}
