// SPDX-License-Identifier: GPL-2.0

//! `swarmctl timeline`: a replay trace (debugfs `replay_trace`, lines
//! `time_ns swarm seq STATE`, `#` comments) drawn as an SVG timeline, the
//! drawing of `scripts/replay-timeline`: one row per message (the first N
//! in log order), blue while its LOAD is in flight (LOADING to LOADED),
//! grey while it waits for its turn to MODIFY (LOADED to MODIFIED), red
//! while SUSPENDED, a black tick when MODIFIED.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The states a trace names (`rust/replay/message.rs`).
const STATES: [&str; 6] = [
    "NEW",
    "LOADING",
    "LOADED",
    "MODIFIED",
    "SUSPENDED",
    "SKIPPED",
];

/// A message: its swarm and record sequence number.
type Key = (u64, u64);

/// The events of the first messages of a trace, by message.
#[derive(Debug, Default)]
pub struct Trace {
    /// Each message's transitions in trace order: time (ns) and state.
    pub events: BTreeMap<Key, Vec<(u64, &'static str)>>,
}

/// Parses `text`, keeping the events of the first `limit` messages (in
/// the order they first appear). A malformed line is refused with its
/// number.
pub fn parse(text: &str, limit: usize) -> Result<Trace, String> {
    let mut t = Trace::default();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: {line:?}", i + 1);
        let f: Vec<&str> = line.split_whitespace().collect();
        let [time, swarm, seq, state] = f[..] else {
            return Err(bad("not `time swarm seq STATE`"));
        };
        let num = |v: &str, what: &str| {
            v.parse::<u64>()
                .map_err(|_| bad(&format!("{what} {v:?} is not a number")))
        };
        let key = (num(swarm, "swarm")?, num(seq, "seq")?);
        let time = num(time, "time")?;
        let Some(state) = STATES.iter().find(|s| **s == state) else {
            return Err(bad(&format!("unknown state {state:?}")));
        };
        if !t.events.contains_key(&key) && t.events.len() >= limit {
            continue;
        }
        t.events.entry(key).or_default().push((time, state));
    }
    Ok(t)
}

/// The colour of the span a state begins, if it is drawn.
fn colour(state: &str) -> Option<&'static str> {
    match state {
        "LOADING" => Some("#3465a4"),
        "LOADED" => Some("#babdb6"),
        "SUSPENDED" => Some("#cc0000"),
        _ => None,
    }
}

impl Trace {
    /// The time of the last event in ns (1 for an empty or instant trace).
    #[must_use]
    pub fn end_ns(&self) -> u64 {
        let end = self.events.values().flatten().map(|e| e.0).max();
        end.unwrap_or(0).max(1)
    }

    /// The SVG text of the timeline.
    #[must_use]
    pub fn svg(&self) -> String {
        const W: u64 = 1000;
        let n = self.events.len() as u64;
        let row = if n > 200 { 3 } else { 6 };
        let h = row * n + 40;
        let rh = row.saturating_sub(1).max(1);
        let end = self.end_ns();
        let ms = end as f64 / 1e6;
        let x = |t: u64| 60.0 + (W - 70) as f64 * t as f64 / end as f64;
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" \
             font-family=\"sans-serif\" font-size=\"10\">\n<text x=\"60\" y=\"12\">replay \
             timeline: {n} messages, {ms:.1} ms (blue: LOAD in flight, grey: waiting to \
             MODIFY, red: suspended)</text>\n"
        );
        for (i, ev) in self.events.values().enumerate() {
            let y = 20 + i as u64 * row;
            for (&(t0, s0), &(t1, _)) in ev.iter().zip(ev.iter().skip(1)) {
                if let Some(fill) = colour(s0) {
                    let width = (x(t1) - x(t0)).max(0.5);
                    let _ = writeln!(
                        s,
                        "<rect x=\"{:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{rh}\" \
                         fill=\"{fill}\"/>",
                        x(t0)
                    );
                }
            }
            for &(t, _) in ev.iter().filter(|e| e.1 == "MODIFIED") {
                let _ = writeln!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{y}\" width=\"1\" height=\"{rh}\" fill=\"black\"/>",
                    x(t)
                );
            }
        }
        let _ = write!(
            s,
            "<text x=\"60\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\">{ms:.1} ms</text>\n</svg>\n",
            h - 5,
            W - 60,
            h - 5
        );
        s
    }
}
