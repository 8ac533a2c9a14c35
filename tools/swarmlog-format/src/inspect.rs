// SPDX-License-Identifier: GPL-2.0

//! Offline inspection of a log device or image: what `enable` would find on
//! it, through the module's own decisions (`rust/format/log.rs`): the log
//! header, which CP marker slot is in force and why, the CP intent, then
//! the scan from the marker to the valid end and whether that end is the
//! log's end, a torn record or a corrupt one (`valid_record_after`, which
//! on a block log is `issued_after_window`). Nothing here decides anything
//! of its own about the format: it names what the format code returns.

use crate::format::log::{
    first_torn, scan_records, scan_slots, valid_record_after, CpMarker, Geometry,
    IntentState as Judged, LogHeader, LogRead, Medium, Op,
};
use crate::format::Invalid;
use crate::source::{ReadAt, Reader};

/// What a log is written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMedium {
    /// Persistent memory with DAX: 64-byte lines.
    Pmem,
    /// Any other block device: units of its logical block size.
    Block,
}

/// The log header and the record area it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    pub medium: LogMedium,
    /// Alignment of every record: 64 on pmem, the logical block size.
    pub unit: u64,
    /// Bytes of records in flight at once (0 on pmem: one at a time).
    pub window: u64,
    /// Identifier of this format of the log.
    pub log_id: u64,
    /// The array metadata the log belongs to.
    pub array_uuid: [u8; 16],
    /// Bytes of the device the log uses.
    pub log_size: u64,
    /// Data block size of the volume.
    pub block_size: u32,
    /// The record area, `[area_start, area_end)`, used as a ring.
    pub area_start: u64,
    pub area_end: u64,
    /// Slots after the ring (format version 3; 0 in version 2).
    pub slots: u32,
}

/// A CP marker or intent: every record before `(offset, seq)` is, or is
/// being, committed to the array by the CP of generation `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub generation: u64,
    pub seq: u64,
    pub offset: u64,
}

/// One CP marker slot: where it is and what it holds (or why it is not a
/// marker of this log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub at: u64,
    pub marker: Result<Marker, String>,
}

/// Both slots, and which one `enable` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cp {
    pub slots: [Slot; 2],
    pub in_force: Option<usize>,
    /// Why that slot (or none) is in force.
    pub why: String,
    /// Why `enable` refuses the marker in force (`EUCLEAN`), if it does.
    pub problem: Option<String>,
}

/// What the CP intent line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentState {
    /// No intent of this log.
    None,
    /// The CP it announced ended: its marker is in force.
    Done,
    /// A CP was cut short: replay finishes what it began.
    Pending,
    /// No CP could have written it: `enable` refuses (`EUCLEAN`).
    Impossible,
}

/// The CP intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub at: u64,
    pub state: IntentState,
    pub marker: Option<Marker>,
    pub why: String,
}

/// A valid record the scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub seq: u64,
    pub op: &'static str,
    pub sector: u64,
    pub nr_sectors: u32,
    pub data_len: u32,
}

/// Why the scan stopped where it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Nothing of this lap there: the log ends.
    End,
    /// An invalid record with nothing valid after it: a power cut's torn
    /// write, dropped by replay like any unacknowledged write.
    Torn,
    /// An invalid record with a valid later one after it: it was complete
    /// once, and `enable` refuses the log.
    Corrupt,
}

impl Stop {
    /// The word for it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::End => "end",
            Self::Torn => "torn",
            Self::Corrupt => "corrupt",
        }
    }
}

/// The scan from the CP marker in force to the valid end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Valid records, wrap records included.
    pub records: u64,
    /// Bytes of data they carry.
    pub data_bytes: u64,
    /// Bytes of log from the marker to the valid end.
    pub used_bytes: u64,
    /// Where the next record would go, and its sequence number.
    pub end_offset: u64,
    pub end_seq: u64,
    pub stop: Stop,
    /// What the format code found at the end.
    pub why: String,
    /// The valid record that proves the end corrupt.
    pub valid_after: Option<u64>,
    /// Every record, when asked for.
    pub list: Vec<Record>,
}

/// The slots' records a replay from the CP marker takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotScan {
    /// Slots holding a valid record numbered from the marker's on.
    pub valid: u64,
    /// Of those, the records replay takes: the newest of each block.
    pub records: u64,
    /// The largest sequence number among them (0 if none).
    pub newest_seq: u64,
    /// The first damaged slot and why (enable refuses the log, EIO).
    pub damaged: Option<(u32, String)>,
}

/// Everything `inspect_log` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    pub device_size: u64,
    pub header: HeaderInfo,
    pub cp: Cp,
    pub intent: Option<Intent>,
    pub scan: Option<Scan>,
    /// The slots' scan (none without slots, or without a marker in force).
    pub slots: Option<SlotScan>,
    /// What `enable` would do with the log.
    pub verdict: String,
}

/// Why a header line is not a usable swarmlog log header, in the module's
/// words (`open.rs`), and the errno `enable` returns for it.
fn header_refusal(why: Invalid) -> String {
    let what = match why {
        Invalid::Magic => "nothing of swarmlog's on it (write 1 to format)",
        Invalid::Version => "an unknown format version",
        Invalid::Checksum => "a corrupt header (checksum mismatch)",
        Invalid::Medium => "a log of the other medium",
        _ => "an inconsistent header",
    };
    format!("log header: {what}; enable refuses it (EINVAL)")
}

fn marker(m: &CpMarker) -> Marker {
    Marker {
        generation: m.generation,
        seq: m.seq,
        offset: m.offset,
    }
}

/// What slot line `line` holds for log `log_id`.
fn slot(at: u64, line: &[u8; 64], log_id: u64) -> Slot {
    let marker = match CpMarker::decode(line) {
        Ok(m) if m.log_id == log_id => Ok(marker(&m)),
        Ok(m) => Err(format!("a marker of another log (log id {:#x})", m.log_id)),
        Err(Invalid::Magic) => Err("empty (no marker)".into()),
        Err(Invalid::Checksum) => Err("torn or corrupt (checksum mismatch)".into()),
        Err(e) => Err(format!("invalid ({e:?})")),
    };
    Slot { at, marker }
}

/// Both slots, the one in force as `CpMarker::newest` picks it, and the
/// module's check of it (`Log::cp_marker`).
fn cp(lines: [&[u8; 64]; 2], geo: &Geometry, log_id: u64) -> (Cp, Option<CpMarker>) {
    let slots = [
        slot(geo.cp_slot(0), lines[0], log_id),
        slot(geo.cp_slot(1), lines[1], log_id),
    ];
    let newest = CpMarker::newest(lines[0], lines[1], log_id);
    let why = match (&slots[0].marker, &slots[1].marker, newest) {
        (_, _, None) => "neither slot holds a valid marker of this log".to_string(),
        (Ok(a), Ok(b), Some((i, _))) if a.generation == b.generation => {
            format!(
                "both slots hold generation {}: slot {i} is taken",
                a.generation
            )
        }
        (Ok(a), Ok(b), Some((i, _))) => format!(
            "slot {i} holds the higher generation ({} against {})",
            a.generation.max(b.generation),
            a.generation.min(b.generation)
        ),
        (_, _, Some((i, _))) => format!("the only valid slot (slot {} is not)", 1 - i),
    };
    let problem = match newest {
        None => Some("refused (EUCLEAN): no valid CP marker of this log".to_string()),
        Some((i, m)) => m.check(geo).err().map(|_| {
            format!(
                "the CP marker in slot {i} is impossible: offset {} (the records lie in \
                 {}..{}, {}-byte units), sequence number {} (1 to 2^62): refused (EUCLEAN)",
                m.offset, geo.start, geo.end, geo.unit, m.seq
            )
        }),
    };
    let c = Cp {
        slots,
        in_force: newest.map(|(i, _)| i),
        why,
        problem,
    };
    (c, newest.map(|(_, m)| m))
}

/// The CP intent after the marker `cp`, judged by the module's rules
/// ([`Judged::of`], which `Log::cp_intent` takes too).
fn intent(at: u64, line: &[u8; 64], geo: &Geometry, log_id: u64, cp: &CpMarker) -> Intent {
    let (state, i, why) = match Judged::of(line, log_id, cp, geo) {
        Judged::Absent => {
            return Intent {
                at,
                state: IntentState::None,
                marker: None,
                why: "none (no CP began after the marker's)".into(),
            }
        }
        Judged::OtherLog(i) => (IntentState::None, i, "an intent of another log".to_string()),
        Judged::Ended(i) => (
            IntentState::Done,
            i,
            format!("CP {} ended (its marker is in force)", i.generation),
        ),
        Judged::Impossible(i) => (
            IntentState::Impossible,
            i,
            "no CP could have written it; enable refuses the log (EUCLEAN)".to_string(),
        ),
        Judged::Pending(i) => (
            IntentState::Pending,
            i,
            format!(
                "CP {} was cut short: replay finishes it (records up to sequence number {})",
                i.generation, i.seq
            ),
        ),
    };
    Intent {
        at,
        state,
        marker: Some(marker(&i)),
        why,
    }
}

/// What the format code found where the scan stopped, for a person.
fn stop_reason(why: Invalid, block: bool) -> &'static str {
    match why {
        Invalid::Magic => "no record there",
        Invalid::Sequence => "a record of an older lap of the ring",
        Invalid::LogId => "a record of another log (an earlier format)",
        Invalid::Checksum if block => "a record whose header or data checksum does not match",
        Invalid::Checksum => "a record whose header checksum does not match",
        Invalid::Field => "a record whose fields contradict each other or the log",
        Invalid::Range => "the end of the device",
        Invalid::Unreadable => "a record header that cannot be read (I/O error)",
        Invalid::DataUnreadable => "a record whose data cannot be read (I/O error)",
        Invalid::Version | Invalid::Medium => "an invalid record",
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Write => "write",
        Op::Discard => "discard",
        Op::WriteZeroes => "write-zeroes",
        Op::Wrap => "wrap",
    }
}

/// Inspects the log on `src`, a device or image of `size` bytes, as
/// `enable` would open and scan it; `records` lists every record. `Err`
/// where there is no log to scan (no header, or one `enable` refuses).
pub fn inspect_log<R: ReadAt + ?Sized>(
    src: &R,
    size: u64,
    records: bool,
) -> Result<LogReport, String> {
    inspect_log_with(src, size, records, false)
}

/// [`inspect_log`]; with `check_all`, as `enable` with the volume's
/// `check_every_record` set: a block log's scan checks the data of every
/// record, not only of those a power cut may have torn.
pub fn inspect_log_with<R: ReadAt + ?Sized>(
    src: &R,
    size: u64,
    records: bool,
    check_all: bool,
) -> Result<LogReport, String> {
    let r = Reader::new(src, size);
    let h = LogHeader::decode(&r.line(0)?).map_err(header_refusal)?;
    let geo = match h.geometry() {
        Some(g) if h.log_size <= size => g,
        Some(_) => {
            return Err(format!(
                "log header: log size {} is past the end of the device ({size} bytes); \
                 enable refuses it (EINVAL)",
                h.log_size
            ))
        }
        None => return Err(header_refusal(Invalid::Field)),
    };
    let header = HeaderInfo {
        medium: match h.medium {
            Medium::Pmem => LogMedium::Pmem,
            Medium::Block { .. } => LogMedium::Block,
        },
        unit: geo.unit,
        window: geo.window,
        log_id: h.log_id,
        array_uuid: h.array_uuid,
        log_size: h.log_size,
        block_size: h.block_size,
        area_start: geo.start,
        area_end: geo.end,
        slots: geo.slots,
    };
    let (a, b) = (r.line(geo.cp_slot(0))?, r.line(geo.cp_slot(1))?);
    let (cp, current) = cp([&a, &b], &geo, h.log_id);
    let mut report = LogReport {
        device_size: size,
        header,
        intent: None,
        scan: None,
        slots: None,
        verdict: String::new(),
        cp,
    };
    let Some(from) = current.filter(|_| report.cp.problem.is_none()) else {
        report.verdict = report.cp.problem.clone().unwrap_or_default();
        return Ok(report);
    };
    let i = intent(
        geo.cp_intent(),
        &r.line(geo.cp_intent())?,
        &geo,
        h.log_id,
        &from,
    );
    let impossible = i.state == IntentState::Impossible;
    report.intent = Some(i);
    let s = scan_log(&r, geo, h.log_id, &from, records, check_all);
    let slots = (geo.slots > 0).then(|| scan_slot_area(&r, &geo, h.log_id, from.seq));
    let in_slots = slots.as_ref().map_or(0, |x| x.records);
    let damaged = slots.as_ref().and_then(|x| x.damaged.clone());
    report.slots = slots;
    report.verdict = match (&s.stop, impossible) {
        _ if damaged.is_some() => format!(
            "refused (EIO): {}",
            damaged
                .map(|(i, why)| format!("log slot {i}: {why}"))
                .unwrap_or_default()
        ),
        (_, true) => "refused (EUCLEAN): the CP intent is impossible".into(),
        (Stop::Corrupt, _) => format!(
            "refused ({}): the record at offset {} (sequence number {}) is \
             corrupt, a valid record follows it at offset {}",
            if s.why.contains("I/O") {
                "EIO"
            } else {
                "EUCLEAN"
            },
            s.end_offset,
            s.end_seq,
            s.valid_after.unwrap_or(s.end_offset)
        ),
        _ if s.records + in_slots == 0 => "clean: nothing to replay".into(),
        _ if in_slots > 0 => format!(
            "replays {} records ({} in the ring, {in_slots} in slots)",
            s.records + in_slots,
            s.records
        ),
        _ => format!("replays {} records", s.records),
    };
    report.scan = Some(s);
    Ok(report)
}

/// The module's slot scan from sequence number `from`, each block's
/// newest record kept, as replay keeps it; then the data of those asked
/// for ([`LogRead::bad`]), as replay asks: a stale record's data is never
/// replayed, so a bad block under it is no damage.
pub(crate) fn scan_slot_area<L: LogRead + ?Sized>(
    r: &L,
    geo: &Geometry,
    log_id: u64,
    from: u64,
) -> SlotScan {
    // The newest record of each block: (seq, slot, data length).
    let mut newest = std::collections::BTreeMap::new();
    let mut valid = 0u64;
    let end = scan_slots(r, geo, log_id, from, |i, h| {
        valid += 1;
        let e = newest.entry(h.sector).or_insert((h.seq, i, h.data_len()));
        if h.seq > e.0 {
            *e = (h.seq, i, h.data_len());
        }
        Ok::<(), core::convert::Infallible>(())
    });
    // `each` never stops the scan.
    let end = match end {
        Ok(e) => e,
        Err(never) => match never {},
    };
    // A table line that cannot be read first (the module refuses the log
    // before it keeps any record), then the first slot kept whose block
    // the media reports bad.
    let unreadable = end
        .damaged
        .map(|(i, _)| (i, "its table line cannot be read".to_string()));
    let bad_data = || {
        newest
            .values()
            .filter(|&&(_, i, len)| geo.slot_data(i).is_some_and(|at| r.bad(at, u64::from(len))))
            .map(|&(_, i, _)| i)
            .min()
            .map(|i| (i, "its block reads as bad".to_string()))
    };
    SlotScan {
        valid,
        records: newest.len() as u64,
        newest_seq: newest.values().map(|&(seq, _, _)| seq).max().unwrap_or(0),
        damaged: unreadable.or_else(bad_data),
    }
}

/// The module's scan from `from` and its verdict on the end.
fn scan_log<R: ReadAt + ?Sized>(
    r: &Reader<'_, R>,
    geo: Geometry,
    log_id: u64,
    from: &CpMarker,
    records: bool,
    check_all: bool,
) -> Scan {
    let mut list = Vec::new();
    // Every record's offset, sequence number and data length, in log
    // order: where the scan without data sums may end the log instead.
    let mut found = Vec::new();
    let end = scan_records(r, geo, log_id, from, check_all, |f| {
        found.push((f.offset, f.header.seq, u64::from(f.header.data_len())));
        if records {
            list.push(Record {
                offset: f.offset,
                seq: f.header.seq,
                op: op_name(f.header.op),
                sector: f.header.sector,
                nr_sectors: f.header.nr_sectors,
                data_len: f.header.data_len(),
            });
        }
        Ok::<(), core::convert::Infallible>(())
    });
    // `each` never stops the scan.
    let mut end = match end {
        Ok(e) => e,
        Err(never) => match never {},
    };
    let chain = found.iter().map(|&(off, seq, _)| (off, seq));
    if let Some((k, torn)) = first_torn(r, &geo, log_id, chain) {
        end = torn;
        found.truncate(k);
        list.truncate(k);
    }
    let data_bytes = found.iter().map(|&(_, _, len)| len).sum();
    let valid_after = valid_record_after(r, geo, log_id, &end);
    let stop = match (valid_after, end.stop) {
        (Some(_), _) => Stop::Corrupt,
        (None, Invalid::Magic | Invalid::Sequence | Invalid::LogId | Invalid::Range) => Stop::End,
        (None, _) => Stop::Torn,
    };
    Scan {
        records: end.records,
        data_bytes,
        used_bytes: geo.distance(from.offset, end.offset),
        end_offset: end.offset,
        end_seq: end.seq,
        stop,
        why: stop_reason(end.stop, geo.is_block()).into(),
        valid_after,
        list,
    }
}
