//! Capturing a server's manifest: one handshake, then `tools/list` until
//! the last page. No tool is ever called, so pointing it at a production
//! server changes nothing there.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::mcp::{Client, ClientError, HttpOptions, Revision, StdioOptions};

/// The most `tools/list` pages followed before giving up on a server that
/// keeps handing out cursors.
pub const MAX_PAGES: usize = 1000;

/// The server to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A stdio server, started from this command line (split like a POSIX
    /// shell would) and stopped afterwards.
    Command(String),
    /// A Streamable HTTP endpoint.
    Url {
        url: String,
        /// Sent as `Authorization: Bearer …`.
        token: Option<String>,
        /// Extra headers sent on every request.
        headers: Vec<(String, String)>,
    },
}

impl Upstream {
    fn label(&self) -> String {
        match self {
            Upstream::Command(c) => format!("`{c}`"),
            Upstream::Url { url, .. } => format!("`{url}`"),
        }
    }
}

/// Why a manifest could not be captured.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("talking to {upstream}: {source}{}", stderr_suffix(.stderr))]
    Client {
        upstream: String,
        source: ClientError,
        stderr: String,
    },
    #[error("{upstream} answered `{method}` with an error: {error}")]
    Refused {
        upstream: String,
        method: String,
        error: String,
    },
    #[error("{upstream} answered `tools/list` without a `tools` array: {reply}")]
    NoTools { upstream: String, reply: String },
    #[error("{upstream} handed out cursor `{cursor}` twice: the pages go round in a loop")]
    CursorLoop { upstream: String, cursor: String },
    #[error("{upstream} still had more pages after {MAX_PAGES}")]
    TooManyPages { upstream: String },
}

fn stderr_suffix(stderr: &str) -> String {
    let tail = stderr.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!("; its stderr ends with: {tail}")
    }
}

/// Captures `upstream`'s tools: `initialize` (and `notifications/initialized`),
/// then `tools/list`, following `nextCursor` to the last page. Returns the
/// merged `tools/list` result, `{"tools": [...]}`, each entry exactly as
/// the server sent it.
pub async fn snapshot(upstream: &Upstream, timeout: Duration) -> Result<Value, SnapshotError> {
    let label = upstream.label();
    let client = connect(upstream, timeout)
        .await
        .map_err(|source| SnapshotError::Client {
            upstream: label.clone(),
            source,
            stderr: String::new(),
        })?;
    let captured = capture(&client, &label).await;
    let captured = match captured {
        Err(SnapshotError::Client {
            upstream, source, ..
        }) => Err(SnapshotError::Client {
            upstream,
            source,
            stderr: client.stderr_tail(),
        }),
        other => other,
    };
    client.close().await;
    captured
}

async fn connect(upstream: &Upstream, timeout: Duration) -> Result<Client, ClientError> {
    match upstream {
        Upstream::Command(line) => {
            Client::spawn(StdioOptions::from_command_line(line)?, timeout).await
        }
        Upstream::Url {
            url,
            token,
            headers,
        } => Client::connect(
            HttpOptions {
                url: url.clone(),
                token: token.clone(),
                headers: headers.clone(),
            },
            timeout,
        ),
    }
}

async fn capture(client: &Client, label: &str) -> Result<Value, SnapshotError> {
    let failed = |source| SnapshotError::Client {
        upstream: label.to_owned(),
        source,
        stderr: String::new(),
    };
    client
        .initialize(Revision::LATEST_STATEFUL)
        .await
        .map_err(|e| match e {
            ClientError::Protocol(message) => SnapshotError::Refused {
                upstream: label.to_owned(),
                method: "initialize".into(),
                error: message,
            },
            other => failed(other),
        })?;
    let mut tools = Vec::new();
    let mut seen = HashSet::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
        let ex = client.request("tools/list", params).await.map_err(failed)?;
        let reply = ex.reply().cloned().unwrap_or(Value::Null);
        if let Some(error) = reply.get("error") {
            return Err(SnapshotError::Refused {
                upstream: label.to_owned(),
                method: "tools/list".into(),
                error: error.to_string(),
            });
        }
        let result = reply.get("result").and_then(Value::as_object);
        let Some(page) = result
            .and_then(|r| r.get("tools"))
            .and_then(Value::as_array)
        else {
            return Err(SnapshotError::NoTools {
                upstream: label.to_owned(),
                reply: reply.to_string(),
            });
        };
        tools.extend(page.iter().cloned());
        match next_cursor(result) {
            None => return Ok(json!({ "tools": tools })),
            Some(next) => {
                if !seen.insert(next.to_string()) {
                    return Err(SnapshotError::CursorLoop {
                        upstream: label.to_owned(),
                        cursor: next.to_string(),
                    });
                }
                cursor = Some(next);
            }
        }
    }
    Err(SnapshotError::TooManyPages {
        upstream: label.to_owned(),
    })
}

/// The cursor of the next page; a null or empty one means there is none.
fn next_cursor(result: Option<&Map<String, Value>>) -> Option<Value> {
    match result?.get("nextCursor")? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        other => Some(other.clone()),
    }
}
