//! A phase's timeline: the interval lines of its log, written by the
//! recorder once a second, and the intervals of several shards' logs
//! merged by wall-clock second into one log (`gauntlet merge --out DIR`),
//! which HdrHistogram tools then plot as if one machine had sent the
//! whole load.

use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::log::{self, IntervalLog, MergeError, PhaseLog, PhaseMeta, Spool, Tally};

/// How long a merged interval lasts: the recorder's interval.
const BUCKET: Duration = super::recorder::INTERVAL;

/// Appends one interval's lines to `out`: a `Tag=…` line per histogram.
/// Empty histograms are left out.
pub fn write_interval(
    out: &mut Vec<u8>,
    serializer: &mut V2DeflateSerializer,
    offset: Duration,
    length: Duration,
    hists: &[(&str, &Histogram<u64>)],
) -> Result<(), String> {
    // The crate's writer always starts with the divisor's header line; the
    // log's real header is written once, in front, at the end, so the
    // interval is written on its own and that line cut off.
    let mut scratch = Vec::new();
    {
        let mut w = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(log::MAX_VALUE_DIVISOR)
            .begin_log_with(&mut scratch, serializer)
            .map_err(|e| e.to_string())?;
        for (tag, h) in hists.iter().filter(|(_, h)| !h.is_empty()) {
            let tag = Tag::new(tag).ok_or_else(|| format!("`{tag}` is not a log tag"))?;
            w.write_histogram(h, offset, length, Some(tag))
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    let header = scratch
        .iter()
        .position(|b| *b == b'\n')
        .map_or(scratch.len(), |i| i + 1);
    out.extend_from_slice(&scratch[header..]);
    Ok(())
}

/// One interval line of a log, placed on the wall clock.
pub struct Interval {
    /// When it began, since the epoch.
    pub at: Duration,
    pub tag: String,
    pub histogram: Histogram<u64>,
}

/// Reads a log and also each of its intervals, placed on the wall clock:
/// what merging shards' timelines needs.
pub fn parse_timeline(bytes: &[u8], file: &str) -> Result<(PhaseLog, Vec<Interval>), MergeError> {
    let mut kept = Vec::new();
    let log = log::parse_keeping(bytes, file, Some(&mut kept))?;
    let start = log.started.unwrap_or_default();
    let intervals = kept
        .into_iter()
        .map(|(offset, tag, histogram)| Interval {
            at: start + offset,
            tag,
            histogram,
        })
        .collect();
    Ok((log, intervals))
}

/// The counts of several shards' logs of one phase, as one log would say
/// them: sums, and a measured time that gives the summed rate (each shard's
/// rate counts over its own window, as in the merged report).
fn merged_meta(parts: &[&PhaseMeta]) -> Option<PhaseMeta> {
    let first = parts.first()?;
    let sum = |f: fn(&PhaseMeta) -> u64| parts.iter().map(|m| f(m)).sum::<u64>();
    let tally = |f: fn(&PhaseMeta) -> Tally| {
        parts.iter().fold(Tally::default(), |mut t, m| {
            t.add(f(m));
            t
        })
    };
    let answered = |m: &PhaseMeta| m.allowed.calls() + m.denied.calls();
    let rate: f64 = parts
        .iter()
        .map(|m| answered(m) as f64 / m.measured_s.max(1e-6))
        .sum();
    let total = sum(answered) as f64;
    let notes: Vec<&str> = parts.iter().filter_map(|m| m.message.as_deref()).collect();
    Some(PhaseMeta {
        shard: None,
        connections: parts.iter().map(|m| m.connections).sum(),
        lanes: parts.iter().map(|m| m.lanes).sum(),
        offered_rate: parts.iter().map(|m| m.offered_rate).sum(),
        measured_s: if rate > 0.0 {
            total / rate
        } else {
            first.measured_s
        },
        due_in_window: parts.iter().map(|m| m.due_in_window).sum(),
        sent: sum(|m| m.sent),
        completed: sum(|m| m.completed),
        measured: sum(|m| m.measured),
        unsent: sum(|m| m.unsent),
        allowed: tally(|m| m.allowed),
        denied: tally(|m| m.denied),
        transport_errors: sum(|m| m.transport_errors),
        timeouts: sum(|m| m.timeouts),
        message: (!notes.is_empty()).then(|| notes.join("; ")),
        ..(*first).clone()
    })
}

/// One merged log per phase of `logs` (each read with its intervals):
/// every interval goes to the second, counted from the phase's earliest
/// start, in which it began, and the histograms of a second add up per
/// tag. The counts in the header are the shards' sums, so the merged log
/// reads back (`gauntlet merge` of it alone) to the merged report.
pub fn merge_logs(
    logs: &[(PhaseLog, Vec<Interval>)],
) -> Result<Vec<(String, IntervalLog)>, MergeError> {
    let mut phases: Vec<&str> = Vec::new();
    for (log, _) in logs {
        if !phases.contains(&log.meta.phase.as_str()) {
            phases.push(&log.meta.phase);
        }
    }
    let mut out = Vec::new();
    for phase in phases {
        let group: Vec<&(PhaseLog, Vec<Interval>)> =
            logs.iter().filter(|(l, _)| l.meta.phase == phase).collect();
        let metas: Vec<&PhaseMeta> = group.iter().map(|(l, _)| &l.meta).collect();
        let Some(meta) = merged_meta(&metas) else {
            continue;
        };
        let invalid = |message: String| MergeError::Invalid {
            file: format!("{phase}.hlog"),
            message,
        };
        let start = group
            .iter()
            .flat_map(|(l, intervals)| l.started.into_iter().chain(intervals.iter().map(|i| i.at)))
            .min()
            .unwrap_or_default();
        // Seconds in order, and per second the tags in the order first seen.
        let mut buckets: std::collections::BTreeMap<u64, Vec<(String, Histogram<u64>)>> =
            std::collections::BTreeMap::new();
        for interval in group.iter().flat_map(|(_, i)| i) {
            let second = interval.at.saturating_sub(start).as_secs() / BUCKET.as_secs().max(1);
            let slots = buckets.entry(second).or_default();
            match slots.iter_mut().find(|(t, _)| *t == interval.tag) {
                Some((_, h)) => h
                    .add(&interval.histogram)
                    .map_err(|e| invalid(format!("adding a histogram: {e:?}")))?,
                None => slots.push((interval.tag.clone(), interval.histogram.clone())),
            }
        }
        let mut lines = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        for (second, slots) in &buckets {
            let hists: Vec<(&str, &Histogram<u64>)> =
                slots.iter().map(|(t, h)| (t.as_str(), h)).collect();
            write_interval(
                &mut lines,
                &mut serializer,
                BUCKET * u32::try_from(*second).unwrap_or(u32::MAX),
                BUCKET,
                &hists,
            )
            .map_err(invalid)?;
        }
        let mut spool = Spool::default();
        spool.append(&lines);
        let started = SystemTime::UNIX_EPOCH + start;
        let log = log::write(&meta, started, spool).map_err(invalid)?;
        out.push((format!("{phase}.hlog"), log));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::merge::merge;
    use crate::load::merge::tests::{meta, shard_text, values};
    use crate::run::Shard;

    /// Two shards that started 0.4 s apart, three seconds each: the merged
    /// log holds every value once, spreads them over the seconds the
    /// shards ran in, and reads back to the same report as the shards.
    #[test]
    fn shards_merge_second_by_second_into_one_log() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let mut read = Vec::new();
        let mut whole = log::Hists::new().unwrap();
        for (i, start) in [(0, t0), (1, t0 + Duration::from_millis(400))] {
            let shard = Some(Shard { index: i, count: 2 });
            let (text, hists) = shard_text(meta(shard), &values(u64::from(i)), 3, start);
            whole.add(&hists).unwrap();
            read.push(parse_timeline(&text, "shard.hlog").unwrap());
        }
        let shards: Vec<PhaseLog> = read.iter().map(|(l, _)| l.clone()).collect();
        let by_shards = merge(&shards).unwrap();

        let mut merged = merge_logs(&read).unwrap();
        assert_eq!(merged.len(), 1);
        let (name, log) = &mut merged[0];
        assert_eq!(name, "target.hlog");
        let text = log.to_vec().unwrap();
        let (back, intervals) = parse_timeline(&text, "target.hlog").unwrap();
        assert_eq!(back.hists, whole);
        assert_eq!(
            back.started,
            Some(t0.duration_since(SystemTime::UNIX_EPOCH).unwrap())
        );
        assert_eq!(back.meta.shard, None);
        assert_eq!(back.meta.sent, 200);
        // Seconds 0, 1 and 2 from t0; shard 1's intervals began 0.4 s into
        // each, so they land in the same seconds; four tags a second.
        let seconds: std::collections::BTreeSet<u64> = intervals
            .iter()
            .map(|i| (i.at - back.started.unwrap()).as_secs())
            .collect();
        assert_eq!(seconds.into_iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(intervals.len(), 3 * 4);

        let by_log = merge(&[back]).unwrap();
        assert_eq!(by_log.target.allowed, by_shards.target.allowed);
        assert_eq!(by_log.target.denied, by_shards.target.denied);
        assert_eq!(by_log.target.sent, by_shards.target.sent);
        let (a, b) = (by_log.target.achieved_rate, by_shards.target.achieved_rate);
        assert!((a - b).abs() < 1e-6 * b, "{a} {b}");
        assert_eq!(by_log.target.offered_rate, by_shards.target.offered_rate);
        assert_eq!(
            by_log.target.generator_bound,
            by_shards.target.generator_bound
        );
    }
}
