//! The shared workspace: one conformance suite for every backend (partitioning, versions,
//! concurrent writers, own notes only, search, pruning with the live-run rule, archive,
//! questions, export and forget), then the agents' tools, the disk layout and GDPR on the
//! backing files.

mod common;

use std::sync::Arc;
use std::time::Duration;

use loomflow::UserId;
use loomflow::model::ToolCall;
use loomflow::prelude::*;
use loomflow::workspace::{
    DiskWorkspace, InMemoryWorkspace, NewNote, NoteEdit, NoteFilter, NoteKind, PruneRule, SearchMode, SearchQuery,
    Workspace, WorkspaceError, WorkspaceLimits, WorkspaceStore,
};
use serde_json::json;

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
}

/// What keeps a test's backend alive and cleans it up when the test ends (a file, a schema).
type Guard = Box<dyn std::any::Any + Send>;

/// A directory in the temp directory with a name no other test uses, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(common::unique_name(&format!("loom-{name}")));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        Self(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

macro_rules! suite {
    ($($(#[$attr:meta])* $backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            async fn workspace() -> (Workspace, Guard) {
                let (store, guard): (Arc<dyn WorkspaceStore>, Guard) = $make;
                (Workspace::shared(store), guard)
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn users_never_see_each_other() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::users_never_see_each_other(it).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn every_change_keeps_the_version_before() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::versions(it).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn concurrent_writers_lose_no_update() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::concurrent_writers(it).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn only_the_author_changes_a_note() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::own_notes_only(it).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn search_ranks_by_words_meaning_and_both() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::search(it).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn citations_are_recorded_and_credited_once() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::citations(it).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn prune_follows_its_rule_and_spares_live_runs() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::prune(it).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn archived_notes_leave_lists_and_searches() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::archive(it).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn questions_are_asked_and_answered() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::questions(it).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn export_has_everything_and_forget_removes_it() -> anyhow::Result<()> {
                let (it, _guard) = workspace().await;
                super::export_and_forget(it).await
            }
        }
    )*};
}

suite! {
    in_memory => (Arc::new(InMemoryWorkspace::new()), Box::new(()));
    disk => {
        let dir = TempDir::new("workspace");
        (Arc::new(DiskWorkspace::open(dir.path()).unwrap_or_else(|e| panic!("{e}"))), Box::new(dir))
    };
    sqlite => {
        let file = common::TempFile::new("workspace.db");
        let store = loomflow::session::SqliteStore::open(file.path()).unwrap_or_else(|e| panic!("{e}"));
        (Arc::new(store), Box::new(file))
    };
    #[ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)"]
    postgres => {
        let schema = common::PgSchema::new().await;
        (Arc::new(schema.store().await), Box::new(schema))
    };
}

async fn users_never_see_each_other(ws: Workspace) -> anyhow::Result<()> {
    let (ann, bob) = (user("ann"), user("bob"));
    let note = ws.write(&ann, "researcher", NewNote::new("Locker code", "Ann's locker code is 4412")).await?;
    assert_eq!(note.slug, "locker-code");
    // The same slug is free for another user.
    let theirs = ws.write(&bob, "researcher", NewNote::new("Locker code", "Bob's is 9001")).await?;
    assert_eq!(theirs.slug, "locker-code");
    assert_eq!(ws.get(&bob, "locker-code").await?.body, "Bob's is 9001");
    assert!(ws.search(&bob, "4412").await?.iter().all(|f| !f.note.body.contains("4412")));
    assert_eq!(ws.search(&ann, SearchQuery::new("4412").mode(SearchMode::Bm25)).await?.len(), 1);
    // A change, an archive, a read and an attribution for bob never touch ann's note.
    ws.update(&bob, "researcher", "locker-code", NoteEdit::new().body("changed")).await?;
    ws.archive(&bob, "researcher", "locker-code").await?;
    ws.read(&bob, "locker-code", RunId::generate()).await?;
    ws.attribute_outcome(&bob, ["locker-code"], true).await?;
    let ann_note = ws.get(&ann, "locker-code").await?;
    assert_eq!((ann_note.version, ann_note.cited_count, ann_note.is_archived()), (1, 0, false));
    assert!(ws.runs(&ann).await?.is_empty());
    assert!(ws.export(&bob).await?.data.notes.iter().all(|n| n.body == "changed"));
    assert_eq!(ws.forget(&bob).await?, 1);
    assert_eq!(ws.list(&ann, NoteFilter::new()).await?.len(), 1);
    // A user id that is not a safe file name stays one user.
    let odd = user("../Ann/..");
    ws.write(&odd, "researcher", NewNote::new("Odd", "an odd user's note")).await?;
    assert_eq!(ws.list(&odd, NoteFilter::new()).await?.len(), 1);
    assert_eq!(ws.list(&ann, NoteFilter::new()).await?.len(), 1);
    Ok(())
}

async fn versions(ws: Workspace) -> anyhow::Result<()> {
    let ann = user("ann");
    let note =
        ws.write(&ann, "researcher", NewNote::new("Pricing", "v1 body").tags(["Pricing", " q3 ", "pricing"])).await?;
    assert_eq!((note.version, note.tags.clone()), (1, vec!["pricing".to_owned(), "q3".to_owned()]));
    let v2 = ws.update(&ann, "researcher", "pricing", NoteEdit::new().body("v2 body").expect_version(1)).await?;
    let v3 = ws
        .update(&ann, "researcher", "pricing", NoteEdit::new().title("Pricing, revised").kind(NoteKind::Decision))
        .await?;
    assert_eq!((v2.version, v3.version, v3.slug.as_str(), v3.kind), (2, 3, "pricing", NoteKind::Decision));
    assert!(v3.updated_at >= note.updated_at && v3.created_at == note.created_at);
    let versions = ws.versions(&ann, "pricing").await?;
    let summary: Vec<(u64, &str, &str)> =
        versions.iter().map(|v| (v.version, v.title.as_str(), v.body.as_str())).collect();
    assert_eq!(summary, [(1, "Pricing", "v1 body"), (2, "Pricing", "v2 body"), (3, "Pricing, revised", "v2 body")]);
    assert_eq!(ws.version(&ann, "pricing", 1).await?.kind, NoteKind::Finding);
    let missing = ws.version(&ann, "pricing", 9).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(missing, "note `pricing` has no version 9; its versions are 1 to 3");
    // A stale change is refused and changes nothing.
    let stale = ws.update(&ann, "researcher", "pricing", NoteEdit::new().body("stale").expect_version(2)).await;
    match stale {
        Err(WorkspaceError::Conflict { expected: 2, current: 3, .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(ws.get(&ann, "pricing").await?.body, "v2 body");
    // An edit that changes nothing, and one of a note that does not exist, are errors.
    assert!(ws.update(&ann, "researcher", "pricing", NoteEdit::new()).await.is_err());
    let unknown = ws.update(&ann, "researcher", "nope", NoteEdit::new().body("x")).await;
    assert!(matches!(unknown, Err(WorkspaceError::NotFound { .. })), "{unknown:?}");
    // Titles are unique as slugs: the same title twice gets a suffix.
    assert_eq!(ws.write(&ann, "writer", NewNote::new("Pricing", "again")).await?.slug, "pricing-2");
    Ok(())
}

async fn concurrent_writers(ws: Workspace) -> anyhow::Result<()> {
    const WRITERS: u64 = 8;
    let ann = user("ann");
    ws.write(&ann, "researcher", NewNote::new("Tally", "marks:")).await?;
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let (ws, ann) = (ws.clone(), ann.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            loop {
                let note = ws.get(&ann, "tally").await?;
                let edit = NoteEdit::new().body(format!("{} w{i}", note.body)).expect_version(note.version);
                match ws.update(&ann, "researcher", "tally", edit).await {
                    Ok(_) => return Ok::<u32, WorkspaceError>(conflicts),
                    Err(e) if e.is_conflict() => {
                        conflicts += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let note = ws.get(&ann, "tally").await?;
    assert_eq!(note.version, WRITERS + 1);
    for i in 0..WRITERS {
        assert!(note.body.contains(&format!(" w{i}")), "update {i} was lost: {}", note.body);
    }
    assert_eq!(ws.versions(&ann, "tally").await?.len() as u64, WRITERS + 1);
    Ok(())
}

async fn own_notes_only(ws: Workspace) -> anyhow::Result<()> {
    let ann = user("ann");
    ws.write(&ann, "researcher", NewNote::new("Sources", "three papers")).await?;
    let err = ws.update(&ann, "writer", "sources", NoteEdit::new().body("mine now")).await;
    let message = err.as_ref().err().map(ToString::to_string).unwrap_or_default();
    assert!(matches!(err, Err(WorkspaceError::NotAuthor { .. })), "{err:?}");
    assert!(message.contains("belongs to `researcher`") && message.contains("`parent` set to `sources`"), "{message}");
    assert!(matches!(ws.archive(&ann, "writer", "sources").await, Err(WorkspaceError::NotAuthor { .. })));
    let note = ws.get(&ann, "sources").await?;
    assert_eq!((note.body.as_str(), note.version, note.is_archived()), ("three papers", 1, false));
    // Names that are not member names are refused before anything is written.
    assert!(ws.write(&ann, "../etc", NewNote::new("x", "y")).await.is_err());
    assert!(ws.write(&ann, "Writer", NewNote::new("x", "y")).await.is_err());
    assert!(ws.write(&ann, "writer", NewNote::new("   ", "no title")).await.is_err());
    assert_eq!(ws.list(&ann, NoteFilter::new()).await?.len(), 1);
    // A follow-up by another member links to the note.
    let reply = ws.write(&ann, "writer", NewNote::new("On the sources", "two are preprints").parent("Sources")).await?;
    assert_eq!(reply.parent.as_deref(), Some("sources"));
    let follow_ups = ws.list(&ann, NoteFilter::new().parent("sources")).await?;
    assert_eq!(follow_ups.iter().map(|n| n.slug.as_str()).collect::<Vec<_>>(), ["on-the-sources"]);
    assert!(ws.write(&ann, "writer", NewNote::new("Orphan", "x").parent("no-such-note")).await.is_err());
    Ok(())
}

async fn search(ws: Workspace) -> anyhow::Result<()> {
    let ann = user("ann");
    ws.write(
        &ann,
        "researcher",
        NewNote::new("Acme pricing", "Acme charges 49 dollars per seat each month.").tags(["pricing"]),
    )
    .await?;
    ws.write(
        &ann,
        "researcher",
        NewNote::new("Globex pricing", "Globex charges 39 dollars per seat.").tags(["pricing"]),
    )
    .await?;
    ws.write(
        &ann,
        "writer",
        NewNote::new("Office plants", "The ficus in the lobby needs water on Mondays.").kind(NoteKind::Note),
    )
    .await?;

    let words = ws.search(&ann, SearchQuery::new("acme seat").mode(SearchMode::Bm25)).await?;
    assert_eq!(words.iter().map(|f| f.note.slug.as_str()).collect::<Vec<_>>(), ["acme-pricing", "globex-pricing"]);
    assert!(words[0].score > words[1].score && words[0].word_rank == Some(1) && words[0].meaning_rank.is_none());

    let meaning = ws.search(&ann, SearchQuery::new("prices of seats").mode(SearchMode::Semantic)).await?;
    let at = |slug: &str| meaning.iter().position(|f| f.note.slug == slug).unwrap_or(usize::MAX);
    assert!(at("acme-pricing") < at("office-plants") && at("globex-pricing") < at("office-plants"), "{meaning:?}");
    assert!(meaning[0].meaning_rank == Some(1) && meaning[0].word_rank.is_none());

    let both = ws.search(&ann, "Globex seat price").await?;
    assert_eq!(both[0].note.slug, "globex-pricing");
    assert!(both[0].word_rank.is_some() && both[0].meaning_rank.is_some());

    let only_writer =
        ws.search(&ann, SearchQuery::new("water lobby").filter(NoteFilter::new().author("writer"))).await?;
    assert_eq!(only_writer.iter().map(|f| f.note.slug.as_str()).collect::<Vec<_>>(), ["office-plants"]);
    let only_notes = ws
        .search(&ann, SearchQuery::new("seat").mode(SearchMode::Bm25).filter(NoteFilter::new().kind(NoteKind::Note)))
        .await?;
    assert!(only_notes.is_empty());
    assert_eq!(ws.search(&ann, SearchQuery::new("seat").limit(1)).await?.len(), 1);

    // A changed note is found by its new words, not its old ones.
    ws.update(&ann, "writer", "office-plants", NoteEdit::new().body("The cactus by the window needs no water."))
        .await?;
    assert!(ws.search(&ann, SearchQuery::new("ficus").mode(SearchMode::Bm25)).await?.is_empty());
    let cactus = ws.search(&ann, SearchQuery::new("cactus window").mode(SearchMode::Semantic)).await?;
    assert_eq!(cactus[0].note.slug, "office-plants");

    // Without an embedder: words only, and a search by meaning says why it cannot.
    let plain = ws.clone().without_embedder();
    let hybrid = plain.search(&ann, "acme").await?;
    assert_eq!(hybrid[0].note.slug, "acme-pricing");
    assert!(hybrid[0].meaning_rank.is_none());
    let semantic = plain.search(&ann, SearchQuery::new("acme").mode(SearchMode::Semantic)).await;
    assert!(matches!(semantic, Err(WorkspaceError::NoEmbedder)), "{semantic:?}");
    Ok(())
}

async fn citations(ws: Workspace) -> anyhow::Result<()> {
    let ann = user("ann");
    let run = RunId::generate();
    for title in ["First", "Second", "Unread"] {
        ws.write(&ann, "researcher", NewNote::new(title, format!("{title} note"))).await?;
    }
    // In the order they were first read, not by name.
    ws.read(&ann, "Second", run).await?; // by title
    assert_eq!(ws.read(&ann, "first", run).await?.title, "First");
    ws.read(&ann, "first", run).await?;
    let cited = ws.cited(&ann, run).await?;
    assert_eq!(cited.iter().map(|c| (c.slug.as_str(), c.reads)).collect::<Vec<_>>(), [("second", 1), ("first", 2)]);
    assert!(ws.runs(&ann).await?.iter().any(|r| r.run == run && r.is_live()));
    // A read of a note that is not there records nothing and says what there is.
    let missing = ws.read(&ann, "frist", run).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(missing.contains("no note `frist` (did you mean `first`?)"), "{missing}");
    assert_eq!(ws.cited(&ann, run).await?.len(), 2);

    assert_eq!(ws.attribute_outcome(&ann, run, true).await?, 2);
    // The run ended: its outcome counts once.
    assert_eq!(ws.attribute_outcome(&ann, run, true).await?, 0);
    assert!(ws.runs(&ann).await?.iter().all(|r| !r.is_live()));
    let first = ws.get(&ann, "first").await?;
    assert_eq!((first.cited_count, first.success_count), (1, 1));
    assert!(first.last_cited_at.is_some());
    // By slugs, each once; a failure counts a citation, not a success; unknown slugs credit nothing.
    assert_eq!(ws.attribute_outcome(&ann, ["second", "second", "nope"], false).await?, 1);
    let second = ws.get(&ann, "second").await?;
    assert_eq!((second.cited_count, second.success_count), (2, 1));
    assert_eq!(ws.get(&ann, "unread").await?.cited_count, 0);
    // Ending a run without an outcome.
    let other = RunId::generate();
    ws.read(&ann, "unread", other).await?;
    assert!(ws.end_run(&ann, other).await?);
    assert!(!ws.end_run(&ann, other).await?);
    assert_eq!(ws.get(&ann, "unread").await?.cited_count, 0);
    Ok(())
}

async fn prune(ws: Workspace) -> anyhow::Result<()> {
    let ann = user("ann");
    let live = RunId::generate();
    ws.write(&ann, "researcher", NewNote::new("Stale", "never read")).await?;
    ws.write(&ann, "researcher", NewNote::new("In use", "read by a live run")).await?;
    ws.write(&ann, "researcher", NewNote::new("Decided", "we ship in June").kind(NoteKind::Decision)).await?;
    ws.write(&ann, "researcher", NewNote::new("Useful", "cited once")).await?;
    ws.read(&ann, "in-use", live).await?;
    ws.attribute_outcome(&ann, ["useful"], true).await?;
    for n in 2..=4 {
        ws.update(&ann, "researcher", "decided", NoteEdit::new().body(format!("we ship in June, take {n}"))).await?;
    }

    // Young notes stay when only old ones may go.
    let young = ws.prune(&ann, PruneRule::new().older_than(Duration::from_secs(3_600))).await?;
    assert_eq!((young.notes_deleted, young.notes_kept), (0, 4));

    let report = ws.prune(&ann, PruneRule::new().keep_kinds([NoteKind::Decision]).keep_last_versions(1)).await?;
    assert_eq!(
        (report.notes_deleted, report.notes_kept, report.kept_for_live_runs, report.versions_deleted),
        (1, 3, 1, 2),
        "{report:?}"
    );
    assert!(matches!(ws.get(&ann, "stale").await, Err(WorkspaceError::NotFound { .. })));
    let kept: Vec<u64> = ws.versions(&ann, "decided").await?.iter().map(|v| v.version).collect();
    assert_eq!(kept, [3, 4]);

    // Once the run ends, what it read may go; its record goes with the prune.
    assert!(ws.end_run(&ann, live).await?);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let report =
        ws.prune(&ann, PruneRule::new().keep_kinds([NoteKind::Decision]).older_than(Duration::from_millis(10))).await?;
    assert_eq!((report.notes_deleted, report.notes_kept, report.runs_cleared), (1, 2, 1), "{report:?}");
    assert!(ws.cited(&ann, live).await?.is_empty());
    // A note cited once stays under min_cited 1 and goes under min_cited 2.
    assert_eq!(ws.prune(&ann, PruneRule::new().keep_kinds([NoteKind::Decision])).await?.notes_deleted, 0);
    let report = ws.prune(&ann, PruneRule::new().keep_kinds([NoteKind::Decision]).min_cited(2)).await?;
    assert_eq!(report.notes_deleted, 1);
    let left: Vec<String> = ws.list(&ann, NoteFilter::new()).await?.into_iter().map(|n| n.slug).collect();
    assert_eq!(left, ["decided"]);
    Ok(())
}

async fn archive(ws: Workspace) -> anyhow::Result<()> {
    let ann = user("ann");
    ws.write(&ann, "researcher", NewNote::new("Old lead", "Acme might partner with us")).await?;
    ws.write(&ann, "researcher", NewNote::new("New lead", "Globex wants a demo")).await?;
    let archived = ws.archive(&ann, "researcher", "old-lead").await?;
    assert!(archived.is_archived() && archived.version == 1);
    let listed: Vec<String> = ws.list(&ann, NoteFilter::new()).await?.into_iter().map(|n| n.slug).collect();
    assert_eq!(listed, ["new-lead"]);
    assert_eq!(ws.list(&ann, NoteFilter::new().include_archived()).await?.len(), 2);
    assert!(ws.search(&ann, "Acme partner").await?.iter().all(|f| f.note.slug != "old-lead"));
    assert!(ws.get(&ann, "old-lead").await?.is_archived());
    assert!(!ws.restore(&ann, "researcher", "old-lead").await?.is_archived());
    assert_eq!(ws.search(&ann, "Acme partner").await?[0].note.slug, "old-lead");
    Ok(())
}

async fn questions(ws: Workspace) -> anyhow::Result<()> {
    let ann = user("ann");
    let q = ws.ask(&ann, "writer", NewNote::new("Which currency are prices in?", "For the report")).await?;
    assert_eq!(q.kind, NoteKind::Question);
    ws.write(&ann, "writer", NewNote::new("Not a question", "x")).await?;
    assert_eq!(ws.open_questions(&ann).await?.len(), 1);
    let (question, answer) = ws.answer(&ann, "researcher", &q.slug, "US dollars, before tax.").await?;
    assert_eq!(question.answered_by.as_deref(), Some("researcher"));
    assert!(question.answered_at.is_some() && question.version == 1);
    assert_eq!((answer.author.as_str(), answer.parent.as_deref()), ("researcher", Some(q.slug.as_str())));
    assert_eq!(answer.title, "Answer: Which currency are prices in?");
    assert!(ws.open_questions(&ann).await?.is_empty());
    // A second answer is kept; the first answerer stays.
    let (again, _) = ws.answer(&ann, "editor", &q.slug, "Dollars.").await?;
    assert_eq!(again.answered_by.as_deref(), Some("researcher"));
    assert_eq!(ws.list(&ann, NoteFilter::new().parent(&q.slug)).await?.len(), 2);
    let not_a_question = ws.answer(&ann, "researcher", "not-a-question", "?").await;
    assert!(matches!(not_a_question, Err(WorkspaceError::NotAQuestion { .. })), "{not_a_question:?}");
    Ok(())
}

async fn export_and_forget(ws: Workspace) -> anyhow::Result<()> {
    let (ann, bob) = (user("ann"), user("bob"));
    ws.write(&ann, "researcher", NewNote::new("Ann's secret", "Ann's locker code is 4412")).await?;
    ws.update(&ann, "researcher", "ann-s-secret", NoteEdit::new().body("Ann's locker code is 4413")).await?;
    ws.write(&ann, "writer", NewNote::new("Draft", "a draft").kind(NoteKind::Artifact)).await?;
    ws.read(&ann, "draft", RunId::generate()).await?;
    ws.write(&bob, "researcher", NewNote::new("Bob's", "bob's note")).await?;

    let export = ws.export(&ann).await?;
    assert_eq!(export.user, ann);
    assert_eq!(export.data.notes.len(), 2);
    assert_eq!(export.data.versions.len(), 1);
    assert_eq!(export.data.versions[0].body, "Ann's locker code is 4412");
    assert_eq!(export.data.runs.len(), 1);
    let json = serde_json::to_string(&export)?;
    assert!(json.contains("4413") && json.contains("4412") && !json.contains("bob's note"));
    let back: loomflow::workspace::WorkspaceExport = serde_json::from_str(&json)?;
    assert_eq!(back, export);

    assert_eq!(ws.forget(&ann).await?, 2);
    let after = ws.export(&ann).await?;
    assert!(after.data.notes.is_empty() && after.data.versions.is_empty() && after.data.runs.is_empty());
    assert!(ws.list(&ann, NoteFilter::new().include_archived()).await?.is_empty());
    assert!(ws.search(&ann, "locker code").await?.is_empty());
    assert!(ws.versions(&ann, "ann-s-secret").await.is_err());
    assert_eq!(ws.forget(&ann).await?, 0);
    assert_eq!(ws.list(&bob, NoteFilter::new()).await?.len(), 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The agents' tools.

fn tool_json(result: &loomflow::model::ToolResult) -> serde_json::Value {
    serde_json::from_str(&result.content.text()).unwrap_or_else(|e| panic!("{e}: {}", result.content.text()))
}

#[tokio::test]
async fn a_researcher_writes_and_a_writer_reads_cites_and_summarises() -> anyhow::Result<()> {
    let ws = Workspace::in_memory();
    let ann = user("ann");
    let research = ScriptedModel::new([
        ScriptedTurn::tool_call(
            "note",
            json!({"title": "Acme pricing", "content": "Acme charges $49 a seat.", "tags": "pricing, acme"}),
        )
        .with_tool_call(
            "note",
            json!({"title": "Globex pricing", "body": "Globex charges $39 a seat.", "kind": "Findings"}),
        ),
        ScriptedTurn::text("Two findings noted."),
    ]);
    let researcher = Agent::new("You research competitors.")
        .model(research.clone())
        .workspace(&ws.member("researcher").teammates(["writer"]));
    researcher.run("Research competitor pricing.").user("ann").await?;
    let acme = ws.get(&ann, "acme-pricing").await?;
    assert_eq!(
        (acme.author.as_str(), acme.tags.clone()),
        ("researcher", vec!["pricing".to_owned(), "acme".to_owned()])
    );
    assert_eq!(ws.get(&ann, "globex-pricing").await?.kind, NoteKind::Finding);

    let write = ScriptedModel::new([
        ScriptedTurn::tool_call("search_notes", json!({"query": "what does acme charge per seat"})),
        ScriptedTurn::tool_call("read_note", json!({"slug": "acme-pricing"})),
        ScriptedTurn::tool_call(
            "note",
            json!({"title": "Pricing summary", "body": "Acme: $49.", "kind": "summary", "parent": "acme-pricing"}),
        ),
        ScriptedTurn::text("Acme charges $49 a seat."),
    ]);
    let writer = Agent::new("You write reports.")
        .model(write.clone())
        .workspace(&ws.member("writer").teammates(["researcher"]).questions(true));
    let result = writer.run("Summarise the pricing research.").user("ann").await?;

    let system = write.requests()[0].messages[0].text().into_owned();
    assert!(system.starts_with("You write reports.\n\n## Shared workspace"), "{system}");
    assert!(system.contains("You are `writer`") && system.contains("with `researcher`"), "{system}");
    assert_eq!(
        write.requests()[0].tool_names(),
        [
            "note",
            "read_note",
            "list_notes",
            "search_notes",
            "update_note",
            "archive_note",
            "ask_question",
            "answer_question",
            "list_open_questions"
        ]
    );
    assert!(!research.requests()[0].tool_names().contains(&"ask_question"));

    let results = common::tool_results(&result);
    let search = tool_json(results[0]);
    assert_eq!(
        (search["mode"].as_str(), search["results"][0]["slug"].as_str()),
        (Some("hybrid"), Some("acme-pricing"))
    );
    let read = tool_json(results[1]);
    assert_eq!(read["body"], "Acme charges $49 a seat.");
    assert_eq!(read["version"], 1);
    assert_eq!(read["citations"], json!([{"kind": "note", "id": "acme-pricing", "title": "Acme pricing"}]));
    let summary = ws.get(&ann, "pricing-summary").await?;
    assert_eq!(
        (summary.kind, summary.parent.as_deref(), summary.author.as_str()),
        (NoteKind::Summary, Some("acme-pricing"), "writer")
    );

    // The run's citations, from its tool results and from the store.
    let cited: Vec<(String, String)> = result.citations().into_iter().map(|c| (c.kind, c.id)).collect();
    assert_eq!(cited, [("note".to_owned(), "acme-pricing".to_owned())]);
    assert_eq!(
        ws.cited(&ann, result.run_id).await?.iter().map(|c| c.slug.as_str()).collect::<Vec<_>>(),
        ["acme-pricing"]
    );
    assert_eq!(ws.attribute_outcome(&ann, result.run_id, true).await?, 1);
    assert_eq!(ws.get(&ann, "acme-pricing").await?.success_count, 1);
    Ok(())
}

/// Runs one call of `tool` as the member's agent would, in `ctx`.
async fn call(tools: &ToolSet, ctx: &RunContext, tool: &str, args: serde_json::Value) -> loomflow::model::ToolResult {
    tools.call(ctx, &ToolCall::new("call_1", tool, args.to_string())).await
}

#[tokio::test]
async fn the_model_reads_conflicts_and_refusals_it_can_act_on() -> anyhow::Result<()> {
    let ws = Workspace::in_memory();
    let ann = user("ann");
    let researcher = ws.member("researcher").tool_set()?;
    let writer = ws.member("writer").tool_set()?;
    let run = RunContext::new(ann.clone());
    let written = call(&researcher, &run, "note", json!({"title": "Plan", "body": "step 1", "kind": "plan"})).await;
    assert!(!written.is_error, "{}", written.content.text());
    let read = call(&researcher, &run, "read_note", json!({"slug": "plan"})).await;
    assert_eq!(tool_json(&read)["version"], 1);

    // Another process changes the note after this run read it...
    ws.update(&ann, "researcher", "plan", NoteEdit::new().body("step 1, step 2")).await?;
    // ...so an update without a version is checked against the version the run read.
    let stale = call(&researcher, &run, "update_note", json!({"slug": "plan", "body": "step 1 done"})).await;
    assert!(stale.is_error);
    assert_eq!(
        stale.content.text(),
        "note `plan` changed since you read it: it is at version 2, and your change was made to version 1. Read it \
         again with `read_note`, apply your change to the current text, and update it with version 2"
    );
    let reread = call(&researcher, &run, "read_note", json!({"slug": "plan"})).await;
    assert_eq!(tool_json(&reread)["body"], "step 1, step 2");
    let updated = call(&researcher, &run, "update_note", json!({"slug": "plan", "body": "step 1 done, step 2"})).await;
    assert_eq!(tool_json(&updated)["version"], 3);
    let explicit = call(&researcher, &run, "update_note", json!({"slug": "plan", "body": "x", "version": "2"})).await;
    assert!(explicit.is_error && explicit.content.text().contains("it is at version 3"));

    let theirs = call(&writer, &run, "update_note", json!({"slug": "plan", "body": "mine"})).await;
    assert!(theirs.is_error);
    assert!(
        theirs.content.text().starts_with("note `plan` belongs to `researcher`; you (`writer`)"),
        "{}",
        theirs.content.text()
    );
    let bad_kind = call(&writer, &run, "note", json!({"title": "T", "body": "b", "kind": "poem"})).await;
    assert!(
        bad_kind.content.text().starts_with("unknown kind `poem`; use one of finding, question"),
        "{}",
        bad_kind.content.text()
    );
    let unknown = call(&writer, &run, "read_note", json!({"slug": "plna"})).await;
    assert!(unknown.content.text().contains("(did you mean `plan`?)"), "{}", unknown.content.text());
    let typo = call(&writer, &run, "list_notes", json!({"autor": "researcher"})).await;
    assert!(typo.content.text().contains("did you mean `author`?"), "{}", typo.content.text());
    let listed = call(&writer, &run, "list_notes", json!({"author": "researcher"})).await;
    assert_eq!(tool_json(&listed)["notes"][0]["slug"], "plan");
    Ok(())
}

#[tokio::test]
async fn a_team_members_reads_count_for_the_enclosing_run() -> anyhow::Result<()> {
    let ws = Workspace::in_memory();
    let ann = user("ann");
    ws.write(&ann, "researcher", NewNote::new("Fact", "water boils at 100 C")).await?;
    let tools = ws.member("writer").tool_set()?;
    let team = RunContext::new(ann.clone());
    let member = team.child();
    call(&tools, &member, "read_note", json!({"slug": "fact"})).await;
    assert_eq!(ws.cited(&ann, team.run_id()).await?.len(), 1);
    assert!(ws.cited(&ann, member.run_id()).await?.is_empty());
    Ok(())
}

#[test]
fn a_member_with_a_bad_name_is_a_configuration_error() {
    let ws = Workspace::in_memory();
    let agent = Agent::new("x").model("echo").workspace(&ws.member("Research Lead"));
    let err = agent.check().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`Research Lead` cannot be a member's name"), "{err}");
    let agent = Agent::new("x").model("echo").workspace(&ws.member("writer").teammates(["writer"]));
    assert!(agent.check().is_err());
    let agent = Agent::new("x").model("echo").workspace(&ws.member("writer")).workspace(&ws.member("editor"));
    assert!(agent.check().err().map(|e| e.to_string()).unwrap_or_default().contains("two tools are named `note`"));
    assert!(Agent::new("x").model("echo").workspace(&ws.member("writer").archive(false)).check().is_ok());
}

#[tokio::test]
async fn the_in_memory_workspace_refuses_notes_past_its_limit() -> anyhow::Result<()> {
    let ws = Workspace::new(InMemoryWorkspace::with_limits(WorkspaceLimits::default().max_notes_per_user(2)));
    let ann = user("ann");
    ws.write(&ann, "a", NewNote::new("One", "1")).await?;
    ws.write(&ann, "a", NewNote::new("Two", "2")).await?;
    let full = ws.write(&ann, "a", NewNote::new("Three", "3")).await;
    assert!(matches!(full, Err(WorkspaceError::Full { limit: 2 })), "{full:?}");
    assert_eq!(ws.write(&user("bob"), "a", NewNote::new("One", "1")).await?.slug, "one");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The files behind the workspace.

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_disk_workspace_is_markdown_people_can_read() -> anyhow::Result<()> {
    let dir = TempDir::new("workspace-disk");
    let ws = Workspace::on_disk(dir.path())?;
    let ann = user("Ann@example.com");
    ws.write(&ann, "researcher", NewNote::new("Acme pricing", "Acme charges $49 a seat.\n").tags(["pricing"])).await?;
    ws.update(&ann, "researcher", "acme-pricing", NoteEdit::new().body("Acme charges $59 a seat.")).await?;
    ws.read(&ann, "acme-pricing", RunId::generate()).await?;
    let user_dir = "%41nn%40example.com";
    let listed = files(dir.path());
    assert_eq!(listed.len(), 5, "{listed:?}");
    for expected in ["/WORKSPACE.md", "/notes/researcher/acme-pricing.md", "/.history/acme-pricing/1.md", "/.lock"] {
        assert!(listed.contains(&format!("{user_dir}{expected}")), "{expected} missing from {listed:?}");
    }
    assert!(listed.iter().any(|f| f.starts_with(&format!("{user_dir}/.runs/run_"))), "{listed:?}");
    let note = std::fs::read_to_string(dir.path().join(user_dir).join("notes/researcher/acme-pricing.md"))?;
    assert!(
        note.starts_with(
            "---\ntitle: \"Acme pricing\"\nauthor: researcher\nkind: finding\ntags: [\"pricing\"]\nversion: 2\n"
        ),
        "{note}"
    );
    assert!(note.ends_with("---\nAcme charges $59 a seat.\n"), "{note}");
    let old = std::fs::read_to_string(dir.path().join(user_dir).join(".history/acme-pricing/1.md"))?;
    assert!(old.ends_with("---\nAcme charges $49 a seat.\n\n"), "{old}");
    let index = std::fs::read_to_string(dir.path().join(user_dir).join("WORKSPACE.md"))?;
    assert!(
        index.contains("| [Acme pricing](notes/researcher/acme-pricing.md) | finding | researcher | 2 |"),
        "{index}"
    );

    // A note edited by hand is what the workspace reads next.
    let path = dir.path().join(user_dir).join("notes/researcher/acme-pricing.md");
    std::fs::write(&path, note.replace("$59", "$69"))?;
    assert_eq!(ws.get(&ann, "acme-pricing").await?.body, "Acme charges $69 a seat.");
    std::fs::write(&path, "not a note")?;
    let broken = ws.get(&ann, "acme-pricing").await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(broken.contains("is unreadable") && broken.contains("fix the file"), "{broken}");
    std::fs::write(&path, note)?;

    // Nothing from outside becomes a path of its own.
    assert!(ws.get(&ann, "../../../etc/passwd").await.is_err());
    assert!(ws.write(&ann, "../../x", NewNote::new("x", "y")).await.is_err());
    let sneaky = user("../../escape");
    ws.write(&sneaky, "researcher", NewNote::new("Inside", "stays inside the root")).await?;
    assert!(!dir.path().parent().map(|p| p.join("escape").exists()).unwrap_or(true));
    assert!(dir.path().join("%2E.%2F..%2Fescape").is_dir(), "{:?}", files(dir.path()));

    // Forgetting leaves no file of the user.
    assert_eq!(ws.forget(&ann).await?, 1);
    assert!(!dir.path().join(user_dir).exists(), "{:?}", files(dir.path()));
    assert!(files(dir.path()).iter().all(|f| !f.starts_with(user_dir)));
    assert_eq!(ws.list(&sneaky, NoteFilter::new()).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn after_forget_the_sqlite_file_holds_nothing_of_the_user() -> anyhow::Result<()> {
    let file = common::TempFile::new("workspace-gdpr.db");
    let store = Arc::new(loomflow::session::SqliteStore::open(file.path())?);
    let ws = Workspace::shared(store.clone());
    let (ann, bob) = (user("ann"), user("bob"));
    // The same file keeps the sessions of an agent that is a member of the workspace.
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("note", json!({"title": "Ann secret", "body": "locker 4412"})),
        ScriptedTurn::tool_call("read_note", json!({"slug": "ann-secret"})),
        ScriptedTurn::text("done"),
    ]);
    let agent = Agent::new("Keep notes.").model(model).store(store.clone()).workspace(&ws.member("researcher"));
    agent.run("Note the code.").user("ann").session("s1").await?;
    ws.update(&ann, "researcher", "ann-secret", NoteEdit::new().body("locker 4413")).await?;
    ws.write(&bob, "researcher", NewNote::new("Bob secret", "bob's locker")).await?;
    assert_eq!(ws.export(&ann).await?.data.runs.len(), 1);

    assert_eq!(ws.forget(&ann).await?, 1);
    let conn = rusqlite::Connection::open(file.path())?;
    for table in ["loom_workspace_notes", "loom_workspace_versions", "loom_workspace_runs", "loom_workspace_reads"] {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table} WHERE user = 'ann'"), [], |r| r.get(0))?;
        assert_eq!(n, 0, "{table} still holds ann's rows");
    }
    let text: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM loom_workspace_notes WHERE body LIKE '%4412%' OR body LIKE '%4413%')
              + (SELECT count(*) FROM loom_workspace_versions WHERE body LIKE '%4412%' OR body LIKE '%4413%')",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(text, 0);
    let bobs: i64 = conn.query_row("SELECT count(*) FROM loom_workspace_notes WHERE user = 'bob'", [], |r| r.get(0))?;
    assert_eq!(bobs, 1);
    let version: i64 = conn.query_row("SELECT version FROM loom_workspace_schema", [], |r| r.get(0))?;
    assert_eq!(version, loomflow::workspace::WORKSPACE_SQLITE_SCHEMA_VERSION);
    Ok(())
}

#[test]
fn a_database_with_a_newer_workspace_schema_is_refused() -> anyhow::Result<()> {
    let file = common::TempFile::new("workspace-newer.db");
    drop(loomflow::session::SqliteStore::open(file.path())?);
    let conn = rusqlite::Connection::open(file.path())?;
    conn.execute("UPDATE loom_workspace_schema SET version = 99", [])?;
    drop(conn);
    let err = loomflow::session::SqliteStore::open(file.path()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("workspace tables have schema v99, written by a newer Loom"), "{err}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)"]
async fn after_forget_the_postgres_tables_hold_nothing_of_the_user() -> anyhow::Result<()> {
    let schema = common::PgSchema::new().await;
    let ws = Workspace::new(schema.store().await);
    let ann = user("ann");
    ws.write(&ann, "researcher", NewNote::new("Ann secret", "locker 4412")).await?;
    ws.update(&ann, "researcher", "ann-secret", NoteEdit::new().body("locker 4413")).await?;
    ws.read(&ann, "ann-secret", RunId::generate()).await?;
    assert_eq!(ws.forget(&ann).await?, 1);
    let pool = schema.pool().await;
    for table in ["loom_workspace_notes", "loom_workspace_versions", "loom_workspace_runs", "loom_workspace_reads"] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table} WHERE user_id = 'ann'")))
                .fetch_one(&pool)
                .await?;
        assert_eq!(n, 0, "{table} still holds ann's rows");
    }
    Ok(())
}

/// The living plan of an agent seated on a workspace is its `plan` note: written on the first
/// `update_plan`, a new version on each later one, readable by its teammates.
#[tokio::test]
async fn the_living_plan_mirrors_into_the_members_plan_note() -> anyhow::Result<()> {
    let ws = Workspace::in_memory();
    let ann = user("ann");
    let plan = |status: &str| {
        ScriptedTurn::tool_call(
            "update_plan",
            json!({"steps": [{"step": "Read the brief", "status": "done"}, {"step": "Draft the report", "status": status}]}),
        )
    };
    let model = ScriptedModel::new([plan("in_progress"), plan("done"), ScriptedTurn::text("Done.")]);
    let agent = Agent::new("You plan your work.")
        .model(model.clone())
        .tool(loomflow::tools::plan::PlanTool::new())
        .workspace(&ws.member("planner").teammates(["writer"]));
    agent.run("Write the report.").user(ann.clone()).await?;
    let note = ws.get(&ann, "Plan of planner").await?;
    assert_eq!((note.kind, note.author.as_str(), note.version), (NoteKind::Plan, "planner", 2));
    assert!(note.body.contains("Draft the report") && note.body.contains("2/2"), "{}", note.body);
    assert_eq!(ws.versions(&ann, &note.slug).await?.len(), 2, "the first plan is kept as a version");
    let told = model.requests()[1].last_text();
    assert!(told.contains(&format!("Kept as workspace note `{}`, version 1.", note.slug)), "{told}");
    // Another user's workspace has no plan.
    assert!(ws.get(&user("bob"), "Plan of planner").await.is_err());
    Ok(())
}
