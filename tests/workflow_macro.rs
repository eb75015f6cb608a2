//! Workflows declared with `#[workflow]` and `#[node]`: typed state machines checked at
//! compile time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::Recorder;
use loomflow::prelude::*;
use loomflow::workflow::{NodeKind, WorkflowError};

struct Abc;

#[workflow(name = "abc")]
impl Abc {
    #[node(start, next = n2)]
    async fn n1(&self, s: String) -> String {
        s + "a"
    }

    #[node(next = n3)]
    fn n2(&self, s: String) -> String {
        s + "b"
    }

    #[node]
    async fn n3(&self, ctx: &RunContext, s: String) -> Result<String, String> {
        if ctx.user().is_anonymous() { Ok(s + "c") } else { Err(format!("{} may not finish", ctx.user())) }
    }
}

#[tokio::test]
async fn a_macro_chain_runs_as_a_typed_state_machine() -> anyhow::Result<()> {
    let wf = Abc.into_workflow();
    let result = wf.run(String::new()).await?;
    assert_eq!(result.output, "abc");
    assert_eq!(result.visited, ["n1", "n2", "n3"]);
    assert_eq!(wf.name(), "abc");
    assert_eq!(result.steps.last().map(|s| s.summary.as_str()), Some("abc"));

    // A node's `Err` fails the run, naming the node.
    let err = wf.run(String::new()).user("mallory").await.err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("node `n3` failed: mallory may not finish"));
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
struct Ticket {
    text: String,
}

enum Triage {
    Billing(Ticket),
    Tech(Ticket),
    Spam,
}

struct Support {
    billing: Agent,
}

#[workflow]
impl Support {
    #[node(start, route = { Triage::Billing => billing, Triage::Tech => tech, Triage::Spam => drop_it })]
    fn classify(&self, text: String) -> Triage {
        let ticket = Ticket { text: text.clone() };
        if text.contains("invoice") {
            Triage::Billing(ticket)
        } else if text.contains("crash") {
            Triage::Tech(ticket)
        } else {
            Triage::Spam
        }
    }

    #[node]
    async fn billing(&self, ctx: &RunContext, ticket: Ticket) -> Result<String, loomflow::Error> {
        Ok(self.billing.run(ticket.text).within(ctx).await?.output)
    }

    #[node]
    async fn tech(&self, ticket: Ticket) -> String {
        format!("TECH: {}", ticket.text)
    }

    #[node]
    fn drop_it(&self) -> String {
        "dropped".to_owned()
    }
}

fn support() -> Workflow<String, String> {
    let billing = Agent::new("Billing.").name("billing_agent").model(ScriptedModel::from_fn(|req| {
        ScriptedTurn::text(format!("BILLING: {}", req.last_user_text().unwrap_or_default()))
    }));
    Support { billing }.into_workflow()
}

#[tokio::test]
async fn enum_routes_pass_the_variant_value_to_the_next_node() -> anyhow::Result<()> {
    let wf = support();
    let recorder = Recorder::new();
    let r = wf.run("my invoice".to_owned()).on_event(recorder.listener()).await?;
    assert_eq!(r.output, "BILLING: my invoice");
    assert_eq!(r.visited, ["classify", "billing"]);
    assert_eq!(
        recorder.kinds(),
        [
            "run_started",
            "node_started",
            "node_finished",
            "node_started",
            "run_started",
            "model_request",
            "model_response",
            "run_finished",
            "node_finished",
            "workflow_finished"
        ]
    );
    assert_eq!(wf.run("it crashes".to_owned()).await?.output, "TECH: it crashes");
    let spam = wf.run("buy now".to_owned()).await?;
    assert_eq!((spam.output.as_str(), spam.visited.len()), ("dropped", 2));

    let graph = wf.graph();
    assert_eq!(graph.nodes()[0].kind, NodeKind::Router);
    let mermaid = wf.to_mermaid();
    assert!(mermaid.contains("n0 -->|Billing| n1"), "{mermaid}");
    assert!(mermaid.contains("n0 -->|Spam| n3"), "{mermaid}");
    Ok(())
}

enum Verdict {
    Accept(String),
    Revise(String),
}

struct Editor {
    reviews: AtomicU32,
    needed: u32,
}

#[workflow]
impl Editor {
    #[node(start, next = review)]
    async fn draft(&self, topic: String) -> String {
        format!("draft on {topic}")
    }

    #[node(route = { Verdict::Accept => publish, Verdict::Revise => revise })]
    async fn review(&self, draft: String) -> Verdict {
        let n = self.reviews.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.needed { Verdict::Accept(draft) } else { Verdict::Revise(draft) }
    }

    #[node(next = review, max_visits = 3)]
    async fn revise(&self, draft: String) -> String {
        draft + "+"
    }

    #[node]
    async fn publish(&self, draft: String) -> String {
        draft
    }
}

#[tokio::test]
async fn a_cycle_runs_until_its_condition_or_its_bound() -> anyhow::Result<()> {
    let wf = Editor { reviews: AtomicU32::new(0), needed: 3 }.into_workflow();
    let r = wf.run("looms".to_owned()).await?;
    assert_eq!(r.output, "draft on looms++");
    assert_eq!(r.visited, ["draft", "review", "revise", "review", "revise", "review", "publish"]);

    let wf = Editor { reviews: AtomicU32::new(0), needed: 100 }.into_workflow();
    let err = wf.run("looms".to_owned()).await.err();
    assert!(
        matches!(&err, Some(Error::Workflow(WorkflowError::VisitLimit { node, limit: 3 })) if &**node == "revise"),
        "{err:?}"
    );
    // The step bound stops a run too.
    let wf = Editor { reviews: AtomicU32::new(0), needed: 3 }.into_workflow().max_steps(4);
    assert!(matches!(wf.run("x".to_owned()).await, Err(Error::Workflow(WorkflowError::StepLimit { limit: 4, .. }))));
    Ok(())
}

/// The editor of a workflow that declares its own step bound.
struct BoundedEditor {
    reviews: AtomicU32,
}

#[workflow(max_steps = 4)]
impl BoundedEditor {
    #[node(start, next = review)]
    async fn draft(&self, topic: String) -> String {
        format!("draft on {topic}")
    }

    #[node(route = { Verdict::Accept => publish, Verdict::Revise => revise })]
    async fn review(&self, draft: String) -> Verdict {
        let n = self.reviews.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= 3 { Verdict::Accept(draft) } else { Verdict::Revise(draft) }
    }

    #[node(next = review, max_visits = 3)]
    async fn revise(&self, draft: String) -> String {
        draft + "+"
    }

    #[node]
    async fn publish(&self, draft: String) -> String {
        draft
    }
}

#[tokio::test]
async fn the_step_bound_declared_on_the_workflow_stops_its_runs() {
    let wf = BoundedEditor { reviews: AtomicU32::new(0) }.into_workflow();
    let err = wf.run("x".to_owned()).await.err();
    assert!(matches!(err, Some(Error::Workflow(WorkflowError::StepLimit { limit: 4, .. }))), "{err:?}");
    // A bound given when running wins over the declared one.
    let wf = BoundedEditor { reviews: AtomicU32::new(0) }.into_workflow().max_steps(10);
    assert!(wf.run("x".to_owned()).await.is_ok());
}

#[derive(Debug, Clone)]
struct Doc {
    words: Vec<String>,
}

struct Analysis {
    calls: Arc<AtomicU32>,
}

#[workflow]
impl Analysis {
    #[node(start, fan_out = [count, longest, tagged])]
    fn split(&self, text: String) -> Doc {
        Doc { words: text.split_whitespace().map(str::to_owned).collect() }
    }

    #[node(next = merge)]
    async fn count(&self, doc: Doc) -> usize {
        self.calls.fetch_add(1, Ordering::SeqCst);
        doc.words.len()
    }

    #[node(next = merge)]
    async fn longest(&self, doc: Doc) -> String {
        doc.words.into_iter().max_by_key(String::len).unwrap_or_default()
    }

    #[node(next = shout)]
    async fn tagged(&self, doc: Doc) -> Vec<String> {
        doc.words.into_iter().filter(|w| w.starts_with('#')).collect()
    }

    #[node(next = merge)]
    fn shout(&self, tags: Vec<String>) -> String {
        tags.join(" ").to_uppercase()
    }

    #[node(join)]
    fn merge(&self, parts: (usize, String, String)) -> String {
        format!("{} words, longest {}, tags {}", parts.0, parts.1, parts.2)
    }
}

#[tokio::test]
async fn a_fan_out_joins_typed_branch_outputs_as_a_tuple() -> anyhow::Result<()> {
    let calls = Arc::new(AtomicU32::new(0));
    let wf = Analysis { calls: Arc::clone(&calls) }.into_workflow();
    let r = wf.run("weaving #looms with #rust".to_owned()).await?;
    assert_eq!(r.output, "4 words, longest weaving, tags #LOOMS #RUST");
    assert_eq!(r.visited.first().map(|n| n.as_str()), Some("split"));
    assert_eq!(r.visited.last().map(|n| n.as_str()), Some("merge"));
    assert_eq!(r.visited.len(), 6);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let kinds: Vec<NodeKind> = wf.graph().nodes().iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [NodeKind::FanOut, NodeKind::Step, NodeKind::Step, NodeKind::Step, NodeKind::Step, NodeKind::Join]
    );
    Ok(())
}

#[tokio::test]
async fn a_macro_workflow_is_a_node_of_another_workflow() -> anyhow::Result<()> {
    async fn exclaim(s: String) -> String {
        s + "!"
    }
    let wf = Workflow::chain((Abc.into_workflow(), exclaim));
    assert_eq!(wf.run(">".to_owned()).await?.output, ">abc!");
    Ok(())
}
