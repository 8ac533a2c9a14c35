// SPDX-License-Identifier: GPL-2.0

//! Log and array images built in memory with the format code, for the
//! tests of the tools that read them (`swarmctl inspect`): a log formatted
//! for either medium, records appended as the module lays them out (on
//! pmem the data then the header line; on a block device the header unit
//! with the data's sum, then the data padded to units; a wrap record where
//! a record does not fit before the area's end), CP markers and the CP
//! intent; an array with its superblock and sealed table copies.

use crate::format::array::{ArraySuper, Layout, TableBlock, BLOCK_SIZE};
use crate::format::log::{data_sum, CpMarker, Geometry, LogHeader, Medium, Op, RecordHeader};

/// What an appended record asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// `nr_sectors` sectors of data follow the header.
    Write,
    /// The range reads back as zeroes.
    Discard,
    WriteZeroes,
}

/// A log image being written.
#[derive(Debug, Clone)]
pub struct LogImage {
    bytes: Vec<u8>,
    geo: Geometry,
    log_id: u64,
    /// Where the next record goes and its sequence number.
    head: (u64, u64),
    /// The generation and slot of the newest CP marker.
    cp: (u64, usize),
}

impl LogImage {
    /// A pmem log of `size` bytes just formatted: header, CP marker of
    /// generation 1 in slot 0 at the area's start, no records.
    #[must_use]
    pub fn pmem(size: u64, log_id: u64) -> Option<Self> {
        Self::formatted(size, Medium::Pmem, log_id)
    }

    /// A block log of `size` bytes on a device of logical block size
    /// `unit`, just formatted.
    #[must_use]
    pub fn block(size: u64, unit: u32, log_id: u64) -> Option<Self> {
        Self::formatted(size, Medium::block(unit)?, log_id)
    }

    fn formatted(size: u64, medium: Medium, log_id: u64) -> Option<Self> {
        let h = LogHeader {
            array_uuid: [0x5a; 16],
            log_id,
            log_size: size,
            block_size: BLOCK_SIZE as u32,
            medium,
            slots: 0,
        };
        let geo = h.geometry()?;
        let mut img = Self {
            bytes: vec![0; usize::try_from(size).ok()?],
            geo,
            log_id,
            head: (geo.start, 1),
            cp: (0, 1),
        };
        img.put(0, &h.encode());
        img.checkpoint_at(geo.start, 1);
        Some(img)
    }

    fn put(&mut self, off: u64, b: &[u8]) {
        crate::format::put(&mut self.bytes, off as usize, b);
    }

    /// The record area `[start, end)` and its unit.
    #[must_use]
    pub fn area(&self) -> (u64, u64, u64) {
        (self.geo.start, self.geo.end, self.geo.unit)
    }

    /// Where the next record goes, and its sequence number.
    #[must_use]
    pub fn head(&self) -> (u64, u64) {
        self.head
    }

    /// The image's bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The image's bytes, to damage them.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// A CP that committed every record before `(offset, seq)`: its marker,
    /// one generation newer, in the other slot; the head moves there.
    pub fn checkpoint_at(&mut self, offset: u64, seq: u64) {
        let (generation, slot) = (self.cp.0 + 1, 1 - self.cp.1);
        let m = CpMarker {
            log_id: self.log_id,
            generation,
            seq,
            offset,
        };
        self.put(self.geo.cp_slot(slot), &m.encode());
        self.cp = (generation, slot);
        self.head = (offset, seq);
    }

    /// The intent of the CP after the current marker's, whose target is
    /// the head: a CP cut short before its marker.
    pub fn intent_at_head(&mut self) {
        let m = CpMarker {
            log_id: self.log_id,
            generation: self.cp.0 + 1,
            seq: self.head.1,
            offset: self.head.0,
        };
        self.put(self.geo.cp_intent(), &m.encode_intent());
    }

    /// Appends a record of this log (a write's data all bytes `fill`), a
    /// wrap record in front of it if it does not fit before the area's
    /// end; returns its offset.
    pub fn append(&mut self, kind: RecordKind, sector: u64, nr_sectors: u32, fill: u8) -> u64 {
        self.append_of(self.log_id, kind, (sector, nr_sectors), fill)
    }

    /// As [`Self::append`], for a record of log `log_id`: another log's, as
    /// an earlier format of the device left it.
    pub fn append_of(
        &mut self,
        log_id: u64,
        kind: RecordKind,
        (sector, nr_sectors): (u64, u32),
        fill: u8,
    ) -> u64 {
        let op = match kind {
            RecordKind::Write => Op::Write,
            RecordKind::Discard => Op::Discard,
            RecordKind::WriteZeroes => Op::WriteZeroes,
        };
        let (off, mut seq) = self.head;
        let rec = RecordHeader {
            op,
            seq,
            log_id,
            sector,
            nr_sectors,
        };
        let (wrap, at) = self.geo.place(off, self.geo.record_len(&rec));
        // The rest of the area unused: a wrap record there, then the
        // record at the area's start with the next sequence number.
        let wrap_rec = RecordHeader::wrap_for(seq, log_id);
        if wrap {
            self.write_record(off, &wrap_rec, &[]);
        }
        seq += u64::from(wrap);
        let rec = RecordHeader { seq, ..rec };
        let data = vec![fill; (u64::from(rec.data_len())) as usize];
        self.write_record(at, &rec, &data);
        let len = self.geo.record_len(&rec);
        self.head = (self.geo.advance(at, len), seq + 1);
        at
    }

    /// Writes record `h` with `data` at `off`: data first, header last.
    fn write_record(&mut self, off: u64, h: &RecordHeader, data: &[u8]) {
        let line = if self.geo.is_block() {
            h.encode_with_sum(data_sum(data))
        } else {
            h.encode()
        };
        self.put(off + self.geo.header_room(), data);
        self.put(off, &line.unwrap_or([0; 64]));
    }
}

/// An array of `array_blocks` blocks just formatted with UUID `uuid`: the
/// superblock, and copy A of every table block sealed at generation
/// `generation` (copy B empty).
#[must_use]
pub fn array_image(array_blocks: u64, uuid: [u8; 16], generation: u64) -> Option<Vec<u8>> {
    let layout = Layout::for_array(array_blocks)?;
    let sb = ArraySuper {
        uuid,
        layout,
        cp_generation: generation,
    };
    let mut img = vec![0u8; usize::try_from(array_blocks).ok()? * BLOCK_SIZE];
    crate::format::put(&mut img, 0, &sb.encode());
    for index in 0..layout.table_blocks {
        seal_table(&mut img, index, 0, generation);
    }
    Some(img)
}

/// Seals copy `copy` (0 = A, 1 = B) of table block `index` in the array
/// image `img` as written by CP `generation`.
pub fn seal_table(img: &mut [u8], index: u64, copy: u64, generation: u64) {
    let at = ((1 + 2 * index + copy.min(1)) as usize) * BLOCK_SIZE;
    if let Some(b) = img.get_mut(at..at + BLOCK_SIZE) {
        TableBlock(b).seal(index, generation);
    }
}

/// The wrap record a log writes where a record does not fit.
trait WrapFor {
    fn wrap_for(seq: u64, log_id: u64) -> Self;
}

impl WrapFor for RecordHeader {
    fn wrap_for(seq: u64, log_id: u64) -> Self {
        Self {
            op: Op::Wrap,
            seq,
            log_id,
            sector: 0,
            nr_sectors: 0,
        }
    }
}
