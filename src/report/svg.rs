//! Inline SVG charts for the HTML pages: no script, no external assets, so a
//! saved page draws the same anywhere. Bars for what a run measures per
//! scenario; a latency histogram and a percentile curve for load runs, each
//! taking `(value in µs, count)` pairs as histograms record them.

use std::fmt::Write;

use super::html::esc;

const WIDTH: f64 = 760.0;

/// One bar of a bar chart.
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Fill colour.
    pub color: &'static str,
    /// Hover text.
    pub note: String,
}

/// One latency distribution to draw.
pub struct Plot<'a> {
    pub label: &'a str,
    pub color: &'static str,
    /// Drawn dashed: the baseline the others are compared with.
    pub dashed: bool,
    /// `(value in µs, count)`, ascending by value.
    pub points: &'a [(u64, u64)],
}

/// A decade for an axis: `1 µs`, `100 µs`, `10 ms`, `1 s`.
fn fmt_decade(us: f64) -> String {
    let (v, unit) = if us < 1000.0 {
        (us, "µs")
    } else if us < 1_000_000.0 {
        (us / 1000.0, "ms")
    } else {
        (us / 1_000_000.0, "s")
    };
    format!("{v:.0} {unit}")
}

fn open(out: &mut String, title: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{t}"><title>{t}</title><text x="8" y="18" class="chart-title">{t}</text>"#,
        t = esc(title)
    );
}

fn empty(title: &str, why: &str) -> String {
    let mut out = String::new();
    open(&mut out, title, 60.0);
    let _ = write!(
        out,
        r#"<text x="8" y="44" class="chart-empty">{}</text></svg>"#,
        esc(why)
    );
    out
}

/// Horizontal bars, one row per item, with the value written at the end.
pub fn bar_chart(title: &str, unit: &str, bars: &[Bar]) -> String {
    if bars.is_empty() {
        return empty(title, "nothing to draw");
    }
    let label_w = 230.0;
    // A full catalogue has ~90 scenarios: keep the chart a scroll, not a wall.
    let row = if bars.len() > 40 { 14.0 } else { 20.0 };
    let top = 30.0;
    let plot_w = WIDTH - label_w - 90.0;
    let height = top + row * bars.len() as f64 + 10.0;
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let mut out = String::new();
    open(&mut out, title, height);
    for (i, b) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let w = if max > 0.0 {
            (b.value / max * plot_w).max(if b.value > 0.0 { 1.0 } else { 0.0 })
        } else {
            0.0
        };
        let _ = write!(
            out,
            r#"<g class="bar"><title>{note}</title><text x="{lx}" y="{ty}" text-anchor="end" class="bar-label">{label}</text><rect x="{label_w}" y="{ry}" width="{w:.1}" height="{h}" fill="{color}"/><text x="{vx:.1}" y="{ty}" class="bar-value">{value} {unit}</text></g>"#,
            note = esc(&b.note),
            lx = label_w - 6.0,
            ty = y + row * 0.65 + 0.5,
            label = esc(&super::md::shorten(&b.label, 34)),
            ry = y + 2.0,
            h = row - 5.0,
            color = b.color,
            vx = label_w + w + 4.0,
            value = trim_float(b.value),
            unit = esc(unit),
        );
    }
    out.push_str("</svg>");
    out
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn new(height: f64) -> Frame {
        Frame {
            left: 70.0,
            right: WIDTH - 45.0,
            top: 30.0,
            bottom: height - 60.0,
        }
    }
    fn x(&self, t: f64) -> f64 {
        self.left + t.clamp(0.0, 1.0) * (self.right - self.left)
    }
    fn y(&self, t: f64) -> f64 {
        self.bottom - t.clamp(0.0, 1.0) * (self.bottom - self.top)
    }
    fn axes(&self, out: &mut String) {
        let _ = write!(
            out,
            r#"<path d="M{l} {t}V{b}H{r}" class="axis" fill="none"/>"#,
            l = self.left,
            t = self.top,
            b = self.bottom,
            r = self.right
        );
    }
    fn x_tick(&self, out: &mut String, t: f64, label: &str) {
        let x = self.x(t);
        let _ = write!(
            out,
            r#"<path d="M{x:.1} {b}v4" class="axis"/><text x="{x:.1}" y="{ly}" text-anchor="middle" class="tick">{label}</text>"#,
            b = self.bottom,
            ly = self.bottom + 16.0,
            label = esc(label)
        );
    }
    fn y_tick(&self, out: &mut String, t: f64, label: &str) {
        let y = self.y(t);
        let _ = write!(
            out,
            r#"<path d="M{l} {y:.1}h-4" class="axis"/><path d="M{l} {y:.1}H{r}" class="grid"/><text x="{lx}" y="{ty:.1}" text-anchor="end" class="tick">{label}</text>"#,
            l = self.left,
            r = self.right,
            lx = self.left - 6.0,
            ty = y + 4.0,
            label = esc(label)
        );
    }
    fn legend(&self, out: &mut String, plots: &[Plot]) {
        let mut x = self.left;
        let y = self.bottom + 40.0;
        for p in plots {
            let _ = write!(
                out,
                r#"<path d="M{x} {ly}h18" stroke="{c}" stroke-width="2.5"{dash}/><text x="{tx}" y="{y}" class="legend">{label}</text>"#,
                ly = y - 4.0,
                c = p.color,
                dash = dash(p.dashed),
                tx = x + 24.0,
                label = esc(p.label)
            );
            x += 34.0 + 7.5 * p.label.chars().count() as f64;
        }
    }
}

fn dash(on: bool) -> &'static str {
    if on { r#" stroke-dasharray="6 4""# } else { "" }
}

/// Log-scaled bounds over every plotted value, in µs (at least one decade).
fn value_range(plots: &[Plot]) -> Option<(f64, f64)> {
    let values = plots
        .iter()
        .flat_map(|p| p.points.iter().filter(|(_, n)| *n > 0).map(|(v, _)| *v));
    let (lo, hi) = values.fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi == 0 && lo == u64::MAX {
        return None;
    }
    let lo = (lo.max(1) as f64).log10().floor();
    let hi = (hi.max(1) as f64).log10().ceil().max(lo + 1.0);
    Some((lo, hi))
}

fn decade_ticks(frame: &Frame, out: &mut String, lo: f64, hi: f64, horizontal: bool) {
    let mut d = lo;
    while d <= hi + 1e-9 {
        let t = (d - lo) / (hi - lo);
        let label = fmt_decade(10f64.powf(d));
        if horizontal {
            frame.x_tick(out, t, &label);
        } else {
            frame.y_tick(out, t, &label);
        }
        d += 1.0;
    }
}

/// A latency histogram: samples in log-spaced bins, each series scaled to
/// its own total so allowed and denied calls compare by shape.
pub fn histogram(title: &str, plots: &[Plot]) -> String {
    let Some((lo, hi)) = value_range(plots) else {
        return empty(title, "no latency samples");
    };
    const BINS: usize = 48;
    let height = 300.0;
    let frame = Frame::new(height);
    let bin_of = |v: u64| {
        let t = ((v.max(1) as f64).log10() - lo) / (hi - lo);
        ((t * BINS as f64) as usize).min(BINS - 1)
    };
    let shares: Vec<Vec<f64>> = plots
        .iter()
        .map(|p| {
            let mut bins = vec![0u64; BINS];
            for (v, n) in p.points {
                bins[bin_of(*v)] += n;
            }
            let total: u64 = bins.iter().sum();
            bins.iter()
                .map(|n| *n as f64 / total.max(1) as f64)
                .collect()
        })
        .collect();
    let highest = shares.iter().flatten().copied().fold(0.0_f64, f64::max);
    // A round top for the share axis, so its ticks read 0, 10, 20 %.
    let peak = [0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0]
        .into_iter()
        .find(|top| *top >= highest)
        .unwrap_or(1.0);
    let mut out = String::new();
    open(&mut out, title, height);
    for i in 0..=4 {
        let t = f64::from(i) / 4.0;
        let share = t * peak * 100.0;
        let label = if share.fract() == 0.0 {
            format!("{share:.0}%")
        } else {
            format!("{share:.1}%")
        };
        frame.y_tick(&mut out, t, &label);
    }
    decade_ticks(&frame, &mut out, lo, hi, true);
    frame.axes(&mut out);
    for (p, bins) in plots.iter().zip(&shares) {
        let mut d = format!("M{:.1} {:.1}", frame.x(0.0), frame.y(0.0));
        for (i, share) in bins.iter().enumerate() {
            let x0 = frame.x(i as f64 / BINS as f64);
            let x1 = frame.x((i + 1) as f64 / BINS as f64);
            let y = frame.y(share / peak);
            let _ = write!(d, "L{x0:.1} {y:.1}L{x1:.1} {y:.1}");
        }
        let _ = write!(d, "L{:.1} {:.1}", frame.x(1.0), frame.y(0.0));
        let _ = write!(
            out,
            r#"<path class="series" data-series="{label}" d="{d}" fill="{c}" fill-opacity="{op}" stroke="{c}" stroke-width="1.5"{dash}/>"#,
            label = esc(p.label),
            c = p.color,
            op = if p.dashed { "0" } else { "0.18" },
            dash = dash(p.dashed)
        );
    }
    frame.legend(&mut out, plots);
    out.push_str("</svg>");
    out
}

/// The share of samples at or under each value, on the usual "nines" axis:
/// 0 %, 90 %, 99 %, 99.9 %, ... spread evenly, latency on a log scale.
pub fn percentile_curve(title: &str, plots: &[Plot]) -> String {
    let Some((lo, hi)) = value_range(plots) else {
        return empty(title, "no latency samples");
    };
    const NINES: f64 = 5.0;
    let height = 300.0;
    let frame = Frame::new(height);
    let x_of = |q: f64| (1.0 / (1.0 - q).max(1e-12)).log10() / NINES;
    let y_of = |v: u64| ((v.max(1) as f64).log10() - lo) / (hi - lo);
    let mut out = String::new();
    open(&mut out, title, height);
    decade_ticks(&frame, &mut out, lo, hi, false);
    for (q, label) in [
        (0.0, "0%"),
        (0.9, "90%"),
        (0.99, "99%"),
        (0.999, "99.9%"),
        (0.9999, "99.99%"),
        (0.99999, "99.999%"),
    ] {
        frame.x_tick(&mut out, x_of(q), label);
    }
    frame.axes(&mut out);
    for p in plots {
        let total: u64 = p.points.iter().map(|(_, n)| n).sum();
        if total == 0 {
            continue;
        }
        let mut d = String::new();
        let mut below = 0u64;
        for (v, n) in p.points.iter().filter(|(_, n)| *n > 0) {
            let from = x_of(below as f64 / total as f64);
            below += n;
            // The last step ends at the right edge: the max is the 100th percentile.
            let to = if below == total {
                1.0
            } else {
                x_of(below as f64 / total as f64)
            };
            let y = frame.y(y_of(*v));
            let cmd = if d.is_empty() { 'M' } else { 'L' };
            let _ = write!(
                d,
                "{cmd}{:.1} {y:.1}L{:.1} {y:.1}",
                frame.x(from),
                frame.x(to)
            );
        }
        let _ = write!(
            out,
            r#"<path class="series" data-series="{label}" d="{d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>"#,
            label = esc(p.label),
            c = p.color,
            dash = dash(p.dashed)
        );
    }
    frame.legend(&mut out, plots);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot<'a>(label: &'a str, points: &'a [(u64, u64)]) -> Plot<'a> {
        Plot {
            label,
            color: "#123456",
            dashed: false,
            points,
        }
    }

    #[test]
    fn empty_inputs_still_draw_a_chart() {
        for svg in [
            histogram("latency", &[]),
            percentile_curve("latency", &[plot("allowed", &[])]),
            bar_chart("durations", "ms", &[]),
        ] {
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(svg.ends_with("</svg>"));
            assert!(svg.contains("chart-empty"));
        }
    }

    #[test]
    fn every_series_gets_a_path() {
        let a = [(12, 90), (40, 9), (900, 1)];
        let b = [(15, 50), (3000, 50)];
        let mut base = plot("baseline", &a);
        base.dashed = true;
        for svg in [
            histogram("h", &[plot("allowed", &a), plot("denied", &b), base]),
            percentile_curve("p", &[plot("allowed", &a), plot("denied", &b)]),
        ] {
            assert!(svg.contains(r#"data-series="allowed""#));
            assert!(svg.contains(r#"data-series="denied""#));
            assert!(!svg.contains("NaN"), "{svg}");
        }
        let h = histogram("h", &[plot("a<b", &a)]);
        assert!(h.contains("a&lt;b"));
    }

    #[test]
    fn bars_scale_to_the_largest() {
        let svg = bar_chart(
            "d",
            "ms",
            &[
                Bar {
                    label: "x".into(),
                    value: 10.0,
                    color: "#000",
                    note: "x".into(),
                },
                Bar {
                    label: "y".into(),
                    value: 5.0,
                    color: "#000",
                    note: "y".into(),
                },
            ],
        );
        let plot_w = WIDTH - 230.0 - 90.0;
        assert!(svg.contains(&format!(r#"width="{plot_w:.1}""#)));
        assert!(svg.contains(&format!(r#"width="{:.1}""#, plot_w / 2.0)));
        assert_eq!(fmt_decade(10_000.0), "10 ms");
        assert_eq!(fmt_decade(1.0), "1 µs");
    }
}
