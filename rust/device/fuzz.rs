// SPDX-License-Identifier: GPL-2.0

//! KUnit fuzz suite of the on-media metadata (issue 22, item 1): seeded
//! mutations of a real crashed volume's lines (the log header, both CP
//! markers, the CP intent, the headers of the first and last records and
//! of the two at the wrap, the array superblock, both copies of a table
//! block), each re-sealed with a valid checksum so that it passes the
//! checksum and reaches the field checks, fed through the real open path
//! (`open_on`: `Log::open`, the superblock, `Layout`, the CP marker), the
//! scan and the corrupt-record probe the replay runs, a read (the table
//! block's copies), and a write (the log's head).
//!
//! Every case must end in a refusal or a consistent result: an error from
//! open, or a scan whose records lie in the record area in sequence, a
//! probe inside the area, and a write that leaves the log header and CP
//! slots alone. A panic, an overflow or a KASAN report fails the suite;
//! so does a refusal that wrote to either device. It prints how many cases
//! ran, and how many were refused and accepted.

use kernel::{prelude::*, sync::Arc};

use super::array::RamArray;
use super::cache::SECTORS;
use super::log::{Log, Position};
use super::open::format_on;
use super::tests::{reopen, Buf, ARRAY_SECTORS, LOG_BYTES};
use crate::format::array::{TableBlock, BLOCK_SIZE};
use crate::format::checksum::{crc32c, SEED};
use crate::format::log::{Found, Op, AREA_START, CP_INTENT, CP_SLOTS, LINE, MAX_SEQ};
use crate::sys::bytes;
use crate::sys::dax::{Media, RamMedia};

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Where a mutated line lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Place {
    /// A 64-byte line of the log at this offset, sealed as the log seals
    /// its lines (CRC-32C of bytes 0..60 at 60).
    Log(u64),
    /// The array superblock (array block 0's first line), sealed likewise.
    Super,
    /// Table block 0's copy A or B (array block 1 or 2): a 4 KiB block
    /// sealed by [`TableBlock::seal`].
    Table(u64),
}

/// The volume under test: its devices and their images as the crash left
/// them.
struct Images {
    media: Arc<RamMedia>,
    array: RamArray,
    log: KVVec<u8>,
    meta: KVec<u8>,
    /// Record header offsets the scan found in the crashed log.
    records: KVec<u64>,
    end: u64,
}

/// Counts of the cases.
#[derive(Default)]
struct Tally {
    cases: u64,
    refused: u64,
    accepted: u64,
}

impl Images {
    /// A volume formatted, written (whole blocks, partial blocks, a
    /// discard, enough to wrap the log once; a CP on the way), and left
    /// without a final CP, as a power cut leaves it.
    fn crashed() -> Result<Self> {
        let media = RamMedia::shared(LOG_BYTES)?;
        let array = RamArray::new(ARRAY_SECTORS)?;
        format_on(media.clone(), &array, false)?;
        {
            let core = reopen(&media, &array)?;
            // Sizes chosen so that the last record wraps the log (a 3 MiB
            // log, 512 KiB records, a CP after the second).
            let half = 512 * 1024;
            for (sector, len, byte, op) in [
                (8, BLOCK_SIZE, 1, Op::Write),
                (0, half, 2, Op::Write),
                (0, 0, 0, Op::Wrap),
                (16, half, 3, Op::Write),
                (3, 1024, 4, Op::Write),
                (40, half, 5, Op::Write),
                (64, 2 * BLOCK_SIZE, 0, Op::Discard),
                (99, 512, 6, Op::Write),
                (0, half, 7, Op::Write),
                (24, half, 8, Op::Write),
                (8, half, 9, Op::Write),
            ] {
                if op == Op::Wrap {
                    core.checkpoint()?;
                } else {
                    core.write(&Buf::new(sector, len, |_| byte)?, op)?;
                }
            }
        }
        let mut log = KVVec::new();
        log.resize(LOG_BYTES, 0, GFP_KERNEL)?;
        media.read(0, &mut log)?;
        let meta = array.peek(0, 3 * BLOCK_SIZE)?;
        let l = Log::open(media.clone()).map_err(|_| EINVAL)?;
        let (_, cp) = l.cp_marker()?;
        let mut records = KVec::new();
        let end = l.scan(&cp, |f: &Found| {
            records.push(f.offset, GFP_KERNEL).map_err(Error::from)
        })?;
        // The crash left the records past the CP, a wrap record among them.
        assert_eq!(end.records, 9);
        Ok(Self {
            media,
            array,
            log,
            meta,
            records,
            end: l.geometry().end,
        })
    }

    /// The bytes of `place` as the crash left them.
    fn pristine(&self, place: Place) -> Result<&[u8]> {
        let r = match place {
            Place::Log(off) => {
                let o = usize::try_from(off)?;
                self.log.get(o..o + 64)
            }
            Place::Super => self.meta.get(..64),
            Place::Table(c) => {
                let o = usize::try_from(c)? * BLOCK_SIZE;
                self.meta.get(o..o + BLOCK_SIZE)
            }
        };
        r.ok_or(EINVAL)
    }

    /// Stores `bytes` at `place`.
    fn store(&self, place: Place, bytes: &[u8]) -> Result {
        match place {
            Place::Log(off) => self.media.write(off, bytes),
            Place::Super => self.array.poke(0, bytes),
            Place::Table(c) => self.array.poke(c * SECTORS, bytes),
        }
    }

    /// Puts every byte back as the crash left it.
    fn restore_all(&self) -> Result {
        self.media.write(0, &self.log)?;
        self.array.poke(0, &self.meta)
    }

    /// The first page of the log and the array's metadata blocks, to tell
    /// whether a refusal wrote anything.
    fn metadata(&self) -> Result<(KVec<u8>, KVec<u8>)> {
        let mut head = bytes::zeroed(AREA_START as usize, GFP_KERNEL)?;
        self.media.read(0, &mut head)?;
        Ok((head, self.array.peek(0, 3 * BLOCK_SIZE)?))
    }
}

/// One mutated image through the open path, the scan, the probe, a read
/// and (if `write`) a write. Panics (fails the suite) on an inconsistent
/// result.
fn one_case(img: &Images, t: &mut Tally, write: bool) -> Result {
    t.cases += 1;
    let before = img.metadata()?;
    let core = match reopen(&img.media, &img.array) {
        Ok(core) => core,
        Err(_) => {
            t.refused += 1;
            // Refused: nothing written to either device.
            let after = img.metadata()?;
            assert!(after.0 == before.0 && after.1 == before.1);
            return Ok(());
        }
    };
    t.accepted += 1;
    // The scan and the probe, as the replay's initiator runs them.
    let log = Log::open(img.media.clone()).map_err(|_| EINVAL)?;
    let (_, cp) = log.cp_marker()?;
    let geo = log.geometry();
    // A CP cut short: its target lies in the area, after the marker.
    if let Some(t) = core.interrupted_cp() {
        assert!(t.offset >= AREA_START && t.offset < geo.end && t.offset % LINE == 0);
        assert!(t.seq > cp.seq && t.seq <= MAX_SEQ);
    }
    let mut seq = cp.seq;
    let end = log.scan(&cp, |f: &Found| {
        assert!(f.offset >= AREA_START && f.offset < geo.end && f.offset % LINE == 0);
        assert!(f.header.op == Op::Wrap || f.offset + f.header.log_len() <= geo.end);
        assert_eq!(f.header.seq, seq);
        seq += 1;
        Ok::<(), Error>(())
    })?;
    assert!(end.offset >= AREA_START && end.offset < geo.end && end.offset % LINE == 0);
    assert!(end.seq == seq && end.seq <= MAX_SEQ + end.records);
    if let Some(o) = log.valid_record_after(&end)? {
        assert!(o >= AREA_START && o < geo.end && o % LINE == 0);
    }
    // A read of a block the table describes: data or an error.
    let _ = core.read(&Buf::new(8, BLOCK_SIZE, |_| 0)?);
    if write {
        // The head where the replay would leave it, then a write: it may
        // fail, but never touches the log header or the CP slots.
        let head = Position {
            offset: end.offset,
            seq: end.seq,
        };
        let tail = Position {
            offset: cp.offset,
            seq: cp.seq,
        };
        // Only where it fits: a full log makes a writer wait for a CP,
        // and no CP loop runs here.
        if log.fits(&head, &tail, BLOCK_SIZE as u32) {
            core.replayed_through(head)?;
            let mut lines = [0u8; 64 * 3];
            img.media.read(0, &mut lines)?;
            let _ = core.write(&Buf::new(200, BLOCK_SIZE, |_| 7)?, Op::Write);
            let mut after = [0u8; 64 * 3];
            img.media.read(0, &mut after)?;
            assert!(lines == after);
        }
    }
    drop(core);
    Ok(())
}

/// The values a field of `width` bytes is set to: the edges of its type,
/// of the record area and of the log, and a random one.
fn values(width: usize, end: u64, rnd: u64) -> [u64; 14] {
    let max = if width == 8 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    [
        0,
        1,
        max,
        max - 1,
        AREA_START - 1,
        AREA_START,
        AREA_START + 1,
        end - LINE,
        end,
        end + 1,
        LOG_BYTES as u64,
        MAX_SEQ,
        MAX_SEQ + 1,
        rnd & max,
    ]
}

/// Runs every mutation of `place`: each 8-byte and 4-byte field of its
/// first line set to each of [`values`], and `flips` random bit flips;
/// each re-sealed. Returns the cases run.
fn mutate(img: &Images, t: &mut Tally, place: Place, rng: &mut u64, flips: usize) -> Result {
    let orig = img.pristine(place)?;
    let mut buf = KVec::new();
    bytes::extend(&mut buf, orig, GFP_KERNEL)?;
    let seal = |b: &mut [u8]| match place {
        Place::Table(_) => {
            // Table block 0's copies (array blocks 1 and 2): sealed with
            // the trailer's index and generation as the mutation left them.
            let index = crate::format::get_u64(b, BLOCK_SIZE - 32 + 8);
            let generation = TableBlock(b).generation();
            TableBlock(b).seal(index, generation);
        }
        _ => {
            let crc = crc32c(SEED, b.get(..60).unwrap_or(&[]));
            crate::format::put(b, 60, &crc.to_le_bytes());
        }
    };
    // Which part of a table block: its first entries and its trailer.
    let base = match place {
        Place::Table(_) => BLOCK_SIZE - 64,
        _ => 0,
    };
    let run = |b: &[u8], t: &mut Tally, write: bool| -> Result {
        img.store(place, b)?;
        one_case(img, t, write)?;
        if write {
            img.restore_all()
        } else {
            img.store(place, orig)
        }
    };
    for width in [8usize, 4] {
        let mut at = 0;
        while at + width <= 60 {
            for v in values(width, img.end, xorshift(rng)) {
                buf.copy_from_slice(orig);
                let bytes = v.to_le_bytes();
                crate::format::put(&mut buf, base + at, bytes.get(..width).unwrap_or(&[]));
                seal(&mut buf);
                // The write path on a share of them (it needs the images
                // restored whole afterwards).
                let write = t.cases % 8 == 0;
                run(&buf, t, write)?;
            }
            at += width;
        }
    }
    for _ in 0..flips {
        buf.copy_from_slice(orig);
        let bit = (xorshift(rng) % (60 * 8)) as usize;
        if let Some(b) = buf.get_mut(base + bit / 8) {
            *b ^= 1 << (bit % 8);
        }
        seal(&mut buf);
        run(&buf, t, false)?;
    }
    Ok(())
}

#[kernel::prelude::kunit_tests(swarmlog_fuzz)]
mod tests {
    use super::*;

    #[test]
    fn hostile_metadata_is_refused_or_consistent() -> Result {
        let img =
            Images::crashed().inspect_err(|e| pr_err!("swarmlog_fuzz: crashed(): {e:?}\n"))?;
        let mut t = Tally::default();
        let mut rng = 0x5eed_f00d_u64;
        // The case of no mutation: the crashed volume opens.
        one_case(&img, &mut t, true)?;
        img.restore_all()?;
        assert_eq!(t.accepted, 1);
        let mut places = KVec::new();
        for p in [
            Place::Log(0),
            Place::Log(CP_SLOTS[0]),
            Place::Log(CP_SLOTS[1]),
            Place::Log(CP_INTENT),
            Place::Super,
            Place::Table(1),
            Place::Table(2),
        ] {
            places.push(p, GFP_KERNEL)?;
        }
        // Of the records' headers, those whose neighbours differ: the
        // first, the last, and the two on either side of the wrap (where
        // an offset falls below its predecessor's). The others repeat the
        // first's cases (about 17 s of the suite each under TCG).
        let recs = &img.records;
        let last = recs.len().saturating_sub(1);
        for (i, &off) in recs.iter().enumerate() {
            let next_wraps = recs.get(i + 1).is_some_and(|&n| n < off);
            let wrapped = i > 0 && recs.get(i - 1).is_some_and(|&p| off < p);
            if i == 0 || i == last || next_wraps || wrapped {
                places.push(Place::Log(off), GFP_KERNEL)?;
            }
        }
        for &p in places.iter() {
            mutate(&img, &mut t, p, &mut rng, 16)?;
        }
        pr_info!(
            "swarmlog_fuzz: {} cases over {} lines: {} refused at open, {} opened and consistent\n",
            t.cases,
            places.len(),
            t.refused,
            t.accepted
        );
        // The 7 fixed lines and at least the first and last record.
        assert!(places.len() >= 9);
        assert!(t.cases >= 1000 && t.refused > 0 && t.accepted > 0);
        Ok(())
    }
}
