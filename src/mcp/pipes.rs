//! This process's standard input and output as event-driven pipes, and the
//! signals that end a server process.
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
