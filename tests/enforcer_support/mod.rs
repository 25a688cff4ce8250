//! Shared pieces of the enforcer tests: policies, an in-process stdio rig
//! (client, enforcer and mock joined by in-memory pipes), audit capture.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet::enforcer::{AuditRecord, AuditSink, Enforcer, SessionInfo};
use gauntlet::mock::ledger::LedgerRecord;
use gauntlet::mock::{Mock, MockConfig};
use gauntlet::policy::{self, Clock, CounterStore, MemoryStore, Policy, SystemClock};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, WriteHalf};
use tokio::sync::mpsc;

pub const POST: &str = "WizCommerce Open API_PostCustomers";
pub const GET: &str = "WizCommerce Open API_GetCustomers";
pub const DELETE: &str = "WizCommerce Open API_DeleteCustomer";

/// The seed policy of the project.
pub const SEED: &str = r#"{"version":"1","default":"deny","tools":{"WizCommerce Open API_PostCustomers":{"limits":[{"counter":"wizcommerce open api_postcustomers_rate","window":"minute","max":30,"scope":"grant"}]}}}"#;

/// How long a test waits for a reply before it calls the proxy hung.
pub const HANG: Duration = Duration::from_secs(20);

pub fn policy(src: &str) -> Arc<Policy> {
    Arc::new(policy::parse_json(src, "test.json").unwrap())
}

/// Valid PostCustomers arguments, numbered.
pub fn customer(n: usize) -> Value {
    json!({
        "company_name": format!("Acme {n}"),
        "first_name": "Ada",
        "email": format!("ada{n}@acme.test"),
        "reference_id": format!("ref-{n}"),
    })
}

pub fn call(id: impl Into<Value>, tool: &str, args: Value) -> String {
    json!({"jsonrpc":"2.0","id":id.into(),"method":"tools/call","params":{"name":tool,"arguments":args}})
        .to_string()
}

/// An audit sink writing into memory, and a way to read it back.
#[derive(Clone, Default)]
pub struct AuditBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for AuditBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl AuditBuf {
    pub fn sink(&self, values: bool) -> AuditSink {
        AuditSink::to_writer(Box::new(self.clone()), values)
    }

    pub fn records(&self) -> Vec<AuditRecord> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

pub fn enforcer(policy: Arc<Policy>, audit: Option<AuditSink>) -> Arc<Enforcer> {
    let store: Arc<dyn CounterStore> = Arc::new(MemoryStore::default());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Enforcer::new(policy, store, clock, audit)
}

pub fn mock() -> Arc<Mock> {
    Arc::new(Mock::in_memory(MockConfig::default()).unwrap())
}

/// Calls that reached the mock, by resolved tool.
pub fn arrived(mock: &Mock, tool: &str) -> Vec<LedgerRecord> {
    mock.ledger()
        .records()
        .into_iter()
        .filter(|r| r.is_call_to(tool))
        .collect()
}

/// One client session: its pipe into the enforcer and the replies out.
pub struct Rig {
    to_proxy: WriteHalf<DuplexStream>,
    replies: mpsc::UnboundedReceiver<Value>,
    held: Vec<Value>,
    done: tokio::task::JoinHandle<()>,
}

impl Rig {
    /// Starts `enforcer` in front of a stdio connection to `mock`.
    pub fn start(enforcer: Arc<Enforcer>, mock: Arc<Mock>, grant: &str, session: &str) -> Rig {
        let (client, proxy_down) = tokio::io::duplex(1 << 16);
        let (proxy_up, mock_side) = tokio::io::duplex(1 << 16);
        let (mock_r, mock_w) = tokio::io::split(mock_side);
        let identity = grant.to_owned();
        tokio::spawn(async move {
            let _ = gauntlet::mock::stdio::serve(mock, mock_r, mock_w, Some(identity)).await;
        });
        let info = SessionInfo {
            grant: grant.to_owned(),
            session_id: session.to_owned(),
        };
        let done = tokio::spawn(async move {
            gauntlet::enforcer::stdio::serve(
                enforcer,
                info,
                tokio::io::split(proxy_down),
                tokio::io::split(proxy_up),
            )
            .await
            .unwrap();
        });
        let (from_proxy, to_proxy) = tokio::io::split(client);
        let (tx, replies) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(from_proxy).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("proxy sent non-json `{line}`: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Rig {
            to_proxy,
            replies,
            held: Vec::new(),
            done,
        }
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.to_proxy.write_all(bytes).await.unwrap();
        self.to_proxy.write_all(b"\n").await.unwrap();
        self.to_proxy.flush().await.unwrap();
    }

    pub async fn send(&mut self, frame: &str) {
        self.send_bytes(frame.as_bytes()).await;
    }

    /// The next reply whose id is `id`, keeping the others for later.
    pub async fn reply(&mut self, id: impl Into<Value>) -> Value {
        let id = id.into();
        if let Some(i) = self.held.iter().position(|r| r["id"] == id) {
            return self.held.remove(i);
        }
        loop {
            let r = tokio::time::timeout(HANG, self.replies.recv())
                .await
                .unwrap_or_else(|_| panic!("no reply to {id}"))
                .unwrap_or_else(|| panic!("proxy closed before replying to {id}"));
            if r["id"] == id {
                return r;
            }
            self.held.push(r);
        }
    }

    /// The next reply of any id.
    pub async fn next(&mut self) -> Value {
        if !self.held.is_empty() {
            return self.held.remove(0);
        }
        tokio::time::timeout(HANG, self.replies.recv())
            .await
            .expect("no reply")
            .expect("proxy closed")
    }

    pub async fn request(&mut self, id: impl Into<Value>, method: &str, params: Value) -> Value {
        let id = id.into();
        let frame = json!({"jsonrpc":"2.0","id":id,"method":method,"params":params});
        self.send(&frame.to_string()).await;
        self.reply(id).await
    }

    /// initialize and notifications/initialized, as a 2025-11-25 client.
    pub async fn handshake(&mut self) {
        let r = self
            .request(
                "init",
                "initialize",
                json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
            )
            .await;
        assert!(r.get("result").is_some(), "{r}");
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
    }

    /// A ping round trip: everything sent before it has reached the mock.
    pub async fn barrier(&mut self, id: &str) {
        let r = self.request(id, "ping", json!({})).await;
        assert!(r.get("result").is_some(), "{r}");
    }

    /// Closes the client side and waits for the proxy to finish.
    pub async fn close(mut self) {
        self.to_proxy.shutdown().await.unwrap();
        tokio::time::timeout(HANG, self.done)
            .await
            .expect("proxy did not finish")
            .unwrap();
    }
}

pub fn error_code(reply: &Value) -> Option<i64> {
    reply.pointer("/error/code").and_then(Value::as_i64)
}
