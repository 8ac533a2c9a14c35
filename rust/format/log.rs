// SPDX-License-Identifier: GPL-2.0

//! The on-pmem log format: log header, consistency-point (CP) marker slots and
//! self-checking log records, and the scan that finds the valid end of the log.
//!
//! Everything here is plain data and arithmetic over byte slices: no I/O, no
//! allocation, no `unsafe`. The layout is documented in
//! `Documentation/swarmlog/format.rst`; keep the two in step.
//!
//! pmem gives no sector atomicity, so a record torn by a power cut can hold
//! any mix of old and new bytes. A record is proved whole by the order in
//! which it is written, as dm-writecache proves its entries: its data, a
//! fence, then its header line (one cache line, checksummed), then a fence.
//! The header line is the commit point: a header that validates was stored
//! after every byte of its data was persistent. A record is valid only if
//! its header's magic, log id, sequence number and CRC-32C (over the header
//! line) all check out; the valid end of the log is the first record,
//! counted from the CP marker, that does not. The data carries no checksum
//! in the log (that kept a CRC of every write on its acknowledgement path);
//! a CP checksums each block for the array's tables.
//!
//! A log on an ordinary block device (an SSD, a mirrored pair, a replicated
//! device: [`Medium::Block`]) has the same header, markers and records, laid
//! out in units of the device's logical block size so that every write is
//! whole sectors (no read-modify-write). A record is written in one write
//! with FUA, whose units land in any order: its header also carries a
//! CRC-32C of its data, and the scan checks it. Several records may be in
//! flight at once, each ending at most a window ([`Geometry::window`]) after
//! the start of the oldest one not yet complete; so an invalid record
//! followed, a window or more further on, by a valid record of a later
//! sequence number was complete once and is corrupt, and one without is
//! the log's torn end ([`valid_record_after`]).

use super::checksum::{crc32c, SEED};
use super::{get_u32, get_u64, put, Invalid};

/// Size of a sector, the unit of block-layer addresses.
pub(crate) const SECTOR_SIZE: u64 = 512;
/// Alignment and size unit of everything in the log: one CPU cache line.
pub(crate) const LINE: u64 = 64;
/// Size of a record header; a record's data follows it.
pub(crate) const RECORD_HEADER_SIZE: usize = 64;
/// Offset of the record area: the first 4 KiB hold the header and CP slots.
pub(crate) const AREA_START: u64 = 4096;
/// Largest data payload of one record (a block-layer request is split above).
pub(crate) const MAX_RECORD_DATA: u32 = 1 << 20;

/// Largest sequence number a CP marker may carry. A log appending a record
/// a nanosecond for a century stays below 2^62, and every sequence number
/// after it (a log holds far fewer than 2^62 records) still fits a `u64`:
/// a marker beyond it is crafted or corrupt, not old.
pub(crate) const MAX_SEQ: u64 = 1 << 62;

/// Magic of the log header at offset 0 of a pmem log.
pub(crate) const LOG_MAGIC: [u8; 8] = *b"SWLGPMEM";
/// Magic of the log header at offset 0 of a log on a block device.
pub(crate) const BLOCK_LOG_MAGIC: [u8; 8] = *b"SWLGBDEV";
/// The in-flight window of a block log: a record is written only while it
/// ends at most this many bytes after the start of the oldest record not yet
/// complete. Stored in the header in units of 64 KiB.
pub(crate) const BLOCK_WINDOW: u64 = 2 << 20;
/// Unit of the window field of a block log's header.
const WINDOW_UNIT: u64 = 64 << 10;
/// Version of the format described here. Version 1 (until 2026-11)
/// checksummed each record's data with its header; version 2 proves the
/// data by ordering and checksums the header line alone. A log of another
/// version does not open (`Invalid::Version`): replay it with the module
/// that wrote it, or format it anew.
pub(crate) const LOG_VERSION: u32 = 2;
/// Version of a pmem log with a slot area ([`Geometry::slots`]): version 2's
/// header, markers and ring, and after the ring a table of slot headers and
/// the slots' blocks. A module of version 2 refuses it (its records in
/// slots would be lost to it); this one opens both.
pub(crate) const SLOT_LOG_VERSION: u32 = 3;
/// Share of a pmem log's record area that [`Geometry::default_slots`] gives
/// the slots, in quarters: the ring keeps the rest (writes of part of a
/// block, discards, and whatever finds no free slot).
const SLOT_QUARTERS: u64 = 3;
/// Magic of a log record header ("SWRC", little-endian).
pub(crate) const RECORD_MAGIC: u32 = 0x4352_5753;
/// Magic of a CP marker slot ("SWCP", little-endian).
pub(crate) const CP_MAGIC: u32 = 0x5043_5753;
/// Offsets of the two CP marker slots: the lines after the header's.
pub(crate) const CP_SLOTS: [u64; 2] = [LINE, 2 * LINE];
/// Magic of a CP intent ("SWCI", little-endian).
pub(crate) const CP_INTENT_MAGIC: u32 = 0x4943_5753;
/// Offset of the CP intent: the line after the CP marker slots. A CP writes
/// it (laid out as a marker: the CP's generation and target) before it
/// writes anything to the array; logs formatted before it existed hold
/// zeroes there, which is no intent.
pub(crate) const CP_INTENT: u64 = 3 * LINE;

/// Checksum of a 64-byte line whose last four bytes hold the checksum.
fn line_crc(line: &[u8; 64]) -> u32 {
    crc32c(SEED, line.get(..60).unwrap_or(&[]))
}

/// Rounds `v` up to a multiple of [`LINE`].
pub(crate) const fn line_align(v: u64) -> u64 {
    (v + LINE - 1) & !(LINE - 1)
}

/// The log header, in the first cache line of the pmem device.
///
/// It binds the log to its array (`array_uuid`) and names this incarnation of
/// the log (`log_id`, new at every format) so that records left over from an
/// earlier format are never taken for current ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogHeader {
    /// UUID of the array metadata this log belongs to.
    pub(crate) array_uuid: [u8; 16],
    /// Random identifier of this format of the log.
    pub(crate) log_id: u64,
    /// Usable size of the pmem device in bytes.
    pub(crate) log_size: u64,
    /// Data block size of the volume in bytes.
    pub(crate) block_size: u32,
    /// What the log is written on.
    pub(crate) medium: Medium,
    /// Slots of one block after the ring ([`Geometry::slots`]): 0 for none
    /// (version 2; always on a block log), else version 3.
    pub(crate) slots: u32,
}

/// The kind of device a log is written on; a log of one kind does not open
/// on the other ([`Invalid::Medium`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Medium {
    /// Byte-addressable persistent memory (DAX): 64-byte lines, ordering by
    /// fences.
    Pmem,
    /// A block device written with bios: everything in units of `unit`
    /// bytes (its logical block size, a power of two from 512 to 4096),
    /// each record one write with FUA, several in flight.
    Block {
        /// The device's logical block size.
        unit: u32,
    },
}

impl Medium {
    /// A block medium of logical block size `unit`, if swarmlog can use it.
    pub(crate) fn block(unit: u32) -> Option<Self> {
        (unit.is_power_of_two() && (512..=4096).contains(&unit)).then_some(Self::Block { unit })
    }
}

impl LogHeader {
    /// Encodes the header as its cache line, checksum included.
    pub(crate) fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        let (magic, start) = match (self.medium, self.geometry()) {
            (Medium::Block { .. }, Some(g)) => (BLOCK_LOG_MAGIC, g.start),
            (Medium::Block { unit }, None) => (BLOCK_LOG_MAGIC, block_area_start(unit)),
            (Medium::Pmem, _) => (LOG_MAGIC, AREA_START),
        };
        put(&mut b, 0, &magic);
        let version = if self.slots == 0 {
            LOG_VERSION
        } else {
            SLOT_LOG_VERSION
        };
        put(&mut b, 8, &version.to_le_bytes());
        put(&mut b, 12, &self.block_size.to_le_bytes());
        put(&mut b, 16, &self.array_uuid);
        put(&mut b, 32, &self.log_id.to_le_bytes());
        put(&mut b, 40, &self.log_size.to_le_bytes());
        put(&mut b, 48, &start.to_le_bytes());
        match self.medium {
            Medium::Block { unit } => {
                put(&mut b, 56, &(unit as u16).to_le_bytes());
                put(
                    &mut b,
                    58,
                    &((BLOCK_WINDOW / WINDOW_UNIT) as u16).to_le_bytes(),
                );
            }
            Medium::Pmem => put(&mut b, 56, &self.slots.to_le_bytes()),
        }
        let crc = line_crc(&b);
        put(&mut b, 60, &crc.to_le_bytes());
        b
    }

    /// Decodes and validates a header line.
    pub(crate) fn decode(b: &[u8; 64]) -> Result<Self, Invalid> {
        let block = match b.get(..8) {
            Some(m) if m == LOG_MAGIC => false,
            Some(m) if m == BLOCK_LOG_MAGIC => true,
            _ => return Err(Invalid::Magic),
        };
        if get_u32(b, 60) != line_crc(b) {
            return Err(Invalid::Checksum);
        }
        let slotted = match get_u32(b, 8) {
            LOG_VERSION => false,
            SLOT_LOG_VERSION if !block => true,
            _ => return Err(Invalid::Version),
        };
        let mut slots = 0;
        let medium = if block {
            let unit = u32::from(u16::from_le_bytes([
                b.get(56).copied().unwrap_or(0),
                b.get(57).copied().unwrap_or(0),
            ]));
            let window = u64::from(u16::from_le_bytes([
                b.get(58).copied().unwrap_or(0),
                b.get(59).copied().unwrap_or(0),
            ]));
            if window * WINDOW_UNIT != BLOCK_WINDOW {
                return Err(Invalid::Field);
            }
            Medium::block(unit).ok_or(Invalid::Field)?
        } else {
            slots = get_u32(b, 56);
            // Version 3 has slots, version 2 none (zeroes there).
            if slotted != (slots != 0) {
                return Err(Invalid::Field);
            }
            Medium::Pmem
        };
        let mut array_uuid = [0u8; 16];
        put(&mut array_uuid, 0, b.get(16..32).unwrap_or(&[0; 16]));
        let h = Self {
            array_uuid,
            log_id: get_u64(b, 32),
            log_size: get_u64(b, 40),
            block_size: get_u32(b, 12),
            medium,
            slots,
        };
        match h.geometry() {
            Some(g) if get_u64(b, 48) == g.start => {}
            _ => return Err(Invalid::Field),
        }
        if !h.block_size.is_power_of_two() || u64::from(h.block_size) < SECTOR_SIZE {
            return Err(Invalid::Field);
        }
        Ok(h)
    }

    /// The record area this header describes, if it is large enough to hold
    /// at least one largest record.
    pub(crate) fn geometry(&self) -> Option<Geometry> {
        match self.medium {
            Medium::Pmem => Geometry::pmem(self.log_size, self.block_size, self.slots),
            Medium::Block { unit } => Geometry::block(self.log_size, unit),
        }
    }
}

/// Where the records of a block log of unit `unit` begin: after the
/// header's, the two CP slots' and the intent's units, and at least 4 KiB in.
const fn block_area_start(unit: u32) -> u64 {
    let four = 4 * unit as u64;
    if four > AREA_START {
        four
    } else {
        AREA_START
    }
}

/// A consistency-point marker: where the uncommitted part of the log begins.
///
/// Every record before `(offset, seq)` has been committed to the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpMarker {
    /// The log this marker belongs to ([`LogHeader::log_id`]).
    pub(crate) log_id: u64,
    /// Number of CPs taken since format; the higher valid slot wins.
    pub(crate) generation: u64,
    /// Sequence number of the first record not yet committed.
    pub(crate) seq: u64,
    /// Log offset of that record.
    pub(crate) offset: u64,
}

impl CpMarker {
    /// Encodes the marker as its cache line, checksum included.
    pub(crate) fn encode(&self) -> [u8; 64] {
        self.encode_as(CP_MAGIC)
    }

    /// Decodes and validates a marker line.
    pub(crate) fn decode(b: &[u8; 64]) -> Result<Self, Invalid> {
        Self::decode_as(b, CP_MAGIC)
    }

    /// Encodes the marker as a CP intent: the CP of generation
    /// `generation` that commits every record before `(offset, seq)` has
    /// begun. Its own magic: no slot reader takes it for a marker.
    pub(crate) fn encode_intent(&self) -> [u8; 64] {
        self.encode_as(CP_INTENT_MAGIC)
    }

    /// Decodes and validates a CP intent line.
    pub(crate) fn decode_intent(b: &[u8; 64]) -> Result<Self, Invalid> {
        Self::decode_as(b, CP_INTENT_MAGIC)
    }

    fn encode_as(&self, magic: u32) -> [u8; 64] {
        let mut b = [0u8; 64];
        put(&mut b, 0, &magic.to_le_bytes());
        put(&mut b, 8, &self.generation.to_le_bytes());
        put(&mut b, 16, &self.seq.to_le_bytes());
        put(&mut b, 24, &self.offset.to_le_bytes());
        put(&mut b, 32, &self.log_id.to_le_bytes());
        let crc = line_crc(&b);
        put(&mut b, 60, &crc.to_le_bytes());
        b
    }

    fn decode_as(b: &[u8; 64], magic: u32) -> Result<Self, Invalid> {
        if get_u32(b, 0) != magic {
            return Err(Invalid::Magic);
        }
        if get_u32(b, 60) != line_crc(b) {
            return Err(Invalid::Checksum);
        }
        Ok(Self {
            log_id: get_u64(b, 32),
            generation: get_u64(b, 8),
            seq: get_u64(b, 16),
            offset: get_u64(b, 24),
        })
    }

    /// Checks a decoded marker against the record area `geo`: its offset
    /// must be a line inside the area and its sequence number in
    /// `1..=MAX_SEQ`. A marker that fails this has a valid checksum but
    /// cannot have been written by swarmlog: scanning from it would take an
    /// offset outside the records (the header, past the end) for the head.
    pub(crate) fn check(&self, geo: &Geometry) -> Result<(), Invalid> {
        if !geo.is_place(self.offset) || self.seq == 0 || self.seq > MAX_SEQ {
            return Err(Invalid::Field);
        }
        Ok(())
    }

    /// The current marker of two slots for log `log_id`: the valid one with
    /// the higher generation. `None` if neither validates.
    pub(crate) fn newest(a: &[u8; 64], b: &[u8; 64], log_id: u64) -> Option<(usize, Self)> {
        let of_log = |m: Result<Self, Invalid>| {
            m.and_then(|m| {
                if m.log_id == log_id {
                    Ok(m)
                } else {
                    Err(Invalid::LogId)
                }
            })
        };
        match (of_log(Self::decode(a)), of_log(Self::decode(b))) {
            (Ok(x), Ok(y)) if y.generation > x.generation => Some((1, y)),
            (Ok(x), _) => Some((0, x)),
            (Err(_), Ok(y)) => Some((1, y)),
            (Err(_), Err(_)) => None,
        }
    }
}

/// What the CP intent line says once `cp` is the marker in force: the
/// rules the module enables by and `swarmctl inspect` reports, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntentState {
    /// No intent line: never written, zeroed, or torn.
    Absent,
    /// An intent of another log (an earlier format of the device).
    OtherLog(CpMarker),
    /// The intent of a CP that ended: its generation is the marker's or
    /// older.
    Ended(CpMarker),
    /// The intent of the CP after the marker's, which a crash cut short:
    /// replay finishes it, up to the intent's `(offset, seq)`.
    Pending(CpMarker),
    /// A valid checksum, but no CP could have written it: a generation
    /// further ahead than the next, or a target outside the record area or
    /// not after the marker. The log cannot be trusted (`EUCLEAN`).
    Impossible(CpMarker),
}

impl IntentState {
    /// Judges the intent `line` of log `log_id` with record area `geo`
    /// after the marker in force `cp`.
    pub(crate) fn of(line: &[u8; 64], log_id: u64, cp: &CpMarker, geo: &Geometry) -> Self {
        let Ok(i) = CpMarker::decode_intent(line) else {
            return Self::Absent;
        };
        if i.log_id != log_id {
            Self::OtherLog(i)
        } else if i.generation <= cp.generation {
            Self::Ended(i)
        } else if Some(i.generation) != cp.generation.checked_add(1)
            || i.check(geo).is_err()
            || i.seq <= cp.seq
        {
            Self::Impossible(i)
        } else {
            Self::Pending(i)
        }
    }
}

/// What a record asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Data follows the header: `nr_sectors` sectors of it.
    Write = 1,
    /// The range is discarded (reads back as zeroes).
    Discard = 2,
    /// The range is written with zeroes.
    WriteZeroes = 3,
    /// No operation: the rest of the area is unused, the next record is at
    /// the start of the area.
    Wrap = 4,
}

impl Op {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Write),
            2 => Some(Self::Discard),
            3 => Some(Self::WriteZeroes),
            4 => Some(Self::Wrap),
            _ => None,
        }
    }
}

/// The header of one log record (one cache line); data follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// The operation.
    pub(crate) op: Op,
    /// Sequence number: one more than the previous record's.
    pub(crate) seq: u64,
    /// The log this record belongs to ([`LogHeader::log_id`]).
    pub(crate) log_id: u64,
    /// First sector of the volume the record changes.
    pub(crate) sector: u64,
    /// Number of sectors it changes.
    pub(crate) nr_sectors: u32,
}

impl RecordHeader {
    /// Bytes of data that follow the header.
    pub(crate) fn data_len(&self) -> u32 {
        match self.op {
            Op::Write => self.nr_sectors << 9,
            _ => 0,
        }
    }

    /// Bytes the record occupies in the log, header and padding included.
    pub(crate) fn log_len(&self) -> u64 {
        line_align(RECORD_HEADER_SIZE as u64 + u64::from(self.data_len()))
    }

    fn fields_valid(&self) -> bool {
        match self.op {
            Op::Wrap => self.nr_sectors == 0 && self.sector == 0,
            _ => {
                self.nr_sectors > 0
                    && (u64::from(self.nr_sectors) * SECTOR_SIZE) <= u64::from(MAX_RECORD_DATA)
                    && self
                        .sector
                        .checked_add(u64::from(self.nr_sectors))
                        .is_some()
            }
        }
    }

    fn header_line(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        put(&mut b, 0, &RECORD_MAGIC.to_le_bytes());
        put(&mut b, 4, &[self.op as u8]);
        put(&mut b, 8, &self.seq.to_le_bytes());
        put(&mut b, 16, &self.log_id.to_le_bytes());
        put(&mut b, 24, &self.sector.to_le_bytes());
        put(&mut b, 32, &self.nr_sectors.to_le_bytes());
        put(&mut b, 36, &self.data_len().to_le_bytes());
        b
    }

    /// Encodes the header line, its checksum over the line itself. The
    /// line is the record's commit point: it is stored only after the
    /// record's [`Self::data_len`] bytes of data are persistent.
    pub(crate) fn encode(&self) -> Result<[u8; 64], Invalid> {
        if !self.fields_valid() {
            return Err(Invalid::Field);
        }
        let mut b = self.header_line();
        let crc = line_crc(&b);
        put(&mut b, 60, &crc.to_le_bytes());
        Ok(b)
    }

    /// Encodes the header line of a record on a block log: as
    /// [`Self::encode`], with `data_sum` (the CRC-32C of the record's data,
    /// [`data_sum`]) at offset 40, under the line's checksum.
    pub(crate) fn encode_with_sum(&self, data_sum: u32) -> Result<[u8; 64], Invalid> {
        if !self.fields_valid() {
            return Err(Invalid::Field);
        }
        let mut b = self.header_line();
        put(&mut b, 40, &data_sum.to_le_bytes());
        let crc = line_crc(&b);
        put(&mut b, 60, &crc.to_le_bytes());
        Ok(b)
    }

    /// The data checksum stored in a header line by
    /// [`Self::encode_with_sum`] (valid once the line decodes).
    pub(crate) fn stored_sum(b: &[u8; 64]) -> u32 {
        get_u32(b, 40)
    }

    /// Decodes a header line and checks it is the record expected at this
    /// point of the log (`log_id`, `seq`) and whole (its checksum).
    pub(crate) fn decode(b: &[u8; 64], log_id: u64, seq: u64) -> Result<Self, Invalid> {
        if get_u64(b, 8) != seq && get_u32(b, 0) == RECORD_MAGIC && get_u64(b, 16) == log_id {
            return Err(Invalid::Sequence);
        }
        Self::decode_any(b, log_id)
    }

    /// Decodes a header line of log `log_id` whatever its sequence number
    /// (the caller looks at `seq`), and checks it is whole.
    pub(crate) fn decode_any(b: &[u8; 64], log_id: u64) -> Result<Self, Invalid> {
        if get_u32(b, 0) != RECORD_MAGIC {
            return Err(Invalid::Magic);
        }
        if get_u64(b, 16) != log_id {
            return Err(Invalid::LogId);
        }
        let seq = get_u64(b, 8);
        if get_u32(b, 60) != line_crc(b) {
            return Err(Invalid::Checksum);
        }
        let op = Op::from_u8(b.get(4).copied().unwrap_or(0)).ok_or(Invalid::Field)?;
        let h = Self {
            op,
            seq,
            log_id,
            sector: get_u64(b, 24),
            nr_sectors: get_u32(b, 32),
        };
        if !h.fields_valid() || get_u32(b, 36) != h.data_len() {
            return Err(Invalid::Field);
        }
        Ok(h)
    }
}

/// The CRC-32C of a block-log record's data, as stored in its header.
pub(crate) fn data_sum(data: &[u8]) -> u32 {
    crc32c(SEED, data)
}

/// Rounds `v` up to a multiple of `unit` (a power of two).
const fn align_up(v: u64, unit: u64) -> u64 {
    (v + unit - 1) & !(unit - 1)
}

/// Where records live: the area `[start, end)` of the log, used as a ring,
/// in units of `unit` bytes, and on a pmem log of version 3 the slots after
/// it.
///
/// Slots (version 3): `slots` records of one block each, outside the ring,
/// written and freed one by one. From the end of the device (rounded down
/// to 4 KiB) back: the slots' blocks (`block` bytes each, slot 0 first),
/// then a table of their header lines (one line each, slot 0 first); the
/// ring ends where the table begins. A record in slot `i` is a header line
/// in the table's line `i` (as a ring record's, covering exactly one block:
/// its sector a multiple of the block's, its length one block) and, for a
/// [`Op::Write`], its data in block `i`. It is written as a ring record is:
/// the data, a fence, the header line, a fence. Sequence numbers are shared
/// by ring and slots, so the ring's records are in increasing order but not
/// consecutive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Start of the record area: [`AREA_START`] on pmem, after the header,
    /// CP slot and intent units (and at least 4 KiB in) on a block device.
    pub(crate) start: u64,
    /// End of the record area (a multiple of `unit`).
    pub(crate) end: u64,
    /// Alignment of every record and of the room its header takes:
    /// [`LINE`] on pmem, the logical block size on a block device.
    pub(crate) unit: u64,
    /// Bytes a record may end past the start of the oldest record not yet
    /// complete: 0 on pmem (one record at a time), [`BLOCK_WINDOW`] on a
    /// block device.
    pub(crate) window: u64,
    /// Slots after the ring (0: none).
    pub(crate) slots: u32,
    /// Bytes of a slot's block (the volume's block size; 0 without slots).
    pub(crate) block: u32,
}

impl Geometry {
    /// The geometry of a pmem log of `log_size` bytes, if it can hold at
    /// least two records of the largest size.
    pub(crate) fn new(log_size: u64) -> Option<Self> {
        Self::with(log_size, AREA_START, LINE, 0)
    }

    /// The geometry of a block log of `log_size` bytes on a device of
    /// logical block size `unit`, if it can hold at least two records of
    /// the largest size and the in-flight window twice over.
    pub(crate) fn block(log_size: u64, unit: u32) -> Option<Self> {
        let Medium::Block { unit } = Medium::block(unit)? else {
            return None;
        };
        let g = Self::with(
            log_size,
            block_area_start(unit),
            u64::from(unit),
            BLOCK_WINDOW,
        )?;
        (g.capacity() >= 2 * BLOCK_WINDOW).then_some(g)
    }

    /// The geometry of a pmem log of `log_size` bytes for blocks of
    /// `block` bytes with `slots` slots ([`Self::new`] if 0), if its ring
    /// still holds two records of the largest size.
    pub(crate) fn pmem(log_size: u64, block: u32, slots: u32) -> Option<Self> {
        if slots == 0 {
            return Self::new(log_size);
        }
        if !block.is_power_of_two() || u64::from(block) < SECTOR_SIZE || block > (64 << 10) {
            return None;
        }
        let data_end = log_size & !(AREA_START - 1);
        let data = data_end.checked_sub(u64::from(slots).checked_mul(u64::from(block))?)?;
        // A multiple of 4096 less a multiple of 64.
        let table = data.checked_sub(u64::from(slots) * LINE)?;
        let g = Self::with(table, AREA_START, LINE, 0)?;
        Some(Self { slots, block, ..g })
    }

    /// How many slots [`LogHeader::geometry`] gives a new pmem log of
    /// `log_size` bytes for blocks of `block` bytes: three quarters of the
    /// record area ([`SLOT_QUARTERS`]), fewer if the ring would be too
    /// small to hold two largest records, none if then fewer than 64.
    pub(crate) fn default_slots(log_size: u64, block: u32) -> u32 {
        let area = (log_size & !(AREA_START - 1)).saturating_sub(AREA_START);
        let each = u64::from(block) + LINE;
        let mut n = u32::try_from(area / 4 * SLOT_QUARTERS / each).unwrap_or(u32::MAX);
        while n >= 64 && Self::pmem(log_size, block, n).is_none() {
            n -= n / 8 + 1;
        }
        if n < 64 {
            0
        } else {
            n
        }
    }

    fn with(log_size: u64, start: u64, unit: u64, window: u64) -> Option<Self> {
        let end = log_size & !(unit - 1);
        let need = 2 * (unit + u64::from(MAX_RECORD_DATA)) + unit;
        if end < start || end - start < need {
            return None;
        }
        Some(Self {
            start,
            end,
            unit,
            window,
            slots: 0,
            block: 0,
        })
    }

    /// Offset of slot `i`'s header line, if there is such a slot.
    pub(crate) fn slot_header(&self, i: u32) -> Option<u64> {
        (i < self.slots).then(|| self.end + u64::from(i) * LINE)
    }

    /// Offset of slot `i`'s block, if there is such a slot.
    pub(crate) fn slot_data(&self, i: u32) -> Option<u64> {
        (i < self.slots)
            .then(|| self.end + u64::from(self.slots) * LINE + u64::from(i) * u64::from(self.block))
    }

    /// The slot whose header line is at `at`, if one is.
    pub(crate) fn slot_of_header(&self, at: u64) -> Option<u32> {
        let i = at.checked_sub(self.slot_header(0)?)?;
        if i % LINE != 0 {
            return None;
        }
        u32::try_from(i / LINE).ok().filter(|&i| i < self.slots)
    }

    /// The slot whose block begins at `at`, if one does.
    pub(crate) fn slot_at(&self, at: u64) -> Option<u32> {
        let first = self.slot_data(0)?;
        let i = at.checked_sub(first)?;
        if i % u64::from(self.block) != 0 {
            return None;
        }
        u32::try_from(i / u64::from(self.block))
            .ok()
            .filter(|&i| i < self.slots)
    }

    /// Whether a record header `h` fits a slot: one block, aligned, not a
    /// wrap record.
    pub(crate) fn fits_slot(&self, h: &RecordHeader) -> bool {
        let sectors = u64::from(self.block) / SECTOR_SIZE;
        self.slots != 0
            && h.op != Op::Wrap
            && u64::from(h.nr_sectors) == sectors
            && h.sector % sectors == 0
    }

    /// Whether this is a block log's geometry.
    pub(crate) fn is_block(&self) -> bool {
        self.window != 0
    }

    /// Offset of CP marker slot `slot` (0 or 1): a line on pmem, a unit of
    /// its own on a block device.
    pub(crate) fn cp_slot(&self, slot: usize) -> u64 {
        let i = slot.min(1) as u64;
        if self.is_block() {
            (1 + i) * self.unit
        } else {
            CP_SLOTS[slot.min(1)]
        }
    }

    /// Offset of the CP intent.
    pub(crate) fn cp_intent(&self) -> u64 {
        if self.is_block() {
            3 * self.unit
        } else {
            CP_INTENT
        }
    }

    /// Room a record's header takes before its data: one line on pmem,
    /// one unit on a block device (the line, then zeroes).
    pub(crate) fn header_room(&self) -> u64 {
        if self.is_block() {
            self.unit
        } else {
            RECORD_HEADER_SIZE as u64
        }
    }

    /// Bytes a record with header `h` occupies in the log, header and
    /// padding included.
    pub(crate) fn record_len(&self, h: &RecordHeader) -> u64 {
        self.len_of(h.data_len())
    }

    /// Bytes a record with `data_len` bytes of data occupies in the log.
    pub(crate) fn len_of(&self, data_len: u32) -> u64 {
        self.header_room() + align_up(u64::from(data_len), self.unit)
    }

    /// Whether `off` can be where a record begins: a unit inside the area.
    pub(crate) fn is_place(&self, off: u64) -> bool {
        off >= self.start && off < self.end && off.checked_rem(self.unit) == Some(0)
    }

    /// Where the record after one of `len` bytes at `off` begins.
    pub(crate) fn advance(&self, off: u64, len: u64) -> u64 {
        let next = off.saturating_add(len);
        if next >= self.end {
            self.start
        } else {
            next
        }
    }

    /// Bytes in the record area.
    pub(crate) fn capacity(&self) -> u64 {
        self.end - self.start
    }

    /// Where a record of `len` bytes goes if the log's head is at `off`:
    /// `(wrap, at)`; if `wrap`, a [`Op::Wrap`] record must first be written at
    /// `off` (its header always fits: `off` is a unit below `end`).
    pub(crate) fn place(&self, off: u64, len: u64) -> (bool, u64) {
        if off + len <= self.end {
            (false, off)
        } else {
            (true, self.start)
        }
    }

    /// Bytes from `from` to `to` going forward round the ring.
    pub(crate) fn distance(&self, from: u64, to: u64) -> u64 {
        if to >= from {
            to - from
        } else {
            self.capacity() - (from - to)
        }
    }
}

/// Read access to the log's bytes, for the scan.
pub(crate) trait LogRead {
    /// Fills `buf` with the log's bytes at `off`; `Err` if out of range
    /// ([`Invalid::Range`]) or on a bad line ([`Invalid::Unreadable`]).
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), Invalid>;

    /// Whether the media reports a bad line among the `len` bytes at `off`
    /// (the scan reads no data, so it asks; memory has none).
    fn bad(&self, _off: u64, _len: u64) -> bool {
        false
    }

    /// The CRC-32C ([`data_sum`]) of the `len` bytes at `off`: a block-log
    /// record's data, which the scan checks against its header.
    fn sum(&self, off: u64, len: u64) -> Result<u32, Invalid> {
        sum_by_reads(self, off, len)
    }
}

/// [`LogRead::sum`] through [`LogRead::read_at`], 512 bytes at a time.
pub(crate) fn sum_by_reads<L: LogRead + ?Sized>(
    log: &L,
    off: u64,
    len: u64,
) -> Result<u32, Invalid> {
    let mut buf = [0u8; 512];
    let mut crc = SEED;
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64);
        let part = buf.get_mut(..n as usize).ok_or(Invalid::Range)?;
        log.read_at(off + done, part)?;
        crc = crc32c(crc, part);
        done += n;
    }
    Ok(crc)
}

impl LogRead for [u8] {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), Invalid> {
        let start = usize::try_from(off).map_err(|_| Invalid::Range)?;
        let src = self
            .get(start..start.checked_add(buf.len()).ok_or(Invalid::Range)?)
            .ok_or(Invalid::Range)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A record the scan found valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// Log offset of the record's header.
    pub(crate) offset: u64,
    /// Its header.
    pub(crate) header: RecordHeader,
}

/// The result of a scan: the valid end of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// Offset where the next record would go.
    pub(crate) offset: u64,
    /// Sequence number the next record would carry.
    pub(crate) seq: u64,
    /// Valid records found, wrap records included.
    pub(crate) records: u64,
    /// Why the scan stopped at `offset`.
    pub(crate) stop: Invalid,
}

/// Walks the log from the CP marker to its valid end, calling `each` for
/// every valid record (wrap records included), in log order. On pmem it
/// reads header lines only: a valid header proves its data (see the top of
/// this file); on a block log it also checks every record's data against
/// its sum. `each` may stop the scan early by returning `Err`.
pub(crate) fn scan<L, F, E>(
    log: &L,
    geo: Geometry,
    log_id: u64,
    from: &CpMarker,
    each: F,
) -> Result<ScanEnd, E>
where
    L: LogRead + ?Sized,
    F: FnMut(&Found) -> Result<(), E>,
{
    scan_records(log, geo, log_id, from, true, each)
}

/// Decodes the ring record that follows one whose sequence number was
/// `seq - 1`: it carries `seq`, or with slots ([`Geometry::slots`]) any
/// number from `seq` on (the slots' records took the ones between). A
/// record of an earlier lap carries a smaller one ([`Invalid::Sequence`]).
fn decode_next(
    geo: &Geometry,
    line: &[u8; 64],
    log_id: u64,
    seq: u64,
) -> Result<RecordHeader, Invalid> {
    if geo.slots == 0 {
        return RecordHeader::decode(line, log_id, seq);
    }
    let h = RecordHeader::decode_any(line, log_id)?;
    if h.seq < seq {
        return Err(Invalid::Sequence);
    }
    Ok(h)
}

/// What slot header `line` holds for a replay from sequence number `from`
/// (the CP marker's): its record, if it is a valid record of log `log_id`
/// that fits a slot ([`Geometry::fits_slot`]), numbered `from` or later.
/// `None` for a slot never written, torn, of an earlier format of the
/// device, or whose record a CP committed (numbered before `from`: its
/// slot was free).
pub(crate) fn slot_record(
    geo: &Geometry,
    log_id: u64,
    from: u64,
    line: &[u8; 64],
) -> Option<RecordHeader> {
    let h = RecordHeader::decode_any(line, log_id).ok()?;
    (h.seq >= from && geo.fits_slot(&h)).then_some(h)
}

/// The end of a slot scan ([`scan_slots`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The module reads the table in blocks of lines (`device/log.rs`); the
// tools scan slot by slot.
#[allow(dead_code)]
pub(crate) struct SlotsEnd {
    /// Slots holding a record taken.
    pub(crate) records: u32,
    /// The first slot whose header line cannot be read
    /// ([`Invalid::Unreadable`]): the log is damaged there (it may hold an
    /// acknowledged write), and the caller refuses it. `None` if none.
    /// Whether a record's data is bad is the caller's to ask
    /// ([`LogRead::bad`]), of the records it keeps, as replay does.
    pub(crate) damaged: Option<(u32, Invalid)>,
}

/// Reads every slot's header line, in slot order, and calls `each(slot,
/// header)` for each record a replay from sequence number `from` takes
/// ([`slot_record`]). A slot may hold a stale record, one that a later
/// record of its block replaced before its slot was freed: the caller
/// keeps the newest of each block (`format.rst`, "Slots"), and asks
/// whether the data of those is bad: a stale record's data is never
/// replayed, bad or not. Stops at the first table line that cannot be read
/// ([`SlotsEnd::damaged`]). `each` may stop the scan early by returning
/// `Err`.
#[allow(dead_code)]
pub(crate) fn scan_slots<L, F, E>(
    log: &L,
    geo: &Geometry,
    log_id: u64,
    from: u64,
    mut each: F,
) -> Result<SlotsEnd, E>
where
    L: LogRead + ?Sized,
    F: FnMut(u32, &RecordHeader) -> Result<(), E>,
{
    let mut records = 0;
    for i in 0..geo.slots {
        let Some(at) = geo.slot_header(i) else {
            break;
        };
        let mut line = [0u8; 64];
        if let Err(e) = log.read_at(at, &mut line) {
            return Ok(SlotsEnd {
                records,
                damaged: Some((i, e)),
            });
        }
        let Some(h) = slot_record(geo, log_id, from, &line) else {
            continue;
        };
        each(i, &h)?;
        records += 1;
    }
    Ok(SlotsEnd {
        records,
        damaged: None,
    })
}

/// Whether a power cut can have torn the record at `at` of a block log whose
/// chain of valid headers ends with the record at `last` (both found by one
/// scan from one CP marker, so `at` is not after `last`). A record is
/// issued only while it ends at most a window past the start of the oldest
/// record not yet complete: a record that begins a window or more after
/// `at` was issued after the record at `at` was complete. On pmem, where
/// the scan proves every record by its header, never.
pub(crate) fn may_be_torn(geo: &Geometry, at: u64, last: u64) -> bool {
    geo.is_block() && geo.distance(at, last) < geo.window
}

/// Whether the data of the block-log record at `off`, whose header line is
/// `line` (decoded as `h`), matches the sum the line carries: `Ok` if so,
/// [`Invalid::Checksum`] if not, or the read's error.
fn data_matches<L: LogRead + ?Sized>(
    log: &L,
    geo: &Geometry,
    off: u64,
    line: &[u8; 64],
    h: &RecordHeader,
) -> Result<(), Invalid> {
    let sum = log.sum(off + geo.header_room(), u64::from(h.data_len()))?;
    if sum == RecordHeader::stored_sum(line) {
        Ok(())
    } else {
        Err(Invalid::Checksum)
    }
}

/// After [`scan_records`] without data sums, given the records it found,
/// in log order (their offsets and sequence numbers): the first, counted
/// from 0, of those a power cut may have torn ([`may_be_torn`]) whose data
/// does not match the sum its header carries, and the log's end there, as
/// [`scan`] would have ended it (`stop`: [`Invalid::Checksum`], or the
/// read's error); `None` if every one matches.
pub(crate) fn first_torn<L, I>(
    log: &L,
    geo: &Geometry,
    log_id: u64,
    records: I,
) -> Option<(usize, ScanEnd)>
where
    L: LogRead + ?Sized,
    I: Iterator<Item = (u64, u64)> + Clone,
{
    let (last, _) = records.clone().last()?;
    let check = |off: u64, seq: u64| -> Result<(), Invalid> {
        let mut line = [0u8; 64];
        log.read_at(off, &mut line)?;
        let h = RecordHeader::decode(&line, log_id, seq)?;
        data_matches(log, geo, off, &line, &h)
    };
    records
        .enumerate()
        .filter(|&(_, (off, _))| may_be_torn(geo, off, last))
        .find_map(|(i, (offset, seq))| {
            let stop = check(offset, seq).err()?;
            let end = ScanEnd {
                offset,
                seq,
                records: i as u64,
                stop,
            };
            Some((i, end))
        })
}

/// [`scan`], and with `check_data` false, on a block log, without the data
/// sums: the chain of valid headers, which may run past a torn record
/// (records issued after it may have landed). The caller then checks the
/// data of the records a power cut can have torn ([`first_torn`]) and ends
/// the log at the first that fails; the records
/// before them are complete (`format.rst`, "Records in flight").
pub(crate) fn scan_records<L, F, E>(
    log: &L,
    geo: Geometry,
    log_id: u64,
    from: &CpMarker,
    check_data: bool,
    mut each: F,
) -> Result<ScanEnd, E>
where
    L: LogRead + ?Sized,
    F: FnMut(&Found) -> Result<(), E>,
{
    let mut off = from.offset;
    let mut seq = from.seq;
    let mut records = 0u64;
    let mut used = 0u64;
    let stop = loop {
        if !geo.is_place(off) {
            break Invalid::Range;
        }
        let mut line = [0u8; 64];
        if let Err(e) = log.read_at(off, &mut line) {
            break e;
        }
        let header = match decode_next(&geo, &line, log_id, seq) {
            Ok(h) => h,
            Err(e) => break e,
        };
        let len = geo.record_len(&header);
        // A record may not run past the area nor past the space the log can
        // hold since the CP (that would be a stale lap).
        if (header.op != Op::Wrap && off + len > geo.end) || used + len > geo.capacity() {
            break Invalid::Field;
        }
        let data_at = off + geo.header_room();
        let data_len = u64::from(header.data_len());
        // Valid, so complete once, but its data cannot be read back: the
        // log is damaged here (the caller refuses it, as a corrupt record).
        if log.bad(data_at, data_len) {
            break Invalid::DataUnreadable;
        }
        // On a block device the units of one write land in any order: the
        // data must match the sum its header carries.
        if geo.is_block() && check_data {
            if let Err(e) = data_matches(log, &geo, off, &line, &header) {
                break e;
            }
        }
        each(&Found {
            offset: off,
            header,
        })?;
        records += 1;
        seq = match header.seq.checked_add(1) {
            Some(s) => s,
            None => break Invalid::Sequence,
        };
        if header.op == Op::Wrap {
            used += geo.end - off;
            off = geo.start;
        } else {
            used += len;
            off = geo.advance(off, len);
        }
    };
    Ok(ScanEnd {
        offset: off,
        seq,
        records,
        stop,
    })
}

/// After a scan that ended at `end`: the offset of a valid record that
/// proves the invalid one at `end` was complete once, so that the log is
/// corrupt there, not torn; `None` if there is none. If the scan stopped at
/// a record whose data is unreadable ([`Invalid::DataUnreadable`]), that
/// record's own offset: its valid header proves it complete. If it stopped
/// at a header line that cannot be read ([`Invalid::Unreadable`]: a bad
/// line of the pmem, a read error of the log device), that line's offset:
/// a read error is damage, and the line may hold an acknowledged record,
/// the last one as much as any (a torn write reads, it does not fail).
///
/// On pmem, appends are serial, and each (a wrap record included) is
/// durable before the next begins: a torn last record never has a valid
/// record with the next sequence number, `end.seq + 1`, after it (within a
/// largest record's length, or at the start of the area after a wrap
/// record). On a block device several records are in flight, each ending at
/// most [`Geometry::window`] after the start of the oldest incomplete one:
/// records after a torn one may have landed, but none that begins a window
/// or more past it ([`issued_after_window`]). Replaying up to a corrupt
/// record would silently drop it and everything after it. (On pmem a
/// record's data carries no checksum: damage there is not seen by the scan;
/// see `format.rst`.)
pub(crate) fn valid_record_after<L>(
    log: &L,
    geo: Geometry,
    log_id: u64,
    end: &ScanEnd,
) -> Option<u64>
where
    L: LogRead + ?Sized,
{
    match end.stop {
        Invalid::Range => return None,
        Invalid::DataUnreadable | Invalid::Unreadable => return Some(end.offset),
        _ => {}
    }
    if geo.is_block() {
        return issued_after_window(log, geo, log_id, end);
    }
    let seq = end.seq.checked_add(1)?;
    let last = geo
        .end
        .saturating_sub(LINE)
        .min(end.offset + RECORD_HEADER_SIZE as u64 + u64::from(MAX_RECORD_DATA));
    let valid_at = |off: u64| -> bool {
        let mut line = [0u8; 64];
        if log.read_at(off, &mut line).is_err() {
            return false;
        }
        let Ok(h) = decode_next(&geo, &line, log_id, seq) else {
            return false;
        };
        h.op == Op::Wrap || off + h.log_len() <= geo.end
    };
    let mut off = end.offset + LINE;
    while off <= last {
        if valid_at(off) {
            return Some(off);
        }
        off += LINE;
    }
    (end.offset != AREA_START && valid_at(AREA_START)).then_some(AREA_START)
}

/// On a block log: a valid record of log `log_id` (its data matching its
/// sum) with a sequence number after `end.seq`, beginning at least a window
/// and less than a window and a largest record past `end.offset` going
/// round the ring. It was issued after the record at `end` was complete
/// (see [`valid_record_after`]). Records of earlier laps carry smaller
/// sequence numbers, and replay erases the window past the valid end before
/// appending ([`Geometry::window`]): no record landed but never
/// acknowledged by a crashed run can pass for one.
pub(crate) fn issued_after_window<L>(
    log: &L,
    geo: Geometry,
    log_id: u64,
    end: &ScanEnd,
) -> Option<u64>
where
    L: LogRead + ?Sized,
{
    let span = geo.window + geo.unit + u64::from(MAX_RECORD_DATA);
    if !geo.is_place(end.offset) || span >= geo.capacity() {
        return None;
    }
    let mut d = geo.window;
    while d < span {
        // Round the ring: a record never straddles the end of the area.
        let from_start = end.offset - geo.start + d;
        let off = geo.start + from_start % geo.capacity();
        let mut line = [0u8; 64];
        if log.read_at(off, &mut line).is_ok() {
            if let Ok(h) = RecordHeader::decode_any(&line, log_id) {
                let len = geo.record_len(&h);
                let whole = (h.op == Op::Wrap || off + len <= geo.end)
                    && data_matches(log, &geo, off, &line, &h).is_ok();
                if h.seq > end.seq && whole {
                    return Some(off);
                }
            }
        }
        d += geo.unit;
    }
    None
}

#[cfg(CONFIG_RUST)]
#[kernel::prelude::kunit_tests(swarmlog_format)]
mod tests {
    use super::*;
    use kernel::prelude::*;

    const LOG_ID: u64 = 0x1234_5678_9abc_def0;
    const SIZE: u64 = AREA_START + 2 * (64 + MAX_RECORD_DATA as u64) + 4096;

    fn new_log() -> Result<KVec<u8>> {
        let mut v = KVec::new();
        v.resize(SIZE as usize, 0, GFP_KERNEL)?;
        Ok(v)
    }

    fn write_record(log: &mut [u8], off: u64, h: &RecordHeader, data: &[u8]) {
        let line = h.encode().unwrap_or([0; 64]);
        put(log, off as usize + 64, data);
        put(log, off as usize, &line);
    }

    fn wr(seq: u64, sector: u64, nr: u32) -> RecordHeader {
        RecordHeader {
            op: Op::Write,
            seq,
            log_id: LOG_ID,
            sector,
            nr_sectors: nr,
        }
    }

    fn scan_all(log: &[u8], from: &CpMarker, found: &mut KVec<Found>) -> Result<ScanEnd> {
        let geo = Geometry::new(SIZE).ok_or(EINVAL)?;
        scan(log, geo, LOG_ID, from, |f| {
            found.push(*f, GFP_KERNEL).map_err(|_| ENOMEM)
        })
    }

    #[test]
    fn an_impossible_cp_marker_is_refused() -> Result {
        // Valid checksums, fields swarmlog never writes: scanning from such
        // a marker took an offset outside the records for the log's head.
        let geo = Geometry::new(SIZE).ok_or(EINVAL)?;
        let ok = CpMarker {
            log_id: LOG_ID,
            generation: 1,
            seq: 5,
            offset: AREA_START,
        };
        for good in [
            ok,
            CpMarker {
                offset: geo.end - LINE,
                ..ok
            },
            CpMarker { seq: 1, ..ok },
            CpMarker { seq: MAX_SEQ, ..ok },
        ] {
            assert_eq!(good.check(&geo), Ok(()));
        }
        for offset in [
            0,
            LINE,
            AREA_START - LINE,
            AREA_START + 1,
            AREA_START + LINE - 1,
            geo.end,
            geo.end + LINE,
            u64::MAX - 63,
        ] {
            assert_eq!(CpMarker { offset, ..ok }.check(&geo), Err(Invalid::Field));
        }
        for seq in [0, MAX_SEQ + 1, u64::MAX] {
            assert_eq!(CpMarker { seq, ..ok }.check(&geo), Err(Invalid::Field));
        }
        Ok(())
    }

    #[test]
    fn the_cp_intent_after_a_marker() -> Result {
        // The marker in force: generation 4, records from sequence number 10.
        let geo = Geometry::new(SIZE).ok_or(EINVAL)?;
        let cp = CpMarker {
            log_id: LOG_ID,
            generation: 4,
            seq: 10,
            offset: AREA_START,
        };
        let next = CpMarker {
            generation: 5,
            seq: 12,
            offset: AREA_START + 2 * LINE,
            ..cp
        };
        let of = |m: CpMarker| IntentState::of(&m.encode_intent(), LOG_ID, &cp, &geo);
        assert_eq!(
            IntentState::of(&[0; 64], LOG_ID, &cp, &geo),
            IntentState::Absent
        );
        // A marker's line is no intent, nor is a torn intent.
        assert_eq!(
            IntentState::of(&next.encode(), LOG_ID, &cp, &geo),
            IntentState::Absent
        );
        let mut torn = next.encode_intent();
        torn[16] ^= 1;
        assert_eq!(
            IntentState::of(&torn, LOG_ID, &cp, &geo),
            IntentState::Absent
        );
        assert_eq!(of(next), IntentState::Pending(next));
        let other = CpMarker {
            log_id: LOG_ID ^ 1,
            ..next
        };
        assert_eq!(of(other), IntentState::OtherLog(other));
        for generation in [1, 4] {
            let ended = CpMarker { generation, ..next };
            assert_eq!(of(ended), IntentState::Ended(ended));
        }
        // Valid checksums, but no CP after generation 4 writes them.
        for bad in [
            CpMarker {
                generation: 6,
                ..next
            },
            CpMarker {
                generation: u64::MAX,
                ..next
            },
            CpMarker { seq: 10, ..next },
            CpMarker { seq: 9, ..next },
            CpMarker {
                seq: MAX_SEQ + 1,
                ..next
            },
            CpMarker {
                offset: AREA_START + 1,
                ..next
            },
            CpMarker {
                offset: geo.end,
                ..next
            },
        ] {
            assert_eq!(of(bad), IntentState::Impossible(bad));
        }
        Ok(())
    }

    const CP0: CpMarker = CpMarker {
        log_id: LOG_ID,
        generation: 0,
        seq: 1,
        offset: AREA_START,
    };

    #[test]
    fn crc32c_known_answer() {
        // The standard CRC-32C check value of "123456789" is 0xe3069283.
        assert_eq!(!crc32c(SEED, b"123456789"), 0xe306_9283);
    }

    #[test]
    fn header_round_trip() {
        let h = LogHeader {
            array_uuid: [7; 16],
            log_id: LOG_ID,
            log_size: SIZE,
            block_size: 4096,
            medium: Medium::Pmem,
            slots: 0,
        };
        let line = h.encode();
        assert_eq!(LogHeader::decode(&line), Ok(h));
        for i in 0..64 {
            let mut bad = line;
            bad[i] ^= 0x10;
            assert!(LogHeader::decode(&bad).is_err());
        }
        let tiny = LogHeader {
            log_size: 8192,
            ..h
        };
        assert_eq!(LogHeader::decode(&tiny.encode()), Err(Invalid::Field));
    }

    #[test]
    fn cp_marker_newest_slot_wins() {
        let a = CpMarker {
            log_id: LOG_ID,
            generation: 4,
            seq: 10,
            offset: 4096,
        };
        let b = CpMarker {
            log_id: LOG_ID,
            generation: 5,
            seq: 12,
            offset: 8192,
        };
        assert_eq!(
            CpMarker::newest(&a.encode(), &b.encode(), LOG_ID),
            Some((1, b))
        );
        assert_eq!(
            CpMarker::newest(&b.encode(), &a.encode(), LOG_ID),
            Some((0, b))
        );
        let mut torn = b.encode();
        torn[20] ^= 1;
        assert_eq!(CpMarker::newest(&a.encode(), &torn, LOG_ID), Some((0, a)));
        assert_eq!(CpMarker::newest(&torn, &[0; 64], LOG_ID), None);
        // A marker of another format of the log is not taken.
        assert_eq!(CpMarker::newest(&b.encode(), &a.encode(), LOG_ID + 1), None);
    }

    #[test]
    fn record_round_trip_and_checksum() {
        let h = wr(9, 100, 2);
        let line = h.encode().unwrap_or([0; 64]);
        assert_eq!(RecordHeader::decode(&line, LOG_ID, 9), Ok(h));
        assert_eq!(
            RecordHeader::decode(&line, LOG_ID, 10),
            Err(Invalid::Sequence)
        );
        assert_eq!(
            RecordHeader::decode(&line, LOG_ID + 1, 9),
            Err(Invalid::LogId)
        );
        // Any bit of the line flipped: refused (the checksum covers it).
        for i in 0..64 {
            let mut bad = line;
            bad[i] ^= 0x01;
            assert!(RecordHeader::decode(&bad, LOG_ID, 9).is_err());
        }
        assert_eq!(h.log_len(), 64 + 1024);
    }

    #[test]
    fn record_limits() {
        // Zero-length I/O and one past the largest payload are refused.
        assert_eq!(wr(1, 0, 0).encode(), Err(Invalid::Field));
        let max = MAX_RECORD_DATA / 512;
        assert_eq!(wr(1, 0, max + 1).data_len(), MAX_RECORD_DATA + 512);
        assert!(wr(1, 0, max + 1).encode().is_err());
        assert!(wr(1, 0, max).encode().is_ok());
        // A range that overflows the sector space is refused.
        assert!(wr(1, u64::MAX, 1).encode().is_err());
        let d = RecordHeader {
            op: Op::Discard,
            ..wr(1, 5, 8)
        };
        assert_eq!(d.data_len(), 0);
        assert_eq!(d.log_len(), 64);
        assert!(d.encode().is_ok());
    }

    #[test]
    fn scan_finds_valid_end() -> Result {
        let mut log = new_log()?;
        let mut off = AREA_START;
        for i in 0..5u64 {
            let h = wr(1 + i, i * 8, 1 + i as u32);
            let data = [i as u8; 2560];
            write_record(&mut log, off, &h, &data[..h.data_len() as usize]);
            off += h.log_len();
        }
        let mut found = KVec::new();
        let end = scan_all(&log, &CP0, &mut found)?;
        assert_eq!(end.records, 5);
        assert_eq!(end.seq, 6);
        assert_eq!(end.offset, off);
        assert_eq!(end.stop, Invalid::Magic);
        assert_eq!(found.len(), 5);
        assert_eq!(found.get(2).map(|f| f.header.sector), Some(16));
        Ok(())
    }

    #[test]
    fn torn_record_ends_the_log() -> Result {
        let mut log = new_log()?;
        let h1 = wr(1, 0, 8);
        write_record(&mut log, AREA_START, &h1, &[1; 4096]);
        let off2 = AREA_START + h1.log_len();
        let h2 = wr(2, 8, 8);
        write_record(&mut log, off2, &h2, &[2; 4096]);
        // A power cut in the header line's store: a part of the line (8
        // bytes of it, here its end) still holds what was there before.
        put(&mut log, (off2 + 56) as usize, &[0; 8]);
        let mut found = KVec::new();
        let end = scan_all(&log, &CP0, &mut found)?;
        assert_eq!(end.records, 1);
        assert_eq!(end.offset, off2);
        assert_eq!(end.stop, Invalid::Checksum);
        Ok(())
    }

    fn after(log: &[u8], end: &ScanEnd) -> Result<Option<u64>> {
        let geo = Geometry::new(SIZE).ok_or(EINVAL)?;
        Ok(valid_record_after(log, geo, LOG_ID, end))
    }

    #[test]
    fn corrupt_record_is_told_from_a_torn_one() -> Result {
        let mut log = new_log()?;
        let h1 = wr(1, 0, 8);
        write_record(&mut log, AREA_START, &h1, &[1; 4096]);
        let off2 = AREA_START + h1.log_len();
        let h2 = wr(2, 8, 8);
        write_record(&mut log, off2, &h2, &[2; 4096]);
        let off3 = off2 + h2.log_len();
        let h3 = wr(3, 16, 1);
        write_record(&mut log, off3, &h3, &[3; 512]);
        let mut found = KVec::new();
        // Clean end: nothing follows.
        let end = scan_all(&log, &CP0, &mut found)?;
        assert_eq!(end.records, 3);
        assert_eq!(after(&log, &end)?, None);
        // A bit flip in record 2's data is not seen by the log (the data
        // has no checksum there since format version 2): all three scan.
        let flip = (off2 + 64 + 100) as usize;
        let b = log.get(flip).copied().ok_or(EINVAL)?;
        put(&mut log, flip, &[b ^ 0x10]);
        let end = scan_all(&log, &CP0, &mut found)?;
        assert_eq!(end.records, 3);
        put(&mut log, flip, &[b]);
        // A flip in record 2's header: the scan stops there, and record 3
        // follows it: corrupt, not torn.
        put(&mut log, (off2 + 24) as usize, &[0xff]);
        let end = scan_all(&log, &CP0, &mut found)?;
        assert_eq!(
            (end.records, end.offset, end.stop),
            (1, off2, Invalid::Checksum)
        );
        assert_eq!(after(&log, &end)?, Some(off3));
        // Record 3 torn instead (the last one, as a power cut leaves it: its
        // header line only in part): nothing valid follows record 2, which
        // is whole again.
        write_record(&mut log, off2, &h2, &[2; 4096]);
        put(&mut log, (off3 + 40) as usize, &[0; 24]);
        let end = scan_all(&log, &CP0, &mut found)?;
        assert_eq!((end.records, end.offset), (2, off3));
        assert_eq!(after(&log, &end)?, None);
        Ok(())
    }

    /// A log whose bytes in `bad` the media reports bad, as a pmem with a
    /// poisoned line or a `badblocks` entry does.
    struct BadLines<'a> {
        log: &'a [u8],
        bad: core::ops::Range<u64>,
    }

    impl LogRead for BadLines<'_> {
        fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), Invalid> {
            if self.bad(off, buf.len() as u64) {
                return Err(Invalid::Unreadable);
            }
            self.log.read_at(off, buf)
        }

        fn bad(&self, off: u64, len: u64) -> bool {
            off < self.bad.end && self.bad.start < off + len
        }
    }

    #[test]
    fn a_record_on_a_bad_line_is_damage_not_the_end() -> Result {
        let geo = Geometry::new(SIZE).ok_or(EINVAL)?;
        let mut log = new_log()?;
        let mut offs = [0u64; 4];
        let mut off = AREA_START;
        for (i, o) in offs.iter_mut().enumerate() {
            let h = wr(1 + i as u64, 8 * i as u64, 8);
            write_record(&mut log, off, &h, &[i as u8; 4096]);
            *o = off;
            off += h.log_len();
        }
        let walk = |bad: core::ops::Range<u64>| -> Result<(ScanEnd, Option<u64>)> {
            let l = BadLines { log: &log, bad };
            let end = scan(&l, geo, LOG_ID, &CP0, |_| Ok::<(), Error>(()))?;
            Ok((end, valid_record_after(&l, geo, LOG_ID, &end)))
        };
        // A bad line in record 3's data: the scan stops at record 3, whose
        // own valid header proves it was complete: damage, never the end.
        let (end, after) = walk(offs[2] + 64 + 1024..offs[2] + 64 + 1088)?;
        assert_eq!(
            (end.records, end.offset, end.seq, end.stop),
            (2, offs[2], 3, Invalid::DataUnreadable)
        );
        assert_eq!(after, Some(offs[2]));
        // The last record's data: the same (a valid header is a record that
        // was acknowledged, torn or not what follows).
        let (end, after) = walk(offs[3] + 64..offs[3] + 128)?;
        assert_eq!((end.records, end.stop), (3, Invalid::DataUnreadable));
        assert_eq!(after, Some(offs[3]));
        // Record 2's header line: unreadable: damage at that line.
        let (end, after) = walk(offs[1]..offs[1] + 64)?;
        assert_eq!(
            (end.records, end.offset, end.stop),
            (1, offs[1], Invalid::Unreadable)
        );
        assert_eq!(after, Some(offs[1]));
        // The last record's header line: no record follows it, but a read
        // error is not a torn record (one reads, as zeroes or old bytes):
        // damage too, never the end. Before, this was taken for the log's
        // torn end and record 4, acknowledged, dropped.
        let (end, after) = walk(offs[3]..offs[3] + 64)?;
        assert_eq!(
            (end.records, end.offset, end.stop),
            (3, offs[3], Invalid::Unreadable)
        );
        assert_eq!(after, Some(offs[3]));
        // A bad line past the log's end is not in the log.
        let (end, after) = walk(off + 4096..off + 4160)?;
        assert_eq!((end.records, end.stop, after), (4, Invalid::Magic, None));
        Ok(())
    }

    #[test]
    fn stale_lap_is_not_taken() -> Result {
        let mut log = new_log()?;
        // Record 7 from an older lap sits where record 3 would go.
        let h1 = wr(1, 0, 1);
        write_record(&mut log, AREA_START, &h1, &[1; 512]);
        let h2 = wr(2, 0, 1);
        write_record(&mut log, AREA_START + 576, &h2, &[2; 512]);
        let old = wr(7, 0, 1);
        write_record(&mut log, AREA_START + 1152, &old, &[7; 512]);
        let mut found = KVec::new();
        let end = scan_all(&log, &CP0, &mut found)?;
        assert_eq!(end.records, 2);
        assert_eq!(end.stop, Invalid::Sequence);
        Ok(())
    }

    #[test]
    fn scan_wraps_round_the_ring() -> Result {
        let mut log = new_log()?;
        let geo = Geometry::new(SIZE).ok_or(EINVAL)?;
        // Start near the end: a 1 MiB record does not fit, so a wrap record
        // goes first and the big one lands at the start of the area.
        let start = geo.end - 4096;
        let big = wr(11, 64, MAX_RECORD_DATA / 512);
        let (wrap, at) = geo.place(start, big.log_len());
        assert!(wrap);
        assert_eq!(at, AREA_START);
        let w = RecordHeader {
            op: Op::Wrap,
            sector: 0,
            nr_sectors: 0,
            ..wr(10, 0, 1)
        };
        write_record(&mut log, start, &w, &[]);
        let mut data = KVec::new();
        data.resize(MAX_RECORD_DATA as usize, 0x3c, GFP_KERNEL)?;
        write_record(&mut log, AREA_START, &big, &data);
        let from = CpMarker {
            log_id: LOG_ID,
            generation: 3,
            seq: 10,
            offset: start,
        };
        let mut found = KVec::new();
        let end = scan_all(&log, &from, &mut found)?;
        assert_eq!(end.records, 2);
        assert_eq!(end.offset, AREA_START + big.log_len());
        assert_eq!(found.get(1).map(|f| f.offset), Some(AREA_START));
        assert_eq!(geo.distance(start, end.offset), 4096 + big.log_len());
        Ok(())
    }

    #[test]
    fn record_ending_exactly_at_area_end() -> Result {
        let mut log = new_log()?;
        let geo = Geometry::new(SIZE).ok_or(EINVAL)?;
        let h = wr(5, 0, 7); // 64 + 3584 = 3648 bytes
        let start = geo.end - h.log_len();
        assert_eq!(geo.place(start, h.log_len()), (false, start));
        write_record(&mut log, start, &h, &[9; 3584]);
        let next = wr(6, 0, 1);
        write_record(&mut log, AREA_START, &next, &[1; 512]);
        let from = CpMarker {
            log_id: LOG_ID,
            generation: 1,
            seq: 5,
            offset: start,
        };
        let mut found = KVec::new();
        let end = scan_all(&log, &from, &mut found)?;
        assert_eq!(end.records, 2);
        assert_eq!(end.offset, AREA_START + next.log_len());
        Ok(())
    }
}
