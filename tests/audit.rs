//! The audit log through its public API: tampering with a file or a database is found and the
//! entry named; writers in several processes (or on several connections) keep one chain per
//! user.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, ensure};
use loomflow::telemetry::audit::{
    AuditAction, AuditEntry, AuditKey, AuditLog, AuditRecord, EditedPart, FileAuditLog, InMemoryAuditLog, Insertion,
    ProblemKind, SqliteAuditLog, VerifyReport, canonical_json, verify_file,
};
use loomflow::{RunId, SessionId, UserId};
use serde_json::{Value, json};

/// The writers the concurrency tests start, and the entries each appends.
const WRITERS: usize = 4;
const PER_WRITER: u64 = 50;

/// Set for a child process: the log it appends to, its backend (`file` or `sqlite`) and its
/// number.
const CHILD_PATH: &str = "LOOM_AUDIT_CHILD";
const CHILD_BACKEND: &str = "LOOM_AUDIT_CHILD_BACKEND";
const CHILD_ID: &str = "LOOM_AUDIT_CHILD_ID";

fn key() -> anyhow::Result<AuditKey> {
    Ok(AuditKey::from_hex("4c6f6f6d2061756469742074657374206b6579202d2033322062797465732121")?)
}

fn user(name: &str) -> anyhow::Result<UserId> {
    Ok(UserId::new(name)?)
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("loom-audit-{name}-{}", RunId::generate()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Five entries each for alice and bob, interleaved: alice 1, bob 1, alice 2, ...
async fn fill(log: &dyn AuditLog) -> anyhow::Result<()> {
    let session = SessionId::new("s1")?;
    for n in 1..=5u64 {
        for name in ["alice", "bob"] {
            let record = AuditRecord::new(user(name)?, AuditAction::ToolCall, json!({"tool": "lookup", "n": n}))
                .session(session.clone())
                .run(RunId::generate())
                .actor("agent");
            log.append(record).await?;
        }
    }
    Ok(())
}

/// Each problem as (user, seq, kind).
fn named(report: &VerifyReport) -> Vec<(Option<String>, Option<u64>, ProblemKind)> {
    report.problems.iter().map(|p| (p.user.as_ref().map(|u| u.to_string()), p.seq, p.kind.clone())).collect()
}

fn at(user: &str, seq: u64, kind: ProblemKind) -> (Option<String>, Option<u64>, ProblemKind) {
    (Some(user.to_owned()), Some(seq), kind)
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?.lines().map(str::to_owned).collect())
}

fn write_lines(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    Ok(std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>())?)
}

/// The index of the line holding entry `seq` of `user`.
fn line_of(lines: &[String], user: &str, seq: u64) -> anyhow::Result<usize> {
    lines
        .iter()
        .position(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["user"] == user && v["seq"].as_u64() == Some(seq))
        })
        .with_context(|| format!("no line for entry {seq} of {user}"))
}

/// A file log with the entries of [`fill`], and its lines.
async fn filled_file(dir: &TempDir) -> anyhow::Result<(PathBuf, FileAuditLog, Vec<String>)> {
    let path = dir.join("audit.jsonl");
    let log = FileAuditLog::open(&path, key()?)?;
    fill(&log).await?;
    let lines = read_lines(&path)?;
    Ok((path, log, lines))
}

/// The entry `seq` of alice in another log under the same key: correctly signed, but not part
/// of this log's chain.
async fn signed_elsewhere(seq: u64) -> anyhow::Result<AuditEntry> {
    let other = InMemoryAuditLog::new(key()?);
    for n in 1..=seq {
        other.append(AuditRecord::new(user("alice")?, AuditAction::ToolCall, json!({"n": n}))).await?;
    }
    other.entries(&user("alice")?).await?.pop().context("no entry")
}

#[tokio::test]
async fn a_file_log_of_two_users_verifies() -> anyhow::Result<()> {
    let dir = TempDir::new("intact")?;
    let (path, log, lines) = filled_file(&dir).await?;
    assert_eq!(lines.len(), 10);
    let report = log.verify(None).await?;
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.users, report.entries), (2, 10));
    assert_eq!(log.verify(Some(&user("bob")?)).await?.entries, 5);
    assert_eq!(verify_file(&path, &key()?)?, report);
    assert_eq!(log.users().await?, [user("alice")?, user("bob")?]);
    let alice = log.entries(&user("alice")?).await?;
    assert_eq!(alice.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(alice[1].prev, alice[0].sig);
    assert!(alice[0].at.ends_with('Z') && alice[0].at.len() == 27, "{}", alice[0].at);

    // Another key does not verify it.
    let other = AuditKey::from_bytes([0u8; 32])?;
    assert_eq!(verify_file(&path, &other)?.problems.len(), 10);
    Ok(())
}

#[tokio::test]
async fn an_edited_line_of_the_file_is_named() -> anyhow::Result<()> {
    let dir = TempDir::new("edited")?;
    let (path, log, mut lines) = filled_file(&dir).await?;

    // A payload value changed.
    let i = line_of(&lines, "alice", 3)?;
    let mut entry: Value = serde_json::from_str(&lines[i])?;
    entry["payload"]["n"] = json!(300);
    lines[i] = serde_json::to_string(&entry)?;
    // A field changed.
    let j = line_of(&lines, "bob", 2)?;
    lines[j] = lines[j].replace(r#""actor":"agent""#, r#""actor":"operator""#);
    write_lines(&path, &lines)?;

    let report = verify_file(&path, &key()?)?;
    assert_eq!(
        named(&report),
        [
            at("alice", 3, ProblemKind::Edited { part: EditedPart::Payload }),
            at("bob", 2, ProblemKind::Edited { part: EditedPart::Fields }),
        ],
        "{report}"
    );
    assert!(report.problems[0].to_string().contains("user `alice`, entry 3: the payload does not match"));
    assert_eq!(log.verify(Some(&user("alice")?)).await?.problems.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_deleted_line_of_the_file_is_named_by_its_seq() -> anyhow::Result<()> {
    let dir = TempDir::new("deleted")?;
    let (path, _log, mut lines) = filled_file(&dir).await?;
    lines.remove(line_of(&lines, "alice", 2)?);
    write_lines(&path, &lines)?;
    let report = verify_file(&path, &key()?)?;
    assert_eq!(named(&report), [at("alice", 2, ProblemKind::Deleted { count: 1 })], "{report}");
    assert!(report.to_string().contains("entry 2 is missing"), "{report}");
    Ok(())
}

#[tokio::test]
async fn swapped_lines_of_the_file_are_named() -> anyhow::Result<()> {
    let dir = TempDir::new("swapped")?;
    let (path, _log, mut lines) = filled_file(&dir).await?;
    let (three, four) = (line_of(&lines, "alice", 3)?, line_of(&lines, "alice", 4)?);
    lines.swap(three, four);
    write_lines(&path, &lines)?;
    let report = verify_file(&path, &key()?)?;
    let problems = named(&report);
    assert_eq!(problems.len(), 1, "{report}");
    assert!(matches!(&problems[0], (Some(u), Some(3 | 4), ProblemKind::Reordered { .. }) if u == "alice"), "{report}");
    Ok(())
}

#[tokio::test]
async fn a_forged_line_in_the_file_is_named() -> anyhow::Result<()> {
    let dir = TempDir::new("forged")?;
    let (path, log, lines) = filled_file(&dir).await?;

    // A copy of alice's second entry with another payload, put right after it.
    let mut forged_copy = lines.clone();
    let i = line_of(&lines, "alice", 2)?;
    let mut copy: Value = serde_json::from_str(&lines[i])?;
    copy["payload"] = json!({"tool": "refund", "n": 2});
    forged_copy.insert(i + 1, serde_json::to_string(&copy)?);
    write_lines(&path, &forged_copy)?;
    let report = verify_file(&path, &key()?)?;
    assert_eq!(named(&report), [at("alice", 2, ProblemKind::Inserted { why: Insertion::DuplicateSeq })], "{report}");

    // A new entry at the end, without the key.
    let mut forged_next = lines.clone();
    let last = forged_next.iter().rposition(|l| l.contains(r#""user":"alice""#)).context("no alice")?;
    let mut next: Value = serde_json::from_str(&lines[last])?;
    next["seq"] = json!(6);
    next["prev"] = next["sig"].clone();
    next["sig"] = json!("ab".repeat(32));
    forged_next.push(serde_json::to_string(&next)?);
    write_lines(&path, &forged_next)?;
    let report = verify_file(&path, &key()?)?;
    assert_eq!(named(&report), [at("alice", 6, ProblemKind::Edited { part: EditedPart::Fields })], "{report}");

    // An entry signed with the key, taken from another log.
    let mut foreign = lines.clone();
    foreign.push(serde_json::to_string(&signed_elsewhere(6).await?)?);
    write_lines(&path, &foreign)?;
    let report = log.verify(None).await?;
    assert_eq!(named(&report), [at("alice", 6, ProblemKind::Inserted { why: Insertion::BrokenLink })], "{report}");
    Ok(())
}

#[tokio::test]
async fn a_corrupt_line_is_reported_and_the_log_goes_on() -> anyhow::Result<()> {
    let dir = TempDir::new("corrupt")?;
    let (path, log, mut lines) = filled_file(&dir).await?;
    lines.insert(4, "{not json".to_owned());
    write_lines(&path, &lines)?;
    let appended = log.append(AuditRecord::new(user("alice")?, AuditAction::RunFinished, json!({}))).await?;
    assert_eq!(appended.seq, 6);
    let report = log.verify(None).await?;
    assert_eq!(report.entries, 11);
    assert_eq!(report.problems.len(), 1, "{report}");
    assert!(matches!(report.problems[0].kind, ProblemKind::Corrupt { line: 5, .. }), "{report}");
    assert_eq!(log.entries(&user("alice")?).await?.len(), 6);
    Ok(())
}

#[tokio::test]
async fn forgetting_a_user_in_the_file_keeps_the_chain_verifiable() -> anyhow::Result<()> {
    let dir = TempDir::new("forget")?;
    let (path, log, _) = filled_file(&dir).await?;
    assert_eq!(log.forget(&user("alice")?).await?, 5);
    let alice = log.entries(&user("alice")?).await?;
    assert_eq!(alice.len(), 6);
    assert!(alice[..5].iter().all(|e| e.payload.is_none()));
    assert_eq!(
        (alice[5].action.clone(), alice[5].payload.clone()),
        (AuditAction::Forgotten, Some(json!({"erased": 5})))
    );
    assert!(log.entries(&user("bob")?).await?.iter().all(|e| e.payload.is_some()));
    let report = verify_file(&path, &key()?)?;
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 11);
    Ok(())
}

/// Opens the SQLite file directly, as someone with access to the database but not the key.
fn tamper(path: &Path, sql: &str) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(sql)?;
    Ok(())
}

/// Exchanges the rowids (the storage order) of two entries of `user`.
fn swap_rowids(path: &Path, user: &str, a: u64, b: u64) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    let rowid = |seq: u64| -> rusqlite::Result<i64> {
        conn.query_row(
            "SELECT rowid FROM loom_audit WHERE user = ?1 AND seq = ?2",
            rusqlite::params![user, seq as i64],
            |r| r.get(0),
        )
    };
    let (ra, rb) = (rowid(a)?, rowid(b)?);
    conn.execute_batch(&format!(
        "BEGIN;
         UPDATE loom_audit SET rowid = -1 WHERE rowid = {ra};
         UPDATE loom_audit SET rowid = {ra} WHERE rowid = {rb};
         UPDATE loom_audit SET rowid = {rb} WHERE rowid = -1;
         COMMIT;"
    ))?;
    Ok(())
}

#[tokio::test]
async fn tampering_with_the_sqlite_database_is_named() -> anyhow::Result<()> {
    let dir = TempDir::new("sqlite")?;
    let path = dir.join("audit.db");
    let log = SqliteAuditLog::open(&path, key()?)?;
    fill(&log).await?;
    let report = log.verify(None).await?;
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.users, report.entries), (2, 10));
    assert_eq!(log.users().await?, [user("alice")?, user("bob")?]);

    // An edited payload, an edited field.
    tamper(
        &path,
        r#"UPDATE loom_audit SET payload = '{"n":300,"tool":"lookup"}' WHERE user = 'alice' AND seq = 3;
           UPDATE loom_audit SET actor = 'operator' WHERE user = 'bob' AND seq = 2;"#,
    )?;
    assert_eq!(
        named(&log.verify(None).await?),
        [
            at("alice", 3, ProblemKind::Edited { part: EditedPart::Payload }),
            at("bob", 2, ProblemKind::Edited { part: EditedPart::Fields }),
        ]
    );
    tamper(&path, "DELETE FROM loom_audit WHERE (user = 'alice' AND seq = 3) OR (user = 'bob' AND seq = 2)")?;
    assert_eq!(
        named(&log.verify(None).await?),
        [at("alice", 3, ProblemKind::Deleted { count: 1 }), at("bob", 2, ProblemKind::Deleted { count: 1 })]
    );

    // Two rows swapped in storage order (their rowids exchanged).
    swap_rowids(&path, "bob", 3, 4)?;
    let report = log.verify(Some(&user("bob")?)).await?;
    let problems = named(&report);
    assert_eq!(problems.len(), 2, "{report}");
    assert_eq!(problems[0], at("bob", 2, ProblemKind::Deleted { count: 1 }));
    assert!(matches!(&problems[1], (_, Some(3 | 4), ProblemKind::Reordered { .. })), "{report}");

    // A row signed with the key but from another log, then a forged one after it.
    let foreign = signed_elsewhere(6).await?;
    let conn = rusqlite::Connection::open(&path)?;
    conn.execute(
        "INSERT INTO loom_audit (user, seq, at, session, run_id, actor, action, payload, payload_hash, prev, sig)
         VALUES (?1, ?2, ?3, NULL, NULL, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            foreign.user.as_str(),
            foreign.seq as i64,
            foreign.at,
            foreign.actor,
            foreign.action.as_str(),
            foreign.payload.as_ref().map(canonical_json),
            foreign.payload_hash,
            foreign.prev,
            foreign.sig,
        ],
    )?;
    conn.execute(
        "INSERT INTO loom_audit (user, seq, at, session, run_id, actor, action, payload, payload_hash, prev, sig)
         SELECT user, 7, at, session, run_id, actor, action, payload, payload_hash, ?1, ?2
         FROM loom_audit WHERE user = 'alice' AND seq = 5",
        rusqlite::params![foreign.sig, "cd".repeat(32)],
    )?;
    drop(conn);
    let report = log.verify(Some(&user("alice")?)).await?;
    assert_eq!(
        named(&report),
        [
            at("alice", 3, ProblemKind::Deleted { count: 1 }),
            at("alice", 6, ProblemKind::Inserted { why: Insertion::BrokenLink }),
            at("alice", 7, ProblemKind::Edited { part: EditedPart::Fields }),
        ],
        "{report}"
    );
    // Appends go on after the damage.
    assert_eq!(log.append(AuditRecord::new(user("alice")?, AuditAction::RunFinished, json!({}))).await?.seq, 8);
    Ok(())
}

#[tokio::test]
async fn forgetting_a_user_in_sqlite_keeps_the_chain_verifiable() -> anyhow::Result<()> {
    let dir = TempDir::new("sqlite-forget")?;
    let log = SqliteAuditLog::open(dir.join("audit.db"), key()?)?;
    fill(&log).await?;
    assert_eq!(log.forget(&user("bob")?).await?, 5);
    let bob = log.entries(&user("bob")?).await?;
    assert!(bob[..5].iter().all(|e| e.payload.is_none()) && bob[5].action == AuditAction::Forgotten);
    assert!(log.verify(None).await?.is_intact());
    Ok(())
}

/// Not a test of its own: the writer the concurrency tests start as a child process (this test
/// binary run again with this test's name), told what to do by environment variables. Without
/// them, it does nothing.
#[tokio::test]
#[ignore = "a child process of the concurrent-writer tests; does nothing on its own"]
async fn audit_child_writer() -> anyhow::Result<()> {
    let Ok(path) = std::env::var(CHILD_PATH) else { return Ok(()) };
    let backend = std::env::var(CHILD_BACKEND)?;
    let id: u64 = std::env::var(CHILD_ID)?.parse()?;
    let log: Box<dyn AuditLog> = match backend.as_str() {
        "file" => Box::new(FileAuditLog::open(&path, key()?)?),
        "sqlite" => Box::new(SqliteAuditLog::open(&path, key()?)?),
        other => anyhow::bail!("unknown backend {other}"),
    };
    for n in 0..PER_WRITER {
        let name = if n % 2 == 0 { "alice" } else { "bob" };
        log.append(AuditRecord::new(user(name)?, AuditAction::ModelCall, json!({"writer": id, "n": n}))).await?;
    }
    Ok(())
}

/// Starts [`WRITERS`] processes appending to the log at `path` at once, and waits for them.
fn run_writers(backend: &str, path: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let children = (0..WRITERS)
        .map(|id| {
            Command::new(&exe)
                .args(["audit_child_writer", "--exact", "--include-ignored", "--nocapture", "--test-threads", "1"])
                .env(CHILD_PATH, path)
                .env(CHILD_BACKEND, backend)
                .env(CHILD_ID, id.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for child in children {
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && stdout.contains("1 passed"),
            "a writer failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Every writer's entries are in the log, one whole chain per user.
async fn check_writers(log: &dyn AuditLog, users: [&UserId; 2]) -> anyhow::Result<()> {
    let per_user = WRITERS as u64 * PER_WRITER / 2;
    let mut seen = std::collections::HashSet::new();
    for user in users {
        let report = log.verify(Some(user)).await?;
        assert!(report.is_intact(), "{report}");
        assert_eq!(report.entries as u64, per_user);
        let entries = log.entries(user).await?;
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=per_user).collect::<Vec<_>>());
        for e in entries {
            let payload = e.payload.context("no payload")?;
            seen.insert((payload["writer"].as_u64(), payload["n"].as_u64()));
        }
    }
    assert_eq!(seen.len(), WRITERS * PER_WRITER as usize);
    Ok(())
}

#[tokio::test]
async fn writers_in_several_processes_keep_one_chain_per_user_in_a_file() -> anyhow::Result<()> {
    let dir = TempDir::new("processes-file")?;
    let path = dir.join("audit.jsonl");
    let log = FileAuditLog::open(&path, key()?)?;
    run_writers("file", &path)?;
    check_writers(&log, [&user("alice")?, &user("bob")?]).await?;
    assert_eq!(read_lines(&path)?.len(), WRITERS * PER_WRITER as usize);
    // This process appends after them, from where they left off.
    assert_eq!(log.append(AuditRecord::new(user("alice")?, AuditAction::RunFinished, json!({}))).await?.seq, 101);
    Ok(())
}

#[tokio::test]
async fn writers_in_several_processes_keep_one_chain_per_user_in_sqlite() -> anyhow::Result<()> {
    let dir = TempDir::new("processes-sqlite")?;
    let path = dir.join("audit.db");
    let log = SqliteAuditLog::open(&path, key()?)?;
    run_writers("sqlite", &path)?;
    check_writers(&log, [&user("alice")?, &user("bob")?]).await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs PostgreSQL: LOOM_TEST_POSTGRES_URL (.ci/run starts one)"]
async fn writers_on_several_connections_keep_one_chain_per_user_in_postgres() -> anyhow::Result<()> {
    use loomflow::telemetry::audit::PostgresAuditLog;

    let url = common::postgres_url();
    // Users of this run only: the table is shared with earlier runs.
    let run = RunId::generate().to_string().to_lowercase();
    let (alice, bob) = (user(&format!("alice-{run}"))?, user(&format!("bob-{run}"))?);
    let mut writers = Vec::new();
    for id in 0..WRITERS as u64 {
        // A pool (and so a connection) of its own per writer.
        let log = PostgresAuditLog::connect(&url, key()?).await?;
        let (alice, bob) = (alice.clone(), bob.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..PER_WRITER {
                let user = if n % 2 == 0 { &alice } else { &bob };
                let record = AuditRecord::new(user.clone(), AuditAction::ModelCall, json!({"writer": id, "n": n}));
                log.append(record).await?;
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let log = PostgresAuditLog::connect(&url, key()?).await?;
    check_writers(&log, [&alice, &bob]).await?;
    assert!(log.users().await?.contains(&alice));

    // Erasure keeps the chain verifiable here too; an edit is named.
    assert_eq!(log.forget(&alice).await?, WRITERS as u64 * PER_WRITER / 2);
    assert!(log.verify(Some(&alice)).await?.is_intact());
    sqlx::query("UPDATE loom_audit SET actor = 'operator' WHERE user_id = $1 AND seq = 7")
        .bind(bob.as_str())
        .execute(log.pool())
        .await?;
    let report = log.verify(Some(&bob)).await?;
    assert_eq!(
        named(&report),
        [(Some(bob.to_string()), Some(7), ProblemKind::Edited { part: EditedPart::Fields })],
        "{report}"
    );
    Ok(())
}
