//! The audit log in a JSONL file, shared by processes through a file lock.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use serde_json::Value;

use super::chain::{Prepared, Stored, next_after};
use super::key::AuditKey;
use super::policy::AuditPolicy;
use super::record::{AuditEntry, AuditRecord};
use super::verify::{VerifyReport, report};
use super::{AuditError, AuditLog};
use crate::id::UserId;

/// An audit log in one JSONL file: one [`AuditEntry`] per line, every user's entries in the
/// order they were appended.
///
/// Several processes may append to the same file at once and still keep one chain per user:
/// each append takes an exclusive lock on the file (`flock` on Unix, `LockFileEx` on
/// Windows, through [`File::lock`]), reads the user's last entry, writes its line, syncs it
/// to disk (`sync_data`) and unlocks. Lines appended since this process last looked are the
/// only ones read, so a single writer never rescans the whole file. Reads take a shared lock.
/// All file work runs on tokio's blocking pool.
///
/// A damaged line (a crash in the middle of a write, an edit that broke the JSON) does not
/// stop the log: [`verify`](AuditLog::verify) reports it as [`ProblemKind::Corrupt`](super::ProblemKind::Corrupt),
/// [`entries`](AuditLog::entries) leaves it out, and appends go on after it.
///
/// [`forget`](AuditLog::forget) rewrites the file (to a temporary file next to it, synced,
/// then renamed over it): writers waiting on the old file see that it was replaced and open
/// the new one. Anything else that rewrites the file should take the same lock.
///
/// ```
/// use loomflow::UserId;
/// use loomflow::telemetry::audit::{AuditAction, AuditKey, AuditLog, AuditRecord, FileAuditLog, verify_file};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let path = std::env::temp_dir().join(format!("loom-audit-doc-{}.jsonl", std::process::id()));
/// let key = AuditKey::from_bytes([7u8; 32])?;
/// let log = FileAuditLog::open(&path, key.clone())?;
/// log.append(AuditRecord::new(UserId::new("alice")?, AuditAction::RunStarted, serde_json::json!({}))).await?;
/// assert!(verify_file(&path, &key)?.is_intact());
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
pub struct FileAuditLog {
    path: Arc<PathBuf>,
    key: AuditKey,
    policy: AuditPolicy,
    state: Arc<Mutex<FileState>>,
}

/// What this process knows of the file: its open handle, how far it has read it, and the last
/// entry of each user in what it read.
#[derive(Debug, Default)]
struct FileState {
    file: Option<File>,
    scanned: u64,
    heads: HashMap<UserId, Head>,
}

#[derive(Debug)]
struct Head {
    seq: u64,
    sig: String,
}

/// What an append needs of a line.
#[derive(Deserialize)]
struct HeadLine {
    user: UserId,
    seq: u64,
    sig: String,
}

impl std::fmt::Debug for FileAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAuditLog").field("path", &self.path).field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl FileAuditLog {
    /// Opens the log at `path`, creating the file if it does not exist (its directory must),
    /// signing with `key` and redacting by [`AuditPolicy::default`].
    pub fn open(path: impl AsRef<Path>, key: AuditKey) -> Result<Self, AuditError> {
        let path = path.as_ref().to_owned();
        let file = open_append(&path)?;
        Ok(Self {
            path: Arc::new(path),
            key,
            policy: AuditPolicy::default(),
            state: Arc::new(Mutex::new(FileState { file: Some(file), ..FileState::default() })),
        })
    }

    /// Redacts payloads by `policy` instead.
    #[must_use]
    pub fn policy(mut self, policy: AuditPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the blocking pool with the file's path and this process's state of it.
    async fn with_state<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path, &mut FileState) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, AuditError> {
        let (path, state) = (Arc::clone(&self.path), Arc::clone(&self.state));
        tokio::task::spawn_blocking(move || f(&path, &mut lock_state(&state))).await.map_err(AuditError::task)?
    }

    /// Reads the file's lines (of `user`, or all) on the blocking pool.
    async fn read(&self, user: Option<&UserId>) -> Result<Vec<Stored>, AuditError> {
        let (path, user) = (Arc::clone(&self.path), user.cloned());
        tokio::task::spawn_blocking(move || read_stored(&path, user.as_ref())).await.map_err(AuditError::task)?
    }
}

/// The process's state of the file; after a panic in the middle of an append, forgotten (it
/// is read again from the file).
fn lock_state(state: &Mutex<FileState>) -> MutexGuard<'_, FileState> {
    state.lock().unwrap_or_else(|poisoned| {
        let mut state = poisoned.into_inner();
        *state = FileState::default();
        state
    })
}

/// Checks the chains of the log file at `path` with `key`, as
/// [`AuditLog::verify`] does, without opening it as a log: for a command line
/// (`loom audit verify FILE`) or a job that audits copies. Blocking; it takes a shared lock, so
/// it waits for an append in progress.
pub fn verify_file(path: impl AsRef<Path>, key: &AuditKey) -> Result<VerifyReport, AuditError> {
    Ok(report(key, read_stored(path.as_ref(), None)?))
}

#[async_trait::async_trait]
impl AuditLog for FileAuditLog {
    async fn append(&self, record: AuditRecord) -> Result<AuditEntry, AuditError> {
        let prepared = Prepared::new(record, &self.policy);
        let key = self.key.clone();
        self.with_state(move |path, state| {
            let _lock = lock_current(state, path)?;
            let appended = append_line(state, path, &key, prepared);
            if appended.is_err() {
                // What this process knows of the file may be off: read it again next time.
                *state = FileState::default();
            }
            appended
        })
        .await
    }

    async fn entries(&self, user: &UserId) -> Result<Vec<AuditEntry>, AuditError> {
        let mut entries: Vec<AuditEntry> = self
            .read(Some(user))
            .await?
            .into_iter()
            .filter_map(|s| match s {
                Stored::Entry(e) => Some(e),
                Stored::Corrupt { .. } => None,
            })
            .collect();
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    async fn users(&self) -> Result<Vec<UserId>, AuditError> {
        let users: BTreeSet<UserId> = self
            .read(None)
            .await?
            .into_iter()
            .filter_map(|s| match s {
                Stored::Entry(e) => Some(e.user),
                Stored::Corrupt { .. } => None,
            })
            .collect();
        Ok(users.into_iter().collect())
    }

    async fn verify(&self, user: Option<&UserId>) -> Result<VerifyReport, AuditError> {
        let stored = self.read(user).await?;
        Ok(report(&self.key, stored))
    }

    async fn forget(&self, user: &UserId) -> Result<u64, AuditError> {
        let (key, policy, user) = (self.key.clone(), self.policy.clone(), user.clone());
        self.with_state(move |path, state| {
            let _lock = lock_current(state, path)?;
            let erased = rewrite_forgetting(state, path, &key, &policy, &user);
            // The file was replaced (or may have been): open and read it again next time. The
            // lock on the old one is held until `_lock` goes.
            *state = FileState::default();
            erased
        })
        .await
    }
}

fn open_append(path: &Path) -> Result<File, AuditError> {
    OpenOptions::new().read(true).append(true).create(true).open(path).map_err(AuditError::io(path))
}

/// Unlocks a file when dropped. It holds a duplicate of the locked handle: the lock belongs
/// to the open file, so dropping this releases it even if the code holding it panics.
struct Unlock(File);

impl Drop for Unlock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn lock(file: &File, path: &Path, exclusive: bool) -> Result<Unlock, AuditError> {
    let held = Unlock(file.try_clone().map_err(AuditError::io(path))?);
    if exclusive { held.0.lock() } else { held.0.lock_shared() }.map_err(AuditError::io(path))?;
    Ok(held)
}

/// Whether `file` is still the file at `path` (not replaced by a `forget` while we waited for
/// its lock).
#[cfg(unix)]
fn is_current(file: &File, path: &Path) -> Result<bool, AuditError> {
    use std::os::unix::fs::MetadataExt as _;
    let open = file.metadata().map_err(AuditError::io(path))?;
    match fs::metadata(path) {
        Ok(now) => Ok(open.dev() == now.dev() && open.ino() == now.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(AuditError::io(path)(e)),
    }
}

#[cfg(not(unix))]
fn is_current(_: &File, _: &Path) -> Result<bool, AuditError> {
    Ok(true)
}

/// Locks the file at `path` exclusively, through the state's handle if it is still that file.
fn lock_current(state: &mut FileState, path: &Path) -> Result<Unlock, AuditError> {
    loop {
        let file = match state.file.take() {
            Some(file) => file,
            None => {
                *state = FileState::default();
                open_append(path)?
            }
        };
        let held = lock(&file, path, true)?;
        if is_current(&file, path)? {
            state.file = Some(file);
            return Ok(held);
        }
        // Replaced while we waited: drop the old file (and its lock) and open the new one.
    }
}

/// Under the exclusive lock: reads the lines appended since the state last looked, then
/// appends the user's next entry.
fn append_line(
    state: &mut FileState,
    path: &Path,
    key: &AuditKey,
    prepared: Prepared,
) -> Result<AuditEntry, AuditError> {
    let io = AuditError::io;
    let Some(mut file) = state.file.as_ref() else {
        return Err(io(path)(std::io::Error::other("the log file is not open")));
    };
    let len = file.metadata().map_err(io(path))?.len();
    if len < state.scanned {
        // Shorter than what was read: rewritten by someone else. Read it all again.
        state.scanned = 0;
        state.heads.clear();
    }
    let mut partial = false;
    if len > state.scanned {
        let mut bytes = read_from(file, state.scanned.saturating_sub(1), path)?;
        if state.scanned > 0 {
            if bytes.first() == Some(&b'\n') {
                bytes.remove(0);
            } else {
                // Not the end of a line where this process left off: the file was changed
                // before that point. Read it all again.
                state.scanned = 0;
                state.heads.clear();
                bytes = read_from(file, 0, path)?;
            }
        }
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // A last line without its newline (a write cut short) is ended before ours.
        partial = complete < bytes.len();
        for line in bytes.split(|&b| b == b'\n') {
            if let Ok(HeadLine { user, seq, sig }) = serde_json::from_slice::<HeadLine>(line)
                && state.heads.get(&user).is_none_or(|head| seq >= head.seq)
            {
                state.heads.insert(user, Head { seq, sig });
            }
        }
        state.scanned = len;
    }

    let head = state.heads.get(&prepared.user).map(|h| (h.seq, h.sig.as_str()));
    let (seq, prev) = next_after(&prepared.user, head)?;
    let entry = prepared.seal(key, seq, prev);
    let mut line = Vec::with_capacity(512);
    if partial {
        line.push(b'\n');
    }
    serde_json::to_writer(&mut line, &entry).map_err(AuditError::Serialize)?;
    line.push(b'\n');
    file.write_all(&line).map_err(io(path))?;
    file.sync_data().map_err(io(path))?;
    state.scanned = len + line.len() as u64;
    state.heads.insert(entry.user.clone(), Head { seq: entry.seq, sig: entry.sig.clone() });
    Ok(entry)
}

/// The bytes of `file` from `offset` to its end.
fn read_from(mut file: &File, offset: u64, path: &Path) -> Result<Vec<u8>, AuditError> {
    file.seek(SeekFrom::Start(offset)).map_err(AuditError::io(path))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(AuditError::io(path))?;
    Ok(bytes)
}

/// Under the exclusive lock: writes the file again with the payloads of `user` erased and
/// their `Forgotten` entry at the end, to a temporary file renamed over the log.
fn rewrite_forgetting(
    state: &FileState,
    path: &Path,
    key: &AuditKey,
    policy: &AuditPolicy,
    user: &UserId,
) -> Result<u64, AuditError> {
    let io = AuditError::io;
    let Some(mut file) = state.file.as_ref() else {
        return Err(io(path)(std::io::Error::other("the log file is not open")));
    };
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io(path))?;
    file.read_to_end(&mut bytes).map_err(io(path))?;

    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut out = Vec::with_capacity(bytes.len() + 512);
    let mut erased = 0;
    let mut head: Option<(u64, String)> = None;
    for line in lines {
        match serde_json::from_slice::<AuditEntry>(line) {
            Ok(mut entry) if entry.user == *user => {
                if head.as_ref().is_none_or(|(seq, _)| entry.seq >= *seq) {
                    head = Some((entry.seq, entry.sig.clone()));
                }
                if entry.payload.take().is_some() {
                    erased += 1;
                    serde_json::to_writer(&mut out, &entry).map_err(AuditError::Serialize)?;
                } else {
                    out.extend_from_slice(line);
                }
            }
            // Other users' lines, and unreadable ones, are kept byte for byte.
            _ => out.extend_from_slice(line),
        }
        out.push(b'\n');
    }
    let (seq, prev) = next_after(user, head.as_ref().map(|(seq, sig)| (*seq, sig.as_str())))?;
    let forgotten = Prepared::forgotten(user.clone(), erased, policy).seal(key, seq, prev);
    serde_json::to_writer(&mut out, &forgotten).map_err(AuditError::Serialize)?;
    out.push(b'\n');

    let name = path.file_name().ok_or_else(|| {
        io(path)(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the log's path does not name a file"))
    })?;
    let temp = path.with_file_name(format!(".{}.{}.forget", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut new = File::create(&temp)?;
        new.set_permissions(file.metadata()?.permissions())?;
        new.write_all(&out)?;
        new.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io(path)(e));
    }
    sync_dir(path)?;
    Ok(erased)
}

/// Makes a rename in `path`'s directory durable.
#[cfg(unix)]
fn sync_dir(path: &Path) -> Result<(), AuditError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(AuditError::io(dir))
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> Result<(), AuditError> {
    Ok(())
}

/// The lines of the file at `path` (those of `user`, and unreadable ones that may be theirs,
/// when given), read under a shared lock.
fn read_stored(path: &Path, user: Option<&UserId>) -> Result<Vec<Stored>, AuditError> {
    let bytes = loop {
        let mut file = File::open(path).map_err(AuditError::io(path))?;
        let _lock = lock(&file, path, false)?;
        if !is_current(&file, path)? {
            continue;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(AuditError::io(path))?;
        break bytes;
    };
    let mut stored = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let item = match serde_json::from_slice::<AuditEntry>(line) {
            Ok(entry) => Stored::Entry(entry),
            Err(e) => {
                // What can still be made out of it, to say whose entry it was.
                let loose = serde_json::from_slice::<Value>(line).ok();
                let field = |name: &str| loose.as_ref().and_then(|v| v.get(name).cloned());
                Stored::Corrupt {
                    line: i as u64 + 1,
                    user: field("user").and_then(|u| u.as_str().and_then(|u| UserId::new(u).ok())),
                    seq: field("seq").and_then(|s| s.as_u64()),
                    error: e.to_string(),
                }
            }
        };
        let theirs = match (&item, user) {
            (_, None) => true,
            (Stored::Entry(e), Some(user)) => e.user == *user,
            (Stored::Corrupt { user: whose, .. }, Some(user)) => whose.as_ref().is_none_or(|w| w == user),
        };
        if theirs {
            stored.push(item);
        }
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::record::AuditAction;
    use super::super::verify::{EditedPart, ProblemKind};
    use super::*;

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str) -> Self {
            let id = crate::id::RunId::generate();
            Self(std::env::temp_dir().join(format!("loom-audit-{name}-{id}.jsonl")))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    fn key() -> Result<AuditKey> {
        Ok(AuditKey::from_bytes([5u8; 32])?)
    }

    fn record(user: &UserId, n: u64) -> AuditRecord {
        AuditRecord::new(user.clone(), AuditAction::ToolResult, json!({ "n": n, "result": "ok" })).actor("tool")
    }

    #[tokio::test]
    async fn appends_read_back_across_opens_and_verify() -> Result {
        let file = TempFile::new("reopen");
        let alice = UserId::new("alice")?;
        {
            let log = FileAuditLog::open(&file.0, key()?)?;
            for n in 1..=3 {
                log.append(record(&alice, n)).await?;
            }
        }
        let log = FileAuditLog::open(&file.0, key()?)?;
        let fourth = log.append(record(&alice, 4)).await?;
        assert_eq!(fourth.seq, 4);
        let entries = log.entries(&alice).await?;
        assert_eq!(entries.len(), 4);
        assert_eq!(fourth.prev, entries[2].sig);
        assert!(verify_file(&file.0, &key()?)?.is_intact());
        assert_eq!(fs::read_to_string(&file.0)?.lines().count(), 4);
        Ok(())
    }

    #[tokio::test]
    async fn a_line_appended_by_another_handle_is_seen_without_a_rescan_from_the_start() -> Result {
        let file = TempFile::new("two-handles");
        let alice = UserId::new("alice")?;
        let (one, two) = (FileAuditLog::open(&file.0, key()?)?, FileAuditLog::open(&file.0, key()?)?);
        for n in 0..6 {
            let log = if n % 2 == 0 { &one } else { &two };
            assert_eq!(log.append(record(&alice, n)).await?.seq, n + 1);
        }
        assert!(one.verify(None).await?.is_intact());
        Ok(())
    }

    #[tokio::test]
    async fn a_corrupt_line_is_reported_and_appends_go_on_after_it() -> Result {
        let file = TempFile::new("corrupt");
        let alice = UserId::new("alice")?;
        let log = FileAuditLog::open(&file.0, key()?)?;
        log.append(record(&alice, 1)).await?;
        // A write cut short: half a line, no newline.
        let mut handle = OpenOptions::new().append(true).open(&file.0)?;
        handle.write_all(br#"{"seq":2,"user":"alice","at":"#)?;
        drop(handle);

        let next = log.append(record(&alice, 2)).await?;
        assert_eq!(next.seq, 2);
        let report = log.verify(None).await?;
        assert_eq!(report.entries, 2);
        assert_eq!(report.problems.len(), 1, "{report}");
        assert!(matches!(report.problems[0].kind, ProblemKind::Corrupt { line: 2, .. }), "{report}");
        assert_eq!(report.problems[0].seq, None);
        assert_eq!(log.entries(&alice).await?.len(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn forget_rewrites_the_file_and_the_chain_still_verifies() -> Result {
        let file = TempFile::new("forget");
        let (alice, bob) = (UserId::new("alice")?, UserId::new("bob")?);
        let log = FileAuditLog::open(&file.0, key()?)?;
        let other = FileAuditLog::open(&file.0, key()?)?;
        for n in 1..=3 {
            log.append(record(&alice, n)).await?;
            log.append(record(&bob, n)).await?;
        }
        assert_eq!(log.forget(&alice).await?, 3);
        let after_forget = fs::read_to_string(&file.0)?;
        assert!(
            after_forget.contains(r#""user":"bob","#)
                && !after_forget.contains(
                    r#""user":"alice","session":null,"run_id":null,"actor":"tool","action":"tool_result","payload":{"#
                )
        );
        // A handle opened before the rewrite appends to the new file.
        assert_eq!(other.append(record(&alice, 5)).await?.seq, 5);
        assert_eq!(log.append(record(&bob, 4)).await?.seq, 4);

        let entries = log.entries(&alice).await?;
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert!(entries[..3].iter().all(|e| e.payload.is_none()));
        assert_eq!(entries[3].action, AuditAction::Forgotten);
        assert_eq!(log.entries(&bob).await?.len(), 4);
        let report = verify_file(&file.0, &key()?)?;
        assert!(report.is_intact(), "{report}");

        // Still tamper-evident: an erased entry's hash cannot be changed.
        let edited = fs::read_to_string(&file.0)?.replacen(&entries[0].payload_hash, &"0".repeat(64), 1);
        fs::write(&file.0, edited)?;
        let report = verify_file(&file.0, &key()?)?;
        assert_eq!(report.problems.len(), 1, "{report}");
        assert_eq!(report.problems[0].kind, ProblemKind::Edited { part: EditedPart::Fields });
        Ok(())
    }
}
