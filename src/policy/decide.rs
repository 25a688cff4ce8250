//! The full decision: the static judgement, then the counters.

use super::clock::Clock;
use super::judge::{Call, Denial, DenyKind, Judgement};
use super::model::Policy;
use super::schema::SchemaSet;
use super::store::{CounterStore, Receipt};

/// The outcome of `decide`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward the call; the receipt says what quota it took.
    Allow(Receipt),
    /// Refuse the call.
    Deny(Denial),
}

/// Decides a call: judges it, then reserves every counter it charges, all or nothing.
pub fn decide(
    policy: &Policy,
    call: &Call<'_>,
    schemas: Option<&SchemaSet>,
    store: &dyn CounterStore,
    clock: &dyn Clock,
) -> Decision {
    let requests = match policy.judge(call, schemas) {
        Judgement::Deny(denial) => return Decision::Deny(denial),
        Judgement::Admit(requests) => requests,
    };
    match store.reserve(&requests, policy.window_mode, clock.now()) {
        Ok(receipt) => Decision::Allow(receipt),
        Err(hit) => {
            if let Some(why) = hit.unavailable {
                return Decision::Deny(Denial {
                    kind: DenyKind::Limit,
                    rule: hit.loc.pointer,
                    reason: format!("the counter store is unavailable ({why}); refusing the call"),
                });
            }
            let limit = requests.get(hit.index);
            let message = limit.and_then(|r| message_of(policy, &r.loc.pointer));
            let reason = message.unwrap_or_else(|| {
                format!(
                    "counter `{}` holds {} of {} for this window; this call adds {}",
                    hit.key, hit.current, hit.max, hit.amount
                )
            });
            Decision::Deny(Denial {
                kind: DenyKind::Limit,
                rule: hit.loc.pointer,
                reason,
            })
        }
    }
}

/// The message a limit (found by its location) gives, or its tool's reason.
fn message_of(policy: &Policy, pointer: &str) -> Option<String> {
    if let Some(l) = policy.all_tools.iter().find(|l| l.loc.pointer == pointer) {
        return l.message.clone();
    }
    policy.tools.iter().find_map(|t| {
        let l = t.limits.iter().find(|l| l.loc.pointer == pointer)?;
        l.message.clone().or_else(|| t.reason.clone())
    })
}

/// Settles a forwarded call whose upstream reply was an error: gives the
/// quota back when the policy says so (`refund_on_error`), else keeps it.
/// Returns whether it refunded.
pub fn on_upstream_error(policy: &Policy, store: &dyn CounterStore, receipt: &Receipt) -> bool {
    if policy.refund_on_error {
        store.refund(receipt);
    }
    policy.refund_on_error
}
