// SPDX-License-Identifier: GPL-2.0

//! Replay by a swarm: the initiator turns the records since the last CP
//! into messages, delivers them in swarms to the file system (the volume),
//! whose LOADs (disk reads) run in parallel while one MODIFY path applies
//! the messages strictly in log order.
//!
//! Each message is a transaction block: a pointer to its record and a state
//! ([`State`]). A message whose LOAD needs a block that an earlier message of
//! its swarm changes (its prerequisite) cannot LOAD before that message is
//! LOADED and MODIFIED: it is SUSPENDED, handed back to the initiator, and
//! retransferred once the prerequisite is MODIFIED. A message whose part of
//! the array is unavailable is SKIPPED: omitted, reported, and its record
//! kept. Finding the first message of a swarm, or a retransferred one,
//! suspended is the panic state: replay stops and the log is left untouched.
//!
//! The engine ([`run_swarm`]) is independent of the volume: it drives a
//! [`FileSystem`], which the volume implements with bios on its workqueue
//! and KUnit with a fake array whose completion order it controls.

use kernel::{prelude::*, rbtree::RBTree};

use crate::cache::{is_whole_block, SECTORS};
use crate::format::Op;

/// The state of a message (claim 2), plus the outcomes skip and panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Newly transferred to the file system (or retransferred).
    New,
    /// Its LOAD was issued and has not completed.
    Loading,
    /// LOAD complete.
    Loaded,
    /// MODIFY complete.
    Modified,
    /// Cannot LOAD until its prerequisite is LOADED and MODIFIED.
    Suspended,
    /// Omitted: its part of the array is unavailable; its record is kept.
    Skipped,
}

impl State {
    /// The state's name, as the trace shows it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::New => "NEW",
            State::Loading => "LOADING",
            State::Loaded => "LOADED",
            State::Modified => "MODIFIED",
            State::Suspended => "SUSPENDED",
            State::Skipped => "SKIPPED",
        }
    }
}

/// A message: the transaction block of one log record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message {
    /// Sequence number of its record.
    pub(crate) seq: u64,
    /// Log offset of its record: the pointer to the entry.
    pub(crate) offset: u64,
    /// What the record does.
    pub(crate) op: Op,
    pub(crate) sector: u64,
    pub(crate) nr_sectors: u32,
    /// Its state.
    pub(crate) state: State,
    /// Index in the swarm of the earlier message it must wait for, if any.
    pub(crate) prerequisite: Option<usize>,
    /// Whether the initiator retransferred it.
    pub(crate) retransferred: bool,
    /// Whether its LOAD joined another one in flight (see [`Start::Joined`]).
    pub(crate) joined: bool,
    /// For a write of exactly one whole block: `crc32c(0, data)`, checked by
    /// the scan, which the MODIFY hands to the cache for the CP's table
    /// entry (saving the CP a checksum of the block).
    pub(crate) block_crc0: Option<u32>,
}

impl Message {
    /// A new message for a record.
    pub(crate) fn new(seq: u64, offset: u64, op: Op, sector: u64, nr_sectors: u32) -> Self {
        Self {
            seq,
            offset,
            op,
            sector,
            nr_sectors,
            state: State::New,
            prerequisite: None,
            retransferred: false,
            joined: false,
            block_crc0: None,
        }
    }

    /// The data blocks the message changes.
    pub(crate) fn blocks(&self) -> core::ops::Range<u64> {
        let end = self.sector.saturating_add(u64::from(self.nr_sectors));
        self.sector / SECTORS..end.div_ceil(SECTORS)
    }

    /// The blocks the message changes only in part: their old contents are
    /// what its LOAD reads (with the table blocks of all its blocks).
    pub(crate) fn partial_blocks(&self) -> [Option<u64>; 2] {
        let end = self.sector.saturating_add(u64::from(self.nr_sectors));
        let first = self.sector / SECTORS;
        let last = end.div_ceil(SECTORS).saturating_sub(1);
        let head = (self.sector % SECTORS != 0 || end < (first + 1) * SECTORS).then_some(first);
        let tail = (end % SECTORS != 0 && last != first).then_some(last);
        [head, tail]
    }
}

/// How a message's LOAD started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Nothing to read: the message is LOADED now.
    Done,
    /// Its reads were issued: one of the `width` LOADs in flight.
    Issued,
    /// Everything it reads is being read already by a LOAD in flight, which
    /// it joins: it completes when that LOAD does, without a slot of its own
    /// (and without reading the same blocks twice).
    Joined,
}

/// The file system side of replay.
pub(crate) trait FileSystem {
    /// Starts message `idx`'s LOAD (see [`Start`]); its completion, unless
    /// [`Start::Done`], comes from [`Self::wait_load`]. `Err`: its part of
    /// the array is unavailable.
    fn start_load(&self, idx: usize, m: &Message) -> Result<Start>;
    /// Waits for one LOAD (issued or joined) to complete: `(idx, result)`.
    fn wait_load(&self) -> (usize, Result);
    /// Applies message `m` (the MODIFY phase).
    fn modify(&self, m: &Message) -> Result;
    /// Reports a skipped message.
    fn skipped(&self, m: &Message, err: Error);
    /// Reports a transition, for the trace.
    fn transition(&self, _m: &Message, _to: State) {}
    /// Reports that the initiator delivered `msgs` (each is NEW), for the
    /// trace.
    fn delivered(&self, msgs: &[Message]) {
        for m in msgs {
            self.transition(m, State::New);
        }
    }
}

/// Counters of a replay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) messages: u64,
    pub(crate) swarms: u64,
    pub(crate) loads: u64,
    pub(crate) no_load: u64,
    pub(crate) joined: u64,
    pub(crate) suspended: u64,
    pub(crate) retransferred: u64,
    pub(crate) skipped: u64,
    pub(crate) peak_in_flight: u64,
}

/// Why replay stopped in the panic state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Panic {
    /// The message found suspended.
    pub(crate) seq: u64,
    /// Whether it was the first of its swarm (else: retransferred).
    pub(crate) first_of_swarm: bool,
    /// The sequence number of the message it waited for.
    pub(crate) waits_for: u64,
}

/// Fault injection, to reach the panic state, which a correct engine never
/// enters by itself. The faults exist only in kernels built with KUnit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Normal operation.
    None,
    /// The first message of the swarm has a prerequisite (itself).
    #[cfg(CONFIG_KUNIT = "y")]
    SuspendFirst,
    /// Retransferred messages are found suspended again.
    #[cfg(CONFIG_KUNIT = "y")]
    SuspendRetransferred,
}

/// Computes each message's prerequisite: the latest earlier message of the
/// swarm that changes a block the message's LOAD reads.
///
/// Only blocks that some message changes in part can be such a block, so
/// the writers of those alone are followed: a swarm of whole-block writes
/// (most of a random 4 KiB workload) costs one pass and no allocation, not
/// a tree insertion per message (which took about 30 ms at the start of a
/// swarm of 16384 under TCG).
fn prerequisites(msgs: &mut [Message]) -> Result {
    let mut read: RBTree<u64, ()> = RBTree::new();
    for m in msgs.iter() {
        for b in m.partial_blocks().into_iter().flatten() {
            read.try_create_and_insert(b, (), GFP_KERNEL)?;
        }
    }
    if read.iter().next().is_none() {
        for m in msgs.iter_mut() {
            m.prerequisite = None;
        }
        return Ok(());
    }
    let mut last_toucher: RBTree<u64, usize> = RBTree::new();
    for i in 0..msgs.len() {
        let Some(m) = msgs.get(i).copied() else {
            break;
        };
        let mut pre: Option<usize> = None;
        for b in m.partial_blocks().into_iter().flatten() {
            if let Some(&j) = last_toucher.get(&b) {
                pre = Some(pre.map_or(j, |p| p.max(j)));
            }
        }
        if let Some(mm) = msgs.get_mut(i) {
            mm.prerequisite = pre;
        }
        if m.op != Op::Wrap {
            for b in m.blocks().filter(|b| read.get(b).is_some()) {
                last_toucher.try_create_and_insert(b, i, GFP_KERNEL)?;
            }
        }
    }
    Ok(())
}

/// No message (the end of a waiter list).
const NONE: usize = usize::MAX;

/// One swarm in progress: the messages, the initiator's queue, and the
/// MODIFY path's position.
///
/// # Invariants
///
/// `waiter_head` and `waiter_next` are empty until a message is first
/// suspended, then have one slot per message; a message is on the waiter
/// list of message `p` exactly while it is SUSPENDED with prerequisite `p`.
struct Swarm<'a, F: FileSystem> {
    fs: &'a F,
    msgs: &'a mut [Message],
    width: usize,
    c: &'a mut Counters,
    fault: Fault,
    /// The initiator's queue: the messages to retransfer, popped from the
    /// end, then the messages from `next_new` on, in log order.
    retransfer: KVec<usize>,
    /// The first message not transferred yet.
    next_new: usize,
    /// LOADs issued and not completed (at most `width`).
    in_flight: usize,
    /// Messages that joined a LOAD and have not completed.
    joined: usize,
    /// The next message in log order to MODIFY.
    next_modify: usize,
    /// Per message: the first message suspended waiting for it.
    waiter_head: KVec<usize>,
    /// Per message: the next message on the same waiter list.
    waiter_next: KVec<usize>,
}

impl<F: FileSystem> Swarm<'_, F> {
    fn set(&mut self, i: usize, s: State) {
        if let Some(m) = self.msgs.get_mut(i) {
            m.state = s;
            self.fs.transition(m, s);
        }
    }

    fn skip(&mut self, i: usize, e: Error) {
        self.c.skipped += 1;
        self.set(i, State::Skipped);
        if let Some(m) = self.msgs.get(i) {
            self.fs.skipped(m, e);
        }
    }

    /// MODIFY, strictly in log order, as far as LOADs allow; each message
    /// done (MODIFIED or SKIPPED) is the prerequisite event of those that
    /// waited for it, which the initiator retransfers.
    fn modify_ready(&mut self) -> Result {
        while let Some(m) = self.msgs.get(self.next_modify).copied() {
            let done = self.next_modify;
            match m.state {
                State::Loaded if m.op == Op::Wrap => self.set(done, State::Modified),
                State::Loaded => match self.fs.modify(&m) {
                    Ok(()) => self.set(done, State::Modified),
                    Err(e) => self.skip(done, e),
                },
                State::Skipped => {}
                _ => return Ok(()),
            }
            // Retransfer in log order: the list is in reverse order of
            // suspension, and the queue is popped from the end.
            let mut w = self.waiter_head.get(done).copied().unwrap_or(NONE);
            while let Some(next) = self.waiter_next.get(w).copied() {
                self.c.retransferred += 1;
                if let Some(m) = self.msgs.get_mut(w) {
                    m.retransferred = true;
                }
                self.set(w, State::New);
                self.retransfer.push(w, GFP_KERNEL)?;
                w = next;
            }
            self.next_modify += 1;
        }
        Ok(())
    }

    /// The next message of the initiator's queue.
    fn pop(&mut self) -> Option<usize> {
        self.retransfer.pop().or_else(|| {
            let i = self.next_new;
            (i < self.msgs.len()).then(|| {
                self.next_new += 1;
                i
            })
        })
    }

    /// Whether the initiator's queue is empty.
    fn queue_empty(&self) -> bool {
        self.retransfer.is_empty() && self.next_new >= self.msgs.len()
    }

    /// `p`, if it is a message not yet done (MODIFIED or SKIPPED). A
    /// prerequisite that is SKIPPED is done too: the message waiting for it
    /// then reads what the array holds, as if it had never been logged.
    fn unfinished(&self, p: Option<usize>) -> Option<usize> {
        p.filter(|&p| {
            self.msgs
                .get(p)
                .is_some_and(|pm| !matches!(pm.state, State::Modified | State::Skipped))
        })
    }

    /// Transfers messages and starts their LOADs, up to `width` in flight.
    fn transfer(&mut self) -> Result<Result<(), Panic>> {
        while self.in_flight < self.width {
            let Some(i) = self.pop() else {
                break;
            };
            let Some(m) = self.msgs.get(i).copied() else {
                continue;
            };
            let mut waits = self.unfinished(m.prerequisite);
            if waits.is_some_and(|p| self.msgs.get(p).is_some_and(|pm| pm.state == State::Loaded)) {
                // It may only be waiting for its turn to MODIFY: MODIFY
                // what is ready first, so that nothing is suspended for
                // nothing (and with `width` 1, nothing at all).
                self.modify_ready()?;
                waits = self.unfinished(m.prerequisite);
            }
            let waits = match self.fault {
                #[cfg(CONFIG_KUNIT = "y")]
                Fault::SuspendFirst if i == 0 => Some(0),
                #[cfg(CONFIG_KUNIT = "y")]
                Fault::SuspendRetransferred if m.retransferred => m.prerequisite,
                _ => waits,
            };
            if let Some(p) = waits {
                self.set(i, State::Suspended);
                if i == 0 || m.retransferred {
                    return Ok(Err(Panic {
                        seq: m.seq,
                        first_of_swarm: i == 0,
                        waits_for: self.msgs.get(p).map_or(0, |pm| pm.seq),
                    }));
                }
                self.c.suspended += 1;
                if self.waiter_head.is_empty() {
                    let n = self.msgs.len();
                    self.waiter_head.resize(n, NONE, GFP_KERNEL)?;
                    self.waiter_next.resize(n, NONE, GFP_KERNEL)?;
                }
                let head = self.waiter_head.get_mut(p).ok_or(EINVAL)?;
                let old = core::mem::replace(head, i);
                *self.waiter_next.get_mut(i).ok_or(EINVAL)? = old;
                continue;
            }
            if m.op == Op::Wrap {
                self.set(i, State::Loaded);
                self.modify_ready()?;
                continue;
            }
            if let Some(m) = self.msgs.get_mut(i) {
                m.joined = false;
            }
            match self.fs.start_load(i, &m) {
                Ok(Start::Done) => {
                    // Not MODIFIED here: the LOADs behind it start first,
                    // and the MODIFYs run while they are in flight.
                    self.c.no_load += 1;
                    self.set(i, State::Loaded);
                }
                Ok(Start::Joined) => {
                    self.c.joined += 1;
                    self.joined += 1;
                    if let Some(m) = self.msgs.get_mut(i) {
                        m.joined = true;
                    }
                    self.set(i, State::Loading);
                }
                Ok(Start::Issued) => {
                    self.c.loads += 1;
                    self.in_flight += 1;
                    self.c.peak_in_flight = self.c.peak_in_flight.max(self.in_flight as u64);
                    self.set(i, State::Loading);
                }
                Err(e) => self.skip(i, e),
            }
        }
        Ok(Ok(()))
    }
}

/// Runs one swarm to the end: every message MODIFIED or SKIPPED, or the
/// panic state. At most `width` LOADs are in flight.
///
/// Each turn transfers first, so that the LOADs start before the MODIFYs
/// that need none run, then MODIFYs what is ready. A message whose
/// prerequisite is LOADED has what is ready MODIFIED before it is judged,
/// so it is suspended only when its prerequisite is really still in
/// progress: with `width` 1 nothing is ever suspended (an honest serial
/// replay).
pub(crate) fn run_swarm<F: FileSystem>(
    fs: &F,
    msgs: &mut [Message],
    width: usize,
    c: &mut Counters,
    fault: Fault,
) -> Result<Result<(), Panic>> {
    let n = msgs.len();
    c.swarms += 1;
    c.messages += n as u64;
    prerequisites(msgs)?;
    // The initiator delivers the swarm: every message is NEW.
    fs.delivered(msgs);
    let mut s = Swarm {
        fs,
        msgs,
        width: width.max(1),
        c,
        fault,
        retransfer: KVec::new(),
        next_new: 0,
        in_flight: 0,
        joined: 0,
        next_modify: 0,
        waiter_head: KVec::new(),
        waiter_next: KVec::new(),
    };
    loop {
        if let Err(p) = s.transfer()? {
            return Ok(Err(p));
        }
        s.modify_ready()?;
        if s.next_modify >= n {
            return Ok(Ok(()));
        }
        let waiting = s.in_flight + s.joined;
        if waiting > 0 && (s.in_flight >= s.width || s.queue_empty()) {
            let (i, res) = fs.wait_load();
            if s.msgs.get(i).is_some_and(|m| m.joined) {
                s.joined = s.joined.saturating_sub(1);
            } else {
                s.in_flight = s.in_flight.saturating_sub(1);
            }
            match res {
                Ok(()) => s.set(i, State::Loaded),
                Err(e) => s.skip(i, e),
            }
        } else if waiting == 0
            && s.queue_empty()
            && s.msgs.get(s.next_modify).is_some_and(|m| {
                // The next to MODIFY neither is ready nor can become so.
                !matches!(m.state, State::Loaded | State::Skipped)
            })
        {
            // Nothing can move: only a broken invariant gets here.
            return Err(EINVAL);
        }
    }
}

#[kernel::prelude::kunit_tests(swarmlog_replay)]
mod tests {
    use super::*;
    use core::cell::RefCell;

    /// A fake array of `BLOCKS` blocks of one byte per sector, and a log of
    /// writes each setting its sectors to its sequence number. LOADs
    /// complete in an order given by a seeded generator.
    const BLOCKS: u64 = 16;

    struct Fake {
        inner: RefCell<FakeInner>,
    }

    struct FakeInner {
        image: [u8; (BLOCKS * SECTORS) as usize],
        /// LOADs issued: (index, first block, sequence number).
        pending: KVec<(usize, u64, u64)>,
        /// Messages that joined a pending LOAD: (its index, theirs).
        riders: KVec<(usize, (usize, u64, u64))>,
        /// Completions to return before any other.
        ready: KVec<usize>,
        /// A message whose LOAD completes with `EIO`.
        fail_seq: Option<u64>,
        /// A message that changes one whole block joins a pending LOAD of
        /// the same block, as the volume's does when the table block it
        /// needs is being read.
        join: bool,
        rng: u64,
        bad_block: Option<u64>,
        trace: KVec<(u64, State)>,
        loaded_blocks: KVec<u64>,
        /// Messages with an even sequence number need no reads (as if their
        /// blocks were cached).
        hits: bool,
    }

    impl FakeInner {
        fn next(&mut self) -> u64 {
            // xorshift64
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            self.rng
        }
    }

    impl FileSystem for Fake {
        fn start_load(&self, idx: usize, m: &Message) -> Result<Start> {
            let mut f = self.inner.borrow_mut();
            if m.blocks().end > BLOCKS || m.blocks().any(|b| Some(b) == f.bad_block) {
                return Err(ENXIO);
            }
            if f.hits && m.seq % 2 == 0 {
                return Ok(Start::Done);
            }
            let me = (idx, m.blocks().start, m.seq);
            let whole = m.blocks().count() == 1 && m.partial_blocks() == [None, None];
            if f.join && whole {
                if let Some(&(owner, ..)) = f.pending.iter().find(|p| p.1 == me.1) {
                    f.riders.push((owner, me), GFP_KERNEL)?;
                    return Ok(Start::Joined);
                }
            }
            for b in m.partial_blocks().into_iter().flatten() {
                f.loaded_blocks.push(b, GFP_KERNEL)?;
            }
            f.pending.push(me, GFP_KERNEL)?;
            Ok(Start::Issued)
        }

        fn wait_load(&self) -> (usize, Result) {
            let mut f = self.inner.borrow_mut();
            if let Some(idx) = f.ready.pop() {
                return (idx, Ok(()));
            }
            let n = f.pending.len();
            if n == 0 {
                return (usize::MAX, Err(EINVAL));
            }
            let pick = (f.next() % n as u64) as usize;
            let Ok((idx, _, seq)) = f.pending.remove(pick) else {
                return (usize::MAX, Err(EINVAL));
            };
            let res = if f.fail_seq == Some(seq) {
                Err(EIO)
            } else {
                Ok(())
            };
            // Those that joined it complete with it; if it failed, each
            // reads for itself (as the volume's do).
            let mut i = 0;
            while let Some(&(owner, rider)) = f.riders.get(i) {
                if owner != idx {
                    i += 1;
                    continue;
                }
                let _ = f.riders.remove(i);
                let pushed = match res {
                    Ok(()) => f.ready.push(rider.0, GFP_KERNEL),
                    Err(_) => f.pending.push(rider, GFP_KERNEL),
                };
                if pushed.is_err() {
                    return (usize::MAX, Err(ENOMEM));
                }
            }
            (idx, res)
        }

        fn modify(&self, m: &Message) -> Result {
            let mut f = self.inner.borrow_mut();
            let s = m.sector as usize;
            let e = s + m.nr_sectors as usize;
            let v = m.seq as u8;
            f.image.get_mut(s..e).ok_or(EINVAL)?.fill(v);
            Ok(())
        }

        fn skipped(&self, _m: &Message, _err: Error) {}

        fn transition(&self, m: &Message, to: State) {
            let _ = self.inner.borrow_mut().trace.push((m.seq, to), GFP_KERNEL);
        }
    }

    fn fake(seed: u64) -> Fake {
        Fake {
            inner: RefCell::new(FakeInner {
                image: [0; (BLOCKS * SECTORS) as usize],
                pending: KVec::new(),
                riders: KVec::new(),
                ready: KVec::new(),
                fail_seq: None,
                join: false,
                rng: seed | 1,
                bad_block: None,
                trace: KVec::new(),
                loaded_blocks: KVec::new(),
                hits: false,
            }),
        }
    }

    fn log_of(seed: u64, n: usize) -> Result<KVec<Message>> {
        let mut rng = seed | 1;
        let mut v = KVec::new();
        for i in 0..n {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let sector = rng % (BLOCKS * SECTORS - 1);
            let nr = 1 + ((rng >> 20) % 12).min(BLOCKS * SECTORS - sector - 1) as u32;
            v.push(
                Message::new(1 + i as u64, 0, Op::Write, sector, nr),
                GFP_KERNEL,
            )?;
        }
        Ok(v)
    }

    fn serial_image(msgs: &[Message]) -> [u8; (BLOCKS * SECTORS) as usize] {
        let mut img = [0u8; (BLOCKS * SECTORS) as usize];
        for m in msgs {
            let s = m.sector as usize;
            if let Some(r) = img.get_mut(s..s + m.nr_sectors as usize) {
                r.fill(m.seq as u8);
            }
        }
        img
    }

    fn run(
        fs: &Fake,
        msgs: &mut [Message],
        width: usize,
        fault: Fault,
    ) -> Result<(Counters, Result<(), Panic>)> {
        let mut c = Counters::default();
        let r = run_swarm(fs, msgs, width, &mut c, fault)?;
        Ok((c, r))
    }

    #[test]
    fn partial_blocks_of_a_message() {
        let m = |s, n| Message::new(1, 0, Op::Write, s, n);
        assert_eq!(m(0, 8).partial_blocks(), [None, None]);
        assert_eq!(m(0, 16).partial_blocks(), [None, None]);
        assert_eq!(m(1, 7).partial_blocks(), [Some(0), None]);
        assert_eq!(m(0, 7).partial_blocks(), [Some(0), None]);
        assert_eq!(m(6, 4).partial_blocks(), [Some(0), Some(1)]);
        assert_eq!(m(8, 9).partial_blocks(), [None, Some(2)]);
        assert_eq!(m(3, 2).blocks(), 0..1);
        assert_eq!(m(6, 4).blocks(), 0..2);
    }

    #[test]
    fn parallel_replay_equals_serial_replay() -> Result {
        // Seeded random logs, several widths, shuffled completion orders.
        for seed in [1u64, 7, 42, 1234, 99991] {
            let log = log_of(seed, 60)?;
            let want = serial_image(&log);
            for width in [1usize, 2, 8, 64] {
                for (order, hits) in [(3u64, false), (17, true), (255, false)] {
                    let fs = fake(seed * 1000 + order);
                    fs.inner.borrow_mut().hits = hits;
                    let mut msgs = KVec::new();
                    msgs.extend_from_slice(&log, GFP_KERNEL)?;
                    let (c, r) = run(&fs, &mut msgs, width, Fault::None)?;
                    assert!(r.is_ok());
                    assert_eq!(fs.inner.borrow_mut().image, want);
                    assert!(msgs.iter().all(|m| m.state == State::Modified));
                    assert!(c.peak_in_flight <= width as u64);
                    assert_eq!(c.retransferred, c.suspended);
                    if width == 1 {
                        // Serial: one LOAD at a time, and nothing waits.
                        assert_eq!(c.peak_in_flight, 1);
                        assert_eq!(c.suspended, 0);
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn joined_loads_complete_with_their_owner() -> Result {
        // Whole-block writes to three blocks: most join a LOAD in flight.
        let mut log = KVec::new();
        for i in 0..40u64 {
            log.push(
                Message::new(i + 1, 0, Op::Write, (i * 7 % 3) * SECTORS, 8),
                GFP_KERNEL,
            )?;
        }
        let want = serial_image(&log);
        for width in [1usize, 2, 8] {
            for order in [3u64, 17, 255] {
                let fs = fake(order);
                fs.inner.borrow_mut().join = true;
                let mut msgs = KVec::new();
                msgs.extend_from_slice(&log, GFP_KERNEL)?;
                let (c, r) = run(&fs, &mut msgs, width, Fault::None)?;
                assert_eq!(r, Ok(()));
                assert_eq!(fs.inner.borrow_mut().image, want);
                assert!(msgs.iter().all(|m| m.state == State::Modified));
                assert_eq!(c.loads + c.joined, 40);
                assert!(c.peak_in_flight <= width as u64);
                if width == 1 {
                    // Serial: nothing is in flight to join.
                    assert_eq!(c.joined, 0);
                } else {
                    assert!(c.joined > 0 && c.loads < 40);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn failed_load_does_not_fail_those_that_joined_it() -> Result {
        let fs = fake(21);
        {
            let mut f = fs.inner.borrow_mut();
            f.join = true;
            f.fail_seq = Some(1);
        }
        let mut msgs = KVec::new();
        for seq in 1..=3 {
            msgs.push(Message::new(seq, 0, Op::Write, 8, 8), GFP_KERNEL)?;
        }
        let (c, r) = run(&fs, &mut msgs, 8, Fault::None)?;
        assert_eq!(r, Ok(()));
        assert_eq!((c.loads, c.joined, c.skipped), (1, 2, 1));
        assert_eq!(msgs.first().map(|m| m.state), Some(State::Skipped));
        assert!(msgs.iter().skip(1).all(|m| m.state == State::Modified));
        assert_eq!(fs.inner.borrow_mut().image.get(8..16), Some(&[3u8; 8][..]));
        Ok(())
    }

    #[test]
    fn dependent_message_is_suspended_then_retransferred() -> Result {
        let fs = fake(5);
        // 2 changes sector 3 of block 0, which 1 changes too: 2 must wait.
        let mut msgs = KVec::new();
        msgs.push(Message::new(1, 0, Op::Write, 0, 4), GFP_KERNEL)?;
        msgs.push(Message::new(2, 0, Op::Write, 3, 2), GFP_KERNEL)?;
        msgs.push(Message::new(3, 0, Op::Write, 9, 2), GFP_KERNEL)?;
        let (c, r) = run(&fs, &mut msgs, 8, Fault::None)?;
        assert!(r.is_ok());
        assert_eq!((c.suspended, c.retransferred), (1, 1));
        assert_eq!(msgs.get(1).and_then(|m| m.prerequisite), Some(0));
        let f = fs.inner.borrow_mut();
        // Message 2's transitions: New (delivered) -> Suspended -> New
        // (retransferred) -> Loading -> Loaded -> Modified.
        let mut t2 = KVec::new();
        for (seq, s) in f.trace.iter() {
            if *seq == 2 {
                t2.push(*s, GFP_KERNEL)?;
            }
        }
        use State::*;
        assert_eq!(
            &t2[..],
            &[New, Suspended, New, Loading, Loaded, Modified][..]
        );
        // Its retransferred LOAD came after message 1 was MODIFIED.
        let pos = |seq: u64, st: State| f.trace.iter().position(|e| *e == (seq, st));
        assert!(pos(1, State::Modified) < pos(2, State::Loading).or(pos(2, State::Loaded)));
        assert_eq!(f.image.get(3).copied(), Some(2));
        assert_eq!(f.image.get(2).copied(), Some(1));
        Ok(())
    }

    #[test]
    fn chain_of_dependencies() -> Result {
        let fs = fake(9);
        let mut msgs = KVec::new();
        for i in 0..10u64 {
            msgs.push(Message::new(i + 1, 0, Op::Write, i % 3, 1), GFP_KERNEL)?;
        }
        let want = serial_image(&msgs);
        let (c, r) = run(&fs, &mut msgs, 4, Fault::None)?;
        assert!(r.is_ok());
        assert_eq!(c.suspended, 9);
        assert_eq!(fs.inner.borrow_mut().image, want);
        Ok(())
    }

    #[test]
    fn full_block_writes_need_no_prerequisite() -> Result {
        let fs = fake(3);
        let mut msgs = KVec::new();
        msgs.push(Message::new(1, 0, Op::Write, 0, 8), GFP_KERNEL)?;
        msgs.push(Message::new(2, 0, Op::Write, 0, 8), GFP_KERNEL)?;
        let (c, r) = run(&fs, &mut msgs, 8, Fault::None)?;
        assert!(r.is_ok());
        assert_eq!(c.suspended, 0);
        assert_eq!(fs.inner.borrow_mut().image.first().copied(), Some(2));
        Ok(())
    }

    #[test]
    fn skip_beyond_end_and_unreadable() -> Result {
        let fs = fake(11);
        fs.inner.borrow_mut().bad_block = Some(5);
        let mut msgs = KVec::new();
        msgs.push(Message::new(1, 0, Op::Write, 0, 2), GFP_KERNEL)?;
        msgs.push(
            Message::new(2, 0, Op::Write, BLOCKS * SECTORS - 1, 2),
            GFP_KERNEL,
        )?;
        msgs.push(
            Message::new(3, 0, Op::Write, 5 * SECTORS + 1, 1),
            GFP_KERNEL,
        )?;
        msgs.push(Message::new(4, 0, Op::Write, 1, 1), GFP_KERNEL)?;
        let (c, r) = run(&fs, &mut msgs, 8, Fault::None)?;
        assert!(r.is_ok());
        assert_eq!(c.skipped, 2);
        assert_eq!(msgs.get(1).map(|m| m.state), Some(State::Skipped));
        assert_eq!(msgs.get(2).map(|m| m.state), Some(State::Skipped));
        assert_eq!(msgs.get(3).map(|m| m.state), Some(State::Modified));
        Ok(())
    }

    #[test]
    fn message_waiting_for_a_skipped_one_proceeds() -> Result {
        // 1 spans blocks 4 and 5 (unreadable): skipped. 2 changes block 4 in
        // part, so it waits for 1; once 1 is skipped, 2 reads the array's
        // block 4 and is applied, as if 1 had never been logged. (Found:
        // 2 was suspended again, which is the panic state.)
        let fs = fake(13);
        fs.inner.borrow_mut().bad_block = Some(5);
        let mut msgs = KVec::new();
        msgs.push(Message::new(1, 0, Op::Write, 38, 4), GFP_KERNEL)?;
        msgs.push(Message::new(2, 0, Op::Write, 36, 3), GFP_KERNEL)?;
        for width in [1usize, 8] {
            for m in msgs.iter_mut() {
                m.state = State::New;
                m.retransferred = false;
            }
            let (c, r) = run(&fs, &mut msgs, width, Fault::None)?;
            assert_eq!(r, Ok(()));
            assert_eq!(c.skipped, 1);
            assert_eq!(msgs.get(1).map(|m| m.prerequisite), Some(Some(0)));
            assert_eq!(msgs.get(1).map(|m| m.state), Some(State::Modified));
            let f = fs.inner.borrow_mut();
            assert_eq!(f.image.get(36..39), Some(&[2u8, 2, 2][..]));
            assert_eq!(f.image.get(39..42), Some(&[0u8, 0, 0][..]));
        }
        Ok(())
    }

    #[test]
    fn panic_when_first_message_is_suspended() -> Result {
        let fs = fake(1);
        let mut msgs = log_of(8, 5)?;
        let (_, r) = run(&fs, &mut msgs, 4, Fault::SuspendFirst)?;
        assert_eq!(
            r,
            Err(Panic {
                seq: 1,
                first_of_swarm: true,
                waits_for: 1
            })
        );
        // Nothing was modified.
        assert!(fs.inner.borrow_mut().image.iter().all(|&b| b == 0));
        Ok(())
    }

    #[test]
    fn panic_when_retransferred_message_is_suspended() -> Result {
        let fs = fake(1);
        let mut msgs = KVec::new();
        msgs.push(Message::new(1, 0, Op::Write, 0, 4), GFP_KERNEL)?;
        msgs.push(Message::new(2, 0, Op::Write, 3, 2), GFP_KERNEL)?;
        let (_, r) = run(&fs, &mut msgs, 4, Fault::SuspendRetransferred)?;
        assert_eq!(
            r,
            Err(Panic {
                seq: 2,
                first_of_swarm: false,
                waits_for: 1
            })
        );
        assert_eq!(msgs.get(1).map(|m| m.state), Some(State::Suspended));
        Ok(())
    }
}

// The volume as the file system of replay: LOADs are work items on a queue
// of `swarm_width` workers, each reading with bios; MODIFY applies records to
// the cache; the CP at the end commits them.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    new_condvar, new_mutex, new_work,
    sync::{Arc, CondVar, Mutex},
    time::{Delta, Instant, Monotonic},
    types::ScopeGuard,
    workqueue::{Work, WorkItem},
};

use crate::blockdev::{AsyncReads, ReadItem, ReadSlot};

use crate::bytes;
use crate::format::{Found, ScanEnd, MAX_RECORD_DATA, RECORD_HEADER_SIZE};
use crate::log::Position;
use crate::metadata::BLOCK_SIZE;
use crate::noio::NoIo;
use crate::prepare::{Preparer, PREPARE_MAX};
use crate::trace::Trace;
use crate::volume::Core;
use crate::wq::OwnedQueue;

/// Messages in a swarm: enough to keep `swarm_width` LOADs busy (most
/// messages of a long log need no read, their blocks' tables being cached
/// already, and at each swarm's end the LOADs in flight drain to none),
/// bounded so memory does not grow with the log: 256 per LOAD slot, at
/// least 1024, at most 16384 (about 4 MiB of messages; the initiator's
/// first swarm is a sixteenth of that). At width 64, swarms of 4096 replayed
/// bench-replay's log in 1352 ms against 1450 with swarms of 1024, once the
/// transfer started a swarm's LOADs before it MODIFYs what needs none; with
/// a short first swarm and joined LOADs, 16384 gave 1130-1160 ms against
/// 1153-1202 with 4096 (fewer swarm ends, where the LOADs drain).
fn swarm_size(width: usize) -> usize {
    (256 * width).clamp(1024, 16384)
}

/// The memory a replay holds besides the cache: the swarm (and the two the
/// initiator has ahead), its queues and waiter lists, the completion list,
/// the preparer's list and blocks, two record buffers (the initiator's and
/// MODIFY's), and a LOAD (work item and the buffer of a table block's two
/// copies) per slot of `width`.
fn working_set(size: usize, width: usize) -> usize {
    use core::mem::size_of;
    let load = size_of::<LoadWork>().max(size_of::<TableRead>()) + 2 * BLOCK_SIZE;
    size * (3 * size_of::<Message>()
        + 3 * size_of::<usize>()
        + size_of::<(usize, Result)>()
        + 3 * size_of::<(u64, u64)>())
        + 2 * MAX_RECORD_DATA as usize
        + width * load
        + PREPARE_MAX * BLOCK_SIZE
}

/// The last replay, for `status`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Report {
    pub(crate) ran: bool,
    pub(crate) counters: Counters,
    pub(crate) duration_us: u64,
    /// The most memory the replay held at a swarm's end: its own buffers
    /// and the cached blocks and table blocks (bytes).
    pub(crate) peak_bytes: u64,
    pub(crate) unverified: u64,
    /// Mean time a LOAD waited for a worker, and spent in it (reads and
    /// checks), in microseconds.
    pub(crate) load_wait_us: u64,
    pub(crate) load_run_us: u64,
    /// Time the MODIFY thread slept waiting for LOADs, and from the last
    /// LOAD's end to the replay's (microseconds).
    pub(crate) modify_slept_us: u64,
    pub(crate) tail_us: u64,
    pub(crate) panic: Option<Panic>,
    /// Sequence numbers of the first and last skipped messages.
    pub(crate) first_skipped: u64,
    pub(crate) last_skipped: u64,
    pub(crate) discarded: bool,
    /// The corrupt record found, if any.
    pub(crate) corrupt: Option<Corrupt>,
    /// Whether it and the records after it were dropped on request.
    pub(crate) corrupt_discarded: bool,
}

/// A corrupt record: where the scan of the log ended although a valid
/// record follows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt {
    /// The sequence number the corrupt record should carry.
    pub(crate) seq: u64,
    /// Its log offset.
    pub(crate) offset: u64,
    /// The log offset of the valid record after it.
    pub(crate) next_offset: u64,
}

/// LOAD completions, from the workers to the MODIFY path.
#[pin_data]
struct Completions {
    #[pin]
    list: Mutex<KVec<(usize, Result)>>,
    #[pin]
    arrived: CondVar,
    /// Nanoseconds LOADs spent queued, from their transfer to a worker
    /// taking them.
    queued_ns: AtomicU64,
    /// Nanoseconds LOADs spent in their workers (reads, checks).
    run_ns: AtomicU64,
}

#[pin_data]
struct LoadWork {
    core: Arc<Core>,
    done: Arc<Completions>,
    idx: usize,
    msg: Message,
    queued: Instant<Monotonic>,
    #[pin]
    work: Work<LoadWork>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for LoadWork { self.work }
}

impl WorkItem for LoadWork {
    type Pointer = Arc<LoadWork>;

    fn run(this: Arc<LoadWork>) {
        let _noio = NoIo::new();
        let started = Instant::<Monotonic>::now();
        let res = this.core.load(&this.msg);
        this.done
            .finish(this.idx, res, started - this.queued, started.elapsed());
    }
}

impl Completions {
    /// LOAD `idx` ended with `res`, having waited `queued` for a worker and
    /// run `ran`.
    fn finish(&self, idx: usize, res: Result, queued: Delta, ran: Delta) {
        let nanos = |d: Delta| d.as_nanos().max(0) as u64;
        self.queued_ns.fetch_add(nanos(queued), Relaxed);
        self.run_ns.fetch_add(nanos(ran), Relaxed);
        let mut list = self.list.lock();
        // Capacity for every message of the swarm was reserved up front.
        if list.push((idx, res), GFP_ATOMIC).is_ok() {
            self.arrived.notify_all();
        }
    }
}

/// A LOAD whose one read is a table block (most LOADs): the transfer
/// starts its read at once, without a worker, and the read's end queues
/// this item on the LOAD queue, which picks the copy in force and caches
/// it. So a LOAD holds no worker while its read is in flight, and no
/// worker has to wake up to start it.
#[pin_data]
struct TableRead {
    core: Arc<Core>,
    done: Arc<Completions>,
    idx: usize,
    msg: Message,
    /// The table block read.
    table: u64,
    /// Where its read lands.
    target: ReadSlot,
    started: Instant<Monotonic>,
    #[pin]
    work: Work<TableRead>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for TableRead { self.work }
}

impl ReadItem for TableRead {
    fn slot(&self) -> &ReadSlot {
        &self.target
    }
}

impl WorkItem for TableRead {
    type Pointer = Arc<TableRead>;

    fn run(this: Arc<TableRead>) {
        let _noio = NoIo::new();
        let res = match this.target.take() {
            Some(Ok(mut both)) => this
                .core
                .table_from(this.table, &mut both)
                .and_then(|t| this.core.cache_table(this.table, t))
                .map(|_| ()),
            Some(Err(e)) => Err(e),
            None => Err(EIO),
        };
        // Anything else the LOAD needs (nothing, unless the cache changed).
        let res = res.and_then(|()| this.core.load(&this.msg));
        let waited = Delta::ZERO;
        this.done
            .finish(this.idx, res, waited, this.started.elapsed());
    }
}

/// A swarm the initiator scanned, for the MODIFY path.
struct Scanned {
    msgs: KVec<Message>,
    /// The records of one whole block, for the preparer.
    whole: KVec<(u64, u64)>,
    /// Where the record after the swarm is; `None` for the last swarm.
    next: Option<Position>,
}

/// What the initiator hands to the MODIFY path.
#[derive(Default)]
struct Handover {
    /// The next swarm, in log order.
    ready: Option<Scanned>,
    /// Set when the scan is over: its end and the offset of a valid record
    /// behind that end (the record at the end is then corrupt), or why it
    /// failed (`ECANCELED` when told to stop).
    end: Option<Result<(ScanEnd, Option<u64>)>>,
    stop: bool,
}

/// The initiator: scans the log from the CP marker on its own thread and
/// delivers the records as swarms of messages, one swarm ahead of the one
/// the MODIFY path runs (two with the one it is filling), so that the scan
/// overlaps LOADs and MODIFYs instead of running between swarms.
#[pin_data]
struct Initiator {
    core: Arc<Core>,
    from: crate::format::CpMarker,
    /// Messages per swarm.
    size: usize,
    #[pin]
    inner: Mutex<Handover>,
    #[pin]
    changed: CondVar,
    #[pin]
    work: Work<Initiator>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for Initiator { self.work }
}

impl Initiator {
    /// Tells the initiator to stop scanning (and not to wait for the
    /// MODIFY path any more).
    fn stop(&self) {
        self.inner.lock().stop = true;
        self.changed.notify_all();
    }

    /// Hands `msgs` over once the MODIFY path has taken the swarm before
    /// it; with `end`, as the last swarm. Fails if told to stop.
    fn hand_over(
        &self,
        msgs: KVec<Message>,
        whole: KVec<(u64, u64)>,
        next: Option<Position>,
        end: Option<Result<(ScanEnd, Option<u64>)>>,
    ) -> Result {
        let mut h = self.inner.lock();
        while h.ready.is_some() && !h.stop {
            self.changed.wait(&mut h);
        }
        if h.stop {
            h.end = Some(Err(ECANCELED));
            return Err(ECANCELED);
        }
        if !msgs.is_empty() {
            h.ready = Some(Scanned { msgs, whole, next });
        }
        if end.is_some() {
            h.end = end;
        }
        self.changed.notify_all();
        Ok(())
    }

    fn scan(&self) -> Result {
        let mut scratch = KVec::new();
        bytes::resize_zeroed(&mut scratch, MAX_RECORD_DATA as usize, GFP_KERNEL)?;
        let mut swarm = KVec::with_capacity(self.size, GFP_KERNEL)?;
        let mut whole = KVec::new();
        // The first swarm is a sixteenth of the others, so that the first
        // LOADs start after a short scan (bench-replay, width 64: about 10
        // ms for 1024 records against 21 for 2048 and 42 for 4096) while
        // the next is scanned, in time: the first swarm's LOADs take longer.
        let mut limit = (self.size / 16).max(1);
        let end = self.core.log.scan(&self.from, &mut scratch, |f: &Found| {
            if swarm.len() >= limit {
                limit = self.size;
                let full =
                    core::mem::replace(&mut swarm, KVec::with_capacity(self.size, GFP_KERNEL)?);
                let next = Position {
                    offset: f.offset,
                    seq: f.header.seq,
                };
                self.hand_over(full, core::mem::take(&mut whole), Some(next), None)?;
            }
            let h = f.header;
            let mut m = Message::new(h.seq, f.offset, h.op, h.sector, h.nr_sectors);
            if h.op == Op::Write && is_whole_block(h.sector, u64::from(h.nr_sectors)) {
                m.block_crc0 = Some(f.data_crc0);
                whole.push((h.seq, f.offset), GFP_KERNEL)?;
            }
            swarm.push(m, GFP_KERNEL)?;
            Ok::<(), Error>(())
        })?;
        let behind = self.core.log.valid_record_after(&end, &mut scratch);
        self.hand_over(swarm, whole, None, Some(Ok((end, behind))))
    }
}

impl WorkItem for Initiator {
    type Pointer = Arc<Initiator>;

    fn run(this: Arc<Initiator>) {
        let _noio = NoIo::new();
        if let Err(e) = this.scan() {
            let mut h = this.inner.lock();
            if h.end.is_none() {
                h.end = Some(Err(e));
            }
            drop(h);
            this.changed.notify_all();
        }
    }
}

/// What a message's LOAD has to read.
struct Needs {
    /// The table blocks not cached, in order.
    tables: KVec<u64>,
    /// Whether it reads the old contents of a block it changes in part.
    partial: bool,
}

impl Core {
    /// What message `m`'s LOAD has to read now.
    fn load_needs(&self, m: &Message) -> Result<Needs> {
        let st = self.state.lock();
        let mut tables = KVec::new();
        for b in m.blocks() {
            let (t, _) = self.layout.entry_of(b).ok_or(ENXIO)?;
            if st.tables.get(&t).is_none() && tables.last() != Some(&t) {
                tables.push(t, GFP_KERNEL)?;
            }
        }
        let partial = m
            .partial_blocks()
            .into_iter()
            .flatten()
            .any(|b| !st.cache.get(b).is_some_and(|c| c.is_full()));
        Ok(Needs { tables, partial })
    }

    /// LOAD: the table blocks of every block `m` changes, and the old
    /// contents of those it changes in part.
    fn load(&self, m: &Message) -> Result {
        for b in m.blocks() {
            self.entry(b)?;
        }
        // Allocated only for a block changed in part (most LOADs read only
        // a table block).
        let mut buf = KVec::new();
        for b in m.partial_blocks().into_iter().flatten() {
            if self.state.lock().cache.get(b).is_some_and(|c| c.is_full()) {
                continue;
            }
            bytes::resize_zeroed(&mut buf, BLOCK_SIZE, GFP_KERNEL)?;
            self.read_array_block_as(b, &mut buf, true)?;
            self.state.lock().cache.load_base(b, &buf, GFP_KERNEL)?;
        }
        Ok(())
    }
}

/// The LOADs in flight by the table blocks they read, so that a message
/// whose only reads are table blocks one LOAD in flight is reading joins
/// that LOAD ([`Start::Joined`]) instead of reading them again: at width 64,
/// 5 % of bench-replay's LOADs were such second reads, at 256 14 %.
struct InFlight {
    /// Table block -> the LOAD (its message's index) reading it.
    by_table: RBTree<u64, usize>,
    /// LOAD -> the table blocks it reads and the messages that joined it.
    loads: RBTree<usize, Reading>,
    /// Messages that joined a LOAD still in flight.
    riders: usize,
}

/// A LOAD in flight that reads table blocks.
struct Reading {
    tables: KVec<u64>,
    riders: KVec<(usize, Message)>,
}

impl InFlight {
    fn new() -> Self {
        Self {
            by_table: RBTree::new(),
            loads: RBTree::new(),
            riders: 0,
        }
    }

    /// The one LOAD in flight that reads every block of `tables`, if any.
    fn reader_of(&self, tables: &[u64]) -> Option<usize> {
        let first = *self.by_table.get(tables.first()?)?;
        tables
            .iter()
            .all(|t| self.by_table.get(t) == Some(&first))
            .then_some(first)
    }

    /// Message `idx` joins LOAD `reader`.
    fn join(&mut self, reader: usize, idx: usize, m: Message) -> Result {
        let r = self.loads.get_mut(&reader).ok_or(EINVAL)?;
        r.riders.push((idx, m), GFP_KERNEL)?;
        self.riders += 1;
        Ok(())
    }

    /// LOAD `idx` was issued and reads `tables` (those no other LOAD in
    /// flight reads already become its own). On failure (allocation)
    /// nothing is registered.
    fn issued(&mut self, idx: usize, mut tables: KVec<u64>) -> Result {
        tables.retain(|t| self.by_table.get(t).is_none());
        if tables.is_empty() {
            return Ok(());
        }
        let r = Reading {
            tables,
            riders: KVec::new(),
        };
        self.loads.try_create_and_insert(idx, r, GFP_KERNEL)?;
        let mut res = Ok(());
        if let Some(r) = self.loads.get(&idx) {
            for &t in r.tables.iter() {
                if let Err(e) = self.by_table.try_create_and_insert(t, idx, GFP_KERNEL) {
                    res = Err(e);
                    break;
                }
            }
        }
        if res.is_err() {
            // Undo: the LOAD and the tables registered as its own.
            self.ended(idx);
        }
        res
    }

    /// LOAD `idx` ended: its tables are no longer in flight; returns the
    /// messages that joined it.
    fn ended(&mut self, idx: usize) -> KVec<(usize, Message)> {
        let Some(r) = self.loads.remove(&idx) else {
            return KVec::new();
        };
        for t in r.tables.iter() {
            if self.by_table.get(t) == Some(&idx) {
                self.by_table.remove(t);
            }
        }
        self.riders -= r.riders.len();
        r.riders
    }
}

#[kernel::prelude::kunit_tests(swarmlog_in_flight)]
mod in_flight_tests {
    use super::*;

    fn tables(t: &[u64]) -> Result<KVec<u64>> {
        let mut v = KVec::new();
        v.extend_from_slice(t, GFP_KERNEL)?;
        Ok(v)
    }

    #[test]
    fn joins_only_a_load_reading_every_table() -> Result {
        let m = Message::new(1, 0, Op::Write, 0, 8);
        let mut f = InFlight::new();
        assert_eq!(f.reader_of(&[4]), None);
        f.issued(0, tables(&[4, 5])?)?;
        // 5 is read by 0 already: 1 owns only 6.
        f.issued(1, tables(&[5, 6])?)?;
        f.issued(2, KVec::new())?;
        assert_eq!(f.reader_of(&[4]), Some(0));
        assert_eq!(f.reader_of(&[4, 5]), Some(0));
        assert_eq!(f.reader_of(&[6]), Some(1));
        assert_eq!(f.reader_of(&[5, 6]), None);
        assert_eq!(f.reader_of(&[7]), None);
        assert_eq!(f.reader_of(&[]), None);
        f.join(0, 7, m)?;
        f.join(0, 8, m)?;
        assert_eq!(f.join(2, 9, m), Err(EINVAL));
        let riders = f.ended(0);
        assert_eq!(riders.iter().map(|r| r.0).sum::<usize>(), 15);
        // Its tables are no longer in flight; 1's still are.
        assert_eq!(f.reader_of(&[4]), None);
        assert_eq!(f.reader_of(&[6]), Some(1));
        assert!(f.ended(0).is_empty());
        assert!(f.ended(1).is_empty());
        assert_eq!(f.reader_of(&[6]), None);
        Ok(())
    }
}

/// How to replay.
pub(crate) struct Params<'a> {
    /// Most LOADs in flight.
    pub(crate) width: usize,
    /// Drop the records that have to be skipped.
    pub(crate) discard_skipped: bool,
    /// Replay up to a corrupt record and drop it and the records after it.
    pub(crate) discard_corrupt: bool,
    /// Where the transitions go.
    pub(crate) trace: &'a Trace,
}

/// The volume's side of one replay.
struct VolumeFs<'a> {
    trace: &'a Trace,
    core: &'a Arc<Core>,
    queue: &'a OwnedQueue,
    /// Table block reads that end on `queue`.
    reads: &'a AsyncReads<'a>,
    done: Arc<Completions>,
    /// The LOADs in flight that read table blocks, and who joined them.
    in_flight: core::cell::RefCell<InFlight>,
    /// Completions of joined messages, returned before any other.
    ready: core::cell::RefCell<KVec<(usize, Result)>>,
    /// Blocks prepared ahead of MODIFY.
    prep: &'a Preparer,
    /// Record data for MODIFY (which runs on one thread only).
    data: core::cell::RefCell<KVec<u8>>,
    report: &'a core::cell::RefCell<Report>,
    /// Nanoseconds the MODIFY thread slept waiting for a LOAD.
    slept_ns: core::cell::Cell<u64>,
    /// When the MODIFY thread last took a LOAD's completion.
    last_load: core::cell::Cell<Option<Instant<Monotonic>>>,
}

impl VolumeFs<'_> {
    /// Queues message `idx`'s LOAD on the LOAD workqueue.
    fn enqueue(&self, idx: usize, m: &Message) -> Result {
        let work = Arc::pin_init(
            pin_init!(LoadWork {
                core: self.core.clone(),
                done: self.done.clone(),
                idx,
                msg: *m,
                queued: Instant::now(),
                work <- new_work!("swarmlog::load"),
            }),
            GFP_KERNEL,
        )?;
        self.queue.enqueue(work).map_err(|_| EBUSY)
    }

    /// Starts message `idx`'s LOAD, a read of table block `table` only.
    fn read_table(&self, idx: usize, m: &Message, table: u64) -> Result {
        let target = ReadSlot::new(2 * BLOCK_SIZE)?;
        let item = Arc::pin_init(
            pin_init!(TableRead {
                core: self.core.clone(),
                done: self.done.clone(),
                idx,
                msg: *m,
                table,
                target,
                started: Instant::now(),
                work <- new_work!("swarmlog::table_read"),
            }),
            GFP_KERNEL,
        )?;
        self.reads.read(self.core.table_sector(table), item)
    }
}

impl FileSystem for VolumeFs<'_> {
    fn start_load(&self, idx: usize, m: &Message) -> Result<Start> {
        if m.blocks().end > self.core.layout.data_blocks {
            return Err(ENXIO);
        }
        let needs = self.core.load_needs(m)?;
        if needs.tables.is_empty() && !needs.partial {
            return Ok(Start::Done);
        }
        let mut in_flight = self.in_flight.try_borrow_mut().map_err(|_| EBUSY)?;
        if !needs.partial {
            if let Some(reader) = in_flight.reader_of(&needs.tables) {
                // Room for its completion first, whenever the LOAD ends:
                // `ready` always has room for every message that joined one.
                // (Without room, it reads for itself.)
                let room = self
                    .ready
                    .try_borrow_mut()
                    .map_err(|_| EBUSY)
                    .and_then(|mut r| Ok(r.reserve(in_flight.riders + 1, GFP_KERNEL)?));
                if room.is_ok() && in_flight.join(reader, idx, *m).is_ok() {
                    return Ok(Start::Joined);
                }
            }
        }
        match (needs.partial, needs.tables.first()) {
            (false, Some(&t)) if needs.tables.len() == 1 => self.read_table(idx, m, t)?,
            _ => self.enqueue(idx, m)?,
        }
        // Not registered (no allocation then), it is only not joined.
        let _ = in_flight.issued(idx, needs.tables);
        Ok(Start::Issued)
    }

    fn wait_load(&self) -> (usize, Result) {
        if let Some(r) = self.ready.try_borrow_mut().ok().and_then(|mut r| r.pop()) {
            return r;
        }
        let (idx, res) = loop {
            if let Some(r) = self.done.list.lock().pop() {
                break r;
            }
            // Nothing yet: prepare a block MODIFY will need, then look
            // again.
            if self.prep.prepare_one() {
                continue;
            }
            let slept = Instant::<Monotonic>::now();
            let mut list = self.done.list.lock();
            while list.is_empty() {
                self.done.arrived.wait(&mut list);
            }
            let r = list.pop();
            drop(list);
            let ns = slept.elapsed().as_nanos().max(0) as u64;
            self.slept_ns.set(self.slept_ns.get() + ns);
            if let Some(r) = r {
                break r;
            }
        };
        self.last_load.set(Some(Instant::now()));
        let (Ok(mut in_flight), Ok(mut ready)) =
            (self.in_flight.try_borrow_mut(), self.ready.try_borrow_mut())
        else {
            return (idx, res);
        };
        for (rider, m) in in_flight.ended(idx) {
            // Its tables are cached now. If the LOAD failed, each reads for
            // itself: the failure may be another block's.
            let r = match res {
                Ok(()) => Ok(()),
                Err(_) => match self.enqueue(rider, &m) {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                },
            };
            // `start_load` made room for it.
            let _ = ready.push_within_capacity((rider, r));
        }
        (idx, res)
    }

    fn modify(&self, m: &Message) -> Result {
        let nr = u64::from(m.nr_sectors);
        if let Some(data) = self.prep.take(m) {
            return self.core.state.lock().cache.put_whole(
                m.sector / SECTORS,
                data,
                m.block_crc0,
                &mut None,
                GFP_KERNEL,
            );
        }
        if m.op != Op::Write {
            return self
                .core
                .state
                .lock()
                .cache
                .apply(m.sector, nr, None, GFP_KERNEL);
        }
        let data_at = m.offset + RECORD_HEADER_SIZE as u64;
        if m.sector % SECTORS + nr <= SECTORS {
            // One block (most records): read from the pmem straight into
            // the cached block, not through a buffer.
            let mut st = self.core.state.lock();
            let log = &self.core.log;
            st.cache
                .apply_in_block(m.sector, nr, GFP_KERNEL, |dst| log.read(data_at, dst))?;
            if let Some(c) = m.block_crc0 {
                st.cache.set_block_crc0(m.sector / SECTORS, c);
            }
            return Ok(());
        }
        let mut data = self.data.try_borrow_mut().map_err(|_| EBUSY)?;
        let len = (nr * 512) as usize;
        let buf = data.get_mut(..len).ok_or(EINVAL)?;
        self.core.log.read(data_at, buf)?;
        let mut st = self.core.state.lock();
        st.cache.apply(m.sector, nr, Some(buf), GFP_KERNEL)?;
        if let Some(c) = m.block_crc0 {
            st.cache.set_block_crc0(m.sector / SECTORS, c);
        }
        Ok(())
    }

    fn skipped(&self, m: &Message, err: Error) {
        pr_warn!(
            "{}: replay: record seq {} (sectors {}-{}) skipped: its part of the array is unavailable ({:?}); the record is kept\n",
            self.core.name.to_str().unwrap_or("?"),
            m.seq,
            m.sector,
            m.sector + u64::from(m.nr_sectors).saturating_sub(1),
            err
        );
        let Ok(mut r) = self.report.try_borrow_mut() else {
            return;
        };
        if r.first_skipped == 0 {
            r.first_skipped = m.seq;
        }
        r.last_skipped = m.seq;
    }

    fn transition(&self, m: &Message, to: State) {
        self.trace.record(m.seq, to);
    }

    fn delivered(&self, msgs: &[Message]) {
        self.trace
            .record_all(msgs.iter().map(|m| m.seq), State::New);
    }
}

/// Why [`replay`] did not finish.
pub(crate) enum Stop {
    /// An error (allocation, log read).
    Error(Error),
    /// The panic state.
    Panic(Panic),
    /// Messages were skipped and not discarded: the log is kept.
    Skipped,
    /// A complete record is corrupt (valid records follow it): the log is
    /// kept.
    Corrupt(Corrupt),
}

/// Replays the log from `from` with at most `p.width` LOADs in flight. With
/// `p.discard_skipped`, skipped records are dropped (after a warning each);
/// else any skipped record stops activation with the log kept. On success
/// the replayed state is committed by a CP. Returns the end of the log; a
/// log without records past `from` leaves `report` and the trace as they
/// were.
pub(crate) fn replay(
    core: &Arc<Core>,
    from: &crate::format::CpMarker,
    p: &Params<'_>,
    report: &core::cell::RefCell<Report>,
) -> Result<ScanEnd, Stop> {
    let (width, discard_skipped) = (p.width.max(1), p.discard_skipped);
    let start = kernel::time::Instant::<kernel::time::Monotonic>::now();
    let queue = OwnedQueue::new_io(c"swarmlog-load", width.min(512) as i32).map_err(Stop::Error)?;
    let size = swarm_size(width);
    let done = Arc::pin_init(
        pin_init!(Completions {
            list <- new_mutex!(KVec::new()),
            arrived <- new_condvar!(),
            queued_ns: AtomicU64::new(0),
            run_ns: AtomicU64::new(0),
        }),
        GFP_KERNEL,
    )
    .map_err(Stop::Error)?;
    done.list
        .lock()
        .reserve(size, GFP_KERNEL)
        .map_err(|_| Stop::Error(ENOMEM))?;
    let mut data = KVec::new();
    bytes::resize_zeroed(&mut data, MAX_RECORD_DATA as usize, GFP_KERNEL)
        .map_err(|_| Stop::Error(ENOMEM))?;
    let timing = done.clone();
    let reads = AsyncReads::new(&core.array, &queue).map_err(Stop::Error)?;
    // The preparer's thread runs beside the MODIFY path (this thread).
    // Whatever way this function ends, it is told to stop before its queue
    // is dropped, which waits for it.
    let prep = Preparer::new(core).map_err(Stop::Error)?;
    let prep_queue = OwnedQueue::new_io(c"swarmlog-prep", 1).map_err(Stop::Error)?;
    let _stop_prep = ScopeGuard::new_with_data(prep.clone(), |p| p.stop());
    prep_queue
        .enqueue(prep.clone())
        .map_err(|_| Stop::Error(EBUSY))?;
    let fs = VolumeFs {
        trace: p.trace,
        core,
        queue: &queue,
        reads: &reads,
        done,
        in_flight: core::cell::RefCell::new(InFlight::new()),
        prep: &prep,
        ready: core::cell::RefCell::new(KVec::new()),
        data: core::cell::RefCell::new(data),
        report,
        slept_ns: core::cell::Cell::new(0),
        last_load: core::cell::Cell::new(None),
    };
    let mut counters = Counters::default();
    let mut stop: Option<Stop> = None;

    let mut peak = 0usize;
    let mut run = |swarm: &mut KVec<Message>,
                   next: Option<Position>,
                   counters: &mut Counters|
     -> Result<(), Stop> {
        p.trace.next_swarm();
        match run_swarm(&fs, swarm, width, counters, Fault::None) {
            Ok(Ok(())) => {}
            Ok(Err(p)) => return Err(Stop::Panic(p)),
            Err(e) => return Err(Stop::Error(e)),
        }
        let cached = {
            let st = core.state.lock();
            st.cache.blocks() + crate::cp::table_count(&st.tables)
        };
        peak = peak.max(working_set(size, width) + cached * BLOCK_SIZE);
        if counters.messages / 10000
            != (counters.messages - counters.messages.min(size as u64)) / 10000
        {
            pr_info!(
                "{}: replay: {} messages in {} swarms so far\n",
                core.name.to_str().unwrap_or("?"),
                counters.messages,
                counters.swarms
            );
        }
        // Keep memory bounded: commit what is replayed so far, unless a
        // skipped record must be kept in the log. The initiator reads
        // ahead of `next`, which a CP does not change.
        if let Some(pos) = next {
            let big = cached >= crate::max_cache_blocks() / 2;
            if big && counters.skipped == 0 {
                core.state.lock().head = pos;
                core.checkpoint().map_err(Stop::Error)?;
            }
        }
        Ok(())
    };

    // The initiator scans on its own thread, a swarm or two ahead of the
    // MODIFY path (this thread), which takes its swarms in log order.
    let scan_queue = OwnedQueue::new_io(c"swarmlog-scan", 1).map_err(Stop::Error)?;
    let initiator = Arc::pin_init(
        pin_init!(Initiator {
            core: core.clone(),
            from: *from,
            size,
            inner <- new_mutex!(Handover::default()),
            changed <- new_condvar!(),
            work <- new_work!("swarmlog::scan"),
        }),
        GFP_KERNEL,
    )
    .map_err(Stop::Error)?;
    // Whatever way this function ends, the initiator is told to stop
    // (before `scan_queue` is dropped, which waits for it).
    let _stop_initiator = ScopeGuard::new_with_data(initiator.clone(), |i| i.stop());
    scan_queue
        .enqueue(initiator.clone())
        .map_err(|_| Stop::Error(EBUSY))?;
    let mut first = true;
    let mut corrupt = None;
    let as_corrupt = |e: &ScanEnd, next: Option<u64>| {
        next.map(|next_offset| Corrupt {
            seq: e.seq,
            offset: e.offset,
            next_offset,
        })
    };
    let end = loop {
        let (scanned, end) = {
            let mut h = initiator.inner.lock();
            loop {
                if let Some(s) = h.ready.take() {
                    initiator.changed.notify_all();
                    break (Some(s), h.end);
                }
                if h.end.is_some() {
                    break (None, h.end);
                }
                initiator.changed.wait(&mut h);
            }
        };
        let Some(mut scanned) = scanned else {
            match end {
                Some(Ok((e, next))) => {
                    corrupt = corrupt.or(as_corrupt(&e, next));
                    break Ok(e);
                }
                Some(Err(e)) => {
                    // The initiator failed (allocation) or was stopped.
                    if stop.is_none() {
                        stop = Some(Stop::Error(e));
                    }
                    break Err(());
                }
                None => break Err(()),
            }
        };
        // The last swarm comes with the scan's end. A valid record behind
        // the end: the record there is corrupt, not torn, and the last
        // swarm is replayed only if it and what follows are to be dropped.
        if let (None, Some(Ok((e, next)))) = (scanned.next, end) {
            corrupt = as_corrupt(&e, next);
            if corrupt.is_some() && !p.discard_corrupt {
                break Ok(e);
            }
        }
        if first {
            first = false;
            p.trace.start();
            pr_info!(
                "{}: replaying the log from seq {} with swarm_width {width}\n",
                core.name.to_str().unwrap_or("?"),
                scanned.msgs.first().map_or(0, |m| m.seq)
            );
        }
        prep.new_swarm(core::mem::take(&mut scanned.whole));
        if let Err(s) = run(&mut scanned.msgs, scanned.next, &mut counters) {
            stop = Some(s);
            initiator.stop();
            break Err(());
        }
    };
    if let Some(c) = corrupt {
        let mut r = report.borrow_mut();
        r.ran = true;
        r.corrupt = Some(c);
        if !p.discard_corrupt {
            // Before anything is replayed, or after the swarms so far.
            r.counters = counters;
            return Err(Stop::Corrupt(c));
        }
        r.corrupt_discarded = true;
    }
    let end = match end {
        // A clean log: nothing to replay, nothing to report.
        Ok(end) if first && corrupt.is_none() => return Ok(end),
        Ok(end) => Some(end),
        Err(()) => None,
    };
    let (slept_ns, last_load) = (fs.slept_ns.get(), fs.last_load.get());
    initiator.stop();
    drop(scan_queue);
    // Every read ended (and queued its item) before the queue goes.
    drop(reads);
    drop(queue);
    {
        let mut r = report.borrow_mut();
        r.ran = true;
        r.counters = counters;
        r.duration_us = start.elapsed().as_micros_ceil().max(0) as u64;
        r.peak_bytes = peak as u64;
        r.unverified = core.stats.replay_unverified.load(Relaxed);
        let per_load = |ns: &AtomicU64| ns.load(Relaxed) / 1000 / counters.loads.max(1);
        r.load_wait_us = per_load(&timing.queued_ns);
        r.load_run_us = per_load(&timing.run_ns);
        r.modify_slept_us = slept_ns / 1000;
        r.tail_us = last_load.map_or(0, |t| t.elapsed().as_micros_ceil().max(0) as u64);
        if let Some(Stop::Panic(p)) = &stop {
            r.panic = Some(*p);
        }
    }
    if let Some(s) = stop {
        return Err(s);
    }
    let end = end.ok_or(Stop::Error(EIO))?;
    if counters.skipped > 0 {
        if !discard_skipped {
            return Err(Stop::Skipped);
        }
        report.borrow_mut().discarded = true;
    }
    core.state.lock().head = Position {
        offset: end.offset,
        seq: end.seq,
    };
    core.checkpoint().map_err(Stop::Error)?;
    Ok(end)
}
