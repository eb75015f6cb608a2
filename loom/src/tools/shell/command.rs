//! One command to run: a shell script or a program with arguments, with what it reads on
//! standard input, extra environment variables and a time limit of its own.

use std::ffi::OsString;
use std::time::Duration;

/// A command for [`Shell::run`](super::Shell::run).
///
/// A string converts into a script for `/bin/sh -c`; [`program`](Self::program) runs a program
/// with arguments, with no shell in between (nothing is interpolated, so arguments need no
/// quoting).
///
/// ```
/// use std::time::Duration;
/// use loomflow::tools::shell::ShellCommand;
///
/// let script = ShellCommand::from("ls -la | head -n 5");
/// let program = ShellCommand::program("python3")
///     .arg("scripts/add.py")
///     .stdin(r#"{"a": 2, "b": 3}"#)
///     .env("CALC_PRECISION", "4")
///     .timeout(Duration::from_secs(5));
/// # let _ = (script, program);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    pub(super) argv: Vec<OsString>,
    pub(super) stdin: Option<Vec<u8>>,
    pub(super) env: Vec<(OsString, OsString)>,
    pub(super) timeout: Option<Duration>,
}

impl ShellCommand {
    /// A script run by `/bin/sh -c`.
    pub fn script(script: impl Into<String>) -> Self {
        Self::from_argv(vec!["/bin/sh".into(), "-c".into(), script.into().into()])
    }

    /// A program run directly (found on the command's `PATH` when it has no `/`).
    pub fn program(program: impl Into<OsString>) -> Self {
        Self::from_argv(vec![program.into()])
    }

    fn from_argv(argv: Vec<OsString>) -> Self {
        Self { argv, stdin: None, env: Vec::new(), timeout: None }
    }

    /// Adds an argument (to the program, or after a script: `$0`, `$1`, ...).
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.argv.push(arg.into());
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// What the command reads on standard input (nothing, by default: it reads end of file).
    #[must_use]
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Sets an environment variable for this command, over the shell's own.
    #[must_use]
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A time limit for this command instead of the shell's.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl From<&str> for ShellCommand {
    fn from(script: &str) -> Self {
        Self::script(script)
    }
}

impl From<String> for ShellCommand {
    fn from(script: String) -> Self {
        Self::script(script)
    }
}

impl From<&String> for ShellCommand {
    fn from(script: &String) -> Self {
        Self::script(script.as_str())
    }
}
