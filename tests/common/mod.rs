//! Fixtures shared by the integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod http;
pub mod provider;

use std::sync::{Arc, Mutex};

use loomflow::{EventKind, RunEvent};

/// Collects the events of runs.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<RunEvent>>>);

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A listener that records into this recorder.
    pub fn listener(&self) -> impl Fn(RunEvent) + Send + Sync + 'static {
        let events = Arc::clone(&self.0);
        move |e| events.lock().map(|mut v| v.push(e)).unwrap_or(())
    }

    pub fn events(&self) -> Vec<RunEvent> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The event kinds, as short names.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.events().iter().map(|e| kind_name(&e.kind)).collect()
    }
}

pub fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::RunStarted { .. } => "run_started",
        EventKind::ModelRequest { .. } => "model_request",
        EventKind::TextDelta { .. } => "text_delta",
        EventKind::ModelResponse { .. } => "model_response",
        EventKind::ToolCallStarted { .. } => "tool_started",
        EventKind::ToolCallFinished { .. } => "tool_finished",
        EventKind::RunFinished { .. } => "run_finished",
        EventKind::Error { .. } => "error",
        EventKind::Custom { .. } => "custom",
        EventKind::OutputRejected { .. } => "output_rejected",
        EventKind::PartialOutput { .. } => "partial_output",
        EventKind::NodeStarted { .. } => "node_started",
        EventKind::NodeFinished { .. } => "node_finished",
        EventKind::NodeFailed { .. } => "node_failed",
        EventKind::WorkflowFinished { .. } => "workflow_finished",
        EventKind::ModelRetry { .. } => "model_retry",
        EventKind::ModelFallback { .. } => "model_fallback",
        _ => "other",
    }
}

/// The PostgreSQL server the tests talk to (`.ci/run` starts one and sets the variable). Only
/// `#[ignore]`d tests call it: without the variable they fail, they never pass by skipping.
pub fn postgres_url() -> String {
    match std::env::var("LOOM_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "LOOM_TEST_POSTGRES_URL is not set: start PostgreSQL and set it (`.ci/run` does both), \
             or run without --include-ignored to leave the PostgreSQL tests out"
        ),
    }
}

/// Retries `attempt` while it fails with `AlreadyRunning` (a dead worker's lease has not run
/// out yet), for at most five seconds.
pub async fn when_free<T, F, Fut>(mut attempt: F) -> Result<T, loomflow::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, loomflow::Error>>,
{
    let started = std::time::Instant::now();
    loop {
        match attempt().await {
            Err(loomflow::Error::Run(loomflow::RunError::AlreadyRunning { .. }))
                if started.elapsed() < std::time::Duration::from_secs(5) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// `impl SessionStore for $wrapper` forwarding every call to `self.inner` (test wrappers
/// change journal calls and leave the sessions alone). The impl's generics, with their
/// bounds, go first: `forward_sessions!(generics [S: SessionStore + Journal] Stall<S>)`.
#[macro_export]
macro_rules! forward_sessions {
    ($wrapper:ident) => {
        $crate::forward_sessions!(generics [] $wrapper);
    };
    (generics [$($generics:tt)*] $wrapper:ty) => {
        #[loomflow::async_trait]
        impl<$($generics)*> loomflow::session::SessionStore for $wrapper {
            async fn load(
                &self,
                u: &loomflow::UserId,
                s: &loomflow::SessionId,
                l: Option<usize>,
            ) -> Result<Vec<loomflow::model::Message>, loomflow::StoreError> {
                self.inner.load(u, s, l).await
            }
            async fn append(
                &self,
                u: &loomflow::UserId,
                s: &loomflow::SessionId,
                r: loomflow::RunId,
                m: &[loomflow::model::Message],
            ) -> Result<(), loomflow::StoreError> {
                loomflow::session::SessionStore::append(&*self.inner, u, s, r, m).await
            }
            async fn clear(&self, u: &loomflow::UserId, s: &loomflow::SessionId) -> Result<bool, loomflow::StoreError> {
                self.inner.clear(u, s).await
            }
            async fn sessions(&self, u: &loomflow::UserId) -> Result<Vec<loomflow::SessionId>, loomflow::StoreError> {
                self.inner.sessions(u).await
            }
        }
    };
}

/// A database file in the temp directory with a name no other test uses, removed (with its
/// WAL files) when dropped.
pub struct TempFile(std::path::PathBuf);

impl TempFile {
    pub fn new(name: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Self(std::env::temp_dir().join(format!("loom-{}-{nanos}-{n}-{name}", std::process::id())))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}
