// SPDX-License-Identifier: GPL-2.0

//! The replay trace: every state transition of every message of the last
//! replay, with its time, so that a timeline of the swarm can be drawn.
//!
//! It is read from debugfs, `/sys/kernel/debug/swarmlog/<name>/replay_trace`,
//! one event per line:
//!
//! ```text
//! # swarmlog replay trace: 3 events, 0 dropped
//! # time_ns swarm seq state
//! 10394 1 17 LOADING
//! 48120 1 17 LOADED
//! 49002 1 17 MODIFIED
//! ```
//!
//! `time_ns` counts from the start of the replay. The trace keeps at most
//! [`MAX_EVENTS`] events (the first ones) and counts the rest as dropped, so
//! its memory is bounded however long the log is.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use kernel::{
    debugfs::{Dir, File},
    new_mutex,
    prelude::*,
    sync::Mutex,
    time::{Instant, Monotonic},
};

use super::message::State;

/// Most events a trace keeps (24 bytes each).
pub(crate) const MAX_EVENTS: usize = 1 << 16;

/// One transition.
#[derive(Debug, Clone, Copy)]
struct Event {
    t_ns: u64,
    swarm: u32,
    seq: u64,
    state: State,
}

/// The events of the last replay.
struct Events {
    start: Option<Instant<Monotonic>>,
    swarm: u32,
    events: KVec<Event>,
    dropped: u64,
}

/// A volume's replay trace, shown in debugfs.
#[pin_data]
pub(crate) struct Trace {
    #[pin]
    inner: Mutex<Events>,
    /// Set once [`MAX_EVENTS`] are kept: later events are only counted, in
    /// `dropped_full`, without the lock (replay's MODIFY thread records
    /// three or four events a message).
    full: AtomicBool,
    dropped_full: AtomicU64,
}

impl Trace {
    /// An empty trace.
    fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- new_mutex!(Events {
                start: None,
                swarm: 0,
                events: KVec::new(),
                dropped: 0,
            }),
            full: AtomicBool::new(false),
            dropped_full: AtomicU64::new(0),
        }? Error)
    }

    /// The trace of volume `name`, as the file `replay_trace` in a debugfs
    /// directory of its own under `root`.
    pub(crate) fn create(root: &Dir, name: &CStr) -> Result<(Dir, Pin<KBox<File<Trace>>>)> {
        let dir = root.subdir(name);
        let file = KBox::pin_init(
            dir.read_callback_file(c"replay_trace", Self::new(), &Self::show),
            GFP_KERNEL,
        )?;
        Ok((dir, file))
    }

    /// Forgets the previous replay's events: a new replay starts now.
    pub(crate) fn start(&self) {
        let mut e = self.inner.lock();
        e.start = Some(Instant::now());
        e.swarm = 0;
        e.events.clear();
        e.dropped = 0;
        self.full.store(false, Relaxed);
        self.dropped_full.store(0, Relaxed);
    }

    /// The events that follow belong to the next swarm.
    pub(crate) fn next_swarm(&self) {
        self.inner.lock().swarm += 1;
    }

    /// Records that the messages of records `seqs` entered `state` (at
    /// once: one lock and one time for them all; a swarm delivers 16384).
    pub(crate) fn record_all(&self, seqs: impl Iterator<Item = u64>, state: State) {
        if self.full.load(Relaxed) {
            self.dropped_full.fetch_add(seqs.count() as u64, Relaxed);
            return;
        }
        let mut e = self.inner.lock();
        let t_ns = e.start.map_or(0, |s| s.elapsed().as_nanos().max(0) as u64);
        let swarm = e.swarm;
        for seq in seqs {
            let ev = Event {
                t_ns,
                swarm,
                seq,
                state,
            };
            if e.events.len() >= MAX_EVENTS || e.events.push(ev, GFP_KERNEL).is_err() {
                e.dropped += 1;
            }
        }
        if e.events.len() >= MAX_EVENTS {
            self.full.store(true, Relaxed);
        }
    }

    /// Records that the message of record `seq` entered `state`.
    pub(crate) fn record(&self, seq: u64, state: State) {
        self.record_all(core::iter::once(seq), state);
    }

    /// Number of events kept and dropped.
    #[cfg(CONFIG_KUNIT = "y")]
    fn counts(&self) -> (usize, u64) {
        let e = self.inner.lock();
        (e.events.len(), e.dropped + self.dropped_full.load(Relaxed))
    }

    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.inner.lock();
        writeln!(
            f,
            "# swarmlog replay trace: {} events, {} dropped",
            e.events.len(),
            e.dropped + self.dropped_full.load(Relaxed)
        )?;
        writeln!(f, "# time_ns swarm seq state")?;
        for ev in e.events.iter() {
            writeln!(f, "{} {} {} {}", ev.t_ns, ev.swarm, ev.seq, ev.state.name())?;
        }
        Ok(())
    }
}

#[kernel::prelude::kunit_tests(swarmlog_trace)]
mod tests {
    use super::*;

    #[test]
    fn trace_is_bounded_and_restarts() -> Result {
        let t = KBox::pin_init(Trace::new(), GFP_KERNEL)?;
        t.start();
        t.next_swarm();
        for i in 0..(MAX_EVENTS as u64 + 10) {
            t.record(i, State::Loaded);
        }
        assert_eq!(t.counts(), (MAX_EVENTS, 10));
        {
            let e = t.inner.lock();
            assert_eq!(e.events.first().map(|ev| (ev.seq, ev.swarm)), Some((0, 1)));
            // Times never go backwards.
            assert!(e.events.windows(2).all(|w| w[0].t_ns <= w[1].t_ns));
        }
        t.start();
        assert_eq!(t.counts(), (0, 0));
        // Full no more: it keeps events again.
        t.record(1, State::New);
        assert_eq!(t.counts(), (1, 0));
        // Many at once, the same time; past the bound, counted.
        t.record_all(0..MAX_EVENTS as u64 + 4, State::New);
        assert_eq!(t.counts(), (MAX_EVENTS, 5));
        {
            let e = t.inner.lock();
            assert!(e
                .events
                .iter()
                .skip(1)
                .all(|ev| ev.t_ns == e.events[1].t_ns));
        }
        t.record_all(0..3, State::New);
        assert_eq!(t.counts(), (MAX_EVENTS, 8));
        Ok(())
    }
}
