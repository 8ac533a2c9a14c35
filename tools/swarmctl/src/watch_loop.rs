// SPDX-License-Identifier: GPL-2.0

//! The loop of `swarmctl watch`: read the volume's `status` (and `disk`)
//! every interval, feed it to [`Watch`], and show the counts: a spinner
//! with `indicatif` on a terminal, one plain line per interval otherwise
//! (a log, a pipe, a test).

use std::io::{IsTerminal as _, Stdout, Write};
use std::thread::sleep;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::configfs::Configfs;
use crate::status::Status;
use crate::watch::{line, Counts, Step, Watch};

/// One poll of volume `name`: its `status` parsed, and what it says.
pub fn poll(c: &Configfs, name: &str, w: &mut Watch) -> Result<Step, String> {
    // Waiting, the volume may not exist yet: `assemble` makes it.
    if w.wait && !c.exists(name) {
        return Ok(Step::Waiting);
    }
    let s = Status::parse(&c.read(name, "status")?).map_err(|e| format!("{name}: {e}"))?;
    // `disk` is empty unless enabled; an old module may lack it.
    let disk = c.read(name, "disk").unwrap_or_default();
    Ok(w.step(&s, &disk))
}

/// How the progress is shown.
enum Show {
    Spinner(ProgressBar),
    Lines(Stdout),
}

impl Show {
    fn new(plain: bool) -> Self {
        if plain || !std::io::stdout().is_terminal() {
            return Self::Lines(std::io::stdout());
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        // The template is a constant: it parses.
        if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix}: {wide_msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::Spinner(bar)
    }

    /// Shows a running replay's counts, or `None`: waiting for one.
    fn show(&mut self, name: &str, counts: Option<&Counts>) {
        match self {
            Self::Spinner(bar) => {
                // The spinner says it is running: the counts only; once the
                // scan knows the total, a bar of the messages applied too.
                if let Some(total) = counts.and_then(Counts::total) {
                    if bar.length() != Some(total) {
                        // The template is a constant: it parses.
                        if let Ok(style) = ProgressStyle::with_template(
                            "{spinner} {prefix}: [{bar:30}] {wide_msg}",
                        ) {
                            bar.set_style(style.progress_chars("=> "));
                        }
                        bar.set_length(total);
                    }
                    bar.set_position(counts.map_or(0, |c| c.messages));
                }
                bar.set_prefix(name.to_string());
                bar.set_message(counts.map_or("waiting for enable".into(), Counts::describe));
            }
            Self::Lines(out) => {
                let text = counts.map_or(format!("{name}: waiting for enable"), |c| line(name, c));
                // A closed pipe must not stop the watch.
                let _ = writeln!(out, "{text}").and_then(|()| out.flush());
            }
        }
    }

    fn finish(&self) {
        if let Self::Spinner(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// `swarmctl watch`: follows volume `name` until its replay ends; the
/// summary line when the volume is enabled, the reason when not.
pub fn run(
    c: &Configfs,
    name: &str,
    interval: Duration,
    (wait, plain): (bool, bool),
) -> Result<String, String> {
    let mut w = Watch::new(wait);
    let mut show = Show::new(plain);
    loop {
        let step = poll(c, name, &mut w).inspect_err(|_| show.finish())?;
        match step {
            Step::Done(sum) => {
                show.finish();
                return Ok(format!("{name}: {sum}\n"));
            }
            Step::Failed(why) => {
                show.finish();
                return Err(format!("{name}: {why}"));
            }
            Step::Running(counts) => show.show(name, Some(&counts)),
            Step::Waiting => show.show(name, None),
        }
        sleep(interval);
    }
}
