//! This process's standard input and output as event-driven pipes, the
//! signals that end a server process, and the process groups of the
//! servers the harness starts.
//!
//! Tokio's own `stdin()` and `stdout()` hand every read and write to a
//! blocking thread: two thread hops per frame, which cost more than judging
//! or answering a call. When the stream is a pipe (as it always is between
//! the harness, an enforcer and the mock) it is registered with the reactor
//! instead; anything else (a terminal, a file) keeps Tokio's own.

use tokio::io::{AsyncRead, AsyncWrite};

/// Standard input, read without a blocking thread when it is a pipe.
pub fn stdin() -> Box<dyn AsyncRead + Unpin + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Some(pipe) = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok())
        {
            return Box::new(pipe);
        }
    }
    Box::new(tokio::io::stdin())
}

/// Standard output, written without a blocking thread when it is a pipe.
pub fn stdout() -> Box<dyn AsyncWrite + Unpin + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Some(pipe) = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| tokio::net::unix::pipe::Sender::from_owned_fd(fd).ok())
        {
            return Box::new(pipe);
        }
    }
    Box::new(tokio::io::stdout())
}

/// Resolves when the process is asked to stop: Ctrl-C, or SIGTERM on Unix
/// (what the harness and process managers send). Servers then shut down in
/// order, so logs they keep are written out.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Starts the child in a process group of its own. A Ctrl-C at the terminal
/// goes to the whole foreground group: a target in it would die at once,
/// mid-call, and the partial report would charge the transport errors to
/// it. Out of the group, only gauntlet gets the signal; it stops the load,
/// lets the calls in flight finish and then stops its servers itself.
pub fn own_group(cmd: &mut tokio::process::Command) {
    #[cfg(unix)]
    cmd.process_group(0);
}

/// Kills the group the child leads: the child and whatever it started (a
/// shell's command, an enforcer's upstream), which killing the child alone
/// would leave running. Only while the child is not yet reaped, so its id
/// still names its group.
pub fn kill_group(child: &tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
