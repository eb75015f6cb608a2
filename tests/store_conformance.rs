//! One suite, run against every store: in memory, SQLite, and PostgreSQL.
//!
//! PostgreSQL runs when `LOOM_TEST_POSTGRES_URL` names a database (`.ci/run` starts one);
//! without it the PostgreSQL tests say they were skipped — and fail under `CI=true`, so CI
//! cannot pass by skipping them.

mod common;

use std::future::IntoFuture as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loomflow::agent::AgentInput;
use loomflow::model::Message;
use loomflow::prelude::*;
use loomflow::session::{
    InMemoryStore, Journal, JournalEntry, PostgresStore, RawRecord, RunInfo, RunKey, RunStatus, SessionStore,
    SqliteStore,
};
use loomflow::{StoreError, StoreErrorKind};
use serde_json::json;
use tokio::sync::Notify;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", RunId::generate())
}

fn user() -> UserId {
    UserId::new(unique("user")).unwrap_or_else(|_| UserId::anonymous())
}

fn session(name: &str) -> SessionId {
    SessionId::new(name).unwrap_or_else(|_| SessionId::generate())
}

async fn memory() -> Option<Arc<InMemoryStore>> {
    Some(Arc::new(InMemoryStore::new()))
}

async fn sqlite() -> Option<Arc<SqliteStore>> {
    let path = std::env::temp_dir().join(format!("{}.db", unique("loom-conformance")));
    Some(Arc::new(SqliteStore::open(&path).unwrap_or_else(|e| panic!("{e}"))))
}

pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var("LOOM_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "LOOM_TEST_POSTGRES_URL is not set under CI=true: the PostgreSQL tests would be skipped"
            );
            eprintln!("skipped: LOOM_TEST_POSTGRES_URL is not set, so the PostgreSQL store is not tested");
            None
        }
    }
}

async fn postgres() -> Option<Arc<PostgresStore>> {
    let url = postgres_url()?;
    Some(Arc::new(PostgresStore::connect(&url).await.unwrap_or_else(|e| panic!("{e}"))))
}

/// A journal that stops answering after `after` appends: the process "dies" there.
struct Stall<S> {
    inner: Arc<S>,
    after: usize,
    appends: AtomicUsize,
    stalled: Notify,
}

#[async_trait]
impl<S: SessionStore + Journal> SessionStore for Stall<S> {
    async fn load(&self, u: &UserId, s: &SessionId, l: Option<usize>) -> Result<Vec<Message>, StoreError> {
        self.inner.load(u, s, l).await
    }
    async fn append(&self, u: &UserId, s: &SessionId, r: RunId, m: &[Message]) -> Result<(), StoreError> {
        SessionStore::append(&*self.inner, u, s, r, m).await
    }
    async fn clear(&self, u: &UserId, s: &SessionId) -> Result<bool, StoreError> {
        self.inner.clear(u, s).await
    }
    async fn sessions(&self, u: &UserId) -> Result<Vec<SessionId>, StoreError> {
        self.inner.sessions(u).await
    }
}

#[async_trait]
impl<S: SessionStore + Journal> Journal for Stall<S> {
    async fn acquire(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        self.inner.acquire(key, owner, ttl).await
    }
    async fn append(&self, key: &RunKey, owner: &str, ttl: Duration, record: RawRecord) -> Result<(), StoreError> {
        if self.appends.fetch_add(1, Ordering::SeqCst) >= self.after {
            self.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        Journal::append(&*self.inner, key, owner, ttl, record).await
    }
    async fn finish(&self, key: &RunKey, owner: &str, status: RunStatus) -> Result<(), StoreError> {
        self.inner.finish(key, owner, status).await
    }
    async fn records(&self, key: &RunKey) -> Result<Vec<RawRecord>, StoreError> {
        self.inner.records(key).await
    }
    async fn runs(&self, u: &UserId, s: &SessionId) -> Result<Vec<RunInfo>, StoreError> {
        self.inner.runs(u, s).await
    }
    async fn import(&self, key: &RunKey, status: RunStatus, records: Vec<RawRecord>) -> Result<(), StoreError> {
        self.inner.import(key, status, records).await
    }
}

/// How many times the step tool ran.
struct Counter(Arc<AtomicUsize>);

/// Do step `n` of the job (safe to repeat).
#[tool(idempotent)]
fn step(counter: State<Counter>, n: u32) -> String {
    counter.0.0.fetch_add(1, Ordering::SeqCst);
    format!("step {n} done")
}

/// A model that asks for steps 1, 2, 3, then answers: its reply depends only on what the
/// conversation holds, so a replayed run and a live run see the same replies.
fn stepper(calls: Arc<AtomicUsize>) -> ScriptedModel {
    ScriptedModel::from_fn(move |req| {
        calls.fetch_add(1, Ordering::SeqCst);
        let done = req.messages.iter().filter(|m| matches!(m, Message::Tool(_))).count() as u32;
        if done < 3 {
            ScriptedTurn::tool_call("step", json!({"n": done + 1}))
        } else {
            ScriptedTurn::text("done after 3 steps")
        }
    })
}

fn stepper_agent<S: SessionStore + Journal>(
    store: Arc<S>,
    calls: &Arc<AtomicUsize>,
    executions: &Arc<AtomicUsize>,
) -> Agent {
    Agent::new("Do the job step by step.")
        .model(stepper(Arc::clone(calls)))
        .tool(StepTool)
        .state(Counter(Arc::clone(executions)))
        .store(store)
        .lease(Duration::ZERO)
}

// The journal of a full stepper run, by position.
const MODEL_APPENDS: [usize; 4] = [1, 5, 9, 13];
const TOOL_FINISHED_APPENDS: [usize; 3] = [3, 7, 11];
const FULL_RUN_APPENDS: usize = 15;

async fn append_and_read<S: SessionStore + Journal>(store: Arc<S>) {
    let (u, s, run) = (user(), session("s1"), RunId::generate());
    SessionStore::append(&*store, &u, &s, run, &[Message::user("hi"), Message::assistant("hello")]).await.ok();
    // The same run appends once.
    SessionStore::append(&*store, &u, &s, run, &[Message::user("hi"), Message::assistant("hello")]).await.ok();
    let history = store.load(&u, &s, None).await.unwrap_or_default();
    assert_eq!(history, [Message::user("hi"), Message::assistant("hello")]);
    assert_eq!(store.load(&u, &s, Some(1)).await.unwrap_or_default(), Vec::<Message>::new());

    let key = RunKey::new(u.clone(), s.clone(), run);
    assert!(store.acquire(&key, "w1", Duration::from_secs(30)).await.is_ok());
    for (seq, entry) in [JournalEntry::TurnFinished { turn: 1 }, JournalEntry::RunFinished].into_iter().enumerate() {
        let record = RawRecord::encode(seq as u64, &entry).unwrap_or_else(|e| panic!("{e}"));
        assert!(Journal::append(&*store, &key, "w1", Duration::from_secs(30), record).await.is_ok());
    }
    // A position is written once, and only by the lease holder.
    let dup = RawRecord::encode(1, &JournalEntry::RunFinished).unwrap_or_else(|e| panic!("{e}"));
    let err = Journal::append(&*store, &key, "w1", Duration::from_secs(30), dup.clone()).await.err();
    assert_eq!(err.map(|e| e.kind()), Some(StoreErrorKind::Conflict));
    let err = Journal::append(&*store, &key, "intruder", Duration::from_secs(30), dup).await.err();
    assert_eq!(err.map(|e| e.kind()), Some(StoreErrorKind::Conflict));
    let read = store.read(&key).await.unwrap_or_default();
    assert_eq!(read.entries.len(), 2);
    assert!(read.corrupt.is_empty());
    assert!(store.finish(&key, "w1", RunStatus::Finished).await.is_ok());
    let runs = store.runs(&u, &s).await.unwrap_or_default();
    assert_eq!(runs.iter().map(|r| (r.run, r.status)).collect::<Vec<_>>(), [(run, RunStatus::Finished)]);
}

async fn users_are_isolated<S: SessionStore + Journal>(store: Arc<S>) {
    let (alice, bob, s) = (user(), user(), session("shared"));
    SessionStore::append(&*store, &alice, &s, RunId::generate(), &[Message::user("alice's secret")]).await.ok();
    assert!(store.load(&bob, &s, None).await.unwrap_or_default().is_empty());
    assert!(store.sessions(&bob).await.unwrap_or_default().is_empty());
    let run = RunId::generate();
    let key = RunKey::new(alice.clone(), s.clone(), run);
    store.acquire(&key, "w", Duration::from_secs(30)).await.ok();
    let record = RawRecord::encode(0, &JournalEntry::RunFinished).unwrap_or_else(|e| panic!("{e}"));
    Journal::append(&*store, &key, "w", Duration::from_secs(30), record).await.ok();
    let bobs_view = RunKey::new(bob.clone(), s.clone(), run);
    assert!(store.records(&bobs_view).await.unwrap_or_default().is_empty());
    assert!(store.runs(&bob, &s).await.unwrap_or_default().is_empty());
}

async fn resume_after_a_crash_at_every_step<S: SessionStore + Journal>(store: Arc<S>) {
    for k in 1..FULL_RUN_APPENDS {
        let (u, s) = (user(), session("job"));
        let calls = Arc::new(AtomicUsize::new(0));
        let executions = Arc::new(AtomicUsize::new(0));
        let stall = Arc::new(Stall {
            inner: Arc::clone(&store),
            after: k,
            appends: AtomicUsize::new(0),
            stalled: Notify::new(),
        });
        let crashing = stepper_agent(Arc::clone(&stall), &calls, &executions);
        {
            let mut run = Box::pin(crashing.run("do the job").user(u.clone()).session(s.clone()).into_future());
            tokio::select! {
                r = &mut run => panic!("the run should have stalled at append {k}: {r:?}"),
                () = stall.stalled.notified() => {}
            }
            // The process dies here: nothing else of the run happens.
        }
        let resumer = stepper_agent(Arc::clone(&store), &calls, &executions);
        let result = resumer
            .resume_with(AgentInput::resume_latest())
            .user(u.clone())
            .session(s.clone())
            .await
            .unwrap_or_else(|e| panic!("resume after a crash at append {k}: {e}"));
        assert_eq!(result.output, "done after 3 steps", "crash at {k}");
        assert_eq!(result.tool_calls, 3, "crash at {k}");
        // A step is repeated only when the crash came after it ran and before its result was
        // written (the step tool is idempotent, so it is run again).
        let expected_tools = 3 + usize::from(TOOL_FINISHED_APPENDS.contains(&k));
        assert_eq!(executions.load(Ordering::SeqCst), expected_tools, "tool executions after a crash at append {k}");
        let expected_models = 4 + usize::from(MODEL_APPENDS.contains(&k));
        assert_eq!(calls.load(Ordering::SeqCst), expected_models, "model calls after a crash at append {k}");
        // The conversation was saved once.
        let history = store.load(&u, &s, None).await.unwrap_or_default();
        assert_eq!(history.len(), 1 + 4 + 3, "history after a crash at append {k}");
    }
}

async fn exactly_one_of_two_resumers_wins<S: SessionStore + Journal>(store: Arc<S>) {
    let (u, s) = (user(), session("race"));
    let calls = Arc::new(AtomicUsize::new(0));
    // Crash right after the first tool started.
    let stall =
        Arc::new(Stall { inner: Arc::clone(&store), after: 3, appends: AtomicUsize::new(0), stalled: Notify::new() });
    let executions = Arc::new(AtomicUsize::new(0));
    let crashing = stepper_agent(Arc::clone(&stall), &calls, &executions);
    {
        let mut run = Box::pin(crashing.run("job").user(u.clone()).session(s.clone()).into_future());
        tokio::select! {
            r = &mut run => panic!("should stall: {r:?}"),
            () = stall.stalled.notified() => {}
        }
    }
    let a = stepper_agent(Arc::clone(&store), &calls, &executions).lease(Duration::from_secs(30));
    let b = stepper_agent(Arc::clone(&store), &calls, &executions).lease(Duration::from_secs(30));
    let run = store.runs(&u, &s).await.unwrap_or_default().first().map(|r| r.run).unwrap_or_else(RunId::generate);
    let (ra, rb) = tokio::join!(
        a.resume(run).user(u.clone()).session(s.clone()).into_future(),
        b.resume(run).user(u.clone()).session(s.clone()).into_future(),
    );
    let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    let held = [&ra, &rb].iter().filter(|r| matches!(r, Err(Error::Run(RunError::AlreadyRunning { .. })))).count();
    // Either both resumes overlap (one wins, one is refused), or the second found the run
    // finished and only replayed it; never do both execute.
    assert!(wins >= 1, "{ra:?} {rb:?}");
    assert_eq!(wins + held, 2, "{ra:?} {rb:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 4, "the model ran each turn once: {ra:?} {rb:?}");
    // The interrupted step (idempotent) ran again once; the others once.
    assert_eq!(executions.load(Ordering::SeqCst), 4, "{ra:?} {rb:?}");
}

async fn fork_from_a_checkpoint<S: SessionStore + Journal>(store: Arc<S>) {
    let (u, s) = (user(), session("original"));
    let calls = Arc::new(AtomicUsize::new(0));
    let executions = Arc::new(AtomicUsize::new(0));
    let agent = stepper_agent(Arc::clone(&store), &calls, &executions);
    let first = agent.run("do the job").user(u.clone()).session(s.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    let checkpoints = agent.checkpoints(&u, &s).await.unwrap_or_default();
    assert_eq!(checkpoints.iter().map(|c| c.label.as_str()).collect::<Vec<_>>(), ["turn 1", "turn 2", "turn 3"]);
    assert!(checkpoints.iter().all(|c| c.run == first.run_id));

    let fork = session("fork");
    let run = agent.branch(&u, &s, &checkpoints[0], &fork).await.unwrap_or_else(|e| panic!("{e}"));
    let calls_before = calls.load(Ordering::SeqCst);
    let forked = agent.resume(run).user(u.clone()).session(fork.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(forked.output, "done after 3 steps");
    // Turn 1 came from the journal; turns 2 to 4 ran.
    assert_eq!(calls.load(Ordering::SeqCst) - calls_before, 3);
    assert_eq!(store.load(&u, &fork, None).await.unwrap_or_default().len(), 8);
    assert_eq!(store.load(&u, &s, None).await.unwrap_or_default().len(), 8);
}

async fn a_corrupt_record_is_reported_with_its_position<S: SessionStore + Journal>(store: Arc<S>) {
    let (u, s) = (user(), session("damaged"));
    let calls = Arc::new(AtomicUsize::new(0));
    let executions = Arc::new(AtomicUsize::new(0));
    let agent = stepper_agent(Arc::clone(&store), &calls, &executions);
    let first = agent.run("do the job").user(u.clone()).session(s.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut records = store.records(&RunKey::new(u.clone(), s.clone(), first.run_id)).await.unwrap_or_default();
    assert_eq!(records.len(), FULL_RUN_APPENDS);
    let cut = records[3].bytes.len() / 2;
    records[3].bytes.truncate(cut);
    let damaged = RunKey::new(u.clone(), s.clone(), RunId::generate());
    store.import(&damaged, RunStatus::Running, records).await.unwrap_or_else(|e| panic!("{e}"));
    let read = store.read(&damaged).await.unwrap_or_default();
    assert_eq!(read.corrupt.iter().map(|c| c.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(read.entries.len(), FULL_RUN_APPENDS - 1);
    let err = agent.resume(damaged.run).user(u.clone()).session(s.clone()).await.err();
    assert!(
        matches!(&err, Some(Error::Run(RunError::JournalCorrupt { records, .. })) if records[0].seq == 3),
        "{err:?}"
    );
}

async fn a_thousand_sessions_write_at_once<S: SessionStore + Journal>(store: Arc<S>) {
    let u = user();
    let writes = (0..1000).map(|i| {
        let store = Arc::clone(&store);
        let u = u.clone();
        async move {
            let s = session(&format!("s{i}"));
            let run = RunId::generate();
            SessionStore::append(
                &*store,
                &u,
                &s,
                run,
                &[Message::user(format!("q{i}")), Message::assistant(format!("a{i}"))],
            )
            .await?;
            let key = RunKey::new(u.clone(), s, run);
            store.acquire(&key, "w", Duration::from_secs(30)).await?;
            for seq in 0..3 {
                let record = RawRecord::encode(seq, &JournalEntry::TurnFinished { turn: seq as u32 })?;
                Journal::append(&*store, &key, "w", Duration::from_secs(30), record).await?;
            }
            Ok::<_, StoreError>(key)
        }
    });
    let keys = futures::future::try_join_all(writes).await.unwrap_or_else(|e| panic!("{e}"));
    for (i, key) in keys.iter().enumerate() {
        let history = store.load(&u, &key.session, None).await.unwrap_or_default();
        assert_eq!(history, [Message::user(format!("q{i}")), Message::assistant(format!("a{i}"))]);
        assert_eq!(store.records(key).await.unwrap_or_default().len(), 3);
    }
    assert_eq!(store.sessions(&u).await.unwrap_or_default().len(), 1000);
}

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn append_and_read() {
                let Some(store) = super::$backend().await else { return };
                super::append_and_read(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn users_are_isolated() {
                let Some(store) = super::$backend().await else { return };
                super::users_are_isolated(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn resume_after_a_crash_at_every_step() {
                let Some(store) = super::$backend().await else { return };
                super::resume_after_a_crash_at_every_step(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn exactly_one_of_two_resumers_wins() {
                let Some(store) = super::$backend().await else { return };
                super::exactly_one_of_two_resumers_wins(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fork_from_a_checkpoint() {
                let Some(store) = super::$backend().await else { return };
                super::fork_from_a_checkpoint(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_corrupt_record_is_reported_with_its_position() {
                let Some(store) = super::$backend().await else { return };
                super::a_corrupt_record_is_reported_with_its_position(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_thousand_sessions_write_at_once() {
                let Some(store) = super::$backend().await else { return };
                super::a_thousand_sessions_write_at_once(store).await;
            }
        }
    };
}

conformance!(memory);
conformance!(sqlite);
conformance!(postgres);
