//! Long-running children (an HTTP mock, an HTTP enforcer): started, waited
//! for until they serve, and killed and reaped when their arena ends.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use super::TargetError;
use crate::mcp::pipes;

const STDERR_KEPT: usize = 16 * 1024;

/// A child process that is killed when dropped.
pub struct Server {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    command: String,
}

/// How to tell that a server is ready.
pub enum Ready {
    /// It prints its endpoint URL as the first line of stdout.
    FirstLine,
    /// It listens on this loopback port.
    Port(u16),
}

impl Server {
    /// Starts `words` and waits, up to `timeout`, until it serves. Returns
    /// the server and its URL (for `Ready::FirstLine`) or `None`.
    pub async fn start(
        words: &[String],
        env: &[(String, String)],
        ready: Ready,
        timeout: Duration,
    ) -> Result<(Server, Option<String>), TargetError> {
        let command = words.join(" ");
        let fail = |reason: String| TargetError::Start {
            command: command.clone(),
            reason,
        };
        let (program, args) = words
            .split_first()
            .ok_or_else(|| fail("empty command".into()))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        pipes::own_group(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = stderr.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.extend_from_slice(&buf[..n]);
                        let excess = s.len().saturating_sub(STDERR_KEPT);
                        s.drain(..excess);
                    }
                }
            });
        }
        let stdout = child.stdout.take();
        let mut server = Server {
            child,
            stderr,
            command: command.clone(),
        };
        let waited = tokio::time::timeout(timeout, async {
            match ready {
                Ready::FirstLine => {
                    let stdout = stdout.ok_or("no stdout")?;
                    let mut lines = BufReader::new(stdout).lines();
                    let line = lines
                        .next_line()
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or("exited before printing its url")?;
                    // Keep draining stdout so the child never blocks on it.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    Ok::<_, String>(Some(line.trim().to_owned()))
                }
                Ready::Port(port) => {
                    if let Some(mut out) = stdout {
                        tokio::spawn(async move {
                            let mut sink = [0u8; 4096];
                            while let Ok(n) = out.read(&mut sink).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        });
                    }
                    loop {
                        if tokio::net::TcpStream::connect(("127.0.0.1", port))
                            .await
                            .is_ok()
                        {
                            return Ok(None);
                        }
                        if let Ok(Some(status)) = server.child.try_wait() {
                            return Err(format!("exited with {status}"));
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(url)) => Ok((server, url)),
            Ok(Err(reason)) => Err(fail(format!("{reason}; stderr: {}", server.stderr_tail()))),
            Err(_) => {
                let tail = server.stderr_tail();
                server.stop().await;
                Err(fail(format!(
                    "not serving after {timeout:?}; stderr: {tail}"
                )))
            }
        }
    }

    /// The last of what it wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default()
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// Kills it, with whatever it started, and reaps it.
    pub async fn stop(&mut self) {
        pipes::kill_group(&self.child);
        let _ = self.child.kill().await;
    }

    /// The command line it was started with.
    pub fn command(&self) -> &str {
        &self.command
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `kill_on_drop` reaches the child alone.
        pipes::kill_group(&self.child);
    }
}

/// A free loopback port. Another process could take it before the enforcer
/// binds it; the start-up wait then fails with a clear error.
pub fn free_port() -> Result<u16, TargetError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| TargetError::Start {
            command: "bind 127.0.0.1:0".into(),
            reason: e.to_string(),
        })
}
