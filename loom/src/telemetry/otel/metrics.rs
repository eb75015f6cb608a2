//! The GenAI metrics, from the spans: `gen_ai.client.operation.duration` and
//! `gen_ai.client.token.usage`, recorded when a span with a `gen_ai.operation.name` closes.

use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The bucket boundaries the conventions advise for operation durations, in seconds.
const DURATION_BOUNDARIES: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/// The bucket boundaries the conventions advise for token counts.
const TOKEN_BOUNDARIES: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];

/// The two histograms.
#[derive(Clone)]
pub(crate) struct Instruments {
    duration: Histogram<f64>,
    tokens: Histogram<u64>,
}

impl Instruments {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            duration: meter
                .f64_histogram("gen_ai.client.operation.duration")
                .with_unit("s")
                .with_description("GenAI operation duration.")
                .with_boundaries(DURATION_BOUNDARIES.to_vec())
                .build(),
            tokens: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Number of input and output tokens used.")
                .with_boundaries(TOKEN_BOUNDARIES.to_vec())
                .build(),
        }
    }
}

/// Loom's own layer next to `tracing-opentelemetry`'s: the metrics, and whether message
/// contents are captured (found by the call sites through the subscriber, as
/// `tracing-opentelemetry` finds its own layer).
#[derive(Clone)]
pub(crate) struct GenAiLayer {
    pub(crate) capture_content: bool,
    instruments: Option<Instruments>,
}

impl GenAiLayer {
    pub(crate) fn new(capture_content: bool, instruments: Option<Instruments>) -> Self {
        Self { capture_content, instruments }
    }
}

/// What the metrics of one operation need, kept in the span's extensions while it is open.
struct Operation {
    started: Instant,
    fields: Fields,
}

/// The attributes of an operation that its metrics carry.
#[derive(Default)]
struct Fields {
    operation: Option<String>,
    provider: Option<String>,
    request_model: Option<String>,
    response_model: Option<String>,
    agent: Option<String>,
    tool: Option<String>,
    error: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
}

impl Fields {
    fn slot(&mut self, field: &Field) -> Option<&mut Option<String>> {
        Some(match field.name() {
            "gen_ai.operation.name" => &mut self.operation,
            "gen_ai.provider.name" => &mut self.provider,
            "gen_ai.request.model" => &mut self.request_model,
            "gen_ai.response.model" => &mut self.response_model,
            "gen_ai.agent.name" => &mut self.agent,
            "gen_ai.tool.name" => &mut self.tool,
            "error.type" => &mut self.error,
            _ => return None,
        })
    }

    /// The attributes every metric of the operation carries.
    fn attributes(&self) -> Vec<KeyValue> {
        [
            ("gen_ai.operation.name", &self.operation),
            ("gen_ai.provider.name", &self.provider),
            ("gen_ai.request.model", &self.request_model),
            ("gen_ai.response.model", &self.response_model),
            ("gen_ai.agent.name", &self.agent),
            ("gen_ai.tool.name", &self.tool),
            ("error.type", &self.error),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| KeyValue::new(key, v.clone())))
        .collect()
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(value.to_owned());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "gen_ai.usage.input_tokens" => self.input_tokens = Some(value),
            "gen_ai.usage.output_tokens" => self.output_tokens = Some(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(format!("{value:?}"));
        }
    }
}

impl<S> Layer<S> for GenAiLayer
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if self.instruments.is_none() || attrs.metadata().fields().field("gen_ai.operation.name").is_none() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(Operation { started: Instant::now(), fields });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(operation) = span.extensions_mut().get_mut::<Operation>() {
            values.record(&mut operation.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let (Some(instruments), Some(span)) = (&self.instruments, ctx.span(&id)) else { return };
        let Some(Operation { started, fields }) = span.extensions_mut().remove::<Operation>() else { return };
        let mut attributes = fields.attributes();
        instruments.duration.record(started.elapsed().as_secs_f64(), &attributes);
        // Tokens are counted where they are spent, on the model calls: a run's sum would
        // count them twice.
        if fields.operation.as_deref() == Some("chat") {
            for (kind, count) in [("input", fields.input_tokens), ("output", fields.output_tokens)] {
                let Some(count) = count.and_then(|n| u64::try_from(n).ok()) else { continue };
                attributes.push(KeyValue::new("gen_ai.token.type", kind));
                instruments.tokens.record(count, &attributes);
                attributes.pop();
            }
        }
    }
}
