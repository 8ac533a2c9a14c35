// SPDX-License-Identifier: GPL-2.0

//! Hostile metadata for a real volume: from the lines a formatted volume
//! has (its log header, both CP marker slots, its array superblock), lines
//! that the module must refuse at `enable`, each sealed with a valid
//! checksum and carrying the volume's own identity (array UUID, log id), so
//! that only the field checks behind the checksum stand between them and
//! the volume. `scenarios/crafted-metadata` writes each one to the VM's
//! log device (`/dev/pmem0`, or the log disk of a block log) or `/dev/md0`
//! and tries `enable`.
//!
//! Either medium: the log header's magic says which, and its geometry
//! where the CP slots are (lines 1 and 2 on pmem, units 1 and 2 on a block
//! device). A block log's header has fields a pmem one has not (its unit
//! and in-flight window), and a header of the right checksum may describe
//! another medium than the device's: those get cases of their own.

use crate::format::array::{ArraySuper, Layout, ENTRIES_PER_BLOCK, MAX_DATA_BLOCKS};
use crate::format::checksum::{crc32c, SEED};
use crate::format::log::{
    CpMarker, LogHeader, Medium, LINE, LOG_MAGIC, LOG_VERSION, MAX_SEQ, SLOT_LOG_VERSION,
};

/// Bytes of the log's start that [`hostile_lines`] needs for a block log:
/// the header's, both CP slots' and the CP intent's units for either
/// logical block size (a unit of 4096 puts the intent at 12288): 16 KiB.
/// A pmem log needs only its first 192 bytes (header and both slots; more
/// does no harm).
pub const BLOCK_LOG_HEAD: usize = 16 << 10;

/// Bytes of a pmem log's start that [`hostile_lines`] needs.
pub const PMEM_LOG_HEAD: usize = 3 * LINE as usize;

/// The device a crafted line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The log (pmem or a block device).
    Log,
    /// The array.
    Array,
}

/// One crafted line: where it goes, what `enable` must fail with, and
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crafted {
    /// The device.
    pub device: Device,
    /// Byte offset on the device: where the line begins (on a block log,
    /// the start of its unit).
    pub offset: u64,
    /// The line, checksum included.
    pub line: [u8; 64],
    /// `EINVAL`, `EUCLEAN` or `EMEDIUMTYPE`.
    pub errno: &'static str,
    /// What the line says that no swarmlog ever writes.
    pub what: String,
}

/// Seals a line as the format does: CRC-32C of bytes 0..60 at 60.
fn seal(mut line: [u8; 64]) -> [u8; 64] {
    let crc = crc32c(SEED, &line[..60]);
    line[60..].copy_from_slice(&crc.to_le_bytes());
    line
}

/// `line` with `value` (little-endian, `width` bytes) at `at`, resealed.
fn with(line: &[u8; 64], at: usize, value: u64, width: usize) -> [u8; 64] {
    let mut l = *line;
    l[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
    seal(l)
}

/// The 64-byte line at `at` of `b`; `Err` if `b` ends before it.
fn line_at(b: &[u8], at: u64) -> Result<[u8; 64], String> {
    usize::try_from(at)
        .ok()
        .and_then(|at| b.get(at..at.checked_add(64)?))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("{} bytes: too short (a line at {at} is needed)", b.len()))
}

/// What the log that begins with `log_head` is written on, in words
/// (`pmem`, `a block device of 512-byte units`); `Err` if its header is
/// not a valid swarmlog log header.
pub fn log_medium(log_head: &[u8]) -> Result<String, String> {
    let h = LogHeader::decode(&line_at(log_head, 0)?).map_err(|e| format!("log header: {e:?}"))?;
    Ok(match h.medium {
        Medium::Pmem => "pmem".into(),
        Medium::Block { unit } => format!("a block device of {unit}-byte units"),
    })
}

/// The hostile lines for the volume whose log begins with `log_head` and
/// whose array begins with `array_head` (the superblock line). On pmem
/// `log_head` must hold the header line and both CP slots (the first
/// [`PMEM_LOG_HEAD`] bytes); on a block log the header and both slot units
/// (the first [`BLOCK_LOG_HEAD`] bytes hold them for any unit). `Err` if
/// those are not a valid swarmlog volume's, or too short.
pub fn hostile_lines(log_head: &[u8], array_head: &[u8]) -> Result<Vec<Crafted>, String> {
    let header = line_at(log_head, 0)?;
    let h = LogHeader::decode(&header).map_err(|e| format!("log header: {e:?}"))?;
    let geo = h.geometry().ok_or("log header: no geometry")?;
    let slots = [
        line_at(log_head, geo.cp_slot(0))?,
        line_at(log_head, geo.cp_slot(1))?,
    ];
    let (slot, cp) =
        CpMarker::newest(&slots[0], &slots[1], h.log_id).ok_or("no valid CP marker")?;
    let sb_line = line_at(array_head, 0)?;
    let sb = ArraySuper::decode(&sb_line).map_err(|e| format!("superblock: {e:?}"))?;
    if sb.uuid != h.array_uuid {
        return Err("the log does not belong to the array".into());
    }
    let block = match h.medium {
        Medium::Pmem => None,
        Medium::Block { unit } => Some(unit),
    };
    let mut out = Vec::new();
    let mut add = |device, offset, line, errno, what: String| {
        out.push(Crafted {
            device,
            offset,
            line,
            errno,
            what,
        })
    };

    // The log header (EINVAL: "an inconsistent header" or "an unknown
    // format version"). Fields: version at 8 (u32), block size at 12 (u32),
    // log size at 40, area start at 48; on a block log its unit at 56 and
    // its window at 58 (u16 each, zero on pmem).
    let alone = match block {
        None => "log_size of the header page alone".to_string(),
        Some(_) => format!("log_size {} (the header units alone)", geo.start),
    };
    let mut fields: Vec<(usize, u64, usize, String)> = vec![
        (40, 0, 8, "log_size 0".into()),
        (40, u64::MAX, 8, "log_size 2^64-1".into()),
        (
            40,
            h.log_size.saturating_add(4096),
            8,
            "log_size past the device".into(),
        ),
        (40, geo.start, 8, alone),
        (12, 0, 4, "block_size 0".into()),
        (12, 3, 4, "block_size 3".into()),
        (12, 256, 4, "block_size 256".into()),
        (48, 0, 8, "area_start 0".into()),
        (
            48,
            geo.start + LINE,
            8,
            format!("area_start {}", geo.start + LINE),
        ),
        (
            8,
            u64::from(SLOT_LOG_VERSION + 1),
            4,
            format!("version {}", SLOT_LOG_VERSION + 1),
        ),
        (8, u64::from(u32::MAX), 4, "version 2^32-1".into()),
    ];
    if block.is_none() && h.slots != 0 {
        // A slotted pmem log (version 3): its slot count at 56 (u32).
        fields.extend([
            (56, 0, 4, "slots 0 in a version 3 header".into()),
            (8, u64::from(LOG_VERSION), 4, "version 2 with slots".into()),
            (56, u64::from(u32::MAX), 4, "slots 2^32-1".into()),
            (
                56,
                h.log_size / u64::from(h.block_size.max(1)),
                4,
                "slots filling the whole log".into(),
            ),
        ]);
    }
    if block.is_some() {
        // The window field as format writes it, in its units (it decoded,
        // so it is not 0).
        let w = u64::from(u16::from_le_bytes([header[58], header[59]]));
        let w_unit = geo.window.checked_div(w).ok_or("log header: window 0")?;
        let window = |n: u64, why: &str| format!("window {} KiB ({why})", (n * w_unit) >> 10);
        fields.extend([
            // Room for the records, but not for two windows of them.
            (
                40,
                geo.start + 2 * geo.window - geo.unit,
                8,
                "log_size one unit short of two windows of records".into(),
            ),
            (56, 0, 2, "unit 0".into()),
            (56, 256, 2, "unit 256 (below a sector)".into()),
            (56, 1000, 2, "unit 1000 (not a power of two)".into()),
            (56, 8192, 2, "unit 8192 (above 4096)".into()),
            (56, u64::from(u16::MAX), 2, "unit 65535".into()),
            (58, 0, 2, window(0, "none")),
            (58, w - 1, 2, window(w - 1, "a field unit short")),
            (58, w + 1, 2, window(w + 1, "a field unit over")),
            (
                58,
                u64::from(u16::MAX),
                2,
                window(u64::from(u16::MAX), "past the log"),
            ),
            // A pmem magic over a block header: its unit and window are
            // where a pmem header holds zeroes.
            (
                0,
                u64::from_le_bytes(LOG_MAGIC),
                8,
                "pmem magic with a unit and a window".into(),
            ),
        ]);
    }
    for (at, v, w, what) in fields {
        add(
            Device::Log,
            0,
            with(&header, at, v, w),
            "EINVAL",
            format!("log header {what}"),
        );
    }

    // A block log: a header as format writes it for another medium (pmem,
    // or a block device of another logical block size), which decodes but
    // is not the device's (EMEDIUMTYPE: "a log of the other medium"; open
    // compares the header's medium with the device's before anything
    // else).
    if let Some(unit) = block {
        let others = [512, 1024, 2048, 4096]
            .into_iter()
            .filter(|&u| u != unit)
            .map(|u| (Medium::Block { unit: u }, format!("for {u}-byte units")))
            .chain([(Medium::Pmem, "for pmem".to_string())]);
        for (medium, what) in others {
            let other = LogHeader { medium, ..h };
            // Only a header that decodes as written reaches the medium
            // check (a log too small for that medium's geometry would be
            // refused as inconsistent).
            let line = other.encode();
            if LogHeader::decode(&line) == Ok(other) {
                add(
                    Device::Log,
                    0,
                    line,
                    "EMEDIUMTYPE",
                    format!("log header {what} (the device's: {unit}-byte units)"),
                );
            }
        }
    }

    // A CP marker in the slot that is not current, one generation newer
    // (so it is the one in force), of this log, at an impossible place
    // (EUCLEAN: "the CP marker ... is impossible"). On a block log also
    // the intent's unit, and a line inside the area that is not a unit.
    let other = geo.cp_slot(1 - slot);
    let mut places = vec![
        (0, cp.seq, "offset 0 (the header)".to_string()),
        (
            geo.cp_slot(0),
            cp.seq,
            format!("offset {} (a CP slot)", geo.cp_slot(0)),
        ),
    ];
    if block.is_some() {
        places.push((
            geo.cp_intent(),
            cp.seq,
            format!("offset {} (the CP intent)", geo.cp_intent()),
        ));
    }
    // The unit below the records is the intent's when the unit is 4096.
    if !places.iter().any(|p| p.0 == geo.start - geo.unit) {
        places.push((
            geo.start - geo.unit,
            cp.seq,
            format!("offset {} (below the records)", geo.start - geo.unit),
        ));
    }
    places.push((
        geo.start + 1,
        cp.seq,
        format!("offset {} (not a line)", geo.start + 1),
    ));
    if block.is_some() {
        places.push((
            geo.start + LINE,
            cp.seq,
            format!("offset {} (a line, not a unit)", geo.start + LINE),
        ));
    }
    places.extend([
        (geo.end, cp.seq, format!("offset {} (the end)", geo.end)),
        (
            geo.end.saturating_add(geo.unit),
            cp.seq,
            "offset past the end".into(),
        ),
        (u64::MAX - 63, cp.seq, "offset 2^64-64".into()),
        (cp.offset, 0, "sequence number 0".into()),
        (cp.offset, MAX_SEQ + 1, "sequence number 2^62+1".into()),
        (cp.offset, u64::MAX, "sequence number 2^64-1".into()),
    ]);
    let generation = cp.generation.checked_add(1).ok_or("CP generation 2^64-1")?;
    for (offset, seq, what) in places {
        let m = CpMarker {
            log_id: h.log_id,
            generation,
            seq,
            offset,
        };
        add(
            Device::Log,
            other,
            m.encode(),
            "EUCLEAN",
            format!("CP marker {what}"),
        );
    }

    // The superblock (EINVAL: "an inconsistent header", "an unknown format
    // version", or "smaller than when it was formatted"). Fields: version
    // at 8 (u32), block size at 12 (u32), data blocks at 32, table blocks
    // at 40.
    let tables = |d: u64| d.div_ceil(ENTRIES_PER_BLOCK);
    let layout = |data_blocks: u64, table_blocks: u64| {
        ArraySuper {
            layout: Layout {
                data_blocks,
                table_blocks,
            },
            ..sb
        }
        .encode()
    };
    let d = sb.layout.data_blocks;
    for (l, what) in [
        (layout(0, 0), "data_blocks 0"),
        (layout(u64::MAX, tables(u64::MAX)), "data_blocks 2^64-1"),
        (
            layout(MAX_DATA_BLOCKS + 1, tables(MAX_DATA_BLOCKS + 1)),
            "data_blocks 2^48+1",
        ),
        (
            layout(MAX_DATA_BLOCKS, tables(MAX_DATA_BLOCKS)),
            "data_blocks 2^48 (past the array)",
        ),
        (layout(d, tables(d) + 1), "table_blocks one too many"),
        (layout(d, u64::MAX), "table_blocks 2^64-1"),
        (with(&sb_line, 8, 2, 4), "version 2"),
        (with(&sb_line, 12, 8192, 4), "block size 8192"),
    ] {
        add(Device::Array, 0, l, "EINVAL", format!("superblock {what}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::log::{Geometry, AREA_START, CP_SLOTS};
    use crate::image::{LogImage, RecordKind};
    use crate::inspect::{inspect_log, LogMedium};

    #[test]
    fn every_crafted_line_is_refused_by_the_format_code() {
        // A volume as format leaves it: a 64 MiB log, a 1 GiB array.
        let log_size = 64 << 20;
        let array_blocks = 1 << 18;
        let sb = ArraySuper {
            uuid: [7; 16],
            layout: Layout::for_array(array_blocks).unwrap(),
            cp_generation: 3,
        };
        let h = LogHeader {
            array_uuid: [7; 16],
            log_id: 99,
            log_size,
            block_size: 4096,
            medium: crate::format::log::Medium::Pmem,
            slots: 0,
        };
        let cp = CpMarker {
            log_id: 99,
            generation: 3,
            seq: 1000,
            offset: AREA_START + 640,
        };
        let mut log_head = vec![0u8; 192];
        log_head[..64].copy_from_slice(&h.encode());
        log_head[64..128].copy_from_slice(&cp.encode());
        let cases = hostile_lines(&log_head, &sb.encode()).unwrap();
        assert_eq!(cases.len(), 11 + 10 + 8);
        let geo = Geometry::new(log_size).unwrap();
        for c in &cases {
            let refused = match (c.device, c.offset) {
                (Device::Log, 0) => {
                    LogHeader::decode(&c.line).map_or(true, |x| x.log_size > log_size)
                }
                (Device::Log, slot) => {
                    // The crafted marker goes to the slot not in force
                    // and wins it; its check fails.
                    assert_eq!(slot, CP_SLOTS[1]);
                    let (s, m) =
                        CpMarker::newest(&log_head[64..128].try_into().unwrap(), &c.line, 99)
                            .unwrap();
                    s == 1 && m.check(&geo).is_err()
                }
                (Device::Array, _) => ArraySuper::decode(&c.line)
                    .map_or(true, |x| x.layout.array_blocks() > array_blocks),
            };
            assert!(refused, "accepted: {}", c.what);
            // Sealed: a refusal comes from the fields, not the checksum.
            assert_eq!(seal(c.line), c.line, "{}", c.what);
        }
        // A header from another array is not crafted upon.
        let other = ArraySuper {
            uuid: [8; 16],
            ..sb
        };
        assert!(hostile_lines(&log_head, &other.encode()).is_err());
    }

    /// Blocks of the test volumes' array: 1 GiB.
    const ARRAY_BLOCKS: u64 = 1 << 18;

    /// What `enable` returns for a volume whose log device (of medium
    /// `device`, as large as `log`) holds `log` and whose array of
    /// [`ARRAY_BLOCKS`] begins with the superblock line `sb`, through the
    /// format code the module calls, in its order (`open_on`: `Log::open`,
    /// the superblock and its bond to the log, `Log::cp_marker`,
    /// `Log::cp_intent`); `None` if it gets as far as the scan.
    fn enable_errno(log: &[u8], device: Medium, sb: &[u8; 64]) -> Option<&'static str> {
        let line = |at| line_at(log, at).unwrap();
        let Ok(h) = LogHeader::decode(&line(0)) else {
            return Some("EINVAL");
        };
        if h.medium != device {
            return Some("EMEDIUMTYPE");
        }
        let geo = match h.geometry() {
            Some(g) if h.log_size <= log.len() as u64 => g,
            _ => return Some("EINVAL"),
        };
        match ArraySuper::decode(sb) {
            Ok(s) if s.uuid == h.array_uuid && s.layout.array_blocks() <= ARRAY_BLOCKS => {}
            _ => return Some("EINVAL"),
        }
        let slots = (line(geo.cp_slot(0)), line(geo.cp_slot(1)));
        let Some((_, cp)) = CpMarker::newest(&slots.0, &slots.1, h.log_id) else {
            return Some("EUCLEAN");
        };
        if cp.check(&geo).is_err() {
            return Some("EUCLEAN");
        }
        if let Ok(i) = CpMarker::decode_intent(&line(geo.cp_intent())) {
            let pending = i.log_id == h.log_id && i.generation > cp.generation;
            if pending
                && (Some(i.generation) != cp.generation.checked_add(1)
                    || i.check(&geo).is_err()
                    || i.seq <= cp.seq)
            {
                return Some("EUCLEAN");
            }
        }
        None
    }

    /// A volume as the scenario's first boot leaves it: a 16 MiB log on
    /// `medium` with 8 writes in it past the format's CP marker (slot 0);
    /// with `cp_after`, a CP after them (its marker in slot 1) and 2 more
    /// records. The log image and the array's superblock line.
    fn volume(medium: Medium, cp_after: bool) -> (LogImage, [u8; 64]) {
        let size = 16 << 20;
        let mut log = match medium {
            Medium::Pmem => LogImage::pmem(size, 99),
            Medium::Block { unit } => LogImage::block(size, unit, 99),
        }
        .unwrap();
        for i in 1..=8 {
            log.append(RecordKind::Write, i * 8, 8, i as u8);
        }
        if cp_after {
            let (offset, seq) = log.head();
            log.checkpoint_at(offset, seq);
            log.append(RecordKind::Write, 0, 1, 0xa5);
            log.append(RecordKind::Discard, 64, 8, 0);
        }
        let h = LogHeader::decode(&line_at(log.bytes(), 0).unwrap()).unwrap();
        let sb = ArraySuper {
            uuid: h.array_uuid,
            layout: Layout::for_array(ARRAY_BLOCKS).unwrap(),
            cp_generation: 1,
        };
        (log, sb.encode())
    }

    #[test]
    fn every_crafted_line_is_refused_with_its_errno_on_either_medium() {
        let media = [
            Medium::Pmem,
            Medium::Block { unit: 512 },
            Medium::Block { unit: 4096 },
        ];
        for (medium, cp_after) in media.into_iter().flat_map(|m| [(m, false), (m, true)]) {
            let name = format!("{medium:?}, CP after the writes: {cp_after}");
            let (mut log, sb) = volume(medium, cp_after);
            let size = log.bytes().len() as u64;
            assert_eq!(enable_errno(log.bytes(), medium, &sb), None, "{name}");
            let cases = hostile_lines(&log.bytes()[..BLOCK_LOG_HEAD], &sb).unwrap();
            let count = |errno| cases.iter().filter(|c| c.errno == errno).count();
            match medium {
                Medium::Pmem => {
                    // The pmem cases need the first 192 bytes only.
                    let short = hostile_lines(&log.bytes()[..PMEM_LOG_HEAD], &sb);
                    assert_eq!(short.as_ref(), Ok(&cases), "{name}");
                    assert_eq!(
                        (count("EINVAL"), count("EUCLEAN"), count("EMEDIUMTYPE")),
                        (11 + 8, 10, 0),
                        "{name}"
                    );
                }
                Medium::Block { unit } => {
                    // Header: the pmem one's 11, 11 of the block fields,
                    // the 3 other units and pmem; markers: the pmem 10 and
                    // 2 of block places (the intent's unit is the one below
                    // the records when the unit is 4096); the superblock's
                    // 8.
                    let markers = if unit == 4096 { 11 } else { 12 };
                    assert_eq!(
                        (count("EINVAL"), count("EUCLEAN"), count("EMEDIUMTYPE")),
                        (11 + 11 + 8, markers, 4),
                        "{name}"
                    );
                    let mut places: Vec<_> = cases.iter().map(|c| (c.device, c.line)).collect();
                    places.sort_by_key(|p| p.1);
                    places.dedup();
                    assert_eq!(places.len(), cases.len(), "{name}: a case twice");
                }
            }
            let h = LogHeader::decode(&line_at(log.bytes(), 0).unwrap()).unwrap();
            let geo = h.geometry().unwrap();
            let not_in_force = geo.cp_slot(if cp_after { 0 } else { 1 });
            let device = match medium {
                Medium::Pmem => (LogMedium::Pmem, LINE),
                Medium::Block { unit } => (LogMedium::Block, u64::from(unit)),
            };
            for c in &cases {
                let what = format!("{name}: {}", c.what);
                // Sealed: a refusal comes from the fields, not the checksum.
                assert_eq!(seal(c.line), c.line, "{what}");
                let errno = match c.device {
                    Device::Array => {
                        let blocks = crate::check::check_array_super(&c.line);
                        assert!(blocks.map_or(true, |b| b > ARRAY_BLOCKS), "{what}");
                        enable_errno(log.bytes(), medium, &c.line)
                    }
                    Device::Log => {
                        // The header, or the CP slot not in force (where
                        // the crafted marker wins with its generation).
                        assert!(c.offset == 0 || c.offset == not_in_force, "{what}");
                        let at = c.offset as usize;
                        let orig = line_at(log.bytes(), c.offset).unwrap();
                        log.bytes_mut()[at..at + 64].copy_from_slice(&c.line);
                        let errno = enable_errno(log.bytes(), medium, &sb);
                        // The tools' reading of the same image agrees
                        // (they do not know the device's medium).
                        let report = inspect_log(log.bytes(), size, false);
                        match c.errno {
                            "EINVAL" => assert!(report.is_err(), "{what}"),
                            "EUCLEAN" => assert!(
                                report.unwrap().verdict.contains("refused (EUCLEAN)"),
                                "{what}"
                            ),
                            _ => assert!(
                                report.map_or(true, |r| (r.header.medium, r.header.unit) != device),
                                "{what}"
                            ),
                        }
                        if medium == Medium::Pmem {
                            assert!(crate::check::scan_log_image(log.bytes()).is_err(), "{what}");
                        }
                        log.bytes_mut()[at..at + 64].copy_from_slice(&orig);
                        errno
                    }
                };
                assert_eq!(errno, Some(c.errno), "{what}");
            }
            assert_eq!(enable_errno(log.bytes(), medium, &sb), None, "{name}");
        }
    }

    #[test]
    fn the_log_head_must_hold_the_slots_of_its_medium() {
        for unit in [512, 4096] {
            let (log, sb) = volume(Medium::Block { unit }, false);
            let head = |n: usize| hostile_lines(&log.bytes()[..n], &sb);
            // Slot 1 is the third unit: a head that ends before it has no
            // marker to craft upon.
            assert!(head(2 * unit as usize + 63).is_err(), "unit {unit}");
            assert!(head(2 * unit as usize + 64).is_ok(), "unit {unit}");
            assert!(head(BLOCK_LOG_HEAD).is_ok(), "unit {unit}");
            assert_eq!(
                log_medium(&log.bytes()[..64]).unwrap(),
                format!("a block device of {unit}-byte units")
            );
        }
        let (log, sb) = volume(Medium::Pmem, false);
        assert!(hostile_lines(&log.bytes()[..PMEM_LOG_HEAD - 1], &sb).is_err());
        assert_eq!(log_medium(log.bytes()).unwrap(), "pmem");
        assert!(log_medium(&[0; 64]).is_err());
    }
}
