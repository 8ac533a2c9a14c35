// SPDX-License-Identifier: GPL-2.0

//! `swarmctl watch`: a replay's progress from successive reads of a
//! volume's `status` (`rust/admin/configfs.rs`). Pure: a [`Watch`] takes
//! one parsed snapshot at a time and says whether to go on (with the counts
//! to show) or how the replay ended; [`line`] renders the counts. The loop
//! that reads and sleeps is in `watch_loop.rs`.
//!
//! A running replay shows `replay_messages`, `replay_scanned`,
//! `replay_swarms`, `replay_loads`, `replay_skipped`,
//! `replay_scan_done` and `replay_duration_us`. Until the scan has reached
//! the log's valid end (`replay_scan_done` 1), `replay_scanned` is only what
//! it has delivered so far (a swarm or two ahead) and there is no total;
//! after, it is the total, and the time left is the messages still to
//! apply at the rate so far. The rate is over the kernel's own replay
//! duration.

use crate::human::micros;
use crate::status::Status;

/// A running (or ended) replay's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Messages applied (MODIFIED or SKIPPED).
    pub messages: u64,
    /// Messages the scan has delivered so far (0 once the replay ended).
    pub scanned: u64,
    /// Whether the scan has reached the log's valid end: `scanned` is the
    /// replay's total.
    pub scan_done: bool,
    /// Swarms begun.
    pub swarms: u64,
    /// LOADs issued.
    pub loads: u64,
    /// Messages skipped.
    pub skipped: u64,
    /// Time since `enable` began (the replay's duration once ended).
    pub duration_us: u64,
}

impl Counts {
    /// The `replay_*` counts of `s`; a missing key counts 0.
    #[must_use]
    pub fn of(s: &Status) -> Self {
        let n = |k: &str| s.num(&format!("replay_{k}")).unwrap_or(0);
        Self {
            messages: n("messages"),
            scanned: n("scanned"),
            scan_done: n("scan_done") == 1,
            swarms: n("swarms"),
            loads: n("loads"),
            skipped: n("skipped"),
            duration_us: n("duration_us"),
        }
    }

    /// Messages per second over the replay so far.
    #[must_use]
    pub fn rate(&self) -> Option<f64> {
        (self.duration_us > 0).then(|| self.messages as f64 * 1e6 / self.duration_us as f64)
    }

    /// The replay's total of messages, once the scan has found it.
    #[must_use]
    pub fn total(&self) -> Option<u64> {
        (self.scan_done && self.scanned > 0).then_some(self.scanned)
    }

    /// Microseconds left: the messages still to apply at the rate so far;
    /// `None` before the total is known or while nothing is applied.
    #[must_use]
    pub fn left_us(&self) -> Option<u64> {
        let total = self.total()?;
        let rate = self.rate().filter(|r| *r > 0.0)?;
        Some((total.saturating_sub(self.messages) as f64 / rate * 1e6) as u64)
    }

    /// `12000 messages (14000 scanned so far), 120 swarms, ...`, or once
    /// the total is known `12000 of 20000 messages, ..., about 1.20 s left`.
    #[must_use]
    pub fn describe(&self) -> String {
        let messages = match self.total() {
            Some(t) => format!("{} of {t} messages", self.messages),
            None if self.scanned > 0 => {
                format!(
                    "{} messages ({} scanned so far)",
                    self.messages, self.scanned
                )
            }
            None => format!("{} messages", self.messages),
        };
        let rate = self
            .rate()
            .map_or(String::new(), |r| format!(", {r:.0} msg/s"));
        let left = self
            .left_us()
            .map_or(String::new(), |us| format!(", about {} left", micros(us)));
        format!(
            "{messages}, {} swarms, {} loads, {} skipped, {}{rate}{left}",
            self.swarms,
            self.loads,
            self.skipped,
            micros(self.duration_us)
        )
    }
}

/// What a snapshot says.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Not enabled and no replay yet: waiting for one (`--wait`).
    Waiting,
    /// A replay is running: its counts.
    Running(Counts),
    /// The volume is enabled: the summary line.
    Done(String),
    /// The replay or the enable failed: the reason.
    Failed(String),
}

/// A plain progress line of volume `name`, as printed once per interval
/// when stdout is not a terminal.
#[must_use]
pub fn line(name: &str, c: &Counts) -> String {
    format!("{name}: replaying: {}", c.describe())
}

/// Why a replay that ended in `replay_state` `state` did not enable the
/// volume, in the admin's terms.
fn reason(state: &str, s: &Status, c: &Counts) -> String {
    let num = |k: &str| s.get(k).unwrap_or("?");
    match state {
        "corrupt" => format!(
            "the log is corrupt at seq {}, log offset {}: save the log device, then `echo 1 > \
             discard_corrupt` and enable again to drop it and every record after it (admin \
             guide, \"Corrupt log\")",
            num("replay_corrupt_seq"),
            num("replay_corrupt_offset")
        ),
        "panic" => format!(
            "replay PANIC: message seq {} was found suspended; the log is left as it is (see \
             dmesg)",
            num("replay_panic_seq")
        ),
        "aborted" => format!(
            "the replay was aborted (enable 0) after {} messages; enable again to resume it",
            c.messages
        ),
        "skipped-kept" => format!(
            "the replay skipped {} records whose part of the array is unavailable; they are \
             kept in the log: repair the array and enable again, or `echo 1 > discard_skipped`",
            c.skipped
        ),
        other => format!("enable failed (replay_state {other}); see dmesg"),
    }
}

/// Follows one volume's replay, snapshot by snapshot.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// Keep waiting while the volume is neither replaying nor enabled
    /// (instead of failing at once).
    pub wait: bool,
    /// A replay was seen running.
    seen_running: bool,
}

impl Watch {
    /// A watch; with `wait`, a volume not yet enabling is waited for.
    #[must_use]
    pub fn new(wait: bool) -> Self {
        Self {
            wait,
            seen_running: false,
        }
    }

    /// What snapshot `s` says; `disk` is the volume's `disk` attribute.
    pub fn step(&mut self, s: &Status, disk: &str) -> Step {
        let state = s.get("state").unwrap_or("unknown");
        let replay = s.get("replay_state").unwrap_or("none");
        let c = Counts::of(s);
        match state {
            "replaying" => {
                self.seen_running = true;
                Step::Running(c)
            }
            "enabled" => {
                let dev = if disk.is_empty() {
                    String::new()
                } else {
                    format!(" as /dev/{disk}")
                };
                Step::Done(match replay {
                    "done" | "done-discarded" => {
                        format!("replay {replay}: {}; enabled{dev}", c.describe())
                    }
                    _ => format!("enabled{dev}, no replay (the log was clean)"),
                })
            }
            _ if self.wait && !self.seen_running => Step::Waiting,
            _ if !self.seen_running && matches!(replay, "none" | "done" | "done-discarded") => {
                Step::Failed(format!(
                    "{state}, no replay running (`swarmctl enable NAME` starts one; --wait \
                     waits for it)"
                ))
            }
            _ => Step::Failed(reason(replay, s, &c)),
        }
    }
}
