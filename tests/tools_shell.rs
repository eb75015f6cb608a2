//! The shell tool through the public API. The sandbox tests need bubblewrap (`.ci/run` installs
//! it): they are `#[ignore]`d, and fail loudly when `bwrap` is missing. The tests of what does
//! not depend on the sandbox (time limits, output caps, exit codes, the environment filter,
//! the refusal without bubblewrap) run everywhere, without it.
#![cfg(target_os = "linux")]

mod common;

use common::tool_results;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loomflow::prelude::*;
use loomflow::tools::shell::{Exit, Shell, ShellCommand, ShellError};
use serde_json::json;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A scratch folder under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> anyhow::Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("loom-shell-{label}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(std::fs::canonicalize(dir)?))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A marker no other process on the machine has in its command line.
fn marker(label: &str) -> String {
    format!("loom-mark-{label}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Fails the test, loudly, when bubblewrap is not installed: a sandbox test never passes by
/// skipping.
fn require_bwrap() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| dir.join("bwrap").is_file());
    assert!(
        found,
        "bubblewrap (`bwrap`) is not installed: install it (`apt-get install bubblewrap`; `.ci/run` does), \
         or run without --include-ignored to leave the sandbox tests out"
    );
}

fn sandboxed(root: &Path) -> anyhow::Result<Shell> {
    require_bwrap();
    Ok(Shell::new(root)?)
}

fn unsandboxed(root: &Path) -> anyhow::Result<Shell> {
    Ok(Shell::new(root)?.dangerously_unsandboxed())
}

/// The command lines (NUL-separated arguments) of the processes now alive.
fn command_lines() -> Vec<(i32, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args =
                raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned());
            Some((pid, args.collect()))
        })
        .collect()
}

/// Every living process with `marker` anywhere in its command line (a zombie has none).
fn processes_with(marker: &str) -> Vec<(i32, Vec<String>)> {
    command_lines().into_iter().filter(|(_, args)| args.iter().any(|a| a.contains(marker))).collect()
}

/// How many processes run a program whose name is `marker`.
fn programs_named(marker: &str) -> usize {
    command_lines().iter().filter(|(_, args)| args.first().is_some_and(|a| a.ends_with(marker))).count()
}

/// Waits until `count` processes run the program `marker` (true), or gives up after a minute.
async fn started(marker: &str, count: usize) -> bool {
    for _ in 0..6000 {
        if programs_named(marker) >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Waits until no process has `marker` in its command line; returns those left after ten
/// seconds.
async fn gone(marker: &str) -> Vec<(i32, Vec<String>)> {
    for _ in 0..1000 {
        if processes_with(marker).is_empty() {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    processes_with(marker)
}

/// A script that copies `sleep` under the marker's name and starts it, to sleep forever, four
/// ways: in the background, in a new session (out of the process group), ignoring SIGTERM and
/// SIGHUP, and in the foreground.
fn sleepers(marker: &str, new_session: bool) -> String {
    let escapee = if new_session { format!("setsid ./{marker} infinity & ") } else { String::new() };
    format!(
        "cp /bin/sleep ./{marker} || exit 1; ./{marker} infinity & {escapee}\
         (trap '' TERM HUP INT; exec ./{marker} infinity) & ./{marker} infinity"
    )
}

/// `run` to its end, or a failure when it has not returned two minutes after its time limit
/// (it never ends by itself).
async fn bounded<T>(run: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(out) => out,
        Err(_) => panic!("the command did not return at its time limit"),
    }
}

// ---------------------------------------------------------------------------------------------
// The sandbox (bubblewrap).

#[tokio::test]
#[ignore = "needs bubblewrap (.ci/run installs it)"]
async fn a_sandboxed_command_runs_in_the_root_and_its_files_stay() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = sandboxed(root.path())?;
    let out = shell.run("pwd; echo \"$HOME\"; echo kept > kept.txt; mkdir -p sub && echo deep > sub/f").await?;
    assert_eq!(out.exit, Exit::Code(0), "{out}");
    assert_eq!(out.stdout.text(), format!("{}\n/tmp/home\n", root.path().display()));
    assert_eq!(std::fs::read_to_string(root.path().join("kept.txt"))?, "kept\n");
    assert_eq!(std::fs::read_to_string(root.path().join("sub/f"))?, "deep\n");
    Ok(())
}

#[tokio::test]
#[ignore = "needs bubblewrap (.ci/run installs it)"]
async fn a_sandboxed_command_cannot_write_outside_the_root() -> anyhow::Result<()> {
    let (root, outside) = (Scratch::new("root")?, Scratch::new("outside")?);
    let mark = marker("write");
    let shell = sandboxed(root.path())?;
    // Each is refused; the last succeeds, in the sandbox's own /tmp, which is not the machine's.
    let attempts = [
        (format!("touch /etc/{mark}"), PathBuf::from(format!("/etc/{mark}")), true),
        (format!("touch /usr/{mark}"), PathBuf::from(format!("/usr/{mark}")), true),
        (format!("touch /{mark}"), PathBuf::from(format!("/{mark}")), true),
        (format!("touch {}/{mark}", outside.path().display()), outside.path().join(&mark), true),
        // Even as root: the capabilities are gone, the system cannot be remounted writable.
        (format!("mount -o remount,rw /usr && touch /usr/{mark}"), PathBuf::from(format!("/usr/{mark}")), true),
        (format!("mkdir -p {0} && touch {0}/{mark}", outside.path().display()), outside.path().join(&mark), false),
    ];
    for (command, target, refused) in &attempts {
        let out = shell.run(command.as_str()).await?;
        assert_eq!(!out.success(), *refused, "`{command}`:\n{out}");
        assert!(!target.exists(), "`{command}` created {} outside the sandbox", target.display());
    }
    // /tmp in the sandbox is its own: written there, seen there, never on the machine.
    let out =
        shell.run(format!("echo inside > /tmp/{mark} && cat /tmp/{mark} && grep CapEff /proc/self/status")).await?;
    assert!(out.success(), "{out}");
    assert!(out.stdout.text().starts_with("inside\n"), "{out}");
    assert!(out.stdout.text().contains("CapEff:\t0000000000000000"), "capabilities left in the sandbox:\n{out}");
    assert!(!Path::new("/tmp").join(&mark).exists(), "the sandbox's /tmp leaked onto the machine");
    assert!(std::fs::read_dir(outside.path())?.next().is_none(), "something was written outside the root");
    Ok(())
}

#[tokio::test]
#[ignore = "needs bubblewrap (.ci/run installs it)"]
async fn a_sandboxed_command_cannot_reach_the_network_unless_allowed() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let connect = format!("bash -c 'echo hello > /dev/tcp/127.0.0.1/{port}'");

    let shell = sandboxed(root.path())?;
    let out = shell.run(connect.as_str()).await?;
    assert!(!out.success(), "the sandbox reached 127.0.0.1:{port} of the machine:\n{out}");
    assert!(matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "a connection arrived");
    // Its only interface is a loopback of its own.
    let out = shell.run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").await?;
    assert_eq!(out.stdout.text(), "lo\n", "{out}");

    // The same command, with the network allowed, connects.
    let out = shell.clone().allow_network().run(connect.as_str()).await?;
    assert!(out.success(), "the allowed network was not reachable:\n{out}");
    assert!(listener.accept().is_ok(), "no connection arrived with the network allowed");
    Ok(())
}

#[tokio::test]
#[ignore = "needs bubblewrap (.ci/run installs it)"]
async fn a_sandboxed_command_cannot_see_the_parents_secrets() -> anyhow::Result<()> {
    let (root, outside) = (Scratch::new("root")?, Scratch::new("outside")?);
    std::fs::write(outside.path().join("secret.txt"), "sk-file-secret")?;
    let secrets = [
        ("OPENAI_API_KEY", "sk-loom-openai-secret"),
        ("ANTHROPIC_API_KEY", "sk-ant-loom-secret"),
        ("AWS_SECRET_ACCESS_KEY", "aws-loom-secret"),
        ("GITHUB_TOKEN", "ghp_loom_secret"),
    ];
    let mut parent: Vec<(String, String)> = secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    parent.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    parent.push(("LANG".into(), "C.UTF-8".into()));
    parent.push(("PROJECT_NAME".into(), "loom".into()));
    parent.push(("HOME".into(), "/root".into()));
    let shell = sandboxed(root.path())?.parent_env(parent).pass_env("PROJECT_NAME").env("EXPLICIT", "yes");

    let out = shell
        .run(format!(
            "env; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; cat {}/secret.txt",
            outside.path().display()
        ))
        .await?;
    for (name, value) in secrets {
        assert!(!out.stdout.text().contains(value), "{name}'s value reached the sandbox:\n{out}");
        assert!(!out.stdout.text().contains(name), "{name} reached the sandbox:\n{out}");
    }
    assert!(!out.stdout.text().contains("sk-file-secret"), "a file outside the root was readable:\n{out}");
    for expected in ["LANG=C.UTF-8", "PROJECT_NAME=loom", "EXPLICIT=yes", "HOME=/tmp/home", "TMPDIR=/tmp"] {
        assert!(out.stdout.text().lines().any(|l| l == expected), "`{expected}` missing:\n{out}");
    }

    // With this process's own environment: none of the variables the test runner set passes.
    let withheld: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| {
            !["PATH", "LANG", "LANGUAGE", "TERM", "TZ", "HOME", "TMPDIR", "PWD", "OLDPWD", "SHLVL", "_"]
                .contains(&k.as_str())
        })
        .filter(|k| !k.starts_with("LC_"))
        .collect();
    assert!(!withheld.is_empty(), "the test runner set no variables to withhold");
    let out = sandboxed(root.path())?.run("env").await?;
    let names: Vec<&str> = out.stdout.text().lines().filter_map(|l| l.split('=').next()).collect();
    for name in &withheld {
        assert!(!names.contains(&name.as_str()), "{name} reached the sandbox:\n{out}");
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs bubblewrap (.ci/run installs it)"]
async fn a_sandboxed_command_at_its_time_limit_leaves_no_process_behind() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let mark = marker("timeout");
    let shell = sandboxed(root.path())?.timeout(Duration::from_secs(5));
    let (out, seen) = tokio::join!(bounded(shell.run(sleepers(&mark, true))), started(&mark, 4));
    let out = out?;
    assert!(seen, "the command's processes never all started:\n{out}");
    assert_eq!(out.exit, Exit::TimedOut(Duration::from_secs(5)), "{out}");
    assert!(out.to_string().starts_with("timed out after 5 s"), "{out}");
    // When `run` returns, the whole PID namespace is gone: no waiting.
    assert_eq!(processes_with(&mark), vec![], "processes survived the time limit");
    Ok(())
}

#[tokio::test]
#[ignore = "needs bubblewrap (.ci/run installs it)"]
async fn a_cancelled_sandboxed_command_leaves_no_process_behind() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let mark = marker("cancel");
    let shell = sandboxed(root.path())?.timeout(Duration::from_secs(600));
    tokio::select! {
        out = shell.run(sleepers(&mark, true)) => panic!("the command ended by itself: {out:?}"),
        seen = started(&mark, 4) => assert!(seen, "the command's processes never all started"),
    }
    // The `run` future was dropped when the select ended.
    assert_eq!(gone(&mark).await, vec![], "processes survived the cancellation");
    Ok(())
}

#[tokio::test]
#[ignore = "needs bubblewrap (.ci/run installs it)"]
async fn sandboxed_exit_codes_and_signals_are_reported() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = sandboxed(root.path())?;
    let out = shell.run("echo out; echo err >&2; exit 3").await?;
    assert_eq!(out.exit, Exit::Code(3));
    assert_eq!((out.stdout.text(), out.stderr.text()), ("out\n", "err\n"));
    // The sandbox's init reports a signal the shell way, as 128 + the signal's number.
    let out = shell.run("kill -9 $$").await?;
    assert_eq!(out.exit, Exit::Code(137), "{out}");
    assert!(out.to_string().contains("SIGKILL"), "{out}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs bubblewrap (.ci/run installs it)"]
async fn sandboxed_programs_get_arguments_and_input_untouched() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = sandboxed(root.path())?;
    let out = shell.run(ShellCommand::program("printf").args(["%s|", "a b", "$HOME", "; rm -rf /"])).await?;
    assert_eq!(out.stdout.text(), "a b|$HOME|; rm -rf /|", "{out}");
    let out = shell.run(ShellCommand::program("cat").stdin("from stdin")).await?;
    assert_eq!(out.stdout.text(), "from stdin", "{out}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs bubblewrap (.ci/run installs it)"]
async fn an_agent_runs_commands_in_the_sandbox() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = sandboxed(root.path())?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call(
            "shell",
            json!({"command": "echo draft > notes.md; cat notes.md; touch /etc/x; exit 4"}),
        ),
        ScriptedTurn::text("Wrote the notes."),
    ]);
    let agent = Agent::new("You work in a project folder.").model(model).tool(shell);
    let result = agent.run("Write notes.").await?;
    assert_eq!(result.output, "Wrote the notes.");
    let results = tool_results(&result);
    assert_eq!(results.len(), 1);
    let text = results[0].content.text();
    assert!(!results[0].is_error, "a failing command is a result, not an error: {text}");
    assert!(text.starts_with("exit code 4"), "{text}");
    assert!(text.contains("stdout:\ndraft\n"), "{text}");
    assert!(text.contains("Read-only file system"), "{text}");
    assert_eq!(std::fs::read_to_string(root.path().join("notes.md"))?, "draft\n");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Without bubblewrap.

#[tokio::test]
async fn without_bubblewrap_the_shell_refuses_unless_opted_out_by_name() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = Shell::new(root.path())?.bwrap_program("/nonexistent/loom/bwrap");
    let err = shell.run("echo hi").await.err();
    let Some(err @ ShellError::SandboxMissing { .. }) = err else { panic!("expected SandboxMissing, got {err:?}") };
    let message = err.to_string();
    for hint in ["apt-get install bubblewrap", "dangerously_unsandboxed", "/nonexistent/loom/bwrap"] {
        assert!(message.contains(hint), "`{hint}` missing from: {message}");
    }
    assert!(!root.path().join("never").exists());

    // Through the agent, the model reads the refusal as an error result.
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("shell", json!({"command": "touch never"})),
        ScriptedTurn::text("Could not."),
    ]);
    let agent = Agent::new("Work.").model(model).tool(shell.clone());
    let result = agent.run("Go.").await?;
    let results = tool_results(&result);
    assert!(results[0].is_error);
    assert!(results[0].content.text().contains("apt-get install bubblewrap"), "{}", results[0].content.text());
    assert!(!root.path().join("never").exists(), "the command ran without the sandbox");

    // Opted out by name, the same shell runs commands directly.
    let out = shell.dangerously_unsandboxed().run("touch ran && echo ran").await?;
    assert_eq!(out.stdout.text(), "ran\n");
    assert!(root.path().join("ran").exists());
    Ok(())
}

#[test]
fn the_root_must_be_a_folder_other_than_slash() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    std::fs::write(root.path().join("file"), "")?;
    for bad in [PathBuf::from("/"), root.path().join("missing"), root.path().join("file")] {
        let err = Shell::new(&bad).err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.contains("shell root")), "{}: {err:?}", bad.display());
    }
    Ok(())
}

#[test]
fn the_tool_is_destructive_and_tells_the_model_where_it_runs() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = Shell::new(root.path())?.timeout(Duration::from_secs(45));
    let definition = shell.definition();
    assert_eq!(definition.name(), "shell");
    assert!(definition.hints().destructive);
    assert!(!definition.hints().read_only);
    for needed in [root.path().display().to_string().as_str(), "no network", "45 s", "sandbox"] {
        assert!(definition.description().contains(needed), "`{needed}` missing: {}", definition.description());
    }
    assert_eq!(definition.parameters()["required"], json!(["command"]));
    let open = shell.clone().allow_network();
    assert!(open.definition().description().contains("the network is reachable"));
    let bare = shell.dangerously_unsandboxed();
    assert!(bare.definition().description().contains("no sandbox"), "{}", bare.definition().description());
    Ok(())
}

#[tokio::test]
async fn bad_arguments_are_errors_the_model_can_correct() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("shell", json!({"cmd": "ls"})),
        ScriptedTurn::tool_call("shell", json!({"command": "  "})),
        ScriptedTurn::text("Done."),
    ]);
    let agent = Agent::new("Work.").model(model).tool(unsandboxed(root.path())?);
    let result = agent.run("Go.").await?;
    let results = tool_results(&result);
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.is_error));
    assert!(results[0].content.text().contains("command"), "{}", results[0].content.text());
    assert!(results[1].content.text().contains("empty"), "{}", results[1].content.text());
    Ok(())
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = unsandboxed(root.path())?;
    let out = shell.run("true").await?;
    assert_eq!(out.exit, Exit::Code(0));
    assert!(out.success());
    let out = shell.run("echo out; echo err >&2; exit 3").await?;
    assert_eq!(out.exit, Exit::Code(3));
    assert!(!out.success());
    assert_eq!((out.stdout.text(), out.stderr.text()), ("out\n", "err\n"));
    let out = shell.run("kill -9 $$").await?;
    assert_eq!(out.exit, Exit::Signal(9));
    assert!(out.to_string().starts_with("killed by signal 9 (SIGKILL)"), "{out}");
    let out = shell.run("kill -TERM $$").await?;
    assert_eq!(out.exit.signal(), Some(15));
    let out = shell.run("no-such-program-loom").await?;
    assert_eq!(out.exit, Exit::Code(127));
    assert!(out.stderr.text().contains("not found"), "{out}");
    Ok(())
}

#[tokio::test]
async fn long_output_keeps_its_head_and_tail() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = unsandboxed(root.path())?.max_output_bytes(1000);
    let big = "printf HEAD; head -c 100000 /dev/zero | tr '\\0' x; printf TAIL";
    let out = shell.run(format!("{big}; ({big}) >&2")).await?;
    for stream in [&out.stdout, &out.stderr] {
        assert_eq!(stream.total_bytes(), 100_008);
        assert_eq!(stream.elided_bytes(), 99_008);
        let text = stream.text();
        assert!(text.starts_with(&format!("HEAD{}\n[... 99,008 bytes elided ...]\n", "x".repeat(496))), "{text}");
        assert!(text.ends_with(&format!("\n{}TAIL", "x".repeat(496))), "{text}");
    }
    assert!(out.to_string().contains("stdout (100,008 bytes, 99,008 elided from the middle):"), "{out}");
    // Short output is whole.
    let out = shell.run("echo short").await?;
    assert_eq!((out.stdout.text(), out.stdout.elided_bytes()), ("short\n", 0));
    Ok(())
}

#[tokio::test]
async fn stdout_and_stderr_are_read_together() -> anyhow::Result<()> {
    // Far more than a pipe holds, on both streams, stderr first: read one after the other,
    // the command would block on stderr while stdout is read.
    let root = Scratch::new("root")?;
    let shell = unsandboxed(root.path())?.max_output_bytes(64).timeout(Duration::from_secs(600));
    let out = shell.run("head -c 2000000 /dev/zero >&2; head -c 2000000 /dev/zero; echo done >&2").await?;
    assert_eq!(out.exit, Exit::Code(0), "{out}");
    assert_eq!((out.stdout.total_bytes(), out.stderr.total_bytes()), (2_000_000, 2_000_005));
    assert!(out.stderr.text().ends_with("done\n"));
    Ok(())
}

#[tokio::test]
async fn at_its_time_limit_a_command_and_its_process_group_are_killed() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let mark = marker("timeout-bare");
    let shell = unsandboxed(root.path())?.timeout(Duration::from_secs(5));
    let (out, seen) = tokio::join!(bounded(shell.run(sleepers(&mark, false))), started(&mark, 3));
    let out = out?;
    assert!(seen, "the command's processes never all started:\n{out}");
    assert_eq!(out.exit, Exit::TimedOut(Duration::from_secs(5)), "{out}");
    assert_eq!(processes_with(&mark), vec![], "processes survived the time limit");
    Ok(())
}

#[tokio::test]
async fn a_cancelled_command_and_its_process_group_are_killed() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let mark = marker("cancel-bare");
    let shell = unsandboxed(root.path())?.timeout(Duration::from_secs(600));
    tokio::select! {
        out = shell.run(sleepers(&mark, false)) => panic!("the command ended by itself: {out:?}"),
        seen = started(&mark, 3) => assert!(seen, "the command's processes never all started"),
    }
    assert_eq!(gone(&mark).await, vec![], "processes survived the cancellation");
    Ok(())
}

#[tokio::test]
async fn background_processes_end_with_the_command() -> anyhow::Result<()> {
    // A command that leaves a job running (holding its output pipes) still returns, and the
    // job is killed with it.
    let root = Scratch::new("root")?;
    let mark = marker("background");
    let shell = unsandboxed(root.path())?.timeout(Duration::from_secs(600));
    let out = shell.run(format!("cp /bin/sleep ./{mark} || exit 1; ./{mark} infinity & echo left")).await?;
    assert_eq!(out.exit, Exit::Code(0), "{out}");
    assert_eq!(out.stdout.text(), "left\n");
    assert_eq!(processes_with(&mark), vec![], "the background job survived");
    Ok(())
}

#[tokio::test]
async fn the_environment_is_filtered_without_the_sandbox_too() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = unsandboxed(root.path())?
        .parent_env([
            ("PATH", "/usr/bin:/bin"),
            ("OPENAI_API_KEY", "sk-loom-secret"),
            ("KEEP", "kept"),
            ("TMPDIR", "/var/tmp"),
        ])
        .pass_env("KEEP")
        .env("SET", "set");
    let out = shell.run(ShellCommand::script("env").env("PER_CALL", "call")).await?;
    let mut names: Vec<&str> = out.stdout.text().lines().filter_map(|l| l.split('=').next()).collect();
    names.retain(|n| !["PWD", "SHLVL", "_", "OLDPWD"].contains(n));
    names.sort_unstable();
    assert_eq!(names, ["HOME", "KEEP", "PATH", "PER_CALL", "SET", "TMPDIR"], "{out}");
    assert!(out.stdout.text().contains(&format!("HOME={}\n", root.path().display())), "{out}");
    assert!(!out.stdout.text().contains("sk-loom-secret"));
    Ok(())
}

#[tokio::test]
async fn programs_get_arguments_and_input_untouched() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let shell = unsandboxed(root.path())?;
    let out = shell.run(ShellCommand::program("printf").args(["%s|", "a b", "$HOME", "; rm -rf /"])).await?;
    assert_eq!(out.stdout.text(), "a b|$HOME|; rm -rf /|", "{out}");
    let out = shell.run(ShellCommand::script("read line; echo \"got $line\"").stdin("typed\n")).await?;
    assert_eq!(out.stdout.text(), "got typed\n", "{out}");
    // Input the command never reads is not an error.
    let out = shell.run(ShellCommand::script("exit 0").stdin(vec![b'x'; 1 << 20])).await?;
    assert_eq!(out.exit, Exit::Code(0), "{out}");
    // A time limit too large for the clock is no limit.
    let out = unsandboxed(root.path())?.timeout(Duration::MAX).run("echo unlimited").await?;
    assert_eq!(out.stdout.text(), "unlimited\n", "{out}");
    // A per-command time limit.
    let out = bounded(shell.run(ShellCommand::script("sleep infinity").timeout(Duration::from_millis(200)))).await?;
    assert_eq!(out.exit, Exit::TimedOut(Duration::from_millis(200)), "{out}");
    Ok(())
}

#[tokio::test]
async fn an_agent_runs_commands_without_the_sandbox_when_opted_out() -> anyhow::Result<()> {
    let root = Scratch::new("root")?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("shell", json!({"command": "echo draft > notes.md; cat notes.md; exit 4"})),
        ScriptedTurn::text("Wrote the notes."),
    ]);
    let agent = Agent::new("You work in a project folder.").model(model).tool(unsandboxed(root.path())?);
    let result = agent.run("Write notes.").await?;
    let results = tool_results(&result);
    assert!(!results[0].is_error);
    let text = results[0].content.text();
    assert!(text.starts_with("exit code 4"), "{text}");
    assert!(text.contains("stdout:\ndraft\nstderr: (empty)\n"), "{text}");
    assert_eq!(std::fs::read_to_string(root.path().join("notes.md"))?, "draft\n");
    Ok(())
}
