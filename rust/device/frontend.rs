// SPDX-License-Identifier: GPL-2.0

//! What the exposed disk hands its bios to: writes, discards and flushes
//! are served in the submitter's context (the write path), reads on the
//! volume's workqueue, and so are writes when the log is on a block device
//! (see `submit`). The CP loop, which never returns while the volume
//! runs, has a workqueue of its own: parked in the read queue, it could
//! hold that queue's rescuer (its one thread of last resort under memory
//! pressure) and leave reads without one.

use core::sync::atomic::Ordering::Relaxed;
use kernel::{
    new_mutex, new_work,
    prelude::*,
    str::CString,
    sync::{Arc, Mutex},
    workqueue::{Work, WorkItem},
};

use super::Volume;
use crate::format::log::Op;
use crate::sys::bio::{Bio, Op as BioOp};
use crate::sys::disk::Handler;
use crate::sys::noio::NoIo;
use crate::sys::wq::OwnedQueue;

/// The volume and its workqueues, the handler of its disk.
pub(crate) struct Frontend {
    /// Reads.
    wq: OwnedQueue,
    /// The CP loop alone; destroyed (waiting for the loop, which the
    /// volume's stop ends) when the frontend drops.
    _cp: OwnedQueue,
    core: Arc<Volume>,
}

impl Frontend {
    /// Serves `core`: makes its workqueues and starts its CP loop.
    pub(crate) fn new(core: Arc<Volume>) -> Result<Self> {
        let wq = OwnedQueue::new_io(&core.name, 0)?;
        let cp_name = CString::try_from_fmt(fmt!("{}-cp", core.name.to_str().unwrap_or("?")))?;
        let cp = OwnedQueue::new_io(&cp_name, 1)?;
        let _ = cp.enqueue(core.clone());
        Ok(Self { wq, _cp: cp, core })
    }

    /// The running volume.
    pub(crate) fn core(&self) -> &Arc<Volume> {
        &self.core
    }
}

impl Handler for Frontend {
    /// Dispatches a bio sent to the disk.
    fn submit(&self, bio: Bio) {
        let this = &self.core;
        let _noio = NoIo::new();
        // A block log is written with bios waited for, which must not be
        // inside this submit_bio: the block layer holds bios submitted
        // there until it returns (the first write to a block log hung).
        // Reads go to the workqueue too.
        let queued = match bio.op() {
            BioOp::Read => true,
            BioOp::Write | BioOp::Discard | BioOp::WriteZeroes => this.log_on_block(),
            _ => false,
        };
        if queued {
            let work = Arc::pin_init(
                pin_init!(QueuedBio {
                    core: this.clone(),
                    bio <- new_mutex!(Some(bio)),
                    work <- new_work!("swarmlog::queued"),
                }),
                GFP_KERNEL,
            );
            // On failure the bio was dropped with the initializer, which
            // completes it with an error.
            if let Ok(work) = work {
                let _ = self.wq.enqueue(work);
            }
            return;
        }
        let res = match bio.op() {
            BioOp::Write => this.write(&bio, Op::Write),
            BioOp::Discard => this.write(&bio, Op::Discard),
            BioOp::WriteZeroes => this.write(&bio, Op::WriteZeroes),
            BioOp::Flush => {
                this.stats.flushes.fetch_add(1, Relaxed);
                Ok(())
            }
            // Reads were queued above and never reach here.
            BioOp::Read | BioOp::Other => Err(EOPNOTSUPP),
        };
        if res.is_err() {
            this.stats.io_errors.fetch_add(1, Relaxed);
        }
        bio.end(res);
    }
}

/// A bio waiting for the workqueue: a read, or a write to a block log.
#[pin_data]
struct QueuedBio {
    core: Arc<Volume>,
    #[pin]
    bio: Mutex<Option<Bio>>,
    #[pin]
    work: Work<QueuedBio>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for QueuedBio { self.work }
}

impl WorkItem for QueuedBio {
    type Pointer = Arc<QueuedBio>;

    fn run(this: Arc<QueuedBio>) {
        let _noio = NoIo::new();
        let bio = this.bio.lock().take();
        if let Some(bio) = bio {
            let core = &this.core;
            let res = match bio.op() {
                BioOp::Read => core.read(&bio),
                BioOp::Write => core.write(&bio, Op::Write),
                BioOp::Discard => core.write(&bio, Op::Discard),
                BioOp::WriteZeroes => core.write(&bio, Op::WriteZeroes),
                _ => Err(EOPNOTSUPP),
            };
            if res.is_err() {
                core.stats.io_errors.fetch_add(1, Relaxed);
            }
            bio.end(res);
        }
    }
}
