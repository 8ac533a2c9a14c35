// SPDX-License-Identifier: GPL-2.0

//! `swarmctl inspect` and `inspect-array` on images crafted in memory with
//! the format code (`swarmlog_format::image`): pmem and block logs clean,
//! with records, torn, corrupt, wrapped, with another log's record; the
//! verdicts come from the module's own scan, and the outputs' shapes.

use swarmlog_format::image::{array_image, seal_table, LogImage, RecordKind};
use swarmlog_format::inspect::{inspect_log, inspect_log_with, IntentState, LogReport, Scan, Stop};

const ID: u64 = 0x5eed_0000_0000_0042;
const MIB: u64 = 1 << 20;

fn pmem() -> LogImage {
    LogImage::pmem(4 * MIB, ID).unwrap()
}

fn report(img: &LogImage) -> LogReport {
    let b = img.bytes().to_vec();
    inspect_log(&b, b.len() as u64, true).unwrap()
}

fn scan_of(img: &LogImage) -> Scan {
    report(img).scan.unwrap()
}

/// Appends `n` writes of 1 to 8 sectors; returns their offsets.
fn writes(img: &mut LogImage, n: u64) -> Vec<u64> {
    (0..n)
        .map(|i| img.append(RecordKind::Write, i * 8, 1 + (i % 8) as u32, i as u8))
        .collect()
}

#[test]
fn pmem_clean_log() {
    let r = report(&pmem());
    assert_eq!(r.header.unit, 64);
    assert_eq!(r.cp.in_force, Some(0));
    let s = r.scan.unwrap();
    assert_eq!((s.records, s.stop, s.end_seq), (0, Stop::End, 1));
    assert_eq!(r.verdict, "clean: nothing to replay");
}

#[test]
fn pmem_several_records() {
    let mut img = pmem();
    let offs = writes(&mut img, 4);
    img.append(RecordKind::Discard, 100, 16, 0);
    img.append(RecordKind::WriteZeroes, 200, 8, 0);
    let s = scan_of(&img);
    assert_eq!((s.records, s.stop, s.end_seq), (6, Stop::End, 7));
    assert_eq!(s.data_bytes, (1 + 2 + 3 + 4) * 512);
    let ops: Vec<&str> = s.list.iter().map(|r| r.op).collect();
    assert_eq!(
        ops,
        [
            "write",
            "write",
            "write",
            "write",
            "discard",
            "write-zeroes"
        ]
    );
    assert_eq!(s.list[2].offset, offs[2]);
    assert_eq!((s.list[4].sector, s.list[4].nr_sectors), (100, 16));
    assert_eq!(s.end_offset, img.head().0);
}

#[test]
fn pmem_torn_last_record_is_the_end() {
    let mut img = pmem();
    let offs = writes(&mut img, 3);
    // A power cut in the last header line's store: a word of it old.
    img.bytes_mut()[offs[2] as usize + 40] ^= 0xff;
    let r = report(&img);
    let s = r.scan.unwrap();
    assert_eq!((s.records, s.stop, s.end_offset), (2, Stop::Torn, offs[2]));
    assert_eq!(s.valid_after, None);
    assert_eq!(r.verdict, "replays 2 records");
}

#[test]
fn pmem_corrupt_middle_record_is_refused() {
    let mut img = pmem();
    let offs = writes(&mut img, 3);
    img.bytes_mut()[offs[1] as usize + 24] ^= 0x10;
    let r = report(&img);
    let s = r.scan.unwrap();
    assert_eq!(
        (s.records, s.stop, s.end_offset),
        (1, Stop::Corrupt, offs[1])
    );
    assert_eq!(s.valid_after, Some(offs[2]));
    assert!(r.verdict.contains("EUCLEAN"), "{}", r.verdict);
}

#[test]
fn pmem_wrapped_log() {
    let mut img = pmem();
    let (start, end, _) = img.area();
    // A CP left the head 4 KiB before the area's end: a 4 KiB write (and
    // its header) no longer fits there, a wrap record goes first.
    img.checkpoint_at(end - 4096, 10);
    img.append(RecordKind::Write, 0, 8, 1);
    img.append(RecordKind::Write, 8, 1, 2);
    let r = report(&img);
    assert_eq!(r.cp.in_force, Some(1));
    let s = r.scan.unwrap();
    let got: Vec<(u64, &str)> = s.list.iter().map(|r| (r.offset, r.op)).collect();
    assert_eq!(
        got,
        [
            (end - 4096, "wrap"),
            (start, "write"),
            (start + 64 + 4096, "write")
        ]
    );
    assert_eq!((s.records, s.end_seq, s.stop), (3, 13, Stop::End));
    assert_eq!(s.used_bytes, 4096 + 64 + 4096 + 64 + 512);
}

#[test]
fn pmem_record_of_another_log() {
    // At the end: an earlier format's record, where the log ends.
    let mut img = pmem();
    writes(&mut img, 2);
    let mut end = img.clone();
    end.append_of(ID ^ 1, RecordKind::Write, (0, 1), 9);
    let s = scan_of(&end);
    assert_eq!((s.records, s.stop), (2, Stop::End));
    assert!(s.why.contains("another log"), "{}", s.why);
    // In the middle, records of this log after it: it replaced one that
    // was acknowledged, so the log is corrupt there.
    img.append_of(ID ^ 1, RecordKind::Write, (0, 1), 9);
    let after = img.append(RecordKind::Write, 0, 1, 3);
    let s = scan_of(&img);
    assert_eq!((s.records, s.stop), (2, Stop::Corrupt));
    assert_eq!(s.valid_after, Some(after));
}

#[test]
fn cp_markers_in_force_and_refused() {
    let mut img = pmem();
    writes(&mut img, 2);
    let (head, seq) = img.head();
    img.checkpoint_at(head, seq);
    let r = report(&img);
    assert_eq!(r.cp.in_force, Some(1));
    assert!(
        r.cp.why.contains("higher generation (2 against 1)"),
        "{}",
        r.cp.why
    );
    assert_eq!(r.scan.unwrap().records, 0);
    // Slot 1 torn: slot 0 is in force again and the two records replay.
    let slot1 = r.cp.slots[1].at as usize;
    img.bytes_mut()[slot1 + 20] ^= 1;
    let r = report(&img);
    assert_eq!(r.cp.in_force, Some(0));
    assert!(r.cp.slots[1]
        .marker
        .as_ref()
        .unwrap_err()
        .contains("checksum"));
    assert_eq!(r.scan.unwrap().records, 2);
    // Neither slot: EUCLEAN, no scan.
    img.bytes_mut()[64 + 20] ^= 1;
    let r = report(&img);
    assert_eq!((r.cp.in_force, r.scan), (None, None));
    assert!(r.verdict.contains("EUCLEAN"));
}

#[test]
fn a_cp_cut_short_is_pending() {
    let mut img = pmem();
    writes(&mut img, 3);
    img.intent_at_head();
    let r = report(&img);
    assert_eq!(r.intent.unwrap().state, IntentState::Pending);
}

fn block(unit: u32) -> LogImage {
    LogImage::block(8 * MIB, unit, ID).unwrap()
}

#[test]
fn block_log_clean_and_with_records() {
    for unit in [512, 4096] {
        let mut img = block(unit);
        let r = report(&img);
        assert_eq!((r.header.unit, r.header.window), (u64::from(unit), 2 * MIB));
        assert_eq!(r.header.area_start, u64::from(unit * 4).max(4096));
        assert_eq!(r.cp.slots[1].at, 2 * u64::from(unit));
        assert_eq!(r.scan.unwrap().stop, Stop::End);
        let offs = writes(&mut img, 5);
        let s = scan_of(&img);
        assert_eq!((s.records, s.stop), (5, Stop::End));
        // Each record: a header unit, then its data padded to units.
        assert_eq!(offs[1] - offs[0], 2 * u64::from(unit).max(512));
    }
}

/// A block log with 48 records of 64 KiB (more than the 2 MiB window).
fn block_full() -> (LogImage, Vec<u64>) {
    let mut img = block(4096);
    let offs = (0..48)
        .map(|i| img.append(RecordKind::Write, i * 128, 128, i as u8))
        .collect();
    (img, offs)
}

#[test]
fn block_bad_record_within_the_window_is_torn() {
    let (mut img, offs) = block_full();
    assert_eq!(scan_of(&img).records, 48);
    // Record 45's data damaged: the records after it are within a window
    // of it, so they may have landed before it did: a torn end.
    img.bytes_mut()[offs[45] as usize + 4096 + 100] ^= 1;
    let s = scan_of(&img);
    assert_eq!(
        (s.records, s.stop, s.end_offset),
        (45, Stop::Torn, offs[45])
    );
    assert!(s.why.contains("data checksum"), "{}", s.why);
}

#[test]
fn block_bad_record_beyond_the_window_is_corrupt() {
    let (mut img, offs) = block_full();
    let corrupt = |r: LogReport| {
        let s = r.scan.unwrap();
        assert_eq!(
            (s.records, s.stop, s.end_offset),
            (2, Stop::Corrupt, offs[2])
        );
        let at = s.valid_after.unwrap();
        assert!(at >= offs[2] + 2 * MIB && at < offs[2] + 3 * MIB + 4096);
        assert!(r.verdict.contains("EUCLEAN"), "{}", r.verdict);
    };
    // Record 2's data damaged, a window of records after it: complete, so
    // its data is not checked by default, as `enable` does not: the whole
    // log replays. With every record checked: corrupt.
    let at = offs[2] as usize + 4096 + 100;
    img.bytes_mut()[at] ^= 1;
    let r = report(&img);
    assert_eq!(r.verdict, "replays 48 records");
    let b = img.bytes().to_vec();
    corrupt(inspect_log_with(&b, b.len() as u64, true, true).unwrap());
    // Its header damaged instead: corrupt either way.
    img.bytes_mut()[at] ^= 1;
    img.bytes_mut()[offs[2] as usize + 20] ^= 1;
    corrupt(report(&img));
}

#[test]
fn refusals_and_bad_input() {
    let zero = vec![0u8; MIB as usize];
    let e = inspect_log(&zero, MIB, false).unwrap_err();
    assert!(e.contains("nothing of swarmlog's on it"), "{e}");
    // An image cut shorter than its header says.
    let img = pmem();
    let short = img.bytes()[..(2 * MIB) as usize].to_vec();
    let e = inspect_log(&short, 2 * MIB, false).unwrap_err();
    assert!(e.contains("past the end of the device"), "{e}");
    // Shorter than a header line.
    assert!(inspect_log(&vec![0u8; 10], 10, false).is_err());
}

#[test]
fn json_shape() {
    let mut img = pmem();
    let offs = writes(&mut img, 3);
    img.bytes_mut()[offs[1] as usize + 24] ^= 0x10;
    let b = img.bytes().to_vec();
    let out = swarmctl::inspect::log(&b, b.len() as u64, (true, false), true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["header"]["medium"], "pmem");
    assert_eq!(v["header"]["log_id"], format!("{ID:#018x}"));
    assert_eq!(v["cp"]["in_force"], 0);
    assert_eq!(v["cp"]["slots"][0]["marker"]["seq"], 1);
    assert_eq!(v["cp"]["slots"][1]["valid"], false);
    assert_eq!(v["intent"]["state"], "none");
    assert_eq!(v["scan"]["records"], 1);
    assert_eq!(v["scan"]["stop"], "corrupt");
    assert_eq!(v["scan"]["valid_record_after"], offs[2]);
    assert_eq!(v["scan"]["list"][0]["op"], "write");
    assert_eq!(v["scan"]["list"][0]["data_len"], 512);
    assert!(v["verdict"].as_str().unwrap().contains("EUCLEAN"));
}

#[test]
fn human_output() {
    let mut img = block(4096);
    writes(&mut img, 2);
    let b = img.bytes().to_vec();
    let out = swarmctl::inspect::log(&b, b.len() as u64, (false, false), false).unwrap();
    let col = out
        .lines()
        .find(|l| l.contains("medium:"))
        .unwrap()
        .find("block");
    for (line, value) in [
        ("  medium:", "block"),
        ("  in-flight window:", "2.0 MiB"),
        ("  log size:", "8.0 MiB (8388608 bytes)"),
        ("  records:", "2"),
        ("  stop:", "end: no record there"),
    ] {
        let l = out.lines().find(|l| l.starts_with(line)).expect(line);
        assert_eq!(l.find(value), col, "{l:?} not aligned in\n{out}");
        assert!(l.ends_with(value), "{l:?}");
    }
}

#[test]
fn array_superblock_and_table_copies() {
    let mut img = array_image(4096, [7; 16], 3).unwrap();
    let size = img.len() as u64;
    let r = swarmlog_format::inspect_array::inspect_array(&img, size, None, true).unwrap();
    assert_eq!(r.uuid, [7; 16]);
    assert_eq!(r.table_blocks, r.data_blocks.div_ceil(254));
    assert_eq!(r.data_start, 1 + 2 * r.table_blocks);
    assert!(r.fits && r.array_blocks <= 4096);
    assert_eq!(
        (r.tables.checked, r.tables.copy_a),
        (r.table_blocks, r.table_blocks)
    );
    // Copy B of table block 0 written by the CP after 3, cut short: the
    // newest valid copy is B, but against the log's generation 3 copy A is
    // in force and B is pending.
    seal_table(&mut img, 0, 1, 4);
    let r = swarmlog_format::inspect_array::inspect_array(&img, size, None, false).unwrap();
    assert_eq!(r.tables.detail[0].in_force, Some(1));
    let r = swarmlog_format::inspect_array::inspect_array(&img, size, Some(3), false).unwrap();
    assert_eq!(
        (r.tables.detail[0].in_force, r.tables.detail[0].pending),
        (Some(0), Some(1))
    );
    assert_eq!(r.tables.pending, 1);
    // The last table block damaged in copy A (copy B never written).
    let last = (1 + 2 * (r.table_blocks - 1)) as usize * 4096;
    img[last + 8] ^= 1;
    let out = swarmctl::inspect::array(&img, size, (Some(3), true), true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tables"]["damaged"][0], r.table_blocks - 1);
    assert_eq!(v["tables"]["detail"][0]["pending"], "B");
    assert_eq!(v["uuid"], "07070707-0707-0707-0707-070707070707");
    // An array cut shorter than its layout: enable refuses it.
    let short = img[..(size / 2) as usize].to_vec();
    let out = swarmctl::inspect::array(&short, size / 2, (None, false), false).unwrap();
    assert!(out.contains("smaller than when it was formatted"), "{out}");
    let e = swarmctl::inspect::array(&vec![0u8; 4096], 4096, (None, false), false);
    assert!(e.unwrap_err().contains("nothing of swarmlog's"));
}
