//! One suite, run against every store: in memory, SQLite, and PostgreSQL.
//!
//! The PostgreSQL tests need a server: they are `#[ignore]`d, so `cargo test` lists them as
//! ignored, and `.ci/run` starts PostgreSQL, sets `LOOM_TEST_POSTGRES_URL` and runs them with
//! `--include-ignored`. Run without the variable, they fail: they never pass by skipping.

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

/// How long the test runs' leases last: short, so a dead worker's runs free up quickly.
const LEASE: Duration = Duration::from_millis(150);

async fn memory() -> (Arc<InMemoryStore>, TempDb) {
    (Arc::new(InMemoryStore::new()), TempDb(None))
}

async fn sqlite() -> (Arc<SqliteStore>, TempDb) {
    let path = std::env::temp_dir().join(format!("{}.db", unique("loom-conformance")));
    let store = Arc::new(SqliteStore::open(&path).unwrap_or_else(|e| panic!("{e}")));
    (store, TempDb(Some(path)))
}

async fn postgres() -> (Arc<PostgresStore>, TempDb) {
    let url = common::postgres_url();
    (Arc::new(PostgresStore::connect(&url).await.unwrap_or_else(|e| panic!("{e}"))), TempDb(None))
}

/// A test database file, removed (with its WAL files) when the test ends.
struct TempDb(Option<std::path::PathBuf>);

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

/// A journal that stops answering after `after` appends: the process "dies" there, and
/// nothing more of it — no renewal, no release — reaches the store.
struct Stall<S> {
    inner: Arc<S>,
    after: usize,
    appends: AtomicUsize,
    stalled: Notify,
}

crate::forward_sessions!(generics [S: SessionStore + Journal] Stall<S>);

impl<S> Stall<S> {
    fn dead(&self) -> bool {
        self.appends.load(Ordering::SeqCst) > self.after
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
    async fn renew(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        if self.dead() {
            std::future::pending::<()>().await;
        }
        self.inner.renew(key, owner, ttl).await
    }
    async fn finish(&self, key: &RunKey, owner: &str, status: RunStatus) -> Result<(), StoreError> {
        if self.dead() {
            std::future::pending::<()>().await;
        }
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
        .lease(LEASE)
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

async fn users_are_isolated<S: SessionStore + Journal>(store: Arc<S>) -> Result<(), StoreError> {
    let (alice, bob, s) = (user(), user(), session("shared"));
    SessionStore::append(&*store, &alice, &s, RunId::generate(), &[Message::user("alice's secret")]).await?;
    let run = RunId::generate();
    let key = RunKey::new(alice.clone(), s.clone(), run);
    store.acquire(&key, "w", Duration::from_secs(30)).await?;
    Journal::append(&*store, &key, "w", Duration::from_secs(30), RawRecord::encode(0, &JournalEntry::RunFinished)?)
        .await?;
    // The owner reads it all back...
    assert_eq!(store.load(&alice, &s, None).await?, [Message::user("alice's secret")]);
    assert_eq!(store.sessions(&alice).await?, std::slice::from_ref(&s));
    assert_eq!(store.records(&key).await?.len(), 1);
    assert_eq!(store.runs(&alice, &s).await?.len(), 1);
    // ...and another user, with the same session and run ids, reads nothing.
    assert!(store.load(&bob, &s, None).await?.is_empty());
    assert!(store.sessions(&bob).await?.is_empty());
    let bobs_view = RunKey::new(bob.clone(), s.clone(), run);
    assert!(store.records(&bobs_view).await?.is_empty());
    assert!(store.runs(&bob, &s).await?.is_empty());
    // Nor can he write into alice's run, or clear her session.
    let err = Journal::append(
        &*store,
        &bobs_view,
        "w",
        Duration::from_secs(30),
        RawRecord::encode(1, &JournalEntry::RunFinished)?,
    )
    .await;
    assert!(err.is_err(), "bob wrote into a run he does not hold");
    assert!(!store.clear(&bob, &s).await?);
    assert_eq!(store.load(&alice, &s, None).await?.len(), 1);
    Ok(())
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
        // The dead worker's lease runs out; then the run is free.
        let result = common::when_free(|| {
            resumer.resume_with(AgentInput::resume_latest()).user(u.clone()).session(s.clone()).into_future()
        })
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
    let run = store.runs(&u, &s).await.unwrap_or_default().first().map(|r| r.run).unwrap_or_else(RunId::generate);
    // The dead worker's lease runs out first.
    tokio::time::sleep(LEASE * 2).await;
    // Two workers, each on a task of its own (on the runtime's two threads), start at once.
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let worker = |store: Arc<S>| {
        let (calls, executions, start, u, s) =
            (Arc::clone(&calls), Arc::clone(&executions), Arc::clone(&start), u.clone(), s.clone());
        tokio::spawn(async move {
            let agent = stepper_agent(store, &calls, &executions).lease(Duration::from_secs(30));
            start.wait().await;
            agent.resume(run).user(u).session(s).await
        })
    };
    let (a, b) = (worker(Arc::clone(&store)), worker(Arc::clone(&store)));
    let ra = a.await.unwrap_or_else(|e| panic!("worker a: {e}"));
    let rb = b.await.unwrap_or_else(|e| panic!("worker b: {e}"));
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

/// A slow step (three leases long), or one that hangs the first time it runs.
struct Slow {
    started: Notify,
    hang_once: std::sync::atomic::AtomicBool,
    runs: AtomicUsize,
}

/// Do the slow step (safe to repeat).
#[tool(idempotent)]
async fn slow_step(slow: State<Slow>) -> String {
    slow.runs.fetch_add(1, Ordering::SeqCst);
    slow.started.notify_one();
    if slow.hang_once.swap(false, Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(LEASE * 3).await;
    "slow step done".to_owned()
}

fn slow_agent<S: SessionStore + Journal>(store: Arc<S>, slow: &Arc<Slow>, lease: Duration) -> Agent {
    let model = ScriptedModel::from_fn(|req| {
        if req.last_is_tool_result() {
            ScriptedTurn::text("done")
        } else {
            ScriptedTurn::tool_call("slow_step", json!({}))
        }
    });
    Agent::new("Do the slow step.")
        .model(model)
        .tool(SlowStepTool)
        .state_arc(Arc::clone(slow))
        .store(store)
        .lease(lease)
}

fn slow(hang_once: bool) -> Arc<Slow> {
    Arc::new(Slow {
        started: Notify::new(),
        hang_once: std::sync::atomic::AtomicBool::new(hang_once),
        runs: AtomicUsize::new(0),
    })
}

async fn a_live_run_keeps_its_lease_and_a_dead_one_loses_it<S: SessionStore + Journal>(store: Arc<S>) {
    let (u, s) = (user(), session("leases"));
    // A step three leases long: the heartbeat keeps the lease, and no other worker gets in.
    let live = slow(false);
    let agent = slow_agent(Arc::clone(&store), &live, LEASE);
    let mut run = Box::pin(agent.run("go").user(u.clone()).session(s.clone()).into_future());
    tokio::select! {
        r = &mut run => panic!("the step is slow: {r:?}"),
        () = live.started.notified() => {}
    }
    let id = store.runs(&u, &s).await.unwrap_or_default().first().map(|r| r.run).unwrap_or_else(RunId::generate);
    let other = slow_agent(Arc::clone(&store), &slow(false), LEASE);
    let attempts = async {
        for _ in 0..5 {
            tokio::time::sleep(LEASE / 2).await;
            let taken = other.resume(id).user(u.clone()).session(s.clone()).await;
            assert!(matches!(taken, Err(Error::Run(RunError::AlreadyRunning { .. }))), "{taken:?}");
        }
    };
    let (result, ()) = tokio::join!(&mut run, attempts);
    assert_eq!(result.unwrap_or_else(|e| panic!("{e}")).output, "done");
    assert_eq!(live.runs.load(Ordering::SeqCst), 1);

    // A worker that dies (nothing of it runs any more: no heartbeat, no release) loses the run
    // once its lease has passed, and no sooner.
    let (u, s) = (user(), session("dead"));
    let dying = slow(true);
    let agent = slow_agent(Arc::clone(&store), &dying, LEASE);
    let mut run = Box::pin(agent.run("go").user(u.clone()).session(s.clone()).into_future());
    tokio::select! {
        r = &mut run => panic!("the step hangs: {r:?}"),
        () = dying.started.notified() => {}
    }
    std::mem::forget(run);
    let id = store.runs(&u, &s).await.unwrap_or_default().first().map(|r| r.run).unwrap_or_else(RunId::generate);
    let taken = agent.resume(id).user(u.clone()).session(s.clone()).await;
    assert!(matches!(taken, Err(Error::Run(RunError::AlreadyRunning { .. }))), "taken over too soon: {taken:?}");
    tokio::time::sleep(LEASE + LEASE / 2).await;
    let result = agent.resume(id).user(u.clone()).session(s.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.output, "done");
    // The interrupted step (idempotent) ran again, once.
    assert_eq!(dying.runs.load(Ordering::SeqCst), 2);
}

async fn a_dropped_run_gives_its_lease_back<S: SessionStore + Journal>(store: Arc<S>) {
    let (u, s) = (user(), session("dropped"));
    let hanging = slow(true);
    // A long lease: only the release on drop can free the run this quickly.
    let agent = slow_agent(Arc::clone(&store), &hanging, Duration::from_secs(60));
    {
        let mut run = Box::pin(agent.run("go").user(u.clone()).session(s.clone()).into_future());
        tokio::select! {
            r = &mut run => panic!("the step hangs: {r:?}"),
            () = hanging.started.notified() => {}
        }
    }
    let started = std::time::Instant::now();
    let info = loop {
        let info = store.runs(&u, &s).await.unwrap_or_default().into_iter().next();
        match info {
            Some(i) if i.lease_until_ms.is_some() && started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => break other,
        }
    };
    let info = info.unwrap_or_else(|| panic!("the run is gone"));
    assert_eq!((info.status, info.lease_until_ms), (RunStatus::Running, None), "the lease was not given back");
    let result = agent.resume(info.run).user(u.clone()).session(s.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.output, "done");
}

async fn resume_and_branch_see_the_same_history_window<S: SessionStore + Journal>(store: Arc<S>) {
    let (u, s) = (user(), session("window"));
    // Six earlier turns: twelve messages of history.
    for i in 0..6 {
        let turn = [Message::user(format!("old question {i}")), Message::assistant(format!("old answer {i}"))];
        SessionStore::append(&*store, &u, &s, RunId::generate(), &turn).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let model = ScriptedModel::from_fn(|req| {
        if req.last_is_tool_result() {
            ScriptedTurn::text("done")
        } else {
            ScriptedTurn::tool_call("step", json!({"n": 1}))
        }
    });
    let executions = Arc::new(AtomicUsize::new(0));
    let agent = Agent::new("Do it.")
        .model(model.clone())
        .tool(StepTool)
        .state(Counter(Arc::clone(&executions)))
        .store(Arc::clone(&store))
        .history_limit(4)
        .lease(LEASE);
    let first = agent.run("new question").user(u.clone()).session(s.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    let seen = |request: &loomflow::model::RecordedRequest| -> Vec<String> {
        request
            .messages
            .iter()
            .filter(|m| !matches!(m, Message::System { .. }))
            .map(|m| m.text().into_owned())
            .collect()
    };
    let original = seen(&model.requests()[0]);
    assert_eq!(original[0], "old question 4", "the window is the last four messages");

    // Resumed (from its first checkpoint), the run sees the same window: not the oldest four.
    let checkpoints = agent.checkpoints(&u, &s).await.unwrap_or_default();
    let into = session("window-branch");
    let run = agent.branch(&u, &s, &checkpoints[0], &into).await.unwrap_or_else(|e| panic!("{e}"));
    let before = model.requests().len();
    agent.resume(run).user(u.clone()).session(into.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    let resumed = seen(&model.requests()[before]);
    assert_eq!(resumed[..4], original[..4], "branched: {resumed:?}");
    // The branch copied the session up to where the window ended, not its oldest messages.
    let copied = store.load(&u, &into, None).await.unwrap_or_default();
    assert_eq!(copied.len(), 12 + 4);
    assert!(first.output == "done");
}

async fn clearing_a_session_erases_it_everywhere<S: SessionStore + Journal>(store: Arc<S>) {
    let (u, other, s) = (user(), user(), session("to-forget"));
    let calls = Arc::new(AtomicUsize::new(0));
    let executions = Arc::new(AtomicUsize::new(0));
    let agent = stepper_agent(Arc::clone(&store), &calls, &executions);
    agent.run("job").user(u.clone()).session(s.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    // A nested run's sub-session, and another user's session of the same name.
    let sub = s.sub("node");
    agent.run("job").user(u.clone()).session(sub.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    agent.run("job").user(other.clone()).session(s.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    // A session whose name only starts the same way is another session.
    let neighbour = session("to-forget-not");
    agent.run("job").user(u.clone()).session(neighbour.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    let runs = store.runs(&u, &s).await.unwrap_or_default();
    assert_eq!(runs.len(), 1);
    let key = RunKey::new(u.clone(), s.clone(), runs[0].run);

    assert!(store.clear(&u, &s).await.unwrap_or_else(|e| panic!("{e}")));
    for session in [&s, &sub] {
        assert!(store.load(&u, session, None).await.unwrap_or_default().is_empty());
        assert!(store.runs(&u, session).await.unwrap_or_default().is_empty());
        assert!(store.checkpoints(&u, session).await.unwrap_or_default().is_empty());
    }
    assert!(store.records(&key).await.unwrap_or_default().is_empty());
    assert!(!store.sessions(&u).await.unwrap_or_default().contains(&s));
    // Untouched: the other user, and the neighbouring session.
    assert_eq!(store.load(&other, &s, None).await.unwrap_or_default().len(), 8);
    assert_eq!(store.runs(&other, &s).await.unwrap_or_default().len(), 1);
    assert_eq!(store.load(&u, &neighbour, None).await.unwrap_or_default().len(), 8);
    assert!(!store.clear(&u, &s).await.unwrap_or_else(|e| panic!("{e}")));
}

async fn a_torn_last_record_is_repaired_and_a_gap_is_reported<S: SessionStore + Journal>(store: Arc<S>) {
    let (u, s) = (user(), session("torn"));
    let calls = Arc::new(AtomicUsize::new(0));
    let executions = Arc::new(AtomicUsize::new(0));
    let agent = stepper_agent(Arc::clone(&store), &calls, &executions);
    // A crash after five appends: the journal ends at the second model turn's tool start.
    let stall =
        Arc::new(Stall { inner: Arc::clone(&store), after: 6, appends: AtomicUsize::new(0), stalled: Notify::new() });
    {
        let crashing = stepper_agent(Arc::clone(&stall), &calls, &executions);
        let mut run = Box::pin(crashing.run("job").user(u.clone()).session(s.clone()).into_future());
        tokio::select! {
            r = &mut run => panic!("should stall: {r:?}"),
            () = stall.stalled.notified() => {}
        }
        std::mem::forget(run);
    }
    let run = store.runs(&u, &s).await.unwrap_or_default()[0].run;
    let key = RunKey::new(u.clone(), s.clone(), run);
    tokio::time::sleep(LEASE * 2).await;
    // The last record is torn, as a power loss would leave it.
    let mut records = store.records(&key).await.unwrap_or_default();
    let last = records.len() - 1;
    let cut = records[last].bytes.len() / 3;
    records[last].bytes.truncate(cut);
    store.import(&key, RunStatus::Running, records.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    let err = agent.resume(run).user(u.clone()).session(s.clone()).await.err();
    assert!(
        matches!(&err, Some(Error::Run(RunError::JournalCorrupt { records: bad, .. })) if bad[0].seq == last as u64),
        "{err:?}"
    );
    let repair = store.repair(&key).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((repair.kept, repair.dropped.iter().map(|c| c.seq).collect::<Vec<_>>()), (last, vec![last as u64]));
    let result = agent.resume(run).user(u.clone()).session(s.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(result.output, "done after 3 steps");

    // A record missing in the middle is reported by its position, and is not repaired away.
    let (u, s) = (user(), session("gap"));
    let first = agent.run("job").user(u.clone()).session(s.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    let key = RunKey::new(u.clone(), s.clone(), first.run_id);
    let mut records = store.records(&key).await.unwrap_or_default();
    records.remove(4);
    let gapped = RunKey::new(u.clone(), s.clone(), RunId::generate());
    store.import(&gapped, RunStatus::Running, records).await.unwrap_or_else(|e| panic!("{e}"));
    let read = store.read(&gapped).await.unwrap_or_default();
    assert_eq!(read.corrupt.iter().map(|c| c.seq).collect::<Vec<_>>(), [4]);
    assert!(read.corrupt[0].error.contains("missing"), "{:?}", read.corrupt);
    let refused = store.repair(&gapped).await.err();
    assert_eq!(refused.map(|e| e.kind()), Some(StoreErrorKind::Corrupt));
}

macro_rules! conformance {
    ($backend:ident $(, $ignore:meta)?) => {
        mod $backend {
            use super::*;

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn append_and_read() {
                let (store, _db) = super::$backend().await;
                super::append_and_read(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn users_are_isolated() -> Result<(), StoreError> {
                let (store, _db) = super::$backend().await;
                super::users_are_isolated(store).await
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn resume_after_a_crash_at_every_step() {
                let (store, _db) = super::$backend().await;
                super::resume_after_a_crash_at_every_step(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn exactly_one_of_two_resumers_wins() {
                let (store, _db) = super::$backend().await;
                super::exactly_one_of_two_resumers_wins(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fork_from_a_checkpoint() {
                let (store, _db) = super::$backend().await;
                super::fork_from_a_checkpoint(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_corrupt_record_is_reported_with_its_position() {
                let (store, _db) = super::$backend().await;
                super::a_corrupt_record_is_reported_with_its_position(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_thousand_sessions_write_at_once() {
                let (store, _db) = super::$backend().await;
                super::a_thousand_sessions_write_at_once(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_live_run_keeps_its_lease_and_a_dead_one_loses_it() {
                let (store, _db) = super::$backend().await;
                super::a_live_run_keeps_its_lease_and_a_dead_one_loses_it(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_dropped_run_gives_its_lease_back() {
                let (store, _db) = super::$backend().await;
                super::a_dropped_run_gives_its_lease_back(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn resume_and_branch_see_the_same_history_window() {
                let (store, _db) = super::$backend().await;
                super::resume_and_branch_see_the_same_history_window(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn clearing_a_session_erases_it_everywhere() {
                let (store, _db) = super::$backend().await;
                super::clearing_a_session_erases_it_everywhere(store).await;
            }

            $(#[$ignore])?
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_torn_last_record_is_repaired_and_a_gap_is_reported() {
                let (store, _db) = super::$backend().await;
                super::a_torn_last_record_is_repaired_and_a_gap_is_reported(store).await;
            }
        }
    };
}

conformance!(memory);
conformance!(sqlite);
conformance!(postgres, ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)");
