//! The calls a bench sends: a mix of calls the policy admits (with valid
//! generated arguments) and calls it denies, each serialised once up front
//! so the load loop only splices in an id.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::LoadError;
use crate::mock::catalogue::Catalogue;
use crate::policy::{Call, Judgement, Policy};

/// Argument variants per tool: calls differ (distinct emails, reference
/// ids) without generating arguments inside the loop.
const VARIANTS: u64 = 16;

/// What a call is expected to meet at the enforcer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Allowed,
    Denied,
}

impl Class {
    /// Both classes, in report order.
    pub const ALL: [Class; 2] = [Class::Allowed, Class::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Allowed => "allowed",
            Class::Denied => "denied",
        }
    }

    /// The class's slot in per-class arrays.
    pub fn index(self) -> usize {
        match self {
            Class::Allowed => 0,
            Class::Denied => 1,
        }
    }
}

/// Shares of allowed and denied calls, e.g. `allow:70,deny:30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    pub allow: u32,
    pub deny: u32,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            allow: 70,
            deny: 30,
        }
    }
}

impl std::str::FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Mix, String> {
        let mut mix = Mix { allow: 0, deny: 0 };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, n) = part
                .split_once(':')
                .ok_or_else(|| format!("`{part}` is not `allow:N` or `deny:N`"))?;
            let n: u32 = n
                .trim()
                .parse()
                .map_err(|_| format!("`{n}` in `{part}` is not a whole number"))?;
            match key.trim() {
                "allow" => mix.allow = n,
                "deny" => mix.deny = n,
                other => return Err(format!("unknown class `{other}`: use allow or deny")),
            }
        }
        if mix.allow == 0 && mix.deny == 0 {
            return Err(format!("the mix `{s}` sends nothing"));
        }
        Ok(mix)
    }
}

impl Mix {
    /// The class of call `i`: the shares are interleaved evenly rather than
    /// drawn at random, so every stretch of the run has the same mix.
    pub fn class_of(&self, i: u64) -> Class {
        let total = u64::from(self.allow) + u64::from(self.deny);
        let deny = u64::from(self.deny);
        if (i + 1) * deny / total > i * deny / total {
            Class::Denied
        } else {
            Class::Allowed
        }
    }
}

/// One call ready to send, but for its id.
#[derive(Debug, Clone)]
struct Prepared {
    /// The frame up to the id: `{"jsonrpc":"2.0","method":…,"params":…,"id":`.
    head: Vec<u8>,
}

/// Every call a bench may send, by class.
#[derive(Debug, Clone)]
pub struct Plan {
    mix: Mix,
    pools: [Vec<Prepared>; 2],
    /// The tools in each pool, for the report.
    pub tools: [Vec<String>; 2],
    /// Allowed tools whose calls the policy counts against a limit.
    pub limited: Vec<String>,
}

impl Plan {
    /// Sorts the catalogue's tools by what `policy` does with a valid call.
    pub fn new(policy: &Policy, catalogue: &Catalogue, mix: Mix) -> Result<Plan, LoadError> {
        let mut pools: [Vec<Prepared>; 2] = [Vec::new(), Vec::new()];
        let mut tools: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        let mut limited = Vec::new();
        for tool in catalogue.tools() {
            let schema = &tool.entry().input_schema;
            let probe = crate::generate::valid(schema, 0);
            let call = Call {
                tool: tool.name(),
                args: Some(&probe),
                grant: "bench",
                session: "bench",
            };
            let class = match policy.judge(&call, None) {
                Judgement::Admit(requests) => {
                    if !requests.is_empty() {
                        limited.push(tool.name().to_owned());
                    }
                    Class::Allowed
                }
                Judgement::Deny(_) => Class::Denied,
            };
            tools[class.index()].push(tool.name().to_owned());
            for n in 0..VARIANTS {
                let args = crate::generate::valid(schema, n);
                pools[class.index()].push(prepare(tool.name(), &args)?);
            }
        }
        for class in Class::ALL {
            let share = match class {
                Class::Allowed => mix.allow,
                Class::Denied => mix.deny,
            };
            if share > 0 && pools[class.index()].is_empty() {
                return Err(LoadError::Mix(format!(
                    "the mix asks for {} calls but the policy has no such catalogue tool",
                    class.as_str()
                )));
            }
        }
        Ok(Plan {
            mix,
            pools,
            tools,
            limited,
        })
    }

    /// The mix this plan follows.
    pub fn mix(&self) -> Mix {
        self.mix
    }

    /// The class and frame of call `i`, with `id` spliced in.
    pub fn frame(&self, i: u64, id: i64) -> (Class, Vec<u8>) {
        let class = self.mix.class_of(i);
        let pool = &self.pools[class.index()];
        // Walk each pool in step with the call index; tools and variants
        // interleave because variants of one tool sit together.
        let pick = &pool[(i.wrapping_mul(VARIANTS + 1) % pool.len() as u64) as usize];
        let mut bytes = Vec::with_capacity(pick.head.len() + 21);
        bytes.extend_from_slice(&pick.head);
        bytes.extend_from_slice(id.to_string().as_bytes());
        bytes.push(b'}');
        (class, bytes)
    }
}

fn prepare(name: &str, args: &Value) -> Result<Prepared, LoadError> {
    let params = json!({"name": name, "arguments": args});
    let params = serde_json::to_string(&params).map_err(|e| LoadError::Mix(e.to_string()))?;
    let head = format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{params},"id":"#);
    Ok(Prepared {
        head: head.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench_policy() -> Policy {
        crate::policy::parse_json(super::super::BENCH_POLICY, "bench-policy.json").unwrap()
    }

    #[test]
    fn mixes_parse_and_reject_nonsense() {
        assert_eq!(
            "allow:70,deny:30".parse::<Mix>(),
            Ok(Mix {
                allow: 70,
                deny: 30
            })
        );
        assert_eq!("deny:1".parse::<Mix>(), Ok(Mix { allow: 0, deny: 1 }));
        assert!("allow:0".parse::<Mix>().is_err());
        assert!("permit:5".parse::<Mix>().is_err());
        assert!("allow:x".parse::<Mix>().is_err());
    }

    #[test]
    fn classes_interleave_in_the_asked_shares() {
        let mix = Mix {
            allow: 70,
            deny: 30,
        };
        let denied = (0..1000)
            .filter(|i| mix.class_of(*i) == Class::Denied)
            .count();
        assert_eq!(denied, 300);
        // Every stretch of ten calls has its three denials.
        for start in (0..1000).step_by(10) {
            let n = (start..start + 10)
                .filter(|i| mix.class_of(*i) == Class::Denied)
                .count();
            assert_eq!(n, 3, "calls {start}..{}", start + 10);
        }
    }

    #[test]
    fn the_bundled_policy_admits_posts_and_lists_without_limits_and_denies_deletes() {
        let cat = Catalogue::bundled().unwrap();
        let plan = Plan::new(&bench_policy(), &cat, Mix::default()).unwrap();
        let allowed = &plan.tools[Class::Allowed.index()];
        assert!(allowed.iter().any(|t| t.ends_with("_PostCustomers")));
        assert!(allowed.iter().any(|t| t.ends_with("_GetCustomers")));
        assert!(
            plan.tools[Class::Denied.index()]
                .iter()
                .any(|t| t.ends_with("_DeleteCustomer"))
        );
        assert!(plan.limited.is_empty());
    }

    #[test]
    fn frames_are_valid_calls_the_policy_judges_as_their_class() {
        let cat = Catalogue::bundled().unwrap();
        let policy = bench_policy();
        let plan = Plan::new(&policy, &cat, Mix::default()).unwrap();
        for i in 0..200 {
            let (class, bytes) = plan.frame(i, 1000 + i as i64);
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["id"], json!(1000 + i as i64));
            assert_eq!(v["method"], "tools/call");
            let name = v["params"]["name"].as_str().unwrap();
            let args = &v["params"]["arguments"];
            let tool = cat
                .resolve(name, crate::names::NameMatching::Exact)
                .unwrap();
            assert!(tool.validate(args).is_empty(), "{name}: {args}");
            let call = Call {
                tool: name,
                args: Some(args),
                grant: "g",
                session: "s",
            };
            let admitted = matches!(policy.judge(&call, None), Judgement::Admit(_));
            assert_eq!(admitted, class == Class::Allowed, "{name}");
        }
    }

    #[test]
    fn a_policy_made_for_a_manifest_denies_its_destructive_tools() {
        // The bundled tools annotate DeleteCustomer alone as destructive.
        let cat = Catalogue::bundled().unwrap();
        let made = crate::load::bench_policy_for(&cat).unwrap();
        let made = Plan::new(&made, &cat, Mix::default()).unwrap();
        assert_eq!(made.tools[1], ["WizCommerce Open API_DeleteCustomer"]);
        assert_eq!(made.tools[0].len(), 4, "{:?}", made.tools);
        assert!(made.limited.is_empty());
        let lone = Catalogue::from_manifest(
            r#"[{"name": "only", "inputSchema": {"type": "object"}}]"#,
            "m",
        )
        .unwrap();
        let policy = crate::load::bench_policy_for(&lone).unwrap();
        let err = Plan::new(&policy, &lone, Mix::default()).unwrap_err();
        assert!(err.to_string().contains("denied"), "{err}");
    }

    #[test]
    fn a_mix_the_policy_cannot_serve_is_refused() {
        let cat = Catalogue::bundled().unwrap();
        let deny_all =
            crate::policy::parse_json(r#"{"version":"1","default":"deny"}"#, "p.json").unwrap();
        let err = Plan::new(&deny_all, &cat, Mix::default()).unwrap_err();
        assert!(err.to_string().contains("allowed"), "{err}");
    }
}
