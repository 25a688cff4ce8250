//! A live progress bar on stderr, shown only on a terminal: scenarios done
//! for a run, the current rate and rolling p99 for a bench.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::run::{Event, EventSink, Status};

/// Shows which scenario runs and how many have failed so far.
pub struct Progress {
    bar: ProgressBar,
    failed: usize,
}

impl Progress {
    /// A bar that draws only when stderr is a terminal.
    pub fn new(enabled: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if enabled {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
        {
            bar.set_style(style);
        }
        Progress { bar, failed: 0 }
    }
}

impl EventSink for Progress {
    fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted(info) => self.bar.set_length(info.scenarios as u64),
            Event::ScenarioStarted { id, .. } => {
                self.bar
                    .set_message(format!("{id} · {} failed", self.failed));
            }
            Event::ScenarioFinished(r) => {
                if r.status != Status::Passed && r.status != Status::Skipped {
                    self.failed += 1;
                }
                self.bar.inc(1);
            }
            Event::RunFinished(_) | Event::Bench(_) => self.bar.finish_and_clear(),
            Event::BenchPhase {
                name,
                target,
                round,
                rounds,
            } => {
                if let Ok(style) =
                    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                {
                    self.bar.set_style(style);
                }
                let slice = if *rounds > 1 {
                    format!(", round {round} of {rounds}")
                } else {
                    String::new()
                };
                self.bar
                    .set_message(format!("{name} ({target}){slice}: starting"));
            }
            Event::BenchTick { name, tick } => {
                self.bar.set_message(format!(
                    "{name}: {:.0} calls/s · p99 {:.0}µs (last second) · {:.0}s",
                    tick.rate, tick.p99_us, tick.at_s
                ));
                self.bar.tick();
            }
        }
    }
}

/// Several sinks behind one.
pub struct Tee<'a>(pub Vec<&'a mut dyn EventSink>);

impl EventSink for Tee<'_> {
    fn event(&mut self, event: &Event) {
        for sink in self.0.iter_mut() {
            sink.event(event);
        }
    }
}
