//! The in-memory customer store the tools act on, so that an attack which
//! lands changes something a test can observe.
//!
//! Customers are kept as a compact summary rather than the whole request
//! body: a load run creates hundreds of thousands of them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One stored customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    pub company_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_price_list_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assigned_sales_rep_ids: Vec<String>,
    pub status: String,
    pub addresses: usize,
    pub contacts: usize,
    /// The ledger sequence number of the call that created it.
    pub created_seq: u64,
}

fn text(args: &Map<String, Value>, key: &str) -> Option<String> {
    args.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn count(args: &Map<String, Value>, key: &str) -> usize {
    args.get(key).and_then(Value::as_array).map_or(0, Vec::len)
}

/// A filter for [`Store::list`], taken from GetCustomers arguments.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub search: Option<String>,
    pub status: Option<String>,
    pub sales_rep_id: Option<String>,
    pub price_list_id: Option<String>,
    pub descending: bool,
    pub page: usize,
    pub page_size: usize,
}

impl ListQuery {
    /// The query GetCustomers arguments ask for; unknown keys are ignored
    /// because the schema has already judged them.
    pub fn from_args(args: &Map<String, Value>) -> ListQuery {
        let num = |k: &str, default: u64| args.get(k).and_then(Value::as_u64).unwrap_or(default);
        ListQuery {
            search: text(args, "search").map(|s| s.to_lowercase()),
            status: text(args, "status"),
            sales_rep_id: text(args, "sales_rep_id"),
            price_list_id: text(args, "price_list_id"),
            descending: args.get("sort_order").and_then(Value::as_str) == Some("desc"),
            page: usize::try_from(num("page", 1).max(1)).unwrap_or(1),
            page_size: usize::try_from(num("page_size", 20).clamp(1, 100)).unwrap_or(20),
        }
    }

    /// Whether `c` passes every filter; the exact ones first, since a
    /// listing tests every customer in the store.
    fn matches(&self, c: &Customer) -> bool {
        self.status.as_deref().is_none_or(|s| c.status == s)
            && self
                .sales_rep_id
                .as_deref()
                .is_none_or(|r| c.assigned_sales_rep_ids.iter().any(|x| x == r))
            && self
                .price_list_id
                .as_deref()
                .is_none_or(|p| c.assigned_price_list_id.as_deref() == Some(p))
            && self.search.as_deref().is_none_or(|s| {
                [
                    Some(&c.company_name),
                    c.display_name.as_ref(),
                    c.email.as_ref(),
                    c.reference_id.as_ref(),
                ]
                .into_iter()
                .flatten()
                .any(|field| contains_folded(field, s))
            })
    }
}

/// Whether `haystack`, lower-cased, contains `needle` (already lower-cased),
/// without lower-casing a copy when the haystack is ASCII.
fn contains_folded(haystack: &str, needle: &str) -> bool {
    if !haystack.is_ascii() {
        return haystack.to_lowercase().contains(needle);
    }
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty()
        || h.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub customers: Vec<Customer>,
    pub total: usize,
    pub page: usize,
    pub page_size: usize,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    customers: BTreeMap<String, Customer>,
    /// Customer ids by sales rep and by price list: a listing filtered on
    /// either visits only those customers, not the whole store (a load run
    /// creates hundreds of thousands).
    by_rep: HashMap<String, BTreeSet<String>>,
    by_price_list: HashMap<String, BTreeSet<String>>,
}

fn unindex(index: &mut HashMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

/// The customers, behind one lock: calls are short and never await inside.
#[derive(Debug, Default)]
pub struct Store {
    inner: Mutex<Inner>,
}

impl Store {
    /// An empty store; the first id is `WC_000001`.
    pub fn new() -> Store {
        Store::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind,
        // still consistent enough for a mock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a customer from PostCustomers arguments and returns it.
    pub fn create(&self, args: &Map<String, Value>, seq: u64) -> Customer {
        let mut inner = self.lock();
        inner.next += 1;
        let id = format!("WC_{:06}", inner.next);
        let customer = Customer {
            id: id.clone(),
            reference_id: text(args, "reference_id"),
            company_name: text(args, "company_name").unwrap_or_default(),
            display_name: text(args, "display_name"),
            first_name: text(args, "first_name"),
            last_name: text(args, "last_name"),
            email: text(args, "email"),
            phone: text(args, "phone"),
            credit_limit: args.get("credit_limit").and_then(Value::as_f64),
            payment_term: text(args, "payment_term"),
            assigned_price_list_id: text(args, "assigned_price_list_id"),
            assigned_sales_rep_ids: args
                .get("assigned_sales_rep_ids")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            status: "active".to_owned(),
            addresses: count(args, "addresses"),
            contacts: count(args, "contacts"),
            created_seq: seq,
        };
        for rep in &customer.assigned_sales_rep_ids {
            inner
                .by_rep
                .entry(rep.clone())
                .or_default()
                .insert(id.clone());
        }
        if let Some(pl) = &customer.assigned_price_list_id {
            inner
                .by_price_list
                .entry(pl.clone())
                .or_default()
                .insert(id.clone());
        }
        inner.customers.insert(id, customer.clone());
        customer
    }

    /// One customer by id.
    pub fn get(&self, id: &str) -> Option<Customer> {
        self.lock().customers.get(id).cloned()
    }

    /// Applies PutCustomer arguments; `None` when the id is unknown.
    pub fn update(&self, id: &str, args: &Map<String, Value>) -> Option<Customer> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let c = inner.customers.get_mut(id)?;
        let price_list_before = c.assigned_price_list_id.clone();
        let set = |slot: &mut Option<String>, key: &str| {
            if let Some(v) = text(args, key) {
                *slot = Some(v);
            }
        };
        if let Some(v) = text(args, "company_name") {
            c.company_name = v;
        }
        set(&mut c.display_name, "display_name");
        set(&mut c.email, "email");
        set(&mut c.phone, "phone");
        set(&mut c.payment_term, "payment_term");
        set(&mut c.assigned_price_list_id, "assigned_price_list_id");
        if let Some(v) = args.get("credit_limit").and_then(Value::as_f64) {
            c.credit_limit = Some(v);
        }
        if let Some(v) = text(args, "status") {
            c.status = v;
        }
        if c.assigned_price_list_id != price_list_before {
            if let Some(old) = &price_list_before {
                unindex(&mut inner.by_price_list, old, id);
            }
            if let Some(new) = &c.assigned_price_list_id {
                inner
                    .by_price_list
                    .entry(new.clone())
                    .or_default()
                    .insert(id.to_owned());
            }
        }
        Some(c.clone())
    }

    /// Removes a customer; `None` when the id is unknown.
    pub fn delete(&self, id: &str) -> Option<Customer> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let c = inner.customers.remove(id)?;
        for rep in &c.assigned_sales_rep_ids {
            unindex(&mut inner.by_rep, rep, id);
        }
        if let Some(pl) = &c.assigned_price_list_id {
            unindex(&mut inner.by_price_list, pl, id);
        }
        Some(c)
    }

    /// A filtered, paged listing in id order (creation order).
    pub fn list(&self, query: &ListQuery) -> Page {
        let inner = self.lock();
        let skip = (query.page - 1).saturating_mul(query.page_size);
        let wanted = skip..skip.saturating_add(query.page_size);
        // Only the page is copied; the rest is counted.
        let mut total = 0;
        let mut customers = Vec::new();
        let mut take = |c: &Customer| {
            if wanted.contains(&total) {
                customers.push(c.clone());
            }
            total += 1;
        };
        // The fewest candidates an exact filter allows; every filter is
        // still checked on each.
        let indexed = [
            (query.sales_rep_id.as_deref(), &inner.by_rep),
            (query.price_list_id.as_deref(), &inner.by_price_list),
        ]
        .into_iter()
        .filter_map(|(key, index)| Some(index.get(key?)))
        .min_by_key(|ids| ids.map_or(0, BTreeSet::len));
        match indexed {
            Some(ids) => {
                let all = ids
                    .into_iter()
                    .flatten()
                    .filter_map(|id| inner.customers.get(id))
                    .filter(|c| query.matches(c));
                if query.descending {
                    all.rev().for_each(&mut take);
                } else {
                    all.for_each(&mut take);
                }
            }
            None => {
                let all = inner.customers.values().filter(|c| query.matches(c));
                if query.descending {
                    all.rev().for_each(&mut take);
                } else {
                    all.for_each(&mut take);
                }
            }
        }
        Page {
            total,
            customers,
            page: query.page,
            page_size: query.page_size,
        }
    }

    /// How many customers exist.
    pub fn len(&self) -> usize {
        self.lock().customers.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every customer, in id order.
    pub fn all(&self) -> Vec<Customer> {
        self.lock().customers.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn create_read_update_list_delete() {
        let store = Store::new();
        let a = store.create(
            &obj(json!({"company_name": "Acme", "email": "a@acme.test",
                        "addresses": [{}, {}], "assigned_price_list_id": "PL1"})),
            1,
        );
        let b = store.create(&obj(json!({"company_name": "Globex"})), 2);
        assert_eq!((a.id.as_str(), b.id.as_str()), ("WC_000001", "WC_000002"));
        assert_eq!(a.addresses, 2);
        assert_eq!(store.get("WC_000001"), Some(a.clone()));

        let updated = store
            .update(
                "WC_000002",
                &obj(json!({"status": "inactive", "credit_limit": 5})),
            )
            .unwrap();
        assert_eq!(
            (updated.status.as_str(), updated.credit_limit),
            ("inactive", Some(5.0))
        );
        assert!(store.update("WC_000009", &Map::new()).is_none());

        let q = ListQuery::from_args(&obj(json!({"search": "ACME"})));
        assert_eq!(store.list(&q).customers, vec![a.clone()]);
        let q = ListQuery::from_args(&obj(json!({"status": "active", "price_list_id": "PL1"})));
        assert_eq!(store.list(&q).total, 1);
        let q = ListQuery::from_args(&obj(json!({"sort_order": "desc", "page_size": 1})));
        let page = store.list(&q);
        assert_eq!(
            (page.total, page.customers[0].id.as_str()),
            (2, "WC_000002")
        );
        let q = ListQuery::from_args(&obj(json!({"page": 3, "page_size": 1})));
        assert!(store.list(&q).customers.is_empty());

        assert_eq!(
            store.delete("WC_000001").map(|c| c.id),
            Some("WC_000001".into())
        );
        assert!(store.delete("WC_000001").is_none());
        assert_eq!(store.len(), 1);
        // Ids are never reused after a delete.
        let c = store.create(&obj(json!({"company_name": "Initech"})), 3);
        assert_eq!(c.id, "WC_000003");
    }

    #[test]
    fn listings_by_rep_and_price_list_follow_updates_and_deletes() {
        let store = Store::new();
        let mk = |reps: Value, pl: &str| {
            store
                .create(
                    &obj(json!({"company_name": "c", "assigned_sales_rep_ids": reps,
                                "assigned_price_list_id": pl})),
                    1,
                )
                .id
        };
        let a = mk(json!(["r1", "r2"]), "p1");
        let b = mk(json!(["r2"]), "p1");
        let c = mk(json!([]), "p2");
        let ids = |args: Value| -> Vec<String> {
            let page = store.list(&ListQuery::from_args(&obj(args)));
            assert_eq!(page.total, page.customers.len());
            page.customers.into_iter().map(|c| c.id).collect()
        };
        assert_eq!(ids(json!({"sales_rep_id": "r2"})), [a.clone(), b.clone()]);
        assert_eq!(
            ids(json!({"sales_rep_id": "r2", "sort_order": "desc"})),
            [b.clone(), a.clone()]
        );
        assert_eq!(
            ids(json!({"sales_rep_id": "r2", "price_list_id": "p2"})),
            Vec::<String>::new()
        );
        assert_eq!(ids(json!({"sales_rep_id": "nobody"})), Vec::<String>::new());
        store.update(&b, &obj(json!({"assigned_price_list_id": "p2"})));
        assert_eq!(
            ids(json!({"price_list_id": "p1"})),
            std::slice::from_ref(&a)
        );
        assert_eq!(ids(json!({"price_list_id": "p2"})), [b.clone(), c.clone()]);
        store.delete(&a);
        assert_eq!(ids(json!({"sales_rep_id": "r1"})), Vec::<String>::new());
        assert_eq!(
            ids(json!({"sales_rep_id": "r2", "price_list_id": "p2"})),
            [b]
        );
        // Without an exact filter every customer is looked at.
        assert_eq!(ids(json!({"search": "C"})).len(), 2);
    }

    #[test]
    fn search_folds_case_in_any_script_and_pages_count_everything() {
        let store = Store::new();
        for name in [
            "Straße Ltd",
            "STRASSE GmbH",
            "Ωmega Corp",
            "omega inc",
            "Umbrella",
        ] {
            store.create(&obj(json!({ "company_name": name })), 1);
        }
        let names = |args: Value| -> (usize, Vec<String>) {
            let page = store.list(&ListQuery::from_args(&obj(args)));
            let names = page.customers.into_iter().map(|c| c.company_name).collect();
            (page.total, names)
        };
        assert_eq!(names(json!({"search": "ωMEGA"})).1, ["Ωmega Corp"]);
        assert_eq!(
            names(json!({"search": "strasse"})).1,
            ["STRASSE GmbH"],
            "lower-casing does not expand ß"
        );
        assert_eq!(names(json!({"search": "E"})).0, 5);
        assert_eq!(names(json!({"search": ""})).0, 5);
        // The second page of two: the total is still every match.
        assert_eq!(
            names(json!({"search": "e", "page": 2, "page_size": 2})),
            (5, vec!["Ωmega Corp".to_owned(), "omega inc".to_owned()])
        );
        assert_eq!(
            names(json!({"search": "e", "page": 2, "page_size": 2, "sort_order": "desc"})).1,
            ["Ωmega Corp", "STRASSE GmbH"]
        );
    }
}
