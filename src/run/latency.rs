//! Latency distributions in the shape reporters draw them: `(µs, count)`
//! pairs, filled from a bench's histograms ([`LatencySeries::of`]) and
//! carried in each phase of [`super::BenchReport`].

use serde::{Deserialize, Serialize};

/// Which calls a latency series measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesKind {
    Allowed,
    Denied,
    Other,
}

/// One latency distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySeries {
    pub label: String,
    pub kind: SeriesKind,
    /// Measured straight at the mock, the baseline the enforcer is compared with.
    #[serde(default)]
    pub baseline: bool,
    /// `(value in microseconds, count)` pairs, ascending by value.
    pub buckets: Vec<(u64, u64)>,
}

impl LatencySeries {
    /// How many samples the series holds.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|(_, n)| n).sum()
    }

    /// The smallest recorded value with at least `q` of the samples at or
    /// below it (`q` in 0..=1); `None` for an empty series.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (value, n) in &self.buckets {
            seen += n;
            if seen >= want {
                return Some(*value);
            }
        }
        self.buckets.last().map(|(v, _)| *v)
    }

    /// The largest recorded value.
    pub fn max(&self) -> Option<u64> {
        self.buckets
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(v, _)| *v)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(buckets: Vec<(u64, u64)>) -> LatencySeries {
        LatencySeries {
            label: "allowed".into(),
            kind: SeriesKind::Allowed,
            baseline: false,
            buckets,
        }
    }

    #[test]
    fn quantiles_walk_the_counts() {
        let s = series(vec![(10, 50), (20, 40), (100, 9), (5000, 1)]);
        assert_eq!(s.count(), 100);
        assert_eq!(s.quantile(0.5), Some(10));
        assert_eq!(s.quantile(0.51), Some(20));
        assert_eq!(s.quantile(0.9), Some(20));
        assert_eq!(s.quantile(0.99), Some(100));
        assert_eq!(s.quantile(0.999), Some(5000));
        assert_eq!(s.quantile(0.0), Some(10));
        assert_eq!(s.max(), Some(5000));
    }

    #[test]
    fn an_empty_series_has_no_quantiles() {
        let s = series(Vec::new());
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.max(), None);
    }
}
