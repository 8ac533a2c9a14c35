// SPDX-License-Identifier: GPL-2.0

//! Tests of the module's format code (`rust/format/`), in userspace.
//!
//! `checksum`, `log` and `array` port the KUnit tests of the files of the
//! same names (the same cases, with `Vec` for `KVec`) and add what those
//! leave out: a plain bitwise CRC-32C to hold slicing-by-8 to, and a bit
//! flipped at every position of every encoded line. `image` builds whole log
//! images in memory (header, CP marker slots, records appended the way
//! `rust/device/log.rs` does, wrap records included) and scans them.

use crate::format::checksum::{crc32c, seeded, shift, SEED};
use crate::format::Invalid;

/// Pseudo-random bytes, the same as the KUnit tests' `bytes`.
fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

/// Every copy of `line` with exactly one bit flipped.
fn bit_flips(line: &[u8; 64]) -> impl Iterator<Item = [u8; 64]> + '_ {
    (0..64 * 8).map(move |bit| {
        let mut bad = *line;
        bad[bit / 8] ^= 1 << (bit % 8);
        bad
    })
}

mod checksum {
    //! `rust/format/checksum.rs`: CRC-32C and its combination.

    use super::*;

    /// CRC-32C one bit at a time, straight from the definition (reflected
    /// polynomial 0x1edc6f41), to hold the table-driven code to.
    fn bitwise(mut crc: u32, data: &[u8]) -> u32 {
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_value() {
        // The standard check value: CRC-32C of "123456789", after the
        // final inversion that swarmlog does not apply.
        assert_eq!(!crc32c(SEED, b"123456789"), 0xe306_9283);
        assert_eq!(!bitwise(!0, b"123456789"), 0xe306_9283);
        assert_eq!(SEED, !0);
        assert_eq!(crate::checksum(b"123456789"), !0xe306_9283);
    }

    #[test]
    fn slicing_by_8_equals_bitwise_crc32c() {
        // The KUnit test holds slicing-by-8 to the kernel's crc32c(); here
        // (no CONFIG_RUST) crc32c() is slicing-by-8, held to the bitwise
        // definition.
        for (i, len) in [0usize, 1, 7, 8, 9, 63, 512, 4096, 4099, 65_536]
            .into_iter()
            .enumerate()
        {
            let d = bytes(len, 77 + i as u32);
            for seed in [0, SEED, 0x1234_5678] {
                assert_eq!(crc32c(seed, &d), bitwise(seed, &d), "len {len}");
            }
            // From offsets that are not 8-aligned, and every length mod 8.
            for start in 0..len.min(9) {
                let tail = &d[start..];
                assert_eq!(crc32c(SEED, tail), bitwise(SEED, tail));
                let head = &d[..len - start];
                assert_eq!(crc32c(SEED, head), bitwise(SEED, head));
            }
        }
    }

    #[test]
    fn streamed_in_pieces_equals_one_pass() {
        let d = bytes(10_000, 5);
        let whole = crc32c(SEED, &d);
        for cut in [1usize, 3, 8, 13, 4096] {
            let crc = d.chunks(cut).fold(SEED, crc32c);
            assert_eq!(crc, whole, "pieces of {cut}");
        }
    }

    #[test]
    fn zero_block_checksums_to_zero() {
        // From zero, zeroes stay zero: a block's CRC from zero is 0 if it
        // is all zeroes.
        assert_eq!(crc32c(0, &[0u8; 512]), 0);
        assert_ne!(crc32c(SEED, &[0u8; 512]), 0);
    }

    #[test]
    fn shift_combines_like_one_pass() {
        for (i, (la, lb)) in [
            (0, 1),
            (1, 0),
            (7, 4096),
            (4096, 4096),
            (100, 65_536),
            (3, 511),
        ]
        .into_iter()
        .enumerate()
        {
            let a = bytes(la, i as u32);
            let b = bytes(lb, 1000 + i as u32);
            let ab = [a.as_slice(), b.as_slice()].concat();
            let whole = crc32c(SEED, &ab);
            let parts = shift(crc32c(SEED, &a), lb as u64) ^ crc32c(0, &b);
            assert_eq!(whole, parts, "({la}, {lb})");
            assert_eq!(seeded(crc32c(0, &b), lb as u64), crc32c(SEED, &b));
        }
        assert_eq!(shift(0x1234_5678, 0), 0x1234_5678);
        // A changed byte changes the combination.
        let a = bytes(64, 1);
        let mut b = bytes(4096, 2);
        let good = shift(crc32c(SEED, &a), 4096) ^ crc32c(0, &b);
        b[4000] ^= 1;
        assert_ne!(good, shift(crc32c(SEED, &a), 4096) ^ crc32c(0, &b));
    }

    /// A linear map of CRC states, as its 32 columns (the images of the
    /// single-bit states).
    type Map = [u32; 32];

    fn apply(m: &Map, v: u32) -> u32 {
        (0..32)
            .filter(|i| v & (1 << i) != 0)
            .fold(0, |acc, i| acc ^ m[i])
    }

    fn compose(a: &Map, b: &Map) -> Map {
        b.map(|col| apply(a, col))
    }

    /// What `len` zero bytes do to a CRC state, from the bitwise CRC of one
    /// zero byte and repeated squaring: independent of `shift`'s tables.
    fn zeros(len: u64) -> Map {
        let mut square: Map = core::array::from_fn(|i| bitwise(1 << i, &[0]));
        let mut m: Map = core::array::from_fn(|i| 1 << i);
        let mut n = len;
        while n != 0 {
            if n & 1 != 0 {
                m = compose(&square, &m);
            }
            square = compose(&square, &square);
            n >>= 1;
        }
        m
    }

    #[test]
    fn shift_is_zero_bytes() {
        // shift(crc, n) is the state after n zero bytes, for any state.
        for crc in [0, 1, SEED, 0x8000_0000, 0xdead_beef] {
            for n in [1usize, 2, 5, 8, 64, 1000, 4097] {
                assert_eq!(shift(crc, n as u64), bitwise(crc, &vec![0; n]));
            }
        }
        // Lengths too long to checksum one byte at a time, up to 512 MiB
        // (far above a record's 1 MiB).
        for len in [1u64 << 20, 12_345_678, (1 << 29) - 1] {
            let m = zeros(len);
            for crc in [1, SEED, 0xdead_beef] {
                assert_eq!(shift(crc, len), apply(&m, crc), "len {len}");
            }
        }
        assert_eq!(zeros(4097).map(|c| shift(c, 0)), zeros(4097));
        assert_eq!(apply(&zeros(4097), SEED), bitwise(SEED, &[0; 4097]));
    }

    /// From 512 MiB on, `shift` was wrong: it took `x^(2^k)` for `k >= 32`
    /// from `X2N[k % 32]`, which assumes `x^(2^32) = x` modulo the
    /// polynomial. That holds for a primitive polynomial such as zlib's
    /// CRC-32, not for CRC-32C's, which is `(x + 1)` times an irreducible
    /// polynomial of degree 31 (this test failed on that code).
    #[test]
    fn shift_beyond_512_mib() {
        for len in [1u64 << 29, 1 << 40, u64::MAX] {
            assert_eq!(shift(SEED, len), apply(&zeros(len), SEED), "len {len}");
        }
    }
}

mod log {
    //! `rust/format/log.rs`: header, CP marker and record lines.

    use super::*;
    use crate::format::log::{
        line_align, CpMarker, Geometry, IntentState, LogHeader, Op, RecordHeader, AREA_START, LINE,
        LOG_VERSION, MAX_RECORD_DATA, MAX_SEQ, RECORD_MAGIC,
    };

    pub(super) const LOG_ID: u64 = 0x1234_5678_9abc_def0;
    /// A log just large enough for two largest records and 4 KiB.
    pub(super) const SIZE: u64 = AREA_START + 2 * (64 + MAX_RECORD_DATA as u64) + 4096;

    pub(super) fn wr(seq: u64, sector: u64, nr: u32) -> RecordHeader {
        RecordHeader {
            op: Op::Write,
            seq,
            log_id: LOG_ID,
            sector,
            nr_sectors: nr,
        }
    }

    /// Recomputes a line's checksum (bytes 60..64: CRC-32C of the first 60
    /// bytes), as a writer that meant the change would: so a test reaches
    /// the checks behind the checksum.
    pub(super) fn reseal(line: &mut [u8; 64]) {
        let crc = crc32c(SEED, &line[..60]);
        line[60..].copy_from_slice(&crc.to_le_bytes());
    }

    /// Why a record line that was valid for (`LOG_ID`, `seq`) is refused
    /// once its byte `byte` changed (checksum not recomputed): decode
    /// checks magic, log id, sequence number, then the checksum.
    pub(super) fn refusal_of_byte(byte: usize) -> Invalid {
        match byte {
            0..=3 => Invalid::Magic,
            8..=15 => Invalid::Sequence,
            16..=23 => Invalid::LogId,
            _ => Invalid::Checksum,
        }
    }

    #[test]
    fn header_round_trip() {
        let h = LogHeader {
            array_uuid: [7; 16],
            log_id: LOG_ID,
            log_size: SIZE,
            block_size: 4096,
            medium: crate::format::log::Medium::Pmem,
            slots: 0,
        };
        let line = h.encode();
        assert_eq!(LogHeader::decode(&line), Ok(h));
        assert_eq!(&line[..8], b"SWLGPMEM");
        for bad in bit_flips(&line) {
            assert!(LogHeader::decode(&bad).is_err(), "{bad:x?}");
        }
        let tiny = LogHeader {
            log_size: 8192,
            ..h
        };
        assert_eq!(LogHeader::decode(&tiny.encode()), Err(Invalid::Field));
        for block_size in [0, 256, 4095] {
            let odd = LogHeader { block_size, ..h };
            assert_eq!(LogHeader::decode(&odd.encode()), Err(Invalid::Field));
        }
        assert_eq!(LogHeader::decode(&[0; 64]), Err(Invalid::Magic));
        assert_eq!(h.geometry(), Geometry::new(SIZE));
    }

    #[test]
    fn cp_marker_round_trip() {
        let m = CpMarker {
            log_id: LOG_ID,
            generation: 9,
            seq: 1234,
            offset: AREA_START + 640,
        };
        let line = m.encode();
        assert_eq!(CpMarker::decode(&line), Ok(m));
        for bad in bit_flips(&line) {
            assert!(CpMarker::decode(&bad).is_err(), "{bad:x?}");
        }
        assert_eq!(CpMarker::decode(&[0; 64]), Err(Invalid::Magic));
    }

    #[test]
    fn the_cp_intent_after_a_marker() {
        // The marker in force: generation 4, records from sequence number 10.
        let geo = Geometry::new(SIZE).unwrap();
        let cp = CpMarker {
            log_id: LOG_ID,
            generation: 4,
            seq: 10,
            offset: AREA_START,
        };
        let next = CpMarker {
            generation: 5,
            seq: 12,
            offset: AREA_START + 2 * LINE,
            ..cp
        };
        let of = |m: CpMarker| IntentState::of(&m.encode_intent(), LOG_ID, &cp, &geo);
        assert_eq!(
            IntentState::of(&[0; 64], LOG_ID, &cp, &geo),
            IntentState::Absent
        );
        // A marker's line is no intent, nor is a torn intent (any bit).
        assert_eq!(
            IntentState::of(&next.encode(), LOG_ID, &cp, &geo),
            IntentState::Absent
        );
        for torn in bit_flips(&next.encode_intent()) {
            assert_eq!(
                IntentState::of(&torn, LOG_ID, &cp, &geo),
                IntentState::Absent
            );
        }
        assert_eq!(of(next), IntentState::Pending(next));
        let other = CpMarker {
            log_id: LOG_ID ^ 1,
            ..next
        };
        assert_eq!(of(other), IntentState::OtherLog(other));
        for generation in [1, 4] {
            let ended = CpMarker { generation, ..next };
            assert_eq!(of(ended), IntentState::Ended(ended));
        }
        // Valid checksums, but no CP after generation 4 writes them.
        for bad in [
            CpMarker {
                generation: 6,
                ..next
            },
            CpMarker {
                generation: u64::MAX,
                ..next
            },
            CpMarker { seq: 10, ..next },
            CpMarker { seq: 9, ..next },
            CpMarker {
                seq: MAX_SEQ + 1,
                ..next
            },
            CpMarker {
                offset: AREA_START + 1,
                ..next
            },
            CpMarker {
                offset: geo.end,
                ..next
            },
        ] {
            assert_eq!(of(bad), IntentState::Impossible(bad), "{bad:?}");
        }
    }

    #[test]
    fn cp_marker_fields_at_their_bounds() {
        // Every offset from 0 to two lines into the area and round the
        // area's end, with sequence numbers at their bounds: accepted
        // exactly when the offset is a line of the record area and the
        // sequence number is in 1..=MAX_SEQ; each through encode and decode
        // (a valid checksum) first.
        let geo = Geometry::new(SIZE).unwrap();
        let offsets = (0..AREA_START + 2 * LINE)
            .chain(geo.end - 2 * LINE..geo.end + 2 * LINE)
            .chain([u64::MAX - LINE + 1, u64::MAX]);
        let mut cases = 0;
        for offset in offsets {
            for seq in [
                0,
                1,
                2,
                MAX_SEQ - 1,
                MAX_SEQ,
                MAX_SEQ + 1,
                u64::MAX - 1,
                u64::MAX,
            ] {
                let m = CpMarker::decode(
                    &CpMarker {
                        log_id: LOG_ID,
                        generation: 3,
                        seq,
                        offset,
                    }
                    .encode(),
                )
                .unwrap();
                let ok = (AREA_START..geo.end).contains(&offset)
                    && offset % LINE == 0
                    && (1..=MAX_SEQ).contains(&seq);
                assert_eq!(m.check(&geo).is_ok(), ok, "offset {offset} seq {seq}");
                cases += 1;
            }
        }
        assert!(cases > 30_000);
    }

    #[test]
    fn cp_marker_newest_slot_wins() {
        let a = CpMarker {
            log_id: LOG_ID,
            generation: 4,
            seq: 10,
            offset: 4096,
        };
        let b = CpMarker {
            log_id: LOG_ID,
            generation: 5,
            seq: 12,
            offset: 8192,
        };
        assert_eq!(
            CpMarker::newest(&a.encode(), &b.encode(), LOG_ID),
            Some((1, b))
        );
        assert_eq!(
            CpMarker::newest(&b.encode(), &a.encode(), LOG_ID),
            Some((0, b))
        );
        let mut torn = b.encode();
        torn[20] ^= 1;
        assert_eq!(CpMarker::newest(&a.encode(), &torn, LOG_ID), Some((0, a)));
        assert_eq!(CpMarker::newest(&torn, &[0; 64], LOG_ID), None);
        // A marker of another format of the log is not taken.
        assert_eq!(CpMarker::newest(&b.encode(), &a.encode(), LOG_ID + 1), None);
        let other = CpMarker {
            log_id: LOG_ID + 1,
            generation: 99,
            ..a
        };
        assert_eq!(
            CpMarker::newest(&a.encode(), &other.encode(), LOG_ID),
            Some((0, a))
        );
    }

    #[test]
    fn record_round_trip_and_checksum() {
        let h = wr(9, 100, 2);
        let line = h.encode().expect("a valid record encodes");
        assert_eq!(RecordHeader::decode(&line, LOG_ID, 9), Ok(h));
        assert_eq!(
            RecordHeader::decode(&line, LOG_ID, 10),
            Err(Invalid::Sequence)
        );
        assert_eq!(
            RecordHeader::decode(&line, LOG_ID + 1, 9),
            Err(Invalid::LogId)
        );
        assert_eq!(h.log_len(), 64 + 1024);
        assert_eq!(
            u32::from_le_bytes([line[0], line[1], line[2], line[3]]),
            RECORD_MAGIC
        );
        // The checksum is CRC-32C of the line's first 60 bytes, nothing
        // else (since format version 2 the data is not checksummed).
        assert_eq!(
            u32::from_le_bytes([line[60], line[61], line[62], line[63]]),
            crc32c(SEED, &line[..60])
        );
        // The line does not depend on the record's data: a record of
        // other sectors differs only where its fields and checksum do.
        let other = wr(9, 101, 2).encode().expect("a valid record encodes");
        let differ: Vec<usize> = (0..64).filter(|&i| line[i] != other[i]).collect();
        assert!(differ.iter().all(|&i| (24..32).contains(&i) || i >= 60));
        // A changed field whose checksum is recomputed is taken: the
        // checksum covers the line alone.
        let mut moved = line;
        moved[24] = 101;
        assert_eq!(
            RecordHeader::decode(&moved, LOG_ID, 9),
            Err(Invalid::Checksum)
        );
        reseal(&mut moved);
        assert_eq!(moved, other);
        assert_eq!(RecordHeader::decode(&moved, LOG_ID, 9), Ok(wr(9, 101, 2)));
        // The order of the checks: magic, log id, sequence number, checksum,
        // fields. A bad checksum is reported only for the expected record.
        let mut torn = line;
        torn[40] ^= 1;
        assert_eq!(
            RecordHeader::decode(&torn, LOG_ID, 9),
            Err(Invalid::Checksum)
        );
        assert_eq!(
            RecordHeader::decode(&torn, LOG_ID, 8),
            Err(Invalid::Sequence)
        );
        assert_eq!(
            RecordHeader::decode(&torn, LOG_ID ^ 1, 8),
            Err(Invalid::LogId)
        );
        torn[0] ^= 1;
        assert_eq!(
            RecordHeader::decode(&torn, LOG_ID ^ 1, 8),
            Err(Invalid::Magic)
        );
    }

    #[test]
    fn record_line_refuses_every_bit_flip() {
        // A record header is taken only if it decodes, its checksum over
        // the line included (as the scan does): reserved bytes are covered
        // by the checksum alone. Each flip is refused for the first check
        // it fails.
        for h in [
            wr(3, 77, 3),
            RecordHeader {
                op: Op::Discard,
                ..wr(3, 8, 16)
            },
            RecordHeader {
                op: Op::WriteZeroes,
                ..wr(3, 8, 1)
            },
            RecordHeader {
                op: Op::Wrap,
                sector: 0,
                nr_sectors: 0,
                ..wr(3, 0, 1)
            },
        ] {
            let line = h.encode().expect("a valid record encodes");
            assert_eq!(RecordHeader::decode(&line, LOG_ID, 3), Ok(h));
            for (bit, bad) in bit_flips(&line).enumerate() {
                assert_eq!(
                    RecordHeader::decode(&bad, LOG_ID, 3),
                    Err(refusal_of_byte(bit / 8)),
                    "{h:?}: bit {bit}"
                );
            }
        }
    }

    #[test]
    fn record_limits() {
        // Zero-length I/O and one past the largest payload are refused.
        assert_eq!(wr(1, 0, 0).encode(), Err(Invalid::Field));
        let max = MAX_RECORD_DATA / 512;
        assert_eq!(wr(1, 0, max + 1).data_len(), MAX_RECORD_DATA + 512);
        assert!(wr(1, 0, max + 1).encode().is_err());
        assert_eq!(wr(1, 0, max).data_len(), MAX_RECORD_DATA);
        assert!(wr(1, 0, max).encode().is_ok());
        // A range that overflows the sector space is refused.
        assert!(wr(1, u64::MAX, 1).encode().is_err());
        let d = RecordHeader {
            op: Op::Discard,
            ..wr(1, 5, 8)
        };
        assert_eq!(d.data_len(), 0);
        assert_eq!(d.log_len(), 64);
        assert!(d.encode().is_ok());
        // A wrap record carries no range.
        let w = RecordHeader {
            op: Op::Wrap,
            ..wr(1, 5, 8)
        };
        assert_eq!(w.encode(), Err(Invalid::Field));
        // An unknown op is refused: as a torn line if the checksum is that
        // of the known op, for its field if the checksum matches.
        let good = wr(1, 0, 1).encode().expect("encodes");
        let mut line = good;
        line[4] = 9;
        assert_eq!(
            RecordHeader::decode(&line, LOG_ID, 1),
            Err(Invalid::Checksum)
        );
        reseal(&mut line);
        assert_eq!(RecordHeader::decode(&line, LOG_ID, 1), Err(Invalid::Field));
        // So is a data length (bytes 36..40) that is not the sectors'.
        let mut line = good;
        line[36..40].copy_from_slice(&511u32.to_le_bytes());
        reseal(&mut line);
        assert_eq!(RecordHeader::decode(&line, LOG_ID, 1), Err(Invalid::Field));
        // And fields out of range behind a matching checksum: no sectors,
        // more than the largest payload.
        for nr in [0u32, max + 1] {
            let mut line = good;
            line[32..36].copy_from_slice(&nr.to_le_bytes());
            line[36..40].copy_from_slice(&(nr << 9).to_le_bytes());
            reseal(&mut line);
            assert_eq!(
                RecordHeader::decode(&line, LOG_ID, 1),
                Err(Invalid::Field),
                "{nr} sectors"
            );
        }
    }

    #[test]
    fn log_of_another_version_is_refused() {
        // Version 1 checksummed each record's data with its header; its
        // records do not validate as version 2's, so a version 1 log must
        // not open. A version 1 header line: version 2's with bytes 8..12
        // patched and the line's checksum recomputed.
        assert_eq!(LOG_VERSION, 2);
        let h = LogHeader {
            array_uuid: [7; 16],
            log_id: LOG_ID,
            log_size: SIZE,
            block_size: 4096,
            medium: crate::format::log::Medium::Pmem,
            slots: 0,
        };
        let line = h.encode();
        assert_eq!(line[8..12], 2u32.to_le_bytes());
        // (Version 3 is version 2 with slots: its own test, slot_tests.rs.)
        for version in [1u32, 0, 4, u32::MAX] {
            let mut old = line;
            old[8..12].copy_from_slice(&version.to_le_bytes());
            // Not resealed: a torn line, refused for its checksum first.
            assert_eq!(LogHeader::decode(&old), Err(Invalid::Checksum));
            reseal(&mut old);
            assert_eq!(LogHeader::decode(&old), Err(Invalid::Version), "{version}");
        }
        // Resealing a version 2 line changes nothing: it still opens.
        let mut same = line;
        reseal(&mut same);
        assert_eq!(same, line);
        assert_eq!(LogHeader::decode(&same), Ok(h));
    }

    #[test]
    fn geometry() {
        assert_eq!(line_align(0), 0);
        assert_eq!(line_align(1), LINE);
        assert_eq!(line_align(64), 64);
        assert_eq!(line_align(65), 128);
        let geo = Geometry::new(SIZE + 63).expect("large enough");
        assert_eq!(geo.end, SIZE);
        assert_eq!(geo.capacity(), SIZE - AREA_START);
        // The least: two largest records and a line.
        let least = AREA_START + 2 * (64 + MAX_RECORD_DATA as u64) + LINE;
        assert!(Geometry::new(least).is_some());
        assert_eq!(Geometry::new(least - 1), None);
        assert_eq!(Geometry::new(0), None);
        assert_eq!(geo.place(AREA_START, 128), (false, AREA_START));
        assert_eq!(geo.place(geo.end - 128, 128), (false, geo.end - 128));
        assert_eq!(geo.place(geo.end - 128, 192), (true, AREA_START));
        assert_eq!(geo.distance(AREA_START, AREA_START + 64), 64);
        assert_eq!(
            geo.distance(AREA_START + 64, AREA_START),
            geo.capacity() - 64
        );
        assert_eq!(geo.distance(geo.end - 64, AREA_START), 64);
    }
}

mod array {
    //! `rust/format/array.rs`: layout, superblock and table blocks.

    use super::*;
    use crate::format::array::{
        read_entry, ArraySuper, Entry, Layout, TableBlock, BLOCK_SIZE, ENTRIES_PER_BLOCK,
        ENTRY_SIZE, MAX_DATA_BLOCKS,
    };

    /// Offset of a table block's trailer: after its entries.
    const TRAILER: usize = ENTRIES_PER_BLOCK as usize * ENTRY_SIZE;

    /// Blocks a layout of `d` data blocks needs (in `u128`: no overflow
    /// near `u64::MAX`).
    fn need(d: u64) -> u128 {
        1 + 2 * u128::from(d.div_ceil(ENTRIES_PER_BLOCK)) + u128::from(d)
    }

    #[test]
    fn layout_fits_and_is_tight() {
        assert_eq!(ENTRIES_PER_BLOCK, 254);
        assert_eq!(TRAILER, BLOCK_SIZE - 32);
        let sizes = (0..3000u64).chain([
            65536,
            262_144,
            1 << 30,
            (1 << 40) + 12_345,
            u64::MAX / 4096,
            u64::MAX,
        ]);
        for n in sizes {
            let Some(l) = Layout::for_array(n) else {
                assert!(n < 4, "no layout for {n} blocks");
                continue;
            };
            assert!(l.array_blocks() <= n, "{n}: {l:?}");
            assert_eq!(u128::from(l.array_blocks()), need(l.data_blocks));
            assert_eq!(l.table_blocks, l.data_blocks.div_ceil(ENTRIES_PER_BLOCK));
            // One more data block would not fit (need() grows with d), or
            // the layout is the largest there is.
            assert!(
                need(l.data_blocks + 1) > u128::from(n) || l.data_blocks == MAX_DATA_BLOCKS,
                "{n}: {l:?} not tight"
            );
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
        // 254 data blocks need one table block, 255 two.
        assert_eq!(Layout::for_array(257).map(|l| l.data_blocks), Some(254));
        assert_eq!(Layout::for_array(258).map(|l| l.data_blocks), Some(254));
        assert_eq!(Layout::for_array(259).map(|l| l.data_blocks), Some(254));
        assert_eq!(Layout::for_array(260).map(|l| l.data_blocks), Some(255));
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
        assert_eq!(l.blocks_of_table_block(u64::MAX), 600..600);
        // Every block's entry lies in the table block that describes it.
        for b in 0..l.data_blocks {
            let (index, slot) = l.entry_of(b).expect("in range");
            assert!(l.blocks_of_table_block(index).contains(&b));
            assert_eq!(l.blocks_of_table_block(index).start + slot as u64, b);
        }
    }

    #[test]
    fn superblock_sizes_at_their_bounds() {
        // Data block counts at their bounds, with the table size that goes
        // with them and a valid checksum: accepted exactly up to
        // MAX_DATA_BLOCKS, and an accepted layout's arithmetic (in debug
        // builds, overflow panics) holds for its last block.
        let mut sizes = vec![
            0,
            1,
            2,
            ENTRIES_PER_BLOCK,
            ENTRIES_PER_BLOCK + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        sizes.extend((0..64).map(|b| 1u64 << b));
        sizes.extend([
            MAX_DATA_BLOCKS - 1,
            MAX_DATA_BLOCKS,
            MAX_DATA_BLOCKS + 1,
            u64::MAX / 2,
        ]);
        for d in sizes {
            let s = ArraySuper {
                uuid: [7; 16],
                layout: Layout {
                    data_blocks: d,
                    table_blocks: d.div_ceil(ENTRIES_PER_BLOCK),
                },
                cp_generation: 2,
            };
            let r = ArraySuper::decode(&s.encode());
            assert_eq!(
                r.is_ok(),
                (1..=MAX_DATA_BLOCKS).contains(&d),
                "{d} data blocks"
            );
            if let Ok(s) = r {
                let l = s.layout;
                assert!(l.array_blocks().checked_mul(BLOCK_SIZE as u64).is_some());
                assert_eq!(l.data_block_location(d - 1), l.array_blocks() - 1);
            }
        }
        for n in [u64::MAX, u64::MAX / 4096, 3 * MAX_DATA_BLOCKS] {
            let l = Layout::for_array(n).unwrap();
            assert!(l.data_blocks <= MAX_DATA_BLOCKS && l.array_blocks() <= n);
        }
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
        assert_eq!(&line[..8], b"SWLGARRY");
        for bad in bit_flips(&line) {
            assert!(ArraySuper::decode(&bad).is_err(), "{bad:x?}");
        }
        let wrong = ArraySuper {
            layout: Layout {
                data_blocks: 600,
                table_blocks: 2,
            },
            ..s
        };
        assert_eq!(ArraySuper::decode(&wrong.encode()), Err(Invalid::Field));
        let empty = ArraySuper {
            layout: Layout {
                data_blocks: 0,
                table_blocks: 0,
            },
            ..s
        };
        assert_eq!(ArraySuper::decode(&empty.encode()), Err(Invalid::Field));
        // What for_array gives always round-trips.
        for n in [4u64, 1000, 1 << 30] {
            let layout = Layout::for_array(n).expect("fits");
            let s = ArraySuper { layout, ..s };
            assert_eq!(ArraySuper::decode(&s.encode()), Ok(s));
        }
    }

    #[test]
    fn table_block_checks_itself() {
        let mut buf = vec![0u8; BLOCK_SIZE];
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
        t.0[100] ^= 1;
        assert_eq!(t.check(2), Ok(()));
        // A block of the wrong size, or never sealed, is not a table block.
        assert_eq!(
            TableBlock(&mut buf[..BLOCK_SIZE - 1]).check(2),
            Err(Invalid::Magic)
        );
        assert_eq!(
            TableBlock(&mut vec![0u8; BLOCK_SIZE]).check(0),
            Err(Invalid::Magic)
        );
    }

    #[test]
    fn table_block_refuses_every_bit_flip() {
        let mut buf = vec![0u8; BLOCK_SIZE];
        let mut t = TableBlock(&mut buf);
        for slot in 0..ENTRIES_PER_BLOCK as usize {
            t.set(
                slot,
                &Entry::for_data(&bytes(64, slot as u32), slot as u64 + 1),
            );
        }
        t.seal(9, 3);
        assert_eq!(t.check(9), Ok(()));
        // One bit of every byte (each bit position in turn), the
        // checksum's own bytes and the trailer's reserved bytes included.
        for byte in 0..BLOCK_SIZE {
            let mut bad = buf.clone();
            bad[byte] ^= 1 << (byte % 8);
            assert!(TableBlock(&mut bad).check(9).is_err(), "byte {byte}");
        }
    }

    #[test]
    fn entries_set_and_read() {
        let mut buf = vec![0xffu8; BLOCK_SIZE];
        let mut t = TableBlock(&mut buf);
        let entries: Vec<Entry> = (0..ENTRIES_PER_BLOCK)
            .map(|i| Entry {
                generation: i * 0x0101_0101_0101 + 1,
                crc: (i as u32).wrapping_mul(0x9e37_79b9),
            })
            .collect();
        for (slot, e) in entries.iter().enumerate() {
            t.set(slot, e);
        }
        t.seal(0, 1);
        for (slot, e) in entries.iter().enumerate() {
            assert_eq!(t.get(slot), *e);
        }
        for (slot, e) in entries.iter().enumerate() {
            assert_eq!(read_entry(&buf, slot), *e);
        }
        // The layout of an entry: crc u32, 4 zero bytes, generation u64.
        let e = entries[5];
        let raw = &buf[5 * ENTRY_SIZE..6 * ENTRY_SIZE];
        assert_eq!(raw[..4], e.crc.to_le_bytes());
        assert_eq!(raw[4..8], [0; 4]);
        assert_eq!(raw[8..], e.generation.to_le_bytes());
        // Past the entries, read_entry reads the trailer or nothing.
        assert_eq!(read_entry(&buf, 100_000), Entry::default());
    }

    #[test]
    fn newest_committed_copy_is_in_force() {
        let mut a = vec![0u8; BLOCK_SIZE];
        let mut b = vec![0u8; BLOCK_SIZE];
        TableBlock(&mut a).seal(4, 10);
        TableBlock(&mut b).seal(4, 11);
        let (ta, tb) = (TableBlock(&mut a), TableBlock(&mut b));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 11), Some(1));
        // CP 11 did not commit: its copy is not in force yet.
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 10), Some(0));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, 9), None);
        assert_eq!(TableBlock::pick(&ta, &tb, 5, 11), None);
        // The same, the copies swapped.
        assert_eq!(TableBlock::pick(&tb, &ta, 4, 11), Some(0));
        assert_eq!(TableBlock::pick(&tb, &ta, 4, 10), Some(1));
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
        let gen = TRAILER + 16 + 7;
        b[gen] = 0x7f;
        let (ta, tb) = (TableBlock(&mut a), TableBlock(&mut b));
        assert_eq!(TableBlock::pick(&ta, &tb, 4, u64::MAX), Some(0));
    }

    #[test]
    fn entry_verifies_data() {
        let data = [0x5au8; BLOCK_SIZE];
        let e = Entry::for_data(&data, 1);
        assert!(e.is_written());
        assert_eq!(e.crc, crate::checksum(&data));
        assert!(e.verifies(&data));
        let mut other = data;
        other[4095] = 0;
        assert!(!e.verifies(&other));
        assert!(!Entry::default().is_written());
        assert!(Entry::default().verifies(&other));
    }
}

mod image {
    //! Whole log images: a header, the CP marker slots, records appended
    //! the way `rust/device/log.rs` appends them, and the scan over them.

    use super::log::{refusal_of_byte, wr, LOG_ID, SIZE};
    use super::*;
    use crate::format::log::{
        scan, valid_record_after, CpMarker, Found, Geometry, LogHeader, LogRead, Op, RecordHeader,
        ScanEnd, AREA_START, CP_SLOTS, MAX_RECORD_DATA, RECORD_HEADER_SIZE,
    };

    /// A log image in memory.
    struct Image {
        bytes: Vec<u8>,
        geo: Geometry,
        /// Where the next record goes and its sequence number.
        head: (u64, u64),
    }

    impl Image {
        /// A freshly formatted log of `size` bytes: header, first CP marker
        /// in slot 0, no records.
        fn new(size: u64) -> Self {
            let header = LogHeader {
                array_uuid: [0x42; 16],
                log_id: LOG_ID,
                log_size: size,
                block_size: 4096,
                medium: crate::format::log::Medium::Pmem,
                slots: 0,
            };
            let geo = header.geometry().expect("a log large enough");
            let mut img = Self {
                bytes: vec![0; size as usize],
                geo,
                head: (AREA_START, 1),
            };
            img.write(0, &header.encode());
            img.set_cp(0, 0, AREA_START, 1);
            img
        }

        fn write(&mut self, off: u64, data: &[u8]) {
            let off = off as usize;
            self.bytes[off..off + data.len()].copy_from_slice(data);
        }

        fn flip(&mut self, off: u64, mask: u8) {
            self.bytes[off as usize] ^= mask;
        }

        /// Writes a CP marker to `slot`.
        fn set_cp(&mut self, slot: usize, generation: u64, offset: u64, seq: u64) {
            let m = CpMarker {
                log_id: LOG_ID,
                generation,
                seq,
                offset,
            };
            self.write(CP_SLOTS[slot], &m.encode());
        }

        /// Moves the head (as a CP marker there would leave it).
        fn seek(&mut self, offset: u64, seq: u64) {
            self.head = (offset, seq);
        }

        /// Writes a whole record (`h` with `data`) at `off`, as the KUnit
        /// tests' `write_record` does: its data, then its header line (the
        /// commit point, stored last).
        fn write_record(&mut self, off: u64, h: &RecordHeader, data: &[u8]) {
            let line = h.encode().expect("a valid record encodes");
            self.write(off + RECORD_HEADER_SIZE as u64, data);
            self.write(off, &line);
        }

        /// Writes the header line of `h` at `off` as a power cut in its
        /// store leaves it: of its eight 8-byte words (pmem's atomic unit),
        /// those whose bit is set in `old` still hold what was there
        /// before.
        fn write_torn_header(&mut self, off: u64, h: &RecordHeader, old: u8) {
            let line = h.encode().expect("a valid record encodes");
            for word in (0..8).filter(|w| old & (1 << w) == 0) {
                let at = word * 8;
                self.write(off + at as u64, &line[at..at + 8]);
            }
        }

        fn line(&self, off: u64) -> [u8; 64] {
            let mut line = [0u8; 64];
            self.bytes[..]
                .read_at(off, &mut line)
                .expect("line in range");
            line
        }

        /// Appends a write record of `data` (whole sectors) at the head,
        /// with a wrap record in front of it if it does not fit before the
        /// area's end (as `Log::append`); returns its offset.
        fn append(&mut self, sector: u64, data: &[u8]) -> u64 {
            let (off, seq) = self.head;
            let rec = wr(seq, sector, (data.len() / 512) as u32);
            let (wrap, at) = self.geo.place(off, rec.log_len());
            let mut seq = seq;
            if wrap {
                let w = RecordHeader {
                    op: Op::Wrap,
                    sector: 0,
                    nr_sectors: 0,
                    ..rec
                };
                self.write_record(off, &w, &[]);
                seq += 1;
            }
            let rec = RecordHeader { seq, ..rec };
            self.write_record(at, &rec, data);
            let next = at + rec.log_len();
            self.head = (
                if next == self.geo.end {
                    AREA_START
                } else {
                    next
                },
                seq + 1,
            );
            at
        }

        /// The current CP marker, as the module reads it.
        fn cp(&self) -> CpMarker {
            let slot = |i: usize| {
                let mut line = [0u8; 64];
                self.bytes[..]
                    .read_at(CP_SLOTS[i], &mut line)
                    .expect("slot in range");
                line
            };
            CpMarker::newest(&slot(0), &slot(1), LOG_ID)
                .expect("a valid CP marker")
                .1
        }

        /// Opens the image as the module does (header, geometry, CP marker)
        /// and scans it; returns the records found and the scan's end.
        fn scan(&self) -> (Vec<Found>, ScanEnd) {
            let header = LogHeader::decode(self.bytes[..64].try_into().expect("64 bytes"))
                .expect("a valid header");
            assert_eq!(header.log_id, LOG_ID);
            let geo = header.geometry().expect("a valid geometry");
            assert_eq!(geo, self.geo);
            self.scan_from(&self.cp())
        }

        fn scan_from(&self, from: &CpMarker) -> (Vec<Found>, ScanEnd) {
            let mut found = Vec::new();
            let end = scan(
                &self.bytes[..],
                self.geo,
                LOG_ID,
                from,
                |f| -> Result<(), ()> {
                    found.push(*f);
                    Ok(())
                },
            )
            .expect("each never stops the scan");
            assert_eq!(end.records, found.len() as u64);
            (found, end)
        }

        fn after(&self, end: &ScanEnd) -> Option<u64> {
            valid_record_after(&self.bytes[..], self.geo, LOG_ID, end)
        }
    }

    fn seqs(found: &[Found]) -> Vec<u64> {
        found.iter().map(|f| f.header.seq).collect()
    }

    /// `n` records of 1 to 8 sectors, each sector holding its record's
    /// number; returns their offsets and data.
    fn fill(img: &mut Image, n: u64) -> Vec<(u64, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let data = bytes(512 * (1 + i as usize % 8), i as u32);
                (img.append(i * 8, &data), data)
            })
            .collect()
    }

    #[test]
    fn empty_log_scans_to_nothing() {
        let img = Image::new(SIZE);
        let (found, end) = img.scan();
        assert!(found.is_empty());
        assert_eq!(
            (end.offset, end.seq, end.stop),
            (AREA_START, 1, Invalid::Magic)
        );
        assert_eq!(img.after(&end), None);
    }

    #[test]
    fn scan_finds_valid_end() {
        // The KUnit test's log, built by hand.
        let mut img = Image::new(SIZE);
        let mut off = AREA_START;
        for i in 0..5u64 {
            let h = wr(1 + i, i * 8, 1 + i as u32);
            let data = [i as u8; 2560];
            img.write_record(off, &h, &data[..h.data_len() as usize]);
            off += h.log_len();
        }
        let (found, end) = img.scan();
        assert_eq!(end.records, 5);
        assert_eq!(end.seq, 6);
        assert_eq!(end.offset, off);
        assert_eq!(end.stop, Invalid::Magic);
        assert_eq!(found.len(), 5);
        assert_eq!(found.get(2).map(|f| f.header.sector), Some(16));
    }

    #[test]
    fn scan_finds_every_record() {
        for n in [1u64, 2, 17, 300] {
            let mut img = Image::new(SIZE);
            let written = fill(&mut img, n);
            let (found, end) = img.scan();
            assert_eq!(seqs(&found), (1..=n).collect::<Vec<_>>());
            for (i, (f, (off, data))) in found.iter().zip(&written).enumerate() {
                assert_eq!(f.offset, *off);
                assert_eq!(f.header.op, Op::Write);
                assert_eq!(f.header.sector, i as u64 * 8);
                assert_eq!(f.header.data_len() as usize, data.len());
                // The data is where the record says (the replay reads it
                // from there).
                let at = (f.offset + RECORD_HEADER_SIZE as u64) as usize;
                assert_eq!(&img.bytes[at..at + data.len()], &data[..]);
            }
            assert_eq!((end.offset, end.seq), img.head);
            assert_eq!(end.stop, Invalid::Magic);
            assert_eq!(img.after(&end), None);
        }
    }

    #[test]
    fn scan_starts_at_the_newest_cp_marker() {
        let mut img = Image::new(SIZE);
        let written = fill(&mut img, 10);
        // CP at record 4 in slot 1, generation 1.
        img.set_cp(1, 1, written[3].0, 4);
        let (found, end) = img.scan();
        assert_eq!(seqs(&found), (4..=10).collect::<Vec<_>>());
        assert_eq!(end.seq, 11);
        // Slot 1 torn: slot 0's older marker is in force.
        img.flip(CP_SLOTS[1] + 17, 2);
        let (found, _) = img.scan();
        assert_eq!(seqs(&found), (1..=10).collect::<Vec<_>>());
        // A marker whose sequence number does not match its record finds
        // nothing.
        img.set_cp(1, 2, written[3].0, 5);
        let (found, end) = img.scan();
        assert!(found.is_empty());
        assert_eq!((end.offset, end.stop), (written[3].0, Invalid::Sequence));
    }

    #[test]
    fn torn_record_ends_the_log() {
        // A record is torn when a power cut hits the store of its header
        // line (its data was fenced before it, so it is whole): some of the
        // line's 8-byte words are new, the others still old. Every such mix
        // that is not the new line ends the log at the record, and nothing
        // valid follows it.
        let mut img = Image::new(SIZE);
        let h1 = wr(1, 0, 8);
        img.write_record(AREA_START, &h1, &[1; 4096]);
        let off2 = AREA_START + h1.log_len();
        let h2 = wr(2, 8, 8);
        let new = h2.encode().expect("a valid record encodes");
        // Over a never written (zero) line and over a record of an older
        // lap of the log at the same place.
        let stale = RecordHeader {
            op: Op::Discard,
            ..wr(1001, 4000, 3)
        };
        let stale = stale.encode().expect("a valid record encodes");
        let (mut whole, mut torn) = (0, 0);
        for before in [[0; 64], stale] {
            // Every mix of old and new words, the whole line old (255)
            // included.
            for old in 1..=255u8 {
                img.write(off2, &before);
                img.write(off2 + 64, &[2; 4096]);
                img.write_torn_header(off2, &h2, old);
                let line = img.line(off2);
                let (found, end) = img.scan();
                if line == new {
                    // The old words were the same as the new ones (the
                    // reserved zero words, the log id): the line landed.
                    assert_eq!(seqs(&found), vec![1, 2], "old words {old:#010b}");
                    whole += 1;
                    continue;
                }
                torn += 1;
                assert_eq!(seqs(&found), vec![1], "old words {old:#010b}");
                assert_eq!((end.offset, end.seq), (off2, 2));
                // The first word holds the magic (and the op), the second
                // the sequence number, the third the log id, checked in the
                // order magic, log id, sequence number, then the checksum:
                // the first of them that is not the new one says why the
                // scan stops.
                let differs = |at: usize, len: usize| line[at..at + len] != new[at..at + len];
                let why = if differs(0, 4) {
                    Invalid::Magic
                } else if differs(16, 8) {
                    Invalid::LogId
                } else if differs(8, 8) {
                    Invalid::Sequence
                } else {
                    Invalid::Checksum
                };
                assert_eq!(end.stop, why, "old words {old:#010b}");
                assert_eq!(img.after(&end), None, "old words {old:#010b}");
            }
        }
        // Over zeroes, words 5 and 6 (reserved, zero) may be old; over the
        // stale record, words 2, 5 and 6.
        assert_eq!((whole, torn), (3 + 7, 510 - 10));
        // The store completed: the record is whole.
        img.write_torn_header(off2, &h2, 0);
        let (found, end) = img.scan();
        assert_eq!(seqs(&found), vec![1, 2]);
        assert_eq!(end.offset, off2 + h2.log_len());
    }

    /// Format version 2 proves a record's data by the order of the writes
    /// (data, fence, header line, fence), not by a checksum: a valid header
    /// line was stored after every byte of its data was persistent. So data
    /// damaged afterwards (a media error, a stray store), or data torn
    /// behind a header that somehow landed, is not seen by the scan: every
    /// record still scans, at its place, and nothing is reported corrupt.
    /// That is the intended behaviour (the array's table checksums each
    /// block at a CP); this test pins it, so that a change to it is seen.
    #[test]
    fn data_damage_is_not_seen_by_the_scan() {
        let mut img = Image::new(SIZE);
        let written = fill(&mut img, 8);
        let (clean, clean_end) = img.scan();
        assert_eq!(seqs(&clean), (1..=8).collect::<Vec<_>>());
        // One bit of every data byte (each bit position in turn) of a
        // record in the middle and of the last.
        for (off, data) in [&written[3], &written[7]] {
            for byte in 0..data.len() {
                let at = off + RECORD_HEADER_SIZE as u64 + byte as u64;
                img.flip(at, 1 << (byte % 8));
                let (found, end) = img.scan();
                assert_eq!(found, clean, "record at {off}, data byte {byte}");
                assert_eq!(end, clean_end);
                assert_eq!(img.after(&end), None);
                img.flip(at, 1 << (byte % 8));
            }
        }
        // The last record's last data line zero, or all its data (what a
        // header line stored before its data would leave): the same.
        let (last, data) = &written[7];
        let data_at = last + RECORD_HEADER_SIZE as u64;
        img.write(data_at + data.len() as u64 - 64, &[0; 64]);
        assert_eq!(img.scan(), (clean.clone(), clean_end));
        img.write(data_at, &vec![0; data.len()]);
        assert_eq!(img.scan(), (clean, clean_end));
    }

    #[test]
    fn corrupt_last_record_ends_the_scan_there() {
        let mut img = Image::new(SIZE);
        let written = fill(&mut img, 8);
        let (last, _) = written[7];
        // Every bit of the last record's header line: the scan stops at
        // it, and nothing follows (it cannot be told from a torn one).
        for bit in 0..64 * 8u64 {
            let mask = 1 << (bit % 8);
            img.flip(last + bit / 8, mask);
            let (found, end) = img.scan();
            assert_eq!(seqs(&found), (1..=7).collect::<Vec<_>>());
            assert_eq!(
                (end.offset, end.seq, end.stop),
                (last, 8, refusal_of_byte(bit as usize / 8)),
                "bit {bit}"
            );
            assert_eq!(img.after(&end), None);
            img.flip(last + bit / 8, mask);
        }
        assert_eq!(img.scan().1.records, 8);
    }

    #[test]
    fn record_of_another_log_ends_the_scan() {
        let mut img = Image::new(SIZE);
        let written = fill(&mut img, 4);
        let (off, seq) = img.head;
        // A record of an earlier format of the log, with the right sequence
        // number, where record 5 would go.
        let stale = RecordHeader {
            log_id: LOG_ID ^ 1,
            ..wr(seq, 0, 1)
        };
        img.write_record(off, &stale, &[5; 512]);
        let (found, end) = img.scan();
        assert_eq!(seqs(&found), vec![1, 2, 3, 4]);
        assert_eq!((end.offset, end.seq, end.stop), (off, 5, Invalid::LogId));
        // Also in the middle of the log: record 3 replaced.
        let (off3, _) = written[2];
        img.write_record(
            off3,
            &RecordHeader {
                log_id: LOG_ID ^ 1,
                ..wr(3, 16, 3)
            },
            &[3; 1536],
        );
        let (found, end) = img.scan();
        assert_eq!(seqs(&found), vec![1, 2]);
        assert_eq!((end.offset, end.stop), (off3, Invalid::LogId));
    }

    #[test]
    fn stale_lap_is_not_taken() {
        let mut img = Image::new(SIZE);
        // Record 7 from an older lap sits where record 3 would go.
        let h1 = wr(1, 0, 1);
        img.write_record(AREA_START, &h1, &[1; 512]);
        let h2 = wr(2, 0, 1);
        img.write_record(AREA_START + 576, &h2, &[2; 512]);
        let old = wr(7, 0, 1);
        img.write_record(AREA_START + 1152, &old, &[7; 512]);
        let (_, end) = img.scan();
        assert_eq!(end.records, 2);
        assert_eq!(end.stop, Invalid::Sequence);
    }

    #[test]
    fn corrupt_record_is_told_from_a_torn_one() {
        let mut img = Image::new(SIZE);
        let h1 = wr(1, 0, 8);
        img.write_record(AREA_START, &h1, &[1; 4096]);
        let off2 = AREA_START + h1.log_len();
        let h2 = wr(2, 8, 8);
        img.write_record(off2, &h2, &[2; 4096]);
        let off3 = off2 + h2.log_len();
        let h3 = wr(3, 16, 1);
        img.write_record(off3, &h3, &[3; 512]);
        // Clean end: nothing follows.
        let (_, end) = img.scan();
        assert_eq!(end.records, 3);
        assert_eq!(img.after(&end), None);
        // A bit flip in record 2's data is not seen by the log (the data
        // has no checksum there since format version 2): all three scan.
        let flip = off2 + 64 + 100;
        img.flip(flip, 0x10);
        let (_, end) = img.scan();
        assert_eq!((end.records, end.offset), (3, off3 + h3.log_len()));
        assert_eq!(img.after(&end), None);
        img.flip(flip, 0x10);
        // A flip in record 2's header: the scan stops there, and record 3
        // follows it: corrupt, not torn.
        img.write(off2 + 24, &[0xff]);
        let (_, end) = img.scan();
        assert_eq!(
            (end.records, end.offset, end.stop),
            (1, off2, Invalid::Checksum)
        );
        assert_eq!(img.after(&end), Some(off3));
        // Record 3 torn instead (the last one, as a power cut leaves it: its
        // header line only in part): nothing valid follows record 2, which
        // is whole again.
        img.write_record(off2, &h2, &[2; 4096]);
        img.write(off3 + 40, &[0; 24]);
        let (_, end) = img.scan();
        assert_eq!(
            (end.records, end.offset, end.stop),
            (2, off3, Invalid::Checksum)
        );
        assert_eq!(img.after(&end), None);
    }

    #[test]
    fn valid_record_found_behind_a_corrupt_one() {
        let mut img = Image::new(SIZE);
        let written = fill(&mut img, 50);
        // Any bit of record 20's header line flipped (magic, sequence
        // number, log id, fields, reserved bytes or checksum): the scan
        // stops there and record 21 is found behind it: corrupt, not torn.
        let (off20, _) = written[19];
        for bit in 0..64 * 8u64 {
            let mask = 1 << (bit % 8);
            img.flip(off20 + bit / 8, mask);
            let (found, end) = img.scan();
            assert_eq!(found.len(), 19, "bit {bit}");
            assert_eq!(
                (end.offset, end.seq, end.stop),
                (off20, 20, refusal_of_byte(bit as usize / 8)),
                "bit {bit}"
            );
            assert_eq!(img.after(&end), Some(written[20].0), "bit {bit}");
            img.flip(off20 + bit / 8, mask);
        }
        // Record 20's header line lost whole: the same.
        let line = img.line(off20);
        img.write(off20, &[0; 64]);
        let (found, end) = img.scan();
        assert_eq!((found.len(), end.stop), (19, Invalid::Magic));
        assert_eq!(img.after(&end), Some(written[20].0));
        img.write(off20, &line);
        assert_eq!(img.scan().1.records, 50);
        // The scan ends out of range: nothing to look for.
        let bad = CpMarker {
            log_id: LOG_ID,
            generation: 0,
            seq: 1,
            offset: AREA_START + 1,
        };
        let (found, end) = img.scan_from(&bad);
        assert!(found.is_empty());
        assert_eq!(end.stop, Invalid::Range);
        assert_eq!(img.after(&end), None);
    }

    #[test]
    fn scan_wraps_round_the_ring() {
        // The KUnit test: start near the end, a 1 MiB record does not fit,
        // so a wrap record goes first and the big one lands at the start of
        // the area.
        let mut img = Image::new(SIZE);
        let geo = img.geo;
        let start = geo.end - 4096;
        let big = wr(11, 64, MAX_RECORD_DATA / 512);
        let (wrap, at) = geo.place(start, big.log_len());
        assert!(wrap);
        assert_eq!(at, AREA_START);
        let w = RecordHeader {
            op: Op::Wrap,
            sector: 0,
            nr_sectors: 0,
            ..wr(10, 0, 1)
        };
        img.write_record(start, &w, &[]);
        let data = vec![0x3c; MAX_RECORD_DATA as usize];
        img.write_record(AREA_START, &big, &data);
        let from = CpMarker {
            log_id: LOG_ID,
            generation: 3,
            seq: 10,
            offset: start,
        };
        let (found, end) = img.scan_from(&from);
        assert_eq!(end.records, 2);
        assert_eq!(end.offset, AREA_START + big.log_len());
        assert_eq!(found.get(1).map(|f| f.offset), Some(AREA_START));
        assert_eq!(geo.distance(start, end.offset), 4096 + big.log_len());
    }

    #[test]
    fn record_ending_exactly_at_area_end() {
        let mut img = Image::new(SIZE);
        let geo = img.geo;
        let h = wr(5, 0, 7); // 64 + 3584 = 3648 bytes
        let start = geo.end - h.log_len();
        assert_eq!(geo.place(start, h.log_len()), (false, start));
        img.write_record(start, &h, &[9; 3584]);
        let next = wr(6, 0, 1);
        img.write_record(AREA_START, &next, &[1; 512]);
        let from = CpMarker {
            log_id: LOG_ID,
            generation: 1,
            seq: 5,
            offset: start,
        };
        let (_, end) = img.scan_from(&from);
        assert_eq!(end.records, 2);
        assert_eq!(end.offset, AREA_START + next.log_len());
    }

    #[test]
    fn many_laps_round_the_ring() {
        // Appends of 512 bytes to 64 KiB go round a log of 2.1 MiB several
        // times; a CP marker follows every 40 records, or comes first when
        // the next record would not fit (as `Log::fits`). Each CP's scan
        // finds exactly the records since the one before, wrap records
        // included, in order, and stops at the head.
        let mut img = Image::new(SIZE);
        let geo = img.geo;
        let mut cp = img.head;
        let mut since_cp: Vec<(u64, u64, Op)> = Vec::new();
        let mut wraps = 0;
        let mut cps = 0;
        let mut check_and_cp = |img: &mut Image, cp: &mut (u64, u64), since: &mut Vec<_>| {
            let (found, end) = img.scan_from(&CpMarker {
                log_id: LOG_ID,
                generation: cps,
                seq: cp.1,
                offset: cp.0,
            });
            let got: Vec<_> = found
                .iter()
                .map(|f| (f.offset, f.header.seq, f.header.op))
                .collect();
            assert_eq!(&got, since, "CP at {cp:?}");
            assert_eq!((end.offset, end.seq), img.head);
            // What lies at the head is an older lap, or nothing.
            assert!(matches!(end.stop, Invalid::Sequence | Invalid::Magic));
            assert_eq!(img.after(&end), None);
            *cp = img.head;
            since.clear();
            cps += 1;
        };
        for i in 0..400u64 {
            let data = bytes(512 * (1 + (i * 37 % 128) as usize), i as u32);
            let len = wr(1, 0, (data.len() / 512) as u32).log_len();
            let cost = match geo.place(img.head.0, len) {
                (false, _) => len,
                (true, _) => geo.end - img.head.0 + len,
            };
            if geo.distance(cp.0, img.head.0) + cost >= geo.capacity() {
                check_and_cp(&mut img, &mut cp, &mut since_cp);
            }
            let before = img.head;
            let at = img.append(i, &data);
            if at != before.0 {
                wraps += 1;
                since_cp.push((before.0, before.1, Op::Wrap));
            }
            since_cp.push((at, img.head.1 - 1, Op::Write));
            if i % 40 == 39 {
                check_and_cp(&mut img, &mut cp, &mut since_cp);
            }
        }
        assert!(wraps >= 5, "only {wraps} wraps");
        assert!(cps >= 10);
    }

    #[test]
    fn corrupt_wrap_record_is_told_from_a_torn_one() {
        let mut img = Image::new(SIZE);
        let geo = img.geo;
        // Record 1 ends 960 bytes before the area's end; the next record
        // (64 KiB) does not fit there: wrap record 2 there, record 3 at the
        // start.
        img.seek(geo.end - 8192, 1);
        img.set_cp(1, 1, geo.end - 8192, 1);
        img.append(0, &[1; 14 * 512]);
        let wrap_at = img.head.0;
        assert_eq!(wrap_at, geo.end - 960);
        let at3 = img.append(8, &[3; 65536]);
        assert_eq!(at3, AREA_START);
        let (found, end) = img.scan();
        assert_eq!(seqs(&found), vec![1, 2, 3]);
        assert_eq!(found[1].header.op, Op::Wrap);
        assert_eq!(found[1].offset, wrap_at);
        assert_eq!(found[2].offset, AREA_START);
        assert_eq!(end.offset, AREA_START + 64 + 65536);
        // The wrap record corrupt: the scan stops at it; record 3 at the
        // area's start shows it was whole once.
        img.flip(wrap_at + 40, 0x08);
        let (found, end) = img.scan();
        assert_eq!(seqs(&found), vec![1]);
        assert_eq!(
            (end.offset, end.seq, end.stop),
            (wrap_at, 2, Invalid::Checksum)
        );
        assert_eq!(img.after(&end), Some(AREA_START));
        // Record 1's header corrupt: the wrap record follows it.
        img.flip(wrap_at + 40, 0x08);
        img.flip(geo.end - 8192 + 28, 0x08);
        let (found, end) = img.scan();
        assert!(found.is_empty());
        assert_eq!(
            (end.offset, end.seq, end.stop),
            (geo.end - 8192, 1, Invalid::Checksum)
        );
        assert_eq!(img.after(&end), Some(wrap_at));
        img.flip(geo.end - 8192 + 28, 0x08);
        // (Record 1's data damaged instead is not seen: see
        // data_damage_is_not_seen_by_the_scan.)
        img.flip(geo.end - 8192 + 100, 0x08);
        assert_eq!(seqs(&img.scan().0), vec![1, 2, 3]);
        img.flip(geo.end - 8192 + 100, 0x08);
        // Record 3 torn, the last (its header line's words 3 and 4 old):
        // nothing follows.
        img.write(AREA_START + 24, &[0; 16]);
        let (found, end) = img.scan();
        assert_eq!(seqs(&found), vec![1, 2]);
        assert_eq!((end.offset, end.stop), (AREA_START, Invalid::Checksum));
        assert_eq!(img.after(&end), None);
    }

    #[test]
    fn scan_stops_when_each_says_so() {
        let mut img = Image::new(SIZE);
        let written = fill(&mut img, 10);
        let mut seen = 0;
        let r = scan(&img.bytes[..], img.geo, LOG_ID, &img.cp(), |f| {
            seen += 1;
            if f.header.seq == 4 {
                Err(f.offset)
            } else {
                Ok(())
            }
        });
        assert_eq!(seen, 4);
        assert_eq!(r, Err(written[3].0));
    }

    #[test]
    fn image_shorter_than_its_header_says() {
        // The header claims more than the image holds (a truncated dump):
        // reads past the end are refused, not a panic.
        let mut img = Image::new(SIZE);
        let written = fill(&mut img, 6);
        // Cut in record 5's data: the scan reads header lines only, so
        // record 5 is found (its data is the reader's to fetch) and the
        // scan stops at record 6's line, out of range.
        img.bytes.truncate(written[4].0 as usize + 100);
        let (found, end) = img.scan();
        assert_eq!(seqs(&found), vec![1, 2, 3, 4, 5]);
        assert_eq!((end.offset, end.stop), (written[5].0, Invalid::Range));
        assert_eq!(img.after(&end), None);
        // Cut in record 5's header line: it cannot be read.
        img.bytes.truncate(written[4].0 as usize + 40);
        let (found, end) = img.scan();
        assert_eq!(seqs(&found), vec![1, 2, 3, 4]);
        assert_eq!((end.offset, end.stop), (written[4].0, Invalid::Range));
        assert_eq!(img.after(&end), None);
    }
}
