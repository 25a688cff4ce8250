//! The Redis counter store against a real `redis-server`: atomic
//! all-or-nothing reservations shared by several stores (as replicas share
//! one Redis), sliding and fixed windows, refunds, script reloads, bounded
//! memory, and failing closed when Redis is down or slow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod redis_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gauntlet::policy::{
    self, CounterKey, CounterRequest, CounterStore, Decision, DenyKind, ManualClock, RedisOptions,
    RedisStore, RuleLoc, ScopeKey, Window, WindowMode,
};
use redis_support::RedisServer;

const T0: Duration = Duration::from_secs(1_785_196_800);

fn req(counter: &str, grant: &str, amount: u64, max: u64) -> CounterRequest {
    CounterRequest {
        key: CounterKey {
            counter: Arc::from(counter),
            scope: ScopeKey::Grant(grant.into()),
        },
        amount,
        window: Window::MINUTE,
        max,
        loc: RuleLoc::default(),
    }
}

fn store(server: &RedisServer, db: u32) -> RedisStore {
    RedisStore::open(&server.url(db), RedisOptions::default()).unwrap()
}

#[test]
fn reservations_are_all_or_nothing_and_refunds_give_back_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server, 0);
    let both = [req("posts", "alice", 1, 2), req("all", "alice", 1, 3)];
    let first = s.reserve(&both, WindowMode::Sliding, T0).unwrap();
    s.reserve(&both, WindowMode::Sliding, T0).unwrap();
    let hit = s.reserve(&both, WindowMode::Sliding, T0).unwrap_err();
    assert_eq!((hit.index, hit.current, hit.max), (0, 2, 2));
    assert_eq!(hit.unavailable, None);
    // The refused call charged nothing: `all` holds 2 of 3, so one more fits.
    s.reserve(&both[1..], WindowMode::Sliding, T0).unwrap();
    let hit = s.reserve(&both[1..], WindowMode::Sliding, T0).unwrap_err();
    assert_eq!(hit.current, 3);
    s.refund(&first);
    s.refund(&first);
    // One refund gave one back to each counter (posts 1 of 2, all 2 of 3);
    // had the second counted too, `posts` would have room for two.
    s.reserve(&both, WindowMode::Sliding, T0).unwrap();
    let hit = s.reserve(&both[..1], WindowMode::Sliding, T0).unwrap_err();
    assert_eq!(hit.current, 2);
    let hit = s.reserve(&both[1..], WindowMode::Sliding, T0).unwrap_err();
    assert_eq!(hit.current, 3);
}

#[test]
fn repeated_keys_and_amounts_add_up() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server, 0);
    let twice = [req("c", "a", 3, 5), req("c", "a", 3, 5)];
    let hit = s.reserve(&twice, WindowMode::Sliding, T0).unwrap_err();
    assert_eq!((hit.index, hit.current, hit.amount), (1, 3, 3));
    let fits = [req("c", "a", 2, 5), req("c", "a", 3, 5)];
    let r = s.reserve(&fits, WindowMode::Sliding, T0).unwrap();
    assert!(
        s.reserve(&[req("c", "a", 1, 5)], WindowMode::Sliding, T0)
            .is_err()
    );
    s.refund(&r);
    assert!(
        s.reserve(&[req("c", "a", 5, 5)], WindowMode::Sliding, T0)
            .is_ok()
    );
}

#[test]
fn sliding_windows_slide_and_fixed_ones_reset_at_the_bucket() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server, 0);
    let r = [req("slide", "a", 1, 1)];
    s.reserve(&r, WindowMode::Sliding, T0).unwrap();
    let edge = T0 + Duration::from_secs(60) - Duration::from_micros(1);
    assert!(s.reserve(&r, WindowMode::Sliding, edge).is_err());
    assert!(
        s.reserve(&r, WindowMode::Sliding, T0 + Duration::from_secs(60))
            .is_ok()
    );
    // T0 is a minute boundary: 59 s in is the same bucket, 60 s in is the next.
    let f = [req("fixed", "a", 1, 1)];
    s.reserve(&f, WindowMode::Fixed, T0 + Duration::from_secs(30))
        .unwrap();
    assert!(
        s.reserve(&f, WindowMode::Fixed, T0 + Duration::from_secs(59))
            .is_err()
    );
    assert!(
        s.reserve(&f, WindowMode::Fixed, T0 + Duration::from_secs(60))
            .is_ok()
    );
}

#[test]
fn replicas_sharing_redis_admit_the_max_in_total() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let replicas: Vec<RedisStore> = (0..3).map(|_| store(&server, 1)).collect();
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for replica in &replicas {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let r = [req("posts", "alice", 1, 30)];
                        if replica.reserve(&r, WindowMode::Sliding, T0).is_ok() {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        }
    });
    assert_eq!(admitted.load(Ordering::SeqCst), 30, "240 tries, max 30");
    // Another database is another world: nothing is shared with db 1.
    assert!(
        store(&server, 2)
            .reserve(&[req("posts", "alice", 1, 30)], WindowMode::Sliding, T0)
            .is_ok()
    );
}

#[test]
fn a_flushed_script_cache_is_reloaded() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server, 0);
    s.reserve(&[req("c", "a", 1, 5)], WindowMode::Sliding, T0)
        .unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut server.con(0))
        .unwrap();
    s.reserve(&[req("c", "a", 1, 5)], WindowMode::Sliding, T0)
        .unwrap();
    let hit = s
        .reserve(&[req("c", "a", 4, 5)], WindowMode::Sliding, T0)
        .unwrap_err();
    assert_eq!(hit.current, 2);
}

#[test]
fn counters_expire_with_their_window() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server, 3);
    s.reserve(&[req("c", "a", 1, 5)], WindowMode::Sliding, T0)
        .unwrap();
    let mut con = server.con(3);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("gauntlet:*")
        .query(&mut con)
        .unwrap();
    let counters: Vec<&String> = keys.iter().filter(|k| !k.ends_with("next_id")).collect();
    assert_eq!(counters.len(), 2, "a set and its sum: {keys:?}");
    for k in counters {
        let ttl: i64 = redis::cmd("PTTL").arg(k).query(&mut con).unwrap();
        assert!(ttl > 0 && ttl <= 61_000, "`{k}` expires in {ttl} ms");
    }
}

const SEED: &str = r#"{"version":"1","default":"deny","tools":{"WizCommerce Open API_PostCustomers":{"limits":[{"counter":"posts","window":"minute","max":30,"scope":"grant"}]}}}"#;

fn decide_post(store: &dyn CounterStore, clock: &ManualClock) -> Decision {
    let policy = policy::parse_json(SEED, "seed.json").unwrap();
    let args = serde_json::json!({"company_name": "Acme"});
    let call = policy::Call {
        tool: "WizCommerce Open API_PostCustomers",
        args: Some(&args),
        grant: "alice",
        session: "s1",
    };
    policy::decide(&policy, &call, None, store, clock)
}

#[test]
fn a_dead_redis_refuses_calls_with_the_reason() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let s = store(&server, 0);
    let clock = ManualClock::new(T0);
    assert!(matches!(decide_post(&s, &clock), Decision::Allow(_)));
    server.kill();
    let Decision::Deny(denial) = decide_post(&s, &clock) else {
        panic!("a call was allowed with Redis down");
    };
    assert_eq!(denial.kind, DenyKind::Limit);
    assert!(
        denial.reason.contains("counter store is unavailable") && denial.reason.contains("redis"),
        "{}",
        denial.reason
    );
}

#[test]
fn a_slow_redis_refuses_calls_once_the_timeout_passes() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let options = RedisOptions {
        timeout: Duration::from_millis(100),
        ..RedisOptions::default()
    };
    let s = RedisStore::open(&server.url(0), options).unwrap();
    let r = [req("c", "a", 1, 5)];
    s.reserve(&r, WindowMode::Sliding, T0).unwrap();
    let mut blocker = server.con(0);
    let (started, wait) = std::sync::mpsc::channel();
    let sleeper = std::thread::spawn(move || {
        started.send(()).unwrap();
        let _: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg(1).query(&mut blocker);
    });
    wait.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let hit = s.reserve(&r, WindowMode::Sliding, T0).unwrap_err();
    assert!(hit.unavailable.is_some(), "{hit:?}");
    sleeper.join().unwrap();
    // Once Redis answers again, so does the store. The refused call may
    // still have been charged (its script ran after the sleep, once the
    // client had stopped waiting): that errs towards refusing, never leaking.
    let hit = s
        .reserve(&[req("c", "a", 5, 5)], WindowMode::Sliding, T0)
        .unwrap_err();
    assert!(hit.unavailable.is_none(), "{hit:?}");
    assert!((1..=2).contains(&hit.current), "{hit:?}");
    s.reserve(
        &[req("c", "a", 5 - hit.current, 5)],
        WindowMode::Sliding,
        T0,
    )
    .unwrap();
}

#[test]
fn a_bad_url_or_a_closed_port_is_an_error_at_open() {
    let e = RedisStore::open("redis://[oops", RedisOptions::default()).unwrap_err();
    assert!(e.to_string().contains("`redis://[oops`"), "{e}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let e = RedisStore::open(&url, RedisOptions::default()).unwrap_err();
    assert!(e.to_string().starts_with("cannot reach Redis"), "{e}");
}
