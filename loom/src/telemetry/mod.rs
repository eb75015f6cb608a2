//! Telemetry: the audit log, and (with the `otel` feature) OpenTelemetry export.
//!
//! - [`audit`] (feature `audit`, on by default): a tamper-evident record of what runs did, per
//!   user. Every entry is signed with HMAC-SHA256 and chained to the user's previous entry, so
//!   an edited, deleted, inserted or reordered entry is found, and named, by
//!   [`AuditLog::verify`](audit::AuditLog::verify). Kept in memory, in a JSONL file, in SQLite
//!   (with `sqlite`) or in PostgreSQL (with `postgres`).

#[cfg(feature = "audit")]
pub mod audit;
