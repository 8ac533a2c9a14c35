// SPDX-License-Identifier: GPL-2.0

//! `swarmlog-craft LOG_HEAD ARRAY_HEAD OUT_DIR`: the hostile lines of
//! `swarmlog_format::craft` for the volume whose log begins with the bytes
//! of file LOG_HEAD and whose array begins with those of ARRAY_HEAD (at
//! least 64: the superblock). The log is on pmem or on a block device, as
//! its header's magic says: LOG_HEAD holds at least its header and both CP
//! slots, the first 192 bytes of a pmem log, the first 16 KiB of a block
//! log (`craft::BLOCK_LOG_HEAD`: its header, slot and intent units for any
//! logical block size). Writes OUT_DIR/NN.line (64 bytes each) and
//! OUT_DIR/cases, a line per case: `NN log|array OFFSET ERRNO what`, OFFSET
//! the line's byte offset on its device, ERRNO `EINVAL`, `EUCLEAN` or
//! `EMEDIUMTYPE`. A test tool (`scenarios/crafted-metadata`), not an
//! operator's.

use std::process::ExitCode;

use swarmlog_format::craft::{hostile_lines, log_medium, Device};

/// Writes the cases; returns how many, and the log's medium in words.
fn run(args: &[String]) -> Result<(usize, String), String> {
    let [log_head, array_head, out] = args else {
        return Err("usage: swarmlog-craft LOG_HEAD ARRAY_HEAD OUT_DIR".into());
    };
    let read = |p: &String| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
    let log_head = read(log_head)?;
    let cases = hostile_lines(&log_head, &read(array_head)?)?;
    let medium = log_medium(&log_head)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{out}: {e}"))?;
    let mut list = String::new();
    for (n, c) in cases.iter().enumerate() {
        let name = format!("{out}/{n:02}.line");
        std::fs::write(&name, c.line).map_err(|e| format!("{name}: {e}"))?;
        let dev = match c.device {
            Device::Log => "log",
            Device::Array => "array",
        };
        list.push_str(&format!(
            "{n:02} {dev} {} {} {}\n",
            c.offset, c.errno, c.what
        ));
    }
    std::fs::write(format!("{out}/cases"), list).map_err(|e| format!("{out}/cases: {e}"))?;
    Ok((cases.len(), medium))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok((n, medium)) => {
            println!("swarmlog-craft: {n} cases (a log on {medium})");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("swarmlog-craft: {e}");
            ExitCode::from(2)
        }
    }
}
