// SPDX-License-Identifier: GPL-2.0

//! Tests of the slot area of a pmem log (format version 3,
//! `rust/format/log.rs`: `Geometry::pmem`, `scan_slots`, the ring scan's
//! sequence numbers with gaps), in userspace.

use crate::format::checksum::{crc32c, SEED};
use crate::format::log::{
    scan, scan_slots, slot_record, valid_record_after, CpMarker, Found, Geometry, LogHeader,
    LogRead, Medium, Op, RecordHeader, AREA_START, LINE, LOG_VERSION, MAX_RECORD_DATA,
    SLOT_LOG_VERSION,
};
use crate::format::Invalid;

const LOG_ID: u64 = 0x5eed_0000_1111_2222;
const BLOCK: u32 = 4096;
/// 16 MiB: room for slots and a ring of the smallest size.
const SIZE: u64 = 16 << 20;

fn header(slots: u32) -> LogHeader {
    LogHeader {
        array_uuid: [3; 16],
        log_id: LOG_ID,
        log_size: SIZE,
        block_size: BLOCK,
        medium: Medium::Pmem,
        slots,
    }
}

fn reseal(line: &mut [u8; 64]) {
    let crc = crc32c(SEED, &line[..60]);
    line[60..].copy_from_slice(&crc.to_le_bytes());
}

fn rec(op: Op, seq: u64, block: u64) -> RecordHeader {
    RecordHeader {
        op,
        seq,
        log_id: LOG_ID,
        sector: block * u64::from(BLOCK / 512),
        nr_sectors: BLOCK / 512,
    }
}

/// A log image in memory.
struct Img {
    bytes: Vec<u8>,
    geo: Geometry,
}

impl Img {
    fn new(slots: u32) -> Self {
        let geo = header(slots).geometry().expect("a geometry");
        Self {
            bytes: vec![0; SIZE as usize],
            geo,
        }
    }

    fn put(&mut self, off: u64, data: &[u8]) {
        let off = off as usize;
        self.bytes[off..off + data.len()].copy_from_slice(data);
    }

    /// A ring record at `off` (data, then its header line).
    fn ring(&mut self, off: u64, h: &RecordHeader, fill: u8) -> u64 {
        let data = vec![fill; h.data_len() as usize];
        self.put(off + 64, &data);
        self.put(off, &h.encode().expect("valid"));
        off + self.geo.record_len(h)
    }

    /// A record in slot `i` (its block, then its header line).
    fn slot(&mut self, i: u32, h: &RecordHeader, fill: u8) {
        let data = vec![fill; h.data_len() as usize];
        self.put(self.geo.slot_data(i).expect("a slot"), &data);
        self.put(
            self.geo.slot_header(i).expect("a slot"),
            &h.encode().expect("valid"),
        );
    }

    fn scan_ring(&self, from: u64) -> (Vec<u64>, u64, Invalid) {
        let m = CpMarker {
            log_id: LOG_ID,
            generation: 1,
            seq: from,
            offset: AREA_START,
        };
        let mut seqs = Vec::new();
        let end = scan(&self.bytes[..], self.geo, LOG_ID, &m, |f: &Found| {
            seqs.push(f.header.seq);
            Ok::<(), ()>(())
        })
        .expect("the scan");
        (seqs, end.seq, end.stop)
    }

    fn scan_slots(&self, from: u64) -> (Vec<(u32, u64)>, Option<(u32, Invalid)>) {
        let mut got = Vec::new();
        let end = scan_slots(&self.bytes[..], &self.geo, LOG_ID, from, |i, h| {
            got.push((i, h.seq));
            Ok::<(), ()>(())
        })
        .expect("the scan");
        assert_eq!(end.records as usize, got.len());
        (got, end.damaged)
    }
}

#[test]
fn version_3_header_carries_the_slots() {
    let n = Geometry::default_slots(SIZE, BLOCK);
    assert!(n > 0);
    let h = header(n);
    let line = h.encode();
    assert_eq!(line[8..12], SLOT_LOG_VERSION.to_le_bytes());
    assert_eq!(line[56..60], n.to_le_bytes());
    assert_eq!(LogHeader::decode(&line), Ok(h));
    // No slots: version 2, as before, zeroes where the count goes.
    let v2 = header(0).encode();
    assert_eq!(v2[8..12], LOG_VERSION.to_le_bytes());
    assert_eq!(v2[56..60], [0; 4]);
    assert_eq!(LogHeader::decode(&v2), Ok(header(0)));
    // Version 3 without slots, version 2 with: contradictions.
    let mut bad = line;
    bad[56..60].copy_from_slice(&[0; 4]);
    reseal(&mut bad);
    assert_eq!(LogHeader::decode(&bad), Err(Invalid::Field));
    let mut bad = v2;
    bad[56..60].copy_from_slice(&7u32.to_le_bytes());
    reseal(&mut bad);
    assert_eq!(LogHeader::decode(&bad), Err(Invalid::Field));
    // More slots than the device holds beside a ring: no geometry.
    let mut bad = line;
    bad[56..60].copy_from_slice(&(n * 2).to_le_bytes());
    reseal(&mut bad);
    assert_eq!(LogHeader::decode(&bad), Err(Invalid::Field));
    // A block log has no slots: version 3 is not one of its versions.
    let block = LogHeader {
        medium: Medium::Block { unit: 4096 },
        slots: 0,
        ..h
    };
    let mut bad = block.encode();
    bad[8..12].copy_from_slice(&SLOT_LOG_VERSION.to_le_bytes());
    reseal(&mut bad);
    assert_eq!(LogHeader::decode(&bad), Err(Invalid::Version));
}

#[test]
fn slots_lie_after_the_ring_without_overlap() {
    let n = Geometry::default_slots(SIZE, BLOCK);
    let g = Geometry::pmem(SIZE, BLOCK, n).expect("a geometry");
    let each = u64::from(BLOCK) + LINE;
    let area = SIZE - AREA_START;
    // Three quarters of the record area, give or take a slot.
    assert!(u64::from(n) * each <= area / 4 * 3);
    assert!(u64::from(n + 1) * each > area / 4 * 3);
    // The ring: from 4 KiB to the table, large enough for two largest
    // records.
    assert_eq!(g.start, AREA_START);
    assert!(g.capacity() >= 2 * (64 + u64::from(MAX_RECORD_DATA)) + 64);
    // The table right after the ring, then the blocks, 4 KiB aligned, the
    // last ending within the device.
    assert_eq!(g.slot_header(0), Some(g.end));
    assert_eq!(g.slot_header(n - 1), Some(g.end + u64::from(n - 1) * LINE));
    assert_eq!(g.slot_header(n), None);
    let first = g.slot_data(0).expect("slot 0");
    assert_eq!(first, g.end + u64::from(n) * LINE);
    assert_eq!(first % 4096, 0);
    let last = g.slot_data(n - 1).expect("the last slot");
    assert!(last + u64::from(BLOCK) <= SIZE);
    assert_eq!(g.slot_data(n), None);
    // Each block maps back to its slot; nothing else does.
    for i in [0, 1, n / 2, n - 1] {
        assert_eq!(g.slot_at(g.slot_data(i).expect("a slot")), Some(i));
    }
    assert_eq!(g.slot_at(first + 512), None);
    assert_eq!(g.slot_at(first - u64::from(BLOCK)), None);
    assert_eq!(g.slot_at(last + u64::from(BLOCK)), None);
    assert_eq!(g.slot_at(AREA_START), None);
    // Without slots, none of it.
    let plain = Geometry::pmem(SIZE, BLOCK, 0).expect("a geometry");
    assert_eq!(plain, Geometry::new(SIZE).expect("a geometry"));
    assert_eq!((plain.slot_header(0), plain.slot_data(0)), (None, None));
}

#[test]
fn a_small_log_gets_no_slots() {
    // The smallest log: its ring needs all of it.
    let least = AREA_START + 2 * (64 + u64::from(MAX_RECORD_DATA)) + 64;
    assert_eq!(Geometry::default_slots(least, BLOCK), 0);
    assert_eq!(Geometry::pmem(least, BLOCK, 1), None);
    // Somewhat larger: fewer than three quarters, so that the ring holds.
    let n = Geometry::default_slots(8 << 20, BLOCK);
    assert!(n >= 64);
    assert!(Geometry::pmem(8 << 20, BLOCK, n).is_some());
    // Blocks that are no power of two, or under a sector: no geometry.
    assert_eq!(Geometry::pmem(SIZE, 4000, 64), None);
    assert_eq!(Geometry::pmem(SIZE, 256, 64), None);
}

#[test]
fn only_records_of_one_whole_block_fit_a_slot() {
    let g = Img::new(Geometry::default_slots(SIZE, BLOCK)).geo;
    assert!(g.fits_slot(&rec(Op::Write, 1, 5)));
    assert!(g.fits_slot(&rec(Op::Discard, 1, 5)));
    assert!(g.fits_slot(&rec(Op::WriteZeroes, 1, 5)));
    let mut two = rec(Op::Write, 1, 5);
    two.nr_sectors *= 2;
    assert!(!g.fits_slot(&two));
    let mut off = rec(Op::Write, 1, 5);
    off.sector += 1;
    assert!(!g.fits_slot(&off));
    let wrap = RecordHeader {
        op: Op::Wrap,
        sector: 0,
        nr_sectors: 0,
        ..rec(Op::Write, 1, 0)
    };
    assert!(!g.fits_slot(&wrap));
    assert!(!Img::new(0).geo.fits_slot(&rec(Op::Write, 1, 5)));
}

#[test]
fn ring_records_may_skip_the_numbers_slots_took() {
    let mut with = Img::new(Geometry::default_slots(SIZE, BLOCK));
    let mut off = AREA_START;
    for (seq, block) in [(1, 0), (3, 1), (4, 2), (9, 3)] {
        off = with.ring(off, &rec(Op::Write, seq, block), seq as u8);
    }
    // A record of an earlier lap after them: a smaller number.
    with.ring(off, &rec(Op::Write, 2, 4), 2);
    assert_eq!(with.scan_ring(1), (vec![1, 3, 4, 9], 10, Invalid::Sequence));
    // From a CP marker whose number the ring's next record skipped.
    let m = CpMarker {
        log_id: LOG_ID,
        generation: 1,
        seq: 2,
        offset: AREA_START + with.geo.record_len(&rec(Op::Write, 1, 0)),
    };
    let mut seqs = Vec::new();
    let end = scan(&with.bytes[..], with.geo, LOG_ID, &m, |f: &Found| {
        seqs.push(f.header.seq);
        Ok::<(), ()>(())
    })
    .expect("the scan");
    assert_eq!((seqs, end.seq), (vec![3, 4, 9], 10));

    // The same records in a log without slots: a gap ends it.
    let mut without = Img::new(0);
    let mut off = AREA_START;
    for (seq, block) in [(1, 0), (3, 1), (4, 2)] {
        off = without.ring(off, &rec(Op::Write, seq, block), seq as u8);
    }
    assert_eq!(without.scan_ring(1), (vec![1], 2, Invalid::Sequence));
}

#[test]
fn a_valid_later_record_after_a_torn_one_is_corruption_with_gaps_too() {
    let mut img = Img::new(Geometry::default_slots(SIZE, BLOCK));
    let mut off = AREA_START;
    off = img.ring(off, &rec(Op::Write, 1, 0), 1);
    let torn_at = off;
    off = img.ring(off, &rec(Op::Write, 2, 1), 2);
    img.ring(off, &rec(Op::Write, 7, 2), 7);
    // Record 2's header broken: is record 7 after it proof that 2 was
    // complete once (corruption), as record 3 would be without slots?
    img.bytes[torn_at as usize + 44] ^= 1;
    let m = CpMarker {
        log_id: LOG_ID,
        generation: 1,
        seq: 1,
        offset: AREA_START,
    };
    let end = scan(&img.bytes[..], img.geo, LOG_ID, &m, |_: &Found| {
        Ok::<(), ()>(())
    })
    .expect("scan");
    assert_eq!(
        (end.offset, end.seq, end.stop),
        (torn_at, 2, Invalid::Checksum)
    );
    assert_eq!(
        valid_record_after(&img.bytes[..], img.geo, LOG_ID, &end),
        Some(off)
    );
    // A record of an earlier lap there instead proves nothing.
    img.ring(off, &rec(Op::Write, 1, 2), 1);
    assert_eq!(
        valid_record_after(&img.bytes[..], img.geo, LOG_ID, &end),
        None
    );
}

#[test]
fn slot_scan_takes_records_from_the_marker_on() {
    let mut img = Img::new(Geometry::default_slots(SIZE, BLOCK));
    img.slot(0, &rec(Op::Write, 5, 10), 5);
    // Stale: block 10 again, older; the caller keeps the newest.
    img.slot(1, &rec(Op::Write, 3, 10), 3);
    // Committed by a CP (before the marker's 2): free, not taken.
    img.slot(2, &rec(Op::Write, 1, 11), 1);
    // Torn: its line does not check.
    img.slot(3, &rec(Op::Write, 6, 12), 6);
    let h3 = img.geo.slot_header(3).expect("slot 3");
    img.bytes[h3 as usize + 30] ^= 0x10;
    // Of an earlier format of the device.
    img.slot(
        4,
        &RecordHeader {
            log_id: LOG_ID ^ 1,
            ..rec(Op::Write, 7, 13)
        },
        7,
    );
    // Two blocks: not a slot's record.
    let mut two = rec(Op::Write, 8, 14);
    two.nr_sectors *= 2;
    let h5 = img.geo.slot_header(5).expect("slot 5");
    img.put(h5, &two.encode().expect("valid"));
    // A discard of one block.
    img.slot(6, &rec(Op::Discard, 9, 15), 0);
    assert_eq!(img.scan_slots(2), (vec![(0, 5), (1, 3), (6, 9)], None));
    // From a later marker, fewer.
    assert_eq!(img.scan_slots(4), (vec![(0, 5), (6, 9)], None));
    // slot_record, line by line, agrees.
    let line = |i: u32| -> [u8; 64] {
        let at = img.geo.slot_header(i).expect("a slot") as usize;
        img.bytes[at..at + 64].try_into().expect("a line")
    };
    assert_eq!(
        slot_record(&img.geo, LOG_ID, 2, &line(0)),
        Some(rec(Op::Write, 5, 10))
    );
    assert_eq!(slot_record(&img.geo, LOG_ID, 2, &line(2)), None);
    assert_eq!(slot_record(&img.geo, LOG_ID, 2, &line(3)), None);
}

/// A log whose media reports slot `bad_line`'s header line, or slot
/// `bad_block`'s block, bad.
struct Poisoned<'a> {
    img: &'a Img,
    bad_line: Option<u32>,
    bad_block: Option<u32>,
}

impl LogRead for Poisoned<'_> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), Invalid> {
        if self.bad_line.and_then(|i| self.img.geo.slot_header(i)) == Some(off) {
            return Err(Invalid::Unreadable);
        }
        self.img.bytes[..].read_at(off, buf)
    }

    fn bad(&self, off: u64, _len: u64) -> bool {
        self.bad_block.and_then(|i| self.img.geo.slot_data(i)) == Some(off)
    }
}

#[test]
fn a_damaged_slot_stops_the_slot_scan() {
    let mut img = Img::new(Geometry::default_slots(SIZE, BLOCK));
    img.slot(0, &rec(Op::Write, 5, 10), 5);
    img.slot(4, &rec(Op::Write, 6, 11), 6);
    let scan_of = |p: &Poisoned| {
        let mut got = Vec::new();
        let end = scan_slots(p, &img.geo, LOG_ID, 1, |i, _| {
            got.push(i);
            Ok::<(), ()>(())
        })
        .expect("the scan");
        (got, end.damaged)
    };
    // An unreadable line may hold an acknowledged record, written or not.
    let p = Poisoned {
        img: &img,
        bad_line: Some(2),
        bad_block: None,
    };
    assert_eq!(scan_of(&p), (vec![0], Some((2, Invalid::Unreadable))));
    // A bad block is the caller's to ask about, of the records it keeps
    // (`only_a_kept_record_with_a_bad_block_is_damage`).
    for bad_block in [3, 4] {
        let p = Poisoned {
            img: &img,
            bad_line: None,
            bad_block: Some(bad_block),
        };
        assert_eq!(scan_of(&p), (vec![0, 4], None), "bad block {bad_block}");
    }
}

/// As replay (`PendingSlots::of`): a bad block under the newest record of
/// its block is damage (the write it holds is lost); under a stale record,
/// one a later record of its block replaced, or a free slot, it is not.
#[test]
fn only_a_kept_record_with_a_bad_block_is_damage() {
    let mut img = Img::new(Geometry::default_slots(SIZE, BLOCK));
    // Block 10: stale in slot 0, newest in slot 4; block 11 in slot 2.
    img.slot(0, &rec(Op::Write, 5, 10), 5);
    img.slot(2, &rec(Op::Write, 6, 11), 6);
    img.slot(4, &rec(Op::Write, 7, 10), 7);
    let damage_of = |bad_block: Option<u32>| {
        let p = Poisoned {
            img: &img,
            bad_line: None,
            bad_block,
        };
        let s = crate::inspect::scan_slot_area(&p, &img.geo, LOG_ID, 1);
        assert_eq!((s.valid, s.records, s.newest_seq), (3, 2, 7));
        s.damaged.map(|(i, _)| i)
    };
    assert_eq!(damage_of(None), None);
    assert_eq!(damage_of(Some(0)), None, "the stale record's block");
    assert_eq!(damage_of(Some(1)), None, "a free slot's block");
    assert_eq!(damage_of(Some(2)), Some(2));
    assert_eq!(damage_of(Some(4)), Some(4));
    // An unreadable table line comes first: the module stops there.
    let p = Poisoned {
        img: &img,
        bad_line: Some(3),
        bad_block: Some(2),
    };
    let s = crate::inspect::scan_slot_area(&p, &img.geo, LOG_ID, 1);
    assert_eq!(
        s.damaged,
        Some((3, "its table line cannot be read".to_string()))
    );
}
