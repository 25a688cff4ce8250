//! Latency of one reservation in the counter stores, in memory and in Redis,
//! for 1 and 16 concurrent clients, measured in the same run.
//!
//! ```text
//! cargo run --release --example store_latency [-- redis://127.0.0.1:6379/0]
//! ```
//!
//! Without a URL it starts its own `redis-server` on a free loopback port.
//! Each client reserves against its own grant's counter (30 a minute, at a
//! moving clock so the limit never bites), so what is measured is the
//! store's round trip, not contention on one key.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gauntlet::policy::{
    CounterKey, CounterRequest, CounterStore, MemoryStore, RedisOptions, RedisStore, RuleLoc,
    ScopeKey, Window, WindowMode,
};
use hdrhistogram::Histogram;

const PER_CLIENT: usize = 20_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut server: Option<Child> = None;
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            server = Some(
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .stdout(Stdio::null())
                    .spawn()?,
            );
            std::thread::sleep(Duration::from_millis(300));
            format!("redis://127.0.0.1:{port}/0")
        }
    };
    let memory: Arc<dyn CounterStore> = Arc::new(MemoryStore::default());
    let redis: Arc<dyn CounterStore> = Arc::new(RedisStore::open(&url, RedisOptions::default())?);
    println!("store   clients  p50_us  p90_us  p99_us  max_us  calls/s");
    for clients in [1usize, 16] {
        for (name, store) in [("memory", &memory), ("redis", &redis)] {
            let (h, rate) = measure(store.clone(), clients);
            println!(
                "{name:<7} {clients:>7} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {rate:>8.0}",
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.9) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.max() as f64 / 1000.0,
            );
        }
    }
    if let Some(mut s) = server {
        let _ = s.kill();
        let _ = s.wait();
    }
    Ok(())
}

fn measure(store: Arc<dyn CounterStore>, clients: usize) -> (Histogram<u64>, f64) {
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut h = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_hist());
                let req = CounterRequest {
                    key: CounterKey {
                        counter: Arc::from("posts"),
                        scope: ScopeKey::Grant(format!("run{clients}-client-{c}")),
                    },
                    amount: 1,
                    window: Window::MINUTE,
                    max: 30,
                    loc: RuleLoc::default(),
                };
                for i in 0..PER_CLIENT {
                    // Three seconds apart: 20 in any minute, so every call is admitted.
                    let now = Duration::from_secs(1_785_196_800 + 3 * i as u64);
                    let t = Instant::now();
                    let ok = store.reserve(std::slice::from_ref(&req), WindowMode::Sliding, now);
                    let ns = t.elapsed().as_nanos() as u64;
                    if ok.is_err() {
                        eprintln!("a reservation was refused: {ok:?}");
                    }
                    let _ = h.record(ns.max(1));
                }
                h
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_hist());
    for w in workers {
        if let Ok(h) = w.join() {
            let _ = all.add(&h);
        }
    }
    let rate = (clients * PER_CLIENT) as f64 / started.elapsed().as_secs_f64();
    (all, rate)
}

fn unreachable_hist() -> Histogram<u64> {
    // Three significant figures is always a valid precision.
    Histogram::<u64>::new_with_bounds(1, u64::MAX, 2).unwrap_or_else(|_| std::process::exit(2))
}
