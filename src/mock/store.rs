//! The in-memory customer store the tools act on, so that an attack which
//! lands changes something a test can observe.
//!
//! Customers are kept as a compact summary rather than the whole request
//! body: a load run creates hundreds of thousands of them.

use std::collections::BTreeMap;
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

    fn is_unfiltered(&self) -> bool {
        self.search.is_none()
            && self.status.is_none()
            && self.sales_rep_id.is_none()
            && self.price_list_id.is_none()
    }

    fn matches(&self, c: &Customer) -> bool {
        let search = self.search.as_deref().is_none_or(|s| {
            [
                Some(&c.company_name),
                c.display_name.as_ref(),
                c.email.as_ref(),
                c.reference_id.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(|field| field.to_lowercase().contains(s))
        });
        search
            && self.status.as_deref().is_none_or(|s| c.status == s)
            && self
                .sales_rep_id
                .as_deref()
                .is_none_or(|r| c.assigned_sales_rep_ids.iter().any(|x| x == r))
            && self
                .price_list_id
                .as_deref()
                .is_none_or(|p| c.assigned_price_list_id.as_deref() == Some(p))
    }
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
        inner.customers.insert(id, customer.clone());
        customer
    }

    /// One customer by id.
    pub fn get(&self, id: &str) -> Option<Customer> {
        self.lock().customers.get(id).cloned()
    }

    /// Applies PutCustomer arguments; `None` when the id is unknown.
    pub fn update(&self, id: &str, args: &Map<String, Value>) -> Option<Customer> {
        let mut inner = self.lock();
        let c = inner.customers.get_mut(id)?;
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
        Some(c.clone())
    }

    /// Removes a customer; `None` when the id is unknown.
    pub fn delete(&self, id: &str) -> Option<Customer> {
        self.lock().customers.remove(id)
    }

    /// A filtered, paged listing in id order (creation order).
    ///
    /// One pass that keeps only the page: a long bench fills the store, and
    /// collecting every match per call made each listing slower than the
    /// last. Unfiltered listings take the total from the map's length.
    pub fn list(&self, query: &ListQuery) -> Page {
        let inner = self.lock();
        let skip = (query.page - 1).saturating_mul(query.page_size);
        let all: Box<dyn Iterator<Item = &Customer>> = if query.descending {
            Box::new(inner.customers.values().rev())
        } else {
            Box::new(inner.customers.values())
        };
        let (total, customers) = if query.is_unfiltered() {
            let page = all.skip(skip).take(query.page_size).cloned().collect();
            (inner.customers.len(), page)
        } else {
            let mut total = 0;
            let mut page = Vec::new();
            for c in all.filter(|c| query.matches(c)) {
                if total >= skip && page.len() < query.page_size {
                    page.push(c.clone());
                }
                total += 1;
            }
            (total, page)
        };
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
        // A filtered second page counts every match, returns only its own.
        let q = ListQuery::from_args(&obj(json!({"search": "e", "page": 2, "page_size": 1})));
        let page = store.list(&q);
        let ids: Vec<&str> = page.customers.iter().map(|c| c.id.as_str()).collect();
        assert_eq!((page.total, ids), (2, vec!["WC_000002"]));

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
}
