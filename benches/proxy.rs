//! The reference enforcer's added latency, stdio and HTTP, each against a
//! direct call to the mock measured in the same run.
//!
//! Everything runs in process on one current-thread runtime, so the figures
//! are the proxy's own work plus its extra pipe or loopback hop, without
//! scheduler noise between threads. The call is a ~2 KB PostCustomers under
//! a policy with a limit, conditions and the learned schema, so every
//! enforced call is parsed, key-checked, judged, schema-validated and
//! counted. After criterion's groups, a fixed number of round trips per
//! path go into a histogram and the p50/p99 of each path and the added p50
//! are printed, with the CPU time each path spends per call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet::enforcer::{Enforcer, SessionInfo};
use gauntlet::mock::catalogue::Catalogue;
use gauntlet::mock::ledger::Ledger;
use gauntlet::mock::{Mock, MockConfig};
use gauntlet::policy::{Clock, CounterStore, MemoryStore, SystemClock};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::runtime::Runtime;

const POST: &str = "WizCommerce Open API_PostCustomers";

const POLICY: &str = r#"{"version":"1","default":"deny","tools":{"WizCommerce Open API_PostCustomers":{
  "limits":[{"counter":"posts","window":"minute","max":1000000000000,"scope":"grant"}],
  "require":[{"path":"args.email","op":"exists","value":true},
             {"path":"args.company_name","op":"regex","value":"^[A-Za-z0-9 .,&-]+$"}],
  "deny_if":[{"path":"args.credit_limit","op":"gt","value":10000}]}}}"#;

fn args() -> Value {
    let address = |kind: &str, n: u32| {
        json!({"reference_id": format!("addr-{n}"), "first_name": "Ada", "last_name": "Lovelace",
               "phone": "+1 (555) 010-0200", "email": "billing@acme-industrial.test",
               "address_line_1": "1200 Harbor Industrial Parkway", "address_line_2": "Building C, Dock 4",
               "city": "Portland", "state": "OR", "country": "US", "zip_code": "97203",
               "type": kind, "is_default": n == 1,
               "attributes": [{"name": "dock_hours", "value": "06:00-14:00"}, {"name": "gate_code", "value": "4471"}]})
    };
    let contact = |n: u32| {
        json!({"reference_id": format!("contact-{n}"), "first_name": "Grace", "last_name": "Hopper",
               "email": format!("grace{n}@acme-industrial.test"), "phone": "+1 555 010 0300",
               "designation": "Purchasing Manager", "is_default": n == 1,
               "attributes": [{"name": "preferred_channel", "value": "email"}]})
    };
    json!({
        "reference_id": "erp-cust-000481516", "assigned_sales_rep_ids": ["rep-0042", "rep-0108"],
        "assigned_price_list_id": "pl-wholesale-2026", "company_name": "Acme Industrial Supply Co.",
        "display_id": "ACME-481516", "display_name": "Acme Industrial (Portland)",
        "freight_term": "prepaid_and_add", "shipping_method": "ltl_freight", "payment_mode": "net_terms",
        "payment_term": "net_30", "first_name": "Ada", "last_name": "Lovelace",
        "phone": "+1 (555) 010-0100", "email": "ada@acme-industrial.test", "credit_limit": 7500,
        "addresses": [address("billing", 1), address("shipping", 2)],
        "contacts": [contact(1), contact(2)],
        "attributes": [{"name": "segment", "value": "industrial"}, {"name": "region", "value": "pnw"},
                       {"name": "tax_exempt", "value": "false"}]
    })
}

fn frame(id: u64) -> Vec<u8> {
    let mut f = serde_json::to_vec(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
        "params":{"name":POST,"arguments":args()}}))
    .unwrap();
    f.push(b'\n');
    f
}

fn mock() -> Arc<Mock> {
    Arc::new(Mock::new(
        MockConfig::default(),
        Catalogue::bundled().unwrap(),
        Ledger::discard(),
    ))
}

fn enforcer() -> Arc<Enforcer> {
    let policy = Arc::new(gauntlet::policy::parse_json(POLICY, "bench.json").unwrap());
    Enforcer::new(
        policy,
        Arc::new(MemoryStore::default()) as Arc<dyn CounterStore>,
        Arc::new(SystemClock) as Arc<dyn Clock>,
        None,
    )
}

/// A client end of a stdio pipe.
struct Pipe {
    w: WriteHalf<DuplexStream>,
    r: Lines<BufReader<ReadHalf<DuplexStream>>>,
    next: u64,
}

impl Pipe {
    async fn round_trip(&mut self, bytes: &[u8]) -> String {
        self.w.write_all(bytes).await.unwrap();
        self.w.flush().await.unwrap();
        self.r.next_line().await.unwrap().unwrap()
    }

    async fn call(&mut self) -> Duration {
        self.next += 1;
        let f = frame(self.next);
        let start = Instant::now();
        let reply = self.round_trip(&f).await;
        let took = start.elapsed();
        assert!(reply.contains("\"result\""), "{reply}");
        took
    }

    async fn handshake(&mut self) {
        let init = br#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}
"#;
        self.round_trip(init).await;
        self.w
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .await
            .unwrap();
        // The first call waits for the schemas to be learned.
        self.call().await;
    }
}

fn stdio_pipe(rt: &Runtime, through_enforcer: bool) -> Pipe {
    rt.block_on(async {
        let (client, server) = tokio::io::duplex(1 << 16);
        let mock = mock();
        if through_enforcer {
            let (up, mock_side) = tokio::io::duplex(1 << 16);
            let (mr, mw) = tokio::io::split(mock_side);
            tokio::spawn(gauntlet::mock::stdio::serve(mock, mr, mw, None));
            let info = SessionInfo {
                grant: "bench".into(),
                session_id: "s".into(),
            };
            tokio::spawn(gauntlet::enforcer::stdio::serve(
                enforcer(),
                info,
                tokio::io::split(server),
                tokio::io::split(up),
            ));
        } else {
            let (sr, sw) = tokio::io::split(server);
            tokio::spawn(gauntlet::mock::stdio::serve(mock, sr, sw, None));
        }
        let (r, w) = tokio::io::split(client);
        let mut p = Pipe {
            w,
            r: BufReader::new(r).lines(),
            next: 0,
        };
        p.handshake().await;
        p
    })
}

/// A keep-alive HTTP session with the mock, directly or through the proxy.
struct HttpPath {
    http: reqwest::Client,
    url: String,
    session: String,
    next: u64,
    _proxy: Option<gauntlet::enforcer::http::HttpProxy>,
}

impl HttpPath {
    async fn post(&self, body: Vec<u8>) -> reqwest::Response {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .bearer_auth("bench");
        if !self.session.is_empty() {
            req = req.header("mcp-session-id", &self.session);
        }
        req.body(body).send().await.unwrap()
    }

    async fn call(&mut self) -> Duration {
        self.next += 1;
        let f = frame(self.next);
        let start = Instant::now();
        let reply = self.post(f).await.bytes().await.unwrap();
        let took = start.elapsed();
        assert!(
            reply.windows(8).any(|w| w == b"\"result\""),
            "{}",
            String::from_utf8_lossy(&reply)
        );
        took
    }
}

fn http_path(rt: &Runtime, through_enforcer: bool) -> HttpPath {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock_url = format!("http://{}/mcp", listener.local_addr().unwrap());
        tokio::spawn(gauntlet::mock::http::serve(
            mock(),
            listener,
            std::future::pending(),
        ));
        let (url, proxy) = if through_enforcer {
            let p = gauntlet::enforcer::http::bind(enforcer(), "127.0.0.1:0".parse().unwrap(), &mock_url)
                .await
                .unwrap();
            (p.url(), Some(p))
        } else {
            (mock_url, None)
        };
        let mut path = HttpPath {
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .no_proxy()
                .build()
                .unwrap(),
            url,
            session: String::new(),
            next: 0,
            _proxy: proxy,
        };
        let init = br#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
        let resp = path.post(init.to_vec()).await;
        path.session = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        resp.bytes().await.unwrap();
        path.post(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec())
            .await
            .bytes()
            .await
            .unwrap();
        path.call().await;
        path
    })
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bench_stdio(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("proxy/stdio");
    for (name, through) in [("direct", false), ("enforced", true)] {
        let mut pipe = stdio_pipe(&rt, through);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += black_box(pipe.call().await);
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

fn bench_http(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("proxy/http");
    for (name, through) in [("direct", false), ("enforced", true)] {
        let mut path = http_path(&rt, through);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += black_box(path.call().await);
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

/// The proxy's own work per call, without any hop: parsing the frame and
/// deciding it (schema included), to tell CPU from transport in the totals.
fn bench_parts(c: &mut Criterion) {
    let f = frame(1);
    let policy = gauntlet::policy::parse_json(POLICY, "bench.json").unwrap();
    let tools: Vec<Value> = mock()
        .catalogue()
        .tools()
        .iter()
        .map(|t| serde_json::to_value(t.entry()).unwrap())
        .collect();
    let schemas = gauntlet::policy::SchemaSet::from_tools(&tools);
    let store = MemoryStore::default();
    let frame_value: Value = serde_json::from_slice(&f).unwrap();
    let args = &frame_value["params"]["arguments"];
    let mut g = c.benchmark_group("proxy/parts");
    g.bench_function("parse_2kb_frame", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&f)).unwrap())
    });
    g.bench_function("decide_2kb_call", |b| {
        b.iter(|| {
            let call = gauntlet::policy::Call {
                tool: POST,
                args: Some(black_box(args)),
                grant: "bench",
                session: "s",
            };
            gauntlet::policy::decide(&policy, &call, Some(&schemas), &store, &SystemClock)
        })
    });
    g.finish();
    println!("call frame: {} bytes", f.len());
}

const SAMPLES: usize = 20_000;

fn percentiles(label: &str, samples: impl Iterator<Item = Duration>) -> (u64, u64) {
    let mut h = Histogram::<u64>::new(3).unwrap();
    for s in samples {
        h.record(u64::try_from(s.as_nanos()).unwrap_or(u64::MAX))
            .unwrap();
    }
    let (p50, p99) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
    println!(
        "{label:<24} p50 {:>8.1} us   p99 {:>8.1} us",
        p50 as f64 / 1e3,
        p99 as f64 / 1e3
    );
    (p50, p99)
}

/// CPU time of the calling thread so far, from `/proc` (clock ticks of
/// 10 ms). Everything of an in-process path runs on the one thread of a
/// current-thread runtime, so CPU per call is the work itself, which stays
/// meaningful when other processes load the machine and inflate wall time.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU per call since `before`, in microseconds.
fn per_call(before: Option<Duration>, n: usize) -> Option<f64> {
    let used = thread_cpu()?.checked_sub(before?)?;
    Some(used.as_secs_f64() * 1e6 / n as f64)
}

fn print_cpu(label: &str, direct: Option<f64>, enforced: Option<f64>) {
    if let (Some(d), Some(e)) = (direct, enforced) {
        println!(
            "{label} cpu per call: direct {d:.1} us, enforced {e:.1} us, added {:.1} us",
            e - d
        );
    }
}

/// Interleaves direct and enforced round trips so both see the same
/// machine load, then prints each path's percentiles and the added p50,
/// and the CPU each path spends per call.
fn summary(_: &mut Criterion) {
    let rt = runtime();
    let mut direct = stdio_pipe(&rt, false);
    let mut enforced = stdio_pipe(&rt, true);
    let (d, e) = rt.block_on(async {
        let (mut d, mut e) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
        for _ in 0..SAMPLES {
            d.push(direct.call().await);
            e.push(enforced.call().await);
        }
        (d, e)
    });
    let (dp, _) = percentiles("stdio direct", d.into_iter());
    let (ep, _) = percentiles("stdio enforced", e.into_iter());
    println!(
        "stdio added p50: {:.1} us (goal <= 15 us)",
        (ep as f64 - dp as f64) / 1e3
    );
    let before = thread_cpu();
    rt.block_on(async {
        for _ in 0..SAMPLES {
            direct.call().await;
        }
    });
    let d = per_call(before, SAMPLES);
    let before = thread_cpu();
    rt.block_on(async {
        for _ in 0..SAMPLES {
            enforced.call().await;
        }
    });
    print_cpu("stdio", d, per_call(before, SAMPLES));

    let mut direct = http_path(&rt, false);
    let mut enforced = http_path(&rt, true);
    let (d, e) = rt.block_on(async {
        let (mut d, mut e) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
        for _ in 0..SAMPLES {
            d.push(direct.call().await);
            e.push(enforced.call().await);
        }
        (d, e)
    });
    let (dp, _) = percentiles("http direct", d.into_iter());
    let (ep, _) = percentiles("http enforced", e.into_iter());
    println!(
        "http added p50: {:.1} us (goal <= 100 us)",
        (ep as f64 - dp as f64) / 1e3
    );
    let before = thread_cpu();
    rt.block_on(async {
        for _ in 0..SAMPLES {
            direct.call().await;
        }
    });
    let d = per_call(before, SAMPLES);
    let before = thread_cpu();
    rt.block_on(async {
        for _ in 0..SAMPLES {
            enforced.call().await;
        }
    });
    print_cpu("http", d, per_call(before, SAMPLES));
}

criterion_group!(benches, bench_parts, bench_stdio, bench_http, summary);
criterion_main!(benches);
