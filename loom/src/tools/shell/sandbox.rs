//! The bubblewrap command line: what the sandbox shows of the machine.
//!
//! The system folders are bound read-only (symbolic links such as `/bin -> usr/bin` are
//! recreated as links), the shadow password files and private keys under `/etc` are masked,
//! `/dev` is a minimal set of devices, `/proc` belongs to a fresh PID namespace, `/tmp` (and
//! `HOME` inside it) is an empty tmpfs, the root is bound read-write at its own path, and the
//! sandbox's own top folder is remounted read-only. Every namespace bubblewrap can create is
//! new (user, PID, IPC, UTS, cgroup; network unless allowed), all capabilities are dropped
//! (bubblewrap keeps them for a root caller otherwise, and a root process with them could
//! remount the system read-write), the command runs in a new session (no `TIOCSTI` into the
//! caller's terminal), and the sandbox dies with its parent.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::error::ShellError;

/// The folders of the system, bound read-only when they exist.
const SYSTEM: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"];

/// Files under `/etc` that hold secrets, masked when they exist (a root caller could read them).
const MASKED_FILES: &[&str] = &["/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-"];

/// Folders under `/etc` that hold secrets, replaced by an empty read-only folder.
const MASKED_DIRS: &[&str] = &["/etc/ssl/private"];

/// `HOME` in the sandbox: inside its `/tmp`, so it starts empty and vanishes with the command.
pub(super) const SANDBOX_HOME: &str = "/tmp/home";

/// A path bound into the sandbox at the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bind {
    pub(super) path: PathBuf,
    pub(super) writable: bool,
}

/// What one sandboxed command sees.
pub(super) struct Sandbox<'a> {
    pub(super) root: &'a Path,
    pub(super) network: bool,
    pub(super) binds: &'a [Bind],
}

impl Sandbox<'_> {
    /// The arguments to bubblewrap, ending with `--` and the command's `argv`.
    pub(super) fn args(&self, argv: &[OsString]) -> Result<Vec<OsString>, ShellError> {
        let mut a = Args(Vec::with_capacity(64 + argv.len()));
        a.push(["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]);
        if !self.network {
            a.push(["--unshare-net"]);
        }
        a.push(["--cap-drop", "ALL", "--die-with-parent", "--new-session", "--hostname", "sandbox"]);

        for dir in SYSTEM {
            let path = Path::new(dir);
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(path) {
                        a.push_os(["--symlink".into(), target.into_os_string(), path.into()]);
                    }
                }
                Ok(meta) if meta.is_dir() => a.push_os(["--ro-bind".into(), path.into(), path.into()]),
                _ => {}
            }
        }
        for file in MASKED_FILES {
            if Path::new(file).is_file() {
                a.push(["--ro-bind", "/dev/null", file]);
            }
        }
        for dir in MASKED_DIRS {
            if Path::new(dir).is_dir() {
                a.push(["--tmpfs", dir, "--remount-ro", dir]);
            }
        }
        if self.network {
            // A resolver configuration that links elsewhere (systemd-resolved's stub under
            // /run) is bound too, so names resolve.
            if let Ok(target) = std::fs::canonicalize("/etc/resolv.conf")
                && !target.starts_with("/etc")
                && target.is_file()
            {
                a.push_os(["--ro-bind".into(), target.clone().into(), target.into()]);
            }
        }
        a.push(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", SANDBOX_HOME]);

        for bind in self.binds {
            let path = checked_bind(&bind.path)?;
            let flag = if bind.writable { "--bind" } else { "--ro-bind" };
            a.push_os([flag.into(), path.clone().into(), path.into()]);
        }
        a.push_os(["--bind".into(), self.root.into(), self.root.into()]);
        a.push(["--remount-ro", "/"]);
        a.push_os(["--chdir".into(), self.root.into()]);
        a.push(["--"]);
        a.0.extend(argv.iter().cloned());
        Ok(a.0)
    }
}

/// The bind's path, made absolute and resolved; it must exist.
fn checked_bind(path: &Path) -> Result<PathBuf, ShellError> {
    let invalid = |reason: String| ShellError::InvalidBind { path: path.to_path_buf(), reason };
    if !path.is_absolute() {
        return Err(invalid("give an absolute path".to_owned()));
    }
    let resolved = std::fs::canonicalize(path).map_err(|e| invalid(format!("{e}")))?;
    if resolved == Path::new("/") {
        return Err(invalid("binding `/` would expose the whole machine".to_owned()));
    }
    Ok(resolved)
}

struct Args(Vec<OsString>);

impl Args {
    fn push<const N: usize>(&mut self, args: [&str; N]) {
        self.0.extend(args.iter().map(OsString::from));
    }

    fn push_os<const N: usize>(&mut self, args: [OsString; N]) {
        self.0.extend(args);
    }
}

/// Finds `bwrap` on this process's `PATH` (the usual folders when it has none).
pub(super) fn find_bwrap() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_else(|| super::env::DEFAULT_PATH.into());
    std::env::split_paths(&path).map(|dir| dir.join("bwrap")).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(args: &[OsString]) -> String {
        args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_command_line_isolates_by_default() -> Result<(), ShellError> {
        let sandbox = Sandbox { root: Path::new("/work/project"), network: false, binds: &[] };
        let args = sandbox.args(&["/bin/sh".into(), "-c".into(), "echo $HOME; rm -rf x".into()])?;
        let line = joined(&args);
        for needed in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--cap-drop ALL",
            "--die-with-parent",
            "--new-session",
            "--ro-bind /usr /usr",
            "--tmpfs /tmp",
            "--bind /work/project /work/project",
            "--remount-ro /",
            "--chdir /work/project",
        ] {
            assert!(line.contains(needed), "`{needed}` missing from: {line}");
        }
        // The command is the last arguments, untouched, after `--`.
        assert_eq!(joined(&args[args.len() - 4..]), "-- /bin/sh -c echo $HOME; rm -rf x");
        Ok(())
    }

    #[test]
    fn network_allowed_keeps_the_namespace() -> Result<(), ShellError> {
        let sandbox = Sandbox { root: Path::new("/work/project"), network: true, binds: &[] };
        assert!(!joined(&sandbox.args(&["true".into()])?).contains("--unshare-net"));
        Ok(())
    }

    #[test]
    fn binds_must_be_absolute_and_exist() {
        for bad in ["relative/dir", "/no/such/loom/dir", "/"] {
            let binds = [Bind { path: bad.into(), writable: false }];
            let sandbox = Sandbox { root: Path::new("/work/project"), network: false, binds: &binds };
            assert!(matches!(sandbox.args(&[]), Err(ShellError::InvalidBind { .. })), "{bad}");
        }
    }
}
