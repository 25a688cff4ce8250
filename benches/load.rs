//! The bench's own per-call work, which sits on every measured call: cutting
//! NDJSON frames from a byte stream (the stdio read path of the client, the
//! mock and the enforcer), splicing an id into a prepared call, and
//! recording a sample.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gauntlet::load::recorder::{Outcome, Recorder, Sample};
use gauntlet::load::{BENCH_POLICY, Class, Mix, Plan};
use gauntlet::mcp::framing::{DEFAULT_MAX_FRAME, FrameReader};
use gauntlet::mock::catalogue::Catalogue;

fn plan() -> Plan {
    let policy = gauntlet::policy::parse_json(BENCH_POLICY, "bench-policy.json").unwrap();
    Plan::new(&policy, &Catalogue::bundled().unwrap(), Mix::default()).unwrap()
}

fn bench_framing(c: &mut Criterion) {
    let plan = plan();
    let mut stream = Vec::new();
    const FRAMES: u64 = 1000;
    for i in 0..FRAMES {
        stream.extend_from_slice(&plan.frame(i, i as i64).1);
        stream.push(b'\n');
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(FRAMES));
    g.bench_function("next_frame_x1000_mixed_calls", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut r = FrameReader::new(stream.as_slice(), DEFAULT_MAX_FRAME);
                let mut n = 0u64;
                while let Some(f) = r.next_frame().await.unwrap() {
                    n += f.len() as u64;
                }
                black_box(n)
            })
        })
    });
    g.finish();
}

fn bench_per_call(c: &mut Criterion) {
    let plan = plan();
    let mut g = c.benchmark_group("load");
    let mut i = 0u64;
    g.bench_function("plan_frame", |b| {
        b.iter(|| {
            i += 1;
            black_box(plan.frame(i, i as i64))
        })
    });
    let t0 = Instant::now();
    let mut rec = Recorder::new(t0, t0).unwrap();
    let mut n = 0u64;
    g.bench_function("record_sample", |b| {
        b.iter(|| {
            n += 1;
            let due = t0 + Duration::from_nanos(n * 37);
            black_box(rec.record(&Sample {
                class: if n.is_multiple_of(3) {
                    Class::Denied
                } else {
                    Class::Allowed
                },
                due,
                sent: due + Duration::from_micros(2),
                done: due + Duration::from_micros(20 + n % 50),
                outcome: Outcome::Passed,
            }))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_framing, bench_per_call);
criterion_main!(benches);
