//! The mock's hot path: decoding a ~2 KB PostCustomers call, handling one
//! call in process (ledger in memory, in a file, or nowhere), and pipelined
//! stdio throughput against the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gauntlet::mcp::{jsonrpc, keys};
use gauntlet::mock::ledger::Ledger;
use gauntlet::mock::{Mock, MockConfig, catalogue::Catalogue};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};

const POST: &str = "WizCommerce Open API_PostCustomers";

fn attributes(prefix: &str) -> Value {
    json!([{"name": format!("{prefix}_tier"), "value": "gold"},
           {"name": format!("{prefix}_region"), "value": "north-east"}])
}

/// A realistic, valid PostCustomers call of about 2 KB.
fn post_frame(id: u64) -> Vec<u8> {
    let address = |kind: &str, n: u32| {
        json!({"reference_id": format!("ADDR-{n}"), "first_name": "Ada", "last_name": "Lovelace",
               "phone": "+44 20 7946 0958", "email": "billing@acme-industrial.test",
               "address_line_1": format!("{n} Analytical Engine Way"), "address_line_2": "Suite 1843",
               "city": "London", "state": "Greater London", "country": "GB", "zip_code": "EC1A 1BB",
               "type": kind, "is_default": n == 1, "attributes": attributes("addr")})
    };
    let args = json!({
        "reference_id": format!("ERP-{id:08}"),
        "assigned_sales_rep_ids": ["rep_0001", "rep_0002"],
        "assigned_price_list_id": "PL-WHOLESALE-2026",
        "company_name": "Acme Industrial Supplies Ltd",
        "display_id": "ACME-001",
        "display_name": "Acme Industrial",
        "freight_term": "prepaid",
        "shipping_method": "ground",
        "payment_mode": "net_terms",
        "payment_term": "net_30",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0958",
        "email": "ada@acme-industrial.test",
        "credit_limit": 25000,
        "addresses": [address("billing", 1), address("shipping", 2)],
        "contacts": [{"reference_id": "C-1", "first_name": "Charles", "last_name": "Babbage",
                      "email": "charles@acme-industrial.test", "phone": "+44 20 7946 0959",
                      "designation": "Purchasing Manager", "is_default": true,
                      "attributes": attributes("contact")}],
        "attributes": attributes("customer"),
    });
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                               "params": {"name": POST, "arguments": args}}))
    .unwrap()
}

fn decode(c: &mut Criterion) {
    let frame = post_frame(1);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("parse_frame+classify", |b| {
        b.iter(|| {
            let jsonrpc::Frame::Single(v) = jsonrpc::parse_frame(&frame).unwrap() else {
                panic!("not single")
            };
            jsonrpc::classify(&v).unwrap()
        })
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<Value>(&frame).unwrap())
    });
    g.bench_function("duplicate_keys", |b| {
        b.iter(|| keys::duplicate_keys(&frame))
    });
    g.bench_function("parse_with_key_issues", |b| {
        b.iter(|| keys::parse_with_key_issues(&frame).unwrap())
    });
    // The enforcer's strict parse.
    g.bench_function("parse_with_key_issues_go_fold", |b| {
        b.iter(|| keys::parse_with_key_issues_folding(&frame, keys::CaseFold::Go).unwrap())
    });
    g.bench_function("sha256", |b| {
        b.iter(|| gauntlet::mock::ledger::sha256_hex(&frame))
    });
    let catalogue = Catalogue::bundled().unwrap();
    let tool = catalogue
        .resolve(POST, gauntlet::names::NameMatching::Lenient)
        .unwrap();
    let args: Value =
        serde_json::from_slice::<Value>(&frame).unwrap()["params"]["arguments"].clone();
    assert!(tool.validate(&args).is_empty());
    g.bench_function("validate", |b| b.iter(|| tool.validate(&args)));
    g.finish();
}

/// A named way to make the ledger a benchmarked mock writes to.
type LedgerSink<'a> = (&'a str, Box<dyn Fn() -> Ledger + 'a>);

fn handle(c: &mut Criterion) {
    let frame = post_frame(1);
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("handle_post_call");
    g.throughput(Throughput::Elements(1));
    let sinks: [LedgerSink; 3] = [
        ("ledger_none", Box::new(Ledger::discard)),
        ("ledger_memory", Box::new(Ledger::in_memory)),
        (
            "ledger_file",
            Box::new(|| Ledger::to_file(&dir.path().join("l.jsonl"), false).unwrap()),
        ),
    ];
    for (name, sink) in sinks {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // A fresh mock per sample keeps the store and memory small.
                let mock = Mock::new(MockConfig::default(), Catalogue::bundled().unwrap(), sink());
                let mut conn = mock.stdio_conn(None);
                let start = Instant::now();
                for _ in 0..iters {
                    let reply = mock.handle(&mut conn, &frame).unwrap();
                    assert!(!reply.responses.is_empty());
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

/// Pipes `n` calls into a fresh `gauntlet mock --stdio` and reads every
/// reply; the time covers the first write to the last reply.
async fn pipe(n: u64, ledger: &str) -> Duration {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(["mock", "--stdio", "--ledger", ledger])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let frames: Vec<Vec<u8>> = (0..n).map(post_frame).collect();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(256 * 1024, stdin);
        for f in frames {
            w.write_all(&f).await.unwrap();
            w.write_all(b"\n").await.unwrap();
        }
        w.flush().await.unwrap();
        w
    });
    let mut lines = BufReader::with_capacity(256 * 1024, stdout).lines();
    for _ in 0..n {
        let line = lines.next_line().await.unwrap().unwrap();
        assert!(line.contains("\"isError\":false"), "{line}");
    }
    let elapsed = start.elapsed();
    drop(writer.await.unwrap());
    child.wait().await.unwrap();
    elapsed
}

fn stdio_pipelined(c: &mut Criterion) {
    let n: u64 = std::env::var("GAUNTLET_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut g = c.benchmark_group("stdio_pipelined_post_calls");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(n));
    for ledger in ["/dev/null", "file"] {
        g.bench_function(
            format!("ledger_{}", ledger.trim_start_matches("/dev/")),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = tempfile::tempdir().unwrap();
                        let path = match ledger {
                            "file" => dir.path().join("l.jsonl").display().to_string(),
                            other => other.to_owned(),
                        };
                        total += rt.block_on(pipe(n, &path));
                    }
                    total
                })
            },
        );
    }
    g.finish();
}

/// What a bench lane does with each reply: the whole reply built as a
/// `Value`, against its skeleton (id, error, isError) that lanes read.
fn reply(c: &mut Criterion) {
    let mock = Mock::new(
        MockConfig::default(),
        Catalogue::bundled().unwrap(),
        Ledger::discard(),
    );
    let mut conn = mock.stdio_conn(None);
    let bytes = mock.handle(&mut conn, &post_frame(1)).unwrap().responses[0].clone();
    let whole: Value = serde_json::from_slice(&bytes).unwrap();
    let bones = gauntlet::mcp::client::reply_skeleton(&bytes).unwrap();
    assert_eq!(
        jsonrpc::is_denial(&whole),
        jsonrpc::is_denial(&bones),
        "{whole}"
    );
    let mut g = c.benchmark_group("reply_post_call");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("whole_value", |b| {
        b.iter(|| serde_json::from_slice::<Value>(&bytes).unwrap())
    });
    g.bench_function("skeleton", |b| {
        b.iter(|| gauntlet::mcp::client::reply_skeleton(&bytes).unwrap())
    });
    g.finish();
}

criterion_group!(benches, decode, handle, stdio_pipelined, reply);
criterion_main!(benches);
