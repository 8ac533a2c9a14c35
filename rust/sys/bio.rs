// SPDX-License-Identifier: GPL-2.0

//! A bio submitted to the swarmlog disk: what it asks for, its data, and its
//! completion.

use core::ffi::{c_int, c_uint, c_void};
use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

use super::ffi;

/// What a bio asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Write,
    Flush,
    Discard,
    WriteZeroes,
    Other,
}

/// A bio the swarmlog disk received and has not completed yet.
///
/// # Invariants
///
/// `bio` was handed to swarmlog's `submit_bio` and is owned by it until
/// [`Bio::end`] (or `drop`, which fails it with `EIO`) completes it.
pub(crate) struct Bio {
    bio: NonNull<bindings::bio>,
}

// SAFETY: a bio may be completed from any context; swarmlog hands it between
// threads but only one owns it at a time.
unsafe impl Send for Bio {}

impl Bio {
    /// Takes ownership of a bio given to `submit_bio`.
    ///
    /// # Safety
    ///
    /// `bio` must be a valid bio that the caller owns and passes on.
    pub(crate) unsafe fn from_raw(bio: NonNull<bindings::bio>) -> Self {
        // INVARIANT: the caller passes ownership of a valid bio.
        Self { bio }
    }

    /// The operation.
    pub(crate) fn op(&self) -> Op {
        // SAFETY: `bio` is valid by the type invariant.
        match unsafe { ffi::swl_bio_op(self.bio.as_ptr()) } {
            ffi::REQ_OP_READ => Op::Read,
            ffi::REQ_OP_WRITE => Op::Write,
            ffi::REQ_OP_FLUSH => Op::Flush,
            ffi::REQ_OP_DISCARD => Op::Discard,
            ffi::REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            _ => Op::Other,
        }
    }

    /// First sector.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: `bio` is valid by the type invariant.
        unsafe { ffi::swl_bio_sector(self.bio.as_ptr()) }
    }

    /// Length in bytes.
    pub(crate) fn size(&self) -> u32 {
        // SAFETY: `bio` is valid by the type invariant.
        unsafe { ffi::swl_bio_size(self.bio.as_ptr()) }
    }

    /// The disk's private data (set by [`super::disk::Disk::new`]).
    pub(crate) fn disk_private(&self) -> *mut c_void {
        // SAFETY: `bio` is valid and was submitted to a swarmlog disk.
        unsafe { ffi::swl_bio_private(self.bio.as_ptr()) }
    }

    /// Calls `f` on each piece of the bio's data in order, mutably (a read
    /// fills them, a write takes them), and stops at its first error.
    pub(crate) fn for_each_chunk<F: FnMut(&mut [u8]) -> Result>(&self, mut f: F) -> Result {
        /// # Safety
        ///
        /// `ctx` must point to an `F`, and `addr` to `len` mapped bytes no one
        /// else uses during the call.
        unsafe extern "C" fn trampoline<F: FnMut(&mut [u8]) -> Result>(
            ctx: *mut c_void,
            addr: *mut c_void,
            len: c_uint,
        ) -> c_int {
            // SAFETY: `ctx` is the `&mut F` passed below, alive for the call.
            let f = unsafe { &mut *ctx.cast::<F>() };
            // SAFETY: the helper maps `len` bytes at `addr` for this call, and
            // nothing else touches them while the bio is ours.
            let chunk = unsafe { core::slice::from_raw_parts_mut(addr.cast::<u8>(), len as usize) };
            match f(chunk) {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            }
        }
        let ctx: *mut F = &mut f;
        // SAFETY: `bio` is valid by the type invariant; `trampoline::<F>`
        // matches the callback type and `ctx` points to `f`, which outlives
        // the call.
        let ret =
            unsafe { ffi::swl_bio_for_each_chunk(self.bio.as_ptr(), trampoline::<F>, ctx.cast()) };
        kernel::error::to_result(ret)
    }

    /// Completes the bio with `res`.
    pub(crate) fn end(self, res: Result) {
        let err = match res {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        };
        let bio = self.bio;
        core::mem::forget(self);
        // SAFETY: the bio is ours (type invariant) and completed once: `self`
        // is forgotten so `drop` does not complete it again.
        unsafe { ffi::swl_bio_endio(bio.as_ptr(), err) };
    }
}

impl Drop for Bio {
    fn drop(&mut self) {
        // A bio dropped without an answer must not hang its submitter.
        // SAFETY: the bio is ours (type invariant) and completed once.
        unsafe { ffi::swl_bio_endio(self.bio.as_ptr(), EIO.to_errno()) };
    }
}
