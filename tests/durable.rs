//! Journaled runs: interrupted tool calls, replay, schema versions.

mod common;

use std::future::IntoFuture as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loomflow::agent::{AgentInput, ToolDecision};
use loomflow::prelude::*;
use loomflow::session::{
    InMemoryStore, Journal, JournalEntry, RawRecord, RunInfo, RunKey, RunStatus, SessionStore, SqliteStore,
};
use loomflow::workflow::{ChildSessions, NodeDecision, WorkflowInput};
use loomflow::{StoreError, StoreErrorKind};
use serde_json::json;
use tokio::sync::Notify;

struct Bank {
    charges: AtomicUsize,
    entered: Notify,
    hold: bool,
}

/// Charge the customer's card (not safe to repeat).
#[tool(destructive)]
async fn charge(bank: State<Bank>, cents: u32) -> String {
    bank.charges.fetch_add(1, Ordering::SeqCst);
    bank.entered.notify_one();
    if bank.hold {
        // The process dies during the charge.
        std::future::pending::<()>().await;
    }
    format!("charged {cents}")
}

fn script() -> ScriptedModel {
    ScriptedModel::from_fn(|req| {
        if req.last_is_tool_result() {
            ScriptedTurn::text(format!(
                "Done: {}",
                req.messages.last().map(|m| m.text().into_owned()).unwrap_or_default()
            ))
        } else {
            ScriptedTurn::tool_call("charge", json!({"cents": 500}))
        }
    })
}

fn agent(store: &Arc<InMemoryStore>, hold: bool) -> (Agent, Arc<Bank>) {
    let bank = Arc::new(Bank { charges: AtomicUsize::new(0), entered: Notify::new(), hold });
    let agent = Agent::new("Charge the customer.")
        .model(script())
        .tool(ChargeTool)
        .state_arc(Arc::clone(&bank))
        .store(Arc::clone(store))
        .lease(Duration::from_millis(200));
    (agent, bank)
}

#[tokio::test]
async fn an_interrupted_destructive_call_waits_for_a_decision() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let (crashing, bank) = agent(&store, true);
    {
        let mut run = Box::pin(crashing.run("charge 5 dollars").user("u").session("s").into_future());
        tokio::select! {
            r = &mut run => anyhow::bail!("cannot finish: {r:?}"),
            () = bank.entered.notified() => {}
        }
    }
    assert_eq!(bank.charges.load(Ordering::SeqCst), 1);

    let (resumer, bank2) = agent(&store, false);
    // The dropped run gives its lease back as soon as the runtime gets to it.
    let err =
        common::when_free(|| resumer.resume_with(AgentInput::resume_latest()).user("u").session("s").into_future())
            .await
            .err();
    let Some(Error::Run(RunError::NeedsDecision { call_id, tool, run_id })) = err else {
        anyhow::bail!("expected a decision to be needed, got {err:?}");
    };
    assert_eq!((call_id.as_str(), tool.as_str()), ("call_1", "charge"));
    // Nothing ran again.
    assert_eq!(bank2.charges.load(Ordering::SeqCst), 0);

    // The operator checked: the charge went through.
    let result = resumer
        .resume_with(AgentInput::resume(run_id).decide("call_1", ToolDecision::Result("charged 500".into())))
        .user("u")
        .session("s")
        .await?;
    assert_eq!(result.output, "Done: charged 500");
    assert_eq!(bank2.charges.load(Ordering::SeqCst), 0);
    Ok(())
}

#[tokio::test]
async fn a_finished_run_replays_without_calling_anything() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let (agent, bank) = agent(&store, false);
    let first = agent.run("charge").user("u").session("s").await?;
    let recorder = common::Recorder::new();
    let again = agent.resume(first.run_id).user("u").session("s").on_event(recorder.listener()).await?;
    assert_eq!(again.output, first.output);
    assert_eq!(again.usage, first.usage);
    assert_eq!(bank.charges.load(Ordering::SeqCst), 1);
    let replayed: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::StepReplayed { step } => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!(replayed, ["model turn 1", "tool charge (call_1)", "model turn 2"]);
    assert!(!recorder.kinds().contains(&"model_request"));
    // The conversation was saved once.
    let history = store.load(&UserId::new("u")?, &SessionId::new("s")?, None).await?;
    assert_eq!(history.len(), 4);
    Ok(())
}

#[tokio::test]
async fn resuming_needs_a_journal_and_a_session() {
    let plain = Agent::new("x").model("echo");
    assert!(matches!(plain.resume(RunId::generate()).user("u").session("s").await, Err(Error::Config(_))));
    let store = Arc::new(InMemoryStore::new());
    let durable = Agent::new("x").model("echo").store(store);
    assert!(matches!(durable.resume(RunId::generate()).user("u").await, Err(Error::Config(_))));
    assert!(matches!(
        durable.resume_latest().user("u").session("s").await,
        Err(Error::Run(RunError::NotResumable { .. }))
    ));
}

#[tokio::test]
async fn resuming_a_run_the_session_does_not_have_writes_nothing() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let (agent, _) = agent(&store, false);
    let unknown = agent.resume(RunId::generate()).user("u").session("s").await;
    assert!(matches!(unknown, Err(Error::Run(RunError::NotResumable { .. }))), "{unknown:?}");
    // No run was made up: the session still has none to resume, and a real one runs.
    let (u, s) = (UserId::new("u")?, SessionId::new("s")?);
    assert!(store.runs(&u, &s).await?.is_empty());
    let result = agent.run("charge").user("u").session("s").await?;
    assert_eq!(store.runs(&u, &s).await?.len(), 1);
    // A finished run resumed again is only replayed, and stays finished.
    let again = agent.resume(result.run_id).user("u").session("s").await?;
    assert_eq!(again.output, result.output);
    assert_eq!(store.runs(&u, &s).await?.first().map(|r| r.status), Some(RunStatus::Finished));
    Ok(())
}

#[tokio::test]
async fn every_step_is_journaled_before_the_run_goes_on() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let (agent, _) = agent(&store, false);
    let result = agent.run("charge").user("u").session("s").await?;
    let read = store.read(&RunKey::new(UserId::new("u")?, SessionId::new("s")?, result.run_id)).await?;
    let kinds: Vec<&str> = read
        .entries
        .iter()
        .map(|(_, e)| match e {
            JournalEntry::RunStarted { .. } => "run_started",
            JournalEntry::ModelResponse { .. } => "model",
            JournalEntry::ToolStarted { .. } => "tool_started",
            JournalEntry::ToolFinished { .. } => "tool_finished",
            JournalEntry::TurnFinished { .. } => "turn",
            JournalEntry::RunFinished => "run_finished",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["run_started", "model", "tool_started", "tool_finished", "turn", "model", "run_finished"]);
    Ok(())
}

#[test]
fn a_database_from_a_newer_loom_is_refused() -> anyhow::Result<()> {
    let path = std::env::temp_dir().join(format!("loom-newer-{}.db", RunId::generate()));
    drop(SqliteStore::open(&path)?);
    let conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "user_version", 99)?;
    drop(conn);
    let err = SqliteStore::open(&path).err();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert_eq!(err.as_ref().map(|e| e.kind()), Some(StoreErrorKind::Incompatible));
    assert!(err.is_some_and(|e| e.to_string().contains("schema v99, written by a newer Loom")));
    Ok(())
}

#[tokio::test]
#[ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)"]
async fn a_postgres_database_from_a_newer_loom_is_refused() -> anyhow::Result<()> {
    let url = common::postgres_url();
    // A database of its own, so other tests keep their schema.
    let admin = loomflow::session::PostgresStore::connect(&url).await?;
    let db = format!("loom_newer_{}", RunId::generate().to_string().to_lowercase());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(admin.pool()).await?;
    let db_url = match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => anyhow::bail!("no database in {url}"),
    };
    let store = loomflow::session::PostgresStore::connect(&db_url).await?;
    sqlx::query("UPDATE loom_meta SET value = '99' WHERE key = 'schema_version'").execute(store.pool()).await?;
    store.pool().close().await;
    let err = loomflow::session::PostgresStore::connect(&db_url).await.err();
    assert_eq!(err.as_ref().map(|e| e.kind()), Some(StoreErrorKind::Incompatible), "{err:?}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)"))).execute(admin.pool()).await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Draft {
    text: String,
    revisions: u32,
}

enum Verdict {
    Publish(Draft),
    Revise(Draft),
}

struct Newsroom {
    drafted: AtomicUsize,
    reviewed: AtomicUsize,
    stall_in_review: std::sync::atomic::AtomicBool,
    stalled: Arc<Notify>,
}

#[workflow]
impl Newsroom {
    #[node(start, next = review)]
    async fn draft(&self, topic: String) -> Draft {
        self.drafted.fetch_add(1, Ordering::SeqCst);
        Draft { text: format!("on {topic}"), revisions: 0 }
    }

    #[node(route = { Verdict::Publish => publish, Verdict::Revise => revise }, idempotent)]
    async fn review(&self, draft: Draft) -> Verdict {
        let n = self.reviewed.fetch_add(1, Ordering::SeqCst);
        if n == 1 && self.stall_in_review.load(Ordering::SeqCst) {
            // The process dies during the second review.
            self.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        if draft.revisions >= 2 { Verdict::Publish(draft) } else { Verdict::Revise(draft) }
    }

    #[node(next = review, max_visits = 5)]
    async fn revise(&self, draft: Draft) -> Draft {
        Draft { text: format!("{} +", draft.text), revisions: draft.revisions + 1 }
    }

    #[node]
    async fn publish(&self, draft: Draft) -> String {
        format!("{} ({} revisions)", draft.text, draft.revisions)
    }
}

fn newsroom(stall: bool, stalled: &Arc<Notify>) -> Newsroom {
    Newsroom {
        drafted: AtomicUsize::new(0),
        reviewed: AtomicUsize::new(0),
        stall_in_review: std::sync::atomic::AtomicBool::new(stall),
        stalled: Arc::clone(stalled),
    }
}

#[tokio::test]
async fn a_workflow_resumes_after_its_last_finished_node_with_typed_state() -> anyhow::Result<()> {
    let store = Arc::new(SqliteStore::in_memory()?);
    let stalled = Arc::new(Notify::new());
    let wf = newsroom(true, &stalled).into_workflow().store(Arc::clone(&store)).lease(Duration::from_millis(200));
    {
        let mut run = Box::pin(wf.run("looms".to_owned()).user("u").session("news").into_future());
        tokio::select! {
            r = &mut run => anyhow::bail!("the first run should hang in its second review: {r:?}"),
            () = stalled.notified() => {}
        }
        // The process dies here.
    }

    // Another process: the same graph, a new value.
    let wf2 = newsroom(false, &stalled).into_workflow().store(Arc::clone(&store)).lease(Duration::from_millis(200));
    let recorder = common::Recorder::new();
    let result =
        common::when_free(|| wf2.resume_latest().user("u").session("news").on_event(recorder.listener()).into_future())
            .await?;
    assert_eq!(result.output, "on looms + + (2 revisions)");
    // The run resumed right after `revise`: the draft was not written again, and the
    // visits before the crash count in `visited`.
    assert_eq!(result.visited, ["draft", "review", "revise", "review", "revise", "review", "publish"]);
    let replayed: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::StepReplayed { step } => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!(replayed, ["node draft", "node review", "node revise"]);
    Ok(())
}

#[test]
fn a_zero_lease_is_refused_before_any_run() {
    let store = Arc::new(InMemoryStore::new());
    let agent = Agent::new("x").model("echo").store(Arc::clone(&store)).lease(Duration::ZERO);
    assert!(matches!(agent.check(), Err(ConfigError::InvalidSetting { setting: "lease", .. })));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let wf = Workflow::chain((|s: String| async move { s },)).store(store).lease(Duration::ZERO);
    let err = rt.block_on(wf.run("x".to_owned()).user("u").session("s").into_future()).err();
    assert!(matches!(err, Some(Error::Config(ConfigError::InvalidSetting { setting: "lease", .. }))), "{err:?}");
}

/// The billing agent's tools, counting what really ran.
struct Ledger {
    lookups: AtomicUsize,
    charges: AtomicUsize,
}

/// Look the invoice up.
#[tool(read_only)]
fn lookup(ledger: State<Ledger>) -> String {
    ledger.lookups.fetch_add(1, Ordering::SeqCst);
    "invoice 42: 5 dollars".to_owned()
}

/// Charge the card (not safe to repeat).
#[tool(destructive)]
fn charge_card(ledger: State<Ledger>) -> String {
    ledger.charges.fetch_add(1, Ordering::SeqCst);
    "charged".to_owned()
}

fn billing(store: &Arc<InMemoryStore>, ledger: &Arc<Ledger>, model_calls: &Arc<AtomicUsize>) -> Agent {
    let calls = Arc::clone(model_calls);
    let model = ScriptedModel::from_fn(move |req| {
        calls.fetch_add(1, Ordering::SeqCst);
        match req.messages.iter().filter(|m| matches!(m, Message::Tool(_))).count() {
            0 => ScriptedTurn::tool_call("lookup", json!({})),
            1 => ScriptedTurn::tool_call("charge_card", json!({})),
            _ => ScriptedTurn::text("paid"),
        }
    });
    Agent::new("Bill the customer.")
        .name("billing")
        .model(model)
        .tool(LookupTool)
        .tool(ChargeCardTool)
        .state_arc(Arc::clone(ledger))
        .store(Arc::clone(store))
}

#[tokio::test]
async fn a_nested_agent_is_replayed_not_run_again_when_its_workflow_resumes() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let ledger = Arc::new(Ledger { lookups: AtomicUsize::new(0), charges: AtomicUsize::new(0) });
    let model_calls = Arc::new(AtomicUsize::new(0));
    let receipt_hang = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let entered = Arc::new(Notify::new());
    let (hang, seen) = (Arc::clone(&receipt_hang), Arc::clone(&entered));
    // The process dies while the receipt is written, after the agent finished its work.
    let receipt = move |paid: String| {
        let (hang, seen) = (Arc::clone(&hang), Arc::clone(&seen));
        async move {
            if hang.swap(false, Ordering::SeqCst) {
                seen.notify_one();
                std::future::pending::<()>().await;
            }
            format!("receipt: {paid}")
        }
    };
    let wf = Workflow::chain((billing(&store, &ledger, &model_calls), receipt))
        .store(Arc::clone(&store))
        .lease(Duration::from_millis(200));
    {
        let mut run = Box::pin(wf.run("bill".to_owned()).user("u").session("s").into_future());
        tokio::select! {
            r = &mut run => anyhow::bail!("the receipt hangs: {r:?}"),
            () = entered.notified() => {}
        }
    }
    assert_eq!((ledger.lookups.load(Ordering::SeqCst), ledger.charges.load(Ordering::SeqCst)), (1, 1));
    let calls_before = model_calls.load(Ordering::SeqCst);

    // The receipt node is a plain function: running it again needs a decision.
    let err = common::when_free(|| wf.resume_latest().user("u").session("s").into_future()).await.err();
    assert!(matches!(&err, Some(Error::Run(RunError::NodeNeedsDecision { node, .. })) if node == "step_1"), "{err:?}");
    let recorder = common::Recorder::new();
    let result = wf
        .resume_with(WorkflowInput::resume_latest().decide("step_1", NodeDecision::Rerun))
        .user("u")
        .session("s")
        .on_event(recorder.listener())
        .await?;
    assert_eq!(result.output, "receipt: paid");
    // The agent ran again as a node, but its journal replayed every call: nothing was looked
    // up, charged or asked of the model a second time.
    assert_eq!((ledger.lookups.load(Ordering::SeqCst), ledger.charges.load(Ordering::SeqCst)), (1, 1));
    assert_eq!(model_calls.load(Ordering::SeqCst), calls_before);
    let replayed = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::StepReplayed { step } => Some(step),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert!(replayed.iter().any(|s| s == "tool charge_card (call_1)"), "{replayed:?}");
    // The agent's conversation is the node's sub-session of the workflow's session.
    let (u, s) = (UserId::new("u")?, SessionId::new("s")?);
    assert_eq!(store.load(&u, &s.sub("billing"), None).await?.len(), 6);
    assert!(store.load(&u, &s, None).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn nested_runs_follow_the_workflows_session_rule() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let (u, s) = (UserId::new("u")?, SessionId::new("s")?);
    let echo = || Agent::new("Repeat.").name("echo").model("echo").sessions(store.clone() as Arc<dyn SessionStore>);
    for (rule, expect_shared, expect_sub) in
        [(ChildSessions::PerNode, 0, 2), (ChildSessions::Shared, 2, 0), (ChildSessions::None, 0, 0)]
    {
        store.clear(&u, &s).await?;
        let wf = Workflow::chain((echo(),)).child_sessions(rule);
        wf.run("hi".to_owned()).user("u").session("s").await?;
        assert_eq!(store.load(&u, &s, None).await?.len(), expect_shared, "{rule:?}");
        assert_eq!(store.load(&u, &s.sub("echo"), None).await?.len(), expect_sub, "{rule:?}");
    }
    Ok(())
}

#[tokio::test]
async fn an_interrupted_node_that_is_not_idempotent_waits_for_a_decision() -> anyhow::Result<()> {
    let store = Arc::new(SqliteStore::in_memory()?);
    let sent = Arc::new(AtomicUsize::new(0));
    let hang = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let entered = Arc::new(Notify::new());
    let build = || {
        let (sent, hang, entered) = (Arc::clone(&sent), Arc::clone(&hang), Arc::clone(&entered));
        let mut b = Workflow::builder("mailer");
        let prepare = b.node("prepare", |s: String| async move { format!("mail: {s}") });
        let send = b.node("send", move |mail: String| {
            let (sent, hang, entered) = (Arc::clone(&sent), Arc::clone(&hang), Arc::clone(&entered));
            async move {
                sent.fetch_add(1, Ordering::SeqCst);
                if hang.swap(false, Ordering::SeqCst) {
                    entered.notify_one();
                    std::future::pending::<()>().await;
                }
                format!("sent {mail}")
            }
        });
        // Preparing is pure: safe to run again. Sending is not.
        b.idempotent(prepare);
        b.start(prepare);
        b.edge(prepare, send);
        b.build::<String, String>().map(|w| w.store(Arc::clone(&store)).lease(Duration::from_millis(200)))
    };
    let wf = build()?;
    {
        let mut run = Box::pin(wf.run("hello".to_owned()).user("u").session("m").into_future());
        tokio::select! {
            r = &mut run => anyhow::bail!("send hangs: {r:?}"),
            () = entered.notified() => {}
        }
    }
    let err = common::when_free(|| wf.resume_latest().user("u").session("m").into_future()).await.err();
    assert!(matches!(&err, Some(Error::Run(RunError::NodeNeedsDecision { node, .. })) if node == "send"), "{err:?}");
    assert_eq!(sent.load(Ordering::SeqCst), 1, "not sent again without a decision");
    let failed = wf
        .resume_with(
            WorkflowInput::resume_latest()
                .decide("send", NodeDecision::Fail("the mail server says it went out".into())),
        )
        .user("u")
        .session("m")
        .await
        .err();
    assert!(failed.as_ref().is_some_and(|e| e.to_string().contains("the mail server says")), "{failed:?}");
    assert_eq!(sent.load(Ordering::SeqCst), 1);
    Ok(())
}

/// A journal that refuses the `n`-th append (counting from 0) as a lost lease.
struct RefuseAppend {
    inner: Arc<InMemoryStore>,
    refuse: usize,
    appends: AtomicUsize,
}

#[async_trait]
impl Journal for RefuseAppend {
    async fn acquire(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        self.inner.acquire(key, owner, ttl).await
    }
    async fn append(&self, key: &RunKey, owner: &str, ttl: Duration, record: RawRecord) -> Result<(), StoreError> {
        if self.appends.fetch_add(1, Ordering::SeqCst) == self.refuse {
            return Err(StoreError::new(StoreErrorKind::Conflict, "test", "another worker took the run"));
        }
        Journal::append(&*self.inner, key, owner, ttl, record).await
    }
    async fn renew(&self, key: &RunKey, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        self.inner.renew(key, owner, ttl).await
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

crate::forward_sessions!(RefuseAppend);

#[tokio::test]
async fn a_run_whose_last_record_is_refused_has_not_finished() -> anyhow::Result<()> {
    // A chain of two: started, two nodes (started, finished), then the refused end (append 5).
    let journal =
        Arc::new(RefuseAppend { inner: Arc::new(InMemoryStore::new()), refuse: 5, appends: AtomicUsize::new(0) });
    let wf = Workflow::chain((|s: String| async move { s + "a" }, |s: String| async move { s + "b" })).store(journal);
    let err = wf.run("x".to_owned()).user("u").session("s").await.err();
    assert!(matches!(err, Some(Error::Run(RunError::LeaseLost { .. }))), "{err:?}");

    // An agent: started, the model's answer, then the refused end (append 2).
    let journal =
        Arc::new(RefuseAppend { inner: Arc::new(InMemoryStore::new()), refuse: 2, appends: AtomicUsize::new(0) });
    let agent = Agent::new("x").model("echo").store(journal);
    let err = agent.run("hi").user("u").session("s").await.err();
    assert!(matches!(err, Some(Error::Run(RunError::LeaseLost { .. }))), "{err:?}");
    Ok(())
}

/// Count to a hundred, slowly; says when it is done.
#[tool(idempotent)]
async fn slow_count(done: State<AtomicUsize>) -> String {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    done.fetch_add(1, Ordering::SeqCst);
    "counted".to_owned()
}

#[tokio::test]
async fn a_refused_record_does_not_cut_the_other_calls_of_its_turn() -> anyhow::Result<()> {
    // Appends: run started 0, model 1, the calls start 2 and 3, the first to finish records 4:
    // refused; the other call still runs to its end and records 5.
    let inner = Arc::new(InMemoryStore::new());
    let journal = Arc::new(RefuseAppend { inner: Arc::clone(&inner), refuse: 4, appends: AtomicUsize::new(0) });
    let model =
        ScriptedModel::new([ScriptedTurn::tool_call("slow_count", json!({})).with_tool_call("slow_count", json!({}))]);
    let agent = Agent::new("x").model(model).tool(SlowCountTool).state(AtomicUsize::new(0)).store(journal);
    let err = agent.run("count").user("u").session("s").await.err();
    assert!(matches!(err, Some(Error::Run(RunError::LeaseLost { .. }))), "{err:?}");
    let (u, s) = (UserId::new("u")?, SessionId::new("s")?);
    let run = inner.runs(&u, &s).await?[0].run;
    let read = inner.read(&RunKey::new(u, s, run)).await?;
    let finished = read.entries.iter().filter(|(_, e)| matches!(e, JournalEntry::ToolFinished { .. })).count();
    assert_eq!(finished, 1, "the sibling call finished and was recorded");
    Ok(())
}

#[tokio::test]
async fn resuming_the_latest_run_picks_a_run_of_the_right_kind() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let (u, s) = (UserId::new("u")?, SessionId::new("s")?);
    // An unfinished agent run, then an unfinished workflow run, in one session.
    let agent_run = RunKey::new(u.clone(), s.clone(), RunId::generate());
    store
        .import(
            &agent_run,
            RunStatus::Running,
            vec![RawRecord::encode(
                0,
                &JournalEntry::RunStarted { input: "hi".into(), history: 0, window_start: Some(0), name: None },
            )?],
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let workflow_run = RunKey::new(u.clone(), s.clone(), RunId::generate());
    let started = JournalEntry::WorkflowStarted { input: json!("x"), name: "chain".into() };
    store.import(&workflow_run, RunStatus::Running, vec![RawRecord::encode(0, &started)?]).await?;

    let agent = Agent::new("x").model("echo").store(Arc::clone(&store));
    let result = agent.resume_with(AgentInput::resume_latest()).user("u").session("s").await?;
    assert_eq!(result.run_id, agent_run.run);
    let wf = Workflow::chain((|s: String| async move { s + "!" },)).store(Arc::clone(&store));
    let result = wf.resume_latest().user("u").session("s").await?;
    assert_eq!((result.run_id, result.output.as_str()), (workflow_run.run, "x!"));
    Ok(())
}

#[tokio::test]
async fn the_anonymous_partition_is_not_a_user_named_anonymous() -> anyhow::Result<()> {
    let agent = Agent::new("x").model("echo");
    agent.run("a secret").session("s").await?;
    let store = agent.session_store();
    assert_eq!(store.load(&UserId::anonymous(), &SessionId::new("s")?, None).await?.len(), 2);
    let named = agent.run("who else is here?").user("anonymous").session("s").await?;
    // A user who calls themselves "anonymous" is a user of their own: no history to see.
    assert_eq!(named.messages.len(), 3);
    assert!(matches!(agent.run("x").user("loom:anonymous").await, Err(Error::Config(ConfigError::InvalidId(_)))));
    Ok(())
}
