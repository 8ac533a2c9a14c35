// SPDX-License-Identifier: GPL-2.0

//! CRC-32C, the checksum of every log record, log header and metadata block.
//!
//! The kernel's `crc32c()` (architecture-optimised with
//! `CONFIG_CRC_OPTIMIZATIONS`) does the work; this file only gives it a safe,
//! slice-based face so the format code stays free of `unsafe`.
//!
//! It also combines checksums: CRC-32C is linear, so the checksum of `a`
//! followed by `b` can be made from the checksum of `a` and the checksum of
//! `b` alone ([`shift`]). The write path uses this to checksum each block
//! of a write once and use that both in the record's checksum and, at the
//! CP, in the block's table entry, instead of checksumming the block again.

use crate::sys;

/// Seed of every swarmlog checksum (the conventional CRC-32C start value).
pub(crate) const SEED: u32 = !0;

/// Continues a CRC-32C over `data`, starting from `crc`.
#[inline]
pub(crate) fn crc32c(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is a valid, initialised slice for its whole length, and
    // `crc32c` only reads `len` bytes from `p`.
    unsafe { sys::crc32c(crc, data.as_ptr().cast(), data.len()) }
}

/// The CRC-32C polynomial, bit-reflected.
const POLY: u32 = 0x82f6_3b78;

/// `a(x) * b(x)` modulo the CRC-32C polynomial, both bit-reflected (bit 31
/// is the coefficient of `x^0`).
const fn mul_mod(a: u32, mut b: u32) -> u32 {
    let mut p = 0;
    let mut m = 1u32 << 31;
    while m != 0 {
        if a & m != 0 {
            p ^= b;
        }
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        m >>= 1;
    }
    p
}

/// `X2N[k]` is `x^(2^k)` modulo the polynomial.
const X2N: [u32; 32] = {
    let mut t = [0u32; 32];
    t[0] = 1 << 30;
    let mut k = 1;
    while k < 32 {
        t[k] = mul_mod(t[k - 1], t[k - 1]);
        k += 1;
    }
    t
};

/// What the CRC-32C state `crc` becomes over `len` zero bytes:
/// `crc32c(crc, b) == shift(crc, b.len()) ^ crc32c(0, b)` for any `b`.
pub(crate) fn shift(crc: u32, len: u64) -> u32 {
    // x^(8 len), as the product of x^(2^k) over the bits of 8 len.
    let mut p = 1u32 << 31;
    let mut n = len;
    let mut k = 3usize;
    while n != 0 {
        if n & 1 != 0 {
            p = mul_mod(X2N.get(k % 32).copied().unwrap_or(0), p);
        }
        n >>= 1;
        k += 1;
    }
    mul_mod(p, crc)
}

/// The checksum of a block from its CRC-32C from zero (`crc32c(0, data)`):
/// `crc32c(SEED, data)`.
pub(crate) fn seeded(crc0: u32, len: u64) -> u32 {
    shift(SEED, len) ^ crc0
}

#[kernel::prelude::kunit_tests(swarmlog_checksum)]
mod tests {
    use super::*;
    use kernel::prelude::*;

    fn bytes(n: usize, seed: u32) -> Result<KVec<u8>> {
        let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut x = seed;
        for _ in 0..n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            v.push((x >> 16) as u8, GFP_KERNEL)?;
        }
        Ok(v)
    }

    #[test]
    fn zero_block_checksums_to_zero() {
        // From zero, zeroes stay zero: a block's CRC from zero is 0 if it
        // is all zeroes.
        assert_eq!(crc32c(0, &[0u8; 512]), 0);
    }

    #[test]
    fn shift_combines_like_one_pass() -> Result {
        for (i, (la, lb)) in [
            (0, 1),
            (1, 0),
            (7, 4096),
            (4096, 4096),
            (100, 65_536),
            (3, 511),
        ]
        .into_iter()
        .enumerate()
        {
            let a = bytes(la, i as u32)?;
            let b = bytes(lb, 1000 + i as u32)?;
            let mut ab = KVec::new();
            ab.extend_from_slice(&a, GFP_KERNEL)?;
            ab.extend_from_slice(&b, GFP_KERNEL)?;
            let whole = crc32c(SEED, &ab);
            let parts = shift(crc32c(SEED, &a), lb as u64) ^ crc32c(0, &b);
            assert_eq!(whole, parts);
            assert_eq!(seeded(crc32c(0, &b), lb as u64), crc32c(SEED, &b));
        }
        assert_eq!(shift(0x1234_5678, 0), 0x1234_5678);
        // A changed byte changes the combination.
        let a = bytes(64, 1)?;
        let mut b = bytes(4096, 2)?;
        let good = shift(crc32c(SEED, &a), 4096) ^ crc32c(0, &b);
        if let Some(x) = b.get_mut(4000) {
            *x ^= 1;
        }
        assert_ne!(good, shift(crc32c(SEED, &a), 4096) ^ crc32c(0, &b));
        Ok(())
    }
}
