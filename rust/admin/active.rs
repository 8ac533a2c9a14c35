// SPDX-License-Identifier: GPL-2.0

//! Activation (`enable`): open the volume on its two devices, replay what
//! its log holds past the CP marker, then expose its disk; and the reverse
//! (`enable` 0): remove the disk, take a final CP, stop the volume.
//!
//! This is where the device layer, replay and the exposed disk meet; none
//! of them knows the others' order.

use core::ffi::c_void;
use kernel::{prelude::*, str::CStr};

use crate::device::{self, Frontend, Limits, Volume};
use crate::format::log::MAX_RECORD_DATA;
use crate::format::Invalid;
use crate::replay::{self, Report, Stop};
use crate::sys::disk::Disk;

/// An enabled volume: its disk and what serves it.
pub(crate) struct Active {
    disk: Option<Disk<Frontend>>,
    front: KBox<Frontend>,
}

impl Active {
    /// Activates the volume `name`: checks that the log belongs to the
    /// array, replays the records past its CP as `params` say (filling
    /// `report`), and exposes the disk `disk_name`.
    pub(crate) fn new(
        name: &CStr,
        disk_name: &CStr,
        devices: (&CStr, &CStr),
        holder: *mut c_void,
        params: &replay::Params<'_>,
        report: &mut Report,
    ) -> Result<Self> {
        let limits = Limits {
            cache_blocks: crate::max_cache_blocks(),
            cp_interval_ms: crate::cp_interval_ms(),
            cp_share: crate::cp_share(),
            cp_fault: params.cp_fault,
        };
        let (core, cp) = device::open(name, devices, holder, limits)?;
        let vname = core.name();
        // Replay whatever the log holds past its CP (nothing after a clean
        // disable).
        {
            let r = core::cell::RefCell::new(Report::default());
            let res = replay::replay(&core, &cp, params, &r);
            if r.try_borrow().is_ok_and(|r| r.ran) {
                *report = r.into_inner();
            }
            if let (Some(c), true) = (report.corrupt, report.corrupt_discarded) {
                pr_warn!(
                    "{vname}: as asked (discard_corrupt), dropping the corrupt record at log offset {} (seq {}) and every record after it\n",
                    c.offset,
                    c.seq
                );
            }
            match res {
                Ok(end) => {
                    let c = report.counters;
                    if report.ran {
                        pr_info!(
                            "{vname}: replayed seq {}-{}: {} records of the ring and those of the slots, as {} messages in {} swarms: {} loads, {} suspended, {} retransferred, {} skipped, {} us\n",
                            cp.seq,
                            end.seq.saturating_sub(1),
                            end.records,
                            c.messages,
                            c.swarms,
                            c.loads,
                            c.suspended,
                            c.retransferred,
                            c.skipped,
                            report.duration_us
                        );
                    }
                }
                Err(Stop::Panic(p)) => {
                    pr_emerg!(
                        "{vname}: replay PANIC: message seq {} ({}) is suspended, waiting for seq {}; replay stopped, the log is left as it is and the volume is not exposed\n",
                        p.seq,
                        if p.first_of_swarm { "first of its swarm" } else { "retransferred" },
                        p.waits_for
                    );
                    return Err(EIO);
                }
                Err(Stop::Corrupt(c))
                    if matches!(c.cause, Some(Invalid::Unreadable | Invalid::DataUnreadable)) =>
                {
                    let what = if c.cause == Some(Invalid::DataUnreadable) {
                        "its data"
                    } else {
                        "its header"
                    };
                    let place = if core.log_on_block() {
                        "a part of the log device that fails to read"
                    } else {
                        "a bad line of the pmem"
                    };
                    pr_err!(
                        "{vname}: log damaged: the record at log offset {} (seq {}) lies on {place} ({}): it cannot be read. Nothing replayed past it, nothing written to the log; save what the log device still gives, then write 1 to discard_corrupt and enable to replay up to it and drop it and every record after it\n",
                        c.offset,
                        c.seq,
                        what
                    );
                    return Err(EIO);
                }
                Err(Stop::Corrupt(c)) => {
                    pr_err!(
                        "{vname}: log corrupt: the record at log offset {} (seq {}) fails its check, yet a valid record follows at offset {}: it was complete once. Nothing replayed past it, nothing written to the log; save the log device, then write 1 to discard_corrupt and enable to replay up to it and drop it and every record after it\n",
                        c.offset,
                        c.seq,
                        c.next_offset
                    );
                    return Err(EUCLEAN);
                }
                Err(Stop::Skipped) => {
                    pr_err!(
                        "{vname}: replay skipped {} records (seq {}-{}) whose part of the array is unavailable; they are kept in the log: repair the array and enable again, or write 1 to discard_skipped to drop them\n",
                        report.counters.skipped,
                        report.first_skipped,
                        report.last_skipped
                    );
                    return Err(EIO);
                }
                Err(Stop::Aborted) => {
                    pr_warn!(
                        "{vname}: replay aborted (enable 0) after {} messages; the log keeps every record not yet committed: enable again to replay them\n",
                        report.counters.messages
                    );
                    return Err(ECANCELED);
                }
                Err(Stop::Error(e)) => {
                    pr_err!("{vname}: replay failed ({e:?}); the log is kept\n");
                    return Err(e);
                }
            }
        }
        let front = KBox::new(Frontend::new(core)?, GFP_KERNEL)?;
        let sectors = front.core().sectors();
        // SAFETY: `front` is boxed, so its address is stable, and it is
        // dropped only after the disk (see `Drop`).
        let disk = unsafe { Disk::new(disk_name, sectors, MAX_RECORD_DATA, &*front) }?;
        pr_info!(
            "{} enabled as /dev/{} ({} sectors), CP generation {}\n",
            front.core().name(),
            disk_name.to_str().unwrap_or("?"),
            sectors,
            cp.generation
        );
        Ok(Self {
            disk: Some(disk),
            front,
        })
    }

    /// The running volume.
    pub(crate) fn core(&self) -> &Volume {
        self.front.core()
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        // No new bios once the disk is gone.
        drop(self.disk.take());
        let core = self.front.core();
        if let Err(e) = core.checkpoint() {
            pr_err!(
                "{}: the final consistency point failed ({:?}); the log keeps the data for the next activation\n",
                core.name(),
                e
            );
        }
        core.stop();
        // Dropping `front` destroys the workqueue (waiting for the CP loop
        // and reads in flight), then releases the core and its devices.
    }
}
