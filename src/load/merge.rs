//! From counts and histograms to figures. One machine's phase (`gauntlet
//! bench`) and several shards' logs (`gauntlet merge`) go through the same
//! [`phase_report`] on summed parts, so a merge reads exactly as one machine
//! running the whole load would have: histograms are added, never their
//! percentiles averaged; counts and rates are summed; the generator-bound
//! flag is recomputed from the sums.

use std::collections::{BTreeMap, BTreeSet};

use super::log::{self, Hists, MergeError, PhaseLog, PhaseMeta};
use crate::run::{
    Added, BenchReport, ClassStats, Errors, LatencySeries, Merged, Percentiles, PhaseReport,
    SeriesKind,
};

/// The figures of a phase whose parts (one, or one per shard) are `parts`,
/// with `hists` their histograms added up.
pub fn phase_report(parts: &[&PhaseMeta], hists: &Hists) -> PhaseReport {
    let sum = |f: fn(&PhaseMeta) -> u64| parts.iter().map(|m| f(m)).sum::<u64>();
    let answered_in = |m: &PhaseMeta| m.allowed.calls() + m.denied.calls();
    let answered: u64 = parts.iter().map(|m| answered_in(m)).sum();
    // Each part's rate over its own window: the shards ran side by side.
    let achieved_rate = parts
        .iter()
        .map(|m| answered_in(m) as f64 / m.measured_s.max(1e-6))
        .sum();
    let offered_rate = parts
        .iter()
        .map(|m| m.offered_rate)
        .sum::<Option<f64>>()
        .filter(|_| !parts.is_empty());
    let due: f64 = parts.iter().map(|m| m.due_in_window).sum();
    let generator_bound = offered_rate.is_some() && due > 0.0 && (answered as f64) < 0.99 * due;
    let tally = |allowed: bool| {
        parts.iter().fold(log::Tally::default(), |mut t, m| {
            t.add(if allowed { m.allowed } else { m.denied });
            t
        })
    };
    let (allowed, denied) = (tally(true), tally(false));
    let first = parts.first();
    let name = first.map(|m| m.phase.clone()).unwrap_or_default();
    let reference = name != "target";
    let class = |t: log::Tally, i: usize| ClassStats {
        calls: t.calls(),
        passed: t.passed,
        refused: t.refused,
        corrected: Percentiles::of(&hists.corrected[i]),
        uncorrected: Percentiles::of(&hists.uncorrected[i]),
    };
    let mut all = hists.corrected[0].clone();
    let _ = all.add(&hists.corrected[1]);
    let series = [(SeriesKind::Allowed, 0), (SeriesKind::Denied, 1)]
        .into_iter()
        .filter(|(_, i)| !hists.corrected[*i].is_empty())
        .map(|(kind, i)| {
            let class = if i == 0 { "allowed" } else { "denied" };
            let label = if reference {
                format!("{name} {class}")
            } else {
                class.to_owned()
            };
            LatencySeries::of(&label, kind, reference, &hists.corrected[i])
        })
        .collect();
    PhaseReport {
        name,
        target: first.map(|m| m.target.clone()).unwrap_or_default(),
        transport: first.map_or(crate::target::Transport::Stdio, |m| m.transport),
        schedule: super::schedule::label(offered_rate),
        connections: parts.iter().map(|m| m.connections).sum(),
        lanes: parts.iter().map(|m| m.lanes).sum(),
        offered_rate,
        achieved_rate,
        measured_s: parts.iter().map(|m| m.measured_s).fold(0.0, f64::max),
        sent: sum(|m| m.sent),
        completed: sum(|m| m.completed),
        measured: sum(|m| m.measured),
        unsent: sum(|m| m.unsent),
        all: Percentiles::of(&all),
        allowed: class(allowed, 0),
        denied: class(denied, 1),
        errors: Errors {
            denied: allowed.refused,
            admitted: denied.passed,
            transport: sum(|m| m.transport_errors),
            timeout: sum(|m| m.timeouts),
        },
        generator_bound,
        series,
    }
}

const PHASES: [&str; 3] = ["target", "baseline", "relay"];

/// Merges phase logs (every shard's `target` log, and their `baseline` and
/// `relay` logs if any) into one report.
pub fn merge(logs: &[PhaseLog]) -> Result<BenchReport, MergeError> {
    let mut by_phase: BTreeMap<&str, Vec<&PhaseLog>> = BTreeMap::new();
    for l in logs {
        let phase = PHASES
            .into_iter()
            .find(|p| *p == l.meta.phase)
            .ok_or_else(|| MergeError::Invalid {
                file: l.file.clone(),
                message: format!("unknown phase `{}`", l.meta.phase),
            })?;
        by_phase.entry(phase).or_default().push(l);
    }
    let target = by_phase
        .get("target")
        .and_then(|g| g.first().map(|l| (g, l)));
    let Some((target, lead)) = target else {
        return Err(MergeError::Mismatch(
            "no `target` phase among the logs".into(),
        ));
    };
    let lead = &lead.meta;
    let mut shards = None;
    let (mut target_report, mut baseline_report, mut relay_report) = (None, None, None);
    for (phase, group) in &by_phase {
        let count = check_shards(phase, group)?;
        if let Some(n) = shards
            && n != count
        {
            return Err(MergeError::Mismatch(format!(
                "the phases were split into different numbers of shards ({n} and {count})"
            )));
        }
        shards = Some(count);
        let mut hists = Hists::new().map_err(|e| MergeError::Mismatch(e.to_string()))?;
        for l in group {
            agree(lead, l, &group[0].meta)?;
            hists.add(&l.hists).map_err(|e| MergeError::Invalid {
                file: l.file.clone(),
                message: format!("its histograms do not add: {e}"),
            })?;
        }
        let metas: Vec<&PhaseMeta> = group.iter().map(|l| &l.meta).collect();
        let report = phase_report(&metas, &hists);
        match *phase {
            "target" => target_report = Some(report),
            "baseline" => baseline_report = Some(report),
            _ => relay_report = Some(report),
        }
    }
    let starts: Vec<f64> = target
        .iter()
        .filter_map(|l| l.started.map(|d| d.as_secs_f64()))
        .collect();
    let spread = match (
        starts.iter().copied().reduce(f64::max),
        starts.iter().copied().reduce(f64::min),
    ) {
        (Some(hi), Some(lo)) => hi - lo,
        _ => 0.0,
    };
    let notes: BTreeSet<String> = logs
        .iter()
        .filter_map(|l| {
            let m = &l.meta;
            m.message.as_ref().map(|msg| match m.shard {
                Some(s) => format!("shard {s}, {}: {msg}", m.phase),
                None => format!("{}: {msg}", m.phase),
            })
        })
        .collect();
    let Some(target) = target_report else {
        return Err(MergeError::Mismatch(
            "no `target` phase among the logs".into(),
        ));
    };
    let baseline = baseline_report;
    Ok(BenchReport {
        version: lead.version.clone(),
        mix: lead.mix,
        policy: lead.policy.clone(),
        allowed_tools: lead.allowed_tools.clone(),
        denied_tools: lead.denied_tools.clone(),
        warmup_s: lead.warmup_s,
        duration_s: lead.duration_s,
        rounds: lead.rounds,
        generator_threads: None,
        shard: None,
        merged: Some(Merged {
            shards: shards.unwrap_or(1),
            start_spread_s: spread,
        }),
        added: baseline.as_ref().map(|b| Added::between(&target, b)),
        over_relay: relay_report.as_ref().map(|r| Added::between(&target, r)),
        target,
        baseline,
        relay: relay_report,
        message: (!notes.is_empty()).then(|| notes.into_iter().collect::<Vec<_>>().join("; ")),
    })
}

/// The number of shards a phase's logs make up: one unsharded log, or
/// every index of `0..n` exactly once.
fn check_shards(phase: &str, group: &[&PhaseLog]) -> Result<u32, MergeError> {
    let unsharded: Vec<&str> = group
        .iter()
        .filter(|l| l.meta.shard.is_none())
        .map(|l| l.file.as_str())
        .collect();
    if !unsharded.is_empty() {
        if group.len() > 1 {
            return Err(MergeError::Mismatch(format!(
                "phase `{phase}`: `{}` is a whole run, not a shard, and cannot be merged with \
                 other logs (run each part with `--shard i/n`)",
                unsharded.join("`, `")
            )));
        }
        return Ok(1);
    }
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    let mut count = None;
    for l in group {
        let Some(s) = l.meta.shard else { continue };
        if count.is_some_and(|n| n != s.count) {
            return Err(MergeError::Mismatch(format!(
                "phase `{phase}`: `{}` is shard {s}, but other logs split the load {} ways",
                l.file,
                count.unwrap_or(s.count)
            )));
        }
        count = Some(s.count);
        if let Some(other) = seen.insert(s.index, &l.file) {
            return Err(MergeError::Mismatch(format!(
                "phase `{phase}`: `{other}` and `{}` are both shard {s}",
                l.file
            )));
        }
    }
    let n = count.unwrap_or(1);
    let missing: Vec<String> = (0..n)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Mismatch(format!(
            "phase `{phase}`: shard(s) {} missing; a merge of part of the load would not read \
             as the whole",
            missing.join(", ")
        )));
    }
    Ok(n)
}

/// Logs that merge must describe the same bench: settings across every
/// log, and the target within a phase.
fn agree(lead: &PhaseMeta, l: &PhaseLog, phase_lead: &PhaseMeta) -> Result<(), MergeError> {
    let m = &l.meta;
    let differ = |what: &str| {
        Err(MergeError::Mismatch(format!(
            "`{}` differs from the other logs in its {what}: shards must run the same bench",
            l.file
        )))
    };
    if m.mix != lead.mix {
        return differ("mix");
    }
    if m.policy != lead.policy
        || m.allowed_tools != lead.allowed_tools
        || m.denied_tools != lead.denied_tools
    {
        return differ("policy");
    }
    if m.warmup_s != lead.warmup_s || m.duration_s != lead.duration_s || m.rounds != lead.rounds {
        return differ("warm-up, duration or rounds");
    }
    if m.target != phase_lead.target || m.transport != phase_lead.transport {
        return differ("target or transport");
    }
    if m.offered_rate.is_some() != phase_lead.offered_rate.is_some() {
        return differ("schedule (open or closed loop)");
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, SystemTime};

    use hdrhistogram::Histogram;
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    use proptest::prelude::*;

    use super::*;
    use crate::load::Class;
    use crate::load::log::{FORMAT, Tally};
    use crate::run::Shard;
    use crate::target::Transport;

    pub(crate) fn meta(shard: Option<Shard>) -> PhaseMeta {
        PhaseMeta {
            format: FORMAT,
            version: "0.0.0".into(),
            phase: "target".into(),
            target: "builtin".into(),
            transport: Transport::Stdio,
            shard,
            mix: crate::load::Mix::default(),
            policy: "bundled".into(),
            allowed_tools: vec!["a".into()],
            denied_tools: vec!["d".into()],
            warmup_s: 0.0,
            duration_s: 2.0,
            rounds: 1,
            connections: 1,
            lanes: 4,
            offered_rate: Some(50.0),
            measured_s: 2.0,
            due_in_window: 100.0,
            sent: 100,
            completed: 100,
            measured: 100,
            unsent: 0,
            allowed: Tally {
                passed: 70,
                refused: 0,
            },
            denied: Tally {
                passed: 0,
                refused: 30,
            },
            transport_errors: 0,
            timeouts: 0,
            message: None,
        }
    }

    /// A shard's values as `[corrected, uncorrected]` × `[allowed, denied]`.
    pub(crate) type Values = [[Vec<u64>; 2]; 2];

    /// Writes `values` as a log of `intervals` intervals, reads it back,
    /// and returns it with the histograms the values make in memory.
    fn shard_log(m: PhaseMeta, values: &Values, intervals: usize) -> (PhaseLog, Hists) {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let (text, whole) = shard_text(m, values, intervals, start);
        (log::parse(&text, "shard.hlog").unwrap(), whole)
    }

    /// `values` as the text of a log of one-second intervals from `start`,
    /// and the histograms the values make in memory.
    pub(crate) fn shard_text(
        m: PhaseMeta,
        values: &Values,
        intervals: usize,
        start: SystemTime,
    ) -> (Vec<u8>, Hists) {
        let mut whole = Hists::new().unwrap();
        let mut lines = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        let mut w = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut lines, &mut ser)
            .unwrap();
        for k in 0..intervals {
            for class in Class::ALL {
                for corrected in [true, false] {
                    let all = &values[usize::from(!corrected)][class.index()];
                    let mut h = crate::load::recorder::histogram().unwrap();
                    for v in all.iter().skip(k).step_by(intervals) {
                        h.record(*v).unwrap();
                    }
                    let into = if corrected {
                        &mut whole.corrected
                    } else {
                        &mut whole.uncorrected
                    };
                    into[class.index()].add(&h).unwrap();
                    let at = Duration::from_secs(k as u64);
                    let tag = Tag::new(log::tag(class, corrected));
                    w.write_histogram(&h, at, Duration::from_secs(1), tag)
                        .unwrap();
                }
            }
        }
        (log::write_bytes(&m, start, &lines), whole)
    }

    fn added(a: &Histogram<u64>, b: &Histogram<u64>) -> Histogram<u64> {
        let mut sum = a.clone();
        sum.add(b).unwrap();
        sum
    }

    fn spread(seed: u64, n: usize) -> Vec<u64> {
        // Latencies from 1 µs to seconds, with a heavy tail.
        (0..n as u64)
            .map(|i| {
                let x = (i * 2_654_435_761 + seed * 97) % 1_000_003;
                1_000 + x * x / 30
            })
            .collect()
    }

    pub(crate) fn values(seed: u64) -> Values {
        [
            [spread(seed, 700), spread(seed + 1, 300)],
            [spread(seed + 2, 700), spread(seed + 3, 300)],
        ]
    }

    #[test]
    fn two_shards_merge_as_their_histograms_add() {
        let shard = |i| Some(Shard { index: i, count: 2 });
        let (a, ha) = shard_log(meta(shard(0)), &values(1), 3);
        let mut m = meta(shard(1));
        // Shard 1 achieved 98 of its 100 due calls: bound alone; the pair
        // achieved 198 of 200, which is not under 99 %.
        m.allowed.passed = 68;
        m.sent = 98;
        let (b, hb) = shard_log(m, &values(5), 2);
        let r = merge(&[a, b]).unwrap();
        let t = &r.target;
        for class in Class::ALL {
            let i = class.index();
            let stats = if class == Class::Allowed {
                &t.allowed
            } else {
                &t.denied
            };
            let corrected = added(&ha.corrected[i], &hb.corrected[i]);
            let uncorrected = added(&ha.uncorrected[i], &hb.uncorrected[i]);
            assert_eq!(stats.corrected, Percentiles::of(&corrected));
            assert_eq!(stats.uncorrected, Percentiles::of(&uncorrected));
        }
        let all = added(
            &added(&ha.corrected[0], &hb.corrected[0]),
            &added(&ha.corrected[1], &hb.corrected[1]),
        );
        assert_eq!(t.all, Percentiles::of(&all));
        assert_eq!(t.series.iter().map(|s| s.count()).sum::<u64>(), all.len());
        assert_eq!((t.sent, t.allowed.calls, t.denied.calls), (198, 138, 60));
        assert_eq!(t.offered_rate, Some(100.0));
        assert_eq!(t.schedule, "open loop at 100/s");
        assert_eq!(t.achieved_rate, 50.0 + 49.0);
        assert_eq!((t.connections, t.lanes), (2, 8));
        assert!(!t.generator_bound);
        assert_eq!(
            r.merged,
            Some(Merged {
                shards: 2,
                start_spread_s: 0.0
            })
        );
        assert_eq!(
            (r.shard, r.baseline.is_none(), r.added.is_none()),
            (None, true, true)
        );
    }

    #[test]
    fn one_machine_reads_the_same_through_the_merge() {
        let (log, whole) = shard_log(meta(None), &values(9), 4);
        let alone = phase_report(&[&log.meta], &whole);
        let merged = merge(std::slice::from_ref(&log)).unwrap();
        assert_eq!(merged.target, alone);
        assert_eq!(merged.merged.map(|m| m.shards), Some(1));
    }

    #[test]
    fn the_generator_bound_flag_comes_from_the_sums() {
        let shard = |i| Some(Shard { index: i, count: 2 });
        let short = |i| {
            let mut m = meta(shard(i));
            m.allowed.passed = 65;
            m
        };
        let (a, _) = shard_log(short(0), &values(1), 1);
        let (b, _) = shard_log(short(1), &values(2), 1);
        assert!(merge(&[a, b]).unwrap().target.generator_bound);
    }

    #[test]
    fn baselines_merge_too_and_give_the_added_latency() {
        let shard = |i| Some(Shard { index: i, count: 2 });
        let base = |i| {
            let mut m = meta(shard(i));
            m.phase = "baseline".into();
            m.target = "none".into();
            m
        };
        let logs = [
            shard_log(meta(shard(0)), &values(1), 1).0,
            shard_log(base(1), &values(2), 1).0,
            shard_log(meta(shard(1)), &values(3), 1).0,
            shard_log(base(0), &values(4), 1).0,
        ];
        let r = merge(&logs).unwrap();
        let b = r.baseline.as_ref().unwrap();
        assert_eq!(
            (r.target.name.as_str(), b.name.as_str()),
            ("target", "baseline")
        );
        assert!(
            b.series
                .iter()
                .all(|s| s.baseline && s.label.starts_with("baseline "))
        );
        assert_eq!(r.added, Some(Added::between(&r.target, b)));
        assert!(r.relay.is_none() && r.over_relay.is_none());
    }

    #[test]
    fn relay_phases_merge_too_and_give_what_the_target_adds_over_them() {
        let shard = |i| Some(Shard { index: i, count: 2 });
        let relay = |i| {
            let mut m = meta(shard(i));
            m.phase = "relay".into();
            m.target = "cmd: {gauntlet} relay -- {upstream}".into();
            m
        };
        let logs = [
            shard_log(meta(shard(0)), &values(1), 1).0,
            shard_log(relay(1), &values(2), 1).0,
            shard_log(meta(shard(1)), &values(3), 1).0,
            shard_log(relay(0), &values(4), 1).0,
        ];
        let r = merge(&logs).unwrap();
        let relayed = r.relay.as_ref().unwrap();
        assert_eq!(relayed.name, "relay");
        assert!(r.baseline.is_none() && r.added.is_none());
        assert!(
            relayed
                .series
                .iter()
                .all(|s| s.baseline && s.label.starts_with("relay "))
        );
        assert_eq!(r.over_relay, Some(Added::between(&r.target, relayed)));
        let phases: Vec<&str> = r.phases().map(|p| p.name.as_str()).collect();
        assert_eq!(phases, ["target", "relay"]);
    }

    #[test]
    fn a_merge_refuses_a_partial_or_mixed_set_of_shards() {
        let v = values(1);
        let log = |m: PhaseMeta| shard_log(m, &v, 1).0;
        let of = |i, n| Some(Shard { index: i, count: n });
        let err = |logs: Vec<PhaseLog>| merge(&logs).unwrap_err().to_string();
        assert!(err(vec![log(meta(of(0, 3))), log(meta(of(2, 3)))]).contains("1/3 missing"));
        assert!(err(vec![log(meta(of(0, 2))), log(meta(of(0, 2)))]).contains("both shard 0/2"));
        assert!(err(vec![log(meta(of(0, 2))), log(meta(of(1, 3)))]).contains("2 ways"));
        assert!(err(vec![log(meta(None)), log(meta(of(0, 2)))]).contains("whole run"));
        let mut other = meta(of(1, 2));
        other.duration_s = 3.0;
        assert!(err(vec![log(meta(of(0, 2))), log(other)]).contains("duration"));
        let mut closed = meta(of(1, 2));
        closed.offered_rate = None;
        assert!(err(vec![log(meta(of(0, 2))), log(closed)]).contains("schedule"));
        let mut base = meta(None);
        base.phase = "baseline".into();
        assert!(err(vec![log(base)]).contains("no `target` phase"));
        let mut odd = meta(None);
        odd.phase = "warmup".into();
        assert!(err(vec![log(odd)]).contains("unknown phase `warmup`"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the values and however they fall into intervals and
        /// shards, the merged percentiles are those of the added histograms.
        #[test]
        fn merged_percentiles_are_those_of_the_added_histograms(
            shards in proptest::collection::vec(
                (proptest::collection::vec(1_000u64..60_000_000_000, 1..120), 1usize..4),
                1..4,
            )
        ) {
            let n = shards.len() as u32;
            let mut logs = Vec::new();
            let mut expected: Option<Histogram<u64>> = None;
            for (i, (vals, intervals)) in shards.iter().enumerate() {
                let values: Values = [[vals.clone(), Vec::new()], [vals.clone(), Vec::new()]];
                let shard = (n > 1).then_some(Shard { index: i as u32, count: n });
                let (log, whole) = shard_log(meta(shard), &values, *intervals);
                expected = Some(match expected {
                    Some(e) => added(&e, &whole.corrected[0]),
                    None => whole.corrected[0].clone(),
                });
                logs.push(log);
            }
            let r = merge(&logs).unwrap();
            let expected = Percentiles::of(&expected.unwrap());
            prop_assert_eq!(r.target.allowed.corrected, expected);
            prop_assert_eq!(r.target.allowed.uncorrected, expected);
        }
    }
}
