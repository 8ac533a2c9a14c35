// SPDX-License-Identifier: GPL-2.0

//! The device: a volume made of a pmem log and an array, its write and read
//! paths, and its activation (`enable`) and format.
//!
//! - Writes (and discards, write-zeroes) are appended to the log and applied
//!   to the cache under the state lock, and acknowledged once the record is
//!   durable: flush and FUA need nothing more.
//! - Reads go to the volume's workqueue, which serves each block from the
//!   cache or from the array, verified against the block's checksum.
//! - Consistency points are in [`crate::cp`].

use core::ffi::c_void;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    alloc::KVVec,
    new_condvar, new_mutex, new_work,
    prelude::*,
    rbtree::RBTree,
    str::{CStr, CString},
    sync::{Arc, ArcBorrow, CondVar, Mutex},
    workqueue::{Work, WorkItem},
};

use crate::bio::{Bio, Op as BioOp};
use crate::blockdev::BlockDevice;
use crate::bytes;
use crate::cache::{block_pieces, is_whole_block, Cache, Spare, SECTORS};
use crate::checksum::crc32c;
use crate::disk::Disk;
use crate::format::{Invalid, Op, MAX_RECORD_DATA};
use crate::log::{Log, Position};
use crate::metadata::{read_entry, ArraySuper, Entry, Layout, TableBlock, BLOCK_SIZE};
use crate::noio::NoIo;
use crate::pmem::DaxMapping;
use crate::replay::{self, Report, Stop};
use crate::wq::OwnedQueue;

/// Counters shown in `status`.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) writes: AtomicU64,
    pub(crate) write_bytes: AtomicU64,
    pub(crate) discards: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) read_bytes: AtomicU64,
    pub(crate) log_full_waits: AtomicU64,
    pub(crate) checksum_errors: AtomicU64,
    pub(crate) io_errors: AtomicU64,
    pub(crate) cp_count: AtomicU64,
    pub(crate) cp_blocks: AtomicU64,
    /// Time spent in CPs that committed something, in microseconds.
    pub(crate) cp_duration_us: AtomicU64,
    /// Time spent freeing those CPs' blocks after them, in microseconds.
    pub(crate) cp_free_us: AtomicU64,
    pub(crate) cp_errors: AtomicU64,
    pub(crate) replay_unverified: AtomicU64,
}

/// A cached table block: the copy in force on the array and whether the
/// cached one has changes the array does not have yet.
pub(crate) struct Table {
    pub(crate) data: KVec<u8>,
    pub(crate) current: usize,
    pub(crate) dirty: bool,
}

/// Everything the write path, the read path and CPs share.
pub(crate) struct State {
    /// Where the next record goes.
    pub(crate) head: Position,
    /// Where the uncommitted records begin (the current CP marker).
    pub(crate) tail: Position,
    /// Slot and generation of the current CP marker.
    pub(crate) cp_slot: usize,
    pub(crate) cp_gen: u64,
    /// The head when the running (or failed, to be retried) CP began.
    pub(crate) cp_target: Option<Position>,
    pub(crate) cache: Cache,
    pub(crate) tables: RBTree<u64, Table>,
    /// A CP is wanted now (log or cache full, or asked for).
    pub(crate) kick: bool,
    /// The volume is going away: the CP loop ends, writers fail.
    pub(crate) stop: bool,
}

/// The running volume.
#[pin_data]
pub(crate) struct Core {
    pub(crate) name: CString,
    pub(crate) log: Log<DaxMapping>,
    pub(crate) array: BlockDevice,
    pub(crate) layout: Layout,
    #[pin]
    pub(crate) state: Mutex<State>,
    /// Signalled when log space or cache room is freed, and when a CP is
    /// wanted or the volume stops.
    #[pin]
    pub(crate) changed: CondVar,
    /// Serialises CPs.
    #[pin]
    pub(crate) cp_lock: Mutex<()>,
    pub(crate) stats: Stats,
    #[pin]
    cp_work: Work<Core>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for Core { self.cp_work }
}

impl WorkItem for Core {
    type Pointer = Arc<Core>;

    fn run(this: Arc<Core>) {
        this.cp_loop();
    }
}

/// A read waiting for the workqueue.
#[pin_data]
struct ReadWork {
    core: Arc<Core>,
    #[pin]
    bio: Mutex<Option<Bio>>,
    #[pin]
    work: Work<ReadWork>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for ReadWork { self.work }
}

impl WorkItem for ReadWork {
    type Pointer = Arc<ReadWork>;

    fn run(this: Arc<ReadWork>) {
        let _noio = NoIo::new();
        let bio = this.bio.lock().take();
        if let Some(bio) = bio {
            let res = this.core.read(&bio);
            if res.is_err() {
                this.core.stats.io_errors.fetch_add(1, Relaxed);
            }
            bio.end(res);
        }
    }
}

impl Core {
    /// Sectors the volume exposes.
    pub(crate) fn sectors(&self) -> u64 {
        self.layout.data_blocks * SECTORS
    }

    fn check_range(&self, sector: u64, bytes: u32) -> Result<u32> {
        if bytes % 512 != 0 {
            return Err(EINVAL);
        }
        let nr = bytes / 512;
        match sector.checked_add(u64::from(nr)) {
            Some(end) if end <= self.sectors() => Ok(nr),
            _ => Err(EIO),
        }
    }

    /// Writes the `status` lines of a running volume.
    pub(crate) fn write_status(&self, w: &mut kernel::str::Formatter<'_>) -> Result {
        use kernel::fmt::Write as _;
        let (used, last_cp_seq, blocks, cp_gen, tables) = {
            let st = self.state.lock();
            (
                self.log.used(&st.head, &st.tail),
                st.tail.seq.saturating_sub(1),
                st.cache.blocks(),
                st.cp_gen,
                crate::cp::table_count(&st.tables),
            )
        };
        let s = &self.stats;
        w.write_fmt(fmt!("log_used_bytes {used}\n"))?;
        w.write_fmt(fmt!(
            "log_capacity_bytes {}\n",
            self.log.geometry().capacity()
        ))?;
        w.write_fmt(fmt!("cp_count {}\n", s.cp_count.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_generation {cp_gen}\n"))?;
        w.write_fmt(fmt!("last_cp_seq {last_cp_seq}\n"))?;
        w.write_fmt(fmt!("cp_blocks {}\n", s.cp_blocks.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_duration_us {}\n", s.cp_duration_us.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_free_us {}\n", s.cp_free_us.load(Relaxed)))?;
        w.write_fmt(fmt!("cp_errors {}\n", s.cp_errors.load(Relaxed)))?;
        w.write_fmt(fmt!("cache_blocks {blocks}\n"))?;
        w.write_fmt(fmt!("table_blocks {tables}\n"))?;
        w.write_fmt(fmt!("data_blocks {}\n", self.layout.data_blocks))?;
        w.write_fmt(fmt!(
            "data_offset_bytes {}\n",
            self.layout.data_start() * BLOCK_SIZE as u64
        ))?;
        w.write_fmt(fmt!("writes {}\n", s.writes.load(Relaxed)))?;
        w.write_fmt(fmt!("write_bytes {}\n", s.write_bytes.load(Relaxed)))?;
        w.write_fmt(fmt!("discards {}\n", s.discards.load(Relaxed)))?;
        w.write_fmt(fmt!("flushes {}\n", s.flushes.load(Relaxed)))?;
        w.write_fmt(fmt!("reads {}\n", s.reads.load(Relaxed)))?;
        w.write_fmt(fmt!("read_bytes {}\n", s.read_bytes.load(Relaxed)))?;
        w.write_fmt(fmt!("log_full_waits {}\n", s.log_full_waits.load(Relaxed)))?;
        w.write_fmt(fmt!(
            "checksum_errors {}\n",
            s.checksum_errors.load(Relaxed)
        ))?;
        w.write_fmt(fmt!("io_errors {}\n", s.io_errors.load(Relaxed)))?;
        Ok(())
    }

    /// The write path: log the request, apply it to the cache, done.
    fn write(&self, bio: &Bio, op: Op) -> Result {
        let sector = bio.sector();
        let size = bio.size();
        if size == 0 {
            // An empty flush: every acknowledged write is durable already.
            self.stats.flushes.fetch_add(1, Relaxed);
            return Ok(());
        }
        let nr = self.check_range(sector, size)?;
        let data_len = if op == Op::Write { size } else { 0 };
        if data_len > MAX_RECORD_DATA {
            return Err(EINVAL);
        }
        // Outside the state lock, so that writers checksum in parallel: a
        // copy of the data (the writer may change its buffer while the
        // write is in flight; cache, record and checksum all come from this
        // copy) and the CRC-32C of each block's piece of it, from which the
        // record's checksum is combined and a whole block's table entry is
        // made at the CP.
        // Each piece: its block, its range in `data`, whether it is the
        // whole block, and its CRC-32C (seed 0).
        let mut pieces = KVec::new();
        // A write of one whole block (most): its copy is a block buffer,
        // which becomes the cached block itself (`Cache::put_whole`), so
        // the state lock is not held for a new block and a second copy.
        let one_block =
            (op == Op::Write && is_whole_block(sector, u64::from(nr))).then_some(sector / SECTORS);
        let mut block = KVec::new();
        let mut data = KVVec::new();
        // Its tree node too, in case the block is not dirty yet: dropped
        // after the state lock if unused (declared before the guard).
        let mut spare = None;
        if let Some(b) = one_block {
            spare = Some(Spare::new(GFP_KERNEL)?);
            block.reserve(BLOCK_SIZE, GFP_KERNEL)?;
            bio.for_each_chunk(|chunk| bytes::extend(&mut block, chunk, GFP_KERNEL))?;
            let crc0 = crc32c(0, &block);
            pieces.push((b, 0..BLOCK_SIZE, true, crc0), GFP_KERNEL)?;
        } else if op == Op::Write {
            data.reserve(data_len as usize, GFP_KERNEL)?;
            bio.for_each_chunk(|chunk| {
                bytes::extend(&mut data, chunk, GFP_KERNEL)?;
                Ok(())
            })?;
            for (block, range, whole) in block_pieces(sector, u64::from(nr)) {
                let crc0 = crc32c(0, data.get(range.clone()).ok_or(EINVAL)?);
                pieces.push((block, range, whole, crc0), GFP_KERNEL)?;
            }
        }
        let mut st = self.state.lock();
        let mut waited = false;
        while !(self.log.fits(&st.head, &st.tail, data_len)
            && st.cache.blocks() < crate::max_cache_blocks())
        {
            if st.stop {
                return Err(EIO);
            }
            if !waited {
                waited = true;
                self.stats.log_full_waits.fetch_add(1, Relaxed);
            }
            // Wake the CP worker once; waking everyone at every wakeup had
            // the waiting writers wake each other without end, burning the
            // CPU the CP needs.
            if !st.kick {
                st.kick = true;
                self.changed.notify_all();
            }
            self.changed.wait(&mut st);
        }
        // The cache first: if it cannot take the data, nothing is logged.
        if let (Some(b), Some(&(.., crc0))) = (one_block, pieces.first()) {
            st.cache.put_whole(
                b,
                core::mem::take(&mut block),
                Some(crc0),
                &mut spare,
                GFP_KERNEL,
            )?;
        } else {
            let written = (op == Op::Write).then_some(data.as_slice());
            st.cache.apply(sector, u64::from(nr), written, GFP_KERNEL)?;
            for (block, _, whole, crc0) in pieces.iter() {
                if *whole {
                    st.cache.set_block_crc0(*block, *crc0);
                }
            }
        }
        let mut head = st.head;
        // The record's data: the cached block just put, or the copy.
        let src: &[u8] = match one_block {
            Some(b) => &st.cache.get(b).ok_or(EINVAL)?.data,
            None => &data,
        };
        self.log.append(&mut head, op, sector, nr, |sink| {
            for (_, range, _, crc0) in pieces.iter() {
                sink(src.get(range.clone()).ok_or(EINVAL)?, *crc0)?;
            }
            Ok(())
        })?;
        st.head = head;
        if self.log.used(&st.head, &st.tail) > self.log.geometry().capacity() / 2 {
            st.kick = true;
            self.changed.notify_all();
        }
        drop(st);
        if op == Op::Write {
            self.stats.writes.fetch_add(1, Relaxed);
            self.stats.write_bytes.fetch_add(u64::from(size), Relaxed);
        } else {
            self.stats.discards.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// The read path (on the workqueue): every block from the cache or the
    /// array.
    fn read(&self, bio: &Bio) -> Result {
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
                chunk
                    .get_mut(done..done + n)
                    .ok_or(EINVAL)?
                    .copy_from_slice(src);
                done += n;
                pos += n as u64;
            }
            Ok(())
        })?;
        self.stats.reads.fetch_add(1, Relaxed);
        self.stats.read_bytes.fetch_add(u64::from(size), Relaxed);
        Ok(())
    }

    /// The newest contents of data block `block`, into `buf`.
    pub(crate) fn load_block(&self, block: u64, buf: &mut KVec<u8>) -> Result {
        loop {
            let partial = {
                let st = self.state.lock();
                match st.cache.get(block) {
                    Some(b) if b.is_full() => {
                        buf.copy_from_slice(&b.data);
                        return Ok(());
                    }
                    Some(_) => true,
                    None => false,
                }
            };
            let read = self.read_array_block(block, buf);
            if read.is_ok() && !partial {
                return Ok(());
            }
            let st = self.state.lock();
            if let Err(e) = read {
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
                buf.copy_from_slice(&c.data);
            }
            // Lay the cached sectors over the array's block; if the block
            // left the cache meanwhile (a CP wrote it), read it again.
            if let Some(b) = st.cache.get(block) {
                for s in 0..SECTORS as usize {
                    if b.valid & (1 << s) != 0 {
                        let r = s * 512..(s + 1) * 512;
                        if let (Some(d), Some(c)) = (buf.get_mut(r.clone()), b.data.get(r)) {
                            d.copy_from_slice(c);
                        }
                    }
                }
                return Ok(());
            }
        }
    }

    /// Data block `block` as the array holds it, verified against its
    /// checksum; zeroes if it was never written.
    pub(crate) fn read_array_block(&self, block: u64, buf: &mut KVec<u8>) -> Result {
        self.read_array_block_as(block, buf, false)
    }

    /// As [`Self::read_array_block`]; with `in_replay`, a mismatch is taken
    /// as a CP cut short by the crash (which may have rewritten any block the
    /// log changes, in the sectors the log does not change, with the same
    /// bytes): counted in `replay_unverified` and returned.
    pub(crate) fn read_array_block_as(
        &self,
        block: u64,
        buf: &mut KVec<u8>,
        in_replay: bool,
    ) -> Result {
        loop {
            let entry = self.entry(block)?;
            if !entry.is_written() {
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
            if in_replay {
                self.stats.replay_unverified.fetch_add(1, Relaxed);
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
                self.name.to_str().unwrap_or("?"),
                block,
                block * SECTORS,
                block * SECTORS + SECTORS - 1,
                sector
            );
            return Err(EIO);
        }
    }

    /// The table entry of data block `block`, reading its table block if it
    /// is not cached.
    pub(crate) fn entry(&self, block: u64) -> Result<Entry> {
        let (index, slot) = self.layout.entry_of(block).ok_or(EIO)?;
        {
            let st = self.state.lock();
            if let Some(t) = st.tables.get(&index) {
                return Ok(read_entry(&t.data, slot));
            }
        }
        let table = self.load_table(index)?;
        let entry = read_entry(&table.data, slot);
        if self.cache_table(index, table)? {
            Ok(entry)
        } else {
            self.entry(block)
        }
    }

    /// Keeps `table`, table block `index` as read from the array, unless
    /// one is cached already (which is then in force: `false`).
    pub(crate) fn cache_table(&self, index: u64, table: Table) -> Result<bool> {
        let mut st = self.state.lock();
        if st.tables.get(&index).is_some() {
            return Ok(false);
        }
        st.tables.try_create_and_insert(index, table, GFP_KERNEL)?;
        Ok(true)
    }

    /// The first sector of table block `index`'s two copies on the array
    /// (`2 * BLOCK_SIZE` bytes).
    pub(crate) fn table_sector(&self, index: u64) -> u64 {
        self.layout.table_block_location(index) * SECTORS
    }

    /// Reads both copies of table block `index` and keeps the one in force.
    fn load_table(&self, index: u64) -> Result<Table> {
        let mut both = bytes::zeroed(2 * BLOCK_SIZE, GFP_KERNEL)?;
        self.array.read(self.table_sector(index), &mut both)?;
        self.table_from(index, &mut both)
    }

    /// The copy in force of table block `index`, of its two copies `both`
    /// as read from the array; `EIO` if both are corrupt.
    pub(crate) fn table_from(&self, index: u64, both: &mut [u8]) -> Result<Table> {
        if both.len() != 2 * BLOCK_SIZE {
            return Err(EINVAL);
        }
        let committed = self.state.lock().cp_gen;
        let (a, b) = both.split_at_mut(BLOCK_SIZE);
        let (ta, tb) = (TableBlock(a), TableBlock(b));
        let Some(current) = TableBlock::pick(&ta, &tb, index, committed) else {
            pr_err!(
                "{}: metadata table block {} is corrupt in both copies (array blocks {} and {})\n",
                self.name.to_str().unwrap_or("?"),
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

    /// Dispatches a bio sent to the disk.
    fn submit(this: ArcBorrow<'_, Core>, wq: &OwnedQueue, bio: Bio) {
        let _noio = NoIo::new();
        let res = match bio.op() {
            BioOp::Write => this.write(&bio, Op::Write),
            BioOp::Discard => this.write(&bio, Op::Discard),
            BioOp::WriteZeroes => this.write(&bio, Op::WriteZeroes),
            BioOp::Flush => {
                this.stats.flushes.fetch_add(1, Relaxed);
                Ok(())
            }
            BioOp::Read => {
                let work = Arc::pin_init(
                    pin_init!(ReadWork {
                        core: this.into(),
                        bio <- new_mutex!(Some(bio)),
                        work <- new_work!("swarmlog::read"),
                    }),
                    GFP_KERNEL,
                );
                // On failure the bio was dropped with the initializer, which
                // completes it with an error.
                if let Ok(work) = work {
                    let _ = wq.enqueue(work);
                }
                return;
            }
            BioOp::Other => Err(EOPNOTSUPP),
        };
        if res.is_err() {
            this.stats.io_errors.fetch_add(1, Relaxed);
        }
        bio.end(res);
    }

    /// The CP loop, on the workqueue: a CP when one is wanted or every
    /// `cp_interval_ms` (module parameter), until the volume stops.
    fn cp_loop(&self) {
        loop {
            {
                let mut st = self.state.lock();
                if !st.kick && !st.stop {
                    let _ = self.changed.wait_interruptible_timeout(
                        &mut st,
                        kernel::time::msecs_to_jiffies(crate::cp_interval_ms()),
                    );
                }
                if st.stop {
                    return;
                }
                st.kick = false;
            }
            if let Err(e) = self.checkpoint() {
                self.stats.cp_errors.fetch_add(1, Relaxed);
                pr_err!(
                    "{}: consistency point failed ({:?}); the log keeps the data, retrying\n",
                    self.name.to_str().unwrap_or("?"),
                    e
                );
                // Do not spin on a failing array.
                let mut st = self.state.lock();
                if !st.stop {
                    let _ = self
                        .changed
                        .wait_interruptible_timeout(&mut st, kernel::time::msecs_to_jiffies(1000));
                }
            }
        }
    }
}

/// What the disk's private data points to: the volume and its workqueue.
pub(crate) struct Frontend {
    wq: OwnedQueue,
    core: Arc<Core>,
}

impl Frontend {
    /// Entry of every bio (from [`crate::disk`]).
    pub(crate) fn submit(&self, bio: Bio) {
        Core::submit(self.core.as_arc_borrow(), &self.wq, bio);
    }
}

/// An enabled volume: its disk and what serves it.
pub(crate) struct Active {
    disk: Option<Disk>,
    front: KBox<Frontend>,
    pub(crate) disk_name: CString,
}

/// Why a device cannot be used, for the kernel log.
fn invalid_reason(i: Invalid) -> &'static str {
    match i {
        Invalid::Magic => "nothing of swarmlog's on it (write 1 to format)",
        Invalid::Version => "an unknown format version",
        Invalid::Checksum => "a corrupt header",
        Invalid::Field | Invalid::LogId | Invalid::Sequence => "an inconsistent header",
        Invalid::Range => "a read error",
    }
}

/// Opens the log (DAX) and the array devices for `holder`.
fn open_devices(
    log: &CStr,
    array: &CStr,
    holder: *mut c_void,
) -> Result<(DaxMapping, BlockDevice)> {
    let log_dev = BlockDevice::open(log, holder).inspect_err(|e| {
        pr_err!(
            "cannot open log device {}: {:?}\n",
            log.to_str().unwrap_or("?"),
            e
        )
    })?;
    let array_dev = BlockDevice::open(array, holder).inspect_err(|e| {
        pr_err!(
            "cannot open array device {}: {:?}\n",
            array.to_str().unwrap_or("?"),
            e
        )
    })?;
    if log_dev.as_raw() == array_dev.as_raw() {
        pr_err!("the log and the array are the same device\n");
        return Err(EINVAL);
    }
    if array_dev.logical_block_size() as usize > BLOCK_SIZE {
        pr_err!("array logical block size is above {BLOCK_SIZE}\n");
        return Err(EINVAL);
    }
    let media = DaxMapping::new(log_dev, holder).inspect_err(|_| {
        pr_err!(
            "{} is not DAX-capable pmem (or its DAX device is in use)\n",
            log.to_str().unwrap_or("?")
        )
    })?;
    Ok((media, array_dev))
}

/// Writes a fresh array metadata area and an empty log bound to it.
pub(crate) fn format(log: &CStr, array: &CStr, holder: *mut c_void) -> Result {
    let (media, array_dev) = open_devices(log, array, holder)?;
    let layout = Layout::for_array(array_dev.nr_sectors() / SECTORS).ok_or_else(|| {
        pr_err!("the array is too small\n");
        ENOSPC
    })?;
    if crate::format::Geometry::new(crate::pmem::Media::size(&media)).is_none() {
        pr_err!("the log device is too small (needs more than 2 MiB)\n");
        return Err(ENOSPC);
    }
    let mut uuid = [0u8; 16];
    // SAFETY: `uuid` is a valid buffer of 16 bytes.
    unsafe { kernel::bindings::get_random_bytes(uuid.as_mut_ptr().cast(), uuid.len()) };
    // SAFETY: no preconditions.
    let log_id = unsafe { kernel::bindings::get_random_u64() };

    // Both copies of every table block, empty, generation 0; 1 MiB a write.
    const RUN: u64 = 256;
    let mut buf = bytes::zeroed(RUN as usize * BLOCK_SIZE, GFP_KERNEL)?;
    let copies = 2 * layout.table_blocks;
    let mut done = 0u64;
    while done < copies {
        let n = RUN.min(copies - done);
        for (i, blk) in buf.chunks_mut(BLOCK_SIZE).enumerate().take(n as usize) {
            blk.fill(0);
            TableBlock(blk).seal((done + i as u64) / 2, 0);
        }
        buf.truncate(n as usize * BLOCK_SIZE);
        array_dev.write((1 + done) * SECTORS, &buf, false)?;
        bytes::resize_zeroed(&mut buf, RUN as usize * BLOCK_SIZE, GFP_KERNEL)?;
        done += n;
    }
    array_dev.flush()?;
    let sb = ArraySuper {
        uuid,
        layout,
        cp_generation: 0,
    };
    let mut block = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
    bytes::extend(&mut block, &sb.encode(), GFP_KERNEL)?;
    bytes::resize_zeroed(&mut block, BLOCK_SIZE, GFP_KERNEL)?;
    array_dev.write(0, &block, true)?;
    array_dev.flush()?;
    Log::format(media, uuid, log_id)?;
    pr_info!(
        "formatted {} ({} data blocks of {} bytes) with log {}\n",
        array.to_str().unwrap_or("?"),
        layout.data_blocks,
        BLOCK_SIZE,
        log.to_str().unwrap_or("?")
    );
    Ok(())
}

impl Active {
    /// Activates the volume `name`: checks that the log belongs to the
    /// array, replays the records past its CP as `params` say (filling
    /// `report`), and exposes the disk `disk_name`.
    pub(crate) fn new(
        name: &CStr,
        disk_name: CString,
        (log, array): (&CStr, &CStr),
        holder: *mut c_void,
        params: &replay::Params<'_>,
        report: &mut Report,
    ) -> Result<Self> {
        let (media, array_dev) = open_devices(log, array, holder)?;
        let log_dev = log.to_str().unwrap_or("?");
        let log = Log::open(media).map_err(|(why, _)| {
            pr_err!("log device {}: {}\n", log_dev, invalid_reason(why));
            EINVAL
        })?;
        let mut block = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
        bytes::resize_zeroed(&mut block, BLOCK_SIZE, GFP_KERNEL)?;
        array_dev.read(0, &mut block)?;
        let mut line = [0u8; 64];
        line.copy_from_slice(block.get(..64).ok_or(EINVAL)?);
        let sb = ArraySuper::decode(&line).map_err(|why| {
            pr_err!(
                "array device {}: {}\n",
                array.to_str().unwrap_or("?"),
                invalid_reason(why)
            );
            EINVAL
        })?;
        if sb.uuid != log.header().array_uuid {
            pr_err!(
                "the log on {} belongs to another array, not {}\n",
                log_dev,
                array.to_str().unwrap_or("?")
            );
            return Err(EINVAL);
        }
        if sb.layout.array_blocks() > array_dev.nr_sectors() / SECTORS {
            pr_err!("the array is smaller than when it was formatted\n");
            return Err(EINVAL);
        }
        let (cp_slot, cp) = log.cp_marker().inspect_err(|_| {
            pr_err!("log device {}: no valid CP marker\n", log_dev);
        })?;
        let tail = Position {
            offset: cp.offset,
            seq: cp.seq,
        };
        let core = Arc::pin_init(
            try_pin_init!(Core {
                name: CString::try_from(name)?,
                log,
                array: array_dev,
                layout: sb.layout,
                state <- new_mutex!(State {
                    head: tail,
                    tail,
                    cp_slot,
                    cp_gen: cp.generation,
                    cp_target: None,
                    cache: Cache::new(),
                    tables: RBTree::new(),
                    kick: false,
                    stop: false,
                }),
                changed <- new_condvar!(),
                cp_lock <- new_mutex!(()),
                stats: Stats::default(),
                cp_work <- new_work!("swarmlog::cp"),
            }),
            GFP_KERNEL,
        )?;
        let vname = name.to_str().unwrap_or("?");
        // Replay whatever the log holds past its CP (nothing after a clean
        // disable).
        {
            let r = core::cell::RefCell::new(Report::default());
            let res = replay::replay(&core, &cp, params, &r);
            if r.borrow().ran {
                *report = r.into_inner();
            }
            if let (Some(c), true) = (report.corrupt, report.corrupt_discarded) {
                pr_warn!(
                    "{vname}: as asked (discard_corrupt), dropping the corrupt record at log offset {} (seq {}) and every record after it\n",
                    c.offset,
                    c.seq
                );
            }
            match res {
                Ok(end) => {
                    let c = report.counters;
                    if report.ran {
                        pr_info!(
                            "{vname}: replayed {} records (seq {}-{}) as {} messages in {} swarms: {} loads, {} suspended, {} retransferred, {} skipped, {} us\n",
                            end.records,
                            cp.seq,
                            end.seq.saturating_sub(1),
                            c.messages,
                            c.swarms,
                            c.loads,
                            c.suspended,
                            c.retransferred,
                            c.skipped,
                            report.duration_us
                        );
                    }
                }
                Err(Stop::Panic(p)) => {
                    pr_emerg!(
                        "{vname}: replay PANIC: message seq {} ({}) is suspended, waiting for seq {}; replay stopped, the log is left as it is and the volume is not exposed\n",
                        p.seq,
                        if p.first_of_swarm { "first of its swarm" } else { "retransferred" },
                        p.waits_for
                    );
                    return Err(EIO);
                }
                Err(Stop::Corrupt(c)) => {
                    pr_err!(
                        "{vname}: log corrupt: the record at log offset {} (seq {}) fails its check, yet a valid record follows at offset {}: it was complete once. Nothing replayed past it, nothing written to the log; save the log device, then write 1 to discard_corrupt and enable to replay up to it and drop it and every record after it\n",
                        c.offset,
                        c.seq,
                        c.next_offset
                    );
                    return Err(EUCLEAN);
                }
                Err(Stop::Skipped) => {
                    pr_err!(
                        "{vname}: replay skipped {} records (seq {}-{}) whose part of the array is unavailable; they are kept in the log: repair the array and enable again, or write 1 to discard_skipped to drop them\n",
                        report.counters.skipped,
                        report.first_skipped,
                        report.last_skipped
                    );
                    return Err(EIO);
                }
                Err(Stop::Error(e)) => {
                    pr_err!("{vname}: replay failed ({e:?}); the log is kept\n");
                    return Err(e);
                }
            }
        }
        let wq = OwnedQueue::new_io(name, 0)?;
        let front = KBox::new(Frontend { wq, core }, GFP_KERNEL)?;
        let _ = front.wq.enqueue(front.core.clone());
        let mut this = Self {
            disk: None,
            front,
            disk_name,
        };
        let sectors = this.front.core.sectors();
        // SAFETY: `this.front` is boxed, so its address is stable, and it is
        // dropped only after the disk (see `Drop`).
        let disk = unsafe { Disk::new(&this.disk_name, sectors, MAX_RECORD_DATA, &*this.front) }?;
        this.disk = Some(disk);
        pr_info!(
            "{} enabled as /dev/{} ({} sectors), CP generation {}\n",
            name.to_str().unwrap_or("?"),
            this.disk_name.to_str().unwrap_or("?"),
            sectors,
            cp.generation
        );
        Ok(this)
    }

    /// The running volume.
    pub(crate) fn core(&self) -> &Core {
        &self.front.core
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        // No new bios once the disk is gone.
        drop(self.disk.take());
        let core = &self.front.core;
        if let Err(e) = core.checkpoint() {
            pr_err!(
                "{}: the final consistency point failed ({:?}); the log keeps the data for the next activation\n",
                core.name.to_str().unwrap_or("?"),
                e
            );
        }
        core.state.lock().stop = true;
        core.changed.notify_all();
        // Dropping `front` destroys the workqueue (waiting for the CP loop
        // and reads in flight), then releases the core and its devices.
    }
}
