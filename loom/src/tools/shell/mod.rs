//! A shell tool, sandboxed by bubblewrap: the model runs commands in a folder of yours, and
//! nothing else of the machine is in reach.
//!
//! A [`Shell`] is both the `shell` tool an agent calls and a way to run one command yourself
//! ([`Shell::run`]). Each command:
//!
//! - runs in the shell's root folder, the only place it can write to that outlives it;
//! - stops at a time limit (30 s by default); then it and **every process it started** are
//!   killed, and the call returns only once they are gone. Dropping the [`run`](Shell::run)
//!   future (the agent's run was cancelled) kills them too;
//! - has its stdout and stderr read at the same time (a command filling one pipe cannot hang on
//!   the other), each kept to a cap (16 KiB by default) while it is read: the head and the tail
//!   are kept, the middle becomes `[... 12,345 bytes elided ...]`;
//! - reports its exit code or the signal that killed it, or that it timed out, and the time it
//!   took. A failing command is a normal result the model reads, not a tool error.
//!
//! ```
//! use std::time::Duration;
//! use loomflow::prelude::*;
//! use loomflow::tools::shell::{Shell, ShellError};
//! use serde_json::json;
//!
//! # let dir = std::env::temp_dir().join(format!("loom-shell-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let shell = Shell::new(&dir)?.timeout(Duration::from_secs(10)).max_output_bytes(8 * 1024);
//!
//! // Programmatically:
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! match shell.run("echo hello > greeting.txt && cat greeting.txt").await {
//!     Ok(out) => {
//!         assert!(out.success());
//!         assert_eq!(out.stdout.text(), "hello\n");
//!     }
//!     // Without bubblewrap, the shell refuses, and says how to fix it.
//!     Err(ShellError::SandboxMissing { .. }) => {}
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//!
//! // As the agent's tool (destructive, so approval policies apply to it):
//! let model = ScriptedModel::new([
//!     ScriptedTurn::tool_call("shell", json!({"command": "ls"})),
//!     ScriptedTurn::text("Listed."),
//! ]);
//! let agent = Agent::new("You work in a project folder.").model(model).tool(shell);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The sandbox
//!
//! Commands run under [bubblewrap](https://github.com/containers/bubblewrap) (`bwrap`), in new
//! user, PID, IPC, UTS and cgroup namespaces, and a new network namespace unless
//! [`allow_network`](Shell::allow_network) is set:
//!
//! - the system (`/usr`, `/bin`, `/lib*`, `/sbin`, `/etc`, `/opt`) is read-only; the shadow
//!   password files and `/etc/ssl/private` are masked; nothing else of the machine is there
//!   (no `/home`, `/root`, `/var`, `/run`, `/sys`, `/mnt`), apart from folders you bind with
//!   [`bind_read_only`](Shell::bind_read_only) and [`bind_read_write`](Shell::bind_read_write);
//! - the root is bound read-write at its own path and is the working directory;
//! - `/tmp` is an empty tmpfs for each command, and `HOME` is `/tmp/home`;
//! - `/proc` shows only the command's own processes; `/dev` holds only the harmless devices;
//! - no network: not even the machine's loopback (the sandbox has a loopback of its own);
//! - every capability is dropped, so a command cannot remount anything, even when Loom runs
//!   as root; the command runs in a new session, and dies if Loom does;
//! - the environment is cleared: the command sees `PATH`, `LANG`, `LANGUAGE`, `LC_*`, `TERM`,
//!   `TZ`, `HOME`, `TMPDIR`, and only the variables you set ([`env`](Shell::env)) or pass by
//!   name ([`pass_env`](Shell::pass_env)) — API keys and tokens in Loom's environment do not
//!   reach it.
//!
//! Bubblewrap must be installed (`apt-get install bubblewrap`). Without it the shell refuses
//! to run ([`ShellError::SandboxMissing`]) unless it was built with
//! [`dangerously_unsandboxed`](Shell::dangerously_unsandboxed), which runs commands directly
//! on the machine with the environment still filtered, the time limit and the output caps, and
//! the process group still killed — but nothing else kept from the model: it can read and
//! write whatever Loom's user can, reach the network, and a process that leaves the command's
//! process group (`setsid`) survives it.
//!
//! The sandbox limits what a command can *reach*, not what it can *use*: memory, CPU time and
//! the number of processes are not capped (run Loom under a cgroup, e.g. `systemd-run`, for
//! that), and no seccomp filter is installed.
//!
//! This module exists on Linux only.
#![cfg(target_os = "linux")]

mod capture;
mod command;
mod env;
mod error;
mod output;
mod process;
mod sandbox;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

pub use command::ShellCommand;
pub use error::ShellError;
pub use output::{CapturedStream, Exit, ShellOutput};

use crate::context::RunContext;
use crate::error::ConfigError;
use crate::tool::{Arguments, Tool, ToolDefinition, ToolError, ToolHints, ToolOutput};
use env::{EnvPlan, ParentEnv};
use sandbox::{Bind, Sandbox};

/// The time limit of a command unless set otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many bytes of each of stdout and stderr are kept unless set otherwise.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 16 * 1024;

/// How long the check that bubblewrap works may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// A shell that runs commands in a sandbox rooted at a folder; also the `shell` tool.
///
/// Cheap to clone; the settings are shared. Settings apply to the shell they are set on (and
/// its later clones). See the [module docs](self) for what the sandbox allows.
///
/// ```
/// use std::time::Duration;
/// use loomflow::Tool as _;
/// use loomflow::tools::shell::Shell;
///
/// # let dir = std::env::temp_dir();
/// let shell = Shell::new(&dir)?
///     .timeout(Duration::from_secs(120))
///     .max_output_bytes(32 * 1024)
///     .allow_network()
///     .pass_env("CARGO_HOME")
///     .env("RUST_BACKTRACE", "1")
///     .bind_read_only("/usr/share/dict");
/// assert!(shell.is_sandboxed());
/// assert!(shell.definition().hints().destructive);
/// # Ok::<(), loomflow::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Shell {
    settings: Arc<Settings>,
    /// Whether bubblewrap was seen to work with these settings (checked on the first command).
    sandbox_works: Arc<OnceCell<()>>,
}

#[derive(Debug, Clone)]
struct Settings {
    root: PathBuf,
    timeout: Duration,
    max_output_bytes: usize,
    network: bool,
    sandboxed: bool,
    bwrap: Option<PathBuf>,
    binds: Vec<Bind>,
    env: Vec<(OsString, OsString)>,
    pass_env: Vec<OsString>,
    parent_env: ParentEnv,
    definition: ToolDefinition,
}

impl Shell {
    /// A sandboxed shell whose commands run in `root` (a folder that exists; symbolic links
    /// are resolved). `/` is refused: the whole machine would be writable.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let given = root.as_ref();
        let invalid = |reason: String| ConfigError::InvalidSetting { setting: "shell root", reason };
        let root = std::fs::canonicalize(given)
            .map_err(|e| invalid(format!("`{}` cannot be used as the shell's root: {e}", given.display())))?;
        if !root.is_dir() {
            return Err(invalid(format!("`{}` is not a folder", given.display())));
        }
        if root == Path::new("/") {
            return Err(invalid(
                "the shell's root must not be `/`: every file of the machine would be writable; \
                 give the project's folder"
                    .to_owned(),
            ));
        }
        let mut settings = Settings {
            root,
            timeout: DEFAULT_TIMEOUT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            network: false,
            sandboxed: true,
            bwrap: None,
            binds: Vec::new(),
            env: Vec::new(),
            pass_env: Vec::new(),
            parent_env: ParentEnv::Process,
            definition: ToolDefinition::new_unchecked(String::new(), String::new(), serde_json::Value::Null),
        };
        settings.definition = definition(&settings);
        Ok(Self { settings: Arc::new(settings), sandbox_works: Arc::new(OnceCell::new()) })
    }

    fn with(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        let settings = Arc::make_mut(&mut self.settings);
        change(settings);
        settings.definition = definition(settings);
        self.sandbox_works = Arc::new(OnceCell::new());
        self
    }

    /// The time limit of each command (30 s by default). At the limit, the command and every
    /// process it started are killed, and the result says it timed out.
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with(|s| s.timeout = timeout)
    }

    /// How many bytes of each of stdout and stderr are kept (16 KiB by default): half from
    /// the start, half from the end, with a marker saying how many were left out between.
    #[must_use]
    pub fn max_output_bytes(self, bytes: usize) -> Self {
        self.with(|s| s.max_output_bytes = bytes)
    }

    /// Lets commands use the network (they have none by default).
    #[must_use]
    pub fn allow_network(self) -> Self {
        self.with(|s| s.network = true)
    }

    /// Sets an environment variable for every command.
    #[must_use]
    pub fn env(self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        let (name, value) = (name.into(), value.into());
        self.with(|s| s.env.push((name, value)))
    }

    /// Passes one of Loom's own environment variables to commands, when it is set. Every
    /// variable not passed, set or in the short default list is withheld.
    #[must_use]
    pub fn pass_env(self, name: impl Into<OsString>) -> Self {
        let name = name.into();
        self.with(|s| s.pass_env.push(name))
    }

    /// The environment the shell filters, instead of this process's own: for tests, or for a
    /// host that keeps the variables of each user apart.
    #[must_use]
    pub fn parent_env<K, V>(self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let vars = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.with(|s| s.parent_env = ParentEnv::Given(vars))
    }

    /// Shows a folder or file of the machine to commands, read-only, at the same path (an
    /// absolute path that exists when a command runs).
    #[must_use]
    pub fn bind_read_only(self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.with(|s| s.binds.push(Bind { path, writable: false }))
    }

    /// Shows a folder or file of the machine to commands, writable, at the same path (an
    /// absolute path that exists when a command runs).
    #[must_use]
    pub fn bind_read_write(self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.with(|s| s.binds.push(Bind { path, writable: true }))
    }

    /// The bubblewrap program to use, instead of `bwrap` found on `PATH`.
    #[must_use]
    pub fn bwrap_program(self, program: impl Into<PathBuf>) -> Self {
        let program = program.into();
        self.with(|s| s.bwrap = Some(program))
    }

    /// **Runs commands with no sandbox**: directly on this machine, as Loom's user, with full
    /// access to its files and network. Only the environment filter, the working directory,
    /// the time limit, the output caps and the process-group kill remain. Use it only where
    /// the commands are trusted, or the machine is disposable.
    #[must_use]
    pub fn dangerously_unsandboxed(self) -> Self {
        self.with(|s| s.sandboxed = false)
    }

    /// The folder commands run in.
    pub fn root(&self) -> &Path {
        &self.settings.root
    }

    /// Whether commands run in the sandbox (false after
    /// [`dangerously_unsandboxed`](Self::dangerously_unsandboxed)).
    pub fn is_sandboxed(&self) -> bool {
        self.settings.sandboxed
    }

    /// Runs one command: a script for `/bin/sh -c` (any string), or a [`ShellCommand`].
    ///
    /// Returns how it ended and what it wrote; `Err` only when it could not be run at all (no
    /// bubblewrap, a sandbox that cannot be set up, a bind that does not exist).
    pub async fn run(&self, command: impl Into<ShellCommand>) -> Result<ShellOutput, ShellError> {
        let command = command.into();
        let s = &self.settings;
        let timeout = command.timeout.unwrap_or(s.timeout);
        if !s.sandboxed {
            let mut argv = command.argv.into_iter();
            let program = PathBuf::from(argv.next().unwrap_or_default());
            let env = self.child_env(vec![("HOME".into(), s.root.clone().into())], &command.env);
            return process::execute(process::Launch {
                program,
                args: argv.collect(),
                env,
                cwd: s.root.clone(),
                stdin: command.stdin,
                timeout,
                output_cap: s.max_output_bytes,
                sandboxed: false,
            })
            .await;
        }
        let bwrap = self.bwrap()?;
        self.sandbox_works.get_or_try_init(|| self.check_sandbox(&bwrap)).await?;
        let args = Sandbox { root: &s.root, network: s.network, binds: &s.binds }.args(&command.argv)?;
        let env = self.child_env(sandbox_defaults(), &command.env);
        process::execute(process::Launch {
            program: bwrap,
            args,
            env,
            cwd: s.root.clone(),
            stdin: command.stdin,
            timeout,
            output_cap: s.max_output_bytes,
            sandboxed: true,
        })
        .await
    }

    /// The command's environment; without the sandbox, the parent's `TMPDIR` passes too.
    fn child_env(
        &self,
        defaults: Vec<(OsString, OsString)>,
        command: &[(OsString, OsString)],
    ) -> Vec<(OsString, OsString)> {
        let s = &self.settings;
        EnvPlan {
            parent: &s.parent_env,
            pass: &s.pass_env,
            also_allowed: if s.sandboxed { &[] } else { &["TMPDIR"] },
            defaults,
            shell: &s.env,
            command,
        }
        .build()
    }

    fn bwrap(&self) -> Result<PathBuf, ShellError> {
        match &self.settings.bwrap {
            Some(program) if program.is_file() => Ok(program.clone()),
            Some(program) => Err(ShellError::SandboxMissing { program: program.clone() }),
            None => sandbox::find_bwrap().ok_or_else(|| ShellError::SandboxMissing { program: "bwrap".into() }),
        }
    }

    /// Runs `/bin/sh -c :` in the sandbox once, so that a bubblewrap that cannot create its
    /// namespaces is reported as such, not as the command's failure.
    async fn check_sandbox(&self, bwrap: &Path) -> Result<(), ShellError> {
        let s = &self.settings;
        let argv = ShellCommand::script(":").argv;
        let args = Sandbox { root: &s.root, network: s.network, binds: &s.binds }.args(&argv)?;
        let out = process::execute(process::Launch {
            program: bwrap.to_path_buf(),
            args,
            env: self.child_env(sandbox_defaults(), &[]),
            cwd: s.root.clone(),
            stdin: None,
            timeout: PROBE_TIMEOUT,
            output_cap: 4096,
            sandboxed: true,
        })
        .await?;
        if out.success() {
            return Ok(());
        }
        let said = out.stderr.text().trim();
        let detail =
            if said.is_empty() { format!("`{}` ended with {}", bwrap.display(), out.exit) } else { said.to_owned() };
        Err(ShellError::SandboxUnavailable { detail })
    }
}

fn sandbox_defaults() -> Vec<(OsString, OsString)> {
    vec![("HOME".into(), sandbox::SANDBOX_HOME.into()), ("TMPDIR".into(), "/tmp".into())]
}

/// The tool's definition, which tells the model where and how its commands run.
fn definition(s: &Settings) -> ToolDefinition {
    let place = if s.sandboxed {
        format!(
            "It runs in a sandbox: only `{root}` is writable and keeps its files; the system is \
             read-only; /tmp and $HOME start empty on every call; {network}; processes of the \
             machine other than the command's own are not visible.",
            root = s.root.display(),
            network = if s.network { "the network is reachable" } else { "there is no network" },
        )
    } else {
        "It runs directly on the machine, with no sandbox.".to_owned()
    };
    let description = format!(
        "Run a shell command with `/bin/sh -c`. The working directory is `{root}`. {place} The \
         command is stopped after {timeout}; of long output, the first and last {half} bytes of \
         each of stdout and stderr are kept. Returns the exit code, stdout and stderr; a command \
         that fails is reported, not an error.",
        root = s.root.display(),
        timeout = output::seconds(s.timeout),
        half = capture::thousands((s.max_output_bytes / 2) as u64),
    );
    let parameters = serde_json::json!({
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "description": "The command line, as you would type it in a terminal (pipes, redirections and `&&` work)."
            }
        },
        "required": ["command"],
        "additionalProperties": false
    });
    ToolDefinition::new_unchecked("shell".to_owned(), description, parameters).with_hints(ToolHints::NONE.destructive())
}

impl fmt::Debug for Shell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("Shell")
            .field("root", &s.root)
            .field("sandboxed", &s.sandboxed)
            .field("timeout", &s.timeout)
            .field("max_output_bytes", &s.max_output_bytes)
            .field("network", &s.network)
            .field("binds", &s.binds)
            .field("env", &s.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("pass_env", &s.pass_env)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Tool for Shell {
    fn definition(&self) -> &ToolDefinition {
        &self.settings.definition
    }

    async fn call(&self, _ctx: &RunContext, arguments: &str) -> Result<ToolOutput, ToolError> {
        let mut args = Arguments::parse(arguments)?;
        let command: String = args.take("command")?;
        args.finish(&["command"])?;
        if command.trim().is_empty() {
            return Err(ToolError::invalid_arguments("`command` is empty; give a command line, such as `ls -la`"));
        }
        let output = self.run(command).await?;
        Ok(ToolOutput::text(output.to_string()))
    }
}
