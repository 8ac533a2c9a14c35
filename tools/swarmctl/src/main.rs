// SPDX-License-Identifier: GPL-2.0

//! swarmctl's command line (clap): the commands, their help for a storage
//! administrator, and the exit status (0 done, 1 refused or failed with a
//! message on stderr, 2 a usage error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use swarmctl::configfs::Configfs;

/// Operate swarmlog volumes: a write-ahead log (pmem or a block device) in
/// front of an md array, exposed as one block device.
#[derive(Parser)]
#[command(name = "swarmctl", version, propagate_version = true)]
struct Cli {
    /// The swarmlog configfs directory.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/sys/kernel/config/swarmlog"
    )]
    configfs: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show what a log holds, offline and read-only: its header, both CP
    /// markers, and the records past the one in force up to the log's valid
    /// end (and whether that end is the log's end, a torn write or
    /// corruption that `enable` refuses).
    ///
    /// Run it on the log device of a disabled volume (it is opened
    /// read-only and never written) or on an image of it (`dd
    /// if=/dev/pmem0 of=log.img`). It decides as the module's `enable`
    /// does, with the module's own format code.
    Inspect {
        /// The log device (e.g. /dev/pmem0, /dev/nvme1n1) or an image file.
        #[arg(value_name = "LOGDEV|IMAGE")]
        device: PathBuf,
        /// Print one JSON object instead of lines.
        #[arg(long)]
        json: bool,
        /// List every record: offset, sequence number, operation, sector,
        /// sectors, data length.
        #[arg(long)]
        records: bool,
    },
    /// Show an array's swarmlog metadata, offline and read-only: the
    /// superblock (UUID, sizes, table layout) and which copy of the table
    /// blocks is in force.
    InspectArray {
        /// The array device (e.g. /dev/md0) or an image file.
        #[arg(value_name = "ARRAYDEV|IMAGE")]
        device: PathBuf,
        /// Print one JSON object instead of lines.
        #[arg(long)]
        json: bool,
        /// The log's CP generation (the marker in force, from `swarmctl
        /// inspect LOGDEV`): pick the table copies as the module would.
        /// Without it the newest valid copy is shown as in force.
        #[arg(long, value_name = "N")]
        cp_generation: Option<u64>,
        /// Check every table block (reads 8 KiB per 254 data blocks, about
        /// 0.8% of the array); by default only the first and the last.
        #[arg(long)]
        tables: bool,
    },
    /// Make a volume: its configfs directory, its log and array devices,
    /// and with --format a fresh log and metadata area (destroying what
    /// both devices hold).
    Create {
        /// The volume's name (its configfs directory).
        name: String,
        /// The log device: pmem with DAX or any block device.
        #[arg(long, value_name = "DEV")]
        log: String,
        /// The backing device, e.g. an md array.
        #[arg(long, value_name = "DEV")]
        array: String,
        /// Format both devices now: everything on them is lost.
        #[arg(long)]
        format: bool,
    },
    /// Enable a volume: open its devices, replay the log if a crash left
    /// records in it, and expose /dev/swarmlogN.
    Enable {
        /// The volume's name.
        name: String,
    },
    /// Disable a volume: a final consistency point, then the disk goes.
    Disable {
        /// The volume's name.
        name: String,
    },
    /// Remove a volume (disabling it first if enabled). The devices keep
    /// the log and the data.
    Remove {
        /// The volume's name.
        name: String,
    },
    /// Show the state and counters of one volume or of all.
    Status {
        /// The volume's name; every volume without it.
        name: Option<String>,
        /// Print one JSON object, a member per volume with every key.
        #[arg(long)]
        json: bool,
    },
}

fn run(cli: Cli) -> Result<String, String> {
    let c = Configfs::new(&cli.configfs);
    let done = |r: Result<(), String>, what: &str| r.map(|()| format!("{what}\n"));
    match cli.cmd {
        Cmd::Inspect {
            device,
            json,
            records,
        } => swarmctl::inspect_log(&device, records, json),
        Cmd::InspectArray {
            device,
            json,
            cp_generation,
            tables,
        } => swarmctl::inspect_array(&device, cp_generation, tables, json),
        Cmd::Create {
            name,
            log,
            array,
            format,
        } => done(
            c.create(&name, &log, &array, format),
            &format!(
                "{name}: created{}",
                if format { " and formatted" } else { "" }
            ),
        ),
        Cmd::Enable { name } => done(c.enable(&name), &format!("{name}: enabled")),
        Cmd::Disable { name } => done(c.disable(&name), &format!("{name}: disabled")),
        Cmd::Remove { name } => done(c.remove(&name), &format!("{name}: removed")),
        Cmd::Status { name, json } => swarmctl::status(&c, name.as_deref(), json),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("swarmctl: {e}");
            ExitCode::FAILURE
        }
    }
}
