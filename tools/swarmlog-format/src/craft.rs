// SPDX-License-Identifier: GPL-2.0

//! Hostile metadata for a real volume: from the lines a formatted volume
//! has (its log header, both CP marker slots, its array superblock), lines
//! that the module must refuse at `enable`, each sealed with a valid
//! checksum and carrying the volume's own identity (array UUID, log id), so
//! that only the field checks behind the checksum stand between them and
//! the volume. `scenarios/crafted-metadata` writes each one to the VM's
//! `/dev/pmem0` or `/dev/md0` and tries `enable`.

use crate::format::array::{ArraySuper, Layout, ENTRIES_PER_BLOCK, MAX_DATA_BLOCKS};
use crate::format::checksum::{crc32c, SEED};
use crate::format::log::{CpMarker, LogHeader, AREA_START, CP_SLOTS, LINE, MAX_SEQ};

/// The device a crafted line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The log (pmem).
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
    /// Byte offset on the device.
    pub offset: u64,
    /// The line, checksum included.
    pub line: [u8; 64],
    /// `EINVAL` or `EUCLEAN`.
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

/// The hostile lines for the volume whose log begins with `log_head` (the
/// header line and both CP slots: 192 bytes) and whose array begins with
/// `array_head` (the superblock line). `Err` if those are not a valid
/// swarmlog volume's.
pub fn hostile_lines(log_head: &[u8], array_head: &[u8]) -> Result<Vec<Crafted>, String> {
    let line = |b: &[u8], at: u64| -> Result<[u8; 64], String> {
        let at = at as usize;
        b.get(at..at + 64)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| format!("{} bytes: too short", b.len()))
    };
    let header = line(log_head, 0)?;
    let h = LogHeader::decode(&header).map_err(|e| format!("log header: {e:?}"))?;
    let geo = h.geometry().ok_or("log header: no geometry")?;
    let slots = [line(log_head, CP_SLOTS[0])?, line(log_head, CP_SLOTS[1])?];
    let (slot, cp) =
        CpMarker::newest(&slots[0], &slots[1], h.log_id).ok_or("no valid CP marker")?;
    let sb_line = line(array_head, 0)?;
    let sb = ArraySuper::decode(&sb_line).map_err(|e| format!("superblock: {e:?}"))?;
    if sb.uuid != h.array_uuid {
        return Err("the log does not belong to the array".into());
    }
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
    // log size at 40, area start at 48.
    for (at, v, w, what) in [
        (40, 0, 8, "log_size 0"),
        (40, u64::MAX, 8, "log_size 2^64-1"),
        (40, h.log_size + 4096, 8, "log_size past the device"),
        (40, AREA_START, 8, "log_size of the header page alone"),
        (12, 0, 4, "block_size 0"),
        (12, 3, 4, "block_size 3"),
        (12, 256, 4, "block_size 256"),
        (48, 0, 8, "area_start 0"),
        (48, AREA_START + LINE, 8, "area_start 4160"),
        (8, 3, 4, "version 3"),
        (8, u64::from(u32::MAX), 4, "version 2^32-1"),
    ] {
        add(
            Device::Log,
            0,
            with(&header, at, v, w),
            "EINVAL",
            format!("log header {what}"),
        );
    }

    // A CP marker in the slot that is not current, one generation newer
    // (so it is the one in force), of this log, at an impossible place
    // (EUCLEAN: "the CP marker ... is impossible").
    let other = CP_SLOTS[1 - slot];
    for (offset, seq, what) in [
        (0, cp.seq, "offset 0 (the header)".to_string()),
        (CP_SLOTS[0], cp.seq, "offset 64 (a CP slot)".into()),
        (
            AREA_START - LINE,
            cp.seq,
            "offset 4032 (below the records)".into(),
        ),
        (AREA_START + 1, cp.seq, "offset 4097 (not a line)".into()),
        (geo.end, cp.seq, format!("offset {} (the end)", geo.end)),
        (geo.end + LINE, cp.seq, "offset past the end".into()),
        (u64::MAX - 63, cp.seq, "offset 2^64-64".into()),
        (cp.offset, 0, "sequence number 0".into()),
        (cp.offset, MAX_SEQ + 1, "sequence number 2^62+1".into()),
        (cp.offset, u64::MAX, "sequence number 2^64-1".into()),
    ] {
        let m = CpMarker {
            log_id: h.log_id,
            generation: cp.generation + 1,
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
    use crate::format::log::Geometry;

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
}
