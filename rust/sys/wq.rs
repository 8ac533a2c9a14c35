// SPDX-License-Identifier: GPL-2.0

//! An owned workqueue: created with the module's flags, destroyed (after
//! draining it) on drop. The kernel crate has system queues only.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*, workqueue::Queue};

/// A workqueue swarmlog allocated.
///
/// # Invariants
///
/// `wq` was returned by `alloc_workqueue()` and is destroyed only in `drop`.
pub(crate) struct OwnedQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: workqueues may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: queueing work is safe from any thread.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// An unbound queue fit for the I/O path (`WQ_MEM_RECLAIM`: it has a
    /// rescuer thread, so it makes progress under memory pressure), with at
    /// most `max_active` items running at once.
    pub(crate) fn new_io(name: &CStr, max_active: i32) -> Result<Self> {
        let flags = bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags_WQ_MEM_RECLAIM;
        // SAFETY: the format "%s" takes exactly the one string argument
        // passed, a valid NUL-terminated string.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                c"%s".as_char_ptr(),
                flags,
                max_active,
                name.as_char_ptr(),
            )
        };
        // INVARIANT: a non-NULL result is a new workqueue that we own.
        Ok(Self {
            wq: NonNull::new(wq).ok_or(ENOMEM)?,
        })
    }
}

impl core::ops::Deref for OwnedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        // SAFETY: `wq` is a live workqueue (type invariant) for as long as
        // `self`, which bounds the returned reference.
        unsafe { Queue::from_raw(self.wq.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: `wq` is ours (type invariant); `destroy_workqueue` drains
        // it first, so no queued item outlives it.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}
