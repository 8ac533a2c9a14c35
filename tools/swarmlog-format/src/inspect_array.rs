// SPDX-License-Identifier: GPL-2.0

//! Offline inspection of an array device or image: its superblock (decoded
//! by the module's `ArraySuper`), the layout it describes, and which copy
//! of each table block the module would take (`TableBlock::pick`, against
//! the log's CP generation when it is known) and whether a CP cut short
//! left a pending copy (`TableBlock::pending`).

use crate::format::array::{ArraySuper, TableBlock, BLOCK_SIZE, ENTRIES_PER_BLOCK};
use crate::format::Invalid;
use crate::source::ReadAt;

/// Table blocks named one by one in [`Tables::damaged`] at most.
const MAX_NAMED: usize = 16;

/// One copy of a table block: its CP generation, or why it is invalid.
pub type Copy = Result<u64, String>;

/// Both copies of one table block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub index: u64,
    /// Array block of copy A; copy B is the next one.
    pub block: u64,
    pub copies: [Copy; 2],
    /// The copy the module takes (0 = A, 1 = B); `None`: both damaged.
    pub in_force: Option<usize>,
    /// The copy a CP cut short wrote (generation one past the CP's).
    pub pending: Option<usize>,
}

/// What the table blocks checked hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tables {
    pub checked: u64,
    /// Blocks whose copy A, copy B is in force.
    pub copy_a: u64,
    pub copy_b: u64,
    /// Blocks with a pending copy of the CP after the committed one.
    pub pending: u64,
    /// Blocks corrupt in both copies, and the first of them.
    pub damaged_count: u64,
    pub damaged: Vec<u64>,
    /// The first and last table blocks, copy by copy.
    pub detail: Vec<TableInfo>,
}

/// Everything `inspect_array` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayReport {
    pub device_size: u64,
    pub uuid: [u8; 16],
    pub block_size: u64,
    pub data_blocks: u64,
    pub table_blocks: u64,
    pub entries_per_table_block: u64,
    /// Array block of the first data block.
    pub data_start: u64,
    /// Blocks the layout uses, and whether the device holds them.
    pub array_blocks: u64,
    pub fits: bool,
    /// CP generation recorded in the superblock.
    pub cp_generation: u64,
    /// The CP generation the copies were judged against: the log's, or
    /// `None` (the newest valid copy wins).
    pub committed: Option<u64>,
    pub tables: Tables,
}

fn copy(t: &TableBlock<'_>, index: u64) -> Copy {
    match t.check(index) {
        Ok(()) => Ok(t.generation()),
        Err(Invalid::Magic) => Err("not a table block (no magic)".into()),
        Err(Invalid::Checksum) => Err("torn or corrupt (checksum mismatch)".into()),
        Err(Invalid::Field) => Err("the copy of another table block".into()),
        Err(e) => Err(format!("invalid ({e:?})")),
    }
}

/// Inspects the array on `src` (`size` bytes). `committed` is the log's CP
/// generation (`swarmctl inspect`), against which the copy in force is
/// chosen; `all_tables` reads every table block (two blocks of 4 KiB per
/// 254 data blocks), else only the first and the last.
pub fn inspect_array<R: ReadAt + ?Sized>(
    src: &R,
    size: u64,
    committed: Option<u64>,
    all_tables: bool,
) -> Result<ArrayReport, String> {
    let mut line = [0u8; 64];
    src.read_exact_at(&mut line, 0)
        .map_err(|e| format!("cannot read the superblock: {e}"))?;
    let sb = ArraySuper::decode(&line).map_err(|e| {
        let what = match e {
            Invalid::Magic => "nothing of swarmlog's on it (write 1 to format)",
            Invalid::Version => "an unknown format version",
            Invalid::Checksum => "a corrupt superblock (checksum mismatch)",
            _ => "an inconsistent superblock",
        };
        format!("array superblock: {what}; enable refuses it (EINVAL)")
    })?;
    let l = sb.layout;
    let block = BLOCK_SIZE as u64;
    let fits = l.array_blocks() <= size / block;
    let mut tables = Tables::default();
    let last = l.table_blocks - 1;
    let indices: Box<dyn Iterator<Item = u64>> = if all_tables {
        Box::new(0..l.table_blocks)
    } else {
        Box::new([0, last].into_iter().take(if last == 0 { 1 } else { 2 }))
    };
    let mut both = vec![0u8; 2 * BLOCK_SIZE];
    for index in indices {
        let at = l.table_block_location(index);
        if at + 2 > size / block {
            break;
        }
        src.read_exact_at(&mut both, at * block)
            .map_err(|e| format!("cannot read table block {index} (array block {at}): {e}"))?;
        let (a, b) = both.split_at_mut(BLOCK_SIZE);
        let (ta, tb) = (TableBlock(a), TableBlock(b));
        let c = committed.unwrap_or(u64::MAX);
        let info = TableInfo {
            index,
            block: at,
            copies: [copy(&ta, index), copy(&tb, index)],
            in_force: TableBlock::pick(&ta, &tb, index, c),
            pending: committed.and_then(|c| TableBlock::pending(&ta, &tb, index, c)),
        };
        tables.checked += 1;
        match info.in_force {
            Some(0) => tables.copy_a += 1,
            Some(_) => tables.copy_b += 1,
            None => {
                tables.damaged_count += 1;
                if tables.damaged.len() < MAX_NAMED {
                    tables.damaged.push(index);
                }
            }
        }
        tables.pending += u64::from(info.pending.is_some());
        if index == 0 || index == last {
            tables.detail.push(info);
        }
    }
    Ok(ArrayReport {
        device_size: size,
        uuid: sb.uuid,
        block_size: block,
        data_blocks: l.data_blocks,
        table_blocks: l.table_blocks,
        entries_per_table_block: ENTRIES_PER_BLOCK,
        data_start: l.data_start(),
        array_blocks: l.array_blocks(),
        fits,
        cp_generation: sb.cp_generation,
        committed,
        tables,
    })
}
