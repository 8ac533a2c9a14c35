// SPDX-License-Identifier: GPL-2.0

//! `swarmlog-craft LOG_HEAD ARRAY_HEAD OUT_DIR`: the hostile lines of
//! `swarmlog_format::craft` for the volume whose log begins with the bytes
//! of file LOG_HEAD (at least 192: the header and both CP slots) and whose
//! array begins with those of ARRAY_HEAD (at least 64: the superblock).
//! Writes OUT_DIR/NN.line (64 bytes each) and OUT_DIR/cases, a line per
//! case: `NN log|array OFFSET ERRNO what`. A test tool
//! (`scenarios/crafted-metadata`), not an operator's.

use std::process::ExitCode;

use swarmlog_format::craft::{hostile_lines, Device};

fn run(args: &[String]) -> Result<usize, String> {
    let [log_head, array_head, out] = args else {
        return Err("usage: swarmlog-craft LOG_HEAD ARRAY_HEAD OUT_DIR".into());
    };
    let read = |p: &String| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
    let cases = hostile_lines(&read(log_head)?, &read(array_head)?)?;
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
    Ok(cases.len())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(n) => {
            println!("swarmlog-craft: {n} cases");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("swarmlog-craft: {e}");
            ExitCode::from(2)
        }
    }
}
