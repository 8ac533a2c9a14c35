// SPDX-License-Identifier: GPL-2.0

//! The read path: every block of a read from the cache, or from the array
//! verified against the block's checksum (a mismatch is an I/O error and a
//! counter, never wrong data), with cached sectors of a partly written
//! block laid over the array's.

use core::sync::atomic::Ordering::Relaxed;
use kernel::prelude::*;

use super::cache::SECTORS;
use super::{Array, Core, Request};
use crate::format::array::{Entry, BLOCK_SIZE};
use crate::sys::bytes;
use crate::sys::dax::Media;

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// The read path (on the workqueue): every block from the cache or the
    /// array.
    pub(super) fn read<R: Request>(&self, bio: &R) -> Result {
        let sector = bio.sector();
        let size = bio.size();
        self.check_range(sector, size)?;
        let mut buf = bytes::zeroed(BLOCK_SIZE, GFP_KERNEL)?;
        let mut pos = sector * 512;
        let mut loaded: Option<u64> = None;
        bio.for_each_chunk(|chunk| {
            let mut done = 0usize;
            while done < chunk.len() {
                let block = pos / BLOCK_SIZE as u64;
                let off = (pos % BLOCK_SIZE as u64) as usize;
                if loaded != Some(block) {
                    self.load_block(block, &mut buf)?;
                    loaded = Some(block);
                }
                let n = (BLOCK_SIZE - off).min(chunk.len() - done);
                let src = buf.get(off..off + n).ok_or(EINVAL)?;
                chunk.fill_from(done, src)?;
                done += n;
                pos += n as u64;
            }
            Ok(())
        })?;
        self.stats.reads.fetch_add(1, Relaxed);
        self.stats.read_bytes.fetch_add(u64::from(size), Relaxed);
        Ok(())
    }

    /// The newest contents of data block `block`, into `buf`. A block the
    /// cache holds in the log is read from the pmem under the state lock
    /// (its record's space is not reused while it is cached).
    pub(super) fn load_block(&self, block: u64, buf: &mut KVec<u8>) -> Result {
        let read = |at: u64, b: &mut [u8]| self.log.read(at, b);
        loop {
            let partial = {
                let st = self.state.lock();
                match st.cache.get(block) {
                    Some(b) if b.is_full() => return b.overlay(buf, &read),
                    Some(_) => true,
                    None => false,
                }
            };
            let array = self.read_array_block(block, buf);
            if array.is_ok() && !partial {
                return Ok(());
            }
            let st = self.state.lock();
            if let Err(e) = array {
                if e != EAGAIN {
                    return Err(e);
                }
                // A CP is writing the block: its committing version, which
                // the CP completed from the array before it changed the
                // block's entry, is what the array holds once it is done.
                // If the CP ended meanwhile, the array holds it now.
                let Some(c) = st.cache.committing(block) else {
                    continue;
                };
                c.overlay(buf, &read)?;
            }
            // Lay the cached sectors over the array's block; if the block
            // left the cache meanwhile (a CP wrote it), read it again.
            if let Some(b) = st.cache.get(block) {
                return b.overlay(buf, &read);
            }
        }
    }

    /// Data block `block` as the array holds it, verified against its
    /// checksum; zeroes if it was never written.
    pub(super) fn read_array_block(&self, block: u64, buf: &mut KVec<u8>) -> Result {
        self.read_array_block_as(block, buf, false)
    }

    /// As [`Self::read_array_block`]; with `in_replay` (replay's reads,
    /// `replaying.rs`), a block that does not match its entry in force is
    /// also taken if it matches its entry in the pending table copy of a CP
    /// the crash cut short (which wrote that copy before any data block,
    /// `cp.rs`): that CP rewrote it. Counted in `replay_pending_verified`.
    /// Anything else is corruption, as outside replay.
    pub(super) fn read_array_block_as(
        &self,
        block: u64,
        buf: &mut KVec<u8>,
        in_replay: bool,
    ) -> Result {
        loop {
            let entry = self.entry(block)?;
            if !entry.is_written() {
                // If a CP cut short wrote it, with sectors of records after
                // the marker over zeroes: replay writes those again.
                buf.fill(0);
                return Ok(());
            }
            let sector = self.layout.data_block_location(block) * SECTORS;
            self.array.read(sector, buf)?;
            if entry.verifies(buf) {
                return Ok(());
            }
            // A CP may have rewritten the block between the two reads.
            if self.entry(block)? != entry {
                continue;
            }
            if in_replay && self.pending_entry(block)?.is_some_and(|p| matches(&p, buf)) {
                self.stats.replay_pending_verified.fetch_add(1, Relaxed);
                return Ok(());
            }
            // A CP changed the entry and its write has not landed yet (or
            // landed before the entry changed): the committing version,
            // complete, is the block's contents ([`Self::load_block`]).
            if self
                .state
                .lock()
                .cache
                .committing(block)
                .is_some_and(|c| c.is_full())
            {
                return Err(EAGAIN);
            }
            self.stats.checksum_errors.fetch_add(1, Relaxed);
            pr_err!(
                "{}: checksum mismatch in block {} (volume sectors {}-{}, array sector {}): not returned\n",
                self.name(),
                block,
                block * SECTORS,
                block * SECTORS + SECTORS - 1,
                sector
            );
            return Err(EIO);
        }
    }
}

/// Whether `data` is what `e` describes: its checksum, or zeroes for an
/// entry of a block not written (a CP that makes a block zeroes records it
/// so, and writes the zeroes).
fn matches(e: &Entry, data: &[u8]) -> bool {
    if e.is_written() {
        e.verifies(data)
    } else {
        data.iter().all(|&b| b == 0)
    }
}
