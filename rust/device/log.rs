// SPDX-License-Identifier: GPL-2.0

//! The log at run time: format, open, append records, advance the CP marker,
//! scan; all through [`Media`], the single pmem interface.
//!
//! # Ordering rules
//!
//! - A record's data is written and drained first, then its header line
//!   (checksummed, the commit point), then drained again: the record is
//!   durable, and so may be acknowledged, after that second
//!   [`Media::drain`]. A header that validates was stored after its data
//!   was persistent, so a record cut short by a power failure does not
//!   validate, whatever part of it reached the media; no checksum of the
//!   data is needed for that (format version 2).
//! - A CP marker is written to the slot that is *not* current, then drained;
//!   until then the old marker is in force. It is written only after the
//!   array holds (and has flushed) everything before its position.
//! - A CP intent (the line after the slots: the CP's generation and target)
//!   is written and drained before the CP writes anything to the array; a
//!   replay after a crash in the middle of that CP learns from it where the
//!   CP's set of blocks ends (`Core::interrupted_cp`).
//! - Format writes the new log's first CP marker to the slot the old log
//!   does not use, drains, then writes the new header (the commit point) and
//!   drains: a power failure before the header's line lands leaves the old
//!   log whole, after it the new one; the old log's records and markers carry
//!   the old log id and do not validate under the new one.
//! - On a block device (`Medium::Block`) every line above is written as a
//!   unit of its own, with FUA, and a record as one write with FUA (its
//!   header unit, its data), whose data the scan checks against the sum in
//!   its header: the write's units may land in any order. Writes complete
//!   durable, so the drains have nothing to wait for. Before the first
//!   append after a replay, the window past the valid end is zeroed
//!   ([`Log::erase_window`]), so that no record landed but never
//!   acknowledged by the crashed run can be taken for a new one.

use kernel::prelude::*;

use core::cell::{Cell, RefCell};

use crate::format::checksum::{crc32c, SEED};

use crate::format::log::{
    data_sum, first_torn, may_be_torn, scan_records, sum_by_reads, valid_record_after, CpMarker,
    Found, Geometry, IntentState, LogHeader, LogRead, Medium, Op, RecordHeader, ScanEnd,
    RECORD_HEADER_SIZE, SECTOR_SIZE,
};
use crate::format::Invalid;
use crate::sys::bio::Chunk;
use crate::sys::blocklog::Prefetch;
use crate::sys::dax::Media;

/// A place in the log: where the next record goes and the sequence number
/// it carries (the head), or where the uncommitted records begin (the tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) offset: u64,
    pub(crate) seq: u64,
}

/// A record's place in a block log, reserved by [`Log::reserve`].
pub(crate) struct Reserved {
    /// Where a wrap record goes first, and its sequence number, if the
    /// record does not fit before the end of the area.
    wrap: Option<Position>,
    /// The record's header.
    header: RecordHeader,
    /// Its offset.
    at: u64,
    /// Bytes it occupies.
    len: u64,
    /// The position after it.
    pub(crate) next: Position,
}

/// The log on its media.
pub(crate) struct Log<M: Media> {
    media: M,
    header: LogHeader,
    geo: Geometry,
}

/// The CP slot that is not `slot`.
fn other_slot(slot: usize) -> usize {
    1 - slot.min(1)
}

/// The scan's view of the media. On a block device it reads ahead
/// [`READ_AHEAD`] bytes at a time, the next piece in flight while the scan
/// works on the last ([`Prefetch`]): the scan reads each record's header
/// line and, on a block log, sums its data, and a bio for every line would
/// be slow.
///
/// A read error of the media (`EIO`) is a bad line of the log
/// ([`Invalid::Unreadable`]: damage where the scan stopped, never its end).
/// Any other error (an allocation failure, say) says nothing about the
/// log: the scan stops there as at the device's end, and the reader keeps
/// the error (`failed`), which [`Log::scan`] and
/// [`Log::valid_record_after`] return instead of what they found.
struct MediaReader<'a, M: Media> {
    media: &'a M,
    ahead: Option<RefCell<Ahead<'a>>>,
    /// The log's unit (a block log's logical block size, a power of two).
    unit: u64,
    failed: Cell<Option<Error>>,
}

/// Bytes of a block log the scan reads at once.
const READ_AHEAD: usize = 1 << 20;

/// What the scan has read ahead: `buf` holds the log at `off`; `next`, if
/// the media can, reads the piece after it meanwhile. `bad`: a piece whose
/// read failed, where the scan reads only the units it asks for.
struct Ahead<'a> {
    off: u64,
    buf: KVVec<u8>,
    next: Option<Prefetch<'a>>,
    bad: Option<(u64, u64)>,
}

impl<'a, M: Media> MediaReader<'a, M> {
    fn new(media: &'a M, geo: &Geometry) -> Self {
        let ahead = geo.is_block().then(|| {
            RefCell::new(Ahead {
                off: 0,
                buf: KVVec::new(),
                next: media.prefetch(),
                bad: None,
            })
        });
        Self {
            media,
            ahead,
            unit: geo.unit.max(1),
            failed: Cell::new(None),
        }
    }

    /// What the scan is told of the read error `e` (see the type's doc):
    /// a bad line for `EIO`; for anything else the end of the device, and
    /// `e` kept for the caller.
    fn invalid(&self, e: Error) -> Invalid {
        if e == EIO {
            return Invalid::Unreadable;
        }
        if self.failed.get().is_none() {
            self.failed.set(Some(e));
        }
        Invalid::Range
    }

    /// The error that stopped the scan's reads other than a bad line, if
    /// any: the caller's result instead of where the scan stopped.
    fn result(&self) -> Result {
        self.failed.get().map_or(Ok(()), Err)
    }
}

impl<'a, M: Media> MediaReader<'a, M> {
    /// The piece of the log a read-ahead at `from` holds: as much of the
    /// media as is left, [`READ_AHEAD`] at most.
    fn piece(&self, from: u64) -> usize {
        (self.media.size().saturating_sub(from)).min(READ_AHEAD as u64) as usize
    }

    /// The units that hold the bytes from `off` to `end`, as far as the
    /// media goes: where they begin and their length. (A block log's unit
    /// is a power of two.)
    fn units(&self, off: u64, end: u64) -> (u64, usize) {
        let mask = self.unit.saturating_sub(1);
        let from = off & !mask;
        let to = end.saturating_add(mask) & !mask;
        let n = to.min(self.media.size()).saturating_sub(from);
        (from, n.min(READ_AHEAD as u64) as usize)
    }

    /// Reads the `n` bytes at `from` into `b` (emptied if the read fails).
    fn fill(&self, b: &mut KVVec<u8>, from: u64, n: usize) -> Result {
        // Resized only when the length changes: the read fills it all, and
        // zeroing a buffer per read costs as much as a copy of it.
        if b.len() != n {
            b.clear();
            b.resize(n, 0, GFP_KERNEL)?;
        }
        self.media.read_buf(from, b).inspect_err(|_| b.clear())
    }

    /// Makes `a` hold the `len` bytes at `off` (`len` at most
    /// [`READ_AHEAD`]): as they are, or read afresh from the unit's start
    /// at `off` (the piece read ahead, if it begins there), as much of the
    /// log as the media holds and [`READ_AHEAD`] allows; then starts
    /// reading the piece after it. Returns where they begin in `a.buf`.
    ///
    /// If a piece cannot be read (`EIO`), only the units holding the bytes
    /// asked for are read, there and in the rest of that piece: a bad
    /// sector elsewhere in it (past the log's end, in an older lap's
    /// records) is not one of these bytes, and the scan must not stop at a
    /// record that reads well.
    fn cover(&self, a: &mut Ahead<'a>, off: u64, len: usize) -> Result<usize, Invalid> {
        let end = off.checked_add(len as u64).ok_or(Invalid::Range)?;
        if off < a.off || end > a.off + a.buf.len() as u64 {
            let in_bad =
                |bad: Option<(u64, u64)>, at: u64| bad.is_some_and(|(s, e)| s <= at && at < e);
            let near_bad = in_bad(a.bad, off);
            let (mut from, mut n) = if near_bad {
                self.units(off, end)
            } else {
                // The media's own alignment is 4 KiB at most.
                let from = off & !4095;
                (from, self.piece(from))
            };
            let Ahead {
                off: at,
                buf: b,
                next,
                bad,
            } = &mut *a;
            // A failed read ahead is read again below, which reports it.
            let ready = !near_bad
                && next
                    .as_mut()
                    .is_some_and(|p| p.take(from, n, b).unwrap_or(false));
            if !ready {
                match self.fill(b, from, n) {
                    Ok(()) => {}
                    Err(e) if e == EIO && !near_bad => {
                        *bad = Some((from, from + n as u64));
                        (from, n) = self.units(off, end);
                        self.fill(b, from, n).map_err(|e| self.invalid(e))?;
                    }
                    Err(e) => return Err(self.invalid(e)),
                }
            }
            *at = from;
            let after = from + n as u64;
            if let Some(p) = next.as_mut() {
                if after < self.media.size() && !in_bad(*bad, after) {
                    // Best effort: if it cannot start, the next piece is read
                    // when it is needed.
                    let _ = p.start(after, self.piece(after));
                }
            }
            if end > a.off + a.buf.len() as u64 {
                return Err(Invalid::Range);
            }
        }
        Ok((off - a.off) as usize)
    }
}

impl<M: Media> LogRead for MediaReader<'_, M> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), Invalid> {
        let Some(ahead) = &self.ahead else {
            return self.media.read(off, buf).map_err(|e| self.invalid(e));
        };
        if buf.len() > READ_AHEAD {
            return self.media.read(off, buf).map_err(|e| self.invalid(e));
        }
        let mut a = ahead.try_borrow_mut().map_err(|_| self.invalid(EBUSY))?;
        let at = self.cover(&mut a, off, buf.len())?;
        let src = a.buf.get(at..at + buf.len()).ok_or(Invalid::Range)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    /// As the default, but over the read-ahead buffer itself: no copy of
    /// the data (a block log's scan sums every record's data).
    fn sum(&self, off: u64, len: u64) -> Result<u32, Invalid> {
        let Some(ahead) = &self.ahead else {
            return sum_by_reads(self, off, len);
        };
        let mut a = ahead.try_borrow_mut().map_err(|_| self.invalid(EBUSY))?;
        let mut crc = SEED;
        let mut done = 0u64;
        while done < len {
            // As much as the piece in hand holds, so that the next piece
            // is read from where this one ends, the read ahead's offset.
            let at = self.cover(&mut a, off + done, 1)?;
            let n = (len - done).min(a.buf.len().saturating_sub(at) as u64) as usize;
            crc = crc32c(crc, a.buf.get(at..at + n).ok_or(Invalid::Range)?);
            done += n as u64;
        }
        Ok(crc)
    }

    fn bad(&self, off: u64, len: u64) -> bool {
        self.media.bad(off, len)
    }
}

impl<M: Media> Log<M> {
    /// Writes a new, empty log bound to the array `array_uuid`.
    ///
    /// Atomic: until the new header's line is durable the log already on
    /// the media (if any) opens as it was, with its records and CP marker;
    /// after that the new, empty log opens. The new log's first CP marker
    /// goes to the slot that is not the old log's current one, and is
    /// drained before the header is written; records and markers of the old
    /// log carry its log id and so do not validate under the new one.
    /// `EEXIST` if the log on the media already has the id `log_id`.
    ///
    /// With `slotted`, a pmem log gets slots ([`Geometry::default_slots`]:
    /// format version 3); a block log never has any.
    pub(crate) fn format(
        media: M,
        array_uuid: [u8; 16],
        log_id: u64,
        slotted: bool,
    ) -> Result<Self> {
        let header = LogHeader {
            array_uuid,
            log_id,
            log_size: media.size(),
            block_size: crate::format::array::BLOCK_SIZE as u32,
            medium: media.medium(),
            // On pmem, slots for records of one block (`format.rs`,
            // `Geometry`): as many as fit in three quarters of the log.
            slots: match media.medium() {
                Medium::Pmem if slotted => {
                    Geometry::default_slots(media.size(), crate::format::array::BLOCK_SIZE as u32)
                }
                _ => 0,
            },
        };
        let geo = header.geometry().ok_or(ENOSPC)?;
        let mut line = [0u8; 64];
        media.read(0, &mut line)?;
        let slot = match LogHeader::decode(&line) {
            Ok(old) if old.log_id == log_id => return Err(EEXIST),
            Ok(old) => match old.geometry() {
                // The old log's current slot, where its geometry puts it
                // (an old log of the other medium has other slots).
                Some(g) if g.is_block() == geo.is_block() => {
                    match Self::read_cp(&media, &g, old.log_id)? {
                        Some((current, _)) => other_slot(current),
                        None => 0,
                    }
                }
                _ => 0,
            },
            Err(_) => 0,
        };
        let first = CpMarker {
            log_id,
            generation: 0,
            seq: 1,
            offset: geo.start,
        };
        let log = Self { media, header, geo };
        log.write_line(geo.cp_slot(slot), &first.encode())?;
        log.write_line(0, &header.encode())?;
        Ok(log)
    }

    /// Writes `line` at `off` and drains: on a block device as a unit of
    /// its own (the line, then zeroes), one write with FUA.
    fn write_line(&self, off: u64, line: &[u8; 64]) -> Result {
        if self.geo.is_block() {
            let mut buf = KVVec::with_capacity(self.geo.unit as usize, GFP_KERNEL)?;
            buf.extend_from_slice(line, GFP_KERNEL)?;
            buf.resize(self.geo.unit as usize, 0, GFP_KERNEL)?;
            self.media.write_buf(off, &buf)?;
        } else {
            self.media.write(off, line)?;
        }
        self.media.drain();
        Ok(())
    }

    /// Opens a formatted log; `EINVAL` with the reason if the header does not
    /// validate or does not match the media.
    pub(crate) fn open(media: M) -> Result<Self, (Invalid, M)> {
        let mut line = [0u8; 64];
        if media.read(0, &mut line).is_err() {
            return Err((Invalid::Range, media));
        }
        let header = match LogHeader::decode(&line) {
            Ok(h) => h,
            Err(e) => return Err((e, media)),
        };
        if header.medium != media.medium() {
            return Err((Invalid::Medium, media));
        }
        let geo = match header.geometry() {
            Some(g) if header.log_size <= media.size() => g,
            _ => return Err((Invalid::Field, media)),
        };
        Ok(Self { media, header, geo })
    }

    /// Test fault: writes to a block log without FUA (`CpFault::NoFua`).
    pub(crate) fn set_no_fua(&self, on: bool) {
        self.media.set_no_fua(on);
    }

    /// The header.
    pub(crate) fn header(&self) -> &LogHeader {
        &self.header
    }

    /// The record area.
    pub(crate) fn geometry(&self) -> Geometry {
        self.geo
    }

    /// The current CP marker and its slot.
    /// `EUCLEAN` if neither slot holds a valid marker of this log, or the
    /// current one lies outside the record area (`CpMarker::check`: its
    /// checksum is valid, its fields are not; the kernel log says which).
    pub(crate) fn cp_marker(&self) -> Result<(usize, CpMarker)> {
        let (slot, m) =
            Self::read_cp(&self.media, &self.geo, self.header.log_id)?.ok_or(EUCLEAN)?;
        if m.check(&self.geo).is_err() {
            pr_err!(
                "the CP marker in slot {} is impossible: offset {} (the records lie in {}..{}, \
                 {}-byte units), sequence number {} (1 to 2^62)\n",
                slot,
                m.offset,
                self.geo.start,
                self.geo.end,
                self.geo.unit,
                m.seq
            );
            return Err(EUCLEAN);
        }
        Ok((slot, m))
    }

    /// The current CP marker of log `log_id` on `media`, and its slot.
    fn read_cp(media: &M, geo: &Geometry, log_id: u64) -> Result<Option<(usize, CpMarker)>> {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        media.read(geo.cp_slot(0), &mut a)?;
        media.read(geo.cp_slot(1), &mut b)?;
        Ok(CpMarker::newest(&a, &b, log_id))
    }

    /// Makes `tail` the new CP position, with generation `generation`, in
    /// the slot other than `current_slot`; returns the new current slot.
    pub(crate) fn write_cp(
        &self,
        current_slot: usize,
        generation: u64,
        tail: Position,
    ) -> Result<usize> {
        let slot = other_slot(current_slot);
        let m = CpMarker {
            log_id: self.header.log_id,
            generation,
            seq: tail.seq,
            offset: tail.offset,
        };
        self.write_line(self.geo.cp_slot(slot), &m.encode())?;
        Ok(slot)
    }

    /// Records that the CP of generation `generation`, which commits every
    /// record before `target`, begins: written and drained before the CP
    /// writes anything to the array, so that a replay after a crash in the
    /// middle of it knows where that CP's set of blocks ends
    /// (`Core::interrupted_cp`).
    pub(crate) fn write_intent(&self, generation: u64, target: Position) -> Result {
        let m = CpMarker {
            log_id: self.header.log_id,
            generation,
            seq: target.seq,
            offset: target.offset,
        };
        self.write_line(self.geo.cp_intent(), &m.encode_intent())
    }

    /// The target of a CP that began after the current marker `cp` and did
    /// not end (the crash cut it short): the intent line of this log with
    /// the generation after `cp`'s. `None` if there is none (an older or
    /// torn intent, one of another log, or a log formatted before intents
    /// existed). `EUCLEAN` for an intent with a valid checksum that no CP
    /// could have written: a generation further ahead, or a target outside
    /// the record area or not after the marker.
    pub(crate) fn cp_intent(&self, cp: &CpMarker) -> Result<Option<Position>> {
        let mut line = [0u8; 64];
        self.media.read(self.geo.cp_intent(), &mut line)?;
        let i = match IntentState::of(&line, self.header.log_id, cp, &self.geo) {
            IntentState::Absent | IntentState::OtherLog(_) | IntentState::Ended(_) => {
                return Ok(None)
            }
            IntentState::Pending(i) => i,
            IntentState::Impossible(i) => {
                pr_err!(
                    "the CP intent is impossible: generation {} (the marker's is {}), offset {} \
                     (the records lie in {}..{}, {}-byte units), sequence number {} (after {}, \
                     up to 2^62)\n",
                    i.generation,
                    cp.generation,
                    i.offset,
                    self.geo.start,
                    self.geo.end,
                    self.geo.unit,
                    i.seq,
                    cp.seq
                );
                return Err(EUCLEAN);
            }
        };
        Ok(Some(Position {
            offset: i.offset,
            seq: i.seq,
        }))
    }

    /// Bytes in use between `tail` and `head`.
    pub(crate) fn used(&self, head: &Position, tail: &Position) -> u64 {
        self.geo.distance(tail.offset, head.offset)
    }

    /// Bytes a record of `data_len` bytes takes if the head is at `head`,
    /// including the wrap record in front of it if it needs one.
    pub(crate) fn cost(&self, head: &Position, data_len: u32) -> u64 {
        let len = self.geo.len_of(data_len);
        match self.geo.place(head.offset, len) {
            (false, _) => len,
            (true, _) => self.geo.end - head.offset + len,
        }
    }

    /// Whether a record of `data_len` bytes fits between `head` and `tail`
    /// (the log never fills completely, so that head == tail means empty).
    pub(crate) fn fits(&self, head: &Position, tail: &Position, data_len: u32) -> bool {
        self.used(head, tail) + self.cost(head, data_len) < self.geo.capacity()
    }

    /// Appends a record at `head` and advances it; returns the log offset
    /// of the record's data. `fill` is called with a sink that takes the
    /// record's data in order, exactly `data_len` bytes of it for a write.
    /// The record is durable when this returns `Ok`: on pmem data, fence,
    /// header line, fence; on a block device one write with FUA (after the
    /// wrap record's, if it needs one). The caller checked [`Self::fits`]
    /// and serialises appends.
    pub(crate) fn append<F>(
        &self,
        head: &mut Position,
        op: Op,
        sector: u64,
        nr_sectors: u32,
        fill: F,
    ) -> Result<u64>
    where
        F: FnOnce(&mut dyn FnMut(&Chunk<'_>) -> Result) -> Result,
    {
        if self.geo.is_block() {
            // One write of the whole record (after the wrap record's).
            let r = self.reserve(head, op, sector, nr_sectors)?;
            let at = self.write_reserved(&r, fill)?;
            *head = r.next;
            return Ok(at);
        }
        self.append_pmem(head, op, sector, nr_sectors, fill)
    }

    /// Reserves the place of a record at `head` on a block device: where it
    /// (and the wrap record in front of it, if it needs one) goes, and the
    /// position after it. Nothing is written: several reservations may be
    /// written at once, by [`Self::write_reserved`].
    pub(crate) fn reserve(
        &self,
        head: &Position,
        op: Op,
        sector: u64,
        nr_sectors: u32,
    ) -> Result<Reserved> {
        let rec = RecordHeader {
            op,
            seq: head.seq,
            log_id: self.header.log_id,
            sector,
            nr_sectors,
        };
        let len = self.geo.record_len(&rec);
        let (wrap, at) = self.geo.place(head.offset, len);
        let seq = head.seq.checked_add(u64::from(wrap)).ok_or(EOVERFLOW)?;
        let next_seq = seq.checked_add(1).ok_or(EOVERFLOW)?;
        Ok(Reserved {
            wrap: wrap.then_some(*head),
            header: RecordHeader { seq, ..rec },
            at,
            len,
            next: Position {
                offset: self.geo.advance(at, len),
                seq: next_seq,
            },
        })
    }

    /// Writes the reserved record `r` (after its wrap record, if any): built
    /// in memory (its header unit, its data padded to a unit, the data's sum
    /// in the header) and written at once with FUA; `fill` as for
    /// [`Self::append`]. Returns the log offset of its data. Durable when it
    /// returns `Ok`.
    pub(crate) fn write_reserved<F>(&self, r: &Reserved, fill: F) -> Result<u64>
    where
        F: FnOnce(&mut dyn FnMut(&Chunk<'_>) -> Result) -> Result,
    {
        let room = self.geo.header_room() as usize;
        let total = usize::try_from(r.len).map_err(|_| EINVAL)?;
        let end = room + r.header.data_len() as usize;
        let mut buf = KVVec::with_capacity(total, GFP_KERNEL)?;
        buf.resize(total, 0, GFP_KERNEL)?;
        let mut pos = room;
        fill(&mut |chunk: &Chunk<'_>| {
            let dst = pos
                .checked_add(chunk.len())
                .filter(|&e| e <= end)
                .and_then(|e| buf.get_mut(pos..e))
                .ok_or(EINVAL)?;
            chunk.copy_to(0, dst)?;
            pos += chunk.len();
            Ok(())
        })?;
        if pos != end {
            return Err(EINVAL);
        }
        let sum = data_sum(buf.get(room..end).ok_or(EINVAL)?);
        if let Some(w) = r.wrap {
            let wrap = RecordHeader {
                op: Op::Wrap,
                seq: w.seq,
                log_id: self.header.log_id,
                sector: 0,
                nr_sectors: 0,
            };
            let line = wrap.encode_with_sum(data_sum(&[])).map_err(|_| EINVAL)?;
            self.write_line(w.offset, &line)?;
        }
        let line = r.header.encode_with_sum(sum).map_err(|_| EINVAL)?;
        buf.get_mut(..64).ok_or(EINVAL)?.copy_from_slice(&line);
        self.media.write_buf(r.at, &buf)?;
        Ok(r.at + room as u64)
    }

    /// Before the first append after a replay that ended at `head`, on a
    /// block device: zeroes the window past it (round the ring, stopping
    /// short of `tail`), where records of the crashed run may have landed
    /// without being acknowledged; none of them may be taken for a record
    /// of this run with the same sequence number. Nothing to do on pmem,
    /// which writes one record at a time.
    pub(crate) fn erase_window(&self, head: &Position, tail: &Position) -> Result {
        if !self.geo.is_block() {
            return Ok(());
        }
        const RUN: u64 = 256 << 10;
        let free = self.geo.capacity() - self.used(head, tail);
        let mut left = self.geo.window.min(free.saturating_sub(self.geo.unit));
        let mut off = head.offset;
        let mut buf = KVVec::new();
        while left > 0 {
            let n = left.min(RUN).min(self.geo.end - off);
            buf.clear();
            buf.resize(n as usize, 0, GFP_KERNEL)?;
            self.media.write_buf(off, &buf)?;
            left -= n;
            off = self.geo.advance(off, n);
        }
        Ok(())
    }

    /// [`Self::append`] on pmem.
    fn append_pmem<F>(
        &self,
        head: &mut Position,
        op: Op,
        sector: u64,
        nr_sectors: u32,
        fill: F,
    ) -> Result<u64>
    where
        F: FnOnce(&mut dyn FnMut(&Chunk<'_>) -> Result) -> Result,
    {
        let rec = RecordHeader {
            op,
            seq: head.seq,
            log_id: self.header.log_id,
            sector,
            nr_sectors,
        };
        let (wrap, at) = self.geo.place(head.offset, rec.log_len());
        // The sequence numbers this append uses, checked before anything is
        // written (they start from a CP marker's, at most MAX_SEQ).
        let last = head.seq.checked_add(u64::from(wrap)).ok_or(EOVERFLOW)?;
        let next_seq = last.checked_add(1).ok_or(EOVERFLOW)?;
        let mut seq = head.seq;
        if wrap {
            let w = RecordHeader {
                op: Op::Wrap,
                seq,
                log_id: self.header.log_id,
                sector: 0,
                nr_sectors: 0,
            };
            let line = w.encode().map_err(|_| EINVAL)?;
            self.media.write(head.offset, &line)?;
            // Durable before the record after it begins, like every record:
            // so a valid record behind an invalid one always means the
            // invalid one is corrupt, never torn (`valid_record_after`).
            self.media.drain();
            seq = last;
        }
        let rec = RecordHeader { seq, ..rec };
        let line = rec.encode().map_err(|_| EINVAL)?;
        let data_at = at + RECORD_HEADER_SIZE as u64;
        let end = data_at + u64::from(rec.data_len());
        let mut pos = data_at;
        let media = &self.media;
        fill(&mut |chunk: &Chunk<'_>| {
            if pos + chunk.len() as u64 > end {
                return Err(EINVAL);
            }
            media.write_from(pos, chunk)?;
            pos += chunk.len() as u64;
            Ok(())
        })?;
        if pos != end {
            return Err(EINVAL);
        }
        // The data persistent before the header line that proves it is
        // stored; the line persistent before the record is acknowledged.
        if end > data_at {
            self.media.drain();
        }
        self.media.write(at, &line)?;
        self.media.drain();
        *head = Position {
            offset: self.geo.advance(at, rec.log_len()),
            seq: next_seq,
        };
        Ok(data_at)
    }

    /// Writes a write of whole blocks from `sector` (`nr_sectors` sectors)
    /// into `slots`, one block each, in order (pmem only): every block's
    /// data into its slot, a fence, every slot's header line (numbered from
    /// `head.seq` on, one a block), a fence; then `head.seq` is past them
    /// (its offset, the ring's, does not move). `fill` as for
    /// [`Self::append`]. Durable when it returns `Ok`.
    pub(crate) fn write_slots<F>(
        &self,
        head: &mut Position,
        sector: u64,
        nr_sectors: u32,
        slots: &[u32],
        fill: F,
    ) -> Result
    where
        F: FnOnce(&mut dyn FnMut(&Chunk<'_>) -> Result) -> Result,
    {
        let block = u64::from(self.geo.block);
        let per = u32::try_from(block / SECTOR_SIZE).map_err(|_| EINVAL)?;
        if self.geo.is_block()
            || block == 0
            || sector % u64::from(per) != 0
            || u64::from(nr_sectors) != u64::from(per) * slots.len() as u64
        {
            return Err(EINVAL);
        }
        let n = u64::try_from(slots.len()).map_err(|_| EINVAL)?;
        let next_seq = head.seq.checked_add(n).ok_or(EOVERFLOW)?;
        // The data: byte `pos` of the request goes to its block's slot.
        let total = n * block;
        let mut pos = 0u64;
        let media = &self.media;
        let geo = &self.geo;
        fill(&mut |chunk: &Chunk<'_>| {
            let mut done = 0usize;
            while done < chunk.len() {
                let i = usize::try_from(pos / block).map_err(|_| EINVAL)?;
                let slot = *slots.get(i).ok_or(EINVAL)?;
                let into = pos % block;
                let len = ((block - into) as usize).min(chunk.len() - done);
                let at = geo.slot_data(slot).ok_or(EINVAL)? + into;
                media.write_from(at, &chunk.piece(done, len)?)?;
                done += len;
                pos += len as u64;
            }
            Ok(())
        })?;
        if pos != total {
            return Err(EINVAL);
        }
        self.media.drain();
        for (k, &slot) in slots.iter().enumerate() {
            let rec = RecordHeader {
                op: Op::Write,
                seq: head.seq + k as u64,
                log_id: self.header.log_id,
                sector: sector + k as u64 * u64::from(per),
                nr_sectors: per,
            };
            let line = rec.encode().map_err(|_| EINVAL)?;
            self.media
                .write(self.geo.slot_header(slot).ok_or(EINVAL)?, &line)?;
        }
        self.media.drain();
        head.seq = next_seq;
        Ok(())
    }

    /// Calls `each(slot, header)` for every slot record a replay from
    /// sequence number `from` takes (`format::log::slot_record`), reading
    /// the slot table 64 KiB at a time. A table line that cannot be read
    /// may hold an acknowledged write: `EIO`, the kernel log naming the
    /// slots; with `drop_bad` (the volume's `discard_corrupt`) the kernel
    /// log names it and the scan goes on without it. Whether a record's
    /// data is bad is the caller's to ask ([`Self::slot_data_bad`]), of
    /// the records it takes. Returns the records taken and the slots
    /// dropped.
    pub(crate) fn scan_slots<F>(&self, from: u64, drop_bad: bool, mut each: F) -> Result<(u32, u32)>
    where
        F: FnMut(u32, &RecordHeader) -> Result,
    {
        const LINES: u32 = 1024;
        let geo = &self.geo;
        if geo.slots == 0 {
            return Ok((0, 0));
        }
        let mut buf = KVVec::from_elem(0u8, (LINES as usize) * 64, GFP_KERNEL)?;
        let (mut records, mut dropped) = (0u32, 0u32);
        let mut first = 0u32;
        while first < geo.slots {
            let n = LINES.min(geo.slots - first);
            let at = geo.slot_header(first).ok_or(EINVAL)?;
            let part = buf.get_mut(..n as usize * 64).ok_or(EINVAL)?;
            // Lines that cannot be read: a bit each, when the whole read
            // fails and the bad ones are dropped.
            let mut unreadable = [0u64; LINES as usize / 64];
            if self.media.read(at, part).is_err() {
                if !drop_bad {
                    pr_err!(
                        "log slot table unreadable at slots {}..{}: the log may hold \
                         acknowledged writes there; not replayed\n",
                        first,
                        first + n
                    );
                    return Err(EIO);
                }
                // Line by line, to drop only the bad ones.
                for (k, line) in part.chunks_exact_mut(64).enumerate() {
                    let off = at + k as u64 * 64;
                    if self.media.read(off, line).is_err() {
                        if let Some(w) = unreadable.get_mut(k / 64) {
                            *w |= 1 << (k % 64);
                        }
                        pr_warn!(
                            "log slot {} unreadable: its record (if it holds one) \
                             dropped as discard_corrupt asks\n",
                            first + k as u32
                        );
                        dropped += 1;
                    }
                }
            }
            for (k, line) in part.chunks_exact(64).enumerate() {
                let slot = first + k as u32;
                if unreadable
                    .get(k / 64)
                    .is_some_and(|w| w & (1 << (k % 64)) != 0)
                {
                    continue;
                }
                let line: &[u8; 64] = line.try_into().map_err(|_| EINVAL)?;
                let Some(h) = crate::format::log::slot_record(geo, self.header.log_id, from, line)
                else {
                    continue;
                };
                each(slot, &h)?;
                records += 1;
            }
            first += n;
        }
        Ok((records, dropped))
    }

    /// Whether the media reports a bad line in the data of `slot` (or the
    /// slot is not one of the log's).
    pub(crate) fn slot_data_bad(&self, slot: u32) -> bool {
        self.geo
            .slot_data(slot)
            .is_none_or(|at| self.media.bad(at, u64::from(self.geo.block)))
    }

    /// Reads `buf.len()` bytes of the log at `off` (a record's data).
    pub(crate) fn read(&self, off: u64, buf: &mut [u8]) -> Result {
        self.media.read(off, buf)
    }

    /// Reads the `piece`-byte pieces of the log at `ats` (records' data)
    /// into `buf` from `from` on: [`Media::read_pieces`].
    pub(crate) fn read_pieces(
        &self,
        ats: &[u64],
        piece: usize,
        buf: &mut KVVec<u8>,
        from: usize,
    ) -> Result {
        self.media.read_pieces(ats, piece, buf, from)
    }

    /// After a scan that ended at `end`: where a valid record follows the
    /// invalid one, which means that one is corrupt (see
    /// [`valid_record_after`]). The error of a read that failed for another
    /// cause than a bad line (an allocation, say): what was read then
    /// proves nothing either way.
    pub(crate) fn valid_record_after(&self, end: &ScanEnd) -> Result<Option<u64>> {
        let reader = MediaReader::new(&self.media, &self.geo);
        let at = valid_record_after(&reader, self.geo, self.header.log_id, end);
        reader.result()?;
        Ok(at)
    }

    /// Scans from `from` to the valid end, calling `each` for every record
    /// (wrap records included). The error of a read that failed for another
    /// cause than a bad line (an allocation, say) instead of the end where
    /// the scan stopped: it is not the log's end, and taking it for one
    /// would drop the records after it.
    pub(crate) fn scan<F, E>(&self, from: &CpMarker, each: F) -> Result<ScanEnd, E>
    where
        F: FnMut(&Found) -> Result<(), E>,
        E: From<Error>,
    {
        self.scan_records(from, true, each)
    }

    /// As [`Self::scan`], without a block log's data sums: the caller checks
    /// those a power cut can have torn ([`Self::first_torn`]).
    pub(crate) fn scan_headers<F, E>(&self, from: &CpMarker, each: F) -> Result<ScanEnd, E>
    where
        F: FnMut(&Found) -> Result<(), E>,
        E: From<Error>,
    {
        self.scan_records(from, false, each)
    }

    /// [`scan_records`] through the media's reader.
    fn scan_records<F, E>(&self, from: &CpMarker, check_data: bool, each: F) -> Result<ScanEnd, E>
    where
        F: FnMut(&Found) -> Result<(), E>,
        E: From<Error>,
    {
        let reader = MediaReader::new(&self.media, &self.geo);
        let end = scan_records(
            &reader,
            self.geo,
            self.header.log_id,
            from,
            check_data,
            each,
        )?;
        reader.result()?;
        Ok(end)
    }

    /// Of the records [`Self::scan_headers`] found (`records`: their
    /// offsets and sequence numbers, in log order), the first that a power
    /// cut may have torn and whose data does not match its sum, and the
    /// log's end there ([`first_torn`]). The error of a read that failed
    /// for another cause than a bad sector (an allocation) proves nothing
    /// and is returned as such.
    pub(crate) fn first_torn<I>(&self, records: I) -> Result<Option<(usize, ScanEnd)>>
    where
        I: Iterator<Item = (u64, u64)> + Clone,
    {
        let reader = MediaReader::new(&self.media, &self.geo);
        let r = first_torn(&reader, &self.geo, self.header.log_id, records);
        reader.result()?;
        Ok(r)
    }

    /// Whether the record at `at` may be torn, the chain of valid headers
    /// ending with the record at `last` ([`may_be_torn`]).
    pub(crate) fn may_be_torn(&self, at: u64, last: u64) -> bool {
        may_be_torn(&self.geo, at, last)
    }
}

#[kernel::prelude::kunit_tests(swarmlog_log)]
mod tests {
    use super::*;
    use crate::format::log::{Medium, AREA_START, CP_SLOTS, MAX_RECORD_DATA};
    use crate::sys::dax::RamMedia;

    // Room for three largest records and 4 KiB more, so the fourth wraps.
    const SIZE: usize = 4096 + 3 * (64 + MAX_RECORD_DATA as usize) + 4096;

    struct Shared<'a>(&'a RamMedia);
    impl Media for Shared<'_> {
        fn size(&self) -> u64 {
            self.0.size()
        }
        fn read(&self, off: u64, buf: &mut [u8]) -> Result {
            self.0.read(off, buf)
        }
        fn write(&self, off: u64, data: &[u8]) -> Result {
            self.0.write(off, data)
        }
        fn drain(&self) {}
    }

    /// A log device whose reads of any byte in `bad` fail with `err`: `EIO`
    /// as a bad sector does, or another error (an allocation).
    struct Failing<'a> {
        media: &'a RamMedia,
        bad: core::ops::Range<u64>,
        err: Error,
    }
    impl Media for Failing<'_> {
        fn size(&self) -> u64 {
            self.media.size()
        }
        fn read(&self, off: u64, buf: &mut [u8]) -> Result {
            if off < self.bad.end && self.bad.start < off + buf.len() as u64 {
                return Err(self.err);
            }
            self.media.read(off, buf)
        }
        fn write(&self, off: u64, data: &[u8]) -> Result {
            self.media.write(off, data)
        }
        fn drain(&self) {}
        fn medium(&self) -> Medium {
            self.media.medium()
        }
    }

    #[test]
    fn a_block_log_scan_tells_read_errors_from_the_end() -> Result {
        // A block log of 512-byte units with 20 records of 4 KiB (92160
        // bytes from the CP's offset), all within the scan's first 1 MiB
        // read.
        let ram = RamMedia::shared_block(4096 + (4 << 20) + 4096, 512)?;
        let ok = |bad: core::ops::Range<u64>, err: Error| Failing {
            media: &ram,
            bad,
            err,
        };
        let (cp, head, offs) = block_records(ok(0..0, EIO), 20)?;
        let open =
            |bad: core::ops::Range<u64>, err: Error| Log::open(ok(bad, err)).map_err(|_| EINVAL);
        // A bad sector past the log's end, in the scan's first read: the
        // scan reads the units it needs instead and finds all 20 records.
        // Before, the failed 1 MiB read stopped the scan at record 1, and
        // with nothing valid a window further on, the log ended there: 20
        // acknowledged records dropped.
        let past = head.offset + 64 * 1024;
        let log = open(past..past + 512, EIO)?;
        let end = log.scan(&cp, |_| Ok::<(), Error>(()))?;
        assert_eq!((end.records, end.offset), (20, head.offset));
        assert_eq!(log.valid_record_after(&end)?, None);
        // The last record's header unit unreadable: damage there, never the
        // end (record 20 was acknowledged).
        let last = offs.last().copied().ok_or(EINVAL)?;
        let log = open(last..last + 512, EIO)?;
        let end = log.scan(&cp, |_| Ok::<(), Error>(()))?;
        assert_eq!(
            (end.records, end.offset, end.stop),
            (19, last, Invalid::Unreadable)
        );
        assert_eq!(log.valid_record_after(&end)?, Some(last));
        // A read that fails for another cause (no memory): the scan's
        // error, not an end where it stopped.
        let log = open(past..past + 512, ENOMEM)?;
        let r = log.scan(&cp, |_| Ok::<(), Error>(()));
        assert!(matches!(r, Err(e) if e == ENOMEM));
        Ok(())
    }

    #[test]
    fn a_block_log_checks_the_data_a_power_cut_may_have_torn() -> Result {
        // 600 records of 4 KiB in 512-byte units (4608 bytes each, 2.6 MiB
        // in all): those more than the 2 MiB window before the last are
        // complete (a later record was issued a window past them).
        let ram = RamMedia::shared_block(4096 + (4 << 20) + 4096, 512)?;
        let media = || Failing {
            media: &ram,
            bad: 0..0,
            err: EIO,
        };
        let (cp, head, offs) = block_records(media(), 600)?;
        let log = Log::open(media()).map_err(|_| EINVAL)?;
        let at = |k: usize| offs.get(k - 1).copied().ok_or(EINVAL);
        let (seq, last) = (|k: usize| cp.seq + k as u64 - 1, at(600)?);
        assert_eq!(log.geo.window, 2 << 20);
        // Which records the replay checks: those less than a window before
        // the last one's start.
        let first_checked = (1..=600).find(|&k| at(k).is_ok_and(|o| log.may_be_torn(o, last)));
        assert_eq!(first_checked, Some(600 - (2 << 20) / 4608));
        assert!(!log.may_be_torn(at(144)?, last));
        assert!(log.may_be_torn(at(145)?, last) && log.may_be_torn(last, last));
        let all = || offs.iter().enumerate().map(|(k, &o)| (o, seq(k + 1)));
        let stop = |r: Option<(usize, ScanEnd)>| r.map(|(k, e)| (k, e.stop));
        assert_eq!(log.first_torn(all())?, None);
        // A bit of record 5's data and of record 597's flipped.
        let flip = |off: u64| -> Result {
            let mut b = [0u8; 1];
            ram.read(off, &mut b)?;
            ram.write(off, &[b[0] ^ 4])
        };
        flip(at(5)? + 512 + 1000)?;
        flip(at(597)? + 512 + 1000)?;
        let log = Log::open(media()).map_err(|_| EINVAL)?;
        // The headers alone chain all 600 records.
        let end = log.scan_headers(&cp, |_| Ok::<(), Error>(()))?;
        assert_eq!((end.records, end.offset), (600, head.offset));
        // Record 5 is complete, not checked: the first torn record is 597
        // (index 596). The full scan stops at record 5, corrupt.
        assert!(!log.may_be_torn(at(5)?, last));
        let torn = log.first_torn(all())?;
        assert_eq!(stop(torn), Some((596, Invalid::Checksum)));
        // The log's end there: record 597, 596 records before it.
        let end = torn.map(|(_, e)| (e.offset, e.seq, e.records));
        assert_eq!(end, Some((at(597)?, seq(597), 596)));
        let full = log.scan(&cp, |_| Ok::<(), Error>(()))?;
        assert_eq!(
            (full.records, full.offset, full.stop),
            (4, at(5)?, Invalid::Checksum)
        );
        assert!(log.valid_record_after(&full)?.is_some());
        // Only the records up to 598 found (the last is 598): record 597
        // is still the first bad one.
        assert_eq!(
            stop(log.first_torn(all().take(598))?),
            Some((596, Invalid::Checksum))
        );
        // A chain that ends at record 10: record 5 is less than a window
        // before its end, checked, and the first bad one.
        assert_eq!(
            stop(log.first_torn(all().take(10))?),
            Some((4, Invalid::Checksum))
        );
        // A sequence number that is not the record's: its header refused.
        let wrong = || all().map(|(o, s)| (o, if o == last { s + 1 } else { s }));
        flip(at(597)? + 512 + 1000)?;
        assert_eq!(
            stop(log.first_torn(wrong())?),
            Some((599, Invalid::Sequence))
        );
        // Record 599's data fails to read: damage there (the replay then
        // refuses the log with EIO). Another error is the caller's.
        let data599 = at(599)? + 512 + 2048;
        let failing = |err: Error| {
            Log::open(Failing {
                media: &ram,
                bad: data599..data599 + 512,
                err,
            })
            .map_err(|_| EINVAL)
        };
        assert_eq!(
            stop(failing(EIO)?.first_torn(all())?),
            Some((598, Invalid::Unreadable))
        );
        assert!(matches!(failing(ENOMEM)?.first_torn(all()), Err(e) if e == ENOMEM));
        Ok(())
    }

    /// Formats a log on `media` and appends `n` records of 4 KiB (record
    /// `i`, from 0, of blocks `i` filled with `i`): returns the CP marker,
    /// the head after them and their offsets.
    fn block_records(media: Failing<'_>, n: u64) -> Result<(CpMarker, Position, KVec<u64>)> {
        let log = Log::format(media, [1; 16], 5, false)?;
        let (_, cp) = log.cp_marker()?;
        let mut head = Position {
            offset: cp.offset,
            seq: cp.seq,
        };
        let mut offs = KVec::new();
        let mut data = scratch()?;
        data.truncate(4096);
        for i in 0..n {
            offs.push(head.offset, GFP_KERNEL)?;
            data.fill(i as u8);
            log.append(&mut head, Op::Write, 8 * i, 8, |sink| {
                sink(&Chunk::of(&mut data))
            })?;
        }
        Ok((cp, head, offs))
    }

    fn scratch() -> Result<KVec<u8>> {
        let mut v = KVec::new();
        v.resize(MAX_RECORD_DATA as usize, 0, GFP_KERNEL)?;
        Ok(v)
    }

    fn count(log: &Log<Shared<'_>>, from: &CpMarker) -> Result<ScanEnd> {
        log.scan(from, |_| Ok::<(), Error>(()))
    }

    #[test]
    fn format_then_open_is_empty() -> Result {
        let ram = RamMedia::new(SIZE)?;
        {
            let log = Log::format(Shared(&ram), [9; 16], 77, false)?;
            let (slot, cp) = log.cp_marker()?;
            assert_eq!(slot, 0);
            assert_eq!(cp.seq, 1);
            assert_eq!(count(&log, &cp)?.records, 0);
        }
        let log = Log::open(Shared(&ram)).map_err(|_| EINVAL)?;
        assert_eq!(log.header().array_uuid, [9; 16]);
        assert_eq!(log.header().log_id, 77);
        Ok(())
    }

    #[test]
    fn open_refuses_unformatted() -> Result {
        let ram = RamMedia::new(SIZE)?;
        assert!(matches!(Log::open(Shared(&ram)), Err((Invalid::Magic, _))));
        Ok(())
    }

    #[test]
    fn append_fill_and_cp_free_space() -> Result {
        let ram = RamMedia::new(SIZE)?;
        let log = Log::format(Shared(&ram), [1; 16], 5, false)?;
        let (mut slot, cp) = log.cp_marker()?;
        let mut tail = Position {
            offset: cp.offset,
            seq: cp.seq,
        };
        let mut head = tail;
        let mut data = scratch()?;
        // Largest records until the log is full.
        let mut n = 0u64;
        while log.fits(&head, &tail, MAX_RECORD_DATA) {
            log.append(&mut head, Op::Write, n * 2048, 2048, |sink| {
                sink(&Chunk::of(&mut data))
            })?;
            n += 1;
        }
        assert_eq!(n, 3);
        let cp = CpMarker {
            log_id: 5,
            generation: 0,
            seq: tail.seq,
            offset: tail.offset,
        };
        assert_eq!(count(&log, &cp)?.records, 3);
        // A CP at the head frees everything; the next record wraps.
        slot = log.write_cp(slot, 1, head)?;
        tail = head;
        let (s, m) = log.cp_marker()?;
        assert_eq!((s, m.generation, m.seq), (slot, 1, 4));
        assert!(log.fits(&head, &tail, MAX_RECORD_DATA));
        log.append(&mut head, Op::Write, 0, 2048, |sink| {
            sink(&Chunk::of(&mut data))
        })?;
        assert_eq!(head.offset, AREA_START + 64 + u64::from(MAX_RECORD_DATA));
        assert_eq!(head.seq, 6); // record 4 was the wrap record
        let end = count(&log, &m)?;
        assert_eq!((end.records, end.offset), (2, head.offset));
        Ok(())
    }

    #[test]
    fn an_impossible_cp_marker_is_refused() -> Result {
        // A marker with a valid checksum but an offset outside the records
        // (the header, a CP slot, not a line, past the end) or a sequence
        // number swarmlog never writes: refused, nothing written. Before,
        // the scan stopped at once and the head took that offset.
        for (offset, seq) in [
            (0, 2),
            (64, 2),
            (AREA_START + 8, 2),
            (SIZE as u64, 2),
            (AREA_START, 0),
            (AREA_START, u64::MAX),
        ] {
            let ram = RamMedia::new(SIZE)?;
            let log = Log::format(Shared(&ram), [1; 16], 5, false)?;
            let (slot, _) = log.cp_marker()?;
            let m = CpMarker {
                log_id: 5,
                generation: 9,
                seq,
                offset,
            };
            ram.write(CP_SLOTS[other_slot(slot)], &m.encode())?;
            let mut before = [0u8; 192];
            ram.read(0, &mut before)?;
            assert!(matches!(log.cp_marker(), Err(e) if e == EUCLEAN));
            let mut after = [0u8; 192];
            ram.read(0, &mut after)?;
            assert_eq!(before, after);
        }
        Ok(())
    }

    #[test]
    fn append_refuses_a_sequence_number_past_the_last() -> Result {
        let ram = RamMedia::new(SIZE)?;
        let log = Log::format(Shared(&ram), [1; 16], 5, false)?;
        let mut head = Position {
            offset: AREA_START,
            seq: u64::MAX,
        };
        let r = log.append(&mut head, Op::Discard, 8, 8, |_| Ok(()));
        assert!(matches!(r, Err(e) if e == EOVERFLOW));
        assert_eq!(head.seq, u64::MAX);
        let mut line = [0u8; 64];
        ram.read(AREA_START, &mut line)?;
        assert_eq!(line, [0u8; 64]);
        Ok(())
    }

    #[test]
    fn append_checks_data_length() -> Result {
        let ram = RamMedia::new(SIZE)?;
        let log = Log::format(Shared(&ram), [1; 16], 5, false)?;
        let mut head = Position {
            offset: AREA_START,
            seq: 1,
        };
        let r = log.append(&mut head, Op::Write, 0, 2, |sink| {
            sink(&Chunk::of(&mut [0; 512]))
        });
        assert!(r.is_err());
        let r = log.append(&mut head, Op::Write, 0, 1, |sink| {
            sink(&Chunk::of(&mut [0; 512]))?;
            sink(&Chunk::of(&mut [0; 1]))
        });
        assert!(r.is_err());
        assert_eq!(head.seq, 1);
        log.append(&mut head, Op::Discard, 8, 8, |_| Ok(()))?;
        assert_eq!(
            head,
            Position {
                offset: AREA_START + 64,
                seq: 2
            }
        );
        Ok(())
    }
}
