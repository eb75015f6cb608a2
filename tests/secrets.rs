//! A planted secret never leaves the run: it comes in through the user's input, a tool's
//! result and the model's answer, and is in none of the events, the logs and spans, the
//! journal and session (the SQLite file itself), the audit log file, or what the model was
//! sent.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use loomflow::governance::{Governance, MapSecrets, Redactor, Secrets as _};
use loomflow::prelude::*;
use loomflow::session::{SessionStore as _, SqliteStore};
use loomflow::telemetry::audit::{AuditKey, AuditLog as _, FileAuditLog};
use serde_json::json;

const PLANTED: &str = "sk-planted-5e1f0c9a7b3d";

/// Read the service's configuration.
#[tool]
fn read_config() -> String {
    format!("host=db.internal user=svc password={PLANTED}")
}

/// A model that repeats the secret whatever it was shown (it could have it from anywhere).
fn leaky_model() -> ScriptedModel {
    ScriptedModel::from_fn(|req| {
        if req.last_is_tool_result() {
            ScriptedTurn::text(format!("The password is {PLANTED}."))
        } else {
            ScriptedTurn::tool_call("read_config", json!({}))
        }
    })
}

/// Everything written through `tracing`, at every level.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn file_text(path: &std::path::Path) -> String {
    let mut bytes = std::fs::read(path).unwrap_or_default();
    for suffix in ["-wal", "-shm"] {
        bytes.extend(std::fs::read(format!("{}{suffix}", path.display())).unwrap_or_default());
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn a_planted_secret_is_in_no_event_log_journal_session_or_audit_entry() -> anyhow::Result<()> {
    let db = common::TempFile::new("secrets.db");
    let audit_path = common::TempFile::new("secrets-audit.jsonl");
    let vault = MapSecrets::new().with("SERVICE_DB_PASSWORD", PLANTED);
    let password = vault.get("SERVICE_DB_PASSWORD").await?.ok_or_else(|| anyhow::anyhow!("no secret"))?;
    let key = AuditKey::from_hex("4c6f6f6d2061756469742074657374206b6579202d2033322062797465732121")?;
    let audit = Arc::new(FileAuditLog::open(audit_path.path(), key)?);
    let store = Arc::new(SqliteStore::open(db.path())?);
    let model = leaky_model();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let agent = Agent::new("Help the operator.")
        .model(model.clone())
        .tool(ReadConfigTool)
        .store(Arc::clone(&store))
        .governance(Governance::new().redact_secrets(Redactor::new().with(&password)).audit(Arc::clone(&audit)))
        .on_event(move |e: RunEvent| {
            let line = serde_json::to_string(&e.kind).unwrap_or_default();
            seen.lock().map(|mut s| s.push(line)).ok();
        });

    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_writer(logs.clone())
        .finish();
    // The test's runtime runs the run on this thread, where the subscriber is the default.
    let logging = tracing::subscriber::set_default(subscriber);
    let result =
        agent.run(format!("My old password was {PLANTED}; what is the new one?")).user("ops").session("s1").await?;
    drop(logging);

    assert_eq!(result.output, "The password is [secret].");
    let mut places: Vec<(&str, String)> = vec![
        ("the answer", result.output.clone()),
        ("the events", events.lock().map(|e| e.join("\n")).unwrap_or_default()),
        (
            "the logs and spans",
            String::from_utf8_lossy(&logs.0.lock().map(|l| l.clone()).unwrap_or_default()).into_owned(),
        ),
        ("the journal and session file", file_text(db.path())),
        ("the audit log file", file_text(audit_path.path())),
        ("the model's requests", format!("{:?}", model.requests())),
        ("the session", format!("{:?}", store.load(&UserId::new("ops")?, &SessionId::new("s1")?, None).await?)),
    ];
    places.push(("the audit entries", format!("{:?}", audit.entries(&UserId::new("ops")?).await?)));
    for (place, text) in &places {
        assert!(!text.is_empty() || *place == "the logs and spans", "{place} is empty: the scan would prove nothing");
        assert!(!text.contains(PLANTED), "the secret is in {place}:\n{text}");
    }
    // The scan saw real content: the redacted marks are where the secret was.
    assert!(places[1].1.contains("[secret]"), "the events carry the redacted tool result");
    assert!(places[4].1.contains("tool_result"), "the audit log has the run's tool result");
    assert!(!places[2].1.is_empty(), "the logs captured the run's spans");
    Ok(())
}
