//! One downstream session, independent of the transport: the in-flight
//! table, the tool schemas learned from upstream, decisions and settling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::audit::{self, AuditRecord};
use super::inbound::{CallFrame, OWN_ID_PREFIX, Refused, id_key, protocol_error};
use super::{DENIED, Enforcer, Learned, SessionInfo};
use crate::mcp::jsonrpc::{self, INTERNAL_ERROR, INVALID_REQUEST};
use crate::names::lenient_key;
use crate::policy::{self, Call, Decision, Receipt};

/// The most `tools/list` pages the proxy follows when learning schemas.
const MAX_PAGES: usize = 64;

#[derive(Debug)]
enum Pending {
    /// Between the duplicate-id check and the decision.
    Deciding,
    Call(Receipt),
    ToolsList,
    Own,
    Other,
}

#[derive(Clone)]
enum Schemas {
    Unknown,
    Fetching,
    Ready(Arc<Learned>),
}

/// What to do with one upstream frame.
#[derive(Debug, PartialEq)]
pub(crate) enum Outbound {
    /// Pass the bytes to the client unchanged.
    Forward,
    /// Pass these bytes instead (a `tools/list` result without hidden tools).
    Rewritten(Vec<u8>),
    /// A reply to the proxy's own request: the next request to send
    /// upstream, if another page is wanted.
    Own(Option<(String, Vec<u8>)>),
}

pub(crate) struct Session {
    pub(crate) enforcer: Arc<Enforcer>,
    pub(crate) info: SessionInfo,
    transport: &'static str,
    schemas: watch::Sender<Schemas>,
    gathered: Mutex<(Vec<Value>, usize, Option<Value>)>,
    own_seq: AtomicU64,
}

/// Requests forwarded and not yet answered. A stdio session has one for its
/// whole life; on HTTP each POST has its own, since its replies come back
/// on its own response.
#[derive(Default)]
pub(crate) struct InFlight {
    pending: Mutex<HashMap<String, Pending>>,
    idle: Notify,
}

impl InFlight {
    /// Registers a forwarded request; `false` when its id is already in
    /// flight (the frame must then be refused).
    pub(crate) fn track(&self, key: String, list: bool) -> bool {
        let mut p = lock(&self.pending);
        if p.contains_key(&key) {
            return false;
        }
        p.insert(
            key,
            if list {
                Pending::ToolsList
            } else {
                Pending::Other
            },
        );
        true
    }

    /// Registers one of the proxy's own requests.
    pub(crate) fn track_own(&self, key: String) {
        lock(&self.pending).insert(key, Pending::Own);
    }

    /// Requests still waiting for upstream, the proxy's own excluded.
    pub(crate) fn count(&self) -> usize {
        lock(&self.pending)
            .values()
            .filter(|p| !matches!(p, Pending::Own))
            .count()
    }

    /// Notified whenever the table may have emptied.
    pub(crate) fn idle(&self) -> &Notify {
        &self.idle
    }

    /// Forgets a request that will get no upstream reply.
    pub(crate) fn forget(&self, key: &str) {
        let _ = self.take(key);
    }

    fn take(&self, key: &str) -> Option<Pending> {
        let mut p = lock(&self.pending);
        let entry = p.remove(key);
        if p.is_empty() {
            self.idle.notify_waiters();
        }
        entry
    }

    /// Empties the table, returning the ids of client requests in it.
    pub(crate) fn drain_client_ids(&self) -> Vec<Value> {
        let drained: Vec<(String, Pending)> = lock(&self.pending).drain().collect();
        self.idle.notify_waiters();
        drained
            .into_iter()
            .filter(|(_, p)| !matches!(p, Pending::Own))
            .filter_map(|(key, _)| serde_json::from_str::<Value>(&key).ok())
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single map operation; a poisoned lock
    // still holds a consistent map.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    method: Option<std::borrow::Cow<'a, str>>,
    error: Option<IgnoredAny>,
}

impl Session {
    pub(crate) fn new(enforcer: Arc<Enforcer>, info: SessionInfo, transport: &'static str) -> Self {
        Session {
            enforcer,
            info,
            transport,
            schemas: watch::Sender::new(Schemas::Unknown),
            gathered: Mutex::new((Vec::new(), 0, None)),
            own_seq: AtomicU64::new(1),
        }
    }

    /// The reply refusing a request whose id is already in flight.
    pub(crate) fn duplicate_id(&self, id: &Value, tool: Option<String>) -> Value {
        let reason = format!("request id `{id}` is already in flight in this session");
        self.audit_refusal(&Refused {
            id: id.clone(),
            tool,
            kind: "duplicate-id",
            reason: reason.clone(),
        });
        protocol_error(id, INVALID_REQUEST, "duplicate-id", &reason)
    }

    /// Starts learning schemas if nobody has; `true` means the caller must
    /// send [`Session::own_request`] upstream.
    pub(crate) fn begin_fetch(&self, meta: Option<&Value>) -> bool {
        let started = self.schemas.send_if_modified(|s| {
            if matches!(s, Schemas::Unknown) {
                *s = Schemas::Fetching;
                true
            } else {
                false
            }
        });
        if started {
            let mut g = lock(&self.gathered);
            *g = (Vec::new(), 0, meta.cloned());
        }
        started
    }

    /// The proxy's own `tools/list` request (page `cursor`): its id key,
    /// for the caller to track, and its bytes.
    pub(crate) fn own_request(&self, cursor: Option<&str>) -> (String, Vec<u8>) {
        let n = self.own_seq.fetch_add(1, Ordering::Relaxed);
        let id = Value::from(format!("{OWN_ID_PREFIX}{n}"));
        let key = id_key(&id);
        let mut params = serde_json::Map::new();
        if let Some(c) = cursor {
            params.insert("cursor".into(), Value::from(c));
        }
        if let Some(meta) = &lock(&self.gathered).2 {
            params.insert("_meta".into(), meta.clone());
        }
        let msg = jsonrpc::request(id, "tools/list", Some(Value::Object(params)));
        (key, serde_json::to_vec(&msg).unwrap_or_default())
    }

    /// Takes one reply to the proxy's own `tools/list`; returns the next
    /// page's request, or `None` once the schemas are settled.
    pub(crate) fn own_reply(&self, reply: &Value) -> Option<(String, Vec<u8>)> {
        let Some(result) = reply.get("result") else {
            // Upstream would not list its tools: judge by the policy alone,
            // as for any tool upstream does not describe.
            self.settle();
            return None;
        };
        let next = {
            let mut g = lock(&self.gathered);
            if let Some(tools) = result.get("tools").and_then(Value::as_array) {
                g.0.extend(tools.iter().cloned());
            }
            g.1 += 1;
            result
                .get("nextCursor")
                .and_then(Value::as_str)
                .filter(|_| g.1 < MAX_PAGES)
                .map(str::to_owned)
        };
        match next {
            Some(cursor) => Some(self.own_request(Some(&cursor))),
            None => {
                self.settle();
                None
            }
        }
    }

    /// Ends learning with whatever was gathered (nothing, on failure).
    pub(crate) fn settle(&self) {
        let tools = std::mem::take(&mut lock(&self.gathered).0);
        let learned = self.enforcer.learn(&tools);
        self.schemas.send_replace(Schemas::Ready(learned));
    }

    /// The learned schemas, waiting while a fetch is under way. `None` if
    /// no fetch was ever started.
    pub(crate) async fn schemas(&self) -> Option<Arc<Learned>> {
        let mut rx = self.schemas.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                Schemas::Ready(l) => return Some(l.clone()),
                Schemas::Unknown => return None,
                Schemas::Fetching => {}
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    }

    /// Judges a call and, when allowed, registers it in flight. `Err` holds
    /// the reply for the client; nothing may be forwarded then.
    pub(crate) fn decide(
        &self,
        inflight: &InFlight,
        call: &CallFrame,
        learned: Option<&Learned>,
    ) -> Result<(), Value> {
        {
            let mut p = lock(&inflight.pending);
            if p.contains_key(&call.key) {
                drop(p);
                return Err(self.duplicate_id(&call.id, Some(call.tool.clone())));
            }
            p.insert(call.key.clone(), Pending::Deciding);
        }
        let e = &self.enforcer;
        let c = Call {
            tool: &call.tool,
            args: Some(&call.args),
            grant: &self.info.grant,
            session: &self.info.session_id,
        };
        let started = Instant::now();
        let decision = policy::decide(
            &e.policy,
            &c,
            learned.map(|l| &l.schemas),
            &*e.store,
            &*e.clock,
        );
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        match decision {
            Decision::Allow(receipt) => {
                self.audit_call(call, learned, None, ns);
                lock(&inflight.pending).insert(call.key.clone(), Pending::Call(receipt));
                Ok(())
            }
            Decision::Deny(d) => {
                self.audit_call(call, learned, Some(&d), ns);
                inflight.forget(&call.key);
                let data = json!({"rule": d.rule, "reason": d.reason, "kind": d.kind.as_str()});
                Err(jsonrpc::error_response(
                    &call.id,
                    DENIED,
                    &format!("denied by policy: {}", d.reason),
                    Some(data),
                ))
            }
        }
    }

    /// Settles one upstream frame.
    pub(crate) fn outbound(&self, inflight: &InFlight, bytes: &[u8]) -> Outbound {
        let Ok(peek) = serde_json::from_slice::<Peek<'_>>(bytes) else {
            return Outbound::Forward;
        };
        if let Some(method) = &peek.method {
            if method == "notifications/tools/list_changed" {
                self.schemas.send_if_modified(|s| {
                    let stale = matches!(s, Schemas::Ready(_));
                    if stale {
                        *s = Schemas::Unknown;
                    }
                    stale
                });
            }
            return Outbound::Forward;
        }
        let Some(key) = peek
            .id
            .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
            .map(|id| id_key(&id))
        else {
            return Outbound::Forward;
        };
        match inflight.take(&key) {
            Some(Pending::Call(receipt)) if peek.error.is_some() => {
                policy::on_upstream_error(&self.enforcer.policy, &*self.enforcer.store, &receipt);
                Outbound::Forward
            }
            Some(Pending::ToolsList) => self.filter_list(bytes),
            Some(Pending::Own) => match serde_json::from_slice::<Value>(bytes) {
                Ok(v) => Outbound::Own(self.own_reply(&v)),
                Err(_) => {
                    self.settle();
                    Outbound::Own(None)
                }
            },
            _ => Outbound::Forward,
        }
    }

    fn filter_list(&self, bytes: &[u8]) -> Outbound {
        let Ok(mut v) = serde_json::from_slice::<Value>(bytes) else {
            return Outbound::Forward;
        };
        let policy = &self.enforcer.policy;
        let Some(tools) = v.pointer_mut("/result/tools").and_then(Value::as_array_mut) else {
            return Outbound::Forward;
        };
        let before = tools.len();
        tools.retain(|t| {
            // A tool without a readable name cannot be checked against the
            // hide list, so it is not shown either.
            t.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| !policy.is_hidden(n))
        });
        if tools.len() == before {
            return Outbound::Forward;
        }
        serde_json::to_vec(&v).map_or(Outbound::Forward, Outbound::Rewritten)
    }

    /// Upstream is gone: settles schema waiters and returns an error reply
    /// for every client request still in flight.
    pub(crate) fn upstream_closed(&self, inflight: &InFlight) -> Vec<Value> {
        if matches!(&*self.schemas.borrow(), Schemas::Fetching) {
            self.settle();
        }
        inflight
            .drain_client_ids()
            .into_iter()
            .map(|id| {
                protocol_error(
                    &id,
                    INTERNAL_ERROR,
                    "upstream-closed",
                    "upstream closed before replying",
                )
            })
            .collect()
    }

    /// The learned schemas if they are in, without waiting.
    fn current(&self) -> Option<Arc<Learned>> {
        match &*self.schemas.borrow() {
            Schemas::Ready(l) => Some(l.clone()),
            _ => None,
        }
    }

    fn resolved(&self, tool: &str, learned: Option<&Learned>) -> Option<String> {
        let key = lenient_key(tool);
        learned
            .and_then(|l| l.names.get(&key).cloned())
            .or_else(|| self.enforcer.policy.tool_rule(tool).map(|r| r.name.clone()))
    }

    fn audit_call(
        &self,
        call: &CallFrame,
        learned: Option<&Learned>,
        denial: Option<&policy::Denial>,
        ns: u64,
    ) {
        let Some(sink) = &self.enforcer.audit else {
            return;
        };
        let arg_keys = call
            .args
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        sink.record(AuditRecord {
            time: audit::now_rfc3339(),
            transport: self.transport.into(),
            grant: self.info.grant.clone(),
            session: self.info.session_id.clone(),
            id: call.id.clone(),
            tool_raw: Some(call.tool.clone()),
            tool: self.resolved(&call.tool, learned),
            arg_keys,
            args: sink.values().then(|| call.args.clone()),
            decision: if denial.is_some() {
                audit::Decision::Deny
            } else {
                audit::Decision::Allow
            },
            kind: denial.map(|d| d.kind.as_str().to_owned()),
            rule: denial.map(|d| d.rule.clone()),
            reason: denial.map(|d| d.reason.clone()),
            decide_ns: ns,
        });
    }

    /// Writes a refused frame to the audit log.
    pub(crate) fn audit_refusal(&self, r: &Refused) {
        let Some(sink) = &self.enforcer.audit else {
            return;
        };
        sink.record(AuditRecord {
            time: audit::now_rfc3339(),
            transport: self.transport.into(),
            grant: self.info.grant.clone(),
            session: self.info.session_id.clone(),
            id: r.id.clone(),
            tool_raw: r.tool.clone(),
            tool: r
                .tool
                .as_deref()
                .and_then(|t| self.resolved(t, self.current().as_deref())),
            arg_keys: Vec::new(),
            args: None,
            decision: audit::Decision::Deny,
            kind: Some(r.kind.to_owned()),
            rule: None,
            reason: Some(r.reason.clone()),
            decide_ns: 0,
        });
    }
}
