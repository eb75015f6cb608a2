//! Why a command could not be run at all.

use std::path::PathBuf;

/// A command that could not be run. A command that ran and failed is not an error: it is a
/// [`ShellOutput`](super::ShellOutput) with a non-zero [`Exit`](super::Exit).
///
/// Through the shell tool, these become error results the model reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShellError {
    /// Bubblewrap is not installed, and the shell was not opted out of the sandbox.
    #[error(
        "the shell tool refuses to run: bubblewrap (`{}`) was not found, and commands only run \
         inside its sandbox. Install it (`apt-get install bubblewrap`, `dnf install bubblewrap`, \
         `pacman -S bubblewrap`), point the shell at it with `Shell::bwrap_program`, or, to run \
         commands on this machine with no isolation at all, build the shell with \
         `Shell::dangerously_unsandboxed()`",
        .program.display()
    )]
    SandboxMissing {
        /// The program looked for.
        program: PathBuf,
    },
    /// Bubblewrap is installed but could not set up the sandbox.
    #[error(
        "bubblewrap could not set up the sandbox: {detail}. Unprivileged user namespaces may be \
         disabled (sysctls `kernel.unprivileged_userns_clone`, `user.max_user_namespaces`, \
         `kernel.apparmor_restrict_unprivileged_userns` on Ubuntu), or a container's seccomp \
         profile may block them"
    )]
    SandboxUnavailable {
        /// What bubblewrap said.
        detail: String,
    },
    /// A folder or file to bind into the sandbox cannot be used.
    #[error("cannot bind `{}` into the sandbox: {reason}", .path.display())]
    InvalidBind {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The process could not be started.
    #[error("could not start `{}`: {source}", .program.display())]
    Spawn {
        /// The program started (`bwrap`, or the command itself without the sandbox).
        program: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the process failed.
    #[error("lost track of the command's process: {0}")]
    Wait(#[source] std::io::Error),
}
