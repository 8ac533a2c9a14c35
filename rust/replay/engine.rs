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
//! This file is the engine ([`run_swarm`]), independent of the volume: it drives a
//! [`FileSystem`], which the volume implements with bios on its workqueue
//! and KUnit with a fake array whose completion order it controls.

use kernel::{prelude::*, rbtree::RBTree};

use super::message::{Message, Start, State};
use crate::format::log::Op;

/// The file system side of replay.
pub(crate) trait FileSystem {
    /// Starts message `idx`'s LOAD (see [`Start`]); its completion, unless
    /// [`Start::Done`], comes from [`Self::wait_load`]. `Err`: its part of
    /// the array is unavailable.
    fn start_load(&self, idx: usize, m: &Message) -> Result<Start>;
    /// Waits for one issued LOAD to complete: `(idx, result)`.
    fn wait_load(&self) -> (usize, Result);
    /// Applies message `m` (the MODIFY phase). `Err` stops the swarm with
    /// that error: its part of the array was LOADED already, so a failure
    /// here is never the array's.
    fn modify(&self, m: &Message) -> Result;
    /// Reports a skipped message.
    fn skipped(&self, m: &Message, err: Error);
    /// Reports a transition, for the trace.
    fn transition(&self, _m: &Message, _to: State) {}
    /// Whether the operator asked the replay to stop: the swarm then ends
    /// at once with `ECANCELED` (LOADs in flight are the caller's to wait
    /// for; what was MODIFIED is in memory only, nothing is committed).
    fn stop_requested(&self) -> bool {
        false
    }
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
/// a tree insertion per message.
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
    /// The next message in log order to MODIFY.
    next_modify: usize,
    /// Per message: the first message suspended waiting for it.
    waiter_head: KVec<usize>,
    /// Per message: the next message on the same waiter list.
    waiter_next: KVec<usize>,
}

/// Whether a LOAD's error says the array cannot serve that
/// part of it: beyond its end (`ENXIO`), a read error or both copies of a
/// table block corrupt (`EIO`), a member gone (`ENODEV`), and the block
/// layer's other media and transport errors. Only those make a message
/// SKIPPED (reported, its record kept for a later replay). Any other error
/// (`ENOMEM`, `EBUSY`, `EAGAIN`, `EINVAL`, ...) is the replay's own failure:
/// it stops the replay with that error, nothing skipped, so that
/// `discard_skipped` can never drop a record for it.
fn array_unavailable(e: Error) -> bool {
    [
        EIO, ENXIO, ENODEV, ENODATA, EREMOTEIO, EBADE, ENOLINK, EILSEQ, ETIMEDOUT, ETIME,
    ]
    .contains(&e)
}

impl<F: FileSystem> Swarm<'_, F> {
    fn set(&mut self, i: usize, s: State) {
        if let Some(m) = self.msgs.get_mut(i) {
            m.state = s;
            self.fs.transition(m, s);
        }
    }

    /// Message `i`'s LOAD failed with `e`: SKIPPED if the array
    /// cannot serve its part ([`array_unavailable`]), else the swarm stops
    /// with `e`.
    fn fail(&mut self, i: usize, e: Error) -> Result {
        if !array_unavailable(e) {
            return Err(e);
        }
        self.c.skipped += 1;
        self.set(i, State::Skipped);
        if let Some(m) = self.msgs.get(i) {
            self.fs.skipped(m, e);
        }
        Ok(())
    }

    /// MODIFY, strictly in log order, as far as LOADs allow; each message
    /// done (MODIFIED or SKIPPED) is the prerequisite event of those that
    /// waited for it, which the initiator retransfers.
    fn modify_ready(&mut self) -> Result {
        while let Some(m) = self.msgs.get(self.next_modify).copied() {
            let done = self.next_modify;
            match m.state {
                State::Loaded if m.op == Op::Wrap => self.set(done, State::Modified),
                // A MODIFY failure is never the array's (its part was
                // LOADED): the log's pmem unreadable, no memory. It stops
                // the swarm, nothing skipped, so that `discard_skipped`
                // cannot drop the record for it.
                State::Loaded => {
                    self.fs.modify(&m)?;
                    self.set(done, State::Modified);
                }
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
            match self.fs.start_load(i, &m) {
                Ok(Start::Done) => {
                    // Not MODIFIED here: the LOADs behind it start first,
                    // and the MODIFYs run while they are in flight.
                    self.c.no_load += 1;
                    self.set(i, State::Loaded);
                }
                Ok(Start::Issued) => {
                    self.c.loads += 1;
                    self.in_flight += 1;
                    self.c.peak_in_flight = self.c.peak_in_flight.max(self.in_flight as u64);
                    self.set(i, State::Loading);
                }
                Err(e) => self.fail(i, e)?,
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
        next_modify: 0,
        waiter_head: KVec::new(),
        waiter_next: KVec::new(),
    };
    loop {
        if fs.stop_requested() {
            return Err(ECANCELED);
        }
        if let Err(p) = s.transfer()? {
            return Ok(Err(p));
        }
        s.modify_ready()?;
        if s.next_modify >= n {
            return Ok(Ok(()));
        }
        if s.in_flight > 0 && (s.in_flight >= s.width || s.queue_empty()) {
            let (i, res) = fs.wait_load();
            s.in_flight = s.in_flight.saturating_sub(1);
            match res {
                Ok(()) => s.set(i, State::Loaded),
                Err(e) => s.fail(i, e)?,
            }
        } else if s.in_flight == 0
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
    use crate::device::cache::SECTORS;
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
        /// A message whose LOAD completes with `fail_errno` (`EIO` unless
        /// a test sets it).
        fail_seq: Option<u64>,
        fail_errno: Error,
        rng: u64,
        bad_block: Option<u64>,
        trace: KVec<(u64, State)>,
        loaded_blocks: KVec<u64>,
        /// Messages with an even sequence number need no reads (as if their
        /// blocks were cached).
        hits: bool,
        /// A message whose MODIFY fails with this error.
        modify_fails: Option<(u64, Error)>,
        /// The operator asks the replay to stop once this many messages
        /// are MODIFIED.
        stop_after: Option<usize>,
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
            for b in m.partial_blocks().into_iter().flatten() {
                f.loaded_blocks.push(b, GFP_KERNEL)?;
            }
            f.pending.push(me, GFP_KERNEL)?;
            Ok(Start::Issued)
        }

        fn wait_load(&self) -> (usize, Result) {
            let mut f = self.inner.borrow_mut();
            let n = f.pending.len();
            if n == 0 {
                return (usize::MAX, Err(EINVAL));
            }
            let pick = (f.next() % n as u64) as usize;
            let Ok((idx, _, seq)) = f.pending.remove(pick) else {
                return (usize::MAX, Err(EINVAL));
            };
            let res = if f.fail_seq == Some(seq) {
                Err(f.fail_errno)
            } else {
                Ok(())
            };
            (idx, res)
        }

        fn modify(&self, m: &Message) -> Result {
            let mut f = self.inner.borrow_mut();
            if let Some((seq, e)) = f.modify_fails {
                if seq == m.seq {
                    return Err(e);
                }
            }
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

        fn stop_requested(&self) -> bool {
            let f = self.inner.borrow();
            let modified = f
                .trace
                .iter()
                .filter(|&&(_, s)| s == State::Modified)
                .count();
            f.stop_after.is_some_and(|n| modified >= n)
        }
    }

    fn fake(seed: u64) -> Fake {
        Fake {
            inner: RefCell::new(FakeInner {
                image: [0; (BLOCKS * SECTORS) as usize],
                pending: KVec::new(),
                fail_seq: None,
                fail_errno: EIO,
                rng: seed | 1,
                bad_block: None,
                trace: KVec::new(),
                loaded_blocks: KVec::new(),
                hits: false,
                modify_fails: None,
                stop_after: None,
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
    fn a_failed_modify_stops_the_replay_and_skips_nothing() -> Result {
        // MODIFY reads the record's data from the log's pmem; a read error
        // there (EIO, as a poisoned line gives) is not the array's part
        // being unavailable. Before, it was classified as one and the
        // record SKIPPED, which discard_skipped could then drop.
        for errno in [EIO, ENOMEM] {
            let fs = fake(9);
            fs.inner.borrow_mut().modify_fails = Some((3, errno));
            let mut msgs = KVec::new();
            for seq in 1..=5 {
                msgs.push(Message::new(seq, 0, Op::Write, 8 * seq, 8), GFP_KERNEL)?;
            }
            let r = run(&fs, &mut msgs, 4, Fault::None);
            assert!(matches!(r, Err(e) if e == errno));
            let f = fs.inner.borrow();
            assert!(!f.trace.iter().any(|&(_, s)| s == State::Skipped));
            // Nothing after it was applied: MODIFY is in log order.
            assert!(!f.trace.iter().any(|&(q, s)| q > 3 && s == State::Modified));
        }
        Ok(())
    }

    #[test]
    fn a_stop_request_ends_the_swarm_at_once() -> Result {
        // `enable` 0 during a replay: the MODIFY path looks at each turn
        // and ends the swarm with ECANCELED; nothing is MODIFIED after it
        // has seen the request, and nothing is SKIPPED for it.
        for width in [1usize, 4] {
            let log = log_of(3, 40)?;
            let fs = fake(11);
            fs.inner.borrow_mut().stop_after = Some(5);
            let mut msgs = KVec::new();
            msgs.extend_from_slice(&log, GFP_KERNEL)?;
            let r = run(&fs, &mut msgs, width, Fault::None);
            assert!(matches!(r, Err(e) if e == ECANCELED));
            let f = fs.inner.borrow();
            let modified = f
                .trace
                .iter()
                .filter(|&&(_, s)| s == State::Modified)
                .count();
            // One turn MODIFIES what is ready, so a few past the fifth.
            assert!((5..40).contains(&modified));
            assert!(!f.trace.iter().any(|&(_, s)| s == State::Skipped));
        }
        Ok(())
    }

    #[test]
    fn an_internal_error_stops_the_replay_and_skips_nothing() -> Result {
        // A LOAD that fails for want of memory, a busy resource or a bug is
        // not the array's part being unavailable: the swarm stops with that
        // error and no message is SKIPPED (before, each was skipped and
        // discard_skipped could drop its record). Read errors still skip.
        for (errno, skips) in [
            (ENOMEM, false),
            (EBUSY, false),
            (EAGAIN, false),
            (EINVAL, false),
            (EIO, true),
            (ENODEV, true),
            (ETIMEDOUT, true),
        ] {
            let fs = fake(5);
            {
                let mut f = fs.inner.borrow_mut();
                f.fail_seq = Some(2);
                f.fail_errno = errno;
            }
            let mut msgs = KVec::new();
            for seq in 1..=4 {
                msgs.push(Message::new(seq, 0, Op::Write, 8 * seq + 1, 2), GFP_KERNEL)?;
            }
            let r = run(&fs, &mut msgs, 4, Fault::None);
            let skipped = fs
                .inner
                .borrow()
                .trace
                .iter()
                .any(|&(_, s)| s == State::Skipped);
            if skips {
                assert!(matches!(r, Ok((c, Ok(()))) if c.skipped == 1));
                assert!(skipped);
            } else {
                assert!(matches!(r, Err(e) if e == errno));
                assert!(!skipped);
            }
        }
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
