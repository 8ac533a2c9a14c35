// SPDX-License-Identifier: GPL-2.0

//! A no-I/O allocation scope: while a [`NoIo`] lives, every allocation of
//! the current task behaves as `GFP_NOIO`, so memory reclaim never waits on
//! I/O that could be queued behind the request swarmlog is serving.
//!
//! The I/O paths (write, read, consistency point) open one at their entry
//! and allocate with `GFP_KERNEL` inside it, as the kernel recommends
//! (`memalloc_noio_save()`) over passing `GFP_NOIO` down.

use super::ffi;

/// An open no-I/O scope of the current task.
///
/// # Invariants
///
/// `flags` is what `memalloc_noio_save()` returned on this task; the scope
/// is closed in `drop`, on the same task (the type is not `Send`).
pub(crate) struct NoIo {
    flags: u32,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl NoIo {
    /// Opens a scope; scopes nest.
    pub(crate) fn new() -> Self {
        // SAFETY: no preconditions; the scope is closed by `drop`.
        let flags = unsafe { ffi::swl_noio_save() };
        Self {
            flags,
            _not_send: core::marker::PhantomData,
        }
    }
}

impl Drop for NoIo {
    fn drop(&mut self) {
        // SAFETY: `flags` came from `memalloc_noio_save()` on this task.
        unsafe { ffi::swl_noio_restore(self.flags) };
    }
}
