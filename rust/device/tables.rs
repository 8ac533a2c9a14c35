// SPDX-License-Identifier: GPL-2.0

//! The table-block cache: the table blocks (per-block checksums and write
//! generations) read from the array or changed by a CP, by index.
//!
//! A table block is read with both its copies and the copy in force is
//! kept ([`Core::table_from`]). A CP sets entries in cached table blocks
//! (they become dirty), writes them to their copy not in force and then
//! marks them clean with the other copy in force ([`Tables::committed`]).
//! Clean ones stay cached up to a quarter of the volume's cache budget
//! (`Limits`); beyond that a CP drops clean ones ([`Tables::trim`]), which are read again when needed, so
//! the memory they take does not grow with the array or the log.

use kernel::{prelude::*, rbtree::RBTree};

use super::cache::SECTORS;
use super::{Array, Core};
use crate::format::array::{read_entry, Entry, TableBlock, BLOCK_SIZE};
use crate::sys::bytes;
use crate::sys::dax::Media;

/// A cached table block: the copy in force on the array and whether the
/// cached one has changes the array does not have yet.
pub(crate) struct Table {
    data: KVec<u8>,
    current: usize,
    dirty: bool,
}

/// The cached table blocks, by index.
pub(super) struct Tables(RBTree<u64, Table>);

impl Tables {
    pub(super) fn new() -> Self {
        Self(RBTree::new())
    }

    /// How many are cached.
    pub(super) fn count(&self) -> usize {
        self.0.iter().count()
    }

    /// Whether table block `index` is cached.
    pub(super) fn contains(&self, index: u64) -> bool {
        self.0.get(&index).is_some()
    }

    /// Entry `slot` of table block `index`, if it is cached.
    pub(super) fn entry(&self, index: u64, slot: usize) -> Option<Entry> {
        self.0.get(&index).map(|t| read_entry(&t.data, slot))
    }

    /// Keeps `table` as table block `index` unless one is cached already
    /// (which is then in force: `false`).
    pub(super) fn insert(&mut self, index: u64, table: Table) -> Result<bool> {
        if self.contains(index) {
            return Ok(false);
        }
        self.0.try_create_and_insert(index, table, GFP_KERNEL)?;
        Ok(true)
    }

    /// Sets entry `slot` of the cached table block `index` (`EIO` if it is
    /// not cached); it is dirty until [`Self::committed`].
    pub(super) fn set(&mut self, index: u64, slot: usize, e: &Entry) -> Result {
        let t = self.0.get_mut(&index).ok_or(EIO)?;
        TableBlock(&mut t.data).set(slot, e);
        t.dirty = true;
        Ok(())
    }

    /// The first dirty table block from index `from` on: its index, the
    /// copy it is to be written to, and its data appended to `buf`.
    pub(super) fn next_dirty(
        &mut self,
        from: u64,
        buf: &mut KVec<u8>,
    ) -> Result<Option<(u64, u64)>> {
        let mut cur = self.0.cursor_lower_bound_mut(&from);
        while let Some(c) = cur {
            let (k, t) = c.current();
            if t.dirty {
                bytes::extend(buf, &t.data, GFP_KERNEL)?;
                return Ok(Some((*k, 1 - t.current.min(1) as u64)));
            }
            cur = c.move_next();
        }
        Ok(None)
    }

    /// After a CP wrote every dirty table block to its other copy: they are
    /// clean, with that copy in force. Then trims the cache to `budget`.
    pub(super) fn committed(&mut self, budget: usize) {
        let mut cur = self.0.cursor_front_mut();
        while let Some(mut c) = cur {
            let t = c.current_mut().1;
            if t.dirty {
                t.dirty = false;
                t.current = 1 - t.current.min(1);
            }
            cur = c.move_next();
        }
        self.trim(budget);
    }

    /// Past `budget` table blocks, drops clean ones down to half of it.
    /// Only a CP may (it holds `cp_lock`): a running CP needs the table
    /// blocks it changes to stay cached.
    pub(super) fn trim(&mut self, budget: usize) {
        if self.count() > budget {
            self.evict_clean(budget / 2);
        }
    }

    /// Drops clean table blocks, lowest index first, until at most `keep`
    /// are cached or only dirty ones are left; returns how many it dropped.
    fn evict_clean(&mut self, keep: usize) -> usize {
        let mut n = self.count();
        let mut dropped = 0;
        let mut cur = self.0.cursor_front_mut();
        while let Some(c) = cur {
            if n <= keep {
                break;
            }
            if c.current().1.dirty {
                cur = c.move_next();
                continue;
            }
            let (next, _node) = c.remove_current();
            n -= 1;
            dropped += 1;
            cur = next;
        }
        dropped
    }
}

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// The table entry of data block `block`, reading its table block if it
    /// is not cached.
    pub(super) fn entry(&self, block: u64) -> Result<Entry> {
        let (index, slot) = self.layout.entry_of(block).ok_or(EIO)?;
        if let Some(e) = self.state.lock().tables.entry(index, slot) {
            return Ok(e);
        }
        let table = self.load_table(index)?;
        let entry = read_entry(&table.data, slot);
        if self.state.lock().tables.insert(index, table)? {
            Ok(entry)
        } else {
            self.entry(block)
        }
    }

    /// Makes sure the table blocks of data blocks `blocks` are cached.
    pub(super) fn cache_tables(&self, blocks: core::ops::Range<u64>) -> Result {
        let mut cached = None;
        for b in blocks {
            let (index, _) = self.layout.entry_of(b).ok_or(EIO)?;
            if cached != Some(index) {
                self.entry(b)?;
                cached = Some(index);
            }
        }
        Ok(())
    }

    /// The first sector of table block `index`'s two copies on the array
    /// (`2 * BLOCK_SIZE` bytes).
    fn table_sector(&self, index: u64) -> u64 {
        self.layout.table_block_location(index) * SECTORS
    }

    /// Reads both copies of table block `index` and keeps the one in force.
    fn load_table(&self, index: u64) -> Result<Table> {
        let mut both = bytes::zeroed(2 * BLOCK_SIZE, GFP_KERNEL)?;
        self.array.read(self.table_sector(index), &mut both)?;
        self.table_from(index, &mut both)
    }

    /// The entry of data block `block` in the pending copy of its table
    /// block, the one a CP after the last committed one wrote before it
    /// wrote any data block (`cp.rs`), read from the array; `None` if there
    /// is no such copy.
    pub(super) fn pending_entry(&self, block: u64) -> Result<Option<Entry>> {
        let (index, slot) = self.layout.entry_of(block).ok_or(EIO)?;
        let mut both = bytes::zeroed(2 * BLOCK_SIZE, GFP_KERNEL)?;
        self.array.read(self.table_sector(index), &mut both)?;
        let committed = self.state.lock().cp_gen;
        let (a, b) = both.split_at_mut(BLOCK_SIZE);
        let (ta, tb) = (TableBlock(a), TableBlock(b));
        Ok(match TableBlock::pending(&ta, &tb, index, committed) {
            Some(0) => Some(ta.get(slot)),
            Some(_) => Some(tb.get(slot)),
            None => None,
        })
    }

    /// The copy in force of table block `index`, of its two copies `both`
    /// as read from the array; `EIO` if both are corrupt.
    fn table_from(&self, index: u64, both: &mut [u8]) -> Result<Table> {
        if both.len() != 2 * BLOCK_SIZE {
            return Err(EINVAL);
        }
        let committed = self.state.lock().cp_gen;
        let (a, b) = both.split_at_mut(BLOCK_SIZE);
        let (ta, tb) = (TableBlock(a), TableBlock(b));
        let Some(current) = TableBlock::pick(&ta, &tb, index, committed) else {
            pr_err!(
                "{}: metadata table block {} is corrupt in both copies (array blocks {} and {})\n",
                self.name(),
                index,
                self.layout.table_block_location(index),
                self.layout.table_block_location(index) + 1
            );
            return Err(EIO);
        };
        let mut data = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
        bytes::extend(&mut data, if current == 0 { a } else { b }, GFP_KERNEL)?;
        Ok(Table {
            data,
            current,
            dirty: false,
        })
    }
}

#[kernel::prelude::kunit_tests(swarmlog_tables)]
mod tests {
    use super::*;

    fn tables(dirty: &[bool]) -> Result<Tables> {
        let mut t = Tables::new();
        for (i, &d) in dirty.iter().enumerate() {
            let mut data = KVec::new();
            data.resize(BLOCK_SIZE, i as u8, GFP_KERNEL)?;
            let table = Table {
                data,
                current: 0,
                dirty: d,
            };
            assert!(t.insert(i as u64, table)?);
        }
        Ok(t)
    }

    #[test]
    fn eviction_drops_clean_tables_down_to_the_budget() -> Result {
        let mut t = tables(&[false, true, false, false, true, false, false, false])?;
        assert_eq!(t.evict_clean(4), 4);
        assert_eq!(t.count(), 4);
        // Both dirty ones are kept, and the clean ones kept are the highest.
        for k in [1u64, 4, 6, 7] {
            assert!(t.contains(k));
        }
        assert!(t
            .0
            .get(&1)
            .is_some_and(|x| x.dirty && x.data.first() == Some(&1)));
        Ok(())
    }

    #[test]
    fn eviction_never_drops_a_dirty_table() -> Result {
        let mut t = tables(&[true, false, true, true])?;
        assert_eq!(t.evict_clean(0), 1);
        assert_eq!(t.count(), 3);
        assert!(t.0.iter().all(|(_, x)| x.dirty));
        // Under the budget: nothing to do.
        assert_eq!(t.evict_clean(8), 0);
        Ok(())
    }

    #[test]
    fn commit_flips_the_copy_in_force_of_dirty_tables_only() -> Result {
        let mut t = tables(&[true, false])?;
        let mut buf = KVec::new();
        assert_eq!(t.next_dirty(0, &mut buf)?, Some((0, 1)));
        assert_eq!(buf.len(), BLOCK_SIZE);
        assert_eq!(t.next_dirty(1, &mut buf)?, None);
        t.committed(8);
        assert!(t.0.iter().all(|(_, x)| !x.dirty));
        assert!(t.0.get(&0).is_some_and(|x| x.current == 1));
        assert!(t.0.get(&1).is_some_and(|x| x.current == 0));
        // Cached is not inserted again; the cached one stays in force.
        let again = Table {
            data: KVec::new(),
            current: 0,
            dirty: false,
        };
        assert!(!t.insert(0, again)?);
        Ok(())
    }
}
