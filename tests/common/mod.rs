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

/// The tool results of a run's conversation, in order.
pub fn tool_results(result: &loomflow::RunResult) -> Vec<&loomflow::model::ToolResult> {
    result
        .messages
        .iter()
        .filter_map(|m| match m {
            loomflow::model::Message::Tool(r) => Some(r),
            _ => None,
        })
        .collect()
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
        EventKind::Compacted { .. } => "compacted",
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
        EventKind::PlanUpdated { .. } => "plan_updated",
        EventKind::BudgetWarning { .. } => "budget_warning",
        EventKind::BudgetExceeded { .. } => "budget_exceeded",
        EventKind::RateLimited { .. } => "rate_limited",
        EventKind::PermissionDecision { .. } => "permission",
        EventKind::ApprovalRequested { .. } => "approval_requested",
        EventKind::ApprovalDecided { .. } => "approval_decided",
        EventKind::Guardrail { .. } => "guardrail",
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

/// The PostgreSQL server with pgvector the tests talk to (`.ci/run` starts one, PostgreSQL 16,
/// with the `vector` extension created in the database's `public` schema, and sets the
/// variable). Only `#[ignore]`d tests call it: without the variable they fail, they never pass
/// by skipping.
pub fn pgvector_url() -> String {
    match std::env::var("LOOM_TEST_PGVECTOR_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "LOOM_TEST_PGVECTOR_URL is not set: start PostgreSQL with pgvector and set it (`.ci/run` does both, \
             with `CREATE EXTENSION vector` in the database), or run without --include-ignored to leave the \
             pgvector tests out"
        ),
    }
}

/// The Redis server the tests talk to (`.ci/run` starts one and sets the variable). Only
/// `#[ignore]`d tests call it: without the variable they fail, they never pass by skipping.
pub fn redis_url() -> String {
    match std::env::var("LOOM_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "LOOM_TEST_REDIS_URL is not set: start Redis and set it (`.ci/run` does both), \
             or run without --include-ignored to leave the Redis tests out"
        ),
    }
}

/// The Chroma server the tests talk to (`.ci/run` starts one and sets the variable). Only
/// `#[ignore]`d tests call it: without the variable they fail, they never pass by skipping.
pub fn chroma_url() -> String {
    match std::env::var("LOOM_TEST_CHROMA_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "LOOM_TEST_CHROMA_URL is not set: start Chroma and set it (`.ci/run` does both), \
             or run without --include-ignored to leave the Chroma tests out"
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

/// A name no other test of any run uses: `{prefix}_{pid}_{nanos}_{n}`.
pub fn unique_name(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// A database file in the temp directory with a name no other test uses, removed (with its
/// WAL files) when dropped.
pub struct TempFile(std::path::PathBuf);

impl TempFile {
    pub fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(unique_name(&format!("loom-{name}"))))
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

/// A PostgreSQL schema of its own for one test (tests share one database and run at once).
/// Schemas of earlier runs are dropped when a new one is made an hour later: a test's own
/// cannot be dropped as it ends without blocking its runtime.
pub struct PgSchema {
    name: String,
    url: String,
    /// The `search_path` of its connections.
    path: String,
}

impl PgSchema {
    /// A schema on the server of [`postgres_url`]; its connections see only the schema.
    pub async fn new() -> Self {
        Self::make(postgres_url(), false).await
    }

    /// A schema on the server at `url`; its connections see the schema, then `public` (where
    /// the database's extensions are, such as pgvector's `vector`, which a database holds
    /// once).
    pub async fn on(url: String) -> Self {
        Self::make(url, true).await
    }

    async fn make(url: String, public: bool) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let name = format!("loom_test_{secs}_{}_{n}", std::process::id());
        let pool = sqlx::PgPool::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        let old: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'loom\\_test\\_%'")
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
        for schema in old {
            let made = schema.split('_').nth(2).and_then(|s| s.parse::<u64>().ok()).unwrap_or(u64::MAX);
            if made.saturating_add(3600) < secs {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                    .execute(&pool)
                    .await;
            }
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        pool.close().await;
        let path = if public { format!("{name}, public") } else { name.clone() };
        Self { name, url, path }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool whose connections use the schema.
    pub async fn pool(&self) -> sqlx::PgPool {
        use std::str::FromStr as _;
        let options = sqlx::postgres::PgConnectOptions::from_str(&self.url)
            .unwrap_or_else(|e| panic!("{e}"))
            .options([("search_path", self.path.as_str())]);
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A store on the schema.
    pub async fn store(&self) -> loomflow::session::PostgresStore {
        loomflow::session::PostgresStore::with_pool(self.pool().await).await.unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A key prefix of its own for one test (tests share one Redis server and run at once); its
/// keys are deleted when the test ends.
pub struct RedisPrefix {
    name: String,
}

impl RedisPrefix {
    pub fn new() -> Self {
        Self { name: unique_name("loom_test") }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A memory store under the prefix.
    pub async fn memory(&self) -> loomflow::memory::RedisMemory {
        loomflow::memory::RedisMemory::connect(&redis_url())
            .await
            .and_then(|m| m.prefix(&self.name))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A plain connection to the server, to look at what is stored.
    pub fn connection() -> redis::Connection {
        redis::Client::open(redis_url()).and_then(|c| c.get_connection()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every key under the prefix, now.
    pub fn keys(&self, con: &mut redis::Connection) -> redis::RedisResult<Vec<String>> {
        let (mut cursor, mut keys) = (0u64, Vec::new());
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.name))
                .arg("COUNT")
                .arg(1_000)
                .query(con)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        // Not `redis_url()`: a drop must not panic.
        let Ok(url) = std::env::var("LOOM_TEST_REDIS_URL") else { return };
        let Ok(mut con) = redis::Client::open(url).and_then(|c| c.get_connection()) else { return };
        if let Ok(keys) = self.keys(&mut con) {
            for key in keys {
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query(&mut con);
            }
        }
    }
}

/// A collection prefix of its own for one test (tests share one Chroma server and run at
/// once); its collections are deleted when the test ends.
pub struct ChromaPrefix {
    name: String,
}

impl ChromaPrefix {
    pub fn new() -> Self {
        Self { name: unique_name("loom_test") }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A memory store under the prefix.
    pub async fn memory(&self) -> loomflow::memory::ChromaMemory {
        loomflow::memory::ChromaMemory::builder(chroma_url())
            .prefix(&self.name)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The URL of collection `name` in the default tenant and database of the server at `url`.
    pub fn collection_url(url: &str, name: &str) -> String {
        format!("{url}/api/v2/tenants/default_tenant/databases/default_database/collections/{name}")
    }
}

impl Drop for ChromaPrefix {
    fn drop(&mut self) {
        // Not `chroma_url()`: a drop must not panic.
        let Ok(url) = std::env::var("LOOM_TEST_CHROMA_URL") else { return };
        let url = url.trim().trim_end_matches('/').to_owned();
        let name = std::mem::take(&mut self.name);
        // A runtime of its own: the test's may be shutting down.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let client = reqwest::Client::new();
                for kind in ["episodes", "facts", "blocks", "chunks"] {
                    let _ = client.delete(Self::collection_url(&url, &format!("{name}_{kind}"))).send().await;
                }
            });
        })
        .join();
    }
}
