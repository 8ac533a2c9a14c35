// SPDX-License-Identifier: GPL-2.0

//! Byte buffers grown with one `memset` or `memcpy`.
//!
//! `Vec::resize` and `Vec::extend_from_slice` store one element at a time
//! (they are generic over `Clone`), and for `u8` the compiler keeps them as
//! byte loops: 4096 iterations for a block, several times slower than the
//! kernel's `memcpy` (performance.rst has the profile). Every byte buffer
//! on the I/O paths (the write path's copy, cache blocks, LOADs, the CP's
//! runs) grows through these two functions.

use kernel::alloc::{Allocator, Flags, Vec};
use kernel::prelude::*;

/// Appends `src` to `v`.
pub(crate) fn extend<A: Allocator>(v: &mut Vec<u8, A>, src: &[u8], flags: Flags) -> Result {
    v.reserve(src.len(), flags)?;
    let dst = v.spare_capacity_mut().get_mut(..src.len()).ok_or(ENOMEM)?;
    // SAFETY: `dst` has room for `src.len()` bytes; it is spare capacity of
    // `v`, which `src` (a shared borrow) cannot point into.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast(), src.len()) };
    // SAFETY: `reserve` made room for `src.len()` more bytes, and they were
    // all just written.
    unsafe { v.inc_len(src.len()) };
    Ok(())
}

/// Makes `v` `len` bytes long: the bytes it gains are zero, the ones past
/// `len` are dropped.
pub(crate) fn resize_zeroed<A: Allocator>(v: &mut Vec<u8, A>, len: usize, flags: Flags) -> Result {
    let Some(add) = len.checked_sub(v.len()) else {
        v.truncate(len);
        return Ok(());
    };
    v.reserve(add, flags)?;
    let dst = v.spare_capacity_mut().get_mut(..add).ok_or(ENOMEM)?;
    // SAFETY: `dst` is `add` bytes of spare capacity of `v`.
    unsafe { core::ptr::write_bytes(dst.as_mut_ptr(), 0, add) };
    // SAFETY: `reserve` made room for `add` more bytes, and they were all
    // just written.
    unsafe { v.inc_len(add) };
    Ok(())
}

/// A zeroed buffer of `len` bytes.
pub(crate) fn zeroed(len: usize, flags: Flags) -> Result<KVec<u8>> {
    let mut v = KVec::new();
    resize_zeroed(&mut v, len, flags)?;
    Ok(v)
}

#[kernel::prelude::kunit_tests(swarmlog_bytes)]
mod tests {
    use super::*;

    #[test]
    fn extend_and_resize_like_vec() -> Result {
        let mut a = KVec::new();
        let mut b: KVVec<u8> = KVVec::new();
        let src: [u8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        for n in [0usize, 1, 9, 4] {
            a.extend_from_slice(&src[..n], GFP_KERNEL)?;
            extend(&mut b, &src[..n], GFP_KERNEL)?;
        }
        assert_eq!(&a[..], &b[..]);
        // Grown bytes are zero even where the memory held other bytes.
        b.truncate(2);
        resize_zeroed(&mut b, 10, GFP_KERNEL)?;
        assert_eq!(&b[..], &[1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        resize_zeroed(&mut b, 3, GFP_KERNEL)?;
        assert_eq!(&b[..], &[1, 1, 0]);
        let z = zeroed(4096, GFP_KERNEL)?;
        assert_eq!(z.len(), 4096);
        assert!(z.iter().all(|&x| x == 0));
        Ok(())
    }
}
