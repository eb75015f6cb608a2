//! The filesystem tools through the public API: an escape table run against every tool (with
//! `openat2` and with the component walk), a symbolic-link race, each tool's behaviour, and an
//! agent that uses them on the scripted model.
#![cfg(target_os = "linux")]

mod common;

use common::tool_results;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use loomflow::prelude::*;
use loomflow::tools::fs::Filesystem;
use serde_json::{Value, json};

const SECRET: &str = "TOP-SECRET";
/// A regular expression that matches the secret without containing it: a reply that repeats
/// the pattern does not look like a leak.
const SECRET_RE: &str = "TOP-SEC(RET)";
const OUTSIDE_NAME: &str = "ZZ-outside";
const TOOLS: [&str; 6] = ["read_file", "write_file", "edit_file", "list_dir", "glob", "grep"];

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A scratch folder holding `root/` (the tools' root) and `outside/` (what must stay out of
/// reach), removed when dropped.
struct Fx {
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
    rt: tokio::runtime::Runtime,
}

#[derive(Debug)]
struct Reply {
    error: bool,
    text: String,
}

impl Fx {
    fn new() -> anyhow::Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("loom-tools-fs-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(outside.join("dir"))?;
        std::fs::write(outside.join("ZZ-outside-secret.txt"), format!("{SECRET}-CONTENT\n"))?;
        std::fs::write(outside.join("dir/ZZ-outside-inner.txt"), format!("{SECRET}-INNER\n"))?;
        std::fs::write(root.join("file.txt"), "inside\n")?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Self { base, root, outside, rt })
    }

    fn fs(&self) -> anyhow::Result<Filesystem> {
        Ok(Filesystem::new(&self.root)?)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> anyhow::Result<()> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, content)?;
        Ok(())
    }

    fn link(&self, rel: &str, target: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(target, path)?;
        Ok(())
    }

    fn read(&self, rel: &str) -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(self.path(rel))?)
    }

    fn call(&self, fs: &Filesystem, tool: &str, args: Value) -> anyhow::Result<Reply> {
        let tools = fs.tools();
        let tool = tools
            .iter()
            .find(|t| t.definition().name() == tool)
            .ok_or_else(|| anyhow::anyhow!("no tool named {tool}"))?;
        let ctx = RunContext::new(UserId::anonymous());
        Ok(match self.rt.block_on(tool.call(&ctx, &args.to_string())) {
            Ok(output) => Reply { error: false, text: output.as_text().into_owned() },
            Err(e) => Reply { error: true, text: e.message().to_owned() },
        })
    }

    /// A call that must succeed; its text.
    fn ok(&self, fs: &Filesystem, tool: &str, args: Value) -> anyhow::Result<String> {
        let reply = self.call(fs, tool, args.clone())?;
        anyhow::ensure!(!reply.error, "{tool} {args} failed: {}", reply.text);
        Ok(reply.text)
    }

    /// A call that must fail; its message.
    fn err(&self, fs: &Filesystem, tool: &str, args: Value) -> anyhow::Result<String> {
        let reply = self.call(fs, tool, args.clone())?;
        anyhow::ensure!(reply.error, "{tool} {args} should have failed, but returned: {}", reply.text);
        Ok(reply.text)
    }

    /// Everything under `outside/`: each path with its content (or its kind).
    fn outside_snapshot(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        snapshot(&self.outside, "", &mut out)?;
        Ok(out)
    }
}

fn snapshot(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.is_dir() {
            out.insert(name.clone(), "<dir>".to_owned());
            snapshot(&entry.path(), &format!("{name}/"), out)?;
        } else if meta.is_file() {
            out.insert(name, std::fs::read_to_string(entry.path()).unwrap_or_else(|_| "<binary>".to_owned()));
        } else {
            out.insert(name, "<other>".to_owned());
        }
    }
    Ok(())
}

impl Drop for Fx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

// ---------------------------------------------------------------------------------------------
// The escape table
// ---------------------------------------------------------------------------------------------

/// What a call in the table must do.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Fail, with a message that contains this.
    Refused(&'static str),
    /// Succeed and find nothing (a walk that must not have gone outside).
    NoMatch,
}

/// A call to try: the tool, its arguments, and what it must do.
type Call = (&'static str, Value, Expect);

struct Case {
    name: &'static str,
    /// Makes what the case needs under the root; returns the calls to try.
    setup: fn(&Fx) -> anyhow::Result<Vec<Call>>,
}

use Expect::{NoMatch, Refused};

fn secret_paths(prefix: &str) -> Vec<Call> {
    // Every tool aimed through `prefix` at `outside/`.
    let file = format!("{prefix}/ZZ-outside-secret.txt");
    vec![
        ("read_file", json!({"path": file}), Refused("outside the root")),
        ("write_file", json!({"path": format!("{prefix}/new.txt"), "content": "PWNED"}), Refused("outside the root")),
        (
            "write_file",
            json!({"path": format!("{prefix}/made/new.txt"), "content": "PWNED"}),
            Refused("outside the root"),
        ),
        ("edit_file", json!({"path": file, "old_string": SECRET, "new_string": "PWNED"}), Refused("outside the root")),
        ("list_dir", json!({"path": prefix}), Refused("outside the root")),
        ("glob", json!({"pattern": format!("{prefix}/*")}), Refused("outside the root")),
        ("grep", json!({"pattern": SECRET_RE, "path": prefix}), Refused("outside the root")),
        ("grep", json!({"pattern": SECRET_RE}), NoMatch),
        ("glob", json!({"pattern": "**/*ZZ-outside*"}), NoMatch),
    ]
}

fn escapes() -> Vec<Case> {
    vec![
        Case {
            name: "`..` out of the root",
            setup: |_| {
                Ok(vec![
                    ("read_file", json!({"path": "../outside/ZZ-outside-secret.txt"}), Refused("outside the root")),
                    (
                        "write_file",
                        json!({"path": "../outside/new.txt", "content": "PWNED"}),
                        Refused("outside the root"),
                    ),
                    (
                        "edit_file",
                        json!({"path": "../outside/ZZ-outside-secret.txt", "old_string": SECRET, "new_string": "x"}),
                        Refused("outside the root"),
                    ),
                    ("list_dir", json!({"path": ".."}), Refused("outside the root")),
                    ("glob", json!({"pattern": "../outside/*"}), Refused("`..`")),
                    ("grep", json!({"pattern": SECRET_RE, "path": "../outside"}), Refused("outside the root")),
                    ("grep", json!({"pattern": SECRET_RE, "glob": "../outside/*"}), Refused("without `..`")),
                ])
            },
        },
        Case {
            name: "`a/../../x`",
            setup: |fx| {
                std::fs::create_dir_all(fx.path("a/b"))?;
                Ok(vec![
                    (
                        "read_file",
                        json!({"path": "a/../../outside/ZZ-outside-secret.txt"}),
                        Refused("outside the root"),
                    ),
                    (
                        "write_file",
                        json!({"path": "a/b/../../../outside/new.txt", "content": "x"}),
                        Refused("outside the root"),
                    ),
                    (
                        "edit_file",
                        json!({"path": "a/../../outside/ZZ-outside-secret.txt", "old_string": SECRET, "new_string": "x"}),
                        Refused("outside the root"),
                    ),
                    ("list_dir", json!({"path": "a/../.."}), Refused("outside the root")),
                    ("glob", json!({"pattern": "a/**/../../../*"}), Refused("`..`")),
                    ("grep", json!({"pattern": SECRET_RE, "path": "a/b/../../.."}), Refused("outside the root")),
                ])
            },
        },
        Case {
            name: "absolute path outside",
            setup: |fx| {
                let abs = fx.outside.join("ZZ-outside-secret.txt").display().to_string();
                let dir = fx.outside.display().to_string();
                Ok(vec![
                    ("read_file", json!({"path": abs}), Refused("absolute path")),
                    ("read_file", json!({"path": "/etc/passwd"}), Refused("absolute path")),
                    ("write_file", json!({"path": format!("{dir}/new.txt"), "content": "x"}), Refused("absolute path")),
                    (
                        "edit_file",
                        json!({"path": abs, "old_string": SECRET, "new_string": "x"}),
                        Refused("absolute path"),
                    ),
                    ("list_dir", json!({"path": dir}), Refused("absolute path")),
                    ("glob", json!({"pattern": format!("{dir}/*")}), Refused("absolute path")),
                    ("grep", json!({"pattern": SECRET_RE, "path": dir}), Refused("absolute path")),
                    ("grep", json!({"pattern": SECRET_RE, "glob": format!("{dir}/*")}), Refused("must be relative")),
                ])
            },
        },
        Case {
            name: "absolute path inside the root (told the relative form)",
            setup: |fx| {
                let root = std::fs::canonicalize(&fx.root)?.display().to_string();
                Ok(vec![
                    ("read_file", json!({"path": format!("{root}/file.txt")}), Refused("so write `file.txt`")),
                    (
                        "write_file",
                        json!({"path": format!("{root}/new.txt"), "content": "x"}),
                        Refused("so write `new.txt`"),
                    ),
                    ("list_dir", json!({"path": root}), Refused("so write `.`")),
                ])
            },
        },
        Case {
            name: "/proc/self/root",
            setup: |fx| {
                let through_proc = format!("/proc/self/root{}", fx.outside.display());
                Ok(vec![
                    ("read_file", json!({"path": "/proc/self/root/etc/passwd"}), Refused("absolute path")),
                    (
                        "write_file",
                        json!({"path": format!("{through_proc}/new.txt"), "content": "x"}),
                        Refused("absolute path"),
                    ),
                    ("list_dir", json!({"path": "/proc/self/root/"}), Refused("absolute path")),
                    ("grep", json!({"pattern": "root", "path": "/proc/self/root/etc"}), Refused("absolute path")),
                ])
            },
        },
        Case {
            name: "relative link into /proc/self/root",
            setup: |fx| {
                fx.link("p", "../../../../../../../../../proc/self/root/etc/passwd")?;
                fx.link("pd", "../../../../../../../../../proc/self/root")?;
                Ok(vec![
                    ("read_file", json!({"path": "p"}), Refused("outside the root")),
                    ("read_file", json!({"path": "pd/etc/passwd"}), Refused("outside the root")),
                    ("list_dir", json!({"path": "pd"}), Refused("outside the root")),
                    ("grep", json!({"pattern": "root:", "path": "pd/etc"}), Refused("outside the root")),
                    ("grep", json!({"pattern": "root:"}), NoMatch),
                ])
            },
        },
        Case {
            name: "symlink to /etc",
            setup: |fx| {
                fx.link("etc_link", "/etc")?;
                Ok(vec![
                    ("read_file", json!({"path": "etc_link/passwd"}), Refused("outside the root")),
                    ("list_dir", json!({"path": "etc_link"}), Refused("outside the root")),
                    ("glob", json!({"pattern": "etc_link/*"}), Refused("outside the root")),
                    ("glob", json!({"pattern": "**/passwd"}), NoMatch),
                    ("grep", json!({"pattern": "root:", "path": "etc_link"}), Refused("outside the root")),
                    ("grep", json!({"pattern": "root:"}), NoMatch),
                ])
            },
        },
        Case {
            name: "absolute symlink to a folder outside",
            setup: |fx| {
                fx.link("out_link", &fx.outside)?;
                Ok(secret_paths("out_link"))
            },
        },
        Case {
            name: "relative symlink to a folder outside",
            setup: |fx| {
                fx.link("rel_link", "../outside")?;
                Ok(secret_paths("rel_link"))
            },
        },
        Case {
            name: "symlink to a file outside",
            setup: |fx| {
                fx.link("secret_link", fx.outside.join("ZZ-outside-secret.txt"))?;
                Ok(vec![
                    ("read_file", json!({"path": "secret_link"}), Refused("outside the root")),
                    ("write_file", json!({"path": "secret_link", "content": "PWNED"}), Refused("symbolic link")),
                    (
                        "edit_file",
                        json!({"path": "secret_link", "old_string": SECRET, "new_string": "PWNED"}),
                        Refused("symbolic link"),
                    ),
                    ("list_dir", json!({"path": "secret_link"}), Refused("outside the root")),
                    ("grep", json!({"pattern": SECRET_RE, "path": "secret_link"}), Refused("outside the root")),
                    ("grep", json!({"pattern": SECRET_RE}), NoMatch),
                ])
            },
        },
        Case {
            name: "symlink chain leaving the root",
            setup: |fx| {
                fx.link("c1", "c2")?;
                fx.link("c2", "sub/c3")?;
                fx.link("sub/c3", "../../outside")?;
                Ok(secret_paths("c1"))
            },
        },
        Case {
            name: "symlinked folder in the middle of a path",
            setup: |fx| {
                fx.link("a/b", "../../outside")?;
                Ok(secret_paths("a/b"))
            },
        },
        Case {
            name: "symlink to the root's parent",
            setup: |fx| {
                fx.link("sub/up", "../..")?;
                Ok(secret_paths("sub/up/outside"))
            },
        },
        Case {
            name: "symlink out and back in by name",
            setup: |fx| {
                fx.link("me", "../root")?;
                Ok(vec![
                    ("read_file", json!({"path": "me/file.txt"}), Refused("outside the root")),
                    ("write_file", json!({"path": "me/new.txt", "content": "x"}), Refused("outside the root")),
                    ("list_dir", json!({"path": "me"}), Refused("outside the root")),
                ])
            },
        },
        Case {
            name: "dangling symlink to outside, written to",
            setup: |fx| {
                fx.link("dangling", fx.outside.join("created.txt"))?;
                fx.link("dangling_rel", "../outside/created-rel.txt")?;
                Ok(vec![
                    ("write_file", json!({"path": "dangling", "content": "PWNED"}), Refused("symbolic link")),
                    ("write_file", json!({"path": "dangling_rel", "content": "PWNED"}), Refused("symbolic link")),
                    (
                        "edit_file",
                        json!({"path": "dangling", "old_string": "a", "new_string": "b"}),
                        Refused("symbolic link"),
                    ),
                    ("read_file", json!({"path": "dangling"}), Refused("outside the root")),
                ])
            },
        },
        Case {
            name: "dangling symlinked folder, with missing folders created",
            setup: |fx| {
                fx.link("newdir", fx.outside.join("newdir"))?;
                fx.link("newdir_rel", "../outside/newdir-rel")?;
                Ok(vec![
                    ("write_file", json!({"path": "newdir/x.txt", "content": "PWNED"}), Refused("outside the root")),
                    (
                        "write_file",
                        json!({"path": "newdir_rel/a/x.txt", "content": "PWNED"}),
                        Refused("outside the root"),
                    ),
                ])
            },
        },
        Case {
            name: "hard link to a file outside",
            setup: |fx| {
                std::fs::hard_link(fx.outside.join("ZZ-outside-secret.txt"), fx.path("hl"))?;
                Ok(vec![
                    ("read_file", json!({"path": "hl"}), Refused("hard links")),
                    ("write_file", json!({"path": "hl", "content": "PWNED"}), Refused("hard links")),
                    (
                        "edit_file",
                        json!({"path": "hl", "old_string": SECRET, "new_string": "PWNED"}),
                        Refused("hard links"),
                    ),
                    ("grep", json!({"pattern": SECRET_RE, "path": "hl"}), Refused("hard links")),
                    ("grep", json!({"pattern": SECRET_RE}), NoMatch),
                ])
            },
        },
        Case {
            name: "a FIFO (must not hang)",
            setup: |fx| {
                rustix::fs::mkfifoat(rustix::fs::CWD, fx.path("pipe"), rustix::fs::Mode::from_raw_mode(0o644))?;
                Ok(vec![
                    ("read_file", json!({"path": "pipe"}), Refused("named pipe")),
                    ("write_file", json!({"path": "pipe", "content": "x"}), Refused("named pipe")),
                    ("edit_file", json!({"path": "pipe", "old_string": "a", "new_string": "b"}), Refused("named pipe")),
                    ("grep", json!({"pattern": "x", "path": "pipe"}), Refused("named pipe")),
                    ("grep", json!({"pattern": "nothing-matches-this"}), NoMatch),
                ])
            },
        },
        Case {
            name: "/dev/null through a symlink",
            setup: |fx| {
                fx.link("null", "/dev/null")?;
                fx.link("null_rel", "../../../../../../../../../dev/null")?;
                Ok(vec![
                    ("read_file", json!({"path": "null"}), Refused("outside the root")),
                    ("read_file", json!({"path": "null_rel"}), Refused("outside the root")),
                    ("write_file", json!({"path": "null", "content": "x"}), Refused("symbolic link")),
                    (
                        "edit_file",
                        json!({"path": "null_rel", "old_string": "a", "new_string": "b"}),
                        Refused("symbolic link"),
                    ),
                    ("grep", json!({"pattern": "x", "path": "null"}), Refused("outside the root")),
                ])
            },
        },
        Case {
            name: "a unix socket",
            setup: |fx| {
                drop(std::os::unix::net::UnixListener::bind(fx.path("sock"))?);
                Ok(vec![
                    ("read_file", json!({"path": "sock"}), Refused("socket")),
                    ("write_file", json!({"path": "sock", "content": "x"}), Refused("socket")),
                    ("edit_file", json!({"path": "sock", "old_string": "a", "new_string": "b"}), Refused("socket")),
                    ("grep", json!({"pattern": "x", "path": "sock"}), Refused("socket")),
                ])
            },
        },
        Case {
            name: "NUL byte in a path",
            setup: |_| {
                Ok(vec![
                    ("read_file", json!({"path": "file.txt\u{0}/../../outside"}), Refused("NUL byte")),
                    ("write_file", json!({"path": "a\u{0}b", "content": "x"}), Refused("NUL byte")),
                    (
                        "edit_file",
                        json!({"path": "a\u{0}b", "old_string": "a", "new_string": "b"}),
                        Refused("NUL byte"),
                    ),
                    ("list_dir", json!({"path": "\u{0}"}), Refused("NUL byte")),
                    ("glob", json!({"pattern": "*\u{0}"}), Refused("NUL byte")),
                    ("grep", json!({"pattern": "x", "path": "a\u{0}"}), Refused("NUL byte")),
                ])
            },
        },
        Case {
            name: "very long paths",
            setup: |_| {
                let long = format!("{}x", "a/".repeat(2100));
                let long_name = "n".repeat(300);
                Ok(vec![
                    ("read_file", json!({"path": long}), Refused("longest path")),
                    ("write_file", json!({"path": long, "content": "x"}), Refused("longest path")),
                    ("edit_file", json!({"path": long, "old_string": "a", "new_string": "b"}), Refused("longest path")),
                    ("list_dir", json!({"path": long}), Refused("longest path")),
                    ("glob", json!({"pattern": long}), Refused("longest path")),
                    ("grep", json!({"pattern": "x", "path": long}), Refused("longest path")),
                    ("read_file", json!({"path": long_name}), Refused("too long")),
                    ("write_file", json!({"path": long_name, "content": "x"}), Refused("long")),
                ])
            },
        },
        Case {
            name: "`..` after a link is resolved by name, not through the link",
            setup: |fx| {
                fx.link("here", ".")?;
                Ok(vec![
                    ("read_file", json!({"path": "here/../outside/ZZ-outside-secret.txt"}), Refused("does not exist")),
                    ("list_dir", json!({"path": "here/../outside"}), Refused("does not exist")),
                ])
            },
        },
        Case {
            name: "absolute symlink that points inside the root",
            setup: |fx| {
                fx.link("abs_in", fx.root.join("file.txt"))?;
                Ok(vec![
                    ("read_file", json!({"path": "abs_in"}), Refused("absolute path")),
                    ("write_file", json!({"path": "abs_in", "content": "x"}), Refused("symbolic link")),
                ])
            },
        },
        Case {
            name: "symlink loop",
            setup: |fx| {
                fx.link("loop1", "loop2")?;
                fx.link("loop2", "loop1")?;
                Ok(vec![
                    ("read_file", json!({"path": "loop1"}), Refused("cannot be followed")),
                    ("list_dir", json!({"path": "loop1"}), Refused("cannot be followed")),
                    ("write_file", json!({"path": "loop1/x", "content": "x"}), Refused("cannot be followed")),
                ])
            },
        },
        Case {
            name: "glob patterns that try to leave",
            setup: |fx| {
                fx.link("out_link", &fx.outside)?;
                Ok(vec![
                    ("glob", json!({"pattern": "../*"}), Refused("`..`")),
                    ("glob", json!({"pattern": "**/../../*"}), Refused("`..`")),
                    ("glob", json!({"pattern": "/etc/*"}), Refused("absolute path")),
                    ("glob", json!({"pattern": "**/ZZ-outside*"}), NoMatch),
                    ("glob", json!({"pattern": "out_link/**"}), Refused("outside the root")),
                    ("grep", json!({"pattern": SECRET_RE, "glob": "**/*.txt"}), NoMatch),
                ])
            },
        },
        Case {
            name: "backslashes are not separators",
            setup: |_| {
                Ok(vec![
                    ("read_file", json!({"path": "..\\outside\\ZZ-outside-secret.txt"}), Refused("does not exist")),
                    ("list_dir", json!({"path": "..\\outside"}), Refused("does not exist")),
                ])
            },
        },
    ]
}

fn run_escape_table(walk: bool) -> anyhow::Result<()> {
    let cases = escapes();
    let mut tools_covered: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in &cases {
        let fx = Fx::new()?;
        let calls = (case.setup)(&fx)?;
        let before = fx.outside_snapshot()?;
        let mut fs = fx.fs()?;
        if walk {
            fs = fs.resolve_by_walking();
        }
        for (tool, args, expect) in calls {
            *tools_covered.entry(tool).or_default() += 1;
            let reply = fx.call(&fs, tool, args.clone())?;
            let leaked = reply.text.contains(SECRET) || reply.text.contains("PWNED");
            let fine = match expect {
                Refused(needle) => reply.error && reply.text.contains(needle) && !leaked,
                NoMatch => {
                    !reply.error
                        && (reply.text.starts_with("no matches") || reply.text.starts_with("no paths match"))
                        && !leaked
                }
            };
            if !fine {
                failures.push(format!("[{}] {tool} {args}: expected {expect:?}, got {reply:?}", case.name));
            }
        }
        let after = fx.outside_snapshot()?;
        if before != after {
            failures.push(format!("[{}] changed what is outside the root: {before:?} -> {after:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} escape checks failed:\n{}", failures.len(), failures.join("\n"));
    assert!(cases.len() >= 20, "the table has {} escapes", cases.len());
    for tool in TOOLS {
        let n = tools_covered.get(tool).copied().unwrap_or(0);
        assert!(n >= 10, "{tool} is tried in only {n} escapes");
    }
    Ok(())
}

#[test]
fn escape_table_with_openat2() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    assert!(fx.fs()?.uses_openat2(), "this Linux kernel should have openat2 (5.6 or later)");
    run_escape_table(false)
}

#[test]
fn escape_table_with_the_component_walk() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    assert!(!fx.fs()?.resolve_by_walking().uses_openat2());
    run_escape_table(true)
}

/// A device node inside the root: refused without being read (it needs CAP_MKNOD to make).
#[test]
#[ignore = "needs root to create a device node (.ci/run runs as root)"]
fn a_device_node_inside_the_root_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    rustix::fs::mknodat(
        rustix::fs::CWD,
        fx.path("zero"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 5),
    )
    .map_err(|e| anyhow::anyhow!("mknod failed ({e}); run as root, as .ci/run does"))?;
    for walk in [false, true] {
        let fs = if walk { fx.fs()?.resolve_by_walking() } else { fx.fs()? };
        assert!(fx.err(&fs, "read_file", json!({"path": "zero"}))?.contains("character device"));
        assert!(fx.err(&fs, "write_file", json!({"path": "zero", "content": "x"}))?.contains("character device"));
        let edit = fx.err(&fs, "edit_file", json!({"path": "zero", "old_string": "a", "new_string": "b"}))?;
        assert!(edit.contains("character device"), "{edit}");
        assert!(fx.err(&fs, "grep", json!({"pattern": "x", "path": "zero"}))?.contains("character device"));
        let grep = fx.ok(&fs, "grep", json!({"pattern": "inside"}))?;
        assert!(grep.contains("1 not regular files"), "{grep}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The symlink race
// ---------------------------------------------------------------------------------------------

/// A thread swaps `work/` (a real folder) with a link to the folder outside, atomically and
/// over and over, while every tool runs in a loop on paths through `work/`. Nothing outside is
/// ever read, listed, searched or written.
fn race(walk: bool) -> anyhow::Result<()> {
    let fx = Fx::new()?;
    fx.write("work/f.txt", "inside-content\n")?;
    // The outside twin holds the same text, so an escaped edit would find it and succeed.
    std::fs::write(fx.outside.join("f.txt"), format!("inside-content {SECRET}\n"))?;
    std::fs::write(fx.outside.join("ZZ-outside-only.txt"), format!("{SECRET}\n"))?;
    fx.link("swap", "../outside")?;
    let before = fx.outside_snapshot()?;
    let mut fs = fx.fs()?;
    if walk {
        fs = fs.resolve_by_walking();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps, root) = (Arc::clone(&stop), Arc::clone(&swaps), fx.root.clone());
        std::thread::spawn(move || -> rustix::io::Result<()> {
            let dir = rustix::fs::open(&root, rustix::fs::OFlags::DIRECTORY, rustix::fs::Mode::empty())?;
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(&dir, "work", &dir, "swap", rustix::fs::RenameFlags::EXCHANGE)?;
                swaps.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    };

    let (mut inside_reads, mut refused_reads) = (0usize, 0usize);
    let mut leaks = Vec::new();
    let mut i = 0usize;
    while (i < 300 || swaps.load(Ordering::Relaxed) < 300 || inside_reads == 0 || refused_reads == 0) && i < 100_000 {
        i += 1;
        let read = fx.call(&fs, "read_file", json!({"path": "work/f.txt"}))?;
        if read.error {
            refused_reads += 1;
        } else {
            inside_reads += 1;
        }
        let replies = [
            read,
            fx.call(&fs, "write_file", json!({"path": format!("work/new-{}.txt", i % 7), "content": "PWNED"}))?,
            fx.call(&fs, "write_file", json!({"path": format!("work/d{}/new.txt", i % 5), "content": "PWNED"}))?,
            fx.call(
                &fs,
                "edit_file",
                json!({"path": "work/f.txt", "old_string": "inside-content", "new_string": "INSIDE-CONTENT"}),
            )?,
            fx.call(
                &fs,
                "edit_file",
                json!({"path": "work/f.txt", "old_string": "INSIDE-CONTENT", "new_string": "inside-content"}),
            )?,
            fx.call(&fs, "list_dir", json!({"path": "work"}))?,
            fx.call(&fs, "glob", json!({"pattern": "work/*"}))?,
            fx.call(&fs, "grep", json!({"pattern": SECRET_RE, "path": "work"}))?,
            fx.call(&fs, "grep", json!({"pattern": SECRET_RE}))?,
        ];
        for reply in replies {
            if reply.text.contains(SECRET) || reply.text.contains(OUTSIDE_NAME) {
                leaks.push(reply.text);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().map_err(|_| anyhow::anyhow!("the swapping thread panicked"))??;

    assert!(
        leaks.is_empty(),
        "outside content reached the model {} times: {:?}",
        leaks.len(),
        &leaks[..leaks.len().min(3)]
    );
    assert_eq!(fx.outside_snapshot()?, before, "something was written outside the root");
    assert!(inside_reads > 0 && refused_reads > 0, "the race never happened in {i} rounds");
    Ok(())
}

#[test]
fn a_folder_swapped_for_a_link_never_leads_outside_with_openat2() -> anyhow::Result<()> {
    race(false)
}

#[test]
fn a_folder_swapped_for_a_link_never_leads_outside_with_the_component_walk() -> anyhow::Result<()> {
    race(true)
}

// ---------------------------------------------------------------------------------------------
// The tools' behaviour
// ---------------------------------------------------------------------------------------------

#[test]
fn definitions_have_names_hints_and_schemas() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    let tools = fs.tools();
    let names: Vec<&str> = tools.iter().map(|t| t.definition().name()).collect();
    assert_eq!(names, TOOLS);
    for tool in &tools {
        let def = tool.definition();
        let hints = def.hints();
        let writes = matches!(def.name(), "write_file" | "edit_file");
        assert_eq!(hints.destructive, writes, "{}", def.name());
        assert_eq!(hints.read_only, !writes, "{}", def.name());
        assert_eq!(def.parameters()["type"], "object");
        assert_eq!(def.parameters()["additionalProperties"], false);
        assert!(def.description().len() > 60, "{}", def.name());
    }
    assert_eq!(fs.read_file().definition().parameters()["required"], json!(["path"]));
    assert_eq!(fs.edit_file().definition().parameters()["required"], json!(["path", "old_string", "new_string"]));
    assert_eq!(fs.grep().definition().parameters()["required"], json!(["pattern"]));
    // The limits the model is told are the configured ones.
    let fs = fs.max_read_lines(77).glob_max_results(9);
    assert!(fs.read_file().definition().description().contains("77 lines"));
    assert!(fs.glob().definition().description().contains("at most 9"));
    Ok(())
}

#[test]
fn read_only_offers_only_the_reading_tools_and_refuses_writes() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?.read_only();
    assert!(fs.is_read_only());
    let names: Vec<String> = fs.tools().iter().map(|t| t.definition().name().to_owned()).collect();
    assert_eq!(names, ["read_file", "list_dir", "glob", "grep"]);
    let ctx = RunContext::new(UserId::anonymous());
    let write = fs.write_file();
    let e = fx.rt.block_on(write.call(&ctx, r#"{"path": "x.txt", "content": "x"}"#)).err().map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("read-only")));
    assert!(!fx.path("x.txt").exists());
    Ok(())
}

#[test]
fn a_missing_root_is_a_config_error() {
    let e = Filesystem::new("/definitely/not/here/loom").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("/definitely/not/here/loom") && e.contains("cannot be opened"), "{e}");
}

#[test]
fn read_file_numbers_lines_and_reads_ranges() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    let text: String = (1..=10).map(|i| format!("line {i}\n")).collect();
    fx.write("ten.txt", &text)?;

    assert_eq!(
        fx.ok(&fs, "read_file", json!({"path": "ten.txt", "limit": 2}))?,
        "     1\tline 1\n     2\tline 2\n\n(showing lines 1-2; the file goes on: read on with offset=3)"
    );
    let part = fx.ok(&fs, "read_file", json!({"path": "ten.txt", "offset": 9}))?;
    assert_eq!(part, "     9\tline 9\n    10\tline 10\n\n(lines 9-10 of 10; end of file)");
    let whole = fx.ok(&fs, "read_file", json!({"path": "./ten.txt"}))?;
    assert_eq!(whole.lines().count(), 10);
    assert!(whole.ends_with("    10\tline 10\n"));
    // Coerced like any tool argument: "3" is 3.
    assert!(
        fx.ok(&fs, "read_file", json!({"path": "ten.txt", "offset": "3", "limit": 1}))?.starts_with("     3\tline 3")
    );

    let past = fx.err(&fs, "read_file", json!({"path": "ten.txt", "offset": 11}))?;
    assert_eq!(past, "offset 11 is past the end of `ten.txt`, which has 10 lines");
    assert!(fx.err(&fs, "read_file", json!({"path": "ten.txt", "offset": 0}))?.contains("counts lines from 1"));
    assert!(fx.err(&fs, "read_file", json!({"path": "ten.txt", "limit": 0}))?.contains("at least 1"));
    assert!(fx.err(&fs, "read_file", json!({"path": "ten.txt", "lines": 3}))?.contains("unknown argument `lines`"));
    assert!(fx.err(&fs, "read_file", json!({}))?.contains("missing required argument `path`"));
    Ok(())
}

#[test]
fn read_file_caps_lines_and_bytes() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let text: String = (1..=50).map(|i| format!("{i:04}-{}\n", "x".repeat(95))).collect();
    fx.write("big.txt", &text)?;
    // At most max_read_lines lines, whatever the limit asked.
    let fs = fx.fs()?.max_read_lines(5);
    let out = fx.ok(&fs, "read_file", json!({"path": "big.txt", "limit": 40}))?;
    assert_eq!(out.lines().filter(|l| l.contains('\t')).count(), 5);
    assert!(out.ends_with("read on with offset=6)"), "{out}");
    // At most max_read_bytes bytes, cut after a whole line.
    let fs = fx.fs()?.max_read_bytes(1000);
    let out = fx.ok(&fs, "read_file", json!({"path": "big.txt"}))?;
    let shown = out.lines().filter(|l| l.contains('\t')).count();
    assert_eq!(shown, 9, "{out}"); // each numbered line is 108 bytes
    assert!(out.contains("(output cut at 1000 bytes after line 9; read on with offset=10)"), "{out}");
    // A very long line is cut, with its length said.
    fx.write("long.txt", format!("{}\nend\n", "y".repeat(5000)))?;
    let out = fx.ok(&fx.fs()?, "read_file", json!({"path": "long.txt"}))?;
    assert!(out.contains("… [line cut: 5000 bytes in all]"), "{out}");
    assert!(out.contains("     2\tend"));
    Ok(())
}

#[test]
fn read_file_refuses_binary_and_non_utf8_and_says_what_is_wrong() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    fx.write("image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")?;
    fx.write("latin1.txt", b"caf\xe9\n")?;
    fx.write("empty.txt", "")?;
    fx.write("crlf.txt", "a\r\nb\r\n")?;
    std::fs::create_dir_all(fx.path("src"))?;
    fx.write("src/main.rs", "fn main() {}\n")?;
    assert!(fx.err(&fs, "read_file", json!({"path": "image.png"}))?.contains("is a binary file"));
    assert!(fx.err(&fs, "read_file", json!({"path": "latin1.txt"}))?.contains("not UTF-8 text (line 1"));
    assert_eq!(fx.ok(&fs, "read_file", json!({"path": "empty.txt"}))?, "`empty.txt` is empty (0 bytes)");
    assert_eq!(fx.ok(&fs, "read_file", json!({"path": "crlf.txt"}))?, "     1\ta\n     2\tb\n");
    assert!(fx.err(&fs, "read_file", json!({"path": "src"}))?.contains("`src` is a folder; use list_dir"));
    let missing = fx.err(&fs, "read_file", json!({"path": "src/mian.rs"}))?;
    assert_eq!(missing, "`src/mian.rs` does not exist (did you mean `src/main.rs`?)");
    assert!(fx.err(&fs, "read_file", json!({"path": "."}))?.contains("root folder itself"));
    Ok(())
}

#[test]
fn links_inside_the_root_are_followed_for_reading_but_never_written_through() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    fx.write("docs/guide.md", "# Guide\n")?;
    fx.link("guide", "docs/guide.md")?;
    fx.link("d", "docs")?;
    fx.link("docs/up", "../file.txt")?;
    for fs in [fx.fs()?, fx.fs()?.resolve_by_walking()] {
        assert_eq!(fx.ok(&fs, "read_file", json!({"path": "guide"}))?, "     1\t# Guide\n");
        assert_eq!(fx.ok(&fs, "read_file", json!({"path": "d/guide.md"}))?, "     1\t# Guide\n");
        assert_eq!(fx.ok(&fs, "read_file", json!({"path": "d/up"}))?, "     1\tinside\n");
        assert!(fx.ok(&fs, "list_dir", json!({"path": "d"}))?.contains("file     guide.md"));
        // A folder reached through a link is written into; a link as the last part is not.
        fx.ok(&fs, "write_file", json!({"path": "d/new.md", "content": "new"}))?;
        let e = fx.err(&fs, "write_file", json!({"path": "guide", "content": "x"}))?;
        assert_eq!(
            e,
            "`guide` is a symbolic link; write `docs/guide.md`, the path it points to, instead (links are never written through)"
        );
        let e = fx.err(&fs, "edit_file", json!({"path": "d/up", "old_string": "inside", "new_string": "x"}))?;
        assert!(e.contains("edit `file.txt`, the path it points to"), "{e}");
    }
    assert_eq!(fx.read("docs/new.md")?, "new");
    assert_eq!(fx.read("docs/guide.md")?, "# Guide\n");
    assert!(std::fs::symlink_metadata(fx.path("guide"))?.file_type().is_symlink());
    Ok(())
}

#[test]
fn write_file_creates_replaces_and_leaves_no_temporary_files() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    let out = fx.ok(&fs, "write_file", json!({"path": "src/deep/er/lib.rs", "content": "pub fn a() {}\n"}))?;
    assert_eq!(out, "created `src/deep/er/lib.rs` (14 bytes, 1 line)");
    assert_eq!(fx.read("src/deep/er/lib.rs")?, "pub fn a() {}\n");

    std::fs::set_permissions(fx.path("src/deep/er/lib.rs"), std::fs::Permissions::from_mode(0o750))?;
    let out = fx.ok(&fs, "write_file", json!({"path": "src/deep/er/lib.rs", "content": "a\nb\n"}))?;
    assert_eq!(out, "replaced the content of `src/deep/er/lib.rs` (4 bytes, 2 lines)");
    assert_eq!(fx.read("src/deep/er/lib.rs")?, "a\nb\n");
    let mode = std::fs::metadata(fx.path("src/deep/er/lib.rs"))?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o750, "the replaced file's permissions are kept");
    fx.ok(&fs, "write_file", json!({"path": "empty.txt", "content": ""}))?;
    assert_eq!(fx.read("empty.txt")?, "");

    let leftovers: Vec<_> = std::fs::read_dir(fx.path("src/deep/er"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["lib.rs"]);

    assert!(fx.err(&fs, "write_file", json!({"path": "src", "content": "x"}))?.contains("`src` is a folder"));
    let e = fx.err(&fs, "write_file", json!({"path": "file.txt/x", "content": "x"}))?;
    assert!(e.contains("is a file, not a folder"), "{e}");
    let fs = fs.create_parents(false);
    let e = fx.err(&fs, "write_file", json!({"path": "nope/x.txt", "content": "x"}))?;
    assert_eq!(e, "the folder `nope` of `nope/x.txt` does not exist; create it first");
    let fs = fs.max_file_bytes(3);
    assert!(
        fx.err(&fs, "write_file", json!({"path": "x.txt", "content": "four"}))?.contains("the most a file may have")
    );
    Ok(())
}

#[test]
fn a_write_that_fails_leaves_the_old_content_and_no_temporary_file() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    fx.write("ro/keep.txt", "old\n")?;
    std::fs::set_permissions(fx.path("ro"), std::fs::Permissions::from_mode(0o555))?;
    let reply = fx.call(&fs, "write_file", json!({"path": "ro/keep.txt", "content": "new"}))?;
    std::fs::set_permissions(fx.path("ro"), std::fs::Permissions::from_mode(0o755))?;
    if rustix::process::geteuid().is_root() {
        // Root writes into a read-only folder; the write is still whole and atomic.
        assert!(!reply.error, "{}", reply.text);
        assert_eq!(fx.read("ro/keep.txt")?, "new");
    } else {
        assert!(reply.error && reply.text.contains("could not be written"), "{reply:?}");
        assert_eq!(fx.read("ro/keep.txt")?, "old\n");
    }
    assert_eq!(std::fs::read_dir(fx.path("ro"))?.count(), 1);
    Ok(())
}

#[test]
fn edit_file_replaces_exactly_once_or_reports_the_count() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    fx.write("a.rs", "let x = 1;\nlet y = 1;\nlet x = 1;\n")?;

    let e =
        fx.err(&fs, "edit_file", json!({"path": "a.rs", "old_string": "let x = 1;", "new_string": "let x = 2;"}))?;
    assert_eq!(
        e,
        "`old_string` occurs 2 times in `a.rs`; add surrounding lines to make it unique, or set `replace_all` to true to replace all 2"
    );
    let out =
        fx.ok(&fs, "edit_file", json!({"path": "a.rs", "old_string": "let y = 1;", "new_string": "let y = 3;"}))?;
    assert_eq!(out, "replaced 1 occurrence in `a.rs` (first at line 2)");
    let out = fx.ok(
        &fs,
        "edit_file",
        json!({"path": "a.rs", "old_string": "let x = 1;", "new_string": "let x = 2;", "replace_all": true}),
    )?;
    assert_eq!(out, "replaced 2 occurrences in `a.rs` (first at line 1)");
    assert_eq!(fx.read("a.rs")?, "let x = 2;\nlet y = 3;\nlet x = 2;\n");

    let e = fx.err(&fs, "edit_file", json!({"path": "a.rs", "old_string": "let z", "new_string": "q"}))?;
    assert!(e.starts_with("`old_string` was not found in `a.rs`"), "{e}");
    assert!(
        fx.err(&fs, "edit_file", json!({"path": "a.rs", "old_string": "", "new_string": "q"}))?.contains("is empty")
    );
    assert!(
        fx.err(&fs, "edit_file", json!({"path": "a.rs", "old_string": "x", "new_string": "x"}))?.contains("the same")
    );
    assert!(
        fx.err(&fs, "edit_file", json!({"path": "b.rs", "old_string": "x", "new_string": "y"}))?
            .contains("create it with write_file")
    );
    // Deleting text: an empty replacement.
    fx.ok(&fs, "edit_file", json!({"path": "a.rs", "old_string": "let y = 3;\n", "new_string": ""}))?;
    assert_eq!(fx.read("a.rs")?, "let x = 2;\nlet x = 2;\n");
    Ok(())
}

#[test]
fn edit_file_keeps_crlf_endings_and_permissions_and_refuses_binary() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    fx.write("win.txt", "one\r\ntwo\r\nthree\r\n")?;
    std::fs::set_permissions(fx.path("win.txt"), std::fs::Permissions::from_mode(0o600))?;
    fx.ok(&fs, "edit_file", json!({"path": "win.txt", "old_string": "one\ntwo", "new_string": "1\n2"}))?;
    assert_eq!(fx.read("win.txt")?, "1\r\n2\r\nthree\r\n");
    assert_eq!(std::fs::metadata(fx.path("win.txt"))?.permissions().mode() & 0o777, 0o600);
    fx.write("bin.dat", b"ab\0cd")?;
    assert!(
        fx.err(&fs, "edit_file", json!({"path": "bin.dat", "old_string": "ab", "new_string": "x"}))?.contains("binary")
    );
    let fs = fs.max_file_bytes(4);
    assert!(
        fx.err(&fs, "edit_file", json!({"path": "win.txt", "old_string": "1", "new_string": "x"}))?
            .contains("are not edited here")
    );
    Ok(())
}

#[test]
fn list_dir_shows_types_and_sizes_sorted() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    fx.write("b.txt", "12345")?;
    fx.write("a/inner.txt", "x")?;
    fx.write("c.bin", vec![0u8; 3 * 1024])?;
    fx.link("link", "a/inner.txt")?;
    rustix::fs::mkfifoat(rustix::fs::CWD, fx.path("pipe"), rustix::fs::Mode::from_raw_mode(0o644))?;
    let out = fx.ok(&fs, "list_dir", json!({}))?;
    assert_eq!(
        out,
        "`.`: 6 entries\n\
         dir      a/\n\
         file     b.txt (5 bytes)\n\
         file     c.bin (3.0 KiB)\n\
         file     file.txt (7 bytes)\n\
         symlink  link -> a/inner.txt\n\
         fifo     pipe"
    );
    assert_eq!(fx.ok(&fs, "list_dir", json!({"path": "a"}))?, "`a`: 1 entry\nfile     inner.txt (1 byte)");
    std::fs::create_dir(fx.path("empty"))?;
    assert_eq!(fx.ok(&fs, "list_dir", json!({"path": "empty/"}))?, "`empty` is an empty folder");
    assert!(fx.err(&fs, "list_dir", json!({"path": "b.txt"}))?.contains("is a file, not a folder; use read_file"));
    let capped = fx.ok(&fs.list_max_entries(2), "list_dir", json!({"path": "."}))?;
    assert!(capped.ends_with("(5 more entries not shown; use glob with a pattern to narrow down)"), "{capped}");
    Ok(())
}

#[test]
fn glob_finds_sorted_paths_and_caps_them() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    fx.write("Cargo.toml", "")?;
    fx.write("src/lib.rs", "")?;
    fx.write("src/tools/fs.rs", "")?;
    fx.write("src/tools/mod.rs", "")?;
    fx.write("src/notes.md", "")?;
    fx.write(".git/config.rs", "")?;
    fx.write("shared/x.rs", "")?;
    fx.link("linked", "shared")?;

    assert_eq!(
        fx.ok(&fs, "glob", json!({"pattern": "**/*.rs"}))?,
        "shared/x.rs\nsrc/lib.rs\nsrc/tools/fs.rs\nsrc/tools/mod.rs"
    );
    assert_eq!(fx.ok(&fs, "glob", json!({"pattern": "src/*.rs"}))?, "src/lib.rs");
    assert_eq!(fx.ok(&fs, "glob", json!({"pattern": "./*.toml"}))?, "Cargo.toml");
    assert_eq!(fx.ok(&fs, "glob", json!({"pattern": "src/*"}))?, "src/lib.rs\nsrc/notes.md\nsrc/tools/");
    assert_eq!(fx.ok(&fs, "glob", json!({"pattern": "src/{lib,notes}.*"}))?, "src/lib.rs\nsrc/notes.md");
    assert_eq!(fx.ok(&fs, "glob", json!({"pattern": "src/tools/mod.rs"}))?, "src/tools/mod.rs");
    // A linked folder is listed, not entered; a walk that starts inside `.git` searches it.
    assert_eq!(fx.ok(&fs, "glob", json!({"pattern": "linked*"}))?, "linked");
    assert_eq!(fx.ok(&fs, "glob", json!({"pattern": ".git/*"}))?, ".git/config.rs");
    assert_eq!(fx.ok(&fs, "glob", json!({"pattern": "**/*.py"}))?, "no paths match `**/*.py`");
    assert_eq!(
        fx.ok(&fs, "glob", json!({"pattern": "nope/*.rs"}))?,
        "no paths match `nope/*.rs` (`nope` is not a folder)"
    );
    assert!(fx.err(&fs, "glob", json!({"pattern": "src/[a"}))?.contains("is not a valid glob pattern"));
    assert!(fx.err(&fs, "glob", json!({"pattern": ""}))?.contains("empty"));

    let capped = fx.ok(&fs.clone().glob_max_results(2), "glob", json!({"pattern": "**/*.rs"}))?;
    assert_eq!(capped, "shared/x.rs\nsrc/lib.rs\n(2 more paths match, 4 in all; narrow the pattern to see them)");
    let everything = fx.ok(&fs.skip_dirs(Vec::<String>::new()), "glob", json!({"pattern": "**/config.rs"}))?;
    assert_eq!(everything, ".git/config.rs");
    Ok(())
}

#[test]
fn grep_reports_matches_with_context_and_caps() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    fx.write("src/a.rs", "fn one() {}\n// TODO: two\nfn three() {}\nfn four() {}\nfn five() {}\n// todo six\n")?;
    fx.write("src/b.txt", "TODO in text\n")?;
    fx.write("img.bin", b"TODO\0\0\0")?;
    fx.write(".git/HEAD", "TODO\n")?;

    let out = fx.ok(&fs, "grep", json!({"pattern": "TODO"}))?;
    assert_eq!(
        out,
        "src/a.rs:2:// TODO: two\n--\nsrc/b.txt:1:TODO in text\n\n2 matches in 2 files (3 files searched; skipped: 1 binary)"
    );

    let out = fx.ok(&fs, "grep", json!({"pattern": "todo", "ignore_case": true, "glob": "*.rs", "context": 1}))?;
    assert_eq!(
        out,
        "src/a.rs-1-fn one() {}\nsrc/a.rs:2:// TODO: two\nsrc/a.rs-3-fn three() {}\n--\nsrc/a.rs-5-fn five() {}\nsrc/a.rs:6:// todo six\n\n2 matches in 1 file (1 file searched)"
    );
    let out =
        fx.ok(&fs, "grep", json!({"pattern": "^fn (three|four)", "path": "src/a.rs", "before": 0, "after": 1}))?;
    assert_eq!(
        out,
        "src/a.rs:3:fn three() {}\nsrc/a.rs:4:fn four() {}\nsrc/a.rs-5-fn five() {}\n\n2 matches in 1 file (1 file searched)"
    );
    let out = fx.ok(&fs, "grep", json!({"pattern": "TODO", "glob": "src/**/*.txt"}))?;
    assert!(out.starts_with("src/b.txt:1:TODO in text\n"), "{out}");

    let out = fx.ok(&fs.clone().grep_max_matches(1), "grep", json!({"pattern": "fn"}))?;
    assert!(out.starts_with("src/a.rs:1:fn one() {}\n\n1 match in 1 file"), "{out}");
    assert!(out.contains("(stopped at 1 matches"), "{out}");

    assert_eq!(
        fx.ok(&fs, "grep", json!({"pattern": "absent"}))?,
        "no matches for `absent` in 3 files searched; skipped: 1 binary"
    );
    assert!(fx.err(&fs, "grep", json!({"pattern": "fn ("}))?.contains("is not a valid regular expression"));
    assert!(fx.err(&fs, "grep", json!({"pattern": "x", "context": 11}))?.contains("at most 10"));
    assert!(fx.err(&fs, "grep", json!({"pattern": "x", "path": "img.bin"}))?.contains("binary"));
    assert!(fx.err(&fs, "grep", json!({"pattern": "x", "path": "nope"}))?.contains("does not exist"));

    fx.write("wide.txt", format!("{}TODO{}\n", "a".repeat(400), "b".repeat(400)))?;
    let out = fx.ok(&fs, "grep", json!({"pattern": "TODO", "path": "wide.txt"}))?;
    assert!(out.contains("… [804 bytes in all]"), "{out}");
    Ok(())
}

#[test]
fn grep_skips_links_and_large_files_and_says_so() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    fx.write("real.txt", "needle\n")?;
    fx.write("big.txt", format!("needle\n{}", "x".repeat(100)))?;
    fx.link("alias.txt", "real.txt")?;
    let fs = fx.fs()?.max_file_bytes(50);
    let out = fx.ok(&fs, "grep", json!({"pattern": "needle"}))?;
    assert_eq!(
        out,
        "real.txt:1:needle\n\n1 match in 1 file (2 files searched; skipped: 1 larger than the size limit, 1 symbolic or hard links)"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// An agent with the tools
// ---------------------------------------------------------------------------------------------

#[test]
fn an_agent_writes_edits_searches_and_is_refused_outside() -> anyhow::Result<()> {
    let fx = Fx::new()?;
    let fs = fx.fs()?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call(
            "write_file",
            json!({"path": "src/lib.rs", "content": "pub fn answer() -> u32 {\n    41\n}\n"}),
        ),
        ScriptedTurn::tool_call("edit_file", json!({"path": "src/lib.rs", "old_string": "41", "new_string": "42"})),
        ScriptedTurn::tool_call("grep", json!({"pattern": "answer", "path": "src"}))
            .with_tool_call("read_file", json!({"path": "../outside/ZZ-outside-secret.txt"}))
            .with_tool_call("glob", json!({"pattern": "**/*.rs"})),
        ScriptedTurn::tool_call("read_file", json!({"path": "src/lib.rs", "offset": 2, "limit": 1})),
        ScriptedTurn::text("The answer is now 42."),
    ]);
    let agent = Agent::new("You maintain a Rust crate.").model(model.clone()).tools(fs.tools());
    let result = fx.rt.block_on(async { agent.run("Make the answer 42.").await })?;
    assert_eq!(result.output, "The answer is now 42.");
    assert_eq!(fx.read("src/lib.rs")?, "pub fn answer() -> u32 {\n    42\n}\n");

    let results: Vec<(bool, String)> =
        tool_results(&result).iter().map(|r| (r.is_error, r.content.text().into_owned())).collect();
    assert_eq!(results.len(), 6);
    assert_eq!(results[0], (false, "created `src/lib.rs` (34 bytes, 3 lines)".to_owned()));
    assert_eq!(results[1], (false, "replaced 1 occurrence in `src/lib.rs` (first at line 2)".to_owned()));
    assert!(results[2].1.starts_with("src/lib.rs:1:pub fn answer() -> u32 {"), "{:?}", results[2]);
    assert!(results[3].0 && results[3].1.contains("leads outside the root folder"), "{:?}", results[3]);
    assert_eq!(results[4], (false, "src/lib.rs".to_owned()));
    assert_eq!(
        results[5],
        (false, "     2\t    42\n\n(showing lines 2-2; the file goes on: read on with offset=3)".to_owned())
    );

    let requests = model.requests();
    assert_eq!(requests[0].tool_names(), TOOLS);
    Ok(())
}
