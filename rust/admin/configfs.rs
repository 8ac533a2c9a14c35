// SPDX-License-Identifier: GPL-2.0

//! The configfs interface: `/sys/kernel/config/swarmlog/<name>/`.
//!
//! One group per volume. The attributes are those of
//! `Documentation/swarmlog/admin-guide.rst`.

use core::ffi::c_void;
use core::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed},
};
use kernel::{
    configfs::{self, AttributeOperations},
    configfs_attrs,
    debugfs::{Dir, File},
    fmt::Write as _,
    new_condvar, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    str::CString,
    sync::{CondVar, Mutex},
};

use super::active::Active;
use crate::device::{self, CpFault};
use crate::replay::trace::Trace;
use crate::replay::{Fault, Params, Progress, Report};

/// Number of the next volume's disk (`swarmlogN`).
static NEXT_DISK: AtomicU32 = AtomicU32::new(0);

/// Longest device path accepted in `log` and `array`.
const MAX_PATH: usize = 256;
/// Default and largest `swarm_width`.
pub(crate) const DEFAULT_SWARM_WIDTH: u32 = 64;
pub(crate) const MAX_SWARM_WIDTH: u32 = 4096;

pub(crate) fn subsystem() -> impl PinInit<configfs::Subsystem<Config>, Error> {
    let item_type = configfs_attrs! {
        container: configfs::Subsystem<Config>,
        data: Config,
        child: Volume,
        attributes: [],
    };
    configfs::Subsystem::new(
        c"swarmlog",
        item_type,
        try_pin_init!(Config {
            debugfs: Dir::new(c"swarmlog"),
        }),
    )
}

/// The subsystem's own data.
#[pin_data]
pub(crate) struct Config {
    /// `/sys/kernel/debug/swarmlog/`, with a directory per volume.
    debugfs: Dir,
}

#[vtable]
impl configfs::GroupOperations for Config {
    type Child = Volume;

    fn make_group(&self, name: &CStr) -> Result<impl PinInit<configfs::Group<Volume>, Error>> {
        let item_type = configfs_attrs! {
            container: configfs::Group<Volume>,
            data: Volume,
            attributes: [
                log: 0,
                array: 1,
                swarm_width: 2,
                status: 3,
                format: 4,
                enable: 5,
                disk: 6,
                discard_skipped: 7,
                discard_corrupt: 8,
                check_every_record: 9,
                log_slots: 10,
            ],
        };
        let disk = CString::try_from_fmt(fmt!("swarmlog{}", NEXT_DISK.fetch_add(1, Relaxed)))?;
        let (debugfs, trace) = Trace::create(&self.debugfs, name)?;
        #[cfg(CONFIG_KUNIT = "y")]
        let fault = KBox::pin_init(
            debugfs.read_write_file(c"replay_fault", kernel::sync::atomic::Atomic::new(0u32)),
            GFP_KERNEL,
        )?;
        Ok(configfs::Group::new(
            name.try_into()?,
            item_type,
            try_pin_init!(Volume {
                trace,
                #[cfg(CONFIG_KUNIT = "y")]
                fault,
                _debugfs: debugfs,
                progress: Progress::default(),
                settled <- new_condvar!(),
                inner <- new_mutex!(VolumeConfig {
                    name: name.try_into()?,
                    log: None,
                    array: None,
                    swarm_width: DEFAULT_SWARM_WIDTH,
                    disk,
                    active: None,
                    enabling: false,
                    started: None,
                    discard_skipped: false,
                    discard_corrupt: false,
                    check_every_record: false,
                    log_slots: true,
                    report: Report::default(),
                }),
            }),
        ))
    }
}

/// One volume's configfs group.
#[pin_data]
pub(crate) struct Volume {
    #[pin]
    inner: Mutex<VolumeConfig>,
    /// Signalled when an `enable` (and its replay) ends.
    #[pin]
    settled: CondVar,
    /// The running replay's progress, read by `status` without waiting for
    /// it, and the abort `enable` 0 asks for.
    progress: Progress,
    /// The last replay's transitions (debugfs `replay_trace`).
    trace: Pin<KBox<File<Trace>>>,
    /// Test kernels only (KUnit built in): debugfs `replay_fault`, a fault
    /// the next replays inject to reach the panic state, which a correct
    /// engine never enters: 1 the first message of a swarm is suspended, 2
    /// retransferred messages are suspended again; or, for the CPs of the
    /// volume enabled next (`Limits::cp_fault`), 3: they stall in the
    /// middle, 4: they do not flush the array before the marker; 5: its
    /// block log's records are written without FUA; 0 none.
    #[cfg(CONFIG_KUNIT = "y")]
    fault: Pin<KBox<File<kernel::sync::atomic::Atomic<u32>>>>,
    /// The volume's debugfs directory.
    _debugfs: Dir,
}

/// What the administrator has configured for a volume, and the volume when
/// it is enabled.
struct VolumeConfig {
    name: CString,
    log: Option<CString>,
    array: Option<CString>,
    swarm_width: u32,
    disk: CString,
    active: Option<Active>,
    /// An `enable` is opening the volume and replaying its log (without
    /// this mutex, so that `status` answers meanwhile).
    enabling: bool,
    /// When the running (or last) `enable` began.
    started: Option<kernel::time::Instant<kernel::time::Monotonic>>,
    /// Drop the records the next replay has to skip.
    discard_skipped: bool,
    /// Replay up to a corrupt record, dropping it and what follows.
    discard_corrupt: bool,
    /// On a block log, check the data of every record at replay, not only
    /// of those a power cut may have torn. Kept across enables.
    check_every_record: bool,
    /// `format` gives a pmem log slots (format version 3); 0: a ring only
    /// (version 2, as before slots).
    log_slots: bool,
    /// The last replay.
    report: Report,
}

impl Volume {
    /// The holder of the volume's devices: its configfs group, whose address
    /// does not change while it exists.
    fn holder(&self) -> *mut c_void {
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// The fault the next replay injects: none but in test kernels.
    fn fault(&self) -> Fault {
        #[cfg(CONFIG_KUNIT = "y")]
        match self.fault.load(kernel::sync::atomic::Relaxed) {
            1 => return Fault::SuspendFirst,
            2 => return Fault::SuspendRetransferred,
            _ => {}
        }
        Fault::None
    }

    /// The fault the CPs of the volume enabled next inject: none but in
    /// test kernels (`Limits::cp_fault`).
    fn cp_fault(&self) -> CpFault {
        #[cfg(CONFIG_KUNIT = "y")]
        match self.fault.load(kernel::sync::atomic::Relaxed) {
            3 => return CpFault::Stall,
            4 => return CpFault::NoFlush,
            5 => return CpFault::NoFua,
            _ => {}
        }
        CpFault::None
    }
}

/// The configured paths, or `EINVAL` with a message naming what is missing.
fn paths<'a>(cfg: &'a VolumeConfig, what: &str) -> Result<(&'a CString, &'a CString)> {
    match (&cfg.log, &cfg.array) {
        (Some(l), Some(a)) => Ok((l, a)),
        _ => {
            pr_err!(
                "{}: {what}: set log and array first\n",
                cfg.name.to_str().unwrap_or("?")
            );
            Err(EINVAL)
        }
    }
}

/// Parses a device path written to `log` or `array`: one absolute path, a
/// trailing newline allowed, nothing else.
fn parse_path(page: &[u8]) -> Result<CString> {
    let text = core::str::from_utf8(page).map_err(|_| EINVAL)?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    if !text.starts_with('/') || text.len() > MAX_PATH || text.contains(['\n', '\0', ' ']) {
        return Err(EINVAL);
    }
    CString::try_from_fmt(fmt!("{text}"))
}

/// Parses a decimal number with an optional trailing newline.
pub(crate) fn parse_u32(page: &[u8]) -> Result<u32> {
    let text = core::str::from_utf8(page).map_err(|_| EINVAL)?;
    text.strip_suffix('\n')
        .unwrap_or(text)
        .parse::<u32>()
        .map_err(|_| EINVAL)
}

/// Parses `enable` and `discard_skipped`: `0` or `1` with an optional
/// trailing newline. Not `kstrtobool`, which reads only the first bytes and
/// so takes "0x10" or "01" as 0 (an enabled volume would be disabled) and
/// "1 2" or "1e3" as 1.
pub(crate) fn parse_bool(page: &[u8]) -> Result<bool> {
    match page.strip_suffix(b"\n").unwrap_or(page) {
        b"0" => Ok(false),
        b"1" => Ok(true),
        _ => Err(EINVAL),
    }
}

fn show_path(p: &Option<CString>, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
    let mut w = kernel::str::Formatter::new(page);
    if let Some(p) = p {
        w.write_fmt(fmt!("{}", p.to_str()?))?;
    }
    w.write_str("\n")?;
    Ok(w.bytes_written())
}

/// Stores a device path written to `log` or `array` (`which` picks it).
fn store_path(
    this: &Volume,
    page: &[u8],
    attr: &str,
    which: fn(&mut VolumeConfig) -> &mut Option<CString>,
) -> Result {
    let mut cfg = this.inner.lock();
    let name = cfg.name.to_str().unwrap_or("?");
    let path = parse_path(page).inspect_err(|_| pr_err!("{name}: {attr}: not a device path\n"))?;
    if cfg.active.is_some() || cfg.enabling {
        pr_err!("{name}: {attr}: cannot change while enabled\n");
        return Err(EBUSY);
    }
    *which(&mut cfg) = Some(path);
    Ok(())
}

#[vtable]
impl AttributeOperations<0> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_path(&this.inner.lock().log, page)
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        store_path(this, page, "log", |c| &mut c.log)
    }
}

#[vtable]
impl AttributeOperations<1> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_path(&this.inner.lock().array, page)
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        store_path(this, page, "array", |c| &mut c.array)
    }
}

#[vtable]
impl AttributeOperations<2> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let mut w = kernel::str::Formatter::new(page);
        w.write_fmt(fmt!("{}\n", this.inner.lock().swarm_width))?;
        Ok(w.bytes_written())
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        let mut cfg = this.inner.lock();
        let name = cfg.name.to_str().unwrap_or("?");
        let width =
            parse_u32(page).inspect_err(|_| pr_err!("{name}: swarm_width: not a number\n"))?;
        if !(1..=MAX_SWARM_WIDTH).contains(&width) {
            pr_err!("{name}: swarm_width: {width} is out of range 1..={MAX_SWARM_WIDTH}\n");
            return Err(ERANGE);
        }
        cfg.swarm_width = width;
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<3> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let cfg = this.inner.lock();
        let mut w = kernel::str::Formatter::new(page);
        let state = match (&cfg.active, &cfg.log, &cfg.array) {
            _ if cfg.enabling => "replaying",
            (Some(_), _, _) => "enabled",
            (None, Some(_), Some(_)) => "configured",
            _ => "unconfigured",
        };
        w.write_fmt(fmt!("state {state}\n"))?;
        w.write_fmt(fmt!("swarm_width {}\n", cfg.swarm_width))?;
        if let Some(a) = &cfg.active {
            a.core().write_status(&mut w)?;
        } else {
            for key in [
                "log_used_bytes",
                "log_capacity_bytes",
                "cp_count",
                "last_cp_seq",
            ] {
                w.write_fmt(fmt!("{key} 0\n"))?;
            }
        }
        if cfg.enabling {
            // The replay running now, its counts as its messages move.
            let p = &this.progress;
            // Read first: once it is set, `scanned` below is the total.
            let scan_done = p.scan_done.load(Acquire);
            w.write_str("replay_state running\n")?;
            for (key, v) in [
                ("messages", &p.messages),
                ("scanned", &p.scanned),
                ("swarms", &p.swarms),
                ("loads", &p.loads),
                ("skipped", &p.skipped),
            ] {
                w.write_fmt(fmt!("replay_{key} {}\n", v.load(Relaxed)))?;
            }
            w.write_fmt(fmt!("replay_scan_done {}\n", u8::from(scan_done)))?;
            let us = cfg
                .started
                .map_or(0, |t| t.elapsed().as_micros_ceil().max(0));
            w.write_fmt(fmt!("replay_duration_us {us}\n"))?;
            return Ok(w.bytes_written());
        }
        let r = &cfg.report;
        let state = match (r.ran, r.panic, r.counters.skipped, r.discarded) {
            (false, ..) => "none",
            (true, Some(_), ..) => "panic",
            _ if r.aborted => "aborted",
            _ if r.corrupt.is_some() && !r.corrupt_discarded => "corrupt",
            (true, None, 0, _) => "done",
            (true, None, _, true) => "done-discarded",
            (true, None, _, false) => "skipped-kept",
        };
        let c = &r.counters;
        w.write_fmt(fmt!("replay_state {state}\n"))?;
        for (key, v) in [
            ("messages", c.messages),
            ("swarms", c.swarms),
            ("loads", c.loads),
            ("cache_hits", c.no_load),
            ("suspended", c.suspended),
            ("retransferred", c.retransferred),
            ("skipped", c.skipped),
            ("peak_in_flight", c.peak_in_flight),
            ("pending_verified", r.pending_verified),
            ("load_wait_us", r.load_wait_us),
            ("load_us", r.load_run_us),
            ("modify_slept_us", r.modify_slept_us),
            ("tail_us", r.tail_us),
            ("duration_us", r.duration_us),
            ("peak_bytes", r.peak_bytes),
        ] {
            w.write_fmt(fmt!("replay_{key} {v}\n"))?;
        }
        if let Some(p) = r.panic {
            w.write_fmt(fmt!("replay_panic_seq {}\n", p.seq))?;
        }
        if let Some(c) = r.corrupt {
            w.write_fmt(fmt!("replay_corrupt_seq {}\n", c.seq))?;
            w.write_fmt(fmt!("replay_corrupt_offset {}\n", c.offset))?;
            w.write_fmt(fmt!(
                "replay_corrupt_dropped {}\n",
                u8::from(r.corrupt_discarded)
            ))?;
        }
        Ok(w.bytes_written())
    }
}

#[vtable]
impl AttributeOperations<4> for Volume {
    type Data = Volume;

    /// `format` is write-only: reading it gives an empty line.
    fn show(_this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let mut w = kernel::str::Formatter::new(page);
        w.write_str("\n")?;
        Ok(w.bytes_written())
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        let cfg = this.inner.lock();
        // Exactly "1": not "01" or "+1", which a number parse takes as 1.
        if parse_bool(page).ok() != Some(true) {
            pr_err!(
                "{}: format: write 1 to format\n",
                cfg.name.to_str().unwrap_or("?")
            );
            return Err(EINVAL);
        }
        if cfg.active.is_some() || cfg.enabling {
            pr_err!(
                "{}: format: disable the volume first\n",
                cfg.name.to_str().unwrap_or("?")
            );
            return Err(EBUSY);
        }
        let (log, array) = paths(&cfg, "format")?;
        device::format(log, array, this.holder(), cfg.log_slots)
    }
}

#[vtable]
impl AttributeOperations<5> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let mut w = kernel::str::Formatter::new(page);
        let on = u8::from(this.inner.lock().active.is_some());
        w.write_fmt(fmt!("{on}\n"))?;
        Ok(w.bytes_written())
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        let mut cfg = this.inner.lock();
        let on = parse_bool(page).inspect_err(|_| {
            pr_err!(
                "{}: enable: write 0 or 1\n",
                cfg.name.to_str().unwrap_or("?")
            )
        })?;
        match (on, cfg.enabling, cfg.active.is_some()) {
            (true, true, _) => {
                pr_err!(
                    "{}: a replay is running (enable 0 aborts it)\n",
                    cfg.name.to_str().unwrap_or("?")
                );
                Err(EBUSY)
            }
            (true, false, true) => {
                pr_err!("{}: already enabled\n", cfg.name.to_str().unwrap_or("?"));
                Err(EBUSY)
            }
            (true, false, false) => {
                let (log, array) = paths(&cfg, "enable")?;
                let (log, array) = (CString::try_from(&**log)?, CString::try_from(&**array)?);
                let (name, disk) = (
                    CString::try_from(&*cfg.name)?,
                    CString::try_from(&*cfg.disk)?,
                );
                let (width, discard_skipped, discard_corrupt, check_all) = (
                    cfg.swarm_width,
                    cfg.discard_skipped,
                    cfg.discard_corrupt,
                    cfg.check_every_record,
                );
                // The replay runs without the mutex: `status` shows its
                // progress, `enable` 0 aborts it, every other change is
                // refused until it ends.
                cfg.enabling = true;
                cfg.started = Some(kernel::time::Instant::now());
                this.progress.reset();
                drop(cfg);
                let mut report = Report::default();
                let params = Params {
                    width: width as usize,
                    discard_skipped,
                    discard_corrupt,
                    check_all,
                    trace: &this.trace,
                    progress: &this.progress,
                    fault: this.fault(),
                    cp_fault: this.cp_fault(),
                };
                let res = Active::new(
                    &name,
                    &disk,
                    (&log, &array),
                    this.holder(),
                    &params,
                    &mut report,
                );
                let mut cfg = this.inner.lock();
                cfg.enabling = false;
                this.settled.notify_all();
                if report.ran {
                    cfg.report = report;
                }
                cfg.active = Some(res?);
                cfg.discard_skipped = false;
                cfg.discard_corrupt = false;
                Ok(())
            }
            (false, true, _) => {
                // Stop the replay at the MODIFY path's next turn and wait
                // for `enable` to return (the log keeps what is not committed).
                pr_info!(
                    "{}: aborting the replay\n",
                    cfg.name.to_str().unwrap_or("?")
                );
                this.progress.abort.store(true, Relaxed);
                while cfg.enabling {
                    if this.settled.wait_interruptible(&mut cfg) {
                        return Err(EINTR);
                    }
                }
                // A replay that ended before it saw the abort enabled the
                // volume: disable it, as asked.
                drop(cfg.active.take());
                Ok(())
            }
            (false, false, true) => {
                // The final CP runs as `Active` drops.
                drop(cfg.active.take());
                Ok(())
            }
            (false, false, false) => Ok(()),
        }
    }
}

#[vtable]
impl AttributeOperations<6> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let cfg = this.inner.lock();
        let mut w = kernel::str::Formatter::new(page);
        if cfg.active.is_some() {
            w.write_fmt(fmt!("{}\n", cfg.disk.to_str()?))?;
        } else {
            w.write_str("\n")?;
        }
        Ok(w.bytes_written())
    }
}

/// Shows a flag as `0` or `1`.
fn show_flag(on: bool, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
    let mut w = kernel::str::Formatter::new(page);
    w.write_fmt(fmt!("{}\n", u8::from(on)))?;
    Ok(w.bytes_written())
}

/// Sets flag `pick(cfg)` from `0` or `1` written to attribute `attr`, with
/// a warning naming what it does when it is set.
fn store_flag(
    this: &Volume,
    page: &[u8],
    (attr, pick): (&str, fn(&mut VolumeConfig) -> &mut bool),
    what: &str,
) -> Result {
    let mut cfg = this.inner.lock();
    let on = parse_bool(page).inspect_err(|_| {
        pr_err!(
            "{}: {attr}: write 0 or 1\n",
            cfg.name.to_str().unwrap_or("?")
        )
    })?;
    if cfg.enabling {
        pr_err!(
            "{}: {attr}: a replay is running; set it before enable\n",
            cfg.name.to_str().unwrap_or("?")
        );
        return Err(EBUSY);
    }
    if on {
        pr_warn!("{}: {what}\n", cfg.name.to_str().unwrap_or("?"));
    }
    *pick(&mut cfg) = on;
    Ok(())
}

#[vtable]
impl AttributeOperations<7> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_flag(this.inner.lock().discard_skipped, page)
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        store_flag(
            this,
            page,
            ("discard_skipped", |c| &mut c.discard_skipped),
            "the next replay drops the records it has to skip",
        )
    }
}

#[vtable]
impl AttributeOperations<8> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_flag(this.inner.lock().discard_corrupt, page)
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        store_flag(
            this,
            page,
            ("discard_corrupt", |c| &mut c.discard_corrupt),
            "the next replay stops at a corrupt record and drops it and every record after it",
        )
    }
}

#[vtable]
impl AttributeOperations<9> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_flag(this.inner.lock().check_every_record, page)
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        store_flag(
            this,
            page,
            ("check_every_record", |c| &mut c.check_every_record),
            "replays of a block log check the data of every record, not only of those a power cut may have torn",
        )
    }
}

#[vtable]
impl AttributeOperations<10> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_flag(this.inner.lock().log_slots, page)
    }

    /// Read by the next `format`: 1 (the default) gives a pmem log slots,
    /// 0 a ring only. A block log never has slots.
    fn store(this: &Volume, page: &[u8]) -> Result {
        let mut cfg = this.inner.lock();
        let on = parse_bool(page).inspect_err(|_| {
            pr_err!(
                "{}: log_slots: write 0 or 1\n",
                cfg.name.to_str().unwrap_or("?")
            )
        })?;
        cfg.log_slots = on;
        Ok(())
    }
}

#[kunit_tests(swarmlog_configfs)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers() {
        assert_eq!(parse_u32(b"64\n").ok(), Some(64));
        assert_eq!(parse_u32(b"1").ok(), Some(1));
        assert!(parse_u32(b"-1").is_err());
        assert!(parse_u32(b"99999999999").is_err());
        assert!(parse_u32(b"x").is_err());
        assert!(parse_u32(b"\xff").is_err());
        assert!(parse_u32(b"").is_err());
    }

    #[test]
    fn parses_booleans() {
        assert_eq!(parse_bool(b"1\n").ok(), Some(true));
        assert_eq!(parse_bool(b"1").ok(), Some(true));
        assert_eq!(parse_bool(b"0\n").ok(), Some(false));
        assert_eq!(parse_bool(b"0").ok(), Some(false));
        for bad in [
            &b""[..],
            b"\n",
            b"0x10",
            b"01",
            b"0 1",
            b"1e3",
            b"1 2",
            b" 1",
            b"1\n\n",
            b"-0",
            b"+1",
            b"2",
            b"y",
            b"off",
            b"\x001",
            b"1\x00",
            b"\xff\xfe",
        ] {
            assert!(parse_bool(bad).is_err());
        }
    }

    #[test]
    fn parses_paths() {
        assert!(parse_path(b"/dev/pmem0\n").is_ok());
        assert!(parse_path(b"dev/pmem0").is_err());
        assert!(parse_path(b"/dev/a b").is_err());
        assert!(parse_path(b"/dev/a\n\n").is_err());
        assert!(parse_path(b"\xfe/dev").is_err());
        assert!(parse_path(b"").is_err());
    }
}
