// SPDX-License-Identifier: GPL-2.0

//! The log at run time: format, open, append records, advance the CP marker,
//! scan; all through [`Media`], the single pmem interface.
//!
//! # Ordering rules
//!
//! - A record's space is reserved in log order ([`Log::reserve`]), its data
//!   written, by as many writers in parallel as there are
//!   ([`Log::write_data`]), then its header line ([`Log::publish`]); it is
//!   durable, and so may be acknowledged, only after the [`Media::drain`]
//!   that follows the header. Its checksum covers header and data, so a
//!   record cut short by a power failure does not validate, whatever part of
//!   it reached the media.
//! - Headers are written strictly in log order, each only once the one
//!   before it is durable ([`Sequencer`]): so the valid records are always a
//!   prefix of the reserved ones, and a valid record behind an invalid one
//!   means the invalid one is corrupt, never torn.
//! - A CP marker is written to the slot that is *not* current, then drained;
//!   until then the old marker is in force. It is written only after the
//!   array holds (and has flushed) everything before its position, and
//!   every record before it is published ([`Sequencer::wait_published`]):
//!   the space before it is reused, and must not still be written to.
//! - Format writes the new log's first CP marker to the slot the old log
//!   does not use, drains, then writes the new header (the commit point) and
//!   drains: a power failure before the header's line lands leaves the old
//!   log whole, after it the new one; the old log's records and markers carry
//!   the old log id and do not validate under the new one.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;
use kernel::sync::{CondVar, Mutex};
use kernel::{new_condvar, new_mutex};

use crate::checksum::shift;
use crate::format::{
    scan, valid_record_after, CpMarker, Found, Geometry, Invalid, LogHeader, LogRead, Op,
    RecordHeader, ScanEnd, AREA_START, LINE, RECORD_HEADER_SIZE,
};
use crate::pmem::Media;

/// A place in the log: where the next record goes and the sequence number
/// it carries (the head), or where the uncommitted records begin (the tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) offset: u64,
    pub(crate) seq: u64,
}

/// A record whose log space is reserved ([`Log::reserve`]).
pub(crate) struct Reserved {
    /// Sequence number of its wrap record if it has one, else its own.
    first_seq: u64,
    /// Offset of its wrap record, if it has one.
    wrap: Option<u64>,
    /// Offset of the record.
    at: u64,
    rec: RecordHeader,
    /// The head after it.
    next: Position,
}

impl Reserved {
    /// Sequence number of the first record it takes (its wrap record's if
    /// it has one).
    pub(crate) fn first_seq(&self) -> u64 {
        self.first_seq
    }
}

/// A reserved record whose data is written, with its sealed header line:
/// ready to [`Log::publish`].
pub(crate) struct Pending {
    r: Reserved,
    line: [u8; 64],
}

/// The log on its media.
pub(crate) struct Log<M: Media> {
    media: M,
    header: LogHeader,
    geo: Geometry,
}

/// Offsets of the two CP marker slots.
const CP_SLOTS: [u64; 2] = [LINE, 2 * LINE];

/// The CP slot that is not `slot`.
fn other_slot(slot: usize) -> usize {
    1 - slot.min(1)
}

struct MediaReader<'a, M: Media>(&'a M);

impl<M: Media> LogRead for MediaReader<'_, M> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), Invalid> {
        self.0.read(off, buf).map_err(|_| Invalid::Range)
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
    pub(crate) fn format(media: M, array_uuid: [u8; 16], log_id: u64) -> Result<Self> {
        let header = LogHeader {
            array_uuid,
            log_id,
            log_size: media.size(),
            block_size: crate::metadata::BLOCK_SIZE as u32,
        };
        let geo = header.geometry().ok_or(ENOSPC)?;
        let mut line = [0u8; 64];
        media.read(0, &mut line)?;
        let slot = match LogHeader::decode(&line) {
            Ok(old) if old.log_id == log_id => return Err(EEXIST),
            Ok(old) => match Self::read_cp(&media, old.log_id)? {
                Some((current, _)) => other_slot(current),
                None => 0,
            },
            Err(_) => 0,
        };
        let first = CpMarker {
            log_id,
            generation: 0,
            seq: 1,
            offset: AREA_START,
        };
        media.write(CP_SLOTS[slot], &first.encode())?;
        media.drain();
        media.write(0, &header.encode())?;
        media.drain();
        Ok(Self { media, header, geo })
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
        let geo = match header.geometry() {
            Some(g) if header.log_size <= media.size() => g,
            _ => return Err((Invalid::Field, media)),
        };
        Ok(Self { media, header, geo })
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
    pub(crate) fn cp_marker(&self) -> Result<(usize, CpMarker)> {
        Self::read_cp(&self.media, self.header.log_id)?.ok_or(EUCLEAN)
    }

    /// The current CP marker of log `log_id` on `media`, and its slot.
    fn read_cp(media: &M, log_id: u64) -> Result<Option<(usize, CpMarker)>> {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        media.read(CP_SLOTS[0], &mut a)?;
        media.read(CP_SLOTS[1], &mut b)?;
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
        self.media.write(CP_SLOTS[slot], &m.encode())?;
        self.media.drain();
        Ok(slot)
    }

    /// Bytes in use between `tail` and `head`.
    pub(crate) fn used(&self, head: &Position, tail: &Position) -> u64 {
        self.geo.distance(tail.offset, head.offset)
    }

    /// Bytes a record of `data_len` bytes takes if the head is at `head`,
    /// including the wrap record in front of it if it needs one.
    pub(crate) fn cost(&self, head: &Position, data_len: u32) -> u64 {
        let len = crate::format::line_align(RECORD_HEADER_SIZE as u64 + u64::from(data_len));
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

    /// Reserves the space of a record at `head` (and of the wrap record in
    /// front of it if it needs one) and advances `head` past it. The record
    /// is then written with [`Self::write_data`], in parallel with others,
    /// and made durable with [`Self::publish`], strictly in reservation
    /// order ([`Sequencer`]). The caller checked [`Self::fits`] and
    /// serialises reservations. Nothing is written here, and nothing is
    /// reserved when the record is not valid.
    pub(crate) fn reserve(
        &self,
        head: &mut Position,
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
        let (wrap, at) = self.geo.place(head.offset, rec.log_len());
        let wrap = wrap.then_some(head.offset);
        let seq = head.seq + u64::from(wrap.is_some());
        let rec = RecordHeader { seq, ..rec };
        rec.begin().map_err(|_| EINVAL)?;
        let next = at + rec.log_len();
        let reserved = Reserved {
            first_seq: head.seq,
            wrap,
            at,
            rec,
            next: Position {
                offset: if next == self.geo.end {
                    AREA_START
                } else {
                    next
                },
                seq: seq + 1,
            },
        };
        *head = reserved.next;
        Ok(reserved)
    }

    /// Writes a reserved record's data (not durable yet). `fill` is called
    /// with a sink that takes the data in order, exactly `data_len` bytes of
    /// it for a write, each piece with its CRC-32C from zero
    /// (`crc32c(0, piece)`), which the record's checksum is combined from.
    /// Returns the record ready to [`Self::publish`]; on an error the
    /// reservation is a hole that must not be published past
    /// ([`Sequencer::abandon`]).
    pub(crate) fn write_data<F>(&self, r: Reserved, fill: F) -> Result<Pending>
    where
        F: FnOnce(&mut dyn FnMut(&[u8], u32) -> Result) -> Result,
    {
        let (mut line, mut crc) = r.rec.begin().map_err(|_| EINVAL)?;
        let mut pos = r.at + RECORD_HEADER_SIZE as u64;
        let end = pos + u64::from(r.rec.data_len());
        let media = &self.media;
        fill(&mut |chunk: &[u8], crc0: u32| {
            if pos + chunk.len() as u64 > end {
                return Err(EINVAL);
            }
            media.write(pos, chunk)?;
            crc = shift(crc, chunk.len() as u64) ^ crc0;
            pos += chunk.len() as u64;
            Ok(())
        })?;
        if pos != end {
            return Err(EINVAL);
        }
        RecordHeader::finish(&mut line, crc);
        Ok(Pending { r, line })
    }

    /// Makes a record durable: writes its wrap record if it has one, drains,
    /// then its header line, and drains. Records are published in
    /// reservation order, each only after the one before it returned (see
    /// [`Sequencer`]): so a valid record behind an invalid one always means
    /// the invalid one is corrupt, never torn (`valid_record_after`).
    pub(crate) fn publish(&self, p: &Pending) -> Result {
        if let Some(off) = p.r.wrap {
            let w = RecordHeader {
                op: Op::Wrap,
                seq: p.r.first_seq,
                log_id: self.header.log_id,
                sector: 0,
                nr_sectors: 0,
            };
            let line = w.encode(&[]).map_err(|_| EINVAL)?;
            self.media.write(off, &line)?;
            self.media.drain();
        }
        self.media.write(p.r.at, &p.line)?;
        self.media.drain();
        Ok(())
    }

    /// Appends a record at `head` and advances it: [`Self::reserve`],
    /// [`Self::write_data`] and [`Self::publish`] in one, for a caller that
    /// serialises appends and has none in flight. The record is durable when
    /// this returns `Ok`; on an error `head` is unchanged.
    pub(crate) fn append<F>(
        &self,
        head: &mut Position,
        op: Op,
        sector: u64,
        nr_sectors: u32,
        fill: F,
    ) -> Result
    where
        F: FnOnce(&mut dyn FnMut(&[u8], u32) -> Result) -> Result,
    {
        let mut h = *head;
        let r = self.reserve(&mut h, op, sector, nr_sectors)?;
        let p = self.write_data(r, fill)?;
        self.publish(&p)?;
        *head = h;
        Ok(())
    }

    /// Reads `buf.len()` bytes of the log at `off` (a record's data).
    pub(crate) fn read(&self, off: u64, buf: &mut [u8]) -> Result {
        self.media.read(off, buf)
    }

    /// After a scan that ended at `end`: where a valid record follows the
    /// invalid one, which means that one is corrupt (see
    /// [`valid_record_after`]).
    pub(crate) fn valid_record_after(&self, end: &ScanEnd, scratch: &mut [u8]) -> Option<u64> {
        valid_record_after(
            &MediaReader(&self.media),
            self.geo,
            self.header.log_id,
            end,
            scratch,
        )
    }

    /// Scans from `from` to the valid end, calling `each` for every record
    /// (wrap records included). `scratch` must hold a largest record's data.
    pub(crate) fn scan<F, E>(
        &self,
        from: &CpMarker,
        scratch: &mut [u8],
        each: F,
    ) -> Result<ScanEnd, E>
    where
        F: FnMut(&Found) -> Result<(), E>,
    {
        scan(
            &MediaReader(&self.media),
            self.geo,
            self.header.log_id,
            from,
            scratch,
            each,
        )
    }
}

/// Where publication stands.
struct Turn {
    /// The end of the published records: where the next one to publish
    /// begins.
    published: Position,
    /// The first sequence number that will never be published (its record's
    /// data could not be written), if any: no record after it is either.
    hole: Option<u64>,
    /// Publishers waiting for their turn.
    waiting: u32,
}

/// Publishes reserved records strictly in log order, whatever order their
/// data was written in: a record's header is written only once every
/// record before it is durable. Writers reserve under the volume's state
/// lock, write their data in parallel outside it, then wait here for their
/// turn.
///
/// # Invariants
///
/// `failed` is `true` exactly when `Turn::hole` is set (it is read without
/// the lock).
#[pin_data]
pub(crate) struct Sequencer {
    #[pin]
    turn: Mutex<Turn>,
    /// Signalled when a record is published or a hole made.
    #[pin]
    changed: CondVar,
    failed: AtomicBool,
}

impl Sequencer {
    /// A sequencer whose next record to publish begins at `at`.
    pub(crate) fn new(at: Position) -> impl PinInit<Self> {
        pin_init!(Self {
            turn <- new_mutex!(Turn {
                published: at,
                hole: None,
                waiting: 0,
            }),
            changed <- new_condvar!(),
            failed: AtomicBool::new(false),
        })
    }

    /// Starts again at `at`, with nothing reserved (replay moved the head).
    pub(crate) fn reset(&self, at: Position) {
        let mut t = self.turn.lock();
        t.published = at;
        t.hole = None;
        self.failed.store(false, Ordering::Release);
    }

    /// Whether a reserved record will never be published: the log cannot
    /// take any more.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Publishes `p` on `log` once every record reserved before it is
    /// published. Fails with `EIO`, publishing nothing, if one of them never
    /// will be.
    pub(crate) fn publish<M: Media>(&self, log: &Log<M>, p: &Pending) -> Result {
        let first = p.r.first_seq;
        let mut t = self.turn.lock();
        while t.published.seq != first {
            if t.hole.is_some_and(|h| h <= first) {
                return Err(EIO);
            }
            if t.published.seq > first {
                // Published twice, or reserved before the last reset.
                return Err(EINVAL);
            }
            t.waiting += 1;
            self.changed.wait(&mut t);
            t.waiting -= 1;
        }
        let res = log.publish(p);
        match res {
            Ok(()) => t.published = p.r.next,
            Err(_) => {
                t.hole = Some(first);
                self.failed.store(true, Ordering::Release);
            }
        }
        if t.waiting > 0 {
            self.changed.notify_all();
        }
        res
    }

    /// Gives up the record reserved with sequence number `first_seq` (its
    /// data could not be written): it and every record after it are never
    /// published, and their publishers fail.
    pub(crate) fn abandon(&self, first_seq: u64) {
        let mut t = self.turn.lock();
        t.hole = Some(t.hole.map_or(first_seq, |h| h.min(first_seq)));
        self.failed.store(true, Ordering::Release);
        self.changed.notify_all();
    }

    /// Waits until every record before `target` is published (a CP's
    /// marker must not pass a record still being written). Fails with `EIO`
    /// if one of them never will be.
    pub(crate) fn wait_published(&self, target: &Position) -> Result {
        let mut t = self.turn.lock();
        while t.published.seq < target.seq {
            if t.hole.is_some_and(|h| h <= t.published.seq) {
                return Err(EIO);
            }
            t.waiting += 1;
            self.changed.wait(&mut t);
            t.waiting -= 1;
        }
        Ok(())
    }
}

#[kernel::prelude::kunit_tests(swarmlog_log)]
mod tests {
    use super::*;
    use crate::checksum::crc32c;
    use crate::format::MAX_RECORD_DATA;
    use crate::pmem::RamMedia;

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

    fn scratch() -> Result<KVec<u8>> {
        let mut v = KVec::new();
        v.resize(MAX_RECORD_DATA as usize, 0, GFP_KERNEL)?;
        Ok(v)
    }

    fn count(log: &Log<Shared<'_>>, from: &CpMarker) -> Result<ScanEnd> {
        let mut s = scratch()?;
        log.scan(from, &mut s, |_| Ok::<(), Error>(()))
    }

    #[test]
    fn format_then_open_is_empty() -> Result {
        let ram = RamMedia::new(SIZE)?;
        {
            let log = Log::format(Shared(&ram), [9; 16], 77)?;
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
        let log = Log::format(Shared(&ram), [1; 16], 5)?;
        let (mut slot, cp) = log.cp_marker()?;
        let mut tail = Position {
            offset: cp.offset,
            seq: cp.seq,
        };
        let mut head = tail;
        let data = scratch()?;
        // Largest records until the log is full.
        let mut n = 0u64;
        while log.fits(&head, &tail, MAX_RECORD_DATA) {
            log.append(&mut head, Op::Write, n * 2048, 2048, |sink| {
                sink(&data, crc32c(0, &data))
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
            sink(&data, crc32c(0, &data))
        })?;
        assert_eq!(head.offset, AREA_START + 64 + u64::from(MAX_RECORD_DATA));
        assert_eq!(head.seq, 6); // record 4 was the wrap record
        let end = count(&log, &m)?;
        assert_eq!((end.records, end.offset), (2, head.offset));
        Ok(())
    }

    /// Reserves `n` one-sector writes at sectors 0, 8, 16... and writes
    /// their data, last first.
    fn in_flight(log: &Log<Shared<'_>>, head: &mut Position, n: u64) -> Result<KVec<Pending>> {
        let mut reserved = KVec::new();
        for i in 0..n {
            reserved.push(log.reserve(head, Op::Write, i * 8, 1)?, GFP_KERNEL)?;
        }
        let mut pending = KVec::new();
        while let Some(r) = reserved.pop() {
            let data = [r.first_seq() as u8; 512];
            pending.push(
                log.write_data(r, |sink| sink(&data, crc32c(0, &data)))?,
                GFP_KERNEL,
            )?;
        }
        pending.reverse();
        Ok(pending)
    }

    #[test]
    fn records_publish_in_log_order() -> Result {
        let ram = RamMedia::new(SIZE)?;
        let log = Log::format(Shared(&ram), [1; 16], 5)?;
        let (_, cp) = log.cp_marker()?;
        let mut head = Position {
            offset: cp.offset,
            seq: cp.seq,
        };
        let seqr = KBox::pin_init(Sequencer::new(head), GFP_KERNEL)?;
        let pending = in_flight(&log, &mut head, 3)?;
        // Data written, no header yet: nothing is a record.
        assert_eq!(count(&log, &cp)?.records, 0);
        assert!(!seqr.failed());
        for (i, p) in pending.iter().enumerate() {
            seqr.publish(&log, p)?;
            assert_eq!(count(&log, &cp)?.records, i as u64 + 1);
        }
        let end = count(&log, &cp)?;
        assert_eq!((end.offset, end.seq), (head.offset, head.seq));
        // Published once only.
        let first = pending.first().ok_or(EINVAL)?;
        assert_eq!(seqr.publish(&log, first), Err(EINVAL));
        // A CP targeting the head need not wait.
        seqr.wait_published(&head)?;
        Ok(())
    }

    #[test]
    fn a_hole_stops_publication() -> Result {
        let ram = RamMedia::new(SIZE)?;
        let log = Log::format(Shared(&ram), [1; 16], 5)?;
        let (_, cp) = log.cp_marker()?;
        let tail = Position {
            offset: cp.offset,
            seq: cp.seq,
        };
        let seqr = KBox::pin_init(Sequencer::new(tail), GFP_KERNEL)?;
        let mut head = tail;
        let pending = in_flight(&log, &mut head, 3)?;
        // The second record's data could not be written.
        seqr.abandon(tail.seq + 1);
        assert!(seqr.failed());
        // The one before it is still published, those after it never are,
        // and a CP cannot pass it.
        seqr.publish(&log, pending.first().ok_or(EINVAL)?)?;
        assert_eq!(seqr.publish(&log, pending.get(2).ok_or(EINVAL)?), Err(EIO));
        assert_eq!(seqr.wait_published(&head), Err(EIO));
        assert_eq!(count(&log, &cp)?.records, 1);
        // Replay starts the log again.
        seqr.reset(tail);
        assert!(!seqr.failed());
        seqr.wait_published(&tail)?;
        Ok(())
    }

    #[test]
    fn append_checks_data_length() -> Result {
        let ram = RamMedia::new(SIZE)?;
        let log = Log::format(Shared(&ram), [1; 16], 5)?;
        let mut head = Position {
            offset: AREA_START,
            seq: 1,
        };
        let r = log.append(&mut head, Op::Write, 0, 2, |sink| sink(&[0; 512], 0));
        assert!(r.is_err());
        let r = log.append(&mut head, Op::Write, 0, 1, |sink| {
            sink(&[0; 512], 0)?;
            sink(&[0; 1], 0)
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
