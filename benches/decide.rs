//! `decide` on a realistic PostCustomers call (about 2 KB of arguments)
//! under a policy with limits, conditions, a regex and an input schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet::policy::{Call, ManualClock, MemoryStore, SchemaSet, decide, parse_json};
use serde_json::{Value, json};

const POST: &str = "WizCommerce Open API_PostCustomers";

fn args() -> Value {
    let address = |kind: &str, n: u32| {
        json!({"address_type": kind, "address_line_1": format!("{n} Industrial Estate Road"),
            "address_line_2": "Building C, Floor 3", "city": "Bengaluru", "state": "Karnataka",
            "country": "India", "pincode": "560058", "phone": "+91 80 4567 8901", "is_default": n == 1})
    };
    let contact = |n: u32| {
        json!({"first_name": format!("Contact{n}"), "last_name": "Sharma", "email": format!("c{n}@acme.example"),
            "phone": "+91 98450 12345", "designation": "Procurement Manager", "is_primary": n == 1})
    };
    json!({
        "company_name": "Acme Industrial Supplies Private Limited",
        "display_name": "Acme Industrial",
        "email": "orders@acme-industrial.example",
        "phone": "+91 80 4567 8900",
        "website": "https://acme-industrial.example",
        "gst_number": "29ABCDE1234F1Z5",
        "pan_number": "ABCDE1234F",
        "customer_group": "wholesale",
        "price_list": "tier-2",
        "currency": "INR",
        "payment_terms": "net-30",
        "credit_limit": 9500,
        "credit_days": 30,
        "tags": ["priority", "north-region", "repeat-buyer"],
        "addresses": [address("billing", 1), address("shipping", 2), address("shipping", 3), address("shipping", 4)],
        "contacts": [contact(1), contact(2), contact(3)],
        "notes": "Prefers consolidated shipments on Tuesdays; call before delivery to the second warehouse.",
        "external_id": "ERP-CUST-00042817",
        "sales_rep": "rep-117",
        "is_active": true
    })
}

fn schema() -> Value {
    let address = json!({"type": "object", "properties": {
        "address_type": {"type": "string", "enum": ["billing", "shipping"]},
        "address_line_1": {"type": "string"}, "address_line_2": {"type": "string"},
        "city": {"type": "string"}, "state": {"type": "string"}, "country": {"type": "string"},
        "pincode": {"type": "string"}, "phone": {"type": "string"}, "is_default": {"type": "boolean"}},
        "required": ["address_type", "address_line_1", "city"]});
    let contact = json!({"type": "object", "properties": {
        "first_name": {"type": "string"}, "last_name": {"type": "string"},
        "email": {"type": "string"}, "phone": {"type": "string"},
        "designation": {"type": "string"}, "is_primary": {"type": "boolean"}},
        "required": ["first_name"]});
    json!({"name": POST, "description": "List Attributes", "inputSchema": {
    "type": "object",
    "required": ["company_name", "email"],
    "properties": {
        "company_name": {"type": "string", "minLength": 1}, "display_name": {"type": "string"},
        "email": {"type": "string"}, "phone": {"type": "string"}, "website": {"type": "string"},
        "gst_number": {"type": "string"}, "pan_number": {"type": "string"},
        "customer_group": {"type": "string"}, "price_list": {"type": "string"},
        "currency": {"type": "string"}, "payment_terms": {"type": "string"},
        "credit_limit": {"type": "number", "minimum": 0}, "credit_days": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "addresses": {"type": "array", "items": address},
        "contacts": {"type": "array", "items": contact},
        "notes": {"type": "string"}, "external_id": {"type": "string"},
        "sales_rep": {"type": "string"}, "is_active": {"type": "boolean"}
    }}})
}

fn bench_decide(c: &mut Criterion) {
    let policy = parse_json(
        &json!({"version": "1", "default": "deny",
            "all_tools": {"limits": [{"counter": "calls", "window": "minute", "max": u64::MAX, "scope": "session"}]},
            "tools": {POST: {
                "limits": [{"counter": "wizcommerce open api_postcustomers_rate", "window": "minute",
                            "max": u64::MAX, "scope": "grant"}],
                "require": [{"path": "args.email", "op": "exists", "value": true},
                            {"path": "args.email", "op": "regex", "value": "^[^@\\s]+@[^@\\s]+\\.[a-z]+$"}],
                "deny_if": [{"path": "args.credit_limit", "op": "gt", "value": 10000},
                            {"path": "args.addresses.0.country", "op": "not_in", "value": ["India", "Norway"]}]}}})
        .to_string(),
        "bench.json",
    )
    .unwrap();
    let args = args();
    assert!(
        (1800..2600).contains(&args.to_string().len()),
        "{} bytes",
        args.to_string().len()
    );
    let schemas = SchemaSet::from_tools(&[schema()]);
    // Fixed windows keep the store's memory flat over millions of iterations.
    let mut policy = policy;
    policy.window_mode = gauntlet::policy::WindowMode::Fixed;
    let store = MemoryStore::default();
    let clock = ManualClock::new(Duration::from_secs(1_000_000));
    let call = Call {
        tool: POST,
        args: Some(&args),
        grant: "grant-1",
        session: "session-1",
    };
    assert!(matches!(
        decide(&policy, &call, Some(&schemas), &store, &clock),
        gauntlet::policy::Decision::Allow(_)
    ));

    let mut group = c.benchmark_group("decide");
    group.bench_function("post_customers_2kb", |b| {
        b.iter(|| {
            decide(
                black_box(&policy),
                black_box(&call),
                Some(&schemas),
                &store,
                &clock,
            )
        })
    });
    let bare_store = MemoryStore::default();
    group.bench_function("post_customers_2kb_no_schema", |b| {
        b.iter(|| {
            decide(
                black_box(&policy),
                black_box(&call),
                None,
                &bare_store,
                &clock,
            )
        })
    });
    group.bench_function("judge_only", |b| {
        b.iter(|| policy.judge(black_box(&call), Some(&schemas)))
    });
    group.bench_function("schema_check_only", |b| {
        b.iter(|| schemas.check(black_box(POST), black_box(&args)))
    });
    // A reference point for this machine: a one-property document.
    let small = SchemaSet::from_tools(&[json!({"name": "s", "inputSchema": {"type": "object",
        "properties": {"email": {"type": "string"}}, "required": ["email"]}})]);
    let small_args = json!({"email": "a@b.example"});
    group.bench_function("schema_check_small", |b| {
        b.iter(|| small.check(black_box("s"), black_box(&small_args)))
    });
    group.bench_function("judge_without_schema", |b| {
        b.iter(|| policy.judge(black_box(&call), None))
    });
    let sliding = {
        let mut p = policy.clone();
        p.window_mode = gauntlet::policy::WindowMode::Sliding;
        p
    };
    let sliding_store = MemoryStore::default();
    group.bench_function("post_customers_2kb_sliding", |b| {
        b.iter(|| {
            clock.advance(Duration::from_millis(1));
            decide(
                black_box(&sliding),
                black_box(&call),
                Some(&schemas),
                &sliding_store,
                &clock,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
