// SPDX-License-Identifier: GPL-2.0

//! The exposed block device: a bio-based gendisk whose bios go to
//! [`crate::volume::Frontend::submit`].

use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, prelude::*, str::CStr};

use crate::bio::Bio;
use crate::sys;
use crate::volume::Frontend;

/// A registered disk.
///
/// # Invariants
///
/// `disk` was allocated by `swl_disk_alloc` and added with `add_disk`; its
/// private data is a pointer to a `Frontend` that outlives the disk (the
/// owner keeps it alive until `drop` has returned, after which no bio
/// reaches it).
pub(crate) struct Disk {
    disk: NonNull<bindings::gendisk>,
}

// SAFETY: the gendisk may be removed from any thread.
unsafe impl Send for Disk {}
// SAFETY: `&self` methods only read the disk's name.
unsafe impl Sync for Disk {}

impl Disk {
    /// Creates and adds disk `name` of `sectors` sectors; bios of at most
    /// `max_bytes` go to `front`.
    ///
    /// # Safety
    ///
    /// `front` must stay valid until the returned `Disk` is dropped.
    pub(crate) unsafe fn new(
        name: &CStr,
        sectors: u64,
        max_bytes: u32,
        front: *const Frontend,
    ) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; `front` is kept valid by the
        // caller and only handed back to `swarmlog_submit_bio`.
        let disk = from_err_ptr(unsafe {
            sys::swl_disk_alloc(
                name.as_char_ptr(),
                sectors,
                max_bytes,
                front.cast_mut().cast::<c_void>(),
            )
        })?;
        let disk = NonNull::new(disk).ok_or(ENOMEM)?;
        // SAFETY: `disk` was just allocated and not added yet.
        let ret = unsafe { sys::swl_disk_add(disk.as_ptr()) };
        if ret != 0 {
            // SAFETY: an allocated disk that was not added is put once.
            unsafe { bindings::put_disk(disk.as_ptr()) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: allocated and added, with `front` as private data.
        Ok(Self { disk })
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the disk was added; it is deleted and
        // put once. `del_gendisk` waits for bios inside `submit_bio`.
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
    let front = bio.disk_private().cast::<Frontend>().cast_const();
    // SAFETY: the disk's private data is a `Frontend` kept alive while the
    // disk exists (type invariant of `Disk`), and a bio only arrives while it
    // does.
    let front = unsafe { &*front };
    front.submit(bio);
}
