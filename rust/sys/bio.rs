// SPDX-License-Identifier: GPL-2.0

//! A bio submitted to the swarmlog disk: what it asks for, its data, and its
//! completion.

use core::ffi::{c_int, c_uint, c_void};
use core::marker::PhantomData;
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

/// A piece of a request's data: a bio's page, which its submitter may
/// change while swarmlog reads it (nothing forbids rewriting a buffer under
/// a write in flight; the `unstable-buffer` scenario does), or a test's
/// buffer. No Rust reference is ever made to its bytes, which a `&[u8]`
/// would promise stay unchanged: they are copied in and out through raw
/// pointers only, as C's `memcpy` would.
///
/// # Invariants
///
/// `ptr` points to `len` bytes that stay mapped and writable for `'a`, and
/// that nothing in swarmlog references while the chunk exists.
pub(crate) struct Chunk<'a> {
    ptr: *mut u8,
    len: usize,
    _data: PhantomData<&'a mut [u8]>,
}

impl<'a> Chunk<'a> {
    /// A chunk over a buffer the caller owns (tests, bounce buffers).
    pub(crate) fn of(buf: &'a mut [u8]) -> Self {
        // INVARIANT: the exclusive borrow keeps `buf` mapped and unused
        // by anyone else for `'a`.
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _data: PhantomData,
        }
    }

    /// A chunk over `len` bytes at `ptr`.
    ///
    /// # Safety
    ///
    /// The bytes must stay mapped and writable for `'a`, and not be
    /// referenced by swarmlog while the chunk exists (others may change
    /// them).
    unsafe fn from_raw(ptr: *mut u8, len: usize) -> Self {
        // INVARIANT: the caller's promise.
        Self {
            ptr,
            len,
            _data: PhantomData,
        }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The address of its first byte, for a copy routine that reads it
    /// (`memcpy_flushcache`); valid for `len()` bytes while the chunk is.
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// The `len` bytes from `at` as a chunk of their own, to be read (a
    /// source of a copy: the write path splits a request's data between
    /// slots, `log.rs`); `EINVAL` past its end.
    pub(crate) fn piece(&self, at: usize, len: usize) -> Result<Chunk<'_>> {
        if at.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(EINVAL);
        }
        // SAFETY: `[at, at + len)` lies within this chunk's bytes (checked
        // above), which stay mapped and writable for `'a`, longer than the
        // borrow of `self` the piece lives for; swarmlog makes no reference
        // to them (type invariant).
        Ok(unsafe { Chunk::from_raw(self.ptr.add(at), len) })
    }

    /// Copies its bytes from `at` into `dst`; `EINVAL` past its end.
    pub(crate) fn copy_to(&self, at: usize, dst: &mut [u8]) -> Result {
        if at.checked_add(dst.len()).is_none_or(|end| end > self.len) {
            return Err(EINVAL);
        }
        // SAFETY: `[at, at + dst.len())` lies within the chunk's mapped
        // bytes (checked above; type invariant), and `dst` is a distinct
        // buffer the caller borrows exclusively.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr.add(at), dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Copies `src` into its bytes from `at`; `EINVAL` past its end.
    pub(crate) fn fill_from(&mut self, at: usize, src: &[u8]) -> Result {
        if at.checked_add(src.len()).is_none_or(|end| end > self.len) {
            return Err(EINVAL);
        }
        // SAFETY: `[at, at + src.len())` lies within the chunk's mapped,
        // writable bytes (checked above; type invariant), and `src` is a
        // distinct buffer.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(at), src.len()) };
        Ok(())
    }
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

    /// Calls `f` on each piece of the bio's data in order (a read fills
    /// them, a write copies them), and stops at its first error.
    pub(crate) fn for_each_chunk<F: FnMut(&mut Chunk<'_>) -> Result>(&self, mut f: F) -> Result {
        /// # Safety
        ///
        /// `ctx` must point to an `F`, and `addr` to `len` bytes mapped for
        /// the call.
        unsafe extern "C" fn trampoline<F: FnMut(&mut Chunk<'_>) -> Result>(
            ctx: *mut c_void,
            addr: *mut c_void,
            len: c_uint,
        ) -> c_int {
            // SAFETY: `ctx` is the `&mut F` passed below, alive for the call.
            let f = unsafe { &mut *ctx.cast::<F>() };
            // SAFETY: the helper maps `len` bytes at `addr` for this call
            // (the chunk does not outlive it), and swarmlog makes no
            // reference to them: the bio's submitter may change them.
            let mut chunk = unsafe { Chunk::from_raw(addr.cast::<u8>(), len as usize) };
            match f(&mut chunk) {
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
