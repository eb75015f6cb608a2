//! What a command left behind: how it ended, its output, how long it took.

use std::fmt;
use std::time::Duration;

use rustix::process::Signal;

use super::capture::thousands;

/// How a command ended.
///
/// A command that fails (a non-zero code, a signal, the time limit) is a normal outcome, not an
/// error: the model reads it and decides what to do.
///
/// In the sandbox, the command runs under bubblewrap's own init process, which reports a
/// command killed by signal *N* as exit code 128 + *N* (the shell convention). Such codes are
/// reported as [`Exit::Code`] — an `exit 137` is indistinguishable from a `SIGKILL` — and their
/// [`Display`](fmt::Display) names the signal they conventionally stand for. Without the
/// sandbox, a shell killed by a signal is reported as [`Exit::Signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// The command exited with this code (0 is success).
    Code(i32),
    /// The command was killed by this signal number.
    Signal(i32),
    /// The command ran past its time limit; it and every process it started were killed.
    TimedOut(Duration),
}

impl Exit {
    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        matches!(self, Self::Code(0))
    }

    /// The exit code, when the command exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            Self::Code(c) => Some(*c),
            _ => None,
        }
    }

    /// The signal that killed the command, when one did.
    pub fn signal(&self) -> Option<i32> {
        match self {
            Self::Signal(s) => Some(*s),
            _ => None,
        }
    }

    /// Whether the command ran past its time limit.
    pub fn timed_out(&self) -> bool {
        matches!(self, Self::TimedOut(_))
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Code(code) => {
                write!(f, "exit code {code}")?;
                match code.checked_sub(128).and_then(signal_name) {
                    Some(name) => write!(f, " (by the shell convention 128 + {}: killed by {name})", code - 128),
                    None => Ok(()),
                }
            }
            Self::Signal(signal) => match signal_name(signal) {
                Some(name) => write!(f, "killed by signal {signal} ({name})"),
                None => write!(f, "killed by signal {signal}"),
            },
            Self::TimedOut(after) => {
                write!(f, "timed out after {}; the command and every process it started were killed", seconds(after))
            }
        }
    }
}

/// The name of a signal number, like `SIGKILL`.
pub(super) fn signal_name(signal: i32) -> Option<&'static str> {
    const NAMES: &[(Signal, &str)] = &[
        (Signal::HUP, "SIGHUP"),
        (Signal::INT, "SIGINT"),
        (Signal::QUIT, "SIGQUIT"),
        (Signal::ILL, "SIGILL"),
        (Signal::TRAP, "SIGTRAP"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::BUS, "SIGBUS"),
        (Signal::FPE, "SIGFPE"),
        (Signal::KILL, "SIGKILL"),
        (Signal::USR1, "SIGUSR1"),
        (Signal::SEGV, "SIGSEGV"),
        (Signal::USR2, "SIGUSR2"),
        (Signal::PIPE, "SIGPIPE"),
        (Signal::ALARM, "SIGALRM"),
        (Signal::TERM, "SIGTERM"),
        (Signal::XCPU, "SIGXCPU"),
        (Signal::XFSZ, "SIGXFSZ"),
        (Signal::SYS, "SIGSYS"),
    ];
    NAMES.iter().find(|(s, _)| s.as_raw() == signal).map(|(_, name)| *name)
}

pub(super) fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) { format!("{} s", ms / 1000) } else { format!("{:.1} s", d.as_secs_f64()) }
}

/// One output stream of a command (stdout or stderr), as kept within the cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedStream {
    text: String,
    total_bytes: u64,
    elided_bytes: u64,
}

impl CapturedStream {
    pub(super) fn new(text: String, total_bytes: u64, elided_bytes: u64) -> Self {
        Self { text, total_bytes, elided_bytes }
    }

    /// The text kept: all of it, or the head and the tail with a marker
    /// `[... 12,345 bytes elided ...]` between them. Invalid UTF-8 shows as U+FFFD.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many bytes the command wrote to the stream.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// How many of them were left out of [`text`](Self::text) (0 when it all fit).
    pub fn elided_bytes(&self) -> u64 {
        self.elided_bytes
    }

    /// Whether the stream was empty.
    pub fn is_empty(&self) -> bool {
        self.total_bytes == 0
    }
}

/// The result of one command: how it ended, its output (capped), and how long it ran.
///
/// Its [`Display`](fmt::Display) is the text the model reads from the shell tool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShellOutput {
    /// How the command ended.
    pub exit: Exit,
    /// What it wrote to standard output.
    pub stdout: CapturedStream,
    /// What it wrote to standard error.
    pub stderr: CapturedStream,
    /// From the start of the process to the end of the last one it started.
    pub elapsed: Duration,
}

impl ShellOutput {
    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.exit.success()
    }
}

impl fmt::Display for ShellOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({} elapsed)", self.exit, seconds_fine(self.elapsed))?;
        for (name, stream) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if stream.is_empty() {
                writeln!(f, "{name}: (empty)")?;
                continue;
            }
            match stream.elided_bytes() {
                0 => writeln!(f, "{name}:")?,
                n => writeln!(
                    f,
                    "{name} ({} bytes, {} elided from the middle):",
                    thousands(stream.total_bytes()),
                    thousands(n)
                )?,
            }
            f.write_str(stream.text())?;
            if !stream.text().ends_with('\n') {
                f.write_str("\n")?;
            }
        }
        Ok(())
    }
}

fn seconds_fine(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_read_plainly() {
        assert_eq!(Exit::Code(0).to_string(), "exit code 0");
        assert_eq!(Exit::Code(3).to_string(), "exit code 3");
        assert_eq!(Exit::Code(137).to_string(), "exit code 137 (by the shell convention 128 + 9: killed by SIGKILL)");
        assert_eq!(Exit::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
        assert_eq!(Exit::Signal(63).to_string(), "killed by signal 63");
        assert_eq!(
            Exit::TimedOut(Duration::from_secs(30)).to_string(),
            "timed out after 30 s; the command and every process it started were killed"
        );
        assert_eq!(Exit::TimedOut(Duration::from_millis(1500)).to_string().get(..20), Some("timed out after 1.5 "));
    }

    #[test]
    fn the_model_reads_exit_and_both_streams() {
        let out = ShellOutput {
            exit: Exit::Code(1),
            stdout: CapturedStream::new("a\n[... 1,000 bytes elided ...]\nz".into(), 1002, 1000),
            stderr: CapturedStream::new(String::new(), 0, 0),
            elapsed: Duration::from_millis(250),
        };
        assert_eq!(
            out.to_string(),
            "exit code 1 (0.25 s elapsed)\nstdout (1,002 bytes, 1,000 elided from the middle):\n\
             a\n[... 1,000 bytes elided ...]\nz\nstderr: (empty)\n"
        );
    }
}
