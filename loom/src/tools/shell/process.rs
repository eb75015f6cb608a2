//! Starting a command, reading its output, and making sure that when it ends — by itself, at
//! its time limit, or because the caller gave up — every process it started ends too.
//!
//! The command's first process (bubblewrap, or the command itself without the sandbox) leads a
//! process group of its own. In the sandbox, bubblewrap's init process in the new PID namespace
//! is the leader's child: killing it makes the kernel kill everything in the namespace, and
//! the init only counts as exited (its pidfd turns readable) once they are all gone. Without the
//! sandbox, the processes left are the members of the leader's process group. They are found in
//! `/proc`, held by pidfds (a pid can be reused, a pidfd cannot), killed, and waited for.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, ChildStdin};
use tokio::time::{Instant, sleep_until};

use super::capture::Capture;
use super::error::ShellError;
use super::output::{Exit, ShellOutput};

/// How long output is still read after the command's processes are gone: a process that left
/// the command's process group (possible only without the sandbox) may hold the pipes open.
const DRAIN: Duration = Duration::from_secs(2);

/// How long killed processes are waited for (a process blocked in the kernel, on a dead NFS
/// server say, dies only when the kernel lets it).
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Stands for a time limit too large to add to the clock.
const NO_LIMIT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// One process to start and supervise.
pub(super) struct Launch {
    pub(super) program: PathBuf,
    pub(super) args: Vec<OsString>,
    pub(super) env: Vec<(OsString, OsString)>,
    pub(super) cwd: PathBuf,
    pub(super) stdin: Option<Vec<u8>>,
    pub(super) timeout: Duration,
    pub(super) output_cap: usize,
    pub(super) sandboxed: bool,
}

/// Runs the process to its end, or to its time limit, and reports how it went.
pub(super) async fn execute(launch: Launch) -> Result<ShellOutput, ShellError> {
    let mut command = tokio::process::Command::new(&launch.program);
    command
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd)
        .stdin(if launch.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| ShellError::Spawn { program: launch.program.clone(), source })?;
    // Declared after `child`, so dropped before it: on cancellation the group is killed while
    // its leader is not yet reaped, and its id cannot have been reused.
    let mut tree = Tree::new(&child, launch.sandboxed)?;

    let (stdout, stderr, stdin) = (child.stdout.take(), child.stderr.take(), child.stdin.take());
    let (mut out, mut err) = (Capture::new(launch.output_cap), Capture::new(launch.output_cap));
    // A limit too far to represent (`Duration::MAX`) is no limit: a century from now.
    let deadline = started.checked_add(launch.timeout).unwrap_or_else(|| started + NO_LIMIT);
    let mut timed_out = false;
    let status = {
        let io = async {
            tokio::join!(pump(stdout, &mut out), pump(stderr, &mut err), feed(stdin, launch.stdin));
        };
        tokio::pin!(io);
        let (mut io_done, mut status, mut drain_until) = (false, None::<ExitStatus>, None::<Instant>);
        while !(io_done && status.is_some()) {
            tokio::select! {
                biased;
                () = &mut io, if !io_done => io_done = true,
                exited = child.wait(), if status.is_none() => {
                    status = Some(exited.map_err(ShellError::Wait)?);
                    tree.leader_reaped = true;
                    tree.kill_and_wait().await;
                    drain_until = Some(Instant::now() + DRAIN);
                }
                () = sleep_until(deadline), if status.is_none() && !timed_out => {
                    timed_out = true;
                    tree.kill_and_wait().await;
                }
                () = sleep_until(drain_until.unwrap_or(deadline)), if status.is_some() && !io_done => break,
            }
        }
        status
    };
    tree.armed = false;
    let elapsed = started.elapsed();
    let exit = match status {
        _ if timed_out => Exit::TimedOut(launch.timeout),
        Some(status) => exit_of(status),
        None => Exit::TimedOut(launch.timeout),
    };
    Ok(ShellOutput { exit, stdout: out.finish(), stderr: err.finish(), elapsed })
}

fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Code(-1),
    }
}

/// Reads a stream to its end into the capture. A read error ends the stream.
async fn pump(stream: Option<impl AsyncRead + Unpin>, capture: &mut Capture) {
    let Some(mut stream) = stream else { return };
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        capture.push(&buf[..n]);
    }
}

/// Writes the command's input and closes its standard input. A command that exits without
/// reading it all is not an error.
async fn feed(stdin: Option<ChildStdin>, input: Option<Vec<u8>>) {
    if let (Some(mut stdin), Some(input)) = (stdin, input)
        && stdin.write_all(&input).await.is_ok()
    {
        let _ = stdin.shutdown().await;
    }
}

/// The processes of one command.
struct Tree {
    /// The first process, leader of the command's process group.
    leader: Pid,
    sandboxed: bool,
    /// Whether the leader has been waited for (its id may then be reused).
    leader_reaped: bool,
    /// Whether dropping this kills what is left (the run was cancelled or failed).
    armed: bool,
}

impl Tree {
    fn new(child: &Child, sandboxed: bool) -> Result<Self, ShellError> {
        let leader = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw)
            .ok_or_else(|| ShellError::Wait(std::io::Error::other("the started process has no id")))?;
        Ok(Self { leader, sandboxed, leader_reaped: false, armed: true })
    }

    /// Kills every process of the command and waits until they are gone.
    async fn kill_and_wait(&self) {
        let pidfds = self.kill();
        // A killed process is gone within microseconds to milliseconds; its pidfd turns
        // readable then. (tokio's `AsyncFd` could wait for that, but only through `unsafe`.)
        let wait_until = Instant::now() + KILL_WAIT;
        let mut pause = Duration::from_micros(500);
        while !pidfds.iter().all(exited) && Instant::now() < wait_until {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Sends `SIGKILL` to every process of the command; returns pidfds of those to wait for
    /// (the leader is waited for through its `Child`).
    fn kill(&self) -> Vec<OwnedFd> {
        let found = if !self.sandboxed {
            group_members(self.leader)
        } else if !self.leader_reaped {
            // The namespace's init is the leader's child. Once the leader is reaped it has
            // ended (bubblewrap exits after it), and the whole namespace with it.
            children(self.leader)
        } else {
            Vec::new()
        };
        let mut pidfds = hold_and_kill(found);
        // The group's id is safe to signal while its leader is unreaped, or while members
        // were just seen (an id in use as a group id is not reused).
        if !self.leader_reaped || !pidfds.is_empty() {
            let _ = rustix::process::kill_process_group(self.leader, Signal::KILL);
        }
        if !self.sandboxed {
            // Processes forked between the scan and the kill were killed with the group.
            pidfds.extend(hold_and_kill(group_members(self.leader)));
        }
        pidfds
    }
}

/// Opens a pidfd for each process and kills it through the pidfd.
fn hold_and_kill(pids: Vec<Pid>) -> Vec<OwnedFd> {
    pids.into_iter()
        .filter_map(|pid| {
            let fd = rustix::process::pidfd_open(pid, PidfdFlags::empty()).ok()?;
            let _ = rustix::process::pidfd_send_signal(&fd, Signal::KILL);
            Some(fd)
        })
        .collect()
}

impl Drop for Tree {
    fn drop(&mut self) {
        if self.armed {
            // Cancelled: kill now; the kernel and tokio reap them (the leader's `Child` is
            // dropped next, with `kill_on_drop`).
            drop(self.kill());
        }
    }
}

/// Whether the process of a pidfd has ended.
fn exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let now = Timespec { tv_sec: 0, tv_nsec: 0 };
    // An error (no pidfd poll support, before Linux 5.3) counts as ended: do not wait.
    rustix::event::poll(&mut fds, Some(&now)).map_or(true, |n| n > 0)
}

/// The children of `pid`, from `/proc/<pid>/task/*/children`.
fn children(pid: Pid) -> Vec<Pid> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", pid.as_raw_nonzero())) else { return Vec::new() };
    let mut pids = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(list.split_whitespace().filter_map(|p| p.parse().ok()).filter_map(Pid::from_raw));
        }
    }
    pids
}

/// The living processes of the process group `group`, other than its leader.
fn group_members(group: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|name| name.parse::<i32>().ok()))
        .filter(|&pid| pid != group.as_raw_nonzero().get())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat_group(&stat))
                .is_some_and(|(state, pgrp)| pgrp == group.as_raw_nonzero().get() && state != 'Z' && state != 'X')
        })
        .filter_map(Pid::from_raw)
        .collect()
}

/// The state and process group from a `/proc/<pid>/stat` line (`pid (comm) S ppid pgrp ...`;
/// the command name may hold spaces and parentheses, so fields are counted after the last `)`).
fn stat_group(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(stat_group("42 (sleep) S 1 40 40 0 -1"), Some(('S', 40)));
        assert_eq!(stat_group("42 (a) b (c)) Z 1 7 7 0"), Some(('Z', 7)));
        assert_eq!(stat_group("garbage"), None);
    }
}
