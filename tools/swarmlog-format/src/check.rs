// SPDX-License-Identifier: GPL-2.0

//! The module's checks of a log image and an array superblock, run in
//! userspace over the bytes of a device or image file: what `enable` would
//! do with them (decode the log header, pick and check the CP marker, scan
//! to the valid end, probe for a valid record behind it; decode the
//! superblock and its layout), with every result checked for consistency.
//! The fuzz target (`tools/fuzz`) feeds it mutated images: a refusal is an
//! `Err`, an inconsistent acceptance a panic.

use crate::format::array::{ArraySuper, ENTRIES_PER_BLOCK, MAX_DATA_BLOCKS};
use crate::format::log::{
    scan, valid_record_after, CpMarker, LogHeader, Op, AREA_START, CP_SLOTS, LINE, MAX_SEQ,
};

/// What the module would find in a log image it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    /// Records past the CP marker, wrap records included.
    pub records: u64,
    /// Where the next record would go, and its sequence number.
    pub end: (u64, u64),
    /// Why the scan stopped there.
    pub stop: String,
    /// A valid record behind the end (the record at the end is corrupt).
    pub valid_after: Option<u64>,
}

fn line(image: &[u8], at: u64) -> Result<[u8; 64], String> {
    let at = usize::try_from(at).map_err(|e| e.to_string())?;
    image
        .get(at..at + 64)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("image of {} bytes: no line at {at}", image.len()))
}

/// Runs the module's open and scan path over `image`, the bytes of a log
/// device from its start. `Err` with the reason where the module refuses
/// it; panics if an accepted image gives an inconsistent result.
pub fn scan_log_image(image: &[u8]) -> Result<LogSummary, String> {
    let h = LogHeader::decode(&line(image, 0)?).map_err(|e| format!("log header: {e:?}"))?;
    let geo = h.geometry().ok_or("log header: no room for records")?;
    if h.log_size > image.len() as u64 {
        return Err(format!(
            "log header: log_size {} past the device",
            h.log_size
        ));
    }
    let (a, b) = (line(image, CP_SLOTS[0])?, line(image, CP_SLOTS[1])?);
    let (_, cp) = CpMarker::newest(&a, &b, h.log_id).ok_or("no valid CP marker")?;
    cp.check(&geo)
        .map_err(|e| format!("CP marker {cp:?}: {e:?}"))?;
    let mut seq = cp.seq;
    let end = scan(image, geo, h.log_id, &cp, |f| {
        assert!(f.offset >= AREA_START && f.offset < geo.end && f.offset % LINE == 0);
        assert!(f.header.op == Op::Wrap || f.offset + f.header.log_len() <= geo.end);
        assert_eq!(f.header.seq, seq);
        seq += 1;
        Ok::<(), ()>(())
    })
    .map_err(|()| "scan stopped".to_string())?;
    assert!(end.offset >= AREA_START && end.offset < geo.end && end.offset % LINE == 0);
    assert!(end.seq == seq && end.seq <= MAX_SEQ + end.records);
    let valid_after = valid_record_after(image, geo, h.log_id, &end);
    if let Some(o) = valid_after {
        assert!(o >= AREA_START && o < geo.end && o % LINE == 0);
    }
    Ok(LogSummary {
        records: end.records,
        end: (end.offset, end.seq),
        stop: format!("{:?}", end.stop),
        valid_after,
    })
}

/// The module's check of an array superblock line: `Ok` with the array
/// blocks its layout needs, `Err` with the reason it is refused; panics on
/// an inconsistent layout.
pub fn check_array_super(b: &[u8]) -> Result<u64, String> {
    let sb = ArraySuper::decode(&line(b, 0)?).map_err(|e| format!("superblock: {e:?}"))?;
    let l = sb.layout;
    assert!(l.data_blocks > 0 && l.data_blocks <= MAX_DATA_BLOCKS);
    assert_eq!(l.table_blocks, l.data_blocks.div_ceil(ENTRIES_PER_BLOCK));
    let last = l.data_blocks - 1;
    assert_eq!(l.entry_of(last).map(|(t, _)| t), Some(l.table_blocks - 1));
    assert!(l.data_block_location(last) < l.array_blocks());
    assert!(l.table_block_location(l.table_blocks - 1) + 1 < l.data_start());
    assert!(l.blocks_of_table_block(l.table_blocks - 1).end == l.data_blocks);
    Ok(l.array_blocks())
}

/// Recomputes a line's checksum (bytes 60..64: CRC-32C of the first 60),
/// as a writer that meant the change would: what a fuzzer mutates then
/// reaches the field checks behind the checksum.
pub fn reseal(line: &mut [u8]) {
    if let Some(head) = line.get(..60) {
        let crc = crate::format::checksum::crc32c(crate::format::checksum::SEED, head);
        if let Some(tail) = line.get_mut(60..64) {
            tail.copy_from_slice(&crc.to_le_bytes());
        }
    }
}

/// A log image as a power cut leaves one, for the fuzz target to mutate:
/// the smallest log the format allows, its CP marker (generation 3) in slot
/// 1, then 24 records past it (writes of 1 to 8 sectors, a discard, a
/// write-zeroes; their data zeroes) and nothing after them.
#[must_use]
pub fn sample_log_image() -> Vec<u8> {
    use crate::format::log::{line_align, Geometry, RecordHeader, MAX_RECORD_DATA};
    let size = AREA_START + 2 * (64 + u64::from(MAX_RECORD_DATA)) + 64 * LINE;
    let geo = Geometry::new(size).expect("the smallest log has a geometry");
    let mut image = vec![0u8; size as usize];
    let log_id = 0x5eed_f10c;
    let h = LogHeader {
        array_uuid: [7; 16],
        log_id,
        log_size: size,
        block_size: 4096,
        medium: crate::format::log::Medium::Pmem,
        slots: 0,
    };
    image[..64].copy_from_slice(&h.encode());
    let cp = CpMarker {
        log_id,
        generation: 3,
        seq: 100,
        offset: AREA_START + 8 * LINE,
    };
    let slot = CP_SLOTS[1] as usize;
    image[slot..slot + 64].copy_from_slice(&cp.encode());
    let mut off = cp.offset;
    for i in 0..24u64 {
        let op = match i % 11 {
            5 => Op::Discard,
            9 => Op::WriteZeroes,
            _ => Op::Write,
        };
        let r = RecordHeader {
            op,
            seq: cp.seq + i,
            log_id,
            sector: i * 13,
            nr_sectors: 1 + (i % 8) as u32,
        };
        let at = off as usize;
        image[at..at + 64].copy_from_slice(&r.encode().expect("a valid record"));
        off += line_align(r.log_len());
        assert!(off < geo.end);
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_scans_and_its_mutations_are_refused_or_consistent() {
        let image = sample_log_image();
        let s = scan_log_image(&image).unwrap();
        assert_eq!((s.records, s.end.1, s.valid_after), (24, 124, None));
        // The fuzz target's harness, seeded and without coverage: every
        // field of the header, both CP slots and the first records set to
        // edge values, resealed. scan_log_image panics on an inconsistent
        // acceptance.
        let mut refused = 0;
        for line in 0..40u64 {
            for at in (0..60).step_by(4) {
                for v in [0u32, 1, u32::MAX, 4096, 4095, 64] {
                    let mut m = image.clone();
                    let o = (line * LINE) as usize;
                    m[o + at..o + at + 4].copy_from_slice(&v.to_le_bytes());
                    reseal(&mut m[o..o + 64]);
                    refused += usize::from(scan_log_image(&m).is_err());
                }
            }
        }
        assert!(refused > 0);
        // A superblock of the format, then one with each field at 0.
        let sb = ArraySuper {
            uuid: [7; 16],
            layout: crate::format::array::Layout::for_array(1 << 20).unwrap(),
            cp_generation: 1,
        }
        .encode();
        assert!(check_array_super(&sb).unwrap() <= 1 << 20);
        for at in (8..60).step_by(4) {
            let mut m = sb;
            m[at..at + 4].fill(0);
            reseal(&mut m);
            let _ = check_array_super(&m);
        }
    }
}
