//! proptest strategies over the deterministic generators: the same values,
//! drawn from a seeded runner so a campaign is reproducible and shrinkable.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

use super::boundary::{self, Edge};
use super::frames::{self, Frame, Mutation};
use super::names::{self, Variant};
use crate::policy::Condition;
use crate::scenario::Rule;

/// Every rule a generated argument set can break.
pub const RULES: [Rule; 8] = [
    Rule::Required,
    Rule::Type,
    Rule::Enum,
    Rule::Format,
    Rule::MaxLength,
    Rule::MinLength,
    Rule::Additional,
    Rule::Minimum,
];

/// Arguments valid against `schema`.
pub fn valid_args(schema: Value) -> impl Strategy<Value = Value> {
    any::<u16>().prop_map(move |n| super::valid(&schema, u64::from(n)))
}

/// Arguments that break exactly one rule of `schema`, with the rule and the
/// JSON pointer where it was broken; rules the schema has no place for are
/// skipped.
pub fn violating_args(schema: Value) -> impl Strategy<Value = (Rule, Value, String)> {
    (select(RULES.to_vec()), any::<u16>())
        .prop_filter_map("the schema has no place for this rule", move |(rule, n)| {
            super::violating(&schema, rule, u64::from(n)).map(|(v, at)| (rule, v, at))
        })
}

/// A value at one of `condition`'s edges.
pub fn boundary_value(condition: &Condition) -> impl Strategy<Value = (Edge, Value)> + use<> {
    select(boundary::condition_values(condition))
}

/// An amount for an `increment_from` path.
pub fn increment_amount() -> impl Strategy<Value = (Edge, Value)> {
    select(boundary::increment_values())
}

/// A spelling of `name`.
pub fn name_variant(name: String) -> impl Strategy<Value = (Variant, String)> {
    (select(Variant::ALL.to_vec()), 0usize..64)
        .prop_map(move |(v, pick)| (v, names::variant(&name, v, pick)))
}

/// A mutated frame calling `target`, hidden behind `allowed`.
pub fn mutated_frame(
    target: String,
    allowed: String,
    args: Value,
    http: bool,
) -> impl Strategy<Value = (Mutation, Frame)> {
    let kinds: Vec<Mutation> = Mutation::ALL
        .into_iter()
        .filter(|m| http || *m != Mutation::HeaderMismatch)
        .collect();
    (select(kinds), 0usize..16, 1u64..1_000_000)
        .prop_map(move |(m, pick, id)| (m, frames::frame(m, pick, &target, &allowed, &args, id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::catalogue::Catalogue;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn schemas() -> Vec<Value> {
        Catalogue::bundled()
            .unwrap()
            .tools()
            .iter()
            .map(|t| t.entry().input_schema.clone())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn valid_arguments_validate(tool in 0usize..5, n in any::<u16>()) {
            let cat = Catalogue::bundled().unwrap();
            let t = &cat.tools()[tool % cat.tools().len()];
            let v = crate::generate::valid(&t.entry().input_schema, u64::from(n));
            prop_assert!(t.validate(&v).is_empty(), "{v}: {:?}", t.validate(&v));
        }

        #[test]
        fn violating_arguments_fail_validation(tool in 0usize..5, rule in select(RULES.to_vec()), n in any::<u16>()) {
            let cat = Catalogue::bundled().unwrap();
            let t = &cat.tools()[tool % cat.tools().len()];
            if let Some((v, at)) = crate::generate::violating(&t.entry().input_schema, rule, u64::from(n)) {
                prop_assert!(!t.validate(&v).is_empty(), "{rule:?} at {at}: {v}");
            }
        }
    }

    #[test]
    fn strategies_are_deterministic_per_seed() {
        let draw = || {
            let mut runner = TestRunner::deterministic();
            let s = valid_args(schemas().swap_remove(0));
            (0..8)
                .map(|_| s.new_tree(&mut runner).unwrap().current())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(), draw());
    }
}
