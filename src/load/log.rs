//! The interval log of one bench phase: the artifact shards hand to
//! `gauntlet merge`.
//!
//! It is a plain HdrHistogram interval log (V2 histograms, deflated and
//! base64-encoded; values in nanoseconds, the max column in milliseconds), so
//! the usual HdrHistogram tools read it. Per interval and class it holds the
//! corrected histogram, tagged `allowed`/`denied`, and the uncorrected one,
//! tagged `allowed-uncorrected`/`denied-uncorrected`. One comment line,
//! `#gauntlet {…}`, carries what histograms cannot: the phase's counts and the
//! bench's settings ([`PhaseMeta`]). Other readers skip it as a comment.
//!
//! ```text
//! #gauntlet bench: target (builtin), shard 0/2
//! #gauntlet {"format":1,"version":"0.1.0","phase":"target",…}
//! #[StartTime: 1767225600.020 (seconds since epoch)]
//! #[BaseTime: 1767225600.020 (seconds since epoch)]
//! #[MaxValueDivisor: 1000000.000]
//! Tag=allowed,0.000,1.000,0.043,HISTFAAAAC…
//! ```

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::mix::{Class, Mix};
use super::recorder::histogram;
use crate::run::Shard;
use crate::target::Transport;

/// The version of the `#gauntlet` line's layout.
pub const FORMAT: u32 = 1;

/// Values are nanoseconds; the max column is written in milliseconds.
pub const MAX_VALUE_DIVISOR: f64 = 1_000_000.0;

const META_PREFIX: &str = "#gauntlet {";

/// The log's tag for a class's corrected or uncorrected histogram.
pub fn tag(class: Class, corrected: bool) -> &'static str {
    match (class, corrected) {
        (Class::Allowed, true) => "allowed",
        (Class::Denied, true) => "denied",
        (Class::Allowed, false) => "allowed-uncorrected",
        (Class::Denied, false) => "denied-uncorrected",
    }
}

fn untag(tag: &str) -> Option<(Class, bool)> {
    Class::ALL
        .into_iter()
        .flat_map(|c| [(c, true), (c, false)])
        .find(|(c, corrected)| self::tag(*c, *corrected) == tag)
}

/// How a class's answered calls ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    pub passed: u64,
    pub refused: u64,
}

impl Tally {
    pub fn calls(&self) -> u64 {
        self.passed + self.refused
    }

    pub fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.refused += other.refused;
    }
}

/// A phase's latency histograms, allowed and denied apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Hists {
    /// From each call's due time, indexed by [`Class::index`].
    pub corrected: [Histogram<u64>; 2],
    /// From each call's send time.
    pub uncorrected: [Histogram<u64>; 2],
}

impl Hists {
    /// Empty histograms with the bench's bounds.
    pub fn new() -> Result<Hists, super::LoadError> {
        let h = histogram()?;
        Ok(Hists {
            corrected: [h.clone(), h.clone()],
            uncorrected: [h.clone(), h],
        })
    }

    /// Adds `other` in, as `Histogram::add` does.
    pub fn add(&mut self, other: &Hists) -> Result<(), String> {
        let pairs = self
            .corrected
            .iter_mut()
            .zip(&other.corrected)
            .chain(self.uncorrected.iter_mut().zip(&other.uncorrected));
        for (into, from) in pairs {
            into.add(from).map_err(|e| format!("{e:?}"))?;
        }
        Ok(())
    }

    fn slot(&mut self, class: Class, corrected: bool) -> &mut Histogram<u64> {
        let set = if corrected {
            &mut self.corrected
        } else {
            &mut self.uncorrected
        };
        &mut set[class.index()]
    }
}

/// What a log says beside its histograms: the bench's settings and the
/// phase's counts, the parts a merge sums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseMeta {
    /// The layout's version, [`FORMAT`].
    pub format: u32,
    /// gauntlet's version.
    pub version: String,
    /// `target` or `baseline`.
    pub phase: String,
    pub target: String,
    pub transport: Transport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub mix: Mix,
    pub policy: String,
    pub allowed_tools: Vec<String>,
    pub denied_tools: Vec<String>,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Slices the phase ran in, taking turns with the other phases
    /// (`--rounds`); 1 when the phases ran one after another.
    #[serde(default = "one")]
    pub rounds: u32,
    pub connections: usize,
    pub lanes: usize,
    /// This log's own offered rate (its shard's share), for an open loop.
    pub offered_rate: Option<f64>,
    pub measured_s: f64,
    /// Calls the schedule had due in the measured window: what the
    /// achieved count is held against for the generator-bound flag.
    pub due_in_window: f64,
    pub sent: u64,
    pub completed: u64,
    pub measured: u64,
    pub unsent: u64,
    pub allowed: Tally,
    pub denied: Tally,
    pub transport_errors: u64,
    pub timeouts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn one() -> u32 {
    1
}

/// One phase's log, read back.
#[derive(Debug, Clone)]
pub struct PhaseLog {
    /// Where it came from, for messages.
    pub file: String,
    pub meta: PhaseMeta,
    /// The wall-clock start of the phase's schedule, since the epoch.
    pub started: Option<Duration>,
    /// Every interval of each tag, added up.
    pub hists: Hists,
}

/// A log that cannot be read or merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("reading `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("`{file}` line {line}: {message}")]
    Malformed {
        file: String,
        line: usize,
        message: String,
    },
    #[error("`{file}`: {message}")]
    Invalid { file: String, message: String },
    #[error("{0}")]
    Mismatch(String),
}

/// Interval lines kept while a phase runs: in memory up to this size, then
/// in a temporary file, so a day-long bench does not grow the process.
pub const SPOOL_IN_MEMORY: usize = 1 << 20;

/// A phase's interval lines as the recorder writes them.
pub struct Spool {
    file: tempfile::SpooledTempFile,
    /// The first write that failed: the log would have a hole, so it is
    /// refused rather than written.
    failed: Option<String>,
}

impl Default for Spool {
    fn default() -> Self {
        Spool {
            file: tempfile::SpooledTempFile::new(SPOOL_IN_MEMORY),
            failed: None,
        }
    }
}

impl Spool {
    pub fn append(&mut self, lines: &[u8]) {
        if self.failed.is_none()
            && let Err(e) = self.file.write_all(lines)
        {
            self.failed = Some(e.to_string());
        }
    }

    /// Whether the lines have left memory for a temporary file.
    pub fn on_disk(&self) -> bool {
        self.file.is_rolled()
    }

    /// Everything written so far.
    pub fn read_all(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// A finished phase's log: the header, known only at the end, and the
/// spooled interval lines behind it.
pub struct IntervalLog {
    head: Vec<u8>,
    body: Spool,
}

impl IntervalLog {
    /// Writes the whole log to `w`, streaming the intervals.
    pub fn write_to(&mut self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&self.head)?;
        self.body.file.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut self.body.file, w)?;
        w.flush()
    }

    /// The whole log in memory.
    pub fn to_vec(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }
}

/// [`write`] for interval lines already in memory, whole log out.
#[cfg(test)]
pub(crate) fn write_bytes(meta: &PhaseMeta, started: SystemTime, lines: &[u8]) -> Vec<u8> {
    let mut spool = Spool::default();
    spool.append(lines);
    let mut log = write(meta, started, spool).unwrap_or_else(|e| panic!("{e}"));
    log.to_vec().unwrap_or_else(|e| panic!("{e}"))
}

/// The whole log: a header ending in the `#gauntlet` line, then the
/// recorder's interval lines.
pub fn write(
    meta: &PhaseMeta,
    started: SystemTime,
    intervals: Spool,
) -> Result<IntervalLog, String> {
    if let Some(e) = &intervals.failed {
        return Err(format!("spooling the interval log: {e}"));
    }
    let json = serde_json::to_string(meta).map_err(|e| e.to_string())?;
    let mut label = format!("gauntlet bench: {} ({})", meta.phase, meta.target);
    if let Some(shard) = meta.shard {
        label.push_str(&format!(", shard {shard}"));
    }
    let mut log = Vec::new();
    IntervalLogWriterBuilder::new()
        .add_comment(&label)
        .add_comment(
            "values are nanoseconds; allowed/denied count from each call's due time \
             (corrected for coordinated omission), *-uncorrected from its send",
        )
        .add_comment(&format!("gauntlet {json}"))
        .with_start_time(started)
        .with_base_time(started)
        .with_max_value_divisor(MAX_VALUE_DIVISOR)
        .begin_log_with(&mut log, &mut V2DeflateSerializer::new())
        .map_err(|e| e.to_string())?;
    Ok(IntervalLog {
        head: log,
        body: intervals,
    })
}

/// Reads a log from a file.
pub fn read(path: &Path) -> Result<PhaseLog, MergeError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| MergeError::Read {
        path: file.clone(),
        source,
    })?;
    parse(&bytes, &file)
}

/// Reads a log; `file` names it in errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<PhaseLog, MergeError> {
    parse_keeping(bytes, file, None)
}

/// An interval as the log gives it: its offset from the start, its tag and
/// its histogram.
pub(super) type Kept = (Duration, String, Histogram<u64>);

/// [`parse`], keeping each interval too if `keep` is given.
pub(super) fn parse_keeping(
    bytes: &[u8],
    file: &str,
    mut keep: Option<&mut Vec<Kept>>,
) -> Result<PhaseLog, MergeError> {
    let mut meta = None;
    let mut started = None;
    let mut hists = Hists::new().map_err(|e| invalid(file, e.to_string()))?;
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let bad = |message: String| MergeError::Malformed {
            file: file.to_owned(),
            line: n,
            message,
        };
        if line.starts_with(META_PREFIX.as_bytes()) {
            // The JSON starts at the brace the prefix ends in.
            let json = &line[META_PREFIX.len() - 1..];
            if meta.is_some() {
                return Err(bad("a second `#gauntlet` line".into()));
            }
            let value: serde_json::Value = serde_json::from_slice(json)
                .map_err(|e| bad(format!("the `#gauntlet` line is not JSON: {e}")))?;
            // Checked first: another format may have other fields.
            let format = value.get("format").and_then(serde_json::Value::as_u64);
            if format != Some(u64::from(FORMAT)) {
                return Err(bad(format!(
                    "log format {} (this gauntlet reads format {FORMAT})",
                    format.map_or_else(|| "unknown".to_owned(), |f| f.to_string())
                )));
            }
            let m: PhaseMeta = serde_path_to_error::deserialize(value)
                .map_err(|e| bad(format!("the `#gauntlet` line: {e}")))?;
            meta = Some(m);
            continue;
        }
        if let Some(t) = add_line(&mut hists, line, keep.as_deref_mut()).map_err(bad)? {
            started = Some(t);
        }
    }
    let meta = meta.ok_or_else(|| {
        invalid(
            file,
            "no `#gauntlet {…}` line: not an interval log `gauntlet bench` wrote".into(),
        )
    })?;
    Ok(PhaseLog {
        file: file.to_owned(),
        meta,
        started,
        hists,
    })
}

/// Adds one line's histogram into `hists`, and to `keep` if given;
/// returns the start time a `StartTime` line gives.
fn add_line(
    hists: &mut Hists,
    line: &[u8],
    keep: Option<&mut Vec<Kept>>,
) -> Result<Option<Duration>, String> {
    match entry(line)? {
        Some(Entry::Start(t)) => Ok(Some(t)),
        Some(Entry::Interval {
            offset,
            tag,
            histogram,
        }) => {
            let (class, corrected) = untag(&tag).ok_or_else(|| {
                format!(
                    "unknown tag `{tag}`: a bench log tags allowed, denied, \
                     allowed-uncorrected and denied-uncorrected"
                )
            })?;
            hists
                .slot(class, corrected)
                .add(&histogram)
                .map_err(|e| format!("the histogram does not fit: {e:?}"))?;
            if let Some(keep) = keep {
                keep.push((offset, tag, histogram));
            }
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Adds up the interval lines alone, without the header.
#[cfg(test)]
pub(crate) fn parse_intervals(bytes: &[u8], file: &str) -> Result<Hists, MergeError> {
    let mut hists = Hists::new().map_err(|e| invalid(file, e.to_string()))?;
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        add_line(&mut hists, line, None).map_err(|message| MergeError::Malformed {
            file: file.to_owned(),
            line: i + 1,
            message,
        })?;
    }
    Ok(hists)
}

fn invalid(file: &str, message: String) -> MergeError {
    MergeError::Invalid {
        file: file.to_owned(),
        message,
    }
}

enum Entry {
    Start(Duration),
    Interval {
        /// From the log's base time.
        offset: Duration,
        tag: String,
        histogram: Histogram<u64>,
    },
}

/// One line through the crate's parser, so errors can name the line.
fn entry(line: &[u8]) -> Result<Option<Entry>, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut owned = line.to_vec();
    owned.push(b'\n');
    match IntervalLogIterator::new(&owned).next() {
        None => Ok(None),
        Some(Err(_)) => Err("not an interval-log line (a comment, a header or \
                             `Tag=…,start,length,max,histogram`)"
            .into()),
        Some(Ok(LogEntry::StartTime(t))) => Ok(Some(Entry::Start(t))),
        Some(Ok(LogEntry::BaseTime(_))) => Ok(None),
        Some(Ok(LogEntry::Interval(h))) => {
            let tag = h
                .tag()
                .map(|t| t.as_str().to_owned())
                .ok_or("an interval without a tag")?;
            let bytes = crate::mock::ledger::b64::decode(h.encoded_histogram())
                .ok_or("the histogram is not base64")?;
            let histogram = Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| format!("the histogram does not decode: {e:?}"))?;
            Ok(Some(Entry::Interval {
                offset: h.start_timestamp(),
                tag,
                histogram,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn meta() -> PhaseMeta {
        PhaseMeta {
            format: FORMAT,
            version: "0.0.0".into(),
            phase: "target".into(),
            target: "builtin".into(),
            transport: Transport::Stdio,
            shard: Some(Shard { index: 1, count: 2 }),
            mix: Mix::default(),
            policy: "bundled".into(),
            allowed_tools: vec!["a".into()],
            denied_tools: vec!["d".into()],
            warmup_s: 0.0,
            duration_s: 2.0,
            rounds: 1,
            connections: 1,
            lanes: 4,
            offered_rate: Some(100.0),
            measured_s: 2.0,
            due_in_window: 200.0,
            sent: 200,
            completed: 200,
            measured: 200,
            unsent: 0,
            allowed: Tally {
                passed: 140,
                refused: 0,
            },
            denied: Tally {
                passed: 0,
                refused: 60,
            },
            transport_errors: 0,
            timeouts: 0,
            message: None,
        }
    }

    fn interval_lines(values: &[(Class, bool, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        let mut w = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut out, &mut ser)
            .unwrap();
        for (class, corrected, ns) in values {
            let mut h = histogram().unwrap();
            h.record(*ns).unwrap();
            let tag = hdrhistogram::serialization::interval_log::Tag::new(tag(*class, *corrected));
            w.write_histogram(&h, Duration::ZERO, Duration::from_secs(1), tag)
                .unwrap();
        }
        out
    }

    #[test]
    fn a_log_reads_back_whole() {
        let started = SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_600_020);
        let lines = interval_lines(&[
            (Class::Allowed, true, 40_000),
            (Class::Allowed, false, 30_000),
            (Class::Denied, true, 20_000),
            (Class::Allowed, true, 50_000),
        ]);
        let log = write_bytes(&meta(), started, &lines);
        let back = parse(&log, "t.hlog").unwrap();
        assert_eq!(back.meta, meta());
        assert_eq!(back.started, Some(Duration::from_millis(1_767_225_600_020)));
        assert_eq!(back.hists.corrected[Class::Allowed.index()].len(), 2);
        assert_eq!(back.hists.uncorrected[Class::Allowed.index()].len(), 1);
        assert_eq!(back.hists.corrected[Class::Denied.index()].len(), 1);
        assert_eq!(back.hists.uncorrected[Class::Denied.index()].len(), 0);
        // The crate's own reader takes it too: the header is plain comments.
        let entries: Vec<_> = IntervalLogIterator::new(&log).collect();
        assert_eq!(entries.len(), 2 + 4);
        assert!(entries.iter().all(Result::is_ok));
    }

    #[test]
    fn a_long_phase_spools_its_intervals_to_disk_and_loses_none() {
        let line = b"Tag=allowed,0.000,1.000,0.040,HISTFAAAACR42pNpmSzMwMDAxgABzFCaEUzOmNZg/wEi0NIAQgA4iwV0\n";
        let mut spool = Spool::default();
        let mut want = Vec::new();
        while want.len() <= SPOOL_IN_MEMORY {
            spool.append(line);
            want.extend_from_slice(line);
        }
        assert!(spool.on_disk());
        assert_eq!(spool.read_all().unwrap(), want);
        let mut log = write(&meta(), SystemTime::now(), spool).unwrap();
        let whole = log.to_vec().unwrap();
        assert!(whole.ends_with(&want));
    }

    #[test]
    fn malformed_logs_name_the_file_and_line() {
        let good = write_bytes(&meta(), SystemTime::now(), &[]);
        let text = String::from_utf8(good).unwrap();
        let with = |extra: &str| format!("{text}{extra}");
        let lines = text.lines().count();
        let cases = [
            (with("Tag=allowed,0.0,1.0,0.1,@@@\n"), lines + 1, "base64"),
            (
                with("what is this\n"),
                lines + 1,
                "not an interval-log line",
            ),
            (with("Tag=other,0.0,1.0,0.1,HISTFAAA\n"), lines + 1, ""),
            (with("0.0,1.0,0.1,HISTFAAA\n"), lines + 1, ""),
            (
                text.replace("\"format\":1", "\"format\":9"),
                3,
                "log format 9",
            ),
            (text.replace("\"sent\":", "\"sent_\":"), 3, "sent_"),
            (
                with(&format!("#gauntlet {{\"format\":{FORMAT}}}\n")),
                lines + 1,
                "second",
            ),
        ];
        for (log, line, words) in cases {
            let e = parse(log.as_bytes(), "s.hlog").unwrap_err().to_string();
            assert!(e.starts_with(&format!("`s.hlog` line {line}: ")), "{e}");
            assert!(e.contains(words), "{e}");
        }
        let e = parse(b"#just a comment\n", "x.hlog")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`x.hlog`: no `#gauntlet"), "{e}");
    }
}
