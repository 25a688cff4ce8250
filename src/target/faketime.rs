//! The `{faketime}` prefix: runs an external enforcer under libfaketime, its
//! clock sped up like the built-in one's.
//!
//! The built-in enforcer reads `O + (wall - O) * K` (`policy::ScaledClock`,
//! with the run's origin `O`).
//! libfaketime starts a process's clock at a given date and runs it K times
//! faster from there, so the harness hands it that same reading at start-up:
//! both kinds of enforcer then agree with the oracle's view of time, within
//! the few milliseconds it takes the process to start.

use std::time::Duration;

use crate::policy::Clock;

/// The prefix for speed `scale`: empty at 1, else `faketime -f '@DATE xK'`.
pub fn prefix(scale: f64) -> String {
    if scale == 1.0 {
        return String::new();
    }
    let start = super::scaled_clock(scale).now();
    let spec = format!("@{} x{scale}", utc(start));
    let quoted = shlex::try_quote(&spec).map_or_else(|_| spec.clone(), |q| q.into_owned());
    format!("faketime -f {quoted}")
}

/// `YYYY-MM-DD hh:mm:ss` in UTC, the form libfaketime reads.
fn utc(t: Duration) -> String {
    let secs = t.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(utc(Duration::ZERO), "1970-01-01 00:00:00");
        assert_eq!(
            utc(Duration::from_secs(1_767_225_600)),
            "2026-01-01 00:00:00"
        );
        assert_eq!(utc(Duration::from_secs(951_827_696)), "2000-02-29 12:34:56");
    }

    #[test]
    fn normal_speed_needs_no_prefix() {
        assert_eq!(prefix(1.0), "");
        let p = prefix(60.0);
        assert!(
            p.starts_with("faketime -f '@2") && p.ends_with(" x60'"),
            "{p}"
        );
    }
}
