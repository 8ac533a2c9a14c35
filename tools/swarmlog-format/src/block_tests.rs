// SPDX-License-Identifier: GPL-2.0

//! Tests of the log on a block device ([`Medium::Block`]), in userspace.
//!
//! A model writer lays records out as the format asks of a block log (the
//! header line at the start of a unit, the data padded to units, a wrap
//! record where a record does not fit before the area's end), keeps
//! several in flight within the window ([`Geometry::window`]), has them
//! acknowledged in log order and moves the CP marker over acknowledged
//! records only. A crash lands any subset of the in-flight records, each
//! whole, not at all or in part (any subset of its units), over a log area
//! that held stale bytes (an older lap of the same log, a log of another
//! format, or garbage). Everything is deterministic: a xorshift generator
//! with fixed seeds.

use crate::format::log::{
    data_sum, first_torn, scan, scan_records, valid_record_after, CpMarker, Found, Geometry,
    LogHeader, Medium, Op, RecordHeader, ScanEnd, BLOCK_LOG_MAGIC, BLOCK_WINDOW, MAX_RECORD_DATA,
};
use crate::format::Invalid;

const LOG_ID: u64 = 0x0b10_c106_5eed_0001;
/// The log id of an earlier format of the same device.
const OTHER_ID: u64 = LOG_ID ^ 0xffff;
const UNITS: [u32; 3] = [512, 1024, 4096];
const MIB: u64 = 1 << 20;

/// xorshift64, seeded through a multiplication (never 0).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self((seed.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// Where a block log of unit `unit` puts its records.
fn area_start(unit: u32) -> u64 {
    u64::from(unit * 4).max(4096)
}

/// A record header of log `log_id` (sequence number `seq`).
fn rh(op: Op, log_id: u64, seq: u64, sector: u64, nr_sectors: u32) -> RecordHeader {
    RecordHeader {
        op,
        seq,
        log_id,
        sector,
        nr_sectors,
    }
}

fn header(log_size: u64, unit: u32, log_id: u64) -> LogHeader {
    LogHeader {
        array_uuid: [0x5a; 16],
        log_id,
        log_size,
        block_size: 4096,
        medium: Medium::Block { unit },
        slots: 0,
    }
}

/// A record the model writer issued.
#[derive(Clone)]
struct Rec {
    off: u64,
    /// Position counted from the writer's first head, round the ring.
    lin: u64,
    header: RecordHeader,
    data: Vec<u8>,
}

/// A block log image in memory.
#[derive(Clone)]
struct Log {
    bytes: Vec<u8>,
    geo: Geometry,
}

impl Log {
    fn new(size: u64, unit: u32, log_id: u64) -> Self {
        let geo = Geometry::block(size, unit).expect("a large enough log");
        let mut log = Self {
            bytes: vec![0; size as usize],
            geo,
        };
        log.write(0, &header(size, unit, log_id).encode());
        log
    }

    fn write(&mut self, off: u64, b: &[u8]) {
        self.bytes[off as usize..off as usize + b.len()].copy_from_slice(b);
    }

    fn line(&self, off: u64) -> [u8; 64] {
        let line = self.bytes[off as usize..][..64].try_into();
        line.expect("64 bytes")
    }

    /// Lands the units of the one write of `r` (its header line, zeroes
    /// to a unit, its data padded with zeroes to a unit) that `lands` says.
    fn land(&mut self, r: &Rec, mut lands: impl FnMut() -> bool) {
        let unit = self.geo.unit;
        let mut img = vec![0; self.geo.record_len(&r.header) as usize];
        let line = r.header.encode_with_sum(data_sum(&r.data));
        img[..64].copy_from_slice(&line.expect("a valid record"));
        img[unit as usize..][..r.data.len()].copy_from_slice(&r.data);
        for (i, u) in img.chunks(unit as usize).enumerate() {
            if lands() {
                self.write(r.off + i as u64 * unit, u);
            }
        }
    }

    /// Opens the log as the module does (header, geometry, newest CP
    /// marker), scans it and asks whether its end is corrupt.
    fn scan(&self) -> (Vec<Found>, ScanEnd, Option<u64>) {
        let h = LogHeader::decode(&self.line(0)).expect("a valid header");
        assert_eq!(h.geometry(), Some(self.geo));
        let slot = |i| self.line(self.geo.cp_slot(i));
        let (_, cp) = CpMarker::newest(&slot(0), &slot(1), h.log_id).expect("a CP marker");
        assert_eq!(cp.check(&self.geo), Ok(()));
        let mut found = Vec::new();
        let end = scan(&self.bytes[..], self.geo, h.log_id, &cp, |f| {
            found.push(*f);
            Ok::<(), ()>(())
        });
        let end = end.expect("never stopped");
        let after = valid_record_after(&self.bytes[..], self.geo, h.log_id, &end);
        (found, end, after)
    }

    /// As [`Self::scan`], the way the module's replay scans by default:
    /// the chain of headers without data sums, then the data of the records
    /// a power cut may have torn checked (`first_torn`), the log ending at
    /// the first that fails.
    fn replay_scan(&self) -> (Vec<Found>, ScanEnd, Option<u64>) {
        let h = LogHeader::decode(&self.line(0)).expect("a valid header");
        let slot = |i| self.line(self.geo.cp_slot(i));
        let (_, cp) = CpMarker::newest(&slot(0), &slot(1), h.log_id).expect("a CP marker");
        let mut found = Vec::new();
        let end = scan_records(&self.bytes[..], self.geo, h.log_id, &cp, false, |f| {
            found.push(*f);
            Ok::<(), ()>(())
        });
        let mut end = end.expect("never stopped");
        let chain = found.iter().map(|f| (f.offset, f.header.seq));
        if let Some((k, torn)) = first_torn(&self.bytes[..], &self.geo, h.log_id, chain) {
            end = torn;
            found.truncate(k);
        }
        let after = valid_record_after(&self.bytes[..], self.geo, h.log_id, &end);
        (found, end, after)
    }
}

/// The model writer.
#[derive(Clone, Default)]
struct Writer {
    log_id: u64,
    head: u64,
    lin: u64,
    seq: u64,
    recs: Vec<Rec>,
    /// Records acknowledged (landed whole): a prefix of `recs`.
    acked: usize,
    /// Index of the record the CP marker names (`recs.len()`: the head).
    cp: usize,
    gen: u64,
}

impl Writer {
    fn new(log: &mut Log, log_id: u64, head: u64, seq: u64, gen: u64) -> Self {
        let mut w = Self {
            log_id,
            head,
            seq,
            gen,
            ..Self::default()
        };
        w.write_cp(log);
        w
    }

    /// Offset, sequence number and position of record `i` (or the head).
    fn at(&self, i: usize) -> (u64, u64, u64) {
        let head = (self.head, self.seq, self.lin);
        self.recs
            .get(i)
            .map_or(head, |r| (r.off, r.header.seq, r.lin))
    }

    fn write_cp(&mut self, log: &mut Log) {
        self.gen += 1;
        let (offset, seq, _) = self.at(self.cp);
        let m = CpMarker {
            log_id: self.log_id,
            generation: self.gen,
            seq,
            offset,
        };
        log.write(log.geo.cp_slot((self.gen % 2) as usize), &m.encode());
    }

    /// The oldest record in flight lands whole and is acknowledged.
    fn ack(&mut self, log: &mut Log) {
        log.land(&self.recs[self.acked], || true);
        self.acked += 1;
    }

    fn ack_all(&mut self, log: &mut Log) {
        while self.acked < self.recs.len() {
            self.ack(log);
        }
    }

    /// Issues a record (after a wrap record if it does not fit before the
    /// area's end), first waiting for acknowledgements as the CP marker
    /// (never passed by the log) and the window need.
    fn append(&mut self, log: &mut Log, op: Op, sector: u64, nr: u32, data: Vec<u8>) {
        let geo = log.geo;
        let h = rh(op, self.log_id, 0, sector, nr);
        let len = geo.record_len(&h);
        let (wrap, at) = geo.place(self.head, len);
        let gap = if wrap { geo.end - self.head } else { 0 };
        let lin_end = self.lin + gap + len;
        let cp = self.cp;
        while lin_end - self.at(self.cp).2 > geo.capacity() {
            if self.cp == self.acked {
                self.ack(log);
            }
            self.cp += 1;
        }
        if self.cp != cp {
            self.write_cp(log);
        }
        while self.acked < self.recs.len() && lin_end - self.recs[self.acked].lin > geo.window {
            self.ack(log);
        }
        if wrap {
            let w = rh(Op::Wrap, self.log_id, self.seq, 0, 0);
            self.push(geo, w, Vec::new(), gap);
        }
        assert_eq!(self.head, at);
        self.push(geo, RecordHeader { seq: self.seq, ..h }, data, len);
    }

    fn push(&mut self, geo: Geometry, header: RecordHeader, data: Vec<u8>, span: u64) {
        let (off, lin) = (self.head, self.lin);
        self.recs.push(Rec {
            off,
            lin,
            header,
            data,
        });
        self.seq += 1;
        self.lin += span;
        self.head = geo.advance(self.head, span);
    }

    /// Appends a random record: 1 sector to 256 KiB, or a discard.
    fn append_random(&mut self, log: &mut Log, rng: &mut Rng) {
        let (op, nr) = match rng.below(20) {
            0 => (Op::Discard, 1 + rng.below(2048) as u32),
            1 => (Op::WriteZeroes, 1 + rng.below(64) as u32),
            2..=11 => (Op::Write, 1 + rng.below(8) as u32),
            12..=17 => (Op::Write, 9 + rng.below(120) as u32),
            _ => (Op::Write, 129 + rng.below(384) as u32),
        };
        let mut data = vec![0; rh(op, 0, 0, 0, nr).data_len() as usize];
        rng.fill(&mut data);
        self.append(log, op, rng.below(1 << 30), nr, data);
    }
}

/// Checks what the scan returns against what `w` wrote: the records from
/// the CP marker on, each where it was written with its content.
fn check_found(w: &Writer, log: &Log, found: &[Found], end: &ScanEnd, what: &str) {
    let expect = &w.recs[w.cp..];
    assert!(found.len() <= expect.len(), "{what}");
    for (f, r) in found.iter().zip(expect) {
        assert_eq!((f.offset, f.header), (r.off, r.header), "{what}");
        assert!(
            log.geo.is_place(f.offset) && f.offset % log.geo.unit == 0,
            "{what}"
        );
        let at = (r.off + log.geo.unit) as usize;
        assert!(log.bytes[at..at + r.data.len()] == r.data[..], "{what}");
    }
    let (offset, seq, _) = w.at(w.cp + found.len());
    assert_eq!((end.offset, end.seq), (offset, seq), "{what}");
}

/// A log of `unit` over garbage whose records (random, all acknowledged)
/// start `back` bytes before the area's end and go on for `bytes`.
fn full_log(unit: u32, seed: u64, back: u64, bytes: u64) -> (Log, Writer, Rng) {
    let mut rng = Rng::new(seed);
    let mut log = Log::new(area_start(unit) + 8 * MIB + 100, unit, LOG_ID);
    let geo = log.geo;
    rng.fill(&mut log.bytes[geo.start as usize..]);
    let head = (geo.end - back) & !(geo.unit - 1);
    let mut w = Writer::new(&mut log, LOG_ID, head, 1000, 0);
    while w.lin < bytes {
        w.append_random(&mut log, &mut rng);
        w.ack_all(&mut log);
    }
    (log, w, rng)
}

#[test]
fn block_header_and_geometry() {
    assert_eq!(&BLOCK_LOG_MAGIC, b"SWLGBDEV");
    for unit in UNITS {
        let (start, u) = (area_start(unit), u64::from(unit));
        let size = start + 2 * BLOCK_WINDOW + 3 * u + 17;
        let h = header(size, unit, LOG_ID);
        let line = h.encode();
        assert_eq!(&line[..8], b"SWLGBDEV");
        assert_eq!(LogHeader::decode(&line), Ok(h));
        for bit in 0..64 * 8 {
            let mut bad = line;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(LogHeader::decode(&bad).is_err(), "unit {unit} bit {bit}");
        }
        let geo = Geometry::block(size, unit).expect("large enough");
        assert_eq!(h.geometry(), Some(geo));
        assert_eq!((geo.start, geo.end, geo.unit), (start, size & !(u - 1), u));
        assert_eq!(
            (geo.window, geo.is_block(), geo.header_room()),
            (BLOCK_WINDOW, true, u)
        );
        let places = [geo.cp_slot(0), geo.cp_slot(1), geo.cp_intent()];
        assert_eq!(places, [u, 2 * u, 3 * u]);
        assert!(geo.is_place(start) && geo.is_place(geo.end - u));
        assert!(!geo.is_place(start - u) && !geo.is_place(start + 256) && !geo.is_place(geo.end));
        let len = |op, nr| geo.record_len(&rh(op, LOG_ID, 1, 0, nr));
        assert_eq!(len(Op::Write, 1), 2 * u);
        assert_eq!(len(Op::Write, 9), u + 4608u64.next_multiple_of(u));
        assert_eq!((len(Op::Discard, 9), len(Op::Wrap, 0)), (u, u));
        // Less than twice the window of records: refused, header too.
        let small = start + 2 * BLOCK_WINDOW - 1;
        assert_eq!(Geometry::block(small, unit), None);
        let least = Geometry::block(small + 1, unit).map(|g| g.capacity());
        assert_eq!(least, Some(2 * BLOCK_WINDOW));
        let tiny = header(small, unit, LOG_ID).encode();
        assert_eq!(LogHeader::decode(&tiny), Err(Invalid::Field));
    }
    let pmem = LogHeader {
        medium: Medium::Pmem,
        ..header(16 * MIB, 4096, LOG_ID)
    };
    let line = pmem.encode();
    assert_eq!(&line[..8], b"SWLGPMEM");
    assert_eq!(LogHeader::decode(&line).map(|h| h.medium), Ok(Medium::Pmem));
    for unit in [256, 768, 8192] {
        assert_eq!(Medium::block(unit), None);
        assert_eq!(Geometry::block(16 * MIB, unit), None);
        let bad = header(16 * MIB, unit, LOG_ID).encode();
        assert_eq!(&bad[..8], b"SWLGBDEV");
        assert_eq!(LogHeader::decode(&bad), Err(Invalid::Field), "unit {unit}");
    }
}

#[test]
fn block_scan_finds_every_record_and_checks_data() {
    for unit in UNITS {
        let what = format!("unit {unit}");
        // 300 KiB before the area's end: it wraps early.
        let (mut log, w, mut rng) = full_log(unit, u64::from(unit) + 1, 300 << 10, 3 * MIB);
        let (found, end, after) = log.scan();
        check_found(&w, &log, &found, &end, &what);
        let ends = (found.len(), end.stop, after);
        assert_eq!(ends, (w.recs.len(), Invalid::Magic, None), "{what}");
        for op in [Op::Wrap, Op::Discard] {
            assert!(found.iter().any(|f| f.header.op == op), "{what}");
        }
        assert!(found.iter().any(|f| f.offset == log.geo.start), "{what}");
        // One byte of a record's data (after the wrap) changed: its
        // header still validates, its data sum does not.
        let (i, r) = (w.recs.iter().enumerate())
            .filter(|(_, r)| r.off < w.recs[0].off && r.data.len() > 4096)
            .nth(2)
            .expect("records after the wrap");
        let at = (r.off + log.geo.unit + rng.below(r.data.len() as u64)) as usize;
        log.bytes[at] ^= 0x20;
        let (found, end, _) = log.scan();
        assert_eq!(found.len(), i, "{what}");
        let ends = (end.offset, end.seq, end.stop);
        assert_eq!(ends, (r.off, r.header.seq, Invalid::Checksum), "{what}");
        log.bytes[at] ^= 0x20;
        assert_eq!(log.scan().0.len(), w.recs.len());
    }
}

/// Logs whose record area holds stale bytes, each with the sequence number
/// and CP generation a new writer must go on from: random garbage, an
/// older lap of the same log, a lap of a log of another format.
fn stale_logs(size: u64, unit: u32) -> Vec<(Log, u64, u64)> {
    let mut rng = Rng::new(u64::from(unit) << 32);
    let mut garbage = Log::new(size, unit, LOG_ID);
    let start = garbage.geo.start as usize;
    rng.fill(&mut garbage.bytes[start..]);
    let mut logs = vec![(garbage, 1, 0)];
    for log_id in [LOG_ID, OTHER_ID] {
        let mut log = Log::new(size, unit, log_id);
        let geo = log.geo;
        let mut w = Writer::new(&mut log, log_id, geo.start, 1, 0);
        while w.lin < geo.capacity() * 5 / 4 {
            w.append_random(&mut log, &mut rng);
            w.ack_all(&mut log);
        }
        log.write(0, &header(size, unit, LOG_ID).encode());
        logs.push((log, w.seq, w.gen));
    }
    logs
}

#[test]
fn block_crash_loses_nothing_acknowledged_and_is_torn() {
    // Crash states with a torn record and a later record landed whole;
    // with the torn record partly landed; with more than half a window in
    // flight; with a wrap in flight.
    let mut seen = [0u32; 4];
    for unit in UNITS {
        let size = area_start(unit) + 2 * BLOCK_WINDOW + 5 * u64::from(unit) + 777;
        let stale = stale_logs(size, unit);
        for seed in 0..100 {
            let what = format!("unit {unit} seed {seed}");
            let mut rng = Rng::new(seed * 7919 + u64::from(unit));
            let (base, seq, gen) = &stale[(seed % 3) as usize];
            let mut log = base.clone();
            let geo = log.geo;
            let head = geo.start + rng.below(geo.capacity() / geo.unit) * geo.unit;
            let mut w = Writer::new(&mut log, LOG_ID, head, *seq, *gen);
            for _ in 0..=rng.below(120) {
                if w.acked < w.recs.len() && rng.below(4) == 0 {
                    w.ack(&mut log);
                }
                w.append_random(&mut log, &mut rng);
            }
            // The crash: each record in flight landed whole, not at all,
            // or any subset of its units. (Whole, partly landed) of each:
            let mut landed = Vec::new();
            for r in &w.recs[w.acked..] {
                let (how, mut all, mut some) = (rng.below(3), true, false);
                log.land(r, || {
                    let lands = how == 1 || (how == 2 && rng.below(2) == 0);
                    (all, some) = (all && lands, some || lands);
                    lands
                });
                landed.push((all, some && !all));
            }
            let (found, end, after) = log.scan();
            check_found(&w, &log, &found, &end, &what);
            assert!(
                found.len() >= w.acked - w.cp,
                "{what}: acknowledged record lost"
            );
            // The replay's scan, which checks the data of the last window
            // only, ends every crash state where the full scan does.
            assert_eq!(log.replay_scan(), (found.clone(), end, after), "{what}");
            assert_eq!(after, None, "{what}: {end:?} taken for corruption");
            let torn = w.cp + found.len() - w.acked;
            if torn < landed.len() {
                seen[0] += u32::from(landed[torn + 1..].iter().any(|l| l.0));
                seen[1] += u32::from(landed[torn].1);
            }
            seen[2] += u32::from(w.lin - w.at(w.acked).2 > geo.window / 2);
            seen[3] += u32::from(w.recs[w.acked..].iter().any(|r| r.header.op == Op::Wrap));
        }
    }
    // The cases the test is for did come up.
    assert!(seen.iter().all(|&n| n >= 10), "{seen:?}");
}

#[test]
fn block_corruption_is_told_from_a_torn_end() {
    for unit in UNITS {
        for seed in 0..6 {
            let back = (seed + 1) * 1_234_567;
            let (mut log, w, mut rng) = full_log(unit, seed, back, 6 * MIB);
            let geo = log.geo;
            let span = geo.window + geo.unit + u64::from(MAX_RECORD_DATA);
            assert_eq!(w.cp, 0);
            // A record with a window and a largest record of the log after
            // it (corrupt), then one within the last window (taken as torn).
            for late in [false, true] {
                let d = |r: &Rec| w.lin - r.lin;
                let picks: Vec<&Rec> = (w.recs.iter())
                    .filter(|r| (late && d(r) <= geo.window) || (!late && d(r) >= span))
                    .collect();
                let r = picks[rng.below(picks.len() as u64) as usize];
                let at = if !r.data.is_empty() && rng.below(2) == 0 {
                    r.off + geo.unit + rng.below(r.data.len() as u64)
                } else {
                    r.off + rng.below(64)
                } as usize;
                let mask = 1 << rng.below(8);
                log.bytes[at] ^= mask;
                let (found, end, after) = log.scan();
                let what = format!("unit {unit} seed {seed} late {late} byte {at}");
                check_found(&w, &log, &found, &end, &what);
                assert_eq!(end.offset, r.off, "{what}");
                // The replay's scan: the same, but for damage to the data
                // of a record a window or more before the end, which it does
                // not check: it replays the whole log.
                let replay = log.replay_scan();
                if !late && at as u64 >= r.off + geo.unit {
                    log.bytes[at] ^= mask;
                    let whole = log.scan();
                    log.bytes[at] ^= mask;
                    assert_eq!(replay, whole, "{what}");
                    assert_eq!(replay.0.len(), w.recs.len(), "{what}");
                } else {
                    assert_eq!(replay, (found.clone(), end, after), "{what}");
                }
                if late {
                    assert_eq!(after, None, "{what}");
                } else {
                    let x = after.unwrap_or_else(|| panic!("{what}: taken for a torn end"));
                    let later = w.recs.iter().find(|q| q.off == x).expect("a record");
                    assert!(later.header.seq > r.header.seq, "{what}");
                    assert!(
                        (geo.window..span).contains(&geo.distance(r.off, x)),
                        "{what}"
                    );
                }
                log.bytes[at] ^= mask;
            }
        }
    }
}

#[test]
fn block_stale_lap_is_not_corruption() {
    for unit in UNITS {
        let what = format!("unit {unit}");
        let mut log = Log::new(area_start(unit) + 6 * MIB, unit, LOG_ID);
        let geo = log.geo;
        let mut w = Writer::new(&mut log, LOG_ID, geo.start, 1, 0);
        // Records of one size: the second lap's head is where a record of
        // the first begins.
        let mut k = 0;
        while w.lin < geo.capacity() + MIB {
            k += 1;
            w.append(&mut log, Op::Write, k * 128, 128, vec![k as u8; 65536]);
            w.ack_all(&mut log);
        }
        // A CP a little before the head: the records before it are stale.
        w.cp = w
            .recs
            .iter()
            .position(|r| w.lin - r.lin <= MIB / 2)
            .expect("records");
        w.write_cp(&mut log);
        let (found, end, after) = log.scan();
        check_found(&w, &log, &found, &end, &what);
        assert_eq!((end.stop, after), (Invalid::Sequence, None), "{what}");
        // Whole records of the first lap lie where a record issued after
        // the end was complete would be looked for.
        let span = geo.window + geo.unit + u64::from(MAX_RECORD_DATA);
        let stale = w.recs.iter().filter(|r| {
            let line = log.line(r.off);
            let data = &log.bytes[(r.off + geo.unit) as usize..][..r.data.len()];
            (geo.window..span).contains(&geo.distance(end.offset, r.off))
                && RecordHeader::decode_any(&line, LOG_ID).is_ok_and(|h| h.seq < end.seq)
                && RecordHeader::stored_sum(&line) == data_sum(data)
        });
        assert!(stale.count() >= 10, "{what}");
        // A stale record exactly a window past the end: not corruption;
        // the same record with a later sequence number is.
        let off = geo.start + (end.offset - geo.start + geo.window) % geo.capacity();
        for (seq, corrupt) in [(end.seq - 100, false), (end.seq + 1, true)] {
            let header = rh(Op::Write, LOG_ID, seq, 0, 8);
            log.land(
                &Rec {
                    off,
                    lin: 0,
                    header,
                    data: vec![9; 4096],
                },
                || true,
            );
            let (_, end2, after) = log.scan();
            assert_eq!(end2, end, "{what}");
            assert_eq!(after, corrupt.then_some(off), "{what} seq {seq}");
        }
    }
}
