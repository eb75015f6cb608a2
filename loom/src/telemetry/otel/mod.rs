//! OpenTelemetry export (feature `otel`): runs, model calls, tool calls and workflows as
//! traces, token usage and durations as metrics, sent over OTLP/HTTP.
//!
//! Loom's spans follow the [GenAI semantic conventions]: an agent run is
//! `invoke_agent {agent}`, a workflow run `invoke_workflow {workflow}`, a model call
//! `chat {model}` and a tool call `execute_tool {tool}`, each with its `gen_ai.*` attributes
//! (operation, provider, models, agent and tool names, call ids, token usage, `error.type`).
//! Nested work nests: an agent called as a tool, a workflow called as a tool, an agent node of
//! a workflow — each is a child of the span that ran it, in the same trace.
//!
//! Two metrics come with them: `gen_ai.client.token.usage` (a histogram of tokens per model
//! call, by `gen_ai.token.type` `input` or `output`) and `gen_ai.client.operation.duration`
//! (a histogram of seconds per operation — model call, tool call, agent or workflow run — by
//! `gen_ai.operation.name`).
//!
//! Message contents — instructions, prompts, answers, tool arguments and results — are left
//! out unless [`capture_content`](Telemetry::capture_content) is on; then they are the
//! `gen_ai.system_instructions`, `gen_ai.input.messages`, `gen_ai.output.messages`,
//! `gen_ai.tool.call.arguments` and `gen_ai.tool.call.result` attributes, as JSON. They are
//! exported as the run's guardrails leave them: where guardrails check a stage (the input,
//! the model's answers, tool results — the secrets redactor among them), that stage's
//! contents appear only after the check (in the next model call's input, in the run's
//! answer), so what a guardrail removes is never exported.
//!
//! ```no_run
//! use loomflow::prelude::*;
//! use loomflow::telemetry::otel::Telemetry;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Spans and metrics to an OpenTelemetry collector; flushed and shut down when dropped.
//! let telemetry = Telemetry::otlp("http://localhost:4318").service_name("support-bot").init()?;
//! let agent = Agent::new("Answer briefly.").name("support").model("echo");
//! agent.run("Where is my parcel?").user("alice").await?;
//! telemetry.shutdown()?;
//! # Ok(())
//! # }
//! ```
//!
//! [`init`](Telemetry::init) installs a global `tracing` subscriber. To keep your own, add
//! [`TelemetryGuard::layer`] to it, or scope Loom's to a thread or a future with
//! [`TelemetryGuard::set_default`] or [`TelemetryGuard::subscriber`]. Flushing and shutting
//! down wait for the exporter: in async code, do it at the end or from a blocking task.
//!
//! The exporter runs on threads of its own (the SDK's batch span processor and periodic
//! metric reader), with a blocking HTTP client, so it needs no particular async runtime and
//! never blocks one while it sends. The standard `OTEL_*` environment variables apply
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, ...); what the builder sets wins.
//!
//! [GenAI semantic conventions]: https://opentelemetry.io/docs/specs/semconv/gen-ai/

pub(crate) mod content;
mod metrics;

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;

pub(crate) use metrics::GenAiLayer;

/// The version of the semantic conventions the spans and metrics follow.
const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.37.0";

/// Where the telemetry goes.
enum Export {
    /// OTLP over HTTP with protobuf bodies; `None`: the endpoint of the environment, else
    /// `http://localhost:4318`.
    Otlp { endpoint: Option<String>, headers: HashMap<String, String>, timeout: Option<Duration> },
    /// Providers the user built.
    Providers { tracer: SdkTracerProvider, meter: Option<SdkMeterProvider> },
}

/// The OpenTelemetry export of Loom's runs: where to, and what (see the [module](self)).
///
/// Build it with [`otlp`](Self::otlp), [`otlp_from_env`](Self::otlp_from_env) or
/// [`from_providers`](Self::from_providers), then [`build`](Self::build) it (you install the
/// subscriber) or [`init`](Self::init) it (Loom installs a global one).
#[must_use = "telemetry does nothing until it is built"]
pub struct Telemetry {
    export: Export,
    service_name: Option<String>,
    capture_content: bool,
    metrics: bool,
    metrics_interval: Option<Duration>,
    level: LevelFilter,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let export = match &self.export {
            Export::Otlp { endpoint, .. } => endpoint.as_deref().unwrap_or("(from the environment)"),
            Export::Providers { .. } => "(your providers)",
        };
        f.debug_struct("Telemetry")
            .field("export", &export)
            .field("service_name", &self.service_name)
            .field("capture_content", &self.capture_content)
            .field("metrics", &self.metrics)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    fn new(export: Export) -> Self {
        Self {
            export,
            service_name: None,
            capture_content: false,
            metrics: true,
            metrics_interval: None,
            level: LevelFilter::INFO,
        }
    }

    /// Traces and metrics to the OTLP/HTTP endpoint at `endpoint`, the base URL of a collector
    /// (`http://localhost:4318`): they go to its `/v1/traces` and `/v1/metrics`.
    pub fn otlp(endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into().trim_end_matches('/').to_owned();
        Self::new(Export::Otlp { endpoint: Some(endpoint), headers: HashMap::new(), timeout: None })
    }

    /// Traces and metrics to the OTLP/HTTP endpoint the environment names
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// and `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`), else `http://localhost:4318`.
    pub fn otlp_from_env() -> Self {
        Self::new(Export::Otlp { endpoint: None, headers: HashMap::new(), timeout: None })
    }

    /// Traces to `tracer` and metrics to `meter` (none without one): providers you built,
    /// with any exporter, processor, sampler and resource. The service name, headers and
    /// timeout of this builder do not apply to them.
    pub fn from_providers(tracer: SdkTracerProvider, meter: Option<SdkMeterProvider>) -> Self {
        Self::new(Export::Providers { tracer, meter })
    }

    /// The `service.name` of the telemetry (else `OTEL_SERVICE_NAME`, else the SDK's default).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Whether message contents are recorded: instructions, prompts, answers, tool arguments
    /// and tool results. Off by default — they may hold personal data and secrets.
    pub fn capture_content(mut self, yes: bool) -> Self {
        self.capture_content = yes;
        self
    }

    /// Whether the metrics are exported (on by default, when there is a meter provider).
    pub fn metrics(mut self, yes: bool) -> Self {
        self.metrics = yes;
        self
    }

    /// How often the metrics are exported (else `OTEL_METRIC_EXPORT_INTERVAL`, else a minute).
    /// [`TelemetryGuard::flush`] exports them at once.
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = Some(interval);
        self
    }

    /// The most verbose spans and events exported (`INFO` by default, which is the level of
    /// Loom's spans; `DEBUG` adds Loom's debug events, such as why a tool call failed).
    pub fn level(mut self, level: tracing::Level) -> Self {
        self.level = LevelFilter::from_level(level);
        self
    }

    /// A header sent with every export (an API key of a hosted backend, say), for
    /// [`otlp`](Self::otlp) and [`otlp_from_env`](Self::otlp_from_env).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Export::Otlp { headers, .. } = &mut self.export {
            headers.insert(name.into(), value.into());
        }
        self
    }

    /// How long one export may take (ten seconds by default), for [`otlp`](Self::otlp) and
    /// [`otlp_from_env`](Self::otlp_from_env).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if let Export::Otlp { timeout: t, .. } = &mut self.export {
            *t = Some(timeout);
        }
        self
    }

    /// Builds the exporters and providers. Nothing is recorded until the guard's
    /// [`layer`](TelemetryGuard::layer) or [`subscriber`](TelemetryGuard::subscriber) is
    /// installed.
    pub fn build(self) -> Result<TelemetryGuard, TelemetryError> {
        let (tracer_provider, meter_provider) = match self.export {
            Export::Providers { tracer, meter } => (tracer, meter.filter(|_| self.metrics)),
            Export::Otlp { endpoint, headers, timeout } => {
                let resource = || {
                    let builder = Resource::builder();
                    match &self.service_name {
                        Some(name) => builder.with_service_name(name.clone()).build(),
                        None => builder.build(),
                    }
                };
                let url = |path: &str| endpoint.as_ref().map(|base| format!("{base}{path}"));
                let mut spans = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_headers(headers.clone());
                if let Some(url) = url("/v1/traces") {
                    spans = spans.with_endpoint(url);
                }
                if let Some(timeout) = timeout {
                    spans = spans.with_timeout(timeout);
                }
                let tracer =
                    SdkTracerProvider::builder().with_batch_exporter(spans.build()?).with_resource(resource()).build();
                let meter = if self.metrics {
                    let mut metrics = opentelemetry_otlp::MetricExporter::builder()
                        .with_http()
                        .with_protocol(Protocol::HttpBinary)
                        .with_headers(headers);
                    if let Some(url) = url("/v1/metrics") {
                        metrics = metrics.with_endpoint(url);
                    }
                    if let Some(timeout) = timeout {
                        metrics = metrics.with_timeout(timeout);
                    }
                    let mut reader = PeriodicReader::builder(metrics.build()?);
                    if let Some(interval) = self.metrics_interval {
                        reader = reader.with_interval(interval);
                    }
                    Some(SdkMeterProvider::builder().with_reader(reader.build()).with_resource(resource()).build())
                } else {
                    None
                };
                (tracer, meter)
            }
        };
        let scope = InstrumentationScope::builder("loomflow")
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_schema_url(SCHEMA_URL)
            .build();
        let tracer = tracer_provider.tracer_with_scope(scope.clone());
        let instruments = meter_provider.as_ref().map(|m| metrics::Instruments::new(&m.meter_with_scope(scope)));
        Ok(TelemetryGuard {
            tracer_provider,
            meter_provider,
            tracer,
            genai: GenAiLayer::new(self.capture_content, instruments),
            level: self.level,
            shut_down: false,
        })
    }

    /// Builds the telemetry and installs it process-wide: a global `tracing` subscriber that
    /// exports, and the OpenTelemetry global tracer and meter providers (for other libraries
    /// instrumented with OpenTelemetry). Fails when a global subscriber is set already.
    pub fn init(self) -> Result<TelemetryGuard, TelemetryError> {
        let guard = self.build()?;
        tracing::subscriber::set_global_default(guard.subscriber())?;
        opentelemetry::global::set_tracer_provider(guard.tracer_provider.clone());
        if let Some(meter) = &guard.meter_provider {
            opentelemetry::global::set_meter_provider(meter.clone());
        }
        Ok(guard)
    }
}

/// Built telemetry: the layer to record with, and the providers that export. Dropping it
/// flushes and shuts the providers down (waiting for the exporter);
/// [`shutdown`](Self::shutdown) does the same and reports errors.
#[must_use = "dropping the guard shuts the telemetry down"]
pub struct TelemetryGuard {
    tracer_provider: SdkTracerProvider,
    meter_provider: Option<SdkMeterProvider>,
    tracer: SdkTracer,
    genai: GenAiLayer,
    level: LevelFilter,
    shut_down: bool,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("capture_content", &self.genai.capture_content)
            .field("metrics", &self.meter_provider.is_some())
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl TelemetryGuard {
    /// A `tracing` layer that exports to these providers, for a subscriber of your own
    /// (`tracing_subscriber::registry().with(guard.layer()).with(fmt::layer())`).
    ///
    /// It exports spans and events up to the [level](Telemetry::level), except the
    /// OpenTelemetry crates' own (an export must not export itself), and records the metrics.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync + 'static,
    {
        let filter = Targets::new().with_default(self.level).with_target("opentelemetry", LevelFilter::OFF);
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone()).and_then(self.genai.clone()).with_filter(filter)
    }

    /// A subscriber that does nothing but export: a `tracing` registry with
    /// [`layer`](Self::layer). Install it for a future
    /// (`tracing::instrument::WithSubscriber::with_subscriber`), a scope
    /// (`tracing::subscriber::with_default`), or the process
    /// (`tracing::subscriber::set_global_default`).
    pub fn subscriber(&self) -> impl Subscriber + for<'span> LookupSpan<'span> + Send + Sync + 'static {
        tracing_subscriber::registry().with(self.layer())
    }

    /// Makes [`subscriber`](Self::subscriber) this thread's default until the returned guard
    /// is dropped: what runs on this thread (the future `block_on` or `#[tokio::main]`
    /// drives, with everything it awaits) is exported; tasks spawned onto other threads are not.
    pub fn set_default(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.subscriber())
    }

    /// The provider the spans go to.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// The provider the metrics go to, when they are exported.
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }

    /// Exports every finished span and the metrics now, and waits until they are sent. The
    /// spans of runs still going are exported when they end.
    pub fn flush(&self) -> Result<(), TelemetryError> {
        let spans = self.tracer_provider.force_flush();
        let metrics = self.meter_provider.as_ref().map_or(Ok(()), SdkMeterProvider::force_flush);
        spans.and(metrics).map_err(TelemetryError::Flush)
    }

    /// Flushes, then shuts the providers down: what is recorded afterwards is dropped.
    pub fn shutdown(mut self) -> Result<(), TelemetryError> {
        self.close()
    }

    fn close(&mut self) -> Result<(), TelemetryError> {
        if std::mem::replace(&mut self.shut_down, true) {
            return Ok(());
        }
        let spans = self.tracer_provider.shutdown();
        let metrics = self.meter_provider.as_ref().map_or(Ok(()), SdkMeterProvider::shutdown);
        spans.and(metrics).map_err(TelemetryError::Shutdown)
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            // The OpenTelemetry crates' own events are not exported: this goes to other layers.
            tracing::warn!(target: "opentelemetry", "the telemetry did not shut down cleanly: {e}");
        }
    }
}

/// Telemetry that could not be set up, flushed or shut down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (an invalid endpoint or header, say).
    #[error("the OTLP exporter could not be built: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A global `tracing` subscriber is set already ([`Telemetry::init`]).
    #[error("a global tracing subscriber is set already: use `Telemetry::build` and add its layer to yours")]
    SubscriberSet(#[from] tracing::subscriber::SetGlobalDefaultError),
    /// The spans or metrics could not be exported in time.
    #[error("the telemetry could not be flushed: {0}")]
    Flush(#[source] OTelSdkError),
    /// The providers did not shut down cleanly (what they held may be lost).
    #[error("the telemetry did not shut down cleanly: {0}")]
    Shutdown(#[source] OTelSdkError),
}

#[cfg(test)]
mod tests;
