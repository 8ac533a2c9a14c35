// SPDX-License-Identifier: GPL-2.0

//! A persistence model of pmem, and crash-point tests of the log's write
//! path on it (in the manner of Yat, PMTest or Jaaru).
//!
//! A QEMU power cut cannot catch a missing flush or fence: guest stores reach
//! the host file at once. Real pmem keeps a store that was not flushed and
//! fenced in a volatile cache, and stores to different cache lines reach the
//! media in any order. [`Model`] is a [`Media`] that keeps that volatile
//! layer: [`Media::write`] (which flushes on its way) leaves the lines it
//! touches *pending* (visible to reads, not persistent), and [`Media::drain`]
//! makes every pending line persistent. A later write to a pending line
//! replaces its pending content.
//!
//! The model records the stores and fences of a run of the real [`Log`]
//! code from the zeroed media on, with notes from the test saying what has
//! been acknowledged so far. [`explore`] then replays the run and, from the
//! point the test marked with [`Model::begin`], crashes it after every
//! store, fence and note: each crash state is the persistent image plus a subset of the
//! pending lines (all subsets where there are at most [`EXHAUSTIVE`] pending
//! lines, else none, all, each one alone, all but each one, and [`SAMPLES`]
//! seeded random subsets), handed to the test's check as a [`CrashImage`],
//! on which the test runs the real recovery ([`Log::open`],
//! [`Log::cp_marker`], [`Log::scan`]).
//!
//! A [`Model::new_block`] models a block device instead: a write is one
//! bio whose lines (its units, and parts of them: stricter than a disk,
//! whose sectors land whole) reach the media in any order until it
//! completes; [`Media::drain`] is that completion. A test leaves several
//! records' writes pending before one drain: the records in flight at
//! once, any subset of whose lines a crash lands.
//!
//! Everything here is test code: the module is built only with KUnit.
//!
//! [`Log`]: crate::device::log::Log
//! [`Log::open`]: crate::device::log::Log::open
//! [`Log::cp_marker`]: crate::device::log::Log::cp_marker
//! [`Log::scan`]: crate::device::log::Log::scan

use kernel::prelude::*;
use kernel::sync::Mutex;

use crate::format::log::{Medium, LINE};
use crate::sys::bio::Chunk;
use crate::sys::dax::Media;

/// Bytes in a cache line, the unit in which stores reach the media.
const LINE_LEN: usize = LINE as usize;

/// The content of one cache line.
type Line = [u8; LINE_LEN];

/// At most this many pending lines: every subset of them is a crash state.
pub(crate) const EXHAUSTIVE: usize = 10;

/// Random subsets tried at a crash point with more pending lines.
pub(crate) const SAMPLES: usize = 48;

/// What the test has seen acknowledged so far, noted between operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Records whose append has returned.
    pub(crate) records: usize,
    /// CP markers (format's first one included) whose write has returned.
    pub(crate) markers: usize,
    /// Records of a block log being written after those (at least one is
    /// taken: the record being appended).
    pub(crate) in_flight: usize,
}

/// One step of a recorded run.
#[derive(Clone, Copy)]
enum Event {
    /// A write left `data` in line number `line`; `last` if it was the last
    /// line of that [`Media::write`].
    Store { line: u64, data: Line, last: bool },
    /// A [`Media::drain`].
    Fence,
    /// The test's note of what has been acknowledged.
    Note(Progress),
    /// Where the crash points start.
    Begin,
}

struct Inner {
    /// What reads return: every write applied.
    visible: VVec<u8>,
    /// The recorded run, from the zeroed media on.
    trace: KVec<Event>,
    /// Whether an event could not be recorded (out of memory in `drain`).
    lost: bool,
    /// The medium modelled.
    medium: Medium,
}

/// pmem with a volatile cache in front of it, recording what reaches which.
#[pin_data]
pub(crate) struct Model {
    #[pin]
    inner: Mutex<Inner>,
}

/// Copies `buf.len()` bytes of `image` at `off` into `buf`.
fn copy_out(image: &[u8], off: u64, buf: &mut [u8]) -> Result {
    let start = usize::try_from(off).map_err(|_| ERANGE)?;
    let end = start.checked_add(buf.len()).ok_or(ERANGE)?;
    buf.copy_from_slice(image.get(start..end).ok_or(ERANGE)?);
    Ok(())
}

/// Line number `line` of `image`.
fn line_of(image: &mut [u8], line: u64) -> Result<&mut [u8]> {
    let start = usize::try_from(line).map_err(|_| ERANGE)? * LINE_LEN;
    image.get_mut(start..start + LINE_LEN).ok_or(ERANGE)
}

impl Model {
    /// `size` zeroed bytes (a multiple of [`LINE`]), all persistent.
    pub(crate) fn new(size: usize) -> Result<Pin<KBox<Self>>> {
        Self::of(size, Medium::Pmem)
    }

    /// A block device of `size` zeroed bytes and logical block size `unit`.
    pub(crate) fn new_block(size: usize, unit: u32) -> Result<Pin<KBox<Self>>> {
        Self::of(size, Medium::block(unit).ok_or(EINVAL)?)
    }

    fn of(size: usize, medium: Medium) -> Result<Pin<KBox<Self>>> {
        if size % LINE_LEN != 0 {
            return Err(EINVAL);
        }
        let mut visible = VVec::new();
        visible.resize(size, 0, GFP_KERNEL)?;
        KBox::pin_init(
            pin_init!(Self {
                inner <- kernel::new_mutex!(Inner {
                    visible,
                    trace: KVec::new(),
                    lost: false,
                    medium,
                })
            }),
            GFP_KERNEL,
        )
    }

    /// Starts the part of the run to crash, with `done` acknowledged.
    pub(crate) fn begin(&self, done: Progress) -> Result {
        let mut g = self.inner.lock();
        g.trace.push(Event::Begin, GFP_KERNEL)?;
        g.trace.push(Event::Note(done), GFP_KERNEL)?;
        Ok(())
    }

    /// A model whose media holds `image`, persistent: written (and
    /// recorded) line by line where it is not zero, then drained.
    pub(crate) fn copy_of(image: &CrashImage<'_>, medium: Medium) -> Result<Pin<KBox<Self>>> {
        let m = Self::of(image.persistent.len(), medium)?;
        let media: &Self = &m;
        let mut line = [0u8; LINE_LEN];
        let mut off = 0;
        while off < image.size() {
            image.read(off, &mut line)?;
            if line.iter().any(|b| *b != 0) {
                media.write(off, &line)?;
            }
            off += LINE;
        }
        media.drain();
        Ok(m)
    }

    /// Notes that `done` has been acknowledged.
    pub(crate) fn note(&self, done: Progress) -> Result {
        self.inner
            .lock()
            .trace
            .push(Event::Note(done), GFP_KERNEL)?;
        Ok(())
    }
}

impl Media for &Model {
    fn size(&self) -> u64 {
        self.inner.lock().visible.len() as u64
    }

    fn medium(&self) -> Medium {
        self.inner.lock().medium
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result {
        copy_out(&self.inner.lock().visible, off, buf)
    }

    fn write(&self, off: u64, data: &[u8]) -> Result {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let start = usize::try_from(off).map_err(|_| ERANGE)?;
        let end = start.checked_add(data.len()).ok_or(ERANGE)?;
        inner
            .visible
            .get_mut(start..end)
            .ok_or(ERANGE)?
            .copy_from_slice(data);
        if data.is_empty() {
            return Ok(());
        }
        let (first, last) = ((start / LINE_LEN) as u64, ((end - 1) / LINE_LEN) as u64);
        for line in first..=last {
            let mut content = [0u8; LINE_LEN];
            content.copy_from_slice(line_of(&mut inner.visible, line)?);
            inner.trace.push(
                Event::Store {
                    line,
                    data: content,
                    last: line == last,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(())
    }

    fn drain(&self) {
        let mut g = self.inner.lock();
        if g.trace.push(Event::Fence, GFP_KERNEL).is_err() {
            g.lost = true;
        }
    }
}

/// A crash state: the persistent image and the pending lines that reached
/// the media before the power failed. Read-only.
#[derive(Clone, Copy)]
pub(crate) struct CrashImage<'a> {
    persistent: &'a [u8],
    landed: &'a [(u64, Line)],
    medium: Medium,
}

impl Media for CrashImage<'_> {
    fn size(&self) -> u64 {
        self.persistent.len() as u64
    }

    fn medium(&self) -> Medium {
        self.medium
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result {
        copy_out(self.persistent, off, buf)?;
        let end = off + buf.len() as u64;
        for (line, data) in self.landed {
            let (ls, le) = (line * LINE, (line + 1) * LINE);
            if le <= off || ls >= end {
                continue;
            }
            let (from, to) = (ls.max(off), le.min(end));
            let src = data
                .get((from - ls) as usize..(to - ls) as usize)
                .ok_or(ERANGE)?;
            buf.get_mut((from - off) as usize..(to - off) as usize)
                .ok_or(ERANGE)?
                .copy_from_slice(src);
        }
        Ok(())
    }

    fn write(&self, _off: u64, _data: &[u8]) -> Result {
        Err(EROFS)
    }

    fn drain(&self) {}
}

/// SplitMix64: a well-mixed hash of `x`.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Xorshift64: the next number of the sequence in `state` (never 0).
fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// Where [`explore`] stands, for the crash points.
struct Crasher<'a, F> {
    persistent: VVec<u8>,
    pending: KVec<(u64, Line)>,
    landed: KVec<(u64, Line)>,
    rng: u64,
    states: u64,
    medium: Medium,
    check: &'a mut F,
}

impl<F: FnMut(&CrashImage<'_>, Progress) -> Result> Crasher<'_, F> {
    /// One crash state: the pending lines `pick` chooses land.
    fn state(&mut self, done: Progress, pick: impl Fn(usize) -> bool) -> Result {
        self.landed.clear();
        for (i, p) in self.pending.iter().enumerate() {
            if pick(i) {
                self.landed.push(*p, GFP_KERNEL)?;
            }
        }
        self.states += 1;
        let image = CrashImage {
            persistent: &self.persistent,
            landed: &self.landed,
            medium: self.medium,
        };
        (self.check)(&image, done).inspect_err(|_| {
            pr_err!(
                "swarmlog_persist: crash state {} fails: {} of {} pending lines landed, {:?} acknowledged\n",
                self.states,
                self.landed.len(),
                self.pending.len(),
                done
            )
        })
    }

    /// Every crash state of this point of the run.
    fn crash(&mut self, done: Progress) -> Result {
        let n = self.pending.len();
        if n <= EXHAUSTIVE {
            for mask in 0u32..1 << n {
                self.state(done, |i| mask & (1 << i) != 0)?;
            }
            return Ok(());
        }
        self.state(done, |_| false)?;
        self.state(done, |_| true)?;
        for k in 0..n {
            self.state(done, |i| i == k)?;
            self.state(done, |i| i != k)?;
        }
        for _ in 0..SAMPLES {
            let salt = xorshift(&mut self.rng);
            self.state(done, |i| mix(salt ^ i as u64) & 1 != 0)?;
        }
        Ok(())
    }
}

/// Replays the recorded run, crashes it after every store, fence and note
/// from [`Model::begin`] on, and calls `check` on every crash state with
/// what had been acknowledged at that point. Returns the number of crash
/// states.
pub(crate) fn explore<F>(model: &Model, seed: u64, mut check: F) -> Result<u64>
where
    F: FnMut(&CrashImage<'_>, Progress) -> Result,
{
    let (size, trace, medium) = {
        let mut g = model.inner.lock();
        if g.lost {
            return Err(ENOMEM);
        }
        (
            g.visible.len(),
            core::mem::replace(&mut g.trace, KVec::new()),
            g.medium,
        )
    };
    let mut persistent = VVec::new();
    persistent.resize(size, 0, GFP_KERNEL)?;
    let mut c = Crasher {
        persistent,
        pending: KVec::new(),
        landed: KVec::new(),
        rng: seed | 1,
        states: 0,
        medium,
        check: &mut check,
    };
    let mut done = Progress::default();
    let mut crashing = false;
    for event in trace.iter() {
        match *event {
            Event::Store { line, data, last } => {
                match c.pending.iter_mut().find(|p| p.0 == line) {
                    Some(p) => p.1 = data,
                    None => c.pending.push((line, data), GFP_KERNEL)?,
                }
                if !last {
                    continue;
                }
            }
            Event::Fence => {
                for (line, data) in c.pending.iter() {
                    line_of(&mut c.persistent, *line)?.copy_from_slice(data);
                }
                c.pending.clear();
            }
            Event::Note(p) => done = p,
            Event::Begin => {
                crashing = true;
                continue;
            }
        }
        if crashing {
            c.crash(done)?;
        }
    }
    Ok(c.states)
}

#[kernel::prelude::kunit_tests(swarmlog_persist)]
mod tests {
    use super::*;
    use crate::device::log::{Log, Position};
    use crate::format::log::{CpMarker, Op, AREA_START, MAX_RECORD_DATA};
    use crate::format::Invalid;

    /// The smallest log size the geometry takes, and a little more.
    const SIZE: usize = AREA_START as usize + 2 * (64 + MAX_RECORD_DATA as usize) + 4096;
    const END: u64 = SIZE as u64;
    const SEED: u64 = 0x5eed_cafe_f00d_0007;

    /// Prints a violated rule and returns the error that fails the test.
    macro_rules! violated {
        ($($arg:tt)*) => {{
            pr_err!("swarmlog_persist: {}\n", format_args!($($arg)*));
            EUCLEAN
        }};
    }

    /// A record a test appends; every record of a test has its own sector.
    #[derive(Clone, Copy, PartialEq, Eq)]
    struct Planned {
        op: Op,
        sector: u64,
        nr: u32,
    }

    /// The log one test writes: its id, its records in append order, and
    /// its CP markers in write order, each with the index of the first
    /// record after it.
    struct Plan {
        log_id: u64,
        recs: KVec<Planned>,
        markers: KVec<(CpMarker, usize)>,
    }

    /// Byte `i` of the data of the record for `sector` in log `log_id`.
    fn data_byte(log_id: u64, sector: u64, i: usize) -> u8 {
        (mix(log_id ^ mix(sector) ^ (i / 8) as u64) >> ((i % 8) * 8)) as u8
    }

    /// Drives a [`Log`] on a [`Model`] and keeps its [`Plan`].
    struct Driver<'a> {
        model: &'a Model,
        log: Log<&'a Model>,
        plan: Plan,
        head: Position,
        slot: usize,
        generation: u64,
    }

    impl<'a> Driver<'a> {
        /// Formats a log with id `log_id`.
        fn format(model: &'a Model, log_id: u64) -> Result<Self> {
            let log = Log::format(model, [7; 16], log_id, false)?;
            let (slot, cp) = log.cp_marker()?;
            let mut markers = KVec::new();
            markers.push((cp, 0), GFP_KERNEL)?;
            Ok(Self {
                model,
                log,
                plan: Plan {
                    log_id,
                    recs: KVec::new(),
                    markers,
                },
                head: Position {
                    offset: cp.offset,
                    seq: cp.seq,
                },
                slot,
                generation: cp.generation,
            })
        }

        /// Opens the log a crash left on `model`, with the head at its valid
        /// end, to go on with `plan` (what recovery must find).
        fn open(model: &'a Model, plan: Plan) -> Result<Self> {
            let log = Log::open(model).map_err(|_| EINVAL)?;
            let (slot, cp) = log.cp_marker()?;
            let end = log.scan(&cp, |_| Ok::<(), Error>(()))?;
            Ok(Self {
                model,
                log,
                plan,
                head: Position {
                    offset: end.offset,
                    seq: end.seq,
                },
                slot,
                generation: cp.generation,
            })
        }

        /// The plan with its first `records` records (and the markers
        /// before them) only.
        fn prefix(&self, records: usize) -> Result<Plan> {
            let mut p = Plan {
                log_id: self.plan.log_id,
                recs: KVec::new(),
                markers: KVec::new(),
            };
            for r in self.plan.recs.iter().take(records) {
                p.recs.push(*r, GFP_KERNEL)?;
            }
            for m in self.plan.markers.iter().filter(|m| m.1 <= records) {
                p.markers.push(*m, GFP_KERNEL)?;
            }
            Ok(p)
        }

        /// Everything written so far has been acknowledged.
        fn done(&self) -> Progress {
            Progress {
                records: self.plan.recs.len(),
                markers: self.plan.markers.len(),
                in_flight: 0,
            }
        }

        /// Starts the run to explore here.
        fn begin(&self) -> Result {
            self.model.begin(self.done())
        }

        /// Adds a record to the plan; returns its data.
        fn plan_record(&mut self, op: Op, sector: u64, nr: u32) -> Result<KVec<u8>> {
            let mut data = KVec::new();
            if op == Op::Write {
                for i in 0..nr as usize * 512 {
                    data.push(data_byte(self.plan.log_id, sector, i), GFP_KERNEL)?;
                }
            }
            self.plan
                .recs
                .push(Planned { op, sector, nr }, GFP_KERNEL)?;
            Ok(data)
        }

        /// Appends a record, its data handed over `chunk` bytes at a time.
        fn append(&mut self, op: Op, sector: u64, nr: u32, chunk: usize) -> Result {
            let mut data = self.plan_record(op, sector, nr)?;
            if !self.log.fits(&self.head, &self.head, nr * 512) {
                return Err(ENOSPC);
            }
            self.log.append(&mut self.head, op, sector, nr, |sink| {
                for c in data.chunks_mut(chunk.max(1)) {
                    sink(&Chunk::of(c))?;
                }
                Ok(())
            })?;
            // A block log's record is acknowledged when its write completes.
            if self.log.geometry().is_block() {
                self.model.drain();
            }
            self.model.note(self.done())
        }

        /// On a block log: writes the records `recs` (op, sector, sectors)
        /// at once, as the write path does with several in flight (each
        /// reserved after the one before, all written, then all complete),
        /// and acknowledges them.
        fn in_flight(&mut self, recs: &[(Op, u64, u32)]) -> Result {
            let acked = self.done();
            for (n, &(op, sector, nr)) in recs.iter().enumerate() {
                let mut data = self.plan_record(op, sector, nr)?;
                // In flight from the moment its write begins.
                self.model.note(Progress {
                    in_flight: n + 1,
                    ..acked
                })?;
                let r = self.log.reserve(&self.head, op, sector, nr)?;
                self.log
                    .write_reserved(&r, |sink| sink(&Chunk::of(&mut data)))?;
                self.head = r.next;
            }
            self.model.drain();
            self.model.note(self.done())
        }

        /// Advances the CP marker to `at`: the records before it (the first
        /// `applied` of the plan) are on the array.
        fn cp_at(&mut self, at: Position, applied: usize) -> Result {
            let m = CpMarker {
                log_id: self.plan.log_id,
                generation: self.generation + 1,
                seq: at.seq,
                offset: at.offset,
            };
            self.plan.markers.push((m, applied), GFP_KERNEL)?;
            self.slot = self.log.write_cp(self.slot, m.generation, at)?;
            self.generation = m.generation;
            self.model.note(self.done())
        }

        /// Advances the CP marker to the head.
        fn cp(&mut self) -> Result {
            self.cp_at(self.head, self.plan.recs.len())
        }

        /// Moves the (empty) log's tail and head to `offset`, `seq`, as if a
        /// lap had been written and committed.
        fn jump(&mut self, offset: u64, seq: u64) -> Result {
            self.head = Position { offset, seq };
            self.cp_at(self.head, self.plan.recs.len())
        }
    }

    /// Checks the recovered log against `plan`, with `done` acknowledged:
    /// the CP marker is, exactly, the last acknowledged one or the one being
    /// written, and not past an unacknowledged record; the scan from it
    /// finds every acknowledged record after it, at most the one record
    /// being appended beyond those, and each exactly as planned.
    fn check_log(log: &Log<CrashImage<'_>>, plan: &Plan, done: Progress) -> Result {
        if log.header().log_id != plan.log_id {
            return Err(violated!("log id {:#x}", log.header().log_id));
        }
        let (_, cp) = log
            .cp_marker()
            .map_err(|_| violated!("no valid CP marker"))?;
        let j = plan
            .markers
            .iter()
            .position(|(m, _)| *m == cp)
            .ok_or_else(|| violated!("CP marker {:?} was never written", cp))?;
        if j + 1 != done.markers && j != done.markers {
            return Err(violated!(
                "CP marker {} found, {} acknowledged",
                j,
                done.markers
            ));
        }
        let first = plan.markers.get(j).map_or(0, |m| m.1);
        if first > done.records {
            return Err(violated!("CP marker past unacknowledged records"));
        }
        let mut next = first;
        let end = log.scan(&cp, |f| {
            if f.header.op == Op::Wrap {
                return Ok(());
            }
            let want = plan
                .recs
                .get(next)
                .filter(|p| {
                    (p.op, p.sector, p.nr) == (f.header.op, f.header.sector, f.header.nr_sectors)
                })
                .ok_or_else(|| {
                    violated!("record {} is not the one appended: {:?}", next, f.header)
                })?;
            let mut line = [0u8; LINE_LEN];
            let data_at = f.offset + log.geometry().header_room();
            for k in 0..f.header.data_len() as usize / LINE_LEN {
                log.read(data_at + LINE * k as u64, &mut line)?;
                let bad = line
                    .iter()
                    .enumerate()
                    .any(|(i, b)| *b != data_byte(plan.log_id, want.sector, k * LINE_LEN + i));
                if bad {
                    return Err(violated!("record {} accepted with wrong data", next));
                }
            }
            next += 1;
            Ok(())
        })?;
        if next < done.records {
            return Err(violated!(
                "acknowledged record {} lost ({} acknowledged)",
                next,
                done.records
            ));
        }
        if next > done.records + done.in_flight.max(1) {
            return Err(violated!("record {} accepted before its append", next - 1));
        }
        // A crash leaves a torn end, never what the scan takes for a
        // corrupt record (replay would refuse the log).
        if let Some(at) = log.valid_record_after(&end)? {
            return Err(violated!(
                "the end at {} ({:?}) taken for corruption: a valid record at {}",
                end.offset,
                end.stop,
                at
            ));
        }
        Ok(())
    }

    /// Opens the crash image and checks it against `plan`.
    fn check(img: &CrashImage<'_>, plan: &Plan, done: Progress) -> Result {
        let log = Log::open(*img).map_err(|(why, _)| violated!("open fails: {:?}", why))?;
        check_log(&log, plan, done)
    }

    /// Explores the run recorded on `d`'s model against its plan.
    fn explore_plan(name: &str, d: &Driver<'_>) -> Result<u64> {
        let n = explore(d.model, SEED, |img, done| check(img, &d.plan, done))?;
        pr_info!("# {}: crash states explored: {}\n", name, n);
        Ok(n)
    }

    #[test]
    fn append_one_sector() -> Result {
        let model = Model::new(SIZE)?;
        let mut d = Driver::format(&model, 0x11)?;
        d.begin()?;
        d.append(Op::Write, 64, 1, 512)?;
        // Eight data lines, then the header's: every subset of the data
        // lines before the fence that orders them before the header.
        assert!(explore_plan("append_one_sector", &d)? > 256);
        Ok(())
    }

    #[test]
    fn append_streamed() -> Result {
        let model = Model::new(SIZE)?;
        let mut d = Driver::format(&model, 0x12)?;
        d.append(Op::Write, 0, 2, 1024)?;
        d.begin()?;
        // 4 KiB handed over a sector at a time: 65 lines pending at the end.
        d.append(Op::Write, 8, 8, 512)?;
        assert!(explore_plan("append_streamed", &d)? > 0);
        Ok(())
    }

    #[test]
    fn appends_in_a_row() -> Result {
        let model = Model::new(SIZE)?;
        let mut d = Driver::format(&model, 0x13)?;
        d.begin()?;
        d.append(Op::Write, 0, 1, 512)?;
        d.append(Op::Discard, 100, 8, 0)?;
        d.append(Op::Write, 200, 3, 512)?;
        d.append(Op::WriteZeroes, 300, 16, 0)?;
        d.append(Op::Write, 400, 2, 1024)?;
        d.append(Op::Write, 500, 1, 64)?;
        assert!(explore_plan("appends_in_a_row", &d)? > 0);
        Ok(())
    }

    #[test]
    fn cp_marker_advance() -> Result {
        let model = Model::new(SIZE)?;
        let mut d = Driver::format(&model, 0x14)?;
        d.begin()?;
        d.append(Op::Write, 0, 1, 512)?;
        d.append(Op::Write, 8, 1, 512)?;
        // Slot 1, then 0, then 1 again; the last one with nothing after it.
        d.cp()?;
        d.append(Op::Discard, 16, 8, 0)?;
        d.append(Op::Write, 24, 2, 1024)?;
        let after = d.head;
        d.append(Op::Write, 32, 1, 512)?;
        d.cp_at(after, 4)?;
        d.cp()?;
        d.append(Op::Write, 40, 1, 512)?;
        assert!(explore_plan("cp_marker_advance", &d)? > 0);
        Ok(())
    }

    #[test]
    fn wrap_at_area_end() -> Result {
        let model = Model::new(SIZE)?;
        let mut d = Driver::format(&model, 0x15)?;
        // Stale records of an earlier lap at the start of the area.
        d.append(Op::Write, 1000, 2, 1024)?;
        d.append(Op::Write, 1008, 1, 512)?;
        d.jump(END - 2 * 576, 100)?;
        d.begin()?;
        // The second record ends exactly at the end of the area: the third
        // goes to its start without a wrap record.
        d.append(Op::Write, 0, 1, 512)?;
        d.append(Op::Write, 8, 1, 512)?;
        assert_eq!(d.head.offset, AREA_START);
        d.append(Op::Write, 16, 2, 1024)?;
        d.cp_at(
            Position {
                offset: AREA_START,
                seq: 102,
            },
            4,
        )?;
        d.append(Op::Write, 24, 1, 512)?;
        assert!(explore_plan("wrap_at_area_end", &d)? > 0);
        Ok(())
    }

    #[test]
    fn wrap_record() -> Result {
        let model = Model::new(SIZE)?;
        let mut d = Driver::format(&model, 0x16)?;
        d.append(Op::Write, 1000, 2, 1024)?;
        d.append(Op::Write, 1008, 1, 512)?;
        d.jump(END - 128, 100)?;
        d.begin()?;
        // Two lines left: a wrap record there, the record at the start.
        d.append(Op::Write, 0, 1, 512)?;
        assert_eq!(
            d.head,
            Position {
                offset: AREA_START + 576,
                seq: 102
            }
        );
        d.append(Op::Discard, 8, 8, 0)?;
        d.cp_at(
            Position {
                offset: AREA_START + 576,
                seq: 102,
            },
            3,
        )?;
        d.append(Op::Write, 16, 2, 1024)?;
        assert!(explore_plan("wrap_record", &d)? > 0);
        Ok(())
    }

    #[test]
    fn append_over_torn_record() -> Result {
        let model = Model::new(SIZE)?;
        let mut d = Driver::format(&model, 0x19)?;
        d.append(Op::Write, 0, 1, 512)?;
        d.begin()?;
        d.append(Op::Write, 8, 2, 1024)?;
        // Some of the crash states in which the second record is torn: its
        // data in part or whole, its header line not (the one order in
        // which a crash leaves a record since format version 2).
        let mut torn = KVec::new();
        let mut seen = 0usize;
        let mut n = explore(&model, SEED, |img, done| {
            check(img, &d.plan, done)?;
            let log = Log::open(*img).map_err(|_| EINVAL)?;
            let (_, cp) = log.cp_marker()?;
            let end = log.scan(&cp, |_| Ok::<(), Error>(()))?;
            if end.records == 1 {
                seen += 1;
                if seen % 10 == 1 && torn.len() < 4 {
                    torn.push(Model::copy_of(img, Medium::Pmem)?, GFP_KERNEL)?;
                }
            }
            Ok(())
        })?;
        assert!(torn.len() > 1);
        // Recovery puts the head where the torn record is: a CP there and
        // new records over it, with its sequence number, must never let the
        // torn record's lines pass for a record.
        for m in torn.iter() {
            let mut after = Driver::open(m, d.prefix(1)?)?;
            assert_eq!(after.head.seq, 2);
            after.begin()?;
            after.cp()?;
            after.append(Op::Write, 100, 1, 512)?;
            after.append(Op::Write, 108, 3, 1536)?;
            n += explore(m, SEED, |img, done| check(img, &after.plan, done))?;
        }
        pr_info!("# append_over_torn_record: crash states explored: {}\n", n);
        Ok(())
    }

    /// Formats over a log whose current CP slot is `cps % 2` (over zeroed
    /// media if `None`), and checks every crash state gives the old log,
    /// whole, or the new one, empty (or, on zeroed media, no log).
    fn format_over(cps: Option<usize>) -> Result<u64> {
        let model = Model::new(SIZE)?;
        let mut old = None;
        if let Some(cps) = cps {
            let mut d = Driver::format(&model, 0x17)?;
            d.append(Op::Write, 0, 1, 512)?;
            d.append(Op::Write, 8, 2, 1024)?;
            for _ in 0..cps {
                d.cp()?;
            }
            d.append(Op::Discard, 16, 8, 0)?;
            d.append(Op::Write, 24, 1, 512)?;
            old = Some(d);
        }
        model.begin(Progress::default())?;
        let new = Driver::format(&model, 0x18)?;
        // Format returned: only the new log from here on.
        model.note(Progress {
            records: 0,
            markers: 1,
            in_flight: 0,
        })?;
        explore(&model, SEED, |img, done| {
            let log = match (Log::open(*img), &old) {
                (Ok(log), _) => log,
                (Err((Invalid::Magic, _)), None) if done.markers == 0 => return Ok(()),
                (Err((why, _)), _) => return Err(violated!("open fails: {:?}", why)),
            };
            match &old {
                _ if log.header().log_id == new.plan.log_id => {
                    check_log(&log, &new.plan, new.done())
                }
                Some(old) if done.markers == 0 => check_log(&log, &old.plan, old.done()),
                _ => Err(violated!("not the new log after format returned")),
            }
        })
    }

    /// A block log of 512-byte units just large enough for its window
    /// (4 MiB of records and a unit).
    const BSIZE: usize = AREA_START as usize + (4 << 20) + 512;

    #[test]
    fn block_append_one() -> Result {
        let model = Model::new_block(BSIZE, 512)?;
        let mut d = Driver::format(&model, 0x21)?;
        d.begin()?;
        // Its header unit and eight data units in one write: 72 lines that
        // land in any order until it completes.
        d.append(Op::Write, 64, 8, 512)?;
        d.append(Op::Discard, 72, 8, 0)?;
        assert!(explore_plan("block_append_one", &d)? > 0);
        Ok(())
    }

    #[test]
    fn block_records_in_flight() -> Result {
        let model = Model::new_block(BSIZE, 512)?;
        let mut d = Driver::format(&model, 0x22)?;
        d.append(Op::Write, 0, 8, 4096)?;
        d.begin()?;
        // Three records written at once: any subset of their lines lands.
        d.in_flight(&[(Op::Write, 8, 8), (Op::Write, 16, 1), (Op::Write, 24, 3)])?;
        d.append(Op::Write, 32, 16, 4096)?;
        d.cp()?;
        d.in_flight(&[(Op::Write, 48, 2), (Op::Discard, 56, 8), (Op::Write, 64, 8)])?;
        assert!(explore_plan("block_records_in_flight", &d)? > 0);
        Ok(())
    }

    #[test]
    fn block_in_flight_across_the_wrap() -> Result {
        let model = Model::new_block(BSIZE, 512)?;
        let mut d = Driver::format(&model, 0x23)?;
        // Stale records of an earlier lap at the start of the area.
        d.append(Op::Write, 1000, 8, 4096)?;
        d.append(Op::Write, 1008, 1, 512)?;
        let end = d.log.geometry().end;
        d.jump(end - 3 * 512, 100)?;
        d.begin()?;
        // One record fits (a header unit and one data unit), the second
        // needs a wrap record first, the third follows it at the start.
        d.in_flight(&[(Op::Write, 0, 1), (Op::Write, 8, 8), (Op::Write, 16, 1)])?;
        assert_eq!(d.head.offset, AREA_START + 9 * 512 + 2 * 512);
        d.append(Op::Write, 24, 2, 1024)?;
        assert!(explore_plan("block_in_flight_across_the_wrap", &d)? > 0);
        Ok(())
    }

    /// Slot records on a log with slots: each whole once its header line
    /// validates, none acknowledged lost, and a slot used again (a stale
    /// header over new data until the new header lands) never gives the
    /// new data to the old record (replay keeps each block's newest).
    ///
    /// Writes, with a note after each: block 1 into slot 0, block 2 into
    /// slot 1, block 1 again into slot 2 (slot 0 is free then), block 3
    /// into slot 0, blocks 5 and 6 at once into slots 4 and 5, block 2
    /// again into slot 1's successor, slot 3.
    #[test]
    fn slot_records_are_whole_or_absent() -> Result {
        // Room for a ring and a few slots.
        const SLOTTED: usize = 8 << 20;
        const LOG_ID: u64 = 0x5107;
        let model = Model::new(SLOTTED)?;
        let log = Log::format(&*model, [7; 16], LOG_ID, true)?;
        let geo = log.geometry();
        if geo.slots < 8 {
            return Err(violated!("a log of 8 MiB has {} slots", geo.slots));
        }
        let (_, cp) = log.cp_marker()?;
        let mut head = Position {
            offset: cp.offset,
            seq: cp.seq,
        };
        // Each write: its first block and its slots (one a block).
        let writes: [(u64, &[u32]); 6] = [
            (1, &[0]),
            (2, &[1]),
            (1, &[2]),
            (3, &[0]),
            (5, &[4, 5]),
            (2, &[3]),
        ];
        let byte = |block: u64, seq: u64, i: usize| data_byte(LOG_ID ^ seq, block, i);
        // (block, seq) of every record written, in order.
        let mut planned: KVec<(u64, u64)> = KVec::new();
        model.begin(Progress::default())?;
        for &(first_block, slots) in writes.iter() {
            let first = head.seq;
            let mut data = KVec::new();
            for k in 0..slots.len() as u64 {
                for i in 0..4096 {
                    data.push(byte(first_block + k, first + k, i), GFP_KERNEL)?;
                }
                planned.push((first_block + k, first + k), GFP_KERNEL)?;
            }
            let nr = 8 * slots.len() as u32;
            log.write_slots(&mut head, first_block * 8, nr, slots, |sink| {
                // Handed over in pieces that straddle the blocks.
                for c in data.chunks_mut(3000) {
                    sink(&Chunk::of(c))?;
                }
                Ok(())
            })?;
            model.note(Progress {
                records: planned.len(),
                markers: 1,
                in_flight: 0,
            })?;
        }
        let check = |img: &CrashImage<'_>, done: Progress| -> Result {
            let log = Log::open(*img).map_err(|(why, _)| violated!("open fails: {:?}", why))?;
            let (_, cp) = log.cp_marker()?;
            // Each block's newest record, as replay takes it.
            let mut newest: KVec<(u64, u64, u32)> = KVec::new();
            log.scan_slots(cp.seq, false, |slot, h| {
                let b = h.sector / 8;
                match newest.iter_mut().find(|e| e.0 == b) {
                    Some(e) if e.1 >= h.seq => {}
                    Some(e) => *e = (b, h.seq, slot),
                    None => newest.push((b, h.seq, slot), GFP_KERNEL)?,
                }
                Ok(())
            })?;
            for &(b, seq, slot) in newest.iter() {
                // Acknowledged, or of the write being made (up to two
                // records).
                if !planned
                    .iter()
                    .take(done.records + 2)
                    .any(|&p| p == (b, seq))
                {
                    return Err(violated!("block {} seq {} taken, never written", b, seq));
                }
                let mut buf = [0u8; 4096];
                log.read(geo.slot_data(slot).ok_or(EINVAL)?, &mut buf)?;
                if buf.iter().enumerate().any(|(i, &x)| x != byte(b, seq, i)) {
                    return Err(violated!("block {} seq {} taken with wrong data", b, seq));
                }
            }
            // Every acknowledged write's block is there, that write or a
            // later one of it.
            for &(b, seq) in planned.iter().take(done.records) {
                if !newest.iter().any(|e| e.0 == b && e.1 >= seq) {
                    return Err(violated!("acknowledged block {} seq {} lost", b, seq));
                }
            }
            Ok(())
        };
        let n = explore(&model, SEED, check)?;
        pr_info!(
            "# slot_records_are_whole_or_absent: crash states explored: {}\n",
            n
        );
        assert!(n > 0);
        Ok(())
    }

    #[test]
    fn format_is_atomic() -> Result {
        let n = format_over(Some(0))? + format_over(Some(1))? + format_over(None)?;
        pr_info!("# format_is_atomic: crash states explored: {}\n", n);
        Ok(())
    }
}
