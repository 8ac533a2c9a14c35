// SPDX-License-Identifier: GPL-2.0

//! The on-array metadata format: the array superblock and the table that
//! holds a checksum and a write generation for every data block.
//!
//! Like [`super::log`], this is plain data and arithmetic: no I/O, no
//! `unsafe`. The layout is documented in `Documentation/swarmlog/format.rst`.
//!
//! The array is cut into blocks of [`BLOCK_SIZE`] bytes: block 0 is the
//! superblock, then come `table_blocks` table blocks, each stored twice (copy
//! A and copy B side by side), then the data blocks the volume exposes. A
//! table block holds [`ENTRIES_PER_BLOCK`] entries and a trailer that checks
//! the block itself and names the CP generation that wrote it. A CP writes
//! the copy that is not current, so a table block torn by a power cut leaves
//! the other copy, and the newest copy not newer than the CP marker in the
//! log is the one in force.

use super::checksum::{crc32c, SEED};
use super::{get_u32, get_u64, put, Invalid};

/// Block size of the volume, of the table and of the cache.
pub(crate) const BLOCK_SIZE: usize = 4096;
/// Bytes of one table entry.
pub(crate) const ENTRY_SIZE: usize = 16;
/// Bytes of a table block's trailer.
const TRAILER_SIZE: usize = 32;
/// Entries in one table block; the last 32 bytes are the trailer.
pub(crate) const ENTRIES_PER_BLOCK: u64 = ((BLOCK_SIZE - TRAILER_SIZE) / ENTRY_SIZE) as u64;
/// Most data blocks a volume may have: 2^48 blocks of 4 KiB (1 EiB). Every
/// block number and byte offset of such a layout fits a `u64` with room to
/// spare, so [`Layout`]'s arithmetic cannot overflow; a superblock claiming
/// more is refused.
pub(crate) const MAX_DATA_BLOCKS: u64 = 1 << 48;
/// Magic of the array superblock.
pub(crate) const ARRAY_MAGIC: [u8; 8] = *b"SWLGARRY";
/// Version of the array format.
pub(crate) const ARRAY_VERSION: u32 = 1;
/// Magic of a table block's trailer ("SWMT", little-endian).
pub(crate) const TABLE_MAGIC: u32 = 0x544d_5753;

/// Where everything lives on an array of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Data blocks the volume exposes.
    pub(crate) data_blocks: u64,
    /// Table blocks, from block 1.
    pub(crate) table_blocks: u64,
}

impl Layout {
    /// The largest layout that fits an array of `array_blocks` blocks, if
    /// it can hold at least one data block.
    pub(crate) fn for_array(array_blocks: u64) -> Option<Self> {
        // 1 + 2 ceil(d / E) + d <= n, so d <= (n - 1) * E / (E + 2) at
        // best; start there and step down while the table does not fit.
        let avail = array_blocks.checked_sub(1)?.min(2 * MAX_DATA_BLOCKS);
        let mut d = (u128::from(avail) * u128::from(ENTRIES_PER_BLOCK)
            / u128::from(ENTRIES_PER_BLOCK + 2)) as u64;
        while d > 0 && d + 2 * d.div_ceil(ENTRIES_PER_BLOCK) > avail {
            d -= 1;
        }
        if d == 0 {
            return None;
        }
        let d = d.min(MAX_DATA_BLOCKS);
        Some(Self {
            data_blocks: d,
            table_blocks: d.div_ceil(ENTRIES_PER_BLOCK),
        })
    }

    /// Array block of the first data block.
    pub(crate) fn data_start(&self) -> u64 {
        1 + 2 * self.table_blocks
    }

    /// Blocks of the array this layout uses.
    pub(crate) fn array_blocks(&self) -> u64 {
        self.data_start() + self.data_blocks
    }

    /// `(table block index, slot)` of data block `block`'s entry.
    pub(crate) fn entry_of(&self, block: u64) -> Option<(u64, usize)> {
        if block >= self.data_blocks {
            return None;
        }
        Some((
            block / ENTRIES_PER_BLOCK,
            (block % ENTRIES_PER_BLOCK) as usize,
        ))
    }

    /// Array block number of copy A of table block `index`; copy B is the
    /// next block.
    pub(crate) fn table_block_location(&self, index: u64) -> u64 {
        1 + 2 * index
    }

    /// Array block number of data block `block`.
    pub(crate) fn data_block_location(&self, block: u64) -> u64 {
        self.data_start() + block
    }

    /// The data blocks table block `index` describes.
    pub(crate) fn blocks_of_table_block(&self, index: u64) -> core::ops::Range<u64> {
        let start = index
            .saturating_mul(ENTRIES_PER_BLOCK)
            .min(self.data_blocks);
        start
            ..start
                .saturating_add(ENTRIES_PER_BLOCK)
                .min(self.data_blocks)
    }
}

/// The array superblock, in the first 64 bytes of array block 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArraySuper {
    /// UUID of this array's metadata; the log header names it.
    pub(crate) uuid: [u8; 16],
    /// The layout.
    pub(crate) layout: Layout,
    /// Generation of the last CP committed to the array.
    pub(crate) cp_generation: u64,
}

impl ArraySuper {
    /// Encodes the superblock line, checksum included.
    pub(crate) fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        put(&mut b, 0, &ARRAY_MAGIC);
        put(&mut b, 8, &ARRAY_VERSION.to_le_bytes());
        put(&mut b, 12, &(BLOCK_SIZE as u32).to_le_bytes());
        put(&mut b, 16, &self.uuid);
        put(&mut b, 32, &self.layout.data_blocks.to_le_bytes());
        put(&mut b, 40, &self.layout.table_blocks.to_le_bytes());
        put(&mut b, 48, &self.cp_generation.to_le_bytes());
        let crc = crc32c(SEED, b.get(..60).unwrap_or(&[]));
        put(&mut b, 60, &crc.to_le_bytes());
        b
    }

    /// Decodes and validates a superblock line.
    pub(crate) fn decode(b: &[u8; 64]) -> Result<Self, Invalid> {
        if b.get(..8) != Some(&ARRAY_MAGIC[..]) {
            return Err(Invalid::Magic);
        }
        if get_u32(b, 60) != crc32c(SEED, b.get(..60).unwrap_or(&[])) {
            return Err(Invalid::Checksum);
        }
        if get_u32(b, 8) != ARRAY_VERSION {
            return Err(Invalid::Version);
        }
        let mut uuid = [0u8; 16];
        put(&mut uuid, 0, b.get(16..32).unwrap_or(&[0; 16]));
        let layout = Layout {
            data_blocks: get_u64(b, 32),
            table_blocks: get_u64(b, 40),
        };
        if get_u32(b, 12) as usize != BLOCK_SIZE
            || layout.data_blocks == 0
            || layout.data_blocks > MAX_DATA_BLOCKS
            || layout.table_blocks != layout.data_blocks.div_ceil(ENTRIES_PER_BLOCK)
        {
            return Err(Invalid::Field);
        }
        Ok(Self {
            uuid,
            layout,
            cp_generation: get_u64(b, 48),
        })
    }
}

/// One table entry: what the array holds for one data block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Entry {
    /// Write generation: 0 if the block was never written since format (or
    /// was discarded) and reads as zeroes; else bumped at every CP that
    /// writes the block.
    pub(crate) generation: u64,
    /// CRC-32C of the block's contents on the array (when `generation` > 0).
    pub(crate) crc: u32,
}

impl Entry {
    /// Whether the block holds data on the array (else it reads as zeroes).
    pub(crate) fn is_written(&self) -> bool {
        self.generation != 0
    }

    /// The entry for `data` written at `generation`.
    pub(crate) fn for_data(data: &[u8], generation: u64) -> Self {
        Self {
            generation,
            crc: crc32c(SEED, data),
        }
    }

    /// Whether `data`, read from the array, is what this entry describes.
    pub(crate) fn verifies(&self, data: &[u8]) -> bool {
        !self.is_written() || crc32c(SEED, data) == self.crc
    }
}

/// Entry `slot` of the table block `data`.
pub(crate) fn read_entry(data: &[u8], slot: usize) -> Entry {
    let off = slot * ENTRY_SIZE;
    Entry {
        crc: get_u32(data, off),
        generation: get_u64(data, off + 8),
    }
}

/// A table block in memory: [`ENTRIES_PER_BLOCK`] entries and the trailer
/// `{magic u32, crc u32, index u64, generation u64, reserved u64}`.
pub(crate) struct TableBlock<'a>(pub(crate) &'a mut [u8]);

impl TableBlock<'_> {
    const TRAILER: usize = BLOCK_SIZE - TRAILER_SIZE;

    /// Reads entry `slot`.
    pub(crate) fn get(&self, slot: usize) -> Entry {
        read_entry(self.0, slot)
    }

    /// Writes entry `slot` (ignored if out of range).
    pub(crate) fn set(&mut self, slot: usize, e: &Entry) {
        if slot as u64 >= ENTRIES_PER_BLOCK {
            return;
        }
        let off = slot * ENTRY_SIZE;
        put(self.0, off, &e.crc.to_le_bytes());
        put(self.0, off + 4, &[0; 4]);
        put(self.0, off + 8, &e.generation.to_le_bytes());
    }

    fn crc(&self) -> u32 {
        let head = self.0.get(..Self::TRAILER + 4).unwrap_or(&[]);
        let tail = self.0.get(Self::TRAILER + 8..).unwrap_or(&[]);
        crc32c(crc32c(SEED, head), tail)
    }

    /// Seals the block as table block `index`, written by CP `generation`.
    pub(crate) fn seal(&mut self, index: u64, generation: u64) {
        put(self.0, Self::TRAILER, &TABLE_MAGIC.to_le_bytes());
        put(self.0, Self::TRAILER + 4, &[0; 4]);
        put(self.0, Self::TRAILER + 8, &index.to_le_bytes());
        put(self.0, Self::TRAILER + 16, &generation.to_le_bytes());
        let crc = self.crc();
        put(self.0, Self::TRAILER + 4, &crc.to_le_bytes());
    }

    /// The CP generation that wrote the block.
    pub(crate) fn generation(&self) -> u64 {
        get_u64(self.0, Self::TRAILER + 16)
    }

    /// Of the two copies of table block `index` as read from the array,
    /// the one in force when the last committed CP is `committed`: the
    /// valid one with the highest generation not above it. `None` if
    /// neither qualifies (`a` on equal generations). The copy that would
    /// win is checked first, so the usual case costs one checksum, not two
    /// (a LOAD's CPU time under emulation is mostly checksums).
    pub(crate) fn pick(
        a: &TableBlock<'_>,
        b: &TableBlock<'_>,
        index: u64,
        committed: u64,
    ) -> Option<usize> {
        let order = if b.generation() > a.generation() {
            [(1, b), (0, a)]
        } else {
            [(0, a), (1, b)]
        };
        order
            .into_iter()
            .find(|(_, t)| t.generation() <= committed && t.check(index).is_ok())
            .map(|(i, _)| i)
    }

    /// Which of the two copies `a` and `b` of table block `index` is the
    /// pending one of the CP after generation `committed`: intact and of
    /// generation `committed + 1`. A CP writes it before it writes any data
    /// block its entries describe, so after a crash in the middle of that
    /// CP a block it rewrote matches its entry there.
    pub(crate) fn pending(
        a: &TableBlock<'_>,
        b: &TableBlock<'_>,
        index: u64,
        committed: u64,
    ) -> Option<usize> {
        let next = committed.checked_add(1)?;
        [(0, a), (1, b)]
            .into_iter()
            .find(|(_, t)| t.generation() == next && t.check(index).is_ok())
            .map(|(i, _)| i)
    }

    /// Checks a block read from the array is table block `index`, intact.
    pub(crate) fn check(&self, index: u64) -> Result<(), Invalid> {
        if self.0.len() != BLOCK_SIZE || get_u32(self.0, Self::TRAILER) != TABLE_MAGIC {
            return Err(Invalid::Magic);
        }
        if get_u32(self.0, Self::TRAILER + 4) != self.crc() {
            return Err(Invalid::Checksum);
        }
        if get_u64(self.0, Self::TRAILER + 8) != index {
            return Err(Invalid::Field);
        }
        Ok(())
    }
}

#[cfg(CONFIG_RUST)]
#[kernel::prelude::kunit_tests(swarmlog_metadata)]
mod tests {
    use super::*;
    use kernel::prelude::*;

    #[test]
    fn layout_fits_and_is_tight() {
        for n in [2u64, 3, 256, 257, 258, 1000, 65536, 262_144, 1 << 40] {
            let Some(l) = Layout::for_array(n) else {
                assert!(n < 4);
                continue;
            };
            assert!(l.array_blocks() <= n);
            assert_eq!(l.table_blocks, l.data_blocks.div_ceil(ENTRIES_PER_BLOCK));
            // One more data block would not fit.
            let d = l.data_blocks + 1;
            assert!(1 + 2 * d.div_ceil(ENTRIES_PER_BLOCK) + d > n);
        }
        assert_eq!(Layout::for_array(1), None);
        assert_eq!(Layout::for_array(0), None);
        assert_eq!(Layout::for_array(3), None);
        assert_eq!(
            Layout::for_array(4),
            Some(Layout {
                data_blocks: 1,
                table_blocks: 1
            })
        );
    }

    #[test]
    fn a_layout_past_the_largest_is_refused() {
        // Valid checksums, sizes whose arithmetic (data_start, array_blocks,
        // byte offsets) would overflow: refused at decode.
        let with = |d: u64| ArraySuper {
            uuid: [3; 16],
            layout: Layout {
                data_blocks: d,
                table_blocks: d.div_ceil(ENTRIES_PER_BLOCK),
            },
            cp_generation: 1,
        };
        for d in [MAX_DATA_BLOCKS + 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            assert_eq!(ArraySuper::decode(&with(d).encode()), Err(Invalid::Field));
        }
        let largest = with(MAX_DATA_BLOCKS);
        assert_eq!(ArraySuper::decode(&largest.encode()), Ok(largest));
        let bytes = |l: &Layout| l.array_blocks().checked_mul(BLOCK_SIZE as u64);
        assert!(bytes(&largest.layout).is_some());
        // The largest array gets the largest layout, not an overflow.
        let l = Layout::for_array(u64::MAX);
        assert!(matches!(l, Some(l) if l.data_blocks == MAX_DATA_BLOCKS && bytes(&l).is_some()));
    }

    #[test]
    fn entry_arithmetic() {
        let l = Layout {
            data_blocks: 600,
            table_blocks: 3,
        };
        assert_eq!(l.entry_of(0), Some((0, 0)));
        assert_eq!(l.entry_of(253), Some((0, 253)));
        assert_eq!(l.entry_of(254), Some((1, 0)));
        assert_eq!(l.entry_of(599), Some((2, 91)));
        assert_eq!(l.entry_of(600), None);
        assert_eq!(l.data_start(), 7);
        assert_eq!(l.data_block_location(0), 7);
        assert_eq!(l.table_block_location(0), 1);
        assert_eq!(l.table_block_location(2), 5);
        assert_eq!(l.blocks_of_table_block(1), 254..508);
        assert_eq!(l.blocks_of_table_block(2), 508..600);
        assert_eq!(l.blocks_of_table_block(9), 600..600);
    }

    #[test]
    fn superblock_round_trip() {
        let s = ArraySuper {
            uuid: [3; 16],
            layout: Layout {
                data_blocks: 600,
                table_blocks: 3,
            },
            cp_generation: 17,
        };
        let line = s.encode();
        assert_eq!(ArraySuper::decode(&line), Ok(s));
        let mut bad = line;
        bad[33] ^= 4;
        assert!(ArraySuper::decode(&bad).is_err());
        let wrong = ArraySuper {
            layout: Layout {
                data_blocks: 600,
                table_blocks: 2,
            },
            ..s
        };
        assert_eq!(ArraySuper::decode(&wrong.encode()), Err(Invalid::Field));
    }

    #[test]
    fn table_block_checks_itself() -> Result {
        let mut buf = KVec::new();
        buf.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
        let mut t = TableBlock(&mut buf);
        let e = Entry::for_data(&[1u8; BLOCK_SIZE], 5);
        t.set(7, &e);
        t.set(ENTRIES_PER_BLOCK as usize, &e); // out of range: ignored
        t.seal(2, 40);
        assert_eq!(t.check(2), Ok(()));
        assert_eq!(t.generation(), 40);
        assert_eq!(t.check(3), Err(Invalid::Field));
        assert_eq!(t.get(7), e);
        assert_eq!(t.get(8), Entry::default());
        t.0[100] ^= 1;
        assert_eq!(t.check(2), Err(Invalid::Checksum));
        Ok(())
    }

    #[test]
    fn the_pending_copy_is_the_next_generation_intact() -> Result {
        let mut a = KVec::new();
        a.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
        let mut b = KVec::new();
        b.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
        TableBlock(&mut a).seal(4, 10);
        TableBlock(&mut b).seal(4, 11);
        let (ta, tb) = (TableBlock(&mut a), TableBlock(&mut b));
        // CP 11 began after CP 10 committed: its copy is pending.
        assert_eq!(TableBlock::pending(&ta, &tb, 4, 10), Some(1));
        // Committed, or further ahead, or another table block: none.
        assert_eq!(TableBlock::pending(&ta, &tb, 4, 11), None);
        assert_eq!(TableBlock::pending(&ta, &tb, 4, 9), Some(0));
        assert_eq!(TableBlock::pending(&ta, &tb, 4, 8), None);
        assert_eq!(TableBlock::pending(&ta, &tb, 5, 10), None);
        assert_eq!(TableBlock::pending(&ta, &tb, 4, u64::MAX), None);
        // A torn pending copy is none.
        b[9] ^= 1;
        let (ta, tb) = (TableBlock(&mut a), TableBlock(&mut b));
        assert_eq!(TableBlock::pending(&ta, &tb, 4, 10), None);
        Ok(())
    }

    #[test]
    fn newest_committed_copy_is_in_force() -> Result {
        let mut a = KVec::new();
        a.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
        let mut b = KVec::new();
        b.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
        TableBlock(&mut a).seal(4, 10);
        TableBlock(&mut b).seal(4, 11);
        let (ta, tb) = (TableBlock(&mut a), TableBlock(&mut b));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 11), Some(1));
        // CP 11 did not commit: its copy is not in force yet.
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 10), Some(0));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 9), None);
        assert_eq!(TableBlock::pick(&ta, &tb, 5, 11), None);
        // A torn newer copy leaves the older one.
        b[9] ^= 1;
        let (ta, tb) = (TableBlock(&mut a), TableBlock(&mut b));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 11), Some(0));
        // A torn older copy leaves the newer one; equal generations, `a`.
        b[9] ^= 1;
        a[9] ^= 1;
        let (ta, tb) = (TableBlock(&mut a), TableBlock(&mut b));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 11), Some(1));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 10), None);
        a[9] ^= 1;
        TableBlock(&mut b).seal(4, 10);
        let (ta, tb) = (TableBlock(&mut a), TableBlock(&mut b));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 10), Some(0));
        // A newer copy whose generation was torn upwards is passed over.
        let gen = TableBlock::TRAILER + 16 + 7;
        b[gen] = 0x7f;
        let (ta, tb) = (TableBlock(&mut a), TableBlock(&mut b));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, u64::MAX), Some(0));
        Ok(())
    }

    #[test]
    fn entry_verifies_data() {
        let data = [0x5au8; BLOCK_SIZE];
        let e = Entry::for_data(&data, 1);
        assert!(e.verifies(&data));
        let mut other = data;
        other[4095] = 0;
        assert!(!e.verifies(&other));
        assert!(Entry::default().verifies(&other));
    }
}
