// SPDX-License-Identifier: GPL-2.0

//! The initiator (claim 1): scans the log from the CP marker on its own
//! thread and delivers the records as swarms of messages to the MODIFY
//! path, one swarm ahead of it.

use kernel::{
    new_condvar, new_mutex, new_work,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
    workqueue::{Work, WorkItem},
};

use super::message::Message;
use super::slots::PendingSlots;
use crate::device::cache::SECTORS;
use crate::device::log::Position;
use crate::device::Volume;
use crate::format::log::{CpMarker, Found, Op, ScanEnd};
use crate::sys::noio::NoIo;

/// How the scan ended: where the ring's valid end is, the offset of a valid
/// record behind that end (the record at the end is then corrupt), and the
/// sequence number the log's head takes (past every slot record too); or
/// why it failed (`ECANCELED` when told to stop).
pub(super) type ScanResult = Result<(ScanEnd, Option<u64>, u64)>;

/// A swarm the initiator scanned, for the MODIFY path.
pub(super) struct Scanned {
    pub(super) msgs: KVec<Message>,
    /// Where the record after the swarm is; `None` for the last swarm.
    pub(super) next: Option<Position>,
}

/// The swarms the scan is filling.
struct Swarms {
    /// The swarm being filled.
    swarm: KVec<Message>,
    /// Full swarms held back, each with where the record after it is.
    held: KVec<(KVec<Message>, Position)>,
    /// Messages the swarm being filled takes.
    limit: usize,
    /// The cut, until a record at or past it is scanned.
    cut: Option<Position>,
    /// The smallest number of a slot record not in a swarm yet
    /// (`PendingSlots::floor`): where a swarm ends, the CP marker replay
    /// may write must not be past it.
    floor: u64,
}

/// What the initiator hands to the MODIFY path.
#[derive(Default)]
struct Handover {
    /// The next swarm, in log order.
    ready: Option<Scanned>,
    /// Set when the scan is over: its end and the offset of a valid record
    /// behind that end (the record at the end is then corrupt), or why it
    /// failed (`ECANCELED` when told to stop).
    end: Option<ScanResult>,
    stop: bool,
}

/// The initiator: scans the log from the CP marker on its own thread and
/// delivers the records as swarms of messages, one swarm ahead of the one
/// the MODIFY path runs (two with the one it is filling), so that the scan
/// overlaps LOADs and MODIFYs instead of running between swarms.
#[pin_data]
pub(super) struct Initiator {
    core: Arc<Volume>,
    from: CpMarker,
    /// Messages per swarm.
    size: usize,
    /// The target of a CP the crash cut short: a swarm ends before it.
    cut: Option<Position>,
    /// Check the data sum of every record of a block log, not only of
    /// those a power cut may have torn (the volume's `check_every_record`).
    check_all: bool,
    /// Leave a damaged slot's record out (`discard_corrupt`).
    drop_bad_slots: bool,
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
    /// An initiator of `core`'s log from `from`, in swarms of `size`
    /// messages, one ending before the record at `cut` (if there is one);
    /// it scans once queued. With `check_all`, a block log's scan checks
    /// the data of every record before it goes to the MODIFY path. With
    /// `drop_bad_slots` (`discard_corrupt`), a damaged slot's record is
    /// left out instead of failing the scan.
    pub(super) fn new(
        core: &Arc<Volume>,
        from: CpMarker,
        size: usize,
        cut: Option<Position>,
        (check_all, drop_bad_slots): (bool, bool),
    ) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Initiator {
                core: core.clone(),
                from,
                size,
                cut,
                check_all,
                drop_bad_slots,
                inner <- new_mutex!(Handover::default()),
                changed <- new_condvar!(),
                work <- new_work!("swarmlog::scan"),
            }),
            GFP_KERNEL,
        )
    }

    /// For the MODIFY path: waits for the next swarm, or the scan's end
    /// once every swarm was taken; returns the swarm, if any, and the end,
    /// if the scan is over.
    pub(super) fn take(&self) -> (Option<Scanned>, Option<ScanResult>) {
        let mut h = self.inner.lock();
        loop {
            if let Some(s) = h.ready.take() {
                self.changed.notify_all();
                return (Some(s), h.end);
            }
            if h.end.is_some() {
                return (None, h.end);
            }
            self.changed.wait(&mut h);
        }
    }

    /// Tells the initiator to stop scanning (and not to wait for the
    /// MODIFY path any more).
    pub(super) fn stop(&self) {
        self.inner.lock().stop = true;
        self.changed.notify_all();
    }

    /// Hands `msgs` over once the MODIFY path has taken the swarm before
    /// it; with `end`, as the last swarm. Fails if told to stop.
    fn hand_over(
        &self,
        msgs: KVec<Message>,
        next: Option<Position>,
        end: Option<ScanResult>,
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
            h.ready = Some(Scanned { msgs, next });
        }
        if end.is_some() {
            h.end = end;
        }
        self.changed.notify_all();
        Ok(())
    }

    /// Adds message `m` to the swarm being filled, `at` its place for a CP
    /// marker (its ring record's, or for a slot's record the ring record
    /// scanned next, with the slot record's number); hands over the swarm
    /// before it if it is full or `m` is the first record at or past the
    /// cut.
    fn push(&self, s: &mut Swarms, m: Message, at: Position) -> Result {
        let log = self.core.log();
        while let Some((msgs, _)) = s.held.first() {
            if msgs
                .last()
                .is_some_and(|l| log.may_be_torn(l.offset, at.offset))
            {
                break;
            }
            let (msgs, next) = s.held.remove(0).map_err(|_| EINVAL)?;
            self.hand_over(msgs, Some(next), None)?;
        }
        // The first record at or past the cut begins a swarm.
        let at_cut = s.cut.is_some_and(|c| m.seq >= c.seq);
        if at_cut {
            s.cut = None;
        }
        if s.swarm.len() >= s.limit || (at_cut && !s.swarm.is_empty()) {
            s.limit = self.size;
            // Slot records still to come may be numbered below `m`: the
            // marker there must not pass them.
            let at = Position {
                seq: at.seq.min(s.floor),
                ..at
            };
            let full =
                core::mem::replace(&mut s.swarm, KVec::with_capacity(self.size, GFP_KERNEL)?);
            if self.check_all {
                self.hand_over(full, Some(at), None)?;
            } else {
                s.held.push((full, at), GFP_KERNEL)?;
            }
        }
        s.swarm.push(m, GFP_KERNEL)?;
        Ok(())
    }

    /// Adds the slot records `give` (as `(seq, block, slot)`) to the swarm,
    /// before the ring record at `ring_at` (or the ring's end).
    fn push_slots(&self, s: &mut Swarms, give: &[(u64, u64, u32)], ring_at: u64) -> Result {
        let geo = self.core.log().geometry();
        for &(seq, block, slot) in give {
            let offset = geo.slot_header(slot).ok_or(EINVAL)?;
            let m = Message::new(seq, offset, Op::Write, block * SECTORS, SECTORS as u32);
            self.push(
                s,
                m,
                Position {
                    offset: ring_at,
                    seq,
                },
            )?;
        }
        Ok(())
    }

    fn scan(&self) -> Result {
        let log = self.core.log();
        // The slots' records, merged in below (`slots.rs`).
        let mut slots = PendingSlots::scan(
            log,
            self.from.seq,
            self.cut.map(|c| c.seq),
            self.drop_bad_slots,
        )?;
        let mut give = KVec::new();
        let mut s = Swarms {
            swarm: KVec::with_capacity(self.size, GFP_KERNEL)?,
            // Swarms scanned (with where the record after each is) whose
            // last record a power cut may have torn, as far as the scan has
            // seen: on a block log scanned without data sums, a swarm goes
            // to the MODIFY path only once a record a window past its last
            // is found (`may_be_torn`). None otherwise.
            held: KVec::new(),
            // The first swarm is a sixteenth of the others, so that the
            // first LOADs start after a short scan while the next is
            // scanned, in time: the first swarm's LOADs take longer.
            limit: (self.size / 16).max(1),
            cut: self.cut,
            floor: slots.floor(),
        };
        let mut each = |f: &Found| -> Result {
            let h = f.header;
            if h.op != Op::Wrap && slots.len() > 0 {
                // Before the cut, every slot record before it; before this
                // record, its blocks' earlier slot records.
                if let Some(c) = s.cut.filter(|c| h.seq >= c.seq) {
                    slots.before(c.seq, &mut give)?;
                    s.floor = slots.floor();
                    self.push_slots(&mut s, &give, f.offset)?;
                }
                let m = Message::new(h.seq, f.offset, h.op, h.sector, h.nr_sectors);
                slots.before_ring(m.blocks(), h.seq, &mut give)?;
                self.push_slots(&mut s, &give, f.offset)?;
                s.floor = slots.floor();
            }
            let m = Message::new(h.seq, f.offset, h.op, h.sector, h.nr_sectors);
            let at = Position {
                offset: f.offset,
                seq: h.seq,
            };
            self.push(&mut s, m, at)
        };
        let end = if self.check_all {
            log.scan(&self.from, &mut each)?
        } else {
            let end = log.scan_headers(&self.from, &mut each)?;
            self.end_at_torn(end, &mut s.held, &mut s.swarm)?
        };
        let behind = log.valid_record_after(&end)?;
        // The slot records no ring record came after: those before the cut
        // (if it is still ahead) first, so that the cut falls between. If
        // the ring ends at a corrupt record (replayed only with
        // `discard_corrupt`, which drops it and every record after it),
        // only those numbered before it.
        let mut head_seq = end.seq;
        if slots.len() > 0 {
            let limit = if behind.is_some() { end.seq } else { u64::MAX };
            if let Some(c) = s.cut {
                slots.before(c.seq.min(limit), &mut give)?;
                s.floor = slots.floor();
                self.push_slots(&mut s, &give, end.offset)?;
            }
            slots.before(limit, &mut give)?;
            s.floor = slots.floor();
            self.push_slots(&mut s, &give, end.offset)?;
        }
        // The head goes past every slot record, replayed or dropped: the
        // marker a CP writes from there on leaves them all behind.
        if slots.newest() != 0 {
            head_seq = head_seq.max(slots.newest().saturating_add(1));
        }
        for (msgs, next) in s.held.drain_all() {
            self.hand_over(msgs, Some(next), None)?;
        }
        self.hand_over(s.swarm, None, Some(Ok((end, behind, head_seq))))
    }

    /// After a scan without data sums that ended at `end`: checks the data
    /// of the records scanned (the swarms `held`, then `swarm`) that a power
    /// cut may have torn, and ends the log at the first whose data does not
    /// match its sum or cannot be read ([`first_torn`]), as the scan with
    /// sums would have: that record and every one after it are dropped from
    /// the swarms, and the end returned is there.
    ///
    /// [`first_torn`]: crate::format::log::first_torn
    fn end_at_torn(
        &self,
        end: ScanEnd,
        held: &mut KVec<(KVec<Message>, Position)>,
        swarm: &mut KVec<Message>,
    ) -> Result<ScanEnd> {
        let lists = || Iterator::chain(held.iter().map(|(m, _)| m), core::iter::once(&*swarm));
        let records = lists().flat_map(|msgs| msgs.iter().map(|m| (m.offset, m.seq)));
        let Some((k, torn)) = self.core.log().first_torn(records)? else {
            return Ok(end);
        };
        // The `k`th message scanned, the first dropped, is the `j`th of
        // list `i`, which keeps `j` messages and becomes the last.
        let (mut i, mut j) = (0usize, k);
        for msgs in lists() {
            if j < msgs.len() {
                break;
            }
            j -= msgs.len();
            i += 1;
        }
        if i < held.len() {
            let (mut msgs, _) = held.remove(i).map_err(|_| EINVAL)?;
            held.truncate(i);
            msgs.truncate(j);
            *swarm = msgs;
        } else {
            swarm.truncate(j);
        }
        Ok(torn)
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
