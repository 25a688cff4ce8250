//! The stdio transport: a child process, NDJSON both ways, replies matched
//! to ids by a reader task so requests can be pipelined.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{broadcast, oneshot};

use super::{ClientError, Exchange, Expect, Pending, Waiter, id_key, skeleton};
use crate::mcp::framing::{DEFAULT_MAX_FRAME, FrameReader};

const STDERR_KEPT: usize = 16 * 1024;

/// How to start the peer.
#[derive(Debug, Clone, Default)]
pub struct StdioOptions {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<std::path::PathBuf>,
}

impl StdioOptions {
    /// A command line split the way a POSIX shell would split it.
    pub fn from_command_line(line: &str) -> Result<StdioOptions, ClientError> {
        let mut words = shlex::split(line)
            .filter(|w| !w.is_empty())
            .ok_or_else(|| ClientError::Transport(format!("cannot split command line `{line}`")))?
            .into_iter();
        let program = words
            .next()
            .ok_or_else(|| ClientError::Transport("empty command line".into()))?;
        Ok(StdioOptions {
            program,
            args: words.collect(),
            ..StdioOptions::default()
        })
    }

    fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

struct Shared {
    pending: Mutex<Pending>,
    /// Set once any send asked for skeletons: from then on the reader reads
    /// each reply's skeleton first, and builds the whole reply only for a
    /// waiter that wants it. A client that never asks pays nothing.
    skeletons: std::sync::atomic::AtomicBool,
    closed: Mutex<bool>,
    stderr: Mutex<VecDeque<u8>>,
}

pub(super) struct StdioTransport {
    child: tokio::sync::Mutex<Child>,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    shared: Arc<Shared>,
    unmatched: broadcast::Sender<Value>,
    exit: Mutex<Option<String>>,
}

impl StdioTransport {
    pub(super) fn spawn(opts: StdioOptions) -> Result<StdioTransport, ClientError> {
        let mut cmd = Command::new(&opts.program);
        cmd.args(&opts.args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::mcp::pipes::own_group(&mut cmd);
        if let Some(dir) = &opts.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|source| ClientError::Spawn {
            command: opts.display(),
            source,
        })?;
        let missing = || ClientError::Transport("child pipes were not set up".into());
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let mut stderr = child.stderr.take().ok_or_else(missing)?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::new()),
            skeletons: std::sync::atomic::AtomicBool::new(false),
            closed: Mutex::new(false),
            stderr: Mutex::new(VecDeque::new()),
        });
        let (unmatched, _) = broadcast::channel(256);

        let reader_shared = shared.clone();
        let reader_unmatched = unmatched.clone();
        tokio::spawn(async move {
            let mut frames = FrameReader::new(stdout, DEFAULT_MAX_FRAME);
            loop {
                match frames.next_frame().await {
                    Ok(Some(frame)) => dispatch(&reader_shared, &reader_unmatched, &frame),
                    Ok(None) => break,
                    Err(e) if e.is_recoverable() => continue,
                    Err(_) => break,
                }
            }
            if let Ok(mut closed) = reader_shared.closed.lock() {
                *closed = true;
            }
            // Dropping the senders wakes every waiter with "closed".
            if let Ok(mut p) = reader_shared.pending.lock() {
                p.clear();
            }
        });

        // A peer that floods stderr must not block on a full pipe.
        let err_shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut tail) = err_shared.stderr.lock() {
                    tail.extend(&buf[..n]);
                    let excess = tail.len().saturating_sub(STDERR_KEPT);
                    tail.drain(..excess);
                }
            }
        });

        Ok(StdioTransport {
            child: tokio::sync::Mutex::new(child),
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            shared,
            unmatched,
            exit: Mutex::new(None),
        })
    }

    pub(super) async fn exchange(
        &self,
        bytes: Vec<u8>,
        expect: &Expect,
        skeleton: bool,
        timeout: Duration,
    ) -> Result<Exchange, ClientError> {
        if skeleton {
            self.shared
                .skeletons
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let mut waiters = Vec::new();
        let mut orphans = self.unmatched.subscribe();
        if let Expect::Ids(ids) = expect {
            let mut pending = self
                .shared
                .pending
                .lock()
                .map_err(|_| ClientError::Transport("pending map poisoned".into()))?;
            for id in ids {
                let (tx, rx) = oneshot::channel();
                let key = id_key(id);
                pending.insert(key.clone(), Waiter { tx, skeleton });
                waiters.push((key, rx));
            }
        }
        if let Err(e) = self.write(&bytes).await {
            self.forget(&waiters);
            return Err(e);
        }
        let mut ex = Exchange::default();
        match expect {
            Expect::Ids(_) => {
                let deadline = tokio::time::Instant::now() + timeout;
                let mut i = 0;
                while i < waiters.len() {
                    let rx = &mut waiters[i].1;
                    tokio::select! {
                        got = tokio::time::timeout_at(deadline, rx) => match got {
                            Ok(Ok(reply)) => {
                                ex.replies.push(reply);
                                i += 1;
                            }
                            Ok(Err(_)) => {
                                self.forget(&waiters);
                                return Err(ClientError::Closed(self.exit_status_now().await));
                            }
                            Err(_) => {
                                self.forget(&waiters);
                                if ex.replies.is_empty() {
                                    return Err(ClientError::Timeout(timeout));
                                }
                                break;
                            }
                        },
                        // A peer that cannot read the request's id (an
                        // oversized or garbled frame) can only answer with a
                        // null id: that answers this send.
                        Ok(orphan) = orphans.recv() => {
                            if orphan.get("error").is_some() && orphan.get("id").is_none_or(Value::is_null) {
                                ex.replies.push(orphan);
                                self.forget(&waiters);
                                break;
                            }
                        }
                    }
                }
            }
            Expect::Nothing(quiet) => {
                let until = tokio::time::Instant::now() + *quiet;
                while let Ok(Ok(v)) = tokio::time::timeout_at(until, orphans.recv()).await {
                    if v.get("id").is_none_or(Value::is_null) {
                        ex.replies.push(v);
                        break;
                    }
                }
            }
        }
        Ok(ex)
    }

    async fn write(&self, bytes: &[u8]) -> Result<(), ClientError> {
        let mut guard = self.stdin.lock().await;
        let stdin = guard.as_mut().ok_or(ClientError::Closed(None))?;
        let res = async {
            stdin.write_all(bytes).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        }
        .await;
        match res {
            Ok(()) => Ok(()),
            Err(_) => Err(ClientError::Closed(self.exit_status_now().await)),
        }
    }

    fn forget(&self, waiters: &[(String, oneshot::Receiver<Value>)]) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            for (key, _) in waiters {
                pending.remove(key);
            }
        }
    }

    async fn exit_status_now(&self) -> Option<String> {
        // The pipe can close a moment before the process is reaped.
        for _ in 0..20 {
            if let Ok(Some(status)) = self.child.lock().await.try_wait() {
                let s = status.to_string();
                if let Ok(mut e) = self.exit.lock() {
                    *e = Some(s.clone());
                }
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }

    pub(super) fn exit_status(&self) -> Option<String> {
        self.exit.lock().ok().and_then(|e| e.clone())
    }

    pub(super) fn stderr_tail(&self) -> String {
        self.shared
            .stderr
            .lock()
            .map(|t| String::from_utf8_lossy(&t.iter().copied().collect::<Vec<u8>>()).into_owned())
            .unwrap_or_default()
    }

    pub(super) async fn close(self) {
        drop(self.stdin.lock().await.take());
        let mut child = self.child.lock().await;
        if tokio::time::timeout(Duration::from_millis(500), child.wait())
            .await
            .is_err()
        {
            crate::mcp::pipes::kill_group(&child);
            let _ = child.kill().await;
        }
    }
}

impl Drop for StdioTransport {
    fn drop(&mut self) {
        // `kill_on_drop` reaches the child alone, not what it started.
        crate::mcp::pipes::kill_group(self.child.get_mut());
    }
}

fn dispatch(shared: &Shared, unmatched: &broadcast::Sender<Value>, frame: &[u8]) {
    if shared.skeletons.load(std::sync::atomic::Ordering::Relaxed)
        && let Some(bones) = skeleton::read(frame)
    {
        let waiter = bones
            .get("id")
            .filter(|id| !id.is_null())
            .and_then(|id| shared.pending.lock().ok()?.remove(&id_key(id)));
        match waiter {
            Some(w) if w.skeleton => {
                let _ = w.tx.send(bones);
            }
            Some(w) => {
                if let Ok(whole) = serde_json::from_slice::<Value>(frame) {
                    let _ = w.tx.send(whole);
                }
            }
            None => {
                if let Ok(whole) = serde_json::from_slice::<Value>(frame) {
                    let _ = unmatched.send(whole);
                }
            }
        }
        return;
    }
    let Ok(value) = serde_json::from_slice::<Value>(frame) else {
        return;
    };
    let messages = match value {
        Value::Array(items) => items,
        v => vec![v],
    };
    for msg in messages {
        let waiter = msg
            .get("id")
            .filter(|id| !id.is_null())
            .and_then(|id| shared.pending.lock().ok()?.remove(&id_key(id)));
        match waiter {
            Some(w) => {
                let _ = w.tx.send(msg);
            }
            None => {
                let _ = unmatched.send(msg);
            }
        }
    }
}
