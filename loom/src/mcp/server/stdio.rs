//! Standard input and output as non-blocking pipes for the stdio transport.
//!
//! tokio's `stdin()`/`stdout()` do every read and write on its blocking-thread pool, two
//! cross-thread hand-offs per message. When both streams are pipes — how an MCP client starts
//! its server — Loom reads and writes them on the reactor instead. `O_NONBLOCK` lives on the
//! shared open file description, so the serving process and anyone else holding the pipe see
//! it: [`Restore::blocking`] takes it back off when the client disconnects, so `println!` after
//! serving behaves as it did before.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use tokio::net::unix::pipe;

/// Standard input and output, both pipes, opened on the reactor.
pub(super) struct Pipes {
    reader: pipe::Receiver,
    writer: pipe::Sender,
    restore: Restore,
}

/// Copies of the two descriptors, kept to put them back in blocking mode.
pub(super) struct Restore {
    fds: [OwnedFd; 2],
}

impl Pipes {
    /// Both streams as pipes, or `None` (nothing changed) when either is not a pipe or cannot
    /// be duplicated.
    pub(super) fn open() -> Option<Self> {
        let stdin = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
        let stdout = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
        if !is_fifo(&stdin) || !is_fifo(&stdout) {
            return None;
        }
        let restore = Restore { fds: [stdin.try_clone().ok()?, stdout.try_clone().ok()?] };
        // From here on a failure may have left one descriptor non-blocking: `restore` undoes it.
        let pipes =
            pipe::Receiver::from_owned_fd(stdin).and_then(|reader| Ok((reader, pipe::Sender::from_owned_fd(stdout)?)));
        match pipes {
            Ok((reader, writer)) => Some(Self { reader, writer, restore }),
            Err(_) => {
                restore.blocking();
                None
            }
        }
    }

    /// The reader, the writer, and what puts the streams back afterwards.
    pub(super) fn split(self) -> (pipe::Receiver, pipe::Sender, Restore) {
        (self.reader, self.writer, self.restore)
    }
}

impl Restore {
    /// Clears `O_NONBLOCK` on both streams (best effort: a stream the peer closed stays as is).
    pub(super) fn blocking(self) {
        for fd in &self.fds {
            if let Ok(flags) = fcntl_getfl(fd) {
                let _ = fcntl_setfl(fd, flags - OFlags::NONBLOCK);
            }
        }
    }
}

fn is_fifo(fd: &OwnedFd) -> bool {
    rustix::fs::fstat(fd)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonblocking(fd: &OwnedFd) -> bool {
        fcntl_getfl(fd).is_ok_and(|flags| flags.contains(OFlags::NONBLOCK))
    }

    #[tokio::test]
    async fn a_pipe_served_without_blocking_is_put_back_in_blocking_mode() -> std::io::Result<()> {
        let (read, write) = std::io::pipe()?;
        let (read, write): (OwnedFd, OwnedFd) = (read.into(), write.into());
        assert!(is_fifo(&read) && is_fifo(&write));
        let restore = Restore { fds: [read.try_clone()?, write.try_clone()?] };
        let reader = pipe::Receiver::from_owned_fd(read.try_clone()?)?;
        let writer = pipe::Sender::from_owned_fd(write.try_clone()?)?;
        assert!(nonblocking(&read) && nonblocking(&write), "the reactor needs O_NONBLOCK");
        drop((reader, writer));
        restore.blocking();
        assert!(!nonblocking(&read) && !nonblocking(&write), "O_NONBLOCK is cleared afterwards");
        Ok(())
    }

    #[test]
    fn a_regular_file_is_not_a_pipe() -> std::io::Result<()> {
        let file: OwnedFd = std::fs::File::open("/dev/null")?.into();
        assert!(!is_fifo(&file));
        Ok(())
    }
}
