// SPDX-License-Identifier: GPL-2.0

//! `swarmctl inspect` and `inspect-array`: open a device or image read-only,
//! run the format code's inspection over it (`swarmlog_format::inspect`,
//! `inspect_array`) and print what it found, as aligned lines or as one
//! JSON object.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use serde_json::{json, Value};
use swarmlog_format::inspect::{
    inspect_log_with, Cp, Intent, IntentState, LogMedium, LogReport, Marker, Scan,
};
use swarmlog_format::inspect_array::{inspect_array, ArrayReport, Copy, TableInfo};
use swarmlog_format::ReadAt;

use crate::human::{bytes, bytes_exact, uuid, Report};

/// Opens `path` read-only (a device is never written) and gives its size:
/// a block device's is where a seek to its end lands.
pub fn open(path: &Path) -> Result<(File, u64), String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = f
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("{}: cannot find its size: {e}", path.display()))?;
    Ok((f, size))
}

/// The log's inspection, human or JSON.
pub fn log<R: ReadAt + ?Sized>(
    src: &R,
    size: u64,
    (records, check_all): (bool, bool),
    as_json: bool,
) -> Result<String, String> {
    let r = inspect_log_with(src, size, records, check_all)?;
    Ok(if as_json {
        format!("{:#}\n", log_json(&r))
    } else {
        log_human(&r)
    })
}

fn marker_text(m: &Marker) -> String {
    format!(
        "generation {}, sequence number {}, offset {}",
        m.generation, m.seq, m.offset
    )
}

fn marker_json(m: &Marker) -> Value {
    json!({ "generation": m.generation, "seq": m.seq, "offset": m.offset })
}

fn medium(r: &LogReport) -> &'static str {
    match r.header.medium {
        LogMedium::Pmem => "pmem",
        LogMedium::Block => "block",
    }
}

fn log_human(r: &LogReport) -> String {
    let h = &r.header;
    let mut o = Report::default();
    o.section("log header");
    o.line("medium", medium(r));
    o.line("unit", bytes(h.unit));
    if h.window > 0 {
        o.line("in-flight window", bytes(h.window));
    }
    o.line("log id", format!("{:#018x}", h.log_id));
    o.line("array uuid", uuid(&h.array_uuid));
    o.line("log size", bytes_exact(h.log_size));
    o.line("device size", bytes_exact(r.device_size));
    o.line("block size", bytes(u64::from(h.block_size)));
    o.line(
        "record area",
        format!(
            "{}..{} ({})",
            h.area_start,
            h.area_end,
            bytes(h.area_end - h.area_start)
        ),
    );
    if h.slots > 0 {
        o.line(
            "slots",
            format!("{} of {}", h.slots, bytes(u64::from(h.block_size))),
        );
    }
    cp_human(&mut o, &r.cp, r.intent.as_ref());
    if let Some(s) = &r.scan {
        scan_human(&mut o, s);
    }
    if let Some(s) = &r.slots {
        o.section("slots from the CP marker");
        o.line("valid records", s.valid.to_string());
        o.line("replayed (newest of each block)", s.records.to_string());
        if let Some((i, why)) = &s.damaged {
            o.line("damaged", format!("slot {i}: {why}"));
        }
    }
    o.section("verdict");
    o.line("enable", &r.verdict);
    let mut out = o.render();
    if let Some(s) = r.scan.as_ref().filter(|s| !s.list.is_empty()) {
        out += &records_human(s);
    }
    out
}

fn cp_human(o: &mut Report, cp: &Cp, intent: Option<&Intent>) {
    o.section("CP markers");
    for (i, s) in cp.slots.iter().enumerate() {
        let text = match &s.marker {
            Ok(m) => marker_text(m),
            Err(why) => why.clone(),
        };
        let tag = if cp.in_force == Some(i) {
            " [in force]"
        } else {
            ""
        };
        o.line(format!("slot {i} (at {})", s.at), format!("{text}{tag}"));
    }
    o.line("in force", &cp.why);
    if let Some(p) = &cp.problem {
        o.line("problem", p);
    }
    if let Some(i) = intent {
        let text = match &i.marker {
            Some(m) => format!("{}: {}", i.why, marker_text(m)),
            None => i.why.clone(),
        };
        o.line(format!("intent (at {})", i.at), text);
    }
}

fn scan_human(o: &mut Report, s: &Scan) {
    o.section("scan from the CP marker");
    o.line("records", s.records.to_string());
    o.line("data", bytes(s.data_bytes));
    o.line("log in use", bytes(s.used_bytes));
    o.line(
        "valid end",
        format!(
            "offset {}, next sequence number {}",
            s.end_offset, s.end_seq
        ),
    );
    o.line("stop", format!("{}: {}", s.stop.name(), s.why));
    if let Some(at) = s.valid_after {
        o.line("valid record after it", format!("offset {at}"));
    }
}

/// The records found, one a line under column headings.
fn records_human(s: &Scan) -> String {
    let mut out = format!(
        "records\n  {:>14} {:>10}  {:<12} {:>14} {:>7}  data\n",
        "offset", "seq", "op", "sector", "sectors"
    );
    for r in &s.list {
        out += &format!(
            "  {:>14} {:>10}  {:<12} {:>14} {:>7}  {}\n",
            r.offset,
            r.seq,
            r.op,
            r.sector,
            r.nr_sectors,
            bytes(u64::from(r.data_len))
        );
    }
    out
}

fn log_json(r: &LogReport) -> Value {
    let h = &r.header;
    let slots: Vec<Value> =
        r.cp.slots
            .iter()
            .map(|s| match &s.marker {
                Ok(m) => json!({ "at": s.at, "valid": true, "marker": marker_json(m) }),
                Err(why) => json!({ "at": s.at, "valid": false, "why": why }),
            })
            .collect();
    let intent = r.intent.as_ref().map(|i| {
        json!({
            "at": i.at,
            "state": match i.state {
                IntentState::None => "none",
                IntentState::Done => "done",
                IntentState::Pending => "pending",
                IntentState::Impossible => "impossible",
            },
            "marker": i.marker.as_ref().map(marker_json),
            "why": i.why,
        })
    });
    let scan = r.scan.as_ref().map(|s| {
        let list: Vec<Value> = s
            .list
            .iter()
            .map(|x| {
                json!({
                    "offset": x.offset, "seq": x.seq, "op": x.op, "sector": x.sector,
                    "nr_sectors": x.nr_sectors, "data_len": x.data_len,
                })
            })
            .collect();
        json!({
            "records": s.records,
            "data_bytes": s.data_bytes,
            "used_bytes": s.used_bytes,
            "end_offset": s.end_offset,
            "end_seq": s.end_seq,
            "stop": s.stop.name(),
            "why": s.why,
            "valid_record_after": s.valid_after,
            "list": list,
        })
    });
    json!({
        "header": {
            "medium": medium(r),
            "unit": h.unit,
            "window": h.window,
            // A string: JSON readers lose a number's bits past 2^53.
            "log_id": format!("{:#018x}", h.log_id),
            "array_uuid": uuid(&h.array_uuid),
            "log_size": h.log_size,
            "block_size": h.block_size,
            "area_start": h.area_start,
            "area_end": h.area_end,
            "slots": h.slots,
        },
        "slot_scan": r.slots.as_ref().map(|s| json!({
            "valid": s.valid,
            "records": s.records,
            "newest_seq": s.newest_seq,
            "damaged": s.damaged.as_ref().map(|(i, why)| json!({ "slot": i, "why": why })),
        })),
        "device_size": r.device_size,
        "cp": {
            "slots": slots,
            "in_force": r.cp.in_force,
            "why": r.cp.why,
            "problem": r.cp.problem,
        },
        "intent": intent,
        "scan": scan,
        "verdict": r.verdict,
    })
}

/// The array's inspection, human or JSON.
pub fn array<R: ReadAt + ?Sized>(
    src: &R,
    size: u64,
    (committed, all_tables): (Option<u64>, bool),
    as_json: bool,
) -> Result<String, String> {
    let r = inspect_array(src, size, committed, all_tables)?;
    Ok(if as_json {
        format!("{:#}\n", array_json(&r))
    } else {
        array_human(&r)
    })
}

fn copy_text(c: &Copy) -> String {
    match c {
        Ok(g) => format!("generation {g}"),
        Err(why) => why.clone(),
    }
}

fn which(c: Option<usize>) -> &'static str {
    match c {
        Some(0) => "A",
        Some(_) => "B",
        None => "none",
    }
}

fn array_human(r: &ArrayReport) -> String {
    let blocks = |n: u64| format!("{n} ({})", bytes(n.saturating_mul(r.block_size)));
    let mut o = Report::default();
    o.section("array superblock");
    o.line("uuid", uuid(&r.uuid));
    o.line("block size", bytes(r.block_size));
    o.line("data blocks", blocks(r.data_blocks));
    o.line(
        "table blocks",
        format!(
            "{} x 2 copies ({} entries each), from block 1",
            r.table_blocks, r.entries_per_table_block
        ),
    );
    o.line("data start", format!("block {}", r.data_start));
    o.line("blocks used", blocks(r.array_blocks));
    o.line("device size", bytes_exact(r.device_size));
    if !r.fits {
        o.line(
            "problem",
            "the array is smaller than when it was formatted; enable refuses it (EINVAL)",
        );
    }
    o.line("cp generation", r.cp_generation.to_string());
    o.section("table copies");
    o.line(
        "judged against",
        r.committed.map_or_else(
            || "the newest valid copy (give --cp-generation for the log's)".to_string(),
            |c| format!("CP generation {c}"),
        ),
    );
    let t = &r.tables;
    o.line("checked", format!("{} of {}", t.checked, r.table_blocks));
    o.line(
        "in force",
        format!("copy A {}, copy B {}", t.copy_a, t.copy_b),
    );
    o.line("pending (a CP cut short)", t.pending.to_string());
    o.line("damaged in both copies", t.damaged_count.to_string());
    if !t.damaged.is_empty() {
        let ids: Vec<String> = t.damaged.iter().map(u64::to_string).collect();
        o.line("damaged (first)", ids.join(" "));
    }
    for d in &t.detail {
        o.line(
            format!("table block {} (block {})", d.index, d.block),
            format!(
                "A: {}; B: {}; in force: {}",
                copy_text(&d.copies[0]),
                copy_text(&d.copies[1]),
                which(d.in_force)
            ),
        );
    }
    o.render()
}

fn table_json(d: &TableInfo) -> Value {
    let copy = |c: &Copy| match c {
        Ok(g) => json!({ "valid": true, "generation": g }),
        Err(why) => json!({ "valid": false, "why": why }),
    };
    json!({
        "index": d.index,
        "block": d.block,
        "copy_a": copy(&d.copies[0]),
        "copy_b": copy(&d.copies[1]),
        "in_force": which(d.in_force),
        "pending": d.pending.map(|p| which(Some(p))),
    })
}

fn array_json(r: &ArrayReport) -> Value {
    let t = &r.tables;
    json!({
        "uuid": uuid(&r.uuid),
        "block_size": r.block_size,
        "data_blocks": r.data_blocks,
        "table_blocks": r.table_blocks,
        "entries_per_table_block": r.entries_per_table_block,
        "data_start": r.data_start,
        "array_blocks": r.array_blocks,
        "device_size": r.device_size,
        "fits": r.fits,
        "cp_generation": r.cp_generation,
        "committed": r.committed,
        "tables": {
            "checked": t.checked,
            "copy_a": t.copy_a,
            "copy_b": t.copy_b,
            "pending": t.pending,
            "damaged_count": t.damaged_count,
            "damaged": t.damaged,
            "detail": t.detail.iter().map(table_json).collect::<Vec<_>>(),
        },
    })
}
