//! Telemetry: the audit log, and (with the `otel` feature) OpenTelemetry export.
//!
//! - [`audit`] (feature `audit`, on by default): a tamper-evident record of what runs did, per
//!   user. Every entry is signed with HMAC-SHA256 and chained to the user's previous entry, so
//!   an edited, deleted, inserted or reordered entry is found, and named, by
//!   [`AuditLog::verify`](audit::AuditLog::verify). Kept in memory, in a JSONL file, in SQLite
//!   (with `sqlite`) or in PostgreSQL (with `postgres`).
//! - `otel` (feature `otel`): runs, model calls, tool calls and workflows exported over
//!   OTLP as traces and metrics, named by the OpenTelemetry GenAI semantic conventions
//!   (`invoke_agent`, `chat`, `execute_tool`, `gen_ai.*`); message contents only on request.
//!   The spans carry those names in every build, for any `tracing` subscriber.

#[cfg(feature = "audit")]
pub mod audit;
pub(crate) mod genai;
#[cfg(feature = "otel")]
pub mod otel;
