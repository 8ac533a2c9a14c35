// SPDX-License-Identifier: GPL-2.0

//! swarmctl's command line (clap): the commands, their help for a storage
//! administrator, and the exit status (0 done, 1 refused or failed with a
//! message on stderr, 2 a usage error).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser, Subcommand};
use swarmctl::configfs::Configfs;
use swarmctl::{assemble, conf, watch_loop};

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
    /// The volumes to assemble (`swarmctl assemble`): lines `VOLUME NAME
    /// log=DEV array=DEV [swarm_width=N]`, `#` comments.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "/etc/swarmlog.conf"
    )]
    config: PathBuf,
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
        /// As `enable` with the volume's check_every_record set: on a block
        /// log, check the data of every record, not only of those a power
        /// cut may have torn (the last 2 MiB window).
        #[arg(long)]
        check_every_record: bool,
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
    /// Disable a volume (or every one): a final consistency point, then the
    /// disk goes.
    #[command(group(ArgGroup::new("which").required(true).args(["name", "all"])))]
    Disable {
        /// The volume's name.
        name: Option<String>,
        /// Every enabled volume (at shutdown), each told; exits 1 if one
        /// failed.
        #[arg(long)]
        all: bool,
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
    /// Follow a volume's replay until the volume is enabled or the replay
    /// fails.
    ///
    /// Run it while `swarmctl enable NAME` replays: it shows the messages
    /// applied, scanned so far, swarms, LOADs, skipped messages and the
    /// rate; once the scan has reached the log's valid end, the total and
    /// the time left at that rate. On a terminal a spinner (and a bar once
    /// the total is known), otherwise one line per interval. Exits 0 with a summary once the volume is
    /// enabled, 1 with the reason if the replay ends corrupt, in a panic,
    /// aborted, with records skipped, or the enable fails.
    Watch {
        /// The volume's name.
        name: String,
        /// Time between two reads of `status`, in milliseconds.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        interval_ms: u64,
        /// Wait for the replay to begin, instead of failing at once when
        /// the volume is not enabling; the previous replay's result is
        /// ignored meanwhile.
        #[arg(long)]
        wait: bool,
        /// Plain lines even on a terminal.
        #[arg(long)]
        plain: bool,
    },
    /// Draw a replay trace as an SVG timeline.
    ///
    /// The trace is a copy of /sys/kernel/debug/swarmlog/NAME/replay_trace
    /// (lines `time_ns swarm seq STATE`). The timeline has a row per message, blue while its LOAD is in flight, grey while it
    /// waits to MODIFY, red while suspended, a black tick when MODIFIED.
    Timeline {
        /// The trace file.
        trace: PathBuf,
        /// The SVG file to write; TRACE.svg by default.
        #[arg(short, long, value_name = "OUT.svg")]
        output: Option<PathBuf>,
        /// Draw the first N messages (in log order).
        #[arg(long, value_name = "N", default_value_t = 400)]
        messages: usize,
    },
    /// Make and enable the volumes of the configuration file, as at boot.
    ///
    /// The file is /etc/swarmlog.conf or --config FILE. A volume already enabled is left as it is, one made
    /// already with the same devices is enabled, nothing is ever
    /// formatted. Each volume's result is told; the others go on after a
    /// failure, and the exit status is 1 if any failed.
    #[command(group(ArgGroup::new("which").required(true).args(["name", "scan"])))]
    Assemble {
        /// Only this volume of the file.
        name: Option<String>,
        /// Every volume of the file.
        #[arg(long)]
        scan: bool,
    },
    /// Print the configuration file line of a volume, or of every volume.
    ///
    /// The line is made from configfs (`swarmctl config-line NAME >>
    /// /etc/swarmlog.conf`), as `mdadm --detail --scan` does; swarm_width is given when it is not the default 64.
    ConfigLine {
        /// The volume's name; every volume without it.
        name: Option<String>,
    },
    /// Print the name of the volume whose disk is DISK (e.g. swarmlog0).
    ///
    /// For udev's /dev/disk/by-swarmlog/NAME symlink
    /// (samples/boot/60-swarmlog.rules); exits 1 if no volume has it.
    UdevName {
        /// The kernel's name of the disk (udev's %k).
        disk: String,
    },
}

/// Prints the result of each volume, successes on stdout and failures on
/// stderr; a failure if any failed.
fn each(results: Vec<Result<String, String>>, none: &str) -> Result<String, String> {
    let total = results.len();
    let mut failed = 0;
    for r in results {
        match r {
            Ok(l) => println!("{l}"),
            Err(e) => {
                failed += 1;
                eprintln!("swarmctl: {e}");
            }
        }
    }
    match (total, failed) {
        (0, _) => Ok(format!("{none}\n")),
        (_, 0) => Ok(String::new()),
        _ => Err(format!("{failed} of {total} volumes failed")),
    }
}

fn run(cli: Cli) -> Result<String, String> {
    let c = Configfs::new(&cli.configfs);
    let done = |r: Result<(), String>, what: &str| r.map(|()| format!("{what}\n"));
    match cli.cmd {
        Cmd::Inspect {
            device,
            json,
            records,
            check_every_record,
        } => swarmctl::inspect_log(&device, (records, check_every_record), json),
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
            block_device(&log)
                .and_then(|()| block_device(&array))
                .and_then(|()| c.create(&name, &log, &array, format)),
            &format!(
                "{name}: created{}",
                if format { " and formatted" } else { "" }
            ),
        ),
        Cmd::Enable { name } => done(c.enable(&name), &format!("{name}: enabled")),
        Cmd::Disable {
            name: Some(name),
            all: false,
        } => done(c.disable(&name), &format!("{name}: disabled")),
        Cmd::Disable { .. } => each(assemble::disable_all(&c)?, "no volume enabled"),
        Cmd::Remove { name } => done(c.remove(&name), &format!("{name}: removed")),
        Cmd::Status { name, json } => swarmctl::status(&c, name.as_deref(), json),
        Cmd::Watch {
            name,
            interval_ms,
            wait,
            plain,
        } => watch_loop::run(&c, &name, Duration::from_millis(interval_ms), (wait, plain)),
        Cmd::Timeline {
            trace,
            output,
            messages,
        } => swarmctl::timeline(&trace, output.as_deref(), messages),
        Cmd::Assemble { name, .. } => {
            let vols = conf::load(&cli.config)?;
            let none = format!("no volumes in {}", cli.config.display());
            each(assemble::assemble(&c, &vols, name.as_deref())?, &none)
        }
        Cmd::ConfigLine { name } => assemble::config_lines(&c, name.as_deref()),
        Cmd::UdevName { disk } => assemble::udev_name(&c, &disk, 20, Duration::from_millis(50)),
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

/// `Ok` if `path` is a block device. The module takes any path in `log`
/// and `array` and finds out only at `enable`; `create` says at once.
fn block_device(path: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_block_device() => Ok(()),
        Ok(_) => Err(format!("{path}: not a block device")),
        Err(e) => Err(format!("{path}: {e}")),
    }
}
