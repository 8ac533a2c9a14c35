// SPDX-License-Identifier: GPL-2.0

//! The exposed block device: a bio-based gendisk whose bios go to a
//! [`Handler`], as rnull's `GenDisk<T: Operations>` hands its requests to
//! its `T`.

use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, prelude::*, str::CStr};

use super::bio::Bio;
use super::ffi;

/// What a [`Disk`] hands its bios to.
pub(crate) trait Handler: Send + Sync {
    /// Takes `bio`, which it must complete ([`Bio::end`], or by dropping it).
    fn submit(&self, bio: Bio);
}

/// The disk's private data: the handler and its monomorphised entry point.
struct Dispatch {
    submit: unsafe fn(*const c_void, Bio),
    handler: *const c_void,
}

/// Calls `T::submit` on the handler behind `handler`.
///
/// # Safety
///
/// `handler` must point to a live `T`.
unsafe fn submit_to<T: Handler>(handler: *const c_void, bio: Bio) {
    // SAFETY: the caller guarantees that `handler` points to a live `T`.
    let handler = unsafe { &*handler.cast::<T>() };
    handler.submit(bio);
}

/// A registered disk whose bios go to a `T`.
///
/// # Invariants
///
/// `disk` was allocated by `swl_disk_alloc` and added with `add_disk`; its
/// private data is `dispatch`, whose `handler` points to a `T` that outlives
/// the disk (the owner keeps it alive until `drop` has returned, after which
/// no bio reaches it).
pub(crate) struct Disk<T: Handler> {
    disk: NonNull<bindings::gendisk>,
    /// Owned here, read only by `swarmlog_submit_bio` through the disk's
    /// private data; dropped after the disk is deleted.
    _dispatch: KBox<Dispatch>,
    _handler: core::marker::PhantomData<*const T>,
}

// SAFETY: the gendisk may be removed from any thread; the handler is `Sync`.
unsafe impl<T: Handler> Send for Disk<T> {}
// SAFETY: `&self` methods touch nothing.
unsafe impl<T: Handler> Sync for Disk<T> {}

impl<T: Handler> Disk<T> {
    /// Creates and adds disk `name` of `sectors` sectors; bios of at most
    /// `max_bytes` go to `handler`.
    ///
    /// # Safety
    ///
    /// `handler` must stay valid until the returned `Disk` is dropped.
    pub(crate) unsafe fn new(
        name: &CStr,
        sectors: u64,
        max_bytes: u32,
        handler: *const T,
    ) -> Result<Self> {
        let dispatch = KBox::new(
            Dispatch {
                submit: submit_to::<T>,
                handler: handler.cast(),
            },
            GFP_KERNEL,
        )?;
        let private: *const Dispatch = &*dispatch;
        // SAFETY: `name` is NUL-terminated; `private` points into a box that
        // lives as long as the disk and is only handed back to
        // `swarmlog_submit_bio`.
        let disk = from_err_ptr(unsafe {
            ffi::swl_disk_alloc(
                name.as_char_ptr(),
                sectors,
                max_bytes,
                private.cast_mut().cast::<c_void>(),
            )
        })?;
        let disk = NonNull::new(disk).ok_or(ENOMEM)?;
        // SAFETY: `disk` was just allocated and not added yet.
        let ret = unsafe { ffi::swl_disk_add(disk.as_ptr()) };
        if ret != 0 {
            // SAFETY: an allocated disk that was not added is put once.
            unsafe { bindings::put_disk(disk.as_ptr()) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: allocated and added, with `dispatch` as private data,
        // whose handler the caller keeps alive.
        Ok(Self {
            disk,
            _dispatch: dispatch,
            _handler: core::marker::PhantomData,
        })
    }
}

impl<T: Handler> Drop for Disk<T> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the disk was added; it is deleted and
        // put once. `del_gendisk` waits for bios inside `submit_bio`, so
        // `_dispatch` is unused once it returns (and freed after this).
        unsafe {
            bindings::del_gendisk(self.disk.as_ptr());
            bindings::put_disk(self.disk.as_ptr());
        }
    }
}

/// Entry point of every bio sent to a swarmlog disk (from `helpers.c`).
#[no_mangle]
extern "C" fn swarmlog_submit_bio(bio: *mut bindings::bio) {
    let Some(bio) = NonNull::new(bio) else {
        return;
    };
    // SAFETY: the block layer hands us a valid bio to complete.
    let bio = unsafe { Bio::from_raw(bio) };
    let dispatch = bio.disk_private().cast::<Dispatch>().cast_const();
    // SAFETY: the disk's private data is its `Dispatch`, kept alive while
    // the disk exists (type invariant of `Disk`), and a bio only arrives
    // while it does.
    let dispatch = unsafe { &*dispatch };
    // SAFETY: `dispatch.handler` is the `T` that `dispatch.submit` was made
    // for, alive while the disk is (type invariant of `Disk`).
    unsafe { (dispatch.submit)(dispatch.handler, bio) };
}
